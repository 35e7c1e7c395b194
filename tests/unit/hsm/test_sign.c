/*
 * Signing in the token (SoftHSM2): every algorithm, checked by OpenSSL in
 * process and by the openssl command; missing keys; what gets logged; and
 * many threads signing at once, with and without a token fault midway.
 */
#include "support/softhsm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include "hsm/p11.h"

struct fx {
	struct kt_hsm h;
	struct kt_logcap cap;
};

static int setup_n(void **state, unsigned sessions)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	*state = fx;
	kt_logcap_init(&fx->cap);
	kt_hsm_setup_log(&fx->h, "sign", sessions, &fx->cap.log);
	return 0;
}

static int setup(void **state)
{
	return setup_n(state, 0);
}

static int setup_two(void **state)
{
	return setup_n(state, 2);
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	kt_hsm_teardown(&fx->h);
	kt_logcap_cleanup(&fx->cap);
	free(fx);
	return 0;
}

static kiln_result sign(kiln_token *t, const kiln_key_ref *key, kiln_slice tbs, const char *why,
			kiln_buf *sig, kiln_diag *d)
{
	kiln_signer s = kiln_token_signer(t);
	struct kiln_sign_req req = { key, tbs, why };

	return kiln_signer_sign(&s, &req, sig, d);
}

/* The openssl command, a verifier independent of this process. */
static void openssl_verifies(struct fx *fx, EVP_PKEY *pub, kiln_alg alg, kiln_slice data,
			     kiln_slice sig)
{
	char *pem = kt_path(fx->h.dir, "pub.pem");
	char *dat = kt_path(fx->h.dir, "data.bin");
	char *sgf = kt_path(fx->h.dir, "sig.bin");
	FILE *f = fopen(pem, "w");
	int rc;

	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, pub), 1);
	assert_int_equal(fclose(f), 0);
	kt_write_file(dat, data.ptr, data.len);
	kt_write_file(sgf, sig.ptr, sig.len);
	if (alg == KILN_ALG_ED25519)
		rc = kt_system("openssl pkeyutl -verify -pubin -inkey '%s' -rawin -in '%s' "
			       "-sigfile '%s' >/dev/null 2>&1", pem, dat, sgf);
	else
		rc = kt_system("openssl dgst -%s -verify '%s' -signature '%s' '%s' >/dev/null 2>&1",
			       alg == KILN_ALG_P384 ? "sha384" : "sha256", pem, sgf, dat);
	assert_int_equal(rc, 0);
	free(pem);
	free(dat);
	free(sgf);
}

static void check_alg(struct fx *fx, kiln_alg alg, const char *label)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	kiln_token *t = fx->h.token;
	kiln_key_ref key;
	EVP_PKEY *pub = NULL;
	uint8_t tbs[1000];
	kiln_buf s1, s2;
	kiln_diag d;

	KT_OK(kiln_random(tbs, sizeof(tbs)));
	kiln_buf_init(&s1, 4096);
	kiln_buf_init(&s2, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(t, alg, label, &key, &pub, &d), &d);
	KT_OKD(sign(t, &key, kiln_slice_of(tbs, sizeof(tbs)), "certificate", &s1, &d), &d);
	assert_true(s1.len <= ai->max_sig_len);
	assert_true(kt_sig_valid(pub, alg, kiln_slice_of(tbs, sizeof(tbs)), kiln_buf_view(&s1)));
	openssl_verifies(fx, pub, alg, kiln_slice_of(tbs, sizeof(tbs)), kiln_buf_view(&s1));

	/* The shape X.509 wants. */
	if (ai->ec_coord_len > 0) {
		const unsigned char *p = s1.ptr;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)s1.len);

		assert_non_null(es);
		assert_ptr_equal(p, s1.ptr + s1.len);
		ECDSA_SIG_free(es);
	} else {
		assert_int_equal(s1.len, alg == KILN_ALG_ED25519 ? 64 : 384);
	}

	/* Checks that can fail: other data, a flipped bit. */
	tbs[0] ^= 1;
	assert_false(kt_sig_valid(pub, alg, kiln_slice_of(tbs, sizeof(tbs)), kiln_buf_view(&s1)));
	tbs[0] ^= 1;
	s1.ptr[s1.len / 2] ^= 0x10;
	assert_false(kt_sig_valid(pub, alg, kiln_slice_of(tbs, sizeof(tbs)), kiln_buf_view(&s1)));
	s1.ptr[s1.len / 2] ^= 0x10;

	/* ECDSA is randomised; Ed25519 and PKCS#1 v1.5 are deterministic. */
	KT_OKD(sign(t, &key, kiln_slice_of(tbs, sizeof(tbs)), "certificate", &s2, &d), &d);
	assert_true(kt_sig_valid(pub, alg, kiln_slice_of(tbs, sizeof(tbs)), kiln_buf_view(&s2)));
	assert_int_equal(kiln_slice_eq(kiln_buf_view(&s1), kiln_buf_view(&s2)),
			 ai->ec_coord_len == 0);
	EVP_PKEY_free(pub);
	kiln_buf_cleanup(&s1);
	kiln_buf_cleanup(&s2);
}

