/*
 * The publisher: one thread that follows the store's revocation generation
 * (every revocation, whichever path recorded it) and keeps what kiln serve
 * publishes current. OCSP responses are replaced at once (kiln_ocsp_sync);
 * CRLs are issued again once revocations stop arriving for coalesce_ms (a
 * recall of a thousand certificates makes one CRL, not a thousand), and
 * before half their validity has passed. Each CRL is written to crl_dir and
 * kept in memory for GET /crl/<ca>.crl.
 */
#include "server.h"

#include "ca/ca_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pub_crl {
	char name[64];
	uint8_t *der;
	size_t len;
	int64_t this_update, next_update;
};

struct kiln_publisher {
	struct kiln_publisher_opts o;
	char crl_dir[KILN_PATH_MAX];
	char actor[KILN_STORE_NAME_MAX];
	pthread_t thread;
	bool running;
	pthread_mutex_t mu; /* guards crls and stop */
	pthread_cond_t cv;
	bool stop;
	struct pub_crl crls[16];  /* every issuing CA of both environments, retired ones too */
	size_t n_crls;
	int64_t crl_seq;          /* generation the CRLs reflect (thread only) */
	uint64_t change_seen_ns;  /* when an unpublished generation was first seen; 0: none */
};

static kiln_result issue_crls(kiln_publisher *p, kiln_diag *d)
{
	for (size_t i = 0; i < p->n_crls; i++) {
		struct pub_crl *c = &p->crls[i];
		struct kiln_crl_result res;
		char path[KILN_PATH_MAX + 80];
		uint8_t *der, *old;
		size_t len = 0;
		kiln_result r;

		memset(&res, 0, sizeof(res));
		kiln_buf_init(&res.der, KILN_CRL_MAX_BYTES);
		r = kiln_ca_crl_issue(p->o.ca, c->name, p->o.crl_validity_s, p->actor, &res, d);
		(void)snprintf(path, sizeof(path), "%s/%s.crl", p->crl_dir, c->name);
		if (kiln_is_ok(r))
			r = kiln_file_write(path, kiln_buf_view(&res.der), 0644, d);
		der = kiln_is_ok(r) ? kiln_buf_take(&res.der, &len) : NULL;
		kiln_buf_cleanup(&res.der);
		KILN_GUARD(r);
		KILN_ENSURE(der != NULL, KILN_ERR_NOMEM);
		pthread_mutex_lock(&p->mu);
		old = c->der;
		c->der = der;
		c->len = len;
		c->this_update = res.rec.this_update;
		c->next_update = res.rec.next_update;
		pthread_mutex_unlock(&p->mu);
		free(old);
		if (res.rec.revocation_seq > p->crl_seq)
			p->crl_seq = res.rec.revocation_seq;
		kiln_log_info(p->o.log, "CRL %s number %lld: %lld entries", c->name,
			      (long long)res.rec.number, (long long)res.rec.entries);
	}
	return kiln_ok();
}

static bool crls_stale(kiln_publisher *p)
{
	bool stale = false;
	int64_t now = kiln_now();

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n_crls; i++) {
		const struct pub_crl *c = &p->crls[i];

		stale = stale || c->der == NULL ||
			now >= c->this_update + (c->next_update - c->this_update) / 2;
	}
	pthread_mutex_unlock(&p->mu);
	return stale;
}

