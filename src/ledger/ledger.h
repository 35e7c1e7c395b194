/*
 * kiln ledger: the tamper-evident log of every event. The events (src/store,
 * appended in the same transaction as the state they describe) are the
 * leaves of an RFC 9162 Merkle tree:
 *
 *   leaf = SHA-256(0x00 || canonical event bytes)
 *   node = SHA-256(0x01 || left || right)
 *
 * Signed checkpoints (the transparency-dev checkpoint format inside a signed
 * note, signed by an Ed25519 log key held in the service token) commit to a
 * tree size and root; inclusion and consistency proofs tie an event or an
 * older checkpoint to them. docs/verifying.md gives the exact bytes.
 *
 * Files: merkle.c (pure hashing, proofs, verification), event.c (canonical
 * event bytes), note.c (checkpoint and signed-note text, parsing untrusted
 * notes and proof queries), log.c (the ledger over a store: derived nodes,
 * checkpoints, proofs), audit.c (verification from the events alone),
 * export.c (the auditor's export directory).
 *
 * Thread safety: pure functions are reentrant; a kiln_ledger may be shared
 * between threads (checkpointing is serialised inside).
 */
#ifndef KILN_LEDGER_H
#define KILN_LEDGER_H

#include "core/core.h"
#include "crypto/crypto.h"
#include "hsm/hsm.h"
#include "store/store.h"

#define KILN_HASH_LEN 32

/* ---------------------------------------------------------------- merkle.c */

void kiln_merkle_leaf(kiln_slice data, uint8_t out[32]);
void kiln_merkle_node(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);
/* The root of the empty tree: SHA-256 of nothing. */
void kiln_merkle_empty(uint8_t out[32]);

/*
 * Where proofs get their hashes: the hash of the complete subtree over leaves
 * [index << level, (index + 1) << level). KILN_ERR_NOT_FOUND when unknown.
 */
typedef kiln_result (*kiln_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
					  uint8_t out[32], kiln_diag *d);
struct kiln_merkle_source {
	kiln_merkle_get_fn get;
	void *ctx;
};

/* A proof path is at most one hash per level (two per level for consistency, bounded by 64). */
#define KILN_MERKLE_PROOF_MAX 64
#define KILN_MERKLE_SIZE_MAX ((uint64_t)1 << 62)

struct kiln_merkle_proof {
	size_t n;
	uint8_t hash[KILN_MERKLE_PROOF_MAX][32];
};

/* MTH(D[0:size]) from complete-subtree hashes (O(log size) lookups). */
KILN_MUST_USE kiln_result kiln_merkle_root(const struct kiln_merkle_source *src, uint64_t size,
					   uint8_t out[32], kiln_diag *d);
/* RFC 9162 2.1.3.1 PATH(index, D[0:size]); KILN_ERR_LOG_RANGE unless index < size. */
KILN_MUST_USE kiln_result kiln_merkle_inclusion(const struct kiln_merkle_source *src,
						uint64_t index, uint64_t size,
						struct kiln_merkle_proof *out, kiln_diag *d);
/* RFC 9162 2.1.4.1 PROOF(m, D[0:n]); KILN_ERR_LOG_RANGE unless 0 < m <= n. Empty when m == n. */
KILN_MUST_USE kiln_result kiln_merkle_consistency(const struct kiln_merkle_source *src,
						  uint64_t m, uint64_t n,
						  struct kiln_merkle_proof *out, kiln_diag *d);
/* RFC 9162 2.1.3.2; KILN_ERR_LOG_PROOF when the proof does not lead to root. */
KILN_MUST_USE kiln_result kiln_merkle_verify_inclusion(const uint8_t leaf[32], uint64_t index,
						       uint64_t size,
						       const struct kiln_merkle_proof *p,
						       const uint8_t root[32]);
/* RFC 9162 2.1.4.2; KILN_ERR_LOG_PROOF when the trees are not consistent. */
KILN_MUST_USE kiln_result kiln_merkle_verify_consistency(uint64_t m, uint64_t n,
							 const uint8_t root_m[32],
							 const uint8_t root_n[32],
							 const struct kiln_merkle_proof *p);

