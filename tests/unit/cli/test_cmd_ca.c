/* kiln ca list | ca chain | ca rotate */
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

/* The request id in a --json answer (caller frees). */
static char *request_of(kiln_buf *out)
{
	json_t *j = json_loads(kiln_buf_cstr(out), 0, NULL);
	char *id;

	assert_non_null(j);
	id = strdup(json_string_value(json_object_get(j, "request")));
	json_decref(j);
	return id;
}

static void test_rotate(void **state)
{
	char key_a[1100], key_b[1100];
	kiln_buf out, err;
	char *id;

	(void)state;
	(void)snprintf(key_a, sizeof(key_a), "%s/kt-officer-a.key", dir);
	(void)snprintf(key_b, sizeof(key_b), "%s/kt-officer-b.key", dir);
	/* Usage: one of --env and --request, --algorithm only with --env. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate", NULL),
			 CLI_USAGE);
	assert_int_equal(kt_lines(&err), 1);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate", "--env",
				"test", "--request", "req-x", NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate",
				"--request", "req-x", "--algorithm", "p384", NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Refusals from the library: one line, exit 1. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate", "--env",
				"staging", NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown environment 'staging'"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A request (text), then one with --json that two officers approve and that runs. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate", "--env",
				"production", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "production-issuing-2 (generation 2, p256)"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json", "ca",
				"rotate", "--env", "test", "--algorithm", "ed25519", NULL), CLI_OK);
	id = request_of(&out);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate",
				"--request", id, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "0 of the 2 officer approvals"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, NULL, NULL, "kiln", "--dir", dir, "approve", id, "--key",
				key_a, NULL), CLI_OK);
	assert_int_equal(kt_run(kiln_cli_main, NULL, NULL, "kiln", "--dir", dir, "approve", id, "--key",
				key_b, NULL), CLI_OK);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate",
				"--request", id, NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "test-issuing-2 (generation 2, ed25519"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "rotate",
				"--request", id, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "already executed"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(id);
	/* ca list: both test issuing CAs, the old one retired-for-issuance; the chain is the new. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "list", NULL), 0);
	assert_int_equal(kt_lines(&out), 11);
	assert_non_null(strstr(kiln_buf_cstr(&out), "retired-for-issuance"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "test-ocsp-2"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "chain", "--env",
				"test", NULL), 0);
	assert_int_equal(kt_system("printf '%%s' '%s' | openssl x509 -noout -subject | grep -q "
				   "'Test Issuing CA 2'", kiln_buf_cstr(&out)), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* kiln crl --env test: a CRL for each generation. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "crl", "--env", "test",
				NULL), 0);
	assert_int_equal(kt_lines(&out), 2);
	assert_non_null(strstr(kiln_buf_cstr(&out), "CRL test-issuing number"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "CRL test-issuing-2 number"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_rotate), /* last: it changes the deployment */
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
