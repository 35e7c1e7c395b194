/*
 * Approvals: an officer's signature over a request digest, verified with
 * OpenSSL against the officer's identity certificate in the inventory, and
 * recorded with its event in one transaction. A policy activation that
 * reaches its quorum runs in that same transaction, and so does an operation
 * whose owner passes an executor (the CA's recalls, kiln_ca_approve).
 */
#include "govern/govern.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Ed25519 and Ed448 sign the message itself; the others hash it with SHA-256. */
static const EVP_MD *md_for(const EVP_PKEY *key)
{
	int id = EVP_PKEY_get_base_id(key);

	return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
}

kiln_result kiln_govern_sign(EVP_PKEY *key, const uint8_t digest[32], kiln_buf *sig, kiln_diag *d)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t out[KILN_STORE_SIG_MAX];
	size_t len = sizeof(out);
	kiln_result r = kiln_ok();

	KILN_ENSURE(ctx != NULL, KILN_ERR_NOMEM);
	if (EVP_DigestSignInit(ctx, NULL, md_for(key), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, digest, 32) != 1 || len > sizeof(out) ||
	    EVP_DigestSign(ctx, out, &len, digest, 32) != 1)
		r = kiln_diag_set(d, KILN_ERR_CRYPTO,
				  "signing the request digest failed (keys: P-256, P-384, Ed25519, RSA)");
	else
		r = kiln_buf_append(sig, out, len);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

kiln_result kiln_govern_verify(const X509 *cert, const uint8_t digest[32], kiln_slice sig,
			       kiln_diag *d)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	EVP_MD_CTX *ctx;
	int ok = 0;

	if (key == NULL)
		return kiln_diag_set(d, KILN_ERR_CRYPTO, "the identity certificate has no usable key");
	ctx = EVP_MD_CTX_new();
	KILN_ENSURE(ctx != NULL, KILN_ERR_NOMEM);
	if (EVP_DigestVerifyInit(ctx, NULL, md_for(key), NULL, key) == 1)
		ok = EVP_DigestVerify(ctx, sig.ptr, sig.len, digest, 32);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (ok != 1)
		return kiln_diag_set(d, KILN_ERR_APPROVAL_SIGNATURE,
				     "the signature does not verify over the request digest with the "
				     "approver's identity certificate");
	return kiln_ok();
}

kiln_result kiln_govern_signer(kiln_store *s, const EVP_PKEY *key, struct kiln_identity_rec *out,
			       kiln_diag *d)
{
	uint8_t spki[32];

	KILN_ENSURE(s != NULL && key != NULL && out != NULL, KILN_ERR_ARG);
	KILN_GUARD(kiln_key_fingerprint(key, spki));
	return kiln_store_identity_by_key(s, spki, out, d);
}

/* ------------------------------------------------------------ approve */

struct approve_work {
	const struct kiln_request_rec *q;
	struct kiln_approval_rec a;
	int64_t now;
	/* policy-activate: what the request activates */
	char product[64];
	int64_t version;
	int64_t count;
	bool executed;
	/* an operation the caller runs on quorum (revoke-bulk) */
	const struct kiln_govern_exec *ex;
	bool prepared;
	int64_t affected;
};

