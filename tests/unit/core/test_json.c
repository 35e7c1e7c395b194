/* Unit tests for src/core/json.c: capped parsing, dumping, typed member access. */
#include "support/support.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A non-NULL pointer that must be replaced by NULL on failure. */
static char sentinel_byte;
#define SENTINEL ((json_t *)(void *)&sentinel_byte)

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
}

static kiln_result parse_str(const char *s, json_t **out, kiln_diag *d)
{
	return kiln_json_parse(kiln_slice_str(s), 4096, out, d);
}

static void test_parse_ok_and_dump(void **state)
{
	json_t *j = NULL;
	kiln_buf b;

	(void)state;
	KT_OK(parse_str("{ \"z\": 1, \"a\": [true, null, \"s\"], \"m\": {\"k\": 2.5} }", &j, NULL));
	assert_non_null(j);
	assert_true(json_is_object(j));
	kiln_buf_init(&b, 1024);
	KT_OK(kiln_json_dump(j, &b));
	/* compact and key-sorted */
	assert_string_equal(kiln_buf_cstr(&b), "{\"a\":[true,null,\"s\"],\"m\":{\"k\":2.5},\"z\":1}");
	/* dump appends */
	KT_OK(kiln_json_dump(j, &b));
	assert_int_equal(b.len, 2 * strlen("{\"a\":[true,null,\"s\"],\"m\":{\"k\":2.5},\"z\":1}"));
	kiln_buf_cleanup(&b);
	json_decref(j);
	/* a top-level array is fine */
	KT_OK(parse_str("[]", &j, NULL));
	assert_true(json_is_array(j));
	json_decref(j);
}

static void test_dump_ascii_and_cap(void **state)
{
	json_t *j = NULL;
	kiln_buf b;

	(void)state;
	KT_OK(parse_str("{\"k\":\"caf\xc3\xa9\"}", &j, NULL));
	kiln_buf_init(&b, 1024);
	KT_OK(kiln_json_dump(j, &b));
	assert_string_equal(kiln_buf_cstr(&b), "{\"k\":\"caf\\u00E9\"}");
	kiln_buf_cleanup(&b);
	/* the output buffer's ceiling applies */
	kiln_buf_init(&b, 5);
	KT_ERR(kiln_json_dump(j, &b), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	json_decref(j);
}

static void test_parse_empty(void **state)
{
	json_t *j = SENTINEL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_json_parse(kiln_slice_of(NULL, 0), 100, &j, &d), KILN_ERR_MALFORMED);
	assert_null(j);
	assert_one_line(&d);
}

static void test_parse_malformed_line_column(void **state)
{
	json_t *j = SENTINEL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	/* the missing ':' is on line 3, column 7 */
	KT_ERR(parse_str("{\n  \"a\": 1,\n  \"b\" 2\n}", &j, &d), KILN_ERR_MALFORMED);
	assert_null(j);
	assert_int_equal(d.code, KILN_ERR_MALFORMED);
	assert_non_null(strstr(d.text, "line 3 column 7"));
	assert_one_line(&d);
}

static void test_parse_malformed_variants(void **state)
{
	static const char *const bad[] = {
		"{",                      /* truncated */
		"{\"a\":1,}",             /* trailing comma */
		"{} x",                   /* trailing text */
		"{}{}",                   /* two documents */
		"1",                      /* scalar at top level */
		"\"str\"",                /* scalar at top level */
		"{'a':1}",                /* single quotes */
		"{\"a\":\"x\ny\"}",       /* raw newline in a string */
		"{\"a\":\"\xff\"}",       /* invalid UTF-8 */
		"{\"a\":\"\xc3\"}",       /* truncated UTF-8 */
		"{\"a\":NaN}",            /* not JSON */
		"{\"a\":1e999999}",       /* real overflow */
		"{\"a\":\"x\\u0000y\"}",  /* NUL inside a string */
		"{\"a\\u0000b\":1}",      /* NUL inside a key */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = SENTINEL;
		kiln_diag d;

		kiln_diag_clear(&d);
		KT_ERR(parse_str(bad[i], &j, &d), KILN_ERR_MALFORMED);
		assert_null(j);
		assert_one_line(&d);
		assert_non_null(strstr(d.text, "line "));
	}
}

