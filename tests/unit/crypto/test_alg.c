/* Unit tests for src/crypto/alg.c: the signature algorithm registry. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/objects.h>
#include <string.h>

/* Keys are made once per kind and shared (RSA generation is slow under valgrind). */
static EVP_PKEY *gen(const char *what)
{
	return kt_key(what);
}

static int group_teardown(void **state)
{
	(void)state;
	kt_keys_free();
	return 0;
}

/* What the registry must say, written out independently. */
static const struct {
	kiln_alg alg;
	const char *name;
	int pkey_type;
	int curve_nid;
	unsigned bits;
	int md_nid;
	int sig_nid;
	int key_nid; /* the public key algorithm the signature OID pairs with */
	size_t coord;
	bool null_params;
} expected[] = {
	{ KILN_ALG_P256, "p256", EVP_PKEY_EC, NID_X9_62_prime256v1, 256, NID_sha256,
	  NID_ecdsa_with_SHA256, NID_X9_62_id_ecPublicKey, 32, false },
	{ KILN_ALG_P384, "p384", EVP_PKEY_EC, NID_secp384r1, 384, NID_sha384, NID_ecdsa_with_SHA384,
	  NID_X9_62_id_ecPublicKey, 48, false },
	{ KILN_ALG_ED25519, "ed25519", EVP_PKEY_ED25519, NID_undef, 256, NID_undef, NID_ED25519,
	  NID_ED25519, 0, false },
	{ KILN_ALG_RSA3072, "rsa3072", EVP_PKEY_RSA, NID_undef, 3072, NID_sha256,
	  NID_sha256WithRSAEncryption, NID_rsaEncryption, 0, true },
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static void test_registry_covers_every_alg(void **state)
{
	(void)state;
	assert_int_equal(N_EXPECTED, KILN_ALG__COUNT - 1);
	assert_null(kiln_alg_get(KILN_ALG_NONE));
	assert_null(kiln_alg_get(KILN_ALG__COUNT));
	assert_null(kiln_alg_get((kiln_alg)(KILN_ALG__COUNT + 7)));
	assert_null(kiln_alg_get((kiln_alg)-1));
	for (int i = KILN_ALG_NONE + 1; i < KILN_ALG__COUNT; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get((kiln_alg)i);

		assert_non_null(ai);
		assert_int_equal(ai->alg, i);
		assert_non_null(ai->name);
		assert_non_null(ai->display);
		assert_true(strlen(ai->name) > 0);
		assert_true(strlen(ai->display) > 0);
		assert_non_null(ai->algid.ptr);
		assert_true(ai->algid.len > 0);
	}
}

static void test_registry_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get(expected[i].alg);

		assert_non_null(ai);
		assert_string_equal(ai->name, expected[i].name);
		assert_int_equal(ai->pkey_type, expected[i].pkey_type);
		assert_int_equal(ai->curve_nid, expected[i].curve_nid);
		assert_int_equal(ai->bits, expected[i].bits);
		assert_int_equal(ai->md_nid, expected[i].md_nid);
		assert_int_equal(ai->sig_nid, expected[i].sig_nid);
		assert_int_equal(ai->ec_coord_len, expected[i].coord);
		/* EC rows: the coordinate length follows from the curve size */
		if (ai->pkey_type == EVP_PKEY_EC) {
			assert_int_equal(ai->ec_coord_len, (ai->bits + 7) / 8);
			assert_int_not_equal(ai->curve_nid, NID_undef);
		} else {
			assert_int_equal(ai->ec_coord_len, 0);
		}
	}
}

/* The signature OID pairs the digest and key algorithm the row claims. */
static void test_sig_nid_matches_digest_and_key(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get(expected[i].alg);
		int md = -1, pk = -1;

		assert_int_equal(OBJ_find_sigid_algs(ai->sig_nid, &md, &pk), 1);
		assert_int_equal(md, ai->md_nid);
		assert_int_equal(pk, expected[i].key_nid);
	}
}

static void test_max_sig_len(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get(expected[i].alg);
		size_t want;

		switch (ai->pkey_type) {
		case EVP_PKEY_EC: {
			/* SEQUENCE { INTEGER r, INTEGER s }, each with a possible 0x00 pad */
			size_t ints = 2 * (2 + ai->ec_coord_len + 1);

			want = ints + (ints < 128 ? 2 : 3);
			break;
		}
		case EVP_PKEY_ED25519:
			want = 64;
			break;
		case EVP_PKEY_RSA:
			want = ai->bits / 8;
			break;
		default:
			fail();
			return;
		}
		assert_int_equal(ai->max_sig_len, want);
	}
}

