/*
 * The worker pool: N threads and one bounded FIFO under a mutex and a
 * condition variable. Jobs are embedded in the caller's structs, so a full
 * queue is refused without allocating and memory stays bounded under load.
 */
#include "server_impl.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct kiln_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kiln_pool_job *head, *tail;
	size_t queued, max;
	bool stopping;
	void (*discard)(struct kiln_pool_job *job);
	pthread_t *threads;
	unsigned n_threads;
};

static void *worker(void *arg)
{
	kiln_pool *p = arg;

	for (;;) {
		struct kiln_pool_job *job;

		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		job = p->head;
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		job->next = NULL;
		job->run(job);
	}
}

/* Stops and joins the first n threads; the queue is left for the caller. */
static void stop_threads(kiln_pool *p, unsigned n)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		(void)pthread_join(p->threads[i], NULL);
}

kiln_result kiln_pool_new(unsigned threads, size_t queue_max,
			  void (*discard)(struct kiln_pool_job *job), kiln_pool **out)
{
	sigset_t all, old;
	kiln_pool *p;
	unsigned started = 0;

	*out = NULL;
	KILN_ENSURE(threads > 0 && threads <= 1024 && queue_max > 0, KILN_ERR_ARG);
	p = calloc(1, sizeof(*p));
	KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
	p->threads = calloc(threads, sizeof(*p->threads));
	if (p->threads == NULL) {
		free(p);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	p->max = queue_max;
	p->discard = discard;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	/* Workers never take signals: SIGTERM and SIGINT belong to the event loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (started < threads && pthread_create(&p->threads[started], NULL, worker, p) == 0)
		started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->n_threads = started;
	if (started < threads) {
		kiln_pool_free(p);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	*out = p;
	return kiln_ok();
}

kiln_result kiln_pool_submit(kiln_pool *p, struct kiln_pool_job *job)
{
	kiln_result r = kiln_ok();

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		r = kiln_fail(KILN_ERR_ARG);
	} else if (p->queued >= p->max) {
		r = kiln_fail(KILN_ERR_TOO_BIG);
	} else {
		job->next = NULL;
		if (p->tail != NULL)
			p->tail->next = job;
		else
			p->head = job;
		p->tail = job;
		p->queued++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

size_t kiln_pool_queued(kiln_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->queued;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void kiln_pool_free(kiln_pool *p)
{
	struct kiln_pool_job *job;

	if (p == NULL)
		return;
	stop_threads(p, p->n_threads);
	/* The threads are gone: the queue is ours without the lock. */
	while ((job = p->head) != NULL) {
		p->head = job->next;
		job->next = NULL;
		if (p->discard != NULL)
			p->discard(job);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
