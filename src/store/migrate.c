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
 * Version 3: the ledger (Merkle log, issue 6). ledger_nodes holds the hashes
 * of complete subtrees of the RFC 9162 tree over the events (level 0: leaf
 * hashes), derived from the events so that proofs are O(log n) reads; it is
 * never trusted without a signed root. checkpoints holds the signed notes.
 * Both are append-only, like events. events_subject finds a device's
 * issuance event (subject = certificate serial) for its inclusion proof.
 */
static const char *const schema_v3[] = {
	"CREATE TABLE ledger_nodes (\n"
	"  level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 62),\n"
	"  idx   INTEGER NOT NULL CHECK (idx >= 0),\n"
	"  hash  BLOB NOT NULL CHECK (length(hash) = 32),\n"
	"  PRIMARY KEY (level, idx)\n"
	") STRICT, WITHOUT ROWID",
	"CREATE TRIGGER ledger_nodes_no_update BEFORE UPDATE ON ledger_nodes\n"
	"  BEGIN SELECT RAISE(ABORT, 'ledger nodes are append-only'); END",
	"CREATE TRIGGER ledger_nodes_no_delete BEFORE DELETE ON ledger_nodes\n"
	"  BEGIN SELECT RAISE(ABORT, 'ledger nodes are append-only'); END",
	"CREATE TABLE checkpoints (\n"
	"  size INTEGER PRIMARY KEY CHECK (size >= 0),\n"
	"  root BLOB NOT NULL CHECK (length(root) = 32),\n"
	"  time INTEGER NOT NULL,\n"
	"  note TEXT NOT NULL\n"
	") STRICT",
	"CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints\n"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END",
	"CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints\n"
	"  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END",
	"CREATE INDEX events_subject ON events(type, subject)",
	NULL,
};

/*
 * Version 4: revocation, CRLs and OCSP. A certificate that becomes revoked
 * appends a row to revocations, by trigger, whichever code path revoked it
 * (kiln revoke, the API, re-provisioning, retirement): the largest seq is the
 * revocation generation that kiln serve watches to refresh its CRLs and its
 * OCSP responses. A revocation is final. recorded_ms is when the row was
 * written (the commit, to the millisecond); visible_ms is filled in by kiln
 * serve: from that moment to an OCSP response saying revoked.
 * crls records every CRL issued per CA; its number only grows.
 */