static void test_p256(void **state)
{
	check_alg(*state, KILN_ALG_P256, "ca-p256");
}

static void test_p384(void **state)
{
	check_alg(*state, KILN_ALG_P384, "ca-p384");
}

static void test_ed25519(void **state)
{
	check_alg(*state, KILN_ALG_ED25519, "ca-ed25519");
}

static void test_rsa3072(void **state)
{
	check_alg(*state, KILN_ALG_RSA3072, "ca-rsa3072");
}

static void test_large_tbs(void **state)
{
	struct fx *fx = *state;
	static const kiln_alg algs[] = { KILN_ALG_P256, KILN_ALG_ED25519 };
	size_t n = (size_t)1 << 20;
	uint8_t *big = malloc(n);
	kiln_buf sig;
	kiln_diag d;

	assert_non_null(big);
	KT_OK(kiln_random(big, n));
	kiln_buf_init(&sig, 4096);
	for (size_t i = 0; i < 2; i++) {
		kiln_key_ref key;
		EVP_PKEY *pub = NULL;

		kiln_diag_clear(&d);
		KT_OKD(kiln_token_generate(fx->h.token, algs[i], i == 0 ? "big-ec" : "big-ed", &key,
					   &pub, &d), &d);
		kiln_buf_reset(&sig);
		KT_OKD(sign(fx->h.token, &key, kiln_slice_of(big, n), "crl", &sig, &d), &d);
		assert_true(kt_sig_valid(pub, algs[i], kiln_slice_of(big, n), kiln_buf_view(&sig)));
		EVP_PKEY_free(pub);
	}
	kiln_buf_cleanup(&sig);
	free(big);
}

static void test_destroy_then_sign(void **state)
{
	struct fx *fx = *state;
	kiln_key_ref key;
	char want[200], hex[33];
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_P256, "old-ca", &key, NULL, &d), &d);
	KT_OKD(sign(fx->h.token, &key, kiln_slice_str("x"), "certificate", &sig, &d), &d);
	KT_OKD(kiln_token_destroy(fx->h.token, &key, &d), &d);
	kiln_buf_reset(&sig);
	KT_ERR(sign(fx->h.token, &key, kiln_slice_str("x"), "certificate", &sig, &d),
	       KILN_ERR_HSM_KEY_MISSING);
	kiln_hex_encode(key.id, key.id_len, hex);
	(void)snprintf(want, sizeof(want),
		       "no private key labelled old-ca with CKA_ID %s in HSM token kiln-test", hex);
	assert_string_equal(d.text, want);
	assert_int_equal(sig.len, 0);
	kiln_buf_cleanup(&sig);
}

