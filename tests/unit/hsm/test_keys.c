/*
 * Keys inside the token (SoftHSM2): generation for every algorithm with
 * the right attributes (checked through PKCS#11 and with OpenSC's
 * pkcs11-tool), lookups, public keys, duplicates and destruction.
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
	kt_hsm_setup(h, "keys", 2);
	return 0;
}

static int teardown(void **state)
{
	kt_hsm_teardown(*state);
	free(*state);
	return 0;
}

/* A session of our own on the token's slot (it shares the pool's login). */
static CK_SESSION_HANDLE raw_session(struct kt_hsm *h)
{
	CK_SESSION_HANDLE s;

	assert_int_equal(h->p11->fn->C_OpenSession(h->token->slot,
						   CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
						   &s), CKR_OK);
	return s;
}

static CK_ULONG raw_find(struct kt_hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
			 const char *label, CK_OBJECT_HANDLE *out)
{
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

/* Every promise the header makes about a generated key, checked through PKCS#11. */
static void check_attributes(struct kt_hsm *h, const kiln_key_ref *ref)
{
	CK_SESSION_HANDLE s = raw_session(h);
	CK_OBJECT_HANDLE priv = 0, pub = 0;
	CK_FUNCTION_LIST_PTR fn = h->p11->fn;
	uint8_t value[2048], id[64];
	CK_ATTRIBUTE a;

	assert_int_equal(raw_find(h, s, CKO_PRIVATE_KEY, ref->label, &priv), 1);
	assert_int_equal(raw_find(h, s, CKO_PUBLIC_KEY, ref->label, &pub), 1);
	assert_int_equal(raw_bool(h, s, priv, CKA_TOKEN), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_PRIVATE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_ALWAYS_SENSITIVE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(raw_bool(h, s, priv, CKA_NEVER_EXTRACTABLE), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_SIGN), CK_TRUE);
	assert_int_equal(raw_bool(h, s, priv, CKA_DECRYPT), CK_FALSE);
	assert_int_equal(raw_bool(h, s, priv, CKA_DERIVE), CK_FALSE);
	assert_int_equal(raw_bool(h, s, priv, CKA_UNWRAP), CK_FALSE);
	assert_int_equal(raw_bool(h, s, pub, CKA_TOKEN), CK_TRUE);
	assert_int_equal(raw_bool(h, s, pub, CKA_VERIFY), CK_TRUE);

	/* The private value cannot be read, whichever attribute holds it. */
	a = (CK_ATTRIBUTE){ ref->alg == KILN_ALG_RSA3072 ? CKA_PRIVATE_EXPONENT : CKA_VALUE, value,
			    sizeof(value) };
	assert_int_equal(fn->C_GetAttributeValue(s, priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	if (ref->alg == KILN_ALG_RSA3072) {
		a = (CK_ATTRIBUTE){ CKA_PRIME_1, value, sizeof(value) };
		assert_int_equal(fn->C_GetAttributeValue(s, priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
	}
	/* Both halves carry the ref's random 16-byte id. */
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	assert_int_equal(fn->C_GetAttributeValue(s, priv, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 16);
	assert_memory_equal(id, ref->id, 16);
	a = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	assert_int_equal(fn->C_GetAttributeValue(s, pub, &a, 1), CKR_OK);
	assert_memory_equal(id, ref->id, 16);
	assert_int_equal(fn->C_CloseSession(s), CKR_OK);
}

static void generate_and_check(struct kt_hsm *h, kiln_alg alg, const char *label)
{
	kiln_key_ref ref;
	EVP_PKEY *pub = NULL, *again = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, alg, label, &ref, &pub, &d), &d);
	assert_string_equal(ref.label, label);
	assert_int_equal(ref.alg, alg);
	assert_int_equal(ref.id_len, 16);
	assert_non_null(pub);
	assert_int_equal(kiln_alg_of_key(pub), alg);
	/* Read back on its own, the public key is the same key. */
	KT_OKD(kiln_token_public_key(h->token, &ref, &again, &d), &d);
	assert_int_equal(EVP_PKEY_eq(pub, again), 1);
	KT_OKD(kiln_token_find(h->token, &ref, &d), &d);
	check_attributes(h, &ref);
	EVP_PKEY_free(again);
	EVP_PKEY_free(pub);
}

static void test_generate_p256(void **state)
{
	generate_and_check(*state, KILN_ALG_P256, "ca-p256");
}

static void test_generate_p384(void **state)
{
	generate_and_check(*state, KILN_ALG_P384, "ca-p384");
}

static void test_generate_ed25519(void **state)
{
	struct kt_hsm *h = *state;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub;
	uint8_t params[64];
	CK_ATTRIBUTE a = { CKA_EC_PARAMS, params, sizeof(params) };

	generate_and_check(h, KILN_ALG_ED25519, "log-ed25519");
	/* Named the PKCS#11 3.0 way, as a PrintableString. */
	s = raw_session(h);
	assert_int_equal(raw_find(h, s, CKO_PUBLIC_KEY, "log-ed25519", &pub), 1);
	assert_int_equal(h->p11->fn->C_GetAttributeValue(s, pub, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 14);
	assert_memory_equal(params, "\x13\x0c" "edwards25519", 14);
	assert_int_equal(h->p11->fn->C_CloseSession(s), CKR_OK);
}

static void test_generate_rsa3072(void **state)
{
	generate_and_check(*state, KILN_ALG_RSA3072, "ca-rsa");
}

static void test_pkcs11_tool_agrees(void **state)
{
	struct kt_hsm *h = *state;
	char *out = kt_path(h->dir, "objects.txt");
	kiln_key_ref ref;
	kiln_buf text;
	const char *p, *access, *eol;
	char line[256];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, "tool-check", &ref, NULL, &d), &d);
	assert_int_equal(kt_system("pkcs11-tool --module %s --token-label %s --login --pin %s "
				   "--list-objects > '%s' 2>&1",
				   KILN_SOFTHSM2_MODULE, KT_TOKEN_LABEL, KT_USER_PIN, out), 0);
	kiln_buf_init(&text, KILN_BUF_DEFAULT_MAX);
	kt_read_file(out, &text);
	/*
	 * Private Key Object; EC
	 *   label:      tool-check
	 *   Usage:      sign
	 *   Access:     sensitive, always sensitive, never extractable, local
	 */
	p = strstr(kiln_buf_cstr(&text), "Private Key Object; EC\n  label:      tool-check\n");
	assert_non_null(p);
	/* Signing only: no decrypt, unwrap or derive. */
	assert_non_null(strstr(p, "\n  Usage:      sign\n"));
	access = strstr(p, "Access:");
	assert_non_null(access);
	eol = strchr(access, '\n');
	assert_non_null(eol);
	assert_true((size_t)(eol - access) < sizeof(line));
	memcpy(line, access, (size_t)(eol - access));
	line[eol - access] = '\0';
	assert_non_null(strstr(line, " sensitive"));
	assert_non_null(strstr(line, "never extractable"));
	/* "extractable" only ever as "never extractable". */
	memcpy(strstr(line, "never extractable"), "never-XXXXXXXXXXX", 17);
	assert_null(strstr(line, "extractable"));
	kiln_buf_cleanup(&text);
	free(out);
}

static void test_duplicate_label(void **state)
{
	struct kt_hsm *h = *state;
	kiln_key_ref a, b;
	CK_SESSION_HANDLE s;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, "issuing", &a, NULL, &d), &d);
	/* Same label, other algorithm: still refused, and nothing new in the token. */
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_ED25519, "issuing", &b, NULL, &d),
	       KILN_ERR_EXISTS);
	assert_string_equal(d.text, "HSM token kiln-test already holds a key labelled issuing");
	s = raw_session(h);
	assert_int_equal(raw_find(h, s, CKO_PRIVATE_KEY, "issuing", NULL), 1);
	assert_int_equal(raw_find(h, s, CKO_PUBLIC_KEY, "issuing", NULL), 1);
	assert_int_equal(h->p11->fn->C_CloseSession(s), CKR_OK);
	KT_OK(kiln_token_find(h->token, &a, NULL));
}

