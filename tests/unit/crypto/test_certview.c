/*
 * Unit tests for src/crypto/certview.c: certificates walked instead of
 * decoded, keys built from their SubjectPublicKeyInfo, signatures checked
 * from an AlgorithmIdentifier. Every view is compared with what OpenSSL's
 * own decoder reads from the same bytes.
 */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/x509v3.h>
#include <string.h>

static int group_teardown(void **state)
{
	(void)state;
	kt_keys_free();
	return 0;
}

/* A certificate for subject_key signed by signer with md (NULL for Ed25519). */
static void make_cert(EVP_PKEY *subject_key, EVP_PKEY *signer, const EVP_MD *md, int n_ski,
		      bool v1, kiln_buf *der)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *p = NULL;
	int n;

	assert_non_null(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"certview", -1, -1, 0),
			 1);
	assert_int_equal(X509_set_version(x, v1 ? X509_VERSION_1 : X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, subject_key), 1);
	for (int i = 0; i < n_ski; i++) {
		ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
		unsigned char id[4] = { 0xde, 0xad, 0xbe, (unsigned char)i };

		assert_int_equal(ASN1_OCTET_STRING_set(ski, id, sizeof(id)), 1);
		/* X509V3_ADD_APPEND lets a test put the same extension in twice. */
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
						   X509V3_ADD_APPEND),
				 1);
		ASN1_OCTET_STRING_free(ski);
	}
	assert_true(X509_sign(x, signer, md) > 0);
	n = i2d_X509(x, &p);
	assert_true(n > 0);
	kiln_buf_init(der, 1 << 16);
	KT_OK(kiln_buf_append(der, p, (size_t)n));
	OPENSSL_free(p);
	X509_NAME_free(name);
	X509_free(x);
}

static const uint8_t oid_ski[] = { 0x55, 0x1d, 0x0e };
static const uint8_t oid_aki[] = { 0x55, 0x1d, 0x23 };

static void test_view_matches_openssl(void **state)
{
	static const char *const kinds[] = { "p256", "p384", "ed25519", "rsa2048" };

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		EVP_PKEY *k = kt_key(kinds[i]);
		const EVP_MD *md = strcmp(kinds[i], "ed25519") == 0 ? NULL : EVP_sha256();
		struct kiln_cert_view v;
		kiln_slice ski;
		kiln_buf der;
		const unsigned char *q;
		unsigned char *spki = NULL, *tbs = NULL;
		X509 *x;
		int spki_len, tbs_len;

		make_cert(k, k, md, 1, false, &der);
		q = der.ptr;
		x = d2i_X509(NULL, &q, (long)der.len);
		assert_non_null(x);
		KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
		/* the signed part and the key are the bytes OpenSSL reads */
		tbs_len = i2d_re_X509_tbs(x, &tbs);
		assert_int_equal(v.tbs.len, (size_t)tbs_len);
		assert_memory_equal(v.tbs.ptr, tbs, (size_t)tbs_len);
		spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
		assert_int_equal(v.spki.len, (size_t)spki_len);
		assert_memory_equal(v.spki.ptr, spki, (size_t)spki_len);
		/* the signature verifies with the signer's key and no other */
		KT_OK(kiln_signature_verify(v.sig_alg, v.tbs, v.sig, k));
		KT_ERR(kiln_signature_verify(v.sig_alg, v.tbs, v.sig, kt_key("p256") == k
										       ? kt_key("p384")
										       : kt_key("p256")),
		       KILN_ERR_CRYPTO);
		/* extensions: present, absent */
		KT_OK(kiln_cert_view_ext(&v, kiln_slice_of(oid_ski, sizeof(oid_ski)), &ski));
		assert_int_equal(ski.len, 6); /* OCTET STRING { de ad be 00 } */
		assert_memory_equal(ski.ptr, "\x04\x04\xde\xad\xbe\x00", 6);
		KT_ERR(kiln_cert_view_ext(&v, kiln_slice_of(oid_aki, sizeof(oid_aki)), &ski),
		       KILN_ERR_NOT_FOUND);
		OPENSSL_free(spki);
		OPENSSL_free(tbs);
		X509_free(x);
		kiln_buf_cleanup(&der);
	}
}