static void test_parse_embedded_nul_byte(void **state)
{
	static const char in[] = "{\"a\"\0:1}";
	json_t *j = SENTINEL;

	(void)state;
	KT_ERR(kiln_json_parse(kiln_slice_of(in, sizeof(in) - 1), 100, &j, NULL), KILN_ERR_MALFORMED);
	assert_null(j);
}

static void test_parse_too_big(void **state)
{
	const char *s = "{\"a\":\"0123456789\"}";
	size_t n = strlen(s);
	json_t *j = SENTINEL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_json_parse(kiln_slice_of(s, n), n - 1, &j, &d), KILN_ERR_TOO_BIG);
	assert_null(j);
	assert_int_equal(d.code, KILN_ERR_TOO_BIG);
	assert_one_line(&d);
	KT_OK(kiln_json_parse(kiln_slice_of(s, n), n, &j, NULL)); /* exactly max */
	json_decref(j);
	/* the cap is checked before parsing: malformed but too big is TOO_BIG */
	KT_ERR(kiln_json_parse(kiln_slice_str("{{{{{{{{"), 4, &j, NULL), KILN_ERR_TOO_BIG);
}

/* n nested arrays (open, then close), or objects {"k":...} when objects is true. */
static char *nested(size_t n, bool objects)
{
	size_t cap = n * 8 + 8, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		if (objects) {
			memcpy(s + len, "{\"k\":", 5);
			len += 5;
		} else {
			s[len++] = '[';
		}
	}
	if (objects) {
		s[len++] = '1';
	}
	for (size_t i = 0; i < n; i++)
		s[len++] = objects ? '}' : ']';
	s[len] = '\0';
	return s;
}

static void expect_depth(size_t n, bool objects, kiln_err want)
{
	char *s = nested(n, objects);
	json_t *j = SENTINEL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_json_parse(kiln_slice_str(s), 1u << 20, &j, &d), want);
	if (want == KILN_OK) {
		assert_non_null(j);
		json_decref(j);
	} else {
		assert_null(j);
		assert_one_line(&d);
	}
	free(s);
}

static void test_parse_depth(void **state)
{
	(void)state;
	expect_depth(1, false, KILN_OK);
	expect_depth(KILN_JSON_MAX_DEPTH, false, KILN_OK);
	expect_depth(KILN_JSON_MAX_DEPTH + 1, false, KILN_ERR_MALFORMED);
	expect_depth(KILN_JSON_MAX_DEPTH + 2, false, KILN_ERR_MALFORMED);
	expect_depth(KILN_JSON_MAX_DEPTH, true, KILN_OK);
	expect_depth(KILN_JSON_MAX_DEPTH + 1, true, KILN_ERR_MALFORMED);
	/* far deeper than jansson's own limit, and just below it */
	expect_depth(2000, false, KILN_ERR_MALFORMED);
	expect_depth(5000, false, KILN_ERR_MALFORMED);
}

static void test_parse_depth_message(void **state)
{
	char *s = nested(KILN_JSON_MAX_DEPTH + 1, false);
	json_t *j;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_json_parse(kiln_slice_str(s), 1024, &j, &d), KILN_ERR_MALFORMED);
	assert_non_null(strstr(d.text, "deeper than 16"));
	free(s);
}

/* Depth counts along the deepest branch, not just the first one. */
static void test_parse_depth_second_branch(void **state)
{
	char *deep = nested(KILN_JSON_MAX_DEPTH, false);
	char *doc = malloc(strlen(deep) + 32);
	json_t *j;

	(void)state;
	assert_non_null(doc);
	/* [1, <16 deep>] is 17 deep */
	(void)snprintf(doc, strlen(deep) + 32, "[1,%s]", deep);
	KT_ERR(kiln_json_parse(kiln_slice_str(doc), 1024, &j, NULL), KILN_ERR_MALFORMED);
	/* {"a":1,"b":<15 deep>} is 16 deep */
	free(deep);
	deep = nested(KILN_JSON_MAX_DEPTH - 1, false);
	(void)snprintf(doc, strlen(deep) + 32, "{\"a\":1,\"b\":%s}", deep);
	KT_OK(kiln_json_parse(kiln_slice_str(doc), 1024, &j, NULL));
	json_decref(j);
	free(deep);
	free(doc);
}

