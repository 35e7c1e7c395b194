/*
 * The issuance pipeline. Everything is computed into locals and checked
 * first (policy, environment, CSR, key, subject, serial, lint); the HSM signs
 * only a TBS that passed; the device row, certificate row and event commit
 * in one transaction; only then is the certificate released. A refusal
 * writes one "rejection" event and nothing else.
 */
#include "ca_impl.h"

#include <jansson.h>

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKDATE_SECONDS 60

static void allowed_keys(const kiln_policy *p, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n_keys && o < cap; i++) {
		const struct kiln_policy_key *k = &p->keys[i];
		int n;

		if (strcmp(k->type, "ec") == 0) {
			n = snprintf(out + o, cap - o, "%sec", i ? ", " : "");
			for (size_t c = 0; n > 0 && c < k->n_curves && o + (size_t)n < cap; c++)
				n += snprintf(out + o + n, cap - o - (size_t)n, "%s%s", c ? "/" : " ",
					      k->curves[c]);
		} else if (strcmp(k->type, "rsa") == 0) {
			n = snprintf(out + o, cap - o, "%srsa %u-%u bits", i ? ", " : "", k->min_bits,
				     k->max_bits);
		} else {
			n = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", k->type);
		}
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

kiln_result issue_resolve(struct issue_work *w, const char *ca_name, kiln_diag *d)
{
	kiln_env env = w->policy->env;

	w->issuer = ca_name != NULL ? ca_find(w->ca, ca_name) : ca_issuing(w->ca, env);
	if (w->issuer == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no CA named '%.64s'; see kiln ca list",
				     ca_name != NULL ? ca_name : kiln_env_name(env));
	if (w->issuer->env != env)
		return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
				     "product %s is %s, CA %s is %s: production and test are strictly apart",
				     w->policy->product, kiln_env_name(env), w->issuer->rec.name,
				     w->issuer->rec.env);
	if (w->issuer->is_root || strcmp(w->issuer->rec.role, "issuing") != 0)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "CA %s is a %s; devices are issued by an issuing CA",
				     w->issuer->rec.name, w->issuer->rec.role);
	if (ca_retired(w->issuer))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "CA %s is retired for issuance since a rotation; the %s issuing "
				     "CA now is the active one in kiln ca list",
				     w->issuer->rec.name, w->issuer->rec.env);
	if (w->issuer->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING,
				     "this process has no access to token %s of CA %s",
				     w->issuer->rec.token, w->issuer->rec.name);
	return kiln_ok();
}

static kiln_result check_key(struct issue_work *w, kiln_diag *d)
{
	const struct kiln_key_desc *k = &w->csr->key;
	char allowed[256];

	if (kiln_policy_key_ok(w->policy, kiln_key_type_name(k->type), k->curve, k->bits))
		return kiln_ok();
	allowed_keys(w->policy, allowed, sizeof(allowed));
	return kiln_diag_set(d, KILN_ERR_POLICY_KEY_ALG,
			     "key %s is not allowed by policy %s v%lld (allowed: %s)", k->name,
			     w->policy->product, (long long)w->policy_version, allowed);
}

static kiln_result check_subject(struct issue_work *w, kiln_diag *d)
{
	const X509_NAME *name = w->csr->subject;

	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : "unknown-attribute";
		char val[65];

		if (kiln_policy_csr_attr_ok(w->policy, sn))
			continue;
		kiln_printable((const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v), val,
			 sizeof(val));
		return kiln_diag_set(d, KILN_ERR_POLICY_SUBJECT,
				     "the CSR subject carries %s=%s, a field policy %s forbids", sn,
				     val, w->policy->product);
	}
	return kiln_ok();
}

