/* kiln approve REQUEST-ID --key KEY | kiln request list | kiln request show ID */
#include "cli.h"

#include "govern/govern.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char approve_usage[] =
	"usage: kiln --dir DIR approve REQUEST-ID --key KEY [--json]\n"
	"\n"
	"Signs the request's digest with KEY, the private key of an officer identity,\n"
	"and records the approval. The officer is the identity whose certificate holds\n"
	"KEY's public key; it must be active, not the requester, and may approve a\n"
	"request once. A policy activation or a recall (revoke-bulk) runs as soon as it\n"
	"has its quorum, in the transaction of the approval that completes it.\n";

static const char request_usage[] =
	"usage: kiln --dir DIR request list [--json]\n"
	"       kiln --dir DIR request show ID [--json]\n"
	"\n"
	"Approval requests (docs/roles.md): the operation, its canonical parameters,\n"
	"the digest officers sign, requester, expiry, status and approvals.\n";

static int approve(const struct cli_common *c, const char *id, const char *key_file)
{
	struct kiln_identity_rec who = { 0 };
	struct kiln_request_rec q;
	struct kiln_approve_result res;
	struct deployment dep;
	EVP_PKEY *key = NULL;
	kiln_buf sig;
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	kiln_buf_init(&sig, KILN_STORE_SIG_MAX);
	/* NEED_CA: an approval that completes a recall's quorum runs it (kiln_ca_approve). */
	r = deploy_open(c, NEED_CA, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_key_identity(&dep, key_file, &who, &key, &d);
	if (kiln_is_ok(r)) {
		r = kiln_store_request_get(dep.store, id, &q, &d);
		if (!kiln_is_ok(r))
			r = kiln_govern_refused(dep.store, "approval-refused", who.name, id, r, &d);
	}
	if (kiln_is_ok(r))
		r = kiln_govern_sign(key, q.digest, &sig, &d);
	if (kiln_is_ok(r))
		r = kiln_ca_approve(dep.ca, id, who.name, kiln_buf_view(&sig), 0, &res, &d);
	EVP_PKEY_free(key);
	kiln_buf_cleanup(&sig);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:I}", "request", id,
						"approver", who.name, "operation", res.operation,
						"approvals", (json_int_t)res.approvals, "quorum",
						(json_int_t)res.quorum, "executed", res.executed,
						"affected", (json_int_t)res.affected));
	printf("request %s: approved by %s (%lld of %lld)%s\n", id, who.name,
	       (long long)res.approvals, (long long)res.quorum,
	       res.executed ? "; executed" : "");
	if (res.executed && strcmp(res.operation, "revoke-bulk") == 0)
		printf("recall executed: %lld certificates revoked\n", (long long)res.affected);
	return CLI_OK;
}

int cmd_approve(int argc, char **argv)
{
	const char *pos[1], *key = NULL;
	const struct cli_opt opts[] = { { "key", true, &key, NULL }, { NULL, false, NULL, NULL } };
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 1, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(approve_usage, stdout);
		return CLI_OK;
	}
	if (npos != 1 || key == NULL)
		return cli_usage_error("approve: expected REQUEST-ID and --key KEY; see kiln approve --help");
	return approve(&c, pos[0], key);
}

static int request_list(const struct cli_common *c)
{
	struct kiln_request_rec *list = NULL;
	struct deployment dep;
	int64_t now = kiln_now();
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_request_list(dep.store, &list, &n, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	arr = json_array();
	if (!c->json)
		printf("%-28s %-16s %-9s %-9s %-20s %s\n", "ID", "OPERATION", "STATUS", "APPROVALS",
		       "REQUESTER", "PARAMS");
	for (size_t i = 0; i < n; i++) {
		char count[32];

		(void)snprintf(count, sizeof(count), "%lld/%lld", (long long)list[i].approvals,
			       (long long)list[i].quorum);
		if (c->json)
			(void)json_array_append_new(arr, kiln_govern_request_json(&list[i], now));
		else
			printf("%-28s %-16s %-9s %-9s %-20s %s\n", list[i].id, list[i].operation,
			       kiln_govern_request_state(&list[i], now), count, list[i].requester,
			       list[i].params_json);
	}
	free(list);
	if (c->json)
		return cli_print_json(arr);
	json_decref(arr);
	return CLI_OK;
}

static int request_show(const struct cli_common *c, const char *id)
{
	struct kiln_approval_rec *approvals = NULL;
	struct kiln_request_rec q;
	struct deployment dep;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *j, *arr;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_request_get(dep.store, id, &q, &d);
	if (kiln_is_ok(r))
		r = kiln_store_approval_list(dep.store, id, &approvals, &n, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	j = kiln_govern_request_json(&q, kiln_now());
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char when[KILN_TIME_STR];

		kiln_time_format(approvals[i].created, when);
		(void)json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "approver",
							   approvals[i].approver, "cert_serial",
							   approvals[i].cert_serial, "time", when));
	}
	free(approvals);
	if (j != NULL)
		(void)json_object_set_new(j, "approved_by", arr);
	else
		json_decref(arr);
	return cli_print_json(j);
}

int cmd_request(int argc, char **argv)
{
	const char *pos[2];
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, NULL, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(request_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return request_list(&c);
	if (npos == 2 && strcmp(pos[0], "show") == 0)
		return request_show(&c, pos[1]);
	return cli_usage_error("request: expected 'list' or 'show ID'; see kiln request --help");
}
