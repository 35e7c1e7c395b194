/* Read-only inventory routes. */
#include "app_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

kiln_result route_device_get(void *ctx, const struct kiln_request *req, struct kiln_response *res,
			     kiln_diag *d)
{
	kiln_app *app = ctx;
	struct kiln_device_rec v = { 0 };
	struct kiln_cert_rec c = { 0 };
	char created[KILN_TIME_STR], nb[KILN_TIME_STR], na[KILN_TIME_STR];
	json_t *components, *j;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = kiln_store_device_get(app->store, req->params[0], &v, &local);
	if (!kiln_is_ok(r)) {
		/* Every refusal is an audit event, reads included (docs/protocol.md). */
		app_refuse(app, req, "rejection", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	KILN_GUARD(kiln_store_cert_get(app->store, v.cert_serial, &c, d));
	kiln_time_format(v.created, created);
	kiln_time_format(c.not_before, nb);
	kiln_time_format(c.not_after, na);
	components = v.components_json[0] != '\0' ? json_loads(v.components_json, 0, NULL) : NULL;
	j = json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:{s:s,s:s,s:s,s:s,s:s}}",
		      "id", (json_int_t)v.id, "product", v.product, "serial", v.serial,
		      "policy_version", (json_int_t)v.policy_version, "lot", v.lot, "station",
		      v.station, "operator", v.operator_name, "firmware_version",
		      v.firmware_version, "firmware_sha256", v.firmware_sha256,
		      "attestation_sha256", v.attestation_sha256, "status", v.status, "created",
		      created, "components", components != NULL ? components : json_object(),
		      "certificate", "serial", c.serial, "status", c.status, "subject", c.subject,
		      "not_before", nb, "not_after", na);
	r = app_json(res, 200, j);
	kiln_cert_rec_cleanup(&c);
	return r;
}
