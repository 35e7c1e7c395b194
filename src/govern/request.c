/*
 * Approval requests: operations and their canonical form, creation, the
 * check before a gated operation runs, its execution mark, and the
 * bootstrap rule for the first officers.
 */
#include "govern/govern.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[KILN_OP__COUNT] = {
	[KILN_OP_POLICY_ACTIVATE] = "policy-activate",
	[KILN_OP_IDENTITY_ADD] = "identity-add",
	[KILN_OP_REVOKE_BULK] = "revoke-bulk",
	[KILN_OP_CA_ROTATE] = "ca-rotate",
	[KILN_OP_BACKUP_RESTORE] = "backup-restore",
};

const char *kiln_op_name(kiln_op op)
{
	return (unsigned)op < KILN_OP__COUNT ? op_names[op] : "unknown";
}

kiln_result kiln_op_parse(const char *name, kiln_op *out)
{
	KILN_ENSURE(name != NULL && out != NULL, KILN_ERR_ARG);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++) {
		if (strcmp(name, op_names[i]) == 0) {
			*out = (kiln_op)i;
			return kiln_ok();
		}
	}
	return kiln_fail(KILN_ERR_ARG);
}

kiln_result kiln_govern_canonical(const struct kiln_request_rec *q, kiln_buf *out)
{
	KILN_ENSURE(q != NULL && out != NULL, KILN_ERR_ARG);
	return kiln_buf_printf(out,
			       "kiln-request-v1\nid=%s\noperation=%s\nparams=%s\nrequester=%s\n"
			       "expires=%lld\n",
			       q->id, q->operation, q->params_json, q->requester,
			       (long long)q->expires);
}

kiln_result kiln_govern_digest(const struct kiln_request_rec *q, uint8_t out[32])
{
	kiln_buf b;
	kiln_result r;

	kiln_buf_init(&b, KILN_STORE_PARAMS_MAX * 2);
	r = kiln_govern_canonical(q, &b);
	if (kiln_is_ok(r))
		(void)SHA256(b.ptr, b.len, out);
	kiln_buf_cleanup(&b);
	return r;
}

kiln_result kiln_govern_params(const json_t *j, char *out, size_t cap)
{
	char *s;
	kiln_result r;

	KILN_ENSURE(j != NULL && json_is_object(j) && out != NULL, KILN_ERR_ARG);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	KILN_ENSURE(s != NULL, KILN_ERR_NOMEM);
	r = kiln_strlcpy(out, s, cap);
	free(s);
	return r;
}

kiln_result kiln_govern_request_init(const struct kiln_govern_rules *rules, kiln_op op,
				     const json_t *params, const char *requester, int64_t now,
				     struct kiln_request_rec *out, kiln_diag *d)
{
	uint8_t rnd[12];
	char hex[25];

	KILN_ENSURE(rules != NULL && params != NULL && requester != NULL && out != NULL,
		    KILN_ERR_ARG);
	KILN_ENSURE((unsigned)op < KILN_OP__COUNT && rules->quorum[op] >= 1 && rules->ttl_s > 0,
		    KILN_ERR_ARG);
	memset(out, 0, sizeof(*out));
	KILN_GUARD(kiln_random(rnd, sizeof(rnd)));
	kiln_hex_encode(rnd, sizeof(rnd), hex);
	(void)snprintf(out->id, sizeof(out->id), "req-%s", hex);
	kiln_strtrunc(out->operation, kiln_op_name(op), sizeof(out->operation));
	if (!kiln_is_ok(kiln_govern_params(params, out->params_json, sizeof(out->params_json))))
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "the parameters of a %s request are too long",
				     kiln_op_name(op));
	if (!kiln_is_ok(kiln_strlcpy(out->requester, requester, sizeof(out->requester))))
		return kiln_diag_set(d, KILN_ERR_ARG, "requester name too long");
	out->quorum = rules->quorum[op];
	out->created = now != 0 ? now : kiln_now();
	out->expires = out->created + rules->ttl_s;
	kiln_strtrunc(out->status, "pending", sizeof(out->status));
	return kiln_govern_digest(out, out->digest);
}

