/*
 * Unit tests for src/ca/crl.c over a real deployment: the CRL of an issuing
 * CA lists every certificate revoked under it (whichever path revoked it,
 * here a raw store revocation as well as kiln_ca_revoke), verifies with the
 * CA's key, numbers grow by one, the record and the "crl-issue" event are
 * committed; unknown CAs, roots and bad validities are refused.
 */
#include "support/ca_fixture.h"

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-crl", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static void issue(const char *sn, char serial[KILN_SERIAL_HEX])
{
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	kiln_buf csr;
	kiln_diag d;

	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", sn, NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "test-operator";
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	memcpy(serial, res.serial, KILN_SERIAL_HEX);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static X509_CRL *crl_issue(struct kiln_crl_result *res)
{
	const unsigned char *p;
	X509_CRL *crl;
	kiln_diag d;

	memset(res, 0, sizeof(*res));
	kiln_buf_init(&res->der, KILN_CRL_MAX_BYTES);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_crl_issue(k.ca, "test-issuing", 86400, "test", res, &d));
	p = res->der.ptr;
	crl = d2i_X509_CRL(NULL, &p, (long)res->der.len);
	assert_non_null(crl);
	return crl;
}

static kiln_result raw_revoke(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_cert_revoke(tx, ctx, "affiliationChanged", 0, d);
}

static void test_issue(void **state)
{
	char a[KILN_SERIAL_HEX], b[KILN_SERIAL_HEX], c[KILN_SERIAL_HEX];
	struct kiln_revoke_req rr = { 0 };
	struct kiln_revoke_result rres;
	struct kiln_crl_result res;
	struct kiln_crl_rec last;
	X509 *issuer = NULL;
	X509_CRL *crl;
	kiln_buf pem;
	uint8_t sha[32];
	bool found = false;
	kiln_diag d;
	BIO *bio;

	(void)state;
	kiln_buf_init(&pem, 1 << 20);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_TEST, &pem, &d));
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	issuer = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(issuer);

	crl = crl_issue(&res);
	assert_int_equal(res.rec.number, 1);
	assert_int_equal(res.rec.entries, 0);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(issuer)), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)), 0);
	X509_CRL_free(crl);
	kiln_buf_cleanup(&res.der);

	issue("TST-CRL-0001", a);
	issue("TST-CRL-0002", b);
	issue("TST-CRL-0003", c);
	rr.serial = a;
	rr.reason = "keyCompromise";
	rr.actor = "officer";
	KT_OK(kiln_ca_revoke(k.ca, &rr, &rres, &d));
	kiln_revoke_result_cleanup(&rres);
	KT_OK(kiln_store_write(k.store, raw_revoke, c, &d)); /* another path, straight to the store */

	crl = crl_issue(&res);
	assert_int_equal(res.rec.number, 2);
	assert_int_equal(res.rec.entries, 2);
	assert_int_equal(res.rec.revocation_seq, 2);
	assert_int_equal(res.rec.next_update - res.rec.this_update, 86400);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(issuer)), 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	(void)SHA256(res.der.ptr, res.der.len, sha);
	KT_OK(kiln_store_crl_last(k.store, res.rec.ca_id, &last, &found, &d));
	assert_true(found);
	assert_int_equal(last.number, 2);
	assert_memory_equal(last.sha256, sha, 32);
	assert_int_equal(kt_count_events(&k, "crl-issue"), 2);
	X509_CRL_free(crl);
	kiln_buf_cleanup(&res.der);
	(void)b;
	X509_free(issuer);
	kiln_buf_cleanup(&pem);
}

static void test_refused(void **state)
{
	struct kiln_crl_result res;
	int64_t crls = kt_count(&k, "crls");
	kiln_diag d;

	(void)state;
	memset(&res, 0, sizeof(res));
	kiln_buf_init(&res.der, KILN_CRL_MAX_BYTES);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_crl_issue(k.ca, "nope", 86400, "t", &res, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no issuing CA named nope");
	KT_ERR(kiln_ca_crl_issue(k.ca, "test-root", 86400, "t", &res, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_ca_crl_issue(k.ca, "test-issuing", 10, "t", &res, &d), KILN_ERR_ARG);
	KT_ERR(kiln_ca_crl_issue(k.ca, "test-issuing", 400 * 86400, "t", &res, &d), KILN_ERR_ARG);
	KT_ERR(kiln_ca_crl_issue(k.ca, NULL, 86400, "t", &res, &d), KILN_ERR_ARG);
	assert_int_equal(kt_count(&k, "crls"), crls);
	assert_int_equal(res.der.len, 0);
	kiln_buf_cleanup(&res.der);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
