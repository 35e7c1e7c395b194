/* kiln's own TLS server certificate, from the service CA. */
#include "ca_impl.h"

#include <jansson.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct tls_work {
	const struct kiln_tls_req *req;
	struct ca_entry *issuer;
	X509_NAME *subject;
	struct kiln_cert_spec spec;
	char serial_hex[KILN_SERIAL_HEX];
	kiln_buf der;
};

static kiln_result tls_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct tls_work *w = ctx;
	struct kiln_cert_rec cert = { 0 };
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	ca_cert_rec_fill(&cert, w->serial_hex, w->issuer, "tls", w->subject, w->spec.not_before,
			 w->spec.not_after, kiln_buf_view(&w->der));
	KILN_GUARD(kiln_key_fingerprint(w->req->key, cert.spki_sha256));
	KILN_GUARD(kiln_store_tx_cert_add(tx, &cert, d));
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, "tls-issue", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->req->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->serial_hex, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:s,s:s}", "ca", w->issuer->rec.name, "subject",
				       cert.subject);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

/* The CN: the first name short enough for one (RFC 5280: 64); the SANs carry every name. */
static const char *common_name(const struct kiln_tls_req *req)
{
	for (size_t i = 0; i < req->n_dns; i++) {
		if (strlen(req->dns[i]) <= 64)
			return req->dns[i];
	}
	for (size_t i = 0; i < req->n_ips; i++) {
		if (strlen(req->ips[i]) <= 64)
			return req->ips[i];
	}
	return NULL;
}

static kiln_result tls_issue(kiln_ca *ca, struct tls_work *w, kiln_buf *chain, kiln_diag *d)
{
	const struct kiln_tls_req *req = w->req;
	struct kiln_cert_spec *s = &w->spec;
	struct kiln_name_attr cn;
	struct kiln_lint_profile prof;
	unsigned days = req->days != 0 ? req->days : 90;
	kiln_buf tbs;
	kiln_result r;

	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	w->issuer = ca_issuing(ca, KILN_ENV_SERVICE);
	if (w->issuer == NULL || w->issuer->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING,
				     "the service CA or its token is not available to this process");
	if (req->n_dns + req->n_ips == 0 || req->n_dns > KILN_CERT_MAX_SAN ||
	    req->n_ips > KILN_CERT_MAX_SAN)
		return kiln_diag_set(d, KILN_ERR_ARG, "a TLS certificate needs 1 to 8 DNS names or IPs");
	cn = (struct kiln_name_attr){ "CN", common_name(req) };
	if (cn.value == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "a TLS certificate needs one name of at most 64 characters");
	KILN_TRY(r, kiln_name_build(&cn, 1, &w->subject, d));
	KILN_TRY(r, kiln_serial_new(s->serial));
	kiln_hex_encode(s->serial, KILN_SERIAL_LEN, w->serial_hex);
	s->not_before = kiln_now() - 60;
	s->not_after = s->not_before + 60 + (int64_t)days * 86400;
	if (s->not_after > w->issuer->rec.not_after)
		s->not_after = w->issuer->rec.not_after;
	s->subject = w->subject;
	s->subject_key = req->key;
	s->issuer = w->issuer->cert;
	s->sig_alg = w->issuer->alg;
	s->path_len = -1;
	s->key_usage = KU_DIGITAL_SIGNATURE;
	s->eku[0] = NID_server_auth;
	s->n_eku = 1;
	for (size_t i = 0; i < req->n_dns; i++)
		s->san_dns[s->n_san_dns++] = req->dns[i];
	for (size_t i = 0; i < req->n_ips; i++)
		s->san_ip[s->n_san_ip++] = req->ips[i];
	KILN_TRY(r, kiln_cert_tbs(s, &tbs, d));
	prof = (struct kiln_lint_profile){ false, -1, KU_DIGITAL_SIGNATURE, (int64_t)days + 1,
					   w->issuer->cert, w->issuer->alg, NULL, req->key, s->subject_spki };
	KILN_TRY(r, ca_sign_cert(w->issuer->token, &w->issuer->key, kiln_buf_view(&tbs), &prof,
				 false, "tls-certificate", &w->der, d));
	KILN_TRY(r, kiln_store_write(ca->store, tls_tx, w, d));
	KILN_TRY(r, ca_der_to_pem(kiln_buf_view(&w->der), chain));
	r = kiln_buf_append_slice(chain, kiln_buf_view(&w->issuer->chain_pem));
out:
	kiln_buf_cleanup(&tbs);
	return r;
}

kiln_result kiln_ca_tls_issue(kiln_ca *ca, const struct kiln_tls_req *req, kiln_buf *chain_pem,
			      kiln_diag *d)
{
	struct tls_work w = { 0 };
	kiln_result r;

	KILN_ENSURE(req->key != NULL && req->actor != NULL, KILN_ERR_ARG);
	w.req = req;
	kiln_buf_init(&w.der, KILN_BUF_DEFAULT_MAX);
	r = tls_issue(ca, &w, chain_pem, d);
	X509_NAME_free(w.subject);
	kiln_buf_cleanup(&w.der);
	return r;
}
