/*
 * Unit tests for src/ca/renew.c: kiln_ca_renew over a real deployment
 * (SoftHSM2, SQLite): what a renewal commits, and each refusal with its code,
 * its event and nothing else written.
 */
#include "support/ca_fixture.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static const char renew_policy[] = "product: renewed\n"
				   "environment: test\n"
				   "keys:\n"
				   "  - type: ec\n"
				   "    curves: [p256]\n"
				   "device_serial:\n"
				   "  pattern: '^[A-Z0-9][A-Z0-9-]{3,63}$'\n"
				   "subject:\n"
				   "  CN: \"{serial}\"\n"
				   "  O: \"Renewals\"\n"
				   "validity_days: 30\n"
				   "key_usage: [digitalSignature]\n"
				   "renewal:\n"
				   "  require_new_key: %s\n"
				   "  window_days: %u\n"
				   "  min_firmware_version: \"%s\"\n"
				   "attestation:\n"
				   "  type: none\n";

static void policy(const char *new_key, unsigned window, const char *fw)
{
	char yaml[2048];
	kiln_diag d;

	(void)snprintf(yaml, sizeof(yaml), renew_policy, new_key, window, fw);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kt_policy_add_text(&k, yaml, &d)))
		fail_msg("policy: %s", d.text);
}

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-renew", KILN_ALG_P256, true);
	policy("false", 0, "");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

/* A device certificate from kiln_ca_issue; *key the device key (caller frees). */
static X509 *enroll(const char *product, const char *serial, EVP_PKEY **key)
{
	struct kiln_issue_req req = { .product = product, .actor = "test" };
	struct kiln_issue_result res;
	const unsigned char *p;
	kiln_buf csr;
	kiln_diag d;
	X509 *x;

	kt_make_csr("p256", serial, NULL, &csr, key);
	req.csr = kiln_buf_view(&csr);
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_ca_issue(k.ca, &req, &res, &d)))
		fail_msg("issue: %s", d.text);
	p = res.cert_der.ptr;
	x = d2i_X509(NULL, &p, (long)res.cert_der.len);
	assert_non_null(x);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
	return x;
}

static kiln_result renew(X509 *cur, const char *key, const char *cn, const char *label,
			 struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_renew_req req = { cur, { 0 }, label, "device:test" };
	kiln_buf csr;
	kiln_result r;

	kt_make_csr(key, cn, NULL, &csr, NULL);
	req.csr = kiln_buf_view(&csr);
	kiln_diag_clear(d);
	kiln_issue_result_init(res);
	r = kiln_ca_renew(k.ca, &req, res, d);
	kiln_buf_cleanup(&csr);
	return r;
}

static void test_renew_new_key(void **state)
{
	struct kiln_issue_result res;
	struct kiln_device_rec dev = { 0 };
	EVP_PKEY *key;
	X509 *cur = enroll("renewed", "RNW-0001", &key);
	char ref[32];
	int64_t devs = kt_count(&k, "devices"), events = kt_count_events(&k, "renewal");
	kiln_diag d;

	(void)state;
	KT_OK(renew(cur, "p256", "RNW-0001", "renewed", &res, &d));
	assert_int_equal(kt_count(&k, "devices"), devs);
	assert_int_equal(kt_count_events(&k, "renewal"), events + 1);
	(void)snprintf(ref, sizeof(ref), "%lld", (long long)res.device_id);
	KT_OK(kiln_store_device_get(k.store, ref, &dev, NULL));
	assert_string_equal(dev.cert_serial, res.serial);
	assert_string_equal(dev.serial, "RNW-0001");
	kiln_issue_result_cleanup(&res);
	X509_free(cur);
	EVP_PKEY_free(key);
}

/* Each refusal: its code, one rejection event, no certificate. */
static void refused(kiln_result r, const kiln_diag *d, kiln_err want, const char *msg,
		    int64_t certs, int64_t rejections)
{
	if (r.code != want)
		fail_msg("wanted %s, got %s: %s", kiln_err_info(want)->slug,
			 kiln_err_info(r.code)->slug, d->text);
	if (strstr(d->text, msg) == NULL)
		fail_msg("'%s' lacks '%s'", d->text, msg);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_int_equal(kt_count_events(&k, "rejection"), rejections + 1);
}

