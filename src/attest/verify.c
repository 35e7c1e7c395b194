/*
 * The attestation dispatcher: which verifier a policy's attestation type
 * calls, and what the verifiers share (the policy's trust anchors).
 * Everything a verifier decides is in its own file (dice.c, tpm2.c).
 */
#include "attest_impl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

kiln_result kiln_attest_load_roots(const kiln_policy *p, char *const *pems, size_t n,
				   const char *field, X509_STORE *store, kiln_diag *d)
{
	for (size_t i = 0; i < n && i < KILN_POLICY_MAX_ROOTS; i++) {
		BIO *bio = pems[i] != NULL ? BIO_new_mem_buf(pems[i], -1) : NULL;
		X509 *root = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		int ok = root != NULL && X509_STORE_add_cert(store, root) == 1;

		X509_free(root);
		BIO_free(bio);
		ERR_clear_error();
		if (!ok)
			return kiln_diag_set(d, KILN_ERR_CONFIG,
					     "policy %s: %s[%zu] is not a readable PEM certificate",
					     p->product, field, i);
	}
	return kiln_ok();
}

kiln_result kiln_attest_verify(const struct kiln_evidence *ev, const struct kiln_attest_ctx *ctx,
			       struct kiln_attest_result *res, kiln_diag *d)
{
	struct kiln_attest_result out;
	const kiln_policy *p;

	KILN_ENSURE(ctx != NULL && ctx->policy != NULL && res != NULL, KILN_ERR_ARG);
	memset(res, 0, sizeof(*res));
	memset(&out, 0, sizeof(out));
	p = ctx->policy;
	switch (p->attestation.type) {
	case KILN_ATTEST_NONE:
		/* The policy parser already refuses this outside test policies; say it twice. */
		if (p->env != KILN_ENV_TEST)
			return kiln_diag_set(d, KILN_ERR_ATTEST_REQUIRED,
					     "policy %s is not a test policy and cannot go without attestation",
					     p->product);
		out.type = KILN_ATTEST_NONE;
		break;
	case KILN_ATTEST_DICE:
		KILN_GUARD(kiln_attest_dice_verify(ev, ctx, &out, d));
		break;
	case KILN_ATTEST_TPM2:
		KILN_GUARD(kiln_attest_tpm2_verify(ev, ctx, &out, d));
		break;
	case KILN_ATTEST_SE:
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "policy %s requires %s attestation, which this kiln cannot verify yet",
				     p->product, kiln_attest_type_name(p->attestation.type));
	default:
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "policy %s has an unknown attestation type",
				     p->product);
	}
	*res = out;
	return kiln_ok();
}
