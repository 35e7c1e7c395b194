/*
 * EST (RFC 7030) under /.well-known/est/, with an optional label segment
 * naming the product (/.well-known/est/<product>/...). docs/protocol.md
 * says who may do what:
 *   cacerts         anyone: the issuing CA and root (production without a
 *                   label, the product's environment with one)
 *   csrattrs        anyone: the key kinds the product's policy allows
 *   simpleenroll    a new identity without attestation: only where the
 *                   product's policy allows it (est.enroll, attestation none):
 *                   a station identity, a device bootstrap certificate, or
 *                   anyone
 *   simplereenroll  the device itself, by mTLS with its current certificate
 * Request bodies are base64 PKCS#10 (application/pkcs10); certificates come
 * back as base64 certs-only PKCS#7 (application/pkcs7-mime). Every refusal is
 * a problem and an audit event.
 */
#include "app_impl.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PKCS7_TYPE "application/pkcs7-mime; smime-type=certs-only"

/* The label segment, else kiln serve --est-product, else none. */
static const char *label_of(const kiln_app *app, const struct kiln_request *req)
{
	if (req->n_params > 0)
		return req->params[0];
	return app->est_default_product[0] != '\0' ? app->est_default_product : NULL;
}

static kiln_result refuse(kiln_app *app, const struct kiln_request *req, kiln_result r,
			  const kiln_diag *local, kiln_diag *d)
{
	app_refuse(app, req, r.code == KILN_ERR_AUTH_REQUIRED || r.code == KILN_ERR_FORBIDDEN ||
					    r.code == KILN_ERR_AUTH_UNKNOWN ||
					    r.code == KILN_ERR_AUTH_REVOKED
				     ? "auth-failure"
				     : "rejection",
		   r, local);
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(local, r));
}

/* The environment EST serves: the product's, or production without a label. */
static kiln_result label_env(kiln_app *app, const char *label, const kiln_policy **policy,
			     kiln_env *env, kiln_diag *d)
{
	int64_t version = 0;
	kiln_result r;

	*policy = NULL;
	*env = KILN_ENV_PRODUCTION;
	if (label == NULL)
		return kiln_ok();
	r = kiln_ca_policy_view(app->ca, label, policy, &version, d);
	if (r.code == KILN_ERR_NOT_FOUND || r.code == KILN_ERR_UNKNOWN_PRODUCT)
		return kiln_diag_set(d, KILN_ERR_UNKNOWN_PRODUCT, "EST label %s names no product with an active policy",
				     label);
	KILN_GUARD(r);
	*env = (*policy)->env;
	return kiln_ok();
}

static kiln_result pkcs7_response(struct kiln_response *res, X509 *const *certs, size_t n)
{
	res->status = 200;
	kiln_strtrunc(res->content_type, PKCS7_TYPE, sizeof(res->content_type));
	KILN_GUARD(kiln_response_header(res, "Content-Transfer-Encoding", "base64"));
	return kiln_est_certs_only(certs, n, &res->body);
}

kiln_result route_est_cacerts(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d)
{
	kiln_app *app = ctx;
	const kiln_policy *policy;
	X509 *chain[2];
	size_t n = 0;
	kiln_env env;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = label_env(app, label_of(app, req), &policy, &env, &local);
	if (kiln_is_ok(r))
		r = kiln_ca_chain_certs(app->ca, env, chain, &n, &local);
	if (!kiln_is_ok(r))
		return refuse(app, req, r, &local, d);
	return pkcs7_response(res, chain, n);
}

/* ------------------------------------------------------------ csrattrs */

static kiln_result oid_der(const char *dotted, kiln_buf *out)
{
	ASN1_OBJECT *o = OBJ_txt2obj(dotted, 1);
	unsigned char *der = NULL;
	int len = o != NULL ? i2d_ASN1_OBJECT(o, &der) : -1;
	kiln_result r = kiln_fail(KILN_ERR_INTERNAL);

	if (len > 0)
		r = kiln_buf_append(out, der, (size_t)len);
	OPENSSL_free(der);
	ASN1_OBJECT_free(o);
	return r;
}

