/*
 * Unit tests for src/attest/dice.c: DICE evidence verification through
 * kiln_attest_verify. The evidence is built here with OpenSSL as a DICE
 * device would (a DeviceID key certifying an Alias key whose certificate
 * carries DiceTcbInfo, the Alias key signing the binding), so each refusal
 * can be produced on its own; the agent tests do the same with the real
 * simulator.
 */
#include "support/support.h"

#include "attest/attest.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERIAL "WIDGET-0001"
#define FW_A "1111111111111111111111111111111111111111111111111111111111111111"
#define FW_B "2222222222222222222222222222222222222222222222222222222222222222"
#define FW_X "3333333333333333333333333333333333333333333333333333333333333333"

/* --------------------------------------------------------------- fixtures */

static EVP_PKEY *deviceid, *alias, *other, *alias_ed, *alias_rsa, *vendor_key, *rogue_key;
static X509 *vendor_ca, *rogue_ca;
static kiln_buf csr, other_csr;
static kiln_policy *policy, *vendor_policy;
static uint8_t nonce[KILN_NONCE_LEN];
static uint8_t fw_a[32], fw_b[32], fw_x[32];

static void hex32(const char *hex, uint8_t out[32])
{
	size_t n = 0;

	KT_OK(kiln_hex_decode(hex, out, 32, &n));
	assert_int_equal(n, 32);
}

static void key_id(EVP_PKEY *key, uint8_t out[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits = NULL;
	unsigned int n = 0;
	int len = 0;

	assert_int_equal(X509_PUBKEY_set(&xpk, key), 1);
	assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, xpk), 1);
	assert_int_equal(EVP_Digest(bits, (size_t)len, out, &n, EVP_sha1(), NULL), 1);
	X509_PUBKEY_free(xpk);
}

static void make_csr(EVP_PKEY *key, kiln_buf *out)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int n;

	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)SERIAL, -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	kiln_buf_init(out, 1 << 16);
	KT_OK(kiln_buf_append(out, der, (size_t)n));
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static void set_name(X509_NAME *name, const char *cn)
{
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0), 1);
}

static X509 *make_ca(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	set_name(X509_get_subject_name(x), cn);
	set_name(X509_get_issuer_name(x), cn);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(x, x, NID_subject_key_identifier, "hash");
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

/* A DeviceID certificate from ca for subject, valid for `days` from an hour ago. */
static void make_deviceid_cert(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *subject, long days,
			       kiln_buf *out)
{
	X509 *x = X509_new();
	unsigned char *der = NULL;
	int n;

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
	set_name(X509_get_subject_name(x), SERIAL " DeviceID");
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), days * 24 * 3600));
	assert_int_equal(X509_set_pubkey(x, subject), 1);
	add_ext(x, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
	add_ext(x, ca, NID_key_usage, "critical,keyCertSign");
	add_ext(x, ca, NID_subject_key_identifier, "hash");
	add_ext(x, ca, NID_authority_key_identifier, "keyid");
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	kiln_buf_init(out, KILN_EVIDENCE_CERT_MAX);
	KT_OK(kiln_buf_append(out, der, (size_t)n));
	OPENSSL_free(der);
	X509_free(x);
}

/* The PEM of x as a YAML double-quoted string body (newlines escaped). Caller frees. */
static char *yaml_pem(X509 *x)
{
	kiln_buf pem, out;
	size_t len;

	kiln_buf_init(&pem, 1 << 16);
	kiln_buf_init(&out, 1 << 16);
	KT_OK(kiln_cert_pem(x, &pem));
	for (size_t i = 0; i < pem.len; i++) {
		if (pem.ptr[i] == '\n')
			KT_OK(kiln_buf_append_str(&out, "\\n"));
		else
			KT_OK(kiln_buf_append_u8(&out, pem.ptr[i]));
	}
	KT_OK(kiln_buf_append_u8(&out, 0));
	kiln_buf_cleanup(&pem);
	return (char *)kiln_buf_take(&out, &len);
}

