/* kiln revoke (--serial | --device | --batch | --station [--from T --to T]) --reason R; kiln crl */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char revoke_usage[] =
	"usage: kiln --dir DIR revoke (--serial HEX | --device ID | --batch LOT |\n"
	"                              --station NAME [--from TIME] [--to TIME])\n"
	"                             --reason REASON [--wait SECONDS] [--json]\n"
	"\n"
	"Revokes one certificate (by serial, or a device's current one) at once. A recall\n"
	"of every valid certificate of a lot (--batch) or of what one station provisioned\n"
	"in [--from, --to) (TIME: 2026-11-21T12:00:00Z or seconds since 1970) is gated:\n"
	"it makes a revoke-bulk request and prints its id; the recall runs when N\n"
	"officers have approved it (kiln approve ID --key KEY), over the certificates it\n"
	"matches then. A recall that matches nothing now is refused. REASON is an RFC\n"
	"5280 name: unspecified, keyCompromise, cACompromise, affiliationChanged,\n"
	"superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.\n"
	"The revocations, their events and the revocation generation are one commit;\n"
	"kiln serve --listen-http publishes them (OCSP at once, CRLs coalesced); kiln crl\n"
	"writes a CRL now. --wait waits until kiln serve has published every one in OCSP\n"
	"and prints the time to revoke: from this command to an OCSP response saying\n"
	"revoked (kiln serve records, per revocation, the time from commit to published).\n";

#define CRL_TARGETS_MAX 16

static const char crl_usage[] =
	"usage: kiln --dir DIR crl --env production|test [--ca NAME] [--out FILE] [--json]\n"
	"\n"
	"Issues the next CRL of each issuing CA of the environment (CRL number one above\n"
	"the last; nextUpdate from revocation.crl_validity_hours in kiln.yaml): the active\n"
	"one and those retired by kiln ca rotate, whose certificates stay valid. Each is\n"
	"written, DER, to DIR/crl/<ca>.crl (what kiln serve publishes). --ca NAME issues\n"
	"only that CA's. --out FILE receives the active CA's (or NAME's) CRL.\n";

/* "2026-11-21T12:00:00Z" or decimal seconds. */
static bool parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	uint64_t v = 0;
	char z = 0;
	int n = 0;

	if (kiln_is_ok(kiln_parse_u64(s, (uint64_t)253402300799, &v))) {
		*out = (int64_t)v;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &n) != 7 || z != 'Z' ||
	    s[n] != '\0' || tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm);
	return *out >= 0;
}

/*
 * Waits until kiln serve has published every revocation in OCSP; *to_ocsp_ms
 * receives the time from start_ms (this command's start) to the last one.
 */
static kiln_result wait_published(kiln_store *s, const struct kiln_revoke_result *res,
				  int64_t start_ms, uint64_t wait_s, int64_t *to_ocsp_ms,
				  kiln_diag *d)
{
	uint64_t deadline = kiln_mono_ns() + wait_s * 1000000000ull;
	const struct timespec pause = { 0, 20 * 1000000L };
	size_t done = 0;
	int64_t rec = 0, vis = -1, last = 0;

	while (done < res->n) {
		KILN_GUARD(kiln_store_revocation_timing(s, res->serials[done], &rec, &vis, d));
		if (vis >= 0) {
			last = rec + vis > last ? rec + vis : last;
			done++;
			continue;
		}
		if (kiln_mono_ns() > deadline)
			return kiln_diag_set(d, KILN_ERR_TIMEOUT, "revoked, but no kiln serve "
					     "--listen-http published %s in OCSP within %llu s",
					     res->serials[done], (unsigned long long)wait_s);
		(void)nanosleep(&pause, NULL);
	}
	*to_ocsp_ms = last - start_ms;
	return kiln_ok();
}

/* A recall asked for: the request officers approve. */
static int recall_print(const struct cli_common *c, const struct kiln_revoke_result *res,
			const char *reason)
{
	char until[KILN_TIME_STR];

	kiln_time_format(res->expires, until);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:I,s:I,s:s,s:s}", "request",
						res->request_id, "operation", "revoke-bulk",
						"matched", (json_int_t)res->matched, "quorum",
						(json_int_t)res->quorum, "expires", until, "reason",
						reason));
	return printf("recall of %zu certificate%s (%s) requested: request %s\n"
		      "the recall runs once %lld officers approve it (kiln approve %s --key KEY), "
		      "before %s\n", res->matched, res->matched == 1 ? "" : "s", reason,
		      res->request_id, (long long)res->quorum, res->request_id, until) > 0
		       ? CLI_OK : CLI_FAIL;
}

