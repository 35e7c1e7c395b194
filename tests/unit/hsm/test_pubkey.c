/* Public keys from PKCS#11 attribute bytes: raw and wrapped points, every check. */
#include "support/support.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>

#include "hsm/p11.h"

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t ed_str[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
				  's', '2', '5', '5', '1', '9' };

#define S(a) kiln_slice_of(a, sizeof(a))

/* DER OCTET STRING around bytes (short form is enough for points). */
static size_t wrap(const uint8_t *in, size_t n, uint8_t *out)
{
	assert_true(n < 0x80);
	out[0] = 0x04;
	out[1] = (uint8_t)n;
	memcpy(out + 2, in, n);
	return n + 2;
}

static size_t ec_point(EVP_PKEY *k, uint8_t *out, size_t cap)
{
	size_t n = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							 out, cap, &n), 1);
	return n;
}

static void check_ec(kiln_alg alg, const char *group, kiln_slice params)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	EVP_PKEY *got = NULL;
	uint8_t pt[128], w[140];
	size_t n, wn;
	kiln_diag d;

	assert_non_null(k);
	n = ec_point(k, pt, sizeof(pt));
	assert_int_equal(pt[0], 0x04);
	kiln_diag_clear(&d);

	/* Raw point. */
	KT_OK(kiln_p11_pub_ec(alg, params, kiln_slice_of(pt, n), &got, &d));
	assert_int_equal(EVP_PKEY_eq(k, got), 1);
	EVP_PKEY_free(got);
	got = NULL;

	/* Wrapped in an OCTET STRING, as SoftHSM2 returns it. */
	wn = wrap(pt, n, w);
	KT_OK(kiln_p11_pub_ec(alg, params, kiln_slice_of(w, wn), &got, &d));
	assert_int_equal(EVP_PKEY_eq(k, got), 1);
	EVP_PKEY_free(got);
	got = NULL;

	/* Trailing garbage after the wrapper. */
	w[wn] = 0;
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(w, wn + 1), &got, NULL), KILN_ERR_HSM);
	/* Wrong tag. */
	w[0] = 0x03;
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(w, wn), &got, NULL), KILN_ERR_HSM);
	/* Compressed points are not what PKCS#11 2.x gives; refuse them. */
	pt[0] = 0x02;
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(pt, 1 + (n - 1) / 2), &got, NULL),
	       KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(pt, n), &got, NULL), KILN_ERR_HSM);
	/* Off the curve. */
	pt[0] = 0x04;
	pt[n - 1] ^= 0x01;
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(pt, n), &got, &d), KILN_ERR_HSM);
	assert_non_null(strstr(d.text, "not on the"));
	/* Truncated. */
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(pt, n - 1), &got, NULL), KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_ec(alg, params, kiln_slice_of(NULL, 0), &got, NULL), KILN_ERR_HSM);
	assert_null(got);
	EVP_PKEY_free(k);
}

static void test_p256(void **state)
{
	(void)state;
	check_ec(KILN_ALG_P256, "P-256", S(oid_p256));
}

static void test_p384(void **state)
{
	(void)state;
	check_ec(KILN_ALG_P384, "P-384", S(oid_p384));
}

static void test_ec_wrong_curve(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *got = NULL;
	uint8_t pt[128];
	size_t n;
	kiln_diag d;

	(void)state;
	assert_non_null(k);
	n = ec_point(k, pt, sizeof(pt));
	kiln_diag_clear(&d);
	/* A P-384 key named by its params is still not a P-256 key. */
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_P256, S(oid_p384), kiln_slice_of(pt, n), &got, &d),
	       KILN_ERR_HSM);
	assert_string_equal(d.text, "public key from the HSM: CKA_EC_PARAMS do not name the p256 curve");
	/* A P-384 point under P-256 params. */
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_P256, S(oid_p256), kiln_slice_of(pt, n), &got, NULL),
	       KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_RSA3072, S(oid_p256), kiln_slice_of(pt, n), &got, NULL),
	       KILN_ERR_ARG);
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_NONE, S(oid_p256), kiln_slice_of(pt, n), &got, NULL),
	       KILN_ERR_ARG);
	assert_null(got);
	EVP_PKEY_free(k);
}

