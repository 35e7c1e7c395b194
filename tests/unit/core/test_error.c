/* Unit tests for src/core/error.c: the error table and kiln_diag. */
#include "support/support.h"

#include <ctype.h>
#include <string.h>

static void test_table_complete(void **state)
{
	(void)state;
	for (int i = 0; i < KILN_ERR__COUNT; i++) {
		const struct kiln_err_info *e = kiln_err_info((kiln_err)i);

		assert_non_null(e);
		assert_non_null(e->slug);
		assert_non_null(e->message);
		assert_true(strlen(e->slug) > 0);
		assert_true(strlen(e->message) > 0);
		assert_in_range(e->http_status, 200, 599);
		/* Only KILN_OK may be a 2xx, and only the INTERNAL code may share its row. */
		if (i == KILN_OK)
			assert_int_equal(e->http_status, 200);
		else
			assert_in_range(e->http_status, 400, 599);
		if (i != KILN_ERR_INTERNAL)
			assert_ptr_not_equal(e, kiln_err_info(KILN_ERR_INTERNAL));
		/* Slugs are lower-case, digits and '-', no leading/trailing '-'. */
		for (const char *p = e->slug; *p; p++)
			assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-');
		assert_true(e->slug[0] != '-');
		assert_true(e->slug[strlen(e->slug) - 1] != '-');
		/* Messages are one line. */
		assert_null(strchr(e->message, '\n'));
	}
}

static void test_slugs_unique(void **state)
{
	(void)state;
	for (int i = 0; i < KILN_ERR__COUNT; i++) {
		for (int j = i + 1; j < KILN_ERR__COUNT; j++)
			assert_string_not_equal(kiln_err_info((kiln_err)i)->slug,
						kiln_err_info((kiln_err)j)->slug);
	}
}

static void test_known_entries(void **state)
{
	(void)state;
	assert_string_equal(kiln_err_info(KILN_OK)->slug, "ok");
	assert_string_equal(kiln_err_info(KILN_ERR_INTERNAL)->slug, "internal");
	assert_int_equal(kiln_err_info(KILN_ERR_INTERNAL)->http_status, 500);
	assert_string_equal(kiln_err_info(KILN_ERR_CSR_SIGNATURE)->slug, "csr-signature");
	assert_int_equal(kiln_err_info(KILN_ERR_CSR_SIGNATURE)->http_status, 400);
	assert_string_equal(kiln_err_info(KILN_ERR_CSR_TOO_BIG)->slug, "csr-too-big");
	assert_int_equal(kiln_err_info(KILN_ERR_CSR_TOO_BIG)->http_status, 413);
	assert_string_equal(kiln_err_info(KILN_ERR_NOT_FOUND)->slug, "not-found");
	assert_int_equal(kiln_err_info(KILN_ERR_NOT_FOUND)->http_status, 404);
	assert_string_equal(kiln_err_info(KILN_ERR_DUPLICATE)->slug, "duplicate");
	assert_int_equal(kiln_err_info(KILN_ERR_DUPLICATE)->http_status, 409);
}

static void test_unknown_codes_map_to_internal(void **state)
{
	const struct kiln_err_info *internal = kiln_err_info(KILN_ERR_INTERNAL);

	(void)state;
	assert_ptr_equal(kiln_err_info(KILN_ERR__COUNT), internal);
	assert_ptr_equal(kiln_err_info((kiln_err)(KILN_ERR__COUNT + 1)), internal);
	assert_ptr_equal(kiln_err_info((kiln_err)1000000), internal);
	assert_ptr_equal(kiln_err_info((kiln_err)-1), internal);
	assert_ptr_not_equal(kiln_err_info(KILN_ERR_NOMEM), internal);
}

static void test_diag_clear(void **state)
{
	kiln_diag d;

	(void)state;
	memset(&d, 'x', sizeof(d));
	kiln_diag_clear(&d);
	assert_int_equal(d.code, KILN_OK);
	assert_string_equal(d.text, "");
	kiln_diag_clear(NULL); /* NULL-safe */
}