static void test_find_missing(void **state)
{
	struct kt_hsm *h = *state;
	kiln_key_ref ref, r;
	EVP_PKEY *pub = NULL;
	char want[256];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, "present", &ref, NULL, &d), &d);

	r = ref;
	memcpy(r.label, "absent", sizeof("absent"));
	r.id_len = 0;
	KT_ERR(kiln_token_find(h->token, &r, &d), KILN_ERR_HSM_KEY_MISSING);
	assert_string_equal(d.text, "no private key labelled absent in HSM token kiln-test");
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_public_key(h->token, &r, &pub, &d), KILN_ERR_HSM_KEY_MISSING);
	assert_string_equal(d.text, "no public key labelled absent in HSM token kiln-test");
	assert_null(pub);

	/* Right label, wrong id. */
	r = ref;
	r.id[0] ^= 0xff;
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_find(h->token, &r, &d), KILN_ERR_HSM_KEY_MISSING);
	assert_non_null(strstr(d.text, "no private key labelled present with CKA_ID "));
	/* By label alone it is found. */
	r = ref;
	r.id_len = 0;
	KT_OKD(kiln_token_find(h->token, &r, &d), &d);

	/* Right key, wrong algorithm: P-256 is neither P-384 nor Ed25519. */
	r = ref;
	r.alg = KILN_ALG_P384;
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_find(h->token, &r, &d), KILN_ERR_HSM_KEY_MISSING);
	assert_string_equal(d.text, "key present in HSM token kiln-test is not a p384 key");
	r.alg = KILN_ALG_ED25519;
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_public_key(h->token, &r, &pub, &d), KILN_ERR_HSM_KEY_MISSING);
	(void)snprintf(want, sizeof(want), "key present in HSM token kiln-test is not a ed25519 key");
	assert_string_equal(d.text, want);
}

