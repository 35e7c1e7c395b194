/*
 * An open token: the session pool, login and re-login, and recovery from
 * token faults.
 *
 * The pool is N read/write sessions behind a mutex and a condition
 * variable; a caller checks one out for one operation. PKCS#11 login state
 * is per token, not per session, so one C_Login serves the whole pool.
 *
 * Recovery: an operation that meets a fault (session closed, user logged
 * out, device removed) marks the pool broken and hands its session back.
 * The next checkout waits until no session of the broken generation is in
 * use (so no thread can ever act on a handle the module has since given to
 * someone else, and no session is closed while another thread is inside
 * the module), closes them all, finds the slot by label again, opens a
 * fresh pool and logs in. kiln_tok_run retries the operation once.
 */
#include "p11.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ PIN */

KILN_MUST_USE
static kiln_result pin_store_init(struct kiln_pin_store *ps, const char *pin)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = strlen(pin);
	size_t map_len = page > 0 ? (size_t)page : 4096;
	void *p;

	KILN_ENSURE(len < map_len, KILN_ERR_TOO_BIG);
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	KILN_ENSURE(p != MAP_FAILED, KILN_ERR_NOMEM);
	/* Best effort: RLIMIT_MEMLOCK may be tiny; an unlocked page still gets wiped. */
	ps->locked = mlock(p, map_len) == 0;
	(void)madvise(p, map_len, MADV_DONTDUMP);
	memcpy(p, pin, len + 1);
	ps->p = p;
	ps->len = len;
	ps->map_len = map_len;
	return kiln_ok();
}

static void pin_store_cleanup(struct kiln_pin_store *ps)
{
	if (ps->p == NULL)
		return;
	kiln_wipe(ps->p, ps->map_len);
	if (ps->locked)
		(void)munlock(ps->p, ps->map_len);
	(void)munmap(ps->p, ps->map_len);
	memset(ps, 0, sizeof(*ps));
}

/* ------------------------------------------------------------ pool */

static const char *pin_reason(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
		return "wrong PIN";
	case CKR_PIN_LOCKED:
		return "PIN locked after too many failures";
	case CKR_PIN_LEN_RANGE:
		return "PIN length out of range";
	case CKR_PIN_EXPIRED:
		return "PIN expired";
	case CKR_USER_PIN_NOT_INITIALIZED:
		return "user PIN not set";
	default:
		return "PIN refused";
	}
}

KILN_MUST_USE
static kiln_result login(kiln_token *t, CK_SESSION_HANDLE h, kiln_diag *d)
{
	CK_RV rv = t->fn->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)t->pin.p, (CK_ULONG)t->pin.len);

	/* Another kiln_token (or another library) of this process may be logged in. */
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return kiln_ok();
	if (kiln_p11_err_of(rv) == KILN_ERR_HSM_PIN)
		return kiln_diag_set(d, KILN_ERR_HSM_PIN, "HSM login to token %s failed: %s (%s)",
				     t->label, pin_reason(rv), kiln_p11_ckr_name(rv));
	return kiln_p11_fail(d, rv, "C_Login", "HSM token", t->label);
}

/* Closes only this pool's sessions: C_CloseAllSessions would end other users' too. */
static void close_sessions_locked(kiln_token *t)
{
	for (unsigned i = 0; i < t->n_open; i++)
		(void)t->fn->C_CloseSession(t->all[i]);
	t->n_open = 0;
	t->n_idle = 0;
}

/* Called with mu held and no session checked out. */
KILN_MUST_USE
static kiln_result open_pool_locked(kiln_token *t, bool first, kiln_diag *d)
{
	kiln_result r;
	kiln_diag find;
	CK_SLOT_ID slot;
	CK_RV rv;

	close_sessions_locked(t);
	kiln_keycache_clear(&t->cache);
	t->gen++;
	t->broken = true;

	kiln_diag_clear(&find);
	r = kiln_p11_find_slot(t->p11, t->label, &slot, &find);
	if (r.code == KILN_ERR_HSM_TOKEN_MISSING && !first)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_GONE,
				     "HSM token %s is no longer present", t->label);
	if (!kiln_is_ok(r))
		return kiln_p11_forward(d, r, &find);
	for (unsigned i = 0; i < t->n; i++) {
		rv = t->fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					  &t->all[i]);
		if (rv != CKR_OK) {
			r = kiln_p11_fail(d, rv, "C_OpenSession", "HSM token", t->label);
			goto out;
		}
		t->n_open++;
	}
	KILN_TRY(r, login(t, t->all[0], d));
	t->slot = slot;
	memcpy(t->idle, t->all, t->n * sizeof(t->all[0]));
	t->n_idle = t->n;
	t->broken = false;
