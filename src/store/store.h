/*
 * kiln store: the inventory. Products and their policy versions, CAs,
 * certificates, devices, identities, events (the audit trail), and the
 * factory line's batches and provisioning nonces.
 *
 * Writes go through kiln_store_write(): the caller's function runs inside a
 * transaction and only typed operations (kiln_store_tx_*) can be used there.
 * With group commit on, concurrent writers are batched: each writer's work
 * runs in its own SAVEPOINT (so one writer's failure does not undo another's)
 * and the batch is made durable by a single COMMIT. kiln_store_write()
 * returns only after that COMMIT is durable: commit before release.
 *
 * The SQLite backend uses WAL, synchronous=FULL, foreign keys, a busy
 * timeout and versioned migrations (PRAGMA user_version).
 *
 * Depends on core only: environments, algorithms and statuses are strings
 * here. Thread-safe: one kiln_store may be used from many threads.
 */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include "core/core.h"

typedef struct kiln_store kiln_store;
typedef struct kiln_store_tx kiln_store_tx;

struct kiln_store_opts {
	const char *path;         /* the SQLite file */
	bool create;              /* create the file if missing (else KILN_ERR_NOT_FOUND) */
	unsigned busy_timeout_ms; /* 0 means 5000 */
	bool group_commit;        /* batch concurrent writers into one COMMIT */
	unsigned readers;         /* read connection pool size; 0 means 4 */
	const kiln_log *log;      /* may be NULL; must outlive the store */
};

KILN_MUST_USE kiln_result kiln_store_open(const struct kiln_store_opts *opts, kiln_store **out,
					  kiln_diag *d);
/*
 * Finishes queued writes, then closes. NULL-safe. Writers already inside
 * kiln_store_write() complete (their COMMIT included) before the store goes
 * away; the caller must not start new calls once close has begun.
 */
void kiln_store_close(kiln_store *s);
/* The schema version this kiln writes (migrations bring older files up to it). */
int kiln_store_schema_version(void);

/* ------------------------------------------------------------ records */

#define KILN_STORE_NAME_MAX 128
#define KILN_STORE_SERIAL_HEX 41 /* up to 20 bytes of serial number, lower-case hex */
/* Ceiling on the rows a list call returns and on blobs/texts read back. */
#define KILN_STORE_LIST_MAX 100000
#define KILN_STORE_BLOB_MAX ((size_t)1024 * 1024)

/*
 * Records are plain data. Zero-initialise one before filling it (= { 0 }).
 * String fields must be NUL-terminated inside their arrays (checked). A read
 * overwrites its out record without freeing it: clean up a record before
 * reusing it for another read.
 */

struct kiln_ca_rec {
	int64_t id;                       /* assigned on insert */
	char name[64];                    /* "production-issuing" */
	char env[16];                     /* "production", "test", "service" */
	char role[16];                    /* "root", "issuing" */
	char alg[16];                     /* "p256", ... */
	char token[32];                   /* token label holding the key */
	char key_label[64];
	uint8_t key_id[32];
	size_t key_id_len;
	int64_t parent_id;                /* 0 for a root */
	char serial[KILN_STORE_SERIAL_HEX];
	char subject[KILN_STORE_NAME_MAX * 2];
	int64_t not_before, not_after, created;
	uint8_t *cert_der;                /* owned by the record (heap) */
	size_t cert_len;
	/*
	 * Schema 8 (CA rotation): the generation of an environment's issuing CA
	 * (1 from kiln init, 2, 3, ... from kiln ca rotate; 1 for roots and OCSP
	 * signers) and its status: "active", or "retired" once a newer
	 * generation issues (a retired CA still signs CRLs and OCSP for what it
	 * issued). Empty status on insert: "active"; generation 0: 1.
	 */
	int64_t generation;
	char status[16];
};

struct kiln_policy_rec {
	char product[64];
	int64_t version;                  /* 1, 2, ... per product; assigned on insert */
	char env[16];
	char status[16];                  /* "active", "pending", "superseded" */
	uint8_t sha256[32];
	char *yaml;                       /* owned (heap), NUL-terminated */
	size_t yaml_len;
	char added_by[KILN_STORE_NAME_MAX];
	int64_t created;
};

struct kiln_cert_rec {
	char serial[KILN_STORE_SERIAL_HEX];
	int64_t ca_id;
	char kind[16];                    /* "device", "identity", "ca", "ocsp", "tls" */
	char env[16];
	char product[64];                 /* "" unless kind is device */
	int64_t device_id;                /* 0 unless kind is device (the device row's id) */
	char subject[KILN_STORE_NAME_MAX * 2];
	uint8_t spki_sha256[32];
	int64_t not_before, not_after, issued;
	char status[16];                  /* "valid", "revoked" */
	int64_t revoked_at;               /* read only: 0 unless revoked */
	char reason[24];                  /* read only: RFC 5280 reason name, "" unless revoked */
	const uint8_t *der;               /* borrowed on insert; owned (heap) when read */
	size_t der_len;
	/*
	 * Private: the block a read allocated for der. kiln_cert_rec_cleanup
	 * frees this, never der itself, so cleaning up a record that only holds
	 * a borrowed der (one filled for insert) is safe and frees nothing.
	 */
	uint8_t *der_heap;
};