static kiln_result device_serial(struct issue_work *w, kiln_diag *d)
{
	const X509_NAME *name = w->csr->subject;
	const char *given = w->prov != NULL ? w->prov->device_serial : w->req->device_serial;
	char shown[65];
	int idx;

	if (given == NULL) {
		const ASN1_STRING *cn;

		idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		if (idx < 0)
			return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL,
					     "no device serial: give one, or put it in the CSR's CN");
		cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
		if (ASN1_STRING_length(cn) <= 0 || (size_t)ASN1_STRING_length(cn) > ISSUE_SERIAL_MAX ||
		    memchr(ASN1_STRING_get0_data(cn), 0, (size_t)ASN1_STRING_length(cn)) != NULL)
			return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL,
					     "the CSR's CN is not a usable device serial");
		memcpy(w->device_serial, ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
		w->device_serial[ASN1_STRING_length(cn)] = '\0';
	} else if (!kiln_is_ok(kiln_strlcpy(w->device_serial, given, sizeof(w->device_serial)))) {
		return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL, "device serial longer than %d bytes",
				     ISSUE_SERIAL_MAX);
	}
	if (!kiln_policy_serial_ok(w->policy, w->device_serial)) {
		kiln_printable(w->device_serial, strlen(w->device_serial), shown, sizeof(shown));
		return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL,
				     "device serial '%s' does not match policy %s's pattern %s", shown,
				     w->policy->product, w->policy->serial_pattern);
	}
	return kiln_ok();
}

static unsigned ku_bits(unsigned kiln_ku)
{
	unsigned ku = 0;

	ku |= (kiln_ku & KILN_KU_DIGITAL_SIGNATURE) ? KU_DIGITAL_SIGNATURE : 0;
	ku |= (kiln_ku & KILN_KU_NON_REPUDIATION) ? KU_NON_REPUDIATION : 0;
	ku |= (kiln_ku & KILN_KU_KEY_ENCIPHERMENT) ? KU_KEY_ENCIPHERMENT : 0;
	ku |= (kiln_ku & KILN_KU_DATA_ENCIPHERMENT) ? KU_DATA_ENCIPHERMENT : 0;
	ku |= (kiln_ku & KILN_KU_KEY_AGREEMENT) ? KU_KEY_AGREEMENT : 0;
	return ku;
}

static void eku_nids(unsigned eku, struct kiln_cert_spec *s)
{
	static const struct {
		unsigned bit;
		int nid;
	} map[] = { { KILN_EKU_CLIENT_AUTH, NID_client_auth },
		    { KILN_EKU_SERVER_AUTH, NID_server_auth },
		    { KILN_EKU_CODE_SIGNING, NID_code_sign },
		    { KILN_EKU_EMAIL_PROTECTION, NID_email_protect } };

	s->n_eku = 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]) && s->n_eku < KILN_CERT_MAX_EKU; i++) {
		if (eku & map[i].bit)
			s->eku[s->n_eku++] = map[i].nid;
	}
}

static kiln_result render_names(struct issue_work *w, const struct kiln_policy_vars *v,
				 kiln_diag *d)
{
	const kiln_policy *p = w->policy;
	struct kiln_name_attr attrs[KILN_POLICY_MAX_ATTRS];

	for (size_t i = 0; i < p->n_subject; i++) {
		if (!kiln_is_ok(kiln_policy_render(p->subject[i].tmpl, v, w->subject_vals[i],
						   sizeof(w->subject_vals[i]))))
			return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL,
					     "subject %s is too long once rendered", p->subject[i].attr);
		attrs[i] = (struct kiln_name_attr){ p->subject[i].attr, w->subject_vals[i] };
	}
	/* Simple names (printable ASCII) are written directly; the others by OpenSSL. */
	if (!kiln_name_simple(attrs, p->n_subject, &w->subject_der, w->subject_text,
			      sizeof(w->subject_text)))
		KILN_GUARD(kiln_name_build(attrs, p->n_subject, &w->subject, d));
	for (size_t i = 0; i < p->n_san_uri && i < KILN_CERT_MAX_SAN; i++) {
		KILN_GUARD(kiln_policy_render(p->san_uri[i], v, w->san_uri[i], sizeof(w->san_uri[i])));
		w->spec.san_uri[w->spec.n_san_uri++] = w->san_uri[i];
	}
	for (size_t i = 0; i < p->n_san_dns && i < KILN_CERT_MAX_SAN; i++) {
		KILN_GUARD(kiln_policy_render(p->san_dns[i], v, w->san_dns[i], sizeof(w->san_dns[i])));
		w->spec.san_dns[w->spec.n_san_dns++] = w->san_dns[i];
	}
	return kiln_ok();
}

