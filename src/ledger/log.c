/*
 * The ledger over a store: extends the derived tree (ledger_nodes) over the
 * committed events, signs and stores checkpoints through the HSM signer, and
 * answers proofs from the derived tree in O(log n) reads. Every proof is
 * checked against its signed root before it is handed out.
 */
#include "ledger/ledger.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Events per sync step: one read page and one transaction of nodes. */
#define SYNC_PAGE 8192

struct kiln_ledger {
	kiln_store *store;
	/* The checkpointer thread (kiln_ledger_start); run_mu guards stop. */
	pthread_t thread;
	bool running, stop;
	unsigned interval_s, entries;
	pthread_mutex_t run_mu;
	pthread_cond_t run_cv;
	const kiln_signer *signer;
	kiln_key_ref key;
	struct kiln_note_key nk;
	const kiln_log *log;
	pthread_mutex_t mu; /* one sync or checkpoint at a time */
};

kiln_result kiln_ledger_key_ensure(kiln_token *t, kiln_key_ref *ref, uint8_t pub[32],
				   bool *created, kiln_diag *d)
{
	EVP_PKEY *pk = NULL;
	kiln_diag local;
	kiln_result r;
	size_t len = 32;

	*created = false;
	memset(ref, 0, sizeof(*ref));
	KILN_GUARD(kiln_strlcpy(ref->label, KILN_LEDGER_KEY_LABEL, sizeof(ref->label)));
	ref->alg = KILN_ALG_ED25519;
	kiln_diag_clear(&local);
	r = kiln_token_find(t, ref, &local);
	if (r.code == KILN_ERR_HSM_KEY_MISSING || r.code == KILN_ERR_NOT_FOUND) {
		/* Deployments made before the ledger get their log key on first use. */
		r = kiln_token_generate(t, KILN_ALG_ED25519, KILN_LEDGER_KEY_LABEL, ref, &pk, d);
		*created = kiln_is_ok(r);
	} else if (kiln_is_ok(r)) {
		r = kiln_token_public_key(t, ref, &pk, d);
	} else {
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	if (kiln_is_ok(r) && (EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 || len != 32))
		r = kiln_diag_set(d, KILN_ERR_CRYPTO, "the log key is not an Ed25519 key");
	EVP_PKEY_free(pk);
	return r;
}

static kiln_result store_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32],
			     kiln_diag *d)
{
	kiln_ledger *l = ctx;
	uint8_t h[1][32];
	size_t got = 0;

	KILN_GUARD(kiln_store_ledger_get(l->store, level, (int64_t)index, 1, h, &got, d));
	if (got != 1)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "ledger node %u/%llu is missing", level,
				     (unsigned long long)index);
	memcpy(out, h[0], 32);
	return kiln_ok();
}

static struct kiln_merkle_source source(kiln_ledger *l)
{
	return (struct kiln_merkle_source){ store_get, l };
}

kiln_result kiln_ledger_open(const struct kiln_ledger_opts *o, kiln_ledger **out, kiln_diag *d)
{
	kiln_ledger *l;
	char origin[KILN_NOTE_NAME_MAX];
	uint8_t h[32];
	char hex[17];

	*out = NULL;
	if (o->store == NULL || o->pub == NULL || (o->signer != NULL && o->key == NULL))
		return kiln_diag_set(d, KILN_ERR_ARG, "the ledger needs a store and the log key");
	if (o->origin != NULL) {
		KILN_GUARD(kiln_strlcpy(origin, o->origin, sizeof(origin)));
	} else {
		/* A name derived from the key: one deployment, one log, no configuration. */
		(void)EVP_Digest(o->pub, 32, h, NULL, EVP_sha256(), NULL);
		kiln_hex_encode(h, 8, hex);
		if (snprintf(origin, sizeof(origin), "kiln.log/%s", hex) <= 0)
			return kiln_fail(KILN_ERR_INTERNAL);
	}
	l = calloc(1, sizeof(*l));
	KILN_ENSURE(l != NULL, KILN_ERR_NOMEM);
	if (!kiln_is_ok(kiln_note_key_make(origin, o->pub, &l->nk))) {
		free(l);
		return kiln_diag_set(d, KILN_ERR_ARG, "invalid log origin '%s'", origin);
	}
	l->store = o->store;
	l->signer = o->signer;
	if (o->key != NULL)
		l->key = *o->key;
	l->log = o->log;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->run_mu, NULL);
	pthread_cond_init(&l->run_cv, NULL);
	*out = l;
	return kiln_ok();
}