/*
 * Appends leaves one at a time keeping only the right frontier (one complete
 * subtree per set bit of size): O(log n) memory for any size. Plain data.
 */
struct kiln_merkle_builder {
	uint64_t size;
	unsigned depth;
	unsigned level[64];
	uint8_t hash[64][32];
};

/* Called for each complete subtree (leaves included) as it appears. */
typedef kiln_result (*kiln_merkle_emit_fn)(void *ctx, unsigned level, uint64_t index,
					   const uint8_t hash[32], kiln_diag *d);

void kiln_merkle_builder_init(struct kiln_merkle_builder *b);
/* Starts at size from the complete subtrees src holds (its frontier). */
KILN_MUST_USE kiln_result kiln_merkle_builder_resume(struct kiln_merkle_builder *b,
						     const struct kiln_merkle_source *src,
						     uint64_t size, kiln_diag *d);
/* emit may be NULL. */
KILN_MUST_USE kiln_result kiln_merkle_builder_push(struct kiln_merkle_builder *b,
						   const uint8_t leaf[32], kiln_merkle_emit_fn emit,
						   void *ctx, kiln_diag *d);
void kiln_merkle_builder_root(const struct kiln_merkle_builder *b, uint8_t out[32]);

/* A whole tree in memory: every complete subtree of every level (about 2n hashes). */
struct kiln_merkle_mem {
	uint64_t size;
	unsigned levels;
	uint8_t (*level[64])[32];
};

/* Copies the leaves; caller cleans up. */
KILN_MUST_USE kiln_result kiln_merkle_mem_build(const uint8_t (*leaves)[32], size_t n,
						struct kiln_merkle_mem *out);
void kiln_merkle_mem_cleanup(struct kiln_merkle_mem *m);
/* A source over m (borrowed: valid while m is). */
struct kiln_merkle_source kiln_merkle_mem_source(struct kiln_merkle_mem *m);

/* ----------------------------------------------------------------- event.c */

#define KILN_EVENT_MAGIC "kiln-event-v1"

/*
 * The canonical bytes of an event, appended to out:
 *   "kiln-event-v1" (13 bytes) || seq (u64 BE) || time (u64 BE, two's complement)
 *   || type || actor || subject || detail, each as u32 BE length || UTF-8 bytes,
 * detail exactly as stored.
 */
KILN_MUST_USE kiln_result kiln_ledger_event_bytes(const struct kiln_event_rec *ev, kiln_buf *out);
/* The leaf hash of an event: SHA-256(0x00 || canonical bytes). */
KILN_MUST_USE kiln_result kiln_ledger_event_leaf(const struct kiln_event_rec *ev, uint8_t out[32]);

/* ------------------------------------------------------------------ note.c */

#define KILN_NOTE_NAME_MAX 128
#define KILN_NOTE_SIGS_MAX 8
#define KILN_NOTE_TEXT_MAX (KILN_CHECKPOINT_NOTE_MAX - 1)

/* A checkpoint body: "<origin>\n<size>\n<base64 root>\n" (extension lines ignored). */
struct kiln_checkpoint {
	char origin[KILN_NOTE_NAME_MAX];
	uint64_t size;
	uint8_t root[32];
};

/* An Ed25519 note verifier key: name, key hash (first 4 bytes of SHA-256(name "\n" 0x01 pub)). */
struct kiln_note_key {
	char name[KILN_NOTE_NAME_MAX];
	uint8_t key_hash[4];
	uint8_t pub[32];
};

struct kiln_note_sig {
	char name[KILN_NOTE_NAME_MAX];
	uint8_t key_hash[4];
	uint8_t sig[64];
	size_t sig_len; /* 64 for Ed25519; other algorithms' signatures are kept but not used */
};

/* A parsed signed note; body is borrowed from the text given to the parser. */
struct kiln_note {
	kiln_slice body;
	size_t n_sigs;
	struct kiln_note_sig sigs[KILN_NOTE_SIGS_MAX];
};