static void test_destroyed_behind_our_back(void **state)
{
	struct fx *fx = *state;
	CK_FUNCTION_LIST_PTR fn = fx->h.p11->fn;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, "stale", 5 } };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE o;
	CK_ULONG n = 0;
	kiln_key_ref key;
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_ED25519, "stale", &key, NULL, &d), &d);
	KT_OKD(sign(fx->h.token, &key, kiln_slice_str("x"), "ocsp", &sig, &d), &d);
	/* Someone else deletes the key; kiln still holds its handle in the cache. */
	assert_int_equal(fn->C_OpenSession(fx->h.token->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
					   NULL, NULL, &s), CKR_OK);
	assert_int_equal(fn->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
	assert_int_equal(fn->C_FindObjects(s, &o, 1, &n), CKR_OK);
	assert_int_equal(fn->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(fn->C_DestroyObject(s, o), CKR_OK);
	assert_int_equal(fn->C_CloseSession(s), CKR_OK);
	kiln_buf_reset(&sig);
	KT_ERR(sign(fx->h.token, &key, kiln_slice_str("x"), "ocsp", &sig, &d),
	       KILN_ERR_HSM_KEY_MISSING);
	assert_non_null(strstr(d.text, "no private key labelled stale with CKA_ID"));
	kiln_buf_cleanup(&sig);
}

static void test_wrong_alg(void **state)
{
	struct fx *fx = *state;
	kiln_key_ref key;
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_P384, "p384-key", &key, NULL, &d), &d);
	key.alg = KILN_ALG_P256;
	KT_ERR(sign(fx->h.token, &key, kiln_slice_str("x"), "certificate", &sig, &d),
	       KILN_ERR_HSM_KEY_MISSING);
	assert_string_equal(d.text, "key p384-key in HSM token kiln-test is not a p256 key");
	kiln_buf_cleanup(&sig);
}

static void test_logging(void **state)
{
	struct fx *fx = *state;
	kiln_key_ref key;
	kiln_buf sig;
	kiln_diag d;
	char hex[9];

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_P256, "audit-key", &key, NULL, &d), &d);
	KT_OKD(sign(fx->h.token, &key, kiln_slice_str("TBS-MARKER-5521"), "checkpoint", &sig, &d),
	       &d);
	assert_true(kt_logcap_has(&fx->cap,
				  "debug HSM token kiln-test: signing checkpoint with key audit-key\n"));
	assert_true(kt_logcap_has(&fx->cap, "info HSM token kiln-test: generated p256 key audit-key"));
	/* Never the data, the signature or the PIN. */
	assert_false(kt_logcap_has(&fx->cap, "TBS-MARKER-5521"));
	kiln_hex_encode((const uint8_t *)"TBS-", 4, hex);
	assert_false(kt_logcap_has(&fx->cap, hex));
	kiln_hex_encode(sig.ptr + 8, 4, hex);
	assert_false(kt_logcap_has(&fx->cap, hex));
	assert_false(kt_logcap_has(&fx->cap, KT_USER_PIN));
	kiln_buf_cleanup(&sig);
}

