/*
 * src/crypto/ocsp.c: requests made by OpenSSL's own OCSP code are walked
 * (SHA-1 and SHA-256 CertIDs, nonce, several CertIDs); every malformed
 * variant is refused; responses built here are read back and verified by
 * OpenSSL (good, revoked with time and reason, unknown, nonce echoed), and
 * the error responses have the right status.
 */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *key;
static X509 *cert; /* self-signed: issuer and responder at once */

static int group_setup(void **state)
{
	X509_NAME *n;

	(void)state;
	key = kt_keygen("p256");
	cert = X509_new();
	assert_non_null(cert);
	assert_int_equal(X509_set_version(cert, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), 7), 1);
	n = X509_get_subject_name(cert);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)"OCSP test CA", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(cert, n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
	assert_int_equal(X509_set_pubkey(cert, key), 1);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(cert);
	EVP_PKEY_free(key);
	return 0;
}

/* An OCSPRequest made by OpenSSL for serials, hash md, with a nonce or not. */
static size_t make_req(const EVP_MD *md, const long *serials, size_t n, bool nonce, uint8_t **der)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	int len;

	assert_non_null(req);
	for (size_t i = 0; i < n; i++) {
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		OCSP_CERTID *id;

		assert_int_equal(ASN1_INTEGER_set(s, serials[i]), 1);
		id = OCSP_cert_id_new(md, X509_get_subject_name(cert), X509_get0_pubkey_bitstr(cert), s);
		assert_non_null(id);
		assert_non_null(OCSP_request_add0_id(req, id));
		ASN1_INTEGER_free(s);
	}
	if (nonce)
		assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
	*der = NULL;
	len = i2d_OCSP_REQUEST(req, der);
	assert_true(len > 0);
	OCSP_REQUEST_free(req);
	return (size_t)len;
}

static void test_parse_openssl_requests(void **state)
{
	static const long serials[] = { 0x1234, 0x7f, 0x80 };
	struct kiln_ocsp_request r;
	uint8_t *der;
	size_t n;

	(void)state;
	n = make_req(EVP_sha1(), serials, 1, true, &der);
	KT_OK(kiln_ocsp_request_parse(kiln_slice_of(der, n), &r));
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ids[0].hash, KILN_OCSP_SHA1);
	assert_int_equal(r.ids[0].name_hash.len, 20);
	assert_int_equal(r.ids[0].serial.len, 2);
	assert_int_equal(r.ids[0].serial.ptr[0], 0x12);
	assert_true(r.nonce_ext.len > 16);
	assert_false(r.signed_req);
	OPENSSL_free(der);

	n = make_req(EVP_sha256(), serials, 3, false, &der);
	KT_OK(kiln_ocsp_request_parse(kiln_slice_of(der, n), &r));
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ids[2].hash, KILN_OCSP_SHA256);
	assert_int_equal(r.ids[2].key_hash.len, 32);
	assert_int_equal(r.ids[2].serial.len, 2); /* 0x80: 00 80 */
	assert_int_equal(r.nonce_ext.len, 0);
	OPENSSL_free(der);

	/* Another hash algorithm parses, as hash 0 (the responder says unauthorized). */
	n = make_req(EVP_sha384(), serials, 1, false, &der);
	KT_OK(kiln_ocsp_request_parse(kiln_slice_of(der, n), &r));
	assert_int_equal(r.ids[0].hash, 0);
	OPENSSL_free(der);
}

static void test_parse_refused(void **state)
{
	static const long serials[] = { 5, 6, 7, 8, 9, 10, 11, 12, 13 };
	struct kiln_ocsp_request r;
	uint8_t *der, *copy;
	size_t n;

	(void)state;
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of("", 0), &r), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of("garbage", 7), &r), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of("\x30\x00", 2), &r), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of("\x30\x02\x30\x00", 4), &r), KILN_ERR_MALFORMED);
	n = make_req(EVP_sha1(), serials, 9, false, &der); /* over KILN_OCSP_MAX_IDS */
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of(der, n), &r), KILN_ERR_MALFORMED);
	OPENSSL_free(der);
	n = make_req(EVP_sha1(), serials, 1, true, &der);
	/* Every truncation, and trailing bytes, are refused. */
	for (size_t k = 0; k < n; k++)
		KT_ERR(kiln_ocsp_request_parse(kiln_slice_of(der, k), &r), KILN_ERR_MALFORMED);
	copy = malloc(n + 1);
	assert_non_null(copy);
	memcpy(copy, der, n);
	copy[n] = 0;
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of(copy, n + 1), &r), KILN_ERR_MALFORMED);
	/* A flipped tag anywhere is refused or still a consistent parse. */
	for (size_t k = 0; k < n; k++) {
		memcpy(copy, der, n);
		copy[k] ^= 0x20;
		if (kiln_is_ok(kiln_ocsp_request_parse(kiln_slice_of(copy, n), &r)))
			assert_true(r.n == 1);
	}
	free(copy);
	OPENSSL_free(der);
	KT_ERR(kiln_ocsp_request_parse(kiln_slice_of("\x30", KILN_OCSP_MAX_BYTES + 1), &r),
	       KILN_ERR_MALFORMED);
}

