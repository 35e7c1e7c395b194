/*
 * src/store/commit.c: the write path. Direct and group-committed writes,
 * a failing job isolated from its batch-mates, a batch the database abandons,
 * a COMMIT that fails, nested writes, close draining the queue, durability
 * seen from an independent connection, lazy (unsynced) writes, and a SIGKILL
 * crash smoke test.
 *
 * Batches are made deterministic with a gate: a first job holds the
 * committer inside its fn until the jobs under test are queued behind it.
 */
#include "support/support.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store_impl.h"

struct fx {
	char *dir;
	char *path;
	kiln_store *s;
	int64_t ca;
};

static const uint8_t der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x2a };
static char yaml_text[] = "product: widget\n";

/* ------------------------------------------------------------ fixtures */

static kiln_result setup_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_ca_rec ca = { 0 };
	struct kiln_policy_rec p = { 0 };

	memcpy(ca.name, "production-root", 16);
	memcpy(ca.env, "production", 11);
	memcpy(ca.role, "root", 5);
	memcpy(ca.alg, "p256", 5);
	KILN_GUARD(kiln_store_tx_ca_add(tx, &ca, d));
	*(int64_t *)ctx = ca.id;
	memcpy(p.product, "widget", 7);
	memcpy(p.env, "production", 11);
	memcpy(p.status, "active", 7);
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	memcpy(p.added_by, "alice", 6);
	return kiln_store_tx_policy_add(tx, &p, d);
}

static kiln_store *open_store(const char *path, bool group)
{
	struct kiln_store_opts o = { .path = path, .create = true, .group_commit = group };
	kiln_store *s = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &s, &d));
	return s;
}

static int setup_common(void **state, bool group)
{
	struct fx *f = calloc(1, sizeof(*f));
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-commit");
	f->path = kt_path(f->dir, "kiln.db");
	f->s = open_store(f->path, group);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, setup_fn, &f->ca, &d));
	*state = f;
	return 0;
}

static int setup_direct(void **state)
{
	return setup_common(state, false);
}

static int setup_group(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

static int64_t count(kiln_store *s, const char *table)
{
	int64_t n = -1;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_count(s, table, &n, &d));
	return n;
}

/* ------------------------------------------------------------ the hot path's write */

struct issue {
	int64_t ca;
	char dev_serial[64];
	char cert_serial[KILN_STORE_SERIAL_HEX];
	int64_t seq;
};

static kiln_result issue_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct issue *is = ctx;
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec c = { 0 };
	struct kiln_event_rec ev = { 0 };

	memcpy(dev.product, "widget", 7);
	memcpy(dev.serial, is->dev_serial, sizeof(is->dev_serial));
	dev.policy_version = 1;
	memcpy(dev.cert_serial, is->cert_serial, sizeof(is->cert_serial));
	KILN_GUARD(kiln_store_tx_device_add(tx, &dev, d));
	memcpy(c.serial, is->cert_serial, sizeof(is->cert_serial));
	c.ca_id = is->ca;
	memcpy(c.kind, "device", 7);
	memcpy(c.env, "production", 11);
	memcpy(c.product, "widget", 7);
	c.device_id = dev.id;
	c.der = der_bytes;
	c.der_len = sizeof(der_bytes);
	KILN_GUARD(kiln_store_tx_cert_add(tx, &c, d));
	memcpy(ev.type, "issuance", 9);
	memcpy(ev.actor, "station-1", 10);
	memcpy(ev.subject, is->cert_serial, sizeof(is->cert_serial));
	KILN_GUARD(kiln_store_tx_event_add(tx, &ev, d));
	is->seq = ev.seq;
	return kiln_ok();
}

static struct issue issue_of(int64_t ca, unsigned thread, unsigned i)
{
	struct issue is = { .ca = ca, .seq = -1 };

	(void)snprintf(is.dev_serial, sizeof(is.dev_serial), "T%u-%u", thread, i);
	(void)snprintf(is.cert_serial, sizeof(is.cert_serial), "%02x%04x", thread, i);
	return is;
}

/* ------------------------------------------------------------ direct */

