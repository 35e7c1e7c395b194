/*
 * src/store/migrate.c: a fresh file gets the latest schema, a file from a
 * newer kiln is refused untouched, data survives reopening, multi-step
 * upgrades are atomic per step, files of other applications are refused,
 * concurrent openers migrate once, the v1 schema's own rules hold against raw
 * SQL, released step 1 is pinned, a v1 file upgrades to v2 keeping its rows
 * (or not at all), and v2's own rules hold against raw SQL.
 */
#include "support/support.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

/* SHA-256 of migration 1's statements, each followed by a newline (as released). */
#define V1_SHA256 "f683ee38fe8695057d6495f26835d2f4342a3b351b6d12c5ebc6d1de68984243"

struct fx {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = kt_tmpdir("store-migrate");
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

static kiln_result open_at(const char *path, bool create, kiln_store **s, kiln_diag *d)
{
	struct kiln_store_opts o = { .path = path, .create = create, .readers = 1 };

	kiln_diag_clear(d);
	return kiln_store_open(&o, s, d);
}

static void create_store(const char *path)
{
	kiln_store *s = NULL;
	kiln_diag d;

	KT_OK(open_at(path, true, &s, &d));
	kiln_store_close(s);
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ------------------------------------------------------------ v1 */

static void test_fresh_file_gets_latest(void **state)
{
	struct fx *f = *state;
	static const char *const objects[] = {
		"table:meta", "table:products", "table:policies", "table:cas", "table:certificates",
		"table:devices", "table:identities", "table:events",
		"index:policies_one_active", "index:certificates_spki", "index:devices_serial",
		"trigger:events_no_update", "trigger:events_no_delete", "trigger:events_contiguous",
		"trigger:cas_env", "trigger:certificates_env", "trigger:policies_env",
		"trigger:products_env_fixed",
		"table:batches", "table:nonces", "index:batches_product", "index:identities_cert",
		"trigger:batches_closed_final", "trigger:batches_issued_grows",
		"trigger:nonces_used_once", "trigger:nonces_binding_fixed",
		"table:ledger_nodes", "table:checkpoints", "index:events_subject",
		"trigger:ledger_nodes_no_update", "trigger:ledger_nodes_no_delete",
		"trigger:checkpoints_no_update", "trigger:checkpoints_no_delete",
		"table:revocations", "table:crls", "index:revocations_ca",
		"trigger:certificates_revocation", "trigger:certificates_revoked_final",
		"trigger:revocations_fixed", "trigger:revocations_no_delete",
		"trigger:crls_number_grows",
		"table:reprovisions", "index:devices_live", "index:devices_replaces",
		"index:devices_serial", "index:devices_lot", "trigger:devices_replaced_final",
		"table:requests", "table:approvals", "trigger:requests_fixed",
		"trigger:requests_no_delete", "trigger:approvals_no_update",
		"trigger:approvals_no_delete", "trigger:identities_revoked_final",
		"table:activations", "trigger:activations_fixed",
	};
	char sql[256];

	create_store(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), kiln_store_schema_version());
	assert_int_equal(raw_int(f->path, "PRAGMA application_id"), KILN_SQLITE_APP_ID);
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		const char *colon = strchr(objects[i], ':');

		(void)snprintf(sql, sizeof(sql),
			       "SELECT count(*) FROM sqlite_schema WHERE type = '%.*s' AND name = '%s'",
			       (int)(colon - objects[i]), objects[i], colon + 1);
		if (raw_int(f->path, sql) != 1)
			fail_msg("schema lacks %s", objects[i]);
	}
	/* Opening again migrates nothing. */
	create_store(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), kiln_store_schema_version());
	/* The rebuilt devices table: (product, serial) unique among live records only. */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_table_info('devices') "
					  "WHERE name IN ('replaces', 'live')"), 2);
	assert_int_equal(raw_int(f->path, "PRAGMA foreign_keys"), 0); /* a new connection's default */
}

