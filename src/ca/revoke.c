/*
 * Revocation: one certificate (by serial or by device), or a recall (every
 * certificate of a lot, or what one station produced in a time window).
 * Each revoked certificate gets a "revocation" event in the same
 * transaction as its new status; the store's revocation sequence moves in
 * that transaction too, and that is what the CRL and OCSP producers watch.
 * A refusal changes nothing but one "rejection" event.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct revoke_work {
	const struct kiln_revoke_req *req;
	char (*serials)[KILN_STORE_SERIAL_HEX];
	size_t n;
	int64_t when;
	const char *scope; /* "serial", "device", "batch", "station" */
};

static kiln_result revoke_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct revoke_work *w = ctx;
	struct kiln_event_rec ev = { 0 };
	char *detail;
	kiln_result r;

	for (size_t i = 0; i < w->n; i++) {
		KILN_GUARD(kiln_store_tx_cert_revoke(tx, w->serials[i], w->req->reason, w->when, d));
		detail = ca_event_json("{s:s,s:I,s:s,s:I}", "reason", w->req->reason, "revoked_at",
				       (json_int_t)w->when, "scope", w->scope, "count",
				       (json_int_t)w->n);
		KILN_ENSURE(detail != NULL, KILN_ERR_NOMEM);
		memset(&ev, 0, sizeof(ev));
		ev.time = w->when;
		kiln_strtrunc(ev.type, "revocation", sizeof(ev.type));
		kiln_strtrunc(ev.actor, w->req->actor, sizeof(ev.actor));
		kiln_strtrunc(ev.subject, w->serials[i], sizeof(ev.subject));
		ev.detail_json = detail;
		r = kiln_store_tx_event_add(tx, &ev, d);
		free(detail);
		KILN_GUARD(r);
	}
	return kiln_ok();
}

static void record_refusal(kiln_ca *ca, const struct kiln_revoke_req *req, kiln_result why,
			   const kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	char subject[KILN_STORE_NAME_MAX];
	kiln_diag ignored;
	char *detail;
	const char *what = req->serial != NULL ? req->serial : req->device != NULL ? req->device
			 : req->lot != NULL ? req->lot : req->station != NULL ? req->station : "";

	ca_sanitize(what, strlen(what), subject, sizeof(subject));
	detail = ca_event_json("{s:s,s:s,s:s}", "operation", "revoke", "error",
			       kiln_err_info(why.code)->slug, "message", d != NULL ? d->text : "");
	if (detail == NULL)
		return;
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, "rejection", sizeof(ev.type));
	kiln_strtrunc(ev.actor, req->actor != NULL ? req->actor : "", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, subject, sizeof(ev.subject));
	ev.detail_json = detail;
	kiln_diag_clear(&ignored);
	if (!kiln_is_ok(kiln_store_event_add(ca->store, &ev, &ignored)))
		kiln_log_warn(ca->log, "could not record a refused revocation: %s",
			     ignored.text);
	free(detail);
}

/*
 * The bulk path (a lot, or a station in a time window): every recall goes
 * through here, so an M-of-N approval gate for bulk revocations is added in
 * this one function.
 */
static kiln_result revoke_bulk(kiln_ca *ca, struct revoke_work *w, kiln_diag *d)
{
	const struct kiln_revoke_req *req = w->req;
	struct kiln_cert_filter f = { 0 };

	f.lot = req->lot;
	f.station = req->station;
	f.from = req->from;
	f.to = req->to;
	f.valid_only = true;
	KILN_GUARD(kiln_store_cert_select(ca->store, &f, &w->serials, &w->n, d));
	if (w->n == 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no valid certificate matches the recall");
	return kiln_store_write(ca->store, revoke_tx, w, d);
}

static kiln_result revoke_one(kiln_ca *ca, struct revoke_work *w, kiln_diag *d)
{
	const struct kiln_revoke_req *req = w->req;
	struct kiln_device_rec dev;

	w->serials = calloc(1, sizeof(*w->serials));
	KILN_ENSURE(w->serials != NULL, KILN_ERR_NOMEM);
	w->n = 1;
	if (req->serial != NULL)
		return kiln_strlcpy(w->serials[0], req->serial, sizeof(w->serials[0])).code == KILN_OK
			       ? kiln_store_write(ca->store, revoke_tx, w, d)
			       : kiln_diag_set(d, KILN_ERR_ARG, "certificate serial: 1 to 40 "
					       "lower-case hex digits");
	KILN_GUARD(kiln_store_device_get(ca->store, req->device, &dev, d));
	if (dev.cert_serial[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "device %s has no certificate",
				     req->device);
	memcpy(w->serials[0], dev.cert_serial, sizeof(w->serials[0]));
	return kiln_store_write(ca->store, revoke_tx, w, d);
}

static kiln_result check_req(const struct kiln_revoke_req *req, const char **scope, kiln_diag *d)
{
	int ways = (req->serial != NULL) + (req->device != NULL) + (req->lot != NULL) +
		   (req->station != NULL);

	if (ways != 1)
		return kiln_diag_set(d, KILN_ERR_ARG, "revoke by exactly one of: serial, device, "
				     "batch (lot) or station");
	if (!kiln_store_reason_ok(req->reason, NULL))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "unknown revocation reason; use unspecified, keyCompromise, "
				     "cACompromise, affiliationChanged, superseded, "
				     "cessationOfOperation, certificateHold, privilegeWithdrawn or "
				     "aACompromise");
	if ((req->from != 0 || req->to != 0) && req->station == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "a time window applies to a station recall only");
	if (req->from < 0 || req->to < 0 || (req->to != 0 && req->to <= req->from))
		return kiln_diag_set(d, KILN_ERR_ARG, "the time window must end after it starts");
	*scope = req->serial != NULL ? "serial" : req->device != NULL ? "device"
		 : req->lot != NULL ? "batch" : "station";
	return kiln_ok();
}

void kiln_revoke_result_cleanup(struct kiln_revoke_result *res)
{
	if (res == NULL)
		return;
	free(res->serials);
	memset(res, 0, sizeof(*res));
}

kiln_result kiln_ca_revoke(kiln_ca *ca, const struct kiln_revoke_req *req,
			   struct kiln_revoke_result *res, kiln_diag *d)
{
	struct revoke_work w = { req, NULL, 0, 0, NULL };
	kiln_result r;

	KILN_ENSURE(ca != NULL && req != NULL && res != NULL, KILN_ERR_ARG);
	memset(res, 0, sizeof(*res));
	if (req->actor == NULL || req->actor[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "a revocation needs an actor");
	r = check_req(req, &w.scope, d);
	w.when = kiln_now();
	if (kiln_is_ok(r))
		r = req->lot != NULL || req->station != NULL ? revoke_bulk(ca, &w, d)
							    : revoke_one(ca, &w, d);
	if (!kiln_is_ok(r)) {
		record_refusal(ca, req, r, d);
		free(w.serials);
		return r;
	}
	res->serials = w.serials;
	res->n = w.n;
	res->revoked_at = w.when;
	return kiln_store_revocation_seq(ca->store, &res->seq, d);
}
