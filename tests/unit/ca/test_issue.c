/*
 * The issuance pipeline against real SoftHSM2 tokens and a real SQLite
 * inventory: what it issues, what it commits, and that every refusal leaves
 * nothing behind but one rejection event.
 */
#include "support/ca_fixture.h"

#include "ca/ca_impl.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-issue", KILN_ALG_P256, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static X509 *first_cert(const kiln_buf *chain)
{
	BIO *bio = BIO_new_mem_buf(chain->ptr, (int)chain->len);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static int count_certs(const kiln_buf *chain)
{
	int n = 0;

	for (const char *p = kiln_buf_cstr(chain); (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++)
		n++;
	return n;
}

/* The row's subject is the one-line form of the released certificate's subject. */
static void expect_subject_text(const struct kiln_cert_rec *rec, const struct kiln_issue_result *res)
{
	X509 *leaf = first_cert(&res->chain_pem);
	char want[sizeof(rec->subject)];

	kiln_name_format(X509_get_subject_name(leaf), want, sizeof(want));
	assert_true(want[0] != '\0');
	assert_string_equal(rec->subject, want);
	X509_free(leaf);
}

/* Issues; returns the result code; res cleaned by the caller. */
static kiln_result issue(const char *product, kiln_slice csr, const char *serial,
			 const char *ca_name, struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_issue_req req = { .product = product, .csr = csr, .device_serial = serial,
				      .ca_name = ca_name, .actor = "test-operator" };

	kiln_diag_clear(d);
	kiln_issue_result_init(res);
	return kiln_ca_issue(k.ca, &req, res, d);
}

static void test_issue_each_key_type(void **state)
{
	static const char *const keys[] = { "p256", "p384", "ed25519", "rsa3072" };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct kiln_issue_result res;
		struct kiln_device_rec dev = { 0 };
		char cn[32];
		kiln_buf csr;
		EVP_PKEY *key;
		kiln_diag d;
		X509 *leaf;
		int64_t devs = kt_count(&k, "devices"), events = kt_count_events(&k, "issuance");

		(void)snprintf(cn, sizeof(cn), "KEY-%zu-01", i);
		kt_make_csr(keys[i], cn, NULL, &csr, &key);
		if (!kiln_is_ok(issue("widget-test", kiln_buf_view(&csr), NULL, NULL, &res, &d)))
			fail_msg("%s: %s", keys[i], d.text);
		assert_int_equal(count_certs(&res.chain_pem), 3);
		leaf = first_cert(&res.chain_pem);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
		assert_int_equal(X509_check_ca(leaf), 0);
		assert_true((X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) != 0);
		assert_int_equal(kt_count(&k, "devices"), devs + 1);
		assert_int_equal(kt_count_events(&k, "issuance"), events + 1);
		KT_OK(kiln_store_device_get(k.store, cn, &dev, NULL));
		assert_string_equal(dev.product, "widget-test");
		assert_string_equal(dev.cert_serial, res.serial);
		assert_int_equal(dev.policy_version, 1);
		assert_string_equal(dev.operator_name, "test-operator");
		X509_free(leaf);
		EVP_PKEY_free(key);
		kiln_buf_cleanup(&csr);
		kiln_issue_result_cleanup(&res);
	}
}

static void test_certificate_row_matches_release(void **state)
{
	struct kiln_issue_result res;
	struct kiln_cert_rec rec = { 0 };
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	kt_make_csr("p256", "ROW-0001", NULL, &csr, NULL);
	KT_OK(issue("widget-test", kiln_buf_view(&csr), NULL, NULL, &res, &d));
	KT_OK(kiln_store_cert_get(k.store, res.serial, &rec, NULL));
	assert_int_equal(rec.der_len, res.cert_der.len);
	assert_memory_equal(rec.der, res.cert_der.ptr, rec.der_len);
	assert_string_equal(rec.env, "test");
	assert_string_equal(rec.kind, "device");
	assert_string_equal(rec.status, "valid");
	expect_subject_text(&rec, &res);
	kiln_cert_rec_cleanup(&rec);
	kiln_buf_cleanup(&csr);
	kiln_issue_result_cleanup(&res);
}

/*
 * A subject that is not printable ASCII (UTF-8, RFC 2253 specials with
 * spaces at both ends) takes OpenSSL's X509_NAME; the simple ones are written
 * by kiln (kiln_name_simple). Either way the certificate holds the name
 * kiln_name_build makes and the row its one-line form.
 */
static void test_subject_simple_or_not(void **state)
{
	static const char subject[] = "  C: \"DE\"\n"
				      "  O: \"M\u00fcller & S\u00f6hne, GmbH\"\n"
				      "  OU: \" #line <7>; \"\n"
				      "  CN: \"{serial}\"\n";
	static const struct kiln_name_attr want_attrs[][4] = {
		{ { "C", "DE" }, { "O", "M\xc3\xbcller & S\xc3\xb6hne, GmbH" },
		  { "OU", " #line <7>; " }, { "CN", "UML-0001" } },
		{ { "CN", "ASCII-0001" }, { "O", "Example Widgets Inc" }, { "OU", "Test devices" } },
	};
	static const char *const products[] = { "umlaut", "widget-test" };
	static const char *const serials[] = { "UML-0001", "ASCII-0001" };
	static const size_t n_attrs[] = { 4, 3 };
	kiln_diag d;

	(void)state;
	KT_OK(kt_policy_add_subject(&k, "umlaut", subject, &d));
	for (size_t i = 0; i < 2; i++) {
		struct kiln_issue_result res;
		struct kiln_cert_rec rec = { 0 };
		X509_NAME *want = NULL;
		kiln_buf csr;
		X509 *leaf;

		kt_make_csr("p256", serials[i], NULL, &csr, NULL);
		KT_OK(issue(products[i], kiln_buf_view(&csr), serials[i], NULL, &res, &d));
		KT_OK(kiln_name_build(want_attrs[i], n_attrs[i], &want, NULL));
		leaf = first_cert(&res.chain_pem);
		assert_int_equal(X509_NAME_cmp(X509_get_subject_name(leaf), want), 0);
		KT_OK(kiln_store_cert_get(k.store, res.serial, &rec, NULL));
		expect_subject_text(&rec, &res);
		X509_NAME_free(want);
		X509_free(leaf);
		kiln_cert_rec_cleanup(&rec);
		kiln_buf_cleanup(&csr);
		kiln_issue_result_cleanup(&res);
	}
}

static void test_profile_from_policy(void **state)
{
	struct kiln_issue_result res;
	kiln_buf csr;
	kiln_diag d;
	X509 *leaf;
	GENERAL_NAMES *san;
	char cn[64] = "";

	(void)state;
	kt_make_csr("p256", "something-else", NULL, &csr, NULL);
	KT_OK(issue("widget-test", kiln_buf_view(&csr), "WGT-PROFILE-1", NULL, &res, &d));
	leaf = first_cert(&res.chain_pem);
	/* The subject comes from the policy's templates, not from the CSR. */
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "WGT-PROFILE-1");
	san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	assert_string_equal((const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(san, 0)->d.ia5),
			    "urn:kiln:widget-test:WGT-PROFILE-1");
	GENERAL_NAMES_free(san);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), NULL) > 0);
	X509_free(leaf);
	kiln_buf_cleanup(&csr);
	kiln_issue_result_cleanup(&res);
}

