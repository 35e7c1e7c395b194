/*
 * src/hsm/aead.c: the backup key (AES-256) made inside SoftHSM2 as sensitive
 * and non-extractable, found again rather than made twice; AES-256-GCM
 * round trips through the token; a changed ciphertext, tag, AAD or IV fails
 * authentication and yields nothing; a missing key and bad arguments.
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
	kt_hsm_setup(h, "aead", 2);
	return 0;
}

static int teardown(void **state)
{
	kt_hsm_teardown(*state);
	free(*state);
	return 0;
}

static CK_SESSION_HANDLE raw_session(struct kt_hsm *h)
{
	CK_SESSION_HANDLE s;

	assert_int_equal(h->p11->fn->C_OpenSession(h->token->slot,
						   CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
						   &s), CKR_OK);
	return s;
}

static CK_ULONG raw_find(struct kt_hsm *h, CK_SESSION_HANDLE s, const char *label,
			 CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) },
			     { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = 0;

	assert_int_equal(h->p11->fn->C_FindObjectsInit(s, t, 2), CKR_OK);
	assert_int_equal(h->p11->fn->C_FindObjects(s, found, 4, &n), CKR_OK);
	assert_int_equal(h->p11->fn->C_FindObjectsFinal(s), CKR_OK);
	if (n > 0 && out != NULL)
		*out = found[0];
	return n;
}

static CK_BBOOL raw_bool(struct kt_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
			 CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xee;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_int_equal(h->p11->fn->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
	return v;
}

static void test_key_attributes(void **state)
{
	struct kt_hsm *h = *state;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE o = 0;
	uint8_t value[64];
	CK_ATTRIBUTE a = { CKA_VALUE, value, sizeof(value) };
	bool created = false;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_token_secret_ensure(h->token, "backup", &created, &d));
	assert_true(created);
	KT_OK(kiln_token_secret_ensure(h->token, "backup", &created, &d));
	assert_false(created);
	s = raw_session(h);
	assert_int_equal(raw_find(h, s, "backup", &o), 1);
	assert_int_equal(raw_bool(h, s, o, CKA_TOKEN), CK_TRUE);
	assert_int_equal(raw_bool(h, s, o, CKA_PRIVATE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, o, CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, o, CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(raw_bool(h, s, o, CKA_ENCRYPT), CK_TRUE);
	assert_int_equal(raw_bool(h, s, o, CKA_DECRYPT), CK_TRUE);
	assert_int_equal(raw_bool(h, s, o, CKA_WRAP), CK_FALSE);
	assert_int_equal(raw_bool(h, s, o, CKA_SIGN), CK_FALSE);
	/* The key value cannot be read out. */
	assert_int_equal(h->p11->fn->C_GetAttributeValue(s, o, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	(void)h->p11->fn->C_CloseSession(s);
	KT_ERR(kiln_token_secret_ensure(h->token, "", NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_token_secret_ensure(NULL, "backup", NULL, &d), KILN_ERR_ARG);
}

static void test_round_trip_and_tampering(void **state)
{
	struct kt_hsm *h = *state;
	static const char msg[] = "the inventory, and kiln.yaml";
	uint8_t iv[KILN_AEAD_IV_LEN], iv2[KILN_AEAD_IV_LEN];
	struct kiln_aead_req req;
	kiln_buf ct, pt, bad;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_token_secret_ensure(h->token, "backup", NULL, &d));
	memset(iv, 7, sizeof(iv));
	kiln_buf_init(&ct, 1 << 20);
	kiln_buf_init(&pt, 1 << 20);
	kiln_buf_init(&bad, 1 << 20);
	req = (struct kiln_aead_req){ "backup", iv, kiln_slice_str("header"),
				      kiln_slice_of(msg, sizeof(msg) - 1), "test" };
	KT_OK(kiln_token_encrypt(h->token, &req, &ct, &d));
	assert_int_equal(ct.len, sizeof(msg) - 1 + KILN_AEAD_TAG_LEN);
	assert_memory_not_equal(ct.ptr, msg, sizeof(msg) - 1);
	req.in = kiln_buf_view(&ct);
	KT_OK(kiln_token_decrypt(h->token, &req, &pt, &d));
	assert_int_equal(pt.len, sizeof(msg) - 1);
	assert_memory_equal(pt.ptr, msg, pt.len);
	/* A flipped ciphertext bit, a flipped tag bit, another AAD, another IV. */
	ct.ptr[0] ^= 1;
	KT_ERR(kiln_token_decrypt(h->token, &req, &bad, &d), KILN_ERR_DECRYPT);
	assert_int_equal(bad.len, 0);
	ct.ptr[0] ^= 1;
	ct.ptr[ct.len - 1] ^= 0x80;
	KT_ERR(kiln_token_decrypt(h->token, &req, &bad, &d), KILN_ERR_DECRYPT);
	assert_int_equal(bad.len, 0);
	ct.ptr[ct.len - 1] ^= 0x80;
	req.aad = kiln_slice_str("Header");
	KT_ERR(kiln_token_decrypt(h->token, &req, &bad, &d), KILN_ERR_DECRYPT);
	req.aad = kiln_slice_str("header");
	memcpy(iv2, iv, sizeof(iv));
	iv2[11] ^= 1;
	req.iv = iv2;
	KT_ERR(kiln_token_decrypt(h->token, &req, &bad, &d), KILN_ERR_DECRYPT);
	assert_int_equal(bad.len, 0);
	req.iv = iv;
	/* Too short to hold a tag; no IV; no such key. */
	req.in = kiln_slice_of(ct.ptr, 15);
	KT_ERR(kiln_token_decrypt(h->token, &req, &bad, &d), KILN_ERR_ARG);
	req.in = kiln_buf_view(&ct);
	req.iv = NULL;
	KT_ERR(kiln_token_encrypt(h->token, &req, &bad, &d), KILN_ERR_ARG);
	req.iv = iv;
	req.label = "no-such-key";
	KT_ERR(kiln_token_encrypt(h->token, &req, &bad, &d), KILN_ERR_HSM_KEY_MISSING);
	kiln_buf_cleanup(&ct);
	kiln_buf_cleanup(&pt);
	kiln_buf_cleanup(&bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_and_tampering, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
