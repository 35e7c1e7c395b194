/*
 * Unit tests for src/cli/cmd_batch.c: kiln batch open, close, list and show
 * over a deployment made by kiln init, in text and --json, and every usage
 * error and failure (exit 2 and 1, one line on stderr).
 */
#include "support/cli_deploy.h"

#include <jansson.h>
#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-batch", &root, &dir);
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

static json_t *json_of(const kiln_buf *b)
{
	json_t *j = json_loadb((const char *)b->ptr, b->len, 0, NULL);

	if (j == NULL)
		fail_msg("not JSON: %s", kiln_buf_cstr(b));
	return j;
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string member \"%s\"", key);
	return s;
}

/* One failing run: its exit status and one line on stderr saying what. */
static void fails(int want, const char *what, kiln_buf *out, kiln_buf *err, int rc)
{
	assert_int_equal(rc, want);
	assert_int_equal(kt_lines(err), 1);
	if (strstr(kiln_buf_cstr(err), what) == NULL)
		fail_msg("expected '%s' in '%s'", what, kiln_buf_cstr(err));
	assert_int_equal(out->len, 0);
	kiln_buf_cleanup(out);
	kiln_buf_cleanup(err);
}

static void test_open_text(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget", "--lot", "LOT-T1", "--quantity", "25", NULL),
			 CLI_OK);
	assert_string_equal(kiln_buf_cstr(&out), "batch LOT-T1 opened for widget: 25 devices\n");
	assert_int_equal(err.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Shown back: a header and the lot's line. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show",
				"LOT-T1", NULL),
			 CLI_OK);
	assert_int_equal(kt_lines(&out), 2);
	assert_non_null(strstr(kiln_buf_cstr(&out), "LOT "));
	assert_non_null(strstr(kiln_buf_cstr(&out), "QUANTITY"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "LOT-T1"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "open"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "25"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_open_json(void **state)
{
	kiln_buf out, err;
	json_t *j;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product=widget-test", "--lot=LOT-J1", "--quantity=7", "--line",
				"L3", "--station", "st-9", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_string_equal(jstr(j, "lot"), "LOT-J1");
	assert_string_equal(jstr(j, "product"), "widget-test");
	assert_int_equal(json_integer_value(json_object_get(j, "quantity")), 7);
	assert_int_equal(json_integer_value(json_object_get(j, "issued")), 0);
	assert_string_equal(jstr(j, "line"), "L3");
	assert_string_equal(jstr(j, "station"), "st-9");
	assert_string_equal(jstr(j, "status"), "open");
	assert_int_equal(strncmp(jstr(j, "opened_by"), "cli:", 4), 0);
	assert_int_equal(strlen(jstr(j, "created")), 20);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* show --json: the same object. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show",
				"LOT-J1", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_true(json_is_object(j));
	assert_string_equal(jstr(j, "station"), "st-9");
	assert_string_equal(jstr(j, "line"), "L3");
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_open_usage_errors(void **state)
{
	kiln_buf out, err;

	(void)state;
	fails(CLI_USAGE, "--product, --lot and --quantity are required", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--lot", "L",
		     "--quantity", "5", NULL));
	fails(CLI_USAGE, "--product, --lot and --quantity are required", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--quantity", "5", NULL));
	fails(CLI_USAGE, "--product, --lot and --quantity are required", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", NULL));
	fails(CLI_USAGE, "--quantity must be 1 to 1000000000", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", "--quantity", "0", NULL));
	fails(CLI_USAGE, "--quantity must be 1 to 1000000000", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", "--quantity", "1000000001", NULL));
	fails(CLI_USAGE, "--quantity must be 1 to 1000000000", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", "--quantity", "12abc", NULL));
	fails(CLI_USAGE, "--quantity must be 1 to 1000000000", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", "--quantity", "-5", NULL));
	fails(CLI_USAGE, "option --quantity needs a value", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "L", "--quantity", NULL));
	fails(CLI_USAGE, "unknown option '--count'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--count",
		     "5", NULL));
	/* None of these opened anything. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show", "L",
				NULL),
			 CLI_FAIL);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_open_failures(void **state)
{
	kiln_buf out, err;

	(void)state;
	fails(CLI_FAIL, "unknown product 'nothing'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "nothing", "--lot", "LOT-X", "--quantity", "5", NULL));
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget", "--lot", "LOT-D1", "--quantity", "5", NULL),
			 CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	fails(CLI_FAIL, "LOT-D1 already exists", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "LOT-D1", "--quantity", "5", NULL));
	fails(CLI_FAIL, "invalid batch lot", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open", "--product",
		     "widget", "--lot", "LOT 1", "--quantity", "5", NULL));
	/* No deployment there. */
	fails(CLI_FAIL, "/nonexistent", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/nonexistent", "batch", "open",
		     "--product", "widget", "--lot", "LOT-N", "--quantity", "5", NULL));
}

static void test_close(void **state)
{
	kiln_buf out, err;
	json_t *j;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget", "--lot", "LOT-C1", "--quantity", "5", NULL),
			 CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close",
				"LOT-C1", NULL),
			 CLI_OK);
	assert_string_equal(kiln_buf_cstr(&out), "batch LOT-C1 closed\n");
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show",
				"LOT-C1", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_string_equal(jstr(j, "status"), "closed");
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Twice, and a lot that never was. */
	fails(CLI_FAIL, "LOT-C1 is already closed", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close", "LOT-C1",
		     NULL));
	fails(CLI_FAIL, "LOT-NEVER", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close", "LOT-NEVER",
		     NULL));
	/* --json: the lot and its new status. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget", "--lot", "LOT-C2", "--quantity", "5", NULL),
			 CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close",
				"LOT-C2", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_string_equal(jstr(j, "lot"), "LOT-C2");
	assert_string_equal(jstr(j, "status"), "closed");
	assert_int_equal(json_object_size(j), 2);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_list(void **state)
{
	kiln_buf out, err;
	json_t *j;
	size_t i;
	json_t *v;
	bool widget = false, test = false;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget", "--lot", "LOT-L1", "--quantity", "3", NULL),
			 CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget-test", "--lot", "LOT-L2", "--quantity", "4", NULL),
			 CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Text: a header, then one line per lot, with "-" for what is not set. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "list",
				NULL),
			 CLI_OK);
	assert_true(strncmp(kiln_buf_cstr(&out), "LOT ", 4) == 0);
	assert_non_null(strstr(kiln_buf_cstr(&out), "LOT-L1"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "LOT-L2"));
	assert_non_null(strstr(kiln_buf_cstr(&out), " -"));
	assert_true(kt_lines(&out) >= 3);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* JSON: an array; --product filters. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "list",
				"--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_true(json_is_array(j));
	json_array_foreach(j, i, v) {
		widget = widget || strcmp(jstr(v, "lot"), "LOT-L1") == 0;
		test = test || strcmp(jstr(v, "lot"), "LOT-L2") == 0;
	}
	assert_true(widget && test);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "list",
				"--product", "widget-test", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_true(json_array_size(j) >= 1);
	json_array_foreach(j, i, v)
		assert_string_equal(jstr(v, "product"), "widget-test");
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A product with no lots: an empty list, not an error. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "list",
				"--product", "nothing", "--json", NULL),
			 CLI_OK);
	j = json_of(&out);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_show_failures_and_usage(void **state)
{
	kiln_buf out, err;

	(void)state;
	fails(CLI_FAIL, "LOT-NONE", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show", "LOT-NONE",
		     NULL));
	fails(CLI_FAIL, "LOT-NONE", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show", "LOT-NONE",
		     "--json", NULL));
	fails(CLI_USAGE, "expected open, close LOT, list or show LOT", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", NULL));
	fails(CLI_USAGE, "expected open, close LOT, list or show LOT", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "show", NULL));
	fails(CLI_USAGE, "expected open, close LOT, list or show LOT", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close", NULL));
	fails(CLI_USAGE, "expected open, close LOT, list or show LOT", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "delete", "L", NULL));
	fails(CLI_USAGE, "expected open, close LOT, list or show LOT", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "list", "extra", NULL));
	fails(CLI_USAGE, "unexpected argument 'c'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "close", "a", "c",
		     NULL));
	/* --help: the usage on stdout, whatever else is there. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "batch", "open", "--help", NULL),
			 CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "kiln --dir DIR batch open --product ID"));
	assert_int_equal(err.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_text),
		cmocka_unit_test(test_open_json),
		cmocka_unit_test(test_open_usage_errors),
		cmocka_unit_test(test_open_failures),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_show_failures_and_usage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
