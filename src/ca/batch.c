/* Batches (lots): a planned quantity of one product, the budget issuance draws on. */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct batch_work {
	struct kiln_batch_rec *rec;
	const char *lot;
	const char *actor;
	bool close;
};

static kiln_result batch_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct batch_work *w = ctx;

	if (w->close) {
		KILN_GUARD(kiln_store_tx_batch_close(tx, w->lot, kiln_now(), d));
		return ca_tx_event(tx, "batch-close", w->actor, w->lot, ca_event_json("{}"), d);
	}
	KILN_GUARD(kiln_store_tx_batch_add(tx, w->rec, d));
	return ca_tx_event(tx, "batch-open", w->actor, w->rec->lot,
			   ca_event_json("{s:s,s:I,s:s,s:s}", "product", w->rec->product,
					 "quantity", (json_int_t)w->rec->quantity, "line",
					 w->rec->line, "station", w->rec->station),
			   d);
}

kiln_result kiln_ca_batch_open(kiln_ca *ca, const struct kiln_batch_req *req,
			       struct kiln_batch_rec *out, kiln_diag *d)
{
	const kiln_policy *policy = NULL;
	struct batch_work w = { out, NULL, req->actor, false };
	int64_t version = 0;

	memset(out, 0, sizeof(*out));
	if (req->product == NULL || req->lot == NULL || req->actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "a batch needs a product, a lot and an actor");
	KILN_GUARD(ca_policy_active(ca, req->product, &policy, &version, d));
	if (req->quantity < 1 || req->quantity > 1000000000)
		return kiln_diag_set(d, KILN_ERR_ARG, "the quantity must be 1 to 1000000000");
	if (!kiln_is_ok(kiln_strlcpy(out->lot, req->lot, sizeof(out->lot))) ||
	    !kiln_is_ok(kiln_strlcpy(out->line, req->line != NULL ? req->line : "", sizeof(out->line))) ||
	    !kiln_is_ok(kiln_strlcpy(out->station, req->station != NULL ? req->station : "",
				     sizeof(out->station))))
		return kiln_diag_set(d, KILN_ERR_ARG, "lot, line or station name too long");
	kiln_strtrunc(out->product, policy->product, sizeof(out->product));
	kiln_strtrunc(out->opened_by, req->actor, sizeof(out->opened_by));
	kiln_strtrunc(out->status, "open", sizeof(out->status));
	out->quantity = req->quantity;
	out->created = kiln_now();
	return kiln_store_write(ca->store, batch_tx, &w, d);
}

kiln_result kiln_ca_batch_close(kiln_ca *ca, const char *lot, const char *actor, kiln_diag *d)
{
	struct batch_work w = { NULL, lot, actor, true };

	if (lot == NULL || actor == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "closing a batch needs a lot and an actor");
	return kiln_store_write(ca->store, batch_tx, &w, d);
}
