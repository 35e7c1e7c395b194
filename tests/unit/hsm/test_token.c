/*
 * Opening tokens, the PIN, the session pool, and recovery from token
 * faults (SoftHSM2): re-login after the sessions were closed or the user
 * logged out, and a clear error when the token disappears.
 */
#include "support/softhsm.h"

#include <stdlib.h>
#include <string.h>

#include "hsm/p11.h"

struct fx {
	struct kt_hsm h;
	struct kt_logcap cap;
	kiln_key_ref key;
	EVP_PKEY *pub;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	kiln_diag d;

	assert_non_null(fx);
	*state = fx;
	kt_logcap_init(&fx->cap);
	kt_hsm_setup_log(&fx->h, "token", 2, &fx->cap.log);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_P256, "signing-key", &fx->key, &fx->pub,
				   &d), &d);
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	EVP_PKEY_free(fx->pub);
	kt_hsm_teardown(&fx->h);
	kt_logcap_cleanup(&fx->cap);
	free(fx);
	return 0;
}

static kiln_result sign(kiln_token *t, const kiln_key_ref *key, const char *msg, kiln_buf *sig,
			kiln_diag *d)
{
	kiln_signer s = kiln_token_signer(t);
	struct kiln_sign_req req = { key, kiln_slice_str(msg), "test" };

	return kiln_signer_sign(&s, &req, sig, d);
}

/* Signs and checks the signature with OpenSSL. */
static void sign_ok(struct fx *fx, kiln_token *t)
{
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(sign(t, &fx->key, "to be signed", &sig, &d), &d);
	assert_true(kt_sig_valid(fx->pub, KILN_ALG_P256, kiln_slice_str("to be signed"),
				 kiln_buf_view(&sig)));
	kiln_buf_cleanup(&sig);
}

static void sign_fails(struct fx *fx, kiln_err want, const char *text)
{
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_ERR(sign(fx->h.token, &fx->key, "to be signed", &sig, &d), want);
	assert_string_equal(d.text, text);
	assert_int_equal(sig.len, 0);
	kiln_buf_cleanup(&sig);
}

/* ------------------------------------------------------------ open */

static void test_open(void **state)
{
	struct fx *fx = *state;
	kiln_token *t = fx->h.token;

	assert_string_equal(kiln_token_label(t), KT_TOKEN_LABEL);
	assert_string_equal(kiln_token_label(NULL), "");
	assert_int_equal(t->n, 2);
	assert_int_equal(t->n_open, 2);
	assert_true(fx->cap.text.len > 0);
	assert_true(kt_logcap_has(&fx->cap, "HSM token kiln-test open: slot "));
	/* The PIN is kept for re-login outside the token struct, in its own page. */
	assert_non_null(t->pin.p);
	assert_true((uintptr_t)t->pin.p % 4096 == 0);
	assert_int_equal(t->pin.len, strlen(KT_USER_PIN));
	assert_string_equal(t->pin.p, KT_USER_PIN);
	if (!t->pin.locked)
		print_message("note: mlock of the PIN page failed here (RLIMIT_MEMLOCK)\n");
	/* Nothing logged ever holds it. */
	assert_false(kt_logcap_has(&fx->cap, KT_USER_PIN));
	kiln_token_close(NULL);
}

static void test_wrong_pin(void **state)
{
	struct fx *fx = *state;
	struct kiln_token_opts o = { KT_TOKEN_LABEL, "not-the-pin-4711", 1 };
	kiln_token *t = NULL;
	kiln_diag d;

	/*
	 * Close the fixture's pool first: while any session of this process is
	 * logged in, C_Login answers CKR_USER_ALREADY_LOGGED_IN without looking
	 * at the PIN, and PKCS#11 has no other harmless way to check one.
	 */
	kiln_token_close(fx->h.token);
	fx->h.token = NULL;
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, &d), KILN_ERR_HSM_PIN);
	assert_null(t);
	assert_string_equal(d.text, "HSM login to token kiln-test failed: wrong PIN (CKR_PIN_INCORRECT)");
	assert_false(kt_logcap_has(&fx->cap, "not-the-pin-4711"));
	/* The good PIN still works after a failure. */
	o.pin = KT_USER_PIN;
	KT_OKD(kiln_token_open(fx->h.p11, &o, &t, &d), &d);
	fx->h.token = t;
	sign_ok(fx, t);
}