/* The DER AlgorithmIdentifier decodes, to the row's OID, with the right parameters. */
static void test_algid_der(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get(expected[i].alg);
		const unsigned char *p = ai->algid.ptr;
		X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &p, (long)ai->algid.len);
		const ASN1_OBJECT *obj = NULL;
		const void *pval = NULL;
		int ptype = -1;
		unsigned char *re = NULL;
		int n;

		assert_non_null(alg);
		/* every byte consumed */
		assert_ptr_equal(p, ai->algid.ptr + ai->algid.len);
		X509_ALGOR_get0(&obj, &ptype, &pval, alg);
		assert_int_equal(OBJ_obj2nid(obj), ai->sig_nid);
		/* RFC 4055: NULL parameters for RSA; RFC 5758 and 8410: absent for ECDSA and EdDSA */
		if (expected[i].null_params)
			assert_int_equal(ptype, V_ASN1_NULL);
		else
			assert_int_equal(ptype, V_ASN1_UNDEF);
		/* and it is DER: re-encoding gives the same bytes */
		n = i2d_X509_ALGOR(alg, &re);
		assert_int_equal(n, ai->algid.len);
		assert_memory_equal(re, ai->algid.ptr, ai->algid.len);
		assert_true(kiln_is_ok(kiln_der_check(ai->algid)));
		OPENSSL_free(re);
		X509_ALGOR_free(alg);
	}
}

static void test_parse_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		kiln_alg a = KILN_ALG_NONE;

		KT_OK(kiln_alg_parse(expected[i].name, &a));
		assert_int_equal(a, expected[i].alg);
	}
}

static void test_parse_unknown(void **state)
{
	static const char *const bad[] = {
		"", "P256", "p-256", "p256 ", " p256", "p521", "rsa2048", "rsa", "ed448", "ecdsa",
		"none", "ed25519\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_alg a = (kiln_alg)77;

		KT_ERR(kiln_alg_parse(bad[i], &a), KILN_ERR_ARG);
		assert_int_equal(a, 77); /* untouched */
	}
	{
		kiln_alg a = (kiln_alg)77;

		KT_ERR(kiln_alg_parse(NULL, &a), KILN_ERR_ARG);
		assert_int_equal(a, 77);
	}
}

static void expect_alg_of(const char *what, kiln_alg want)
{
	assert_int_equal(kiln_alg_of_key(gen(what)), want);
}

static void test_alg_of_key(void **state)
{
	(void)state;
	expect_alg_of("p256", KILN_ALG_P256);
	expect_alg_of("p384", KILN_ALG_P384);
	expect_alg_of("ed25519", KILN_ALG_ED25519);
	expect_alg_of("rsa3072", KILN_ALG_RSA3072);
	expect_alg_of("rsa2048", KILN_ALG_NONE);
	expect_alg_of("secp256k1", KILN_ALG_NONE);
	expect_alg_of("p521", KILN_ALG_NONE);
	expect_alg_of("ed448", KILN_ALG_NONE);
	expect_alg_of("x25519", KILN_ALG_NONE);
	assert_int_equal(kiln_alg_of_key(NULL), KILN_ALG_NONE);
}

/* A public-only key (as an HSM returns it) maps the same way as the key pair. */
static void test_alg_of_public_key(void **state)
{
	EVP_PKEY *k = gen("p384"), *pub;
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	(void)state;
	n = i2d_PUBKEY(k, &der);
	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	assert_non_null(pub);
	assert_int_equal(kiln_alg_of_key(pub), KILN_ALG_P384);
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
}

/* The registry's curve and bits agree with a real key of that algorithm. */
static void test_registry_matches_real_keys(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct kiln_alg_info *ai = kiln_alg_get(expected[i].alg);
		EVP_PKEY *k = gen(expected[i].name);

		assert_int_equal(EVP_PKEY_get_base_id(k), ai->pkey_type);
		assert_int_equal(EVP_PKEY_get_bits(k), (int)ai->bits);
		if (ai->pkey_type == EVP_PKEY_RSA)
			assert_int_equal(EVP_PKEY_get_size(k), (int)ai->max_sig_len);
		else
			assert_true(EVP_PKEY_get_size(k) <= (int)ai->max_sig_len);
		if (ai->pkey_type == EVP_PKEY_EC) {
			char group[64];
			size_t glen = 0;

			assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group,
									sizeof(group), &glen),
					 1);
			assert_int_equal(OBJ_sn2nid(group), ai->curve_nid);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_covers_every_alg),
		cmocka_unit_test(test_registry_fields),
		cmocka_unit_test(test_sig_nid_matches_digest_and_key),
		cmocka_unit_test(test_max_sig_len),
		cmocka_unit_test(test_algid_der),
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_parse_unknown),
		cmocka_unit_test(test_alg_of_key),
		cmocka_unit_test(test_alg_of_public_key),
		cmocka_unit_test(test_registry_matches_real_keys),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
