/*
 * src/store/sqlite.c: the file (created 0600, missing, not a database, not a
 * file), connection settings, the reader pool, the statement cache, column
 * copies, error mapping and a writer locked by another process (busy).
 */
#include "support/support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_impl.h"

struct fx {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = kt_tmpdir("store-sqlite");
	f->path = kt_path(f->dir, "kiln.db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kt_rmrf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

static kiln_result open_with(const char *path, bool create, unsigned readers, unsigned busy_ms,
			     bool group, const kiln_log *log, kiln_store **s, kiln_diag *d)
{
	struct kiln_store_opts o = { .path = path, .create = create, .readers = readers,
				     .busy_timeout_ms = busy_ms, .group_commit = group, .log = log };

	kiln_diag_clear(d);
	return kiln_store_open(&o, s, d);
}

static kiln_store *open_ok(const char *path, unsigned readers, unsigned busy_ms, bool group)
{
	kiln_store *s = NULL;
	kiln_diag d;

	KT_OK(open_with(path, true, readers, busy_ms, group, NULL, &s, &d));
	return s;
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (unsigned)st.st_mode & 07777;
}

static kiln_result event_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };

	(void)ctx;
	memcpy(ev.type, "note", 5);
	memcpy(ev.actor, "test", 5);
	return kiln_store_tx_event_add(tx, &ev, d);
}

static kiln_result write_event(kiln_store *s, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_store_write(s, event_fn, NULL, d);
}

/* ------------------------------------------------------------ the file */

static void test_create_0600(void **state)
{
	struct fx *f = *state;
	kiln_store *s = open_ok(f->path, 0, 0, false);
	char side[1024];
	kiln_diag d;

	KT_OK(write_event(s, &d));
	assert_int_equal(mode_of(f->path), 0600);
	(void)snprintf(side, sizeof(side), "%s-wal", f->path);
	assert_int_equal(mode_of(side), 0600);
	(void)snprintf(side, sizeof(side), "%s-shm", f->path);
	assert_int_equal(mode_of(side), 0600);
	kiln_store_close(s);
}

static void test_missing_not_created(void **state)
{
	struct fx *f = *state;
	kiln_store *s = (kiln_store *)f; /* must be reset to NULL */
	char want[1024];
	kiln_diag d;

	KT_ERR(open_with(f->path, false, 0, 0, false, NULL, &s, &d), KILN_ERR_NOT_FOUND);
	assert_null(s);
	(void)snprintf(want, sizeof(want),
		       "inventory database %s does not exist; run kiln init or check --dir", f->path);
	assert_string_equal(d.text, want);
	assert_int_equal(access(f->path, F_OK), -1);
}

static void test_bad_paths(void **state)
{
	struct fx *f = *state;
	char *nested = kt_path(f->dir, "no/such/dir/kiln.db");
	kiln_store *s = NULL;
	kiln_diag d;

	KT_ERR(open_with(f->dir, true, 0, 0, false, NULL, &s, &d), KILN_ERR_IO);
	assert_non_null(strstr(d.text, "is not a regular file"));
	KT_ERR(open_with(nested, true, 0, 0, false, NULL, &s, &d), KILN_ERR_IO);
	assert_non_null(strstr(d.text, "cannot create inventory"));
	KT_ERR(open_with(f->path, true, 65, 0, false, NULL, &s, &d), KILN_ERR_ARG);
	assert_null(s);
	free(nested);
}

static void test_not_a_database(void **state)
{
	struct fx *f = *state;
	static const char junk[8192] = "this is not an SQLite database at all";
	kiln_store *s = NULL;
	kiln_diag d;

	kt_write_file(f->path, junk, sizeof(junk));
	KT_ERR(open_with(f->path, false, 0, 0, false, NULL, &s, &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "not a kiln database or is corrupt"));
	assert_null(s);
}

struct captured {
	char text[4][KILN_LOG_LINE_MAX];
	int n;
};

static void capture(void *ctx, kiln_log_level level, const char *msg)
{
	struct captured *c = ctx;

	if (level == KILN_LOG_WARN && c->n < 4)
		(void)kiln_strlcpy(c->text[c->n++], msg, sizeof(c->text[0])).code;
}

