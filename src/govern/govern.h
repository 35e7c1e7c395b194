/*
 * kiln govern: M-of-N approvals over sensitive operations (docs/roles.md).
 *
 * A gated operation is a request: an operation name and canonical
 * parameters, a requester and an expiry, stored with the SHA-256 of its
 * canonical bytes (the request digest). Officers approve by signing that
 * digest with the private key of their identity certificate; kiln verifies
 * each signature with OpenSSL against the stored certificate. A request may
 * run once it holds its quorum of approvals by distinct active officers other
 * than the requester, before it expires, and only once.
 *
 * Adopting the mechanism for another operation takes a few lines:
 *
 *   1. ask:   kiln_govern_request_create(store, &rules, KILN_OP_X, params, actor, now, &req, d)
 *             (or kiln_govern_tx_request_add inside the transaction that
 *             stores the pending state), and tell the user req.id;
 *   2. wait:  officers run kiln approve ID --key KEY (or POST /v1/requests/ID/approvals);
 *   3. run:   kiln_govern_check(store, id, KILN_OP_X, params, now, &req, d) before the
 *             work, then kiln_govern_tx_executed(tx, id, actor, now, d) in the same
 *             transaction as the operation's own state change.
 *
 * Every request, approval, refusal and execution is an event in the log.
 * Depends on core, crypto and store. Stateless: thread-safe.
 */
#ifndef KILN_GOVERN_H
#define KILN_GOVERN_H

#include "core/core.h"
#include "crypto/crypto.h"
#include "store/store.h"

struct json_t;

/* The gated operations (names are stable API: request records, events, docs). */
typedef enum {
	KILN_OP_POLICY_ACTIVATE = 0, /* "policy-activate" {product, version, sha256} */
	KILN_OP_IDENTITY_ADD,        /* "identity-add" {name, role, env, spki_sha256}: admin, officer */
	KILN_OP_REVOKE_BULK,         /* "revoke-bulk" {lot|station, from, to, reason}: a recall */
	KILN_OP_CA_ROTATE,           /* "ca-rotate" */
	KILN_OP_BACKUP_RESTORE,      /* "backup-restore" {sha256}: the backup file's digest */
	KILN_OP__COUNT
} kiln_op;

const char *kiln_op_name(kiln_op op);
KILN_MUST_USE kiln_result kiln_op_parse(const char *name, kiln_op *out);

/* How many officers each operation needs and how long requests stay open. */
struct kiln_govern_rules {
	unsigned quorum[KILN_OP__COUNT]; /* each >= 1 */
	int64_t ttl_s;                   /* > 0 */
};

/* The meta key that records the end of the bootstrap ("closed"). */
#define KILN_GOVERN_BOOTSTRAP_KEY "governance.bootstrap"

/* The role that approves. */
#define KILN_GOVERN_APPROVER_ROLE "officer"

/* ------------------------------------------------------------ requests */

/*
 * The canonical bytes of a request, what its digest is over (UTF-8, "\n"
 * after each line):
 *   kiln-request-v1
 *   id=<id>
 *   operation=<operation>
 *   params=<params_json>
 *   requester=<requester>
 *   expires=<decimal seconds since the epoch>
 */
KILN_MUST_USE kiln_result kiln_govern_canonical(const struct kiln_request_rec *q, kiln_buf *out);
/* SHA-256 of the canonical bytes. */
KILN_MUST_USE kiln_result kiln_govern_digest(const struct kiln_request_rec *q, uint8_t out[32]);

/*
 * The canonical text of a parameters object (sorted keys, compact, no
 * floats); j is borrowed. KILN_ERR_TOO_BIG past KILN_STORE_PARAMS_MAX.
 */
KILN_MUST_USE kiln_result kiln_govern_params(const struct json_t *j, char *out, size_t cap);

/*
 * Fills a new request record: a fresh random id, the operation and its
 * canonical parameters, requester, quorum and expiry from the rules, and the
 * digest. Nothing is stored.
 */
KILN_MUST_USE kiln_result kiln_govern_request_init(const struct kiln_govern_rules *rules,
						   kiln_op op, const struct json_t *params,
						   const char *requester, int64_t now,
						   struct kiln_request_rec *out, kiln_diag *d);
/* Stores a request made by kiln_govern_request_init and a "request" event, in tx. */
KILN_MUST_USE kiln_result kiln_govern_tx_request_add(kiln_store_tx *tx,
						     const struct kiln_request_rec *q, kiln_diag *d);
/* request_init and tx_request_add in a transaction of their own. */
KILN_MUST_USE kiln_result kiln_govern_request_create(kiln_store *s,
						     const struct kiln_govern_rules *rules,
						     kiln_op op, const struct json_t *params,
						     const char *requester, int64_t now,
						     struct kiln_request_rec *out, kiln_diag *d);

/*
 * May the request run now as operation op with these parameters? Refuses,
 * in this order: KILN_ERR_REQUEST_UNKNOWN, KILN_ERR_REQUEST_MISMATCH (another
 * operation or other parameters), KILN_ERR_REQUEST_EXECUTED,
 * KILN_ERR_REQUEST_EXPIRED, KILN_ERR_APPROVALS_MISSING. Every refusal is
 * recorded as a "request-refused" event by actor. out (may be NULL) gets the
 * request.
 */
KILN_MUST_USE kiln_result kiln_govern_check(kiln_store *s, const char *id, kiln_op op,
					    const struct json_t *params, const char *actor,
					    int64_t now, struct kiln_request_rec *out,
					    kiln_diag *d);
/*
 * In the transaction that performs the operation: marks the request
 * executed (re-checking quorum, expiry and "only once" against what the
 * transaction sees) and records an "request-executed" event.
 */