static void test_future_version_refused(void **state)
{
	struct fx *f = *state;
	kiln_store *s = NULL;
	char want[1024];
	kiln_diag d;

	int now = kiln_store_schema_version();
	char sql[64];

	create_store(f->path);
	(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", now + 1);
	raw_exec(f->path, sql);
	KT_ERR(open_at(f->path, false, &s, &d), KILN_ERR_STORE_SCHEMA);
	assert_null(s);
	(void)snprintf(want, sizeof(want),
		       "inventory %s has schema version %d but this kiln knows only up to %d; "
		       "upgrade kiln", f->path, now + 1, now);
	assert_string_equal(d.text, want);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), now + 1); /* untouched */
	raw_exec(f->path, "PRAGMA user_version = -1");
	KT_ERR(open_at(f->path, false, &s, &d), KILN_ERR_STORE_SCHEMA);
}

static kiln_result meta_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	(void)ctx;
	return kiln_store_tx_meta_set(tx, "installed-by", "test_migrate", d);
}

static void test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	kiln_store *s = NULL;
	char out[64];
	kiln_diag d;

	KT_OK(open_at(f->path, true, &s, &d));
	KT_OK(kiln_store_write(s, meta_fn, NULL, &d));
	kiln_store_close(s);
	KT_OK(open_at(f->path, false, &s, &d));
	KT_OK(kiln_store_meta_get(s, "installed-by", out, sizeof(out), &d));
	assert_string_equal(out, "test_migrate");
	kiln_store_close(s);
}

/* ------------------------------------------------------------ steps */

/* Step 1 claims the file for kiln, as the real v1 does. */
static const char *const step1[] = { "PRAGMA application_id = 1802071150",
				     "CREATE TABLE t1 (a INTEGER)", NULL };
static const char *const step2[] = { "CREATE TABLE t2 (a INTEGER)",
				     "INSERT INTO t2 VALUES (2)", NULL };
static const char *const step3[] = { "CREATE TABLE t3 (a INTEGER)", NULL };
static const char *const step4_bad[] = { "CREATE TABLE t4 (a INTEGER)",
					  "INSERT INTO nowhere VALUES (1)", NULL };

