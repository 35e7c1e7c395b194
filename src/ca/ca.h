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
#include "govern/govern.h"

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

/* The chain of an environment's active issuing CA, issuing first, root last (PEM). */
KILN_MUST_USE kiln_result kiln_ca_chain_pem(kiln_ca *ca, kiln_env env, kiln_buf *out,
					    kiln_diag *d);

/* ------------------------------------------------------------ rotation */

/*
 * Issuing CA rotation, gated by the "ca-rotate" approval (docs/ca.md). The
 * request names {algorithm, env, generation, name, role "issuing"}; no key is
 * made until the run.
 */
struct kiln_rotate_result {
	char request_id[KILN_STORE_REQUEST_ID];
	char env[16];
	char old_name[64];            /* the CA retired for issuance (or to be) */
	char new_name[64];            /* "<env>-issuing-<generation>" */
	char alg[16];
	int64_t generation;
	int64_t quorum, expires;
	char serial[KILN_SERIAL_HEX]; /* run only: the new CA's certificate */
	char key_label[64];           /* run only: its key in the token */
};

/*
 * Makes a ca-rotate request for an environment's issuing CA (env_name
 * "production" or "test"; alg_name NULL: the active CA's algorithm) by actor,
 * for the next generation. Unknown environment or algorithm: KILN_ERR_ARG and
 * one "request-refused" event; nothing else is written.
 */
KILN_MUST_USE kiln_result kiln_ca_rotate_request(kiln_ca *ca, const char *env_name,
						 const char *alg_name, const char *actor,
						 const struct kiln_govern_rules *rules,
						 struct kiln_rotate_result *out, kiln_diag *d);
/*
 * Runs an approved ca-rotate request: kiln_govern_check (unknown,
 * mismatched, executed, expired, short of approvals: refused with its event,
 * before any key exists); the request's generation must still be the next
 * one (KILN_ERR_REQUEST_MISMATCH); then the key is generated in the
 * environment's token, the certificate signed by the root, and the request
 * executed, the old CA retired, the new CA, its certificate row and the
 * "ca-create" and "ca-rotate" events committed in one transaction. A failure
 * after the key exists destroys it and records "ca-rotate-failed". The
 * engine still holds the CAs it was opened with: open a new one to issue
 * from the new CA.
 */
