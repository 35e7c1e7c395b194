/*
 * The factory path (docs/protocol.md). begin: a single-use nonce bound to the
 * station, the lot and an expiry. finish: nonce, lot and station checked,
 * the device's evidence verified against the product policy, then the
 * shared issuance pipeline, whose commit also uses the nonce and takes one
 * unit of the lot's budget. The same request sent twice gets the same
 * certificate; any other second use of a nonce is a replay.
 */
#include "ca_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kiln_result sha256(kiln_slice in, uint8_t out[32])
{
	KILN_ENSURE(EVP_Digest(in.ptr, in.len, out, NULL, EVP_sha256(), NULL) == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* The station's environment must be the lot's: a test identity never touches production. */
static kiln_result check_station_env(const struct kiln_station *st, kiln_env env, const char *lot,
				     kiln_diag *d)
{
	if (st->env == NULL || st->env[0] == '\0' || strcmp(st->env, kiln_env_name(env)) == 0)
		return kiln_ok();
	return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
			     "identity %s acts in %s; lot %s is %s: production and test are strictly apart",
			     st->name, st->env, lot, kiln_env_name(env));
}

/* The open lot, assigned to this station (or to any), and its product's policy. */
static kiln_result resolve_lot(kiln_ca *ca, const char *lot, const struct kiln_station *st,
			       struct kiln_batch_rec *batch, const kiln_policy **policy,
			       int64_t *version, kiln_diag *d)
{
	KILN_GUARD(kiln_store_batch_get(ca->store, lot, batch, d));
	if (strcmp(batch->status, "open") != 0)
		return kiln_diag_set(d, KILN_ERR_BATCH_CLOSED, "batch %s is closed", batch->lot);
	if (batch->issued >= batch->quantity)
		return kiln_diag_set(d, KILN_ERR_BATCH_QUOTA,
				     "batch %s has issued all %lld of its quantity", batch->lot,
				     (long long)batch->quantity);
	if (batch->station[0] != '\0' && strcmp(batch->station, st->name) != 0)
		return kiln_diag_set(d, KILN_ERR_FORBIDDEN,
				     "batch %s is assigned to station %s, not %s", batch->lot,
				     batch->station, st->name);
	KILN_GUARD(ca_policy_active(ca, batch->product, policy, version, d));
	return check_station_env(st, (*policy)->env, batch->lot, d);
}

static kiln_result begin_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_nonce_add(tx, ctx, d);
}

/* A fresh nonce for the station and lot: its bytes to out, its record (digest, binding, expiry) to n. */
static kiln_result nonce_make(const char *station, const char *lot, int64_t ttl_s,
			      uint8_t out[KILN_NONCE_LEN], struct kiln_nonce_rec *n)
{
	int64_t now = kiln_now();

	if (ttl_s <= 0 || ttl_s > 3600)
		ttl_s = KILN_NONCE_TTL_DEFAULT;
	memset(n, 0, sizeof(*n));
	KILN_GUARD(kiln_random(out, KILN_NONCE_LEN));
	KILN_GUARD(sha256(kiln_slice_of(out, KILN_NONCE_LEN), n->nonce_sha256));
	kiln_strtrunc(n->station, station, sizeof(n->station));
	kiln_strtrunc(n->lot, lot, sizeof(n->lot));
	n->issued = now;
	n->expires = now + ttl_s;
	return kiln_ok();
}

static kiln_result begin(kiln_ca *ca, const char *lot, const struct kiln_station *st, int64_t ttl_s,
			 struct kiln_begin_result *out, kiln_diag *d)
{
	struct kiln_batch_rec batch = { 0 };
	struct kiln_nonce_rec n = { 0 };
	const kiln_policy *policy = NULL;
	int64_t version = 0;
	kiln_result r;

