/*
 * Unit tests for src/server/routes_est.c: the EST handlers called directly
 * over a real deployment (SoftHSM2, SQLite): cacerts and csrattrs bodies,
 * who may enroll where, renewal by the device's own certificate, and the
 * refusals with their audit events.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"

#include <openssl/pkcs7.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app, *app_default;

static const char open_policy[] = "product: est-open\n"
				  "environment: test\n"
				  "keys:\n"
				  "  - type: ec\n"
				  "    curves: [p256, p384]\n"
				  "  - type: ed25519\n"
				  "device_serial:\n"
				  "  pattern: '^[A-Z0-9][A-Z0-9-]{3,63}$'\n"
				  "subject:\n"
				  "  CN: \"{serial}\"\n"
				  "validity_days: 30\n"
				  "key_usage: [digitalSignature]\n"
				  "est:\n"
				  "  enroll: open\n"
				  "attestation:\n"
				  "  type: none\n";

static int setup(void **state)
{
	struct kiln_app_opts o;
	kiln_diag d;

	(void)state;
	kt_deploy_up(&k, "server-routes-est", KILN_ALG_P256, false);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kt_policy_add_text(&k, open_policy, &d)))
		fail_msg("policy: %s", d.text);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .log = &k.log };
	KT_OK(kiln_app_new(&o, &app, NULL));
	o.est_default_product = "est-open";
	KT_OK(kiln_app_new(&o, &app_default, NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_app_free(app);
	kiln_app_free(app_default);
	kt_deploy_down(&k);
	return 0;
}

struct call {
	kiln_result r;
	kiln_diag d;
	struct kiln_response res;
};

static void call(kiln_app *a, kiln_handler_fn fn, const char *label, kiln_slice body,
		 const X509 *foreign, struct call *c)
{
	struct kiln_request req = { 0 };

	req.method = body.len > 0 ? "POST" : "GET";
	req.path = "/.well-known/est/x";
	if (label != NULL) {
		req.params[0] = label;
		req.n_params = 1;
	}
	req.content_type = "application/pkcs10";
	req.body = body;
	req.foreign_cert = foreign;
	req.peer = "127.0.0.1:1";
	req.request_id = "est-1";
	kiln_response_init(&c->res);
	kiln_diag_clear(&c->d);
	c->r = fn(a, &req, &c->res, &c->d);
}

/* The certificates of a certs-only response body. */
static STACK_OF(X509) *certs_of(const struct kiln_response *res)
{
	kiln_buf raw;
	const unsigned char *p;
	PKCS7 *p7;
	STACK_OF(X509) *out;

	kiln_buf_init(&raw, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_base64_decode(kiln_buf_view(&res->body), &raw));
	p = raw.ptr;
	p7 = d2i_PKCS7(NULL, &p, (long)raw.len);
	assert_non_null(p7);
	out = X509_chain_up_ref(p7->d.sign->cert);
	PKCS7_free(p7);
	kiln_buf_cleanup(&raw);
	return out;
}

static void test_cacerts(void **state)
{
	struct call c;
	STACK_OF(X509) *sk;

	(void)state;
	call(app, route_est_cacerts, NULL, kiln_slice_of(NULL, 0), NULL, &c);
	KT_OK(c.r);
	assert_string_equal(c.res.content_type, "application/pkcs7-mime; smime-type=certs-only");
	sk = certs_of(&c.res);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_non_null(strstr(X509_NAME_oneline(X509_get_subject_name(sk_X509_value(sk, 0)),
						  (char[256]){ 0 }, 256),
			       "Production Issuing"));
	sk_X509_pop_free(sk, X509_free);
	kiln_response_cleanup(&c.res);
	call(app, route_est_cacerts, "est-open", kiln_slice_of(NULL, 0), NULL, &c);
	KT_OK(c.r);
	sk = certs_of(&c.res);
	assert_non_null(strstr(X509_NAME_oneline(X509_get_subject_name(sk_X509_value(sk, 0)),
						  (char[256]){ 0 }, 256),
			       "Test Issuing"));
	sk_X509_pop_free(sk, X509_free);
	kiln_response_cleanup(&c.res);
	call(app, route_est_cacerts, "nope", kiln_slice_of(NULL, 0), NULL, &c);
	KT_ERR(c.r, KILN_ERR_UNKNOWN_PRODUCT);
	kiln_response_cleanup(&c.res);
}

