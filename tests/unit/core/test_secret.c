/* Unit tests for src/core/secret.c: wiping, constant-time compare, randomness. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

static void test_wipe(void **state)
{
	uint8_t buf[37];
	static const uint8_t zero[37];

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	kiln_wipe(buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
}

static void test_wipe_partial_and_edges(void **state)
{
	uint8_t buf[8];

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	kiln_wipe(buf + 2, 3);
	assert_int_equal(buf[1], 0xa5);
	assert_int_equal(buf[2], 0);
	assert_int_equal(buf[4], 0);
	assert_int_equal(buf[5], 0xa5);
	/* zero length touches nothing */
	kiln_wipe(buf, 0);
	assert_int_equal(buf[0], 0xa5);
	/* NULL is safe */
	kiln_wipe(NULL, 16);
	kiln_wipe(NULL, 0);
}

static void test_ct_eq(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7 + 1);
	assert_true(kiln_ct_eq(a, b, sizeof(a)));
	assert_true(kiln_ct_eq(a, a, sizeof(a)));
	/* every single-bit difference at every position is seen */
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			assert_false(kiln_ct_eq(a, b, sizeof(a)));
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_true(kiln_ct_eq(a, b, sizeof(a)));
	/* only the first n bytes count */
	b[31] ^= 0xff;
	assert_true(kiln_ct_eq(a, b, 31));
	assert_false(kiln_ct_eq(a, b, 32));
	/* empty strings are equal */
	assert_true(kiln_ct_eq(a, b, 0));
	assert_true(kiln_ct_eq(NULL, NULL, 0));
}

static void test_random_nonzero_and_differs(void **state)
{
	uint8_t a[32], b[32];
	static const uint8_t zero[32];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	KT_OK(kiln_random(a, sizeof(a)));
	KT_OK(kiln_random(b, sizeof(b)));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(b, zero, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_random_zero_length(void **state)
{
	uint8_t a[4] = { 1, 2, 3, 4 };

	(void)state;
	KT_OK(kiln_random(a, 0));
	assert_int_equal(a[0], 1);
	assert_int_equal(a[3], 4);
}

/*
 * A large request fills the whole buffer (the tail too), and the bytes look
 * uniform: in 64 KiB every byte value appears (failure odds ~ 256 * e^-256).
 */
static void test_random_large_fills_everything(void **state)
{
	const size_t n = 65536;
	uint8_t *p = malloc(n);
	unsigned seen[256] = { 0 };
	size_t zero_tail = 0;

	(void)state;
	assert_non_null(p);
	memset(p, 0, n);
	KT_OK(kiln_random(p, n));
	for (size_t i = 0; i < n; i++)
		seen[p[i]]++;
	for (int v = 0; v < 256; v++)
		assert_true(seen[v] > 0);
	for (size_t i = n - 64; i < n; i++)
		zero_tail += p[i] == 0;
	assert_true(zero_tail < 64);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_wipe_partial_and_edges),
		cmocka_unit_test(test_ct_eq),
		cmocka_unit_test(test_random_nonzero_and_differs),
		cmocka_unit_test(test_random_zero_length),
		cmocka_unit_test(test_random_large_fills_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
