/*
 * Unit tests for src/hsm/objects.c against SoftHSM2: every object under a
 * per-device label is destroyed whatever its class (key pairs made by kiln,
 * a data object made through raw PKCS#11), others are left alone, and the
 * count is exact (0 included).
 */
#include "support/softhsm.h"

#include <stdlib.h>
#include <string.h>

#include "hsm/p11.h"

static int setup(void **state)
{
	struct kt_hsm *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	*state = h;
	kt_hsm_setup(h, "objects", 2);
	return 0;
}

static int teardown(void **state)
{
	kt_hsm_teardown(*state);
	free(*state);
	return 0;
}

/* A token data object labelled label, through a session of our own. */
static void data_object(struct kt_hsm *h, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_BYTE value[] = { 1, 2, 3 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_VALUE, value, sizeof(value) },
	};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE o;

	assert_int_equal(h->p11->fn->C_OpenSession(h->token->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
						   NULL, NULL, &s),
			 CKR_OK);
	assert_int_equal(h->p11->fn->C_CreateObject(s, tmpl, 5, &o), CKR_OK);
	assert_int_equal(h->p11->fn->C_CloseSession(s), CKR_OK);
}

static void test_destroy_labelled(void **state)
{
	struct kt_hsm *h = *state;
	struct kiln_destroyed out;
	char label[KILN_DEVICE_LABEL_MAX];
	kiln_key_ref dev, other;
	kiln_diag d;

	KT_OK(kiln_token_device_label("widget", "WGT-1", label));
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, label, &dev, NULL, &d), &d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, "kiln-device:widget/WGT-2", &other, NULL,
				   &d),
	       &d);
	data_object(h, label);
	KT_OKD(kiln_token_destroy_labelled(h->token, label, &out, &d), &d);
	assert_int_equal(out.n, 3);
	{
		int priv = 0, pub = 0, data = 0;

		for (size_t i = 0; i < out.n; i++) {
			priv += strcmp(out.what[i], "private-key") == 0;
			pub += strcmp(out.what[i], "public-key") == 0;
			data += strcmp(out.what[i], "data") == 0;
		}
		assert_int_equal(priv + pub + data, 3);
		assert_int_equal(priv, 1);
		assert_int_equal(data, 1);
	}
	KT_ERR(kiln_token_find(h->token, &dev, NULL), KILN_ERR_HSM_KEY_MISSING);
	/* Another device's key is untouched. */
	KT_OK(kiln_token_find(h->token, &other, NULL));
	/* Again: nothing left, a count of 0. */
	KT_OKD(kiln_token_destroy_labelled(h->token, label, &out, &d), &d);
	assert_int_equal(out.n, 0);
}

static void test_bad_arguments(void **state)
{
	struct kt_hsm *h = *state;
	struct kiln_destroyed out;
	char label[KILN_DEVICE_LABEL_MAX], longer[KILN_DEVICE_LABEL_MAX + 8];

	KT_ERR(kiln_token_destroy_labelled(NULL, "x", &out, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_destroy_labelled(h->token, "", &out, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_device_label("widget", "", label), KILN_ERR_ARG);
	memset(longer, 'A', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	KT_ERR(kiln_token_device_label("widget", longer, label), KILN_ERR_TOO_BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_destroy_labelled),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
