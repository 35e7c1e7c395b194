/* kiln policy add FILE | policy list */
#include "cli.h"

#include <jansson.h>
#include <string.h>

static const char policy_usage[] =
	"usage: kiln --dir DIR policy add FILE.yaml [--key KEY] [--json]\n"
	"       kiln --dir DIR policy list [--json]\n"
	"\n"
	"add   validate a product policy (errors name the file and line) and store it as\n"
	"      the product's next version, pending, with a policy-activate request: it\n"
	"      takes effect once enough officers approve (kiln approve ID --key KEY).\n"
	"      --key names the requester by the private key of an identity (whose own\n"
	"      approval then does not count). A product's environment never changes.\n"
	"list  every product and policy version with its status and SHA-256\n"
	"The schema is in docs/policy.md; examples are in examples/policies/.\n";

static int policy_add(const struct cli_common *c, const char *file, const char *key_file)
{
	struct kiln_identity_rec who = { 0 };
	struct kiln_request_rec req = { 0 };
	struct kiln_govern_rules rules;
	const char *actor = c->actor;
	struct deployment dep;
	kiln_buf yaml;
	struct kiln_policy_added added = { 0 };
	kiln_diag d;
	kiln_result r;
	int rc;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_CA, &dep, &d);
	if (kiln_is_ok(r) && key_file != NULL) {
		static const char *const requesters[] = { "admin", "officer", "engineer", NULL };

		r = deploy_requester(&dep, key_file, requesters, &who, &d);
		actor = who.name;
	}
	if (!kiln_is_ok(r)) {
		deploy_close(&dep);
		return cli_fail(r, &d);
	}
	deploy_rules(&dep, &rules);
	r = kiln_file_read(file, KILN_POLICY_MAX_BYTES, &yaml, &d);
	if (kiln_is_ok(r)) {
		r = kiln_ca_policy_request(dep.ca, kiln_buf_view(&yaml), file, actor, &rules,
					   &added, &req, &d);
		kiln_buf_cleanup(&yaml);
	}
	if (!kiln_is_ok(r))
		r = kiln_govern_refused(dep.store, "rejection", actor, file, r, &d);
	if (!kiln_is_ok(r)) {
		rc = cli_fail(r, &d);
	} else {
		char hash[65];

		kiln_hex_encode(added.sha256, 32, hash);
		if (c->json)
			rc = cli_print_json(json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I}", "product",
						      added.product, "env", kiln_env_name(added.env),
						      "version", (json_int_t)added.version, "status",
						      added.status, "sha256", hash, "request", req.id,
						      "quorum", (json_int_t)req.quorum));
		else
			rc = printf("policy %s v%lld (%s) added, %s, sha256 %s\n"
				    "request %s: activation waits for %lld officer approvals "
				    "(kiln approve %s --key KEY)\n",
				    added.product, (long long)added.version,
				    kiln_env_name(added.env), added.status, hash, req.id,
				    (long long)req.quorum, req.id) > 0 ? CLI_OK : CLI_FAIL;
	}
	deploy_close(&dep);
	return rc;
}

static int policy_list(const struct cli_common *c)
{
	struct deployment dep;
	struct kiln_policy_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;
	int rc = CLI_OK;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_store_policy_list(dep.store, &list, &n, &d);
	if (!kiln_is_ok(r)) {
		deploy_close(&dep);
		return cli_fail(r, &d);
	}
	arr = json_array();
	if (!c->json)
		printf("%-24s %-8s %-11s %-11s %-20s %s\n", "PRODUCT", "VERSION", "ENV", "STATUS",
		       "ADDED", "SHA256");
	for (size_t i = 0; i < n; i++) {
		char hash[65], when[KILN_TIME_STR];

		kiln_hex_encode(list[i].sha256, 32, hash);
		kiln_time_format(list[i].created, when);
		if (c->json)
			(void)json_array_append_new(
				arr, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "product",
					       list[i].product, "version", (json_int_t)list[i].version,
					       "env", list[i].env, "status", list[i].status, "sha256",
					       hash, "created", when, "added_by", list[i].added_by));
		else
			printf("%-24s %-8lld %-11s %-11s %-20s %s\n", list[i].product,
			       (long long)list[i].version, list[i].env, list[i].status, when, hash);
	}
	if (c->json)
		rc = cli_print_json(arr);
	else
		json_decref(arr);
	kiln_store_policy_list_free(list, n);
	deploy_close(&dep);
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	const char *pos[2], *key = NULL;
	const struct cli_opt opts[] = { { "key", true, &key, NULL }, { NULL, false, NULL, NULL } };
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(policy_usage, stdout);
		return CLI_OK;
	}
	if (npos == 2 && strcmp(pos[0], "add") == 0)
		return policy_add(&c, pos[1], key);
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return policy_list(&c);
	return cli_usage_error("policy: expected 'add FILE' or 'list'; see kiln policy --help");
}
