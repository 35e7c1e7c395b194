/*
 * SQLite schema migrations. PRAGMA user_version holds the schema version of
 * the file; step N brings it from N-1 to N inside its own transaction (BEGIN
 * IMMEDIATE, so two processes opening one file migrate it once). A file whose
 * version is newer than this code is refused: old code must never write a
 * schema it does not understand.
 *
 * Steps are append-only: never edit a released step, add the next one.
 */
#include "store/store_impl.h"

#include <stdio.h>
#include <string.h>

/*
 * Version 1. STRICT tables, so a value of the wrong type is an error rather
 * than silently stored. The CHECKs and triggers repeat the rules kiln relies
 * on (environments never mix, one active policy per product, the event log is
 * append-only and gap-free), so they hold even for writes from outside kiln.
 */
static const char *const schema_v1[] = {
	"PRAGMA application_id = 1802071150" /* KILN_SQLITE_APP_ID */,
	"CREATE TABLE meta (\n"
	"  key   TEXT PRIMARY KEY NOT NULL,\n"
	"  value TEXT NOT NULL\n"
	") STRICT",
	"CREATE TABLE products (\n"
	"  id      TEXT PRIMARY KEY NOT NULL,\n"
	"  env     TEXT NOT NULL CHECK (env IN ('production', 'test')),\n"
	"  created INTEGER NOT NULL\n"
	") STRICT",
	"CREATE TRIGGER products_env_fixed BEFORE UPDATE OF env ON products\n"
	"  WHEN NEW.env IS NOT OLD.env\n"
	"  BEGIN SELECT RAISE(ABORT, 'the environment of a product never changes'); END",
	"CREATE TABLE policies (\n"
	"  product  TEXT NOT NULL REFERENCES products(id),\n"
	"  version  INTEGER NOT NULL CHECK (version >= 1),\n"
	"  env      TEXT NOT NULL CHECK (env IN ('production', 'test')),\n"
	"  status   TEXT NOT NULL CHECK (status IN ('active', 'pending', 'superseded')),\n"
	"  sha256   BLOB NOT NULL CHECK (length(sha256) = 32),\n"
	"  yaml     TEXT NOT NULL,\n"
	"  added_by TEXT NOT NULL,\n"
	"  created  INTEGER NOT NULL,\n"
	"  PRIMARY KEY (product, version)\n"
	") STRICT",
	"CREATE UNIQUE INDEX policies_one_active ON policies(product) WHERE status = 'active'",
	"CREATE TRIGGER policies_env BEFORE INSERT ON policies\n"
	"  WHEN EXISTS (SELECT 1 FROM products WHERE id = NEW.product AND env <> NEW.env)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a policy must be in its product''s environment'); END",
	"CREATE TABLE cas (\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  name       TEXT NOT NULL UNIQUE,\n"
	"  env        TEXT NOT NULL CHECK (env IN ('production', 'test', 'service')),\n"
	"  role       TEXT NOT NULL CHECK (role IN ('root', 'issuing', 'ocsp')),\n"
	"  alg        TEXT NOT NULL,\n"
	"  token      TEXT NOT NULL,\n"
	"  key_label  TEXT NOT NULL,\n"
	"  key_id     BLOB,\n"
	"  parent_id  INTEGER REFERENCES cas(id),\n"
	"  serial     TEXT NOT NULL,\n"
	"  subject    TEXT NOT NULL,\n"
	"  not_before INTEGER NOT NULL,\n"
	"  not_after  INTEGER NOT NULL,\n"
	"  created    INTEGER NOT NULL,\n"
	"  cert_der   BLOB,\n"
	"  CHECK ((role = 'root') = (parent_id IS NULL))\n"
	") STRICT",
	"CREATE TRIGGER cas_env BEFORE INSERT ON cas\n"
	"  WHEN EXISTS (SELECT 1 FROM cas WHERE id = NEW.parent_id AND env <> NEW.env)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a CA must be in its parent CA''s environment'); END",
	"CREATE TABLE devices (\n"
	"  id                 INTEGER PRIMARY KEY,\n"
	"  product            TEXT NOT NULL REFERENCES products(id),\n"
	"  serial             TEXT NOT NULL,\n"
	"  policy_version     INTEGER NOT NULL,\n"
	"  lot                TEXT NOT NULL DEFAULT '',\n"
	"  station            TEXT NOT NULL DEFAULT '',\n"
	"  operator           TEXT NOT NULL DEFAULT '',\n"
	"  firmware_version   TEXT NOT NULL DEFAULT '',\n"
	"  firmware_sha256    TEXT NOT NULL DEFAULT '',\n"
	"  attestation_sha256 TEXT NOT NULL DEFAULT '',\n"
	"  components         TEXT NOT NULL DEFAULT '',\n"
	"  cert_serial        TEXT NOT NULL DEFAULT '',\n"
	"  status             TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'retired')),\n"
	"  created            INTEGER NOT NULL,\n"
	"  UNIQUE (product, serial),\n"
	"  FOREIGN KEY (product, policy_version) REFERENCES policies(product, version)\n"
	") STRICT",
	"CREATE INDEX devices_serial ON devices(serial)",
	"CREATE INDEX devices_lot ON devices(product, lot)",
	"CREATE TABLE certificates (\n"
	"  serial      TEXT PRIMARY KEY NOT NULL\n"
	"              CHECK (length(serial) BETWEEN 1 AND 40 AND serial NOT GLOB '*[^0-9a-f]*'),\n"
	"  ca_id       INTEGER NOT NULL REFERENCES cas(id),\n"
	"  kind        TEXT NOT NULL,\n"
	"  env         TEXT NOT NULL CHECK (env IN ('production', 'test', 'service')),\n"
	"  product     TEXT REFERENCES products(id),\n"
	"  device_id   INTEGER REFERENCES devices(id),\n"
	"  subject     TEXT NOT NULL,\n"
	"  spki_sha256 BLOB NOT NULL CHECK (length(spki_sha256) = 32),\n"
	"  not_before  INTEGER NOT NULL,\n"
	"  not_after   INTEGER NOT NULL,\n"
	"  issued      INTEGER NOT NULL,\n"
	"  status      TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),\n"
	"  revoked_at  INTEGER,\n"
	"  reason      TEXT,\n"
	"  der         BLOB NOT NULL\n"
	") STRICT",
	"CREATE INDEX certificates_spki ON certificates(spki_sha256)",
	"CREATE INDEX certificates_ca ON certificates(ca_id, status)",
	"CREATE INDEX certificates_device ON certificates(device_id)",
	"CREATE TRIGGER certificates_env BEFORE INSERT ON certificates\n"
	"  WHEN EXISTS (SELECT 1 FROM cas WHERE id = NEW.ca_id AND env <> NEW.env)\n"
	"    OR EXISTS (SELECT 1 FROM products WHERE id = NEW.product AND env <> NEW.env)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a certificate must be in its CA''s and its product''s "
	"environment'); END",
	"CREATE TABLE identities (\n"
	"  name        TEXT PRIMARY KEY NOT NULL,\n"
	"  role        TEXT NOT NULL CHECK (role IN ('admin', 'officer', 'engineer', 'operator',\n"
	"                                            'station', 'auditor')),\n"
	"  env         TEXT NOT NULL CHECK (env IN ('production', 'test', '')),\n"
	"  cert_serial TEXT NOT NULL DEFAULT '',\n"
	"  status      TEXT NOT NULL CHECK (status IN ('active', 'revoked')),\n"
	"  created     INTEGER NOT NULL\n"
	") STRICT",
	"CREATE TABLE events (\n"
	"  seq     INTEGER PRIMARY KEY CHECK (seq >= 0),\n"
	"  time    INTEGER NOT NULL,\n"
	"  type    TEXT NOT NULL,\n"
	"  actor   TEXT NOT NULL,\n"
	"  subject TEXT NOT NULL,\n"
	"  detail  TEXT NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object')\n"
	") STRICT",
	"CREATE TRIGGER events_contiguous BEFORE INSERT ON events\n"
	"  WHEN NEW.seq IS NOT (SELECT coalesce(max(seq) + 1, 0) FROM events)\n"
	"  BEGIN SELECT RAISE(ABORT, 'event seq must continue the log without a gap'); END",
	"CREATE TRIGGER events_no_update BEFORE UPDATE ON events\n"
	"  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END",
	"CREATE TRIGGER events_no_delete BEFORE DELETE ON events\n"
	"  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END",
	NULL,
};

