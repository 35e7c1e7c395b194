/*
 * Revocation: one certificate (by serial or by device), at once, or a recall
 * (every certificate of a lot, or what one station produced in a time
 * window), which is an M-of-N request first and runs in the transaction of
 * the approval that completes its quorum. Each revoked certificate gets a
 * "revocation" event in the same transaction as its new status; the store's
 * revocation sequence moves in that transaction too, and that is what the
 * CRL and OCSP producers watch. A refusal changes nothing but one event.
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
	const char *request_id; /* a recall being executed: its approved request */
};

static kiln_result revoke_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct revoke_work *w = ctx;
	struct kiln_event_rec ev = { 0 };
	char *detail;
	kiln_result r;

	for (size_t i = 0; i < w->n; i++) {
		KILN_GUARD(kiln_store_tx_cert_revoke(tx, w->serials[i], w->req->reason, w->when, d));
		detail = w->request_id != NULL
				 ? ca_event_json("{s:s,s:I,s:s,s:I,s:s}", "reason", w->req->reason,
						 "revoked_at", (json_int_t)w->when, "scope", w->scope,
						 "count", (json_int_t)w->n, "request", w->request_id)
				 : ca_event_json("{s:s,s:I,s:s,s:I}", "reason", w->req->reason,
						 "revoked_at", (json_int_t)w->when, "scope", w->scope,
						 "count", (json_int_t)w->n);
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

	kiln_printable(what, strlen(what), subject, sizeof(subject));
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

/* The parameters of a revoke-bulk request: the selector, the window, the reason, the count. */
static json_t *bulk_params(const struct kiln_revoke_req *req, size_t matched)
{
	if (req->lot != NULL)
		return json_pack("{s:s,s:s,s:I}", "lot", req->lot, "reason", req->reason, "count",
				 (json_int_t)matched);
	return json_pack("{s:s,s:I,s:I,s:s,s:I}", "station", req->station, "from",
			 (json_int_t)req->from, "to", (json_int_t)req->to, "reason", req->reason,
			 "count", (json_int_t)matched);
}

/*
 * The bulk path (a lot, or a station in a time window): every recall goes
 * through here. Asked (w->request_id NULL), it selects what the recall
 * matches now, refuses an empty one, and stores a revoke-bulk request for
 * officers to approve (ask receives it). Executed (kiln_ca_approve,
 * w->request_id set), it is called before the approval's transaction (tx
 * NULL: an empty recall refuses the approval early) and then inside it (tx),
 * where it selects again on the transaction's connection and revokes what
 * matches at that commit, all or nothing.
 */
static kiln_result revoke_bulk(kiln_ca *ca, struct revoke_work *w, kiln_store_tx *tx,
			       struct kiln_request_rec *ask, kiln_diag *d)
{
	const struct kiln_revoke_req *req = w->req;
	struct kiln_govern_rules defaults = { { 0 }, 86400 };
	struct kiln_cert_filter f = { 0 };
	json_t *params;
	kiln_result r;

	f.lot = req->lot;
	f.station = req->station;
	f.from = req->from;
	f.to = req->to;
	f.valid_only = true;
	free(w->serials);
	w->serials = NULL;
	w->n = 0;
	if (tx != NULL)
		KILN_GUARD(kiln_store_tx_cert_select(tx, &f, &w->serials, &w->n, d));
	else
		KILN_GUARD(kiln_store_cert_select(ca->store, &f, &w->serials, &w->n, d));
	if (w->n == 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no valid certificate matches the recall");
	if (tx != NULL)
		return revoke_tx(tx, w, d);
	if (w->request_id != NULL)
		return kiln_ok();
	for (size_t i = 0; i < KILN_OP__COUNT; i++)
		defaults.quorum[i] = 2;
	params = bulk_params(req, w->n);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	r = kiln_govern_request_create(ca->store, req->rules != NULL ? req->rules : &defaults,
				       KILN_OP_REVOKE_BULK, params, req->actor, 0, ask, d);
	json_decref(params);
	return r;
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
	struct revoke_work w = { req, NULL, 0, 0, NULL, NULL };
	struct kiln_request_rec ask;
	bool bulk;
	kiln_result r;

	KILN_ENSURE(ca != NULL && req != NULL && res != NULL, KILN_ERR_ARG);
	memset(res, 0, sizeof(*res));
	if (req->actor == NULL || req->actor[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "a revocation needs an actor");
	r = check_req(req, &w.scope, d);
	w.when = kiln_now();
	bulk = req->lot != NULL || req->station != NULL;
	if (kiln_is_ok(r))
		r = bulk ? revoke_bulk(ca, &w, NULL, &ask, d) : revoke_one(ca, &w, d);
	if (!kiln_is_ok(r)) {
		record_refusal(ca, req, r, d);
		free(w.serials);
		return r;
	}
	if (bulk) {
		/* Asked, not done: the request waits for its officers. */
		free(w.serials);
		kiln_strtrunc(res->request_id, ask.id, sizeof(res->request_id));
		res->quorum = ask.quorum;
		res->expires = ask.expires;
		res->matched = w.n;
		return kiln_ok();
	}
	res->serials = w.serials;
	res->n = w.n;
	res->revoked_at = w.when;
	return kiln_store_revocation_seq(ca->store, &res->seq, d);
}

/* ------------------------------------------------------------ executing an approved recall */

struct bulk_exec {
	kiln_ca *ca;
	struct kiln_revoke_req req;
	struct revoke_work w;
	char lot[KILN_STORE_NAME_MAX];
	char station[KILN_STORE_NAME_MAX];
	char reason[32];
	char request_id[KILN_STORE_REQUEST_ID];
};

/* The recall a revoke-bulk request names (its canonical parameters, as bulk_params made them). */
static kiln_result bulk_from_params(struct bulk_exec *x, const struct kiln_request_rec *q,
				    kiln_diag *d)
{
	json_t *j = json_loads(q->params_json, 0, NULL);
	const char *lot = NULL, *station = NULL, *reason = NULL;
	json_int_t from = 0, to = 0, count = 0;
	int bad;

	if (j == NULL)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "request %s has malformed parameters",
				     q->id);
	if (json_object_get(j, "lot") != NULL)
		bad = json_unpack(j, "{s:s,s:s,s:I!}", "lot", &lot, "reason", &reason, "count",
				  &count);
	else
		bad = json_unpack(j, "{s:s,s:I,s:I,s:s,s:I!}", "station", &station, "from", &from,
				  "to", &to, "reason", &reason, "count", &count);
	if (bad == 0 && lot != NULL)
		bad = !kiln_is_ok(kiln_strlcpy(x->lot, lot, sizeof(x->lot)));
	if (bad == 0 && station != NULL)
		bad = !kiln_is_ok(kiln_strlcpy(x->station, station, sizeof(x->station)));
	if (bad == 0)
		bad = !kiln_is_ok(kiln_strlcpy(x->reason, reason, sizeof(x->reason)));
	json_decref(j);
	if (bad != 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "request %s has malformed parameters",
				     q->id);
	x->req.lot = lot != NULL ? x->lot : NULL;
	x->req.station = station != NULL ? x->station : NULL;
	x->req.from = from;
	x->req.to = to;
	x->req.reason = x->reason;
	return kiln_ok();
}

static kiln_result bulk_prepare(void *ctx, const struct kiln_request_rec *q, kiln_diag *d)
{
	struct bulk_exec *x = ctx;

	KILN_GUARD(bulk_from_params(x, q, d));
	kiln_strtrunc(x->request_id, q->id, sizeof(x->request_id));
	x->req.actor = q->requester;
	x->w.req = &x->req;
	x->w.request_id = x->request_id;
	KILN_GUARD(check_req(&x->req, &x->w.scope, d));
	return revoke_bulk(x->ca, &x->w, NULL, NULL, d);
}

static kiln_result bulk_run(kiln_store_tx *tx, void *ctx, const struct kiln_request_rec *q,
			    const char *approver, int64_t now, int64_t *affected, kiln_diag *d)
{
	struct bulk_exec *x = ctx;

	(void)q;
	/* The officer whose approval completed the quorum is who revoked. */
	x->req.actor = approver;
	x->w.when = now;
	KILN_GUARD(revoke_bulk(x->ca, &x->w, tx, NULL, d));
	*affected = (int64_t)x->w.n;
	return kiln_ok();
}

kiln_result kiln_ca_approve(kiln_ca *ca, const char *id, const char *approver, kiln_slice sig,
			    int64_t now, struct kiln_approve_result *out, kiln_diag *d)
{
	struct bulk_exec x;
	struct kiln_govern_exec ex = { KILN_OP_REVOKE_BULK, bulk_prepare, bulk_run, &x };
	kiln_result r;

	KILN_ENSURE(ca != NULL, KILN_ERR_ARG);
	memset(&x, 0, sizeof(x));
	x.ca = ca;
	r = kiln_govern_approve_exec(ca->store, id, approver, sig, now, &ex, out, d);
	free(x.w.serials);
	return r;
}