void kiln_ledger_free(kiln_ledger *l)
{
	if (l == NULL)
		return;
	kiln_ledger_stop(l);
	pthread_cond_destroy(&l->run_cv);
	pthread_mutex_destroy(&l->run_mu);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

const struct kiln_note_key *kiln_ledger_key(const kiln_ledger *l)
{
	return &l->nk;
}

kiln_store *kiln_ledger_store(const kiln_ledger *l)
{
	return l->store;
}

/* ------------------------------------------------------------ sync */

struct node_vec {
	struct kiln_ledger_node *v;
	size_t n, cap;
};

static kiln_result collect_node(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32],
				kiln_diag *d)
{
	struct node_vec *nv = ctx;

	if (nv->n == nv->cap)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "ledger node buffer full");
	nv->v[nv->n].level = level;
	nv->v[nv->n].index = (int64_t)index;
	memcpy(nv->v[nv->n].hash, hash, 32);
	nv->n++;
	return kiln_ok();
}

static kiln_result put_nodes_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct node_vec *nv = ctx;

	return kiln_store_tx_ledger_put(tx, nv->v, nv->n, d);
}

static kiln_result sync_page(kiln_ledger *l, struct kiln_merkle_builder *b, struct node_vec *nv,
			     size_t *got, kiln_diag *d)
{
	struct kiln_event_rec *evs = NULL;
	uint8_t leaf[32];
	kiln_result r;
	size_t n = 0;

	*got = 0;
	KILN_GUARD(kiln_store_event_list(l->store, (int64_t)b->size, SYNC_PAGE, &evs, &n, d));
	nv->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (evs[i].seq != (int64_t)(b->size)) {
			r = kiln_diag_set(d, KILN_ERR_LOG_TAMPERED,
					  "event %llu is missing from the log (next is %lld)",
					  (unsigned long long)b->size, (long long)evs[i].seq);
			goto out;
		}
		KILN_TRY(r, kiln_ledger_event_leaf(&evs[i], leaf));
		KILN_TRY(r, kiln_merkle_builder_push(b, leaf, collect_node, nv, d));
	}
	r = n > 0 ? kiln_store_write(l->store, put_nodes_tx, nv, d) : kiln_ok();
	*got = n;
out:
	kiln_store_event_list_free(evs, n);
	return r;
}

static kiln_result sync_locked(kiln_ledger *l, int64_t *size, kiln_diag *d)
{
	struct kiln_merkle_source src = source(l);
	struct kiln_merkle_builder b;
	struct node_vec nv = { 0 };
	int64_t have = 0;
	kiln_result r;
	size_t got = 0;

	KILN_GUARD(kiln_store_ledger_size(l->store, &have, d));
	KILN_GUARD(kiln_merkle_builder_resume(&b, &src, (uint64_t)have, d));
	nv.cap = 2 * SYNC_PAGE + 64;
	nv.v = calloc(nv.cap, sizeof(*nv.v));
	KILN_ENSURE(nv.v != NULL, KILN_ERR_NOMEM);
	do {
		r = sync_page(l, &b, &nv, &got, d);
	} while (kiln_is_ok(r) && got == SYNC_PAGE);
	free(nv.v);
	if (kiln_is_ok(r) && size != NULL)
		*size = (int64_t)b.size;
	return r;
}

kiln_result kiln_ledger_sync(kiln_ledger *l, int64_t *size, kiln_diag *d)
{
	kiln_result r;

	pthread_mutex_lock(&l->mu);
	r = sync_locked(l, size, d);
	pthread_mutex_unlock(&l->mu);
	return r;
}

/* ------------------------------------------------------------ checkpoints */

static kiln_result checkpoint_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_checkpoint_add(tx, ctx, d);
}

static kiln_result sign_note(kiln_ledger *l, const struct kiln_checkpoint *cp,
			     struct kiln_checkpoint_rec *rec, kiln_diag *d)
{
	struct kiln_sign_req req;
	kiln_buf note, sig;
	kiln_result r;