static void test_bad_requests(void **state)
{
	struct fx *fx = *state;
	kiln_signer s = kiln_token_signer(fx->h.token);
	kiln_key_ref key, bad;
	struct kiln_sign_req req;
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 4096);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(fx->h.token, KILN_ALG_ED25519, "k", &key, NULL, &d), &d);
	bad = key;
	bad.alg = KILN_ALG_NONE;
	req = (struct kiln_sign_req){ &bad, kiln_slice_str("x"), "certificate" };
	KT_ERR(kiln_signer_sign(&s, &req, &sig, NULL), KILN_ERR_ARG);
	bad = key;
	bad.label[0] = '\0';
	req.key = &bad;
	KT_ERR(kiln_signer_sign(&s, &req, &sig, NULL), KILN_ERR_ARG);
	/* Straight to the backend, past the interface's checks. */
	req = (struct kiln_sign_req){ &key, kiln_slice_of(NULL, 0), "certificate" };
	KT_ERR(s.ops->sign(s.impl, &req, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(s.ops->sign(s.impl, NULL, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(s.ops->sign(NULL, &req, &sig, NULL), KILN_ERR_ARG);
	assert_int_equal(sig.len, 0);
	kiln_buf_cleanup(&sig);
}

/* ------------------------------------------------------------ threads */

#define THREADS 4
#define PER_THREAD 200

struct shared {
	kiln_token *t;
	kiln_key_ref keys[2];
	EVP_PKEY *pubs[2];
	atomic_uint progress;
};

struct worker {
	struct shared *sh;
	unsigned id;
	unsigned ok, failed, invalid;
	kiln_err first_err;
};

static void *sign_loop(void *arg)
{
	struct worker *w = arg;
	char msg[64];
	kiln_buf sig;

	kiln_buf_init(&sig, 4096);
	for (unsigned i = 0; i < PER_THREAD; i++) {
		unsigned k = (w->id + i) % 2;
		int n = snprintf(msg, sizeof(msg), "thread %u message %u", w->id, i);
		kiln_slice m = kiln_slice_of(msg, (size_t)n);
		kiln_result r;

		kiln_buf_reset(&sig);
		r = sign(w->sh->t, &w->sh->keys[k], m, "certificate", &sig, NULL);
		if (!kiln_is_ok(r)) {
			if (w->failed++ == 0)
				w->first_err = r.code;
		} else if (!kt_sig_valid(w->sh->pubs[k], w->sh->keys[k].alg, m,
					 kiln_buf_view(&sig))) {
			w->invalid++;
		} else {
			w->ok++;
		}
		atomic_fetch_add(&w->sh->progress, 1);
	}
	kiln_buf_cleanup(&sig);
	return NULL;
}

static void run_threads(struct fx *fx, bool inject_fault)
{
	struct shared sh;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	CK_FUNCTION_LIST_PTR fn = fx->h.p11->fn;
	CK_SESSION_HANDLE own = CK_INVALID_HANDLE;
	uint64_t gen = fx->h.token->gen;
	kiln_diag d;

	memset(&sh, 0, sizeof(sh));
	sh.t = fx->h.token;
	atomic_init(&sh.progress, 0);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_generate(sh.t, KILN_ALG_P256, "mt-p256", &sh.keys[0], &sh.pubs[0], &d),
	       &d);
	KT_OKD(kiln_token_generate(sh.t, KILN_ALG_ED25519, "mt-ed25519", &sh.keys[1], &sh.pubs[1],
				   &d), &d);
	if (inject_fault)
		assert_int_equal(fn->C_OpenSession(fx->h.token->slot, CKF_SERIAL_SESSION, NULL,
						   NULL, &own), CKR_OK);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ &sh, i, 0, 0, 0, KILN_OK };
		assert_int_equal(pthread_create(&th[i], NULL, sign_loop, &w[i]), 0);
	}
	if (inject_fault) {
		struct timespec ts = { 0, 1000000 };

		/*
		 * A quarter of the way in, another user of the module logs the
		 * application out. (Not C_CloseAllSessions: SoftHSM2 2.6.1 frees a
		 * session under a thread that is inside C_Sign on it and crashes,
		 * SoftHSMv2 issue #688; test_token covers that fault single-threaded.)
		 */
		while (atomic_load(&sh.progress) < THREADS * PER_THREAD / 4)
			(void)nanosleep(&ts, NULL);
		assert_int_equal(fn->C_Logout(own), CKR_OK);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (w[i].failed > 0)
			print_message("thread %u: %u failures, first %s\n", i, w[i].failed,
				      kiln_err_info(w[i].first_err)->slug);
		assert_int_equal(w[i].failed, 0);
		assert_int_equal(w[i].invalid, 0);
		assert_int_equal(w[i].ok, PER_THREAD);
	}
	if (inject_fault)
		assert_int_equal(fn->C_CloseSession(own), CKR_OK);
	/* One fault, one reopen, however many threads saw it. */
	assert_int_equal(fx->h.token->gen, gen + (inject_fault ? 1 : 0));
	assert_int_equal(fx->h.token->n_out, 0);
	assert_int_equal(fx->h.token->n_idle, fx->h.token->n);
	EVP_PKEY_free(sh.pubs[0]);
	EVP_PKEY_free(sh.pubs[1]);
}

static void test_concurrent(void **state)
{
	run_threads(*state, false);
}

static void test_concurrent_with_fault(void **state)
{
	struct fx *fx = *state;

	run_threads(fx, true);
	assert_true(kt_logcap_has(&fx->cap, "sessions reopened, logged in again"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_p256),
		T(test_p384),
		T(test_ed25519),
		T(test_rsa3072),
		T(test_large_tbs),
		T(test_destroy_then_sign),
		T(test_destroyed_behind_our_back),
		T(test_wrong_alg),
		T(test_logging),
		T(test_bad_requests),
		T(test_concurrent),
		cmocka_unit_test_setup_teardown(test_concurrent_with_fault, setup_two, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
