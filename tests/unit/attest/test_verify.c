/*
 * Unit tests for src/attest/verify.c: the dispatcher. Which verifier each
 * attestation type reaches, what "none" accepts, and what it refuses before
 * any verifier runs, and the trust anchors the verifiers share. DICE itself
 * is tested in test_dice.c.
 */
#include "support/support.h"

#include "attest/attest_impl.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

static const char policy_head[] =
	"product: widget-test\n"
	"environment: test\n"
	"keys:\n"
	"  - type: ec\n"
	"    curves: [p256]\n"
	"device_serial:\n"
	"  pattern: '^[A-Z0-9-]{4,32}$'\n"
	"subject:\n"
	"  CN: \"{serial}\"\n"
	"validity_days: 365\n"
	"key_usage: [digitalSignature]\n"
	"attestation:\n";

static kiln_policy *parse_policy(const char *attestation)
{
	kiln_policy *p = NULL;
	kiln_buf y;
	kiln_diag d;

	kiln_buf_init(&y, 1 << 16);
	KT_OK(kiln_buf_append_str(&y, policy_head));
	KT_OK(kiln_buf_append_str(&y, attestation));
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_buf_view(&y), "p.yaml", &p, &d)))
		fail_msg("policy: %s", d.text);
	kiln_buf_cleanup(&y);
	return p;
}

static uint8_t nonce[KILN_NONCE_LEN];
static const uint8_t csr_bytes[] = { 0x30, 0x00 };

static struct kiln_attest_ctx ctx_for(const kiln_policy *p)
{
	return (struct kiln_attest_ctx){ .policy = p, .nonce = nonce,
					 .csr_der = kiln_slice_of(csr_bytes, sizeof(csr_bytes)),
					 .csr_key = kt_key("p256"), .device_serial = "WIDGET-1",
					 .now = kiln_now() };
}

static void test_none_accepts(void **state)
{
	kiln_policy *p = parse_policy("  type: none\n");
	struct kiln_attest_ctx ctx = ctx_for(p);
	struct kiln_attest_result res;
	struct kiln_evidence ev;
	kiln_diag d;

	(void)state;
	/* Without evidence. */
	memset(&res, 0xa5, sizeof(res));
	kiln_diag_clear(&d);
	KT_OK(kiln_attest_verify(NULL, &ctx, &res, &d));
	assert_int_equal(res.type, KILN_ATTEST_NONE);
	assert_false(res.has_firmware);
	assert_string_equal(res.firmware_version, "");
	assert_int_equal(d.code, KILN_OK);
	/* Evidence, even nonsense, is ignored. */
	kiln_evidence_init(&ev);
	ev.type = KILN_ATTEST_DICE;
	KT_OK(kiln_buf_append_str(&ev.dice.alias_cert, "junk"));
	KT_OK(kiln_attest_verify(&ev, &ctx, &res, &d));
	assert_false(res.has_firmware);
	/* The context's request fields do not matter to none. */
	ctx.nonce = NULL;
	ctx.csr_key = NULL;
	KT_OK(kiln_attest_verify(&ev, &ctx, &res, &d));
	kiln_evidence_cleanup(&ev);
	kiln_policy_free(p);
}

static void test_none_outside_test_refused(void **state)
{
	kiln_policy *p = parse_policy("  type: none\n");
	struct kiln_attest_ctx ctx = ctx_for(p);
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	/* The parser never makes this; the dispatcher refuses it anyway. */
	p->env = KILN_ENV_PRODUCTION;
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_ATTEST_REQUIRED);
	assert_string_equal(d.text,
			    "policy widget-test is not a test policy and cannot go without attestation");
	kiln_policy_free(p);
}