struct kiln_device_rec {
	int64_t id;                       /* assigned on insert */
	char product[64];
	char serial[KILN_STORE_NAME_MAX]; /* the device's own serial number */
	int64_t policy_version;
	char lot[64];                     /* "" when issued outside a batch */
	char station[KILN_STORE_NAME_MAX];
	char operator_name[KILN_STORE_NAME_MAX];
	char firmware_version[64];
	char firmware_sha256[65];         /* hex, "" when unknown */
	char attestation_sha256[65];      /* hex digest of the evidence, "" when none */
	char components_json[1024];       /* {"soc":"..","pcb":"..","se":".."} or "" */
	char cert_serial[KILN_STORE_SERIAL_HEX];
	char status[16];                  /* "active", "revoked", "retired" */
	int64_t created;
	int64_t replaces;                 /* the device record this one replaced (re-provisioning), 0 */
	bool live;                        /* false once a re-provisioning replaced this record */
};

/* An engineer's grant: the next attested provisioning of this device's serial replaces it. */
struct kiln_reprovision_rec {
	int64_t device_id;
	char reason[32];                  /* "keyCompromise" or "superseded" */
	char opened_by[KILN_STORE_NAME_MAX];
	int64_t created;
	int64_t used_by;                  /* the device record that replaced it; 0 while open */
};

struct kiln_identity_rec {
	char name[KILN_STORE_NAME_MAX];
	char role[16];                    /* admin, officer, engineer, operator, station, auditor */
	char env[16];                     /* environment the identity may act in: production, test or "" (both) */
	char cert_serial[KILN_STORE_SERIAL_HEX];
	char status[16];                  /* "active", "revoked" */
	int64_t created;
};

struct kiln_event_rec {
	int64_t seq;                      /* log index, assigned on insert (0, 1, 2, ...) */
	int64_t time;
	char type[32];                    /* "issuance", "rejection", "policy-add", ... */
	char actor[KILN_STORE_NAME_MAX];  /* identity or "cli:<user>" */
	char subject[KILN_STORE_NAME_MAX];/* what it is about: serial, product, CA name */
	char *detail_json;                /* owned (heap) when read; borrowed on insert; JSON object */
	/* Private: the block a read allocated for detail_json (freed by cleanup, like der_heap). */
	char *detail_heap;
};

/* A production lot: a planned quantity of one product, the issuance budget. */
struct kiln_batch_rec {
	char lot[64];                     /* [A-Za-z0-9._-]{1,63} */
	char product[64];
	int64_t quantity;                 /* planned: 1 .. 10^9 */
	int64_t issued;                   /* certificates issued so far (<= quantity) */
	char line[64];                    /* production line, "" when not given */
	char station[KILN_STORE_NAME_MAX];/* station identity the lot is assigned to, "" = any station */
	char status[16];                  /* "open", "closed" */
	char opened_by[KILN_STORE_NAME_MAX];
	int64_t created;
	int64_t closed;                   /* 0 while open */
};

/*
 * A provisioning nonce: only its SHA-256 is stored (the nonce itself is a
 * secret until used). Bound to the station identity, the lot and an expiry;
 * used once, by one request, whose digest and certificate are kept so that
 * the same request sent again gets the same answer.
 */
struct kiln_nonce_rec {
	uint8_t nonce_sha256[32];
	char station[KILN_STORE_NAME_MAX];
	char lot[64];
	int64_t issued;
	int64_t expires;
	int64_t used;                     /* 0 while unused */
	uint8_t request_sha256[32];       /* meaningful once used */
	char cert_serial[KILN_STORE_SERIAL_HEX]; /* meaningful once used */
};

void kiln_ca_rec_cleanup(struct kiln_ca_rec *r);
void kiln_policy_rec_cleanup(struct kiln_policy_rec *r);
/*
 * Cleanups free what the record owns and leave it empty, ready for reuse.
 * NULL-safe, idempotent. cert and event records free only the blocks a read
 * allocated (der_heap, detail_heap): a borrowed der or detail_json is left alone.
 */
void kiln_cert_rec_cleanup(struct kiln_cert_rec *r);  /* frees der if it was read */
void kiln_event_rec_cleanup(struct kiln_event_rec *r);

/* ------------------------------------------------------------ writes */

/*
 * Runs fn(tx, ctx) in a transaction. If fn fails, everything it did is
 * rolled back and its result is returned. If it succeeds, the return waits
 * until the COMMIT is durable. fn may run on another thread (the committer)
 * and must not block on anything but tx operations. Calling kiln_store_write
 * from inside fn is refused (KILN_ERR_INTERNAL); reads (kiln_store_*_get)
 * inside fn see the last committed state, not fn's own uncommitted writes.
 * Each typed operation is all-or-nothing: when one fails, fn may go on and
 * what the operation had begun is already undone. With group commit, a failed
 * COMMIT (or a batch the database abandons) fails every write in the batch
 * that had succeeded with KILN_ERR_STORE; writes that failed on their own
 * keep their own error.
 */
