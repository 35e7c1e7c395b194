/* Unit tests for src/crypto/key.c: key description, SPKI and fingerprint. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <string.h>

/* Keys are made once per kind and shared (RSA generation is slow under valgrind). */
static EVP_PKEY *gen(const char *what)
{
	return kt_key(what);
}

static EVP_PKEY *fresh(const char *what)
{
	return kt_keygen(what);
}

static int group_teardown(void **state)
{
	(void)state;
	kt_keys_free();
	return 0;
}

/* The public half only, decoded from its SPKI the way a CSR or an HSM hands it over. */
static EVP_PKEY *public_only(const EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int n = i2d_PUBKEY(k, &der);

	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	assert_non_null(pub);
	OPENSSL_free(der);
	return pub;
}

static const struct {
	const char *gen;
	kiln_key_type type;
	unsigned bits;
	const char *curve;
	const char *name;
} cases[] = {
	{ "p256", KILN_KEY_EC, 256, "p256", "p256" },
	{ "p384", KILN_KEY_EC, 384, "p384", "p384" },
	{ "p521", KILN_KEY_EC, 521, "p521", "p521" },
	{ "secp256k1", KILN_KEY_EC, 256, "secp256k1", "ec-secp256k1" },
	{ "ed25519", KILN_KEY_ED25519, 256, "", "ed25519" },
	{ "rsa2048", KILN_KEY_RSA, 2048, "", "rsa2048" },
	{ "rsa3072", KILN_KEY_RSA, 3072, "", "rsa3072" },
};

static void check_desc(const struct kiln_key_desc *kd, size_t i)
{
	assert_int_equal(kd->type, cases[i].type);
	assert_int_equal(kd->bits, cases[i].bits);
	assert_string_equal(kd->curve, cases[i].curve);
	assert_string_equal(kd->name, cases[i].name);
}

static void test_describe(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EVP_PKEY *k = gen(cases[i].gen);
		EVP_PKEY *pub = public_only(k);
		struct kiln_key_desc kd;

		memset(&kd, 0x55, sizeof(kd));
		KT_OK(kiln_key_describe(k, &kd));
		check_desc(&kd, i);
		/* the public half describes the same */
		memset(&kd, 0x55, sizeof(kd));
		KT_OK(kiln_key_describe(pub, &kd));
		check_desc(&kd, i);
		EVP_PKEY_free(pub);
	}
}

static void test_describe_unknown_types(void **state)
{
	EVP_PKEY *k;
	struct kiln_key_desc kd;

	(void)state;
	k = gen("ed448");
	KT_OK(kiln_key_describe(k, &kd));
	assert_int_equal(kd.type, KILN_KEY_UNKNOWN);
	assert_string_equal(kd.name, "ED448");
	assert_string_equal(kd.curve, "");
	k = gen("x25519");
	KT_OK(kiln_key_describe(k, &kd));
	assert_int_equal(kd.type, KILN_KEY_UNKNOWN);
	assert_string_equal(kd.name, "X25519");
}

static void test_describe_null(void **state)
{
	struct kiln_key_desc kd;

	(void)state;
	memset(&kd, 0x55, sizeof(kd));
	KT_ERR(kiln_key_describe(NULL, &kd), KILN_ERR_ARG);
	/* cleared, so a caller that ignores the error reads nothing stale */
	assert_int_equal(kd.type, KILN_KEY_UNKNOWN);
	assert_int_equal(kd.bits, 0);
	assert_string_equal(kd.name, "");
	assert_string_equal(kd.curve, "");
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(kiln_key_type_name(KILN_KEY_EC), "ec");
	assert_string_equal(kiln_key_type_name(KILN_KEY_ED25519), "ed25519");
	assert_string_equal(kiln_key_type_name(KILN_KEY_RSA), "rsa");
	assert_string_equal(kiln_key_type_name(KILN_KEY_UNKNOWN), "unknown");
	assert_string_equal(kiln_key_type_name((kiln_key_type)(KILN_KEY_RSA + 1)), "unknown");
	assert_string_equal(kiln_key_type_name((kiln_key_type)-1), "unknown");
}

static void test_type_round_trip(void **state)
{
	(void)state;
	for (int t = KILN_KEY_EC; t <= KILN_KEY_RSA; t++) {
		kiln_key_type back = KILN_KEY_UNKNOWN;

		KT_OK(kiln_key_type_parse(kiln_key_type_name((kiln_key_type)t), &back));
		assert_int_equal(back, t);
	}
}

static void test_type_parse_errors(void **state)
{
	static const char *const bad[] = { "unknown", "", "EC", "Rsa", "ecdsa", "ed448", "rsa ", "p256" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_key_type t = (kiln_key_type)42;

		KT_ERR(kiln_key_type_parse(bad[i], &t), KILN_ERR_ARG);
		assert_int_equal(t, 42);
	}
	{
		kiln_key_type t = (kiln_key_type)42;

		KT_ERR(kiln_key_type_parse(NULL, &t), KILN_ERR_ARG);
		assert_int_equal(t, 42);
	}
}