static void test_pin_refusals(void **state)
{
	struct fx *fx = *state;
	CK_FUNCTION_LIST_PTR fn = fx->h.p11->fn;
	struct kiln_token_opts o = { "no-user-pin", KT_USER_PIN, 1 };
	CK_UTF8CHAR label[KILN_TOKEN_LABEL_LEN];
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_TOKEN_INFO ti;
	kiln_token *t = NULL;
	bool done = false;
	kiln_diag d;

	kiln_token_close(fx->h.token);
	fx->h.token = NULL;
	/* A too-short PIN: SoftHSM2 says CKR_PIN_INCORRECT, not CKR_PIN_LEN_RANGE. */
	o.label = KT_TOKEN_LABEL;
	o.pin = "123";
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, &d), KILN_ERR_HSM_PIN);
	assert_string_equal(d.text,
			    "HSM login to token kiln-test failed: wrong PIN (CKR_PIN_INCORRECT)");

	/* A token initialised by another tool that never set the user PIN. */
	kiln_p11_label_pad("no-user-pin", label);
	assert_int_equal(fn->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n && !done; i++) {
		if (fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK || (ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		assert_int_equal(fn->C_InitToken(slots[i], (CK_UTF8CHAR_PTR)KT_SO_PIN,
						 strlen(KT_SO_PIN), label), CKR_OK);
		done = true;
	}
	assert_true(done);
	o.label = "no-user-pin";
	o.pin = KT_USER_PIN;
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, &d), KILN_ERR_HSM_PIN);
	assert_string_equal(d.text, "HSM login to token no-user-pin failed: user PIN not set "
				    "(CKR_USER_PIN_NOT_INITIALIZED)");
	assert_null(t);
}

static void test_unknown_label(void **state)
{
	struct fx *fx = *state;
	struct kiln_token_opts o = { "kiln-prod", KT_USER_PIN, 1 };
	kiln_token *t = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, &d), KILN_ERR_HSM_TOKEN_MISSING);
	assert_null(t);
	assert_string_equal(d.text,
			    "no HSM token labelled kiln-prod in PKCS#11 module " KILN_SOFTHSM2_MODULE);
}

static void test_bad_opts(void **state)
{
	struct fx *fx = *state;
	struct kiln_token_opts o = { KT_TOKEN_LABEL, KT_USER_PIN, KILN_TOKEN_MAX_SESSIONS + 1 };
	kiln_token *t = NULL;
	char long_pin[300];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "HSM token kiln-test: at most 64 sessions, not 65");
	KT_ERR(kiln_token_open(NULL, &o, &t, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_open(fx->h.p11, NULL, &t, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_token_open(fx->h.p11, &o, NULL, NULL), KILN_ERR_ARG);
	o.sessions = 1;
	o.pin = "";
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, NULL), KILN_ERR_HSM_PIN);
	o.pin = NULL;
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, NULL), KILN_ERR_HSM_PIN);
	memset(long_pin, '1', sizeof(long_pin) - 1);
	long_pin[sizeof(long_pin) - 1] = '\0';
	o.pin = long_pin;
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, NULL), KILN_ERR_HSM_PIN);
	o.pin = KT_USER_PIN;
	o.label = "a-label-that-is-longer-than-32-bytes";
	KT_ERR(kiln_token_open(fx->h.p11, &o, &t, NULL), KILN_ERR_ARG);
	assert_null(t);
}

static void test_two_handles(void **state)
{
	struct fx *fx = *state;
	struct kiln_token_opts o = { KT_TOKEN_LABEL, KT_USER_PIN, 1 };
	kiln_token *second = NULL;
	kiln_diag d;

	/* The module says CKR_USER_ALREADY_LOGGED_IN: fine. */
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_open(fx->h.p11, &o, &second, &d), &d);
	sign_ok(fx, second);
	sign_ok(fx, fx->h.token);
	/* Closing one pool leaves the other's sessions and login alone. */
	kiln_token_close(fx->h.token);
	fx->h.token = NULL;
	sign_ok(fx, second);
	fx->h.token = second;
}

/* ------------------------------------------------------------ recovery */

static void test_relogin_after_close_all(void **state)
{
	struct fx *fx = *state;
	kiln_token *t = fx->h.token;
	uint64_t gen;

	sign_ok(fx, t);
	gen = t->gen;
	/* Another user of the module (same process) closes every session of the slot. */
	assert_int_equal(fx->h.p11->fn->C_CloseAllSessions(t->slot), CKR_OK);
	sign_ok(fx, t);
	assert_int_equal(t->gen, gen + 1);
	assert_true(kt_logcap_has(&fx->cap, "warn C_SignInit failed for HSM token kiln-test: "
					    "CKR_SESSION_HANDLE_INVALID (0xb3); reopening sessions"));
	assert_true(kt_logcap_has(&fx->cap, "sessions reopened, logged in again"));
	/* And it stays healthy: no further reopen. */
	sign_ok(fx, t);
	assert_int_equal(t->gen, gen + 1);
}

