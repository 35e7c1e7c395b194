/*
 * SQLite typed writes, run on the writer inside the caller's transaction.
 * Every value is bound (never spliced into SQL text) and every statement is
 * prepared once per connection. Constraint failures become kiln errors that
 * name the record: which one is decided by the extended result code and the
 * table the statement writes, never by parsing SQLite's message.
 */
#include "store/store_impl.h"

#include <string.h>

static bool is_unique(int rc)
{
	return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* Steps a statement to its end; a RETURNING value, if any, lands in *ret. SQLITE_OK or the error. */
static int step_all(sqlite3_stmt *st, int64_t *ret)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ret != NULL)
			*ret = sqlite3_column_int64(st, 0);
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * The INTEGER PRIMARY KEY of the row the statement just inserted (rowid
 * alias). Cheaper than RETURNING, which buffers its rows in an ephemeral
 * table; triggers do not change it once they have run.
 */
static int64_t inserted_id(const struct kiln_sqlite_conn *c)
{
	return sqlite3_last_insert_rowid(c->db);
}

static int bind_opt_id(sqlite3_stmt *st, int i, int64_t id)
{
	return id != 0 ? sqlite3_bind_int64(st, i, id) : sqlite3_bind_null(st, i);
}

/* The database refused to mix environments (a trigger); its message says how. */
static kiln_result env_refused(struct kiln_sqlite_conn *c, const char *what, kiln_diag *d)
{
	return kiln_diag_set(d, KILN_ERR_POLICY_ENV, "%s: %s; production and test never mix", what,
			     sqlite3_errmsg(c->db));
}

/*
 * Operations of several statements run in their own savepoint, so each typed
 * operation is all or nothing even when the caller's fn goes on after it failed.
 */
static const char sql_op_begin[] = "SAVEPOINT kiln_op";
static const char sql_op_release[] = "RELEASE kiln_op";
static const char sql_op_rollback[] = "ROLLBACK TO kiln_op";

static kiln_result op_end(struct kiln_sqlite_conn *c, kiln_result r, kiln_diag *d)
{
	kiln_diag ignored;
	kiln_result undo;

	if (kiln_is_ok(r))
		return kiln_sqlite_run(c, sql_op_release, "releasing a savepoint", d);
	kiln_diag_clear(&ignored);
	undo = kiln_sqlite_run(c, sql_op_rollback, "rolling back a savepoint", &ignored);
	if (kiln_is_ok(undo))
		undo = kiln_sqlite_run(c, sql_op_release, "releasing a savepoint", &ignored);
	(void)undo; /* the operation's own failure is what the caller needs */
	return r;
}

/* ------------------------------------------------------------ CAs */

static const char sql_ca_add[] =
	"INSERT INTO cas (name, env, role, alg, token, key_label, key_id, parent_id, serial, "
	"subject, not_before, not_after, created, cert_der, generation, status) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING id";

kiln_result kiln_sqlite_ca_add(kiln_store_tx *tx, struct kiln_ca_rec *ca, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t created = ca->created != 0 ? ca->created : kiln_now(), id = 0;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_ca_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, ca->name, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, ca->env, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, ca->role, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, ca->alg, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, ca->token, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 6, ca->key_label, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 7, ca->key_id, ca->key_id_len));
	KILN_SQ_BIND(rc, bind_opt_id(st, 8, ca->parent_id));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 9, ca->serial, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 10, ca->subject, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 11, ca->not_before));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 12, ca->not_after));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 13, created));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 14, ca->cert_der, ca->cert_len));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 15, ca->generation > 0 ? ca->generation : 1));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 16, ca->status[0] != '\0' ? ca->status : "active",
					      false));
	if (rc == SQLITE_OK)
		rc = step_all(st, &id);
	if (rc == SQLITE_OK) {
		ca->id = id;
		ca->created = created;
		if (ca->generation <= 0)
			ca->generation = 1;
		if (ca->status[0] == '\0')
			kiln_strtrunc(ca->status, "active", sizeof(ca->status));
	} else if (is_unique(rc)) {
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "CA %s already exists", ca->name);
	} else if (rc == SQLITE_CONSTRAINT_TRIGGER) {
		r = env_refused(c, ca->name, d);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "CA %s: parent CA id %lld does not exist",
				  ca->name, (long long)ca->parent_id);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "adding a CA", d);
	}
	kiln_sqlite_done(st);
	return r;
}

