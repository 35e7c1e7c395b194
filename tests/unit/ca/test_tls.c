/*
 * Unit tests for src/ca/tls.c: kiln serve's own TLS certificate from the
 * service CA: its names, its profile, its chain, its record and event, and
 * its refusals.
 */
#include "support/ca_fixture.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-tls", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	kt_keys_free();
	return 0;
}

/* Every certificate of a PEM chain, in order. */
static STACK_OF(X509) *pem_chain(const kiln_buf *pem)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(pem->ptr, (int)pem->len);
	X509 *x;

	assert_non_null(sk);
	assert_non_null(bio);
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		assert_true(sk_X509_push(sk, x) > 0);
	BIO_free(bio);
	return sk;
}

static kiln_result issue(const char *const *dns, size_t n_dns, const char *const *ips, size_t n_ips,
			 unsigned days, EVP_PKEY *key, kiln_buf *chain, kiln_diag *d)
{
	struct kiln_tls_req req = { key, dns, n_dns, ips, n_ips, days, "test-actor" };

	kiln_diag_clear(d);
	kiln_buf_init(chain, KILN_BUF_DEFAULT_MAX);
	return kiln_ca_tls_issue(k.ca, &req, chain, d);
}

/* Verifies the leaf with purpose sslserver, trusting only the service root. */
static int verify_server(STACK_OF(X509) *chain, const char *host, const char *ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_VERIFY_PARAM *vp;
	int rc;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_non_null(untrusted);
	/* The last certificate is the root: the only trust anchor. */
	assert_int_equal(X509_STORE_add_cert(store, sk_X509_value(chain, sk_X509_num(chain) - 1)), 1);
	for (int i = 1; i < sk_X509_num(chain) - 1; i++)
		assert_true(sk_X509_push(untrusted, sk_X509_value(chain, i)) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted), 1);
	vp = X509_STORE_CTX_get0_param(ctx);
	assert_int_equal(X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER), 1);
	if (host != NULL)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, host, 0), 1);
	if (ip != NULL)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(vp, ip), 1);
	rc = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_free(untrusted);
	return rc;
}

static void san_lists(X509 *x, char *dns, size_t dcap, char *ips, size_t icap)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	dns[0] = ips[0] = '\0';
	assert_non_null(gens);
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS) {
			size_t n = strlen(dns);

			(void)snprintf(dns + n, dcap - n, "%s;",
				       (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			char *text = NULL;
			size_t n = strlen(ips);
			ASN1_OCTET_STRING *o = g->d.iPAddress;

			text = o != NULL ? OPENSSL_buf2hexstr(o->data, o->length) : NULL;
			assert_non_null(text);
			(void)snprintf(ips + n, icap - n, "%s;", text);
			OPENSSL_free(text);
		} else {
			fail_msg("unexpected SAN type %d", g->type);
		}
	}
	GENERAL_NAMES_free(gens);
}

static void test_issue_dns_and_ip(void **state)
{
	static const char *const dns[] = { "kiln.factory.example", "localhost" };
	static const char *const ips[] = { "127.0.0.1", "::1", "10.1.2.3" };
	EVP_PKEY *key = kt_keygen("p256");
	int64_t certs = kt_count(&k, "certificates"), events = kt_count_events(&k, "tls-issue");
	char d_list[512], i_list[512], cn[128], hex[KILN_SERIAL_HEX * 2];
	struct kiln_cert_rec rec = { 0 };
	STACK_OF(X509) *chain;
	kiln_buf pem, service;
	X509 *leaf;
	kiln_diag d;

	(void)state;
	if (!kiln_is_ok(issue(dns, 2, ips, 3, 0, key, &pem, &d)))
		fail_msg("tls issue: %s", d.text);
	/* The certificate, then the service chain: issuing CA, root. */
	chain = pem_chain(&pem);
	assert_int_equal(sk_X509_num(chain), 3);
	kiln_buf_init(&service, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_SERVICE, &service, NULL));
	assert_non_null(strstr(kiln_buf_cstr(&pem), kiln_buf_cstr(&service)));
	leaf = sk_X509_value(chain, 0);

	/* The server's own key, CN the first DNS name, SANs exactly as asked. */
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "kiln.factory.example");
	san_lists(leaf, d_list, sizeof(d_list), i_list, sizeof(i_list));
	assert_string_equal(d_list, "kiln.factory.example;localhost;");
	assert_string_equal(i_list, "7F:00:00:01;00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01;"
				    "0A:01:02:03;");

	/* A TLS server certificate and nothing more: serverAuth only, digitalSignature only, no CA. */
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_check_ca(leaf), 0);
	/* 90 days by default (plus the backdating minute). */
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf),
						X509_get0_notAfter(leaf)), 1);
		assert_int_equal(days, 90);
		assert_int_equal(secs, 60);
	}

	/* The chain verifies against the service root, for each name and address. */
	assert_int_equal(verify_server(chain, "kiln.factory.example", NULL), 1);
	assert_int_equal(verify_server(chain, "localhost", NULL), 1);
	assert_int_equal(verify_server(chain, NULL, "127.0.0.1"), 1);
	assert_int_equal(verify_server(chain, NULL, "::1"), 1);
	assert_int_equal(verify_server(chain, NULL, "10.1.2.3"), 1);
	assert_int_equal(verify_server(chain, "other.example", NULL), 0);
	assert_int_equal(verify_server(chain, NULL, "127.0.0.2"), 0);

	/* Recorded as kind "tls", with its event. */
	kiln_cert_serial_hex(leaf, hex, sizeof(hex));
	KT_OK(kiln_store_cert_get(k.store, hex, &rec, NULL));
	assert_string_equal(rec.kind, "tls");
	assert_string_equal(rec.env, "service");
	assert_string_equal(rec.status, "valid");
	assert_int_equal(rec.device_id, 0);
	kiln_cert_rec_cleanup(&rec);
	assert_int_equal(kt_count(&k, "certificates"), certs + 1);
	assert_int_equal(kt_count_events(&k, "tls-issue"), events + 1);

	sk_X509_pop_free(chain, X509_free);
	kiln_buf_cleanup(&pem);
	kiln_buf_cleanup(&service);
	EVP_PKEY_free(key);
}

