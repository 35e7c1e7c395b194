/*
 * The SQLite backend: the database file, its connections and their settings,
 * the per-connection statement cache, error mapping and write transactions.
 *
 * One writer connection (serialised by commit.c) and a pool of read-only
 * reader connections. WAL lets readers run beside the writer; synchronous=FULL
 * makes every COMMIT durable before it returns (principle 3). Connections are
 * opened NOMUTEX: each is used by one thread at a time, which the writer lock
 * and the reader pool guarantee, so SQLite's own per-call mutex is not needed.
 */
#include "store/store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BUSY_MS 5000u
#define DEFAULT_READERS 4u
#define MAX_READERS 64u

/* ------------------------------------------------------------ errors */

kiln_result kiln_sqlite_fail(sqlite3 *db, int rc, const char *what, kiln_diag *d)
{
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return kiln_diag_set(d, KILN_ERR_STORE_BUSY,
				     "the inventory database is busy (%s while %s); retry", msg, what);
	case SQLITE_NOMEM:
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory while %s", what);
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return kiln_diag_set(d, KILN_ERR_STORE,
				     "the inventory file is not a kiln database or is corrupt (%s "
				     "while %s); restore it from a backup", msg, what);
	case SQLITE_FULL:
		return kiln_diag_set(d, KILN_ERR_STORE, "the disk is full while %s; free space and retry",
				     what);
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return kiln_diag_set(d, KILN_ERR_IO, "cannot write the inventory (%s while %s); check "
				     "the file, its directory and their permissions", msg, what);
	case SQLITE_CONSTRAINT:
		return kiln_diag_set(d, KILN_ERR_ARG, "rejected by the inventory while %s: %s", what,
				     msg);
	case SQLITE_TOOBIG:
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "value too big while %s", what);
	default:
		return kiln_diag_set(d, KILN_ERR_STORE, "inventory database error while %s: %s", what,
				     msg);
	}
}

/* ------------------------------------------------------------ statements */

kiln_result kiln_sqlite_stmt(struct kiln_sqlite_conn *c, const char *sql, sqlite3_stmt **out,
			     kiln_diag *d)
{
	sqlite3_stmt *st = NULL;
	int rc;

	for (size_t i = 0; i < c->ncache; i++) {
		if (c->cache[i].sql == sql) {
			*out = c->cache[i].st;
			return kiln_ok();
		}
	}
	if (KILN_NEVER(c->ncache == KILN_SQLITE_CACHE_MAX))
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "statement cache full; raise "
				     "KILN_SQLITE_CACHE_MAX");
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "preparing a statement", d);
	c->cache[c->ncache].sql = sql;
	c->cache[c->ncache].st = st;
	c->ncache++;
	*out = st;
	return kiln_ok();
}

void kiln_sqlite_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

kiln_result kiln_sqlite_run(struct kiln_sqlite_conn *c, const char *sql, const char *what,
			    kiln_diag *d)
{
	sqlite3_stmt *st;
	kiln_result r = kiln_ok();
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql, &st, d));
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = kiln_sqlite_fail(c->db, rc, what, d);
	kiln_sqlite_done(st);
	return r;
}

int kiln_sqlite_bind_str(sqlite3_stmt *st, int i, const char *v, bool empty_null)
{
	if (v == NULL || (empty_null && v[0] == '\0'))
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

int kiln_sqlite_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL || n == 0)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_blob64(st, i, p, (sqlite3_uint64)n, SQLITE_STATIC);
}

/* ------------------------------------------------------------ columns */

static kiln_result too_long(sqlite3_stmt *st, int i, size_t n, size_t cap, kiln_diag *d)
{
	const char *name = sqlite3_column_name(st, i);

	return kiln_diag_set(d, KILN_ERR_STORE,
			     "inventory column %s holds %zu bytes, more than the %zu this kiln "
			     "accepts; the database was changed outside kiln", name != NULL ? name : "?",
			     n, cap);
}

