/*
 * Unit tests for src/cli/cmd_revoke.c: kiln revoke (by serial, by device, a
 * station recall in --json) and kiln crl over a deployment made by kiln
 * init; every usage error and refusal (exit 2 or 1, one line on stderr); a
 * --wait with no kiln serve running times out with the revocation kept.
 */
#include "support/cli_deploy.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-revoke", &root, &dir);
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

static void fails(int want, const char *what, kiln_buf *out, kiln_buf *err, int rc)
{
	assert_int_equal(rc, want);
	assert_int_equal(kt_lines(err), 1);
	if (strstr(kiln_buf_cstr(err), what) == NULL)
		fail_msg("expected '%s' in '%s'", what, kiln_buf_cstr(err));
	kiln_buf_cleanup(out);
	kiln_buf_cleanup(err);
}

/* Issues a widget-test device; serial receives its certificate's serial. */
static void issue(const char *cn, char serial[64])
{
	char subj[64], name[64];
	char *csr, *pem;
	kiln_buf out, err;
	const char *p;

	(void)snprintf(subj, sizeof(subj), "/CN=%s", cn);
	csr = kt_cli_csr(root, cn, subj);
	(void)snprintf(name, sizeof(name), "%s.pem", cn);
	pem = kt_path(root, name);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "issue",
				"--product", "widget-test", "--csr", csr, "--out", pem, NULL), CLI_OK);
	free(pem);
	p = strstr(kiln_buf_cstr(&err), "issued certificate ");
	if (p == NULL)
		p = strstr(kiln_buf_cstr(&out), "issued certificate ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "issued certificate %63s", serial), 1);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
}

static void test_revoke_and_crl(void **state)
{
	char a[64], b[64];
	kiln_buf out, err;
	json_t *j;
	char *crl;

	(void)state;
	issue("TST-CLI-0001", a);
	issue("TST-CLI-0002", b);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke",
				"--serial", a, "--reason", "keyCompromise", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "1 certificate revoked (keyCompromise)"));
	assert_int_equal(err.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke",
				"--device", "widget-test/TST-CLI-0002", "--reason", "superseded",
				"--json", NULL), CLI_OK);
	j = json_loadb((const char *)out.ptr, out.len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "revoked"), 0)), b);
	assert_int_equal(json_integer_value(json_object_get(j, "revocation_seq")), 2);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);

	crl = kt_path(root, "out.crl");
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "crl", "--env",
				"test", "--out", crl, NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "CRL test-issuing number 1: 2 revoked"));
	assert_int_equal(access(crl, R_OK), 0);
	assert_int_equal(kt_system("openssl crl -inform DER -in '%s' -noout 2>/dev/null", crl), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "crl", "--env",
				"test", "--json", NULL), CLI_OK);
	j = json_loadb((const char *)out.ptr, out.len, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "number")), 2);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(crl);

	/* No kiln serve: --wait gives up, the revocation stays. */
	issue("TST-CLI-0003", a);
	fails(CLI_FAIL, "no kiln serve --listen-http published", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", a,
		     "--reason", "unspecified", "--wait", "1", NULL));
	fails(CLI_FAIL, "was already revoked at", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", a,
		     "--reason", "unspecified", NULL));
}

static void test_usage_and_refusals(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "revoke", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "--station NAME"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	fails(CLI_USAGE, "--reason is required", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", "01", NULL));
	fails(CLI_USAGE, "--from and --to", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--station", "s",
		     "--from", "yesterday", "--reason", "unspecified", NULL));
	fails(CLI_USAGE, "--wait takes", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", "01",
		     "--reason", "unspecified", "--wait", "0", NULL));
	fails(CLI_FAIL, "no certificate 0123", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", "0123",
		     "--reason", "unspecified", NULL));
	fails(CLI_FAIL, "unknown revocation reason", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", "0123",
		     "--reason", "oops", NULL));
	fails(CLI_FAIL, "exactly one of", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--serial", "0123",
		     "--batch", "L", "--reason", "unspecified", NULL));
	fails(CLI_FAIL, "no valid certificate matches the recall", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "revoke", "--station", "st-9",
		     "--from", "2026-01-01T00:00:00Z", "--to", "1900000000", "--reason",
		     "keyCompromise", NULL));
	fails(CLI_USAGE, "--env production or --env test", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "crl", NULL));
	fails(CLI_USAGE, "--env production or --env test", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "crl", "--env", "service", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_revoke_and_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_and_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
