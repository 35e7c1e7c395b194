/* Unit tests for src/core/buf.c: capped buffers. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

static void test_init_empty(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 100);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	assert_string_equal(kiln_buf_cstr(&b), "");
	assert_int_equal(kiln_buf_view(&b).len, 0);
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(NULL); /* NULL-safe */
}

static void test_append_variants(void **state)
{
	kiln_buf b;
	kiln_slice v;

	(void)state;
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&b, "ab", 2));
	KT_OK(kiln_buf_append_str(&b, "cd"));
	KT_OK(kiln_buf_append_u8(&b, 'e'));
	KT_OK(kiln_buf_append_slice(&b, kiln_slice_str("fg")));
	KT_OK(kiln_buf_append(&b, NULL, 0));
	KT_OK(kiln_buf_append_slice(&b, kiln_slice_of(NULL, 0)));
	assert_int_equal(b.len, 7);
	assert_string_equal(kiln_buf_cstr(&b), "abcdefg");
	v = kiln_buf_view(&b);
	assert_int_equal(v.len, 7);
	assert_memory_equal(v.ptr, "abcdefg", 7);
	/* bytes are always followed by a NUL not counted in len */
	assert_int_equal(b.ptr[b.len], 0);
	assert_true(b.cap > b.len);
	kiln_buf_cleanup(&b);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_append_binary_with_nul(void **state)
{
	static const uint8_t data[] = { 0, 1, 0, 2 };
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 16);
	KT_OK(kiln_buf_append(&b, data, sizeof(data)));
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.ptr, data, 4);
	kiln_buf_cleanup(&b);
}

static void test_zero_append_allocates_cstr(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 0);
	KT_OK(kiln_buf_append(&b, "", 0));
	assert_non_null(b.ptr);
	assert_string_equal(kiln_buf_cstr(&b), "");
	/* max 0: not even one byte fits */
	KT_ERR(kiln_buf_append_u8(&b, 'x'), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
}

static void test_cap_exact_and_one_past(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 10);
	KT_OK(kiln_buf_append(&b, "0123456789", 10));
	assert_int_equal(b.len, 10);
	/* the block never grows beyond max + 1 (the NUL) */
	assert_int_equal(b.cap, 11);
	KT_ERR(kiln_buf_append_u8(&b, 'x'), KILN_ERR_TOO_BIG);
	KT_ERR(kiln_buf_append_str(&b, "xy"), KILN_ERR_TOO_BIG);
	KT_ERR(kiln_buf_reserve(&b, 1), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(kiln_buf_cstr(&b), "0123456789");
	KT_OK(kiln_buf_reserve(&b, 0));
	KT_OK(kiln_buf_append(&b, NULL, 0));
	kiln_buf_cleanup(&b);
}

static void test_append_past_max_leaves_contents(void **state)
{
	kiln_buf b;
	uint8_t *before;

	(void)state;
	kiln_buf_init(&b, 100);
	KT_OK(kiln_buf_append_str(&b, "keep me"));
	before = b.ptr;
	{
		char big[100];

		memset(big, 'z', sizeof(big));
		/* 7 + 94 = 101 > 100 */
		KT_ERR(kiln_buf_append(&b, big, 94), KILN_ERR_TOO_BIG);
		assert_int_equal(b.len, 7);
		assert_ptr_equal(b.ptr, before);
		assert_string_equal(kiln_buf_cstr(&b), "keep me");
		/* 7 + 93 = 100 fits exactly */
		KT_OK(kiln_buf_append(&b, big, 93));
		assert_int_equal(b.len, 100);
		assert_int_equal(b.cap, 101);
		assert_memory_equal(b.ptr, "keep me", 7);
		assert_int_equal(b.ptr[99], 'z');
		assert_int_equal(b.ptr[100], 0);
	}
	kiln_buf_cleanup(&b);
}

static void test_reserve_overflow(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&b, "abc"));
	/* len + extra wraps around */
	KT_ERR(kiln_buf_reserve(&b, SIZE_MAX), KILN_ERR_TOO_BIG);
	KT_ERR(kiln_buf_reserve(&b, SIZE_MAX - 2), KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "abc");
	kiln_buf_cleanup(&b);

	/* With no ceiling at all, the + 1 for the NUL must not wrap either. */
	kiln_buf_init(&b, SIZE_MAX);
	KT_OK(kiln_buf_append_str(&b, "abc"));
	KT_ERR(kiln_buf_reserve(&b, SIZE_MAX - 3), KILN_ERR_TOO_BIG);
	KT_ERR(kiln_buf_reserve(&b, SIZE_MAX), KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "abc");
	kiln_buf_cleanup(&b);
}

static void test_unlimited_max_grows(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, SIZE_MAX);
	for (int i = 0; i < 1000; i++)
		KT_OK(kiln_buf_append_str(&b, "0123456789"));
	assert_int_equal(b.len, 10000);
	assert_true(b.cap >= 10001);
	assert_memory_equal(b.ptr + 9990, "0123456789", 10);
	assert_int_equal(b.ptr[b.len], 0);
	kiln_buf_cleanup(&b);
}

