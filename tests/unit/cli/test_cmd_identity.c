/* kiln identity add */
#include "support/cli_deploy.h"

#include <jansson.h>
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
				"--name", "alice", "--role", "engineer", "--out", prefix, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "identity alice (engineer)"));
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(crt, &st), 0);
	assert_int_equal(kt_system("openssl x509 -in '%s' -noout -subject | grep -q 'OU = engineer'", crt), 0);
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
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "drop",
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

/* The deployment has its two officers: a third needs their approvals over its own key. */
static void test_officer_needs_approvals(void **state)
{
	char *csr = kt_cli_csr(root, "carol", "/CN=carol");
	char *prefix = kt_path(root, "carol-id");
	char *ka = kt_path(dir, "kt-officer-a.key"), *kb = kt_path(dir, "kt-officer-b.key");
	char id[64];
	kiln_buf out, err;
	json_t *j;

	(void)state;
	/* Without the holder's CSR: refused, nothing requested. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "carol", "--role", "officer", "--out", prefix, NULL),
			 CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "give the holder's CSR with --csr"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json",
				"identity", "add", "--name", "carol", "--role", "officer", "--csr",
				csr, "--out", prefix, NULL), 0);
	j = json_loads(kiln_buf_cstr(&out), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
	(void)snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "request")));
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Not yet approved: the request cannot run. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "carol", "--role", "officer", "--csr", csr, "--out", prefix,
				"--request", id, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "has 0 of the 2 officer approvals"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", id,
				"--key", ka, NULL), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", id,
				"--key", kb, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "(2 of 2)"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Another role than the one approved: a mismatch. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "carol", "--role", "admin", "--csr", csr, "--out", prefix,
				"--request", id, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "is for identity-add"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "carol", "--role", "officer", "--csr", csr, "--out", prefix,
				"--request", id, NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "identity carol (officer)"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Once only. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "carol2", "--role", "officer", "--csr", csr, "--out", prefix,
				"--request", id, NULL), CLI_FAIL);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(csr);
	free(prefix);
	free(ka);
	free(kb);
}

static void test_list_and_revoke(void **state)
{
	char *prefix = kt_path(root, "dave");
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity", "add",
				"--name", "dave", "--role", "auditor", "--out", prefix, NULL), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity",
				"revoke", "dave", "--reason", "left", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "identity dave revoked"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity",
				"revoke", "dave", NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "identity dave is already revoked"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "identity",
				"revoke", "nobody", NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "no identity named nobody"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json",
				"identity", "list", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"name\": \"dave\""));
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"status\": \"revoked\""));
	assert_non_null(strstr(kiln_buf_cstr(&out), "\"name\": \"kt-officer-a\""));
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
		cmocka_unit_test(test_officer_needs_approvals),
		cmocka_unit_test(test_list_and_revoke),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
