#include "support/softhsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup_module(struct kt_hsm *h, const char *name, const kiln_log *log)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	memset(h, 0, sizeof(*h));
	h->dir = kt_tmpdir(name);
	kt_softhsm_setup(h->dir);
	KT_OKD(kiln_p11_load(KILN_SOFTHSM2_MODULE, log, &h->p11, &d), &d);
	KT_OKD(kiln_p11_init_token(h->p11, KT_TOKEN_LABEL, KT_SO_PIN, KT_USER_PIN, &d), &d);
}

void kt_hsm_setup_module(struct kt_hsm *h, const char *name)
{
	setup_module(h, name, NULL);
}

void kt_hsm_setup_log(struct kt_hsm *h, const char *name, unsigned sessions, const kiln_log *log)
{
	struct kiln_token_opts o = { KT_TOKEN_LABEL, KT_USER_PIN, sessions };
	kiln_diag d;

	setup_module(h, name, log);
	kiln_diag_clear(&d);
	KT_OKD(kiln_token_open(h->p11, &o, &h->token, &d), &d);
}

void kt_hsm_setup(struct kt_hsm *h, const char *name, unsigned sessions)
{
	kt_hsm_setup_log(h, name, sessions, NULL);
}

void kt_hsm_teardown(struct kt_hsm *h)
{
	kiln_token_close(h->token);
	kiln_p11_free(h->p11);
	if (h->dir != NULL)
		kt_rmrf(h->dir);
	free(h->dir);
	memset(h, 0, sizeof(*h));
}

bool kt_sig_valid(EVP_PKEY *pub, kiln_alg alg, kiln_slice data, kiln_slice sig)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	const EVP_MD *md = NULL;
	EVP_MD_CTX *ctx;
	bool ok;

	if (ai == NULL || pub == NULL)
		return false;
	if (ai->md_nid != NID_undef && (md = EVP_get_digestbynid(ai->md_nid)) == NULL)
		return false;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
	     EVP_DigestVerify(ctx, sig.ptr, sig.len, data.ptr, data.len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void logcap_sink(void *ctx, kiln_log_level level, const char *msg)
{
	struct kt_logcap *c = ctx;

	(void)pthread_mutex_lock(&c->mu);
	if (!kiln_is_ok(kiln_buf_printf(&c->text, "%s %s\n", kiln_log_level_name(level), msg)))
		(void)fprintf(stderr, "kt_logcap: log buffer full\n");
	(void)pthread_mutex_unlock(&c->mu);
}

void kt_logcap_init(struct kt_logcap *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(pthread_mutex_init(&c->mu, NULL), 0);
	kiln_buf_init(&c->text, KILN_BUF_DEFAULT_MAX);
	c->log.fn = logcap_sink;
	c->log.ctx = c;
	c->log.min = KILN_LOG_DEBUG;
}

void kt_logcap_cleanup(struct kt_logcap *c)
{
	kiln_buf_cleanup(&c->text);
	(void)pthread_mutex_destroy(&c->mu);
}

bool kt_logcap_has(struct kt_logcap *c, const char *needle)
{
	bool found;

	(void)pthread_mutex_lock(&c->mu);
	found = strstr(kiln_buf_cstr(&c->text), needle) != NULL;
	(void)pthread_mutex_unlock(&c->mu);
	return found;
}

/*
 * LeakSanitizer defaults for every test that loads SoftHSM2: a hook the
 * sanitizer runtime calls at start-up (an unused function in other builds).
 * SoftHSM2 leaks inside itself (tests/lsan.supp says what and why), and
 * matching those leaks by module needs full stacks, which the fast unwinder
 * cannot produce through libcrypto. LSAN_OPTIONS in the environment still
 * overrides these.
 */
const char *__lsan_default_options(void);

const char *__lsan_default_options(void)
{
	return "suppressions=" KILN_SOURCE_DIR "/tests/lsan.supp:fast_unwind_on_malloc=0";
}