static const struct kiln_sqlite_migration steps[] = {
	{ 1, "one", step1, false },
	{ 2, "two", step2, false },
	{ 3, "three", step3, false },
	{ 4, "four fails", step4_bad, false },
};

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_steps_in_order_and_atomic(void **state)
{
	struct fx *f = *state;
	static const struct kiln_sqlite_migration gap[] = { { 1, "one", step1, false }, { 3, "x", step3, false } };
	sqlite3 *db = NULL;
	kiln_diag d;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	kiln_diag_clear(&d);
	KT_OK(kiln_sqlite_migrate_steps(db, f->path, steps, 2, &d));
	assert_int_equal(db_int(db, "PRAGMA user_version"), 2);
	assert_int_equal(db_int(db, "SELECT a FROM t2"), 2);
	/* A newer kiln adds step 3: only step 3 runs. */
	KT_OK(kiln_sqlite_migrate_steps(db, f->path, steps, 3, &d));
	assert_int_equal(db_int(db, "PRAGMA user_version"), 3);
	assert_int_equal(db_int(db, "SELECT count(*) FROM t2"), 1);
	/* A failing step leaves nothing of itself behind and the version where it was. */
	KT_ERR(kiln_sqlite_migrate_steps(db, f->path, steps, 4, &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "migrating the schema"));
	assert_int_equal(db_int(db, "PRAGMA user_version"), 3);
	assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 't4'"), 0);
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	/* Older code meets the newer file. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_sqlite_migrate_steps(db, f->path, steps, 2, &d), KILN_ERR_STORE_SCHEMA);
	kiln_diag_clear(&d);
	KT_ERR(kiln_sqlite_migrate_steps(db, f->path, gap, 2, &d), KILN_ERR_INTERNAL);
	KT_ERR(kiln_sqlite_migrate_steps(db, f->path, steps, 0, &d), KILN_ERR_ARG);
	sqlite3_close(db);
}

static void test_foreign_files_refused(void **state)
{
	struct fx *f = *state;
	char *other = kt_path(f->dir, "other.db");
	kiln_store *s = NULL;
	kiln_diag d;

	raw_exec(f->path, "CREATE TABLE customers (id INTEGER)");
	KT_ERR(open_at(f->path, false, &s, &d), KILN_ERR_STORE_SCHEMA);
	assert_non_null(strstr(d.text, "holds tables but no kiln schema version"));
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema"), 1);

	raw_exec(other, "PRAGMA application_id = 42");
	KT_ERR(open_at(other, false, &s, &d), KILN_ERR_STORE_SCHEMA);
	assert_non_null(strstr(d.text, "another application"));
	assert_null(s);
	free(other);
}

struct opener {
	const char *path;
	kiln_result r;
	kiln_diag d;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;
	kiln_store *s = NULL;

	o->r = open_at(o->path, true, &s, &o->d);
	kiln_store_close(s);
	return NULL;
}

static void test_concurrent_openers_migrate_once(void **state)
{
	struct fx *f = *state;
	struct opener o[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		o[i] = (struct opener){ .path = f->path };
		assert_int_equal(pthread_create(&th[i], NULL, opener_main, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (!kiln_is_ok(o[i].r))
			fail_msg("opener %d: %s", i, o[i].d.text);
	}
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), kiln_store_schema_version());
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'events'"),
			 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'nonces'"),
			 1);
}

/* ------------------------------------------------------------ v1's own rules */

static void refused(sqlite3 *db, const char *sql, const char *why)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
		fail_msg("accepted: %s", sql);
	if (err == NULL || strstr(err, why) == NULL)
		fail_msg("%s: got '%s', want '%s'", sql, err != NULL ? err : "(none)", why);
	sqlite3_free(err);
}

static void accepted(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
}