static const char *const schema_v4[] = {
	"CREATE TABLE revocations (\n"
	"  seq        INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  serial     TEXT NOT NULL UNIQUE REFERENCES certificates(serial),\n"
	"  ca_id      INTEGER NOT NULL REFERENCES cas(id),\n"
	"  revoked_at INTEGER NOT NULL,\n"
	"  reason     TEXT NOT NULL CHECK (reason IN ('unspecified', 'keyCompromise',\n"
	"               'cACompromise', 'affiliationChanged', 'superseded',\n"
	"               'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn',\n"
	"               'aACompromise')),\n"
	"  recorded_ms INTEGER NOT NULL,\n"
	"  visible_ms INTEGER CHECK (visible_ms IS NULL OR visible_ms >= 0)\n"
	") STRICT",
	"CREATE INDEX revocations_ca ON revocations(ca_id, serial)",
	"CREATE TRIGGER certificates_revocation AFTER UPDATE OF status ON certificates\n"
	"  WHEN OLD.status = 'valid' AND NEW.status = 'revoked'\n"
	"  BEGIN INSERT INTO revocations (serial, ca_id, revoked_at, reason, recorded_ms)\n"
	"    VALUES (NEW.serial, NEW.ca_id, coalesce(NEW.revoked_at, CAST(strftime('%s', 'now') AS "
	"INTEGER)),\n"
	"            coalesce(NEW.reason, 'unspecified'),\n"
	"            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));\n"
	"  END",
	"CREATE TRIGGER certificates_revoked_final BEFORE UPDATE ON certificates\n"
	"  WHEN OLD.status = 'revoked' AND (NEW.status IS NOT 'revoked'\n"
	"    OR NEW.revoked_at IS NOT OLD.revoked_at OR NEW.reason IS NOT OLD.reason)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a revocation is final'); END",
	"CREATE TRIGGER revocations_fixed BEFORE UPDATE OF seq, serial, ca_id, revoked_at, reason, "
	"recorded_ms ON revocations\n"
	"  BEGIN SELECT RAISE(ABORT, 'a revocation record never changes'); END",
	"CREATE TRIGGER revocations_no_delete BEFORE DELETE ON revocations\n"
	"  BEGIN SELECT RAISE(ABORT, 'a revocation record is never deleted'); END",
	"CREATE TABLE crls (\n"
	"  ca_id          INTEGER NOT NULL REFERENCES cas(id),\n"
	"  number         INTEGER NOT NULL CHECK (number >= 1),\n"
	"  this_update    INTEGER NOT NULL,\n"
	"  next_update    INTEGER NOT NULL CHECK (next_update > this_update),\n"
	"  revocation_seq INTEGER NOT NULL CHECK (revocation_seq >= 0),\n"
	"  entries        INTEGER NOT NULL CHECK (entries >= 0),\n"
	"  sha256         BLOB NOT NULL CHECK (length(sha256) = 32),\n"
	"  PRIMARY KEY (ca_id, number)\n"
	") STRICT",
	"CREATE TRIGGER crls_number_grows BEFORE INSERT ON crls\n"
	"  WHEN NEW.number <= (SELECT coalesce(max(number), 0) FROM crls WHERE ca_id = NEW.ca_id)\n"
	"  BEGIN SELECT RAISE(ABORT, 'a CRL number only grows'); END",
	NULL,
};

/*
 * Version 5: re-provisioning (kiln device reprovision). A compromised or
 * repaired device gets a new device record after fresh attestation; the new
 * record names the one it replaces (replaces), and the old one stops being
 * the live record of its product and serial (live = 0), so (product, serial)
 * is unique among live records only. The devices table is rebuilt for that
 * (SQLite cannot drop a table constraint), with foreign keys off for the
 * step and checked before it commits. reprovisions holds the engineer's
 * grant: the next attested provisioning of that device's serial may replace it.
 */
static const char *const schema_v5[] = {
	"CREATE TABLE devices_v4 (\n"
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
	"  replaces           INTEGER REFERENCES devices(id),\n"
	"  live               INTEGER NOT NULL DEFAULT 1 CHECK (live IN (0, 1)),\n"
	"  FOREIGN KEY (product, policy_version) REFERENCES policies(product, version)\n"
	") STRICT",
	"INSERT INTO devices_v4 (id, product, serial, policy_version, lot, station, operator, "
	"firmware_version, firmware_sha256, attestation_sha256, components, cert_serial, status, "
	"created) SELECT id, product, serial, policy_version, lot, station, operator, "
	"firmware_version, firmware_sha256, attestation_sha256, components, cert_serial, status, "
	"created FROM devices",
	"DROP TABLE devices",
	"ALTER TABLE devices_v4 RENAME TO devices",
	"CREATE UNIQUE INDEX devices_live ON devices(product, serial) WHERE live = 1",
	"CREATE INDEX devices_serial ON devices(serial)",
	"CREATE INDEX devices_lot ON devices(product, lot)",
	"CREATE UNIQUE INDEX devices_replaces ON devices(replaces) WHERE replaces IS NOT NULL",
	"CREATE TRIGGER devices_replaced_final BEFORE UPDATE OF live ON devices\n"
	"  WHEN OLD.live = 0\n"
	"  BEGIN SELECT RAISE(ABORT, 'a replaced device record stays replaced'); END",
	"CREATE TABLE reprovisions (\n"
	"  device_id  INTEGER PRIMARY KEY NOT NULL REFERENCES devices(id),\n"
	"  reason     TEXT NOT NULL CHECK (reason IN ('keyCompromise', 'superseded')),\n"
	"  opened_by  TEXT NOT NULL,\n"
	"  created    INTEGER NOT NULL,\n"
	"  used_by    INTEGER REFERENCES devices(id)\n"
	") STRICT",
	NULL,
};