static const char sql_ca_retire[] =
	"UPDATE cas SET status = 'retired' WHERE id = ?1 AND role = 'issuing' AND status = 'active'";

kiln_result kiln_sqlite_ca_retire(kiln_store_tx *tx, int64_t id, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_ca_retire, &st, d));
	rc = sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "retiring a CA", d);
	else if (sqlite3_changes(c->db) != 1)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "CA id %lld is not an active issuing CA",
				  (long long)id);
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ policies */

static const char sql_product_env[] = "SELECT env FROM products WHERE id = ?1";
static const char sql_product_add[] = "INSERT INTO products (id, env, created) VALUES (?1, ?2, ?3)";
static const char sql_policy_add[] =
	"INSERT INTO policies (product, version, env, status, sha256, yaml, added_by, created) "
	"VALUES (?1, (SELECT coalesce(max(version), 0) + 1 FROM policies WHERE product = ?1), "
	"?2, 'pending', ?3, ?4, ?5, ?6) RETURNING version";
static const char sql_policy_exists[] =
	"SELECT 1 FROM policies WHERE product = ?1 AND version = ?2";
static const char sql_policy_supersede[] =
	"UPDATE policies SET status = 'superseded' "
	"WHERE product = ?1 AND version <> ?2 AND status <> 'superseded'";
static const char sql_policy_set_active[] =
	"UPDATE policies SET status = 'active' WHERE product = ?1 AND version = ?2";

/* The product's env, or "" when the product does not exist yet. */
static kiln_result product_env(struct kiln_sqlite_conn *c, const char *product, char *env,
			       size_t cap, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	env[0] = '\0';
	KILN_GUARD(kiln_sqlite_stmt(c, sql_product_env, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, product, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = kiln_sqlite_col_str(st, 0, env, cap, d);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading a product", d);
	kiln_sqlite_done(st);
	return r;
}

/* Creates the product on first use; refuses a policy from the other environment. */
static kiln_result product_ensure(struct kiln_sqlite_conn *c, const struct kiln_policy_rec *p,
				  int64_t now, kiln_diag *d)
{
	char env[16];
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(product_env(c, p->product, env, sizeof(env), d));
	if (env[0] != '\0') {
		if (strcmp(env, p->env) != 0)
			return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
					     "product %s is %s; a %s policy cannot be added to it",
					     p->product, env, p->env);
		return kiln_ok();
	}
	KILN_GUARD(kiln_sqlite_stmt(c, sql_product_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, p->product, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, p->env, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, now));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "adding a product", d);
	kiln_sqlite_done(st);
	return r;
}

/* Runs a statement bound to (product, version) to its end. */
static kiln_result run_pv(struct kiln_sqlite_conn *c, const char *sql, const char *product,
			  int64_t version, bool *row, const char *what, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, product, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, version));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (row != NULL)
		*row = rc == SQLITE_ROW;
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, what, d);
	kiln_sqlite_done(st);
	return r;
}

static kiln_result policy_activate(struct kiln_sqlite_conn *c, const char *product,
				   int64_t version, kiln_diag *d)
{
	bool exists = false;

	KILN_GUARD(run_pv(c, sql_policy_exists, product, version, &exists, "reading a policy", d));
	if (!exists)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "product %s has no policy version %lld",
				     product, (long long)version);
	/* Supersede first: the partial unique index allows one active version at any moment. */
	KILN_GUARD(run_pv(c, sql_policy_supersede, product, version, NULL,
			  "superseding policies", d));
	return run_pv(c, sql_policy_set_active, product, version, NULL, "activating a policy", d);
}

kiln_result kiln_sqlite_policy_activate(kiln_store_tx *tx, const char *product, int64_t version,
					kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;

	KILN_GUARD(kiln_sqlite_run(c, sql_op_begin, "opening a savepoint", d));
	return op_end(c, policy_activate(c, product, version, d), d);
}

/* Fills *version; p is left as it was (the caller copies results out after the savepoint). */
static kiln_result policy_add(struct kiln_sqlite_conn *c, const struct kiln_policy_rec *p,
			      int64_t created, int64_t *version_out, kiln_diag *d)
{
	int64_t version = 0;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(product_ensure(c, p, created, d));
	KILN_GUARD(kiln_sqlite_stmt(c, sql_policy_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, p->product, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, p->env, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 3, p->sha256, sizeof(p->sha256)));
	KILN_SQ_BIND(rc, sqlite3_bind_text64(st, 4, p->yaml, (sqlite3_uint64)p->yaml_len,
					     SQLITE_STATIC, SQLITE_UTF8));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, p->added_by, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 6, created));
	if (rc == SQLITE_OK)
		rc = step_all(st, &version);
	if (is_unique(rc))
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE,
				  "policy %s: another writer took the next version; retry", p->product);
	else if (rc == SQLITE_CONSTRAINT_TRIGGER)
		r = env_refused(c, p->product, d);
	else if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "adding a policy", d);
	kiln_sqlite_done(st);
	KILN_GUARD(r);
	if (strcmp(p->status, "active") == 0)
		KILN_GUARD(policy_activate(c, p->product, version, d));
	*version_out = version;
	return kiln_ok();
}

