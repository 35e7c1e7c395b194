/*
 * Internals of the PKCS#11 backend, shared between its files and its unit
 * tests. Not API: only src/hsm/ and tests/unit/hsm/ include this.
 *
 * Lock order: kiln_token.mu, then kiln_keycache.mu. Nothing takes mu while
 * holding the cache lock.
 */
#ifndef KILN_HSM_P11_H
#define KILN_HSM_P11_H

#include "hsm/hsm.h"

#include <pthread.h>

/*
 * kiln_hsm compiles with p11-kit's include directory; the unit tests only
 * have the system one, where the same header sits one level down.
 */
#if __has_include(<p11-kit/pkcs11.h>)
#include <p11-kit/pkcs11.h>
#else
#include <p11-kit-1/p11-kit/pkcs11.h>
#endif

#define KILN_TOKEN_LABEL_LEN 32 /* CK_TOKEN_INFO.label, blank-padded */
#define KILN_P11_PIN_MAX 255
#define KILN_TOKEN_MAX_SESSIONS 64
#define KILN_TOKEN_DEFAULT_SESSIONS 4
#define KILN_KEYCACHE_SIZE 32
/* Upper bound on one attribute value read from a token (RSA-8192 modulus is 1 KiB). */
#define KILN_P11_ATTR_MAX 4096
#define KILN_KEY_ID_LEN 16 /* random CKA_ID kiln assigns */

/* ------------------------------------------------------------ ckr.c */

/* "CKR_PIN_INCORRECT"; "unknown CKR" for codes outside the table. */
const char *kiln_p11_ckr_name(CK_RV rv);
/*
 * True for the return values that mean the session or the login is gone
 * (session closed, user logged out, device removed or failing): the caller
 * reopens its sessions, logs in again and retries once.
 */
bool kiln_p11_is_fault(CK_RV rv);
/* KILN_ERR_HSM_PIN for PIN trouble, KILN_ERR_HSM_TOKEN_GONE for faults, else KILN_ERR_HSM. */
kiln_err kiln_p11_err_of(CK_RV rv);
/*
 * Records "<fn> failed for <kind> <name>: CKR_X (0x..)" with the code from
 * kiln_p11_err_of and returns it. rv must not be CKR_OK.
 */
KILN_MUST_USE kiln_result kiln_p11_fail(kiln_diag *d, CK_RV rv, const char *fn, const char *kind,
					const char *name);

/*
 * Passes a failure recorded in a local diag on to the caller's d (its text
 * if it has one) and returns r. For operations that may be retried, whose
 * first failure must not stick in the caller's diag.
 */
KILN_MUST_USE kiln_result kiln_p11_forward(kiln_diag *d, kiln_result r, const kiln_diag *from);

/* ------------------------------------------------------------ mech.c */

/* The PKCS#11 side of one kiln_alg. */
struct kiln_p11_alg {
	kiln_alg alg;
	CK_KEY_TYPE key_type;
	CK_MECHANISM_TYPE gen_mech;
	CK_MECHANISM_TYPE sign_mech;
	kiln_slice ec_params;     /* CKA_EC_PARAMS written at generation; empty for RSA */
	kiln_slice ec_params_alt; /* also accepted when reading (Ed25519 named by OID) */
	const char *group;        /* OpenSSL group name for ECDSA, else NULL */
	bool prehash;             /* digest in software, then C_Sign the digest */
};

/* NULL for algorithms the backend does not know. */
const struct kiln_p11_alg *kiln_p11_alg_get(kiln_alg alg);
/* Whether CKA_EC_PARAMS read from a token names this algorithm's curve. */
bool kiln_p11_alg_params_ok(const struct kiln_p11_alg *pa, kiln_slice params);

/* ------------------------------------------------------------ p11.c */

struct kiln_p11 {
	void *dl;                /* never dlclosed: see p11.c */
	CK_FUNCTION_LIST_PTR fn; /* owned by the module */
	kiln_log log;            /* copy of the caller's; fn NULL when none */
	char path[];
};

/* A token label: 1 to 32 bytes, printable, no trailing blank. */
KILN_MUST_USE kiln_result kiln_p11_check_label(const char *label, kiln_diag *d);
/* Blank-pads a checked label to the 32 bytes CK_TOKEN_INFO holds. */
void kiln_p11_label_pad(const char *label, CK_UTF8CHAR out[KILN_TOKEN_LABEL_LEN]);
/*
 * The slot whose initialised token carries label, re-reading the slot list
 * (SoftHSM2 renumbers slots). Slots whose token does not answer are skipped.
 * KILN_ERR_HSM_TOKEN_MISSING when none does.
 */
KILN_MUST_USE kiln_result kiln_p11_find_slot(const kiln_p11 *p11, const char *label,
					     CK_SLOT_ID *slot, kiln_diag *d);

/* ------------------------------------------------------------ cache.c */

struct kiln_keycache_entry {
	bool used;
	kiln_key_ref ref;
	CK_OBJECT_HANDLE handle;
	uint64_t gen; /* pool generation the handle belongs to */
};

