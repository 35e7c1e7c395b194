/*
 * kiln ca: the PKI hierarchies (production, test, service), certificate
 * profiles, serial numbers, the lint that runs before every signature, and
 * the issuance pipeline: parse, check against the product policy, build the
 * TBS, lint, sign in the HSM, commit, and only then release.
 *
 * Depends on crypto, hsm, store and policy. A kiln_ca is thread-safe: many
 * issuers may share one (the tokens pool their sessions, the store batches
 * their commits, the policy cache is locked).
 */
#ifndef KILN_CA_H
#define KILN_CA_H

#include "core/core.h"
#include "crypto/crypto.h"
#include "hsm/hsm.h"
#include "attest/attest.h"
#include "policy/policy.h"
#include "store/store.h"

/* ------------------------------------------------------------ hierarchies */

struct kiln_hierarchy_opts {
	kiln_env env;
	kiln_alg alg;
	const char *org;              /* organisation in the CA subjects */
	const char *deployment_id;    /* distinguishes deployments: OU=kiln <id> */
	unsigned root_validity_days;
	unsigned issuing_validity_days;
	const char *actor;            /* who ran the ceremony, for the event */
};

/*
 * The key ceremony for one environment: generates the root and issuing CA
 * keys inside tok (never extractable), self-signs the root, signs the
 * issuing CA with the root (pathLen 1 and 0), checks both signatures, and
 * records both CAs and a "ca-create" event per CA in one transaction.
 * CA names are "<env>-root" and "<env>-issuing".
 */
KILN_MUST_USE kiln_result kiln_ca_create_hierarchy(kiln_token *tok, kiln_store *store,
						   const struct kiln_hierarchy_opts *opts,
						   kiln_diag *d);

/* ------------------------------------------------------------ the engine */

typedef struct kiln_ca kiln_ca;

struct kiln_ca_opts {
	kiln_store *store;            /* borrowed */
	/* Tokens by kiln_env (borrowed); NULL where this process has no access. */
	kiln_token *tokens[4];
	const char *public_url;       /* base of default CRL and OCSP URLs */
	unsigned identity_validity_days;
	const kiln_log *log;
};

/* Loads the CA records and certificates; checks each CA's token label. */
KILN_MUST_USE kiln_result kiln_ca_open(const struct kiln_ca_opts *opts, kiln_ca **out,
				       kiln_diag *d);
void kiln_ca_free(kiln_ca *ca);

/* The chain of an environment's issuing CA, issuing first, root last (PEM). */
KILN_MUST_USE kiln_result kiln_ca_chain_pem(kiln_ca *ca, kiln_env env, kiln_buf *out,
					    kiln_diag *d);

/* ------------------------------------------------------------ policies */

/*
 * Parses and validates a product policy and stores it as the product's next
 * version, active (the governance work adds approvals before activation).
 * A product's environment never changes. Records a "policy-add" event.
 */
struct kiln_policy_added {
	char product[KILN_PRODUCT_MAX];
	kiln_env env;
	int64_t version;
	uint8_t sha256[32];
	const char *status; /* static string */
};

KILN_MUST_USE kiln_result kiln_ca_policy_add(kiln_ca *ca, kiln_slice yaml, const char *filename,
					     const char *actor, struct kiln_policy_added *out,
					     kiln_diag *d);

/* ------------------------------------------------------------ issuance */

struct kiln_issue_req {
	const char *product;
	kiln_slice csr;               /* DER or PEM */
	const char *device_serial;    /* NULL: the CSR's CN */
	const char *ca_name;          /* NULL: the issuing CA of the policy's environment */
	const char *actor;            /* identity or "cli:<user>" */
	const char *lot;              /* NULL outside a batch */
	const char *station;
	const char *operator_name;
};

struct kiln_issue_result {
	char serial[KILN_SERIAL_HEX];
	int64_t device_id;
	int64_t policy_version;
	kiln_buf cert_der;            /* the device certificate */
	kiln_buf chain_pem;           /* device, issuing CA, root, PEM */
};

void kiln_issue_result_init(struct kiln_issue_result *r);
void kiln_issue_result_cleanup(struct kiln_issue_result *r);

