/* Unit tests for src/core/slice.c: slices and the bounded cursor. */
#include "support/support.h"

#include <string.h>

static const uint8_t bytes[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };

static void test_slice_str(void **state)
{
	kiln_slice s;

	(void)state;
	s = kiln_slice_str("abc");
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.ptr, "abc", 3);
	s = kiln_slice_str("");
	assert_int_equal(s.len, 0);
	s = kiln_slice_str(NULL);
	assert_null(s.ptr);
	assert_int_equal(s.len, 0);
}

static void test_slice_eq(void **state)
{
	(void)state;
	assert_true(kiln_slice_eq(kiln_slice_str("abc"), kiln_slice_str("abc")));
	assert_false(kiln_slice_eq(kiln_slice_str("abc"), kiln_slice_str("abd")));
	assert_false(kiln_slice_eq(kiln_slice_str("abc"), kiln_slice_str("ab")));
	assert_false(kiln_slice_eq(kiln_slice_str(""), kiln_slice_str("a")));
	/* Empty slices are equal whatever their pointers. */
	assert_true(kiln_slice_eq(kiln_slice_of(NULL, 0), kiln_slice_str("")));
	assert_true(kiln_slice_eq(kiln_slice_of(NULL, 0), kiln_slice_of(NULL, 0)));
}

static void test_cursor_init(void **state)
{
	kiln_cursor c;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, sizeof(bytes)));
	assert_int_equal(kiln_cursor_remaining(&c), sizeof(bytes));
	assert_int_equal(c.pos, 0);
	/* A NULL pointer with a length is treated as empty. */
	kiln_cursor_init(&c, kiln_slice_of(NULL, 5));
	assert_int_equal(kiln_cursor_remaining(&c), 0);
	KT_OK(kiln_cursor_expect_end(&c));
}

static void test_cursor_empty_reads(void **state)
{
	kiln_cursor c;
	kiln_slice s = kiln_slice_str("x");
	uint8_t u8 = 0xaa;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(NULL, 0));
	KT_ERR(kiln_cursor_u8(&c, &u8), KILN_ERR_TRUNCATED);
	assert_int_equal(u8, 0xaa);
	/* Zero-byte reads succeed even on an empty cursor. */
	KT_OK(kiln_cursor_bytes(&c, 0, &s));
	assert_int_equal(s.len, 0);
	KT_OK(kiln_cursor_skip(&c, 0));
	KT_OK(kiln_cursor_copy(&c, &u8, 0));
	assert_int_equal(u8, 0xaa);
	KT_OK(kiln_cursor_expect_end(&c));
}

static void test_cursor_be_values(void **state)
{
	kiln_cursor c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, sizeof(bytes)));
	KT_OK(kiln_cursor_u8(&c, &u8));
	assert_int_equal(u8, 0x01);
	KT_OK(kiln_cursor_u16be(&c, &u16));
	assert_int_equal(u16, 0x0203);
	KT_OK(kiln_cursor_u32be(&c, &u32));
	assert_int_equal(u32, 0x04050607);
	assert_int_equal(kiln_cursor_remaining(&c), 2);

	kiln_cursor_init(&c, kiln_slice_of(bytes, sizeof(bytes)));
	KT_OK(kiln_cursor_u64be(&c, &u64));
	assert_true(u64 == 0x0102030405060708ull);
	assert_int_equal(kiln_cursor_remaining(&c), 1);

	/* High bits are not sign-extended. */
	{
		static const uint8_t ff[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe };

		kiln_cursor_init(&c, kiln_slice_of(ff, sizeof(ff)));
		KT_OK(kiln_cursor_u64be(&c, &u64));
		assert_true(u64 == 0xfffffffffffffffeull);
		kiln_cursor_init(&c, kiln_slice_of(ff, sizeof(ff)));
		KT_OK(kiln_cursor_u32be(&c, &u32));
		assert_true(u32 == 0xffffffffu);
		KT_OK(kiln_cursor_u16be(&c, &u16));
		assert_true(u16 == 0xffffu);
	}
}

/*
 * For every fixed-width read: reading exactly the remaining bytes succeeds;
 * with one byte fewer available it fails with TRUNCATED, leaves the output
 * and the cursor untouched.
 */