static void test_direct_write_and_stats(void **state)
{
	struct fx *f = *state;
	struct kiln_store_stats st;
	kiln_diag d;

	for (unsigned i = 0; i < 10; i++) {
		struct issue is = issue_of(f->ca, 0, i);

		kiln_diag_clear(&d);
		KT_OK(kiln_store_write(f->s, issue_fn, &is, &d));
		assert_int_equal(is.seq, (int64_t)i);
	}
	{
		struct issue dup = issue_of(f->ca, 0, 3);

		memcpy(dup.dev_serial, "fresh", 6);
		kiln_diag_clear(&d);
		KT_ERR(kiln_store_write(f->s, issue_fn, &dup, &d), KILN_ERR_DUPLICATE);
		assert_string_equal(d.text, "certificate serial 000003 already exists");
	}
	kiln_store_stats(f->s, &st);
	assert_int_equal(st.jobs, 12); /* setup + 10 + 1 */
	assert_int_equal(st.commits, 11);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.max_batch, 1);
	assert_int_equal(st.queued, 0);
	assert_int_equal(count(f->s, "devices"), 10);
	kiln_store_stats(NULL, &st);
	assert_int_equal(st.jobs, 0);
	kiln_store_stats(f->s, NULL);
}

static void test_write_args(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(NULL, issue_fn, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_write(f->s, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_event_add(f->s, NULL, &d), KILN_ERR_ARG);
}

/* ------------------------------------------------------------ durability */

/* After kiln_store_write returns, an independent connection sees the rows. */
static void check_durable(struct fx *f)
{
	struct issue is = issue_of(f->ca, 9, 1);
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, issue_fn, &is, &d));
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM certificates WHERE serial = ?1",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 1, is.cert_serial, -1, SQLITE_STATIC), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* And the sqlite3 command-line tool, another process entirely. */
	assert_int_equal(kt_system("sqlite3 '%s' \"SELECT serial FROM certificates\" | grep -qx %s",
				   f->path, is.cert_serial), 0);
}

static void test_durable_direct(void **state)
{
	check_durable(*state);
}

static void test_durable_group(void **state)
{
	check_durable(*state);
}

