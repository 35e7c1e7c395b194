/*
 * The write path. Commit before release (DESIGN.md principle 3):
 * kiln_store_write returns only after the COMMIT holding the caller's work
 * completed, so nothing a caller releases afterwards can be lost.
 *
 * Without group commit each call is one BEGIN IMMEDIATE .. COMMIT on the
 * writer, serialised by write_mu. With group commit, callers queue a job and
 * sleep; one committer thread takes up to BATCH_MAX queued jobs, runs each in
 * its own SAVEPOINT inside one transaction and makes them all durable with
 * one COMMIT (one fsync), then wakes them. A job whose fn fails is rolled
 * back to its savepoint alone; its batch-mates are unaffected. Jobs arriving
 * while a batch commits form the next batch.
 */
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 256

struct kiln_store_job {
	kiln_store_tx_fn fn;
	void *ctx;
	kiln_diag diag; /* written only by fn and the committer until done */
	kiln_result result;
	bool durable; /* false for kiln_store_write_lazy */
	bool done;
	pthread_cond_t done_cv;
	struct kiln_store_job *next;
};

/* ------------------------------------------------------------ life cycle */

kiln_result kiln_store_commit_init(kiln_store *s, kiln_diag *d)
{
	pthread_mutexattr_t attr;
	int steps = 0;

	if (pthread_mutexattr_init(&attr) != 0)
		goto fail;
	/* Error-checking, so a nested kiln_store_write is an error, not a hang. */
	if (pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK) != 0 ||
	    pthread_mutex_init(&s->write_mu, &attr) != 0) {
		(void)pthread_mutexattr_destroy(&attr);
		goto fail;
	}
	(void)pthread_mutexattr_destroy(&attr);
	steps = 1;
	if (pthread_mutex_init(&s->q_mu, NULL) != 0)
		goto fail;
	steps = 2;
	if (pthread_cond_init(&s->q_cv, NULL) != 0)
		goto fail;
	steps = 3;
	if (pthread_cond_init(&s->idle_cv, NULL) != 0)
		goto fail;
	return kiln_ok();
fail:
	if (steps >= 3)
		(void)pthread_cond_destroy(&s->q_cv);
	if (steps >= 2)
		(void)pthread_mutex_destroy(&s->q_mu);
	if (steps >= 1)
		(void)pthread_mutex_destroy(&s->write_mu);
	return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not create the store's locks");
}

static void *committer_main(void *arg);

