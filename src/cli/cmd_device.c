/* kiln device list | device show ID */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char device_usage[] =
	"usage: kiln --dir DIR device list [--product ID] [--limit N] [--json]\n"
	"       kiln --dir DIR device show ID [--json]\n"
	"       kiln --dir DIR device retire ID [--json]\n"
	"       kiln --dir DIR device reprovision ID [--reason keyCompromise|superseded] [--json]\n"
	"\n"
	"list  devices, newest first\n"
	"show  one device's lineage: product, policy version, lot, station, operator,\n"
	"      firmware, components, attestation digest, certificate and times.\n"
	"      ID is the numeric id, PRODUCT/SERIAL, or a device serial\n"
	"retire  the end of a device's life: destroys every object its environment's HSM\n"
	"      token holds under the label kiln-device:PRODUCT/SERIAL, revokes its\n"
	"      certificate (cessationOfOperation) and marks it retired, with one event\n"
	"      naming what was destroyed\n"
	"reprovision  lets the next attested provisioning of the device's serial\n"
	"      (kiln-device provision, /v1/provision) replace it: that provisioning revokes\n"
	"      the old certificate with --reason (default keyCompromise: the new key must be\n"
	"      new; superseded: repair or re-attestation, the key may stay) and its new device\n"
	"      record names the old one\n";

static json_t *device_json(const struct kiln_device_rec *v)
{
	char when[KILN_TIME_STR];

	kiln_time_format(v->created, when);
	return json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "id",
			 (json_int_t)v->id, "product", v->product, "serial", v->serial,
			 "policy_version", (json_int_t)v->policy_version, "lot", v->lot, "station",
			 v->station, "operator", v->operator_name, "firmware_version",
			 v->firmware_version, "firmware_sha256", v->firmware_sha256,
			 "attestation_sha256", v->attestation_sha256, "cert_serial", v->cert_serial,
			 "status", v->status, "created", when, "replaces", (json_int_t)v->replaces,
			 "live", v->live);
}

static int device_list(const struct cli_common *c, const char *product, const char *limit_s)
{
	struct kiln_device_rec *list = NULL;
	struct deployment dep;
	uint64_t limit = 0;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;
	int rc = CLI_OK;

	if (limit_s != NULL && !kiln_is_ok(kiln_parse_u64(limit_s, 1000000, &limit)))
		return cli_usage_error("device list: --limit must be a number up to 1000000");
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_device_list(dep.store, product, (size_t)limit, &list, &n, &d);
	if (!kiln_is_ok(r)) {
		deploy_close(&dep);
		return cli_fail(r, &d);
	}
	arr = json_array();
	if (!c->json)
		printf("%-6s %-16s %-24s %-4s %-12s %-8s %-33s %s\n", "ID", "PRODUCT", "SERIAL", "POL",
		       "LOT", "STATUS", "CERT_SERIAL", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char when[KILN_TIME_STR];

		kiln_time_format(list[i].created, when);
		if (c->json)
			(void)json_array_append_new(arr, device_json(&list[i]));
		else
			printf("%-6lld %-16s %-24s %-4lld %-12s %-8s %-33s %s\n", (long long)list[i].id,
			       list[i].product, list[i].serial, (long long)list[i].policy_version,
			       list[i].lot[0] ? list[i].lot : "-", list[i].status, list[i].cert_serial,
			       when);
	}
	if (c->json)
		rc = cli_print_json(arr);
	else
		json_decref(arr);
	free(list);
	deploy_close(&dep);
	return rc;
}

static void show_text(const struct kiln_device_rec *v, const struct kiln_cert_rec *cert)
{
	char created[KILN_TIME_STR], nb[KILN_TIME_STR], na[KILN_TIME_STR];

	kiln_time_format(v->created, created);
	kiln_time_format(cert->not_before, nb);
	kiln_time_format(cert->not_after, na);
	printf("device %lld\n", (long long)v->id);
	printf("  product:          %s (policy v%lld)\n", v->product, (long long)v->policy_version);
	printf("  serial:           %s\n", v->serial);
	printf("  status:           %s%s\n", v->status, v->live ? "" : " (replaced)");
	if (v->replaces > 0)
		printf("  replaces:         device %lld\n", (long long)v->replaces);
	printf("  lot:              %s\n", v->lot[0] ? v->lot : "-");
	printf("  station:          %s\n", v->station[0] ? v->station : "-");
	printf("  operator:         %s\n", v->operator_name[0] ? v->operator_name : "-");
	printf("  firmware:         %s %s\n", v->firmware_version[0] ? v->firmware_version : "-",
	       v->firmware_sha256);
	printf("  components:       %s\n", v->components_json[0] ? v->components_json : "-");
	printf("  attestation:      %s\n", v->attestation_sha256[0] ? v->attestation_sha256 : "-");
	printf("  created:          %s\n", created);
	printf("  certificate:      %s (%s)\n", v->cert_serial, cert->status);
	printf("    subject:        %s\n", cert->subject);
	printf("    valid:          %s .. %s\n", nb, na);
}