static void test_verifies_with_openssl(void **state)
{
	static const char *const ips[] = { "127.0.0.1" };
	EVP_PKEY *key = kt_keygen("p256");
	char *dir = kt_tmpdir("ca-tls-openssl");
	char *leaf = kt_path(dir, "leaf.pem"), *root = kt_path(dir, "root.pem");
	char *inter = kt_path(dir, "issuing.pem");
	STACK_OF(X509) *chain;
	kiln_buf pem;
	kiln_diag d;
	BIO *b;

	(void)state;
	KT_OK(issue(NULL, 0, ips, 1, 30, key, &pem, &d));
	chain = pem_chain(&pem);
	for (int i = 0; i < 3; i++) {
		b = BIO_new_file(i == 0 ? leaf : i == 1 ? inter : root, "w");
		assert_non_null(b);
		assert_int_equal(PEM_write_bio_X509(b, sk_X509_value(chain, i)), 1);
		BIO_free(b);
	}
	/* An independent verifier agrees, for the purpose and the address. */
	assert_int_equal(kt_system("openssl verify -purpose sslserver -verify_ip 127.0.0.1 "
				   "-CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
				   root, inter, leaf), 0);
	assert_int_not_equal(kt_system("openssl verify -purpose sslclient -CAfile '%s' "
				       "-untrusted '%s' '%s' >/dev/null 2>&1", root, inter, leaf), 0);
	/* CN is the first address when no DNS name is given. */
	assert_int_equal(kt_system("openssl x509 -in '%s' -noout -subject | grep -q 'CN = 127.0.0.1'",
				   leaf), 0);
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(sk_X509_value(chain, 0)),
						X509_get0_notAfter(sk_X509_value(chain, 0))), 1);
		assert_int_equal(days, 30);
	}
	sk_X509_pop_free(chain, X509_free);
	kiln_buf_cleanup(&pem);
	EVP_PKEY_free(key);
	kt_rmrf(dir);
	free(dir);
	free(leaf);
	free(root);
	free(inter);
}

static void test_same_key_again(void **state)
{
	static const char *const dns[] = { "localhost" };
	EVP_PKEY *key = kt_keygen("p256");
	kiln_buf a, b;
	kiln_diag d;

	(void)state;
	/* kiln serve keeps its key across restarts: a renewal certifies the same key again. */
	KT_OK(issue(dns, 1, NULL, 0, 0, key, &a, &d));
	KT_OK(issue(dns, 1, NULL, 0, 0, key, &b, &d));
	assert_string_not_equal(kiln_buf_cstr(&a), kiln_buf_cstr(&b));
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
	EVP_PKEY_free(key);
}