static void test_diag_set_returns_code(void **state)
{
	kiln_diag d;
	kiln_result r;

	(void)state;
	kiln_diag_clear(&d);
	r = kiln_diag_set(&d, KILN_ERR_CONFIG, "kiln.yaml:%d: unknown key '%s'", 7, "colour");
	assert_int_equal(r.code, KILN_ERR_CONFIG);
	assert_int_equal(d.code, KILN_ERR_CONFIG);
	assert_string_equal(d.text, "kiln.yaml:7: unknown key 'colour'");
	assert_string_equal(kiln_diag_message(&d, r), "kiln.yaml:7: unknown key 'colour'");
}

static void test_diag_first_error_sticks(void **state)
{
	kiln_diag d;
	kiln_result r;

	(void)state;
	kiln_diag_clear(&d);
	r = kiln_diag_set(&d, KILN_ERR_CSR_SIGNATURE, "first");
	assert_int_equal(r.code, KILN_ERR_CSR_SIGNATURE);
	/* The second call still returns its own code but does not overwrite. */
	r = kiln_diag_set(&d, KILN_ERR_IO, "second");
	assert_int_equal(r.code, KILN_ERR_IO);
	assert_int_equal(d.code, KILN_ERR_CSR_SIGNATURE);
	assert_string_equal(d.text, "first");
	/* After clear, a new error is recorded. */
	kiln_diag_clear(&d);
	r = kiln_diag_set(&d, KILN_ERR_IO, "third");
	assert_int_equal(d.code, KILN_ERR_IO);
	assert_string_equal(d.text, "third");
	assert_int_equal(r.code, KILN_ERR_IO);
}

/* Messages quote text from outside (paths, names): they stay on one line. */
static void test_diag_one_line(void **state)
{
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	assert_int_equal(kiln_diag_set(&d, KILN_ERR_CONFIG, "%s: bad key '%s'", "dir\nname",
				       "a\r\x1b[2J\tb\x7f").code,
			 KILN_ERR_CONFIG);
	assert_string_equal(d.text, "dir?name: bad key 'a??[2J?b?'");
	/* UTF-8 passes through */
	kiln_diag_clear(&d);
	assert_int_equal(kiln_diag_set(&d, KILN_ERR_CONFIG, "%s", "caf\xc3\xa9").code,
			 KILN_ERR_CONFIG);
	assert_string_equal(d.text, "caf\xc3\xa9");
}

static void test_diag_set_null(void **state)
{
	kiln_result r;

	(void)state;
	r = kiln_diag_set(NULL, KILN_ERR_MALFORMED, "ignored %d", 1);
	assert_int_equal(r.code, KILN_ERR_MALFORMED);
}

static void test_diag_truncates_long_text(void **state)
{
	char big[KILN_DIAG_MAX * 2];
	kiln_diag d;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kiln_diag_clear(&d);
	assert_int_equal(kiln_diag_set(&d, KILN_ERR_ARG, "%s", big).code, KILN_ERR_ARG);
	assert_int_equal(strlen(d.text), KILN_DIAG_MAX - 1);
}

static void test_diag_message_fallback(void **state)
{
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	/* No diag: the table message. */
	assert_string_equal(kiln_diag_message(NULL, kiln_fail(KILN_ERR_CSR_EMPTY)),
			    kiln_err_info(KILN_ERR_CSR_EMPTY)->message);
	/* Cleared diag: the table message. */
	assert_string_equal(kiln_diag_message(&d, kiln_fail(KILN_ERR_STORE_BUSY)),
			    kiln_err_info(KILN_ERR_STORE_BUSY)->message);
	/* Diag with an empty text: the table message for the result's code. */
	assert_int_equal(kiln_diag_set(&d, KILN_ERR_IO, "%s", "").code, KILN_ERR_IO);
	assert_string_equal(kiln_diag_message(&d, kiln_fail(KILN_ERR_IO)),
			    kiln_err_info(KILN_ERR_IO)->message);
	/* Unknown code: the internal message. */
	assert_string_equal(kiln_diag_message(NULL, kiln_fail((kiln_err)9999)),
			    kiln_err_info(KILN_ERR_INTERNAL)->message);
}