kiln_result kiln_sqlite_policy_add(kiln_store_tx *tx, struct kiln_policy_rec *p, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t created = p->created != 0 ? p->created : kiln_now(), version = 0;

	KILN_GUARD(kiln_sqlite_run(c, sql_op_begin, "opening a savepoint", d));
	KILN_GUARD(op_end(c, policy_add(c, p, created, &version, d), d));
	p->version = version;
	p->created = created;
	if (p->status[0] == '\0')
		memcpy(p->status, "pending", sizeof("pending"));
	return kiln_ok();
}

/* ------------------------------------------------------------ devices */

static const char sql_device_add[] =
	"INSERT INTO devices (product, serial, policy_version, lot, station, operator, "
	"firmware_version, firmware_sha256, attestation_sha256, components, cert_serial, status, "
	"created, replaces) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

kiln_result kiln_sqlite_device_add(kiln_store_tx *tx, struct kiln_device_rec *dev, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t created = dev->created != 0 ? dev->created : kiln_now();
	const char *status = dev->status[0] != '\0' ? dev->status : "active";
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_device_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, dev->product, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, dev->serial, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, dev->policy_version));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, dev->lot, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, dev->station, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 6, dev->operator_name, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 7, dev->firmware_version, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 8, dev->firmware_sha256, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 9, dev->attestation_sha256, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 10, dev->components_json, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 11, dev->cert_serial, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 12, status, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 13, created));
	KILN_SQ_BIND(rc, bind_opt_id(st, 14, dev->replaces));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc == SQLITE_OK) {
		dev->id = inserted_id(c);
		dev->live = true;
		dev->created = created;
		if (dev->status[0] == '\0')
			memcpy(dev->status, "active", sizeof("active"));
	} else if (is_unique(rc)) {
		r = kiln_diag_set(d, KILN_ERR_DEVICE_DUPLICATE, "device %s/%s already exists",
				  dev->product, dev->serial);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		r = kiln_diag_set(d, KILN_ERR_UNKNOWN_PRODUCT,
				  "product %s has no policy version %lld; add the policy first",
				  dev->product, (long long)dev->policy_version);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "adding a device", d);
	}
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ certificates */

static const char sql_cert_add[] =
	"INSERT INTO certificates (serial, ca_id, kind, env, product, device_id, subject, "
	"spki_sha256, not_before, not_after, issued, status, der) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

kiln_result kiln_sqlite_cert_add(kiln_store_tx *tx, const struct kiln_cert_rec *cr, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_cert_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, cr->serial, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, cr->ca_id));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, cr->kind, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, cr->env, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, cr->product, true));
	KILN_SQ_BIND(rc, bind_opt_id(st, 6, cr->device_id));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 7, cr->subject, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 8, cr->spki_sha256, sizeof(cr->spki_sha256)));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 9, cr->not_before));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 10, cr->not_after));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 11, cr->issued != 0 ? cr->issued : kiln_now()));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 12, cr->status[0] != '\0' ? cr->status : "valid",
					      false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 13, cr->der, cr->der_len));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (is_unique(rc))
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "certificate serial %s already exists",
				  cr->serial);
	else if (rc == SQLITE_CONSTRAINT_TRIGGER)
		r = env_refused(c, cr->serial, d);
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				  "certificate %s: CA id %lld, device id %lld or product '%s' does "
				  "not exist", cr->serial, (long long)cr->ca_id,
				  (long long)cr->device_id, cr->product);
	else if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "adding a certificate", d);
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ identities */

static const char sql_identity_add[] =
	"INSERT INTO identities (name, role, env, cert_serial, status, created) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static const char sql_key_seen[] =
	"SELECT serial FROM certificates WHERE spki_sha256 = ?1 AND kind = 'device' "
	"ORDER BY issued LIMIT 1";

