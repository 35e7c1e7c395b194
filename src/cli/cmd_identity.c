/* kiln identity add | list | revoke */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char identity_usage[] =
	"usage: kiln --dir DIR identity add --name NAME --role ROLE --out PREFIX\n"
	"                                   [--csr FILE] [--env production|test]\n"
	"                                   [--request ID] [--key KEY] [--json]\n"
	"       kiln --dir DIR identity list [--json]\n"
	"       kiln --dir DIR identity revoke NAME [--reason TEXT] [--json]\n"
	"\n"
	"add     issues a client certificate from the service CA for a person or a station\n"
	"        and binds it to ROLE (admin, officer, engineer, operator, station, auditor).\n"
	"        Writes PREFIX.crt and, unless --csr brings the holder's own key, a new P-256\n"
	"        key to PREFIX.key (0600). --env limits the identity to one environment.\n"
	"        Adding an admin or officer once the deployment has its quorum of officers\n"
	"        needs officer approvals: the first call (with --csr) makes a request and\n"
	"        prints its id; once approved, the same call with --request ID issues.\n"
	"        --key names the requester by the private key of an identity.\n"
	"list    every identity with its role, environment, certificate and status\n"
	"revoke  locks an identity out: its next request is refused, its certificate revoked\n";

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

struct add_args {
	const char *name, *role, *prefix, *csr, *env, *request, *key;
};

static int print_request(const struct cli_common *c, const struct add_args *a,
			 const struct kiln_identity_result *res, const struct kiln_govern_rules *rules)
{
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", a->name, "role",
						a->role, "status", "pending", "request",
						res->request_id, "quorum",
						(int)rules->quorum[KILN_OP_IDENTITY_ADD]));
	printf("request %s: adding %s %s waits for %u officer approvals "
	       "(kiln approve %s --key KEY), then run this again with --request %s\n",
	       res->request_id, a->role, a->name, rules->quorum[KILN_OP_IDENTITY_ADD],
	       res->request_id, res->request_id);
	return CLI_OK;
}

static int identity_add(const struct cli_common *c, const struct add_args *a)
{
	struct kiln_identity_req req = { 0 };
	struct kiln_identity_result res;
	struct kiln_identity_rec who = { 0 };
	struct kiln_govern_rules rules;
	struct deployment dep;
	kiln_buf csr_bytes;
	char crt[KILN_PATH_MAX], key[KILN_PATH_MAX];
	const char *actor = c->actor;
	kiln_env env = KILN_ENV_NONE;
	kiln_diag d;
	kiln_result r;
	int rc = CLI_FAIL;

	if (a->env != NULL &&
	    (!kiln_is_ok(kiln_env_parse(a->env, &env)) || env == KILN_ENV_SERVICE))
		return cli_usage_error("identity add: --env must be production or test");
	kiln_diag_clear(&d);
	kiln_buf_init(&csr_bytes, 0);
	if (a->csr != NULL) {
		r = kiln_file_read(a->csr, KILN_CSR_MAX_BYTES, &csr_bytes, &d);
		if (!kiln_is_ok(r))
			return cli_fail(r, &d);
	}
	kiln_identity_result_init(&res);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r) && a->key != NULL) {
		static const char *const requesters[] = { "admin", "officer", NULL };

		r = deploy_requester(&dep, a->key, requesters, &who, &d);
		actor = who.name;
	}
	if (kiln_is_ok(r))
		r = deploy_token(&dep, KILN_ENV_SERVICE, &d);
	if (kiln_is_ok(r))
		r = deploy_ca(&dep, &d);
	if (kiln_is_ok(r)) {
		deploy_rules(&dep, &rules);
		req = (struct kiln_identity_req){ a->name, a->role, env, kiln_buf_view(&csr_bytes),
						  actor, &rules, a->request };
		r = kiln_ca_identity_add(dep.ca, &req, &res, &d);
	}
	if (!kiln_is_ok(r))
		rc = cli_fail(r, &d);
	else if (res.request_id[0] != '\0')
		rc = print_request(c, a, &res, &rules);
	else
		rc = write_outputs(a->prefix, &res, crt, key, sizeof(crt));
	if (rc == CLI_OK && res.request_id[0] == '\0' && c->json)
		rc = cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s*}", "name", a->name, "role",
					      a->role, "serial", res.serial, "cert", crt, "key",
					      key[0] != '\0' ? key : NULL));
	else if (rc == CLI_OK && res.request_id[0] == '\0')
		printf("identity %s (%s) serial %s -> %s%s%s\n", a->name, a->role, res.serial, crt,
		       key[0] != '\0' ? ", " : "", key);
	kiln_identity_result_cleanup(&res);
	kiln_buf_cleanup(&csr_bytes);
	deploy_close(&dep);
	return rc;
}

