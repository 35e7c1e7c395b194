/*
 * bench_ledger: the Merkle log's costs beside baselines measured in the same
 * run, on the same SQLite file settings (WAL, synchronous=FULL):
 *
 *   appends   durable event appends per second through kiln_store_event_add
 *             from --writers threads with group commit, against raw SQLite
 *             (one INSERT + COMMIT per event, the same durability, one
 *             thread) and raw SQLite batched (all inserts in one transaction,
 *             the bound no durable-per-event design reaches)
 *   sync      leaves per second the ledger adds to its derived tree (events
 *             read, canonical bytes, leaf and node hashes, nodes stored),
 *             against raw SHA-256 leaf hashing plus an in-memory tree build
 *   proofs    inclusion and consistency proofs at --entries events (10^6 by
 *             default) from the derived tree in SQLite (O(log n) reads),
 *             against recomputing the root from the leaves in memory (what a
 *             log without stored nodes pays per proof)
 *
 * The ratios are the result; absolute numbers depend on the machine. Never a
 * pass/fail gate.
 *
 * usage: bench_ledger [--entries N] [--appends N] [--writers W] [--proofs N]
 */
#include "cli/cli.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
	uint64_t entries, appends, writers, proofs;
	char dir[512];
};

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void die(const char *what, const kiln_diag *d)
{
	fprintf(stderr, "bench_ledger: %s: %s\n", what, d != NULL ? d->text : "");
	exit(1);
}

/* ------------------------------------------------------------ appends */

struct writer {
	kiln_store *s;
	uint64_t n;
	bool ok;
};

static void *write_events(void *arg)
{
	struct writer *w = arg;

	w->ok = true;
	for (uint64_t i = 0; i < w->n && w->ok; i++) {
		struct kiln_event_rec ev = { 0 };

		memcpy(ev.type, "bench", 6);
		memcpy(ev.actor, "bench", 6);
		(void)snprintf(ev.subject, sizeof(ev.subject), "s%llu", (unsigned long long)i);
		ev.detail_json = "{\"product\":\"widget\",\"lot\":\"LOT-1\"}";
		w->ok = kiln_is_ok(kiln_store_event_add(w->s, &ev, NULL));
	}
	return NULL;
}

static double kiln_appends(const struct opts *o, const char *path)
{
	struct kiln_store_opts so = { .path = path, .create = true, .group_commit = true };
	struct writer w[64];
	pthread_t th[64];
	kiln_store *s = NULL;
	kiln_diag d;
	uint64_t t0;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_store_open(&so, &s, &d)))
		die("store", &d);
	t0 = kiln_mono_ns();
	for (uint64_t i = 0; i < o->writers; i++) {
		w[i] = (struct writer){ s, o->appends / o->writers, false };
		pthread_create(&th[i], NULL, write_events, &w[i]);
	}
	for (uint64_t i = 0; i < o->writers; i++) {
		pthread_join(th[i], NULL);
		if (!w[i].ok)
			die("append", NULL);
	}
	t0 = kiln_mono_ns() - t0;
	kiln_store_close(s);
	return (double)(o->appends / o->writers * o->writers) / secs(t0);
}

