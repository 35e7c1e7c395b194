/* Approval requests over HTTPS: list, show, approve (docs/roles.md). */
#include "app_impl.h"

#include "govern/govern.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

kiln_result route_request_list(void *ctx, const struct kiln_request *req,
			       struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_request_rec *list = NULL;
	int64_t now = kiln_now();
	size_t n = 0;
	json_t *arr;

	(void)req;
	KILN_GUARD(kiln_store_request_list(app->store, &list, &n, d));
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++)
		(void)json_array_append_new(arr, kiln_govern_request_json(&list[i], now));
	free(list);
	return app_json(res, 200, json_pack("{s:o*}", "requests", arr));
}

kiln_result route_request_get(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_approval_rec *approvals = NULL;
	struct kiln_request_rec q;
	size_t n = 0;
	kiln_diag local;
	kiln_result r;
	json_t *j, *arr;

	kiln_diag_clear(&local);
	r = kiln_store_request_get(app->store, req->params[0], &q, &local);
	if (kiln_is_ok(r))
		r = kiln_store_approval_list(app->store, req->params[0], &approvals, &n, &local);
	if (!kiln_is_ok(r)) {
		/* Every refusal is an audit event, reads included (docs/protocol.md). */
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	j = kiln_govern_request_json(&q, kiln_now());
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n; i++) {
		char when[KILN_TIME_STR];

		kiln_time_format(approvals[i].created, when);
		(void)json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "approver",
							   approvals[i].approver, "cert_serial",
							   approvals[i].cert_serial, "time", when));
	}
	free(approvals);
	if (j != NULL && arr != NULL)
		(void)json_object_set_new(j, "approved_by", arr);
	else
		json_decref(arr);
	return app_json(res, 200, j);
}

kiln_result route_request_approve(void *ctx, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_approve_result ar;
	struct body_approval b;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = body_approval_parse(req->body, &b, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "approval-refused", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	/* The approver is who the client certificate says; govern records its own refusals. */
	/* The CA runs what the quorum completes (a recall) in the approval's transaction. */
	KILN_GUARD(kiln_ca_approve(app->ca, req->params[0], req->who->name,
				   kiln_slice_of(b.signature, b.sig_len), 0, &ar, d));
	return app_json(res, 201,
			json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:I}", "request", req->params[0],
				  "approver", req->who->name, "operation", ar.operation,
				  "approvals", (json_int_t)ar.approvals, "quorum",
				  (json_int_t)ar.quorum, "executed", ar.executed, "affected",
				  (json_int_t)ar.affected));
}