static int identity_list(const struct cli_common *c)
{
	struct kiln_identity_rec *list = NULL;
	struct deployment dep;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_identity_list(dep.store, &list, &n, &d);
	if (!kiln_is_ok(r)) {
		deploy_close(&dep);
		return cli_fail(r, &d);
	}
	arr = json_array();
	if (!c->json)
		printf("%-24s %-9s %-11s %-8s %-20s %s\n", "NAME", "ROLE", "ENV", "STATUS", "CREATED",
		       "CERTIFICATE");
	for (size_t i = 0; i < n; i++) {
		char when[KILN_TIME_STR];

		kiln_time_format(list[i].created, when);
		if (c->json)
			(void)json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", list[i].name,
					       "role", list[i].role, "env", list[i].env, "status",
					       list[i].status, "created", when, "cert_serial",
					       list[i].cert_serial));
		else
			printf("%-24s %-9s %-11s %-8s %-20s %s\n", list[i].name, list[i].role,
			       list[i].env[0] != '\0' ? list[i].env : "any", list[i].status, when,
			       list[i].cert_serial);
	}
	free(list);
	deploy_close(&dep);
	if (c->json)
		return cli_print_json(arr);
	json_decref(arr);
	return CLI_OK;
}

struct revoke_work {
	const char *name, *reason, *actor;
};

static kiln_result revoke_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct revoke_work *w = ctx;
	struct kiln_event_rec ev = { 0 };
	json_t *j;
	kiln_result r;

	KILN_GUARD(kiln_store_tx_identity_revoke(tx, w->name, 0, w->reason, d));
	j = json_pack("{s:s}", "reason", w->reason);
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, "identity-revoke", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, w->name, sizeof(ev.subject));
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

static int identity_revoke(const struct cli_common *c, const char *name, const char *reason)
{
	struct revoke_work w = { name, reason != NULL ? reason : "unspecified", c->actor };
	struct deployment dep;
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r) && strlen(w.reason) > 200)
		r = kiln_diag_set(&d, KILN_ERR_ARG, "identity revoke: --reason is at most 200 bytes");
	if (kiln_is_ok(r))
		r = kiln_store_write(dep.store, revoke_tx, &w, &d);
	if (!kiln_is_ok(r) && dep.store != NULL)
		r = kiln_govern_refused(dep.store, "rejection", c->actor, name, r, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s}", "name", name, "status", "revoked"));
	printf("identity %s revoked\n", name);
	return CLI_OK;
}

int cmd_identity(int argc, char **argv)
{
	struct add_args a = { 0 };
	const char *reason = NULL, *pos[2];
	const struct cli_opt opts[] = {
		{ "name", true, &a.name, NULL },       { "role", true, &a.role, NULL },
		{ "out", true, &a.prefix, NULL },      { "csr", true, &a.csr, NULL },
		{ "env", true, &a.env, NULL },         { "request", true, &a.request, NULL },
		{ "key", true, &a.key, NULL },         { "reason", true, &reason, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(identity_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return identity_list(&c);
	if (npos == 2 && strcmp(pos[0], "revoke") == 0)
		return identity_revoke(&c, pos[1], reason);
	if (npos != 1 || strcmp(pos[0], "add") != 0)
		return cli_usage_error(
			"identity: expected 'add', 'list' or 'revoke NAME'; see kiln identity --help");
	if (a.name == NULL || a.role == NULL || a.prefix == NULL)
		return cli_usage_error("identity add: --name, --role and --out are required");
	return identity_add(&c, &a);
}