static const char policy_head[] =
	"product: widget\n"
	"environment: production\n"
	"keys:\n"
	"  - type: ec\n"
	"    curves: [p256]\n"
	"device_serial:\n"
	"  pattern: '^[A-Z0-9-]{4,32}$'\n"
	"subject:\n"
	"  CN: \"{serial}\"\n"
	"validity_days: 365\n"
	"key_usage: [digitalSignature]\n"
	"attestation:\n"
	"  type: dice\n";

static kiln_policy *parse_policy(const char *tail)
{
	kiln_policy *p = NULL;
	kiln_buf y;
	kiln_diag d;

	kiln_buf_init(&y, 1 << 20);
	KT_OK(kiln_buf_append_str(&y, policy_head));
	KT_OK(kiln_buf_append_str(&y, tail));
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_buf_view(&y), "widget.yaml", &p, &d)))
		fail_msg("policy: %s", d.text);
	kiln_buf_cleanup(&y);
	return p;
}

static kiln_policy *policy_with_roots(const char *roots_yaml)
{
	char tail[32768];

	(void)snprintf(tail, sizeof(tail),
		       "  firmware:\n"
		       "    - {version: \"1.0.0\", sha256: \"" FW_A "\"}\n"
		       "    - {version: \"1.1.0\", sha256: \"" FW_B "\"}\n"
		       "%s",
		       roots_yaml);
	return parse_policy(tail);
}

static int group_setup(void **state)
{
	char roots[16384];
	char *pem;

	(void)state;
	deviceid = kt_keygen("p256");
	alias = kt_keygen("p256");
	other = kt_keygen("p256");
	alias_ed = kt_keygen("ed25519");
	alias_rsa = kt_keygen("rsa2048");
	vendor_key = kt_keygen("p256");
	rogue_key = kt_keygen("p256");
	vendor_ca = make_ca(vendor_key, "Example Silicon Vendor CA");
	rogue_ca = make_ca(rogue_key, "Example Silicon Vendor CA"); /* same name, other key */
	make_csr(deviceid, &csr);
	make_csr(other, &other_csr);
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xa0 + i);
	hex32(FW_A, fw_a);
	hex32(FW_B, fw_b);
	hex32(FW_X, fw_x);
	policy = policy_with_roots("");
	pem = yaml_pem(vendor_ca);
	(void)snprintf(roots, sizeof(roots), "  vendor_roots: [\"%s\"]\n", pem);
	free(pem);
	vendor_policy = policy_with_roots(roots);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(deviceid);
	EVP_PKEY_free(alias);
	EVP_PKEY_free(other);
	EVP_PKEY_free(alias_ed);
	EVP_PKEY_free(alias_rsa);
	EVP_PKEY_free(vendor_key);
	EVP_PKEY_free(rogue_key);
	X509_free(vendor_ca);
	X509_free(rogue_ca);
	kiln_buf_cleanup(&csr);
	kiln_buf_cleanup(&other_csr);
	kiln_policy_free(policy);
	kiln_policy_free(vendor_policy);
	return 0;
}

/* ------------------------------------------------------ building evidence */

enum tcb_kind { TCB_ONE, TCB_NONE, TCB_BROKEN, TCB_SHA384_ONLY, TCB_TWO_SHA256, TCB_PLUS_SHA384 };

/* Everything one verification run is made of; base() gives the honest device. */
struct run {
	EVP_PKEY *alias_key;     /* the key the Alias certificate certifies */
	EVP_PKEY *alias_signer;  /* who signs the Alias certificate */
	EVP_PKEY *aki_key;       /* whose key id the Alias certificate names; NULL: no AKI */
	enum tcb_kind tcb;
	const uint8_t *fw;       /* the SHA-256 FWID */
	EVP_PKEY *binding_key;   /* who signs the binding */
	const uint8_t *binding_nonce;
	const char *binding_serial;
	const kiln_buf *binding_csr;
	const kiln_buf *deviceid_cert; /* NULL: absent */
	const kiln_policy *policy;
	const kiln_buf *ctx_csr;
	EVP_PKEY *ctx_key;
	int64_t now;
	bool garbage_signature;
};

