/*
 * SoftHSM2 fixtures for tests that need a real token: a private token
 * directory per test, the module loaded through kiln, a token initialised
 * and opened. Link with kiln_hsm (the fixture calls it).
 */
#ifndef KILN_TEST_SOFTHSM_H
#define KILN_TEST_SOFTHSM_H

#include <pthread.h>
#include <stdbool.h>

#include "support/support.h"
#include "hsm/hsm.h"

#define KT_TOKEN_LABEL "kiln-test"
#define KT_SO_PIN "so-pin-8264"
#define KT_USER_PIN "user-pin-3917"

struct kt_hsm {
	char *dir;          /* the test's directory; tokens live in dir/tokens */
	kiln_p11 *p11;
	kiln_token *token;  /* NULL after kt_hsm_setup_module */
};

/* Like KT_OK, but prints the diag's message when the call failed. */
#define KT_OKD(expr, d)                                                      \
	do {                                                                 \
		kiln_result kt_r_ = (expr);                                  \
		if (kt_r_.code != KILN_OK)                                   \
			print_message("unexpected failure: %s\n", (d)->text); \
		assert_int_equal(kt_r_.code, KILN_OK);                       \
	} while (0)

/* Fresh token directory, module loaded, token KT_TOKEN_LABEL initialised. */
void kt_hsm_setup_module(struct kt_hsm *h, const char *name);
/* kt_hsm_setup_module, then the token opened with that many sessions (0: default). */
void kt_hsm_setup(struct kt_hsm *h, const char *name, unsigned sessions);
/* The same, with the module (and so the token) logging to log. */
void kt_hsm_setup_log(struct kt_hsm *h, const char *name, unsigned sessions, const kiln_log *log);
/* Closes, frees and removes everything; safe on a partly set-up fixture. */
void kt_hsm_teardown(struct kt_hsm *h);

/*
 * Whether sig is a valid X.509 signature value by pub over data for alg:
 * ECDSA DER over the SHA-256/384 digest, pure Ed25519, RSA PKCS#1 v1.5
 * SHA-256. Checked by OpenSSL alone. Thread-safe (no cmocka asserts).
 */
bool kt_sig_valid(EVP_PKEY *pub, kiln_alg alg, kiln_slice data, kiln_slice sig);

/* A log sink that keeps every line ("level message\n") for assertions. Thread-safe. */
struct kt_logcap {
	pthread_mutex_t mu;
	kiln_buf text;
	kiln_log log; /* pass &cap.log; threshold debug */
};

void kt_logcap_init(struct kt_logcap *c);
void kt_logcap_cleanup(struct kt_logcap *c);
/* Whether some logged line contains needle. */
bool kt_logcap_has(struct kt_logcap *c, const char *needle);

#endif