KILN_MUST_USE kiln_result kiln_ca_rotate_run(kiln_ca *ca, const char *request_id,
					     const char *actor, struct kiln_rotate_result *out,
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

/*
 * The governed path (kiln policy add): validates and stores the policy as
 * the product's next version, pending, with a "policy-activate" request
 * {product, version, sha256} made by actor, and the "policy-add" and
 * "request" events, in one transaction. The version becomes active when the
 * request reaches its officer quorum (kiln_govern_approve). request
 * receives the request.
 */
KILN_MUST_USE kiln_result kiln_ca_policy_request(kiln_ca *ca, kiln_slice yaml,
						 const char *filename, const char *actor,
						 const struct kiln_govern_rules *rules,
						 struct kiln_policy_added *out,
						 struct kiln_request_rec *request, kiln_diag *d);

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

/* ------------------------------------------------------------ renewal (EST) */

struct kiln_renew_req {
	const X509 *current;          /* the certificate renewed: the TLS client certificate */
	kiln_slice csr;               /* DER */
	const char *product;          /* the EST label; NULL: none (any product) */
	const char *actor;            /* for events: "device:<serial>" */
};

/*
 * EST simplereenroll (RFC 7030 4.2.2): the current certificate must be a
 * device certificate from this deployment's production or test issuing CA
 * (KILN_ERR_CERT_UNTRUSTED), within its validity (KILN_ERR_CERT_EXPIRED),
 * not revoked, of an active device (KILN_ERR_CERT_REVOKED,
 * KILN_ERR_DEVICE_RETIRED), of the labelled product (KILN_ERR_FORBIDDEN).
 * The product policy's renewal rules apply: the window before expiry
 * (KILN_ERR_RENEWAL_WINDOW), the minimum attested firmware
 * (KILN_ERR_RENEWAL_FIRMWARE), a new key (KILN_ERR_RENEWAL_KEY). The CSR asks
 * for the same subject (the certificate's, or CN = the device serial;
 * KILN_ERR_RENEWAL_SUBJECT). The new certificate, the device's pointer to it
 * and a "renewal" event commit together before release; a refusal writes
 * one event and nothing else. The old certificate stays valid until it expires.
 */
KILN_MUST_USE kiln_result kiln_ca_renew(kiln_ca *ca, const struct kiln_renew_req *req,
					struct kiln_issue_result *res, kiln_diag *d);

/* The issuing CA and root of an environment (borrowed until kiln_ca_free): *n = 2. */
KILN_MUST_USE kiln_result kiln_ca_chain_certs(kiln_ca *ca, kiln_env env, X509 *out[2], size_t *n,
					      kiln_diag *d);
/* The active policy of a product, parsed; borrowed until kiln_ca_free. */
KILN_MUST_USE kiln_result kiln_ca_policy_view(kiln_ca *ca, const char *product,
					      const kiln_policy **out, int64_t *version,
					      kiln_diag *d);

/* ------------------------------------------------------------ retirement */

struct kiln_retire_result {
	int64_t device_id;
	char product[KILN_PRODUCT_MAX];
	char serial[KILN_STORE_NAME_MAX];
	char cert_serial[KILN_STORE_SERIAL_HEX];
	bool revoked_now;             /* false when the certificate was revoked before */
	char hsm_label[KILN_DEVICE_LABEL_MAX];
	struct kiln_destroyed destroyed;
};

/*
 * Retires a device (ref as kiln_store_device_get): destroys every object
 * the device's environment token holds under its per-device label
 * (kiln_token_device_label), then in one transaction revokes its current
 * certificate (cessationOfOperation; one revoked before stays as it was),
 * marks it retired and records a "device-retire" event naming what was
 * destroyed (a count of 0 included). Unknown device: KILN_ERR_NOT_FOUND;
 * retired before: KILN_ERR_DEVICE_RETIRED; each refusal is one event and
 * nothing else.
 */
KILN_MUST_USE kiln_result kiln_ca_device_retire(kiln_ca *ca, const char *ref, const char *actor,
						struct kiln_retire_result *out, kiln_diag *d);

/* ------------------------------------------------------------ re-provisioning */

/*
 * Opens the way for a compromised (reason "keyCompromise") or repaired or
 * re-attested ("superseded") device to get a new identity: the next
 * provisioning of its product and serial through /v1/provision (with fresh
 * attestation, like any provisioning) is not a duplicate but a replacement.
 * That provisioning revokes the old certificate with the reason, and its new
 * device record names the old one (replaces), in the issuance's transaction.
 * keyCompromise needs a key never certified before; superseded allows the
 * device's own key again (a DICE DeviceID survives a firmware update).
 * Records "reprovision-open"; refusals (unknown, retired, replaced device, a
 * grant already open) are one event each and nothing else.
 */
KILN_MUST_USE kiln_result kiln_ca_device_reprovision(kiln_ca *ca, const char *ref,
						     const char *reason, const char *actor,
						     struct kiln_device_rec *out, kiln_diag *d);

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
	char lot[64];
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
	/*
	 * Optional, NULL for none: the station's next nonce (RFC 8555's
	 * Replay-Nonce pattern), so that a station provisioning device after
	 * device needs one round trip per device instead of two. When the
	 * request issues a certificate, a nonce for the same station and lot,
	 * valid next_ttl_s seconds (0: the default), commits with it and is
	 * written here (next->expires != 0). None (next->expires 0) when the
	 * lot has no budget left after this device, and none in the answer to
	 * a repeated request.
	 */
	struct kiln_begin_result *next;
	int64_t next_ttl_s;
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
	/*
	 * Governance (docs/roles.md); rules NULL: none (library callers and tests).
	 * With rules, adding an admin or officer once the deployment has its
	 * quorum of officers is gated: without request_id it needs the holder's
	 * CSR and only makes an "identity-add" request (result.request_id); with
	 * request_id (approved, same name, role, env and key) it issues.
	 * Before that, such additions are the bootstrap (a "bootstrap" event).
	 */
	const struct kiln_govern_rules *rules;
	const char *request_id;
};