static kiln_result build_tbs(struct issue_work *w, kiln_diag *d)
{
	const kiln_policy *p = w->policy;
	struct kiln_policy_vars vars = { w->device_serial, p->product,
					 w->prov != NULL ? w->batch.lot : w->req->lot };
	struct kiln_cert_spec *s = &w->spec;

	KILN_GUARD(render_names(w, &vars, d));
	/*
	 * 128 random bits, unique by the certificates table's primary key in the
	 * transaction that records them: a collision (a chance of n in 2^127
	 * with n certificates recorded) refuses the issuance ("certificate
	 * serial ... already exists") and releases nothing. No lookup before
	 * signing: it was a read per certificate.
	 */
	KILN_GUARD(kiln_serial_new(s->serial));
	kiln_hex_encode(s->serial, KILN_SERIAL_LEN, w->serial_hex);
	(void)snprintf(w->crl_url, sizeof(w->crl_url), "%s/crl/%s.crl", w->ca->public_url,
		       w->issuer->rec.name);
	(void)snprintf(w->ocsp_url, sizeof(w->ocsp_url), "%s/ocsp", w->ca->public_url);
	s->not_before = kiln_now() - BACKDATE_SECONDS;
	s->not_after = s->not_before + BACKDATE_SECONDS + (int64_t)p->validity_days * 86400;
	if (s->not_after > w->issuer->rec.not_after)
		s->not_after = w->issuer->rec.not_after;
	s->subject = w->subject;
	s->subject_der = kiln_buf_view(&w->subject_der);
	s->subject_key = w->csr->pkey;
	s->subject_spki = w->csr->spki;
	s->issuer = w->issuer->cert;
	s->sig_alg = w->issuer->alg;
	s->is_ca = false;
	s->path_len = -1;
	s->key_usage = ku_bits(p->key_usage);
	eku_nids(p->ext_key_usage, s);
	s->crl_url = p->crl_url[0] != '\0' ? p->crl_url : w->crl_url;
	s->ocsp_url = p->ocsp_url[0] != '\0' ? p->ocsp_url : w->ocsp_url;
	return kiln_cert_tbs(s, &w->tbs, d);
}

/*
 * The records, built on the issuer's thread: the transaction itself (on the
 * store's single committer) only runs the inserts, so the group commit is not
 * held up by formatting.
 */