/* Signs tbs with the test key and assembles; returns what OpenSSL reads. */
static OCSP_RESPONSE *respond(const struct kiln_ocsp_single *s, size_t n, kiln_slice nonce)
{
	uint8_t key_hash[20];
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(cert);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *cder = NULL;
	const unsigned char *p;
	kiln_buf tbs, sig, out;
	OCSP_RESPONSE *resp;
	size_t len = 0;
	int clen = i2d_X509(cert, &cder);

	EVP_Digest(bits->data, (size_t)bits->length, key_hash, NULL, EVP_sha1(), NULL);
	kiln_buf_init(&tbs, 1 << 20);
	kiln_buf_init(&sig, 4096);
	kiln_buf_init(&out, 1 << 20);
	KT_OK(kiln_ocsp_tbs(key_hash, kiln_now(), s, n, nonce, &tbs));
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &len, tbs.ptr, tbs.len), 1);
	KT_OK(kiln_buf_reserve(&sig, len));
	assert_int_equal(EVP_DigestSign(ctx, sig.ptr, &len, tbs.ptr, tbs.len), 1);
	sig.len = len;
	KT_OK(kiln_ocsp_assemble(kiln_buf_view(&tbs), KILN_ALG_P256, kiln_buf_view(&sig),
				 kiln_slice_of(cder, (size_t)clen), &out));
	p = out.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out.len);
	assert_non_null(resp);
	assert_ptr_equal(p, out.ptr + out.len);
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(cder);
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&out);
	return resp;
}

static void test_responses_verify(void **state)
{
	static const long serials[] = { 0x11, 0x22, 0x33 };
	struct kiln_ocsp_request r;
	struct kiln_ocsp_single s[3];
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	OCSP_REQUEST *oreq;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	const unsigned char *p;
	int64_t now = kiln_now();
	uint8_t *der;
	size_t n;
	int status, reason;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisu = NULL, *nextu = NULL;

	(void)state;
	n = make_req(EVP_sha1(), serials, 3, true, &der);
	KT_OK(kiln_ocsp_request_parse(kiln_slice_of(der, n), &r));
	for (size_t i = 0; i < 3; i++)
		s[i] = (struct kiln_ocsp_single){ r.ids[i].tlv, (int)i, now - 100, i == 1 ? 1 : 0, now,
						  now + 3600 };
	resp = respond(s, 3, r.nonce_ext);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	assert_int_equal(sk_X509_push(certs, cert), 1);
	assert_int_equal(X509_STORE_add_cert(store, cert), 1);
	assert_int_equal(OCSP_basic_verify(bs, certs, store, OCSP_TRUSTOTHER), 1);
	p = der;
	oreq = d2i_OCSP_REQUEST(NULL, &p, (long)n);
	assert_int_equal(OCSP_check_nonce(oreq, bs), 1);
	for (size_t i = 0; i < 3; i++) {
		OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, (int)i);

		status = OCSP_single_get0_status(sr, &reason, &rev, &thisu, &nextu);
		assert_int_equal(status, (int)i);
		assert_int_equal(OCSP_check_validity(thisu, nextu, 5, -1), 1);
		if (i == 1) {
			assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
			assert_int_equal(ASN1_TIME_cmp_time_t(rev, (time_t)(now - 100)), 0);
		}
	}
	OCSP_REQUEST_free(oreq);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	sk_X509_free(certs);
	X509_STORE_free(store);
	OPENSSL_free(der);
}

static void test_own_certid_and_errors(void **state)
{
	static const uint8_t h20[20] = { 1 }, h32[32] = { 2 };
	struct kiln_ocsp_request r;
	kiln_buf id, e;
	const unsigned char *p;
	OCSP_RESPONSE *resp;
	uint8_t req[256];
	size_t k = 0;

	(void)state;
	kiln_buf_init(&id, 4096);
	KT_OK(kiln_ocsp_certid(KILN_OCSP_SHA256, h32, h32, kiln_slice_of("\x01\x02", 2), &id));
	/* Wrapped as OCSPRequest { TBSRequest { requestList { Request { CertID } } } }: it parses back. */
	req[k++] = 0x30;
	req[k++] = (uint8_t)(id.len + 6);
	req[k++] = 0x30;
	req[k++] = (uint8_t)(id.len + 4);
	req[k++] = 0x30;
	req[k++] = (uint8_t)(id.len + 2);
	req[k++] = 0x30;
	req[k++] = (uint8_t)id.len;
	memcpy(req + k, id.ptr, id.len);
	KT_OK(kiln_ocsp_request_parse(kiln_slice_of(req, k + id.len), &r));
	assert_int_equal(r.ids[0].hash, KILN_OCSP_SHA256);
	assert_memory_equal(r.ids[0].key_hash.ptr, h32, 32);
	KT_ERR(kiln_ocsp_certid(9, h20, h20, kiln_slice_of("\x01", 1), &id), KILN_ERR_ARG);
	kiln_buf_cleanup(&id);

	kiln_buf_init(&e, 64);
	KT_OK(kiln_ocsp_error(1, &e));
	p = e.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)e.len);
	assert_non_null(resp);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	kiln_buf_reset(&e);
	KT_OK(kiln_ocsp_error(6, &e));
	p = e.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)e.len);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	KT_ERR(kiln_ocsp_error(4, &e), KILN_ERR_ARG);
	KT_ERR(kiln_ocsp_error(0, &e), KILN_ERR_ARG);
	kiln_buf_cleanup(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_openssl_requests),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_responses_verify),
		cmocka_unit_test(test_own_certid_and_errors),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