	KILN_TRY(r, resolve_lot(ca, lot, st, &batch, &policy, &version, d));
	KILN_TRY(r, nonce_make(st->name, batch.lot, ttl_s, out->nonce, &n));
	/* Lazy: a nonce lost in a crash costs the device a new begin; its use commits durably. */
	KILN_TRY(r, kiln_store_write_lazy(ca->store, begin_tx, &n, d));
	out->expires = n.expires;
	kiln_strtrunc(out->lot, batch.lot, sizeof(out->lot));
	kiln_strtrunc(out->product, batch.product, sizeof(out->product));
	out->attestation = kiln_attest_type_name(policy->attestation.type);
out:
	if (!kiln_is_ok(r))
		kiln_wipe(out->nonce, sizeof(out->nonce));
	return r;
}

kiln_result kiln_ca_provision_begin(kiln_ca *ca, const char *lot, const struct kiln_station *st,
				    int64_t ttl_s, struct kiln_begin_result *out, kiln_diag *d)
{
	struct issue_work *w;
	kiln_diag local;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	KILN_ENSURE(lot != NULL && st != NULL && st->name != NULL, KILN_ERR_ARG);
	kiln_diag_clear(&local);
	r = begin(ca, lot, st, ttl_s, out, &local);
	if (kiln_is_ok(r))
		return r;
	w = calloc(1, sizeof(*w));
	if (w != NULL) {
		w->ca = ca;
		w->actor = st->name;
		kiln_strtrunc(w->batch.lot, lot, sizeof(w->batch.lot));
		issue_record_refusal(w, "provision-begin", kiln_slice_of(NULL, 0), r, &local);
		free(w);
	}
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
}

