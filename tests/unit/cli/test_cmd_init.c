/* kiln init: what it creates, and what a failed init leaves behind (nothing). */
#include "support/support.h"

#include "cli/cli.h"
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *root;

static int setup(void **state)
{
	(void)state;
	root = kt_tmpdir("cli-init");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_rmrf(root);
	free(root);
	return 0;
}

static unsigned mode_of(const char *dir, const char *rel)
{
	char *p = kt_path(dir, rel);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return st.st_mode & 0777;
}

static void test_init_creates_deployment(void **state)
{
	char *dir = kt_path(root, "ok");
	char *cfg_path = kt_path(dir, "kiln.yaml");
	kiln_buf out, err, text;
	kiln_config cfg;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", dir, "--json",
				"--org", "Acme", NULL),
			 CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"production-issuing\""));
	assert_non_null(strstr(kiln_buf_cstr(&out), "O=Acme"));
	assert_int_equal(err.len, 0);
	assert_int_equal(mode_of(dir, "secrets"), 0700);
	assert_int_equal(mode_of(dir, "secrets/kiln-prod.pin"), 0600);
	assert_int_equal(mode_of(dir, "secrets/kiln-test.so-pin"), 0600);
	assert_int_equal(mode_of(dir, "kiln.yaml"), 0600);
	assert_int_equal(mode_of(dir, "kiln.db") & 0077, 0);
	kt_read_file(cfg_path, &text);
	KT_OK(kiln_config_parse(kiln_buf_view(&text), "kiln.yaml", &cfg, NULL));
	assert_string_equal(cfg.ca_algorithm, "p256");
	assert_string_equal(cfg.tokens[KILN_ENV_TEST].label, "kiln-test");
	kiln_buf_cleanup(&text);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A second init into the same directory is refused and changes nothing. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", dir, NULL),
			 CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "not empty"));
	assert_int_equal(access(cfg_path, F_OK), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(cfg_path);
	free(dir);
}

static void test_usage_errors(void **state)
{
	kiln_buf out, err;
	char *dir = kt_path(root, "never");

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", NULL), CLI_USAGE);
	assert_non_null(strstr(kiln_buf_cstr(&err), "--dir"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", dir,
				"--algorithm", "dsa", NULL),
			 CLI_USAGE);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown algorithm 'dsa'"));
	assert_int_not_equal(access(dir, F_OK), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln init"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(dir);
}

static void test_failed_init_cleans_up(void **state)
{
	char *fresh = kt_path(root, "fresh");
	char *empty = kt_path(root, "empty");
	kiln_buf out, err;

	(void)state;
	/* A module that does not load: the directory init created is gone again. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", fresh,
				"--hsm-module", "/nonexistent/libp11.so", NULL),
			 CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent/libp11.so"));
	assert_int_not_equal(access(fresh, F_OK), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* An empty directory that existed before: it stays, and stays empty. */
	assert_int_equal(mkdir(empty, 0700), 0);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", empty,
				"--hsm-module", "/nonexistent/libp11.so", NULL),
			 CLI_FAIL);
	assert_int_equal(access(empty, F_OK), 0);
	assert_int_equal(kt_system("test -z \"$(ls -A '%s')\"", empty), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(fresh);
	free(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_creates_deployment),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_failed_init_cleans_up),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