/* An event in tx: type, actor, subject, detail (a jansson object, consumed). */
static kiln_result event(kiln_store_tx *tx, const char *type, const char *actor,
			 const char *subject, int64_t when, json_t *detail, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	KILN_ENSURE(detail != NULL, KILN_ERR_NOMEM);
	ev.time = when;
	kiln_strtrunc(ev.type, type, sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, subject, sizeof(ev.subject));
	ev.detail_json = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(detail);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

kiln_result kiln_govern_tx_request_add(kiln_store_tx *tx, const struct kiln_request_rec *q,
				       kiln_diag *d)
{
	char digest[65];

	KILN_ENSURE(q != NULL, KILN_ERR_ARG);
	KILN_GUARD(kiln_store_tx_request_add(tx, q, d));
	kiln_hex_encode(q->digest, 32, digest);
	return event(tx, "request", q->requester, q->id, q->created,
		     json_pack("{s:s,s:o,s:s,s:I,s:I}", "operation", q->operation, "params",
			       json_loads(q->params_json, 0, NULL), "digest", digest, "quorum",
			       (json_int_t)q->quorum, "expires", (json_int_t)q->expires),
		     d);
}

static kiln_result add_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_govern_tx_request_add(tx, ctx, d);
}

kiln_result kiln_govern_request_create(kiln_store *s, const struct kiln_govern_rules *rules,
				       kiln_op op, const json_t *params, const char *requester,
				       int64_t now, struct kiln_request_rec *out, kiln_diag *d)
{
	KILN_GUARD(kiln_govern_request_init(rules, op, params, requester, now, out, d));
	return kiln_store_write(s, add_fn, out, d);
}

/* A refusal of a request: one event in its own transaction; the refusal itself is returned. */
static kiln_result refused(kiln_store *s, const char *type, const char *actor, const char *id,
			   kiln_result why, const kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	json_t *j = json_pack("{s:s,s:s}", "reason", kiln_err_info(why.code)->slug, "message",
			      kiln_diag_message(d, why));

	ev.time = kiln_now();
	kiln_strtrunc(ev.type, type, sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor != NULL ? actor : "", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, id != NULL ? id : "", sizeof(ev.subject));
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (ev.detail_json != NULL)
		(void)kiln_store_event_add(s, &ev, NULL).code; /* the refusal is what matters */
	free(ev.detail_json);
	return why;
}

kiln_result kiln_govern_refused(kiln_store *s, const char *type, const char *actor,
				const char *id, kiln_result why, const kiln_diag *d)
{
	return refused(s, type, actor, id, why, d);
}

static kiln_result check(kiln_store *s, const char *id, kiln_op op, const json_t *params,
			 int64_t now, struct kiln_request_rec *q, kiln_diag *d)
{
	char want[KILN_STORE_PARAMS_MAX], when[KILN_TIME_STR];

	KILN_GUARD(kiln_store_request_get(s, id, q, d));
	KILN_GUARD(kiln_govern_params(params, want, sizeof(want)));
	if (strcmp(q->operation, kiln_op_name(op)) != 0 || strcmp(q->params_json, want) != 0)
		return kiln_diag_set(d, KILN_ERR_REQUEST_MISMATCH,
				     "request %s is for %s %s, not for %s %s", id, q->operation,
				     q->params_json, kiln_op_name(op), want);
	if (strcmp(q->status, "executed") == 0)
		return kiln_diag_set(d, KILN_ERR_REQUEST_EXECUTED, "request %s was already executed",
				     id);
	if (now >= q->expires) {
		kiln_time_format(q->expires, when);
		return kiln_diag_set(d, KILN_ERR_REQUEST_EXPIRED, "request %s expired at %s", id, when);
	}
	if (q->approvals < q->quorum)
		return kiln_diag_set(d, KILN_ERR_APPROVALS_MISSING,
				     "request %s has %lld of the %lld officer approvals it needs", id,
				     (long long)q->approvals, (long long)q->quorum);
	return kiln_ok();
}

kiln_result kiln_govern_check(kiln_store *s, const char *id, kiln_op op, const json_t *params,
			      const char *actor, int64_t now, struct kiln_request_rec *out,
			      kiln_diag *d)
{
	struct kiln_request_rec q;
	kiln_result r;

	KILN_ENSURE(s != NULL && id != NULL && params != NULL, KILN_ERR_ARG);
	r = check(s, id, op, params, now != 0 ? now : kiln_now(), &q, d);
	if (!kiln_is_ok(r))
		return refused(s, "request-refused", actor, id, r, d);
	if (out != NULL)
		*out = q;
	return kiln_ok();
}

