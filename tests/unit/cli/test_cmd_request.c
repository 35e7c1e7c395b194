/* kiln approve, kiln request list | show */
#include "support/cli_deploy.h"

#include <jansson.h>
#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-request", &root, &dir);
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

/* A pending widget-test activation requested by officer a; its id into id. */
static void request_as_a(char *id, size_t cap)
{
	char *ka = kt_path(dir, "kt-officer-a.key");
	kiln_buf out, err;
	json_t *j;

	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json", "policy",
				"add", KILN_SOURCE_DIR "/examples/policies/widget-test.yaml", "--key",
				ka, NULL), 0);
	j = json_loads(kiln_buf_cstr(&out), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
	(void)snprintf(id, cap, "%s", json_string_value(json_object_get(j, "request")));
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(ka);
}

static void test_approve_and_show(void **state)
{
	char *ka = kt_path(dir, "kt-officer-a.key"), *kb = kt_path(dir, "kt-officer-b.key");
	char id[64];
	kiln_buf out, err;
	json_t *j;

	(void)state;
	request_as_a(id, sizeof(id));
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", id,
				"--key", ka, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "the requester's own approval does not count"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json",
				"approve", id, "--key", kb, NULL), 0);
	j = json_loads(kiln_buf_cstr(&out), 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "approvals")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "approver")), "kt-officer-b");
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "request", "show",
				id, NULL), 0);
	j = json_loads(kiln_buf_cstr(&out), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
	assert_string_equal(json_string_value(json_object_get(j, "requester")), "kt-officer-a");
	assert_int_equal(json_array_size(json_object_get(j, "approved_by")), 1);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "request", "list",
				NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), id));
	assert_non_null(strstr(kiln_buf_cstr(&out), "1/2"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(ka);
	free(kb);
}

static void test_errors(void **state)
{
	char *bad = kt_path(root, "not-a-key.pem"), *kb = kt_path(dir, "kt-officer-b.key");
	kiln_buf out, err;

	(void)state;
	kt_write_file(bad, "hello\n", 6);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", "req-1",
				NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", "req-1",
				"--key", bad, NULL), CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "not a PEM private key"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve",
				"req-nope", "--key", kb, NULL), CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "no request req-nope"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "request", "show",
				"req-nope", NULL), CLI_FAIL);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "request", "drop",
				NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "approve", "--help", NULL), 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "request", "--help", NULL), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	free(bad);
	free(kb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_approve_and_show),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