kiln_result kiln_sqlite_key_seen(kiln_store_tx *tx, const uint8_t spki_sha256[32], bool *seen,
				 char *holder, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_key_seen, &st, d));
	rc = kiln_sqlite_bind_blob(st, 1, spki_sha256, 32);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seen = true;
		r = kiln_sqlite_col_str(st, 0, holder, KILN_STORE_SERIAL_HEX, d);
	} else if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "looking a public key up", d);
	}
	kiln_sqlite_done(st);
	return r;
}

static const char sql_policy_version[] =
	"SELECT version FROM policies WHERE product = ?1 AND status = 'active'";

kiln_result kiln_sqlite_policy_version(kiln_store_tx *tx, const char *product, int64_t *version,
				       kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	*version = 0;
	KILN_GUARD(kiln_sqlite_stmt(c, sql_policy_version, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, product, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading the active policy's version", d);
	kiln_sqlite_done(st);
	return r;
}

kiln_result kiln_sqlite_identity_add(kiln_store_tx *tx, const struct kiln_identity_rec *id,
				     kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_identity_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, id->name, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, id->role, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, id->env, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, id->cert_serial, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, id->status[0] != '\0' ? id->status : "active",
					      false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 6, id->created != 0 ? id->created : kiln_now()));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	/* The name is the primary key; the certificate serial has a unique index (schema v2). */
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "identity %s already exists", id->name);
	else if (rc == SQLITE_CONSTRAINT_UNIQUE)
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE,
				  "identity %s: certificate %s is already bound to another identity",
				  id->name, id->cert_serial);
	else if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "adding an identity", d);
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ events */

/*
 * seq is computed inside the write transaction, so it is gap-free however
 * writers interleave: a rolled-back event frees its number for the next one.
 */
static const char sql_event_add[] =
	"INSERT INTO events (seq, time, type, actor, subject, detail) "
	"VALUES ((SELECT coalesce(max(seq) + 1, 0) FROM events), ?1, ?2, ?3, ?4, ?5)";

kiln_result kiln_sqlite_event_add(kiln_store_tx *tx, struct kiln_event_rec *ev, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t when = ev->time != 0 ? ev->time : kiln_now();
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_event_add, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, when));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, ev->type, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, ev->actor, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, ev->subject, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, ev->detail_json != NULL ? ev->detail_json : "{}",
					      false));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc == SQLITE_OK) {
		ev->seq = inserted_id(c);
		ev->time = when;
	} else if (rc == SQLITE_CONSTRAINT_CHECK) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "event %s: detail must be a JSON object",
				  ev->type);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "appending an event", d);
	}
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ batches */

/*
 * A refusal is explained by reading the row after the write matched nothing.
 * Both run on the writer inside the caller's transaction, so the read sees
 * exactly the state the write was refused on.
 */
static const char sql_batch_state[] =
	"SELECT " KILN_SQLITE_BATCH_COLS " FROM batches WHERE lot = ?1";

static kiln_result batch_state(struct kiln_sqlite_conn *c, const char *lot,
			       struct kiln_batch_rec *out, bool *found, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	*found = false;
	KILN_GUARD(kiln_sqlite_stmt(c, sql_batch_state, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, lot, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = kiln_sqlite_read_batch(st, out, d);
		*found = kiln_is_ok(r);
	} else if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "reading a batch", d);
	}
	kiln_sqlite_done(st);
	return r;
}

static const char sql_batch_add[] =
	"INSERT INTO batches (lot, product, quantity, issued, line, station, status, opened_by, "
	"created, closed) VALUES (?1, ?2, ?3, 0, ?4, ?5, 'open', ?6, ?7, 0)";

kiln_result kiln_sqlite_batch_add(kiln_store_tx *tx, struct kiln_batch_rec *b, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t created = b->created != 0 ? b->created : kiln_now();
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_batch_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, b->lot, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, b->product, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, b->quantity));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, b->line, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, b->station, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 6, b->opened_by, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 7, created));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc == SQLITE_OK) {
		b->created = created;
		memcpy(b->status, "open", sizeof("open"));
	} else if (is_unique(rc)) {
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "batch %s already exists", b->lot);
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		r = kiln_diag_set(d, KILN_ERR_UNKNOWN_PRODUCT, "product %s has no policy", b->product);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "opening a batch", d);
	}
	kiln_sqlite_done(st);
	return r;
}