/* The writer connection's PRAGMA synchronous: 2 FULL, 1 NORMAL. */
static int writer_sync(struct fx *f)
{
	struct kiln_sqlite *b = f->s->backend;
	sqlite3_stmt *st = NULL;
	int v;

	assert_int_equal(sqlite3_prepare_v2(b->writer.db, "PRAGMA synchronous", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * A lazy write commits (an independent connection sees it at once) without
 * a sync; the next durable write puts the writer back to FULL, and both are
 * in the file after the store is closed and opened again.
 */
static void check_lazy(struct fx *f, bool group)
{
	struct issue lazy = issue_of(f->ca, 11, 1), full = issue_of(f->ca, 11, 2);
	kiln_diag d;

	kiln_diag_clear(&d);
	assert_int_equal(writer_sync(f), 2);
	KT_OK(kiln_store_write_lazy(f->s, issue_fn, &lazy, &d));
	assert_int_equal(writer_sync(f), 1);
	assert_int_equal(kt_system("sqlite3 '%s' \"SELECT serial FROM certificates\" | grep -qx %s",
				   f->path, lazy.cert_serial), 0);
	KT_OK(kiln_store_write(f->s, issue_fn, &full, &d));
	assert_int_equal(writer_sync(f), 2);
	KT_ERR(kiln_store_write_lazy(NULL, issue_fn, NULL, &d), KILN_ERR_ARG);
	kiln_store_close(f->s);
	f->s = open_store(f->path, group);
	assert_int_equal(kt_system("sqlite3 '%s' \"SELECT count(*) FROM certificates WHERE serial "
				   "IN ('%s', '%s')\" | grep -qx 2",
				   f->path, lazy.cert_serial, full.cert_serial), 0);
}

static void test_lazy_direct(void **state)
{
	check_lazy(*state, false);
}

static void test_lazy_group(void **state)
{
	check_lazy(*state, true);
}

/* ------------------------------------------------------------ group commit at scale */

#define THREADS 8
#define WRITES 200
#define DUP_EVERY 50

struct worker {
	kiln_store *s;
	int64_t ca;
	unsigned id;
	int64_t seqs[WRITES];
	unsigned ok, dups;
	char problem[256];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < WRITES; i++) {
		struct issue is = issue_of(w->ca, w->id, i);
		bool dup = i % DUP_EVERY == DUP_EVERY - 1;
		char want[128];
		kiln_diag d;
		kiln_result r;

		if (dup) /* the previous write's certificate serial, with a fresh device */
			(void)snprintf(is.cert_serial, sizeof(is.cert_serial), "%02x%04x", w->id, i - 1);
		kiln_diag_clear(&d);
		r = kiln_store_write(w->s, issue_fn, &is, &d);
		if (!dup && kiln_is_ok(r)) {
			w->seqs[w->ok++] = is.seq;
			continue;
		}
		(void)snprintf(want, sizeof(want), "certificate serial %s already exists",
			       is.cert_serial);
		if (dup && r.code == KILN_ERR_DUPLICATE && strcmp(d.text, want) == 0) {
			w->dups++;
			continue;
		}
		(void)snprintf(w->problem, sizeof(w->problem), "write %u: code %d: %.200s", i, r.code,
			       d.text);
		return NULL;
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void test_group_commit_concurrent(void **state)
{
	struct fx *f = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	pthread_t th[THREADS];
	int64_t *all = calloc(THREADS * WRITES, sizeof(*all));
	struct kiln_event_rec *events = NULL;
	struct kiln_store_stats st;
	size_t total = 0, n = 0;
	kiln_diag d;

	assert_non_null(w);
	assert_non_null(all);
	for (unsigned t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ .s = f->s, .ca = f->ca, .id = t };
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (unsigned t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (unsigned t = 0; t < THREADS; t++) {
		if (w[t].problem[0] != '\0')
			fail_msg("thread %u: %s", t, w[t].problem);
		assert_int_equal(w[t].ok, WRITES - WRITES / DUP_EVERY);
		assert_int_equal(w[t].dups, WRITES / DUP_EVERY);
		memcpy(all + total, w[t].seqs, w[t].ok * sizeof(*all));
		total += w[t].ok;
	}
	/* Exact counts: each failed write vanished whole, its batch-mates stayed. */
	assert_int_equal(total, THREADS * (WRITES - WRITES / DUP_EVERY));
	assert_int_equal(count(f->s, "devices"), (int64_t)total);
	assert_int_equal(count(f->s, "certificates"), (int64_t)total);
	assert_int_equal(count(f->s, "events"), (int64_t)total);
	/* The seqs handed back are exactly 0..N-1, and so is the log. */
	qsort(all, total, sizeof(*all), cmp_i64);
	for (size_t i = 0; i < total; i++)
		assert_int_equal(all[i], (int64_t)i);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_event_list(f->s, 0, 0, &events, &n, &d));
	assert_int_equal(n, total);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(events[i].seq, (int64_t)i);
	kiln_store_event_list_free(events, n);

	kiln_store_stats(f->s, &st);
	assert_int_equal(st.jobs, THREADS * WRITES + 1);
	assert_int_equal(st.failed, THREADS * (WRITES / DUP_EVERY));
	assert_true(st.commits < st.jobs); /* writers were batched */
	assert_true(st.max_batch > 1);
	print_message("group commit: %llu jobs in %llu commits, largest batch %llu\n",
		      (unsigned long long)st.jobs, (unsigned long long)st.commits,
		      (unsigned long long)st.max_batch);
	free(all);
	free(w);
}

/* ------------------------------------------------------------ deterministic batches */

enum mode { M_OK, M_FAIL, M_ABANDON, M_DEFER_FK, M_NESTED };

struct job {
	kiln_store *s;
	struct issue is;
	enum mode mode;
	atomic_int *gate;   /* fn waits until *gate != 0 */
	atomic_int started; /* fn has begun */
	kiln_result r;
	kiln_diag d;
	pthread_t th;
};

static kiln_result job_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct job *j = ctx;
	sqlite3 *db = ((struct kiln_sqlite_conn *)tx->conn)->db;

	atomic_store(&j->started, 1);
	while (j->gate != NULL && atomic_load(j->gate) == 0)
		(void)usleep(1000);
	KILN_GUARD(issue_fn(tx, &j->is, d));
	switch (j->mode) {
	case M_FAIL:
		return kiln_diag_set(d, KILN_ERR_HSM, "job %s failed on purpose", j->is.dev_serial);
	case M_ABANDON:
		/* What SQLite does after some I/O errors: the whole transaction is gone. */
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return kiln_ok();
	case M_DEFER_FK:
		/* A violation only COMMIT can see: COMMIT fails. */
		(void)sqlite3_exec(db, "PRAGMA defer_foreign_keys = ON; INSERT INTO devices "
				       "(product, serial, policy_version, status, created) VALUES "
				       "('nosuch', 'x', 1, 'active', 1)", NULL, NULL, NULL);
		return kiln_ok();
	case M_NESTED:
		return kiln_store_write(j->s, issue_fn, &j->is, d);
	case M_OK:
	default:
		return kiln_ok();
	}
}

static void *job_main(void *arg)
{
	struct job *j = arg;

	kiln_diag_clear(&j->d);
	j->r = kiln_store_write(j->s, job_fn, j, &j->d);
	return NULL;
}

static void job_start(struct job *j)
{
	assert_int_equal(pthread_create(&j->th, NULL, job_main, j), 0);
}

static void wait_for(bool (*cond)(void *), void *arg)
{
	for (int i = 0; i < 20000 && !cond(arg); i++)
		(void)usleep(1000);
	assert_true(cond(arg));
}

static bool job_started(void *arg)
{
	return atomic_load(&((struct job *)arg)->started) != 0;
}

struct qwait {
	kiln_store *s;
	uint64_t n;
};

static bool queue_has(void *arg)
{
	struct qwait *q = arg;
	struct kiln_store_stats st;

	kiln_store_stats(q->s, &st);
	return st.queued == q->n;
}

/*
 * Runs jobs[0..n) as one batch: a gate job holds the committer while they
 * queue up in order, then everything is released and joined.
 */
static void run_batch(struct fx *f, struct job *jobs, size_t n)
{
	atomic_int gate = 0;
	struct job holder = { .s = f->s, .is = issue_of(f->ca, 7, 999), .gate = &gate };

	job_start(&holder);
	wait_for(job_started, &holder);
	for (size_t i = 0; i < n; i++) {
		struct qwait q = { f->s, i + 1 };

		jobs[i].s = f->s;
		job_start(&jobs[i]);
		wait_for(queue_has, &q);
	}
	atomic_store(&gate, 1);
	assert_int_equal(pthread_join(holder.th, NULL), 0);
	KT_OK(holder.r);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_join(jobs[i].th, NULL), 0);
}

static bool cert_stored(kiln_store *s, const char *serial)
{
	bool found = false;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_cert_exists(s, serial, &found, &d));
	return found;
}

static void test_group_failure_isolated(void **state)
{
	struct fx *f = *state;
	struct job jobs[3] = {
		{ .is = issue_of(f->ca, 1, 1), .mode = M_OK },
		{ .is = issue_of(f->ca, 1, 2), .mode = M_FAIL },
		{ .is = issue_of(f->ca, 1, 3), .mode = M_OK },
	};
	struct kiln_store_stats before, after;

	kiln_store_stats(f->s, &before);
	run_batch(f, jobs, 3);
	kiln_store_stats(f->s, &after);
	KT_OK(jobs[0].r);
	KT_ERR(jobs[1].r, KILN_ERR_HSM);
	assert_string_equal(jobs[1].d.text, "job T1-2 failed on purpose");
	KT_OK(jobs[2].r);
	/* The holder's batch and this one: two commits, four jobs, one of three failed. */
	assert_int_equal(after.commits - before.commits, 2);
	assert_int_equal(after.jobs - before.jobs, 4);
	assert_int_equal(after.failed - before.failed, 1);
	assert_true(after.max_batch >= 3);
	assert_true(cert_stored(f->s, jobs[0].is.cert_serial));
	assert_false(cert_stored(f->s, jobs[1].is.cert_serial));
	assert_true(cert_stored(f->s, jobs[2].is.cert_serial));
	/* Seqs: holder 0, then the two survivors with no gap where the failure was. */
	assert_int_equal(jobs[0].is.seq, 1);
	assert_int_equal(jobs[2].is.seq, 2);
	assert_int_equal(count(f->s, "events"), 3);
}

static void test_group_abandoned_batch(void **state)
{
	struct fx *f = *state;
	struct job jobs[3] = {
		{ .is = issue_of(f->ca, 2, 1), .mode = M_OK },
		{ .is = issue_of(f->ca, 2, 2), .mode = M_ABANDON },
		{ .is = issue_of(f->ca, 2, 3), .mode = M_OK },
	};

	run_batch(f, jobs, 3);
	/* The job before the abandoning one lost its work and is told so ... */
	KT_ERR(jobs[0].r, KILN_ERR_STORE);
	assert_non_null(strstr(jobs[0].d.text, "nothing of this write was stored, retry"));
	KT_ERR(jobs[1].r, KILN_ERR_STORE);
	assert_non_null(strstr(jobs[1].d.text, "abandoned the write transaction"));
	/* ... and the one after it never ran in that batch: it went into the next one. */
	KT_OK(jobs[2].r);
	assert_false(cert_stored(f->s, jobs[0].is.cert_serial));
	assert_false(cert_stored(f->s, jobs[1].is.cert_serial));
	assert_true(cert_stored(f->s, jobs[2].is.cert_serial));
	assert_int_equal(jobs[2].is.seq, 1);
	assert_int_equal(count(f->s, "events"), 2);
}

static void test_group_commit_fails(void **state)
{
	struct fx *f = *state;
	struct job jobs[3] = {
		{ .is = issue_of(f->ca, 3, 1), .mode = M_OK },
		{ .is = issue_of(f->ca, 3, 2), .mode = M_DEFER_FK },
		{ .is = issue_of(f->ca, 3, 3), .mode = M_OK },
	};

	run_batch(f, jobs, 3);
	for (size_t i = 0; i < 3; i++) {
		KT_ERR(jobs[i].r, KILN_ERR_STORE);
		assert_non_null(strstr(jobs[i].d.text, "the inventory COMMIT failed"));
		assert_false(cert_stored(f->s, jobs[i].is.cert_serial));
	}
	assert_int_equal(count(f->s, "devices"), 1); /* the holder's */
	assert_int_equal(count(f->s, "events"), 1);
}

static void test_direct_commit_fails(void **state)
{
	struct fx *f = *state;
	struct job j = { .s = f->s, .is = issue_of(f->ca, 4, 1), .mode = M_DEFER_FK };
	struct job a = { .s = f->s, .is = issue_of(f->ca, 4, 2), .mode = M_ABANDON };

	job_main(&j);
	KT_ERR(j.r, KILN_ERR_STORE);
	assert_string_equal(j.d.text, "the inventory COMMIT failed (constraint failed: FOREIGN KEY "
				      "constraint failed)");
	job_main(&a);
	KT_ERR(a.r, KILN_ERR_STORE);
	assert_non_null(strstr(a.d.text, "abandoned"));
	assert_int_equal(count(f->s, "devices"), 0);
	/* The writer is usable afterwards. */
	j.mode = M_OK;
	job_main(&j);
	KT_OK(j.r);
}

static void check_nested(struct fx *f)
{
	struct job j = { .s = f->s, .is = issue_of(f->ca, 5, 1), .mode = M_NESTED };

	job_main(&j);
	KT_ERR(j.r, KILN_ERR_INTERNAL);
	assert_non_null(strstr(j.d.text, "called from inside a write function"));
	assert_int_equal(count(f->s, "devices"), 0);
	j.mode = M_OK;
	job_main(&j);
	KT_OK(j.r);
}

static void test_nested_direct(void **state)
{
	check_nested(*state);
}

static void test_nested_group(void **state)
{
	check_nested(*state);
}

/* close lets every queued writer finish and commit before it tears down. */
static void test_close_drains_queue(void **state)
{
	struct fx *f = *state;
	atomic_int gate = 0;
	struct job holder = { .s = f->s, .is = issue_of(f->ca, 6, 0), .gate = &gate };
	struct job jobs[4];

	job_start(&holder);
	wait_for(job_started, &holder);
	for (unsigned i = 0; i < 4; i++) {
		struct qwait q = { f->s, i + 1 };

		jobs[i] = (struct job){ .s = f->s, .is = issue_of(f->ca, 6, i + 1) };
		job_start(&jobs[i]);
		wait_for(queue_has, &q);
	}
	atomic_store(&gate, 1);
	kiln_store_close(f->s); /* returns only once all five have committed */
	f->s = NULL;
	assert_int_equal(pthread_join(holder.th, NULL), 0);
	KT_OK(holder.r);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(jobs[i].th, NULL), 0);
		KT_OK(jobs[i].r);
	}
	f->s = open_store(f->path, true);
	assert_int_equal(count(f->s, "certificates"), 5);
}