KILN_MUST_USE kiln_result kiln_checkpoint_format(const struct kiln_checkpoint *c, kiln_buf *out);
/* Pure, bounded: the body of a checkpoint (untrusted). */
KILN_MUST_USE kiln_result kiln_checkpoint_parse(kiln_slice body, struct kiln_checkpoint *out,
						kiln_diag *d);
/* Pure, bounded: a signed note (untrusted): body, blank line, signature lines. */
KILN_MUST_USE kiln_result kiln_note_parse(kiln_slice text, struct kiln_note *out, kiln_diag *d);
/* Appends "— name base64(key_hash || sig)\n" to out. */
KILN_MUST_USE kiln_result kiln_note_sig_line(const struct kiln_note_key *k, kiln_slice sig,
					     kiln_buf *out);

KILN_MUST_USE kiln_result kiln_note_key_make(const char *name, const uint8_t pub[32],
					     struct kiln_note_key *out);
/* "name+hhhhhhhh+base64(0x01 || pub)" (the Go note verifier key format). */
KILN_MUST_USE kiln_result kiln_note_key_format(const struct kiln_note_key *k, kiln_buf *out);
/* Parses that format (untrusted; surrounding whitespace allowed), checking the key hash. */
KILN_MUST_USE kiln_result kiln_note_key_parse(kiln_slice text, struct kiln_note_key *out,
					      kiln_diag *d);
/*
 * Verifies a signed checkpoint: parses the note, finds k's signature,
 * verifies it (Ed25519), parses the body and checks its origin is k's name.
 * KILN_ERR_LOG_SIGNATURE when no valid signature by k is there.
 */
KILN_MUST_USE kiln_result kiln_note_verify(const struct kiln_note_key *k, kiln_slice text,
					   struct kiln_checkpoint *out, kiln_diag *d);

/* A proof request (HTTP query string, untrusted): which fields were given. */
struct kiln_log_query {
	bool has_index, has_size, has_from, has_to, has_device, has_start, has_end;
	uint64_t index, size, from, to, start, end;
	char device[KILN_STORE_NAME_MAX]; /* percent-decoded */
};

/*
 * Parses "index=5&size=10", "device=widget%2FSN1", "from=3&to=9",
 * "start=0&end=100": only those keys, each once, numbers in decimal below
 * KILN_MERKLE_SIZE_MAX. NULL or "" gives an empty query.
 */
KILN_MUST_USE kiln_result kiln_log_query_parse(const char *query, struct kiln_log_query *out,
					       kiln_diag *d);

/* ------------------------------------------------------------------- log.c */

#define KILN_LEDGER_KEY_LABEL "kiln-log"

/*
 * The log key: found by label in the token, or generated there (Ed25519,
 * sensitive, non-extractable) for deployments made before the ledger.
 * pub receives the raw public key.
 */
KILN_MUST_USE kiln_result kiln_ledger_key_ensure(kiln_token *t, kiln_key_ref *ref,
						 uint8_t pub[32], bool *created, kiln_diag *d);

typedef struct kiln_ledger kiln_ledger;

struct kiln_ledger_opts {
	kiln_store *store;         /* borrowed */
	const kiln_signer *signer; /* borrowed; NULL for a read-only ledger (no checkpoints) */
	const kiln_key_ref *key;   /* the log key in the signer's token (with signer) */
	const char *origin;        /* the log's name, also the note key name */
	const uint8_t *pub;        /* 32 bytes: the log key's public half */
	const kiln_log *log;
};

KILN_MUST_USE kiln_result kiln_ledger_open(const struct kiln_ledger_opts *o, kiln_ledger **out,
					   kiln_diag *d);
void kiln_ledger_free(kiln_ledger *l);
const struct kiln_note_key *kiln_ledger_key(const kiln_ledger *l);
kiln_store *kiln_ledger_store(const kiln_ledger *l);

/* Extends the derived tree over every committed event; *size (may be NULL) gets its size. */
KILN_MUST_USE kiln_result kiln_ledger_sync(kiln_ledger *l, int64_t *size, kiln_diag *d);
/*
 * Syncs, then signs and stores a checkpoint of the whole log, unless the
 * newest checkpoint already covers it (then *out is that one and *made false).
 */
