/*
 * Internal to src/store (and its unit tests): the backend vtable, the state
 * every backend shares (write serialisation, the group committer, statistics)
 * and the SQLite backend's connection helpers.
 *
 * Layering:
 *   store.c   public API: checks arguments, dispatches through kiln_store_ops
 *   commit.c  the write path: direct transactions and the group committer
 *   sqlite.c  the SQLite backend: files, connections, pragmas, statement cache
 *   migrate.c SQLite schema migrations (PRAGMA user_version)
 *   records.c SQLite typed write operations
 *   query.c   SQLite reads
 * A PostgreSQL backend adds its own files and fills a kiln_store_ops of its
 * own; store.c and commit.c stay as they are.
 */
#ifndef KILN_STORE_IMPL_H
#define KILN_STORE_IMPL_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

/* The tables kiln_store_count accepts; names live in store.c only. */
enum kiln_store_table {
	KILN_STORE_T_META = 0,
	KILN_STORE_T_PRODUCTS,
	KILN_STORE_T_POLICIES,
	KILN_STORE_T_CAS,
	KILN_STORE_T_CERTIFICATES,
	KILN_STORE_T_DEVICES,
	KILN_STORE_T_IDENTITIES,
	KILN_STORE_T_EVENTS,
	KILN_STORE_T_BATCHES,
	KILN_STORE_T_NONCES,
	KILN_STORE_T_REVOCATIONS,
	KILN_STORE_T_CRLS,
	KILN_STORE_T_REQUESTS,
	KILN_STORE_T_APPROVALS,
	KILN_STORE_T__COUNT
};

enum kiln_store_sp {
	KILN_STORE_SP_BEGIN,    /* SAVEPOINT */
	KILN_STORE_SP_RELEASE,  /* RELEASE: keep the work */
	KILN_STORE_SP_ROLLBACK, /* ROLLBACK TO + RELEASE: drop the work */
};

/* How kiln_store_device_get's reference was understood (see store.c). */
struct kiln_store_device_key {
	int64_t id;          /* > 0: by id */
	const char *product; /* non-NULL: by product and serial */
	const char *serial;  /* non-NULL (and id 0): by serial */
};

/*
 * A backend. Records reach it already checked by store.c (fields terminated,
 * enumerations valid, sizes capped). Write operations run on the backend's
 * writer inside a transaction opened by tx_begin; commit.c calls tx_* with
 * s->write_mu held, so a backend needs no locking of its own for writes.
 * Reads may be called from any thread at any time.
 */
struct kiln_store_ops {
	const char *name;
	void (*close)(kiln_store *s);

	/*
	 * durable false: this transaction's COMMIT need not reach the disk before
	 * it returns (a later durable COMMIT carries it there; a crash in between
	 * may lose it, and never a later transaction without it).
	 */
	KILN_MUST_USE kiln_result (*tx_begin)(kiln_store *s, kiln_store_tx *tx, bool durable,
					      kiln_diag *d);
	/* On failure the transaction is rolled back. */
	KILN_MUST_USE kiln_result (*tx_commit)(kiln_store_tx *tx, kiln_diag *d);
	void (*tx_rollback)(kiln_store_tx *tx);
	KILN_MUST_USE kiln_result (*tx_savepoint)(kiln_store_tx *tx, enum kiln_store_sp op,
						  kiln_diag *d);
	/* false once the database itself abandoned the transaction (I/O error, disk full). */
	bool (*tx_open)(const kiln_store_tx *tx);