static void test_open_permissions_warned(void **state)
{
	struct fx *f = *state;
	struct captured cap = { .n = 0 };
	kiln_log log = { .fn = capture, .ctx = &cap, .min = KILN_LOG_DEBUG };
	kiln_store *s = open_ok(f->path, 1, 0, false);
	kiln_diag d;

	kiln_store_close(s);
	assert_int_equal(cap.n, 0);
	assert_int_equal(chmod(f->path, 0644), 0);
	KT_OK(open_with(f->path, false, 1, 0, false, &log, &s, &d));
	assert_int_equal(cap.n, 1);
	assert_non_null(strstr(cap.text[0], "readable by other users"));
	kiln_store_close(s);
}

/* ------------------------------------------------------------ connections */

static int64_t pragma(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_connection_settings(void **state)
{
	struct fx *f = *state;
	kiln_store *s = open_ok(f->path, 3, 1234, false);
	struct kiln_sqlite *b = s->backend;
	sqlite3_stmt *st = NULL;
	int on = -1;

	assert_string_equal(s->ops->name, "sqlite");
	assert_int_equal(sqlite3_prepare_v2(b->writer.db, "PRAGMA journal_mode", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(pragma(b->writer.db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(pragma(b->writer.db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(pragma(b->writer.db, "PRAGMA busy_timeout"), 1234);
	assert_int_equal(sqlite3_db_config(b->writer.db, SQLITE_DBCONFIG_DEFENSIVE, -1, &on),
			 SQLITE_OK);
	assert_int_equal(on, 1);
	assert_int_equal(sqlite3_db_readonly(b->writer.db, "main"), 0);
	assert_int_equal(b->nreaders, 3);
	for (unsigned i = 0; i < b->nreaders; i++) {
		assert_int_equal(sqlite3_db_readonly(b->readers[i].db, "main"), 1);
		assert_int_equal(pragma(b->readers[i].db, "PRAGMA busy_timeout"), 1234);
	}
	kiln_store_close(s);

	s = open_ok(f->path, 0, 0, false);
	b = s->backend;
	assert_int_equal(b->nreaders, 4);
	assert_int_equal(pragma(b->writer.db, "PRAGMA busy_timeout"), 5000);
	kiln_store_close(s);
}

struct counter {
	kiln_store *s;
	atomic_int done;
	kiln_result r;
};

static void *count_main(void *arg)
{
	struct counter *c = arg;
	int64_t n;
	kiln_diag d;

	kiln_diag_clear(&d);
	c->r = kiln_store_count(c->s, "events", &n, &d);
	atomic_store(&c->done, 1);
	return NULL;
}

/* A read waits for a free reader rather than sharing a connection. */
static void test_reader_pool_waits(void **state)
{
	struct fx *f = *state;
	kiln_store *s = open_ok(f->path, 1, 0, false);
	struct kiln_sqlite *b = s->backend;
	struct counter c = { .s = s };
	struct kiln_sqlite_conn *held = kiln_sqlite_reader_get(b);
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, count_main, &c), 0);
	(void)usleep(100 * 1000);
	assert_int_equal(atomic_load(&c.done), 0);
	kiln_sqlite_reader_put(b, held);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.done), 1);
	KT_OK(c.r);
	kiln_sqlite_reader_put(b, NULL);
	kiln_store_close(s);
}

struct mixed {
	kiln_store *s;
	bool writer;
	int failures;
};

static void *mixed_main(void *arg)
{
	struct mixed *m = arg;
	kiln_diag d;

	for (int i = 0; i < 100; i++) {
		struct kiln_event_rec *list = NULL;
		size_t n = 0;
		int64_t c;

		if (m->writer) {
			m->failures += !kiln_is_ok(write_event(m->s, &d));
			continue;
		}
		kiln_diag_clear(&d);
		m->failures += !kiln_is_ok(kiln_store_count(m->s, "events", &c, &d));
		m->failures += !kiln_is_ok(kiln_store_event_list(m->s, 0, 10, &list, &n, &d));
		kiln_store_event_list_free(list, n);
	}
	return NULL;
}

static void test_readers_beside_writers(void **state)
{
	struct fx *f = *state;
	kiln_store *s = open_ok(f->path, 2, 0, true);
	struct mixed m[6];
	pthread_t th[6];
	int64_t n = 0;
	kiln_diag d;

	for (int i = 0; i < 6; i++) {
		m[i] = (struct mixed){ .s = s, .writer = i < 2 };
		assert_int_equal(pthread_create(&th[i], NULL, mixed_main, &m[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(m[i].failures, 0);
	}
	kiln_diag_clear(&d);
	KT_OK(kiln_store_count(s, "events", &n, &d));
	assert_int_equal(n, 200);
	kiln_store_close(s);
}

/* Another process holding the write lock: the busy timeout, then KILN_ERR_STORE_BUSY. */
static void check_busy(const char *path, bool group)
{
	kiln_store *s = open_ok(path, 1, 50, group);
	sqlite3 *other = NULL;
	uint64_t t0;
	kiln_diag d;

	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	t0 = kiln_mono_ns();
	KT_ERR(write_event(s, &d), KILN_ERR_STORE_BUSY);
	assert_true(kiln_mono_ns() - t0 >= 40ull * 1000000ull);
	assert_non_null(strstr(d.text, "busy"));
	assert_non_null(strstr(d.text, "retry"));
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	KT_OK(write_event(s, &d));
	sqlite3_close(other);
	kiln_store_close(s);
}

static void test_busy_direct(void **state)
{
	struct fx *f = *state;

	check_busy(f->path, false);
}

static void test_busy_group(void **state)
{
	struct fx *f = *state;

	check_busy(f->path, true);
}

/* ------------------------------------------------------------ helpers */

static void test_fail_mapping(void **state)
{
	static const struct {
		int rc;
		kiln_err want;
	} cases[] = {
		{ SQLITE_BUSY, KILN_ERR_STORE_BUSY },     { SQLITE_BUSY_SNAPSHOT, KILN_ERR_STORE_BUSY },
		{ SQLITE_LOCKED, KILN_ERR_STORE_BUSY },   { SQLITE_NOMEM, KILN_ERR_NOMEM },
		{ SQLITE_NOTADB, KILN_ERR_STORE },        { SQLITE_CORRUPT, KILN_ERR_STORE },
		{ SQLITE_FULL, KILN_ERR_STORE },          { SQLITE_READONLY, KILN_ERR_IO },
		{ SQLITE_CANTOPEN, KILN_ERR_IO },         { SQLITE_CONSTRAINT_CHECK, KILN_ERR_ARG },
		{ SQLITE_TOOBIG, KILN_ERR_TOO_BIG },      { SQLITE_IOERR_FSYNC, KILN_ERR_STORE },
		{ SQLITE_ERROR, KILN_ERR_STORE },
	};
	kiln_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kiln_diag_clear(&d);
		KT_ERR(kiln_sqlite_fail(NULL, cases[i].rc, "testing", &d), cases[i].want);
		assert_int_equal(d.code, cases[i].want);
		assert_non_null(strstr(d.text, "testing"));
	}
	kiln_diag_clear(&d);
	KT_ERR(kiln_sqlite_fail(NULL, SQLITE_FULL, "appending", &d), KILN_ERR_STORE);
	assert_string_equal(d.text, "the disk is full while appending; free space and retry");
}

static void mem_conn(struct kiln_sqlite_conn *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(sqlite3_open(":memory:", &c->db), SQLITE_OK);
}

static void mem_conn_close(struct kiln_sqlite_conn *c)
{
	for (size_t i = 0; i < c->ncache; i++)
		sqlite3_finalize(c->cache[i].st);
	assert_int_equal(sqlite3_close(c->db), SQLITE_OK);
}

static void test_stmt_cache(void **state)
{
	static const char sql_one[] = "SELECT 1";
	static char many[KILN_SQLITE_CACHE_MAX][24];
	struct kiln_sqlite_conn c;
	sqlite3_stmt *a = NULL, *b = NULL;
	kiln_diag d;

	(void)state;
	mem_conn(&c);
	kiln_diag_clear(&d);
	KT_OK(kiln_sqlite_stmt(&c, sql_one, &a, &d));
	KT_OK(kiln_sqlite_stmt(&c, sql_one, &b, &d));
	assert_ptr_equal(a, b); /* prepared once per connection */
	assert_int_equal(c.ncache, 1);
	KT_OK(kiln_sqlite_run(&c, sql_one, "selecting", &d));
	KT_ERR(kiln_sqlite_stmt(&c, "SELEC nonsense", &a, &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "preparing a statement"));
	kiln_diag_clear(&d);
	for (size_t i = 1; i < KILN_SQLITE_CACHE_MAX; i++) {
		(void)snprintf(many[i], sizeof(many[i]), "SELECT %zu", i);
		KT_OK(kiln_sqlite_stmt(&c, many[i], &a, &d));
	}
	(void)snprintf(many[0], sizeof(many[0]), "SELECT 0");
	KT_ERR(kiln_sqlite_stmt(&c, many[0], &a, &d), KILN_ERR_INTERNAL);
	kiln_sqlite_done(NULL);
	mem_conn_close(&c);
}

static void test_columns(void **state)
{
	static const char sql[] = "SELECT 'abcdef', x'0102', NULL, x'00ff00'";
	struct kiln_sqlite_conn c;
	sqlite3_stmt *st = NULL;
	char small[6], fits[7];
	uint8_t bytes[4];
	size_t len = 99;
	void *dup = NULL;
	kiln_diag d;

	(void)state;
	mem_conn(&c);
	kiln_diag_clear(&d);
	KT_OK(kiln_sqlite_stmt(&c, sql, &st, &d));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);

	KT_ERR(kiln_sqlite_col_str(st, 0, small, sizeof(small), &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "holds 6 bytes, more than the 5"));
	KT_OK(kiln_sqlite_col_str(st, 0, fits, sizeof(fits), &d));
	assert_string_equal(fits, "abcdef");
	KT_OK(kiln_sqlite_col_str(st, 2, fits, sizeof(fits), &d));
	assert_string_equal(fits, "");

	KT_OK(kiln_sqlite_col_bytes(st, 1, bytes, sizeof(bytes), 2, &len, &d));
	assert_int_equal(len, 2);
	assert_int_equal(bytes[1], 2);
	KT_ERR(kiln_sqlite_col_bytes(st, 1, bytes, sizeof(bytes), 3, NULL, &d), KILN_ERR_STORE);
	KT_ERR(kiln_sqlite_col_bytes(st, 3, bytes, 2, 0, &len, &d), KILN_ERR_STORE);
	KT_OK(kiln_sqlite_col_bytes(st, 2, bytes, sizeof(bytes), 0, &len, &d));
	assert_int_equal(len, 0);
	KT_ERR(kiln_sqlite_col_bytes(st, 2, bytes, sizeof(bytes), 32, &len, &d), KILN_ERR_STORE);

	KT_OK(kiln_sqlite_col_dup(st, 3, 3, &dup, &len, &d));
	assert_int_equal(len, 3);
	assert_memory_equal(dup, "\x00\xff\x00", 3);
	assert_int_equal(((uint8_t *)dup)[3], 0); /* always NUL-terminated */
	free(dup);
	KT_ERR(kiln_sqlite_col_dup(st, 3, 2, &dup, &len, &d), KILN_ERR_STORE);
	assert_null(dup);
	KT_OK(kiln_sqlite_col_dup(st, 2, 2, &dup, &len, &d));
	assert_null(dup);
	kiln_sqlite_done(st);
	mem_conn_close(&c);
}

static void test_close_null(void **state)
{
	(void)state;
	kiln_store_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_not_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_permissions_warned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_pool_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_beside_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_group, setup, teardown),
		cmocka_unit_test(test_fail_mapping),
		cmocka_unit_test(test_stmt_cache),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_close_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