static void test_schema_rules(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;

	create_store(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	accepted(db, "PRAGMA foreign_keys = ON");
	accepted(db, "INSERT INTO products VALUES ('widget', 'production', 1)");
	refused(db, "INSERT INTO products VALUES ('w2', 'staging', 1)", "CHECK constraint failed");
	refused(db, "UPDATE products SET env = 'test'", "never changes");
	accepted(db, "INSERT INTO policies VALUES ('widget', 1, 'production', 'active', "
		     "zeroblob(32), 'y', 'a', 1)");
	accepted(db, "INSERT INTO policies VALUES ('widget', 2, 'production', 'pending', "
		     "zeroblob(32), 'y', 'a', 1)");
	refused(db, "UPDATE policies SET status = 'active' WHERE version = 2", "UNIQUE");
	refused(db, "INSERT INTO policies VALUES ('widget', 3, 'test', 'pending', zeroblob(32), "
		    "'y', 'a', 1)", "product's environment");
	refused(db, "INSERT INTO policies VALUES ('widget', 3, 'production', 'pending', "
		    "zeroblob(31), 'y', 'a', 1)", "CHECK constraint failed");
	refused(db, "INSERT INTO policies VALUES ('nosuch', 1, 'production', 'pending', "
		    "zeroblob(32), 'y', 'a', 1)", "FOREIGN KEY");

	accepted(db, "INSERT INTO cas (id, name, env, role, alg, token, key_label, serial, subject, "
		     "not_before, not_after, created) VALUES (1, 'root', 'production', 'root', 'p256', "
		     "'t', 'k', '01', 'CN=r', 1, 2, 3)");
	refused(db, "INSERT INTO cas (name, env, role, alg, token, key_label, serial, subject, "
		    "not_before, not_after, created) VALUES ('orphan', 'production', 'issuing', 'p256', "
		    "'t', 'k', '01', 'CN=r', 1, 2, 3)", "CHECK constraint failed");
	refused(db, "INSERT INTO cas (name, env, role, alg, token, key_label, parent_id, serial, "
		    "subject, not_before, not_after, created) VALUES ('t', 'test', 'issuing', 'p256', "
		    "'t', 'k', 1, '01', 'CN=r', 1, 2, 3)", "parent CA's environment");

	refused(db, "INSERT INTO devices (product, serial, policy_version, status, created) "
		    "VALUES ('widget', 'S', 'one', 'active', 1)", "cannot store TEXT value");
	refused(db, "INSERT INTO devices (product, serial, policy_version, status, created) "
		    "VALUES ('widget', 'S', 9, 'active', 1)", "FOREIGN KEY");
	accepted(db, "INSERT INTO devices (product, serial, policy_version, status, created) "
		     "VALUES ('widget', 'S', 1, 'active', 1)");
	refused(db, "INSERT INTO devices (product, serial, policy_version, status, created) "
		    "VALUES ('widget', 'S', 1, 'active', 1)", "UNIQUE");

	refused(db, "INSERT INTO certificates (serial, ca_id, kind, env, subject, spki_sha256, "
		    "not_before, not_after, issued, status, der) VALUES ('AB', 1, 'tls', "
		    "'production', 'CN', zeroblob(32), 1, 2, 3, 'valid', x'00')", "CHECK");
	refused(db, "INSERT INTO certificates (serial, ca_id, kind, env, subject, spki_sha256, "
		    "not_before, not_after, issued, status, der) VALUES ('ab', 1, 'tls', "
		    "'test', 'CN', zeroblob(32), 1, 2, 3, 'valid', x'00')", "environment");

	refused(db, "INSERT INTO events VALUES (1, 1, 't', 'a', 's', '{}')", "without a gap");
	refused(db, "INSERT INTO events VALUES (0, 1, 't', 'a', 's', '[1]')", "CHECK");
	refused(db, "INSERT INTO events VALUES (0, 1, 't', 'a', 's', 'nope')", "CHECK");
	accepted(db, "INSERT INTO events VALUES (0, 1, 't', 'a', 's', '{}')");
	refused(db, "UPDATE events SET actor = 'mallory'", "append-only");
	refused(db, "DELETE FROM events", "append-only");
	refused(db, "INSERT INTO identities VALUES ('x', 'root', '', '', 'active', 1)", "CHECK");
	sqlite3_close(db);
}

/* ------------------------------------------------------------ v1 to v2 */

static char *raw_text(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = strdup(sqlite3_column_type(st, 0) == SQLITE_NULL ? "" :
		   (const char *)sqlite3_column_text(st, 0));
	assert_non_null(v);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/*
 * Step 1 is what the v1 kiln ran: hashing its statements pins them, so an
 * edit to a released step (which would leave v1 files and new files with
 * different schemas) fails here rather than in the field.
 */
static void test_v1_statements_unchanged(void **state)
{
	const struct kiln_sqlite_migration *all;
	uint8_t md[32];
	char hex[65];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 0;

	(void)state;
	all = kiln_sqlite_migrations(&n);
	/* Steps 1, 2, 3, ... with no gap: ledger, revocation, lifecycle, governance, TPM after v2. */
	assert_true(n >= 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(all[i].version, (int)i + 1);
	/* Re-provisioning rebuilds the devices table. */
	assert_true(all[4].rebuild);
	assert_int_equal(all[n - 1].version, kiln_store_schema_version());
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	for (const char *const *q = all[0].sql; *q != NULL; q++) {
		assert_int_equal(EVP_DigestUpdate(ctx, *q, strlen(*q)), 1);
		assert_int_equal(EVP_DigestUpdate(ctx, "\n", 1), 1);
	}
	assert_int_equal(EVP_DigestFinal_ex(ctx, md, NULL), 1);
	EVP_MD_CTX_free(ctx);
	kiln_hex_encode(md, sizeof(md), hex);
	assert_string_equal(hex, V1_SHA256);
}

/* A file exactly as the v1 kiln left it: WAL, step 1 only, then rows of every kind. */
static void make_v1_file(const char *path)
{
	const struct kiln_sqlite_migration *all;
	sqlite3 *db = NULL;
	char *err = NULL;
	size_t n = 0;
	kiln_diag d;

	all = kiln_sqlite_migrations(&n);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	kiln_diag_clear(&d);
	KT_OK(kiln_sqlite_migrate_steps(db, path, all, 1, &d));
	assert_int_equal(db_int(db, "PRAGMA user_version"), 1);
	if (sqlite3_exec(db,
			 "PRAGMA foreign_keys = ON;"
			 "INSERT INTO meta VALUES ('installed-by', 'kiln v1');"
			 "INSERT INTO products VALUES ('widget', 'production', 1);"
			 "INSERT INTO policies VALUES ('widget', 1, 'production', 'active', "
			 "  zeroblob(32), 'product: widget', 'alice', 1);"
			 "INSERT INTO cas (id, name, env, role, alg, token, key_label, serial, subject, "
			 "  not_before, not_after, created) VALUES (1, 'production-root', 'production', "
			 "  'root', 'p256', 't', 'k', '01', 'CN=r', 1, 2, 3);"
			 "INSERT INTO devices (product, serial, policy_version, lot, status, created) "
			 "  VALUES ('widget', 'SN1', 1, 'LOT-A', 'active', 2);"
			 "INSERT INTO certificates (serial, ca_id, kind, env, product, device_id, subject, "
			 "  spki_sha256, not_before, not_after, issued, status, der) VALUES ('0a', 1, "
			 "  'device', 'production', 'widget', 1, 'CN=SN1', zeroblob(32), 1, 2, 3, 'valid', "
			 "  x'00');"
			 "INSERT INTO identities VALUES ('station-1', 'station', 'production', '0b', "
			 "  'active', 4), ('alice', 'admin', '', '', 'active', 5), "
			 "  ('bob', 'auditor', '', '', 'revoked', 6);"
			 "INSERT INTO events VALUES (0, 7, 'issuance', 'station-1', '0a', '{\"n\":1}');",
			 NULL, NULL, &err) != SQLITE_OK)
		fail_msg("v1 rows: %s", err != NULL ? err : "?");
	sqlite3_close(db);
}

static kiln_result line_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_batch_rec b = { 0 };

	(void)ctx;
	memcpy(b.lot, "LOT-B", 6);
	memcpy(b.product, "widget", 7);
	b.quantity = 2;
	memcpy(b.opened_by, "olivia", 7);
	KILN_GUARD(kiln_store_tx_batch_add(tx, &b, d));
	return kiln_store_tx_batch_consume(tx, "LOT-B", "widget", NULL, d);
}

static const char schema_sql[] =
	"SELECT group_concat(type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, ''), "
	"char(10)) FROM (SELECT * FROM sqlite_schema ORDER BY type, name)";

static void test_v1_file_upgrades(void **state)
{
	struct fx *f = *state;
	char *fresh_path = kt_path(f->dir, "fresh.db");
	struct kiln_identity_rec id = { 0 };
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec cert = { 0 };
	struct kiln_batch_rec b = { 0 };
	struct kiln_event_rec *events = NULL;
	kiln_store *s = NULL;
	char out[32], *upgraded, *fresh;
	int64_t cnt = -1;
	size_t n = 0;
	kiln_diag d;

	make_v1_file(f->path);
	KT_OK(open_at(f->path, false, &s, &d));
	/* Every v1 row is still there and readable through the API. */
	KT_OK(kiln_store_meta_get(s, "installed-by", out, sizeof(out), &d));
	assert_string_equal(out, "kiln v1");
	KT_OK(kiln_store_device_get(s, "widget/SN1", &dev, &d));
	assert_string_equal(dev.lot, "LOT-A");
	KT_OK(kiln_store_cert_get(s, "0a", &cert, &d));
	assert_int_equal(cert.device_id, dev.id);
	kiln_cert_rec_cleanup(&cert);
	KT_OK(kiln_store_identity_by_cert(s, "0b", &id, &d));
	assert_string_equal(id.name, "station-1");
	KT_OK(kiln_store_event_list(s, 0, 0, &events, &n, &d));
	assert_int_equal(n, 1);
	assert_string_equal(events[0].detail_json, "{\"n\":1}");
	kiln_store_event_list_free(events, n);
	KT_OK(kiln_store_count(s, "identities", &cnt, &d));
	assert_int_equal(cnt, 3);
	/* And the v2 tables work in it, against v1's products. */
	KT_OK(kiln_store_write(s, line_fn, NULL, &d));
	KT_OK(kiln_store_batch_get(s, "LOT-B", &b, &d));
	assert_int_equal(b.issued, 1);
	kiln_store_close(s);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), kiln_store_schema_version());

	/* The upgraded file's schema is a fresh file's, object for object, byte for byte. */
	create_store(fresh_path);
	upgraded = raw_text(f->path, schema_sql);
	fresh = raw_text(fresh_path, schema_sql);
	assert_string_equal(upgraded, fresh);
	assert_non_null(strstr(fresh, "index identities_cert identities"));
	free(upgraded);
	free(fresh);
	free(fresh_path);
}