static void test_cursor_exact_bounds(void **state)
{
	kiln_cursor c;
	uint8_t u8 = 0x5a;
	uint16_t u16 = 0x5a5a;
	uint32_t u32 = 0x5a5a5a5a;
	uint64_t u64 = 0x5a5a5a5a5a5a5a5aull;

	(void)state;
	/* exact fits */
	kiln_cursor_init(&c, kiln_slice_of(bytes, 1));
	KT_OK(kiln_cursor_u8(&c, &u8));
	KT_OK(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&c, kiln_slice_of(bytes, 2));
	KT_OK(kiln_cursor_u16be(&c, &u16));
	KT_OK(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&c, kiln_slice_of(bytes, 4));
	KT_OK(kiln_cursor_u32be(&c, &u32));
	KT_OK(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&c, kiln_slice_of(bytes, 8));
	KT_OK(kiln_cursor_u64be(&c, &u64));
	KT_OK(kiln_cursor_expect_end(&c));

	/* one past: after consuming one byte, too few remain */
	u8 = 0x5a;
	u16 = 0x5a5a;
	u32 = 0x5a5a5a5a;
	u64 = 0x5a5a5a5a5a5a5a5aull;
	kiln_cursor_init(&c, kiln_slice_of(bytes, 2));
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_ERR(kiln_cursor_u16be(&c, &u16), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 1);
	assert_int_equal(u16, 0x5a5a);
	kiln_cursor_init(&c, kiln_slice_of(bytes, 4));
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_ERR(kiln_cursor_u32be(&c, &u32), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 1);
	assert_int_equal(u32, 0x5a5a5a5a);
	kiln_cursor_init(&c, kiln_slice_of(bytes, 8));
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_ERR(kiln_cursor_u64be(&c, &u64), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 1);
	assert_true(u64 == 0x5a5a5a5a5a5a5a5aull);
	kiln_cursor_init(&c, kiln_slice_of(bytes, 1));
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_ERR(kiln_cursor_u8(&c, &u8), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 1);
	assert_int_equal(u8, 0x5a);
	/* the cursor is still usable afterwards */
	KT_OK(kiln_cursor_expect_end(&c));
}

static void test_cursor_bytes_bounds(void **state)
{
	kiln_cursor c;
	kiln_slice s = kiln_slice_of(NULL, 0);

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, sizeof(bytes)));
	KT_OK(kiln_cursor_bytes(&c, 3, &s));
	assert_ptr_equal(s.ptr, bytes);
	assert_int_equal(s.len, 3);
	/* one past the end */
	KT_ERR(kiln_cursor_bytes(&c, sizeof(bytes) - 3 + 1, &s), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 3);
	assert_ptr_equal(s.ptr, bytes); /* output untouched */
	assert_int_equal(s.len, 3);
	/* sizes that would overflow pos + n */
	KT_ERR(kiln_cursor_bytes(&c, SIZE_MAX, &s), KILN_ERR_TRUNCATED);
	KT_ERR(kiln_cursor_skip(&c, SIZE_MAX - 1), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 3);
	/* exact remainder */
	KT_OK(kiln_cursor_bytes(&c, sizeof(bytes) - 3, &s));
	assert_ptr_equal(s.ptr, bytes + 3);
	assert_int_equal(s.len, sizeof(bytes) - 3);
	assert_int_equal(kiln_cursor_remaining(&c), 0);
	KT_OK(kiln_cursor_expect_end(&c));
}

static void test_cursor_copy(void **state)
{
	kiln_cursor c;
	uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
	static const uint8_t untouched[4] = { 0xee, 0xee, 0xee, 0xee };

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, 5));
	KT_OK(kiln_cursor_copy(&c, out, 4));
	assert_memory_equal(out, bytes, 4);
	assert_int_equal(c.pos, 4);
	memset(out, 0xee, sizeof(out));
	KT_ERR(kiln_cursor_copy(&c, out, 2), KILN_ERR_TRUNCATED);
	assert_memory_equal(out, untouched, sizeof(out));
	assert_int_equal(c.pos, 4);
	KT_OK(kiln_cursor_copy(&c, out, 1));
	assert_int_equal(out[0], 0x05);
}

static void test_cursor_skip(void **state)
{
	kiln_cursor c;
	uint8_t u8;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, sizeof(bytes)));
	KT_OK(kiln_cursor_skip(&c, 8));
	KT_ERR(kiln_cursor_skip(&c, 2), KILN_ERR_TRUNCATED);
	assert_int_equal(c.pos, 8);
	KT_OK(kiln_cursor_u8(&c, &u8));
	assert_int_equal(u8, 0x09);
}

static void test_cursor_expect_end(void **state)
{
	kiln_cursor c;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(bytes, 2));
	KT_ERR(kiln_cursor_expect_end(&c), KILN_ERR_MALFORMED);
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_ERR(kiln_cursor_expect_end(&c), KILN_ERR_MALFORMED);
	KT_OK(kiln_cursor_skip(&c, 1));
	KT_OK(kiln_cursor_expect_end(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_str),
		cmocka_unit_test(test_slice_eq),
		cmocka_unit_test(test_cursor_init),
		cmocka_unit_test(test_cursor_empty_reads),
		cmocka_unit_test(test_cursor_be_values),
		cmocka_unit_test(test_cursor_exact_bounds),
		cmocka_unit_test(test_cursor_bytes_bounds),
		cmocka_unit_test(test_cursor_copy),
		cmocka_unit_test(test_cursor_skip),
		cmocka_unit_test(test_cursor_expect_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