	kiln_buf_init(&note, KILN_NOTE_TEXT_MAX);
	kiln_buf_init(&sig, 1024);
	KILN_TRY(r, kiln_checkpoint_format(cp, &note));
	req = (struct kiln_sign_req){ &l->key, kiln_buf_view(&note), "checkpoint" };
	KILN_TRY(r, kiln_signer_sign(l->signer, &req, &sig, d));
	KILN_TRY(r, kiln_buf_append_u8(&note, '\n'));
	KILN_TRY(r, kiln_note_sig_line(&l->nk, kiln_buf_view(&sig), &note));
	KILN_TRY(r, kiln_strlcpy(rec->note, kiln_buf_cstr(&note), sizeof(rec->note)));
out:
	kiln_buf_cleanup(&note);
	kiln_buf_cleanup(&sig);
	return r;
}

static kiln_result checkpoint_locked(kiln_ledger *l, struct kiln_checkpoint_rec *out, bool *made,
				     kiln_diag *d)
{
	struct kiln_merkle_source src = source(l);
	struct kiln_checkpoint cp = { 0 };
	struct kiln_checkpoint check;
	kiln_diag local;
	int64_t size = 0;
	kiln_result r;

	*made = false;
	KILN_GUARD(sync_locked(l, &size, d));
	kiln_diag_clear(&local);
	r = kiln_store_checkpoint_get(l->store, -1, out, &local);
	if (kiln_is_ok(r) && out->size == size)
		return kiln_ok();
	if (!kiln_is_ok(r) && r.code != KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	if (kiln_is_ok(r) && out->size > size)
		return kiln_diag_set(d, KILN_ERR_LOG_TAMPERED,
				     "a checkpoint of size %lld exists but the log has %lld events",
				     (long long)out->size, (long long)size);
	if (l->signer == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "this ledger has no signer: open the service token");
	memset(out, 0, sizeof(*out));
	KILN_GUARD(kiln_strlcpy(cp.origin, l->nk.name, sizeof(cp.origin)));
	cp.size = (uint64_t)size;
	KILN_GUARD(kiln_merkle_root(&src, cp.size, cp.root, d));
	KILN_GUARD(sign_note(l, &cp, out, d));
	/* The signer's answer is checked like any signature an auditor will check. */
	KILN_GUARD(kiln_note_verify(&l->nk, kiln_slice_str(out->note), &check, d));
	out->size = size;
	memcpy(out->root, cp.root, 32);
	out->time = kiln_now();
	kiln_diag_clear(&local);
	r = kiln_store_write(l->store, checkpoint_tx, out, &local);
	if (r.code == KILN_ERR_DUPLICATE) /* another process made it first: the same tree */
		return kiln_store_checkpoint_get(l->store, size, out, d);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	*made = true;
	kiln_log_info(l->log, "checkpoint: log %s size %lld", l->nk.name, (long long)size);
	return kiln_ok();
}

kiln_result kiln_ledger_checkpoint(kiln_ledger *l, struct kiln_checkpoint_rec *out, bool *made,
				   kiln_diag *d)
{
	kiln_result r;
	bool ignored;

	pthread_mutex_lock(&l->mu);
	r = checkpoint_locked(l, out, made != NULL ? made : &ignored, d);
	pthread_mutex_unlock(&l->mu);
	return r;
}

/* ------------------------------------------------------------ proofs */

kiln_result kiln_ledger_prove(kiln_ledger *l, uint64_t index, uint64_t size,
			      struct kiln_ledger_inclusion *out, kiln_diag *d)
{
	struct kiln_merkle_source src = source(l);
	uint8_t leaf[1][32];
	size_t got = 0;

	memset(out, 0, sizeof(*out));
	if (size > KILN_MERKLE_SIZE_MAX)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE, "tree size too large");
	KILN_GUARD(kiln_store_checkpoint_get(l->store, size == 0 ? -1 : (int64_t)size,
					     &out->checkpoint, d));
	out->size = (uint64_t)out->checkpoint.size;
	out->index = index;
	if (index >= out->size)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE,
				     "event %llu is not in the checkpoint of size %llu",
				     (unsigned long long)index, (unsigned long long)out->size);
	KILN_GUARD(kiln_store_ledger_get(l->store, 0, (int64_t)index, 1, leaf, &got, d));
	if (got != 1)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "leaf %llu is not in the derived tree",
				     (unsigned long long)index);
	memcpy(out->leaf, leaf[0], 32);
	memcpy(out->root, out->checkpoint.root, 32);
	KILN_GUARD(kiln_merkle_inclusion(&src, index, out->size, &out->proof, d));
	if (!kiln_is_ok(kiln_merkle_verify_inclusion(out->leaf, index, out->size, &out->proof,
						     out->root)))
		return kiln_diag_set(d, KILN_ERR_LOG_TAMPERED,
				     "the derived tree does not match checkpoint %llu: run kiln "
				     "audit verify", (unsigned long long)out->size);
	return kiln_ok();
}