static kiln_result guarded(kiln_result inner, int *reached)
{
	KILN_GUARD(inner);
	*reached = 1;
	return kiln_ok();
}

static kiln_result ensured(bool cond)
{
	KILN_ENSURE(cond, KILN_ERR_OVERFLOW);
	return kiln_ok();
}

static kiln_result tried(kiln_result inner, int *cleaned, int *reached)
{
	kiln_result r;

	KILN_TRY(r, inner);
	*reached = 1;
out:
	*cleaned = 1;
	return r;
}

static void test_guard_macros(void **state)
{
	int reached = 0, cleaned = 0;

	(void)state;
	assert_int_equal(guarded(kiln_fail(KILN_ERR_IO), &reached).code, KILN_ERR_IO);
	assert_int_equal(reached, 0);
	KT_OK(guarded(kiln_ok(), &reached));
	assert_int_equal(reached, 1);
	KT_ERR(ensured(false), KILN_ERR_OVERFLOW);
	KT_OK(ensured(true));
	reached = 0;
	KT_ERR(tried(kiln_fail(KILN_ERR_EXISTS), &cleaned, &reached), KILN_ERR_EXISTS);
	assert_int_equal(reached, 0);
	assert_int_equal(cleaned, 1);
	cleaned = 0;
	KT_OK(tried(kiln_ok(), &cleaned, &reached));
	assert_int_equal(reached, 1);
	assert_int_equal(cleaned, 1);
	assert_true(kiln_is_ok(kiln_ok()));
	assert_false(kiln_is_ok(kiln_fail(KILN_ERR_NOMEM)));
}

static void test_checked_arithmetic(void **state)
{
	size_t out = 0;

	(void)state;
	assert_true(kiln_add_size(1, 2, &out));
	assert_int_equal(out, 3);
	assert_true(kiln_add_size(SIZE_MAX - 1, 1, &out));
	assert_int_equal(out, SIZE_MAX);
	assert_false(kiln_add_size(SIZE_MAX, 1, &out));
	assert_true(kiln_mul_size(SIZE_MAX / 2, 2, &out));
	assert_false(kiln_mul_size(SIZE_MAX / 2 + 1, 2, &out));
	assert_true(kiln_mul_size(0, SIZE_MAX, &out));
	assert_int_equal(out, 0);
}

static void test_from_slug(void **state)
{
	(void)state;
	for (int i = 1; i < KILN_ERR__COUNT; i++)
		assert_int_equal(kiln_err_from_slug(kiln_err_info((kiln_err)i)->slug), i);
	assert_int_equal(kiln_err_from_slug("no-such-slug"), KILN_ERR_INTERNAL);
	assert_int_equal(kiln_err_from_slug(NULL), KILN_ERR_INTERNAL);
	assert_int_equal(kiln_err_from_slug("ok"), KILN_ERR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_slug),
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_slugs_unique),
		cmocka_unit_test(test_known_entries),
		cmocka_unit_test(test_unknown_codes_map_to_internal),
		cmocka_unit_test(test_diag_clear),
		cmocka_unit_test(test_diag_set_returns_code),
		cmocka_unit_test(test_diag_first_error_sticks),
		cmocka_unit_test(test_diag_one_line),
		cmocka_unit_test(test_diag_set_null),
		cmocka_unit_test(test_diag_truncates_long_text),
		cmocka_unit_test(test_diag_message_fallback),
		cmocka_unit_test(test_guard_macros),
		cmocka_unit_test(test_checked_arithmetic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