KILN_MUST_USE kiln_result kiln_ledger_checkpoint(kiln_ledger *l, struct kiln_checkpoint_rec *out,
						 bool *made, kiln_diag *d);

struct kiln_ledger_inclusion {
	uint64_t index, size;
	uint8_t leaf[32];
	uint8_t root[32];
	struct kiln_merkle_proof proof;
	struct kiln_checkpoint_rec checkpoint; /* the signed checkpoint of that size */
};

/*
 * Inclusion proof for event index in the checkpoint of size size (0: the
 * newest checkpoint). The size must be a stored checkpoint's (KILN_ERR_NOT_FOUND).
 */
KILN_MUST_USE kiln_result kiln_ledger_prove(kiln_ledger *l, uint64_t index, uint64_t size,
					    struct kiln_ledger_inclusion *out, kiln_diag *d);
/* The index of a device's issuance event (device: id, product/serial or serial). */
KILN_MUST_USE kiln_result kiln_ledger_device_index(kiln_ledger *l, const char *device,
						   uint64_t *index, kiln_diag *d);
/* Consistency proof between two stored checkpoints, from <= to. */
KILN_MUST_USE kiln_result kiln_ledger_consistency(kiln_ledger *l, uint64_t from, uint64_t to,
						  struct kiln_merkle_proof *out, kiln_diag *d);

/*
 * kiln serve's checkpointer: a thread that signs a checkpoint when events
 * are waiting and interval_s has passed or `entries` new events arrived,
 * and once more when stopped. One per ledger.
 */
KILN_MUST_USE kiln_result kiln_ledger_start(kiln_ledger *l, unsigned interval_s, unsigned entries,
					    kiln_diag *d);
void kiln_ledger_stop(kiln_ledger *l);

/* ----------------------------------------------------------------- audit.c */

/*
 * What kiln audit verify checks, from the events alone (not the derived
 * tree): leaves recomputed from the events in stored order, with the seq each
 * row carries; the signed checkpoints; optionally the derived leaf hashes,
 * used only after they are authenticated against a signed root, to name the
 * exact first index that differs.
 */
struct kiln_audit_input {
	const uint8_t (*leaves)[32];
	const int64_t *seqs;
	size_t n_leaves;
	const char *const *notes;
	size_t n_notes;
	const uint8_t (*stored)[32]; /* may be NULL */
	size_t n_stored;
};

struct kiln_audit_report {
	bool ok;
	int64_t events;
	int64_t checkpoints;
	int64_t covered;      /* the largest verified checkpoint size */
	uint8_t root[32];     /* its root */
	int64_t first_bad;    /* -1 when none found */
	char what[512];       /* the first problem, one line */
};

/* Never fails on a tampered log: the report says so. Fails only on memory or arguments. */
KILN_MUST_USE kiln_result kiln_audit_verify(const struct kiln_audit_input *in,
					    const struct kiln_note_key *key,
					    struct kiln_audit_report *out, kiln_diag *d);

/* ---------------------------------------------------------------- export.c */

/*
 * Writes the auditor's export into dir (created when missing; files of the
 * same names in it are replaced): events.jsonl, checkpoints/, log.pub, log-key.pem, ca/NAME.pem,
 * policies/, controls.json, SHA256SUMS. Nothing secret is in any of them.
 */
KILN_MUST_USE kiln_result kiln_ledger_export(kiln_ledger *l, const char *dir, kiln_diag *d);
/* Reads an export's events and checkpoints back for kiln_audit_verify. */
struct kiln_export_data {
	uint8_t (*leaves)[32];
	int64_t *seqs;
	size_t n;
	char **notes;
	size_t n_notes;
	struct kiln_note_key key;
};
KILN_MUST_USE kiln_result kiln_export_load(const char *dir, struct kiln_export_data *out,
					   kiln_diag *d);
void kiln_export_data_cleanup(struct kiln_export_data *e);

#endif /* KILN_LEDGER_H */
