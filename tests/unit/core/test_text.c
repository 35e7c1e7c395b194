/* Unit tests for src/core/text.c: hex, bounded copies, strict number parsing. */
#include "support/support.h"

#include <string.h>

static void test_hex_encode(void **state)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof(in) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	kiln_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	kiln_hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

static void test_hex_decode(void **state)
{
	uint8_t out[8];
	size_t len = 99;

	(void)state;
	KT_OK(kiln_hex_decode("00017f80abff", out, sizeof(out), &len));
	assert_int_equal(len, 6);
	assert_memory_equal(out, "\x00\x01\x7f\x80\xab\xff", 6);
	/* upper case and mixed case */
	KT_OK(kiln_hex_decode("ABcDeF", out, sizeof(out), &len));
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\xab\xcd\xef", 3);
	/* empty */
	KT_OK(kiln_hex_decode("", out, sizeof(out), &len));
	assert_int_equal(len, 0);
	/* exactly cap bytes */
	KT_OK(kiln_hex_decode("0102030405060708", out, sizeof(out), &len));
	assert_int_equal(len, 8);
	assert_int_equal(out[7], 8);
}

static void test_hex_round_trip(void **state)
{
	uint8_t in[256], back[256];
	char hex[2 * sizeof(in) + 1];
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	kiln_hex_encode(in, sizeof(in), hex);
	KT_OK(kiln_hex_decode(hex, back, sizeof(back), &len));
	assert_int_equal(len, sizeof(in));
	assert_memory_equal(in, back, sizeof(in));
}

static void test_hex_decode_errors(void **state)
{
	uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
	static const uint8_t untouched[4] = { 0xee, 0xee, 0xee, 0xee };
	size_t len = 99;
	static const char *const bad[] = {
		"0",      /* odd length */
		"abc",    /* odd length */
		"0g",     /* bad digit */
		"g0",     /* bad digit */
		"00zz",   /* bad digit after good ones: nothing written */
		"00:11",  /* separators refused (and odd) */
		"00:1",   /* separators refused */
		" 001",   /* space */
		"0x00",   /* prefix */
		"00\xff\x30", /* high byte (then "0") */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		KT_ERR(kiln_hex_decode(bad[i], out, sizeof(out), &len), KILN_ERR_MALFORMED);
		assert_memory_equal(out, untouched, sizeof(out));
		assert_int_equal(len, 99);
	}
	/* too big: one byte more than cap */
	KT_ERR(kiln_hex_decode("0102030405", out, sizeof(out), &len), KILN_ERR_TOO_BIG);
	assert_memory_equal(out, untouched, sizeof(out));
	assert_int_equal(len, 99);
	KT_ERR(kiln_hex_decode("00", out, 0, &len), KILN_ERR_TOO_BIG);
}

static void test_strlcpy(void **state)
{
	char dst[6];

	(void)state;
	KT_OK(kiln_strlcpy(dst, "hello", sizeof(dst))); /* 5 + NUL fits exactly */
	assert_string_equal(dst, "hello");
	KT_OK(kiln_strlcpy(dst, "", sizeof(dst)));
	assert_string_equal(dst, "");
	/* one past: truncated, still terminated, and reported */
	KT_ERR(kiln_strlcpy(dst, "hello!", sizeof(dst)), KILN_ERR_TOO_BIG);
	assert_string_equal(dst, "hello");
	KT_ERR(kiln_strlcpy(dst, "a much longer string", sizeof(dst)), KILN_ERR_TOO_BIG);
	assert_string_equal(dst, "a muc");
	KT_ERR(kiln_strlcpy(dst, "ab", 1), KILN_ERR_TOO_BIG);
	assert_string_equal(dst, "");
	/* no room at all: refused, dst untouched */
	memcpy(dst, "keep", 5);
	KT_ERR(kiln_strlcpy(dst, "x", 0), KILN_ERR_ARG);
	assert_string_equal(dst, "keep");
}