/* Runs an UPDATE .. RETURNING to its end; *row tells whether it changed a row. */
static int update_returning(sqlite3_stmt *st, bool *row, int64_t *first)
{
	int rc;

	*row = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!*row && first != NULL)
			*first = sqlite3_column_int64(st, 0);
		*row = true;
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static const char sql_batch_close[] =
	"UPDATE batches SET status = 'closed', closed = ?2 WHERE lot = ?1 AND status = 'open' "
	"RETURNING 1";

kiln_result kiln_sqlite_batch_close(kiln_store_tx *tx, const char *lot, int64_t when, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	struct kiln_batch_rec b;
	bool closed = false, found = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_batch_close, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, lot, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, when != 0 ? when : kiln_now()));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &closed, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "closing a batch", d);
	if (closed)
		return kiln_ok();
	KILN_GUARD(batch_state(c, lot, &b, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch %s", lot);
	return kiln_diag_set(d, KILN_ERR_BATCH_CLOSED, "batch %s is already closed", lot);
}

/* ------------------------------------------------------------ device lifecycle */

static const char sql_device_status[] = "SELECT status FROM devices WHERE id = ?1";

/* Why a device update touched nothing: no such device, or its status. */
static kiln_result device_refused(struct kiln_sqlite_conn *c, int64_t id, kiln_diag *d)
{
	char status[16] = "";
	bool found = false;
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_device_status, &st, d));
	rc = sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		found = true;
		kiln_strtrunc(status, t != NULL ? (const char *)t : "", sizeof(status));
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "reading a device's status", d);
	if (!found)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no device %lld", (long long)id);
	if (strcmp(status, "retired") == 0)
		return kiln_diag_set(d, KILN_ERR_DEVICE_RETIRED, "device %lld is already retired",
				     (long long)id);
	return kiln_diag_set(d, KILN_ERR_CERT_REVOKED, "device %lld is %s", (long long)id, status);
}

static const char sql_device_set_cert[] =
	"UPDATE devices SET cert_serial = ?2 WHERE id = ?1 AND status = 'active' RETURNING 1";

kiln_result kiln_sqlite_device_set_cert(kiln_store_tx *tx, int64_t device_id,
					const char *cert_serial, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	bool done = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_device_set_cert, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, device_id));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, cert_serial, false));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &done, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "renewing a device's certificate", d);
	return done ? kiln_ok() : device_refused(c, device_id, d);
}

static const char sql_device_retire[] =
	"UPDATE devices SET status = 'retired' WHERE id = ?1 AND status <> 'retired' RETURNING 1";

kiln_result kiln_sqlite_device_retire(kiln_store_tx *tx, int64_t device_id, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	bool done = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_device_retire, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, device_id));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &done, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "retiring a device", d);
	return done ? kiln_ok() : device_refused(c, device_id, d);
}

static const char sql_reprovision_open[] =
	"INSERT INTO reprovisions (device_id, reason, opened_by, created) "
	"SELECT id, ?2, ?3, ?4 FROM devices WHERE id = ?1 AND live = 1 AND status <> 'retired' "
	"RETURNING 1";
static const char sql_device_state[] =
	"SELECT status, live, (SELECT id FROM devices n WHERE n.replaces = devices.id), "
	"(SELECT count(*) FROM reprovisions WHERE device_id = devices.id AND used_by IS NULL) "
	"FROM devices WHERE id = ?1";

/* Why a grant could not be opened. */
static kiln_result reprovision_refused(struct kiln_sqlite_conn *c, int64_t id, kiln_diag *d)
{
	sqlite3_stmt *st;
	char status[16] = "";
	int64_t live = 0, by = 0, open = 0;
	int rc;
	bool found = false;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_device_state, &st, d));
	rc = sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		found = true;
		kiln_strtrunc(status, t != NULL ? (const char *)t : "", sizeof(status));
		live = sqlite3_column_int64(st, 1);
		by = sqlite3_column_int64(st, 2);
		open = sqlite3_column_int64(st, 3);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "reading a device's state", d);
	if (!found)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no device %lld", (long long)id);
	if (strcmp(status, "retired") == 0)
		return kiln_diag_set(d, KILN_ERR_DEVICE_RETIRED, "device %lld is retired", (long long)id);
	if (!live)
		return kiln_diag_set(d, KILN_ERR_DUPLICATE, "device %lld was replaced by device %lld",
				     (long long)id, (long long)by);
	if (open > 0)
		return kiln_diag_set(d, KILN_ERR_DUPLICATE,
				     "a re-provisioning of device %lld is already open", (long long)id);
	return kiln_diag_set(d, KILN_ERR_INTERNAL, "device %lld: re-provisioning refused",
			     (long long)id);
}