/* ------------------------------------------------------------ crash smoke test */

struct crash_writer {
	kiln_store *s;
	int64_t ca;
	unsigned id;
	int fd;
};

static void *crash_writer_main(void *arg)
{
	struct crash_writer *cw = arg;

	for (unsigned i = 0;; i++) {
		struct issue is = issue_of(cw->ca, cw->id, i);
		kiln_diag d;

		kiln_diag_clear(&d);
		if (!kiln_is_ok(kiln_store_write(cw->s, issue_fn, &is, &d)))
			_exit(3);
		/* Released only after the COMMIT: the parent may count on it. */
		if (write(cw->fd, &is.seq, sizeof(is.seq)) != (ssize_t)sizeof(is.seq))
			_exit(4);
	}
	return NULL;
}

static void crash_child(const char *path, int64_t ca, int fd)
{
	struct crash_writer cw[4];
	pthread_t th[4];
	kiln_store *s = NULL;
	struct kiln_store_opts o = { .path = path, .group_commit = true };
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_store_open(&o, &s, &d)))
		_exit(2);
	for (unsigned t = 0; t < 4; t++) {
		cw[t] = (struct crash_writer){ .s = s, .ca = ca, .id = t, .fd = fd };
		if (pthread_create(&th[t], NULL, crash_writer_main, &cw[t]) != 0)
			_exit(5);
	}
	for (;;)
		(void)pause();
}

