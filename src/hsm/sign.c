/*
 * The token's signer: one signature per request, made inside the token
 * with the key the request names.
 *
 * ECDSA keys sign a digest made here (CKM_ECDSA) and the raw r || s the
 * token returns becomes the DER ECDSA-Sig-Value X.509 wants; Ed25519 signs
 * the whole message (CKM_EDDSA); RSA hashes inside the token
 * (CKM_SHA256_RSA_PKCS).
 */
#include "p11.h"

#include <openssl/evp.h>

/* Larger than any certificate or CRL kiln signs; a sanity cap, not a policy. */
#define KILN_SIGN_TBS_MAX ((size_t)64 * 1024 * 1024)
#define KILN_P11_SIG_BUF 1024

struct sign_arg {
	const kiln_key_ref *key;
	const struct kiln_alg_info *ai;
	const struct kiln_p11_alg *pa;
	kiln_slice input; /* the digest, or the whole TBS */
	kiln_buf *sig;
};

KILN_MUST_USE
static kiln_result append_sig(kiln_token *t, const struct sign_arg *a, kiln_slice raw,
			      kiln_diag *d)
{
	size_t want = a->pa->prehash ? 2 * a->ai->ec_coord_len
				     : a->ai->alg == KILN_ALG_ED25519 ? 64 : a->ai->bits / 8;

	if (raw.len != want)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "C_Sign on HSM token %s returned %zu bytes for a %zu-byte %s signature",
				     t->label, raw.len, want, a->ai->name);
	if (a->pa->prehash)
		return kiln_ecdsa_raw_to_der(a->ai->alg, raw, a->sig);
	return kiln_buf_append_slice(a->sig, raw);
}

static kiln_result sign_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct sign_arg *a = arg;
	CK_MECHANISM mech = { a->pa->sign_mech, NULL, 0 };
	uint8_t raw[KILN_P11_SIG_BUF];
	CK_ULONG raw_len = sizeof(raw);
	CK_OBJECT_HANDLE key;
	CK_RV rv = CKR_OK;

	for (int round = 0; round < 2; round++) {
		KILN_GUARD(kiln_tok_key_handle(t, s, a->key, &key, d));
		rv = t->fn->C_SignInit(s->h, &mech, key);
		/*
		 * A cached handle dies with its object and with the login
		 * (SoftHSM2 drops private handles on C_Logout): look it up again.
		 */
		if (rv != CKR_KEY_HANDLE_INVALID && rv != CKR_OBJECT_HANDLE_INVALID)
			break;
		kiln_keycache_drop(&t->cache, a->key->label);
	}
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_SignInit", d);
	rv = t->fn->C_Sign(s->h, (CK_BYTE_PTR)a->input.ptr, (CK_ULONG)a->input.len, raw, &raw_len);
	if (rv != CKR_OK) {
		/* Only a too-small buffer leaves the operation active; never reuse that session. */
		if (rv == CKR_BUFFER_TOO_SMALL)
			s->discard = true;
		return kiln_tok_fail(t, s, rv, "C_Sign", d);
	}
	return append_sig(t, a, kiln_slice_of(raw, raw_len), d);
}

static kiln_result token_sign(void *impl, const struct kiln_sign_req *req, kiln_buf *sig,
			      kiln_diag *d)
{
	kiln_token *t = impl;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	struct sign_arg a;

	if (t == NULL || req == NULL || sig == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "signing needs a token, a request and a result");
	KILN_GUARD(kiln_p11_check_ref(req->key, d));
	if (req->tbs.ptr == NULL || req->tbs.len == 0 || req->tbs.len > KILN_SIGN_TBS_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "sign request for key %s: empty or oversized data",
				     req->key->label);
	a.key = req->key;
	a.ai = kiln_alg_get(req->key->alg);
	a.pa = kiln_p11_alg_get(req->key->alg);
	a.sig = sig;
	a.input = req->tbs;
	if (a.pa->prehash) {
		const EVP_MD *md = EVP_get_digestbynid(a.ai->md_nid);

		if (md == NULL || EVP_Digest(req->tbs.ptr, req->tbs.len, digest, &digest_len, md,
					     NULL) != 1)
			return kiln_diag_set(d, KILN_ERR_CRYPTO,
					     "hashing the data for key %s failed",
					     req->key->label);
		a.input = kiln_slice_of(digest, digest_len);
	}
	/* What and why, never the bytes. */
	kiln_log_debug(&t->log, "HSM token %s: signing %s with key %s", t->label,
		       req->purpose != NULL ? req->purpose : "(no purpose)", req->key->label);
	return kiln_tok_run(t, sign_op, &a, d);
}

static const struct kiln_signer_ops token_signer_ops = {
	.sign = token_sign,
};

kiln_signer kiln_token_signer(kiln_token *t)
{
	return (kiln_signer){ &token_signer_ops, t };
}