kiln_result kiln_govern_tx_executed(kiln_store_tx *tx, const char *id, const char *actor,
				    int64_t now, kiln_diag *d)
{
	if (now == 0)
		now = kiln_now();
	KILN_GUARD(kiln_store_tx_request_execute(tx, id, now, d));
	return event(tx, "request-executed", actor, id, now, json_object(), d);
}

/* ------------------------------------------------------------ bootstrap */

static bool privileged(const char *role)
{
	return strcmp(role, "admin") == 0 || strcmp(role, "officer") == 0;
}

struct count_work {
	int64_t n;
};

static kiln_result count_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct count_work *w = ctx;

	return kiln_store_tx_identity_count(tx, KILN_GOVERN_APPROVER_ROLE, &w->n, d);
}

kiln_result kiln_govern_identity_gated(kiln_store *s, const struct kiln_govern_rules *rules,
				       const char *role, bool *gated, kiln_diag *d)
{
	struct count_work w = { 0 };

	char state[16];
	kiln_result r;

	KILN_ENSURE(s != NULL && rules != NULL && role != NULL && gated != NULL, KILN_ERR_ARG);
	*gated = false;
	if (!privileged(role))
		return kiln_ok();
	r = kiln_store_meta_get(s, KILN_GOVERN_BOOTSTRAP_KEY, state, sizeof(state), NULL);
	if (kiln_is_ok(r) && strcmp(state, "closed") == 0) {
		*gated = true;
		return kiln_ok();
	}
	if (r.code != KILN_ERR_NOT_FOUND && !kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "reading the bootstrap state failed");
	/* A write transaction: it counts what every committed writer left. */
	KILN_GUARD(kiln_store_write(s, count_fn, &w, d));
	*gated = w.n >= (int64_t)rules->quorum[KILN_OP_IDENTITY_ADD];
	return kiln_ok();
}

kiln_result kiln_govern_tx_bootstrap(kiln_store_tx *tx, const struct kiln_govern_rules *rules,
				     const char *name, const char *role, const char *actor,
				     kiln_diag *d)
{
	int64_t officers = 0, quorum;

	KILN_ENSURE(rules != NULL && name != NULL && role != NULL && actor != NULL, KILN_ERR_ARG);
	quorum = rules->quorum[KILN_OP_IDENTITY_ADD];
	KILN_GUARD(kiln_store_tx_identity_count(tx, KILN_GOVERN_APPROVER_ROLE, &officers, d));
	if (officers >= quorum)
		return kiln_diag_set(d, KILN_ERR_APPROVALS_MISSING,
				     "the deployment has %lld officers: adding an %s needs an approved "
				     "request (kiln identity add ... --csr FILE, then --request ID)",
				     (long long)officers, role);
	KILN_GUARD(event(tx, "bootstrap", actor, name, kiln_now(),
			 json_pack("{s:s,s:I,s:I}", "role", role, "officers_before",
				   (json_int_t)officers, "quorum", (json_int_t)quorum),
			 d));
	/* The window closes for good with the quorum-th officer: revocations never reopen it. */
	if (strcmp(role, KILN_GOVERN_APPROVER_ROLE) == 0 && officers + 1 >= quorum)
		return kiln_store_tx_meta_set(tx, KILN_GOVERN_BOOTSTRAP_KEY, "closed", d);
	return kiln_ok();
}

/* ------------------------------------------------------------ presentation */

const char *kiln_govern_request_state(const struct kiln_request_rec *q, int64_t now)
{
	if (strcmp(q->status, "executed") == 0)
		return "executed";
	if (now >= q->expires)
		return "expired";
	return q->approvals >= q->quorum ? "approved" : "pending";
}

json_t *kiln_govern_request_json(const struct kiln_request_rec *q, int64_t now)
{
	char digest[65], created[KILN_TIME_STR], expires[KILN_TIME_STR];

	kiln_hex_encode(q->digest, 32, digest);
	kiln_time_format(q->created, created);
	kiln_time_format(q->expires, expires);
	return json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", q->id, "operation",
			 q->operation, "params", json_loads(q->params_json, 0, NULL), "digest",
			 digest, "requester", q->requester, "created", created, "expires", expires,
			 "status", kiln_govern_request_state(q, now), "approvals",
			 (json_int_t)q->approvals, "quorum", (json_int_t)q->quorum);
}