/* SHA-256 over the request's parts, each with a 4-byte length: what "the same request" means. */
static kiln_result request_digest(const struct kiln_provision_req *req, uint8_t out[32])
{
	const char *parts[3] = { req->device_serial, req->firmware_version, req->components_json };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	uint8_t len[4];

	ok = ok && EVP_DigestUpdate(ctx, req->nonce, KILN_NONCE_LEN) == 1;
	len[0] = (uint8_t)(req->csr.len >> 24);
	len[1] = (uint8_t)(req->csr.len >> 16);
	len[2] = (uint8_t)(req->csr.len >> 8);
	len[3] = (uint8_t)req->csr.len;
	ok = ok && EVP_DigestUpdate(ctx, len, 4) == 1 &&
	     EVP_DigestUpdate(ctx, req->csr.ptr, req->csr.len) == 1;
	ok = ok && EVP_DigestUpdate(ctx, req->evidence != NULL ? req->evidence->sha256 : (uint8_t[32]){ 0 },
				    32) == 1;
	for (size_t i = 0; i < 3 && ok; i++) {
		size_t n = parts[i] != NULL ? strlen(parts[i]) : 0;

		len[0] = (uint8_t)(n >> 24);
		len[1] = (uint8_t)(n >> 16);
		len[2] = (uint8_t)(n >> 8);
		len[3] = (uint8_t)n;
		ok = EVP_DigestUpdate(ctx, len, 4) == 1 &&
		     (n == 0 || EVP_DigestUpdate(ctx, parts[i], n) == 1);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/*
 * The nonce as the store has it. A nonce already used by this very request is
 * answered with the certificate that request got (*repeat); every other state
 * is refused with the precise reason. The commit checks again, atomically.
 */
static kiln_result check_nonce(struct issue_work *w, struct kiln_nonce_rec *n, bool *repeat,
			       kiln_diag *d)
{
	const struct kiln_station *st = w->prov->station;

	*repeat = false;
	KILN_GUARD(kiln_store_nonce_get(w->ca->store, w->nonce_sha256, n, d));
	if (strcmp(n->station, st->name) != 0)
		return kiln_diag_set(d, KILN_ERR_NONCE_STATION,
				     "the nonce was issued to station %s, not %s", n->station, st->name);
	if (n->used != 0) {
		if (memcmp(n->request_sha256, w->request_sha256, 32) == 0) {
			*repeat = true;
			return kiln_ok();
		}
		return kiln_diag_set(d, KILN_ERR_NONCE_REPLAY,
				     "the nonce was already used for another request (certificate %s)",
				     n->cert_serial);
	}
	if (kiln_now() >= n->expires) {
		char when[KILN_TIME_STR];

		kiln_time_format(n->expires, when);
		return kiln_diag_set(d, KILN_ERR_NONCE_EXPIRED, "the nonce expired at %s", when);
	}
	return kiln_ok();
}

/* The answer to a request sent again: the certificate it got the first time. */
static kiln_result repeat_answer(struct issue_work *w, const struct kiln_nonce_rec *n,
				 struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_cert_rec cert = { 0 };
	const struct ca_entry *issuer = NULL;
	kiln_result r;

	KILN_TRY(r, kiln_store_cert_get(w->ca->store, n->cert_serial, &cert, d));
	for (size_t i = 0; i < w->ca->n_cas; i++) {
		if (w->ca->cas[i].rec.id == cert.ca_id)
			issuer = &w->ca->cas[i];
	}
	if (issuer == NULL) {
		r = kiln_diag_set(d, KILN_ERR_STORE, "certificate %s names an unknown CA", cert.serial);
		goto out;
	}
	KILN_TRY(r, ca_release(issuer, kiln_slice_of(cert.der, cert.der_len), cert.serial, res));
	res->device_id = cert.device_id;
out:
	kiln_cert_rec_cleanup(&cert);
	return r;
}

kiln_result provision_attest(struct issue_work *w, kiln_diag *d)
{
	const struct kiln_provision_req *req = w->prov;
	const X509_NAME *name = w->csr->subject;
	int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	struct kiln_attest_ctx ctx;
	uint8_t activation[32];
	char claimed[65], cn[65];
	kiln_result r;

	/* A CSR that names a device names this one. */
	if (idx >= 0) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));

		if ((size_t)ASN1_STRING_length(v) != strlen(w->device_serial) ||
		    memcmp(ASN1_STRING_get0_data(v), w->device_serial, strlen(w->device_serial)) != 0) {
			kiln_printable((const char *)ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v),
				    cn, sizeof(cn));
			return kiln_diag_set(d, KILN_ERR_POLICY_SUBJECT,
					     "the CSR's CN '%s' is not the device serial '%s'", cn,
					     w->device_serial);
		}
	}
	ctx = (struct kiln_attest_ctx){ w->policy, req->nonce, w->prov->csr, w->csr->pkey,
					w->device_serial, kiln_now(), NULL };
	if (w->policy->attestation.type == KILN_ATTEST_TPM2) {
		r = kiln_store_activation_get(w->ca->store, w->nonce_sha256, activation, NULL);
		if (kiln_is_ok(r))
			ctx.activation_sha256 = activation;
		else if (r.code != KILN_ERR_NOT_FOUND)
			return kiln_diag_set(d, r.code, "reading the nonce's credential activation");
	}
	r = kiln_attest_verify(req->evidence, &ctx, &w->att, d);
	kiln_wipe(activation, sizeof(activation));
	KILN_GUARD(r);
	if (w->att.has_firmware && req->firmware_version != NULL && req->firmware_version[0] != '\0' &&
	    strcmp(req->firmware_version, w->att.firmware_version) != 0) {
		kiln_printable(req->firmware_version, strlen(req->firmware_version), claimed,
			    sizeof(claimed));
		return kiln_diag_set(d, KILN_ERR_ATTEST_FIRMWARE,
				     "the device claims firmware %s but measured %s", claimed,
				     w->att.firmware_version);
	}
	return kiln_ok();
}

/* An engineer's open grant for this device serial: this provisioning replaces that device. */
static kiln_result reprovision_lookup(struct issue_work *w, kiln_diag *d)
{
	struct kiln_device_rec old = { 0 };
	struct kiln_cert_rec cert = { 0 };
	char ref[32];
	kiln_result r;

	r = kiln_store_reprovision_open_get(w->ca->store, w->policy->product, w->prov->device_serial,
					    &w->reprov, NULL);
	if (r.code == KILN_ERR_NOT_FOUND || r.code == KILN_ERR_ARG) {
		memset(&w->reprov, 0, sizeof(w->reprov));
		return kiln_ok();
	}
	KILN_GUARD(r);
	(void)snprintf(ref, sizeof(ref), "%lld", (long long)w->reprov.device_id);
	KILN_GUARD(kiln_store_device_get(w->ca->store, ref, &old, d));
	kiln_strtrunc(w->reprov_cert, old.cert_serial, sizeof(w->reprov_cert));
	r = kiln_store_cert_get(w->ca->store, old.cert_serial, &cert, d);
	if (kiln_is_ok(r))
		memcpy(w->reprov_spki, cert.spki_sha256, 32);
	kiln_cert_rec_cleanup(&cert);
	return r;
}

