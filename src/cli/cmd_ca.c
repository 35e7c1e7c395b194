/* kiln ca list | ca chain --env ENV | ca rotate (--env ENV [--algorithm ALG] | --request ID) */
#include "cli.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

static const char ca_usage[] =
	"usage: kiln --dir DIR ca list [--json]\n"
	"       kiln --dir DIR ca chain --env production|test|service\n"
	"       kiln --dir DIR ca rotate --env production|test [--algorithm ALG] [--key KEY] [--json]\n"
	"       kiln --dir DIR ca rotate --request ID [--key KEY] [--json]\n"
	"\n"
	"list    the deployment's CAs: name, environment, role, generation, status, algorithm,\n"
	"        token, serial, expiry; a rotated issuing CA is retired-for-issuance (it still\n"
	"        signs its CRL and OCSP, and what it issued stays valid)\n"
	"chain   the PEM chain of an environment's active issuing CA, issuing CA first, root\n"
	"        last; 'service' is the trust anchor for kiln's own TLS and client identities\n"
	"rotate  replaces an environment's issuing CA, behind officer approvals (docs/ca.md):\n"
	"        with --env, makes a ca-rotate request for the next generation (ALG: p256,\n"
	"        p384, ed25519, rsa3072; default the current CA's) and prints its id; once\n"
	"        approved (kiln approve ID --key KEY), --request ID makes the new key in the\n"
	"        environment's token, has the root certify it, and makes it the issuing CA.\n"
	"        --key names the requester by the private key of an admin or officer identity.\n";

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
		printf("%-22s %-10s %-8s %-3s %-20s %-8s %-13s %-33s %-20s %s\n", "NAME", "ENV",
		       "ROLE", "GEN", "STATUS", "ALG", "TOKEN", "SERIAL", "NOT_AFTER", "SUBJECT");
	for (size_t i = 0; i < n; i++) {
		char na[KILN_TIME_STR];
		const char *status = strcmp(list[i].status, "retired") == 0 ? "retired-for-issuance"
									  : list[i].status;

		kiln_time_format(list[i].not_after, na);
		if (c->json)
			(void)json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name",
					       list[i].name, "env", list[i].env, "role", list[i].role,
					       "generation", (json_int_t)list[i].generation, "status",
					       list[i].status, "alg", list[i].alg, "token",
					       list[i].token, "key_label", list[i].key_label, "serial",
					       list[i].serial, "not_after", na, "subject",
					       list[i].subject));
		else
			printf("%-22s %-10s %-8s %-3lld %-20s %-8s %-13s %-33s %-20s %s\n",
			       list[i].name, list[i].env, list[i].role, (long long)list[i].generation,
			       status, list[i].alg, list[i].token, list[i].serial, na,
			       list[i].subject);
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

struct rotate_args {
	const char *env, *alg, *request, *key;
};

static int rotate_print(const struct cli_common *c, const struct kiln_rotate_result *res,
			bool ran, bool ocsp_made)
{
	char when[KILN_TIME_STR];

	kiln_time_format(res->expires, when);
	if (c->json && !ran)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:s}", "request",
						res->request_id, "status", "pending", "env", res->env,
						"retires", res->old_name, "name", res->new_name,
						"generation", (json_int_t)res->generation, "algorithm",
						res->alg, "quorum", (json_int_t)res->quorum,
						"expires", when));
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:b}", "request",
						res->request_id, "status", "executed", "env",
						res->env, "retired", res->old_name, "name",
						res->new_name, "generation",
						(json_int_t)res->generation, "algorithm", res->alg,
						"serial", res->serial, "key_label", res->key_label,
						"ocsp_signer_made", ocsp_made));
	if (!ran) {
		printf("request %s: rotating %s to %s (generation %lld, %s) waits for %lld officer "
		       "approvals until %s (kiln approve %s --key KEY), then run kiln ca rotate "
		       "--request %s\n", res->request_id, res->old_name, res->new_name,
		       (long long)res->generation, res->alg, (long long)res->quorum, when,
		       res->request_id, res->request_id);
		return CLI_OK;
	}
	printf("request %s executed: %s (generation %lld, %s, serial %s, key %s) issues for %s; "
	       "%s is retired for issuance and keeps its CRL and OCSP\n", res->request_id,
	       res->new_name, (long long)res->generation, res->alg, res->serial, res->key_label,
	       res->env, res->old_name);
	return CLI_OK;
}