	KILN_MUST_USE kiln_result (*ca_add)(kiln_store_tx *tx, struct kiln_ca_rec *ca, kiln_diag *d);
	KILN_MUST_USE kiln_result (*ca_retire)(kiln_store_tx *tx, int64_t id, kiln_diag *d);
	KILN_MUST_USE kiln_result (*policy_add)(kiln_store_tx *tx, struct kiln_policy_rec *p,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*policy_activate)(kiln_store_tx *tx, const char *product,
						     int64_t version, kiln_diag *d);
	KILN_MUST_USE kiln_result (*device_add)(kiln_store_tx *tx, struct kiln_device_rec *dev,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*cert_add)(kiln_store_tx *tx, const struct kiln_cert_rec *c,
					      kiln_diag *d);
	KILN_MUST_USE kiln_result (*key_seen)(kiln_store_tx *tx, const uint8_t spki_sha256[32],
					      bool *seen, char *holder, kiln_diag *d);
	KILN_MUST_USE kiln_result (*policy_version)(kiln_store_tx *tx, const char *product,
						    int64_t *version, kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_add)(kiln_store_tx *tx,
						  const struct kiln_identity_rec *id, kiln_diag *d);
	KILN_MUST_USE kiln_result (*event_add)(kiln_store_tx *tx, struct kiln_event_rec *ev,
					       kiln_diag *d);
	KILN_MUST_USE kiln_result (*meta_set)(kiln_store_tx *tx, const char *key, const char *value,
					      kiln_diag *d);
	KILN_MUST_USE kiln_result (*batch_add)(kiln_store_tx *tx, struct kiln_batch_rec *b,
					       kiln_diag *d);
	KILN_MUST_USE kiln_result (*batch_close)(kiln_store_tx *tx, const char *lot, int64_t when,
						 kiln_diag *d);
	KILN_MUST_USE kiln_result (*device_set_cert)(kiln_store_tx *tx, int64_t device_id,
						     const char *cert_serial, kiln_diag *d);
	KILN_MUST_USE kiln_result (*device_retire)(kiln_store_tx *tx, int64_t device_id,
						   kiln_diag *d);
	KILN_MUST_USE kiln_result (*reprovision_open)(kiln_store_tx *tx,
						      const struct kiln_reprovision_rec *g,
						      kiln_diag *d);
	KILN_MUST_USE kiln_result (*device_replace)(kiln_store_tx *tx, int64_t old_id,
						    struct kiln_device_rec *dev, kiln_diag *d);
	KILN_MUST_USE kiln_result (*reprovision_get)(kiln_store *s, const char *product,
						     const char *serial,
						     struct kiln_reprovision_rec *out, kiln_diag *d);
	/* *issued receives the batch's issued count after this one. */
	KILN_MUST_USE kiln_result (*batch_consume)(kiln_store_tx *tx, const char *lot,
						   const char *product, int64_t *issued,
						   kiln_diag *d);
	KILN_MUST_USE kiln_result (*nonce_add)(kiln_store_tx *tx, struct kiln_nonce_rec *n,
					       kiln_diag *d);
	/* now > 0; request_sha256 may be NULL, cert_serial "" (both stored as NULL). */
	KILN_MUST_USE kiln_result (*nonce_use)(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
					       const char *station, int64_t now,
					       const uint8_t *request_sha256,
					       const char *cert_serial, struct kiln_nonce_rec *out,
					       kiln_diag *d);
	KILN_MUST_USE kiln_result (*activation_add)(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
						    const uint8_t binding_sha256[32], int64_t now,
						    kiln_diag *d);

	/* reason checked, when > 0. */
	KILN_MUST_USE kiln_result (*cert_revoke)(kiln_store_tx *tx, const char *serial,
						 const char *reason, int64_t when, kiln_diag *d);

	KILN_MUST_USE kiln_result (*crl_add)(kiln_store_tx *tx, const struct kiln_crl_rec *c,
					     kiln_diag *d);
	KILN_MUST_USE kiln_result (*revocation_visible)(kiln_store_tx *tx, const char *serial,
							int64_t ms, kiln_diag *d);
	KILN_MUST_USE kiln_result (*revocation_seq)(kiln_store *s, int64_t *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*revoked_each)(kiln_store *s, int64_t ca_id, int64_t after_seq,
						  kiln_store_revoked_fn fn, void *ctx,
						  kiln_diag *d);
	KILN_MUST_USE kiln_result (*cert_status_each)(kiln_store *s, int64_t ca_id,
						      kiln_store_revoked_fn fn, void *ctx,
						      kiln_diag *d);
	KILN_MUST_USE kiln_result (*cert_select)(kiln_store *s, const struct kiln_cert_filter *f,
						 char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						 kiln_diag *d);
	/* The same query on the transaction's connection: what the transaction sees. */
	KILN_MUST_USE kiln_result (*tx_cert_select)(kiln_store_tx *tx, const struct kiln_cert_filter *f,
						    char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						    kiln_diag *d);
	KILN_MUST_USE kiln_result (*revocation_timing)(kiln_store *s, const char *serial,
						       int64_t *recorded_ms, int64_t *visible_ms,
						       kiln_diag *d);
	KILN_MUST_USE kiln_result (*crl_last)(kiln_store *s, int64_t ca_id,
					      struct kiln_crl_rec *out, bool *found, kiln_diag *d);