/*
 * Version 6: governance (roles, identities and M-of-N approvals, issue 6).
 * A request names an operation and its canonical parameters; its digest is
 * what officers sign. Approvals are one row per distinct approver. A request
 * never changes once made except to be marked executed, once; approvals are
 * append-only; a revoked identity stays revoked.
 */
static const char *const schema_v6[] = {
	"CREATE TABLE requests (\n"
	"  id        TEXT PRIMARY KEY NOT NULL,\n"
	"  operation TEXT NOT NULL,\n"
	"  params    TEXT NOT NULL CHECK (json_valid(params) AND json_type(params) = 'object'),\n"
	"  requester TEXT NOT NULL,\n"
	"  digest    BLOB NOT NULL CHECK (length(digest) = 32),\n"
	"  quorum    INTEGER NOT NULL CHECK (quorum >= 1),\n"
	"  created   INTEGER NOT NULL,\n"
	"  expires   INTEGER NOT NULL CHECK (expires > created),\n"
	"  status    TEXT NOT NULL CHECK (status IN ('pending', 'executed')),\n"
	"  executed  INTEGER NOT NULL DEFAULT 0\n"
	") STRICT",
	"CREATE TRIGGER requests_fixed BEFORE UPDATE ON requests\n"
	"  WHEN OLD.status = 'executed' OR NEW.id IS NOT OLD.id OR NEW.operation IS NOT OLD.operation\n"
	"    OR NEW.params IS NOT OLD.params OR NEW.requester IS NOT OLD.requester\n"
	"    OR NEW.digest IS NOT OLD.digest OR NEW.quorum IS NOT OLD.quorum\n"
	"    OR NEW.created IS NOT OLD.created OR NEW.expires IS NOT OLD.expires\n"
	"  BEGIN SELECT RAISE(ABORT, 'a request never changes, except to be executed once'); END",
	"CREATE TRIGGER requests_no_delete BEFORE DELETE ON requests\n"
	"  BEGIN SELECT RAISE(ABORT, 'requests are kept'); END",
	"CREATE TABLE approvals (\n"
	"  request_id  TEXT NOT NULL REFERENCES requests(id),\n"
	"  approver    TEXT NOT NULL,\n"
	"  cert_serial TEXT NOT NULL,\n"
	"  signature   BLOB NOT NULL CHECK (length(signature) BETWEEN 1 AND 512),\n"
	"  created     INTEGER NOT NULL,\n"
	"  PRIMARY KEY (request_id, approver)\n"
	") STRICT",
	"CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals\n"
	"  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END",
	"CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals\n"
	"  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END",
	"CREATE TRIGGER identities_revoked_final BEFORE UPDATE ON identities\n"
	"  WHEN OLD.status = 'revoked'\n"
	"  BEGIN SELECT RAISE(ABORT, 'a revoked identity stays revoked'); END",
	NULL,
};

/*
 * Version 7: TPM 2.0 credential activation (issue 4). For a nonce of a tpm2
 * product kiln wraps a random secret to the device's EK for its AK's name
 * (provision/activate); the secret itself is never stored, only the SHA-256
 * binding of secret, AK name and EK certificate that finish checks. One
 * activation per nonce, never changed.
 */
static const char *const schema_v7[] = {
	"CREATE TABLE activations (\n"
	"  nonce_sha256   BLOB PRIMARY KEY NOT NULL REFERENCES nonces(nonce_sha256),\n"
	"  binding_sha256 BLOB NOT NULL CHECK (length(binding_sha256) = 32),\n"
	"  created        INTEGER NOT NULL\n"
	") STRICT, WITHOUT ROWID",
	"CREATE TRIGGER activations_fixed BEFORE UPDATE ON activations\n"
	"  BEGIN SELECT RAISE(ABORT, 'an activation never changes'); END",
	NULL,
};

