/*
 * Device serial patterns (src/policy/serial.c): the shape checks that run
 * before regcomp (anchors, top-level '|', back-references, repetition counts
 * and their expansion), regcomp's own errors, and serial matching.
 */
#include "support/support.h"

#include "policy/policy_int.h"

#include <stdio.h>
#include <string.h>

static void ok_pattern(const char *pattern)
{
	char why[200] = "";
	void *re = NULL;
	kiln_result r = kiln_policy_regex_compile(pattern, &re, why, sizeof(why));

	if (!kiln_is_ok(r))
		print_error("%s: %s\n", pattern, why);
	KT_OK(r);
	assert_non_null(re);
	kiln_policy_regex_free(re);
}

static void bad_pattern(const char *pattern, const char *msg)
{
	char why[200] = "";
	void *re = (void *)1;
	kiln_result r = kiln_policy_regex_compile(pattern, &re, why, sizeof(why));

	if (r.code != KILN_ERR_MALFORMED)
		print_error("%s: accepted (%d)\n", pattern, r.code);
	kiln_policy_regex_free(r.code == KILN_OK ? re : NULL);
	re = (void *)1;
	KT_ERR(kiln_policy_regex_compile(pattern, &re, why, sizeof(why)), KILN_ERR_MALFORMED);
	assert_null(re);
	if (strcmp(why, msg) != 0)
		print_error("%s: got '%s'\n", pattern, why);
	assert_string_equal(why, msg);
}

#define ANCHORED "must be anchored: start with ^ and end with $"
#define COMPLEX "is too complex: its repetitions expand beyond 4096 elements"

static void test_good_patterns(void **state)
{
	(void)state;
	ok_pattern("^[A-Z0-9][A-Z0-9-]{3,63}$");
	ok_pattern("^(A|B)[0-9]+$");
	ok_pattern("^[[:alnum:]]{1,127}$");
	ok_pattern("^a\\\\$");         /* an escaped backslash, then the anchor */
	ok_pattern("^[]a]$");          /* ']' first in a bracket is literal */
	ok_pattern("^[^]a|]+$");       /* so is '|' inside brackets */
	ok_pattern("^a\\|b$");         /* and escaped */
	ok_pattern("^x{,5}y{2,}z{3}$");
	ok_pattern("^a{255}$");
	ok_pattern("^(a{60}){60}$");
	ok_pattern("^$");
	ok_pattern("^[[.-.][=a=]x]$");
	ok_pattern("^a{,}$"); /* glibc: {0,}, no copies */
}

static void test_shape(void **state)
{
	char deep[128];
	size_t n = 0;

	(void)state;
	bad_pattern("", ANCHORED);
	bad_pattern("$", ANCHORED);
	bad_pattern("abc", ANCHORED);
	bad_pattern("^abc", ANCHORED);
	bad_pattern("abc$", ANCHORED);
	bad_pattern("^abc\\$", ANCHORED);
	bad_pattern("^a|b$",
		    "must not use '|' outside parentheses: it splits the anchors; write ^(A|B)$");
	bad_pattern("^(a)|(b)$",
		    "must not use '|' outside parentheses: it splits the anchors; write ^(A|B)$");
	bad_pattern("^(a)\\1$", "must not use back-references (\\1 ... \\9)");
	bad_pattern("^a{256}$", "uses a repetition count above 255");
	bad_pattern("^a{1,256}$", "uses a repetition count above 255");
	bad_pattern("^a{256,}$", "uses a repetition count above 255");
	bad_pattern("^a{,99999999999}$", "uses a repetition count above 255");
	bad_pattern("^(a{100}){100}$", COMPLEX);
	bad_pattern("^(a{64}){64}$", COMPLEX);
	bad_pattern("^((a{16}){16}){16}$", COMPLEX);
	bad_pattern("^(a{,200}){,200}$", COMPLEX);
	bad_pattern("^(a{,200}){200,}$", COMPLEX);
	bad_pattern("^([ab]+){255}(x{4}){255}(y{8}){255}$", COMPLEX);
	/* Repetitions of repetitions through + and * count too. */
	bad_pattern("^((((((((((((a{8})+)+)+)+)+)+)+)+)+)+)+)$", COMPLEX);
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "^");
	for (int i = 0; i < 33; i++)
		deep[n++] = '(';
	deep[n++] = 'a';
	for (int i = 0; i < 33; i++)
		deep[n++] = ')';
	deep[n++] = '$';
	deep[n] = '\0';
	bad_pattern(deep, "nests groups too deeply");
	/* 32 levels are fine. */
	memmove(deep + 1, deep + 2, strlen(deep + 2) + 1);
	deep[strlen(deep) - 2] = '$';
	deep[strlen(deep) - 1] = '\0';
	ok_pattern(deep);
}