/*
 * Version 2: the factory line. Batches (lots) are the issuance budget of a
 * product; nonces bind a provisioning attempt to a station, a lot and an
 * expiry, and are used once. v1 tables are left as they are (a file from v1
 * upgrades in place): only an index is added to identities, so a client
 * certificate maps to one identity and that lookup is an index search.
 *
 * The triggers repeat what the typed operations rely on, as v1's do: a closed
 * batch stays closed and issues nothing more, the issued count never goes
 * down, and a nonce's binding never changes and is used once.
 */
static const char *const schema_v2[] = {
	"CREATE TABLE batches (\n"
	"  lot       TEXT PRIMARY KEY NOT NULL,\n"
	"  product   TEXT NOT NULL REFERENCES products(id),\n"
	"  quantity  INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000000000),\n"
	"  issued    INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0 AND issued <= quantity),\n"
	"  line      TEXT NOT NULL DEFAULT '',\n"
	"  station   TEXT NOT NULL DEFAULT '',\n"
	"  status    TEXT NOT NULL CHECK (status IN ('open', 'closed')),\n"
	"  opened_by TEXT NOT NULL,\n"
	"  created   INTEGER NOT NULL,\n"
	"  closed    INTEGER NOT NULL DEFAULT 0\n"
	") STRICT",
	"CREATE INDEX batches_product ON batches(product)",
	"CREATE TRIGGER batches_closed_final BEFORE UPDATE ON batches\n"
	"  WHEN OLD.status = 'closed' AND (NEW.status <> 'closed' OR NEW.issued <> OLD.issued)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a closed batch stays closed and issues nothing more'); END",
	"CREATE TRIGGER batches_issued_grows BEFORE UPDATE OF issued ON batches\n"
	"  WHEN NEW.issued < OLD.issued\n"
	"  BEGIN SELECT RAISE(ABORT, 'the issued count of a batch never goes down'); END",
	"CREATE TABLE nonces (\n"
	"  nonce_sha256   BLOB PRIMARY KEY NOT NULL CHECK (length(nonce_sha256) = 32),\n"
	"  station        TEXT NOT NULL,\n"
	"  lot            TEXT NOT NULL REFERENCES batches(lot),\n"
	"  issued         INTEGER NOT NULL,\n"
	"  expires        INTEGER NOT NULL,\n"
	"  used           INTEGER NOT NULL DEFAULT 0,\n"
	"  request_sha256 BLOB CHECK (request_sha256 IS NULL OR length(request_sha256) = 32),\n"
	"  cert_serial    TEXT\n"
	") STRICT, WITHOUT ROWID",
	"CREATE TRIGGER nonces_used_once BEFORE UPDATE ON nonces\n"
	"  WHEN OLD.used <> 0\n"
	"  BEGIN SELECT RAISE(ABORT, 'a nonce is used once'); END",
	"CREATE TRIGGER nonces_binding_fixed BEFORE UPDATE OF nonce_sha256, station, lot, issued, "
	"expires ON nonces\n"
	"  WHEN NEW.nonce_sha256 IS NOT OLD.nonce_sha256 OR NEW.station IS NOT OLD.station\n"
	"    OR NEW.lot IS NOT OLD.lot OR NEW.issued IS NOT OLD.issued\n"
	"    OR NEW.expires IS NOT OLD.expires\n"
	"  BEGIN SELECT RAISE(ABORT, 'a nonce''s station, lot and expiry never change'); END",
	"CREATE UNIQUE INDEX identities_cert ON identities(cert_serial) WHERE cert_serial <> ''",
	NULL,
};

