/*
 * DICE evidence verification (TCG DICE layering, docs/protocol.md).
 *
 * What the checks prove, in the order they run (authenticity first, then
 * the claims are appraised, as RATS verifiers do):
 *   1. The Alias certificate's signature verifies with the CSR's key: the
 *      CSR's key is the DeviceID key, derived by layer 0 from the UDS and the
 *      L0 measurement. When it does not, the authority key id tells why:
 *      another key named is KILN_ERR_ATTEST_KEY (the CSR is for a key other
 *      than DeviceID), the CSR's key named (or none) KILN_ERR_ATTEST_CHAIN.
 *   2. The Alias key signed kiln_dice_binding(nonce, CSR, serial): the
 *      evidence is fresh and made for this request.
 *   3. With vendor_roots in the policy: the DeviceID certificate chains to
 *      one of them and certifies the CSR's key.
 *   4. The DiceTcbInfo in the Alias certificate holds exactly one SHA-256
 *      FWID, and the policy approves it.
 * The Alias certificate's validity dates are not checked: a DICE device has
 * no trusted clock and writes fixed dates (TCG DICE Certificate Profiles).
 */
#include "attest_impl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#define KEY_ID_LEN 20 /* RFC 5280 4.2.1.2 method (1): SHA-1 */
#define APPROVED_TEXT_MAX 200

/*
 * The Alias certificate, walked rather than decoded (kiln_cert_view): on the
 * provisioning path OpenSSL 3.0's d2i_X509 costs more than the signature
 * checks. Only its signature, its key and two extensions are used.
 */
static kiln_result parse_alias(const kiln_buf *der, struct kiln_cert_view *out, kiln_diag *d)
{
	if (!kiln_is_ok(kiln_cert_view_parse(kiln_buf_view(der), out)))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "evidence member \"alias_cert\" is not a DER X.509 certificate");
	return kiln_ok();
}

/* A certificate judged as a whole (chain building): decoded by OpenSSL. */
static kiln_result parse_cert(const kiln_buf *der, const char *member, X509 **out, kiln_diag *d)
{
	if (!kiln_is_ok(kiln_cert_parse(kiln_buf_view(der), out, NULL)))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "evidence member \"%s\" is not a DER X.509 certificate", member);
	return kiln_ok();
}

/* id-ce-authorityKeyIdentifier (2.5.29.35) and tcg-dice-TcbInfo (2.23.133.5.4.1), OID contents. */
static const uint8_t oid_aki[] = { 0x55, 0x1d, 0x23 };
static const uint8_t oid_tcb_info[] = { 0x67, 0x81, 0x05, 0x05, 0x04, 0x01 };

/*
 * The keyIdentifier of an AuthorityKeyIdentifier extension value:
 * SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }.
 * An empty slice when the certificate has none.
 */
static kiln_result alias_aki(const struct kiln_cert_view *v, kiln_slice *out)
{
	kiln_slice val, seq, kid;
	kiln_cursor c, s;
	uint8_t tag;
	kiln_result r = kiln_cert_view_ext(v, kiln_slice_of(oid_aki, sizeof(oid_aki)), &val);

	*out = kiln_slice_of(NULL, 0);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_ok();
	KILN_GUARD(r);
	kiln_cursor_init(&c, val);
	KILN_GUARD(kiln_der_read(&c, &tag, &seq));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	kiln_cursor_init(&s, seq);
	if (kiln_cursor_remaining(&s) == 0)
		return kiln_ok();
	KILN_GUARD(kiln_der_read(&s, &tag, &kid));
	if (tag == 0x80)
		*out = kid;
	return kiln_ok();
}

/* The key id kiln and DICE devices write: SHA-1 of the subjectPublicKey BIT STRING value. */
static kiln_result key_id_of(const EVP_PKEY *pkey, uint8_t out[KEY_ID_LEN])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits = NULL;
	unsigned int n = 0;
	int len = 0;
	bool ok;

	ok = X509_PUBKEY_set(&xpk, (EVP_PKEY *)pkey) == 1 &&
	     X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, xpk) == 1 && len > 0 &&
	     EVP_Digest(bits, (size_t)len, out, &n, EVP_sha1(), NULL) == 1 && n == KEY_ID_LEN;
	X509_PUBKEY_free(xpk);
	ERR_clear_error();
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/*
 * Step 1: the CSR's key is the DeviceID key that issued the Alias certificate.
 * The signature alone decides; the authority key id only says why it failed:
 * naming another key, the CSR is for a key other than DeviceID (KEY); naming
 * the CSR's key (or absent), the certificate was signed by someone else (CHAIN).
 */