static void test_crash_smoke(void **state)
{
	struct fx *f = *state;
	int64_t seq, max_released = -1, events, max_seq;
	size_t released = 0;
	uint64_t t0;
	int fds[2], status;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	pid_t pid;

	kiln_store_close(f->s); /* the child owns the file now */
	f->s = NULL;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)close(fds[0]);
		crash_child(f->path, f->ca, fds[1]);
	}
	(void)close(fds[1]);
	t0 = kiln_mono_ns();
	/* Let it write for a while (longer under valgrind), then kill it mid-flight. */
	while (released < 300 && kiln_mono_ns() - t0 < 20ull * 1000000000ull &&
	       read(fds[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
		released++;
		if (seq > max_released)
			max_released = seq;
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	while (read(fds[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq)) {
		released++;
		if (seq > max_released)
			max_released = seq;
	}
	(void)close(fds[0]);
	assert_true(released > 0);

	/* The file is whole, and every write is all there or not at all. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), coalesce(max(seq), -1) FROM events",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	events = sqlite3_column_int64(st, 0);
	max_seq = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);

	f->s = open_store(f->path, true);
	assert_int_equal(events, max_seq + 1);       /* contiguous */
	assert_true(max_seq >= max_released);        /* nothing released was lost */
	assert_true(events >= (int64_t)released);
	assert_int_equal(count(f->s, "devices"), events);
	assert_int_equal(count(f->s, "certificates"), events);
	print_message("crash: %zu writes released before SIGKILL, %lld on disk after\n", released,
		      (long long)events);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_write_and_stats, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_write_args, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_durable_direct, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_durable_group, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_direct, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_group, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_concurrent, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_group_failure_isolated, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_group_abandoned_batch, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_fails, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_direct_commit_fails, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_nested_direct, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_nested_group, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_close_drains_queue, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_crash_smoke, setup_group, teardown),
	};

	/* KILN_TEST_ONLY="test_group*" runs a subset (e.g. under helgrind). */
	if (getenv("KILN_TEST_ONLY") != NULL)
		cmocka_set_test_filter(getenv("KILN_TEST_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