struct refusal {
	const char *name;
	const char *product;
	const char *key;
	const char *cn;
	const char *extra;
	const char *serial;
	const char *ca;
	kiln_err want;
	const char *msg;
};

static void test_refusals_change_nothing(void **state)
{
	static const struct refusal cases[] = {
		{ "unknown product", "gizmo", "p256", "R-0001", NULL, NULL, NULL,
		  KILN_ERR_UNKNOWN_PRODUCT, "unknown product 'gizmo'" },
		{ "test policy on production CA", "widget-test", "p256", "R-0002", NULL, NULL,
		  "production-issuing", KILN_ERR_POLICY_ENV, "strictly apart" },
		{ "production policy on test CA", "widget", "p256", "R-0003", NULL, NULL,
		  "test-issuing", KILN_ERR_POLICY_ENV, "strictly apart" },
		{ "root CA", "widget-test", "p256", "R-0004", NULL, NULL, "test-root", KILN_ERR_ARG,
		  "is a root" },
		{ "unknown CA", "widget-test", "p256", "R-0005", NULL, NULL, "nope", KILN_ERR_NOT_FOUND,
		  "no CA named" },
		{ "rsa2048", "widget-test", "rsa2048", "R-0006", NULL, NULL, NULL,
		  KILN_ERR_POLICY_KEY_ALG, "rsa2048 is not allowed" },
		{ "secp256k1", "widget-test", "secp256k1", "R-0007", NULL, NULL, NULL,
		  KILN_ERR_POLICY_KEY_ALG, "not allowed" },
		{ "forbidden O", "widget-test", "p256", "R-0008", "O=Evil", NULL, NULL,
		  KILN_ERR_POLICY_SUBJECT, "O=Evil" },
		{ "serial pattern", "widget-test", "p256", "bad serial", NULL, NULL, NULL,
		  KILN_ERR_POLICY_SERIAL, "does not match" },
		{ "no CN, no serial", "widget-test", "p256", NULL, NULL, NULL, NULL,
		  KILN_ERR_POLICY_SERIAL, "no device serial" },
		{ "explicit bad serial", "widget-test", "p256", "R-0009", NULL, "x\ny", NULL,
		  KILN_ERR_POLICY_SERIAL, "x?y" },
		{ "attestation required", "widget", "p256", "R-0010", NULL, NULL, NULL,
		  KILN_ERR_ATTEST_REQUIRED, "requires dice attestation" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *c = &cases[i];
		struct kiln_issue_result res;
		int64_t certs = kt_count(&k, "certificates"), devs = kt_count(&k, "devices");
		int64_t rej = kt_count_events(&k, "rejection");
		kiln_buf csr;
		kiln_diag d;
		kiln_result r;

		kt_make_csr(c->key, c->cn, c->extra, &csr, NULL);
		r = issue(c->product, kiln_buf_view(&csr), c->serial, c->ca, &res, &d);
		if (r.code != c->want || strstr(d.text, c->msg) == NULL)
			fail_msg("%s: got %d '%s', want %d '%s'", c->name, r.code, d.text, c->want,
				 c->msg);
		assert_null(strchr(d.text, '\n'));
		assert_int_equal(res.cert_der.len, 0);
		assert_int_equal(res.chain_pem.len, 0);
		assert_int_equal(kt_count(&k, "certificates"), certs);
		assert_int_equal(kt_count(&k, "devices"), devs);
		assert_int_equal(kt_count_events(&k, "rejection"), rej + 1);
		kiln_buf_cleanup(&csr);
		kiln_issue_result_cleanup(&res);
	}
}

static void test_bad_csr_bytes(void **state)
{
	static const uint8_t garbage[] = { 0x30, 0x82, 0x01, 0x00, 0x02, 0x01 };
	struct kiln_issue_result res;
	int64_t certs = kt_count(&k, "certificates");
	kiln_diag d;

	(void)state;
	KT_ERR(issue("widget-test", kiln_slice_of(NULL, 0), NULL, NULL, &res, &d), KILN_ERR_CSR_EMPTY);
	kiln_issue_result_cleanup(&res);
	KT_ERR(issue("widget-test", kiln_slice_of(garbage, sizeof(garbage)), NULL, NULL, &res, &d),
	       KILN_ERR_CSR_MALFORMED);
	kiln_issue_result_cleanup(&res);
	assert_int_equal(kt_count(&k, "certificates"), certs);
}

static void test_duplicate_device_serial(void **state)
{
	struct kiln_issue_result res;
	kiln_buf a, b;
	kiln_diag d;
	int64_t certs;

	(void)state;
	kt_make_csr("p256", "DUP-0001", NULL, &a, NULL);
	kt_make_csr("p256", "DUP-0001", NULL, &b, NULL);
	KT_OK(issue("widget-test", kiln_buf_view(&a), NULL, NULL, &res, &d));
	kiln_issue_result_cleanup(&res);
	certs = kt_count(&k, "certificates");
	KT_ERR(issue("widget-test", kiln_buf_view(&b), NULL, NULL, &res, &d),
	       KILN_ERR_DEVICE_DUPLICATE);
	assert_non_null(strstr(d.text, "DUP-0001"));
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_true(kt_count_events(&k, "anomaly") >= 1);
	kiln_issue_result_cleanup(&res);
	/* The same serial is fine for another product: serials are per product. */
	KT_OK(kt_policy_add_text(&k, kt_gadget_policy, &d));
	KT_OK(issue("gadget", kiln_buf_view(&b), NULL, NULL, &res, &d));
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
}

static void test_duplicate_public_key(void **state)
{
	struct kiln_issue_result res;
	EVP_PKEY *key;
	kiln_buf a, b;
	kiln_diag d;
	X509_REQ *req;
	X509_NAME *name;
	unsigned char *der = NULL;
	int len;
	int64_t certs, rej;

	(void)state;
	kt_make_csr("p256", "KEYDUP-0001", NULL, &a, &key);
	KT_OK(issue("widget-test", kiln_buf_view(&a), NULL, NULL, &res, &d));
	kiln_issue_result_cleanup(&res);
	/* Another device serial, the same key: a cloned identity. */
	req = X509_REQ_new();
	name = X509_NAME_new();
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"KEYDUP-0002", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	len = i2d_X509_REQ(req, &der);
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&b, der, (size_t)len));
	certs = kt_count(&k, "certificates");
	rej = kt_count_events(&k, "anomaly");
	KT_ERR(issue("widget-test", kiln_buf_view(&b), NULL, NULL, &res, &d), KILN_ERR_KEY_DUPLICATE);
	assert_non_null(strstr(d.text, "already certified"));
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_int_equal(kt_count_events(&k, "anomaly"), rej + 1);
	kiln_issue_result_cleanup(&res);
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
}