static void fill_device(struct issue_work *w)
{
	const struct kiln_issue_req *req = w->req;
	const struct kiln_provision_req *prov = w->prov;
	struct kiln_device_rec *dev = &w->dev;

	kiln_strtrunc(dev->product, w->policy->product, sizeof(dev->product));
	kiln_strtrunc(dev->serial, w->device_serial, sizeof(dev->serial));
	dev->policy_version = w->policy_version;
	kiln_strtrunc(dev->cert_serial, w->serial_hex, sizeof(dev->cert_serial));
	kiln_strtrunc(dev->status, "active", sizeof(dev->status));
	dev->created = kiln_now();
	if (prov == NULL) {
		kiln_strtrunc(dev->lot, req->lot != NULL ? req->lot : "", sizeof(dev->lot));
		kiln_strtrunc(dev->station, req->station != NULL ? req->station : "",
			      sizeof(dev->station));
		kiln_strtrunc(dev->operator_name,
			      req->operator_name != NULL ? req->operator_name : w->actor,
			      sizeof(dev->operator_name));
		return;
	}
	kiln_strtrunc(dev->lot, w->batch.lot, sizeof(dev->lot));
	kiln_strtrunc(dev->station, prov->station->name, sizeof(dev->station));
	kiln_strtrunc(dev->operator_name, w->batch.opened_by, sizeof(dev->operator_name));
	kiln_strtrunc(dev->components_json, prov->components_json != NULL ? prov->components_json : "",
		      sizeof(dev->components_json));
	if (w->att.has_firmware) {
		kiln_strtrunc(dev->firmware_version, w->att.firmware_version,
			      sizeof(dev->firmware_version));
		kiln_hex_encode(w->att.firmware_sha256, 32, dev->firmware_sha256);
	} else {
		kiln_strtrunc(dev->firmware_version,
			      prov->firmware_version != NULL ? prov->firmware_version : "",
			      sizeof(dev->firmware_version));
	}
	if (prov->evidence != NULL && prov->evidence->type != KILN_ATTEST_NONE)
		kiln_hex_encode(prov->evidence->sha256, 32, dev->attestation_sha256);
}

/*
 * The records, built on the issuer's thread: the transaction itself (on the
 * store's single committer) only runs the inserts, so the group commit is not
 * held up by formatting.
 */
static kiln_result prepare_records(struct issue_work *w)
{
	char fp[65];

	fill_device(w);
	ca_cert_rec_fill(&w->cert, w->serial_hex, w->issuer, "device", w->subject,
			 w->spec.not_before, w->spec.not_after, kiln_buf_view(&w->der));
	if (w->subject == NULL)
		kiln_strtrunc(w->cert.subject, w->subject_text, sizeof(w->cert.subject));
	kiln_strtrunc(w->cert.product, w->policy->product, sizeof(w->cert.product));
	memcpy(w->cert.spki_sha256, w->csr->spki_sha256, 32);
	kiln_hex_encode(w->csr->spki_sha256, 32, fp);
	w->ev.time = w->dev.created;
	kiln_strtrunc(w->ev.type,
		      w->renew != NULL ? "renewal" : w->reprov.device_id > 0 ? "reprovision" : "issuance",
		      sizeof(w->ev.type));
	kiln_strtrunc(w->ev.actor, w->actor, sizeof(w->ev.actor));
	kiln_strtrunc(w->ev.subject, w->serial_hex, sizeof(w->ev.subject));
	w->ev.detail_json = ca_event_json(
		"{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "product", w->policy->product,
		"device", w->device_serial, "policy_version", (json_int_t)w->policy_version, "ca",
		w->issuer->rec.name, "env", w->issuer->rec.env, "spki_sha256", fp, "key",
		w->csr->key.name, "lot", w->dev.lot, "station", w->dev.station, "attestation",
		kiln_attest_type_name(w->policy->attestation.type), "firmware_sha256",
		w->dev.firmware_sha256, "evidence_sha256", w->dev.attestation_sha256);
	KILN_ENSURE(w->ev.detail_json != NULL, KILN_ERR_NOMEM);
	if (w->reprov.device_id > 0) {
		/* A replacement names the record it replaces and the revocation it makes. */
		json_t *j = json_loads(w->ev.detail_json, 0, NULL);

		free(w->ev.detail_json);
		w->ev.detail_json = NULL;
		if (j != NULL && json_object_set_new(j, "replaces", json_integer(w->reprov.device_id)) == 0 &&
		    json_object_set_new(j, "revokes", json_string(w->reprov_cert)) == 0 &&
		    json_object_set_new(j, "reason", json_string(w->reprov.reason)) == 0)
			w->ev.detail_json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
		KILN_ENSURE(w->ev.detail_json != NULL, KILN_ERR_NOMEM);
	}
	if (w->renew != NULL) {
		/* A renewal names the device and the certificate it replaces. */
		free(w->ev.detail_json);
		w->ev.detail_json = ca_event_json(
			"{s:s,s:s,s:I,s:s,s:s,s:s,s:b,s:I}", "product", w->policy->product, "device",
			w->device_serial, "device_id", (json_int_t)w->renew->dev.id, "renews",
			w->renew->old_serial, "ca", w->issuer->rec.name, "spki_sha256", fp,
			"same_key", w->renew->same_key, "policy_version",
			(json_int_t)w->policy_version);
		KILN_ENSURE(w->ev.detail_json != NULL, KILN_ERR_NOMEM);
	}
	return kiln_ok();
}