kiln_result kiln_sqlite_reprovision_open(kiln_store_tx *tx, const struct kiln_reprovision_rec *g,
					 kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	bool done = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_reprovision_open, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, g->device_id));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, g->reason, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, g->opened_by, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 4, g->created != 0 ? g->created : kiln_now()));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &done, NULL);
	kiln_sqlite_done(st);
	if (is_unique(rc) || (rc == SQLITE_OK && !done))
		return reprovision_refused(c, g->device_id, d);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "opening a re-provisioning", d);
	return kiln_ok();
}

static const char sql_device_unlive[] =
	"UPDATE devices SET live = 0 WHERE id = ?1 AND live = 1 AND EXISTS "
	"(SELECT 1 FROM reprovisions WHERE device_id = ?1 AND used_by IS NULL) RETURNING 1";
static const char sql_reprovision_use[] =
	"UPDATE reprovisions SET used_by = ?2 WHERE device_id = ?1 AND used_by IS NULL RETURNING 1";

static kiln_result run_id2(struct kiln_sqlite_conn *c, const char *sql, int64_t a, int64_t b,
			   bool *done, kiln_diag *d)
{
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, a));
	if (b != 0)
		KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, b));
	if (rc == SQLITE_OK)
		rc = update_returning(st, done, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "replacing a device record", d);
	return kiln_ok();
}

static kiln_result device_replace(struct kiln_sqlite_conn *c, kiln_store_tx *tx, int64_t old_id,
				  struct kiln_device_rec *dev, kiln_diag *d)
{
	bool done = false;

	KILN_GUARD(run_id2(c, sql_device_unlive, old_id, 0, &done, d));
	if (!done)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no open re-provisioning of device %lld",
				     (long long)old_id);
	KILN_GUARD(kiln_sqlite_device_add(tx, dev, d));
	KILN_GUARD(run_id2(c, sql_reprovision_use, old_id, dev->id, &done, d));
	KILN_ENSURE(done, KILN_ERR_INTERNAL);
	return kiln_ok();
}

kiln_result kiln_sqlite_device_replace(kiln_store_tx *tx, int64_t old_id,
				       struct kiln_device_rec *dev, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;

	KILN_GUARD(kiln_sqlite_run(c, sql_op_begin, "opening a savepoint", d));
	return op_end(c, device_replace(c, tx, old_id, dev, d), d);
}

/*
 * Why a consumption took nothing. A wrong product comes before the batch's
 * state: it is the caller's mistake whatever the batch's state, and saying
 * "closed" or "quota" would hide it.
 */
static kiln_result consume_refused(struct kiln_sqlite_conn *c, const char *lot,
				   const char *product, kiln_diag *d)
{
	struct kiln_batch_rec b;
	bool found = false;

	KILN_GUARD(batch_state(c, lot, &b, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch %s", lot);
	if (strcmp(b.product, product) != 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "batch %s is for product %s, not %s", lot,
				     b.product, product);
	if (strcmp(b.status, "open") != 0)
		return kiln_diag_set(d, KILN_ERR_BATCH_CLOSED, "batch %s is closed", lot);
	if (b.issued >= b.quantity)
		return kiln_diag_set(d, KILN_ERR_BATCH_QUOTA,
				     "batch %s has issued all %lld of its quantity", lot,
				     (long long)b.quantity);
	return kiln_diag_set(d, KILN_ERR_INTERNAL, "batch %s: nothing consumed for no reason found",
			     lot);
}

/* One statement: however writers interleave, issued never passes quantity. */
static const char sql_batch_consume[] =
	"UPDATE batches SET issued = issued + 1 WHERE lot = ?1 AND status = 'open' "
	"AND issued < quantity AND product = ?2 RETURNING issued";

kiln_result kiln_sqlite_batch_consume(kiln_store_tx *tx, const char *lot, const char *product,
				      int64_t *issued, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	bool taken = false;
	int64_t now_issued = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_batch_consume, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, lot, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, product, false));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &taken, &now_issued);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "taking from a batch", d);
	if (!taken)
		return consume_refused(c, lot, product, d);
	if (issued != NULL)
		*issued = now_issued;
	return kiln_ok();
}

/* ------------------------------------------------------------ nonces */

static const char sql_nonce_add[] =
	"INSERT INTO nonces (nonce_sha256, station, lot, issued, expires, used) "
	"VALUES (?1, ?2, ?3, ?4, ?5, 0)";