static kiln_result finish(struct issue_work *w, struct kiln_issue_result *res, bool *repeated,
			  kiln_diag *d)
{
	const struct kiln_provision_req *req = w->prov;
	struct kiln_nonce_rec n = { 0 };
	kiln_result r;

	KILN_GUARD(sha256(kiln_slice_of(req->nonce, KILN_NONCE_LEN), w->nonce_sha256));
	KILN_GUARD(request_digest(req, w->request_sha256));
	KILN_GUARD(check_nonce(w, &n, repeated, d));
	if (*repeated)
		return repeat_answer(w, &n, res, d);
	KILN_GUARD(resolve_lot(w->ca, n.lot, req->station, &w->batch, &w->policy,
			       &w->policy_version, d));
	w->product = w->policy->product;
	if (req->device_serial == NULL || req->device_serial[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_POLICY_SERIAL, "the request names no device serial");
	KILN_GUARD(issue_resolve(w, NULL, d));
	KILN_GUARD(reprovision_lookup(w, d));
	if (req->next != NULL)
		KILN_GUARD(nonce_make(req->station->name, w->batch.lot, req->next_ttl_s,
				      req->next->nonce, &w->next_nonce));
	r = issue_run(w, res, d);
	if (kiln_is_ok(r) && w->next_made) {
		req->next->expires = w->next_nonce.expires;
		kiln_strtrunc(req->next->lot, w->batch.lot, sizeof(req->next->lot));
		kiln_strtrunc(req->next->product, w->policy->product, sizeof(req->next->product));
		req->next->attestation = kiln_attest_type_name(w->policy->attestation.type);
	}
	/*
	 * A copy of this very request, sent while this one was being signed,
	 * committed first: this one is answered as a repeat, not as a replay.
	 */
	if (r.code == KILN_ERR_NONCE_REPLAY &&
	    kiln_is_ok(kiln_store_nonce_get(w->ca->store, w->nonce_sha256, &n, NULL)) &&
	    n.used != 0 && memcmp(n.request_sha256, w->request_sha256, 32) == 0) {
		kiln_diag_clear(d);
		*repeated = true;
		return repeat_answer(w, &n, res, d);
	}
	return r;
}

kiln_result kiln_ca_provision_finish(kiln_ca *ca, const struct kiln_provision_req *req,
				     struct kiln_issue_result *res, bool *repeated, kiln_diag *d)
{
	struct issue_work *w;
	kiln_diag local;
	kiln_result r;

	*repeated = false;
	if (req->next != NULL)
		memset(req->next, 0, sizeof(*req->next));
	if (req->station == NULL || req->station->name == NULL || req->nonce == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "a provisioning request needs a station and a nonce");
	w = calloc(1, sizeof(*w));
	KILN_ENSURE(w != NULL, KILN_ERR_NOMEM);
	issue_work_init(w, ca);
	w->prov = req;
	w->actor = req->station->name;
	kiln_diag_clear(&local);
	r = finish(w, res, repeated, &local);
	/* A next nonce the commit did not record (or a refusal) is nothing: forget its bytes. */
	if (req->next != NULL && req->next->expires == 0)
		kiln_wipe(req->next->nonce, sizeof(req->next->nonce));
	if (!kiln_is_ok(r)) {
		kiln_buf_reset(&res->cert_der);
		kiln_buf_reset(&res->chain_pem);
		issue_record_refusal(w, "provision", req->csr, r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	issue_work_cleanup(w);
	free(w);
	return r;
}

/* ------------------------------------------------------------ TPM activation */

void kiln_activate_result_init(struct kiln_activate_result *r)
{
	memset(r, 0, sizeof(*r));
	kiln_tpm2_activation_init(&r->act);
}

void kiln_activate_result_cleanup(struct kiln_activate_result *r)
{
	if (r != NULL)
		kiln_tpm2_activation_cleanup(&r->act);
}

struct activate_tx {
	const uint8_t *nonce_sha256;
	const uint8_t *binding;
	struct kiln_event_rec ev;
};

static kiln_result activate_tx_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct activate_tx *a = ctx;

	KILN_GUARD(kiln_store_tx_activation_add(tx, a->nonce_sha256, a->binding, d));
	return kiln_store_tx_event_add(tx, &a->ev, d);
}

/* The policy's PCR indexes, ascending: what the device's quote must select. */
static void policy_pcrs(const kiln_policy *p, struct kiln_activate_result *res)
{
	res->n_pcrs = 0;
	for (unsigned idx = 0; idx < 24; idx++)
		for (size_t i = 0; i < p->attestation.n_pcrs; i++)
			if (p->attestation.pcrs[i].index == idx && res->n_pcrs < KILN_POLICY_MAX_PCRS)
				res->pcrs[res->n_pcrs++] = idx;
}

static kiln_result activate(struct issue_work *w, const struct kiln_activate_req *req,
			    struct kiln_activate_result *res, kiln_diag *d)
{
	struct kiln_nonce_rec n = { 0 };
	struct activate_tx a = { 0 };
	struct kiln_tpm2_activation_req areq = { req->ek_cert, req->ek_intermediate, req->ak_public };
	bool repeat = false;
	kiln_result r;

	KILN_GUARD(sha256(kiln_slice_of(req->nonce, KILN_NONCE_LEN), w->nonce_sha256));
	memset(w->request_sha256, 0xff, sizeof(w->request_sha256)); /* matches no finish */
	KILN_GUARD(check_nonce(w, &n, &repeat, d));
	if (repeat || n.used != 0)
		return kiln_diag_set(d, KILN_ERR_NONCE_REPLAY, "the nonce was already used");
	KILN_GUARD(resolve_lot(w->ca, n.lot, req->station, &w->batch, &w->policy, &w->policy_version,
			       d));
	w->product = w->policy->product;
	if (w->policy->attestation.type != KILN_ATTEST_TPM2)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "product %s uses %s attestation; provision/activate is for tpm2 products",
				     w->product, kiln_attest_type_name(w->policy->attestation.type));
	KILN_GUARD(kiln_tpm2_activation_make(w->policy, &areq, kiln_now(), &res->act, d));
	policy_pcrs(w->policy, res);
	a.nonce_sha256 = w->nonce_sha256;
	a.binding = res->act.binding_sha256;
	a.ev.time = kiln_now();
	kiln_strtrunc(a.ev.type, "activation", sizeof(a.ev.type));
	kiln_strtrunc(a.ev.actor, req->station->name, sizeof(a.ev.actor));
	kiln_strtrunc(a.ev.subject, w->product, sizeof(a.ev.subject));
	a.ev.detail_json = ca_event_json("{s:s,s:s}", "lot", w->batch.lot, "operation",
					 "provision-activate");
	KILN_ENSURE(a.ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_write(w->ca->store, activate_tx_fn, &a, d);
	free(a.ev.detail_json);
	return r;
}

kiln_result kiln_ca_provision_activate(kiln_ca *ca, const struct kiln_activate_req *req,
				       struct kiln_activate_result *res, kiln_diag *d)
{
	struct kiln_provision_req pr = { 0 };
	struct issue_work *w;
	kiln_diag local;
	kiln_result r;

	if (req == NULL || req->station == NULL || req->station->name == NULL || req->nonce == NULL ||
	    res == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "an activation request needs a station and a nonce");
	w = calloc(1, sizeof(*w));
	KILN_ENSURE(w != NULL, KILN_ERR_NOMEM);
	pr.station = req->station;
	pr.nonce = req->nonce;
	issue_work_init(w, ca);
	w->prov = &pr;
	w->actor = req->station->name;
	kiln_diag_clear(&local);
	r = activate(w, req, res, &local);
	if (!kiln_is_ok(r)) {
		kiln_tpm2_activation_cleanup(&res->act);
		kiln_tpm2_activation_init(&res->act);
		issue_record_refusal(w, "provision-activate", req->ak_public, r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	issue_work_cleanup(w);
	free(w);
	return r;
}