static void test_dice_dispatched(void **state)
{
	kiln_policy *p = parse_policy(
		"  type: dice\n  firmware:\n    - {version: \"1\", sha256: "
		"\"0000000000000000000000000000000000000000000000000000000000000000\"}\n");
	struct kiln_attest_ctx ctx = ctx_for(p);
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	memset(&res, 0xa5, sizeof(res));
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_string_equal(d.text, "the policy requires DICE evidence");
	/* A refusal leaves the result zeroed. */
	assert_int_equal(res.type, KILN_ATTEST_NONE);
	assert_false(res.has_firmware);
	kiln_policy_free(p);
}

/* The trust anchors both verifiers load: each must be a readable PEM certificate. */
static void test_load_roots(void **state)
{
	kiln_policy *p = parse_policy("  type: none\n");
	EVP_PKEY *key = kt_keygen("p256");
	X509 *x = X509_new();
	X509_STORE *store = X509_STORE_new();
	char *pems[2] = { NULL, NULL };
	char *mem = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	kiln_diag d;
	long n;

	(void)state;
	/* a self-signed certificate, as PEM text */
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
						    (const unsigned char *)"root", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	n = BIO_get_mem_data(bio, &mem);
	/* Not strndup: ASan's interceptor reads one byte past a buffer that has no NUL. */
	pems[0] = calloc(1, (size_t)n + 1);
	assert_non_null(pems[0]);
	memcpy(pems[0], mem, (size_t)n);
	pems[1] = strdup("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
	kiln_diag_clear(&d);
	KT_OK(kiln_attest_load_roots(p, pems, 1, "ek_roots", store, &d));
	KT_ERR(kiln_attest_load_roots(p, pems, 2, "ek_roots", store, &d), KILN_ERR_CONFIG);
	assert_string_equal(d.text,
			    "policy widget-test: ek_roots[1] is not a readable PEM certificate");
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_load_roots(p, pems + 1, 1, "vendor_roots", store, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "vendor_roots[0]"));
	free(pems[0]);
	free(pems[1]);
	BIO_free(bio);
	X509_STORE_free(store);
	X509_free(x);
	EVP_PKEY_free(key);
	kiln_policy_free(p);
}

static void test_unsupported_types(void **state)
{
	static const char pem[] =
		"\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"";
	char att[512];
	kiln_policy *p;
	struct kiln_attest_ctx ctx;
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	(void)snprintf(att, sizeof(att),
		       "  type: tpm2\n  ek_roots: [%s]\n  pcrs: {sha256: {0: "
		       "\"0000000000000000000000000000000000000000000000000000000000000000\"}}\n",
		       pem);
	p = parse_policy(att);
	ctx = ctx_for(p);
	kiln_diag_clear(&d);
	/* tpm2 is verified now: without evidence it is malformed, not unsupported. */
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_string_equal(d.text, "the policy requires TPM 2.0 evidence");
	kiln_policy_free(p);
	(void)snprintf(att, sizeof(att), "  type: secure-element\n  vendor_roots: [%s]\n", pem);
	p = parse_policy(att);
	ctx = ctx_for(p);
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "secure-element attestation"));
	/* A value outside the enum (memory corruption, a newer policy): internal error. */
	p->attestation.type = (kiln_attest_type)99;
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_INTERNAL);
	kiln_policy_free(p);
}

static void test_arguments(void **state)
{
	kiln_policy *p = parse_policy("  type: none\n");
	struct kiln_attest_ctx ctx = ctx_for(p);
	struct kiln_attest_result res;

	(void)state;
	KT_ERR(kiln_attest_verify(NULL, NULL, &res, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_attest_verify(NULL, &ctx, NULL, NULL), KILN_ERR_ARG);
	ctx.policy = NULL;
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, NULL), KILN_ERR_ARG);
	kiln_policy_free(p);
}

static int group_teardown(void **state)
{
	(void)state;
	kt_keys_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_accepts),
		cmocka_unit_test(test_none_outside_test_refused),
		cmocka_unit_test(test_dice_dispatched),
		cmocka_unit_test(test_load_roots),
		cmocka_unit_test(test_unsupported_types),
		cmocka_unit_test(test_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