static void test_signature_changes_fail(void **state)
{
	EVP_PKEY *k = kt_key("p256");
	struct kiln_cert_view v;
	kiln_buf der;
	uint8_t *tbs_copy;

	(void)state;
	make_cert(k, k, EVP_sha256(), 1, false, &der);
	KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
	tbs_copy = malloc(v.tbs.len);
	assert_non_null(tbs_copy);
	memcpy(tbs_copy, v.tbs.ptr, v.tbs.len);
	tbs_copy[v.tbs.len - 1] ^= 1;
	KT_ERR(kiln_signature_verify(v.sig_alg, kiln_slice_of(tbs_copy, v.tbs.len), v.sig, k),
	       KILN_ERR_CRYPTO);
	/* garbage or missing algorithm, or no key */
	KT_ERR(kiln_signature_verify(kiln_slice_of("\x30\x00", 2), v.tbs, v.sig, k), KILN_ERR_CRYPTO);
	KT_ERR(kiln_signature_verify(v.sig_alg, v.tbs, v.sig, NULL), KILN_ERR_CRYPTO);
	free(tbs_copy);
	kiln_buf_cleanup(&der);
}

/* SHA-1 is not accepted under a signature, even when it verifies. */
static void test_weak_digest_refused(void **state)
{
	EVP_PKEY *k = kt_key("rsa2048");
	struct kiln_cert_view v;
	kiln_buf der;

	(void)state;
	make_cert(k, k, EVP_sha1(), 0, false, &der);
	KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
	KT_ERR(kiln_signature_verify(v.sig_alg, v.tbs, v.sig, k), KILN_ERR_CRYPTO);
	assert_false(kiln_digest_strong(NID_sha1));
	assert_false(kiln_digest_strong(NID_md5));
	assert_true(kiln_digest_strong(NID_sha256));
	kiln_buf_cleanup(&der);
}

static void test_duplicate_extension_and_v1(void **state)
{
	EVP_PKEY *k = kt_key("p256");
	struct kiln_cert_view v;
	kiln_slice val;
	kiln_buf der;

	(void)state;
	make_cert(k, k, EVP_sha256(), 2, false, &der);
	KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
	KT_ERR(kiln_cert_view_ext(&v, kiln_slice_of(oid_ski, sizeof(oid_ski)), &val),
	       KILN_ERR_MALFORMED);
	kiln_buf_cleanup(&der);
	/* a v1 certificate: no version field, no extensions */
	make_cert(k, k, EVP_sha256(), 0, true, &der);
	KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
	assert_int_equal(v.extensions.len, 0);
	KT_ERR(kiln_cert_view_ext(&v, kiln_slice_of(oid_ski, sizeof(oid_ski)), &val),
	       KILN_ERR_NOT_FOUND);
	KT_OK(kiln_signature_verify(v.sig_alg, v.tbs, v.sig, k));
	kiln_buf_cleanup(&der);
}

static void test_malformed(void **state)
{
	EVP_PKEY *k = kt_key("p256");
	struct kiln_cert_view v;
	kiln_buf der, bad;
	size_t at;

	(void)state;
	make_cert(k, k, EVP_sha256(), 1, false, &der);
	assert_false(kiln_is_ok(kiln_cert_view_parse(kiln_slice_of(NULL, 0), &v)));
	assert_false(kiln_is_ok(kiln_cert_view_parse(kiln_slice_of("\x30\x00", 2), &v)));
	/* every truncation */
	for (size_t n = 1; n < der.len; n++)
		assert_false(kiln_is_ok(kiln_cert_view_parse(kiln_slice_of(der.ptr, n), &v)));
	/* a trailing byte */
	kiln_buf_init(&bad, 1 << 16);
	KT_OK(kiln_buf_append(&bad, der.ptr, der.len));
	KT_OK(kiln_buf_append(&bad, "\x00", 1));
	assert_false(kiln_is_ok(kiln_cert_view_parse(kiln_buf_view(&bad), &v)));
	/*
	 * The inner signature algorithm differs from the outer one: change the
	 * last byte of the outer OID (ecdsa-with-SHA256 .2 -> .3), same length.
	 */
	bad.len = 0;
	KT_OK(kiln_buf_append(&bad, der.ptr, der.len));
	KT_OK(kiln_cert_view_parse(kiln_buf_view(&der), &v));
	at = (size_t)(v.sig_alg.ptr - der.ptr) + v.sig_alg.len - 1;
	assert_int_equal(bad.ptr[at], 0x02);
	bad.ptr[at] = 0x03;
	KT_ERR(kiln_cert_view_parse(kiln_buf_view(&bad), &v), KILN_ERR_MALFORMED);
	kiln_buf_cleanup(&bad);
	kiln_buf_cleanup(&der);
}