/* One round: OCSP first (seconds matter there), then the CRLs when due. */
static void round_once(kiln_publisher *p)
{
	struct kiln_ocsp_sync sync;
	kiln_diag d;
	int64_t seq = 0;

	kiln_diag_clear(&d);
	if (p->o.ocsp != NULL) {
		if (!kiln_is_ok(kiln_ocsp_sync(p->o.ocsp, &sync, &d)))
			kiln_log_error(p->o.log, "OCSP refresh failed: %s", d.text);
		else if (sync.revoked > 0)
			kiln_log_info(p->o.log, "OCSP: %zu revocations published, slowest %lld ms "
				      "after being recorded", sync.revoked,
				      (long long)sync.max_visible_ms);
	}
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_store_revocation_seq(p->o.store, &seq, &d)))
		return;
	if (seq > p->crl_seq && p->change_seen_ns == 0)
		p->change_seen_ns = kiln_mono_ns();
	if ((p->change_seen_ns != 0 &&
	     kiln_mono_ns() - p->change_seen_ns >= (uint64_t)p->o.coalesce_ms * 1000000u) ||
	    crls_stale(p)) {
		p->change_seen_ns = 0;
		if (!kiln_is_ok(issue_crls(p, &d)))
			kiln_log_error(p->o.log, "CRL issuance failed: %s", d.text);
	}
}

static void *pub_main(void *arg)
{
	kiln_publisher *p = arg;
	struct timespec ts;

	for (;;) {
		round_once(p);
		pthread_mutex_lock(&p->mu);
		(void)clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)p->o.poll_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
			;
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		pthread_mutex_unlock(&p->mu);
	}
}

kiln_result kiln_publisher_start(const struct kiln_publisher_opts *o, kiln_publisher **out,
				 kiln_diag *d)
{
	kiln_publisher *p;
	kiln_result r = kiln_ok();

	KILN_ENSURE(o != NULL && o->ca != NULL && o->store != NULL && o->crl_dir != NULL &&
			    out != NULL, KILN_ERR_ARG);
	*out = NULL;
	p = calloc(1, sizeof(*p));
	KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
	p->o = *o;
	if (p->o.poll_ms == 0)
		p->o.poll_ms = 200;
	if (p->o.coalesce_ms == 0)
		p->o.coalesce_ms = 500;
	kiln_strtrunc(p->crl_dir, o->crl_dir, sizeof(p->crl_dir));
	kiln_strtrunc(p->actor, o->actor != NULL ? o->actor : "kiln-serve", sizeof(p->actor));
	p->o.crl_dir = p->crl_dir;
	p->o.actor = p->actor;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	/* A retired issuing CA's certificates stay valid: its CRL goes on being published. */
	for (int e = KILN_ENV_PRODUCTION; e <= KILN_ENV_TEST; e++) {
		struct ca_entry *ca;

		for (size_t k = 0; (ca = ca_issuing_nth(o->ca, (kiln_env)e, k)) != NULL; k++) {
			if (ca->token == NULL)
				continue;
			if (p->n_crls == sizeof(p->crls) / sizeof(p->crls[0])) {
				r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "more issuing CAs than the "
						  "publisher holds CRLs for");
				break;
			}
			kiln_strtrunc(p->crls[p->n_crls++].name, ca->rec.name, sizeof(p->crls[0].name));
		}
	}
	if (kiln_is_ok(r) && mkdir(p->crl_dir, 0755) != 0 && errno != EEXIST)
		r = kiln_diag_set(d, KILN_ERR_IO, "cannot create %s", p->crl_dir);
	/* The first CRLs before the first request: GET /crl/ never finds nothing. */
	if (kiln_is_ok(r))
		r = issue_crls(p, d);
	if (kiln_is_ok(r) && pthread_create(&p->thread, NULL, pub_main, p) != 0)
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot start the publisher thread");
	if (!kiln_is_ok(r)) {
		kiln_publisher_free(p);
		return r;
	}
	p->running = true;
	*out = p;
	return kiln_ok();
}

kiln_result kiln_publisher_crl(kiln_publisher *p, const char *ca_name, kiln_buf *out)
{
	kiln_result r = kiln_fail(KILN_ERR_NOT_FOUND);

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n_crls; i++) {
		if (strcmp(p->crls[i].name, ca_name) == 0 && p->crls[i].der != NULL)
			r = kiln_buf_append(out, p->crls[i].der, p->crls[i].len);
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

void kiln_publisher_free(kiln_publisher *p)
{
	if (p == NULL)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; i < p->n_crls; i++)
		free(p->crls[i].der);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
