/* Unit tests for src/core/time.c: clocks and RFC 3339 formatting. */
#include "support/support.h"

#include <string.h>
#include <time.h>

static void expect_format(int64_t t, const char *want)
{
	char out[KILN_TIME_STR];

	memset(out, 'x', sizeof(out));
	kiln_time_format(t, out);
	assert_string_equal(out, want);
}

static void test_format_known_values(void **state)
{
	(void)state;
	expect_format(0, "1970-01-01T00:00:00Z");
	expect_format(-1, "1969-12-31T23:59:59Z");
	expect_format(951782400, "2000-02-29T00:00:00Z"); /* leap day */
	expect_format(1700000000, "2023-11-14T22:13:20Z");
	expect_format(1798848000, "2027-01-02T00:00:00Z");
	expect_format(2147483647, "2038-01-19T03:14:07Z");
	expect_format(2147483648, "2038-01-19T03:14:08Z"); /* past 32-bit time_t */
}

/* 2050 and later: certificates switch to GeneralizedTime there, so the text must be right. */
static void test_format_2050_and_later(void **state)
{
	(void)state;
	expect_format(2524607999, "2049-12-31T23:59:59Z");
	expect_format(2524608000, "2050-01-01T00:00:00Z");
	expect_format(4102444800, "2100-01-01T00:00:00Z");
	expect_format(253402300799, "9999-12-31T23:59:59Z");
}

static void test_format_extremes(void **state)
{
	(void)state;
	/* RFC 3339 years have four digits: 0000 to 9999 */
	expect_format(253402300800, "invalid-time");  /* 10000-01-01 */
	expect_format(-62167219200, "0000-01-01T00:00:00Z");
	expect_format(-62167219201, "invalid-time"); /* year -1 */
	expect_format(-62135596800, "0001-01-01T00:00:00Z");
	/*
	 * The last second gmtime can represent (tm_year is an int): strftime's
	 * %Y overflowed here and printed a negative year.
	 */
	expect_format(67768036191676799, "invalid-time");
	/* beyond it gmtime fails: a clear marker, never uninitialised bytes */
	expect_format(67768036191676800, "invalid-time");
	expect_format(INT64_MAX, "invalid-time");
	expect_format(INT64_MIN, "invalid-time");
}

static void test_now(void **state)
{
	int64_t a, b;
	time_t t;

	(void)state;
	a = kiln_now();
	t = time(NULL);
	b = kiln_now();
	assert_true(a <= (int64_t)t + 1);
	assert_true((int64_t)t <= b + 1);
	assert_true(a > 1700000000); /* after this code was written */
}

static void test_mono(void **state)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	uint64_t a, b;

	(void)state;
	a = kiln_mono_ns();
	assert_int_equal(nanosleep(&ts, NULL), 0);
	b = kiln_mono_ns();
	assert_true(b >= a + 20u * 1000u * 1000u);
	assert_true(b - a < 60ull * 1000u * 1000u * 1000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_known_values),
		cmocka_unit_test(test_format_2050_and_later),
		cmocka_unit_test(test_format_extremes),
		cmocka_unit_test(test_now),
		cmocka_unit_test(test_mono),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