static const char *curve_oid(const char *curve)
{
	if (strcmp(curve, "p256") == 0)
		return "1.2.840.10045.3.1.7";
	if (strcmp(curve, "p384") == 0)
		return "1.3.132.0.34";
	if (strcmp(curve, "p521") == 0)
		return "1.3.132.0.35";
	return NULL;
}

/* One AttrOrOID per allowed key kind (RFC 7030 4.5.2): EC as an attribute naming its curves. */
static kiln_result key_attr(const struct kiln_policy_key *k, kiln_buf *out)
{
	kiln_buf set, attr;
	kiln_result r;

	if (strcmp(k->type, "ed25519") == 0)
		return oid_der("1.3.101.112", out);
	if (strcmp(k->type, "rsa") == 0)
		return oid_der("1.2.840.113549.1.1.1", out);
	kiln_buf_init(&set, 4096);
	kiln_buf_init(&attr, 4096);
	for (size_t c = 0; c < k->n_curves; c++) {
		const char *oid = curve_oid(k->curves[c]);

		if (oid != NULL)
			KILN_TRY(r, oid_der(oid, &set));
	}
	KILN_TRY(r, oid_der("1.2.840.10045.2.1", &attr));
	KILN_TRY(r, kiln_der_write(&attr, 0x31, kiln_buf_view(&set)));
	r = kiln_der_write(out, KILN_DER_SEQUENCE, kiln_buf_view(&attr));
out:
	kiln_buf_cleanup(&set);
	kiln_buf_cleanup(&attr);
	return r;
}

static kiln_result csrattrs_der(const kiln_policy *p, kiln_buf *out)
{
	kiln_buf items;
	kiln_result r = kiln_ok();

	kiln_buf_init(&items, 16384);
	for (size_t i = 0; i < p->n_keys && kiln_is_ok(r); i++)
		r = key_attr(&p->keys[i], &items);
	/* The signature the CA itself uses for the hash: ecdsa-with-SHA256. */
	if (kiln_is_ok(r))
		r = oid_der("1.2.840.10045.4.3.2", &items);
	if (kiln_is_ok(r))
		r = kiln_der_write(out, KILN_DER_SEQUENCE, kiln_buf_view(&items));
	kiln_buf_cleanup(&items);
	return r;
}

kiln_result route_est_csrattrs(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			       kiln_diag *d)
{
	kiln_app *app = ctx;
	const kiln_policy *policy;
	kiln_buf der;
	kiln_env env;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = label_env(app, label_of(app, req), &policy, &env, &local);
	if (!kiln_is_ok(r))
		return refuse(app, req, r, &local, d);
	kiln_strtrunc(res->content_type, "application/csrattrs", sizeof(res->content_type));
	if (policy == NULL) {
		/* RFC 7030 4.5.2: no attributes to ask for without a product. */
		res->status = 204;
		return kiln_ok();
	}
	kiln_buf_init(&der, 65536);
	r = csrattrs_der(policy, &der);
	if (kiln_is_ok(r))
		r = kiln_response_header(res, "Content-Transfer-Encoding", "base64");
	if (kiln_is_ok(r))
		r = kiln_base64_encode(kiln_buf_view(&der), &res->body);
	res->status = 200;
	kiln_buf_cleanup(&der);
	return r;
}

/* ------------------------------------------------------------ enrollment */

/* The body's PKCS#10, checked (bounded base64, DER, proof of possession). */
static kiln_result body_csr(const struct kiln_request *req, kiln_csr **csr, kiln_diag *d)
{
	return kiln_est_csr_parse(req->body, csr, d);
}

static kiln_result issued_response(struct kiln_response *res, const struct kiln_issue_result *ir,
				   kiln_diag *d)
{
	X509 *cert = NULL;
	kiln_result r;

	KILN_GUARD(kiln_cert_parse(kiln_buf_view(&ir->cert_der), &cert, d));
	r = pkcs7_response(res, &cert, 1);
	X509_free(cert);
	return r;
}

/*
 * The device a bootstrap certificate names: its subject serialNumber, else
 * its CN (IEEE 802.1AR puts the device serial in serialNumber).
 */