/*
 * Version 3: TPM 2.0 credential activation (issue 4). For a nonce of a tpm2
 * product kiln wraps a random secret to the device's EK for its AK's name
 * (provision/activate); the secret itself is never stored, only the SHA-256
 * binding of secret, AK name and EK certificate that finish checks. One
 * activation per nonce, never changed.
 */
static const char *const schema_v3[] = {
	"CREATE TABLE activations (\n"
	"  nonce_sha256   BLOB PRIMARY KEY NOT NULL REFERENCES nonces(nonce_sha256),\n"
	"  binding_sha256 BLOB NOT NULL CHECK (length(binding_sha256) = 32),\n"
	"  created        INTEGER NOT NULL\n"
	") STRICT, WITHOUT ROWID",
	"CREATE TRIGGER activations_fixed BEFORE UPDATE ON activations\n"
	"  BEGIN SELECT RAISE(ABORT, 'an activation never changes'); END",
	NULL,
};

static const struct kiln_sqlite_migration migrations[] = {
	{ 1, "initial schema", schema_v1 },
	{ 2, "batches, nonces, identities by certificate", schema_v2 },
	{ 3, "TPM 2.0 credential activations", schema_v3 },
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int kiln_store_schema_version(void)
{
	return migrations[N_MIGRATIONS - 1].version;
}

const struct kiln_sqlite_migration *kiln_sqlite_migrations(size_t *n)
{
	*n = N_MIGRATIONS;
	return migrations;
}

static kiln_result exec(sqlite3 *db, const char *sql, const char *what, kiln_diag *d)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(db, rc, what, d);
	return kiln_ok();
}

