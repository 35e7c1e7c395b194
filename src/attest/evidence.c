/*
 * Evidence records: lifetime, and parsing of the finish request's "evidence"
 * member (pure: a JSON object in, decoded and capped bytes out). Verification
 * lives beside, per type (dice.c), behind the dispatcher in verify.c.
 */
#include "attest.h"

#include <jansson.h>
#include <stddef.h>
#include <string.h>

void kiln_evidence_init(struct kiln_evidence *ev)
{
	memset(ev, 0, sizeof(*ev));
	kiln_buf_init(&ev->dice.alias_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->dice.deviceid_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->dice.signature, KILN_EVIDENCE_SIG_MAX);
	kiln_buf_init(&ev->tpm2.ek_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->tpm2.ek_intermediate, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->tpm2.ak_public, KILN_TPM2_PUBLIC_MAX);
	kiln_buf_init(&ev->tpm2.quote, KILN_TPM2_ATTEST_MAX);
	kiln_buf_init(&ev->tpm2.quote_signature, KILN_TPM2_SIG_MAX);
	kiln_buf_init(&ev->tpm2.pcr_values, KILN_TPM2_PCRS_MAX);
	kiln_buf_init(&ev->tpm2.key_public, KILN_TPM2_PUBLIC_MAX);
	kiln_buf_init(&ev->tpm2.certify, KILN_TPM2_ATTEST_MAX);
	kiln_buf_init(&ev->tpm2.certify_signature, KILN_TPM2_SIG_MAX);
	kiln_buf_init(&ev->tpm2.secret, KILN_TPM2_SECRET_LEN);
}

/* The TPM members in their fixed order: the evidence digest and the parser walk them. */
struct tpm2_member {
	const char *name;
	size_t off;
	bool required;
};

#define TM(m, req) { #m, offsetof(struct kiln_tpm2_evidence, m), req }

static const struct tpm2_member tpm2_members[] = {
	TM(ek_cert, true),	   TM(ek_intermediate, false), TM(ak_public, true),
	TM(quote, true),	   TM(quote_signature, true),  TM(pcr_values, true),
	TM(key_public, true),	   TM(certify, true),	       TM(certify_signature, true),
	TM(secret, true),
};

#define N_TPM2_MEMBERS (sizeof(tpm2_members) / sizeof(tpm2_members[0]))

static kiln_buf *tpm2_buf(struct kiln_tpm2_evidence *t, size_t i)
{
	return (kiln_buf *)(void *)((uint8_t *)t + tpm2_members[i].off);
}

void kiln_evidence_cleanup(struct kiln_evidence *ev)
{
	if (ev == NULL)
		return;
	kiln_buf_cleanup(&ev->dice.alias_cert);
	kiln_buf_cleanup(&ev->dice.deviceid_cert);
	kiln_buf_cleanup(&ev->dice.signature);
	for (size_t i = 0; i < N_TPM2_MEMBERS; i++)
		kiln_buf_cleanup(tpm2_buf(&ev->tpm2, i));
}

/* Every member DICE evidence may have; any other is refused. */
static const char *const dice_members[] = { "type", "alias_cert", "deviceid_cert", "signature" };

#define N_DICE_MEMBERS (sizeof(dice_members) / sizeof(dice_members[0]))

static bool is_dice_member(const char *key)
{
	for (size_t i = 0; i < N_DICE_MEMBERS; i++)
		if (strcmp(key, dice_members[i]) == 0)
			return true;
	return false;
}

/* Strict base64 of at most out->max decoded bytes, appended to out (empty). */
static kiln_result decode_member(const json_t *obj, const char *key, bool required, kiln_buf *out,
				 kiln_diag *d)
{
	const json_t *v = json_object_get(obj, key);
	size_t len, max_text;
	kiln_result r;

	if (v == NULL) {
		if (!required)
			return kiln_ok();
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED, "evidence member \"%s\" is missing",
				     key);
	}
	if (!json_is_string(v))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "evidence member \"%s\" must be a base64 string", key);
	len = json_string_length(v);
	if (len == 0)
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED, "evidence member \"%s\" is empty",
				     key);
	max_text = (out->max + 2) / 3 * 4;
	if (len > max_text)
		goto too_big;
	r = kiln_base64_decode(kiln_slice_of(json_string_value(v), len), out);
	if (r.code == KILN_ERR_TOO_BIG)
		goto too_big;
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				     "evidence member \"%s\" is not strict base64 (RFC 4648, padded, no whitespace)",
				     key);
	return kiln_ok();
too_big:
	return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
			     "evidence member \"%s\" is larger than %zu bytes", key, out->max);
}