static void test_spki_key(void **state)
{
	static const char *const kinds[] = { "p256", "p384", "p521", "secp256k1", "ed25519",
					     "rsa2048" };

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		EVP_PKEY *k = kt_key(kinds[i]), *got = NULL;
		unsigned char *der = NULL;
		bool canonical = false;
		int n = i2d_PUBKEY(k, &der);

		assert_true(n > 0);
		KT_OK(kiln_spki_key(kiln_slice_of(der, (size_t)n), &got, &canonical));
		assert_true(canonical);
		assert_int_equal(EVP_PKEY_eq(k, got), 1);
		EVP_PKEY_free(got);
		/* truncated or trailing bytes: refused */
		assert_false(kiln_is_ok(kiln_spki_key(kiln_slice_of(der, (size_t)n - 1), &got,
						      &canonical)));
		assert_null(got);
		/* a point moved off the curve (last byte of y changed): refused on every path */
		if (strncmp(kinds[i], "p", 1) == 0 || strcmp(kinds[i], "secp256k1") == 0) {
			der[n - 1] ^= 0x01;
			assert_false(kiln_is_ok(kiln_spki_key(kiln_slice_of(der, (size_t)n), &got,
							      &canonical)));
			assert_null(got);
		}
		OPENSSL_free(der);
	}
	/* a compressed point is read by the decoder, and flagged not canonical */
	{
		EVP_PKEY *k = kt_keygen("p256"), *got = NULL;
		unsigned char *der = NULL;
		bool canonical = true;
		int n;

		assert_int_equal(EVP_PKEY_set_utf8_string_param(
					 k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
				 1);
		n = i2d_PUBKEY(k, &der);
		assert_true(n > 0);
		if (n == 59) { /* this OpenSSL writes compressed SPKIs */
			KT_OK(kiln_spki_key(kiln_slice_of(der, (size_t)n), &got, &canonical));
			assert_false(canonical);
			assert_int_equal(EVP_PKEY_eq(k, got), 1);
			EVP_PKEY_free(got);
		}
		OPENSSL_free(der);
		EVP_PKEY_free(k);
	}
}

/* kiln_ec_public_key: the cached-parameter curves, another named curve, and refusals. */
static void test_ec_public_key(void **state)
{
	static const char *const kinds[][2] = { { "p256", "prime256v1" },
						{ "p384", "secp384r1" },
						{ "secp256k1", "secp256k1" } };

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		EVP_PKEY *k = kt_key(kinds[i][0]), *got = NULL;
		uint8_t point[133];
		size_t n = 0;

		assert_int_equal(EVP_PKEY_get_octet_string_param(
					 k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point), &n),
				 1);
		KT_OK(kiln_ec_public_key(kinds[i][1], kiln_slice_of(point, n), &got));
		assert_int_equal(EVP_PKEY_eq(k, got), 1);
		EVP_PKEY_free(got);
		point[n - 1] ^= 0x01; /* off the curve */
		KT_ERR(kiln_ec_public_key(kinds[i][1], kiln_slice_of(point, n), &got),
		       KILN_ERR_MALFORMED);
		assert_null(got);
		point[n - 1] ^= 0x01;
		point[0] = 0x02; /* not uncompressed */
		KT_ERR(kiln_ec_public_key(kinds[i][1], kiln_slice_of(point, n), &got),
		       KILN_ERR_MALFORMED);
		KT_ERR(kiln_ec_public_key("no-such-curve", kiln_slice_of(point, n), &got),
		       KILN_ERR_MALFORMED);
		assert_null(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_view_matches_openssl),
		cmocka_unit_test(test_signature_changes_fail),
		cmocka_unit_test(test_weak_digest_refused),
		cmocka_unit_test(test_duplicate_extension_and_v1),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_spki_key),
		cmocka_unit_test(test_ec_public_key),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