	KILN_MUST_USE kiln_result (*meta_get)(kiln_store *s, const char *key, char *out, size_t cap,
					      kiln_diag *d);
	/* By name when name is not NULL, else by id. */
	KILN_MUST_USE kiln_result (*ca_get)(kiln_store *s, const char *name, int64_t id,
					    struct kiln_ca_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*ca_list)(kiln_store *s, struct kiln_ca_rec **out, size_t *n,
					     kiln_diag *d);
	/* version 0: the active one, with its text, or only its head (yaml NULL) when !text. */
	KILN_MUST_USE kiln_result (*policy_get)(kiln_store *s, const char *product, int64_t version,
						bool text, struct kiln_policy_rec *out,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*policy_list)(kiln_store *s, struct kiln_policy_rec **out,
						 size_t *n, kiln_diag *d);
	/* out NULL: existence only. *found tells whether the row exists (no error when not). */
	KILN_MUST_USE kiln_result (*cert_get)(kiln_store *s, const char *serial,
					      struct kiln_cert_rec *out, bool *found, kiln_diag *d);
	/* Fills out with the first match; *matches is 0, 1 or 2 (2 meaning "more than one"). */
	KILN_MUST_USE kiln_result (*device_get)(kiln_store *s, const struct kiln_store_device_key *k,
						struct kiln_device_rec *out, size_t *matches,
						kiln_diag *d);
	/* limit already capped: at most limit rows; more than that is KILN_ERR_TOO_BIG when strict. */
	KILN_MUST_USE kiln_result (*device_list)(kiln_store *s, const char *product, size_t limit,
						 bool strict, struct kiln_device_rec **out,
						 size_t *n, kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_get)(kiln_store *s, const char *name,
						  struct kiln_identity_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_by_cert)(kiln_store *s, const char *cert_serial,
						      struct kiln_identity_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*batch_get)(kiln_store *s, const char *lot,
					       struct kiln_batch_rec *out, kiln_diag *d);
	/* At most limit rows; more is KILN_ERR_TOO_BIG. */
	KILN_MUST_USE kiln_result (*batch_list)(kiln_store *s, const char *product, size_t limit,
						struct kiln_batch_rec **out, size_t *n,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*nonce_get)(kiln_store *s, const uint8_t nonce_sha256[32],
					       struct kiln_nonce_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*activation_get)(kiln_store *s, const uint8_t nonce_sha256[32],
						    uint8_t binding_sha256[32], kiln_diag *d);
	KILN_MUST_USE kiln_result (*event_list)(kiln_store *s, int64_t from, size_t limit,
						bool strict, struct kiln_event_rec **out, size_t *n,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*count)(kiln_store *s, enum kiln_store_table t, int64_t *out,
					   kiln_diag *d);

