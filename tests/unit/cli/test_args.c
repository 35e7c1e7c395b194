/*
 * Unit tests for src/cli/args.c: option parsing shared by kiln and
 * kiln-device (options anywhere, inline values, "--", positional limits,
 * $KILN_DIR, the actor), its usage errors (one line on stderr each), and the
 * output helpers (cli_fail, cli_usage_error, cli_print_json).
 */
#include "support/support.h"

#include "cli/args.h"

#include <errno.h>
#include <jansson.h>
#include <pwd.h>
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

static void test_inline_values_and_repeats(void **state)
{
	const char *product = NULL, *lot = NULL, *pos[2];
	const struct cli_opt opts[] = { { "product", true, &product, NULL },
					{ "lot", true, &lot, NULL },
					{ NULL, false, NULL, NULL } };
	char *argv[] = { "cmd", "--product=", "--lot", "A", "--lot=B", "-", NULL };
	char *eq[] = { "cmd", "--product=a=b", NULL };
	char *dashes[] = { "cmd", "--product", "--json", NULL };
	struct cli_common c;
	size_t n = 0;

	(void)state;
	assert_true(cli_parse(6, argv, &c, opts, pos, 2, &n));
	/* "--name=" is an empty value; the last of a repeated option wins; "-" is positional. */
	assert_non_null(product);
	assert_string_equal(product, "");
	assert_string_equal(lot, "B");
	assert_int_equal(n, 1);
	assert_string_equal(pos[0], "-");
	/* Only the first '=' separates. */
	assert_true(cli_parse(2, eq, &c, opts, pos, 2, &n));
	assert_string_equal(product, "a=b");
	/* A separate value is taken as it is, even when it looks like an option. */
	assert_true(cli_parse(3, dashes, &c, opts, pos, 2, &n));
	assert_string_equal(product, "--json");
	assert_false(c.json);
}

static void test_common_options(void **state)
{
	char *argv[] = { "cmd", "--verbose", "--help", "--dir=/d", NULL };
	char *none[] = { "cmd", NULL };
	struct passwd *pw = getpwuid(geteuid());
	char want[96];
	struct cli_common c;
	size_t n;

	(void)state;
	assert_true(cli_parse(4, argv, &c, NULL, NULL, 0, &n));
	assert_true(c.verbose);
	assert_true(c.help);
	assert_false(c.json);
	assert_string_equal(c.dir, "/d");
	/* The actor recorded in events: who ran the command. */
	assert_non_null(pw);
	(void)snprintf(want, sizeof(want), "cli:%.80s", pw->pw_name);
	assert_string_equal(c.actor, want);
	/* Every parse starts afresh. */
	assert_true(cli_parse(1, none, &c, NULL, NULL, 0, &n));
	assert_false(c.verbose);
	assert_false(c.help);
	assert_int_equal(n, 0);
}

/* A command that only parses, for kt_run: 0 when the arguments parse, 2 when not. */
static const char *got_value;

static int parse_main(int argc, char **argv)
{
	const char *pos[1];
	const struct cli_opt opts[] = { { "value", true, &got_value, NULL },
					{ NULL, false, NULL, NULL } };
	struct cli_common c;
	size_t n;

	return cli_parse(argc, argv, &c, opts, pos, 1, &n) ? CLI_OK : CLI_USAGE;
}

static void usage_error(const char *expect, ...)
{
	char *argv[8];
	int argc = 0, rc;
	kiln_buf out, err;
	const char *a;
	va_list ap;

	va_start(ap, expect);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 7)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	/* kt_run takes its arguments one by one: up to four here. */
	switch (argc) {
	case 2:
		rc = kt_run(parse_main, &out, &err, argv[0], argv[1], NULL);
		break;
	case 3:
		rc = kt_run(parse_main, &out, &err, argv[0], argv[1], argv[2], NULL);
		break;
	default:
		rc = kt_run(parse_main, &out, &err, argv[0], argv[1], argv[2], argv[3], NULL);
		break;
	}
	assert_int_equal(rc, CLI_USAGE);
	assert_int_equal(out.len, 0);
	assert_int_equal(kt_lines(&err), 1);
	if (strstr(kiln_buf_cstr(&err), expect) == NULL)
		fail_msg("expected '%s' in '%s'", expect, kiln_buf_cstr(&err));
	/* The line names the program that failed. */
	assert_true(strncmp(kiln_buf_cstr(&err), program_invocation_short_name,
			    strlen(program_invocation_short_name)) == 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_usage_error_messages(void **state)
{
	(void)state;
	usage_error("cmd: option --value needs a value", "cmd", "--value", NULL);
	usage_error("cmd: unknown option '--nope'; see kiln cmd --help", "cmd", "--nope", NULL);
	usage_error("unknown option '--valu'", "cmd", "--valu", NULL);
	usage_error("unknown option '--values=1'", "cmd", "--values=1", NULL);
	usage_error("unknown option '-x'", "cmd", "-x", NULL);
	usage_error("option --json takes no value", "cmd", "--json=yes", NULL);
	usage_error("cmd: unexpected argument 'b'", "cmd", "a", "b", NULL);
	usage_error("option --dir needs a value", "cmd", "a", "--dir", NULL);
}

static int print_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_print_json(json_pack("{s:i,s:s,s:[i]}", "b", 1, "a", "x", "c", 2));
}

static int fail_main(int argc, char **argv)
{
	kiln_diag d;

	(void)argc;
	kiln_diag_clear(&d);
	if (strcmp(argv[1], "diag") == 0)
		return cli_fail(kiln_diag_set(&d, KILN_ERR_IO, "cannot read %s", "x.yaml"), &d);
	if (strcmp(argv[1], "plain") == 0)
		return cli_fail(kiln_fail(KILN_ERR_NOT_FOUND), NULL);
	return cli_usage_error("%s: %d", "usage", 42);
}

static void test_output_helpers(void **state)
{
	kiln_buf out, err;
	char want[128];

	(void)state;
	/* JSON output: indented, keys sorted, one trailing newline. */
	assert_int_equal(kt_run(print_main, &out, &err, "p", NULL), CLI_OK);
	assert_string_equal(kiln_buf_cstr(&out), "{\n  \"a\": \"x\",\n  \"b\": 1,\n  \"c\": [\n    2\n  ]\n}\n");
	assert_int_equal(err.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* Failures: one line, the program's name, the diag's text or else the table's message. */
	assert_int_equal(kt_run(fail_main, &out, &err, "f", "diag", NULL), CLI_FAIL);
	(void)snprintf(want, sizeof(want), "%s: cannot read x.yaml\n", program_invocation_short_name);
	assert_string_equal(kiln_buf_cstr(&err), want);
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(fail_main, &out, &err, "f", "plain", NULL), CLI_FAIL);
	(void)snprintf(want, sizeof(want), "%s: %s\n", program_invocation_short_name,
		       kiln_err_info(KILN_ERR_NOT_FOUND)->message);
	assert_string_equal(kiln_buf_cstr(&err), want);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(fail_main, &out, &err, "f", "usage", NULL), CLI_USAGE);
	(void)snprintf(want, sizeof(want), "%s: usage: 42\n", program_invocation_short_name);
	assert_string_equal(kiln_buf_cstr(&err), want);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_options_anywhere),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_kiln_dir_env),
		cmocka_unit_test(test_fail_messages),
		cmocka_unit_test(test_inline_values_and_repeats),
		cmocka_unit_test(test_common_options),
		cmocka_unit_test(test_usage_error_messages),
		cmocka_unit_test(test_output_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