static void test_test_product_uses_test_ca(void **state)
{
	struct kiln_issue_result res;
	kiln_buf csr, chain;
	kiln_diag d;
	X509 *leaf, *issuing;
	BIO *bio;

	(void)state;
	kt_make_csr("p256", "TST-0001", NULL, &csr, NULL);
	KT_OK(issue("widget-test", kiln_buf_view(&csr), NULL, NULL, &res, &d));
	leaf = first_cert(&res.chain_pem);
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_TEST, &chain, NULL));
	bio = BIO_new_mem_buf(chain.ptr, (int)chain.len);
	issuing = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_int_equal(X509_check_issued(issuing, leaf), X509_V_OK);
	KT_OK(kiln_cert_check_signature(leaf, issuing));
	X509_free(issuing);
	X509_free(leaf);
	kiln_buf_cleanup(&chain);
	kiln_buf_cleanup(&csr);
	kiln_issue_result_cleanup(&res);
}

struct worker {
	int id;
	int ok;
	const char *product; /* NULL: widget-test */
	int changed;          /* refused with KILN_ERR_POLICY_CHANGED */
	int64_t versions[25]; /* the policy version each issuance was made under */
	char serials[25][KILN_SERIAL_HEX];
};

static void *issue_many(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 25; i++) {
		struct kiln_issue_result res;
		char cn[32];
		kiln_buf csr;
		kiln_diag d;
		kiln_result r;

		(void)snprintf(cn, sizeof(cn), "PAR-%d-%03d", w->id, i);
		kt_make_csr("p256", cn, NULL, &csr, NULL);
		r = issue(w->product != NULL ? w->product : "widget-test", kiln_buf_view(&csr), NULL,
			  NULL, &res, &d);
		if (kiln_is_ok(r)) {
			w->versions[w->ok] = res.policy_version;
			memcpy(w->serials[w->ok++], res.serial, KILN_SERIAL_HEX);
		} else if (r.code == KILN_ERR_POLICY_CHANGED) {
			w->changed++;
		}
		kiln_buf_cleanup(&csr);
		kiln_issue_result_cleanup(&res);
	}
	return NULL;
}