/* Private key handles by key ref. Thread-safe (own mutex). */
struct kiln_keycache {
	pthread_mutex_t mu;
	struct kiln_keycache_entry e[KILN_KEYCACHE_SIZE];
	unsigned next; /* round-robin victim when full */
};

KILN_MUST_USE kiln_result kiln_keycache_init(struct kiln_keycache *c);
void kiln_keycache_cleanup(struct kiln_keycache *c);
/* True and *h set when ref has a handle from generation gen. */
bool kiln_keycache_get(struct kiln_keycache *c, const kiln_key_ref *ref, uint64_t gen,
		       CK_OBJECT_HANDLE *h);
void kiln_keycache_put(struct kiln_keycache *c, const kiln_key_ref *ref, uint64_t gen,
		       CK_OBJECT_HANDLE h);
/* Drops every entry with ref's label (whatever its id). */
void kiln_keycache_drop(struct kiln_keycache *c, const char *label);
void kiln_keycache_clear(struct kiln_keycache *c);

/* ------------------------------------------------------------ token.c */

/* The user PIN, kept for re-login in its own mlock'd, non-dumpable page. */
struct kiln_pin_store {
	char *p;
	size_t len;
	size_t map_len;
	bool locked;
};

struct kiln_token {
	kiln_p11 *p11; /* borrowed */
	CK_FUNCTION_LIST_PTR fn;
	char label[KILN_TOKEN_LABEL_LEN + 1];
	kiln_log log;
	struct kiln_pin_store pin;
	struct kiln_keycache cache;
	/* Serialises label checks with generation and destruction. */
	pthread_mutex_t admin_mu;

	/* The session pool; everything below is guarded by mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n;                /* pool size */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE *all;    /* n_open sessions of this generation */
	CK_SESSION_HANDLE *idle;   /* stack of n_idle sessions ready for use */
	unsigned n_open, n_idle, n_out;
	uint64_t gen;              /* bumped on every (re)open */
	bool broken;               /* reopen before the next checkout */
};

/* One checked-out session. */
struct kiln_tok_sess {
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	uint64_t gen;
	bool committed; /* the operation changed the token: never retry it */
	bool discard;   /* the session is in an unknown state: reopen the pool */
};

/*
 * An operation on one session. It reports token faults as
 * KILN_ERR_HSM_TOKEN_GONE (kiln_tok_fail does that), after which
 * kiln_tok_run reopens the pool, logs in again and runs it once more.
 */
typedef kiln_result (*kiln_tok_op)(kiln_token *t, struct kiln_tok_sess *s, void *arg,
				   kiln_diag *d);

KILN_MUST_USE kiln_result kiln_tok_run(kiln_token *t, kiln_tok_op op, void *arg, kiln_diag *d);
/*
 * Maps a failed call. Faults become KILN_ERR_HSM_TOKEN_GONE; so does any
 * other error when the token no longer answers or the session is no
 * longer logged in; the rest become kiln_p11_err_of(rv).
 */
KILN_MUST_USE kiln_result kiln_tok_fail(kiln_token *t, const struct kiln_tok_sess *s, CK_RV rv,
					const char *fn, kiln_diag *d);
/*
 * Checks that the session is still logged in and the token still answers
 * to its label; KILN_ERR_HSM_TOKEN_GONE otherwise. Used before reporting a
 * missing key, so that a vanished token is not mistaken for a missing key.
 */
KILN_MUST_USE kiln_result kiln_tok_alive(kiln_token *t, const struct kiln_tok_sess *s,
					 kiln_diag *d);

/* ------------------------------------------------------------ keys.c */

/* A key ref: label 1..63 printable bytes, id at most KILN_KEY_ID_MAX, known alg. */
KILN_MUST_USE kiln_result kiln_p11_check_ref(const kiln_key_ref *ref, kiln_diag *d);
/*
 * The private key handle for ref: from the cache, else found by label (and
 * id), checked to be a signing key of ref->alg, and cached.
 * KILN_ERR_HSM_KEY_MISSING when the token is fine but has no such key.
 */
KILN_MUST_USE kiln_result kiln_tok_key_handle(kiln_token *t, struct kiln_tok_sess *s,
					      const kiln_key_ref *ref, CK_OBJECT_HANDLE *out,
					      kiln_diag *d);

/* ------------------------------------------------------------ pubkey.c */

/*
 * Public keys from PKCS#11 attribute values (untrusted bytes from the
 * token). EC and Ed25519 points may be raw or wrapped in a DER OCTET
 * STRING. The key must match alg (curve, size). Caller frees *out.
 */
KILN_MUST_USE kiln_result kiln_p11_pub_ec(kiln_alg alg, kiln_slice params, kiln_slice point,
					  EVP_PKEY **out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_p11_pub_rsa(kiln_alg alg, kiln_slice modulus, kiln_slice exponent,
					   EVP_PKEY **out, kiln_diag *d);

#endif /* KILN_HSM_P11_H */