static bool bootstrap_serial(const X509 *cert, char *out, size_t cap)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	int idx = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);
	const ASN1_STRING *v;
	int len;

	if (idx < 0)
		idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return false;
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	len = ASN1_STRING_length(v);
	if (len <= 0 || (size_t)len >= cap || memchr(ASN1_STRING_get0_data(v), 0, (size_t)len) != NULL)
		return false;
	memcpy(out, ASN1_STRING_get0_data(v), (size_t)len);
	out[len] = '\0';
	return true;
}

/*
 * est.enroll bootstrap: the TLS client certificate (whose key the client
 * proved in the handshake) chains to one of the policy's bootstrap_roots and
 * is valid now; the identity is issued for the device it names, and the
 * CSR's CN, if any, must name the same device.
 */
static kiln_result bootstrap_admit(kiln_app *app, const struct kiln_request *req,
				   const kiln_policy *p, const kiln_csr *csr, char *serial,
				   size_t cap, kiln_diag *d)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *sctx = NULL;
	const X509_NAME *subj = csr->subject;
	kiln_result r = kiln_ok();
	int idx, err;

	(void)app;
	if (req->client_cert != NULL)
		return kiln_diag_set(d, KILN_ERR_FORBIDDEN,
				     "policy %s enrolls through EST with the device's bootstrap "
				     "certificate, not a kiln identity", p->product);
	if (req->foreign_cert == NULL)
		return kiln_diag_set(d, KILN_ERR_AUTH_REQUIRED,
				     "policy %s enrolls through EST with the device's bootstrap "
				     "certificate: present it as the TLS client certificate", p->product);
	store = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	if (store == NULL || sctx == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	KILN_TRY(r, kiln_attest_load_roots(p, p->est_bootstrap_roots, p->n_est_bootstrap_roots,
					   "est.bootstrap_roots", store, d));
	if (X509_STORE_CTX_init(sctx, store, (X509 *)req->foreign_cert, NULL) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx), (time_t)kiln_now());
	if (X509_verify_cert(sctx) != 1) {
		err = X509_STORE_CTX_get_error(sctx);
		r = kiln_diag_set(d, KILN_ERR_FORBIDDEN,
				  "the client certificate is not a bootstrap certificate of policy %s: %s",
				  p->product, X509_verify_cert_error_string(err));
		goto out;
	}
	if (!bootstrap_serial(req->foreign_cert, serial, cap)) {
		r = kiln_diag_set(d, KILN_ERR_FORBIDDEN,
				  "the bootstrap certificate names no device (no serialNumber or CN)");
		goto out;
	}
	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx >= 0) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));

		if ((size_t)ASN1_STRING_length(cn) != strlen(serial) ||
		    memcmp(ASN1_STRING_get0_data(cn), serial, strlen(serial)) != 0)
			r = kiln_diag_set(d, KILN_ERR_POLICY_SERIAL,
					  "the CSR's CN is not %s, the device the bootstrap certificate "
					  "names", serial);
	}
out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return r;
}

/* Who may enroll a new identity for this product, and as whom the event names them. */
static kiln_result enroll_admit(kiln_app *app, const struct kiln_request *req,
				const kiln_policy *p, struct kiln_principal *who, char *actor,
				size_t cap, kiln_diag *d)
{
	switch ((kiln_est_enroll)p->est_enroll) {
	case KILN_EST_ENROLL_OPEN:
		(void)snprintf(actor, cap, "est:%s", req->peer != NULL ? req->peer : "anonymous");
		return kiln_ok();
	case KILN_EST_ENROLL_STATION:
		if (req->client_cert == NULL)
			return kiln_diag_set(d, KILN_ERR_AUTH_REQUIRED,
					     "policy %s enrolls through EST only for station identities: "
					     "present a client certificate from kiln identity add",
					     p->product);
		KILN_GUARD(app_authenticate(app, req->client_cert, who, d));
		if ((who->role_bit & (KILN_ROLE_STATION | KILN_ROLE_OPERATOR)) == 0)
			return kiln_diag_set(d, KILN_ERR_FORBIDDEN,
					     "role %s may not enroll devices; stations and operators may",
					     who->role);
		if (who->env[0] != '\0' && strcmp(who->env, kiln_env_name(p->env)) != 0)
			return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
					     "identity %s acts in %s; product %s is %s", who->name,
					     who->env, p->product, kiln_env_name(p->env));
		kiln_strtrunc(actor, who->name, cap);
		return kiln_ok();
	case KILN_EST_ENROLL_BOOTSTRAP: /* after the CSR is read: bootstrap_admit */
		return kiln_ok();
	case KILN_EST_ENROLL_NONE:
	default:
		return kiln_diag_set(d, KILN_ERR_ENROLL_FORBIDDEN,
				     "policy %s issues new identities only after attestation "
				     "(POST /v1/provision/begin and finish); EST here only renews",
				     p->product);
	}
}