static struct run base(void)
{
	return (struct run){ .alias_key = alias, .alias_signer = deviceid, .aki_key = deviceid,
			     .tcb = TCB_ONE, .fw = fw_a, .binding_key = alias,
			     .binding_nonce = nonce, .binding_serial = SERIAL, .binding_csr = &csr,
			     .policy = policy, .ctx_csr = &csr, .ctx_key = deviceid,
			     .now = kiln_now() };
}

static X509_EXTENSION *tcb_ext(const struct run *r)
{
	static const uint8_t broken[] = { 0x30, 0x03, 0x0c, 0x01, 'x' };
	struct kiln_dice_tcb_info t;
	ASN1_OBJECT *oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;
	kiln_buf der;

	memset(&t, 0, sizeof(t));
	KT_OK(kiln_strlcpy(t.vendor, "test", sizeof(t.vendor)));
	KT_OK(kiln_strlcpy(t.version, "1.0.0", sizeof(t.version)));
	t.has_layer = true;
	t.layer = 1;
	if (r->tcb != TCB_SHA384_ONLY) {
		t.fwids[t.n_fwids] = (struct kiln_dice_fwid){ .hash_nid = NID_sha256, .len = 32 };
		memcpy(t.fwids[t.n_fwids++].digest, r->fw, 32);
	}
	if (r->tcb == TCB_TWO_SHA256) {
		t.fwids[t.n_fwids] = (struct kiln_dice_fwid){ .hash_nid = NID_sha256, .len = 32 };
		memcpy(t.fwids[t.n_fwids++].digest, fw_b, 32);
	}
	if (r->tcb == TCB_SHA384_ONLY || r->tcb == TCB_PLUS_SHA384) {
		t.fwids[t.n_fwids] = (struct kiln_dice_fwid){ .hash_nid = NID_sha384, .len = 48 };
		memset(t.fwids[t.n_fwids++].digest, 0x11, 48);
	}
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	if (r->tcb == TCB_BROKEN)
		KT_OK(kiln_buf_append(&der, broken, sizeof(broken)));
	else
		KT_OK(kiln_dice_tcb_info_encode(&t, &der));
	assert_int_equal(ASN1_OCTET_STRING_set(v, der.ptr, (int)der.len), 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, v);
	assert_non_null(e);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(v);
	kiln_buf_cleanup(&der);
	return e;
}

static void make_alias_cert(const struct run *r, kiln_buf *out)
{
	X509 *x = X509_new();
	unsigned char *der = NULL;
	int n;

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	set_name(X509_get_subject_name(x), SERIAL " Alias");
	set_name(X509_get_issuer_name(x), SERIAL " DeviceID");
	assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20260101000000Z"), 1);
	assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z"), 1);
	assert_int_equal(X509_set_pubkey(x, r->alias_key), 1);
	if (r->aki_key != NULL) {
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		uint8_t kid[20];

		key_id(r->aki_key, kid);
		akid->keyid = ASN1_OCTET_STRING_new();
		assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, kid, sizeof(kid)), 1);
		assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
						   X509V3_ADD_DEFAULT), 1);
		AUTHORITY_KEYID_free(akid);
	}
	if (r->tcb != TCB_NONE) {
		X509_EXTENSION *e = tcb_ext(r);

		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, r->alias_signer, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	KT_OK(kiln_buf_append(out, der, (size_t)n));
	OPENSSL_free(der);
	X509_free(x);
}

