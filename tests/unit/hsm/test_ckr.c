/* PKCS#11 return values: names, fault classification, error mapping. */
#include "support/support.h"

#include <string.h>

#include "hsm/p11.h"

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(kiln_p11_ckr_name(CKR_OK), "CKR_OK");
	assert_string_equal(kiln_p11_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_string_equal(kiln_p11_ckr_name(CKR_SESSION_HANDLE_INVALID),
			    "CKR_SESSION_HANDLE_INVALID");
	assert_string_equal(kiln_p11_ckr_name(CKR_ATTRIBUTE_SENSITIVE), "CKR_ATTRIBUTE_SENSITIVE");
	assert_string_equal(kiln_p11_ckr_name(CKR_VENDOR_DEFINED | 7), "unknown CKR");
}

static void test_faults(void **state)
{
	static const CK_RV faults[] = { CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
					CKR_USER_NOT_LOGGED_IN,     CKR_DEVICE_REMOVED,
					CKR_TOKEN_NOT_PRESENT,      CKR_DEVICE_ERROR,
					CKR_TOKEN_NOT_RECOGNIZED };
	static const CK_RV others[] = { CKR_OK, CKR_GENERAL_ERROR, CKR_PIN_INCORRECT,
					CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID,
					CKR_FUNCTION_FAILED };

	(void)state;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		assert_true(kiln_p11_is_fault(faults[i]));
		assert_int_equal(kiln_p11_err_of(faults[i]), KILN_ERR_HSM_TOKEN_GONE);
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_false(kiln_p11_is_fault(others[i]));
}

static void test_err_of(void **state)
{
	(void)state;
	assert_int_equal(kiln_p11_err_of(CKR_PIN_INCORRECT), KILN_ERR_HSM_PIN);
	assert_int_equal(kiln_p11_err_of(CKR_PIN_LOCKED), KILN_ERR_HSM_PIN);
	assert_int_equal(kiln_p11_err_of(CKR_PIN_LEN_RANGE), KILN_ERR_HSM_PIN);
	assert_int_equal(kiln_p11_err_of(CKR_HOST_MEMORY), KILN_ERR_NOMEM);
	assert_int_equal(kiln_p11_err_of(CKR_GENERAL_ERROR), KILN_ERR_HSM);
	assert_int_equal(kiln_p11_err_of(CKR_MECHANISM_INVALID), KILN_ERR_HSM);
}

static void test_fail_message(void **state)
{
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_fail(&d, CKR_MECHANISM_INVALID, "C_SignInit", "HSM token", "kiln-prod"),
	       KILN_ERR_HSM);
	assert_string_equal(d.text,
			    "C_SignInit failed for HSM token kiln-prod: CKR_MECHANISM_INVALID (0x70)");
	assert_null(strchr(d.text, '\n'));

	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_fail(&d, CKR_DEVICE_REMOVED, "C_Sign", "HSM token", "kiln-prod"),
	       KILN_ERR_HSM_TOKEN_GONE);
	assert_non_null(strstr(d.text, "CKR_DEVICE_REMOVED (0x32)"));

	/* A caller bug must never read as success. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_fail(&d, CKR_OK, "C_Sign", "HSM token", "x"), KILN_ERR_INTERNAL);
	KT_ERR(kiln_p11_fail(NULL, CKR_DEVICE_ERROR, "C_Sign", "HSM token", "x"),
	       KILN_ERR_HSM_TOKEN_GONE);
}

static void test_forward(void **state)
{
	kiln_diag from, to;

	(void)state;
	kiln_diag_clear(&from);
	kiln_diag_clear(&to);
	KT_OK(kiln_p11_forward(&to, kiln_ok(), &from));
	assert_int_equal(to.code, KILN_OK);

	KT_ERR(kiln_diag_set(&from, KILN_ERR_HSM_PIN, "HSM login to token t failed: wrong PIN"),
	       KILN_ERR_HSM_PIN);
	KT_ERR(kiln_p11_forward(&to, kiln_fail(KILN_ERR_HSM_PIN), &from), KILN_ERR_HSM_PIN);
	assert_string_equal(to.text, "HSM login to token t failed: wrong PIN");

	/* Without text the table's message stands in. */
	kiln_diag_clear(&from);
	kiln_diag_clear(&to);
	KT_ERR(kiln_p11_forward(&to, kiln_fail(KILN_ERR_NOMEM), &from), KILN_ERR_NOMEM);
	assert_string_equal(to.text, kiln_err_info(KILN_ERR_NOMEM)->message);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_err_of),
		cmocka_unit_test(test_fail_message),
		cmocka_unit_test(test_forward),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
