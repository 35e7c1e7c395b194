/* kiln issue --product ID --csr FILE [--out FILE]: operator issuance from a CSR. */
#include "cli.h"

#include <jansson.h>
#include <string.h>

static const char issue_usage[] =
	"usage: kiln --dir DIR issue --product ID --csr FILE [--out FILE]\n"
	"                            [--device-serial SERIAL] [--ca NAME] [--json]\n"
	"\n"
	"Issues a device certificate from a PKCS#10 CSR (PEM or DER, '-' for stdin) under the\n"
	"product's active policy, from the issuing CA of the policy's environment. The device\n"
	"serial is --device-serial or the CSR's CN. The certificate chain (device, issuing\n"
	"CA, root; PEM) goes to --out or stdout, after the device and certificate records and\n"
	"the audit event are committed. Refusals change nothing but one audit event.\n";

/* The token the product's policy needs; unknown products are left to the pipeline. */
static kiln_result open_product_token(struct deployment *dep, const char *product, kiln_diag *d)
{
	struct kiln_policy_rec rec = { 0 };
	kiln_env env;
	kiln_result r = kiln_store_policy_active(dep->store, product, &rec, NULL);

	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_ok();
	KILN_GUARD(r);
	r = kiln_env_parse(rec.env, &env);
	kiln_policy_rec_cleanup(&rec);
	KILN_GUARD(r);
	return deploy_token(dep, env, d);
}

static int output(const struct cli_common *c, const char *out, const char *product,
		  const struct kiln_issue_result *res)
{
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	if (out != NULL) {
		r = kiln_file_write(out, kiln_buf_view(&res->chain_pem), 0644, &d);
		if (!kiln_is_ok(r))
			return cli_fail(r, &d);
	}
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:I,s:I,s:s*,s:s*}", "serial", res->serial,
						"product", product, "device_id",
						(json_int_t)res->device_id, "policy_version",
						(json_int_t)res->policy_version, "out", out, "chain_pem",
						out == NULL ? kiln_buf_cstr(&res->chain_pem) : NULL));
	if (out == NULL)
		fwrite(res->chain_pem.ptr, 1, res->chain_pem.len, stdout);
	else
		printf("issued certificate %s for device %lld (product %s, policy v%lld) -> %s\n",
		       res->serial, (long long)res->device_id, product, (long long)res->policy_version,
		       out);
	return CLI_OK;
}

int cmd_issue(int argc, char **argv)
{
	const char *product = NULL, *csr = NULL, *out = NULL, *serial = NULL, *ca_name = NULL;
	const struct cli_opt opts[] = {
		{ "product", true, &product, NULL },	   { "csr", true, &csr, NULL },
		{ "out", true, &out, NULL },		   { "device-serial", true, &serial, NULL },
		{ "ca", true, &ca_name, NULL },		   { NULL, false, NULL, NULL },
	};
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	struct cli_common c;
	struct deployment dep;
	kiln_buf csr_bytes;
	kiln_diag d;
	kiln_result r;
	size_t npos;
	int rc;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(issue_usage, stdout);
		return CLI_OK;
	}
	if (product == NULL || csr == NULL)
		return cli_usage_error("issue: --product and --csr are required");
	kiln_diag_clear(&d);
	kiln_issue_result_init(&res);
	kiln_buf_init(&csr_bytes, 0);
	/* Read generously: the pipeline enforces the 64 KiB cap and records the refusal. */
	r = kiln_file_read(strcmp(csr, "-") == 0 ? "/dev/stdin" : csr, 1024 * 1024, &csr_bytes, &d);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	r = deploy_open(&c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = open_product_token(&dep, product, &d);
	if (kiln_is_ok(r))
		r = deploy_ca(&dep, &d);
	if (kiln_is_ok(r)) {
		req = (struct kiln_issue_req){ .product = product,
					       .csr = kiln_buf_view(&csr_bytes),
					       .device_serial = serial,
					       .ca_name = ca_name,
					       .actor = c.actor };
		r = kiln_ca_issue(dep.ca, &req, &res, &d);
	}
	rc = kiln_is_ok(r) ? output(&c, out, product, &res) : cli_fail(r, &d);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr_bytes);
	deploy_close(&dep);
	return rc;
}