static void test_parse_duplicate_keys(void **state)
{
	json_t *j = SENTINEL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(parse_str("{\"a\":1,\"a\":2}", &j, &d), KILN_ERR_MALFORMED);
	assert_null(j);
	assert_non_null(strstr(d.text, "duplicate"));
	assert_one_line(&d);
	KT_ERR(parse_str("{\"x\":{\"a\":1,\"b\":2,\"a\":1}}", &j, NULL), KILN_ERR_MALFORMED);
	/* the same key in different objects is fine */
	KT_OK(parse_str("{\"x\":{\"a\":1},\"y\":{\"a\":1}}", &j, NULL));
	json_decref(j);
}

static void test_get_str_ok(void **state)
{
	json_t *j;
	const char *s = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(parse_str("{\"name\":\"abc\",\"empty\":\"\"}", &j, NULL));
	KT_OK(kiln_json_get_str(j, "name", 3, true, &s, &d)); /* exactly max_len */
	assert_string_equal(s, "abc");
	/* borrowed from j */
	assert_ptr_equal(s, json_string_value(json_object_get(j, "name")));
	KT_OK(kiln_json_get_str(j, "empty", 0, true, &s, &d));
	assert_string_equal(s, "");
	assert_int_equal(d.code, KILN_OK);
	json_decref(j);
}

static void test_get_str_missing(void **state)
{
	json_t *j;
	const char *s = "sentinel";
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(parse_str("{\"name\":\"abc\"}", &j, NULL));
	KT_OK(kiln_json_get_str(j, "other", 10, false, &s, &d));
	assert_null(s);
	assert_int_equal(d.code, KILN_OK);
	s = "sentinel";
	KT_ERR(kiln_json_get_str(j, "other", 10, true, &s, &d), KILN_ERR_NOT_FOUND);
	assert_null(s);
	assert_int_equal(d.code, KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, "other"));
	assert_one_line(&d);
	/* keys are case-sensitive */
	KT_ERR(kiln_json_get_str(j, "Name", 10, true, &s, NULL), KILN_ERR_NOT_FOUND);
	json_decref(j);
	/* not an object: every member is missing */
	KT_OK(parse_str("[\"name\"]", &j, NULL));
	KT_ERR(kiln_json_get_str(j, "name", 10, true, &s, NULL), KILN_ERR_NOT_FOUND);
	KT_OK(kiln_json_get_str(j, "name", 10, false, &s, NULL));
	assert_null(s);
	json_decref(j);
	KT_ERR(kiln_json_get_str(NULL, "name", 10, true, &s, NULL), KILN_ERR_NOT_FOUND);
}

static void test_get_str_wrong_type(void **state)
{
	static const char *const keys[] = { "n", "b", "z", "o", "a", "r" };
	json_t *j;

	(void)state;
	KT_OK(parse_str("{\"n\":1,\"b\":true,\"z\":null,\"o\":{},\"a\":[\"x\"],\"r\":1.5}", &j, NULL));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *s = "sentinel";
		kiln_diag d;

		kiln_diag_clear(&d);
		/* a present member of the wrong type is an error even when optional */
		KT_ERR(kiln_json_get_str(j, keys[i], 10, false, &s, &d), KILN_ERR_MALFORMED);
		assert_null(s);
		assert_non_null(strstr(d.text, "must be a string"));
		assert_one_line(&d);
	}
	json_decref(j);
}

static void test_get_str_too_long(void **state)
{
	json_t *j;
	const char *s = "sentinel";
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(parse_str("{\"name\":\"abcd\",\"utf\":\"\xc3\xa9\xc3\xa9\"}", &j, NULL));
	KT_ERR(kiln_json_get_str(j, "name", 3, true, &s, &d), KILN_ERR_TOO_BIG);
	assert_null(s);
	assert_int_equal(d.code, KILN_ERR_TOO_BIG);
	assert_one_line(&d);
	/* the limit is in bytes, not characters: 2 characters, 4 bytes */
	KT_ERR(kiln_json_get_str(j, "utf", 3, true, &s, NULL), KILN_ERR_TOO_BIG);
	KT_OK(kiln_json_get_str(j, "utf", 4, true, &s, NULL));
	assert_string_equal(s, "\xc3\xa9\xc3\xa9");
	json_decref(j);
}

