/* Internal to src/server: the kiln application's state and helpers shared by the routes. */
#ifndef KILN_SERVER_APP_IMPL_H
#define KILN_SERVER_APP_IMPL_H

#include "body.h"
#include "server.h"

#include "ca/ca.h"

struct kiln_app {
	kiln_ca *ca;
	kiln_store *store;
	int64_t nonce_ttl_s;
	const kiln_log *log;
};

/* Records a refusal made by a route handler (before the CA saw the request). */
void app_refuse(kiln_app *app, const struct kiln_request *req, const char *type, kiln_result why,
		const kiln_diag *d);
/* Sets a JSON body (compact) on res, consuming j. */
KILN_MUST_USE kiln_result app_json(struct kiln_response *res, int status, struct json_t *j);

kiln_result route_health(void *app, const struct kiln_request *req, struct kiln_response *res,
			 kiln_diag *d);
kiln_result route_batch_open(void *app, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d);
kiln_result route_batch_close(void *app, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d);
kiln_result route_batch_get(void *app, const struct kiln_request *req, struct kiln_response *res,
			    kiln_diag *d);
kiln_result route_provision_begin(void *app, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d);
kiln_result route_provision_activate(void *app, const struct kiln_request *req,
				     struct kiln_response *res, kiln_diag *d);
kiln_result route_provision_finish(void *app, const struct kiln_request *req,
				   struct kiln_response *res, kiln_diag *d);
kiln_result route_device_get(void *app, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d);

#endif