static void test_refusals(void **state)
{
	struct kiln_issue_result res;
	EVP_PKEY *key, *fkey = kt_keygen("p256");
	X509 *cur = enroll("renewed", "RNW-0002", &key), *foreign = X509_new();
	int64_t certs = kt_count(&k, "certificates"), rej;
	kiln_diag d;

	(void)state;
	rej = kt_count_events(&k, "rejection");
	refused(renew(cur, "p256", "RNW-9999", NULL, &res, &d), &d, KILN_ERR_RENEWAL_SUBJECT,
		"asks for subject", certs, rej);
	kiln_issue_result_cleanup(&res);
	rej = kt_count_events(&k, "rejection");
	refused(renew(cur, "p256", "RNW-0002", "widget-test", &res, &d), &d, KILN_ERR_FORBIDDEN,
		"belongs to product renewed", certs, rej);
	kiln_issue_result_cleanup(&res);
	rej = kt_count_events(&k, "rejection");
	refused(renew(cur, "p384", "RNW-0002", NULL, &res, &d), &d, KILN_ERR_POLICY_KEY_ALG,
		"not allowed", certs, rej);
	kiln_issue_result_cleanup(&res);
	/* A self-signed certificate with the same subject: not kiln's. */
	assert_non_null(foreign);
	assert_int_equal(X509_set_subject_name(foreign, X509_get_subject_name(cur)), 1);
	assert_int_equal(X509_set_issuer_name(foreign, X509_get_subject_name(cur)), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(foreign), 7), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(foreign), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(foreign), 3600));
	assert_int_equal(X509_set_pubkey(foreign, fkey), 1);
	assert_true(X509_sign(foreign, fkey, EVP_sha256()) > 0);
	rej = kt_count_events(&k, "rejection");
	refused(renew(foreign, "p256", "RNW-0002", NULL, &res, &d), &d, KILN_ERR_CERT_UNTRUSTED,
		"was not issued by a kiln", certs, rej);
	kiln_issue_result_cleanup(&res);
	/* The policy's rules: a new key, the window, the firmware. */
	policy("true", 0, "");
	{
		struct kiln_renew_req req = { cur, { 0 }, NULL, "device:test" };
		X509_REQ *xr = X509_REQ_new();
		unsigned char *p = NULL;
		int len;

		assert_int_equal(X509_REQ_set_subject_name(xr, X509_get_subject_name(cur)), 1);
		assert_int_equal(X509_REQ_set_pubkey(xr, key), 1);
		assert_true(X509_REQ_sign(xr, key, EVP_sha256()) > 0);
		len = i2d_X509_REQ(xr, &p);
		req.csr = kiln_slice_of(p, (size_t)len);
		kiln_issue_result_init(&res);
		kiln_diag_clear(&d);
		rej = kt_count_events(&k, "rejection");
		refused(kiln_ca_renew(k.ca, &req, &res, &d), &d, KILN_ERR_RENEWAL_KEY,
			"requires a new key", certs, rej);
		kiln_issue_result_cleanup(&res);
		/* The same request where the policy allows the old key: the certificate's own subject. */
		policy("false", 0, "");
		kiln_issue_result_init(&res);
		kiln_diag_clear(&d);
		KT_OK(kiln_ca_renew(k.ca, &req, &res, &d));
		kiln_issue_result_cleanup(&res);
		certs = kt_count(&k, "certificates");
		OPENSSL_free(p);
		X509_REQ_free(xr);
	}
	policy("false", 20, "");
	rej = kt_count_events(&k, "rejection");
	refused(renew(cur, "p256", "RNW-0002", NULL, &res, &d), &d, KILN_ERR_RENEWAL_WINDOW,
		"may renew from", certs, rej);
	kiln_issue_result_cleanup(&res);
	policy("false", 0, "1.2");
	rej = kt_count_events(&k, "rejection");
	refused(renew(cur, "p256", "RNW-0002", NULL, &res, &d), &d, KILN_ERR_RENEWAL_FIRMWARE,
		"below the policy's minimum 1.2", certs, rej);
	kiln_issue_result_cleanup(&res);
	policy("false", 0, "");
	X509_free(foreign);
	X509_free(cur);
	EVP_PKEY_free(key);
	EVP_PKEY_free(fkey);
}

static void test_chain_certs(void **state)
{
	X509 *chain[2];
	size_t n = 0;

	(void)state;
	KT_OK(kiln_ca_chain_certs(k.ca, KILN_ENV_TEST, chain, &n, NULL));
	assert_int_equal(n, 2);
	assert_int_equal(X509_check_issued(chain[1], chain[0]), X509_V_OK);
	KT_ERR(kiln_ca_chain_certs(k.ca, KILN_ENV_NONE, chain, &n, NULL), KILN_ERR_NOT_FOUND);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_new_key),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_chain_certs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