KILN_MUST_USE kiln_result kiln_govern_tx_executed(kiln_store_tx *tx, const char *id,
						  const char *actor, int64_t now, kiln_diag *d);

/*
 * Records a refusal of a governance step (type "request-refused",
 * "approval-refused", ...) as one event in its own transaction, naming the
 * reason's slug and message; returns why unchanged.
 */
KILN_MUST_USE kiln_result kiln_govern_refused(kiln_store *s, const char *type, const char *actor,
					      const char *id, kiln_result why, const kiln_diag *d);

/* ------------------------------------------------------------ approvals */

/*
 * Signs a digest as an approval: the signature kiln_govern_verify accepts
 * (ECDSA and RSA over SHA-256 of the 32 digest bytes, Ed25519 over the 32
 * bytes), as `openssl dgst -sha256 -sign KEY` makes for EC and RSA keys.
 */
KILN_MUST_USE kiln_result kiln_govern_sign(EVP_PKEY *key, const uint8_t digest[32],
					   kiln_buf *sig, kiln_diag *d);
/* Verifies an approval signature with the public key of cert. */
KILN_MUST_USE kiln_result kiln_govern_verify(const X509 *cert, const uint8_t digest[32],
					     kiln_slice sig, kiln_diag *d);

struct kiln_approve_result {
	int64_t approvals;      /* counted approvals after this one */
	int64_t quorum;
	bool executed;          /* the operation ran in the same transaction (policy-activate,
				   revoke-bulk) */
	int64_t affected;       /* what the executor reports (revoke-bulk: certificates revoked) */
	char operation[32];
};

/*
 * An operation that runs in the transaction of the approval that completes
 * its quorum, supplied by the module that owns the operation's state (the CA
 * for revoke-bulk): govern cannot depend on it. prepare runs before that
 * transaction (reads allowed; a refusal refuses the approval), run inside it
 * (tx operations only), and then govern marks the request executed in the
 * same transaction. ctx is the executor's; affected is copied to the result.
 */
struct kiln_govern_exec {
	kiln_op op;
	kiln_result (*prepare)(void *ctx, const struct kiln_request_rec *q, kiln_diag *d);
	kiln_result (*run)(kiln_store_tx *tx, void *ctx, const struct kiln_request_rec *q,
			   const char *approver, int64_t now, int64_t *affected, kiln_diag *d);
	void *ctx;
};

/*
 * Records approver's approval of request id: approver must be an active
 * officer (KILN_ERR_APPROVAL_ROLE), not the requester (KILN_ERR_APPROVAL_SELF),
 * and sig must verify over the request's digest with approver's identity
 * certificate (KILN_ERR_APPROVAL_SIGNATURE); the request must be pending and
 * unexpired and approver must not have approved it before. The approval and
 * its "approval" event are one transaction. A policy-activate request that
 * reaches its quorum activates the policy version in that same transaction.
 * Every refusal is an "approval-refused" event and changes nothing else.
 */
KILN_MUST_USE kiln_result kiln_govern_approve(kiln_store *s, const char *id, const char *approver,
					      kiln_slice sig, int64_t now,
					      struct kiln_approve_result *out, kiln_diag *d);
/*
 * kiln_govern_approve with an executor for ex->op (NULL: none). A
 * revoke-bulk request cannot reach its quorum without its executor: such an
 * approval is refused (KILN_ERR_INTERNAL), so a recall never sits approved
 * and unexecuted.
 */
KILN_MUST_USE kiln_result kiln_govern_approve_exec(kiln_store *s, const char *id,
						   const char *approver, kiln_slice sig,
						   int64_t now, const struct kiln_govern_exec *ex,
						   struct kiln_approve_result *out, kiln_diag *d);

/* The identity whose certificate holds the public key of key (KILN_ERR_NOT_FOUND). */
KILN_MUST_USE kiln_result kiln_govern_signer(kiln_store *s, const EVP_PKEY *key,
					     struct kiln_identity_rec *out, kiln_diag *d);

/* ------------------------------------------------------------ presentation */

struct json_t;
/* "executed", "expired" (at now), "approved" (quorum reached) or "pending". */
const char *kiln_govern_request_state(const struct kiln_request_rec *q, int64_t now);
/*
 * A request as JSON, as `kiln request` and GET /v1/requests show it: id,
 * operation, params, digest (hex), requester, created, expires, status,
 * approvals, quorum. NULL when out of memory. Caller json_decref.
 */
struct json_t *kiln_govern_request_json(const struct kiln_request_rec *q, int64_t now);

/* ------------------------------------------------------------ bootstrap */

/*
 * Does adding an identity with role need an approved request? Only admin and
 * officer additions do, and only once the deployment has at least
 * quorum[KILN_OP_IDENTITY_ADD] active officers: before that (the bootstrap)
 * nobody could approve, so they go through and are recorded as "bootstrap"
 * events (see kiln_govern_tx_bootstrap). The window closes for good when the
 * quorum-th officer is added (meta KILN_GOVERN_BOOTSTRAP_KEY = "closed"):
 * revoking officers later does not reopen it.
 */
KILN_MUST_USE kiln_result kiln_govern_identity_gated(kiln_store *s,
						     const struct kiln_govern_rules *rules,
						     const char *role, bool *gated, kiln_diag *d);
/*
 * Inside the transaction that adds an ungated admin or officer: re-checks
 * that the bootstrap window is still open (fewer active officers than the
 * quorum, KILN_ERR_APPROVALS_MISSING otherwise) and records a "bootstrap" event.
 */
KILN_MUST_USE kiln_result kiln_govern_tx_bootstrap(kiln_store_tx *tx,
						   const struct kiln_govern_rules *rules,
						   const char *name, const char *role,
						   const char *actor, kiln_diag *d);

#endif /* KILN_GOVERN_H */