/*
 * Operator issuance from a CSR (kiln issue): for products whose policy
 * requires no attestation (type none, test products only); any other policy
 * refuses with KILN_ERR_ATTEST_REQUIRED, because a certificate is only issued
 * after the device proved what it is (see kiln_ca_provision_finish).
 * On success the device row, the certificate row and the "issuance" event
 * are durably committed before this returns. Any refusal (bad CSR, policy,
 * environment, duplicate) changes nothing but one "rejection" event (an
 * "anomaly" event for a device serial or key seen before) naming the reason.
 */
KILN_MUST_USE kiln_result kiln_ca_issue(kiln_ca *ca, const struct kiln_issue_req *req,
					struct kiln_issue_result *res, kiln_diag *d);

/* ------------------------------------------------------------ batches */

struct kiln_batch_req {
	const char *product;
	const char *lot;
	int64_t quantity;
	const char *line;     /* NULL or "" */
	const char *station;  /* identity the lot is assigned to; NULL or "": any station */
	const char *actor;
};

/* Opens a lot for a product with an active policy; records "batch-open". */
KILN_MUST_USE kiln_result kiln_ca_batch_open(kiln_ca *ca, const struct kiln_batch_req *req,
					     struct kiln_batch_rec *out, kiln_diag *d);
/* Closes a lot; records "batch-close". */
KILN_MUST_USE kiln_result kiln_ca_batch_close(kiln_ca *ca, const char *lot, const char *actor,
					      kiln_diag *d);

/* ------------------------------------------------------------ provisioning */

/* The station (or operator) identity a provisioning request came from. */
struct kiln_station {
	const char *name;
	const char *role; /* "station", "operator" */
	const char *env;  /* "", "production" or "test": where the identity may act */
};

#define KILN_NONCE_TTL_DEFAULT 120

struct kiln_begin_result {
	uint8_t nonce[KILN_NONCE_LEN]; /* a secret until used; never logged */
	int64_t expires;
	char product[KILN_PRODUCT_MAX];
	const char *attestation;       /* static: "none", "dice", ... */
};

/*
 * Issues a single-use nonce bound to the station, the lot and an expiry
 * (now + ttl_s). Refuses unknown or closed lots, lots assigned to another
 * station and stations of the other environment. Only the nonce's SHA-256
 * is stored.
 */
KILN_MUST_USE kiln_result kiln_ca_provision_begin(kiln_ca *ca, const char *lot,
						  const struct kiln_station *st, int64_t ttl_s,
						  struct kiln_begin_result *out, kiln_diag *d);

struct kiln_provision_req {
	const struct kiln_station *station;
	const uint8_t *nonce;            /* KILN_NONCE_LEN bytes */
	kiln_slice csr;                  /* DER */
	const struct kiln_evidence *evidence;
	const char *device_serial;
	const char *firmware_version;    /* what the device claims */
	const char *components_json;     /* canonical JSON object text, "" when none */
};

/*
 * The factory path: the nonce (unused, unexpired, this station's), the lot
 * (open, budget left, the station's environment), the evidence verified
 * against the product policy, the CSR checked, then the certificate signed
 * and the nonce, the lot's budget, the device row with its lineage, the
 * certificate row and the event committed in one transaction before release.
 * The same request sent again with the same nonce (a device that lost the
 * response) gets the same certificate again (*repeated set, nothing
 * written); any other reuse of a nonce is a replay.
 */
KILN_MUST_USE kiln_result kiln_ca_provision_finish(kiln_ca *ca, const struct kiln_provision_req *req,
						   struct kiln_issue_result *res, bool *repeated,
						   kiln_diag *d);

struct kiln_activate_req {
	const struct kiln_station *station;
	const uint8_t *nonce;            /* KILN_NONCE_LEN bytes, from begin */
	kiln_slice ek_cert;              /* DER */
	kiln_slice ek_intermediate;      /* DER, may be empty */
	kiln_slice ak_public;            /* TPM2B_PUBLIC */
};

