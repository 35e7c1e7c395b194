/*
 * The kiln application behind the transport: which routes exist and who may
 * call them, who a client certificate belongs to, and the audit trail of
 * every refusal.
 */
#include "app_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FACTORY (KILN_ROLE_STATION | KILN_ROLE_OPERATOR)
#define PLANNERS (KILN_ROLE_ADMIN | KILN_ROLE_ENGINEER)
#define READERS (KILN_ROLE_ADMIN | KILN_ROLE_OFFICER | KILN_ROLE_ENGINEER | KILN_ROLE_AUDITOR)

/* The role matrix of the HTTP API; docs/protocol.md lists it too. */
static const struct kiln_route routes[] = {
	{ "GET", "/healthz", 0, route_health, true },
	{ "POST", "/v1/batches", PLANNERS, route_batch_open, false },
	{ "POST", "/v1/batches/{lot}/close", PLANNERS, route_batch_close, false },
	{ "GET", "/v1/batches/{lot}", READERS | FACTORY, route_batch_get, false },
	{ "POST", "/v1/provision/begin", FACTORY, route_provision_begin, false },
	{ "POST", "/v1/provision/activate", FACTORY, route_provision_activate, false },
	{ "POST", "/v1/provision/finish", FACTORY, route_provision_finish, false },
	{ "GET", "/v1/devices/{id}", READERS, route_device_get, false },
	{ "GET", "/v1/log/checkpoint", KILN_ROLE_ALL, route_log_checkpoint, false },
	{ "GET", "/v1/log/checkpoints", KILN_ROLE_ALL, route_log_checkpoints, false },
	{ "GET", "/v1/log/entries", READERS, route_log_entries, false },
	{ "GET", "/v1/log/proof/inclusion", KILN_ROLE_ALL, route_log_inclusion, false },
	{ "GET", "/v1/log/proof/consistency", KILN_ROLE_ALL, route_log_consistency, false },
	{ "POST", "/v1/revocations", KILN_ROLE_ADMIN | KILN_ROLE_OFFICER, route_revoke, false },
	/* EST: public at the transport; each handler admits its own clients (routes_est.c). */
	{ "GET", "/.well-known/est/cacerts", 0, route_est_cacerts, false },
	{ "GET", "/.well-known/est/{label}/cacerts", 0, route_est_cacerts, false },
	{ "GET", "/.well-known/est/csrattrs", 0, route_est_csrattrs, false },
	{ "GET", "/.well-known/est/{label}/csrattrs", 0, route_est_csrattrs, false },
	{ "POST", "/.well-known/est/simpleenroll", 0, route_est_enroll, false },
	{ "POST", "/.well-known/est/{label}/simpleenroll", 0, route_est_enroll, false },
	{ "POST", "/.well-known/est/simplereenroll", 0, route_est_reenroll, false },
	{ "POST", "/.well-known/est/{label}/simplereenroll", 0, route_est_reenroll, false },
	{ "GET", "/v1/requests", READERS, route_request_list, false },
	{ "GET", "/v1/requests/{id}", READERS, route_request_get, false },
	{ "POST", "/v1/requests/{id}/approvals", KILN_ROLE_OFFICER, route_request_approve, false },
};

const struct kiln_route *kiln_app_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

kiln_result app_authenticate(void *ctx, const X509 *cert, struct kiln_principal *out,
			     kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_identity_rec id = { 0 };
	char serial[KILN_SERIAL_HEX * 2];
	kiln_result r;

	memset(out, 0, sizeof(*out));
	kiln_cert_serial_hex(cert, serial, sizeof(serial));
	r = kiln_store_identity_by_cert(app->store, serial, &id, NULL);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_AUTH_UNKNOWN,
				     "client certificate %s is not bound to a kiln identity", serial);
	KILN_GUARD(r);
	if (strcmp(id.status, "active") != 0)
		return kiln_diag_set(d, KILN_ERR_AUTH_REVOKED, "identity %s was revoked", id.name);
	kiln_strtrunc(out->name, id.name, sizeof(out->name));
	kiln_strtrunc(out->role, id.role, sizeof(out->role));
	kiln_strtrunc(out->env, id.env, sizeof(out->env));
	kiln_strtrunc(out->cert_serial, id.cert_serial, sizeof(out->cert_serial));
	out->role_bit = kiln_role_bit(id.role);
	return kiln_ok();
}

void app_refuse(kiln_app *app, const struct kiln_request *req, const char *type, kiln_result why,
		const kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "reason", kiln_err_info(why.code)->slug,
			      "message", kiln_diag_message(d, why), "method", req->method, "path",
			      req->path, "peer", req->peer != NULL ? req->peer : "", "request_id",
			      req->request_id != NULL ? req->request_id : "");

	ev.time = kiln_now();
	kiln_strtrunc(ev.type, type, sizeof(ev.type));
	kiln_strtrunc(ev.actor, req->who != NULL ? req->who->name : "anonymous", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, req->path, sizeof(ev.subject));
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (ev.detail_json == NULL || !kiln_is_ok(kiln_store_event_add(app->store, &ev, NULL)))
		kiln_log_error(app->log, "could not record a refusal of %s %s", req->method, req->path);
	free(ev.detail_json);
}

/* The transport's own refusals: authentication failures are their own kind of event. */
static void refused(void *ctx, const struct kiln_request *req, kiln_result why, const kiln_diag *d)
{
	bool auth = why.code == KILN_ERR_AUTH_REQUIRED || why.code == KILN_ERR_AUTH_UNKNOWN ||
		    why.code == KILN_ERR_AUTH_REVOKED || why.code == KILN_ERR_FORBIDDEN;

	app_refuse(ctx, req, auth ? "auth-failure" : "rejection", why, d);
}

static const struct kiln_server_hooks hooks = { app_authenticate, refused };

const struct kiln_server_hooks *kiln_app_hooks(void)
{
	return &hooks;
}

kiln_result app_json(struct kiln_response *res, int status, json_t *j)
{
	kiln_result r;

	KILN_ENSURE(j != NULL, KILN_ERR_NOMEM);
	res->status = status;
	kiln_strtrunc(res->content_type, "application/json", sizeof(res->content_type));
	r = kiln_json_dump(j, &res->body);
	json_decref(j);
	return r;
}

kiln_result kiln_app_new(const struct kiln_app_opts *o, kiln_app **out, kiln_diag *d)
{
	kiln_app *app;

	*out = NULL;
	if (o->ca == NULL || o->store == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "the application needs a CA engine and a store");
	app = calloc(1, sizeof(*app));
	KILN_ENSURE(app != NULL, KILN_ERR_NOMEM);
	app->ca = o->ca;
	app->store = o->store;
	app->nonce_ttl_s = o->nonce_ttl_s > 0 ? o->nonce_ttl_s : KILN_NONCE_TTL_DEFAULT;
	if (o->est_default_product != NULL &&
	    !kiln_is_ok(kiln_strlcpy(app->est_default_product, o->est_default_product,
				     sizeof(app->est_default_product)))) {
		free(app);
		return kiln_diag_set(d, KILN_ERR_ARG, "the EST default product id is too long");
	}
	app->log = o->log;
	app->ledger = o->ledger;
	if (o->rules != NULL) {
		app->rules = *o->rules;
	} else {
		for (size_t i = 0; i < KILN_OP__COUNT; i++)
			app->rules.quorum[i] = 2;
		app->rules.ttl_s = 86400;
	}
	*out = app;
	return kiln_ok();
}

void kiln_app_free(kiln_app *app)
{
	free(app);
}