static kiln_result approval_event(kiln_store_tx *tx, struct approve_work *w, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	kiln_buf sig64;
	json_t *j;
	kiln_result r;

	kiln_buf_init(&sig64, KILN_STORE_SIG_MAX * 2);
	KILN_GUARD(kiln_base64_encode(kiln_slice_of(w->a.signature, w->a.sig_len), &sig64));
	j = json_pack("{s:s,s:s,s:s,s:I,s:I}", "operation", w->q->operation, "cert_serial",
		      w->a.cert_serial, "signature", kiln_buf_cstr(&sig64), "approvals",
		      (json_int_t)w->count, "quorum", (json_int_t)w->q->quorum);
	ev.time = w->now;
	kiln_strtrunc(ev.type, "approval", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->a.approver, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->q->id, sizeof(ev.subject));
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	kiln_buf_cleanup(&sig64);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

static kiln_result activate(kiln_store_tx *tx, struct approve_work *w, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	json_t *j;
	kiln_result r;

	KILN_GUARD(kiln_store_tx_policy_activate(tx, w->product, w->version, d));
	KILN_GUARD(kiln_govern_tx_executed(tx, w->q->id, w->a.approver, w->now, d));
	j = json_pack("{s:I,s:s}", "version", (json_int_t)w->version, "request", w->q->id);
	ev.time = w->now;
	kiln_strtrunc(ev.type, "policy-activate", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->a.approver, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->product, sizeof(ev.subject));
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	w->executed = kiln_is_ok(r);
	return r;
}

static kiln_result approve_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct approve_work *w = ctx;

	w->executed = false;
	KILN_GUARD(kiln_store_tx_approval_add(tx, &w->a, w->now, &w->count, d));
	KILN_GUARD(approval_event(tx, w, d));
	if (w->version > 0 && w->count >= w->q->quorum)
		return activate(tx, w, d);
	if (w->count < w->q->quorum)
		return kiln_ok();
	if (w->prepared) {
		KILN_GUARD(w->ex->run(tx, w->ex->ctx, w->q, w->a.approver, w->now, &w->affected, d));
		KILN_GUARD(kiln_govern_tx_executed(tx, w->q->id, w->a.approver, w->now, d));
		w->executed = true;
		return kiln_ok();
	}
	/* A recall runs when its quorum lands, or the approval does not count (retry it). */
	if (strcmp(w->q->operation, kiln_op_name(KILN_OP_REVOKE_BULK)) == 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL,
				     "request %s reaches its quorum with this approval but this "
				     "process cannot run it: approve with kiln approve or over HTTPS",
				     w->q->id);
	return kiln_ok();
}

/* A policy-activate request: the pending version it names, with the hash the officers saw. */
static kiln_result policy_target(kiln_store *s, struct approve_work *w, kiln_diag *d)
{
	struct kiln_policy_rec p = { 0 };
	json_t *j = json_loads(w->q->params_json, 0, NULL);
	const char *product = NULL, *sha = NULL;
	json_int_t version = 0;
	char hash[65];
	kiln_result r = kiln_ok();

	if (j == NULL || json_unpack(j, "{s:s,s:I,s:s}", "product", &product, "version", &version,
				     "sha256", &sha) != 0 || version < 1) {
		json_decref(j);
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "request %s has malformed parameters",
				     w->q->id);
	}
	kiln_strtrunc(w->product, product, sizeof(w->product));
	w->version = version;
	r = kiln_store_policy_get(s, w->product, w->version, &p, d);
	if (kiln_is_ok(r)) {
		kiln_hex_encode(p.sha256, 32, hash);
		if (strcmp(hash, sha) != 0)
			r = kiln_diag_set(d, KILN_ERR_REQUEST_MISMATCH,
					  "policy %s v%lld does not have the SHA-256 the request names",
					  w->product, (long long)w->version);
		else if (strcmp(p.status, "pending") != 0)
			r = kiln_diag_set(d, KILN_ERR_REQUEST_MISMATCH,
					  "policy %s v%lld is %s, not pending", w->product,
					  (long long)w->version, p.status);
	}
	kiln_policy_rec_cleanup(&p);
	json_decref(j);
	return r;
}

/* Who is approving, with the certificate their signature must verify with. */
static kiln_result approver_cert(kiln_store *s, const char *approver, struct kiln_identity_rec *id,
				 X509 **cert, kiln_diag *d)
{
	struct kiln_cert_rec c = { 0 };
	kiln_result r;

	r = kiln_store_identity_get(s, approver, id, d);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_APPROVAL_ROLE, "no identity named %s", approver);
	KILN_GUARD(r);
	if (strcmp(id->status, "active") != 0)
		return kiln_diag_set(d, KILN_ERR_AUTH_REVOKED, "identity %s was revoked", approver);
	if (strcmp(id->role, KILN_GOVERN_APPROVER_ROLE) != 0)
		return kiln_diag_set(d, KILN_ERR_APPROVAL_ROLE,
				     "%s has role %s: only officers approve requests", approver,
				     id->role);
	KILN_GUARD(kiln_store_cert_get(s, id->cert_serial, &c, d));
	r = kiln_cert_parse(kiln_slice_of(c.der, c.der_len), cert, d);
	kiln_cert_rec_cleanup(&c);
	return r;
}