/* Both device environments' tokens: the request names which one the run needs. */
static kiln_result rotate_open(struct deployment *dep, bool run, kiln_diag *d)
{
	if (run) {
		KILN_GUARD(deploy_token_opt(dep, KILN_ENV_PRODUCTION, true, d));
		KILN_GUARD(deploy_token_opt(dep, KILN_ENV_TEST, true, d));
	}
	return deploy_ca(dep, d);
}

static int ca_rotate(const struct cli_common *c, const struct rotate_args *a)
{
	static const char *const requesters[] = { "admin", "officer", NULL };
	struct kiln_identity_rec who = { 0 };
	struct kiln_rotate_result res;
	struct kiln_govern_rules rules;
	struct deployment dep;
	const char *actor = c->actor;
	bool run = a->request != NULL, made = false;
	kiln_env env = KILN_ENV_NONE;
	kiln_diag d, warn;
	kiln_result r;
	int rc, lock_fd = -1;

	if ((a->env == NULL) == (a->request == NULL))
		return cli_usage_error("ca rotate: give --env ENV (to request) or --request ID (to "
				       "run an approved request); see kiln ca --help");
	if (run && a->alg != NULL)
		return cli_usage_error("ca rotate: --algorithm goes with --env; the request names it");
	kiln_diag_clear(&d);
	memset(&res, 0, sizeof(res));
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r) && a->key != NULL) {
		r = deploy_requester(&dep, a->key, requesters, &who, &d);
		actor = who.name;
	}
	if (kiln_is_ok(r))
		r = rotate_open(&dep, run, &d);
	if (kiln_is_ok(r) && !run) {
		deploy_rules(&dep, &rules);
		r = kiln_ca_rotate_request(dep.ca, a->env, a->alg, actor, &rules, &res, &d);
	} else if (kiln_is_ok(r)) {
		/*
		 * A running kiln serve loaded the CAs when it started: it would keep
		 * issuing from the CA this retires. It must be stopped first, and none
		 * starts until the rotation is committed.
		 */
		r = deploy_serve_lock(&dep, "running a CA rotation (it would keep issuing "
					  "from the CA the rotation retires)", &lock_fd, &d);
		if (!kiln_is_ok(r))
			r = kiln_govern_refused(dep.store, "request-refused", actor, a->request, r, &d);
		else
			r = kiln_ca_rotate_run(dep.ca, a->request, actor, &res, &d);
	}
	/*
	 * The new CA's delegated OCSP signer, with an engine that knows the new
	 * CA. kiln serve would make it on first use: a failure here is a warning.
	 */
	if (kiln_is_ok(r) && run && kiln_is_ok(kiln_env_parse(res.env, &env))) {
		kiln_diag_clear(&warn);
		if (!kiln_is_ok(deploy_ca(&dep, &warn)) ||
		    !kiln_is_ok(kiln_ca_ocsp_signer_ensure(dep.ca, env, actor, &made, &warn)))
			fprintf(stderr, "kiln: warning: the new CA's OCSP signer is not made yet (%s); "
				"kiln serve makes it on first use\n", warn.text);
	}
	deploy_close(&dep);
	if (lock_fd >= 0)
		(void)close(lock_fd);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	rc = rotate_print(c, &res, run, made);
	return rc;
}

int cmd_ca(int argc, char **argv)
{
	const char *env = NULL, *pos[1];
	struct rotate_args ra = { 0 };
	const struct cli_opt opts[] = { { "env", true, &env, NULL },
					{ "algorithm", true, &ra.alg, NULL },
					{ "request", true, &ra.request, NULL },
					{ "key", true, &ra.key, NULL },
					{ NULL, false, NULL, NULL } };
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
	if (npos == 1 && strcmp(pos[0], "rotate") == 0) {
		ra.env = env;
		return ca_rotate(&c, &ra);
	}
	return cli_usage_error("ca: expected 'list', 'chain' or 'rotate'; see kiln ca --help");
}
