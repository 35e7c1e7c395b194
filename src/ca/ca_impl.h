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
	bool head; /* the active version when last read (ca_policy_current serves it) */
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

#define ISSUE_SERIAL_MAX 127

/*
 * One issuance in progress, operator (prov NULL) or factory (prov set). Every
 * value is computed here first; nothing is written until the commit.
 */
struct issue_work {
	kiln_ca *ca;
	const struct kiln_issue_req *req;
	const struct kiln_provision_req *prov;
	const char *actor;
	const char *product;
	const kiln_policy *policy;
	int64_t policy_version;
	struct ca_entry *issuer;
	kiln_csr *csr;
	char device_serial[ISSUE_SERIAL_MAX + 1];
	char subject_vals[KILN_POLICY_MAX_ATTRS][KILN_POLICY_STR_MAX];
	char san_uri[KILN_POLICY_MAX_SAN][KILN_POLICY_STR_MAX];
	char san_dns[KILN_POLICY_MAX_SAN][KILN_POLICY_STR_MAX];
	char crl_url[KILN_POLICY_STR_MAX + 96];
	char ocsp_url[KILN_POLICY_STR_MAX + 64];
	X509_NAME *subject;          /* NULL when the name was simple (kiln_name_simple) */
	kiln_buf subject_der;        /* then its DER */
	char subject_text[KILN_STORE_NAME_MAX * 2]; /* and its one-line form */
	struct kiln_cert_spec spec;
	char serial_hex[KILN_SERIAL_HEX];
	kiln_buf tbs;
	kiln_buf der;
	struct kiln_device_rec dev;
	struct kiln_cert_rec cert;
	struct kiln_event_rec ev;
	/* renewal only (renew.c): the device renewed, NULL otherwise */
	const struct renew_state *renew;
	/* factory only */
	struct kiln_reprovision_rec reprov;  /* an open grant for this serial (reprov.device_id > 0) */
	char reprov_cert[KILN_STORE_SERIAL_HEX];
	uint8_t reprov_spki[32];
	struct kiln_batch_rec batch;
	struct kiln_attest_result att;
	uint8_t nonce_sha256[32];
	uint8_t request_sha256[32];
	struct kiln_nonce_rec next_nonce;    /* the station's next nonce, when prov->next is set */
	bool next_made;                      /* recorded by the commit (budget left after this one) */
	bool policy_read;                    /* read the active policy from the store, not the cache */
};

/* A renewal in progress: the device and the certificate being renewed. */
struct renew_state {
	struct kiln_device_rec dev;
	const X509 *current;
	char old_serial[KILN_STORE_SERIAL_HEX]; /* any X.509 serial: up to 20 bytes */
	uint8_t old_spki_sha256[32];
	bool same_key;                 /* set by renew_check_csr */
};

/* Renewal: the CSR's subject and key against the certificate renewed (renew.c). */
KILN_MUST_USE kiln_result renew_check_csr(struct issue_work *w, kiln_diag *d);

/*
 * The shared pipeline from "policy and issuer known" to "committed": CSR,
 * key, subject, serial, (attestation when prov is set), TBS, lint, signature,
 * records, commit. Fills res. Refusals are left to the caller to record.
 */
KILN_MUST_USE kiln_result issue_run(struct issue_work *w, struct kiln_issue_result *res,
				    kiln_diag *d);
/* The policy's issuing CA (or req->ca_name), checked against the policy's environment. */
KILN_MUST_USE kiln_result issue_resolve(struct issue_work *w, const char *ca_name, kiln_diag *d);
/* Records a refusal: "anomaly" for duplicates, "rejection" for the client's faults, else "failure". */
void issue_record_refusal(struct issue_work *w, const char *operation, kiln_slice request,
			  kiln_result why, const kiln_diag *d);
/* Binds w (zeroed) to ca and readies its buffers; issue_work_cleanup releases them. */
void issue_work_init(struct issue_work *w, kiln_ca *ca);
void issue_work_cleanup(struct issue_work *w);
/* Factory path: the evidence verified against the policy (provision.c). */
KILN_MUST_USE kiln_result provision_attest(struct issue_work *w, kiln_diag *d);
/* Appends the certificate DER's PEM and its issuer's chain to res. */
KILN_MUST_USE kiln_result ca_release(const struct ca_entry *issuer, kiln_slice der,
				     const char *serial_hex, struct kiln_issue_result *res);

/* The CA by name, or NULL. */
struct ca_entry *ca_find(kiln_ca *ca, const char *name);
/* The active issuing CA of an environment (the one that issues), or NULL. */
struct ca_entry *ca_issuing(kiln_ca *ca, kiln_env env);
/*
 * The nth issuing CA of an environment, active or retired, oldest first, or
 * NULL past the last: CRLs and OCSP serve every generation.
 */
