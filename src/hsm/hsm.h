/*
 * kiln hsm: the signer interface every signature goes through, and its
 * PKCS#11 backend (any module loaded by path; SoftHSM2 by default).
 *
 * The signer request is deliberately small (which key, which bytes, why) so
 * that it can move into a separate, privilege-separated process later. Key
 * material never leaves the token: keys are generated inside it as
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, non-CKA_EXTRACTABLE.
 *
 * Thread safety: kiln_p11 and kiln_token are safe to share between threads
 * (the token holds a session pool); kiln_key_ref is plain data.
 */
#ifndef KILN_HSM_H
#define KILN_HSM_H

#include "core/core.h"
#include "crypto/crypto.h"

/* ------------------------------------------------------------- signer */

#define KILN_KEY_LABEL_MAX 64
#define KILN_KEY_ID_MAX 32

/* Names a key inside a token. Plain data; copy freely. */
typedef struct kiln_key_ref {
	char label[KILN_KEY_LABEL_MAX]; /* CKA_LABEL */
	uint8_t id[KILN_KEY_ID_MAX];    /* CKA_ID */
	size_t id_len;
	kiln_alg alg;
} kiln_key_ref;

struct kiln_sign_req {
	const kiln_key_ref *key;
	/* The whole to-be-signed bytes; the backend hashes as key->alg requires. */
	kiln_slice tbs;
	/* Why: "certificate", "crl", "ocsp", "checkpoint". Logged, never the bytes. */
	const char *purpose;
};

struct kiln_signer_ops {
	/* Appends the X.509 signature value (DER ECDSA-Sig-Value, raw Ed25519, raw RSA). */
	kiln_result (*sign)(void *impl, const struct kiln_sign_req *req, kiln_buf *sig,
			    kiln_diag *d);
};

/* A borrowed handle: the implementation outlives it. */
typedef struct kiln_signer {
	const struct kiln_signer_ops *ops;
	void *impl;
} kiln_signer;

KILN_MUST_USE kiln_result kiln_signer_sign(const kiln_signer *s, const struct kiln_sign_req *req,
					   kiln_buf *sig, kiln_diag *d);

/* ------------------------------------------------------------- PKCS#11 */

typedef struct kiln_p11 kiln_p11;
typedef struct kiln_token kiln_token;

/*
 * Loads a PKCS#11 module by path (dlopen), gets its function list and
 * initialises it for OS locking. A missing or broken module gives
 * KILN_ERR_HSM_MODULE with the path and the loader's reason.
 * Caller frees with kiln_p11_free (after closing every token).
 */
KILN_MUST_USE kiln_result kiln_p11_load(const char *module_path, const kiln_log *log,
					kiln_p11 **out, kiln_diag *d);
void kiln_p11_free(kiln_p11 *p11);

/*
 * Token bootstrap (SoftHSM2 and other modules that keep a free slot):
 * initialises the first slot without a token-initialised flag as a token
 * named label, then sets the user PIN. KILN_ERR_EXISTS if a token with that
 * label exists already. PINs are only read, never kept.
 */
KILN_MUST_USE kiln_result kiln_p11_init_token(kiln_p11 *p11, const char *label,
					      const char *so_pin, const char *user_pin,
					      kiln_diag *d);

struct kiln_token_opts {
	const char *label; /* CKA token label, e.g. "kiln-prod" */
	const char *pin;   /* user PIN; copied into locked storage, wiped on close */
	unsigned sessions; /* size of the session pool; 0 means 4 */
};

/*
 * Finds the token by label, opens the session pool and logs in.
 * KILN_ERR_HSM_TOKEN_MISSING when no slot has that label, KILN_ERR_HSM_PIN
 * for a wrong or locked PIN. Caller closes with kiln_token_close.
 */
KILN_MUST_USE kiln_result kiln_token_open(kiln_p11 *p11, const struct kiln_token_opts *opts,
					  kiln_token **out, kiln_diag *d);
void kiln_token_close(kiln_token *t);
const char *kiln_token_label(const kiln_token *t);

/*
 * Generates a key pair inside the token: private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN; public key CKA_TOKEN,
 * CKA_VERIFY. Label must be unique in the token (KILN_ERR_EXISTS otherwise);
 * a random 16-byte CKA_ID is assigned. *out names the key; *pub (if not NULL)
 * receives its public key (caller frees).
 */