	/* The ledger's tables (ledger_sql.c for SQLite). */
	KILN_MUST_USE kiln_result (*ledger_put)(kiln_store_tx *tx,
						const struct kiln_ledger_node *nodes, size_t n,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*checkpoint_add)(kiln_store_tx *tx,
						    const struct kiln_checkpoint_rec *c,
						    kiln_diag *d);
	KILN_MUST_USE kiln_result (*ledger_get)(kiln_store *s, unsigned level, int64_t from,
						size_t count, uint8_t (*out)[32], size_t *got,
						kiln_diag *d);
	KILN_MUST_USE kiln_result (*ledger_size)(kiln_store *s, int64_t *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*checkpoint_get)(kiln_store *s, int64_t size,
						    struct kiln_checkpoint_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*checkpoint_list)(kiln_store *s, int64_t from, size_t limit,
						     bool strict, struct kiln_checkpoint_rec **out,
						     size_t *n, kiln_diag *d);
	KILN_MUST_USE kiln_result (*event_find)(kiln_store *s, const char *type,
						const char *subject, int64_t *seq, kiln_diag *d);
	/* governance (schema v3) */
	KILN_MUST_USE kiln_result (*request_add)(kiln_store_tx *tx, const struct kiln_request_rec *q,
						 kiln_diag *d);
	KILN_MUST_USE kiln_result (*approval_add)(kiln_store_tx *tx,
						  const struct kiln_approval_rec *a, int64_t now,
						  int64_t *count, kiln_diag *d);
	KILN_MUST_USE kiln_result (*request_execute)(kiln_store_tx *tx, const char *id, int64_t now,
						     kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_revoke)(kiln_store_tx *tx, const char *name,
						     int64_t now, const char *reason, kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_count)(kiln_store_tx *tx, const char *role,
						    int64_t *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*request_get)(kiln_store *s, const char *id,
						 struct kiln_request_rec *out, kiln_diag *d);
	KILN_MUST_USE kiln_result (*request_list)(kiln_store *s, struct kiln_request_rec **out,
						  size_t *n, kiln_diag *d);
	KILN_MUST_USE kiln_result (*approval_list)(kiln_store *s, const char *id,
						   struct kiln_approval_rec **out, size_t *n,
						   kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_list)(kiln_store *s, struct kiln_identity_rec **out,
						   size_t *n, kiln_diag *d);
	KILN_MUST_USE kiln_result (*identity_by_key)(kiln_store *s, const uint8_t spki_sha256[32],
						     struct kiln_identity_rec *out, kiln_diag *d);
};

struct kiln_store_job; /* commit.c */

struct kiln_store {
	const struct kiln_store_ops *ops;
	void *backend; /* the backend's own state, owned */
	const kiln_log *log;
	bool group_commit;

	/* The backend's writer: one transaction at a time (error-checking, to catch nesting). */
	pthread_mutex_t write_mu;

	/* q_mu guards everything below. */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;    /* to the committer: work arrived, or stop */
	pthread_cond_t idle_cv; /* to close: the last writer left */
	struct kiln_store_job *q_head, *q_tail;
	size_t q_len;
	size_t inflight; /* callers inside kiln_store_write */
	bool stopping;
	bool committer_running;
	pthread_t committer;
	/* Which thread runs callers' fns right now, so a nested kiln_store_write is refused. */
	bool committer_self_set;
	pthread_t committer_self; /* set by the committer thread itself */
	bool writer_held;         /* direct mode: write_mu is held by writer_owner */
	pthread_t writer_owner;
	struct kiln_store_stats stats;
};

/* Handed to the caller's fn: the backend connection the transaction runs on. */
struct kiln_store_tx {
	kiln_store *s;
	void *conn;
};

/*
 * commit.c: the write path's life cycle. init sets up locks; start launches
 * the committer (group commit only) once the backend is open; stop waits for
 * every writer inside kiln_store_write and joins the committer; cleanup
 * destroys the locks.
 */
