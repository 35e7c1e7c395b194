/* kiln ca list | ca chain */
#include "support/cli_deploy.h"

#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-ca", &root, &dir);
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
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "list", NULL), 0);
	assert_int_equal(kt_lines(&out), 9); /* header + 6 CAs + 2 delegated OCSP signers */
	assert_non_null(strstr(kiln_buf_cstr(&out), "service-issuing"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "kiln-test"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "list",
				"--json", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"role\": \"root\""));
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"key_label\": \"production-issuing\""));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_chain(void **state)
{
	static const char *const envs[] = { "production", "test", "service" };

	(void)state;
	for (int i = 0; i < 3; i++) {
		kiln_buf out, err;
		const char *p;
		int n = 0;

		assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "chain",
					"--env", envs[i], NULL), 0);
		for (p = kiln_buf_cstr(&out); (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++)
			n++;
		assert_int_equal(n, 2);
		kiln_buf_cleanup(&out);
		kiln_buf_cleanup(&err);
	}
}

static void test_errors(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "chain",
				"--env", "staging", NULL), CLI_USAGE);
	assert_non_null(strstr(kiln_buf_cstr(&err), "--env must be"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "chain", NULL),
			 CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", NULL), CLI_USAGE);
	assert_int_equal(kt_lines(&err), 1);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "ca", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln --dir DIR ca list"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
