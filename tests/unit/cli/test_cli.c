/*
 * Unit tests for src/cli/cli.c: dispatch of the kiln commands (global options
 * before the command, --help, --version, unknown commands). Option parsing
 * itself is tested with src/cli/args.c, in test_args.c.
 */
#include "support/support.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_global_options(void **state)
{
	kiln_buf out, err;

	(void)state;
	/* -h is --help. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "-h", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "commands:"));
	assert_int_equal(err.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Options but no command: the usage, on stderr. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/x", "--json", NULL),
			 CLI_USAGE);
	assert_non_null(strstr(kiln_buf_cstr(&err), "usage: kiln"));
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", NULL), CLI_USAGE);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A global option the command does not know is the command's usage error. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--bogus", "batch", "list", NULL),
			 CLI_USAGE);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "unknown option '--bogus'"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* --json and --dir before the command, in any order, reach it. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--json", "--dir", "/nonexistent",
				"batch", "list", NULL),
			 CLI_FAIL);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* A command's own --help. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/x", "batch", "--help",
				NULL),
			 CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln --dir DIR batch"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_main_dispatch),
		cmocka_unit_test(test_global_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