kiln_result kiln_ledger_device_index(kiln_ledger *l, const char *device, uint64_t *index,
				     kiln_diag *d)
{
	struct kiln_device_rec dev = { 0 };
	int64_t seq = 0;

	KILN_GUARD(kiln_store_device_get(l->store, device, &dev, d));
	if (dev.cert_serial[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "device %s has no certificate", device);
	KILN_GUARD(kiln_store_event_find(l->store, "issuance", dev.cert_serial, &seq, d));
	*index = (uint64_t)seq;
	return kiln_ok();
}

kiln_result kiln_ledger_consistency(kiln_ledger *l, uint64_t from, uint64_t to,
				    struct kiln_merkle_proof *out, kiln_diag *d)
{
	struct kiln_merkle_source src = source(l);
	struct kiln_checkpoint_rec a, b;

	out->n = 0;
	if (from == 0 || from > to || to > KILN_MERKLE_SIZE_MAX)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE,
				     "a consistency proof needs 0 < from <= to");
	KILN_GUARD(kiln_store_checkpoint_get(l->store, (int64_t)from, &a, d));
	KILN_GUARD(kiln_store_checkpoint_get(l->store, (int64_t)to, &b, d));
	KILN_GUARD(kiln_merkle_consistency(&src, from, to, out, d));
	if (!kiln_is_ok(kiln_merkle_verify_consistency(from, to, a.root, b.root, out)))
		return kiln_diag_set(d, KILN_ERR_LOG_TAMPERED,
				     "checkpoints %llu and %llu are not consistent: run kiln audit "
				     "verify", (unsigned long long)from, (unsigned long long)to);
	return kiln_ok();
}

/* ------------------------------------------------------------ checkpointer */

static void tick(kiln_ledger *l, int64_t *last_size, uint64_t *last_ns, bool force)
{
	struct kiln_checkpoint_rec cp;
	int64_t size = 0;
	kiln_diag d;
	bool made = false;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_ledger_sync(l, &size, &d))) {
		kiln_log_error(l->log, "ledger: %s", d.text);
		return;
	}
	if (size == *last_size)
		return;
	if (!force && size - *last_size < (int64_t)l->entries &&
	    kiln_mono_ns() - *last_ns < (uint64_t)l->interval_s * 1000000000u)
		return;
	if (!kiln_is_ok(kiln_ledger_checkpoint(l, &cp, &made, &d))) {
		kiln_log_error(l->log, "ledger: checkpoint failed: %s", d.text);
		return;
	}
	*last_size = cp.size;
	*last_ns = kiln_mono_ns();
}

static void *run(void *arg)
{
	kiln_ledger *l = arg;
	struct kiln_checkpoint_rec cp;
	int64_t last_size = -1;
	uint64_t last_ns = kiln_mono_ns();
	struct timespec until;
	bool stop;

	if (kiln_is_ok(kiln_store_checkpoint_get(l->store, -1, &cp, NULL)))
		last_size = cp.size;
	for (;;) {
		pthread_mutex_lock(&l->run_mu);
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1; /* look for new events every second; sign per interval/entries */
		while (!l->stop && pthread_cond_timedwait(&l->run_cv, &l->run_mu, &until) == 0)
			;
		stop = l->stop;
		pthread_mutex_unlock(&l->run_mu);
		/* On stop, a last checkpoint covers everything committed before it. */
		tick(l, &last_size, &last_ns, stop);
		if (stop)
			return NULL;
	}
}

kiln_result kiln_ledger_start(kiln_ledger *l, unsigned interval_s, unsigned entries, kiln_diag *d)
{
	if (l->signer == NULL || interval_s == 0 || entries == 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "the checkpointer needs a signer, an interval "
				     "and an entry count");
	if (l->running)
		return kiln_ok();
	l->interval_s = interval_s;
	l->entries = entries;
	l->stop = false;
	if (pthread_create(&l->thread, NULL, run, l) != 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot start the checkpointer thread");
	l->running = true;
	return kiln_ok();
}

void kiln_ledger_stop(kiln_ledger *l)
{
	if (l == NULL || !l->running)
		return;
	pthread_mutex_lock(&l->run_mu);
	l->stop = true;
	pthread_cond_signal(&l->run_cv);
	pthread_mutex_unlock(&l->run_mu);
	pthread_join(l->thread, NULL);
	l->running = false;
}
