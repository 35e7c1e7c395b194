/*
 * PKCS#11 return values: their names for messages, and which kiln error
 * each one becomes.
 */
#include "p11.h"

#define CKR_ROW(x) { x, #x }

static const struct {
	CK_RV rv;
	const char *name;
} ckr_names[] = {
	CKR_ROW(CKR_OK),
	CKR_ROW(CKR_CANCEL),
	CKR_ROW(CKR_HOST_MEMORY),
	CKR_ROW(CKR_SLOT_ID_INVALID),
	CKR_ROW(CKR_GENERAL_ERROR),
	CKR_ROW(CKR_FUNCTION_FAILED),
	CKR_ROW(CKR_ARGUMENTS_BAD),
	CKR_ROW(CKR_NO_EVENT),
	CKR_ROW(CKR_NEED_TO_CREATE_THREADS),
	CKR_ROW(CKR_CANT_LOCK),
	CKR_ROW(CKR_ATTRIBUTE_READ_ONLY),
	CKR_ROW(CKR_ATTRIBUTE_SENSITIVE),
	CKR_ROW(CKR_ATTRIBUTE_TYPE_INVALID),
	CKR_ROW(CKR_ATTRIBUTE_VALUE_INVALID),
	CKR_ROW(CKR_ACTION_PROHIBITED),
	CKR_ROW(CKR_DATA_INVALID),
	CKR_ROW(CKR_DATA_LEN_RANGE),
	CKR_ROW(CKR_DEVICE_ERROR),
	CKR_ROW(CKR_DEVICE_MEMORY),
	CKR_ROW(CKR_DEVICE_REMOVED),
	CKR_ROW(CKR_FUNCTION_CANCELED),
	CKR_ROW(CKR_FUNCTION_NOT_PARALLEL),
	CKR_ROW(CKR_FUNCTION_NOT_SUPPORTED),
	CKR_ROW(CKR_KEY_HANDLE_INVALID),
	CKR_ROW(CKR_KEY_SIZE_RANGE),
	CKR_ROW(CKR_KEY_TYPE_INCONSISTENT),
	CKR_ROW(CKR_KEY_FUNCTION_NOT_PERMITTED),
	CKR_ROW(CKR_MECHANISM_INVALID),
	CKR_ROW(CKR_MECHANISM_PARAM_INVALID),
	CKR_ROW(CKR_OBJECT_HANDLE_INVALID),
	CKR_ROW(CKR_OPERATION_ACTIVE),
	CKR_ROW(CKR_OPERATION_NOT_INITIALIZED),
	CKR_ROW(CKR_PIN_INCORRECT),
	CKR_ROW(CKR_PIN_INVALID),
	CKR_ROW(CKR_PIN_LEN_RANGE),
	CKR_ROW(CKR_PIN_EXPIRED),
	CKR_ROW(CKR_PIN_LOCKED),
	CKR_ROW(CKR_PIN_TOO_WEAK),
	CKR_ROW(CKR_SESSION_CLOSED),
	CKR_ROW(CKR_SESSION_COUNT),
	CKR_ROW(CKR_SESSION_HANDLE_INVALID),
	CKR_ROW(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	CKR_ROW(CKR_SESSION_READ_ONLY),
	CKR_ROW(CKR_SESSION_EXISTS),
	CKR_ROW(CKR_SESSION_READ_ONLY_EXISTS),
	CKR_ROW(CKR_SESSION_READ_WRITE_SO_EXISTS),
	CKR_ROW(CKR_SIGNATURE_INVALID),
	CKR_ROW(CKR_SIGNATURE_LEN_RANGE),
	CKR_ROW(CKR_TEMPLATE_INCOMPLETE),
	CKR_ROW(CKR_TEMPLATE_INCONSISTENT),
	CKR_ROW(CKR_TOKEN_NOT_PRESENT),
	CKR_ROW(CKR_TOKEN_NOT_RECOGNIZED),
	CKR_ROW(CKR_TOKEN_WRITE_PROTECTED),
	CKR_ROW(CKR_USER_ALREADY_LOGGED_IN),
	CKR_ROW(CKR_USER_NOT_LOGGED_IN),
	CKR_ROW(CKR_USER_PIN_NOT_INITIALIZED),
	CKR_ROW(CKR_USER_TYPE_INVALID),
	CKR_ROW(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	CKR_ROW(CKR_USER_TOO_MANY_TYPES),
	CKR_ROW(CKR_RANDOM_NO_RNG),
	CKR_ROW(CKR_DOMAIN_PARAMS_INVALID),
	CKR_ROW(CKR_CURVE_NOT_SUPPORTED),
	CKR_ROW(CKR_BUFFER_TOO_SMALL),
	CKR_ROW(CKR_CRYPTOKI_NOT_INITIALIZED),
	CKR_ROW(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	CKR_ROW(CKR_MUTEX_BAD),
	CKR_ROW(CKR_MUTEX_NOT_LOCKED),
	CKR_ROW(CKR_FUNCTION_REJECTED),
};

const char *kiln_p11_ckr_name(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++) {
		if (ckr_names[i].rv == rv)
			return ckr_names[i].name;
	}
	return "unknown CKR";
}

bool kiln_p11_is_fault(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_RECOGNIZED:
		return true;
	default:
		return false;
	}
}

kiln_err kiln_p11_err_of(CK_RV rv)
{
	if (kiln_p11_is_fault(rv))
		return KILN_ERR_HSM_TOKEN_GONE;
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_PIN_TOO_WEAK:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return KILN_ERR_HSM_PIN;
	case CKR_HOST_MEMORY:
		return KILN_ERR_NOMEM;
	default:
		return KILN_ERR_HSM;
	}
}

kiln_result kiln_p11_fail(kiln_diag *d, CK_RV rv, const char *fn, const char *kind,
			  const char *name)
{
	/* A CKR_OK here is a bug in the caller; never let it read as success. */
	if (KILN_NEVER(rv == CKR_OK))
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "%s reported as failed with CKR_OK", fn);
	return kiln_diag_set(d, kiln_p11_err_of(rv), "%s failed for %s %s: %s (0x%lx)", fn, kind,
			     name, kiln_p11_ckr_name(rv), (unsigned long)rv);
}

kiln_result kiln_p11_forward(kiln_diag *d, kiln_result r, const kiln_diag *from)
{
	if (kiln_is_ok(r))
		return r;
	if (from != NULL && from->code != KILN_OK && from->text[0] != '\0')
		return kiln_diag_set(d, r.code, "%s", from->text);
	return kiln_diag_set(d, r.code, "%s", kiln_err_info(r.code)->message);
}