static double raw_appends(const char *path, uint64_t n, bool one_tx)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	uint64_t t0;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			     "CREATE TABLE e (seq INTEGER PRIMARY KEY, time INTEGER, type TEXT,"
			     " actor TEXT, subject TEXT, detail TEXT)", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO e VALUES (?1, ?2, 'bench', 'bench', ?3, ?4)", -1,
			       &st, NULL) != SQLITE_OK)
		die("raw sqlite", NULL);
	t0 = kiln_mono_ns();
	if (one_tx)
		(void)sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (uint64_t i = 0; i < n; i++) {
		char subject[32];

		(void)snprintf(subject, sizeof(subject), "s%llu", (unsigned long long)i);
		if (!one_tx)
			(void)sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_int64(st, 1, (int64_t)i);
		sqlite3_bind_int64(st, 2, kiln_now());
		sqlite3_bind_text(st, 3, subject, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, "{\"product\":\"widget\",\"lot\":\"LOT-1\"}", -1,
				  SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw insert", NULL);
		sqlite3_reset(st);
		if (!one_tx)
			(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	if (one_tx)
		(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	t0 = kiln_mono_ns() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (double)n / secs(t0);
}

/* ------------------------------------------------------------ a big log */

struct fill {
	uint64_t from, n;
};

static kiln_result fill_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct fill *f = ctx;

	for (uint64_t i = 0; i < f->n; i++) {
		struct kiln_event_rec ev = { 0 };
		char detail[96];

		memcpy(ev.type, "issuance", 9);
		memcpy(ev.actor, "station:st-1", 13);
		(void)snprintf(ev.subject, sizeof(ev.subject), "%016llx",
			       (unsigned long long)(f->from + i));
		(void)snprintf(detail, sizeof(detail), "{\"device\":\"SN-%llu\",\"lot\":\"LOT-1\"}",
			       (unsigned long long)(f->from + i));
		ev.detail_json = detail;
		KILN_GUARD(kiln_store_tx_event_add(tx, &ev, d));
	}
	return kiln_ok();
}

static void setup(struct opts *o, struct deployment *dep)
{
	char *argv[] = { "kiln", "init", "--dir", o->dir, NULL };
	struct cli_common c = { 0 };
	kiln_diag d;

	if (kiln_cli_main(4, argv) != 0)
		die("kiln init", NULL);
	c.dir = o->dir;
	kiln_diag_clear(&d);
	if (!kiln_is_ok(deploy_open(&c, NEED_STORE, dep, &d)) ||
	    !kiln_is_ok(deploy_ledger(dep, true, "bench", &d)))
		die("deployment", &d);
}

/* Raw baseline: SHA-256 of every leaf's bytes plus the in-memory tree. */
static uint64_t raw_tree_ns(uint64_t n, uint8_t (**leaves)[32], struct kiln_merkle_mem *m)
{
	uint64_t t0 = kiln_mono_ns();

	*leaves = malloc((size_t)n * 32);
	if (*leaves == NULL)
		die("memory", NULL);
	for (uint64_t i = 0; i < n; i++) {
		char bytes[160];
		int len = snprintf(bytes, sizeof(bytes),
				   "kiln-event-v1........issuance station:st-1 %016llx "
				   "{\"device\":\"SN-%llu\",\"lot\":\"LOT-1\"}",
				   (unsigned long long)i, (unsigned long long)i);

		kiln_merkle_leaf(kiln_slice_of(bytes, (size_t)len), (*leaves)[i]);
	}
	if (!kiln_is_ok(kiln_merkle_mem_build((const uint8_t(*)[32])*leaves, (size_t)n, m)))
		die("tree", NULL);
	return kiln_mono_ns() - t0;
}

static void proofs(const struct opts *o, struct deployment *dep)
{
	struct kiln_checkpoint_rec cp, cp1;
	struct kiln_ledger_inclusion inc;
	struct kiln_merkle_proof p;
	struct kiln_merkle_mem m;
	struct kiln_merkle_source src;
	uint8_t (*leaves)[32] = NULL, root[32];
	uint64_t t0, t_fill, t_sync, t_raw, t_incl, t_cons, t_mem_root, t_mem_proof, n = o->entries;
	int64_t have = 0, mid;
	kiln_diag d;

	kiln_diag_clear(&d);
	t_fill = t_sync = 0;
	/* Two halves, each checkpointed: a consistency proof needs two trees. */
	for (int half = 1; half <= 2; half++) {
		uint64_t upto = half == 1 ? n / 2 : n;

		if (!kiln_is_ok(kiln_store_count(dep->store, "events", &have, &d)))
			die("count", &d);
		t0 = kiln_mono_ns();
		for (uint64_t done = (uint64_t)have; done < upto;) {
			struct fill f = { done, upto - done < 100000 ? upto - done : 100000 };

			if (!kiln_is_ok(kiln_store_write(dep->store, fill_fn, &f, &d)))
				die("fill", &d);
			done += f.n;
		}
		t_fill += kiln_mono_ns() - t0;
		t0 = kiln_mono_ns();
		if (!kiln_is_ok(kiln_ledger_sync(dep->ledger, &mid, &d)) ||
		    !kiln_is_ok(kiln_ledger_checkpoint(dep->ledger, half == 1 ? &cp1 : &cp, NULL, &d)))
			die("sync", &d);
		t_sync += kiln_mono_ns() - t0;
	}
	printf("log: %llu events written in %.1f s (one transaction per 100000); synced and "
	       "checkpointed in %.1f s\n", (unsigned long long)n, secs(t_fill), secs(t_sync));
	t_raw = raw_tree_ns(n, &leaves, &m);
	printf("sync: %.0f leaves/s into the derived tree (SQLite); raw SHA-256 leaves + in-memory "
	       "tree: %.0f leaves/s; ratio %.3f\n",
	       (double)n / secs(t_sync), (double)n / secs(t_raw), secs(t_raw) / secs(t_sync));

	/* Inclusion proofs from the derived tree, each checked against the signed root. */
	t0 = kiln_mono_ns();
	for (uint64_t i = 0; i < o->proofs; i++) {
		uint64_t idx = (i * 2654435761u) % n;

		if (!kiln_is_ok(kiln_ledger_prove(dep->ledger, idx, (uint64_t)cp.size, &inc, &d)))
			die("prove", &d);
	}
	t_incl = (kiln_mono_ns() - t0) / o->proofs;
	t0 = kiln_mono_ns();
	for (uint64_t i = 0; i < o->proofs; i++) {
		if (!kiln_is_ok(kiln_ledger_consistency(dep->ledger, (uint64_t)cp1.size,
							(uint64_t)cp.size, &p, &d)))
			die("consistency", &d);
	}
	t_cons = (kiln_mono_ns() - t0) / o->proofs;
	/* Baselines: the root recomputed from the leaves (no stored nodes), and an in-memory proof. */
	t0 = kiln_mono_ns();
	{
		struct kiln_merkle_builder b;

		kiln_merkle_builder_init(&b);
		for (uint64_t i = 0; i < n; i++)
			if (!kiln_is_ok(kiln_merkle_builder_push(&b, leaves[i], NULL, NULL, NULL)))
				die("builder", NULL);
		kiln_merkle_builder_root(&b, root);
	}
	t_mem_root = kiln_mono_ns() - t0;
	src = kiln_merkle_mem_source(&m);
	t0 = kiln_mono_ns();
	for (uint64_t i = 0; i < o->proofs; i++)
		if (!kiln_is_ok(kiln_merkle_inclusion(&src, (i * 2654435761u) % n, n, &p, NULL)))
			die("mem proof", NULL);
	t_mem_proof = (kiln_mono_ns() - t0) / o->proofs;
	printf("inclusion proof at %llu entries: %.1f us (SQLite, verified against the signed "
	       "root); in memory: %.2f us; root recomputed from %llu leaves (no stored nodes): "
	       "%.1f ms\n",
	       (unsigned long long)n, (double)t_incl / 1e3, (double)t_mem_proof / 1e3,
	       (unsigned long long)n, (double)t_mem_root / 1e6);
	printf("  ratio stored-node proof / root recomputation: %.5f (%.0fx faster)\n",
	       (double)t_incl / (double)t_mem_root, (double)t_mem_root / (double)t_incl);
	printf("  ratio stored-node proof / in-memory proof: %.1f\n",
	       (double)t_incl / (double)(t_mem_proof > 0 ? t_mem_proof : 1));
	printf("consistency proof %lld -> %lld: %.1f us (%zu hashes, verified against both signed "
	       "roots)\n", (long long)cp1.size, (long long)cp.size, (double)t_cons / 1e3, p.n);
	kiln_merkle_mem_cleanup(&m);
	free(leaves);
}

static uint64_t num(const char *s, uint64_t max)
{
	uint64_t v = 0;

	if (!kiln_is_ok(kiln_parse_u64(s, max, &v)) || v == 0) {
		fputs("usage: bench_ledger [--entries N] [--appends N] [--writers W] [--proofs N]\n",
		      stderr);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = { 1000000, 4000, 8, 2000, { 0 } };
	struct deployment dep;
	char path[600], raw1[600], raw2[600];
	double k, r1, r2;
	char *tmp;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--entries") == 0)
			o.entries = num(argv[i + 1], (uint64_t)1 << 30);
		else if (strcmp(argv[i], "--appends") == 0)
			o.appends = num(argv[i + 1], 10000000);
		else if (strcmp(argv[i], "--writers") == 0)
			o.writers = num(argv[i + 1], 64);
		else if (strcmp(argv[i], "--proofs") == 0)
			o.proofs = num(argv[i + 1], 10000000);
		else
			num("", 0);
	}
	tmp = getenv("TMPDIR");
	(void)snprintf(o.dir, sizeof(o.dir), "%s/kiln-bench-ledger-%d", tmp ? tmp : "/tmp",
		       (int)getpid());
	(void)snprintf(path, sizeof(path), "%s-appends.db", o.dir);
	(void)snprintf(raw1, sizeof(raw1), "%s-raw1.db", o.dir);
	(void)snprintf(raw2, sizeof(raw2), "%s-raw2.db", o.dir);

	k = kiln_appends(&o, path);
	r1 = raw_appends(raw1, o.appends / 4 > 0 ? o.appends / 4 : 1, false);
	r2 = raw_appends(raw2, o.appends, true);
	printf("appends: kiln %.0f durable events/s (%llu writers, group commit); raw SQLite "
	       "one commit per insert %.0f/s; raw SQLite one transaction %.0f/s\n",
	       k, (unsigned long long)o.writers, r1, r2);
	printf("  ratio kiln / raw durable insert: %.2f; kiln / raw single transaction: %.4f\n",
	       k / r1, k / r2);

	setup(&o, &dep);
	proofs(&o, &dep);
	deploy_close(&dep);
	{
		char cmd[4096];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'* '%s'* '%s'*", o.dir, path, raw1,
			       raw2);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_ledger: could not remove %s\n", o.dir);
	}
	return 0;
}
