/* Internal to src/server: the kiln application's state and helpers shared by the routes. */
#ifndef KILN_SERVER_APP_IMPL_H
#define KILN_SERVER_APP_IMPL_H

#include "body.h"
#include "server.h"

#include "ca/ca.h"
#include "ledger/ledger.h"

struct kiln_app {
	kiln_ca *ca;
	kiln_store *store;
	int64_t nonce_ttl_s;
	char est_default_product[KILN_PRODUCT_MAX]; /* "" when none */
	const kiln_log *log;
	kiln_ledger *ledger; /* NULL: the log routes answer 404 */
	struct kiln_govern_rules rules;
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
kiln_result route_revoke(void *app, const struct kiln_request *req, struct kiln_response *res,
			 kiln_diag *d);
/* The identity behind a client certificate verified against the service CA. */
KILN_MUST_USE kiln_result app_authenticate(void *app, const X509 *cert,
					   struct kiln_principal *out, kiln_diag *d);
kiln_result route_est_cacerts(void *app, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d);
kiln_result route_est_csrattrs(void *app, const struct kiln_request *req,
			       struct kiln_response *res, kiln_diag *d);
kiln_result route_est_enroll(void *app, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d);
kiln_result route_est_reenroll(void *app, const struct kiln_request *req,
			       struct kiln_response *res, kiln_diag *d);
kiln_result route_device_get(void *app, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d);

kiln_result route_log_checkpoint(void *app, const struct kiln_request *req,
				 struct kiln_response *res, kiln_diag *d);
kiln_result route_log_checkpoints(void *app, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d);
kiln_result route_log_entries(void *app, const struct kiln_request *req,
			      struct kiln_response *res, kiln_diag *d);
kiln_result route_log_inclusion(void *app, const struct kiln_request *req,
				struct kiln_response *res, kiln_diag *d);
kiln_result route_log_consistency(void *app, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d);

kiln_result route_request_list(void *app, const struct kiln_request *req,
			       struct kiln_response *res, kiln_diag *d);
kiln_result route_request_get(void *app, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d);
kiln_result route_request_approve(void *app, const struct kiln_request *req,
				  struct kiln_response *res, kiln_diag *d);

#endif