static void test_ed25519(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *got = NULL;
	uint8_t raw[32], w[40];
	size_t n = sizeof(raw), wn;

	(void)state;
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
	assert_int_equal(n, 32);
	wn = wrap(raw, n, w);

	/* Every combination of named-by-string / named-by-OID and raw / wrapped. */
	KT_OK(kiln_p11_pub_ec(KILN_ALG_ED25519, S(ed_str), kiln_slice_of(raw, n), &got, NULL));
	assert_int_equal(EVP_PKEY_eq(k, got), 1);
	EVP_PKEY_free(got);
	KT_OK(kiln_p11_pub_ec(KILN_ALG_ED25519, S(ed_oid), kiln_slice_of(w, wn), &got, NULL));
	assert_int_equal(EVP_PKEY_eq(k, got), 1);
	EVP_PKEY_free(got);
	got = NULL;

	KT_ERR(kiln_p11_pub_ec(KILN_ALG_ED25519, S(oid_p256), kiln_slice_of(raw, n), &got, NULL),
	       KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_ED25519, S(ed_str), kiln_slice_of(raw, 31), &got, NULL),
	       KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_ED25519, S(ed_str), kiln_slice_of(w, wn - 1), &got, NULL),
	       KILN_ERR_HSM);
	w[1] = 31;
	KT_ERR(kiln_p11_pub_ec(KILN_ALG_ED25519, S(ed_str), kiln_slice_of(w, wn), &got, NULL),
	       KILN_ERR_HSM);
	assert_null(got);
	EVP_PKEY_free(k);
}

static void rsa_parts(EVP_PKEY *k, uint8_t *n, size_t *n_len, uint8_t *e, size_t *e_len)
{
	BIGNUM *bn = NULL, *be = NULL;

	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be), 1);
	*n_len = (size_t)BN_bn2bin(bn, n);
	*e_len = (size_t)BN_bn2bin(be, e);
	BN_free(bn);
	BN_free(be);
}

static void test_rsa(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *got = NULL;
	uint8_t n[1100], e[16], big[1100];
	size_t nl, el;
	kiln_diag d;

	(void)state;
	assert_non_null(k);
	assert_non_null(small);
	rsa_parts(k, n, &nl, e, &el);
	assert_int_equal(nl, 384);
	KT_OK(kiln_p11_pub_rsa(KILN_ALG_RSA3072, kiln_slice_of(n, nl), kiln_slice_of(e, el), &got,
			       NULL));
	assert_int_equal(EVP_PKEY_eq(k, got), 1);
	EVP_PKEY_free(got);
	got = NULL;

	/* Even or unit exponents. */
	{
		uint8_t even[] = { 0x01, 0x00, 0x00 }, one[] = { 0x01 };

		kiln_slice mod = kiln_slice_of(n, nl);

		KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, mod, S(even), &got, NULL), KILN_ERR_HSM);
		KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, mod, S(one), &got, NULL), KILN_ERR_HSM);
	}
	/* Lengths out of range. */
	memset(big, 0xff, sizeof(big));
	KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, kiln_slice_of(big, 1025), kiln_slice_of(e, el),
				&got, NULL), KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, kiln_slice_of(n, 0), kiln_slice_of(e, el), &got,
				NULL), KILN_ERR_HSM);
	KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, kiln_slice_of(n, nl), kiln_slice_of(big, 9), &got,
				NULL), KILN_ERR_HSM);
	/* A 2048-bit key is not an RSA-3072 key. */
	rsa_parts(small, n, &nl, e, &el);
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_pub_rsa(KILN_ALG_RSA3072, kiln_slice_of(n, nl), kiln_slice_of(e, el), &got,
				&d), KILN_ERR_HSM);
	assert_string_equal(d.text,
			    "public key from the HSM: not an RSA-3072 key (2048-bit modulus)");
	KT_ERR(kiln_p11_pub_rsa(KILN_ALG_P256, kiln_slice_of(n, nl), kiln_slice_of(e, el), &got,
				NULL), KILN_ERR_ARG);
	assert_null(got);
	EVP_PKEY_free(small);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_p256),
		cmocka_unit_test(test_p384),
		cmocka_unit_test(test_ec_wrong_curve),
		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_rsa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