static kiln_result hash_part(EVP_MD_CTX *md, const kiln_buf *b)
{
	uint8_t be[4] = { (uint8_t)(b->len >> 24), (uint8_t)(b->len >> 16), (uint8_t)(b->len >> 8),
			  (uint8_t)b->len };

	KILN_ENSURE(b->len <= UINT32_MAX, KILN_ERR_TOO_BIG);
	KILN_ENSURE(EVP_DigestUpdate(md, be, sizeof(be)) == 1, KILN_ERR_CRYPTO);
	if (b->len > 0)
		KILN_ENSURE(EVP_DigestUpdate(md, b->ptr, b->len) == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* The layout is documented at kiln_evidence.sha256 in attest.h. */
static kiln_result dice_digest(const struct kiln_dice_evidence *e, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	kiln_result r;

	KILN_ENSURE(md != NULL, KILN_ERR_NOMEM);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	KILN_TRY(r, hash_part(md, &e->alias_cert));
	KILN_TRY(r, hash_part(md, &e->deviceid_cert));
	KILN_TRY(r, hash_part(md, &e->signature));
	r = EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32 ? kiln_ok() : kiln_fail(KILN_ERR_CRYPTO);
out:
	EVP_MD_CTX_free(md);
	return r;
}

static kiln_result parse_dice(const json_t *obj, struct kiln_evidence *ev, kiln_diag *d)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		if (!is_dice_member(key))
			return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
					     "evidence has an unknown member \"%.40s\" (allowed: type, alias_cert, deviceid_cert, signature)",
					     key);
	}
	KILN_GUARD(decode_member(obj, "alias_cert", true, &ev->dice.alias_cert, d));
	KILN_GUARD(decode_member(obj, "deviceid_cert", false, &ev->dice.deviceid_cert, d));
	KILN_GUARD(decode_member(obj, "signature", true, &ev->dice.signature, d));
	ev->type = KILN_ATTEST_DICE;
	return dice_digest(&ev->dice, ev->sha256);
}

/*
 * TPM evidence digest: like DICE's, every member in tpm2_members order, each
 * with a 4-byte big-endian length (an absent ek_intermediate counts as 0).
 */
static kiln_result tpm2_digest(struct kiln_tpm2_evidence *t, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	kiln_result r;

	KILN_ENSURE(md != NULL, KILN_ERR_NOMEM);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	for (size_t i = 0; i < N_TPM2_MEMBERS; i++)
		KILN_TRY(r, hash_part(md, tpm2_buf(t, i)));
	r = EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32 ? kiln_ok() : kiln_fail(KILN_ERR_CRYPTO);
out:
	EVP_MD_CTX_free(md);
	return r;
}

static kiln_result parse_tpm2(const json_t *obj, struct kiln_evidence *ev, kiln_diag *d)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		bool known = strcmp(key, "type") == 0;

		for (size_t i = 0; i < N_TPM2_MEMBERS && !known; i++)
			known = strcmp(key, tpm2_members[i].name) == 0;
		if (!known)
			return kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
					     "evidence has an unknown member \"%.40s\" (see docs/protocol.md, TPM 2.0 evidence)",
					     key);
	}
	for (size_t i = 0; i < N_TPM2_MEMBERS; i++)
		KILN_GUARD(decode_member(obj, tpm2_members[i].name, tpm2_members[i].required,
					 tpm2_buf(&ev->tpm2, i), d));
	ev->type = KILN_ATTEST_TPM2;
	return tpm2_digest(&ev->tpm2, ev->sha256);
}

kiln_result kiln_evidence_parse(const json_t *obj, struct kiln_evidence *out, kiln_diag *d)
{
	struct kiln_evidence ev;
	const json_t *type;
	kiln_result r;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	kiln_evidence_init(&ev);
	if (obj == NULL)
		goto commit; /* no evidence: type none, digest zero */
	if (!json_is_object(obj)) {
		r = kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED, "evidence must be a JSON object");
		goto out;
	}
	type = json_object_get(obj, "type");
	if (type == NULL || !json_is_string(type)) {
		r = kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				  "evidence member \"type\" is missing or not a string");
		goto out;
	}
	if (strcmp(json_string_value(type), "dice") == 0 &&
	    json_string_length(type) == strlen("dice")) {
		KILN_TRY(r, parse_dice(obj, &ev, d));
	} else if (strcmp(json_string_value(type), "tpm2") == 0 &&
		   json_string_length(type) == strlen("tpm2")) {
		KILN_TRY(r, parse_tpm2(obj, &ev, d));
	} else {
		r = kiln_diag_set(d, KILN_ERR_ATTEST_MALFORMED,
				  "evidence member \"type\": \"%.32s\" is not supported (expected \"dice\" or \"tpm2\")",
				  json_string_value(type));
		goto out;
	}
commit:
	kiln_evidence_cleanup(out);
	*out = ev;
	return kiln_ok();
out:
	kiln_evidence_cleanup(&ev);
	return r;
}