kiln_result kiln_sqlite_col_str(sqlite3_stmt *st, int i, char *dst, size_t cap, kiln_diag *d)
{
	const unsigned char *t;
	size_t n;

	dst[0] = '\0';
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return kiln_ok();
	t = sqlite3_column_text(st, i);
	if (t == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory reading the inventory");
	n = (size_t)sqlite3_column_bytes(st, i);
	/* Never cut: a truncated serial or name would name a different thing. */
	if (n >= cap)
		return too_long(st, i, n, cap - 1, d);
	memcpy(dst, t, n);
	dst[n] = '\0';
	return kiln_ok();
}

kiln_result kiln_sqlite_col_bytes(sqlite3_stmt *st, int i, uint8_t *dst, size_t cap, size_t want,
				  size_t *len, kiln_diag *d)
{
	const void *p;
	size_t n;

	if (len != NULL)
		*len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		if (want != 0)
			return too_long(st, i, 0, want, d);
		return kiln_ok();
	}
	p = sqlite3_column_blob(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	if ((want != 0 && n != want) || n > cap)
		return too_long(st, i, n, want != 0 ? want : cap, d);
	if (n > 0)
		memcpy(dst, p, n);
	if (len != NULL)
		*len = n;
	return kiln_ok();
}

kiln_result kiln_sqlite_col_dup(sqlite3_stmt *st, int i, size_t max, void **out, size_t *len,
				kiln_diag *d)
{
	const void *p;
	uint8_t *copy;
	size_t n;

	*out = NULL;
	*len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return kiln_ok();
	p = sqlite3_column_blob(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	if (n > max)
		return too_long(st, i, n, max, d);
	copy = malloc(n + 1);
	if (copy == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory reading the inventory");
	if (n > 0)
		memcpy(copy, p, n);
	copy[n] = '\0';
	*out = copy;
	*len = n;
	return kiln_ok();
}

/* ------------------------------------------------------------ reader pool */

struct kiln_sqlite_conn *kiln_sqlite_reader_get(struct kiln_sqlite *b)
{
	struct kiln_sqlite_conn *c;

	(void)pthread_mutex_lock(&b->pool_mu);
	while (b->free_readers == NULL)
		(void)pthread_cond_wait(&b->pool_cv, &b->pool_mu);
	c = b->free_readers;
	b->free_readers = c->next_free;
	c->next_free = NULL;
	(void)pthread_mutex_unlock(&b->pool_mu);
	return c;
}

void kiln_sqlite_reader_put(struct kiln_sqlite *b, struct kiln_sqlite_conn *c)
{
	if (c == NULL)
		return;
	(void)pthread_mutex_lock(&b->pool_mu);
	c->next_free = b->free_readers;
	b->free_readers = c;
	(void)pthread_cond_signal(&b->pool_cv);
	(void)pthread_mutex_unlock(&b->pool_mu);
}

/* ------------------------------------------------------------ file */

static const char *err_text(int e, char *buf, size_t cap)
{
	return strerror_r(e, buf, cap); /* GNU variant: returns the message */
}

/* fsync the directory holding path, so a new file's name survives a crash. */
static kiln_result sync_parent(const char *path, kiln_diag *d)
{
	char *copy = strdup(path), ebuf[128];
	int fd, e = 0;

	if (copy == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory");
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		e = errno;
	if (fd >= 0)
		(void)close(fd);
	free(copy);
	if (e != 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot sync the directory of %s: %s", path,
				     err_text(e, ebuf, sizeof(ebuf)));
	return kiln_ok();
}

/*
 * SQLite would create the file 0644 and give -wal/-shm the same mode; the
 * inventory is not for other users, so kiln creates it 0600 first and SQLite
 * copies that mode to its side files.
 */
static kiln_result prepare_file(const char *path, bool create, const kiln_log *log, kiln_diag *d)
{
	struct stat st;
	char ebuf[128];
	int fd;

	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return kiln_diag_set(d, KILN_ERR_IO, "inventory %s is not a regular file", path);
		if ((st.st_mode & 077) != 0)
			kiln_log_warn(log, "store: %s is readable by other users; chmod 600 it", path);
		return kiln_ok();
	}
	if (errno != ENOENT)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot access inventory %s: %s", path,
				     err_text(errno, ebuf, sizeof(ebuf)));
	if (!create)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "inventory database %s does not exist; run kiln init or check --dir",
				     path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno != EEXIST)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot create inventory %s: %s", path,
				     err_text(errno, ebuf, sizeof(ebuf)));
	if (fd >= 0)
		(void)close(fd);
	return sync_parent(path, d);
}