static void test_concurrent_issuers(void **state)
{
	pthread_t th[4];
	struct worker w[4];
	int64_t devs = kt_count(&k, "devices");

	(void)state;
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, issue_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].ok, 25);
	}
	assert_int_equal(kt_count(&k, "devices"), devs + 100);
	for (int a = 0; a < 100; a++)
		for (int b = a + 1; b < 100; b++)
			assert_string_not_equal(w[a / 25].serials[a % 25], w[b / 25].serials[b % 25]);
}

static bool leaf_has_org(const struct kiln_issue_result *res)
{
	X509 *leaf = first_cert(&res->chain_pem);
	bool has = X509_NAME_get_index_by_NID(X509_get_subject_name(leaf), NID_organizationName, -1) >= 0;

	X509_free(leaf);
	return has;
}

static kiln_result activate_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_policy_activate(tx, "gizmo", *(const int64_t *)ctx, d);
}

/*
 * Issuances use the policy version last read, without reading it again; the
 * commit checks it is still the active one, and an issuance built under a
 * replaced version is made again under the new one: never recorded under a
 * policy that was no longer active, never refused for it.
 */
/* Issues a gizmo; expects the policy version it was made under and whether its subject has an O. */
static void issue_gizmo(const char *cn, int64_t version, bool org)
{
	struct kiln_issue_result res;
	kiln_buf csr;
	kiln_diag d;

	kt_make_csr("p256", cn, NULL, &csr, NULL);
	KT_OK(issue("gizmo", kiln_buf_view(&csr), NULL, NULL, &res, &d));
	assert_int_equal(res.policy_version, version);
	assert_int_equal(leaf_has_org(&res), org);
	kiln_buf_cleanup(&csr);
	kiln_issue_result_cleanup(&res);
}

