/*
 * The only path from a TBS to a signed certificate: lint, sign in the HSM
 * through the narrow signer request, assemble, and (for CA certificates and
 * RSA, where a fault could leak the key) verify.
 */
#include "ca_impl.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <openssl/pem.h>

kiln_result ca_sign_cert(kiln_token *tok, const kiln_key_ref *key, kiln_slice tbs,
			 const struct kiln_lint_profile *p, bool check_sig, const char *purpose,
			 kiln_buf *der, kiln_diag *d)
{
	struct kiln_sign_req req = { key, tbs, purpose };
	kiln_signer signer = kiln_token_signer(tok);
	X509 *signed_cert = NULL;
	kiln_buf sig;
	kiln_result r;

	kiln_buf_init(&sig, 4096);
	if (!kiln_is_ok(kiln_der_check(tbs))) {
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "lint: the TBS is not well-formed DER");
		goto out;
	}
	KILN_TRY(r, kiln_lint_tbs(tbs, p, d));
	KILN_TRY(r, kiln_signer_sign(&signer, &req, &sig, d));
	KILN_TRY(r, kiln_signed_assemble(tbs, key->alg, kiln_buf_view(&sig), der));
	if (check_sig || key->alg == KILN_ALG_RSA3072) {
		KILN_TRY(r, kiln_cert_parse(kiln_buf_view(der), &signed_cert, d));
		r = kiln_cert_check_signature(signed_cert, p->issuer != NULL ? p->issuer : signed_cert);
		if (!kiln_is_ok(r))
			r = kiln_diag_set(d, KILN_ERR_HSM,
					  "the HSM's signature with key %s does not verify", key->label);
	}
out:
	X509_free(signed_cert);
	kiln_buf_cleanup(&sig);
	return r;
}

kiln_result ca_certify_ca(kiln_token *tok, const kiln_key_ref *signer, struct kiln_cert_spec *spec,
			  int64_t days, struct ca_cert_made *out, kiln_diag *d)
{
	struct kiln_lint_profile prof;
	kiln_buf tbs;
	kiln_result r;

	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	KILN_TRY(r, kiln_serial_new(spec->serial));
	spec->not_before = out->nb;
	spec->not_after = out->na;
	spec->is_ca = true;
	spec->key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
	KILN_TRY(r, kiln_cert_tbs(spec, &tbs, d));
	prof = (struct kiln_lint_profile){ true, spec->path_len, spec->key_usage, days + 1,
					   spec->issuer, spec->sig_alg, NULL, spec->subject_key,
					   spec->subject_spki };
	KILN_TRY(r, ca_sign_cert(tok, signer, kiln_buf_view(&tbs), &prof, true, "ca-certificate",
				 &out->der, d));
	KILN_TRY(r, kiln_cert_parse(kiln_buf_view(&out->der), &out->cert, d));
	kiln_cert_serial_hex(out->cert, out->serial, sizeof(out->serial));
	kiln_name_format(spec->subject, out->subject, sizeof(out->subject));
out:
	kiln_buf_cleanup(&tbs);
	return r;
}

void ca_made_rec_fill(struct kiln_ca_rec *rec, const struct ca_cert_made *c,
		      const kiln_key_ref *key)
{
	kiln_strtrunc(rec->key_label, key->label, sizeof(rec->key_label));
	memcpy(rec->key_id, key->id, key->id_len);
	rec->key_id_len = key->id_len;
	kiln_strtrunc(rec->serial, c->serial, sizeof(rec->serial));
	kiln_strtrunc(rec->subject, c->subject, sizeof(rec->subject));
	rec->not_before = c->nb;
	rec->not_after = c->na;
	rec->created = kiln_now();
	rec->cert_der = c->der.ptr;
	rec->cert_len = c->der.len;
}

kiln_result ca_der_to_pem(kiln_slice der, kiln_buf *out)
{
	return kiln_pem_encode(PEM_STRING_X509, der, out);
}