static void test_get_str_nul_inside(void **state)
{
	json_t *j = json_object();
	const char *s = "sentinel";
	kiln_diag d;

	(void)state;
	/* kiln_json_parse refuses \u0000, but objects built in code can hold one */
	assert_non_null(j);
	assert_int_equal(json_object_set_new(j, "k", json_stringn("ab\0cd", 5)), 0);
	kiln_diag_clear(&d);
	KT_ERR(kiln_json_get_str(j, "k", 100, true, &s, &d), KILN_ERR_MALFORMED);
	assert_null(s);
	assert_non_null(strstr(d.text, "NUL"));
	assert_one_line(&d);
	json_decref(j);
}

/* What jansson writes for the string (NULL when it refuses it). */
static char *jansson_str(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *out = j != NULL ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII)
			      : NULL;

	json_decref(j);
	return out;
}

static void expect_put_str(const char *s, size_t n)
{
	char *want = jansson_str(s, n);
	kiln_buf b;
	kiln_result r;

	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&b, "x"));
	r = kiln_json_put_str(&b, s, n);
	if (want == NULL || memchr(s, 0, n) != NULL) {
		/* jansson writes a NUL as \u0000; kiln refuses it as the detail checker does. */
		assert_int_equal(r.code, KILN_ERR_MALFORMED);
		assert_string_equal(kiln_buf_cstr(&b), "x");
	} else {
		KT_OK(r);
		assert_string_equal(kiln_buf_cstr(&b) + 1, want);
		assert_int_equal(b.len, 1 + strlen(want));
	}
	free(want);
	kiln_buf_cleanup(&b);
}

static void test_put_str_as_jansson(void **state)
{
	static const char *const fixed[] = {
		"", "plain", "q\"b\\s/", "\b\f\n\r\t\x01\x1f\x7f", "caf\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x94\x91", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf", "\xed\x9f\xbf",
		/* not UTF-8: overlong, surrogates, past U+10FFFF, cut short, stray bytes */
		"\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf",
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "\x80", "\xbf", "\xfe", "\xff",
	};
	uint8_t r[24];

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		expect_put_str(fixed[i], strlen(fixed[i]));
	expect_put_str("a\0b", 3);
	/* Random strings, biased towards the bytes that matter to UTF-8 and escaping. */
	srand(7);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand() % sizeof(r);

		for (size_t i = 0; i < n; i++) {
			static const uint8_t pick[] = { 0x00, 0x1f, '"', '\\', 'a', 0x7f, 0x80, 0xbf,
							0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xff };
			r[i] = rand() % 2 ? pick[rand() % 16] : (uint8_t)rand();
		}
		expect_put_str((const char *)r, n);
	}
}

static void test_put_str_cap(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 8);
	KT_OK(kiln_buf_append_str(&b, "ab"));
	assert_int_equal(kiln_json_put_str(&b, "\x01", 1).code, KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "ab");
	KT_OK(kiln_json_put_str(&b, "cd", 2));
	assert_string_equal(kiln_buf_cstr(&b), "ab\"cd\"");
	kiln_buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok_and_dump),
		cmocka_unit_test(test_put_str_as_jansson),
		cmocka_unit_test(test_put_str_cap),
		cmocka_unit_test(test_dump_ascii_and_cap),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_malformed_line_column),
		cmocka_unit_test(test_parse_malformed_variants),
		cmocka_unit_test(test_parse_embedded_nul_byte),
		cmocka_unit_test(test_parse_too_big),
		cmocka_unit_test(test_parse_depth),
		cmocka_unit_test(test_parse_depth_message),
		cmocka_unit_test(test_parse_depth_second_branch),
		cmocka_unit_test(test_parse_duplicate_keys),
		cmocka_unit_test(test_get_str_ok),
		cmocka_unit_test(test_get_str_missing),
		cmocka_unit_test(test_get_str_wrong_type),
		cmocka_unit_test(test_get_str_too_long),
		cmocka_unit_test(test_get_str_nul_inside),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