kiln_result kiln_store_commit_start(kiln_store *s, kiln_diag *d)
{
	if (!s->group_commit)
		return kiln_ok();
	if (pthread_create(&s->committer, NULL, committer_main, s) != 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not start the group committer thread");
	(void)pthread_mutex_lock(&s->q_mu);
	s->committer_running = true;
	(void)pthread_mutex_unlock(&s->q_mu);
	return kiln_ok();
}

void kiln_store_commit_stop(kiln_store *s)
{
	bool join;

	(void)pthread_mutex_lock(&s->q_mu);
	s->stopping = true;
	(void)pthread_cond_broadcast(&s->q_cv);
	/* Queued jobs count as inflight: the committer drains them before we go on. */
	while (s->inflight > 0)
		(void)pthread_cond_wait(&s->idle_cv, &s->q_mu);
	join = s->committer_running;
	s->committer_running = false;
	(void)pthread_mutex_unlock(&s->q_mu);
	if (join)
		(void)pthread_join(s->committer, NULL);
}

void kiln_store_commit_cleanup(kiln_store *s)
{
	(void)pthread_cond_destroy(&s->idle_cv);
	(void)pthread_cond_destroy(&s->q_cv);
	(void)pthread_mutex_destroy(&s->q_mu);
	(void)pthread_mutex_destroy(&s->write_mu);
}

void kiln_store_stats(kiln_store *s, struct kiln_store_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	(void)pthread_mutex_lock(&s->q_mu);
	*out = s->stats;
	out->queued = s->q_len;
	(void)pthread_mutex_unlock(&s->q_mu);
}

/* Called with q_mu held. */
static void stats_note(kiln_store *s, size_t jobs, size_t failed, bool committed)
{
	s->stats.jobs += jobs;
	s->stats.failed += failed;
	if (committed)
		s->stats.commits++;
	if (jobs > s->stats.max_batch)
		s->stats.max_batch = jobs;
}

/* ------------------------------------------------------------ direct writes */

static kiln_result lock_writer(kiln_store *s, kiln_diag *d)
{
	int e = pthread_mutex_lock(&s->write_mu);

	/* nested() catches this first; the error-checking mutex is the backstop. */
	if (e == EDEADLK)
		return kiln_diag_set(d, KILN_ERR_INTERNAL,
				     "kiln_store_write called from inside a write function; "
				     "use the tx operations of the transaction you are in");
	if (e != 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not lock the inventory writer");
	return kiln_ok();
}

static kiln_result abandoned(kiln_diag *d)
{
	return kiln_diag_set(d, KILN_ERR_STORE,
			     "the database abandoned the write transaction after an error; "
			     "nothing of this write was stored, retry");
}

/* Called with q_mu held: is this thread inside a caller's fn? */
static bool nested(const kiln_store *s)
{
	pthread_t self = pthread_self();

	if (s->writer_held && pthread_equal(self, s->writer_owner))
		return true;
	return s->committer_self_set && pthread_equal(self, s->committer_self);
}

static void note_writer(kiln_store *s, bool held)
{
	(void)pthread_mutex_lock(&s->q_mu);
	s->writer_held = held;
	s->writer_owner = pthread_self();
	(void)pthread_mutex_unlock(&s->q_mu);
}

static kiln_result write_direct(kiln_store *s, kiln_store_tx_fn fn, void *ctx, bool durable,
				kiln_diag *d, bool *committed)
{
	kiln_store_tx tx = { s, NULL };
	kiln_result r;

	KILN_GUARD(lock_writer(s, d));
	note_writer(s, true);
	KILN_TRY(r, s->ops->tx_begin(s, &tx, durable, d));
	r = fn(&tx, ctx, d);
	if (!kiln_is_ok(r)) {
		s->ops->tx_rollback(&tx);
		goto out;
	}
	if (!s->ops->tx_open(&tx)) {
		r = abandoned(d);
		goto out;
	}
	KILN_TRY(r, s->ops->tx_commit(&tx, d));
	*committed = true;
out:
	note_writer(s, false);
	(void)pthread_mutex_unlock(&s->write_mu);
	return r;
}

/* ------------------------------------------------------------ group commit */

static void job_fail(struct kiln_store_job *j, kiln_err code, const char *msg)
{
	j->result = kiln_diag_set(&j->diag, code, "%s", msg);
}

/*
 * One job inside the batch transaction. Returns false when the transaction
 * can no longer be trusted (the database abandoned it, or a savepoint could
 * not be undone): the batch must then be rolled back as a whole.
 */
static bool batch_run_job(kiln_store *s, kiln_store_tx *tx, struct kiln_store_job *j)
{
	kiln_diag sd;

	kiln_diag_clear(&sd);
	j->result = s->ops->tx_savepoint(tx, KILN_STORE_SP_BEGIN, &j->diag);
	if (!kiln_is_ok(j->result))
		return s->ops->tx_open(tx);
	j->result = j->fn(tx, j->ctx, &j->diag);
	if (!s->ops->tx_open(tx)) {
		if (kiln_is_ok(j->result))
			j->result = abandoned(&j->diag);
		return false;
	}
	if (kiln_is_ok(j->result)) {
		j->result = s->ops->tx_savepoint(tx, KILN_STORE_SP_RELEASE, &j->diag);
		return kiln_is_ok(j->result);
	}
	return kiln_is_ok(s->ops->tx_savepoint(tx, KILN_STORE_SP_ROLLBACK, &sd));
}

/* The batch was rolled back: jobs that had succeeded learn that their work is gone. */
static void batch_undo(kiln_store *s, struct kiln_store_job **jobs, size_t n, const char *why)
{
	char msg[KILN_DIAG_MAX];

	(void)snprintf(msg, sizeof(msg), "%.400s; nothing of this write was stored, retry", why);
	for (size_t i = 0; i < n; i++) {
		if (kiln_is_ok(jobs[i]->result)) {
			kiln_diag_clear(&jobs[i]->diag);
			job_fail(jobs[i], KILN_ERR_STORE, msg);
		}
	}
	kiln_log_error(s->log, "store: batch of %zu writes rolled back: %s", n, why);
}

/*
 * Runs jobs[0..n) in one transaction. *ran says how many were run; the rest
 * (after the batch had to be abandoned) go back to the queue untouched.
 */
static bool batch_run(kiln_store *s, struct kiln_store_job **jobs, size_t n, size_t *ran)
{
	kiln_store_tx tx = { s, NULL };
	kiln_diag bd;
	kiln_result r;
	bool intact = true, durable = false;
	size_t i;

	kiln_diag_clear(&bd);
	*ran = n;
	/* One durable job makes the whole batch durable. */
	for (i = 0; i < n; i++)
		durable = durable || jobs[i]->durable;
	KILN_TRY(r, lock_writer(s, &bd));
	r = s->ops->tx_begin(s, &tx, durable, &bd);
	if (!kiln_is_ok(r)) {
		(void)pthread_mutex_unlock(&s->write_mu);
		goto out;
	}
	for (i = 0; i < n && intact; i++)
		intact = batch_run_job(s, &tx, jobs[i]);
	*ran = i;
	if (intact)
		r = s->ops->tx_commit(&tx, &bd);
	else
		s->ops->tx_rollback(&tx);
	(void)pthread_mutex_unlock(&s->write_mu);
	if (intact && kiln_is_ok(r))
		return true;
	batch_undo(s, jobs, *ran, intact ? kiln_diag_message(&bd, r)
					 : "another write in the same batch made the database abandon "
					   "the transaction");
	return false;
out:
	/* Nothing ran: every job learns why. */
	for (i = 0; i < n; i++)
		job_fail(jobs[i], r.code, kiln_diag_message(&bd, r));
	return false;
}

/* Called with q_mu held: takes up to BATCH_MAX jobs from the head of the queue. */
static size_t queue_take(kiln_store *s, struct kiln_store_job **jobs)
{
	size_t n = 0;

	while (s->q_head != NULL && n < BATCH_MAX) {
		jobs[n++] = s->q_head;
		s->q_head = s->q_head->next;
	}
	if (s->q_head == NULL)
		s->q_tail = NULL;
	s->q_len -= n;
	return n;
}

/* Called with q_mu held: puts jobs back at the head, in their order. */
static void queue_return(kiln_store *s, struct kiln_store_job **jobs, size_t n)
{
	for (size_t i = n; i > 0; i--) {
		jobs[i - 1]->next = s->q_head;
		s->q_head = jobs[i - 1];
		if (s->q_tail == NULL)
			s->q_tail = jobs[i - 1];
	}
	s->q_len += n;
}

static void *committer_main(void *arg)
{
	kiln_store *s = arg;
	struct kiln_store_job *jobs[BATCH_MAX];

	(void)pthread_mutex_lock(&s->q_mu);
	s->committer_self = pthread_self();
	s->committer_self_set = true;
	for (;;) {
		size_t n, ran, failed = 0;
		bool committed;

		while (s->q_head == NULL && !s->stopping)
			(void)pthread_cond_wait(&s->q_cv, &s->q_mu);
		if (s->q_head == NULL)
			break;
		n = queue_take(s, jobs);
		(void)pthread_mutex_unlock(&s->q_mu);

		committed = batch_run(s, jobs, n, &ran);

		(void)pthread_mutex_lock(&s->q_mu);
		queue_return(s, jobs + ran, n - ran);
		/* Touch no job after q_mu is released: its owner may return at once. */
		for (size_t i = 0; i < ran; i++) {
			failed += !kiln_is_ok(jobs[i]->result);
			jobs[i]->done = true;
			(void)pthread_cond_signal(&jobs[i]->done_cv);
		}
		stats_note(s, ran, failed, committed);
	}
	(void)pthread_mutex_unlock(&s->q_mu);
	return NULL;
}

static kiln_result write_queued(kiln_store *s, kiln_store_tx_fn fn, void *ctx, bool durable,
				kiln_diag *d)
{
	struct kiln_store_job job = { .fn = fn, .ctx = ctx, .durable = durable };

	/* Called with q_mu held; returns with it held. */
	if (pthread_cond_init(&job.done_cv, NULL) != 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not create a condition variable");
	kiln_diag_clear(&job.diag);
	if (s->q_tail != NULL)
		s->q_tail->next = &job;
	else
		s->q_head = &job;
	s->q_tail = &job;
	s->q_len++;
	(void)pthread_cond_signal(&s->q_cv);
	while (!job.done)
		(void)pthread_cond_wait(&job.done_cv, &s->q_mu);
	(void)pthread_cond_destroy(&job.done_cv);
	if (!kiln_is_ok(job.result) && job.diag.code != KILN_OK) {
		kiln_result copied = kiln_diag_set(d, job.diag.code, "%s", job.diag.text);

		(void)copied; /* the job's own result is what the caller gets */
	}
	return job.result;
}

/* ------------------------------------------------------------ entry point */

static kiln_result store_write(kiln_store *s, kiln_store_tx_fn fn, void *ctx, bool durable,
			       kiln_diag *d)
{
	kiln_result r;
	bool committed = false;

	KILN_ENSURE(s != NULL && fn != NULL, KILN_ERR_ARG);
	(void)pthread_mutex_lock(&s->q_mu);
	if (nested(s)) {
		/* Waiting for ourselves would never end. */
		(void)pthread_mutex_unlock(&s->q_mu);
		return kiln_diag_set(d, KILN_ERR_INTERNAL,
				     "kiln_store_write called from inside a write function; "
				     "use the tx operations of the transaction you are in");
	}
	if (s->stopping) {
		(void)pthread_mutex_unlock(&s->q_mu);
		return kiln_diag_set(d, KILN_ERR_STORE, "the inventory is closing; write refused");
	}
	s->inflight++;
	if (s->group_commit) {
		r = write_queued(s, fn, ctx, durable, d);
	} else {
		(void)pthread_mutex_unlock(&s->q_mu);
		r = write_direct(s, fn, ctx, durable, d, &committed);
		(void)pthread_mutex_lock(&s->q_mu);
		stats_note(s, 1, !kiln_is_ok(r), committed);
	}
	s->inflight--;
	if (s->inflight == 0 && s->stopping)
		(void)pthread_cond_broadcast(&s->idle_cv);
	(void)pthread_mutex_unlock(&s->q_mu);
	return r;
}

kiln_result kiln_store_write(kiln_store *s, kiln_store_tx_fn fn, void *ctx, kiln_diag *d)
{
	return store_write(s, fn, ctx, true, d);
}

kiln_result kiln_store_write_lazy(kiln_store *s, kiln_store_tx_fn fn, void *ctx, kiln_diag *d)
{
	return store_write(s, fn, ctx, false, d);
}