kiln_result kiln_sqlite_nonce_add(kiln_store_tx *tx, struct kiln_nonce_rec *n, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	int64_t issued = n->issued != 0 ? n->issued : kiln_now();
	struct kiln_batch_rec b;
	bool found = false;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	if (n->expires <= issued)
		return kiln_diag_set(d, KILN_ERR_ARG, "a nonce must expire after it is issued");
	KILN_GUARD(batch_state(c, n->lot, &b, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch %s", n->lot);
	if (strcmp(b.status, "open") != 0)
		return kiln_diag_set(d, KILN_ERR_BATCH_CLOSED, "batch %s is closed", n->lot);
	KILN_GUARD(kiln_sqlite_stmt(c, sql_nonce_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 1, n->nonce_sha256, sizeof(n->nonce_sha256)));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, n->station, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, n->lot, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 4, issued));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 5, n->expires));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc == SQLITE_OK)
		n->issued = issued;
	else if (is_unique(rc))
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "the nonce was already issued");
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch %s", n->lot);
	else
		r = kiln_sqlite_fail(c->db, rc, "recording a nonce", d);
	kiln_sqlite_done(st);
	return r;
}

static const char sql_activation_add[] =
	"INSERT INTO activations (nonce_sha256, binding_sha256, created) VALUES (?1, ?2, ?3)";

kiln_result kiln_sqlite_activation_add(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
				       const uint8_t binding_sha256[32], int64_t now, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_activation_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 1, nonce_sha256, 32));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 2, binding_sha256, 32));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, now));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc == SQLITE_OK)
		r = kiln_ok();
	else if (is_unique(rc))
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE,
				  "a credential was already made for this nonce; call provision/begin again");
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = kiln_diag_set(d, KILN_ERR_NONCE_UNKNOWN, "unknown nonce");
	else
		r = kiln_sqlite_fail(c->db, rc, "recording an activation", d);
	kiln_sqlite_done(st);
	return r;
}

static const char sql_nonce_state[] =
	"SELECT " KILN_SQLITE_NONCE_COLS " FROM nonces WHERE nonce_sha256 = ?1";

/* The stored row; *found false (and out untouched) when there is none. */
static kiln_result nonce_state(struct kiln_sqlite_conn *c, const uint8_t nonce_sha256[32],
			       struct kiln_nonce_rec *out, bool *found, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	*found = false;
	KILN_GUARD(kiln_sqlite_stmt(c, sql_nonce_state, &st, d));
	rc = kiln_sqlite_bind_blob(st, 1, nonce_sha256, 32);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = kiln_sqlite_read_nonce(st, out, d);
		*found = kiln_is_ok(r);
	} else if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "reading a nonce", d);
	}
	kiln_sqlite_done(st);
	return r;
}

/* Why a nonce could not be used, in the documented order. */
static kiln_result nonce_refused(struct kiln_sqlite_conn *c, const uint8_t nonce_sha256[32],
				 const char *station, int64_t now, struct kiln_nonce_rec *out,
				 kiln_diag *d)
{
	struct kiln_nonce_rec n;
	char when[KILN_TIME_STR];
	bool found = false;

	KILN_GUARD(nonce_state(c, nonce_sha256, &n, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_NONCE_UNKNOWN, "unknown nonce");
	if (out != NULL)
		*out = n;
	if (strcmp(n.station, station) != 0)
		return kiln_diag_set(d, KILN_ERR_NONCE_STATION,
				     "the nonce was issued to station %s, not %s", n.station, station);
	if (n.used != 0)
		return kiln_diag_set(d, KILN_ERR_NONCE_REPLAY, "the nonce was already used");
	if (n.expires <= now) {
		kiln_time_format(n.expires, when);
		return kiln_diag_set(d, KILN_ERR_NONCE_EXPIRED, "the nonce expired at %s", when);
	}
	return kiln_diag_set(d, KILN_ERR_INTERNAL, "the nonce could not be used for no reason found");
}

/* One statement: of any number of writers racing with one nonce, one uses it. */
static const char sql_nonce_use[] =
	"UPDATE nonces SET used = ?1, request_sha256 = ?2, cert_serial = ?3 "
	"WHERE nonce_sha256 = ?4 AND used = 0 AND station = ?5 AND expires > ?1 "
	"RETURNING " KILN_SQLITE_NONCE_COLS;

static kiln_result nonce_use(struct kiln_sqlite_conn *c, const uint8_t nonce_sha256[32],
			     const char *station, int64_t now, const uint8_t *request_sha256,
			     const char *cert_serial, struct kiln_nonce_rec *out, kiln_diag *d)
{
	struct kiln_nonce_rec n;
	kiln_result r = kiln_ok();
	bool used = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_nonce_use, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, now));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 2, request_sha256, request_sha256 != NULL ? 32 : 0));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, cert_serial, true));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 4, nonce_sha256, 32));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 5, station, false));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* The primary key matches one row at most; the statement ends on the next step. */
		used = true;
		r = kiln_sqlite_read_nonce(st, &n, d);
		rc = sqlite3_step(st);
	}
	kiln_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return kiln_sqlite_fail(c->db, rc, "using a nonce", d);
	KILN_GUARD(r);
	if (!used)
		return nonce_refused(c, nonce_sha256, station, now, out, d);
	if (out != NULL)
		*out = n;
	return kiln_ok();
}