static void test_ambiguous_label(void **state)
{
	struct kt_hsm *h = *state;
	kiln_key_ref ref, by_label;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE;
	static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48,
					0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) },
			      { CKA_TOKEN, &yes, 1 },
			      { CKA_LABEL, "twin", 4 } };
	CK_ATTRIBUTE kt[] = { { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
			      { CKA_SIGN, &yes, 1 }, { CKA_LABEL, "twin", 4 } };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, "twin", &ref, NULL, &d), &d);
	/* Another tool puts a second key with the same label (and no id) into the token. */
	s = raw_session(h);
	assert_int_equal(h->p11->fn->C_GenerateKeyPair(s, &mech, pt, 3, kt, 4, &pub, &priv),
			 CKR_OK);
	assert_int_equal(h->p11->fn->C_CloseSession(s), CKR_OK);
	by_label = ref;
	by_label.id_len = 0;
	KT_ERR(kiln_token_find(h->token, &by_label, &d), KILN_ERR_HSM);
	assert_string_equal(d.text, "HSM token kiln-test holds several private keys labelled twin; "
				    "name the key by CKA_ID");
	/* The id kiln gave its key still tells them apart. */
	KT_OK(kiln_token_find(h->token, &ref, NULL));
	/* And destroying by label alone refuses to guess. */
	KT_ERR(kiln_token_destroy(h->token, &by_label, NULL), KILN_ERR_HSM);
	KT_OK(kiln_token_find(h->token, &ref, NULL));
}