static int device_show(const struct cli_common *c, const char *ref)
{
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec cert = { 0 };
	struct deployment dep;
	kiln_diag d;
	kiln_result r;
	int rc = CLI_OK;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_device_get(dep.store, ref, &dev, &d);
	if (kiln_is_ok(r))
		r = kiln_store_cert_get(dep.store, dev.cert_serial, &cert, &d);
	if (!kiln_is_ok(r)) {
		rc = cli_fail(r, &d);
	} else if (c->json) {
		json_t *j = device_json(&dev);
		char nb[KILN_TIME_STR], na[KILN_TIME_STR];

		kiln_time_format(cert.not_before, nb);
		kiln_time_format(cert.not_after, na);
		(void)json_object_set_new(j, "components",
					  dev.components_json[0] ?
						  json_loads(dev.components_json, 0, NULL) :
						  json_object());
		(void)json_object_set_new(j, "certificate",
					  json_pack("{s:s,s:s,s:s,s:s,s:s}", "serial", cert.serial,
						    "status", cert.status, "subject", cert.subject,
						    "not_before", nb, "not_after", na));
		rc = cli_print_json(j);
	} else {
		show_text(&dev, &cert);
	}
	kiln_cert_rec_cleanup(&cert);
	deploy_close(&dep);
	return rc;
}

/* The tokens a device command may need: production and test, where their PINs are present. */
static kiln_result open_ca(struct deployment *dep, kiln_diag *d)
{
	KILN_GUARD(deploy_token_opt(dep, KILN_ENV_PRODUCTION, true, d));
	KILN_GUARD(deploy_token_opt(dep, KILN_ENV_TEST, true, d));
	return deploy_ca(dep, d);
}

static int device_retire(const struct cli_common *c, const char *ref)
{
	struct kiln_retire_result out;
	struct deployment dep;
	kiln_diag d;
	kiln_result r;
	int rc = CLI_OK;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = open_ca(&dep, &d);
	if (kiln_is_ok(r))
		r = kiln_ca_device_retire(dep.ca, ref, c->actor, &out, &d);
	if (!kiln_is_ok(r)) {
		rc = cli_fail(r, &d);
	} else if (c->json) {
		json_t *what = json_array();

		for (size_t i = 0; i < out.destroyed.n; i++)
			(void)json_array_append_new(what, json_string(out.destroyed.what[i]));
		rc = cli_print_json(json_pack("{s:I,s:s,s:s,s:s,s:b,s:s,s:I,s:o,s:s}", "device_id",
					      (json_int_t)out.device_id, "product", out.product,
					      "serial", out.serial, "certificate", out.cert_serial,
					      "revoked_now", out.revoked_now, "hsm_label",
					      out.hsm_label, "destroyed_count",
					      (json_int_t)out.destroyed.n, "destroyed", what, "status",
					      "retired"));
	} else {
		printf("device %lld (%s/%s) retired: certificate %s %s; %zu HSM object(s) labelled "
		       "%s destroyed\n",
		       (long long)out.device_id, out.product, out.serial, out.cert_serial,
		       out.revoked_now ? "revoked (cessationOfOperation)" : "was already revoked",
		       out.destroyed.n, out.hsm_label);
	}
	deploy_close(&dep);
	return rc;
}

static int device_reprovision(const struct cli_common *c, const char *ref, const char *reason)
{
	struct kiln_device_rec dev;
	struct deployment dep;
	kiln_diag d;
	kiln_result r;
	int rc = CLI_OK;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = open_ca(&dep, &d);
	if (kiln_is_ok(r))
		r = kiln_ca_device_reprovision(dep.ca, ref, reason != NULL ? reason : "keyCompromise",
					       c->actor, &dev, &d);
	if (!kiln_is_ok(r))
		rc = cli_fail(r, &d);
	else if (c->json)
		rc = cli_print_json(json_pack("{s:I,s:s,s:s,s:s,s:s}", "device_id", (json_int_t)dev.id,
					      "product", dev.product, "serial", dev.serial, "reason",
					      reason != NULL ? reason : "keyCompromise", "status",
					      "reprovision-open"));
	else
		printf("device %lld (%s/%s): the next attested provisioning of %s replaces it "
		       "(%s)\n",
		       (long long)dev.id, dev.product, dev.serial, dev.serial,
		       reason != NULL ? reason : "keyCompromise");
	deploy_close(&dep);
	return rc;
}

int cmd_device(int argc, char **argv)
{
	const char *product = NULL, *limit = NULL, *reason = NULL, *pos[2];
	const struct cli_opt opts[] = { { "product", true, &product, NULL },
					{ "limit", true, &limit, NULL },
					{ "reason", true, &reason, NULL },
					{ NULL, false, NULL, NULL } };
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(device_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return device_list(&c, product, limit);
	if (npos == 2 && strcmp(pos[0], "show") == 0)
		return device_show(&c, pos[1]);
	if (npos == 2 && strcmp(pos[0], "retire") == 0)
		return device_retire(&c, pos[1]);
	if (npos == 2 && strcmp(pos[0], "reprovision") == 0)
		return device_reprovision(&c, pos[1], reason);
	return cli_usage_error("device: expected 'list', 'show ID', 'retire ID' or 'reprovision ID'; "
			       "see kiln device --help");
}
