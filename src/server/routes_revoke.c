/*
 * POST /v1/revocations: revoke a certificate (201, at once), or ask for a
 * recall of a lot or a station's output (202, a revoke-bulk request that
 * officers approve; docs/revocation.md).
 */
#include "app_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *opt(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/* A recall is a revoke-bulk request: 202 Accepted, Location: the request. */
static kiln_result recall_requested(struct kiln_response *res, const struct kiln_revoke_result *out,
				    const char *reason, kiln_diag *d)
{
	char where[96], until[KILN_TIME_STR];

	(void)d;
	(void)snprintf(where, sizeof(where), "/v1/requests/%s", out->request_id);
	KILN_GUARD(kiln_response_header(res, "Location", where));
	kiln_time_format(out->expires, until);
	return app_json(res, 202, json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "request",
					    out->request_id, "operation", "revoke-bulk", "matched",
					    (json_int_t)out->matched, "quorum",
					    (json_int_t)out->quorum, "expires", until, "reason",
					    reason));
}

kiln_result route_revoke(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			 kiln_diag *d)
{
	kiln_app *app = ctx;
	struct body_revocation b;
	struct kiln_revoke_req rr = { 0 };
	struct kiln_revoke_result out = { 0 };
	char when[KILN_TIME_STR];
	kiln_diag local;
	kiln_result r;
	json_t *arr;

	kiln_diag_clear(&local);
	r = body_revocation_parse(req->body, &b, &local);
	if (!kiln_is_ok(r)) {
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	rr = (struct kiln_revoke_req){ opt(b.serial), opt(b.device), opt(b.lot), opt(b.station),
				       b.from, b.to, b.reason, req->who->name, &app->rules };
	/* kiln_ca_revoke records its own refusals. */
	r = kiln_ca_revoke(app->ca, &rr, &out, &local);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	if (out.request_id[0] != '\0')
		return recall_requested(res, &out, b.reason, d);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < out.n; i++)
		(void)json_array_append_new(arr, json_string(out.serials[i]));
	kiln_time_format(out.revoked_at, when);
	r = app_json(res, 201, json_pack("{s:o,s:I,s:s,s:s,s:I}", "revoked", arr, "count",
					 (json_int_t)out.n, "reason", b.reason, "revoked_at", when,
					 "revocation_seq", (json_int_t)out.seq));
	kiln_revoke_result_cleanup(&out);
	return r;
}