out:
	if (!kiln_is_ok(r))
		close_sessions_locked(t);
	return r;
}

KILN_MUST_USE
static kiln_result checkout(kiln_token *t, struct kiln_tok_sess *s, kiln_diag *d)
{
	kiln_result r = kiln_ok();

	(void)pthread_mutex_lock(&t->mu);
	for (;;) {
		if (t->broken) {
			if (t->n_out > 0) {
				(void)pthread_cond_wait(&t->cv, &t->mu);
				continue;
			}
			r = open_pool_locked(t, false, d);
			if (!kiln_is_ok(r))
				break;
			kiln_log_info(&t->log, "HSM token %s: sessions reopened, logged in again",
				      t->label);
			continue;
		}
		if (t->n_idle > 0) {
			memset(s, 0, sizeof(*s));
			s->h = t->idle[--t->n_idle];
			s->slot = t->slot;
			s->gen = t->gen;
			t->n_out++;
			break;
		}
		(void)pthread_cond_wait(&t->cv, &t->mu);
	}
	(void)pthread_mutex_unlock(&t->mu);
	return r;
}

/*
 * Hands a session back. A fault, or a session left in an unknown state,
 * breaks the pool: it is reopened once no session is in use, because
 * closing a session while another thread is inside the module is not safe
 * with every module (SoftHSM2 2.6.1 can crash, SoftHSMv2 issue #688).
 */
static void release(kiln_token *t, const struct kiln_tok_sess *s, bool fault)
{
	bool idle = false;

	(void)pthread_mutex_lock(&t->mu);
	t->n_out--;
	if (s->gen == t->gen && !t->broken) {
		if (fault || s->discard)
			t->broken = true;
		else
			t->idle[t->n_idle++] = s->h;
		idle = !t->broken;
	}
	/*
	 * One idle session serves one waiter: waking them all had every waiter
	 * but one take the mutex and sleep again, per signature. A broken pool
	 * wakes everyone: the waiter that finds no session out reopens it.
	 */
	if (idle)
		(void)pthread_cond_signal(&t->cv);
	else
		(void)pthread_cond_broadcast(&t->cv);
	(void)pthread_mutex_unlock(&t->mu);
}

kiln_result kiln_tok_run(kiln_token *t, kiln_tok_op op, void *arg, kiln_diag *d)
{
	kiln_diag local;
	kiln_result r;

	for (int attempt = 0;; attempt++) {
		struct kiln_tok_sess s;
		bool fault;

		kiln_diag_clear(&local);
		r = checkout(t, &s, &local);
		if (!kiln_is_ok(r))
			break;
		r = op(t, &s, arg, &local);
		fault = r.code == KILN_ERR_HSM_TOKEN_GONE;
		release(t, &s, fault);
		if (fault && attempt == 0 && !s.committed) {
			kiln_log_warn(&t->log, "%s; reopening sessions and logging in again",
				      local.text);
			continue;
		}
		break;
	}
	return kiln_p11_forward(d, r, &local);
}

kiln_result kiln_tok_alive(kiln_token *t, const struct kiln_tok_sess *s, kiln_diag *d)
{
	CK_UTF8CHAR want[KILN_TOKEN_LABEL_LEN];
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	rv = t->fn->C_GetSessionInfo(s->h, &si);
	if (rv != CKR_OK)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_GONE,
				     "HSM token %s: session lost: C_GetSessionInfo returned %s (0x%lx)",
				     t->label, kiln_p11_ckr_name(rv), (unsigned long)rv);
	if (si.state != CKS_RW_USER_FUNCTIONS && si.state != CKS_RO_USER_FUNCTIONS)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_GONE,
				     "HSM token %s: the session is no longer logged in", t->label);
	rv = t->fn->C_GetTokenInfo(s->slot, &ti);
	if (rv != CKR_OK)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_GONE,
				     "HSM token %s no longer answers: C_GetTokenInfo returned %s (0x%lx)",
				     t->label, kiln_p11_ckr_name(rv), (unsigned long)rv);
	kiln_p11_label_pad(t->label, want);
	if (memcmp(ti.label, want, sizeof(want)) != 0)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_GONE,
				     "HSM token %s was replaced by another token in its slot", t->label);
	return kiln_ok();
}

