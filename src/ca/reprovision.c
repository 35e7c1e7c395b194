/*
 * Re-provisioning: an engineer's grant that lets the next attested
 * provisioning of a device's serial replace its record instead of being
 * refused as a duplicate (provision.c and issue.c carry it out).
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct reprov_work {
	struct kiln_reprovision_rec g;
	struct kiln_event_rec ev;
};

static kiln_result open_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct reprov_work *w = ctx;

	KILN_GUARD(kiln_store_tx_reprovision_open(tx, &w->g, d));
	return kiln_store_tx_event_add(tx, &w->ev, d);
}

static kiln_result reprovision(kiln_ca *ca, const char *ref, const char *reason, const char *actor,
			       struct kiln_device_rec *dev, kiln_diag *d)
{
	struct reprov_work w = { 0 };
	kiln_result r;

	if (reason == NULL || (strcmp(reason, "keyCompromise") != 0 && strcmp(reason, "superseded") != 0))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "re-provisioning reason: keyCompromise (a new key) or superseded "
				     "(repair or re-attestation; the key may stay)");
	KILN_GUARD(kiln_store_device_get(ca->store, ref, dev, d));
	w.g.device_id = dev->id;
	kiln_strtrunc(w.g.reason, reason, sizeof(w.g.reason));
	kiln_strtrunc(w.g.opened_by, actor, sizeof(w.g.opened_by));
	w.g.created = kiln_now();
	w.ev.time = w.g.created;
	kiln_strtrunc(w.ev.type, "reprovision-open", sizeof(w.ev.type));
	kiln_strtrunc(w.ev.actor, actor, sizeof(w.ev.actor));
	kiln_strtrunc(w.ev.subject, dev->cert_serial, sizeof(w.ev.subject));
	w.ev.detail_json = ca_event_json("{s:I,s:s,s:s,s:s,s:s}", "device_id", (json_int_t)dev->id,
					 "product", dev->product, "serial", dev->serial, "certificate",
					 dev->cert_serial, "reason", reason);
	KILN_ENSURE(w.ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_write(ca->store, open_tx, &w, d);
	free(w.ev.detail_json);
	return r;
}

kiln_result kiln_ca_device_reprovision(kiln_ca *ca, const char *ref, const char *reason,
				       const char *actor, struct kiln_device_rec *out, kiln_diag *d)
{
	struct issue_work *rw;
	kiln_diag local;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	if (ref == NULL || actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "re-provisioning needs a device and an actor");
	kiln_diag_clear(&local);
	r = reprovision(ca, ref, reason, actor, out, &local);
	if (kiln_is_ok(r))
		return r;
	rw = calloc(1, sizeof(*rw));
	if (rw != NULL) {
		rw->ca = ca;
		rw->actor = actor;
		rw->product = out->product[0] != '\0' ? out->product : NULL;
		kiln_printable(ref, strlen(ref), rw->device_serial, sizeof(rw->device_serial));
		issue_record_refusal(rw, "device-reprovision", kiln_slice_of(NULL, 0), r, &local);
		free(rw);
	}
	return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
}