static void test_strtrunc(void **state)
{
	char dst[4];

	(void)state;
	kiln_strtrunc(dst, "abcdef", sizeof(dst));
	assert_string_equal(dst, "abc");
	kiln_strtrunc(dst, "ab", sizeof(dst));
	assert_string_equal(dst, "ab");
	memcpy(dst, "xyz", 4);
	kiln_strtrunc(dst, "ab", 0);
	assert_string_equal(dst, "xyz");
}

static void test_printable(void **state)
{
	static const char raw[] = { 'o', 'k', '\n', 0x1b, 0x7f, (char)0xc3, (char)0xa9, 0, 'x' };
	char out[16];

	(void)state;
	kiln_printable(raw, sizeof(raw), out, sizeof(out));
	assert_string_equal(out, "ok??????x"); /* every non-printable byte, NUL too, is '?' */
	kiln_printable("abcdef", 6, out, 4);
	assert_string_equal(out, "abc");
	kiln_printable("", 0, out, sizeof(out));
	assert_string_equal(out, "");
	memcpy(out, "xyz", 4);
	kiln_printable("ab", 2, out, 0); /* nothing written, nothing read */
	assert_string_equal(out, "xyz");
}

static void test_parse_u64_ok(void **state)
{
	uint64_t v = 0;

	(void)state;
	KT_OK(kiln_parse_u64("0", UINT64_MAX, &v));
	assert_true(v == 0);
	KT_OK(kiln_parse_u64("42", 100, &v));
	assert_true(v == 42);
	KT_OK(kiln_parse_u64("100", 100, &v)); /* equal to max */
	assert_true(v == 100);
	KT_OK(kiln_parse_u64("18446744073709551615", UINT64_MAX, &v)); /* 2^64 - 1 */
	assert_true(v == UINT64_MAX);
	KT_OK(kiln_parse_u64("007", 10, &v)); /* leading zeros are digits */
	assert_true(v == 7);
	KT_OK(kiln_parse_u64("000000000000000000000000001", 10, &v));
	assert_true(v == 1);
}

static void test_parse_u64_errors(void **state)
{
	uint64_t v = 12345;
	static const char *const malformed[] = {
		"", "-1", "+1", " 1", "1 ", "1\n", "1a", "a1", "0x10", "1.0", "1e3", "\xd9\xa1",
		"00000000000000000000x", /* long, but the problem is the letter */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		KT_ERR(kiln_parse_u64(malformed[i], UINT64_MAX, &v), KILN_ERR_MALFORMED);
		assert_true(v == 12345);
	}
	KT_ERR(kiln_parse_u64(NULL, UINT64_MAX, &v), KILN_ERR_MALFORMED);
	/* 2^64 overflows */
	KT_ERR(kiln_parse_u64("18446744073709551616", UINT64_MAX, &v), KILN_ERR_OVERFLOW);
	/* 2^64 + 9: the multiply does not overflow, the add does */
	KT_ERR(kiln_parse_u64("18446744073709551625", UINT64_MAX, &v), KILN_ERR_OVERFLOW);
	/* 10 * 2^64 / 10 region: the multiply overflows */
	KT_ERR(kiln_parse_u64("184467440737095516150", UINT64_MAX, &v), KILN_ERR_OVERFLOW);
	KT_ERR(kiln_parse_u64("99999999999999999999999999", UINT64_MAX, &v), KILN_ERR_OVERFLOW);
	/* above max */
	KT_ERR(kiln_parse_u64("101", 100, &v), KILN_ERR_OVERFLOW);
	KT_ERR(kiln_parse_u64("1", 0, &v), KILN_ERR_OVERFLOW);
	assert_true(v == 12345);
	KT_OK(kiln_parse_u64("0", 0, &v));
	assert_true(v == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_hex_decode),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_decode_errors),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_strtrunc),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_parse_u64_ok),
		cmocka_unit_test(test_parse_u64_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