kiln_result route_est_enroll(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_principal who = { 0 };
	const kiln_policy *policy = NULL;
	struct kiln_issue_result ir;
	struct kiln_issue_req ireq;
	kiln_csr *csr = NULL;
	char actor[KILN_STORE_NAME_MAX], serial[KILN_STORE_NAME_MAX] = "";
	kiln_env env;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	kiln_issue_result_init(&ir);
	if (label_of(app, req) == NULL)
		r = kiln_diag_set(&local, KILN_ERR_UNKNOWN_PRODUCT,
				  "EST enrollment names its product: POST "
				  "/.well-known/est/<product>/simpleenroll");
	else
		r = label_env(app, label_of(app, req), &policy, &env, &local);
	if (kiln_is_ok(r))
		r = enroll_admit(app, req, policy, &who, actor, sizeof(actor), &local);
	if (kiln_is_ok(r))
		r = body_csr(req, &csr, &local);
	if (kiln_is_ok(r) && policy->est_enroll == KILN_EST_ENROLL_BOOTSTRAP) {
		r = bootstrap_admit(app, req, policy, csr, serial, sizeof(serial), &local);
		(void)snprintf(actor, sizeof(actor), "bootstrap:%.100s", serial);
	}
	if (!kiln_is_ok(r)) {
		r = refuse(app, req, r, &local, d);
		goto out;
	}
	ireq = (struct kiln_issue_req){ .product = policy->product,
					.csr = kiln_buf_view(&csr->der),
					.device_serial = serial[0] != '\0' ? serial : NULL,
					.actor = actor,
					.station = who.name[0] != '\0' ? who.name : NULL };
	KILN_TRY(r, kiln_ca_issue(app->ca, &ireq, &ir, d));
	r = issued_response(res, &ir, d);
out:
	kiln_csr_free(csr);
	kiln_issue_result_cleanup(&ir);
	return r;
}

kiln_result route_est_reenroll(void *ctx, const struct kiln_request *req,
			       struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_issue_result ir;
	struct kiln_renew_req rr;
	kiln_csr *csr = NULL;
	char serial[KILN_SERIAL_HEX * 2], actor[KILN_SERIAL_HEX * 2 + 8];
	kiln_diag local;
	kiln_result r = kiln_ok();

	kiln_diag_clear(&local);
	kiln_issue_result_init(&ir);
	if (req->client_cert != NULL)
		r = kiln_diag_set(&local, KILN_ERR_FORBIDDEN,
				  "simplereenroll renews a device's certificate: present the device's "
				  "own certificate, not a kiln identity");
	else if (req->foreign_cert == NULL)
		r = kiln_diag_set(&local, KILN_ERR_AUTH_REQUIRED,
				  "simplereenroll needs the device's current certificate as the TLS "
				  "client certificate");
	if (kiln_is_ok(r))
		r = body_csr(req, &csr, &local);
	if (!kiln_is_ok(r)) {
		r = refuse(app, req, r, &local, d);
		goto out;
	}
	kiln_cert_serial_hex(req->foreign_cert, serial, sizeof(serial));
	(void)snprintf(actor, sizeof(actor), "device:%s", serial);
	/* Only an explicit label constrains a renewal: the certificate names its product. */
	rr = (struct kiln_renew_req){ req->foreign_cert, kiln_buf_view(&csr->der),
				      req->n_params > 0 ? req->params[0] : NULL, actor };
	KILN_TRY(r, kiln_ca_renew(app->ca, &rr, &ir, d));
	r = issued_response(res, &ir, d);
out:
	kiln_csr_free(csr);
	kiln_issue_result_cleanup(&ir);
	return r;
}