KILN_MUST_USE kiln_result kiln_token_generate(kiln_token *t, kiln_alg alg, const char *label,
					      kiln_key_ref *out, EVP_PKEY **pub, kiln_diag *d);
/* Looks a private key up by label (and by id if ref->id_len > 0). */
KILN_MUST_USE kiln_result kiln_token_find(kiln_token *t, const kiln_key_ref *ref, kiln_diag *d);
/* Reads the public half of a key pair (caller frees *out). */
KILN_MUST_USE kiln_result kiln_token_public_key(kiln_token *t, const kiln_key_ref *ref,
						EVP_PKEY **out, kiln_diag *d);
/* Destroys both halves of a key pair (C_DestroyObject). */
KILN_MUST_USE kiln_result kiln_token_destroy(kiln_token *t, const kiln_key_ref *ref,
					     kiln_diag *d);
/*
 * Per-device objects. kiln labels any object it keeps in a token for one
 * device "kiln-device:<product>/<serial>" (kiln_token_device_label), so that
 * retiring the device can find and destroy them all, whatever their class.
 */
#define KILN_DEVICE_LABEL_MAX 200
#define KILN_DESTROY_MAX 256

struct kiln_destroyed {
	size_t n;
	char what[KILN_DESTROY_MAX][16]; /* "private-key", "public-key", "secret-key", "certificate", "data", "other" */
};

/* "kiln-device:<product>/<serial>" into out (KILN_DEVICE_LABEL_MAX); KILN_ERR_TOO_BIG when long. */
KILN_MUST_USE kiln_result kiln_token_device_label(const char *product, const char *serial,
						  char out[KILN_DEVICE_LABEL_MAX]);
/*
 * Destroys every token object whose CKA_LABEL is label (C_DestroyObject),
 * and says what it destroyed (out->n may be 0). At most KILN_DESTROY_MAX
 * objects (KILN_ERR_TOO_BIG beyond: the ones found first are destroyed).
 */
KILN_MUST_USE kiln_result kiln_token_destroy_labelled(kiln_token *t, const char *label,
						      struct kiln_destroyed *out, kiln_diag *d);

/*
 * The token's signer. Signing checks a session out of the pool; after a
 * token fault (session closed, user logged out, device removed) it reopens
 * and logs in again once, then reports KILN_ERR_HSM_TOKEN_GONE if the
 * token is no longer there. The signer is valid until kiln_token_close.
 */
kiln_signer kiln_token_signer(kiln_token *t);

/* ------------------------------------------------------------- encrypter (AES-256-GCM) */

#define KILN_AEAD_IV_LEN 12
#define KILN_AEAD_TAG_LEN 16
#define KILN_AEAD_MAX ((size_t)1 << 30) /* one C_Encrypt holds it all: 1 GiB */

/*
 * The secret key labelled label: found, or generated in the token (AES-256,
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_ENCRYPT and
 * CKA_DECRYPT only). *created (may be NULL) says whether it was made now.
 */
KILN_MUST_USE kiln_result kiln_token_secret_ensure(kiln_token *t, const char *label,
						   bool *created, kiln_diag *d);

struct kiln_aead_req {
	const char *label;   /* the secret key's CKA_LABEL */
	const uint8_t *iv;   /* KILN_AEAD_IV_LEN bytes, never reused with the key */
	kiln_slice aad;      /* authenticated, not encrypted (at most 4 KiB) */
	kiln_slice in;       /* plaintext; or ciphertext || tag */
	const char *purpose; /* logged, never the bytes */
};

/*
 * The encrypter: AES-256-GCM inside the token (C_EncryptInit/C_Encrypt,
 * CKM_AES_GCM, 128-bit tag); appends ciphertext || tag to out, whose cap
 * must hold it. KILN_ERR_HSM_KEY_MISSING when the token has no such key.
 */
KILN_MUST_USE kiln_result kiln_token_encrypt(kiln_token *t, const struct kiln_aead_req *req,
					     kiln_buf *out, kiln_diag *d);
/*
 * The decrypter: in is ciphertext || tag; appends the plaintext to out only
 * when the tag verifies over it and the AAD (KILN_ERR_DECRYPT otherwise,
 * and nothing is appended).
 */
KILN_MUST_USE kiln_result kiln_token_decrypt(kiln_token *t, const struct kiln_aead_req *req,
					     kiln_buf *out, kiln_diag *d);

#endif /* KILN_HSM_H */