static void test_relogin_after_logout(void **state)
{
	struct fx *fx = *state;
	kiln_token *t = fx->h.token;
	CK_SESSION_HANDLE own;
	uint64_t gen;

	sign_ok(fx, t);
	gen = t->gen;
	/* Login state is per application: a logout on any session logs the pool out. */
	assert_int_equal(fx->h.p11->fn->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL,
						      &own), CKR_OK);
	assert_int_equal(fx->h.p11->fn->C_Logout(own), CKR_OK);
	assert_int_equal(fx->h.p11->fn->C_CloseSession(own), CKR_OK);
	/*
	 * SoftHSM2 then drops private object handles (C_SignInit says
	 * CKR_OBJECT_HANDLE_INVALID) and hides private keys from searches: kiln
	 * must see a lost login there, not a missing key.
	 */
	sign_ok(fx, t);
	assert_int_equal(t->gen, gen + 1);
	assert_true(kt_logcap_has(&fx->cap, "the session is no longer logged in"));
}

static void rm_tokens(struct fx *fx)
{
	assert_int_equal(kt_system("rm -rf '%s'/tokens/*", fx->h.dir), 0);
}

static void test_token_gone(void **state)
{
	struct fx *fx = *state;
	EVP_PKEY *pub = NULL;
	kiln_diag d;

	sign_ok(fx, fx->h.token);
	/*
	 * The token's files vanish under a running module. SoftHSM2 keeps the
	 * slot and the sessions, but C_GetTokenInfo answers CKR_GENERAL_ERROR
	 * and the key's handle CKR_OBJECT_HANDLE_INVALID.
	 */
	rm_tokens(fx);
	sign_fails(fx, KILN_ERR_HSM_TOKEN_GONE, "HSM token kiln-test is no longer present");
	/* Every later call says the same, it does not hang or crash. */
	sign_fails(fx, KILN_ERR_HSM_TOKEN_GONE, "HSM token kiln-test is no longer present");
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_public_key(fx->h.token, &fx->key, &pub, &d), KILN_ERR_HSM_TOKEN_GONE);
	assert_string_equal(d.text, "HSM token kiln-test is no longer present");
	assert_null(pub);
}

static void test_token_gone_sessions_closed(void **state)
{
	struct fx *fx = *state;

	sign_ok(fx, fx->h.token);
	/* Removal as a USB token shows it: files gone and every session closed. */
	rm_tokens(fx);
	assert_int_equal(fx->h.p11->fn->C_CloseAllSessions(fx->h.token->slot), CKR_OK);
	sign_fails(fx, KILN_ERR_HSM_TOKEN_GONE, "HSM token kiln-test is no longer present");
}

static void test_gone_is_not_missing(void **state)
{
	struct fx *fx = *state;
	kiln_key_ref other = fx->key;
	kiln_diag d;

	/* A key never looked up (not cached) on a vanished token. */
	memcpy(other.label, "other-key", sizeof("other-key"));
	other.id_len = 0;
	rm_tokens(fx);
	kiln_diag_clear(&d);
	KT_ERR(kiln_token_find(fx->h.token, &other, &d), KILN_ERR_HSM_TOKEN_GONE);
	assert_string_equal(d.text, "HSM token kiln-test is no longer present");
}

/* ------------------------------------------------------------ the runner */

struct script {
	unsigned calls;
	kiln_err results[2]; /* per call; the last repeats */
	bool commit;
	bool discard;
};

static kiln_result scripted(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct script *sc = arg;
	kiln_err e = sc->results[sc->calls < 2 ? sc->calls : 1];

	sc->calls++;
	s->committed = sc->commit;
	s->discard = sc->discard;
	KILN_GUARD(kiln_tok_alive(t, s, d));
	if (e == KILN_OK)
		return kiln_ok();
	return kiln_diag_set(d, e, "scripted failure %u", sc->calls);
}