static kiln_result check_issuer(const struct kiln_cert_view *alias, const EVP_PKEY *csr_key,
				kiln_diag *d)
{
	kiln_slice aki;
	uint8_t kid[KEY_ID_LEN];
	char want[2 * KEY_ID_LEN + 1], got[2 * KEY_ID_LEN + 1];

	if (kiln_is_ok(kiln_signature_verify(alias->sig_alg, alias->tbs, alias->sig, csr_key)))
		return kiln_ok();
	if (!kiln_is_ok(alias_aki(alias, &aki)))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "the Alias certificate's authority key identifier is malformed");
	if (aki.len > 0) {
		KILN_GUARD(key_id_of(csr_key, kid));
		if (aki.len != KEY_ID_LEN || memcmp(aki.ptr, kid, KEY_ID_LEN) != 0) {
			kiln_hex_encode(kid, KEY_ID_LEN, want);
			kiln_strtrunc(got, "of another form", sizeof(got));
			if (aki.len == KEY_ID_LEN)
				kiln_hex_encode(aki.ptr, KEY_ID_LEN, got);
			return kiln_diag_set(d, KILN_ERR_ATTEST_KEY,
					     "the CSR's key (key id %s) is not the DeviceID key that issued the Alias certificate (key id %s)",
					     want, got);
		}
	}
	return kiln_diag_set(d, KILN_ERR_ATTEST_CHAIN,
			     "the Alias certificate is not signed by the CSR's key (the DeviceID key)");
}

/* Step 2: the Alias key signed the binding of this request's nonce, CSR and serial. */
static kiln_result check_binding(const struct kiln_cert_view *alias,
				 const struct kiln_evidence *ev, const struct kiln_attest_ctx *ctx,
				 kiln_diag *d)
{
	uint8_t msg[KILN_DICE_BINDING_LEN];
	EVP_PKEY *pk = NULL;
	const EVP_MD *md;
	EVP_MD_CTX *mctx;
	bool canonical;
	int ok;

	KILN_GUARD(kiln_dice_binding(ctx->nonce, ctx->csr_der, ctx->device_serial, msg));
	if (!kiln_is_ok(kiln_spki_key(alias->spki, &pk, &canonical)))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "the Alias certificate's public key cannot be read");
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		md = EVP_sha256(); /* the protocol's choice for every curve */
		break;
	case EVP_PKEY_ED25519:
		md = NULL;
		break;
	default:
		EVP_PKEY_free(pk);
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "the Alias key is neither ECDSA nor Ed25519");
	}
	mctx = EVP_MD_CTX_new();
	ok = mctx != NULL && EVP_DigestVerifyInit(mctx, NULL, md, NULL, pk) == 1 &&
	     EVP_DigestVerify(mctx, ev->dice.signature.ptr, ev->dice.signature.len, msg,
			      sizeof(msg)) == 1;
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	if (!ok)
		return kiln_diag_set(d, KILN_ERR_ATTEST_SIGNATURE,
				     "the binding of nonce, CSR and serial is not signed by the Alias key");
	return kiln_ok();
}

/* Step 3: a vendor root endorses the DeviceID key, and it is the CSR's key. */
static kiln_result check_vendor(const struct kiln_evidence *ev, const struct kiln_attest_ctx *ctx,
				kiln_diag *d)
{
	const kiln_policy *p = ctx->policy;
	X509_STORE *store = NULL;
	X509_STORE_CTX *sctx = NULL;
	X509 *devid = NULL;
	kiln_result r;
	int err;

	if (ev->dice.deviceid_cert.len == 0)
		return kiln_diag_set(d, KILN_ERR_ATTEST_VENDOR,
				     "policy %s requires a DeviceID certificate from a silicon vendor CA; the evidence has none",
				     p->product);
	KILN_GUARD(parse_cert(&ev->dice.deviceid_cert, "deviceid_cert", &devid, d));
	store = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	if (store == NULL || sctx == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	KILN_TRY(r, kiln_attest_load_roots(p, p->attestation.vendor_roots,
					   p->attestation.n_vendor_roots, "vendor_roots", store, d));
	if (X509_STORE_CTX_init(sctx, store, devid, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_ANY) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	/* A policy may pin a vendor intermediate: each listed certificate is a trust anchor. */
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx),
				   (time_t)(ctx->now != 0 ? ctx->now : kiln_now()));
	if (X509_verify_cert(sctx) != 1) {
		err = X509_STORE_CTX_get_error(sctx);
		r = kiln_diag_set(d, KILN_ERR_ATTEST_VENDOR,
				  "the DeviceID certificate does not chain to a vendor root of policy %s: %s",
				  p->product, X509_verify_cert_error_string(err));
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(devid), ctx->csr_key) != 1) {
		r = kiln_diag_set(d, KILN_ERR_ATTEST_KEY,
				  "the vendor's DeviceID certificate certifies another key than the CSR's");
		goto out;
	}
	r = kiln_ok();