struct kiln_identity_result {
	char serial[KILN_SERIAL_HEX]; /* "" when only a request was made */
	char request_id[KILN_STORE_REQUEST_ID]; /* the request made, when gated */
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

/* ------------------------------------------------------------ revocation */

/* Exactly one of serial, device, lot, station; from/to only with station. */
struct kiln_revoke_req {
	const char *serial;   /* lower-case hex */
	const char *device;   /* as kiln_store_device_get: id, product/serial or serial */
	const char *lot;      /* recall: every valid certificate of the lot's devices */
	const char *station;  /* recall: what the station provisioned, issued in [from, to) */
	int64_t from, to;     /* 0: unbounded */
	const char *reason;   /* RFC 5280 reason name */
	const char *actor;
	/* Recalls are gated (revoke-bulk); NULL: the default rules (2 officers, a day). */
	const struct kiln_govern_rules *rules;
};

struct kiln_revoke_result {
	char (*serials)[KILN_STORE_SERIAL_HEX]; /* what was revoked (heap) */
	size_t n;
	int64_t revoked_at;
	int64_t seq;          /* the revocation generation after the commit */
	/* A recall: nothing is revoked yet (n = 0); the revoke-bulk request made. */
	char request_id[KILN_STORE_REQUEST_ID];
	int64_t quorum, expires;
	size_t matched;       /* valid certificates the recall matched when requested */
};

void kiln_revoke_result_cleanup(struct kiln_revoke_result *res);

/*
 * Revokes one certificate (serial, device) at once, with its "revocation"
 * event, in one transaction. A recall (lot, station) is gated: it only makes
 * a revoke-bulk request (res->request_id; params {lot} or {station, from,
 * to}, with reason and the count matched now) and records its "request"
 * event; the recall runs when N officers have approved, in the transaction
 * of the approval that completes the quorum (kiln_ca_approve), over the
 * certificates the selector matches then, all or nothing, one "revocation"
 * event per certificate. Both go through one internal function (revoke_bulk
 * in revoke.c). Refusals: KILN_ERR_ARG, KILN_ERR_NOT_FOUND (serial, device,
 * a recall that matches nothing: no request is stored),
 * KILN_ERR_ALREADY_REVOKED; each records one "rejection" event and changes
 * nothing else.
 */
KILN_MUST_USE kiln_result kiln_ca_revoke(kiln_ca *ca, const struct kiln_revoke_req *req,
					 struct kiln_revoke_result *res, kiln_diag *d);

/*
 * kiln_govern_approve, with the CA's executors: the approval that completes
 * a revoke-bulk request's quorum runs the recall in its own transaction
 * (out->executed, out->affected = certificates revoked). A recall that
 * matches nothing by then refuses the approval (KILN_ERR_NOT_FOUND, an
 * "approval-refused" event). Every approval path (CLI, HTTPS) goes here.
 */
KILN_MUST_USE kiln_result kiln_ca_approve(kiln_ca *ca, const char *id, const char *approver,
					  kiln_slice sig, int64_t now,
					  struct kiln_approve_result *out, kiln_diag *d);

/* ------------------------------------------------------------ CRLs */

struct kiln_crl_result {
	struct kiln_crl_rec rec;
	kiln_buf der;         /* the signed CRL (init/cleanup by the caller) */
	char ca_name[64];
};

/*
 * Issues the next CRL of an issuing CA (by name): every certificate revoked
 * under it, sorted by serial, thisUpdate now, nextUpdate validity_s later,
 * CRL number one above the last, signed in the HSM. The CRL record and a
 * "crl-issue" event are committed before this returns (commit before
 * release). KILN_ERR_NOT_FOUND for an unknown CA, KILN_ERR_HSM_TOKEN_MISSING
 * when this process has no access to its token.
 */
KILN_MUST_USE kiln_result kiln_ca_crl_issue(kiln_ca *ca, const char *ca_name, int64_t validity_s,
					    const char *actor, struct kiln_crl_result *res,
					    kiln_diag *d);

/* ------------------------------------------------------------ OCSP */

/*
 * The delegated OCSP signer of an environment's issuing CA ("<env>-ocsp",
 * key in that environment's token, EKU OCSPSigning, id-pkix-ocsp-nocheck):
 * made and recorded (CA role "ocsp", certificate kind "ocsp", a "ca-create"
 * event) when missing. *made (may be NULL) tells whether it was.
 */
KILN_MUST_USE kiln_result kiln_ca_ocsp_signer_ensure(kiln_ca *ca, kiln_env env, const char *actor,
						     bool *made, kiln_diag *d);

/* The responder (ocsp.c); thread-safe. */
typedef struct kiln_ocsp kiln_ocsp;

/*
 * For every issuing CA whose token is open: its signer (made on first use),
 * its issuer hashes. Responses are valid validity_s (nextUpdate - thisUpdate).
 */
KILN_MUST_USE kiln_result kiln_ocsp_new(kiln_ca *ca, int64_t validity_s, const char *actor,
					kiln_ocsp **out, kiln_diag *d);
void kiln_ocsp_free(kiln_ocsp *o);
/* Signs responses (SHA-1 and SHA-256 CertIDs) for every certificate of the served CAs. */
KILN_MUST_USE kiln_result kiln_ocsp_presign_all(kiln_ocsp *o, size_t *certs, kiln_diag *d);

struct kiln_ocsp_sync {
	int64_t seq;            /* the revocation generation now reflected */
	size_t revoked;         /* responses replaced for new revocations */
	int64_t max_visible_ms; /* of those, the longest from record to published */
	size_t refreshed;       /* responses signed again before they expire */
};

/*
 * Follows the store: every revocation after the last generation seen gets
 * its responses replaced, its time to publish recorded (revocations.visible_ms
 * and a "revocation-published" event); responses past half their validity
 * are signed again. Run from one thread.
 */
KILN_MUST_USE kiln_result kiln_ocsp_sync(kiln_ocsp *o, struct kiln_ocsp_sync *res, kiln_diag *d);

struct kiln_ocsp_answer {
	int status;             /* OCSPResponseStatus: 0, 1 malformedRequest, 3 tryLater, 6 unauthorized */
	bool cached;            /* answered from the table without signing */
	bool unknown;           /* a CertID of an unknown certificate */
	bool wants_signature;   /* KILN_OCSP_TABLE: a fresh signature would answer better */
	bool nonce_dropped;     /* KILN_OCSP_TABLE: the table's answer, without the request's nonce */
	char serial[KILN_STORE_SERIAL_HEX]; /* the first CertID's serial (for logs) */
};

/* What answering may cost. */
enum kiln_ocsp_mode {
	/* Signs what the table cannot answer: a nonce, several CertIDs, an unknown serial. */
	KILN_OCSP_SIGN,
	/*
	 * The table only, no signature: a single CertID in the table is answered
	 * from it, a nonce dropped (RFC 8954 lets a responder ignore it:
	 * nonce_dropped); anything else is tryLater (3). wants_signature says a
	 * KILN_OCSP_SIGN answer would differ: the caller decides whether this
	 * client may have one (the plain listener's per-client signing budget).
	 */
	KILN_OCSP_TABLE,
};

/*
 * Answers one DER OCSPRequest: out always receives an OCSPResponse (errors
 * too: malformedRequest, unauthorized for an issuer kiln does not serve,
 * tryLater in KILN_OCSP_TABLE mode). The result is a failure for those
 * (KILN_ERR_MALFORMED, KILN_ERR_NOT_FOUND, KILN_ERR_RATE_LIMITED) so the
 * caller can record them.
 */
KILN_MUST_USE kiln_result kiln_ocsp_respond(kiln_ocsp *o, kiln_slice req, enum kiln_ocsp_mode mode,
					    kiln_buf *out, struct kiln_ocsp_answer *ans, kiln_diag *d);
/* Responses in the table. */
void kiln_ocsp_stats(kiln_ocsp *o, size_t *responses);

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
	/*
	 * The subject key the TBS must carry. With subject_spki (its DER, as the
	 * request had it) the TBS's key must be those bytes and subject_key is
	 * their decoded form (no decode per certificate); without, the lint
	 * decodes the TBS's key and it must equal subject_key when that is set.
	 */
	const EVP_PKEY *subject_key;
	kiln_slice subject_spki;
};

/*
 * RFC 5280 and profile checks on a TBSCertificate's DER, the bytes about to
 * be signed, read with kiln's strict DER reader. Each failure names the rule
 * ("lint: keyUsage must be critical").
 */
KILN_MUST_USE kiln_result kiln_lint_tbs(kiln_slice tbs, const struct kiln_lint_profile *p,
					kiln_diag *d);

#endif /* KILN_CA_H */