/*
 * Version 8: issuing CA rotation (issue 6). An environment's issuing CA has
 * a generation (1 from kiln init, then 2, 3, ... from kiln ca rotate) and a
 * status: the one "active" CA issues; "retired" ones no longer issue but
 * stay valid, and go on signing CRLs and OCSP for what they issued. At most
 * one active issuing CA per environment, and a retired CA stays retired.
 */
static const char *const schema_v8[] = {
	"ALTER TABLE cas ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1)",
	"ALTER TABLE cas ADD COLUMN status TEXT NOT NULL DEFAULT 'active'\n"
	"  CHECK (status IN ('active', 'retired'))",
	"CREATE UNIQUE INDEX cas_one_active_issuing ON cas(env) WHERE role = 'issuing' AND status = 'active'",
	"CREATE UNIQUE INDEX cas_issuing_generation ON cas(env, generation) WHERE role = 'issuing'",
	"CREATE TRIGGER cas_retired_final BEFORE UPDATE OF status ON cas\n"
	"  WHEN OLD.status = 'retired' AND NEW.status <> 'retired'\n"
	"  BEGIN SELECT RAISE(ABORT, 'a retired CA stays retired'); END",
	"CREATE TRIGGER cas_only_issuing_retire BEFORE UPDATE OF status ON cas\n"
	"  WHEN NEW.status = 'retired' AND OLD.role <> 'issuing'\n"
	"  BEGIN SELECT RAISE(ABORT, 'only issuing CAs are retired'); END",
	NULL,
};

static const struct kiln_sqlite_migration migrations[] = {
	{ 1, "initial schema", schema_v1, false },
	{ 2, "batches, nonces, identities by certificate", schema_v2, false },
	{ 3, "ledger: Merkle nodes and signed checkpoints", schema_v3, false },
	{ 4, "revocations and CRLs", schema_v4, false },
	{ 5, "re-provisioning: devices.replaces, devices.live, reprovisions", schema_v5, true },
	{ 6, "governance: approval requests and approvals", schema_v6, false },
	{ 7, "TPM 2.0 credential activations", schema_v7, false },
	{ 8, "issuing CA rotation: cas.generation, cas.status", schema_v8, false },
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

/* After a table rebuild (foreign keys off): every reference must still hold. */
static kiln_result fk_check(sqlite3 *db, int version, kiln_diag *d)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return kiln_diag_set(d, KILN_ERR_STORE_SCHEMA,
				     "migration %d would break a foreign key; the inventory is left "
				     "as it was", version);
	if (rc != SQLITE_DONE)
		return kiln_sqlite_fail(db, rc, "checking foreign keys after a migration", d);
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
	if (m->rebuild)
		KILN_TRY(r, fk_check(db, m->version, d));
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
	kiln_result r = kiln_ok();

	KILN_ENSURE(db != NULL && path != NULL && steps != NULL && n > 0, KILN_ERR_ARG);
	for (size_t i = 0; i < n; i++) {
		if (KILN_NEVER(steps[i].version != (int)i + 1 || steps[i].sql == NULL))
			return kiln_diag_set(d, KILN_ERR_INTERNAL, "migration %zu is misnumbered", i);
	}
	/*
	 * Foreign keys are off while migrating (only possible outside a
	 * transaction): steps that rebuild a table need it, and check the
	 * references themselves before they commit (fk_check).
	 */
	KILN_GUARD(exec(db, "PRAGMA foreign_keys = OFF", "preparing a migration", d));
	while (more && kiln_is_ok(r))
		r = step(db, path, steps, n, &more, d);
	if (!kiln_is_ok(exec(db, "PRAGMA foreign_keys = ON", "finishing a migration", NULL)) &&
	    kiln_is_ok(r))
		r = kiln_diag_set(d, KILN_ERR_STORE, "could not turn foreign keys back on");
	return r;
}

kiln_result kiln_sqlite_migrate(sqlite3 *db, const char *path, kiln_diag *d)
{
	return kiln_sqlite_migrate_steps(db, path, migrations, N_MIGRATIONS, d);
}