static void test_growth_keeps_contents(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 1000);
	for (int i = 0; i < 1000; i++)
		KT_OK(kiln_buf_append_u8(&b, (uint8_t)(i & 0xff)));
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.cap, 1001);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(b.ptr[i], i & 0xff);
	KT_ERR(kiln_buf_append_u8(&b, 0), KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&b);
}

static void test_printf(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_printf(&b, "%s=%d", "n", 42));
	assert_string_equal(kiln_buf_cstr(&b), "n=42");
	assert_int_equal(b.len, 4);
	/* growth past the first block */
	KT_OK(kiln_buf_printf(&b, ";%0300d", 7));
	assert_int_equal(b.len, 4 + 301);
	assert_int_equal(strlen(kiln_buf_cstr(&b)), 305);
	assert_int_equal(b.ptr[304], '7');
	assert_int_equal(b.ptr[5], '0');
	/* an empty format on a fresh buffer still gives a C string */
	kiln_buf_cleanup(&b);
	kiln_buf_init(&b, 10);
	KT_OK(kiln_buf_printf(&b, "%s", ""));
	assert_string_equal(kiln_buf_cstr(&b), "");
	kiln_buf_cleanup(&b);
}

static void test_printf_past_max(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 8);
	KT_OK(kiln_buf_printf(&b, "%d", 1234));
	KT_ERR(kiln_buf_printf(&b, "%d", 12345), KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "1234");
	assert_int_equal(b.len, 4);
	KT_OK(kiln_buf_printf(&b, "%d", 5678));
	assert_string_equal(kiln_buf_cstr(&b), "12345678");
	kiln_buf_cleanup(&b);
}

static kiln_result call_vprintf(kiln_buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);

static kiln_result call_vprintf(kiln_buf *b, const char *fmt, ...)
{
	va_list ap;
	kiln_result r;

	va_start(ap, fmt);
	r = kiln_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

static void test_vprintf(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 64);
	KT_OK(call_vprintf(&b, "%s-%u-%c", "x", 7u, 'z'));
	assert_string_equal(kiln_buf_cstr(&b), "x-7-z");
	KT_ERR(call_vprintf(&b, "%0100d", 1), KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "x-7-z");
	kiln_buf_cleanup(&b);
}

static void test_reset_wipes(void **state)
{
	kiln_buf b;
	uint8_t *p;
	size_t cap;

	(void)state;
	kiln_buf_init(&b, 64);
	KT_OK(kiln_buf_append_str(&b, "secret-pin-1234"));
	p = b.ptr;
	cap = b.cap;
	kiln_buf_reset(&b);
	/* same block, contents wiped, empty */
	assert_ptr_equal(b.ptr, p);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.len, 0);
	for (size_t i = 0; i < strlen("secret-pin-1234"); i++)
		assert_int_equal(p[i], 0);
	assert_string_equal(kiln_buf_cstr(&b), "");
	KT_OK(kiln_buf_append_str(&b, "new"));
	assert_string_equal(kiln_buf_cstr(&b), "new");
	kiln_buf_cleanup(&b);
	/* reset of a never-allocated buffer is fine */
	kiln_buf_init(&b, 64);
	kiln_buf_reset(&b);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
}

static void test_cleanup_resets_and_reuse(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 32);
	KT_OK(kiln_buf_append_str(&b, "private key bytes"));
	kiln_buf_cleanup(&b);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* the ceiling survives cleanup, so the buffer is reusable as is */
	assert_int_equal(b.max, 32);
	assert_string_equal(kiln_buf_cstr(&b), "");
	KT_OK(kiln_buf_append_str(&b, "again"));
	assert_string_equal(kiln_buf_cstr(&b), "again");
	KT_ERR(kiln_buf_reserve(&b, 28), KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(&b); /* twice is fine */
}

static void test_take(void **state)
{
	kiln_buf b;
	uint8_t *p;
	size_t len = 99;

	(void)state;
	kiln_buf_init(&b, 64);
	KT_OK(kiln_buf_append_str(&b, "hello"));
	p = kiln_buf_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 5);
	assert_string_equal((const char *)p, "hello");
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* the buffer is usable again and does not share the taken block */
	KT_OK(kiln_buf_append_str(&b, "x"));
	assert_ptr_not_equal(b.ptr, p);
	assert_string_equal((const char *)p, "hello");
	free(p);
	/* len may be NULL */
	p = kiln_buf_take(&b, NULL);
	assert_string_equal((const char *)p, "x");
	free(p);
	/* taking from an empty buffer gives NULL and 0 */
	len = 99;
	p = kiln_buf_take(&b, &len);
	assert_null(p);
	assert_int_equal(len, 0);
	kiln_buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),
		cmocka_unit_test(test_append_variants),
		cmocka_unit_test(test_append_binary_with_nul),
		cmocka_unit_test(test_zero_append_allocates_cstr),
		cmocka_unit_test(test_cap_exact_and_one_past),
		cmocka_unit_test(test_append_past_max_leaves_contents),
		cmocka_unit_test(test_reserve_overflow),
		cmocka_unit_test(test_unlimited_max_grows),
		cmocka_unit_test(test_growth_keeps_contents),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_past_max),
		cmocka_unit_test(test_vprintf),
		cmocka_unit_test(test_reset_wipes),
		cmocka_unit_test(test_cleanup_resets_and_reuse),
		cmocka_unit_test(test_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