typedef kiln_result (*kiln_store_tx_fn)(kiln_store_tx *tx, void *ctx, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_write(kiln_store *s, kiln_store_tx_fn fn, void *ctx,
					   kiln_diag *d);
/*
 * Same, except that the COMMIT need not be on disk when it returns: it is
 * visible to every reader, and the next durable write (of anyone) carries
 * it to the disk; a crash before that may lose it. The log is sequential, so
 * a crash never keeps a later write and loses this one. For state whose
 * loss is harmless and whose write is frequent: a provisioning nonce (lost,
 * the device asks for another; its use is recorded by a durable write).
 */
KILN_MUST_USE kiln_result kiln_store_write_lazy(kiln_store *s, kiln_store_tx_fn fn, void *ctx,
						kiln_diag *d);

/* Typed operations inside a transaction. Duplicates give KILN_ERR_DUPLICATE naming the field. */
/*
 * Retires an active issuing CA (status "retired": no longer issues; its
 * certificates, CRLs and OCSP stay). KILN_ERR_NOT_FOUND unless id names an
 * active issuing CA. The schema allows one active issuing CA per environment
 * and never un-retires one.
 */
KILN_MUST_USE kiln_result kiln_store_tx_ca_retire(kiln_store_tx *tx, int64_t id, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_tx_ca_add(kiln_store_tx *tx, struct kiln_ca_rec *ca,
					       kiln_diag *d);
/*
 * Inserts a new version (max+1) for the product; the product row is created on first use.
 * p->status "" or "pending" inserts a pending version; "active" inserts it and
 * activates it (as kiln_store_tx_policy_activate) in the same transaction.
 * A product's environment never changes: a policy whose env differs from the
 * product's fails with KILN_ERR_POLICY_ENV. On success p->version, p->status
 * and p->created (when it was 0) are filled in.
 */
KILN_MUST_USE kiln_result kiln_store_tx_policy_add(kiln_store_tx *tx, struct kiln_policy_rec *p,
						   kiln_diag *d);
/* Marks version active and every other version of the product superseded. */
KILN_MUST_USE kiln_result kiln_store_tx_policy_activate(kiln_store_tx *tx, const char *product,
							int64_t version, kiln_diag *d);
/*
 * dev->status "" means "active"; created 0 means now. The product must have
 * policy version dev->policy_version (else KILN_ERR_UNKNOWN_PRODUCT).
 * On success dev->id (and defaulted fields) are filled in.
 */
KILN_MUST_USE kiln_result kiln_store_tx_device_add(kiln_store_tx *tx, struct kiln_device_rec *dev,
						   kiln_diag *d);
/*
 * c->serial is lower-case hex; c->der is required; status "" means "valid",
 * issued 0 means now. The certificate's env must be its CA's (and its
 * product's), else KILN_ERR_POLICY_ENV.
 */
KILN_MUST_USE kiln_result kiln_store_tx_cert_add(kiln_store_tx *tx, const struct kiln_cert_rec *c,
						 kiln_diag *d);
/*
 * Has a device certificate (any product, any status) ever certified this
 * public key? Sees the writes of the current batch too. When found, holder
 * (KILN_STORE_SERIAL_HEX bytes) receives that certificate's serial.
 */
KILN_MUST_USE kiln_result kiln_store_tx_key_seen(kiln_store_tx *tx, const uint8_t spki_sha256[32],
						 bool *seen, char *holder, kiln_diag *d);
/*
 * The version of product's active policy as this transaction sees it, 0 when
 * it has none: what an issuance checks its (possibly cached) policy against
 * in the transaction that records it.
 */
KILN_MUST_USE kiln_result kiln_store_tx_policy_version(kiln_store_tx *tx, const char *product,
						       int64_t *version, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_tx_identity_add(kiln_store_tx *tx,
						     const struct kiln_identity_rec *id,
						     kiln_diag *d);
/*
 * Appends an event; ev->seq receives its index (and ev->time now, when it was 0).
 * detail_json NULL means "{}"; anything but a JSON object is KILN_ERR_MALFORMED.
 */
KILN_MUST_USE kiln_result kiln_store_tx_event_add(kiln_store_tx *tx, struct kiln_event_rec *ev,
						  kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_tx_meta_set(kiln_store_tx *tx, const char *key,
						 const char *value, kiln_diag *d);

/*
 * The factory line. Each operation is one statement on the writer (plus, when
 * it refuses, a read that says why), so concurrent writers, grouped or not,
 * can never overdraw a batch or use a nonce twice.
 *
 * Opens a batch. b->lot ([A-Za-z0-9._-]{1,63}), b->product, b->quantity
 * (1 .. 10^9) and b->opened_by are required; status "" or "open", issued and
 * closed 0; created 0 means now. The product must exist
 * (KILN_ERR_UNKNOWN_PRODUCT "product X has no policy"); a lot is opened once
 * (KILN_ERR_DUPLICATE "batch LOT already exists"). On success b->status and
 * b->created are filled in.
 */
KILN_MUST_USE kiln_result kiln_store_tx_batch_add(kiln_store_tx *tx, struct kiln_batch_rec *b,
						  kiln_diag *d);
/*
 * Closes an open batch at when (0: now). KILN_ERR_BATCH_UNKNOWN "no batch LOT",
 * KILN_ERR_BATCH_CLOSED "batch LOT is already closed".
 */
KILN_MUST_USE kiln_result kiln_store_tx_batch_close(kiln_store_tx *tx, const char *lot,
						    int64_t when, kiln_diag *d);
/*
 * Takes one unit of the batch's quantity for a certificate of product. When
 * nothing was taken, says why, in this order: KILN_ERR_BATCH_UNKNOWN "no batch
 * LOT"; KILN_ERR_ARG "batch LOT is for product P, not Q"; KILN_ERR_BATCH_CLOSED
 * "batch LOT is closed"; KILN_ERR_BATCH_QUOTA "batch LOT has issued all N of
 * its quantity". issued (may be NULL) receives the batch's issued count
 * including this one. Rolled back with the caller's fn like every tx operation.
 */
KILN_MUST_USE kiln_result kiln_store_tx_batch_consume(kiln_store_tx *tx, const char *lot,
						      const char *product, int64_t *issued,
						      kiln_diag *d);
/*
 * Records a nonce (by its SHA-256). n->station and n->lot are required,
 * n->expires must be after n->issued (issued 0: now), n->used 0 and
 * n->cert_serial "". The lot must exist (KILN_ERR_BATCH_UNKNOWN) and be open
 * (KILN_ERR_BATCH_CLOSED "batch LOT is closed"); a nonce is recorded once
 * (KILN_ERR_DUPLICATE). On success n->issued is filled in.
 */
KILN_MUST_USE kiln_result kiln_store_tx_nonce_add(kiln_store_tx *tx, struct kiln_nonce_rec *n,
						  kiln_diag *d);
/*
 * Uses a nonce once, at now (0: kiln_now()), for the request with digest
 * request_sha256 (may be NULL) that got certificate cert_serial (lower-case
 * hex; NULL or "" when none). A nonce is usable while now < expires. When it
 * cannot be used, says why, in this order: KILN_ERR_NONCE_UNKNOWN "unknown
 * nonce"; KILN_ERR_NONCE_STATION "the nonce was issued to station A, not B";
 * KILN_ERR_NONCE_REPLAY "the nonce was already used"; KILN_ERR_NONCE_EXPIRED
 * "the nonce expired at 2026-11-21T12:00:00Z".
 * out (may be NULL) receives the nonce's row: after a successful use, with
 * this use recorded; after a refusal other than unknown, as it is stored (on
 * KILN_ERR_NONCE_REPLAY its request_sha256 and cert_serial tell whether the
 * same request is being sent again). Untouched when the nonce is unknown.
 */
KILN_MUST_USE kiln_result kiln_store_tx_nonce_use(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
						  const char *station, int64_t now,
						  const uint8_t *request_sha256,
						  const char *cert_serial, struct kiln_nonce_rec *out,
						  kiln_diag *d);

/*
 * Lifecycle. A renewal points an active device at its new certificate
 * (cert_serial, lower-case hex, already added with kiln_store_tx_cert_add):
 * KILN_ERR_NOT_FOUND "no device ID", KILN_ERR_DEVICE_RETIRED, KILN_ERR_CERT_REVOKED
 * "device ID is revoked" when the device is not active.
 */
KILN_MUST_USE kiln_result kiln_store_tx_device_set_cert(kiln_store_tx *tx, int64_t device_id,
							const char *cert_serial, kiln_diag *d);
/*
 * Marks a device retired (whatever its certificate's state). KILN_ERR_NOT_FOUND
 * "no device ID"; KILN_ERR_DEVICE_RETIRED "device ID is already retired".
 */
KILN_MUST_USE kiln_result kiln_store_tx_device_retire(kiln_store_tx *tx, int64_t device_id,
						      kiln_diag *d);

/*
 * Revocation. Marks certificate SERIAL revoked at WHEN (0: now) for REASON, an RFC 5280 reason
 * name ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
 * "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"), and the
 * device it certifies (if any) 'revoked'. KILN_ERR_NOT_FOUND "no certificate S"; a
 * certificate already revoked: KILN_ERR_ALREADY_REVOKED "certificate S was already revoked
 * at T". A bad serial or reason is KILN_ERR_ARG.
 *
 * "The device it certifies" is the device whose current certificate (devices.cert_serial) is
 * SERIAL and that is still active: revoking an older certificate of a re-provisioned device
 * leaves the device active, and a retired device stays retired.
 * Every revocation, by this operation or any other path, appends to the store's revocation
 * sequence (see kiln_store_revocation_seq) in the same transaction.
 */
KILN_MUST_USE kiln_result kiln_store_tx_cert_revoke(kiln_store_tx *tx, const char *serial,
						    const char *reason, int64_t when, kiln_diag *d);
/* true when reason is one of the RFC 5280 reason names above; *code (may be NULL) its CRLReason. */
bool kiln_store_reason_ok(const char *reason, int *code);

/* What a CRL of a CA was: the number only grows (KILN_ERR_ARG otherwise). */
struct kiln_crl_rec {
	int64_t ca_id;
	int64_t number;          /* CRLNumber, >= 1 */
	int64_t this_update, next_update;
	int64_t revocation_seq;  /* the revocation generation the CRL reflects */
	int64_t entries;         /* revoked certificates listed */
	uint8_t sha256[32];      /* of the CRL DER (the DER itself is a file) */
};

KILN_MUST_USE kiln_result kiln_store_tx_crl_add(kiln_store_tx *tx, const struct kiln_crl_rec *c,
						kiln_diag *d);
/* Records how long a revocation took to show in an OCSP response (ms; KILN_ERR_NOT_FOUND). */
KILN_MUST_USE kiln_result kiln_store_tx_revocation_visible(kiln_store_tx *tx, const char *serial,
							   int64_t ms, kiln_diag *d);
/*
 * Re-provisioning. Opens a grant for a live device that is not retired:
 * KILN_ERR_NOT_FOUND "no device ID", KILN_ERR_DEVICE_RETIRED, KILN_ERR_DUPLICATE
 * "a re-provisioning of device ID is already open" (or "device ID was replaced by
 * device N"). reason is "keyCompromise" or "superseded" (else KILN_ERR_ARG).
 */
KILN_MUST_USE kiln_result kiln_store_tx_reprovision_open(kiln_store_tx *tx,
							 const struct kiln_reprovision_rec *g,
							 kiln_diag *d);
/*
 * Replaces device old_id by a new record (dev, as for kiln_store_tx_device_add,
 * with dev->replaces set to old_id): the old record stops being live, the new
 * one is inserted and the open grant is marked used by it, all or nothing.
 * KILN_ERR_NOT_FOUND "no open re-provisioning of device ID".
 */
KILN_MUST_USE kiln_result kiln_store_tx_device_replace(kiln_store_tx *tx, int64_t old_id,
						       struct kiln_device_rec *dev, kiln_diag *d);
/* The open grant for the live device product/serial (KILN_ERR_NOT_FOUND when none). */
KILN_MUST_USE kiln_result kiln_store_reprovision_open_get(kiln_store *s, const char *product,
							  const char *serial,
							  struct kiln_reprovision_rec *out,
							  kiln_diag *d);
/*
 * Records the TPM credential activation made for a nonce: the SHA-256
 * binding of its secret (attest.h), never the secret. Once per nonce
 * (KILN_ERR_DUPLICATE); the nonce must exist (KILN_ERR_NONCE_UNKNOWN).
 */
KILN_MUST_USE kiln_result kiln_store_tx_activation_add(kiln_store_tx *tx,
						       const uint8_t nonce_sha256[32],
						       const uint8_t binding_sha256[32],
						       kiln_diag *d);

/* Convenience: one event in its own transaction (rejections, failures). */
KILN_MUST_USE kiln_result kiln_store_event_add(kiln_store *s, struct kiln_event_rec *ev,
					       kiln_diag *d);

/* ------------------------------------------------------------ reads */

/* Values are copied out; buffers the records own must be cleaned up. */
KILN_MUST_USE kiln_result kiln_store_meta_get(kiln_store *s, const char *key, char *out,
					      size_t cap, kiln_diag *d); /* KILN_ERR_NOT_FOUND */
KILN_MUST_USE kiln_result kiln_store_ca_get(kiln_store *s, const char *name,
					    struct kiln_ca_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_ca_get_id(kiln_store *s, int64_t id, struct kiln_ca_rec *out,
					       kiln_diag *d);
/* All CAs ordered by id; caller frees with kiln_store_ca_list_free. */
KILN_MUST_USE kiln_result kiln_store_ca_list(kiln_store *s, struct kiln_ca_rec **out, size_t *n,
					     kiln_diag *d);
void kiln_store_ca_list_free(struct kiln_ca_rec *list, size_t n);

/* The active version of a product's policy (KILN_ERR_NOT_FOUND when none). */
KILN_MUST_USE kiln_result kiln_store_policy_active(kiln_store *s, const char *product,
						   struct kiln_policy_rec *out, kiln_diag *d);
/*
 * The same without its text (yaml NULL): version and digest, which is what a
 * cache of parsed policies needs to tell whether it holds the active one.
 */
KILN_MUST_USE kiln_result kiln_store_policy_active_head(kiln_store *s, const char *product,
							struct kiln_policy_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_policy_get(kiln_store *s, const char *product,
						int64_t version, struct kiln_policy_rec *out,
						kiln_diag *d);
/* Every version of every product (yaml left NULL), ordered by product, version. */
KILN_MUST_USE kiln_result kiln_store_policy_list(kiln_store *s, struct kiln_policy_rec **out,
						 size_t *n, kiln_diag *d);
void kiln_store_policy_list_free(struct kiln_policy_rec *list, size_t n);

KILN_MUST_USE kiln_result kiln_store_cert_get(kiln_store *s, const char *serial,
					      struct kiln_cert_rec *out, kiln_diag *d);
/* true when a certificate with this serial exists (any CA). */
KILN_MUST_USE kiln_result kiln_store_cert_exists(kiln_store *s, const char *serial, bool *out,
						 kiln_diag *d);

/*
 * By numeric id ("42") or by "<product>/<serial>" or by device serial alone when unique.
 * A serial found in several products, or a number that is both one device's
 * id and another device's serial, is KILN_ERR_ARG: use product/serial.
 */
KILN_MUST_USE kiln_result kiln_store_device_get(kiln_store *s, const char *ref,
						struct kiln_device_rec *out, kiln_diag *d);
/*
 * Devices, newest first; product NULL for all; at most limit (0 = no limit,
 * but more than KILN_STORE_LIST_MAX rows is KILN_ERR_TOO_BIG: page instead).
 * Caller frees with kiln_store_device_list_free.
 */
KILN_MUST_USE kiln_result kiln_store_device_list(kiln_store *s, const char *product, size_t limit,
						 struct kiln_device_rec **out, size_t *n,
						 kiln_diag *d);

KILN_MUST_USE kiln_result kiln_store_identity_get(kiln_store *s, const char *name,
						  struct kiln_identity_rec *out, kiln_diag *d);
/* The identity a client certificate (by serial) is bound to (KILN_ERR_NOT_FOUND). */
KILN_MUST_USE kiln_result kiln_store_identity_by_cert(kiln_store *s, const char *cert_serial,
						      struct kiln_identity_rec *out, kiln_diag *d);

/* KILN_ERR_BATCH_UNKNOWN "no batch LOT" when there is none. */
KILN_MUST_USE kiln_result kiln_store_batch_get(kiln_store *s, const char *lot,
					       struct kiln_batch_rec *out, kiln_diag *d);
/*
 * Batches, newest first (by created, then by insertion), product NULL for
 * all; caller frees with free(). More than KILN_STORE_LIST_MAX rows is
 * KILN_ERR_TOO_BIG, never a cut list.
 */
KILN_MUST_USE kiln_result kiln_store_batch_list(kiln_store *s, const char *product,
						struct kiln_batch_rec **out, size_t *n,
						kiln_diag *d);
/* The activation binding for a nonce; KILN_ERR_NOT_FOUND when none was made. */
KILN_MUST_USE kiln_result kiln_store_activation_get(kiln_store *s, const uint8_t nonce_sha256[32],
						    uint8_t binding_sha256[32], kiln_diag *d);
/* KILN_ERR_NONCE_UNKNOWN "unknown nonce" when there is none. */
KILN_MUST_USE kiln_result kiln_store_nonce_get(kiln_store *s, const uint8_t nonce_sha256[32],
					       struct kiln_nonce_rec *out, kiln_diag *d);

/*
 * Events with seq >= from, at most limit (0 as for devices), in order; caller
 * frees with kiln_store_event_list_free.
 */
KILN_MUST_USE kiln_result kiln_store_event_list(kiln_store *s, int64_t from, size_t limit,
						struct kiln_event_rec **out, size_t *n,
						kiln_diag *d);
void kiln_store_event_list_free(struct kiln_event_rec *list, size_t n);

/* ------------------------------------------------------------ revocation reads */

/* The revocation generation: the seq of the latest revocation, 0 when there is none. */
KILN_MUST_USE kiln_result kiln_store_revocation_seq(kiln_store *s, int64_t *out, kiln_diag *d);

struct kiln_revoked {
	char serial[KILN_STORE_SERIAL_HEX];
	int64_t ca_id;
	int64_t revoked_at;
	int reason;  /* RFC 5280 CRLReason code */
	int64_t seq; /* its place in the revocation sequence; 0 for a valid certificate */
	int64_t recorded_ms; /* when the revocation was recorded (ms since 1970) */
	bool revoked;        /* false: a valid certificate (kiln_store_cert_status_each) */
};

/* Called once per row; an error stops the walk and is returned. */
typedef kiln_result (*kiln_store_revoked_fn)(void *ctx, const struct kiln_revoked *r,
					     kiln_diag *d);
/*
 * Every revoked certificate of CA ca_id (0: of every CA) whose seq is above
 * after_seq, in serial order (lower-case hex, shorter first: numeric order).
 * No row cap: a CRL lists every one.
 */
KILN_MUST_USE kiln_result kiln_store_revoked_each(kiln_store *s, int64_t ca_id, int64_t after_seq,
						  kiln_store_revoked_fn fn, void *ctx,
						  kiln_diag *d);

/*
 * Every certificate issued by CA ca_id, valid or revoked (valid ones with
 * revoked false, reason -1), in no particular order: what an OCSP responder
 * pre-signs.
 */
KILN_MUST_USE kiln_result kiln_store_cert_status_each(kiln_store *s, int64_t ca_id,
						      kiln_store_revoked_fn fn, void *ctx,
						      kiln_diag *d);

/* Which certificates a bulk revocation (a recall) takes. Set fields narrow the set. */
struct kiln_cert_filter {
	int64_t device_id;   /* > 0: certificates of this device */
	const char *lot;     /* certificates of devices made in this lot */
	const char *station; /* certificates of devices provisioned by this station */
	int64_t from, to;    /* issued in [from, to); 0: unbounded */
	bool valid_only;     /* skip certificates already revoked */
};

/*
 * Serials of device certificates matching f (at least one of device_id, lot
 * or station is required), in serial order; at most KILN_STORE_LIST_MAX
 * (more is KILN_ERR_TOO_BIG). Caller frees *out with free().
 */
/*
 * kiln_store_cert_select inside a transaction, on its connection: the
 * certificates as the transaction sees them (a recall executed in the
 * approval's transaction revokes exactly what matches at its commit).
 */
KILN_MUST_USE kiln_result kiln_store_tx_cert_select(kiln_store_tx *tx,
						    const struct kiln_cert_filter *f,
						    char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						    kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_cert_select(kiln_store *s, const struct kiln_cert_filter *f,
						 char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						 kiln_diag *d);
/*
 * When a revocation was recorded (ms since 1970) and how long it took to show
 * in an OCSP response (*visible_ms -1 while kiln serve has not published it).
 * KILN_ERR_NOT_FOUND when the certificate is not revoked.
 */
KILN_MUST_USE kiln_result kiln_store_revocation_timing(kiln_store *s, const char *serial,
						       int64_t *recorded_ms, int64_t *visible_ms,
						       kiln_diag *d);
/* The latest CRL recorded for a CA; *found false when none. */
KILN_MUST_USE kiln_result kiln_store_crl_last(kiln_store *s, int64_t ca_id,
					      struct kiln_crl_rec *out, bool *found, kiln_diag *d);

/* Row counts, for tests and the dashboard: "certificates", "devices", "events", "batches", ... */
KILN_MUST_USE kiln_result kiln_store_count(kiln_store *s, const char *table, int64_t *out,
					   kiln_diag *d);

/* ------------------------------------------------------------ additions */

/* Frees a list from kiln_store_device_list (device records own no heap fields). NULL-safe. */
void kiln_store_device_list_free(struct kiln_device_rec *list);

/*
 * Write-path statistics since open, for tests, benchmarks and metrics.
 * With group commit, commits < jobs shows that writers were batched.
 */
struct kiln_store_stats {
	uint64_t commits;   /* write transactions that reached COMMIT successfully */
	uint64_t jobs;      /* kiln_store_write calls whose fn ran (ok or failed) */
	uint64_t failed;    /* of those, how many returned an error to their caller */
	uint64_t max_batch; /* most jobs in one transaction */
	uint64_t queued;    /* jobs waiting for the committer right now */
};

void kiln_store_stats(kiln_store *s, struct kiln_store_stats *out);

/* ------------------------------------------------------------ ledger */

/*
 * The Merkle log's derived tables (src/ledger fills and reads them). A node is
 * the hash of a complete subtree: level 0 holds leaf hashes, level L the
 * subtree over leaves [index * 2^L, (index + 1) * 2^L). Derived data: the
 * ledger rebuilds it from the events and never trusts it without a signed root.
 */
struct kiln_ledger_node {
	unsigned level;                   /* 0 .. 62 */
	int64_t index;
	uint8_t hash[32];
};

#define KILN_CHECKPOINT_NOTE_MAX 1024

/* A signed checkpoint: the tree size, its root and the signed note text. */
struct kiln_checkpoint_rec {
	int64_t size;
	uint8_t root[32];
	int64_t time;
	char note[KILN_CHECKPOINT_NOTE_MAX]; /* NUL-terminated signed-note text */
};

/* Stores nodes (a node already stored is left as it is). At most 1 << 20 per call. */
KILN_MUST_USE kiln_result kiln_store_tx_ledger_put(kiln_store_tx *tx,
						   const struct kiln_ledger_node *nodes, size_t n,
						   kiln_diag *d);
/* Stores a checkpoint; KILN_ERR_DUPLICATE when one of that size exists. */
KILN_MUST_USE kiln_result kiln_store_tx_checkpoint_add(kiln_store_tx *tx,
						       const struct kiln_checkpoint_rec *c,
						       kiln_diag *d);
/*
 * Reads the nodes of one level with index from .. from+count-1 into out
 * (count hashes); *got receives how many consecutive ones exist from `from`.
 * count at most 1 << 21.
 */
KILN_MUST_USE kiln_result kiln_store_ledger_get(kiln_store *s, unsigned level, int64_t from,
						size_t count, uint8_t (*out)[32], size_t *got,
						kiln_diag *d);
/* How many leaf hashes are stored (the derived tree's size). */
KILN_MUST_USE kiln_result kiln_store_ledger_size(kiln_store *s, int64_t *out, kiln_diag *d);
/* The checkpoint of this size, or the largest one when size < 0 (KILN_ERR_NOT_FOUND). */
KILN_MUST_USE kiln_result kiln_store_checkpoint_get(kiln_store *s, int64_t size,
						    struct kiln_checkpoint_rec *out, kiln_diag *d);
/*
 * Checkpoints with size >= from, by size, at most limit (0: all, but more
 * than KILN_STORE_LIST_MAX is KILN_ERR_TOO_BIG). Caller frees with free().
 */
KILN_MUST_USE kiln_result kiln_store_checkpoint_list(kiln_store *s, int64_t from, size_t limit,
						     struct kiln_checkpoint_rec **out, size_t *n,
						     kiln_diag *d);
/* The seq of the first event of this type about subject (KILN_ERR_NOT_FOUND). */
KILN_MUST_USE kiln_result kiln_store_event_find(kiln_store *s, const char *type,
						const char *subject, int64_t *seq, kiln_diag *d);
/* ------------------------------------------------------------ governance (schema v3) */

#define KILN_STORE_REQUEST_ID 40
#define KILN_STORE_PARAMS_MAX 1024
#define KILN_STORE_SIG_MAX 512

/*
 * An approval request (src/govern): an operation with canonical parameters,
 * waiting for quorum distinct officer approvals before it may run, until
 * expires. status is "pending" until the operation ran ("executed").
 */
struct kiln_request_rec {
	char id[KILN_STORE_REQUEST_ID];
	char operation[32];               /* "policy-activate", "identity-add", ... */
	char params_json[KILN_STORE_PARAMS_MAX]; /* canonical JSON object (sorted keys, compact) */
	char requester[KILN_STORE_NAME_MAX];
	uint8_t digest[32];               /* SHA-256 of the canonical request: what officers sign */
	int64_t quorum;                   /* approvals needed, fixed when the request is made */
	int64_t created, expires;
	char status[16];                  /* "pending", "executed" */
	int64_t executed;                 /* 0 while pending */
	int64_t approvals;                /* read only: approvals recorded */
};

/* One officer's signature over a request's digest. */
struct kiln_approval_rec {
	char request_id[KILN_STORE_REQUEST_ID];
	char approver[KILN_STORE_NAME_MAX];      /* identity name */
	char cert_serial[KILN_STORE_SERIAL_HEX]; /* the certificate the signature verified with */
	uint8_t signature[KILN_STORE_SIG_MAX];
	size_t sig_len;
	int64_t created;
};

/* Records a new request, status pending. All fields but status, executed, approvals required. */
KILN_MUST_USE kiln_result kiln_store_tx_request_add(kiln_store_tx *tx,
						    const struct kiln_request_rec *q, kiln_diag *d);
/*
 * Records an approval at now for a request that is pending and unexpired as
 * this transaction sees it: KILN_ERR_REQUEST_UNKNOWN, KILN_ERR_REQUEST_EXECUTED,
 * KILN_ERR_REQUEST_EXPIRED, KILN_ERR_APPROVAL_DUPLICATE (same approver twice).
 * count (may be NULL) receives the request's approvals including this one.
 * Who may approve is govern's business, checked before.
 */
KILN_MUST_USE kiln_result kiln_store_tx_approval_add(kiln_store_tx *tx,
						     const struct kiln_approval_rec *a, int64_t now,
						     int64_t *count, kiln_diag *d);
/*
 * Marks a request executed at now, once: it must be pending, unexpired and
 * have its quorum of approvals (KILN_ERR_APPROVALS_MISSING), as this
 * transaction sees it. Call it in the transaction that does the operation.
 */
KILN_MUST_USE kiln_result kiln_store_tx_request_execute(kiln_store_tx *tx, const char *id,
							int64_t now, kiln_diag *d);
/*
 * Revokes an active identity (and its certificate, with reason, at now):
 * KILN_ERR_NOT_FOUND when there is none, KILN_ERR_ARG when already revoked.
 */
KILN_MUST_USE kiln_result kiln_store_tx_identity_revoke(kiln_store_tx *tx, const char *name,
							int64_t now, const char *reason,
							kiln_diag *d);
/* Active identities with role, as this transaction sees them. */
KILN_MUST_USE kiln_result kiln_store_tx_identity_count(kiln_store_tx *tx, const char *role,
						       int64_t *out, kiln_diag *d);

/* KILN_ERR_REQUEST_UNKNOWN when there is none. */
KILN_MUST_USE kiln_result kiln_store_request_get(kiln_store *s, const char *id,
						 struct kiln_request_rec *out, kiln_diag *d);
/* Every request, oldest first; caller frees with free(). */
KILN_MUST_USE kiln_result kiln_store_request_list(kiln_store *s, struct kiln_request_rec **out,
						  size_t *n, kiln_diag *d);
/* A request's approvals, oldest first; caller frees with free(). */
KILN_MUST_USE kiln_result kiln_store_approval_list(kiln_store *s, const char *id,
						   struct kiln_approval_rec **out, size_t *n,
						   kiln_diag *d);
/* Every identity, oldest first; caller frees with free(). */
KILN_MUST_USE kiln_result kiln_store_identity_list(kiln_store *s, struct kiln_identity_rec **out,
						   size_t *n, kiln_diag *d);
/*
 * The identity whose identity certificate certifies this public key (by
 * SPKI SHA-256); an active one first when several did. KILN_ERR_NOT_FOUND.
 */
KILN_MUST_USE kiln_result kiln_store_identity_by_key(kiln_store *s, const uint8_t spki_sha256[32],
						     struct kiln_identity_rec *out, kiln_diag *d);

/* ------------------------------------------------------------ whole files (snapshot.c) */

/*
 * A consistent copy of the inventory at db_path written to out_path (which
 * must not exist): one read transaction (VACUUM INTO), safe while kiln serve
 * writes. On failure out_path is removed.
 */
KILN_MUST_USE kiln_result kiln_store_snapshot(const char *db_path, const char *out_path,
					      kiln_diag *d);
/*
 * Replaces the inventory at db_path by the database file staged_path (in the
 * same directory): the live WAL is checkpointed into the old file first
 * (KILN_ERR_BUSY while another connection holds it), then staged_path is
 * fsynced and renamed over db_path and the directory fsynced. Until the
 * rename the live file is untouched.
 */
KILN_MUST_USE kiln_result kiln_store_replace(const char *db_path, const char *staged_path,
					     kiln_diag *d);

#endif /* KILN_STORE_H */