static void test_csrattrs(void **state)
{
	struct call c;
	kiln_buf raw;

	(void)state;
	call(app, route_est_csrattrs, NULL, kiln_slice_of(NULL, 0), NULL, &c);
	KT_OK(c.r);
	assert_int_equal(c.res.status, 204);
	kiln_response_cleanup(&c.res);
	call(app, route_est_csrattrs, "est-open", kiln_slice_of(NULL, 0), NULL, &c);
	KT_OK(c.r);
	assert_int_equal(c.res.status, 200);
	kiln_buf_init(&raw, 4096);
	KT_OK(kiln_base64_decode(kiln_buf_view(&c.res.body), &raw));
	KT_OK(kiln_der_check(kiln_buf_view(&raw)));
	assert_int_equal(raw.ptr[0], 0x30);
	/* id-ecPublicKey, prime256v1 and secp384r1 OIDs, Ed25519 */
	assert_non_null(memmem(raw.ptr, raw.len, "\x06\x07\x2a\x86\x48\xce\x3d\x02\x01", 9));
	assert_non_null(memmem(raw.ptr, raw.len, "\x06\x05\x2b\x81\x04\x00\x22", 7));
	assert_non_null(memmem(raw.ptr, raw.len, "\x06\x03\x2b\x65\x70", 5));
	kiln_buf_cleanup(&raw);
	kiln_response_cleanup(&c.res);
}

static void b64_csr(const char *cn, kiln_buf *body, EVP_PKEY **key)
{
	kiln_buf der;

	kt_make_csr("p256", cn, NULL, &der, key);
	kiln_buf_init(body, 65536);
	KT_OK(kiln_base64_encode(kiln_buf_view(&der), body));
	kiln_buf_cleanup(&der);
}

static void test_enroll_and_renew(void **state)
{
	struct call c;
	kiln_buf body, body2;
	STACK_OF(X509) *sk;
	X509 *cur;
	int64_t certs, rej;

	(void)state;
	b64_csr("EST-0001", &body, NULL);
	/* Unlabelled enrollment uses the server's default product. */
	call(app_default, route_est_enroll, NULL, kiln_buf_view(&body), NULL, &c);
	KT_OK(c.r);
	sk = certs_of(&c.res);
	assert_int_equal(sk_X509_num(sk), 1);
	cur = X509_dup(sk_X509_value(sk, 0));
	sk_X509_pop_free(sk, X509_free);
	kiln_response_cleanup(&c.res);

	certs = kt_count(&k, "certificates");
	rej = kt_count_events(&k, "rejection");
	call(app, route_est_enroll, NULL, kiln_buf_view(&body), NULL, &c);
	KT_ERR(c.r, KILN_ERR_UNKNOWN_PRODUCT); /* no label, no default */
	kiln_response_cleanup(&c.res);
	call(app, route_est_enroll, "widget-test", kiln_buf_view(&body), NULL, &c);
	KT_ERR(c.r, KILN_ERR_ENROLL_FORBIDDEN);
	kiln_response_cleanup(&c.res);
	call(app, route_est_enroll, "est-open", kiln_slice_str("%%%"), NULL, &c);
	KT_ERR(c.r, KILN_ERR_MALFORMED);
	kiln_response_cleanup(&c.res);
	call(app, route_est_reenroll, NULL, kiln_buf_view(&body), NULL, &c);
	KT_ERR(c.r, KILN_ERR_AUTH_REQUIRED);
	kiln_response_cleanup(&c.res);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_true(kt_count_events(&k, "rejection") + kt_count_events(&k, "auth-failure") >= rej + 4);

	/* Renewal with the device's own certificate, under the default-product server too. */
	b64_csr("EST-0001", &body2, NULL);
	call(app_default, route_est_reenroll, NULL, kiln_buf_view(&body2), cur, &c);
	KT_OK(c.r);
	assert_int_equal(kt_count(&k, "certificates"), certs + 1);
	kiln_response_cleanup(&c.res);
	call(app, route_est_reenroll, "widget-test", kiln_buf_view(&body2), cur, &c);
	KT_ERR(c.r, KILN_ERR_FORBIDDEN);
	kiln_response_cleanup(&c.res);
	X509_free(cur);
	kiln_buf_cleanup(&body);
	kiln_buf_cleanup(&body2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cacerts),
		cmocka_unit_test(test_csrattrs),
		cmocka_unit_test(test_enroll_and_renew),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
