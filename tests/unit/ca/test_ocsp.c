/*
 * Unit tests for src/ca/ocsp.c over a real deployment (SoftHSM2 tokens,
 * SQLite): the delegated signer is made on first use (a deployment from
 * before it existed), its certificate has the OCSP profile; responses read
 * and verified by OpenSSL for good, revoked (after kiln_ocsp_sync, with the
 * time to publish recorded), unknown, a certificate issued after the table
 * was filled, SHA-256 CertIDs and a nonce; malformed requests and foreign
 * issuers get their error statuses.
 */
#include "support/ca_fixture.h"

#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-ocsp", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

/* A widget-test device; *leaf receives its certificate (caller frees). */
static void issue(const char *sn, char serial[KILN_SERIAL_HEX], X509 **leaf, X509 **issuer)
{
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	kiln_buf csr;
	kiln_diag d;
	BIO *bio;

	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", sn, NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "test-operator";
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	memcpy(serial, res.serial, KILN_SERIAL_HEX);
	bio = BIO_new_mem_buf(res.chain_pem.ptr, (int)res.chain_pem.len);
	*leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (issuer != NULL)
		*issuer = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(*leaf);
	BIO_free(bio);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static size_t request(X509 *leaf, X509 *issuer, const EVP_MD *md, bool nonce, uint8_t **der,
		      OCSP_REQUEST **keep)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, issuer);
	int len;

	assert_non_null(id);
	assert_non_null(OCSP_request_add0_id(req, id));
	if (nonce)
		assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
	*der = NULL;
	len = i2d_OCSP_REQUEST(req, der);
	assert_true(len > 0);
	*keep = req;
	return (size_t)len;
}

/*
 * Asks in mode; checks the response verifies against issuer and echoes the
 * nonce unless the answer says it was dropped; returns the one CertID's status.
 */
static int ask_mode(kiln_ocsp *o, enum kiln_ocsp_mode mode, X509 *leaf, X509 *issuer,
		    const EVP_MD *md, bool nonce, struct kiln_ocsp_answer *ans, int *reason)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	ASN1_GENERALIZEDTIME *rev, *thisu, *nextu;
	OCSP_REQUEST *oreq;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, issuer);
	const unsigned char *p;
	uint8_t *der;
	size_t n = request(leaf, issuer, md, nonce, &der, &oreq);
	kiln_buf out;
	kiln_diag d;
	int status = -1;

	kiln_buf_init(&out, 1 << 20);
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_respond(o, kiln_slice_of(der, n), mode, &out, ans, &d));
	p = out.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out.len);
	assert_non_null(resp);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	assert_int_equal(X509_STORE_add_cert(store, issuer), 1);
	/* The issuing CA is the anchor here (no root in the store). */
	assert_int_equal(X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN), 1);
	/* The delegated signer chains to the issuer; OCSP_basic_verify checks its EKU. */
	if (OCSP_basic_verify(bs, untrusted, store, 0) != 1)
		fail_msg("response does not verify");
	if (nonce) /* 1: echoed; -1: in the request, not in the response */
		assert_int_equal(OCSP_check_nonce(oreq, bs), ans->nonce_dropped ? -1 : 1);
	assert_int_equal(OCSP_resp_find_status(bs, id, &status, reason, &rev, &thisu, &nextu), 1);
	assert_int_equal(OCSP_check_validity(thisu, nextu, 5, -1), 1);
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(oreq);
	OPENSSL_free(der);
	sk_X509_free(untrusted);
	X509_STORE_free(store);
	kiln_buf_cleanup(&out);
	return status;
}

static int ask(kiln_ocsp *o, X509 *leaf, X509 *issuer, const EVP_MD *md, bool nonce,
	       struct kiln_ocsp_answer *ans, int *reason)
{
	return ask_mode(o, KILN_OCSP_SIGN, leaf, issuer, md, nonce, ans, reason);
}

static void test_signer_made_on_first_use(void **state)
{
	struct kiln_ca_rec rec = { 0 };
	kiln_ocsp *o = NULL;
	X509 *x = NULL;
	const unsigned char *p;
	int64_t cas = kt_count(&k, "cas");
	bool made = true;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	assert_int_equal(kt_count(&k, "cas"), cas + 2);
	KT_OK(kiln_store_ca_get(k.store, "test-ocsp", &rec, &d));
	assert_string_equal(rec.role, "ocsp");
	assert_string_equal(rec.token, "kiln-test");
	p = rec.cert_der;
	x = d2i_X509(NULL, &p, (long)rec.cert_len);
	assert_non_null(x);
	assert_true((X509_get_extended_key_usage(x) & XKU_OCSP_SIGN) != 0);
	assert_true(X509_get_ext_by_NID(x, NID_id_pkix_OCSP_noCheck, -1) >= 0);
	assert_false(X509_check_ca(x) != 0);
	X509_free(x);
	kiln_ca_rec_cleanup(&rec);
	/* Made once. */
	KT_OK(kiln_ca_ocsp_signer_ensure(k.ca, KILN_ENV_TEST, "test", &made, &d));
	assert_false(made);
	assert_int_equal(kt_count(&k, "cas"), cas + 2);
	assert_int_equal(kt_count(&k, "certificates") >= 2, 1);
	kiln_ocsp_free(o);
	o = NULL;
	KT_ERR(kiln_ocsp_new(k.ca, 10, "test", &o, &d), KILN_ERR_ARG);
	assert_null(o);
}

