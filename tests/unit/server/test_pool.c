/* Unit tests for src/server/pool.c: jobs run, the queue is bounded, stop discards, threads. */
#include "support/support.h"

#include "server/server_impl.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tjob {
	struct kiln_pool_job pj;
	int id;
	pthread_t ran_on;
	bool sigterm_blocked;
};

static atomic_int ran, discarded;
/* A gate that holds jobs until the test opens it. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int gate_waiting;

static void run_count(struct kiln_pool_job *pj)
{
	struct tjob *t = (struct tjob *)pj;
	sigset_t cur;

	t->ran_on = pthread_self();
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	t->sigterm_blocked = sigismember(&cur, SIGTERM) == 1;
	atomic_fetch_add(&ran, 1);
}

static void run_gated(struct kiln_pool_job *pj)
{
	pthread_mutex_lock(&gate_mu);
	gate_waiting++;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	run_count(pj);
}

static void on_discard(struct kiln_pool_job *pj)
{
	(void)pj;
	atomic_fetch_add(&discarded, 1);
}

static void gate_reset(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = false;
	gate_waiting = 0;
	pthread_mutex_unlock(&gate_mu);
	atomic_store(&ran, 0);
	atomic_store(&discarded, 0);
}

static void gate_wait_for(int n)
{
	pthread_mutex_lock(&gate_mu);
	while (gate_waiting < n)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void *release_later(void *arg)
{
	(void)arg;
	usleep(50000);
	gate_release();
	return NULL;
}

static void wait_ran(int n)
{
	for (int i = 0; i < 5000 && atomic_load(&ran) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&ran), n);
}

static void test_runs_every_job(void **state)
{
	struct tjob jobs[200];
	kiln_pool *p;
	pthread_t first;
	bool two_threads = false;

	(void)state;
	gate_reset();
	KT_OK(kiln_pool_new(4, 200, on_discard, &p));
	for (int i = 0; i < 200; i++) {
		jobs[i] = (struct tjob){ .pj.run = run_count, .id = i };
		KT_OK(kiln_pool_submit(p, &jobs[i].pj));
	}
	wait_ran(200);
	first = jobs[0].ran_on;
	for (int i = 0; i < 200; i++) {
		assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
		assert_true(jobs[i].sigterm_blocked);
		two_threads = two_threads || !pthread_equal(jobs[i].ran_on, first);
	}
	(void)two_threads; /* likely but not guaranteed: scheduling decides */
	assert_int_equal(kiln_pool_queued(p), 0);
	kiln_pool_free(p);
	assert_int_equal(atomic_load(&discarded), 0);
}

static void test_queue_is_bounded(void **state)
{
	struct tjob jobs[6];
	kiln_pool *p;

	(void)state;
	gate_reset();
	KT_OK(kiln_pool_new(2, 3, on_discard, &p));
	for (int i = 0; i < 6; i++)
		jobs[i] = (struct tjob){ .pj.run = run_gated, .id = i };
	/* Two workers take a job each and wait at the gate... */
	KT_OK(kiln_pool_submit(p, &jobs[0].pj));
	KT_OK(kiln_pool_submit(p, &jobs[1].pj));
	gate_wait_for(2);
	/* ...three more wait in the queue, the sixth is refused. */
	KT_OK(kiln_pool_submit(p, &jobs[2].pj));
	KT_OK(kiln_pool_submit(p, &jobs[3].pj));
	KT_OK(kiln_pool_submit(p, &jobs[4].pj));
	assert_int_equal(kiln_pool_queued(p), 3);
	KT_ERR(kiln_pool_submit(p, &jobs[5].pj), KILN_ERR_TOO_BIG);
	gate_release();
	wait_ran(5);
	/* Space again. */
	KT_OK(kiln_pool_submit(p, &jobs[5].pj));
	wait_ran(6);
	kiln_pool_free(p);
	assert_int_equal(atomic_load(&discarded), 0);
}

static void test_free_discards_queued_and_waits_for_running(void **state)
{
	struct tjob jobs[4];
	kiln_pool *p;
	pthread_t t;

	(void)state;
	gate_reset();
	KT_OK(kiln_pool_new(1, 8, on_discard, &p));
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct tjob){ .pj.run = run_gated, .id = i };
		KT_OK(kiln_pool_submit(p, &jobs[i].pj));
	}
	gate_wait_for(1);
	/* Open the gate a little later, while kiln_pool_free waits in join. */
	assert_int_equal(pthread_create(&t, NULL, release_later, NULL), 0);
	kiln_pool_free(p);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&ran), 1);
	assert_int_equal(atomic_load(&discarded), 3);
}

static void test_bad_arguments(void **state)
{
	kiln_pool *p = (kiln_pool *)&p;

	(void)state;
	KT_ERR(kiln_pool_new(0, 8, NULL, &p), KILN_ERR_ARG);
	assert_null(p);
	KT_ERR(kiln_pool_new(1, 0, NULL, &p), KILN_ERR_ARG);
	KT_ERR(kiln_pool_new(5000, 8, NULL, &p), KILN_ERR_ARG);
	kiln_pool_free(NULL);
}

static void test_free_without_discard_callback(void **state)
{
	struct tjob jobs[3];
	kiln_pool *p;

	(void)state;
	gate_reset();
	KT_OK(kiln_pool_new(1, 8, NULL, &p));
	for (int i = 0; i < 3; i++) {
		jobs[i] = (struct tjob){ .pj.run = run_gated, .id = i };
		KT_OK(kiln_pool_submit(p, &jobs[i].pj));
	}
	gate_wait_for(1);
	gate_release();
	kiln_pool_free(p);
	assert_true(atomic_load(&ran) >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_every_job),
		cmocka_unit_test(test_queue_is_bounded),
		cmocka_unit_test(test_free_discards_queued_and_waits_for_running),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_free_without_discard_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