static void test_run_retries_once(void **state)
{
	struct fx *fx = *state;
	kiln_token *t = fx->h.token;
	struct script always = { 0, { KILN_ERR_HSM_TOKEN_GONE, KILN_ERR_HSM_TOKEN_GONE }, false,
				 false };
	struct script once = { 0, { KILN_ERR_HSM_TOKEN_GONE, KILN_OK }, false, false };
	struct script committed = { 0, { KILN_ERR_HSM_TOKEN_GONE, KILN_OK }, true, false };
	struct script refused = { 0, { KILN_ERR_HSM, KILN_OK }, false, false };
	uint64_t gen = t->gen;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_tok_run(t, scripted, &always, &d), KILN_ERR_HSM_TOKEN_GONE);
	assert_int_equal(always.calls, 2);
	/* The caller sees the last attempt's message, not the first. */
	assert_string_equal(d.text, "scripted failure 2");

	kiln_diag_clear(&d);
	KT_OKD(kiln_tok_run(t, scripted, &once, &d), &d);
	assert_int_equal(once.calls, 2);
	assert_int_equal(d.code, KILN_OK);

	/* An operation that already changed the token is never repeated. */
	KT_ERR(kiln_tok_run(t, scripted, &committed, &d), KILN_ERR_HSM_TOKEN_GONE);
	assert_int_equal(committed.calls, 1);

	/* Refusals are not faults: no retry, no reopen. */
	gen = t->gen;
	KT_ERR(kiln_tok_run(t, scripted, &refused, NULL), KILN_ERR_HSM);
	assert_int_equal(refused.calls, 1);
	sign_ok(fx, t);
	assert_true(t->gen == gen + 1); /* the committed fault above broke the pool once more */
}

static void test_discarded_session(void **state)
{
	struct fx *fx = *state;
	kiln_token *t = fx->h.token;
	struct script sc = { 0, { KILN_OK, KILN_OK }, false, true };
	uint64_t gen = t->gen;

	/* A session in an unknown state is never reused: the pool is renewed. */
	KT_OK(kiln_tok_run(t, scripted, &sc, NULL));
	assert_int_equal(sc.calls, 1);
	assert_true(t->broken);
	sign_ok(fx, t);
	assert_int_equal(t->gen, gen + 1);
	assert_false(t->broken);
	assert_int_equal(t->n_open, 2);
	assert_int_equal(t->n_idle, 2);
	sign_ok(fx, t);
}

/* ------------------------------------------------------------ pool */

struct worker {
	struct fx *fx;
	kiln_token *t;
	unsigned ok, bad;
};

static void *sign_loop(void *arg)
{
	struct worker *w = arg;
	kiln_buf sig;

	kiln_buf_init(&sig, 4096);
	for (unsigned i = 0; i < 40; i++) {
		kiln_buf_reset(&sig);
		if (kiln_is_ok(sign(w->t, &w->fx->key, "pool", &sig, NULL)) &&
		    kt_sig_valid(w->fx->pub, KILN_ALG_P256, kiln_slice_str("pool"),
				 kiln_buf_view(&sig)))
			w->ok++;
		else
			w->bad++;
	}
	kiln_buf_cleanup(&sig);
	return NULL;
}

/*
 * More threads than sessions: checkout must serialise them, and each session
 * handed back must wake a waiter (one, not all), or a thread sleeps forever.
 */
static void pool_run(struct fx *fx, unsigned sessions, unsigned threads)
{
	struct kiln_token_opts o = { KT_TOKEN_LABEL, KT_USER_PIN, sessions };
	struct worker w[8];
	pthread_t th[8];
	kiln_token *t = NULL;
	kiln_diag d;

	assert_true(threads <= 8);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_open(fx->h.p11, &o, &t, &d), &d);
	for (unsigned i = 0; i < threads; i++) {
		w[i] = (struct worker){ fx, t, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, sign_loop, &w[i]), 0);
	}
	for (unsigned i = 0; i < threads; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
		assert_int_equal(w[i].ok, 40);
	}
	assert_int_equal(t->n_idle, sessions);
	assert_int_equal(t->n_out, 0);
	kiln_token_close(t);
}

static void test_pool_of_one(void **state)
{
	pool_run(*state, 1, 3);
}

static void test_pool_of_two_eight_threads(void **state)
{
	pool_run(*state, 2, 8);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open),
		T(test_wrong_pin),
		T(test_pin_refusals),
		T(test_unknown_label),
		T(test_bad_opts),
		T(test_two_handles),
		T(test_relogin_after_close_all),
		T(test_relogin_after_logout),
		T(test_token_gone),
		T(test_token_gone_sessions_closed),
		T(test_gone_is_not_missing),
		T(test_run_retries_once),
		T(test_discarded_session),
		T(test_pool_of_one),
		T(test_pool_of_two_eight_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
