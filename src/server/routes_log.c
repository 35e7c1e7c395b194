/*
 * The log for auditors and customers: the newest signed checkpoint (the
 * transparency-dev text format), the checkpoints, the entries, and inclusion
 * and consistency proofs. Read-only; queries are parsed by
 * kiln_log_query_parse (bounded, fuzzed) and refusals are audit events.
 */
#include "app_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ENTRIES_MAX 1000
#define CHECKPOINTS_MAX 1000

static kiln_result refuse(kiln_app *app, const struct kiln_request *req, kiln_result r,
			  const kiln_diag *local, kiln_diag *d)
{
	app_refuse(app, req, "rejection", r, local);
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(local, r));
}

/* The query, or a refusal; a log route without a ledger is a configuration fault. */
static kiln_result query(kiln_app *app, const struct kiln_request *req, struct kiln_log_query *q,
			 kiln_diag *d)
{
	kiln_diag local;
	kiln_result r;

	if (app->ledger == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "this server keeps no log");
	kiln_diag_clear(&local);
	r = kiln_log_query_parse(req->query, q, &local);
	return kiln_is_ok(r) ? r : refuse(app, req, r, &local, d);
}

static json_t *hex_json(const uint8_t h[32])
{
	char hex[65];

	kiln_hex_encode(h, 32, hex);
	return json_string(hex);
}

static json_t *path_json(const struct kiln_merkle_proof *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < p->n; i++)
		(void)json_array_append_new(arr, hex_json(p->hash[i]));
	return arr;
}

kiln_result route_log_checkpoint(void *ctx, const struct kiln_request *req,
				 struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_checkpoint_rec cp;
	struct kiln_log_query q;

	KILN_GUARD(query(app, req, &q, d));
	KILN_GUARD(kiln_store_checkpoint_get(app->store, -1, &cp, d));
	res->status = 200;
	kiln_strtrunc(res->content_type, "text/plain; charset=utf-8", sizeof(res->content_type));
	return kiln_buf_append_str(&res->body, cp.note);
}

kiln_result route_log_checkpoints(void *ctx, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_checkpoint_rec *cps = NULL;
	struct kiln_log_query q;
	json_t *arr;
	size_t n = 0;

	KILN_GUARD(query(app, req, &q, d));
	KILN_GUARD(kiln_store_checkpoint_list(app->store, q.has_start ? (int64_t)q.start : 0,
					      CHECKPOINTS_MAX, &cps, &n, d));
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		(void)json_array_append_new(arr, json_pack("{s:I,s:o,s:I,s:s}", "size",
							   (json_int_t)cps[i].size, "root_hash",
							   hex_json(cps[i].root), "time",
							   (json_int_t)cps[i].time, "note",
							   cps[i].note));
	free(cps);
	return app_json(res, 200, arr);
}

kiln_result route_log_entries(void *ctx, const struct kiln_request *req,
			      struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_event_rec *evs = NULL;
	struct kiln_log_query q;
	uint64_t start, end;
	uint8_t leaf[32];
	kiln_diag local;
	json_t *arr;
	size_t n = 0;
	kiln_result r = kiln_ok();

	KILN_GUARD(query(app, req, &q, d));
	start = q.has_start ? q.start : 0;
	end = q.has_end ? q.end : start + ENTRIES_MAX;
	if (end <= start || end - start > ENTRIES_MAX) {
		kiln_diag_clear(&local);
		r = kiln_diag_set(&local, KILN_ERR_LOG_RANGE,
				  "entries: need start < end and at most %d entries", ENTRIES_MAX);
		return refuse(app, req, r, &local, d);
	}
	KILN_GUARD(kiln_store_event_list(app->store, (int64_t)start, (size_t)(end - start), &evs, &n,
					 d));
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n && kiln_is_ok(r); i++) {
		r = kiln_ledger_event_leaf(&evs[i], leaf);
		(void)json_array_append_new(
			arr, json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:o}", "seq", (json_int_t)evs[i].seq,
				       "time", (json_int_t)evs[i].time, "type", evs[i].type, "actor",
				       evs[i].actor, "subject", evs[i].subject, "detail",
				       evs[i].detail_json, "leaf_hash", hex_json(leaf)));
	}
	kiln_store_event_list_free(evs, n);
	if (!kiln_is_ok(r)) {
		json_decref(arr);
		return r;
	}
	return app_json(res, 200, arr);
}

kiln_result route_log_inclusion(void *ctx, const struct kiln_request *req,
				struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_ledger_inclusion inc;
	struct kiln_log_query q;
	uint64_t index = 0;
	kiln_diag local;
	kiln_result r;

	KILN_GUARD(query(app, req, &q, d));
	kiln_diag_clear(&local);
	if (q.has_index == q.has_device || q.has_from || q.has_to || q.has_start || q.has_end) {
		r = kiln_diag_set(&local, KILN_ERR_ARG,
				  "inclusion proof: give index=N or device=ID, and optionally size=S");
		return refuse(app, req, r, &local, d);
	}
	index = q.index;
	r = q.has_device ? kiln_ledger_device_index(app->ledger, q.device, &index, &local) : kiln_ok();
	if (kiln_is_ok(r))
		r = kiln_ledger_prove(app->ledger, index, q.has_size ? q.size : 0, &inc, &local);
	if (!kiln_is_ok(r))
		return refuse(app, req, r, &local, d);
	return app_json(res, 200,
			json_pack("{s:I,s:I,s:o,s:o,s:o,s:s}", "index", (json_int_t)inc.index,
				  "size", (json_int_t)inc.size, "leaf_hash", hex_json(inc.leaf),
				  "root_hash", hex_json(inc.root), "inclusion_path",
				  path_json(&inc.proof), "checkpoint", inc.checkpoint.note));
}

kiln_result route_log_consistency(void *ctx, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_checkpoint_rec a, b;
	struct kiln_merkle_proof p;
	struct kiln_log_query q;
	kiln_diag local;
	kiln_result r;

	KILN_GUARD(query(app, req, &q, d));
	kiln_diag_clear(&local);
	if (!q.has_from || !q.has_to || q.has_index || q.has_device || q.has_size) {
		r = kiln_diag_set(&local, KILN_ERR_ARG, "consistency proof: give from=A and to=B");
		return refuse(app, req, r, &local, d);
	}
	r = kiln_ledger_consistency(app->ledger, q.from, q.to, &p, &local);
	if (kiln_is_ok(r))
		r = kiln_store_checkpoint_get(app->store, (int64_t)q.from, &a, &local);
	if (kiln_is_ok(r))
		r = kiln_store_checkpoint_get(app->store, (int64_t)q.to, &b, &local);
	if (!kiln_is_ok(r))
		return refuse(app, req, r, &local, d);
	return app_json(res, 200,
			json_pack("{s:I,s:I,s:o,s:o,s:o}", "from", (json_int_t)q.from, "to",
				  (json_int_t)q.to, "from_root", hex_json(a.root), "to_root",
				  hex_json(b.root), "consistency_path", path_json(&p)));
}