KILN_MUST_USE kiln_result kiln_store_commit_init(kiln_store *s, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_store_commit_start(kiln_store *s, kiln_diag *d);
void kiln_store_commit_stop(kiln_store *s);
void kiln_store_commit_cleanup(kiln_store *s);

/* ------------------------------------------------------------ SQLite backend */

#define KILN_SQLITE_CACHE_MAX 48

/*
 * One connection and its prepared statements, keyed by the address of their
 * static SQL text (every statement is a static const char[] next to the code
 * that runs it). Used by one thread at a time.
 */
struct kiln_sqlite_conn {
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[KILN_SQLITE_CACHE_MAX];
	size_t ncache;
	struct kiln_sqlite_conn *next_free;
};

struct kiln_sqlite {
	char *path;
	unsigned busy_timeout_ms;
	struct kiln_sqlite_conn writer; /* guarded by kiln_store.write_mu */
	bool writer_lazy;               /* the writer runs synchronous=NORMAL (write_mu) */
	struct kiln_sqlite_conn *readers;
	unsigned nreaders;
	pthread_mutex_t pool_mu; /* guards free_readers */
	pthread_cond_t pool_cv;
	struct kiln_sqlite_conn *free_readers;
};

/* sqlite.c */
KILN_MUST_USE kiln_result kiln_sqlite_open(kiln_store *s, const struct kiln_store_opts *opts,
					   kiln_diag *d);
/* Maps an SQLite result to a kiln result; what says what was being done ("reading devices"). */
KILN_MUST_USE kiln_result kiln_sqlite_fail(sqlite3 *db, int rc, const char *what, kiln_diag *d);
/* The cached statement for sql (a static string), reset and with no bindings. */
KILN_MUST_USE kiln_result kiln_sqlite_stmt(struct kiln_sqlite_conn *c, const char *sql,
					   sqlite3_stmt **out, kiln_diag *d);
/* Resets a statement after use so it holds no read snapshot; NULL-safe. */
void kiln_sqlite_done(sqlite3_stmt *st);
/* Runs a cached statement that returns no rows. */
KILN_MUST_USE kiln_result kiln_sqlite_run(struct kiln_sqlite_conn *c, const char *sql,
					  const char *what, kiln_diag *d);
/* Reader pool: blocks until a reader is free. */
struct kiln_sqlite_conn *kiln_sqlite_reader_get(struct kiln_sqlite *b);
void kiln_sqlite_reader_put(struct kiln_sqlite *b, struct kiln_sqlite_conn *c);
/* Binds text (NUL-terminated, must outlive the step); "" binds NULL when empty_null. */
int kiln_sqlite_bind_str(sqlite3_stmt *st, int i, const char *v, bool empty_null);
int kiln_sqlite_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);
/* Column copies. NULL reads as "" / no bytes. Values that do not fit are KILN_ERR_STORE, never cut. */
KILN_MUST_USE kiln_result kiln_sqlite_col_str(sqlite3_stmt *st, int i, char *dst, size_t cap,
					      kiln_diag *d);
/* Exactly want bytes (want 0: any length up to cap, stored in *len). */
KILN_MUST_USE kiln_result kiln_sqlite_col_bytes(sqlite3_stmt *st, int i, uint8_t *dst, size_t cap,
						size_t want, size_t *len, kiln_diag *d);
/* A heap copy (caller frees), NUL-terminated; NULL column gives *out NULL. */
KILN_MUST_USE kiln_result kiln_sqlite_col_dup(sqlite3_stmt *st, int i, size_t max, void **out,
					      size_t *len, kiln_diag *d);

/* Accumulates bind results: the first failure sticks. */
#define KILN_SQ_BIND(rc, call)                    \
	do {                                       \
		if ((rc) == SQLITE_OK)             \
			(rc) = (call);             \
	} while (0)

/* migrate.c */
struct kiln_sqlite_migration {
	int version; /* 1, 2, ...: step i brings user_version from i-1 to i */
	const char *name;
	const char *const *sql; /* statements, NULL-terminated, run in one transaction */
	bool rebuild;           /* rebuilds a table: foreign keys are checked before the commit */
};

#define KILN_SQLITE_APP_ID 0x6b696c6e /* "kiln" in PRAGMA application_id */

/* Every step this kiln knows, oldest first (tests build older files from a prefix). */
const struct kiln_sqlite_migration *kiln_sqlite_migrations(size_t *n);
/* Brings db (the writer, WAL already on) up to the latest schema. */
KILN_MUST_USE kiln_result kiln_sqlite_migrate(sqlite3 *db, const char *path, kiln_diag *d);
/* The same with an explicit list of steps (tests use it to check multi-step upgrades). */
KILN_MUST_USE kiln_result kiln_sqlite_migrate_steps(sqlite3 *db, const char *path,
						    const struct kiln_sqlite_migration *steps,
						    size_t n, kiln_diag *d);

