/*
 * Retirement: the end of a device's life. What the HSM holds for the device
 * is destroyed first (a destruction cannot be rolled back, and a retirement
 * that failed after it can simply be run again: it then finds nothing);
 * then the revocation, the status and the event naming what was destroyed
 * commit together.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct retire_work {
	kiln_ca *ca;
	const char *actor;
	struct kiln_device_rec dev;
	struct kiln_retire_result *out;
	struct kiln_event_rec ev;
};

static kiln_result retire_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct retire_work *w = ctx;
	kiln_diag local;
	kiln_result r;

	kiln_diag_clear(&local);
	r = kiln_store_tx_cert_revoke(tx, w->dev.cert_serial, "cessationOfOperation", 0, &local);
	/* A device revoked before (keyCompromise...) keeps that revocation. */
	if (!kiln_is_ok(r) && r.code != KILN_ERR_ALREADY_REVOKED)
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	w->out->revoked_now = kiln_is_ok(r);
	KILN_GUARD(kiln_store_tx_device_retire(tx, w->dev.id, d));
	return kiln_store_tx_event_add(tx, &w->ev, d);
}

static char *retire_event(const struct retire_work *w, const char *token)
{
	const struct kiln_retire_result *o = w->out;
	json_t *what = json_array(), *j;
	char *text = NULL;

	for (size_t i = 0; what != NULL && i < o->destroyed.n; i++)
		(void)json_array_append_new(what, json_string(o->destroyed.what[i]));
	j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:o}", "device_id", (json_int_t)w->dev.id,
		      "product", w->dev.product, "serial", w->dev.serial, "certificate",
		      w->dev.cert_serial, "reason", "cessationOfOperation", "hsm_token", token,
		      "hsm_label", o->hsm_label, "destroyed_count", (json_int_t)o->destroyed.n,
		      "destroyed", what);
	if (j != NULL)
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return text;
}

static kiln_result retire(struct retire_work *w, const char *ref, kiln_diag *d)
{
	const kiln_policy *policy = NULL;
	int64_t version = 0;
	kiln_token *tok;

	KILN_GUARD(kiln_store_device_get(w->ca->store, ref, &w->dev, d));
	if (strcmp(w->dev.status, "retired") == 0)
		return kiln_diag_set(d, KILN_ERR_DEVICE_RETIRED, "device %lld (%s/%s) is already retired",
				     (long long)w->dev.id, w->dev.product, w->dev.serial);
	KILN_GUARD(ca_policy_active(w->ca, w->dev.product, &policy, &version, d));
	tok = w->ca->tokens[policy->env];
	if (tok == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING,
				     "retiring a %s device needs its HSM token; this process has no PIN "
				     "for it", kiln_env_name(policy->env));
	KILN_GUARD(kiln_token_device_label(w->dev.product, w->dev.serial, w->out->hsm_label));
	KILN_GUARD(kiln_token_destroy_labelled(tok, w->out->hsm_label, &w->out->destroyed, d));
	w->ev.time = kiln_now();
	kiln_strtrunc(w->ev.type, "device-retire", sizeof(w->ev.type));
	kiln_strtrunc(w->ev.actor, w->actor, sizeof(w->ev.actor));
	kiln_strtrunc(w->ev.subject, w->dev.cert_serial, sizeof(w->ev.subject));
	w->ev.detail_json = retire_event(w, kiln_token_label(tok));
	KILN_ENSURE(w->ev.detail_json != NULL, KILN_ERR_NOMEM);
	KILN_GUARD(kiln_store_write(w->ca->store, retire_tx, w, d));
	w->out->device_id = w->dev.id;
	kiln_strtrunc(w->out->product, w->dev.product, sizeof(w->out->product));
	kiln_strtrunc(w->out->serial, w->dev.serial, sizeof(w->out->serial));
	kiln_strtrunc(w->out->cert_serial, w->dev.cert_serial, sizeof(w->out->cert_serial));
	return kiln_ok();
}

kiln_result kiln_ca_device_retire(kiln_ca *ca, const char *ref, const char *actor,
				  struct kiln_retire_result *out, kiln_diag *d)
{
	struct retire_work w = { ca, actor, { 0 }, out, { 0 } };
	struct issue_work *rw;
	kiln_diag local;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	if (ref == NULL || actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "retiring needs a device and an actor");
	kiln_diag_clear(&local);
	r = retire(&w, ref, &local);
	free(w.ev.detail_json);
	if (kiln_is_ok(r))
		return r;
	rw = calloc(1, sizeof(*rw));
	if (rw != NULL) {
		rw->ca = ca;
		rw->actor = actor;
		rw->product = w.dev.product[0] != '\0' ? w.dev.product : NULL;
		kiln_printable(ref, strlen(ref), rw->device_serial, sizeof(rw->device_serial));
		issue_record_refusal(rw, "device-retire", kiln_slice_of(NULL, 0), r, &local);
		free(rw);
	}
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
}