static void test_policy_change_seen_by_commit(void **state)
{
	const int64_t v1 = 1;
	const kiln_policy *p = NULL;
	int64_t v = 0, certs, refusals;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kt_policy_add_subject(&k, "gizmo", "  CN: \"{serial}\"\n", &d));
	issue_gizmo("GIZ-0001", 1, false);

	/* Version 2 puts an O in the subject; this CA still knows version 1 as the head. */
	KT_OK(kt_policy_add_subject(&k, "gizmo", "  CN: \"{serial}\"\n  O: \"Gizmo Works\"\n", &d));
	KT_OK(ca_policy_current(k.ca, "gizmo", &p, &v, &d));
	assert_int_equal(v, 1);
	refusals = kt_count_events(&k, "rejection") + kt_count_events(&k, "failure");
	certs = kt_count(&k, "certificates");
	issue_gizmo("GIZ-0002", 2, true);
	assert_int_equal(kt_count(&k, "certificates"), certs + 1);
	assert_int_equal(kt_count_events(&k, "rejection") + kt_count_events(&k, "failure"), refusals);
	KT_OK(ca_policy_current(k.ca, "gizmo", &p, &v, &d));
	assert_int_equal(v, 2);

	/* Another writer (another process, for all this CA knows) goes back to version 1. */
	KT_OK(kiln_store_write(k.store, activate_tx, (void *)&v1, &d));
	issue_gizmo("GIZ-0003", 1, false);
	assert_int_equal(kt_count(&k, "certificates"), certs + 2);
}

/*
 * Versions change while four threads issue. Each issuance is recorded under
 * a version that was active, or refused (policy-changed) recording nothing
 * but its refusal; a version changing faster than an issuance takes is the
 * only way to be refused.
 */
static void test_policy_change_under_load(void **state)
{
	const kiln_policy *p = NULL;
	int64_t first = 0, last = 0, certs = kt_count(&k, "certificates");
	int64_t refusals = kt_count_events(&k, "rejection");
	pthread_t th[4];
	struct worker w[4];
	int ok = 0, changed = 0;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kt_policy_add_subject(&k, "gadget", "  CN: \"{serial}\"\n", &d));
	KT_OK(ca_policy_active(k.ca, "gadget", &p, &first, &d));
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = 10 + i;
		w[i].product = "gadget";
		assert_int_equal(pthread_create(&th[i], NULL, issue_many, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++)
		KT_OK(kt_policy_add_subject(&k, "gadget", i % 2 ? "  CN: \"{serial}\"\n"
							      : "  CN: \"{serial}\"\n  O: \"G\"\n",
					    &d));
	KT_OK(ca_policy_active(k.ca, "gadget", &p, &last, &d));
	assert_int_equal(last, first + 6);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].ok + w[i].changed, 25);
		for (int j = 0; j < w[i].ok; j++)
			assert_true(w[i].versions[j] >= first && w[i].versions[j] <= last);
		ok += w[i].ok;
		changed += w[i].changed;
	}
	print_message("policy changes under load: %d issued, %d refused as policy-changed\n", ok,
		      changed);
	assert_true(ok > 0);
	assert_int_equal(kt_count(&k, "certificates"), certs + ok);
	assert_int_equal(kt_count_events(&k, "rejection"), refusals + changed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_each_key_type),
		cmocka_unit_test(test_certificate_row_matches_release),
		cmocka_unit_test(test_profile_from_policy),
		cmocka_unit_test(test_subject_simple_or_not),
		cmocka_unit_test(test_refusals_change_nothing),
		cmocka_unit_test(test_bad_csr_bytes),
		cmocka_unit_test(test_duplicate_device_serial),
		cmocka_unit_test(test_duplicate_public_key),
		cmocka_unit_test(test_test_product_uses_test_ca),
		cmocka_unit_test(test_concurrent_issuers),
		cmocka_unit_test(test_policy_change_seen_by_commit),
		cmocka_unit_test(test_policy_change_under_load),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