static kiln_result pragma_int(sqlite3 *db, const char *sql, int64_t *out, kiln_diag *d)
{
	sqlite3_stmt *st = NULL;
	kiln_result r = kiln_ok();
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		r = kiln_sqlite_fail(db, rc, "reading the schema version", d);
	(void)sqlite3_finalize(st);
	return r;
}

/*
 * A file kiln did not make is refused before anything is written to it:
 * another application's database (application_id), or a database with
 * tables but no kiln schema version.
 */
static kiln_result check_owner(sqlite3 *db, const char *path, int64_t version, kiln_diag *d)
{
	int64_t app = 0, tables = 0;

	KILN_GUARD(pragma_int(db, "PRAGMA application_id", &app, d));
	if (app != KILN_SQLITE_APP_ID && (app != 0 || version != 0))
		return kiln_diag_set(d, KILN_ERR_STORE_SCHEMA,
				     "%s is an SQLite database of another application; point kiln "
				     "at its own inventory", path);
	if (version != 0)
		return kiln_ok();
	KILN_GUARD(pragma_int(db, "SELECT count(*) FROM sqlite_schema", &tables, d));
	if (tables != 0)
		return kiln_diag_set(d, KILN_ERR_STORE_SCHEMA,
				     "%s holds tables but no kiln schema version; point kiln at its "
				     "own inventory", path);
	return kiln_ok();
}

/* One step, or nothing when another process got there first. */
static kiln_result step(sqlite3 *db, const char *path, const struct kiln_sqlite_migration *steps,
			size_t n, bool *more, kiln_diag *d)
{
	const struct kiln_sqlite_migration *m;
	char sql[64];
	int64_t v = 0;
	kiln_result r;

	*more = false;
	KILN_GUARD(exec(db, "BEGIN IMMEDIATE", "starting a migration", d));
	KILN_TRY(r, pragma_int(db, "PRAGMA user_version", &v, d));
	if (v < 0 || (uint64_t)v > n) {
		r = kiln_diag_set(d, KILN_ERR_STORE_SCHEMA,
				  "inventory %s has schema version %lld but this kiln knows only up "
				  "to %d; upgrade kiln", path, (long long)v, steps[n - 1].version);
		goto out;
	}
	KILN_TRY(r, check_owner(db, path, v, d));
	if ((uint64_t)v == n)
		return exec(db, "COMMIT", "finishing a migration", d);
	m = &steps[v];
	for (const char *const *q = m->sql; *q != NULL; q++)
		KILN_TRY(r, exec(db, *q, "migrating the schema", d));
	(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", m->version);
	KILN_TRY(r, exec(db, sql, "recording the schema version", d));
	KILN_TRY(r, exec(db, "COMMIT", "committing a migration", d));
	*more = true;
	return kiln_ok();
out:
	if (sqlite3_get_autocommit(db) == 0)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

kiln_result kiln_sqlite_migrate_steps(sqlite3 *db, const char *path,
				      const struct kiln_sqlite_migration *steps, size_t n,
				      kiln_diag *d)
{
	bool more = true;

	KILN_ENSURE(db != NULL && path != NULL && steps != NULL && n > 0, KILN_ERR_ARG);
	for (size_t i = 0; i < n; i++) {
		if (KILN_NEVER(steps[i].version != (int)i + 1 || steps[i].sql == NULL))
			return kiln_diag_set(d, KILN_ERR_INTERNAL, "migration %zu is misnumbered", i);
	}
	while (more)
		KILN_GUARD(step(db, path, steps, n, &more, d));
	return kiln_ok();
}

kiln_result kiln_sqlite_migrate(sqlite3 *db, const char *path, kiln_diag *d)
{
	return kiln_sqlite_migrate_steps(db, path, migrations, N_MIGRATIONS, d);
}