/* ------------------------------------------------------------ connections */

static void conn_close(struct kiln_sqlite_conn *c, const kiln_log *log)
{
	if (c == NULL || c->db == NULL)
		return;
	for (size_t i = 0; i < c->ncache; i++)
		(void)sqlite3_finalize(c->cache[i].st);
	c->ncache = 0;
	if (sqlite3_close(c->db) != SQLITE_OK)
		kiln_log_error(log, "store: closing a connection failed: %s", sqlite3_errmsg(c->db));
	c->db = NULL;
}

static kiln_result conn_exec(sqlite3 *db, const char *sql, const char *what, kiln_diag *d)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(db, rc, what, d);
	return kiln_ok();
}

/*
 * Before SQLite starts: no memory statistics. kiln reads none, and keeping
 * them takes one process-wide mutex in every sqlite3_malloc and sqlite3_free,
 * which the committer and the readers of a busy server all contend for. Too
 * late (SQLite already started by someone else in the process) changes
 * nothing but that.
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	(void)sqlite3_initialize();
}

static kiln_result conn_open(struct kiln_sqlite *b, struct kiln_sqlite_conn *c, bool writer,
			     kiln_diag *d)
{
	int flags = (writer ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX |
		    SQLITE_OPEN_PRIVATECACHE | SQLITE_OPEN_EXRESCODE;
	int rc;

	(void)pthread_once(&sqlite_once, sqlite_setup);
	rc = sqlite3_open_v2(b->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		kiln_result r = kiln_sqlite_fail(c->db, rc, "opening the inventory", d);

		(void)sqlite3_close(c->db);
		c->db = NULL;
		return r;
	}
	(void)sqlite3_extended_result_codes(c->db, 1);
	(void)sqlite3_busy_timeout(c->db, (int)b->busy_timeout_ms);
	/*
	 * No writable schema, no extension loading. trusted_schema stays on:
	 * the schema's CHECK uses the built-in json_valid(), which SQLite 3.40
	 * does not count as innocuous, and kiln registers no SQL functions of
	 * its own that a tampered schema could call.
	 */
	(void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	(void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
	/*
	 * A page cache that holds the hot index pages of a large inventory
	 * (SQLite's default is 2 MiB: past some ten thousand certificates
	 * every insert re-read its index leaves from the OS). No memory map:
	 * the file grows with every commit, and remapping it cost more than
	 * the reads it saved. Temporary storage in memory: a group commit's
	 * savepoint journal outgrows SQLite's in-memory spill limit and would
	 * otherwise go to a file in /var/tmp (created, written, read and
	 * unlinked per batch).
	 */
	return conn_exec(c->db,
			 "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
			 "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;",
			 "setting up a connection", d);
}

/*
 * Switching a file to WAL takes an exclusive lock. When several openers race
 * to switch a new file, SQLite refuses all but one at once, without calling
 * the busy handler (waiting there could deadlock), so a refused opener waits
 * and tries again here, for as long as the busy timeout allows.
 */
static kiln_result enable_wal(sqlite3 *db, unsigned timeout_ms, kiln_diag *d)
{
	sqlite3_stmt *st = NULL;
	kiln_result r = kiln_ok();
	unsigned waited = 0;
	int pause = 1, rc;

	for (;;) {
		rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= timeout_ms)
			break;
		(void)sqlite3_finalize(st);
		st = NULL;
		(void)sqlite3_sleep(pause);
		waited += (unsigned)pause;
		pause = pause < 64 ? pause * 2 : 64;
	}
	if (rc != SQLITE_ROW)
		r = kiln_sqlite_fail(db, rc, "switching to WAL mode", d);
	else if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
		r = kiln_diag_set(d, KILN_ERR_STORE, "the inventory could not switch to WAL mode "
				  "(it stays in %s); keep it on a local file system",
				  (const char *)sqlite3_column_text(st, 0));
	(void)sqlite3_finalize(st);
	return r;
}