/* records.c: typed writes, run on the writer inside a transaction. */
KILN_MUST_USE kiln_result kiln_sqlite_ca_add(kiln_store_tx *tx, struct kiln_ca_rec *ca,
					     kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_ca_retire(kiln_store_tx *tx, int64_t id, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_policy_add(kiln_store_tx *tx, struct kiln_policy_rec *p,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_policy_activate(kiln_store_tx *tx, const char *product,
						      int64_t version, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_add(kiln_store_tx *tx, struct kiln_device_rec *dev,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_cert_add(kiln_store_tx *tx, const struct kiln_cert_rec *c,
					       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_key_seen(kiln_store_tx *tx, const uint8_t spki_sha256[32],
					       bool *seen, char *holder, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_policy_version(kiln_store_tx *tx, const char *product,
						     int64_t *version, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_add(kiln_store_tx *tx,
						   const struct kiln_identity_rec *id,
						   kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_event_add(kiln_store_tx *tx, struct kiln_event_rec *ev,
						kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_meta_set(kiln_store_tx *tx, const char *key,
					       const char *value, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_batch_add(kiln_store_tx *tx, struct kiln_batch_rec *b,
						kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_batch_close(kiln_store_tx *tx, const char *lot,
						  int64_t when, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_set_cert(kiln_store_tx *tx, int64_t device_id,
						      const char *cert_serial, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_retire(kiln_store_tx *tx, int64_t device_id,
						    kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_reprovision_open(kiln_store_tx *tx,
						       const struct kiln_reprovision_rec *g,
						       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_replace(kiln_store_tx *tx, int64_t old_id,
						     struct kiln_device_rec *dev, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_reprovision_get(kiln_store *s, const char *product,
						      const char *serial,
						      struct kiln_reprovision_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_batch_consume(kiln_store_tx *tx, const char *lot,
						    const char *product, int64_t *issued,
						    kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_nonce_add(kiln_store_tx *tx, struct kiln_nonce_rec *n,
						kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_nonce_use(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
						const char *station, int64_t now,
						const uint8_t *request_sha256,
						const char *cert_serial, struct kiln_nonce_rec *out,
						kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_cert_revoke(kiln_store_tx *tx, const char *serial,
						  const char *reason, int64_t when, kiln_diag *d);
/* revoke.c: revocation reads and the CRL records. */
KILN_MUST_USE kiln_result kiln_sqlite_crl_add(kiln_store_tx *tx, const struct kiln_crl_rec *c,
					      kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_revocation_visible(kiln_store_tx *tx, const char *serial,
							 int64_t ms, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_revocation_seq(kiln_store *s, int64_t *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_revoked_each(kiln_store *s, int64_t ca_id,
						   int64_t after_seq, kiln_store_revoked_fn fn,
						   void *ctx, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_cert_status_each(kiln_store *s, int64_t ca_id,
						       kiln_store_revoked_fn fn, void *ctx,
						       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_cert_select(kiln_store *s, const struct kiln_cert_filter *f,
						  char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						  kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_tx_cert_select(kiln_store_tx *tx,
						     const struct kiln_cert_filter *f,
						     char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
						     kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_revocation_timing(kiln_store *s, const char *serial,
						       int64_t *recorded_ms, int64_t *visible_ms,
						       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_crl_last(kiln_store *s, int64_t ca_id,
					       struct kiln_crl_rec *out, bool *found, kiln_diag *d);

/*
 * query.c: row readers for the factory line's tables, shared with records.c
 * (which reads a row back to say why a write was refused). Columns in the
 * order of the matching KILN_SQLITE_*_COLS.
 */
#define KILN_SQLITE_BATCH_COLS \
	"lot, product, quantity, issued, line, station, status, opened_by, created, closed"
#define KILN_SQLITE_NONCE_COLS \
	"nonce_sha256, station, lot, issued, expires, used, request_sha256, cert_serial"
KILN_MUST_USE kiln_result kiln_sqlite_read_batch(sqlite3_stmt *st, struct kiln_batch_rec *out,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_read_nonce(sqlite3_stmt *st, struct kiln_nonce_rec *out,
						 kiln_diag *d);

/* requests.c: governance (schema v3), writes and reads. */
KILN_MUST_USE kiln_result kiln_sqlite_request_add(kiln_store_tx *tx,
						  const struct kiln_request_rec *q, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_approval_add(kiln_store_tx *tx,
						   const struct kiln_approval_rec *a, int64_t now,
						   int64_t *count, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_request_execute(kiln_store_tx *tx, const char *id,
						      int64_t now, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_revoke(kiln_store_tx *tx, const char *name,
						      int64_t now, const char *reason,
						      kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_count(kiln_store_tx *tx, const char *role,
						     int64_t *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_request_get(kiln_store *s, const char *id,
						  struct kiln_request_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_request_list(kiln_store *s, struct kiln_request_rec **out,
						   size_t *n, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_approval_list(kiln_store *s, const char *id,
						    struct kiln_approval_rec **out, size_t *n,
						    kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_list(kiln_store *s,
						    struct kiln_identity_rec **out, size_t *n,
						    kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_by_key(kiln_store *s,
						      const uint8_t spki_sha256[32],
						      struct kiln_identity_rec *out, kiln_diag *d);

/* query.c: reads on a pooled reader. */
KILN_MUST_USE kiln_result kiln_sqlite_meta_get(kiln_store *s, const char *key, char *out,
					       size_t cap, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_ca_get(kiln_store *s, const char *name, int64_t id,
					     struct kiln_ca_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_ca_list(kiln_store *s, struct kiln_ca_rec **out, size_t *n,
					      kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_policy_get(kiln_store *s, const char *product,
						 int64_t version, bool text,
						 struct kiln_policy_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_policy_list(kiln_store *s, struct kiln_policy_rec **out,
						  size_t *n, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_cert_get(kiln_store *s, const char *serial,
					       struct kiln_cert_rec *out, bool *found,
					       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_get(kiln_store *s,
						 const struct kiln_store_device_key *k,
						 struct kiln_device_rec *out, size_t *matches,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_device_list(kiln_store *s, const char *product,
						  size_t limit, bool strict,
						  struct kiln_device_rec **out, size_t *n,
						  kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_get(kiln_store *s, const char *name,
						   struct kiln_identity_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_identity_by_cert(kiln_store *s, const char *cert_serial,
						       struct kiln_identity_rec *out,
						       kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_batch_get(kiln_store *s, const char *lot,
						struct kiln_batch_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_batch_list(kiln_store *s, const char *product,
						 size_t limit, struct kiln_batch_rec **out,
						 size_t *n, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_activation_add(kiln_store_tx *tx,
						     const uint8_t nonce_sha256[32],
						     const uint8_t binding_sha256[32], int64_t now,
						     kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_activation_get(kiln_store *s, const uint8_t nonce_sha256[32],
						     uint8_t binding_sha256[32], kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_nonce_get(kiln_store *s, const uint8_t nonce_sha256[32],
						struct kiln_nonce_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_event_list(kiln_store *s, int64_t from, size_t limit,
						 bool strict, struct kiln_event_rec **out,
						 size_t *n, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_count(kiln_store *s, enum kiln_store_table t,
					    int64_t *out, kiln_diag *d);

/* ledger_sql.c: the ledger's derived nodes and its checkpoints. */
KILN_MUST_USE kiln_result kiln_sqlite_ledger_put(kiln_store_tx *tx,
						 const struct kiln_ledger_node *nodes, size_t n,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_checkpoint_add(kiln_store_tx *tx,
						     const struct kiln_checkpoint_rec *c,
						     kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_ledger_get(kiln_store *s, unsigned level, int64_t from,
						 size_t count, uint8_t (*out)[32], size_t *got,
						 kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_ledger_size(kiln_store *s, int64_t *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_checkpoint_get(kiln_store *s, int64_t size,
						     struct kiln_checkpoint_rec *out, kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_checkpoint_list(kiln_store *s, int64_t from, size_t limit,
						      bool strict,
						      struct kiln_checkpoint_rec **out, size_t *n,
						      kiln_diag *d);
KILN_MUST_USE kiln_result kiln_sqlite_event_find(kiln_store *s, const char *type,
						 const char *subject, int64_t *seq, kiln_diag *d);

#endif /* KILN_STORE_IMPL_H */
