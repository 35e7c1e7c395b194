/*
 * Identities: client certificates from the service CA, bound to a role in
 * the inventory. The holder should bring its own CSR; for convenience kiln
 * can make a P-256 key, which then exists only in the returned PEM.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *n)
{
	size_t len = n != NULL ? strlen(n) : 0;

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

static kiln_result make_key(EVP_PKEY **pkey, kiln_buf *pem)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	KILN_ENSURE(bio != NULL, KILN_ERR_NOMEM);
	*pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (*pkey != NULL && PEM_write_bio_PrivateKey(bio, *pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(bio, &data);
		if (n > 0)
			r = kiln_buf_append(pem, data, (size_t)n);
		if (data != NULL && n > 0)
			kiln_wipe(data, (size_t)n);
	}
	BIO_free(bio);
	return r;
}

struct id_work {
	const struct kiln_identity_req *req;
	bool bootstrap; /* an ungated admin or officer: record the bootstrap */
	struct ca_entry *issuer;
	X509_NAME *subject;
	EVP_PKEY *pub;
	struct kiln_cert_spec spec;
	char serial_hex[KILN_SERIAL_HEX];
	kiln_buf der;
};

static kiln_result commit_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct id_work *w = ctx;
	struct kiln_cert_rec cert = { 0 };
	struct kiln_identity_rec id = { 0 };
	struct kiln_event_rec ev = { 0 };
	const char *env = w->req->env != KILN_ENV_NONE ? kiln_env_name(w->req->env) : "";
	kiln_result r;

	if (w->bootstrap)
		KILN_GUARD(kiln_govern_tx_bootstrap(tx, w->req->rules, w->req->name, w->req->role,
						    w->req->actor, d));
	if (w->req->request_id != NULL)
		KILN_GUARD(kiln_govern_tx_executed(tx, w->req->request_id, w->req->actor, 0, d));
	ca_cert_rec_fill(&cert, w->serial_hex, w->issuer, "identity", w->subject,
			 w->spec.not_before, w->spec.not_after, kiln_buf_view(&w->der));
	KILN_GUARD(kiln_key_fingerprint(w->pub, cert.spki_sha256));
	KILN_GUARD(kiln_store_tx_cert_add(tx, &cert, d));
	kiln_strtrunc(id.name, w->req->name, sizeof(id.name));
	kiln_strtrunc(id.role, w->req->role, sizeof(id.role));
	kiln_strtrunc(id.env, env, sizeof(id.env));
	kiln_strtrunc(id.cert_serial, w->serial_hex, sizeof(id.cert_serial));
	kiln_strtrunc(id.status, "active", sizeof(id.status));
	id.created = kiln_now();
	KILN_GUARD(kiln_store_tx_identity_add(tx, &id, d));
	ev.time = id.created;
	kiln_strtrunc(ev.type, "identity-add", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->req->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->req->name, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:s,s:s,s:s}", "role", w->req->role, "env", env, "serial",
				       w->serial_hex);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

static kiln_result subject_for(const struct ca_entry *issuer, const struct kiln_identity_req *req,
			       X509_NAME **out, kiln_diag *d)
{
	const X509_NAME *in = X509_get_subject_name(issuer->cert);
	int idx = X509_NAME_get_index_by_NID(in, NID_organizationName, -1);
	unsigned char *org = NULL;
	struct kiln_name_attr attrs[3];
	size_t n = 0;
	kiln_result r;

	if (idx >= 0 &&
	    ASN1_STRING_to_UTF8(&org, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(in, idx))) > 0)
		attrs[n++] = (struct kiln_name_attr){ "O", (const char *)org };
	attrs[n++] = (struct kiln_name_attr){ "OU", req->role };
	attrs[n++] = (struct kiln_name_attr){ "CN", req->name };
	r = kiln_name_build(attrs, n, out, d);
	OPENSSL_free(org);
	return r;
}

/* The parameters an identity-add request is about: who, which role, where, which key. */
static json_t *add_params(const struct kiln_identity_req *req, const EVP_PKEY *pub)
{
	uint8_t spki[32];
	char hex[65];

	if (!kiln_is_ok(kiln_key_fingerprint(pub, spki)))
		return NULL;
	kiln_hex_encode(spki, 32, hex);
	return json_pack("{s:s,s:s,s:s,s:s}", "name", req->name, "role", req->role, "env",
			 req->env != KILN_ENV_NONE ? kiln_env_name(req->env) : "", "spki_sha256",
			 hex);
}

/*
 * Governance of an identity addition: ungated roles pass; an admin or
 * officer is the bootstrap while the deployment has fewer officers than the
 * quorum, else needs an approved request (made here when none is named).
 */