out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	X509_free(devid);
	ERR_clear_error();
	return r;
}

/* "1.0.0, 1.1.0" (cut with "..." when long), for the refusal message. */
static void approved_list(const kiln_policy *p, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	if (p->attestation.n_firmware == 0) {
		kiln_strtrunc(out, "none", cap);
		return;
	}
	for (size_t i = 0; i < p->attestation.n_firmware && i < KILN_POLICY_MAX_FW; i++) {
		const char *v = p->attestation.firmware[i].version;
		size_t need = strlen(v) + (i > 0 ? 2 : 0);

		if (used + need + 6 > cap) { /* room left for ", ..." */
			kiln_strtrunc(out + used, i > 0 ? ", ..." : "...", cap - used);
			return;
		}
		(void)snprintf(out + used, cap - used, "%s%s", i > 0 ? ", " : "", v);
		used += need;
	}
}

/* Step 4: one SHA-256 FWID, and the policy approves it. */
static kiln_result appraise(const struct kiln_cert_view *alias, const kiln_policy *p,
			    struct kiln_attest_result *res, kiln_diag *d)
{
	struct kiln_dice_tcb_info tcb;
	const struct kiln_dice_fwid *fwid = NULL;
	char hex[65], approved[APPROVED_TEXT_MAX];
	kiln_slice val;
	kiln_diag ld;
	kiln_result r;

	kiln_diag_clear(&ld);
	r = kiln_cert_view_ext(alias, kiln_slice_of(oid_tcb_info, sizeof(oid_tcb_info)), &val);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "the Alias certificate carries no DiceTcbInfo extension");
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "the Alias certificate carries more than one DiceTcbInfo extension, or a malformed extension list");
	r = kiln_dice_tcb_info_parse(val, &tcb, &ld);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED, "the Alias certificate's %s",
				     kiln_diag_message(&ld, r));
	for (size_t i = 0; i < tcb.n_fwids; i++) {
		if (tcb.fwids[i].hash_nid != NID_sha256)
			continue;
		if (fwid != NULL)
			return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
					     "the Alias certificate's DiceTcbInfo holds more than one SHA-256 FWID");
		fwid = &tcb.fwids[i];
	}
	if (fwid == NULL)
		return kiln_diag_set(d, KILN_ERR_ATTEST_FIRMWARE,
				     "the Alias certificate's DiceTcbInfo has no SHA-256 FWID; policy %s approves firmware by SHA-256",
				     p->product);
	for (size_t i = 0; i < p->attestation.n_firmware && i < KILN_POLICY_MAX_FW; i++) {
		const struct kiln_policy_firmware *fw = &p->attestation.firmware[i];

		/* Digests of public images: no constant-time compare needed. */
		if (memcmp(fw->sha256, fwid->digest, 32) != 0)
			continue;
		res->type = KILN_ATTEST_DICE;
		kiln_strtrunc(res->firmware_version, fw->version, sizeof(res->firmware_version));
		memcpy(res->firmware_sha256, fw->sha256, 32);
		res->has_firmware = true;
		return kiln_ok();
	}
	kiln_hex_encode(fwid->digest, 32, hex);
	approved_list(p, approved, sizeof(approved));
	return kiln_diag_set(d, KILN_ERR_ATTEST_FIRMWARE,
			     "firmware sha256 %s is not approved by policy %s (approved: %s)", hex,
			     p->product, approved);
}

kiln_result kiln_attest_dice_verify(const struct kiln_evidence *ev,
				    const struct kiln_attest_ctx *ctx,
				    struct kiln_attest_result *res, kiln_diag *d)
{
	struct kiln_attest_result out;
	struct kiln_cert_view alias;

	KILN_ENSURE(ctx != NULL && ctx->policy != NULL && res != NULL, KILN_ERR_ARG);
	KILN_ENSURE(ctx->nonce != NULL && ctx->csr_key != NULL && ctx->device_serial != NULL &&
			    ctx->csr_der.len > 0,
		    KILN_ERR_ARG);
	if (ev == NULL || ev->type != KILN_ATTEST_DICE)
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED, "the policy requires DICE evidence");
	if (ev->dice.signature.len == 0)
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "evidence member \"signature\" is missing");
	memset(&out, 0, sizeof(out));
	KILN_GUARD(parse_alias(&ev->dice.alias_cert, &alias, d));
	KILN_GUARD(check_issuer(&alias, ctx->csr_key, d));
	KILN_GUARD(check_binding(&alias, ev, ctx, d));
	if (ctx->policy->attestation.n_vendor_roots > 0)
		KILN_GUARD(check_vendor(ev, ctx, d));
	KILN_GUARD(appraise(&alias, ctx->policy, &out, d));
	*res = out;
	return kiln_ok();
}