static kiln_result approve(kiln_store *s, struct approve_work *w, kiln_slice sig, kiln_diag *d)
{
	struct kiln_identity_rec id = { 0 };
	uint8_t digest[32];
	X509 *cert = NULL;
	kiln_result r;

	KILN_TRY(r, approver_cert(s, w->a.approver, &id, &cert, d));
	if (strcmp(w->q->requester, w->a.approver) == 0) {
		r = kiln_diag_set(d, KILN_ERR_APPROVAL_SELF,
				  "%s made request %s: the requester's own approval does not count",
				  w->a.approver, w->q->id);
		goto out;
	}
	/* The stored digest must be the digest of the stored request: nothing was edited. */
	KILN_TRY(r, kiln_govern_digest(w->q, digest));
	if (!kiln_ct_eq(digest, w->q->digest, 32)) {
		r = kiln_diag_set(d, KILN_ERR_INTERNAL,
				  "request %s does not match its stored digest", w->q->id);
		goto out;
	}
	if (sig.len == 0 || sig.len > KILN_STORE_SIG_MAX) {
		r = kiln_diag_set(d, KILN_ERR_APPROVAL_SIGNATURE,
				  "an approval signature is 1 to %d bytes", KILN_STORE_SIG_MAX);
		goto out;
	}
	KILN_TRY(r, kiln_govern_verify(cert, digest, sig, d));
	memcpy(w->a.signature, sig.ptr, sig.len);
	w->a.sig_len = sig.len;
	kiln_strtrunc(w->a.cert_serial, id.cert_serial, sizeof(w->a.cert_serial));
	/* A request no longer open is refused by the store, with the reason why. */
	if (strcmp(w->q->operation, kiln_op_name(KILN_OP_POLICY_ACTIVATE)) == 0 &&
	    strcmp(w->q->status, "pending") == 0 && w->now < w->q->expires &&
	    w->q->approvals + 1 >= w->q->quorum)
		KILN_TRY(r, policy_target(s, w, d));
	if (w->ex != NULL && strcmp(w->q->operation, kiln_op_name(w->ex->op)) == 0 &&
	    strcmp(w->q->status, "pending") == 0 && w->now < w->q->expires &&
	    w->q->approvals + 1 >= w->q->quorum) {
		KILN_TRY(r, w->ex->prepare(w->ex->ctx, w->q, d));
		w->prepared = true;
	}
	r = kiln_store_write(s, approve_tx, w, d);
out:
	X509_free(cert);
	return r;
}

kiln_result kiln_govern_approve(kiln_store *s, const char *id, const char *approver,
				kiln_slice sig, int64_t now, struct kiln_approve_result *out,
				kiln_diag *d)
{
	return kiln_govern_approve_exec(s, id, approver, sig, now, NULL, out, d);
}

kiln_result kiln_govern_approve_exec(kiln_store *s, const char *id, const char *approver,
				     kiln_slice sig, int64_t now, const struct kiln_govern_exec *ex,
				     struct kiln_approve_result *out, kiln_diag *d)
{
	struct kiln_request_rec q;
	struct approve_work w;
	kiln_result r;

	KILN_ENSURE(s != NULL && id != NULL && approver != NULL && out != NULL, KILN_ERR_ARG);
	KILN_ENSURE(ex == NULL || (ex->prepare != NULL && ex->run != NULL), KILN_ERR_ARG);
	memset(&w, 0, sizeof(w));
	memset(out, 0, sizeof(*out));
	w.q = &q;
	w.ex = ex;
	w.now = now != 0 ? now : kiln_now();
	kiln_strtrunc(w.a.request_id, id, sizeof(w.a.request_id));
	kiln_strtrunc(w.a.approver, approver, sizeof(w.a.approver));
	r = kiln_store_request_get(s, id, &q, d);
	if (kiln_is_ok(r))
		r = approve(s, &w, sig, d);
	if (!kiln_is_ok(r))
		return kiln_govern_refused(s, "approval-refused", approver, id, r, d);
	out->approvals = w.count;
	out->quorum = q.quorum;
	out->executed = w.executed;
	out->affected = w.affected;
	kiln_strtrunc(out->operation, q.operation, sizeof(out->operation));
	return kiln_ok();
}
