/*
 * Renewal of a device identity (EST simplereenroll). The device proves in
 * the TLS handshake that it holds the key of its current certificate; here
 * that certificate is checked against kiln's own issuing CAs, its inventory
 * record, its device and the product policy's renewal rules, and then the
 * shared issuance pipeline signs and commits the new certificate.
 */
#include "ca_impl.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The production or test issuing CA that signed cert, or NULL. */
static struct ca_entry *issuer_of(kiln_ca *ca, const X509 *cert)
{
	for (size_t i = 0; i < ca->n_cas; i++) {
		struct ca_entry *e = &ca->cas[i];

		if (e->is_root || (e->env != KILN_ENV_PRODUCTION && e->env != KILN_ENV_TEST))
			continue;
		if (X509_check_issued(e->cert, (X509 *)cert) == X509_V_OK &&
		    kiln_is_ok(kiln_cert_check_signature(cert, e->cert)))
			return e;
	}
	return NULL;
}

static kiln_result check_time(const X509 *cert, const char *serial, kiln_diag *d)
{
	const ASN1_TIME *nb = X509_get0_notBefore(cert), *na = X509_get0_notAfter(cert);

	if (X509_cmp_current_time(nb) > 0)
		return kiln_diag_set(d, KILN_ERR_CERT_EXPIRED, "certificate %s is not yet valid",
				     serial);
	if (X509_cmp_current_time(na) < 0)
		return kiln_diag_set(d, KILN_ERR_CERT_EXPIRED,
				     "certificate %s has expired: re-provision the device", serial);
	return kiln_ok();
}

/* The certificate's inventory record and its device, both in a state that may renew. */
static kiln_result check_records(kiln_ca *ca, struct renew_state *rs, struct kiln_cert_rec *rec,
				 kiln_diag *d)
{
	char ref[32];
	kiln_result r;

	r = kiln_store_cert_get(ca->store, rs->old_serial, rec, d);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_CERT_UNTRUSTED,
				     "certificate %s is not in kiln's inventory", rs->old_serial);
	KILN_GUARD(r);
	if (strcmp(rec->kind, "device") != 0 || rec->device_id <= 0)
		return kiln_diag_set(d, KILN_ERR_CERT_UNTRUSTED,
				     "certificate %s is a %s certificate, not a device's", rs->old_serial,
				     rec->kind);
	if (strcmp(rec->status, "valid") != 0)
		return kiln_diag_set(d, KILN_ERR_CERT_REVOKED, "certificate %s is %s", rs->old_serial,
				     rec->status);
	(void)snprintf(ref, sizeof(ref), "%lld", (long long)rec->device_id);
	KILN_GUARD(kiln_store_device_get(ca->store, ref, &rs->dev, d));
	if (strcmp(rs->dev.status, "retired") == 0)
		return kiln_diag_set(d, KILN_ERR_DEVICE_RETIRED, "device %s/%s is retired",
				     rs->dev.product, rs->dev.serial);
	if (strcmp(rs->dev.status, "active") != 0)
		return kiln_diag_set(d, KILN_ERR_CERT_REVOKED, "device %s/%s is %s", rs->dev.product,
				     rs->dev.serial, rs->dev.status);
	memcpy(rs->old_spki_sha256, rec->spki_sha256, 32);
	return kiln_ok();
}

static kiln_result check_rules(struct issue_work *w, const struct renew_state *rs, kiln_diag *d)
{
	const struct kiln_policy_renewal *rn = &w->policy->renewal;
	int64_t not_after = 0;
	struct tm tm;

	if (rn->window_days > 0 &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(rs->current), &tm) == 1) {
		char opens[KILN_TIME_STR];

		not_after = (int64_t)timegm(&tm);
		if (kiln_now() < not_after - (int64_t)rn->window_days * 86400) {
			kiln_time_format(not_after - (int64_t)rn->window_days * 86400, opens);
			return kiln_diag_set(d, KILN_ERR_RENEWAL_WINDOW,
					     "policy %s renews in the last %u days of validity: "
					     "certificate %s may renew from %s",
					     w->policy->product, rn->window_days, rs->old_serial, opens);
		}
	}
	if (rn->min_firmware_version[0] != '\0' &&
	    kiln_policy_version_cmp(rs->dev.firmware_version, rn->min_firmware_version) < 0)
		return kiln_diag_set(d, KILN_ERR_RENEWAL_FIRMWARE,
				     "device %s/%s attested firmware %s, below the policy's minimum "
				     "%s: it must re-attest (kiln device reprovision, then provision)",
				     rs->dev.product, rs->dev.serial,
				     rs->dev.firmware_version[0] ? rs->dev.firmware_version : "(none)",
				     rn->min_firmware_version);
	return kiln_ok();
}