kiln_result kiln_tok_fail(kiln_token *t, const struct kiln_tok_sess *s, CK_RV rv, const char *fn,
			  kiln_diag *d)
{
	if (!kiln_p11_is_fault(rv) && rv != CKR_HOST_MEMORY) {
		kiln_diag alive;
		kiln_result r;

		/* An odd error from a token that has vanished is a fault, not a refusal. */
		kiln_diag_clear(&alive);
		r = kiln_tok_alive(t, s, &alive);
		if (!kiln_is_ok(r))
			return kiln_p11_forward(d, r, &alive);
	}
	return kiln_p11_fail(d, rv, fn, "HSM token", t->label);
}

/* ------------------------------------------------------------ open, close */

KILN_MUST_USE
static kiln_result token_alloc(kiln_p11 *p11, const struct kiln_token_opts *opts, unsigned n,
			       kiln_token **out)
{
	kiln_token *t = calloc(1, sizeof(*t));
	int stage = 0;

	KILN_ENSURE(t != NULL, KILN_ERR_NOMEM);
	t->p11 = p11;
	t->fn = p11->fn;
	t->log = p11->log;
	t->n = n;
	memcpy(t->label, opts->label, strlen(opts->label) + 1);
	t->all = calloc(n, sizeof(*t->all));
	t->idle = calloc(n, sizeof(*t->idle));
	if (t->all == NULL || t->idle == NULL)
		goto fail;
	if (pthread_mutex_init(&t->mu, NULL) != 0)
		goto fail;
	stage = 1;
	if (pthread_cond_init(&t->cv, NULL) != 0)
		goto fail;
	stage = 2;
	if (pthread_mutex_init(&t->admin_mu, NULL) != 0)
		goto fail;
	stage = 3;
	if (!kiln_is_ok(kiln_keycache_init(&t->cache)))
		goto fail;
	stage = 4;
	if (!kiln_is_ok(pin_store_init(&t->pin, opts->pin)))
		goto fail;
	*out = t;
	return kiln_ok();
fail:
	if (stage >= 4)
		kiln_keycache_cleanup(&t->cache);
	if (stage >= 3)
		(void)pthread_mutex_destroy(&t->admin_mu);
	if (stage >= 2)
		(void)pthread_cond_destroy(&t->cv);
	if (stage >= 1)
		(void)pthread_mutex_destroy(&t->mu);
	free(t->all);
	free(t->idle);
	free(t);
	return kiln_fail(KILN_ERR_NOMEM);
}

kiln_result kiln_token_open(kiln_p11 *p11, const struct kiln_token_opts *opts, kiln_token **out,
			    kiln_diag *d)
{
	kiln_token *t = NULL;
	kiln_result r;
	unsigned n;

	if (p11 == NULL || opts == NULL || out == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "opening an HSM token needs a module and options");
	KILN_GUARD(kiln_p11_check_label(opts->label, d));
	if (opts->pin == NULL || opts->pin[0] == '\0' ||
	    strnlen(opts->pin, KILN_P11_PIN_MAX + 1) > KILN_P11_PIN_MAX)
		return kiln_diag_set(d, KILN_ERR_HSM_PIN,
				     "the PIN for HSM token %s must be 1 to %d bytes",
				     opts->label, KILN_P11_PIN_MAX);
	n = opts->sessions == 0 ? KILN_TOKEN_DEFAULT_SESSIONS : opts->sessions;
	if (n > KILN_TOKEN_MAX_SESSIONS)
		return kiln_diag_set(d, KILN_ERR_ARG, "HSM token %s: at most %d sessions, not %u",
				     opts->label, KILN_TOKEN_MAX_SESSIONS, n);
	KILN_GUARD(token_alloc(p11, opts, n, &t));
	(void)pthread_mutex_lock(&t->mu);
	r = open_pool_locked(t, true, d);
	(void)pthread_mutex_unlock(&t->mu);
	if (!kiln_is_ok(r)) {
		kiln_token_close(t);
		return r;
	}
	kiln_log_info(&t->log, "HSM token %s open: slot %lu, %u sessions", t->label,
		      (unsigned long)t->slot, n);
	*out = t;
	return kiln_ok();
}

void kiln_token_close(kiln_token *t)
{
	if (t == NULL)
		return;
	/* No operation may be running: the caller owns the token's lifetime. */
	(void)pthread_mutex_lock(&t->mu);
	close_sessions_locked(t);
	(void)pthread_mutex_unlock(&t->mu);
	kiln_keycache_cleanup(&t->cache);
	(void)pthread_mutex_destroy(&t->admin_mu);
	(void)pthread_cond_destroy(&t->cv);
	(void)pthread_mutex_destroy(&t->mu);
	pin_store_cleanup(&t->pin);
	free(t->all);
	free(t->idle);
	free(t);
}

const char *kiln_token_label(const kiln_token *t)
{
	return t != NULL ? t->label : "";
}