/* Re-attestation of the same device (superseded) may keep its key; a compromised one may not. */
static bool reprovision_same_key(const struct issue_work *w)
{
	return w->reprov.device_id > 0 && strcmp(w->reprov.reason, "superseded") == 0 &&
	       memcmp(w->csr->spki_sha256, w->reprov_spki, 32) == 0;
}

/* The replaced device's certificate is revoked with the grant's reason (unless it already was). */
static kiln_result reprovision_revoke(struct issue_work *w, kiln_store_tx *tx, kiln_diag *d)
{
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = kiln_store_tx_cert_revoke(tx, w->reprov_cert, w->reprov.reason, 0, &local);
	if (kiln_is_ok(r) || r.code == KILN_ERR_ALREADY_REVOKED)
		return kiln_ok();
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
}

/*
 * The policy the certificate was built under must still be the active one
 * when it is recorded: a policy approved meanwhile (in this process or any
 * other) refuses it, and nothing is released.
 */
static kiln_result check_policy_tx(kiln_store_tx *tx, const struct issue_work *w, kiln_diag *d)
{
	int64_t active = 0;

	KILN_GUARD(kiln_store_tx_policy_version(tx, w->policy->product, &active, d));
	if (active == w->policy_version)
		return kiln_ok();
	if (active == 0)
		return kiln_diag_set(d, KILN_ERR_POLICY_CHANGED,
				     "product %s lost its active policy (v%lld) while this request "
				     "was processed",
				     w->policy->product, (long long)w->policy_version);
	return kiln_diag_set(d, KILN_ERR_POLICY_CHANGED,
			     "policy %s changed from v%lld to v%lld while this request was "
			     "processed; retry",
			     w->policy->product, (long long)w->policy_version, (long long)active);
}

static kiln_result commit_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct issue_work *w = ctx;
	char holder[KILN_STORE_SERIAL_HEX];
	bool seen = false;

	KILN_GUARD(check_policy_tx(tx, w, d));
	if (w->prov != NULL) {
		int64_t issued = 0;

		/* Checked before, and again here where it counts: atomically with the issuance. */
		KILN_GUARD(kiln_store_tx_nonce_use(tx, w->nonce_sha256, w->prov->station->name,
						   w->dev.created, w->request_sha256, w->serial_hex,
						   NULL, d));
		KILN_GUARD(kiln_store_tx_batch_consume(tx, w->batch.lot, w->policy->product, &issued,
						       d));
		/* The station's next nonce, while the lot has budget after this device. */
		w->next_made = false;
		if (w->prov->next != NULL && issued < w->batch.quantity) {
			KILN_GUARD(kiln_store_tx_nonce_add(tx, &w->next_nonce, d));
			w->next_made = true;
		}
	}
	/*
	 * A key is one device's identity: a key certified before is a cloned or
	 * replayed device, except the renewed device's own key where its policy allows.
	 */
	if (w->reprov.device_id > 0)
		KILN_GUARD(reprovision_revoke(w, tx, d));
	if ((w->renew == NULL || !w->renew->same_key) && !reprovision_same_key(w)) {
		KILN_GUARD(kiln_store_tx_key_seen(tx, w->csr->spki_sha256, &seen, holder, d));
		if (seen)
			return kiln_diag_set(d, KILN_ERR_KEY_DUPLICATE,
					     "this public key was already certified (certificate %s)",
					     holder);
	}
	if (w->renew != NULL) {
		w->cert.device_id = w->renew->dev.id;
		KILN_GUARD(kiln_store_tx_cert_add(tx, &w->cert, d));
		KILN_GUARD(kiln_store_tx_device_set_cert(tx, w->renew->dev.id, w->serial_hex, d));
		return kiln_store_tx_event_add(tx, &w->ev, d);
	}
	if (w->reprov.device_id > 0) {
		w->dev.replaces = w->reprov.device_id;
		KILN_GUARD(kiln_store_tx_device_replace(tx, w->reprov.device_id, &w->dev, d));
	} else {
		KILN_GUARD(kiln_store_tx_device_add(tx, &w->dev, d));
	}
	w->cert.device_id = w->dev.id;
	KILN_GUARD(kiln_store_tx_cert_add(tx, &w->cert, d));
	return kiln_store_tx_event_add(tx, &w->ev, d);
}

