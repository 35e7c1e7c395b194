/* kiln issue */
#include "support/cli_deploy.h"

#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-issue", &root, &dir);
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

static void test_issue_to_file_and_stdout(void **state)
{
	char *csr = kt_cli_csr(root, "a", "/CN=WGT-0001");
	char *out_path = kt_path(root, "a.pem");
	kiln_buf out, err, chain;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget-test", "--csr", csr, "--out", out_path, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "issued certificate"));
	kt_read_file(out_path, &chain);
	assert_non_null(strstr(kiln_buf_cstr(&chain), "BEGIN CERTIFICATE"));
	kiln_buf_cleanup(&chain);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
	csr = kt_cli_csr(root, "b", "/CN=WGT-0002");
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget-test", "--csr", csr, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "-----BEGIN CERTIFICATE-----"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
	csr = kt_cli_csr(root, "c", "/CN=whatever");
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget-test", "--csr", csr, "--device-serial", "TST-0003", "--json",
				NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"product\": \"widget-test\""));
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"chain_pem\""));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
	free(out_path);
}

static void test_refusals(void **state)
{
	char *csr = kt_cli_csr(root, "r", "/CN=WGT-0009/O=Evil");
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget-test", "--csr", csr, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "O=Evil"));
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A product whose policy requires attestation is provisioned by kiln serve, not issued here. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget", "--csr", csr, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "requires dice attestation"));
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"gizmo", "--csr", csr, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown product 'gizmo'"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--product",
				"widget-test", "--csr", "/nonexistent.csr", NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent.csr"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue", "--csr",
				csr, NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "issue", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln --dir DIR issue"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_to_file_and_stdout),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