struct kiln_activate_result {
	struct kiln_tpm2_activation act; /* credential and encrypted secret for the device */
	unsigned pcrs[KILN_POLICY_MAX_PCRS]; /* the SHA-256 PCRs the quote must select, ascending */
	size_t n_pcrs;
};

void kiln_activate_result_init(struct kiln_activate_result *r);
void kiln_activate_result_cleanup(struct kiln_activate_result *r);

/*
 * TPM 2.0 credential activation, between begin and finish (docs/protocol.md):
 * the nonce (unused, unexpired, this station's) and its lot's product policy
 * (type tpm2), the EK certificate chained to the policy's ek_roots, the AK a
 * restricted signing key; then a random secret is wrapped to the EK for the
 * AK's name, and its binding and an "activation" event are committed
 * together. Once per nonce. Every refusal is a "rejection" event.
 */
KILN_MUST_USE kiln_result kiln_ca_provision_activate(kiln_ca *ca, const struct kiln_activate_req *req,
						     struct kiln_activate_result *res,
						     kiln_diag *d);

/* ------------------------------------------------------------ identities */

/* admin, officer, engineer, operator, station, auditor */
bool kiln_role_valid(const char *role);

struct kiln_identity_req {
	const char *name;             /* [A-Za-z0-9._@-]{1,64} */
	const char *role;             /* one of kiln_roles */
	kiln_env env;                 /* KILN_ENV_NONE: any environment */
	kiln_slice csr;               /* the holder's own CSR; empty: kiln makes a P-256 key */
	const char *actor;
};

struct kiln_identity_result {
	char serial[KILN_SERIAL_HEX];
	kiln_buf cert_pem;
	kiln_buf key_pem;             /* only when kiln made the key; wiped on cleanup */
};

void kiln_identity_result_init(struct kiln_identity_result *r);
void kiln_identity_result_cleanup(struct kiln_identity_result *r);

/*
 * Issues a client certificate from the service CA (CN = name, OU = role,
 * EKU clientAuth) and binds it to the role in the inventory, with an
 * "identity-add" event, in one transaction.
 */
KILN_MUST_USE kiln_result kiln_ca_identity_add(kiln_ca *ca, const struct kiln_identity_req *req,
					       struct kiln_identity_result *res, kiln_diag *d);

/* ------------------------------------------------------------ kiln's own TLS */

struct kiln_tls_req {
	const EVP_PKEY *key;         /* the server's public key */
	const char *const *dns;      /* subjectAltName dNSName entries */
	size_t n_dns;
	const char *const *ips;      /* subjectAltName iPAddress entries */
	size_t n_ips;
	unsigned days;               /* 0: 90 */
	const char *actor;
};

/*
 * A TLS server certificate for kiln serve from the service CA (EKU
 * serverAuth), recorded as kind "tls" with a "tls-issue" event. chain_pem
 * receives the certificate and the service CA chain (issuing first).
 */
KILN_MUST_USE kiln_result kiln_ca_tls_issue(kiln_ca *ca, const struct kiln_tls_req *req,
					    kiln_buf *chain_pem, kiln_diag *d);

/* ------------------------------------------------------------ lint */

/* The profile a TBS is linted against before it may reach the HSM. */
struct kiln_lint_profile {
	bool is_ca;
	int path_len;                 /* -1: none expected */
	unsigned key_usage;           /* exact KU bits expected (OpenSSL KU_*) */
	int64_t max_validity_days;
	const X509 *issuer;           /* NULL for self-signed */
	kiln_alg sig_alg;
	const kiln_policy *policy;    /* device profiles: key must be allowed */
	/* The subject key, when the caller holds it already decoded (saves a decode). */
	const EVP_PKEY *subject_key;
};

/*
 * RFC 5280 and profile checks on a certificate whose signature is not yet
 * made: the object the TBS was encoded from (kiln_cert_tbs_x509), or a parsed
 * certificate. The TBS signature algorithm is checked (and the outer one, when
 * present, must agree). Each failure names the rule ("lint: keyUsage must be
 * critical").
 */
KILN_MUST_USE kiln_result kiln_lint_cert(const X509 *cert, const struct kiln_lint_profile *p,
					 kiln_diag *d);

#endif /* KILN_CA_H */