static const char *refusal_type(kiln_err code)
{
	if (code == KILN_ERR_DEVICE_DUPLICATE || code == KILN_ERR_KEY_DUPLICATE)
		return "anomaly";
	/* Refusals of the request are rejections; our own faults are failures. */
	return kiln_err_info(code)->http_status < 500 ? "rejection" : "failure";
}

void issue_record_refusal(struct issue_work *w, const char *operation, kiln_slice request,
			  kiln_result why, const kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	uint8_t h[32];
	char hex[65] = "", serial[65];
	unsigned int hl = 0;

	if (request.len > 0 && EVP_Digest(request.ptr, request.len, h, &hl, EVP_sha256(), NULL) == 1)
		kiln_hex_encode(h, 32, hex);
	kiln_printable(w->device_serial, strlen(w->device_serial), serial, sizeof(serial));
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, refusal_type(why.code), sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->actor != NULL ? w->actor : "", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->product != NULL ? w->product : "", sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:s,s:s,s:s,s:s,s:s,s:s}", "reason",
				       kiln_err_info(why.code)->slug, "message",
				       kiln_diag_message(d, why), "request_sha256", hex, "device",
				       serial, "operation", operation, "lot", w->batch.lot);
	if (ev.detail_json == NULL || !kiln_is_ok(kiln_store_event_add(w->ca->store, &ev, NULL)))
		kiln_log_error(w->ca->log, "could not record the refusal of a %s request", operation);
	free(ev.detail_json);
}

kiln_result ca_release(const struct ca_entry *issuer, kiln_slice der, const char *serial_hex,
		       struct kiln_issue_result *res)
{
	KILN_GUARD(kiln_buf_append_slice(&res->cert_der, der));
	KILN_GUARD(ca_der_to_pem(der, &res->chain_pem));
	KILN_GUARD(kiln_buf_append_slice(&res->chain_pem, kiln_buf_view(&issuer->chain_pem)));
	kiln_strtrunc(res->serial, serial_hex, sizeof(res->serial));
	return kiln_ok();
}

