/* Adding a product policy: validate, store as the next version, record. */
#include "ca_impl.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

/* The inventory record of a policy version; rec borrows yaml for the insert. */
static void policy_rec_fill(struct kiln_policy_rec *rec, const kiln_policy *p, kiln_slice yaml,
			    const char *actor, const char *status)
{
	kiln_strtrunc(rec->product, p->product, sizeof(rec->product));
	kiln_strtrunc(rec->env, kiln_env_name(p->env), sizeof(rec->env));
	kiln_strtrunc(rec->status, status, sizeof(rec->status));
	memcpy(rec->sha256, p->sha256, 32);
	rec->yaml = (char *)yaml.ptr;
	rec->yaml_len = yaml.len;
	kiln_strtrunc(rec->added_by, actor, sizeof(rec->added_by));
	rec->created = kiln_now();
}

struct add_work {
	const kiln_policy *policy;
	kiln_slice yaml;
	const char *actor;
	int64_t version;
};

static kiln_result add_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct add_work *w = ctx;
	struct kiln_policy_rec rec = { 0 };
	struct kiln_event_rec ev = { 0 };
	char hash[65];
	kiln_result r;

	policy_rec_fill(&rec, w->policy, w->yaml, w->actor, "active");
	KILN_GUARD(kiln_store_tx_policy_add(tx, &rec, d));
	KILN_GUARD(kiln_store_tx_policy_activate(tx, rec.product, rec.version, d));
	kiln_hex_encode(w->policy->sha256, 32, hash);
	ev.time = rec.created;
	kiln_strtrunc(ev.type, "policy-add", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, rec.product, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:I,s:s,s:s,s:s}", "version", (json_int_t)rec.version, "env",
				       rec.env, "sha256", hash, "attestation",
				       kiln_attest_type_name(w->policy->attestation.type));
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	w->version = rec.version;
	return r;
}

kiln_result kiln_ca_policy_add(kiln_ca *ca, kiln_slice yaml, const char *filename,
			       const char *actor, struct kiln_policy_added *out, kiln_diag *d)
{
	kiln_policy *p = NULL;
	struct add_work w = { 0 };
	kiln_result r;

	KILN_TRY(r, kiln_policy_parse(yaml, filename, &p, d));
	w = (struct add_work){ p, yaml, actor, 0 };
	KILN_TRY(r, kiln_store_write(ca->store, add_tx, &w, d));
	kiln_strtrunc(out->product, p->product, sizeof(out->product));
	out->env = p->env;
	out->version = w.version;
	memcpy(out->sha256, p->sha256, 32);
	out->status = "active";
out:
	kiln_policy_free(p);
	return r;
}

/* ------------------------------------------------------------ the governed path */

struct request_work {
	const kiln_policy *policy;
	kiln_slice yaml;
	const char *actor;
	const struct kiln_govern_rules *rules;
	int64_t version;
	struct kiln_request_rec *request;
};

static kiln_result request_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct request_work *w = ctx;
	struct kiln_policy_rec rec = { 0 };
	struct kiln_event_rec ev = { 0 };
	char hash[65];
	json_t *params;
	kiln_result r;

	policy_rec_fill(&rec, w->policy, w->yaml, w->actor, "pending");
	KILN_GUARD(kiln_store_tx_policy_add(tx, &rec, d));
	kiln_hex_encode(w->policy->sha256, 32, hash);
	/* The version is known only now, inside the transaction: the request is made here. */
	params = json_pack("{s:s,s:I,s:s}", "product", rec.product, "version",
			   (json_int_t)rec.version, "sha256", hash);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	r = kiln_govern_request_init(w->rules, KILN_OP_POLICY_ACTIVATE, params, w->actor,
				     rec.created, w->request, d);
	json_decref(params);
	KILN_GUARD(r);
	KILN_GUARD(kiln_govern_tx_request_add(tx, w->request, d));
	ev.time = rec.created;
	kiln_strtrunc(ev.type, "policy-add", sizeof(ev.type));
	kiln_strtrunc(ev.actor, w->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, rec.product, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:I,s:s,s:s,s:s,s:s,s:s}", "version",
				       (json_int_t)rec.version, "env", rec.env, "sha256", hash,
				       "attestation",
				       kiln_attest_type_name(w->policy->attestation.type), "status",
				       "pending", "request", w->request->id);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	w->version = rec.version;
	return r;
}

kiln_result kiln_ca_policy_request(kiln_ca *ca, kiln_slice yaml, const char *filename,
				   const char *actor, const struct kiln_govern_rules *rules,
				   struct kiln_policy_added *out, struct kiln_request_rec *request,
				   kiln_diag *d)
{
	kiln_policy *p = NULL;
	struct request_work w = { 0 };
	kiln_result r;

	KILN_ENSURE(rules != NULL && request != NULL, KILN_ERR_ARG);
	KILN_TRY(r, kiln_policy_parse(yaml, filename, &p, d));
	w = (struct request_work){ p, yaml, actor, rules, 0, request };
	KILN_TRY(r, kiln_store_write(ca->store, request_tx, &w, d));
	kiln_strtrunc(out->product, p->product, sizeof(out->product));
	out->env = p->env;
	out->version = w.version;
	memcpy(out->sha256, p->sha256, 32);
	out->status = "pending";
out:
	kiln_policy_free(p);
	return r;
}