static void test_spki(void **state)
{
	EVP_PKEY *k = gen("p256");
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	kiln_buf b;

	(void)state;
	assert_true(n > 0);
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_buf_append_str(&b, "prefix"));
	KT_OK(kiln_key_spki(k, &b));
	/* appended after the existing contents */
	assert_int_equal(b.len, 6 + (size_t)n);
	assert_memory_equal(b.ptr, "prefix", 6);
	assert_memory_equal(b.ptr + 6, der, (size_t)n);
	assert_true(kiln_is_ok(kiln_der_check(kiln_slice_of(b.ptr + 6, (size_t)n))));
	kiln_buf_cleanup(&b);
	/* the buffer's ceiling applies */
	kiln_buf_init(&b, (size_t)n - 1);
	KT_ERR(kiln_key_spki(k, &b), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	/* no key */
	kiln_buf_init(&b, 4096);
	KT_ERR(kiln_key_spki(NULL, &b), KILN_ERR_CRYPTO);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	OPENSSL_free(der);
}

/* The direct SPKI encodings agree with OpenSSL's encoder, byte for byte. */
static void test_spki_matches_openssl(void **state)
{
	static const char *const types[] = { "p256", "p384", "ed25519", "rsa2048", "p521",
					     "secp256k1" };

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *k = gen(types[i]), *pub = public_only(k);
		unsigned char *der = NULL;
		int n = i2d_PUBKEY(k, &der);
		kiln_buf b;

		assert_true(n > 0);
		kiln_buf_init(&b, 4096);
		KT_OK(kiln_key_spki(k, &b));
		assert_int_equal(b.len, (size_t)n);
		assert_memory_equal(b.ptr, der, (size_t)n);
		b.len = 0;
		KT_OK(kiln_key_spki(pub, &b));
		assert_memory_equal(b.ptr, der, (size_t)n);
		kiln_buf_cleanup(&b);
		OPENSSL_free(der);
		EVP_PKEY_free(pub);
	}
	/* a P-256 key set to compressed points: whichever path encodes it, the bytes agree */
	{
		EVP_PKEY *k = fresh("p256");
		unsigned char *der = NULL;
		kiln_buf b;
		int n;

		assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
								 "compressed"), 1);
		n = i2d_PUBKEY(k, &der);
		assert_true(n > 0);
		kiln_buf_init(&b, 4096);
		KT_OK(kiln_key_spki(k, &b));
		assert_int_equal(b.len, (size_t)n);
		assert_memory_equal(b.ptr, der, (size_t)n);
		kiln_buf_cleanup(&b);
		OPENSSL_free(der);
		EVP_PKEY_free(k);
	}
}

static void test_fingerprint_is_sha256_of_spki(void **state)
{
	static const char *const types[] = { "p256", "p384", "ed25519", "rsa2048" };

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *k = gen(types[i]), *pub = public_only(k);
		unsigned char *der = NULL;
		uint8_t want[32], got[32], got_pub[32];
		unsigned int mdlen = 0;
		int n = i2d_PUBKEY(k, &der);

		assert_true(n > 0);
		assert_int_equal(EVP_Digest(der, (size_t)n, want, &mdlen, EVP_sha256(), NULL), 1);
		assert_int_equal(mdlen, 32);
		memset(got, 0, sizeof(got));
		KT_OK(kiln_key_fingerprint(k, got));
		assert_memory_equal(got, want, 32);
		KT_OK(kiln_key_fingerprint(pub, got_pub));
		assert_memory_equal(got_pub, want, 32);
		OPENSSL_free(der);
		EVP_PKEY_free(pub);
	}
}

static void test_fingerprint_differs_per_key(void **state)
{
	EVP_PKEY *a = fresh("p256"), *b = fresh("p256");
	uint8_t fa[32], fb[32];

	(void)state;
	KT_OK(kiln_key_fingerprint(a, fa));
	KT_OK(kiln_key_fingerprint(b, fb));
	assert_memory_not_equal(fa, fb, 32);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void test_fingerprint_null(void **state)
{
	uint8_t out[32];
	static const uint8_t untouched[32];

	(void)state;
	memset(out, 0, sizeof(out));
	KT_ERR(kiln_key_fingerprint(NULL, out), KILN_ERR_CRYPTO);
	assert_memory_equal(out, untouched, sizeof(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_describe_unknown_types),
		cmocka_unit_test(test_describe_null),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_type_round_trip),
		cmocka_unit_test(test_type_parse_errors),
		cmocka_unit_test(test_spki),
		cmocka_unit_test(test_spki_matches_openssl),
		cmocka_unit_test(test_fingerprint_is_sha256_of_spki),
		cmocka_unit_test(test_fingerprint_differs_per_key),
		cmocka_unit_test(test_fingerprint_null),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
