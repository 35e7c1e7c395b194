/* kiln identity add */
#include "support/cli_deploy.h"

#include <string.h>
#include <sys/stat.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-identity", &root, &dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_rmrf(root);
	free(root);
	free(dir);
	return 0;
}

static void test_add(void **state)
{
	char *prefix = kt_path(root, "alice");
	char *key = kt_path(root, "alice.key"), *crt = kt_path(root, "alice.crt");
	kiln_buf out, err;
	struct stat st;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "alice", "--role", "officer", "--out", prefix, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "identity alice (officer)"));
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(crt, &st), 0);
	assert_int_equal(kt_system("openssl x509 -in '%s' -noout -subject | grep -q 'OU = officer'", crt), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(prefix);
	free(key);
	free(crt);
}

static void test_add_with_csr_and_env(void **state)
{
	char *csr = kt_cli_csr(root, "st1", "/CN=st1");
	char *prefix = kt_path(root, "st1-id");
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "st1", "--role", "station", "--env", "test", "--csr", csr,
				"--out", prefix, "--json", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"role\": \"station\""));
	assert_null(strstr(kiln_buf_cstr(&out), "\"key\""));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
	free(prefix);
}

static void test_errors(void **state)
{
	char *prefix = kt_path(root, "bad");
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "x", "--role", "admin", "--env", "service", "--out", prefix,
				NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "x", "--out", prefix, NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "list",
				NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "x", "--role", "king", "--out", prefix, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown role 'king'"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(prefix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_add_with_csr_and_env),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
