/* kiln policy add | policy list */
#include "support/cli_deploy.h"

#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-policy", &root, &dir);
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

static void test_add_and_list(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "add",
				KILN_SOURCE_DIR "/examples/policies/widget.yaml", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "policy widget v2 (production) added, pending"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "activation waits for 2 officer approvals"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "list",
				NULL), 0);
	assert_int_equal(kt_lines(&out), 4);
	assert_non_null(strstr(kiln_buf_cstr(&out), "pending"));
	assert_null(strstr(kiln_buf_cstr(&out), "superseded"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* v3, approved by two officers, takes effect (v2 stays as it was asked: pending -> superseded). */
	kt_cli_policy_add(dir, KILN_SOURCE_DIR "/examples/policies/widget.yaml");
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "list",
				NULL), 0);
	assert_int_equal(kt_lines(&out), 5);
	assert_non_null(strstr(kiln_buf_cstr(&out), "superseded"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "list",
				"--json", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"product\": \"widget-test\""));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_add_errors(void **state)
{
	char *bad = kt_path(root, "bad.yaml"), *big = kt_path(root, "big.yaml");
	kiln_buf out, err;

	(void)state;
	kt_write_file(bad, "product: x\nenvironment: moon\n", 29);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "add",
				bad, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "bad.yaml:2:"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_system("head -c 70000 /dev/zero | tr '\\0' '#' > '%s'", big), 0);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "add",
				big, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "65536-byte limit"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "add",
				"/nonexistent.yaml", NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent.yaml"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "policy", "add",
				NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(bad);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_list),
		cmocka_unit_test(test_add_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
