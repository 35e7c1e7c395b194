/* Batches and provisioning: the factory line's routes. */
#include "app_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct kiln_station station_of(const struct kiln_request *req)
{
	return (struct kiln_station){ req->who->name, req->who->role, req->who->env };
}

static json_t *batch_json(const struct kiln_batch_rec *b)
{
	char created[KILN_TIME_STR];

	kiln_time_format(b->created, created);
	return json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "lot", b->lot, "product",
			 b->product, "quantity", (json_int_t)b->quantity, "issued",
			 (json_int_t)b->issued, "line", b->line, "station", b->station, "status",
			 b->status, "opened_by", b->opened_by, "created", created);
}

kiln_result route_health(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			 kiln_diag *d)
{
	(void)ctx;
	(void)req;
	(void)d;
	return app_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

kiln_result route_batch_open(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_batch_rec rec;
	struct body_batch b;
	struct kiln_batch_req br;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = body_batch_parse(req->body, &b, &local);
	if (kiln_is_ok(r)) {
		br = (struct kiln_batch_req){ b.product, b.lot, b.quantity, b.line, b.station,
					      req->who->name };
		r = kiln_ca_batch_open(app->ca, &br, &rec, &local);
	}
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	return app_json(res, 201, batch_json(&rec));
}

kiln_result route_batch_close(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_batch_rec rec = { 0 };
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = kiln_ca_batch_close(app->ca, req->params[0], req->who->name, &local);
	if (kiln_is_ok(r))
		r = kiln_store_batch_get(app->store, req->params[0], &rec, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	return app_json(res, 200, batch_json(&rec));
}

kiln_result route_batch_get(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			    kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_batch_rec rec = { 0 };
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = kiln_store_batch_get(app->store, req->params[0], &rec, &local);
	if (!kiln_is_ok(r)) {
		/* Every refusal is an audit event, reads included (docs/protocol.md). */
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	return app_json(res, 200, batch_json(&rec));
}

/* A nonce as begin answers it (and finish, for the next one): NULL when out of memory. */
static json_t *nonce_json(const struct kiln_begin_result *br)
{
	char expires[KILN_TIME_STR];
	json_t *j = NULL;
	kiln_buf nonce;

	kiln_buf_init(&nonce, 64);
	kiln_time_format(br->expires, expires);
	if (kiln_is_ok(kiln_base64_encode(kiln_slice_of(br->nonce, sizeof(br->nonce)), &nonce)))
		j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s}", "nonce", kiln_buf_cstr(&nonce),
			      "expires_at", expires, "expires", (json_int_t)br->expires, "lot", br->lot,
			      "product", br->product, "attestation", br->attestation);
	kiln_buf_cleanup(&nonce); /* wiped */
	return j;
}

kiln_result route_provision_begin(void *ctx, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_station st = station_of(req);
	struct kiln_begin_result br;
	struct body_begin b;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = body_begin_parse(req->body, &b, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	KILN_GUARD(kiln_ca_provision_begin(app->ca, b.lot, &st, app->nonce_ttl_s, &br, d));
	r = app_json(res, 200, nonce_json(&br));
	kiln_wipe(br.nonce, sizeof(br.nonce));
	return r;
}

kiln_result route_provision_finish(void *ctx, const struct kiln_request *req,
				   struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_station st = station_of(req);
	struct kiln_issue_result ir;
	struct kiln_provision_req pr;
	struct kiln_begin_result next;
	struct body_finish b;
	bool repeated = false;
	kiln_diag local;
	json_t *answer;
	kiln_result r;

	kiln_diag_clear(&local);
	memset(&next, 0, sizeof(next));
	body_finish_init(&b);
	kiln_issue_result_init(&ir);
	r = body_finish_parse(req->body, &b, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
		goto out;
	}
	pr = (struct kiln_provision_req){ .station = &st,
					  .nonce = b.nonce,
					  .csr = kiln_buf_view(&b.csr),
					  .evidence = &b.evidence,
					  .device_serial = b.serial,
					  .firmware_version = b.firmware_version,
					  .components_json = b.components_json,
					  .next = b.next ? &next : NULL,
					  .next_ttl_s = app->nonce_ttl_s };
	KILN_TRY(r, kiln_ca_provision_finish(app->ca, &pr, &ir, &repeated, d));
	answer = json_pack("{s:s,s:I,s:s,s:b}", "serial", ir.serial, "device_id",
			   (json_int_t)ir.device_id, "certificate", kiln_buf_cstr(&ir.chain_pem),
			   "repeated", repeated);
	if (answer != NULL && next.expires != 0 &&
	    json_object_set_new(answer, "next", nonce_json(&next)) != 0) {
		json_decref(answer);
		answer = NULL;
	}
	r = app_json(res, repeated ? 200 : 201, answer);
out:
	kiln_wipe(next.nonce, sizeof(next.nonce));
	kiln_issue_result_cleanup(&ir);
	body_finish_cleanup(&b);
	return r;
}

static kiln_result b64_member(json_t *obj, const char *key, const kiln_buf *bytes)
{
	kiln_buf b64;
	kiln_result r;

	kiln_buf_init(&b64, 4 * KILN_TPM2_BLOB_MAX);
	r = kiln_base64_encode(kiln_buf_view(bytes), &b64);
	if (kiln_is_ok(r) && json_object_set_new(obj, key, json_string(kiln_buf_cstr(&b64))) != 0)
		r = kiln_fail(KILN_ERR_NOMEM);
	kiln_buf_cleanup(&b64);
	return r;
}

/* The credential and the PCR selection the quote must cover. */
static kiln_result activate_json(const struct kiln_activate_result *ar, json_t **out)
{
	json_t *o = json_object(), *pcrs = json_array();
	kiln_result r = kiln_ok();

	*out = NULL;
	for (size_t i = 0; o != NULL && pcrs != NULL && i < ar->n_pcrs; i++)
		if (json_array_append_new(pcrs, json_integer((json_int_t)ar->pcrs[i])) != 0)
			r = kiln_fail(KILN_ERR_NOMEM);
	if (o == NULL || pcrs == NULL || !kiln_is_ok(r) ||
	    json_object_set_new(o, "pcrs", json_pack("{s:O}", "sha256", pcrs)) != 0)
		r = kiln_fail(KILN_ERR_NOMEM);
	if (kiln_is_ok(r))
		r = b64_member(o, "credential", &ar->act.credential);
	if (kiln_is_ok(r))
		r = b64_member(o, "encrypted_secret", &ar->act.encrypted_secret);
	json_decref(pcrs);
	if (kiln_is_ok(r))
		*out = o;
	else
		json_decref(o);
	return r;
}

kiln_result route_provision_activate(void *ctx, const struct kiln_request *req,
				     struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_station st = station_of(req);
	struct kiln_activate_result ar;
	struct kiln_activate_req q;
	struct body_activate b;
	json_t *out = NULL;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	body_activate_init(&b);
	kiln_activate_result_init(&ar);
	r = body_activate_parse(req->body, &b, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
		goto out;
	}
	q = (struct kiln_activate_req){ &st, b.nonce, kiln_buf_view(&b.ek_cert),
					kiln_buf_view(&b.ek_intermediate), kiln_buf_view(&b.ak_public) };
	KILN_TRY(r, kiln_ca_provision_activate(app->ca, &q, &ar, d));
	KILN_TRY(r, activate_json(&ar, &out));
	r = app_json(res, 200, out);
out:
	kiln_activate_result_cleanup(&ar);
	body_activate_cleanup(&b);
	kiln_wipe(b.nonce, sizeof(b.nonce));
	return r;
}