static kiln_result open_readers(struct kiln_sqlite *b, unsigned n, kiln_diag *d)
{
	b->readers = calloc(n, sizeof(*b->readers));
	if (b->readers == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory opening readers");
	for (unsigned i = 0; i < n; i++) {
		KILN_GUARD(conn_open(b, &b->readers[i], false, d));
		b->nreaders = i + 1;
		b->readers[i].next_free = b->free_readers;
		b->free_readers = &b->readers[i];
	}
	return kiln_ok();
}

/* ------------------------------------------------------------ transactions */

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_sp_begin[] = "SAVEPOINT kiln_job";
static const char sql_sp_release[] = "RELEASE kiln_job";
static const char sql_sp_rollback[] = "ROLLBACK TO kiln_job";

static const char sql_sync_full[] = "PRAGMA synchronous = FULL";
static const char sql_sync_normal[] = "PRAGMA synchronous = NORMAL";

/*
 * In WAL mode, synchronous=NORMAL commits without syncing the log; the next
 * synchronous=FULL commit syncs it, and with it every frame written before.
 */
static kiln_result sq_tx_begin(kiln_store *s, kiln_store_tx *tx, bool durable, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;

	tx->s = s;
	tx->conn = &b->writer;
	if (b->writer_lazy == durable) {
		KILN_GUARD(kiln_sqlite_run(&b->writer, durable ? sql_sync_full : sql_sync_normal,
					   "setting the commit durability", d));
		b->writer_lazy = !durable;
	}
	return kiln_sqlite_run(&b->writer, sql_begin, "starting a write transaction", d);
}

static bool sq_tx_open(const kiln_store_tx *tx)
{
	const struct kiln_sqlite_conn *c = tx->conn;

	return sqlite3_get_autocommit(c->db) == 0;
}

static void sq_tx_rollback(kiln_store_tx *tx)
{
	kiln_diag ignored;

	kiln_diag_clear(&ignored);
	if (sq_tx_open(tx) &&
	    !kiln_is_ok(kiln_sqlite_run(tx->conn, sql_rollback, "rolling back", &ignored)))
		kiln_log_error(tx->s->log, "store: ROLLBACK failed: %s", ignored.text);
}

/*
 * A failed COMMIT is KILN_ERR_STORE (or _BUSY) whatever SQLite's reason (a
 * deferred constraint, I/O): the caller's records as a whole were refused.
 */
static kiln_result sq_tx_commit(kiln_store_tx *tx, kiln_diag *d)
{
	const struct kiln_sqlite_conn *c = tx->conn;
	kiln_diag why;
	kiln_result r;

	kiln_diag_clear(&why);
	r = kiln_sqlite_run(tx->conn, sql_commit, "committing", &why);
	if (kiln_is_ok(r))
		return r;
	r = kiln_diag_set(d, r.code == KILN_ERR_STORE_BUSY ? KILN_ERR_STORE_BUSY : KILN_ERR_STORE,
			  "the inventory COMMIT failed (%s: %s)", sqlite3_errstr(
				  sqlite3_extended_errcode(c->db)), sqlite3_errmsg(c->db));
	sq_tx_rollback(tx);
	return r;
}

static kiln_result sq_tx_savepoint(kiln_store_tx *tx, enum kiln_store_sp op, kiln_diag *d)
{
	switch (op) {
	case KILN_STORE_SP_BEGIN:
		return kiln_sqlite_run(tx->conn, sql_sp_begin, "opening a savepoint", d);
	case KILN_STORE_SP_RELEASE:
		return kiln_sqlite_run(tx->conn, sql_sp_release, "releasing a savepoint", d);
	case KILN_STORE_SP_ROLLBACK:
		KILN_GUARD(kiln_sqlite_run(tx->conn, sql_sp_rollback, "rolling back a savepoint", d));
		return kiln_sqlite_run(tx->conn, sql_sp_release, "releasing a savepoint", d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

/* ------------------------------------------------------------ open, close */

static void sq_free(struct kiln_sqlite *b, const kiln_log *log, bool locks)
{
	if (b == NULL)
		return;
	for (unsigned i = 0; i < b->nreaders; i++)
		conn_close(&b->readers[i], log);
	free(b->readers);
	/* Last, so its close checkpoints the WAL into the database file. */
	conn_close(&b->writer, log);
	if (locks) {
		(void)pthread_cond_destroy(&b->pool_cv);
		(void)pthread_mutex_destroy(&b->pool_mu);
	}
	free(b->path);
	free(b);
}

static void sq_close(kiln_store *s)
{
	sq_free(s->backend, s->log, true);
	s->backend = NULL;
	s->ops = NULL;
}

static const struct kiln_store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.tx_begin = sq_tx_begin,
	.tx_commit = sq_tx_commit,
	.tx_rollback = sq_tx_rollback,
	.tx_savepoint = sq_tx_savepoint,
	.tx_open = sq_tx_open,
	.ca_add = kiln_sqlite_ca_add,
	.ca_retire = kiln_sqlite_ca_retire,
	.policy_add = kiln_sqlite_policy_add,
	.policy_activate = kiln_sqlite_policy_activate,
	.device_add = kiln_sqlite_device_add,
	.cert_add = kiln_sqlite_cert_add,
	.key_seen = kiln_sqlite_key_seen,
	.policy_version = kiln_sqlite_policy_version,
	.identity_add = kiln_sqlite_identity_add,
	.event_add = kiln_sqlite_event_add,
	.meta_set = kiln_sqlite_meta_set,
	.batch_add = kiln_sqlite_batch_add,
	.batch_close = kiln_sqlite_batch_close,
	.device_set_cert = kiln_sqlite_device_set_cert,
	.device_retire = kiln_sqlite_device_retire,
	.reprovision_open = kiln_sqlite_reprovision_open,
	.device_replace = kiln_sqlite_device_replace,
	.reprovision_get = kiln_sqlite_reprovision_get,
	.batch_consume = kiln_sqlite_batch_consume,
	.nonce_add = kiln_sqlite_nonce_add,
	.nonce_use = kiln_sqlite_nonce_use,
	.cert_revoke = kiln_sqlite_cert_revoke,
	.crl_add = kiln_sqlite_crl_add,
	.revocation_visible = kiln_sqlite_revocation_visible,
	.revocation_seq = kiln_sqlite_revocation_seq,
	.revoked_each = kiln_sqlite_revoked_each,
	.cert_select = kiln_sqlite_cert_select,
	.tx_cert_select = kiln_sqlite_tx_cert_select,
	.cert_status_each = kiln_sqlite_cert_status_each,
	.crl_last = kiln_sqlite_crl_last,
	.revocation_timing = kiln_sqlite_revocation_timing,
	.activation_add = kiln_sqlite_activation_add,
	.meta_get = kiln_sqlite_meta_get,
	.ca_get = kiln_sqlite_ca_get,
	.ca_list = kiln_sqlite_ca_list,
	.policy_get = kiln_sqlite_policy_get,
	.policy_list = kiln_sqlite_policy_list,
	.cert_get = kiln_sqlite_cert_get,
	.device_get = kiln_sqlite_device_get,
	.device_list = kiln_sqlite_device_list,
	.identity_get = kiln_sqlite_identity_get,
	.identity_by_cert = kiln_sqlite_identity_by_cert,
	.batch_get = kiln_sqlite_batch_get,
	.batch_list = kiln_sqlite_batch_list,
	.nonce_get = kiln_sqlite_nonce_get,
	.activation_get = kiln_sqlite_activation_get,
	.event_list = kiln_sqlite_event_list,
	.ledger_put = kiln_sqlite_ledger_put,
	.checkpoint_add = kiln_sqlite_checkpoint_add,
	.ledger_get = kiln_sqlite_ledger_get,
	.ledger_size = kiln_sqlite_ledger_size,
	.checkpoint_get = kiln_sqlite_checkpoint_get,
	.checkpoint_list = kiln_sqlite_checkpoint_list,
	.event_find = kiln_sqlite_event_find,
	.count = kiln_sqlite_count,
	.request_add = kiln_sqlite_request_add,
	.approval_add = kiln_sqlite_approval_add,
	.request_execute = kiln_sqlite_request_execute,
	.identity_revoke = kiln_sqlite_identity_revoke,
	.identity_count = kiln_sqlite_identity_count,
	.request_get = kiln_sqlite_request_get,
	.request_list = kiln_sqlite_request_list,
	.approval_list = kiln_sqlite_approval_list,
	.identity_list = kiln_sqlite_identity_list,
	.identity_by_key = kiln_sqlite_identity_by_key,
};

static kiln_result sq_new(const struct kiln_store_opts *opts, struct kiln_sqlite **out,
			  kiln_diag *d)
{
	struct kiln_sqlite *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->path = strdup(opts->path)) == NULL) {
		free(b);
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory opening the inventory");
	}
	if (pthread_mutex_init(&b->pool_mu, NULL) != 0) {
		sq_free(b, NULL, false);
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not create the reader pool lock");
	}
	if (pthread_cond_init(&b->pool_cv, NULL) != 0) {
		(void)pthread_mutex_destroy(&b->pool_mu);
		sq_free(b, NULL, false);
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "could not create the reader pool lock");
	}
	b->busy_timeout_ms = opts->busy_timeout_ms != 0 ? opts->busy_timeout_ms : DEFAULT_BUSY_MS;
	if (b->busy_timeout_ms > INT32_MAX)
		b->busy_timeout_ms = INT32_MAX;
	*out = b;
	return kiln_ok();
}

kiln_result kiln_sqlite_open(kiln_store *s, const struct kiln_store_opts *opts, kiln_diag *d)
{
	struct kiln_sqlite *b = NULL;
	unsigned nreaders = opts->readers != 0 ? opts->readers : DEFAULT_READERS;
	kiln_result r;

	if (sqlite3_threadsafe() == 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "this SQLite library was built without "
				     "thread support; kiln needs SQLITE_THREADSAFE=1 or 2");
	if (nreaders > MAX_READERS)
		return kiln_diag_set(d, KILN_ERR_ARG, "at most %u reader connections", MAX_READERS);
	KILN_GUARD(prepare_file(opts->path, opts->create, opts->log, d));
	KILN_GUARD(sq_new(opts, &b, d));
	KILN_TRY(r, conn_open(b, &b->writer, true, d));
	KILN_TRY(r, enable_wal(b->writer.db, b->busy_timeout_ms, d));
	KILN_TRY(r, kiln_sqlite_migrate(b->writer.db, b->path, d));
	KILN_TRY(r, open_readers(b, nreaders, d));
	s->backend = b;
	s->ops = &sqlite_ops;
	return kiln_ok();
out:
	sq_free(b, opts->log, true);
	return r;
}