static void test_refusals(void **state)
{
	static const char *const nine[] = { "a.example", "b.example", "c.example", "d.example",
					    "e.example", "f.example", "g.example", "h.example",
					    "i.example" };
	static const char *const bad_ip[] = { "010.0.0.1" };
	static const char *const not_ip[] = { "localhost" };
	static const char *const dns[] = { "localhost" };
	EVP_PKEY *key = kt_keygen("p256");
	int64_t certs = kt_count(&k, "certificates"), events = kt_count(&k, "events");
	struct kiln_tls_req req = { key, dns, 1, NULL, 0, 0, NULL };
	kiln_buf pem;
	kiln_diag d;

	(void)state;
	/* No names at all. */
	KT_ERR(issue(NULL, 0, NULL, 0, 0, key, &pem, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "DNS names or IPs"));
	assert_int_equal(pem.len, 0);
	kiln_buf_cleanup(&pem);
	/* Too many. */
	KT_ERR(issue(nine, 9, NULL, 0, 0, key, &pem, &d), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	KT_ERR(issue(dns, 1, nine, 9, 0, key, &pem, &d), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	/* Addresses that are not strictly addresses. */
	KT_ERR(issue(dns, 1, bad_ip, 1, 0, key, &pem, &d), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	KT_ERR(issue(dns, 1, not_ip, 1, 0, key, &pem, &d), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	/* No key, no actor. */
	KT_ERR(issue(dns, 1, NULL, 0, 0, NULL, &pem, &d), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_ERR(kiln_ca_tls_issue(k.ca, &req, &pem, NULL), KILN_ERR_ARG);
	kiln_buf_cleanup(&pem);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_int_equal(kt_count(&k, "events"), events);
	EVP_PKEY_free(key);
}

static void test_long_host_name(void **state)
{
	char host[128], cn[80];
	const char *dns[] = { host, "localhost" };
	EVP_PKEY *key = kt_keygen("p256");
	STACK_OF(X509) *chain;
	kiln_buf pem;
	kiln_diag d;

	(void)state;
	/* A DNS name longer than a CN may be (64): still a valid name for the SAN. */
	memset(host, 'h', 70);
	memcpy(host + 70, ".factory.example", sizeof(".factory.example"));
	if (!kiln_is_ok(issue(dns, 2, NULL, 0, 0, key, &pem, &d)))
		fail_msg("long host name: %s", d.text);
	chain = pem_chain(&pem);
	assert_int_equal(verify_server(chain, host, NULL), 1);
	/* The CN is the first name that fits one. */
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)),
					      NID_commonName, cn, sizeof(cn)) > 0);
	assert_string_equal(cn, "localhost");
	sk_X509_pop_free(chain, X509_free);
	kiln_buf_cleanup(&pem);
	/* No name short enough for a CN at all: refused, clearly. */
	KT_ERR(issue(dns, 1, NULL, 0, 0, key, &pem, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "64 characters"));
	kiln_buf_cleanup(&pem);
	EVP_PKEY_free(key);
}

static void test_key_kinds(void **state)
{
	static const char *const dns[] = { "localhost" };
	static const char *const kinds[] = { "p384", "ed25519" };
	kiln_buf pem;
	kiln_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		STACK_OF(X509) *chain;

		if (!kiln_is_ok(issue(dns, 1, NULL, 0, 0, kt_key(kinds[i]), &pem, &d)))
			fail_msg("%s: %s", kinds[i], d.text);
		chain = pem_chain(&pem);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(chain, 0)), kt_key(kinds[i])), 1);
		assert_int_equal(verify_server(chain, "localhost", NULL), 1);
		sk_X509_pop_free(chain, X509_free);
		kiln_buf_cleanup(&pem);
	}
}

static void test_without_service_token(void **state)
{
	static const char *const dns[] = { "localhost" };
	struct kiln_ca_opts co = { 0 };
	struct kiln_tls_req req;
	EVP_PKEY *key = kt_keygen("p256");
	int64_t certs = kt_count(&k, "certificates");
	kiln_ca *ca = NULL;
	kiln_buf pem;
	kiln_diag d;

	(void)state;
	/* A process given the device tokens only (no service PIN) cannot issue TLS certificates. */
	co.store = k.store;
	co.tokens[KILN_ENV_PRODUCTION] = k.tokens[KILN_ENV_PRODUCTION];
	co.tokens[KILN_ENV_TEST] = k.tokens[KILN_ENV_TEST];
	co.public_url = "http://kiln.test";
	co.log = &k.log;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_open(&co, &ca, &d));
	req = (struct kiln_tls_req){ key, dns, 1, NULL, 0, 0, "test" };
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_ERR(kiln_ca_tls_issue(ca, &req, &pem, &d), KILN_ERR_HSM_TOKEN_MISSING);
	assert_non_null(strstr(d.text, "service CA"));
	assert_int_equal(pem.len, 0);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	kiln_buf_cleanup(&pem);
	kiln_ca_free(ca);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_dns_and_ip),
		cmocka_unit_test(test_verifies_with_openssl),
		cmocka_unit_test(test_same_key_again),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_long_host_name),
		cmocka_unit_test(test_key_kinds),
		cmocka_unit_test(test_without_service_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