static void sign_binding(const struct run *r, kiln_buf *sig)
{
	uint8_t msg[KILN_DICE_BINDING_LEN], out[512];
	size_t n = sizeof(out);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ed = EVP_PKEY_get_base_id(r->binding_key) == EVP_PKEY_ED25519;

	KT_OK(kiln_dice_binding(r->binding_nonce, kiln_buf_view(r->binding_csr), r->binding_serial,
				msg));
	assert_int_equal(EVP_DigestSignInit(md, NULL, ed ? NULL : EVP_sha256(), NULL,
					    r->binding_key), 1);
	assert_int_equal(EVP_DigestSign(md, out, &n, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(md);
	KT_OK(kiln_buf_append(sig, out, n));
}

static void build_evidence(const struct run *r, struct kiln_evidence *ev)
{
	kiln_evidence_init(ev);
	ev->type = KILN_ATTEST_DICE;
	make_alias_cert(r, &ev->dice.alias_cert);
	if (r->garbage_signature)
		KT_OK(kiln_buf_append(&ev->dice.signature, "\x30\x06\x02\x01\x01\x02\x01\x01", 8));
	else
		sign_binding(r, &ev->dice.signature);
	if (r->deviceid_cert != NULL)
		KT_OK(kiln_buf_append_slice(&ev->dice.deviceid_cert,
					    kiln_buf_view(r->deviceid_cert)));
}

static kiln_result verify(const struct run *r, struct kiln_attest_result *res, kiln_diag *d)
{
	struct kiln_evidence ev;
	struct kiln_attest_ctx ctx = { .policy = r->policy, .nonce = nonce,
				       .csr_der = kiln_buf_view(r->ctx_csr), .csr_key = r->ctx_key,
				       .device_serial = SERIAL, .now = r->now };
	kiln_result out;

	build_evidence(r, &ev);
	kiln_diag_clear(d);
	memset(res, 0xa5, sizeof(*res));
	out = kiln_attest_verify(&ev, &ctx, res, d);
	kiln_evidence_cleanup(&ev);
	return out;
}

/* Runs r; it must fail with err and exactly the message want (or containing it, when partial). */
static void expect_refusal(const struct run *r, kiln_err err, const char *want, bool partial)
{
	static const struct kiln_attest_result zero;
	struct kiln_attest_result res;
	kiln_diag d;

	KT_ERR(verify(r, &res, &d), err);
	assert_int_equal(d.code, err);
	assert_null(strchr(d.text, '\n'));
	if (partial ? strstr(d.text, want) == NULL : strcmp(d.text, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", d.text, want);
	/* Nothing half-filled on a refusal. */
	assert_memory_equal(&res, &zero, sizeof(res));
}

/* ------------------------------------------------------------- accepted */

static void test_honest_device(void **state)
{
	struct run r = base();
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	KT_OK(verify(&r, &res, &d));
	assert_int_equal(d.code, KILN_OK);
	assert_int_equal(res.type, KILN_ATTEST_DICE);
	assert_true(res.has_firmware);
	assert_string_equal(res.firmware_version, "1.0.0");
	assert_memory_equal(res.firmware_sha256, fw_a, 32);
	/* The second approved image, named by its own entry. */
	r.fw = fw_b;
	KT_OK(verify(&r, &res, &d));
	assert_string_equal(res.firmware_version, "1.1.0");
	assert_memory_equal(res.firmware_sha256, fw_b, 32);
	/* A SHA-384 FWID beside the SHA-256 one is fine. */
	r = base();
	r.tcb = TCB_PLUS_SHA384;
	KT_OK(verify(&r, &res, &d));
	/* The signature alone decides: without an authority key id, or with a wrong one. */
	r = base();
	r.aki_key = NULL;
	KT_OK(verify(&r, &res, &d));
	r.aki_key = other;
	KT_OK(verify(&r, &res, &d));
	/* An Ed25519 Alias key signs the binding without a digest. */
	r = base();
	r.alias_key = r.binding_key = alias_ed;
	KT_OK(verify(&r, &res, &d));
	/* now = 0 stands for the current time. */
	r = base();
	r.now = 0;
	KT_OK(verify(&r, &res, &d));
}

static void test_vendor_endorsed_device(void **state)
{
	kiln_buf cert;
	struct run r = base();
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	make_deviceid_cert(vendor_ca, vendor_key, deviceid, 365, &cert);
	r.policy = vendor_policy;
	r.deviceid_cert = &cert;
	KT_OK(verify(&r, &res, &d));
	assert_string_equal(res.firmware_version, "1.0.0");
	/* Without vendor roots in the policy, a DeviceID certificate is carried but not needed. */
	r.policy = policy;
	KT_OK(verify(&r, &res, &d));
	kiln_buf_cleanup(&cert);
}

/* ------------------------------------------------------------- refusals */

static void test_firmware_not_approved(void **state)
{
	struct run r = base();
	char want[256];

	(void)state;
	r.fw = fw_x;
	(void)snprintf(want, sizeof(want),
		       "firmware sha256 %s is not approved by policy widget (approved: 1.0.0, 1.1.0)",
		       FW_X);
	expect_refusal(&r, KILN_ERR_ATTEST_FIRMWARE, want, false);
	r = base();
	r.tcb = TCB_SHA384_ONLY;
	expect_refusal(&r, KILN_ERR_ATTEST_FIRMWARE, "has no SHA-256 FWID", true);
}

static void test_approved_list_is_bounded(void **state)
{
	kiln_buf tail;
	kiln_policy *p;
	struct run r = base();
	struct kiln_attest_result res;
	kiln_diag d;

	(void)state;
	kiln_buf_init(&tail, 1 << 20);
	KT_OK(kiln_buf_append_str(&tail, "  firmware:\n"));
	for (int i = 0; i < KILN_POLICY_MAX_FW; i++)
		KT_OK(kiln_buf_printf(&tail,
				      "    - {version: \"release-%02d-with-a-long-name-for-the-list\", "
				      "sha256: \"%064x\"}\n",
				      i, i + 0x100));
	p = parse_policy(kiln_buf_cstr(&tail));
	r.policy = p;
	KT_ERR(verify(&r, &res, &d), KILN_ERR_ATTEST_FIRMWARE);
	assert_non_null(strstr(d.text, "(approved: release-00-with-a-long-name-for-the-list, "));
	assert_non_null(strstr(d.text, ", ...)"));
	assert_true(strlen(d.text) < 400);
	kiln_policy_free(p);
	kiln_buf_cleanup(&tail);
}

static void test_alias_not_signed_by_deviceid(void **state)
{
	struct run r = base();

	(void)state;
	/* The Alias certificate names DeviceID as issuer, but another key signed it. */
	r.alias_signer = other;
	expect_refusal(&r, KILN_ERR_ATTEST_CHAIN,
		       "the Alias certificate is not signed by the CSR's key (the DeviceID key)", false);
	/* Same without an authority key id. */
	r.aki_key = NULL;
	expect_refusal(&r, KILN_ERR_ATTEST_CHAIN, "not signed by the CSR's key", true);
}

static void test_csr_key_is_not_deviceid(void **state)
{
	struct run r = base();

	(void)state;
	/* The device bound a CSR for another key: its Alias certificate names DeviceID. */
	r.ctx_csr = r.binding_csr = &other_csr;
	r.ctx_key = other;
	expect_refusal(&r, KILN_ERR_ATTEST_KEY,
		       "is not the DeviceID key that issued the Alias certificate", true);
}

static void test_binding_refusals(void **state)
{
	static const char want[] = "the binding of nonce, CSR and serial is not signed by the Alias key";
	uint8_t other_nonce[KILN_NONCE_LEN];
	struct run r = base();

	(void)state;
	r.binding_key = other; /* by another key */
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	r.binding_key = deviceid; /* even DeviceID is not the Alias key */
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	memcpy(other_nonce, nonce, sizeof(other_nonce));
	other_nonce[31] ^= 0x80;
	r = base();
	r.binding_nonce = other_nonce; /* over another nonce */
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	r = base();
	r.binding_serial = "WIDGET-0002"; /* for another serial */
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	r = base();
	r.binding_csr = &other_csr; /* over another CSR than the request's */
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	r = base();
	r.garbage_signature = true;
	expect_refusal(&r, KILN_ERR_ATTEST_SIGNATURE, want, false);
	/* An Alias key that is neither ECDSA nor Ed25519. */
	r = base();
	r.alias_key = r.binding_key = alias_rsa;
	expect_refusal(&r, KILN_ERR_ATTEST_MALFORMED, "neither ECDSA nor Ed25519", true);
}

static void test_tcb_info_refusals(void **state)
{
	struct run r = base();

	(void)state;
	r.tcb = TCB_NONE;
	expect_refusal(&r, KILN_ERR_ATTEST_MALFORMED,
		       "the Alias certificate carries no DiceTcbInfo extension", false);
	r.tcb = TCB_BROKEN;
	expect_refusal(&r, KILN_ERR_ATTEST_MALFORMED,
		       "the Alias certificate's DiceTcbInfo holds an unexpected tag 0x0c", false);
	r.tcb = TCB_TWO_SHA256;
	expect_refusal(&r, KILN_ERR_ATTEST_MALFORMED, "more than one SHA-256 FWID", true);
}

static void test_vendor_refusals(void **state)
{
	kiln_buf good, untrusted, for_other, expired, garbage;
	struct run r = base();

	(void)state;
	make_deviceid_cert(vendor_ca, vendor_key, deviceid, 365, &good);
	make_deviceid_cert(rogue_ca, rogue_key, deviceid, 365, &untrusted);
	make_deviceid_cert(vendor_ca, vendor_key, other, 365, &for_other);
	make_deviceid_cert(vendor_ca, vendor_key, deviceid, 1, &expired);
	kiln_buf_init(&garbage, 64);
	KT_OK(kiln_buf_append_str(&garbage, "not DER"));
	r.policy = vendor_policy;
	/* Roots required, certificate missing. */
	expect_refusal(&r, KILN_ERR_ATTEST_VENDOR,
		       "policy widget requires a DeviceID certificate from a silicon vendor CA; the evidence has none",
		       false);
	/* From a CA the policy does not trust (same name, other key). */
	r.deviceid_cert = &untrusted;
	expect_refusal(&r, KILN_ERR_ATTEST_VENDOR,
		       "the DeviceID certificate does not chain to a vendor root of policy widget: ",
		       true);
	/* For another key than the CSR's. */
	r.deviceid_cert = &for_other;
	expect_refusal(&r, KILN_ERR_ATTEST_KEY, "certifies another key than the CSR's", true);
	/* Expired at the verification time. */
	r.deviceid_cert = &expired;
	r.now = kiln_now() + 3 * 24 * 3600;
	expect_refusal(&r, KILN_ERR_ATTEST_VENDOR, "certificate has expired", true);
	r.now = kiln_now();
	KT_OK(verify(&r, &(struct kiln_attest_result){ 0 }, &(kiln_diag){ 0 }));
	/* Not a certificate at all. */
	r.deviceid_cert = &garbage;
	expect_refusal(&r, KILN_ERR_ATTEST_MALFORMED,
		       "evidence member \"deviceid_cert\" is not a DER X.509 certificate", false);
	/* The good one passes. */
	r.deviceid_cert = &good;
	KT_OK(verify(&r, &(struct kiln_attest_result){ 0 }, &(kiln_diag){ 0 }));
	kiln_buf_cleanup(&good);
	kiln_buf_cleanup(&untrusted);
	kiln_buf_cleanup(&for_other);
	kiln_buf_cleanup(&expired);
	kiln_buf_cleanup(&garbage);
}

static void test_unreadable_vendor_root(void **state)
{
	/* PEM-shaped (the policy parser's check) but not a certificate inside. */
	kiln_policy *p = policy_with_roots(
		"  vendor_roots: [\"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"]\n");
	kiln_buf cert;
	struct run r = base();

	(void)state;
	make_deviceid_cert(vendor_ca, vendor_key, deviceid, 365, &cert);
	r.policy = p;
	r.deviceid_cert = &cert;
	expect_refusal(&r, KILN_ERR_CONFIG,
		       "policy widget: vendor_roots[0] is not a readable PEM certificate", false);
	kiln_policy_free(p);
	kiln_buf_cleanup(&cert);
}

static void test_malformed_evidence(void **state)
{
	struct kiln_evidence ev;
	struct kiln_attest_ctx ctx = { .policy = policy, .nonce = nonce,
				       .csr_der = kiln_buf_view(&csr), .csr_key = deviceid,
				       .device_serial = SERIAL, .now = kiln_now() };
	struct kiln_attest_result res;
	kiln_diag d;
	struct run r = base();

	(void)state;
	/* No evidence, or none of DICE's kind. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(NULL, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_string_equal(d.text, "the policy requires DICE evidence");
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(&ev, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_string_equal(d.text, "the policy requires DICE evidence");
	/* DICE type, but an Alias certificate that is not one. */
	ev.type = KILN_ATTEST_DICE;
	KT_OK(kiln_buf_append_str(&ev.dice.alias_cert, "\x30\x03\x02\x01\x01"));
	KT_OK(kiln_buf_append_str(&ev.dice.signature, "x"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(&ev, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_string_equal(d.text, "evidence member \"alias_cert\" is not a DER X.509 certificate");
	/* No signature (a record not made by kiln_evidence_parse). */
	kiln_evidence_cleanup(&ev);
	build_evidence(&r, &ev);
	kiln_buf_reset(&ev.dice.signature);
	kiln_diag_clear(&d);
	KT_ERR(kiln_attest_verify(&ev, &ctx, &res, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_non_null(strstr(d.text, "\"signature\""));
	kiln_evidence_cleanup(&ev);
}

static void test_context_required(void **state)
{
	struct kiln_evidence ev;
	struct run r = base();
	struct kiln_attest_ctx ok = { .policy = policy, .nonce = nonce,
				      .csr_der = kiln_buf_view(&csr), .csr_key = deviceid,
				      .device_serial = SERIAL, .now = kiln_now() };
	struct kiln_attest_ctx c;
	struct kiln_attest_result res;

	(void)state;
	build_evidence(&r, &ev);
	KT_OK(kiln_attest_verify(&ev, &ok, &res, NULL));
	c = ok;
	c.nonce = NULL;
	KT_ERR(kiln_attest_verify(&ev, &c, &res, NULL), KILN_ERR_ARG);
	c = ok;
	c.csr_key = NULL;
	KT_ERR(kiln_attest_verify(&ev, &c, &res, NULL), KILN_ERR_ARG);
	c = ok;
	c.device_serial = NULL;
	KT_ERR(kiln_attest_verify(&ev, &c, &res, NULL), KILN_ERR_ARG);
	c = ok;
	c.csr_der = kiln_slice_of(NULL, 0);
	KT_ERR(kiln_attest_verify(&ev, &c, &res, NULL), KILN_ERR_ARG);
	kiln_evidence_cleanup(&ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_honest_device),
		cmocka_unit_test(test_vendor_endorsed_device),
		cmocka_unit_test(test_firmware_not_approved),
		cmocka_unit_test(test_approved_list_is_bounded),
		cmocka_unit_test(test_alias_not_signed_by_deviceid),
		cmocka_unit_test(test_csr_key_is_not_deviceid),
		cmocka_unit_test(test_binding_refusals),
		cmocka_unit_test(test_tcb_info_refusals),
		cmocka_unit_test(test_vendor_refusals),
		cmocka_unit_test(test_unreadable_vendor_root),
		cmocka_unit_test(test_malformed_evidence),
		cmocka_unit_test(test_context_required),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
