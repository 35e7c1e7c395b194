/* Internal to src/ca: the engine's state and helpers shared by its files. */
#ifndef KILN_CA_IMPL_H
#define KILN_CA_IMPL_H

#include "ca.h"

#include <pthread.h>

/* One CA of the deployment, loaded from the inventory. */
struct ca_entry {
	struct kiln_ca_rec rec;
	X509 *cert;
	kiln_env env;
	kiln_alg alg;
	bool is_root;
	kiln_key_ref key;
	kiln_token *token; /* NULL when this process has no access to its token */
	struct ca_entry *parent;
	kiln_buf chain_pem; /* this CA and its parents, PEM, issuing first */
};

/* Parsed policies, kept until the engine is freed (versions are few). */
struct policy_cache_entry {
	char product[KILN_PRODUCT_MAX];
	int64_t version;
	uint8_t sha256[32];
	kiln_policy *policy;
	struct policy_cache_entry *next;
};

struct kiln_ca {
	kiln_store *store;
	kiln_token *tokens[4];
	char public_url[KILN_POLICY_STR_MAX];
	unsigned identity_validity_days;
	const kiln_log *log;
	struct ca_entry *cas;
	size_t n_cas;
	pthread_mutex_t lock; /* guards the policy cache */
	struct policy_cache_entry *policies;
};

/* The CA by name, or NULL. */
struct ca_entry *ca_find(kiln_ca *ca, const char *name);
/* The issuing CA of an environment, or NULL. */
struct ca_entry *ca_issuing(kiln_ca *ca, kiln_env env);

/*
 * Lints the unsigned certificate (the object tbs was encoded from) against p,
 * checks tbs is well-formed DER, signs it with key in tok, assembles the
 * signed certificate into der, and checks the signature when check_sig is set
 * (always for RSA, where a faulty signature can leak the key).
 */
KILN_MUST_USE kiln_result ca_sign_cert(kiln_token *tok, const kiln_key_ref *key, kiln_slice tbs,
				       const X509 *unsigned_cert, const struct kiln_lint_profile *p,
				       bool check_sig, const char *purpose, kiln_buf *der,
				       kiln_diag *d);
/* Appends the PEM for DER certificate bytes. */
KILN_MUST_USE kiln_result ca_der_to_pem(kiln_slice der, kiln_buf *out);
/* A small JSON object as text, from jansson json_pack format and args. Caller frees. */
char *ca_event_json(const char *fmt, ...);
/* The active policy of a product, parsed (cached). Borrowed until kiln_ca_free. */
KILN_MUST_USE kiln_result ca_policy_active(kiln_ca *ca, const char *product,
					   const kiln_policy **out, int64_t *version,
					   kiln_diag *d);
/* Fills the store's certificate record fields every kind shares. */
void ca_cert_rec_fill(struct kiln_cert_rec *rec, const char *serial_hex, const struct ca_entry *issuer,
		      const char *kind, const X509_NAME *subject, int64_t nb, int64_t na,
		      kiln_slice der);

#endif