struct ca_entry *ca_issuing_nth(kiln_ca *ca, kiln_env env, size_t nth);
/* Retired for issuance by a rotation (schema 8). */
bool ca_retired(const struct ca_entry *e);
/*
 * The delegated OCSP signer of one issuing CA (any generation): made and
 * recorded when missing ("<env>-ocsp" for generation 1, "<env>-ocsp-<g>"
 * after a rotation). name (may be NULL) receives its CA name.
 */
KILN_MUST_USE kiln_result ca_ocsp_signer_for(kiln_ca *ca, const struct ca_entry *issuer,
					     const char *actor, bool *made, char name[64],
					     kiln_diag *d);

/*
 * Checks tbs is well-formed DER and lints it against p, signs it with key in
 * tok, assembles the signed certificate into der, and checks the signature
 * when check_sig is set (always for RSA, where a faulty signature can leak
 * the key).
 */
KILN_MUST_USE kiln_result ca_sign_cert(kiln_token *tok, const kiln_key_ref *key, kiln_slice tbs,
				       const struct kiln_lint_profile *p, bool check_sig,
				       const char *purpose, kiln_buf *der, kiln_diag *d);
/* A CA certificate being made: validity in, the rest out of ca_certify_ca. */
struct ca_cert_made {
	int64_t nb, na;                           /* notBefore, notAfter (the caller's) */
	X509 *cert;                               /* parsed from der; caller frees */
	kiln_buf der;                             /* caller inits and cleans up */
	char serial[KILN_SERIAL_HEX];
	char subject[KILN_STORE_NAME_MAX * 2];    /* one-line form */
};
/*
 * A CA certificate (kiln init's profile: CA:TRUE, keyCertSign and cRLSign,
 * spec's path length) from spec, whose subject, key, issuer (NULL:
 * self-signed) and signature algorithm the caller sets, valid out->nb to
 * out->na; a fresh serial here.
 * Linted against at most days of validity, signed by signer in tok, its
 * signature checked, parsed into out.
 */
KILN_MUST_USE kiln_result ca_certify_ca(kiln_token *tok, const kiln_key_ref *signer,
					struct kiln_cert_spec *spec, int64_t days,
					struct ca_cert_made *out, kiln_diag *d);
/* A CA row's key, certificate, serial, subject, validity and creation time from a made CA. */
void ca_made_rec_fill(struct kiln_ca_rec *rec, const struct ca_cert_made *c,
		      const kiln_key_ref *key);
/* Appends the PEM for DER certificate bytes. */
KILN_MUST_USE kiln_result ca_der_to_pem(kiln_slice der, kiln_buf *out);
/*
 * A small JSON object as text (caller frees): fmt is "{s:X,...}", at most 16
 * members, X one of s (string), i (int), I (json_int_t), b (int, as a
 * boolean); the text is what jansson's json_pack then json_dumps(COMPACT |
 * SORT_KEYS | ENSURE_ASCII) make. NULL for another format, a NULL or non-UTF-8
 * string, a duplicate key, or no memory.
 */
char *ca_event_json(const char *fmt, ...);
/*
 * Adds an event stamped now inside tx; takes detail (from ca_event_json) and
 * frees it, KILN_ERR_NOMEM when it is NULL.
 */
KILN_MUST_USE kiln_result ca_tx_event(kiln_store_tx *tx, const char *type, const char *actor,
				      const char *subject, char *detail, kiln_diag *d);
/* The active policy of a product, parsed (cached). Borrowed until kiln_ca_free. */
KILN_MUST_USE kiln_result ca_policy_active(kiln_ca *ca, const char *product,
					   const kiln_policy **out, int64_t *version,
					   kiln_diag *d);
/*
 * The same without reading the store when the active version is known from
 * an earlier read: for issuances, whose commit checks the version against
 * the store (KILN_ERR_POLICY_CHANGED, after which ca_policy_forget).
 */
KILN_MUST_USE kiln_result ca_policy_current(kiln_ca *ca, const char *product,
					    const kiln_policy **out, int64_t *version,
					    kiln_diag *d);
/* The product's active version is no longer known: the next ca_policy_current reads it. */
void ca_policy_forget(kiln_ca *ca, const char *product);
/* Fills the store's certificate record fields every kind shares (subject NULL: left for the caller). */
void ca_cert_rec_fill(struct kiln_cert_rec *rec, const char *serial_hex, const struct ca_entry *issuer,
		      const char *kind, const X509_NAME *subject, int64_t nb, int64_t na,
		      kiln_slice der);

#endif