static kiln_result govern(kiln_ca *ca, struct id_work *w, struct kiln_identity_result *res,
			  kiln_diag *d)
{
	const struct kiln_identity_req *req = w->req;
	struct kiln_request_rec q;
	bool gated = false;
	json_t *params;
	kiln_result r;

	KILN_GUARD(kiln_govern_identity_gated(ca->store, req->rules, req->role, &gated, d));
	if (!gated) {
		w->bootstrap = strcmp(req->role, "admin") == 0 || strcmp(req->role, "officer") == 0;
		if (req->request_id != NULL)
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "adding a %s needs no request; leave out --request",
					     req->role);
		return kiln_ok();
	}
	if (req->csr.len == 0)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "adding an %s needs officer approvals over the holder's own key: "
				     "give the holder's CSR with --csr", req->role);
	params = add_params(req, w->pub);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	if (req->request_id != NULL)
		r = kiln_govern_check(ca->store, req->request_id, KILN_OP_IDENTITY_ADD, params,
				      req->actor, 0, NULL, d);
	else
		r = kiln_govern_request_create(ca->store, req->rules, KILN_OP_IDENTITY_ADD, params,
					       req->actor, 0, &q, d);
	json_decref(params);
	if (kiln_is_ok(r) && req->request_id == NULL)
		kiln_strtrunc(res->request_id, q.id, sizeof(res->request_id));
	return r;
}

static kiln_result identity(kiln_ca *ca, struct id_work *w, struct kiln_identity_result *res,
			    kiln_diag *d)
{
	const struct kiln_identity_req *req = w->req;
	struct kiln_cert_spec *s = &w->spec;
	struct kiln_lint_profile prof;
	kiln_csr *csr = NULL;
	kiln_buf tbs;
	kiln_result r;

	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	if (!name_ok(req->name))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "identity names are 1-64 characters of A-Z a-z 0-9 . _ @ -");
	if (!kiln_role_valid(req->role))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "unknown role '%.32s' (roles: admin, officer, engineer, operator, station, auditor)",
				     req->role != NULL ? req->role : "");
	w->issuer = ca_issuing(ca, KILN_ENV_SERVICE);
	if (w->issuer == NULL || w->issuer->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING,
				     "the service CA or its token is not available to this process");
	if (req->csr.len > 0) {
		KILN_TRY(r, kiln_csr_parse(req->csr, &csr, d));
		w->pub = csr->pkey;
		EVP_PKEY_up_ref(w->pub);
	} else {
		KILN_TRY(r, make_key(&w->pub, &res->key_pem));
	}
	if (req->rules != NULL) {
		KILN_TRY(r, govern(ca, w, res, d));
		if (res->request_id[0] != '\0')
			goto out; /* a request was made: nothing is issued yet */
	}
	KILN_TRY(r, subject_for(w->issuer, req, &w->subject, d));
	KILN_TRY(r, kiln_serial_new(s->serial));
	kiln_hex_encode(s->serial, KILN_SERIAL_LEN, w->serial_hex);
	s->not_before = kiln_now() - 60;
	s->not_after = s->not_before + 60 + (int64_t)ca->identity_validity_days * 86400;
	if (s->not_after > w->issuer->rec.not_after)
		s->not_after = w->issuer->rec.not_after;
	s->subject = w->subject;
	s->subject_key = w->pub;
	if (csr != NULL)
		s->subject_spki = csr->spki;
	s->issuer = w->issuer->cert;
	s->sig_alg = w->issuer->alg;
	s->path_len = -1;
	s->key_usage = KU_DIGITAL_SIGNATURE;
	s->eku[0] = NID_client_auth;
	s->n_eku = 1;
	KILN_TRY(r, kiln_cert_tbs(s, &tbs, d));
	prof = (struct kiln_lint_profile){ false, -1, KU_DIGITAL_SIGNATURE,
					   (int64_t)ca->identity_validity_days + 1, w->issuer->cert,
					   w->issuer->alg, NULL, w->pub, s->subject_spki };
	KILN_TRY(r, ca_sign_cert(w->issuer->token, &w->issuer->key, kiln_buf_view(&tbs), &prof,
				 false, "identity-certificate", &w->der, d));
	KILN_TRY(r, kiln_store_write(ca->store, commit_tx, w, d));
	KILN_TRY(r, ca_der_to_pem(kiln_buf_view(&w->der), &res->cert_pem));
	kiln_strtrunc(res->serial, w->serial_hex, sizeof(res->serial));
out:
	kiln_csr_free(csr);
	kiln_buf_cleanup(&tbs);
	return r;
}

kiln_result kiln_ca_identity_add(kiln_ca *ca, const struct kiln_identity_req *req,
				 struct kiln_identity_result *res, kiln_diag *d)
{
	struct id_work w = { 0 };
	kiln_result r;

	w.req = req;
	kiln_buf_init(&w.der, KILN_BUF_DEFAULT_MAX);
	r = identity(ca, &w, res, d);
	if (!kiln_is_ok(r)) {
		kiln_buf_reset(&res->key_pem);
		kiln_buf_reset(&res->cert_pem);
	}
	EVP_PKEY_free(w.pub);
	X509_NAME_free(w.subject);
	kiln_buf_cleanup(&w.der);
	ERR_clear_error();
	return r;
}

void kiln_identity_result_init(struct kiln_identity_result *r)
{
	memset(r, 0, sizeof(*r));
	kiln_buf_init(&r->cert_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&r->key_pem, KILN_BUF_DEFAULT_MAX);
}

void kiln_identity_result_cleanup(struct kiln_identity_result *r)
{
	kiln_buf_cleanup(&r->cert_pem);
	kiln_buf_cleanup(&r->key_pem);
}