kiln_result renew_check_csr(struct issue_work *w, kiln_diag *d)
{
	struct renew_state *rs = (struct renew_state *)w->renew;
	const X509_NAME *want = X509_get_subject_name(rs->current);
	const X509_NAME *got = w->csr->subject;
	int idx = X509_NAME_get_index_by_NID(got, NID_commonName, -1);
	bool same = X509_NAME_cmp(want, got) == 0;

	/* RFC 7030 4.2.2: the same subject; or, as in first issuance, CN = the device serial. */
	if (!same) {
		const ASN1_STRING *cn = idx >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(got, idx))
						 : NULL;
		char shown[65];

		if (cn == NULL || X509_NAME_entry_count(got) != 1 ||
		    (size_t)ASN1_STRING_length(cn) != strlen(rs->dev.serial) ||
		    memcmp(ASN1_STRING_get0_data(cn), rs->dev.serial, strlen(rs->dev.serial)) != 0) {
			char *line = X509_NAME_oneline(got, NULL, 0);

			kiln_printable(line != NULL ? line : "?", line != NULL ? strlen(line) : 1, shown,
				    sizeof(shown));
			OPENSSL_free(line);
			return kiln_diag_set(d, KILN_ERR_RENEWAL_SUBJECT,
					     "the renewal asks for subject %s; certificate %s is for "
					     "device %s", shown, rs->old_serial, rs->dev.serial);
		}
	}
	rs->same_key = memcmp(w->csr->spki_sha256, rs->old_spki_sha256, 32) == 0;
	if (rs->same_key && w->policy->renewal.require_new_key)
		return kiln_diag_set(d, KILN_ERR_RENEWAL_KEY,
				     "policy %s requires a new key at renewal; the request reuses the "
				     "key of certificate %s", w->policy->product, rs->old_serial);
	return kiln_ok();
}

static kiln_result renew(struct issue_work *w, struct renew_state *rs, struct kiln_issue_req *ir,
			 struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_cert_rec rec = { 0 };
	struct ca_entry *issuer;
	kiln_result r;

	issuer = issuer_of(w->ca, rs->current);
	if (issuer == NULL)
		return kiln_diag_set(d, KILN_ERR_CERT_UNTRUSTED,
				     "certificate %s was not issued by a kiln production or test "
				     "issuing CA", rs->old_serial);
	KILN_GUARD(check_time(rs->current, rs->old_serial, d));
	r = check_records(w->ca, rs, &rec, d);
	kiln_cert_rec_cleanup(&rec);
	KILN_GUARD(r);
	kiln_strtrunc(w->device_serial, rs->dev.serial, sizeof(w->device_serial));
	w->product = rs->dev.product;
	if (ir->product != NULL && strcmp(ir->product, rs->dev.product) != 0)
		return kiln_diag_set(d, KILN_ERR_FORBIDDEN,
				     "certificate %s belongs to product %s, not %s", rs->old_serial,
				     rs->dev.product, ir->product);
	ir->product = rs->dev.product;
	ir->device_serial = rs->dev.serial;
	ir->lot = rs->dev.lot;
	ir->station = rs->dev.station;
	KILN_GUARD(ca_policy_active(w->ca, rs->dev.product, &w->policy, &w->policy_version, d));
	/*
	 * The environment's active issuing CA (after a rotation, not necessarily
	 * the one that issued the current certificate), as long as the policy's
	 * environment still is the certificate's.
	 */
	if (issuer->env != w->policy->env)
		return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
				     "product %s is %s, certificate %s is from %s: production and "
				     "test are strictly apart", w->policy->product,
				     kiln_env_name(w->policy->env), rs->old_serial, issuer->rec.name);
	KILN_GUARD(issue_resolve(w, NULL, d));
	KILN_GUARD(check_rules(w, rs, d));
	w->renew = rs;
	return issue_run(w, res, d);
}

kiln_result kiln_ca_renew(kiln_ca *ca, const struct kiln_renew_req *req,
			  struct kiln_issue_result *res, kiln_diag *d)
{
	struct kiln_issue_req ir = { 0 };
	struct renew_state rs = { 0 };
	struct issue_work *w;
	kiln_diag local;
	kiln_result r;

	if (req->current == NULL || req->actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "a renewal needs the current certificate and an actor");
	w = calloc(1, sizeof(*w));
	KILN_ENSURE(w != NULL, KILN_ERR_NOMEM);
	rs.current = req->current;
	kiln_cert_serial_hex(req->current, rs.old_serial, sizeof(rs.old_serial));
	ir.product = req->product;
	ir.csr = req->csr;
	ir.actor = req->actor;
	issue_work_init(w, ca);
	w->req = &ir;
	w->actor = req->actor;
	w->product = req->product;
	kiln_diag_clear(&local);
	r = renew(w, &rs, &ir, res, &local);
	if (!kiln_is_ok(r)) {
		kiln_buf_reset(&res->cert_der);
		kiln_buf_reset(&res->chain_pem);
		issue_record_refusal(w, "renew", req->csr, r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	issue_work_cleanup(w);
	free(w);
	return r;
}

kiln_result kiln_ca_chain_certs(kiln_ca *ca, kiln_env env, X509 *out[2], size_t *n, kiln_diag *d)
{
	struct ca_entry *e = ca_issuing(ca, env);

	*n = 0;
	if (e == NULL || e->parent == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no issuing CA for environment %s",
				     kiln_env_name(env));
	out[0] = e->cert;
	out[1] = e->parent->cert;
	*n = 2;
	return kiln_ok();
}

kiln_result kiln_ca_policy_view(kiln_ca *ca, const char *product, const kiln_policy **out,
				int64_t *version, kiln_diag *d)
{
	return ca_policy_active(ca, product, out, version, d);
}
