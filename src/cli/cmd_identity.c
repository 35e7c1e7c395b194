/* kiln identity add --name NAME --role ROLE --out PREFIX */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char identity_usage[] =
	"usage: kiln --dir DIR identity add --name NAME --role ROLE --out PREFIX\n"
	"                                   [--csr FILE] [--env production|test] [--json]\n"
	"\n"
	"Issues a client certificate from the service CA for a person or a station and binds\n"
	"it to ROLE (admin, officer, engineer, operator, station, auditor). Writes PREFIX.crt\n"
	"and, unless --csr brings the holder's own key, a new P-256 key to PREFIX.key (0600).\n"
	"--env limits the identity to one environment.\n";

static int write_outputs(const char *prefix, const struct kiln_identity_result *res,
			 char *crt, char *key, size_t cap)
{
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	if (snprintf(crt, cap, "%s.crt", prefix) >= (int)cap ||
	    snprintf(key, cap, "%s.key", prefix) >= (int)cap)
		return cli_usage_error("identity add: --out prefix too long");
	r = kiln_file_write(crt, kiln_buf_view(&res->cert_pem), 0644, &d);
	if (kiln_is_ok(r) && res->key_pem.len > 0)
		r = kiln_file_write(key, kiln_buf_view(&res->key_pem), 0600, &d);
	else
		key[0] = '\0';
	return kiln_is_ok(r) ? CLI_OK : cli_fail(r, &d);
}

static int identity_add(const struct cli_common *c, const char *name, const char *role,
			const char *prefix, const char *csr, const char *env_name)
{
	struct kiln_identity_req req = { 0 };
	struct kiln_identity_result res;
	struct deployment dep;
	kiln_buf csr_bytes;
	char crt[KILN_PATH_MAX], key[KILN_PATH_MAX];
	kiln_env env = KILN_ENV_NONE;
	kiln_diag d;
	kiln_result r;
	int rc = CLI_FAIL;

	if (env_name != NULL && (!kiln_is_ok(kiln_env_parse(env_name, &env)) || env == KILN_ENV_SERVICE))
		return cli_usage_error("identity add: --env must be production or test");
	kiln_diag_clear(&d);
	kiln_buf_init(&csr_bytes, 0);
	if (csr != NULL) {
		r = kiln_file_read(csr, KILN_CSR_MAX_BYTES, &csr_bytes, &d);
		if (!kiln_is_ok(r))
			return cli_fail(r, &d);
	}
	kiln_identity_result_init(&res);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_token(&dep, KILN_ENV_SERVICE, &d);
	if (kiln_is_ok(r))
		r = deploy_ca(&dep, &d);
	if (kiln_is_ok(r)) {
		req = (struct kiln_identity_req){ name, role, env, kiln_buf_view(&csr_bytes), c->actor };
		r = kiln_ca_identity_add(dep.ca, &req, &res, &d);
	}
	if (!kiln_is_ok(r))
		rc = cli_fail(r, &d);
	else
		rc = write_outputs(prefix, &res, crt, key, sizeof(crt));
	if (rc == CLI_OK && c->json)
		rc = cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s*}", "name", name, "role", role,
					      "serial", res.serial, "cert", crt, "key",
					      key[0] != '\0' ? key : NULL));
	else if (rc == CLI_OK)
		printf("identity %s (%s) serial %s -> %s%s%s\n", name, role, res.serial, crt,
		       key[0] != '\0' ? ", " : "", key);
	kiln_identity_result_cleanup(&res);
	kiln_buf_cleanup(&csr_bytes);
	deploy_close(&dep);
	return rc;
}

int cmd_identity(int argc, char **argv)
{
	const char *name = NULL, *role = NULL, *out = NULL, *csr = NULL, *env = NULL, *pos[1];
	const struct cli_opt opts[] = {
		{ "name", true, &name, NULL }, { "role", true, &role, NULL },
		{ "out", true, &out, NULL },   { "csr", true, &csr, NULL },
		{ "env", true, &env, NULL },   { NULL, false, NULL, NULL },
	};
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 1, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(identity_usage, stdout);
		return CLI_OK;
	}
	if (npos != 1 || strcmp(pos[0], "add") != 0)
		return cli_usage_error("identity: expected 'add'; see kiln identity --help");
	if (name == NULL || role == NULL || out == NULL)
		return cli_usage_error("identity add: --name, --role and --out are required");
	return identity_add(&c, name, role, out, csr, env);
}
