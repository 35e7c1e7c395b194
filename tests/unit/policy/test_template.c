/*
 * Subject and SAN templates (src/policy/template.c): the parse-time check and
 * kiln_policy_render with its bounds.
 */
#include "support/support.h"

#include "policy/policy_int.h"

#include <string.h>

static void check_ok(const char *tmpl)
{
	char why[160] = "";

	KT_OK(kiln_policy_tmpl_check(tmpl, why, sizeof(why)));
	assert_string_equal(why, "");
}

static void check_bad(const char *tmpl, const char *msg)
{
	char why[160] = "";

	KT_ERR(kiln_policy_tmpl_check(tmpl, why, sizeof(why)), KILN_ERR_MALFORMED);
	assert_string_equal(why, msg);
}

static void test_check(void **state)
{
	(void)state;
	check_ok("");
	check_ok("plain text");
	check_ok("{serial}");
	check_ok("{product}-{serial}@{lot}");
	check_ok("urn:kiln:{product}:{serial}");
	check_bad("{foo}", "has an unknown placeholder '{foo}' (allowed: {serial}, {product}, {lot})");
	check_bad("x{}", "has an unknown placeholder '{}' (allowed: {serial}, {product}, {lot})");
	check_bad("{Serial}",
		  "has an unknown placeholder '{Serial}' (allowed: {serial}, {product}, {lot})");
	check_bad("{serial }",
		  "has an unknown placeholder '{serial }' (allowed: {serial}, {product}, {lot})");
	check_bad("{serial", "has an unbalanced '{' at character 1");
	check_bad("ab{serial{lot}}", "has an unbalanced '{' at character 3");
	check_bad("serial}", "has an unbalanced '}' at character 7");
	check_bad("{serial}}", "has an unbalanced '}' at character 9");
	check_bad("{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
		  "has an unknown placeholder '{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...}' (allowed: "
		  "{serial}, {product}, {lot})");
}

static void test_render(void **state)
{
	struct kiln_policy_vars v = { "SN-0001", "widget", "LOT7" };
	char out[64];

	(void)state;
	KT_OK(kiln_policy_render("{serial}", &v, out, sizeof(out)));
	assert_string_equal(out, "SN-0001");
	KT_OK(kiln_policy_render("urn:kiln:{product}:{serial}", &v, out, sizeof(out)));
	assert_string_equal(out, "urn:kiln:widget:SN-0001");
	KT_OK(kiln_policy_render("{lot}/{lot}", &v, out, sizeof(out)));
	assert_string_equal(out, "LOT7/LOT7");
	KT_OK(kiln_policy_render("Example Widgets Inc", &v, out, sizeof(out)));
	assert_string_equal(out, "Example Widgets Inc");
	KT_OK(kiln_policy_render("", &v, out, sizeof(out)));
	assert_string_equal(out, "");
	/* Outside a batch the lot is empty. */
	v.lot = NULL;
	KT_OK(kiln_policy_render("[{lot}]", &v, out, sizeof(out)));
	assert_string_equal(out, "[]");
	v.lot = "";
	KT_OK(kiln_policy_render("[{lot}]", &v, out, sizeof(out)));
	assert_string_equal(out, "[]");
}

static void test_render_bounds(void **state)
{
	struct kiln_policy_vars v = { "SN-0001", "widget", NULL };
	char out[8];

	(void)state;
	/* "SN-0001" and its NUL take exactly 8 bytes. */
	KT_OK(kiln_policy_render("{serial}", &v, out, sizeof(out)));
	assert_string_equal(out, "SN-0001");
	KT_ERR(kiln_policy_render("x{serial}", &v, out, sizeof(out)), KILN_ERR_TOO_BIG);
	assert_string_equal(out, "");
	KT_ERR(kiln_policy_render("{serial}x", &v, out, sizeof(out)), KILN_ERR_TOO_BIG);
	assert_string_equal(out, "");
	KT_ERR(kiln_policy_render("12345678", &v, out, sizeof(out)), KILN_ERR_TOO_BIG);
	KT_OK(kiln_policy_render("1234567", &v, out, sizeof(out)));
	KT_OK(kiln_policy_render("", &v, out, 1));
	assert_string_equal(out, "");
	KT_ERR(kiln_policy_render("a", &v, out, 1), KILN_ERR_TOO_BIG);
	assert_string_equal(out, "");
}

static void test_render_refuses(void **state)
{
	struct kiln_policy_vars v = { "SN-0001", "widget", "L1" };
	char out[64] = "untouched";

	(void)state;
	KT_ERR(kiln_policy_render("{foo}", &v, out, sizeof(out)), KILN_ERR_ARG);
	assert_string_equal(out, "");
	KT_ERR(kiln_policy_render("{serial", &v, out, sizeof(out)), KILN_ERR_ARG);
	KT_ERR(kiln_policy_render("serial}", &v, out, sizeof(out)), KILN_ERR_ARG);
	KT_ERR(kiln_policy_render(NULL, &v, out, sizeof(out)), KILN_ERR_ARG);
	KT_ERR(kiln_policy_render("x", NULL, out, sizeof(out)), KILN_ERR_ARG);
	KT_ERR(kiln_policy_render("x", &v, NULL, sizeof(out)), KILN_ERR_ARG);
	KT_ERR(kiln_policy_render("x", &v, out, 0), KILN_ERR_ARG);
	/* A placeholder without a value, or a value with control characters. */
	v.serial = NULL;
	KT_ERR(kiln_policy_render("{serial}", &v, out, sizeof(out)), KILN_ERR_ARG);
	KT_OK(kiln_policy_render("{product}", &v, out, sizeof(out)));
	v.serial = "SN\n0001";
	KT_ERR(kiln_policy_render("{serial}", &v, out, sizeof(out)), KILN_ERR_ARG);
	v.serial = "SN-0001";
	v.lot = "L\x7f";
	KT_ERR(kiln_policy_render("{lot}", &v, out, sizeof(out)), KILN_ERR_ARG);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_bounds),
		cmocka_unit_test(test_render_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
