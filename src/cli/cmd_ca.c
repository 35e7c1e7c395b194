/* kiln ca list | ca chain --env ENV */
#include "cli.h"

#include <jansson.h>
#include <string.h>

static const char ca_usage[] =
	"usage: kiln --dir DIR ca list [--json]\n"
	"       kiln --dir DIR ca chain --env production|test|service\n"
	"\n"
	"list   the deployment's CAs: name, environment, role, algorithm, token, serial, expiry\n"
	"chain  the PEM chain of an environment's issuing CA, issuing CA first, root last;\n"
	"       'service' is the trust anchor for kiln's own TLS and client identities\n";

static int ca_list(const struct cli_common *c)
{
	struct deployment dep;
	struct kiln_ca_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;
	int rc = CLI_OK;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_ca_list(dep.store, &list, &n, &d);
	if (!kiln_is_ok(r)) {
		deploy_close(&dep);
		return cli_fail(r, &d);
	}
	arr = json_array();
	if (!c->json)
		printf("%-20s %-10s %-8s %-8s %-13s %-33s %-20s %s\n", "NAME", "ENV", "ROLE", "ALG",
		       "TOKEN", "SERIAL", "NOT_AFTER", "SUBJECT");
	for (size_t i = 0; i < n; i++) {
		char na[KILN_TIME_STR];

		kiln_time_format(list[i].not_after, na);
		if (c->json)
			(void)json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name",
					       list[i].name, "env", list[i].env, "role", list[i].role,
					       "alg", list[i].alg, "token", list[i].token, "key_label",
					       list[i].key_label, "serial", list[i].serial, "not_after",
					       na, "subject", list[i].subject));
		else
			printf("%-20s %-10s %-8s %-8s %-13s %-33s %-20s %s\n", list[i].name,
			       list[i].env, list[i].role, list[i].alg, list[i].token, list[i].serial,
			       na, list[i].subject);
	}
	if (c->json)
		rc = cli_print_json(arr);
	else
		json_decref(arr);
	kiln_store_ca_list_free(list, n);
	deploy_close(&dep);
	return rc;
}

static int ca_chain(const struct cli_common *c, const char *env_name)
{
	struct deployment dep;
	kiln_env env;
	kiln_buf pem;
	kiln_diag d;
	kiln_result r;

	if (env_name == NULL || !kiln_is_ok(kiln_env_parse(env_name, &env)))
		return cli_usage_error("ca chain: --env must be production, test or service");
	kiln_diag_clear(&d);
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	r = deploy_open(c, NEED_CA, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_ca_chain_pem(dep.ca, env, &pem, &d);
	if (kiln_is_ok(r))
		fwrite(pem.ptr, 1, pem.len, stdout);
	kiln_buf_cleanup(&pem);
	deploy_close(&dep);
	return kiln_is_ok(r) ? CLI_OK : cli_fail(r, &d);
}

int cmd_ca(int argc, char **argv)
{
	const char *env = NULL, *pos[1];
	const struct cli_opt opts[] = { { "env", true, &env, NULL }, { NULL, false, NULL, NULL } };
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 1, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(ca_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return ca_list(&c);
	if (npos == 1 && strcmp(pos[0], "chain") == 0)
		return ca_chain(&c, env);
	return cli_usage_error("ca: expected 'list' or 'chain'; see kiln ca --help");
}