/*
 * A v1 file in which two identities hold one certificate cannot take the v2
 * index: the upgrade fails whole (no v2 table, version still 1), kiln
 * refuses to open the file, and once the data is fixed the upgrade runs.
 */
static void test_v1_upgrade_atomic(void **state)
{
	struct fx *f = *state;
	kiln_store *s = NULL;
	kiln_diag d;

	make_v1_file(f->path);
	raw_exec(f->path, "UPDATE identities SET cert_serial = '0b' WHERE name = 'alice'");
	KT_ERR(open_at(f->path, false, &s, &d), KILN_ERR_ARG);
	assert_null(s);
	assert_non_null(strstr(d.text, "migrating the schema"));
	assert_non_null(strstr(d.text, "UNIQUE constraint failed: identities.cert_serial"));
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
					  "('batches', 'nonces', 'batches_product', 'identities_cert')"),
			 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM identities"), 3);

	raw_exec(f->path, "UPDATE identities SET cert_serial = '' WHERE name = 'alice'");
	KT_OK(open_at(f->path, false, &s, &d));
	kiln_store_close(s);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), kiln_store_schema_version());
}

/* ------------------------------------------------------------ v2's own rules */

static void test_schema_v2_rules(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;

	create_store(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	accepted(db, "PRAGMA foreign_keys = ON");
	accepted(db, "INSERT INTO products VALUES ('widget', 'production', 1)");

	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L0', 'nosuch', 1, 'open', 'o', 1)", "FOREIGN KEY");
	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L0', 'widget', 0, 'open', 'o', 1)", "CHECK constraint failed");
	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L0', 'widget', 1000000001, 'open', 'o', 1)", "CHECK constraint failed");
	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L0', 'widget', 'ten', 'open', 'o', 1)", "cannot store TEXT value");
	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L0', 'widget', 1, 'paused', 'o', 1)", "CHECK constraint failed");
	refused(db, "INSERT INTO batches (lot, product, quantity, issued, status, opened_by, "
		    "created) VALUES ('L0', 'widget', 1, 2, 'open', 'o', 1)", "CHECK constraint failed");
	accepted(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		     "VALUES ('L1', 'widget', 2, 'open', 'o', 1)");
	refused(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		    "VALUES ('L1', 'widget', 2, 'open', 'o', 1)", "UNIQUE");
	refused(db, "UPDATE batches SET issued = 3", "CHECK constraint failed");
	accepted(db, "UPDATE batches SET issued = 1");
	refused(db, "UPDATE batches SET issued = 0", "never goes down");
	accepted(db, "UPDATE batches SET status = 'closed', closed = 5");
	refused(db, "UPDATE batches SET status = 'open'", "stays closed");
	refused(db, "UPDATE batches SET issued = 2", "stays closed");

	accepted(db, "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		     "VALUES ('L2', 'widget', 2, 'open', 'o', 1)");
	refused(db, "INSERT INTO nonces (nonce_sha256, station, lot, issued, expires) "
		    "VALUES (zeroblob(31), 's', 'L2', 1, 2)", "CHECK constraint failed");
	refused(db, "INSERT INTO nonces (nonce_sha256, station, lot, issued, expires) "
		    "VALUES (zeroblob(32), 's', 'nosuch', 1, 2)", "FOREIGN KEY");
	accepted(db, "INSERT INTO nonces (nonce_sha256, station, lot, issued, expires) "
		     "VALUES (zeroblob(32), 's', 'L2', 1, 2)");
	refused(db, "INSERT INTO nonces (nonce_sha256, station, lot, issued, expires) "
		    "VALUES (zeroblob(32), 't', 'L2', 1, 2)", "UNIQUE");
	refused(db, "UPDATE nonces SET request_sha256 = x'01'", "CHECK constraint failed");
	refused(db, "UPDATE nonces SET station = 't'", "never change");
	refused(db, "UPDATE nonces SET expires = 99", "never change");
	accepted(db, "UPDATE nonces SET used = 5, request_sha256 = zeroblob(32), cert_serial = 'ab'");
	refused(db, "UPDATE nonces SET used = 0", "used once");
	refused(db, "UPDATE nonces SET cert_serial = 'cd'", "used once");

	/* v3: one activation per existing nonce, a 32-byte binding, never changed. */
	refused(db, "INSERT INTO activations VALUES (zeroblob(32), zeroblob(31), 1)",
		"CHECK constraint failed");
	refused(db, "INSERT INTO activations VALUES (x'01', zeroblob(32), 1)", "FOREIGN KEY");
	accepted(db, "INSERT INTO activations VALUES (zeroblob(32), zeroblob(32), 1)");
	refused(db, "INSERT INTO activations VALUES (zeroblob(32), zeroblob(32), 2)", "UNIQUE");
	refused(db, "UPDATE activations SET binding_sha256 = x'00'", "never changes");

	accepted(db, "INSERT INTO identities VALUES ('a', 'admin', '', 'ab', 'active', 1), "
		     "('b', 'admin', '', '', 'active', 1), ('c', 'admin', '', '', 'active', 1)");
	refused(db, "INSERT INTO identities VALUES ('d', 'admin', '', 'ab', 'active', 1)", "UNIQUE");
	sqlite3_close(db);
}

/* ------------------------------------------------------------ v3's own rules */

static void test_schema_v3_rules(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;

	make_v1_file(f->path);
	create_store(f->path); /* v1 rows upgrade through v2 to v3 */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	accepted(db, "PRAGMA foreign_keys = ON");
	assert_int_equal(db_int(db, "SELECT count(*) FROM revocations"), 0);
	refused(db, "UPDATE certificates SET status = 'revoked', revoked_at = 9, reason = 'bogus' "
		    "WHERE serial = '0a'", "CHECK constraint failed");
	assert_int_equal(db_int(db, "SELECT count(*) FROM revocations"), 0);
	/* Revoked by any path, the trigger records it. */
	accepted(db, "UPDATE certificates SET status = 'revoked', revoked_at = 9, "
		     "reason = 'keyCompromise' WHERE serial = '0a'");
	assert_int_equal(db_int(db, "SELECT count(*) FROM revocations WHERE serial = '0a' AND "
				    "ca_id = 1 AND revoked_at = 9 AND reason = 'keyCompromise'"), 1);
	refused(db, "UPDATE certificates SET status = 'valid' WHERE serial = '0a'", "final");
	refused(db, "UPDATE certificates SET reason = 'superseded' WHERE serial = '0a'", "final");
	refused(db, "UPDATE revocations SET revoked_at = 10", "never changes");
	refused(db, "DELETE FROM revocations", "never deleted");
	accepted(db, "UPDATE revocations SET visible_ms = 120");
	refused(db, "UPDATE revocations SET visible_ms = -1", "CHECK constraint failed");

	accepted(db, "INSERT INTO crls VALUES (1, 1, 10, 20, 1, 1, zeroblob(32))");
	refused(db, "INSERT INTO crls VALUES (1, 1, 10, 20, 1, 1, zeroblob(32))", "only grows");
	refused(db, "INSERT INTO crls VALUES (1, 3, 20, 20, 1, 1, zeroblob(32))",
		"CHECK constraint failed");
	refused(db, "INSERT INTO crls VALUES (9, 3, 10, 20, 1, 1, zeroblob(32))", "FOREIGN KEY");
	accepted(db, "INSERT INTO crls VALUES (1, 3, 11, 21, 1, 1, zeroblob(32))");
	refused(db, "INSERT INTO crls VALUES (1, 2, 12, 22, 1, 1, zeroblob(32))", "only grows");
	sqlite3_close(db);
}

/* Schema 8: a v1 file's CAs become generation 1, active; rotation's rules hold in SQL. */
static void test_schema_v8_rules(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = NULL;

	make_v1_file(f->path);
	create_store(f->path);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	accepted(db, "PRAGMA foreign_keys = ON");
	assert_int_equal(db_int(db, "SELECT count(*) FROM cas WHERE generation = 1 AND "
				    "status = 'active'"), 1);
	accepted(db, "INSERT INTO cas (id, name, env, role, alg, token, key_label, parent_id, serial, "
		     "subject, not_before, not_after, created) VALUES (2, 'production-issuing', "
		     "'production', 'issuing', 'p256', 't', 'k2', 1, '02', 'CN=i', 1, 2, 3)");
	refused(db, "INSERT INTO cas (name, env, role, alg, token, key_label, parent_id, serial, "
		    "subject, not_before, not_after, created, generation) VALUES ('production-issuing-2', "
		    "'production', 'issuing', 'p256', 't', 'k3', 1, '03', 'CN=i2', 1, 2, 3, 2)", "UNIQUE");
	refused(db, "UPDATE cas SET status = 'paused' WHERE id = 2", "CHECK constraint failed");
	refused(db, "UPDATE cas SET status = 'retired' WHERE id = 1", "only issuing CAs");
	refused(db, "UPDATE cas SET generation = 0 WHERE id = 2", "CHECK constraint failed");
	accepted(db, "UPDATE cas SET status = 'retired' WHERE id = 2");
	refused(db, "UPDATE cas SET status = 'active' WHERE id = 2", "stays retired");
	accepted(db, "INSERT INTO cas (name, env, role, alg, token, key_label, parent_id, serial, "
		     "subject, not_before, not_after, created, generation) VALUES ('production-issuing-2', "
		     "'production', 'issuing', 'p256', 't', 'k3', 1, '03', 'CN=i2', 1, 2, 3, 2)");
	refused(db, "INSERT INTO cas (name, env, role, alg, token, key_label, parent_id, serial, "
		    "subject, not_before, not_after, created, generation, status) VALUES ('x', "
		    "'production', 'issuing', 'p256', 't', 'k4', 1, '04', 'CN=x', 1, 2, 3, 2, 'retired')",
		"UNIQUE");
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_file_gets_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_v3_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_v8_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steps_in_order_and_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_openers_migrate_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_rules, setup, teardown),
		cmocka_unit_test(test_v1_statements_unchanged),
		cmocka_unit_test_setup_teardown(test_v1_file_upgrades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_upgrade_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_v2_rules, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