static void test_destroy(void **state)
{
	struct kt_hsm *h = *state;
	kiln_key_ref ref, again;
	EVP_PKEY *pub = NULL;
	CK_SESSION_HANDLE s;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_ED25519, "retired", &ref, NULL, &d), &d);
	KT_OKD(kiln_token_find(h->token, &ref, &d), &d);
	KT_OKD(kiln_token_destroy(h->token, &ref, &d), &d);
	/* Both halves are gone. */
	s = raw_session(h);
	assert_int_equal(raw_find(h, s, CKO_PRIVATE_KEY, "retired", NULL), 0);
	assert_int_equal(raw_find(h, s, CKO_PUBLIC_KEY, "retired", NULL), 0);
	assert_int_equal(h->p11->fn->C_CloseSession(s), CKR_OK);
	KT_ERR(kiln_token_find(h->token, &ref, &d), KILN_ERR_HSM_KEY_MISSING);
	KT_ERR(kiln_token_public_key(h->token, &ref, &pub, NULL), KILN_ERR_HSM_KEY_MISSING);
	KT_ERR(kiln_token_destroy(h->token, &ref, NULL), KILN_ERR_HSM_KEY_MISSING);
	/* The label is free again; the new key has a new id. */
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_ED25519, "retired", &again, NULL, &d), &d);
	assert_memory_not_equal(again.id, ref.id, 16);
	KT_ERR(kiln_token_find(h->token, &ref, NULL), KILN_ERR_HSM_KEY_MISSING);
}

static void test_survives_reopen(void **state)
{
	struct kt_hsm *h = *state;
	struct kiln_token_opts o = { KT_TOKEN_LABEL, KT_USER_PIN, 1 };
	kiln_key_ref ref;
	EVP_PKEY *pub = NULL, *again = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P384, "durable", &ref, &pub, &d), &d);
	kiln_token_close(h->token);
	h->token = NULL;
	/* CKA_TOKEN: the key outlives every session. */
	KT_OKD(kiln_token_open(h->p11, &o, &h->token, &d), &d);
	KT_OKD(kiln_token_find(h->token, &ref, &d), &d);
	KT_OKD(kiln_token_public_key(h->token, &ref, &again, &d), &d);
	assert_int_equal(EVP_PKEY_eq(pub, again), 1);
	EVP_PKEY_free(again);
	EVP_PKEY_free(pub);
}

static void test_bad_refs(void **state)
{
	struct kt_hsm *h = *state;
	char long_label[KILN_KEY_LABEL_MAX + 1];
	kiln_key_ref ref, r;
	EVP_PKEY *pub = NULL;
	kiln_diag d;

	memset(long_label, 'k', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = '\0';
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_P256, "", &ref, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_P256, long_label, &ref, NULL, NULL),
	       KILN_ERR_ARG);
	long_label[KILN_KEY_LABEL_MAX - 1] = '\0'; /* 63 bytes: the longest allowed */
	KT_OKD(kiln_token_generate(h->token, KILN_ALG_P256, long_label, &ref, NULL, &d), &d);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_P256, "new\nline", &ref, NULL, NULL),
	       KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_NONE, "x", &ref, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG__COUNT, "x", &ref, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(NULL, KILN_ALG_P256, "x", &ref, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_P256, "x", NULL, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_generate(h->token, KILN_ALG_P256, NULL, &ref, NULL, NULL), KILN_ERR_ARG);

	r = ref;
	memset(r.label, 'x', sizeof(r.label)); /* not NUL-terminated */
	KT_ERR(kiln_token_find(h->token, &r, NULL), KILN_ERR_ARG);
	r = ref;
	r.id_len = KILN_KEY_ID_MAX + 1;
	KT_ERR(kiln_token_find(h->token, &r, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_find(h->token, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_find(NULL, &ref, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_public_key(h->token, &ref, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_public_key(NULL, &ref, &pub, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_destroy(NULL, &ref, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_destroy(h->token, NULL, NULL), KILN_ERR_ARG);
	assert_null(pub);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_generate_p256),
		T(test_generate_p384),
		T(test_generate_ed25519),
		T(test_generate_rsa3072),
		T(test_pkcs11_tool_agrees),
		T(test_duplicate_label),
		T(test_find_missing),
		T(test_ambiguous_label),
		T(test_destroy),
		T(test_survives_reopen),
		T(test_bad_refs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
