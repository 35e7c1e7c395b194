/* Dispatch and option parsing of the kiln CLI. */
#include "support/support.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_parse_options_anywhere(void **state)
{
	const char *product = NULL, *pos[2];
	bool flag = false;
	const struct cli_opt opts[] = { { "product", true, &product, NULL },
					{ "flag", false, NULL, &flag },
					{ NULL, false, NULL, NULL } };
	char *argv[] = { "cmd", "first", "--product=widget", "--json", "--dir", "/x", "--flag",
			 "second", NULL };
	struct cli_common c;
	size_t n = 0;

	(void)state;
	assert_true(cli_parse(8, argv, &c, opts, pos, 2, &n));
	assert_int_equal(n, 2);
	assert_string_equal(pos[0], "first");
	assert_string_equal(pos[1], "second");
	assert_string_equal(product, "widget");
	assert_string_equal(c.dir, "/x");
	assert_true(c.json);
	assert_true(flag);
	assert_false(c.help);
	assert_non_null(strstr(c.actor, "cli:"));
}

static void test_parse_errors(void **state)
{
	const char *v = NULL, *pos[1];
	const struct cli_opt opts[] = { { "value", true, &v, NULL }, { NULL, false, NULL, NULL } };
	char *missing[] = { "cmd", "--value", NULL };
	char *unknown[] = { "cmd", "--nope", NULL };
	char *too_many[] = { "cmd", "a", "b", NULL };
	char *flag_val[] = { "cmd", "--json=yes", NULL };
	char *dashdash[] = { "cmd", "--", "--value", NULL };
	char *help[] = { "cmd", "-h", NULL };
	struct cli_common c;
	size_t n;
	int so;

	(void)state;
	/* Usage errors go to stderr; silence it for the test run. */
	so = dup(2);
	assert_non_null(freopen("/dev/null", "w", stderr));
	assert_false(cli_parse(2, missing, &c, opts, pos, 1, &n));
	assert_false(cli_parse(2, unknown, &c, opts, pos, 1, &n));
	assert_false(cli_parse(3, too_many, &c, opts, pos, 1, &n));
	assert_false(cli_parse(2, flag_val, &c, opts, pos, 1, &n));
	assert_int_equal(dup2(so, 2), 2);
	assert_true(cli_parse(3, dashdash, &c, opts, pos, 1, &n));
	assert_int_equal(n, 1);
	assert_string_equal(pos[0], "--value");
	assert_true(cli_parse(2, help, &c, opts, pos, 1, &n));
	assert_true(c.help);
}

static void test_kiln_dir_env(void **state)
{
	char *argv[] = { "cmd", NULL };
	struct cli_common c;
	size_t n;

	(void)state;
	assert_int_equal(setenv("KILN_DIR", "/from/env", 1), 0);
	assert_true(cli_parse(1, argv, &c, NULL, NULL, 0, &n));
	assert_string_equal(c.dir, "/from/env");
	assert_int_equal(unsetenv("KILN_DIR"), 0);
	assert_true(cli_parse(1, argv, &c, NULL, NULL, 0, &n));
	assert_null(c.dir);
}

static void test_main_dispatch(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--version", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "kiln 0."));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "bogus", NULL), CLI_USAGE);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown command 'bogus'"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Global options before the command reach it. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/nonexistent", "ca",
				"list", NULL),
			 CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent"));
	assert_int_equal(kt_lines(&err), 1);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_fail_messages(void **state)
{
	kiln_diag d;
	int so;

	(void)state;
	kiln_diag_clear(&d);
	so = dup(2);
	assert_non_null(freopen("/dev/null", "w", stderr));
	assert_int_equal(cli_fail(kiln_fail(KILN_ERR_IO), NULL), CLI_FAIL);
	assert_int_equal(cli_fail(kiln_diag_set(&d, KILN_ERR_IO, "x"), &d), CLI_FAIL);
	assert_int_equal(cli_usage_error("%s", "y"), CLI_USAGE);
	assert_int_equal(dup2(so, 2), 2);
	assert_int_equal(cli_print_json(NULL), CLI_FAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_options_anywhere),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_kiln_dir_env),
		cmocka_unit_test(test_main_dispatch),
		cmocka_unit_test(test_fail_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