static int revoke_print(const struct cli_common *c, const struct kiln_revoke_result *res,
			const char *reason, double ms, int64_t to_ocsp_ms)
{
	char when[KILN_TIME_STR];
	json_t *arr;

	kiln_time_format(res->revoked_at, when);
	if (c->json) {
		arr = json_array();
		for (size_t i = 0; i < res->n; i++)
			(void)json_array_append_new(arr, json_string(res->serials[i]));
		return cli_print_json(json_pack("{s:o,s:I,s:s,s:s,s:I,s:f,s:I}", "revoked", arr,
						"count", (json_int_t)res->n, "reason", reason,
						"revoked_at", when, "revocation_seq",
						(json_int_t)res->seq, "commit_ms", ms,
						"time_to_revoke_ms", (json_int_t)to_ocsp_ms));
	}
	for (size_t i = 0; i < res->n; i++)
		printf("revoked %s\n", res->serials[i]);
	printf("%zu certificate%s revoked (%s) at %s, revocation generation %lld, committed in "
	       "%.1f ms\n", res->n, res->n == 1 ? "" : "s", reason, when, (long long)res->seq, ms);
	if (to_ocsp_ms >= 0)
		printf("time to revoke: %lld ms from this command to OCSP responses saying revoked\n",
		       (long long)to_ocsp_ms);
	return CLI_OK;
}

int cmd_revoke(int argc, char **argv)
{
	const char *serial = NULL, *device = NULL, *lot = NULL, *station = NULL, *reason = NULL;
	const char *from = NULL, *to = NULL, *wait = NULL;
	const struct cli_opt opts[] = {
		{ "wait", true, &wait, NULL },
		{ "serial", true, &serial, NULL },   { "device", true, &device, NULL },
		{ "batch", true, &lot, NULL },       { "station", true, &station, NULL },
		{ "from", true, &from, NULL },       { "to", true, &to, NULL },
		{ "reason", true, &reason, NULL },   { NULL, false, NULL, NULL },
	};
	struct kiln_revoke_req req = { 0 };
	struct kiln_revoke_result res = { 0 };
	struct kiln_govern_rules rules;
	struct deployment dep;
	struct cli_common c;
	const char *pos[1];
	size_t npos = 0;
	uint64_t wait_s = 0;
	int64_t t0, start_ms = kiln_wall_ms(), to_ocsp_ms = -1;
	double ms = 0;
	kiln_diag d;
	kiln_result r;
	int rc;

	if (!cli_parse(argc, argv, &c, opts, pos, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(revoke_usage, stdout);
		return CLI_OK;
	}
	if (reason == NULL)
		return cli_usage_error("revoke: --reason is required; see kiln revoke --help");
	if (wait != NULL && (!kiln_is_ok(kiln_parse_u64(wait, 600, &wait_s)) || wait_s == 0))
		return cli_usage_error("revoke: --wait takes 1 to 600 seconds");
	if ((from != NULL && !parse_time(from, &req.from)) || (to != NULL && !parse_time(to, &req.to)))
		return cli_usage_error("revoke: --from and --to take 2026-11-21T12:00:00Z or seconds");
	req.serial = serial;
	req.device = device;
	req.lot = lot;
	req.station = station;
	req.reason = reason;
	req.actor = c.actor;
	kiln_diag_clear(&d);
	r = deploy_open(&c, NEED_CA, &dep, &d);
	t0 = (int64_t)kiln_mono_ns();
	if (kiln_is_ok(r)) {
		deploy_rules(&dep, &rules);
		req.rules = &rules;
		r = kiln_ca_revoke(dep.ca, &req, &res, &d);
	}
	ms = (double)(kiln_mono_ns() - (uint64_t)t0) / 1e6;
	if (kiln_is_ok(r) && wait_s > 0 && res.request_id[0] == '\0')
		r = wait_published(dep.store, &res, start_ms, wait_s, &to_ocsp_ms, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r)) {
		kiln_revoke_result_cleanup(&res);
		return cli_fail(r, &d);
	}
	rc = res.request_id[0] != '\0' ? recall_print(&c, &res, reason)
					: revoke_print(&c, &res, reason, ms, to_ocsp_ms);
	kiln_revoke_result_cleanup(&res);
	return rc;
}

static kiln_result crl_write(const struct deployment *dep, const struct kiln_crl_result *res,
			     const char *out, char *path, size_t cap, kiln_diag *d)
{
	char dir[KILN_PATH_MAX], name[96];

	KILN_GUARD(deploy_path(dep->dir, "crl", dir, sizeof(dir)));
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot create %s", dir);
	(void)snprintf(name, sizeof(name), "%s.crl", res->ca_name);
	KILN_GUARD(deploy_path(dir, name, path, cap));
	KILN_GUARD(kiln_file_write(path, kiln_buf_view(&res->der), 0644, d));
	if (out != NULL)
		KILN_GUARD(kiln_file_write(out, kiln_buf_view(&res->der), 0644, d));
	return kiln_ok();
}

struct crl_one {
	char name[64];
	bool active;
	struct kiln_crl_result res;
	char path[KILN_PATH_MAX];
	int64_t ms;
};

/* The issuing CAs of env (every generation), or only the one named. */
static kiln_result crl_targets(kiln_store *s, const char *env_name, const char *only,
			       struct crl_one *out, size_t cap, size_t *n, kiln_diag *d)
{
	struct kiln_ca_rec *list = NULL;
	size_t count = 0;