kiln_result issue_run(struct issue_work *w, struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_lint_profile prof;
	kiln_result r;

	KILN_GUARD(kiln_csr_parse(w->prov != NULL ? w->prov->csr : w->req->csr, &w->csr, d));
	KILN_GUARD(check_key(w, d));
	if (w->renew != NULL)
		KILN_GUARD(renew_check_csr(w, d));
	else
		KILN_GUARD(check_subject(w, d));
	KILN_GUARD(device_serial(w, d));
	if (w->prov != NULL)
		KILN_GUARD(provision_attest(w, d));
	KILN_GUARD(build_tbs(w, d));
	prof = (struct kiln_lint_profile){ false, -1, w->spec.key_usage,
					   (int64_t)w->policy->validity_days + 1, w->issuer->cert,
					   w->issuer->alg, w->policy, w->csr->pkey, w->csr->spki };
	KILN_GUARD(ca_sign_cert(w->issuer->token, &w->issuer->key, kiln_buf_view(&w->tbs), &prof,
				false, "certificate", &w->der, d));
	KILN_GUARD(prepare_records(w));
	r = kiln_store_write(w->ca->store, commit_tx, w, d);
	if (r.code == KILN_ERR_POLICY_CHANGED)
		ca_policy_forget(w->ca, w->policy->product);
	KILN_GUARD(r);
	KILN_GUARD(ca_release(w->issuer, kiln_buf_view(&w->der), w->serial_hex, res));
	res->device_id = w->renew != NULL ? w->renew->dev.id : w->dev.id;
	res->policy_version = w->policy_version;
	return kiln_ok();
}

static kiln_result operator_issue(struct issue_work *w, struct kiln_issue_result *res,
				  kiln_diag *d)
{
	KILN_GUARD((w->policy_read ? ca_policy_active : ca_policy_current)(
		w->ca, w->product, &w->policy, &w->policy_version, d));
	KILN_GUARD(issue_resolve(w, w->req->ca_name, d));
	if (w->policy->attestation.type != KILN_ATTEST_NONE)
		return kiln_diag_set(d, KILN_ERR_ATTEST_REQUIRED,
				     "policy %s requires %s attestation: provision the device through "
				     "kiln serve, not kiln issue",
				     w->policy->product, kiln_attest_type_name(w->policy->attestation.type));
	return issue_run(w, res, d);
}

void issue_work_init(struct issue_work *w, kiln_ca *ca)
{
	w->ca = ca;
	kiln_buf_init(&w->subject_der, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&w->tbs, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&w->der, KILN_BUF_DEFAULT_MAX);
}

void issue_work_cleanup(struct issue_work *w)
{
	free(w->ev.detail_json);
	kiln_csr_free(w->csr);
	X509_NAME_free(w->subject);
	kiln_buf_cleanup(&w->subject_der);
	kiln_buf_cleanup(&w->tbs);
	kiln_buf_cleanup(&w->der);
}

kiln_result kiln_ca_issue(kiln_ca *ca, const struct kiln_issue_req *req,
			  struct kiln_issue_result *res, kiln_diag *d)
{
	struct issue_work *w;
	kiln_diag local;
	kiln_result r;

	if (req->product == NULL || req->actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "an issuance request needs a product and an actor");
	w = calloc(1, sizeof(*w));
	KILN_ENSURE(w != NULL, KILN_ERR_NOMEM);
	for (int attempt = 0;; attempt++) {
		issue_work_init(w, ca);
		w->req = req;
		w->actor = req->actor;
		w->product = req->product;
		w->policy_read = attempt > 0;
		kiln_diag_clear(&local);
		r = operator_issue(w, res, &local);
		/*
		 * Built under a policy replaced meanwhile: again, under the new
		 * one (twice at most; policy changes are rare, governed events).
		 */
		if (r.code != KILN_ERR_POLICY_CHANGED || attempt == 2)
			break;
		issue_work_cleanup(w);
		memset(w, 0, sizeof(*w));
	}
	if (!kiln_is_ok(r)) {
		kiln_buf_reset(&res->cert_der);
		kiln_buf_reset(&res->chain_pem);
		issue_record_refusal(w, "issue", req->csr, r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	issue_work_cleanup(w);
	free(w);
	return r;
}

void kiln_issue_result_init(struct kiln_issue_result *r)
{
	memset(r, 0, sizeof(*r));
	kiln_buf_init(&r->cert_der, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&r->chain_pem, KILN_BUF_DEFAULT_MAX);
}

void kiln_issue_result_cleanup(struct kiln_issue_result *r)
{
	kiln_buf_cleanup(&r->cert_der);
	kiln_buf_cleanup(&r->chain_pem);
}