static void test_regcomp_errors(void **state)
{
	(void)state;
	bad_pattern("^(a$", "is not a valid POSIX extended regex: Unmatched ( or \\(");
	bad_pattern("^[a$", "is not a valid POSIX extended regex: Unmatched [, [^, [:, [., or [=");
	bad_pattern("^a{2,1}$", "is not a valid POSIX extended regex: Invalid content of \\{\\}");
	bad_pattern("^[[:nope:]]$", "is not a valid POSIX extended regex: Invalid character class name");
	bad_pattern("^*a$", "is not a valid POSIX extended regex: Invalid preceding regular expression");
	/* Not intervals or classes the shape check understands: regcomp decides. */
	bad_pattern("^a{x}$", "is not a valid POSIX extended regex: Invalid content of \\{\\}");
	bad_pattern("^a{$", "is not a valid POSIX extended regex: Unmatched \\{");
	bad_pattern("^[[:alpha$", "is not a valid POSIX extended regex: Unmatched [, [^, [:, [., or [=");
}

static void test_why_is_bounded(void **state)
{
	char why[8];
	void *re = NULL;

	(void)state;
	KT_ERR(kiln_policy_regex_compile("abc", &re, why, sizeof(why)), KILN_ERR_MALFORMED);
	assert_string_equal(why, "must be");
	KT_ERR(kiln_policy_regex_compile("^(a$", &re, why, sizeof(why)), KILN_ERR_MALFORMED);
	assert_string_equal(why, "is not ");
	kiln_policy_regex_free(NULL);
}

static void test_serial_ok(void **state)
{
	kiln_policy p;
	char why[200], serial[130];

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_false(kiln_policy_serial_ok(&p, "ABCD")); /* no compiled pattern */
	KT_OK(kiln_policy_regex_compile("^[A-Z0-9][A-Z0-9-]{3,63}$", &p.priv, why, sizeof(why)));
	assert_true(kiln_policy_serial_ok(&p, "WX-0001"));
	assert_true(kiln_policy_serial_ok(&p, "ABCD"));
	assert_false(kiln_policy_serial_ok(&p, "-ABC"));
	assert_false(kiln_policy_serial_ok(&p, "ABC"));
	assert_false(kiln_policy_serial_ok(&p, "WX-0001\n"));
	assert_false(kiln_policy_serial_ok(&p, "wx-0001"));
	assert_false(kiln_policy_serial_ok(&p, "WX 0001"));
	memset(serial, 'A', 64);
	serial[64] = '\0';
	assert_true(kiln_policy_serial_ok(&p, serial));
	serial[64] = 'A';
	serial[65] = '\0';
	assert_false(kiln_policy_serial_ok(&p, serial));
	kiln_policy_regex_free(p.priv);

	/* The length cap holds even when the pattern would accept more. */
	KT_OK(kiln_policy_regex_compile("^[A]+$", &p.priv, why, sizeof(why)));
	memset(serial, 'A', sizeof(serial));
	serial[KILN_POLICY_SERIAL_MAX] = '\0';
	assert_true(kiln_policy_serial_ok(&p, serial));
	serial[KILN_POLICY_SERIAL_MAX] = 'A';
	serial[KILN_POLICY_SERIAL_MAX + 1] = '\0';
	assert_false(kiln_policy_serial_ok(&p, serial));
	kiln_policy_regex_free(p.priv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_patterns),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_regcomp_errors),
		cmocka_unit_test(test_why_is_bounded),
		cmocka_unit_test(test_serial_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