/*
 * In its own savepoint: the row is changed by the first step, before it is
 * read back, so a row that cannot be read (changed outside kiln) must not
 * leave the nonce used behind a failure.
 */
kiln_result kiln_sqlite_nonce_use(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
				  const char *station, int64_t now, const uint8_t *request_sha256,
				  const char *cert_serial, struct kiln_nonce_rec *out, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;

	KILN_GUARD(kiln_sqlite_run(c, sql_op_begin, "opening a savepoint", d));
	return op_end(c, nonce_use(c, nonce_sha256, station, now, request_sha256, cert_serial, out,
				   d), d);
}

/* ------------------------------------------------------------ meta */

static const char sql_meta_set[] =
	"INSERT INTO meta (key, value) VALUES (?1, ?2) "
	"ON CONFLICT (key) DO UPDATE SET value = excluded.value";

kiln_result kiln_sqlite_meta_set(kiln_store_tx *tx, const char *key, const char *value,
				 kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_meta_set, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, key, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, value, false));
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "setting a meta value", d);
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ revocation */

/* One statement: of any number of writers racing to revoke one certificate, one does. */
static const char sql_cert_revoke[] =
	"UPDATE certificates SET status = 'revoked', revoked_at = ?2, reason = ?3 "
	"WHERE serial = ?1 AND status = 'valid' RETURNING 1";
static const char sql_cert_revoke_device[] =
	"UPDATE devices SET status = 'revoked' WHERE cert_serial = ?1 AND status = 'active' "
	"AND id = (SELECT device_id FROM certificates WHERE serial = ?1)";
static const char sql_cert_revoked_at[] =
	"SELECT status, revoked_at FROM certificates WHERE serial = ?1";

/* Why nothing was revoked: no such certificate, or it was revoked before. */
static kiln_result revoke_refused(struct kiln_sqlite_conn *c, const char *serial, kiln_diag *d)
{
	char when[KILN_TIME_STR];
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_cert_revoked_at, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, serial, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no certificate %s", serial);
	} else if (rc == SQLITE_ROW) {
		kiln_time_format(sqlite3_column_int64(st, 1), when);
		r = kiln_diag_set(d, KILN_ERR_ALREADY_REVOKED,
				  "certificate %s was already revoked at %s", serial, when);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "reading a certificate", d);
	}
	kiln_sqlite_done(st);
	return r;
}

static kiln_result cert_revoke(struct kiln_sqlite_conn *c, const char *serial, const char *reason,
			       int64_t when, kiln_diag *d)
{
	bool revoked = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_cert_revoke, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, serial, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, when));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, reason, false));
	if (rc == SQLITE_OK)
		rc = update_returning(st, &revoked, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "revoking a certificate", d);
	if (!revoked)
		return revoke_refused(c, serial, d);
	KILN_GUARD(kiln_sqlite_stmt(c, sql_cert_revoke_device, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, serial, false);
	if (rc == SQLITE_OK)
		rc = step_all(st, NULL);
	kiln_sqlite_done(st);
	if (rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "marking a device revoked", d);
	return kiln_ok();
}

/* In its own savepoint: the certificate, its device and the revocation row go together. */
kiln_result kiln_sqlite_cert_revoke(kiln_store_tx *tx, const char *serial, const char *reason,
				    int64_t when, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;

	KILN_GUARD(kiln_sqlite_run(c, sql_op_begin, "opening a savepoint", d));
	return op_end(c, cert_revoke(c, serial, reason, when, d), d);
}