static void test_answers(void **state)
{
	char s1[KILN_SERIAL_HEX], s2[KILN_SERIAL_HEX], s3[KILN_SERIAL_HEX];
	struct kiln_revoke_req rr = { 0 };
	struct kiln_revoke_result res;
	struct kiln_ocsp_answer ans;
	struct kiln_ocsp_sync sync;
	X509 *l1, *l2, *l3, *iss;
	kiln_ocsp *o = NULL;
	int64_t rec_ms = 0, vis = -1;
	size_t certs = 0;
	int reason = -1;
	kiln_diag d;

	(void)state;
	issue("TST-OC-0001", s1, &l1, &iss);
	issue("TST-OC-0002", s2, &l2, NULL);
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	KT_OK(kiln_ocsp_presign_all(o, &certs, &d));
	assert_true(certs >= 3); /* two devices and the test OCSP signer */

	assert_int_equal(ask(o, l1, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_true(ans.cached);
	assert_string_equal(ans.serial, s1);
	assert_int_equal(ask(o, l1, iss, EVP_sha256(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_true(ans.cached);
	assert_int_equal(ask(o, l2, iss, EVP_sha1(), true, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_false(ans.cached); /* a nonce: signed for the request */

	/* Issued after the table was filled: read from the store, then cached. */
	issue("TST-OC-0003", s3, &l3, NULL);
	assert_int_equal(ask(o, l3, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(ask(o, l3, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	assert_true(ans.cached);

	/* Revoked by the CA engine; the responder follows the store. */
	rr.serial = s1;
	rr.reason = "keyCompromise";
	rr.actor = "officer";
	KT_OK(kiln_ca_revoke(k.ca, &rr, &res, &d));
	kiln_revoke_result_cleanup(&res);
	assert_int_equal(ask(o, l1, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	KT_OK(kiln_ocsp_sync(o, &sync, &d));
	assert_int_equal(sync.revoked, 1);
	assert_int_equal(sync.seq, 1);
	assert_int_equal(ask(o, l1, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	assert_true(ans.cached);
	assert_int_equal(ask(o, l1, iss, EVP_sha256(), true, &ans, &reason), V_OCSP_CERTSTATUS_REVOKED);
	KT_OK(kiln_store_revocation_timing(k.store, s1, &rec_ms, &vis, &d));
	assert_true(vis >= 0 && vis == sync.max_visible_ms);
	assert_int_equal(kt_count_events(&k, "revocation-published"), 1);
	/* Nothing new: nothing replaced. */
	KT_OK(kiln_ocsp_sync(o, &sync, &d));
	assert_int_equal(sync.revoked, 0);
	assert_int_equal(ask(o, l2, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_GOOD);
	X509_free(l1);
	X509_free(l2);
	X509_free(l3);
	X509_free(iss);
	kiln_ocsp_free(o);
}

static void test_refusals(void **state)
{
	static const uint8_t zeros[20];
	char s1[KILN_SERIAL_HEX];
	struct kiln_ocsp_answer ans;
	OCSP_RESPONSE *resp;
	const unsigned char *p;
	kiln_ocsp *o = NULL;
	X509 *l1, *iss;
	kiln_buf out, id;
	uint8_t req[128];
	kiln_diag d;
	size_t n = 0;

	(void)state;
	issue("TST-OR-0001", s1, &l1, &iss);
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	kiln_buf_init(&out, 4096);
	KT_ERR(kiln_ocsp_respond(o, kiln_slice_of("garbage", 7), KILN_OCSP_SIGN, &out, &ans, &d),
	       KILN_ERR_MALFORMED);
	assert_int_equal(ans.status, 1);
	p = out.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out.len);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);

	/* A CertID for an issuer kiln does not serve. */
	kiln_buf_init(&id, 4096);
	KT_OK(kiln_ocsp_certid(KILN_OCSP_SHA1, zeros, zeros, kiln_slice_of("\x01", 1), &id));
	req[n++] = 0x30;
	req[n++] = (uint8_t)(id.len + 6);
	req[n++] = 0x30;
	req[n++] = (uint8_t)(id.len + 4);
	req[n++] = 0x30;
	req[n++] = (uint8_t)(id.len + 2);
	req[n++] = 0x30;
	req[n++] = (uint8_t)id.len;
	memcpy(req + n, id.ptr, id.len);
	kiln_buf_reset(&out);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ocsp_respond(o, kiln_slice_of(req, n + id.len), KILN_OCSP_SIGN, &out, &ans, &d),
	       KILN_ERR_NOT_FOUND);
	assert_int_equal(ans.status, 6);
	p = out.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out.len);
	assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	KT_ERR(kiln_ocsp_respond(NULL, kiln_slice_of(req, 1), KILN_OCSP_SIGN, &out, &ans, &d),
	       KILN_ERR_ARG);
	kiln_buf_cleanup(&id);
	kiln_buf_cleanup(&out);
	X509_free(l1);
	X509_free(iss);
	kiln_ocsp_free(o);
}

static void test_unknown_serial(void **state)
{
	char s1[KILN_SERIAL_HEX];
	struct kiln_ocsp_answer ans;
	X509 *l1, *iss, *fake;
	kiln_ocsp *o = NULL;
	int reason;
	kiln_diag d;

	(void)state;
	issue("TST-OU-0001", s1, &l1, &iss);
	fake = X509_dup(l1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(fake), 0x4242), 1);
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	assert_int_equal(ask(o, fake, iss, EVP_sha1(), false, &ans, &reason), V_OCSP_CERTSTATUS_UNKNOWN);
	assert_true(ans.unknown);
	X509_free(fake);
	X509_free(l1);
	X509_free(iss);
	kiln_ocsp_free(o);
}

/*
 * The table-only mode (a client over its signing budget): a pre-signed answer
 * as always, a nonce dropped rather than signed for, tryLater for an unknown
 * serial; and wants_signature says when signing would answer better.
 */
static void test_table_mode(void **state)
{
	static const uint8_t try_later[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
	char s1[KILN_SERIAL_HEX];
	struct kiln_ocsp_answer ans;
	X509 *l1, *iss, *fake;
	OCSP_REQUEST *oreq;
	kiln_ocsp *o = NULL;
	uint8_t *der;
	size_t n, certs = 0;
	kiln_buf out;
	int reason;
	kiln_diag d;

	(void)state;
	issue("TST-TM-0001", s1, &l1, &iss);
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	KT_OK(kiln_ocsp_presign_all(o, &certs, &d));
	assert_int_equal(ask_mode(o, KILN_OCSP_TABLE, l1, iss, EVP_sha1(), false, &ans, &reason),
			 V_OCSP_CERTSTATUS_GOOD);
	assert_true(ans.cached);
	assert_false(ans.wants_signature);
	assert_false(ans.nonce_dropped);
	/* With a nonce: the same pre-signed answer, the nonce not echoed. */
	assert_int_equal(ask_mode(o, KILN_OCSP_TABLE, l1, iss, EVP_sha256(), true, &ans, &reason),
			 V_OCSP_CERTSTATUS_GOOD);
	assert_true(ans.cached && ans.nonce_dropped && ans.wants_signature);
	/* Signing allowed: the nonce is echoed. */
	assert_int_equal(ask_mode(o, KILN_OCSP_SIGN, l1, iss, EVP_sha256(), true, &ans, &reason),
			 V_OCSP_CERTSTATUS_GOOD);
	assert_false(ans.cached || ans.nonce_dropped);
	/* An unknown serial would need a signature: tryLater, unsigned, and a failure to record. */
	fake = X509_dup(l1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(fake), 0x4243), 1);
	n = request(fake, iss, EVP_sha1(), false, &der, &oreq);
	kiln_buf_init(&out, 1 << 20);
	KT_ERR(kiln_ocsp_respond(o, kiln_slice_of(der, n), KILN_OCSP_TABLE, &out, &ans, &d),
	       KILN_ERR_RATE_LIMITED);
	assert_int_equal(ans.status, 3);
	assert_true(ans.wants_signature);
	assert_int_equal(out.len, sizeof(try_later));
	assert_memory_equal(out.ptr, try_later, sizeof(try_later));
	assert_non_null(strstr(d.text, "tryLater"));
	kiln_buf_cleanup(&out);
	OCSP_REQUEST_free(oreq);
	OPENSSL_free(der);
	X509_free(fake);
	X509_free(l1);
	X509_free(iss);
	kiln_ocsp_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signer_made_on_first_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_mode, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