	*n = 0;
	KILN_GUARD(kiln_store_ca_list(s, &list, &count, d));
	for (size_t i = 0; i < count && *n < cap; i++) {
		if (strcmp(list[i].role, "issuing") != 0 || strcmp(list[i].env, env_name) != 0 ||
		    (only != NULL && strcmp(list[i].name, only) != 0))
			continue;
		kiln_strtrunc(out[*n].name, list[i].name, sizeof(out[*n].name));
		out[(*n)++].active = strcmp(list[i].status, "retired") != 0;
	}
	kiln_store_ca_list_free(list, count);
	if (*n == 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no issuing CA %s%s%s; see kiln ca list",
				     only != NULL ? only : "", only != NULL ? " in " : "for ", env_name);
	return kiln_ok();
}

static int crl_print(const struct cli_common *c, const struct crl_one *v, size_t n)
{
	char next[KILN_TIME_STR];
	json_t *arr, *first = NULL;
	size_t main_i = 0;

	for (size_t i = 0; i < n; i++)
		main_i = v[i].active ? i : main_i;
	if (!c->json) {
		for (size_t i = 0; i < n; i++) {
			kiln_time_format(v[i].res.rec.next_update, next);
			printf("CRL %s number %lld: %lld revoked, next update %s, %zu bytes in %lld ms, "
			       "written to %s\n", v[i].res.ca_name, (long long)v[i].res.rec.number,
			       (long long)v[i].res.rec.entries, next, v[i].res.der.len,
			       (long long)v[i].ms, v[i].path);
		}
		return CLI_OK;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o;

		kiln_time_format(v[i].res.rec.next_update, next);
		o = json_pack("{s:s,s:I,s:I,s:s,s:s,s:I,s:b}", "ca", v[i].res.ca_name, "number",
			      (json_int_t)v[i].res.rec.number, "entries",
			      (json_int_t)v[i].res.rec.entries, "next_update", next, "path",
			      v[i].path, "ms", (json_int_t)v[i].ms, "active", v[i].active);
		if (i == main_i && o != NULL)
			first = json_deep_copy(o);
		(void)json_array_append_new(arr, o);
	}
	/* The active CA's CRL at the top level (as before rotation existed), all of them in "crls". */
	if (first == NULL) {
		json_decref(arr);
		return CLI_FAIL;
	}
	(void)json_object_set_new(first, "crls", arr);
	return cli_print_json(first);
}

int cmd_crl(int argc, char **argv)
{
	const char *env_name = NULL, *out = NULL, *only = NULL;
	const struct cli_opt opts[] = {
		{ "env", true, &env_name, NULL }, { "out", true, &out, NULL },
		{ "ca", true, &only, NULL },      { NULL, false, NULL, NULL },
	};
	struct crl_one *v = NULL;
	struct deployment dep;
	struct cli_common c;
	kiln_env env;
	int64_t t0;
	const char *pos[1];
	size_t npos = 0, n = 0;
	kiln_diag d;
	kiln_result r;
	int rc;

	if (!cli_parse(argc, argv, &c, opts, pos, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(crl_usage, stdout);
		return CLI_OK;
	}
	if (env_name == NULL || !kiln_is_ok(kiln_env_parse(env_name, &env)) ||
	    (env != KILN_ENV_PRODUCTION && env != KILN_ENV_TEST))
		return cli_usage_error("crl: --env production or --env test is required");
	v = calloc(CRL_TARGETS_MAX, sizeof(*v));
	if (v == NULL)
		return cli_fail(kiln_fail(KILN_ERR_NOMEM), NULL);
	kiln_diag_clear(&d);
	r = deploy_open(&c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = crl_targets(dep.store, env_name, only, v, CRL_TARGETS_MAX, &n, &d);
	if (kiln_is_ok(r))
		r = deploy_token(&dep, env, &d);
	if (kiln_is_ok(r))
		r = deploy_ca(&dep, &d);
	for (size_t i = 0; i < n && kiln_is_ok(r); i++) {
		struct crl_one *o = &v[i];
		bool main_crl = n == 1 || o->active;

		kiln_buf_init(&o->res.der, KILN_CRL_MAX_BYTES);
		t0 = (int64_t)(kiln_mono_ns() / 1000000);
		r = kiln_ca_crl_issue(dep.ca, o->name, (int64_t)dep.cfg.crl_validity_hours * 3600,
				      c.actor, &o->res, &d);
		o->ms = (int64_t)(kiln_mono_ns() / 1000000) - t0;
		if (kiln_is_ok(r))
			r = crl_write(&dep, &o->res, main_crl ? out : NULL, o->path, sizeof(o->path),
				      &d);
	}
	deploy_close(&dep);
	rc = kiln_is_ok(r) ? crl_print(&c, v, n) : cli_fail(r, &d);
	for (size_t i = 0; i < n; i++)
		kiln_buf_cleanup(&v[i].res.der);
	free(v);
	return rc;
}
