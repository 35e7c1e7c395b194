/* kiln device list | device show */
#include "support/cli_deploy.h"

#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	char *csr;

	(void)state;
	kt_cli_deploy("cli-device", &root, &dir);
	for (int i = 1; i <= 3; i++) {
		char name[16], subj[32];

		(void)snprintf(name, sizeof(name), "d%d", i);
		(void)snprintf(subj, sizeof(subj), "/CN=WGT-000%d", i);
		csr = kt_cli_csr(root, name, subj);
		assert_int_equal(kt_run(kiln_cli_main, NULL, NULL, "kiln", "--dir", dir, "issue",
					"--product", "widget-test", "--csr", csr,
					"--out", "/dev/null", NULL), 0);
		free(csr);
	}
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

static void test_list(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "list", NULL), 0);
	assert_int_equal(kt_lines(&out), 4);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "list",
				"--product", "widget-test", "--json", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "WGT-0002"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "WGT-0003"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "list",
				"--product", "widget", "--json", NULL), 0);
	assert_null(strstr(kiln_buf_cstr(&out), "WGT-000"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "list",
				"--limit", "1", NULL), 0);
	assert_int_equal(kt_lines(&out), 2);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "list",
				"--limit", "-1", NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_show(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "show",
				"WGT-0001", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "widget-test (policy v1)"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "CN=WGT-0001"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "show",
				"widget-test/WGT-0003", "--json", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"status\": \"valid\""));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "show",
				"1", NULL), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", "show",
				"NOPE", NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "device", NULL),
			 CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_show),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
