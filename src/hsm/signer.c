/*
 * The signer interface: the one door every signature of kiln's goes
 * through. It checks the request is whole and keeps the output buffer as
 * it was when a backend fails, so callers never see half a signature.
 */
#include "hsm.h"

#include <string.h>

kiln_result kiln_signer_sign(const kiln_signer *s, const struct kiln_sign_req *req, kiln_buf *sig,
			     kiln_diag *d)
{
	size_t before;
	kiln_result r;

	if (s == NULL || s->ops == NULL || s->ops->sign == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "no signer configured");
	if (req == NULL || req->key == NULL || sig == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "sign request needs a key and an output buffer");
	if (req->purpose == NULL || req->purpose[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "sign request names no purpose");
	if (req->tbs.ptr == NULL || req->tbs.len == 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "sign request has no data to sign");
	before = sig->len;
	r = s->ops->sign(s->impl, req, sig, d);
	if (!kiln_is_ok(r) && sig->len > before) {
		/* kiln_buf has no truncate; keep its invariant (NUL after len) by hand. */
		kiln_wipe(sig->ptr + before, sig->len - before);
		sig->len = before;
		sig->ptr[before] = '\0';
	}
	return r;
}
