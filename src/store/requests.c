/*
 * SQLite backend for governance (schema v3): approval requests, approvals,
 * and the identity operations they need (list, revoke, lookup by key, count
 * by role). Writes run on the writer inside the caller's transaction and
 * decide on what that transaction sees, so two approvals racing for the last
 * place, or an approval racing an execution, are settled by the database.
 */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>

static const char sql_sp_begin[] = "SAVEPOINT kiln_gov";
static const char sql_sp_release[] = "RELEASE kiln_gov";
static const char sql_sp_rollback[] = "ROLLBACK TO kiln_gov";

static kiln_result sp_end(struct kiln_sqlite_conn *c, kiln_result r, kiln_diag *d)
{
	kiln_diag ignored;
	kiln_result undo;

	if (kiln_is_ok(r))
		return kiln_sqlite_run(c, sql_sp_release, "releasing a savepoint", d);
	kiln_diag_clear(&ignored);
	undo = kiln_sqlite_run(c, sql_sp_rollback, "rolling back a savepoint", &ignored);
	if (kiln_is_ok(undo))
		undo = kiln_sqlite_run(c, sql_sp_release, "releasing a savepoint", &ignored);
	(void)undo; /* the operation's own failure is what the caller needs */
	return r;
}

/* ------------------------------------------------------------ requests */

#define REQUEST_COLS                                                                       \
	"id, operation, params, requester, digest, quorum, created, expires, status, executed, " \
	"(SELECT count(*) FROM approvals WHERE request_id = requests.id)"

static kiln_result read_request(sqlite3_stmt *st, struct kiln_request_rec *out, kiln_diag *d)
{
	struct kiln_request_rec r;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_str(st, 0, r.id, sizeof(r.id), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r.operation, sizeof(r.operation), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.params_json, sizeof(r.params_json), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.requester, sizeof(r.requester), d));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 4, r.digest, sizeof(r.digest), 32, NULL, d));
	r.quorum = sqlite3_column_int64(st, 5);
	r.created = sqlite3_column_int64(st, 6);
	r.expires = sqlite3_column_int64(st, 7);
	KILN_GUARD(kiln_sqlite_col_str(st, 8, r.status, sizeof(r.status), d));
	r.executed = sqlite3_column_int64(st, 9);
	r.approvals = sqlite3_column_int64(st, 10);
	*out = r;
	return kiln_ok();
}

static const char sql_request_add[] =
	"INSERT INTO requests (id, operation, params, requester, digest, quorum, created, "
	"expires, status, executed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0)";

kiln_result kiln_sqlite_request_add(kiln_store_tx *tx, const struct kiln_request_rec *q,
				    kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_request_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, q->id, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, q->operation, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, q->params_json, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, q->requester, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 5, q->digest, 32));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 6, q->quorum));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 7, q->created));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 8, q->expires));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = kiln_ok();
	else if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "request %s already exists", q->id);
	else
		r = kiln_sqlite_fail(c->db, rc, "adding an approval request", d);
	kiln_sqlite_done(st);
	return r;
}

static const char sql_request_tx_get[] = "SELECT " REQUEST_COLS " FROM requests WHERE id = ?1";

/*
 * The request as c sees it: on the writer, as this transaction sees it (its
 * own writes included); on a reader, as last committed.
 */
static kiln_result tx_request(struct kiln_sqlite_conn *c, const char *id,
			      struct kiln_request_rec *out, kiln_diag *d)
{
	kiln_result r;
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_request_tx_get, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, id, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_request(st, out, d);
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_REQUEST_UNKNOWN, "no request %s", id);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading an approval request", d);
	kiln_sqlite_done(st);
	return r;
}

/* Open for approval or execution at now: pending and not expired. */
static kiln_result request_open(const struct kiln_request_rec *q, int64_t now, kiln_diag *d)
{
	char when[KILN_TIME_STR];

	if (strcmp(q->status, "executed") == 0)
		return kiln_diag_set(d, KILN_ERR_REQUEST_EXECUTED, "request %s was already executed",
				     q->id);
	if (now >= q->expires) {
		kiln_time_format(q->expires, when);
		return kiln_diag_set(d, KILN_ERR_REQUEST_EXPIRED, "request %s expired at %s", q->id,
				     when);
	}
	return kiln_ok();
}

static const char sql_approval_add[] =
	"INSERT INTO approvals (request_id, approver, cert_serial, signature, created) "
	"VALUES (?1, ?2, ?3, ?4, ?5)";

static kiln_result approval_insert(struct kiln_sqlite_conn *c, const struct kiln_approval_rec *a,
				   int64_t now, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_approval_add, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, a->request_id, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, a->approver, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3, a->cert_serial, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 4, a->signature, a->sig_len));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 5, now));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = kiln_diag_set(d, KILN_ERR_APPROVAL_DUPLICATE, "%s has already approved request %s",
				  a->approver, a->request_id);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "adding an approval", d);
	kiln_sqlite_done(st);
	return r;
}

kiln_result kiln_sqlite_approval_add(kiln_store_tx *tx, const struct kiln_approval_rec *a,
				     int64_t now, int64_t *count, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	struct kiln_request_rec q;
	kiln_result r;

	KILN_GUARD(kiln_sqlite_run(c, sql_sp_begin, "starting a savepoint", d));
	r = tx_request(c, a->request_id, &q, d);
	if (kiln_is_ok(r))
		r = request_open(&q, now, d);
	if (kiln_is_ok(r))
		r = approval_insert(c, a, now, d);
	if (kiln_is_ok(r) && count != NULL)
		*count = q.approvals + 1;
	return sp_end(c, r, d);
}

static const char sql_request_execute[] =
	"UPDATE requests SET status = 'executed', executed = ?2 WHERE id = ?1 AND status = 'pending'";

kiln_result kiln_sqlite_request_execute(kiln_store_tx *tx, const char *id, int64_t now,
					kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	struct kiln_request_rec q;
	kiln_result r;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(tx_request(c, id, &q, d));
	KILN_GUARD(request_open(&q, now, d));
	if (q.approvals < q.quorum)
		return kiln_diag_set(d, KILN_ERR_APPROVALS_MISSING,
				     "request %s has %lld of the %lld officer approvals it needs", id,
				     (long long)q.approvals, (long long)q.quorum);
	KILN_GUARD(kiln_sqlite_stmt(c, sql_request_execute, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, id, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, now));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? kiln_ok() : kiln_sqlite_fail(c->db, rc, "executing a request", d);
	kiln_sqlite_done(st);
	return r;
}

/* ------------------------------------------------------------ identities */

static const char sql_identity_revoke[] =
	"UPDATE identities SET status = 'revoked' WHERE name = ?1 AND status = 'active' "
	"RETURNING cert_serial";
static const char sql_identity_cert_revoke[] =
	"UPDATE certificates SET status = 'revoked', revoked_at = ?2, reason = ?3 "
	"WHERE serial = ?1 AND status = 'valid'";
static const char sql_identity_exists[] = "SELECT status FROM identities WHERE name = ?1";

static kiln_result revoke_why(struct kiln_sqlite_conn *c, const char *name, kiln_diag *d)
{
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_identity_exists, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, name, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	kiln_sqlite_done(st);
	if (rc == SQLITE_ROW)
		return kiln_diag_set(d, KILN_ERR_ARG, "identity %s is already revoked", name);
	if (rc == SQLITE_DONE)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no identity named %s", name);
	return kiln_sqlite_fail(c->db, rc, "reading an identity", d);
}

static kiln_result revoke(struct kiln_sqlite_conn *c, const char *name, int64_t now,
			  const char *reason, kiln_diag *d)
{
	char serial[KILN_STORE_SERIAL_HEX] = "";
	kiln_result r = kiln_ok();
	bool got = false;
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_identity_revoke, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, name, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		got = true;
		r = kiln_sqlite_col_str(st, 0, serial, sizeof(serial), d);
		if (kiln_is_ok(r))
			rc = sqlite3_step(st);
	}
	kiln_sqlite_done(st);
	KILN_GUARD(r);
	if (rc != SQLITE_DONE)
		return kiln_sqlite_fail(c->db, rc, "revoking an identity", d);
	if (!got)
		return revoke_why(c, name, d);
	if (serial[0] == '\0')
		return kiln_ok(); /* an identity without a certificate */
	rc = SQLITE_OK;
	KILN_GUARD(kiln_sqlite_stmt(c, sql_identity_cert_revoke, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, serial, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, now));
	/*
	 * The certificate's reason is an RFC 5280 reason code (it goes into CRLs and
	 * OCSP): the operator's free text stays in the identity's event; a client
	 * certificate withdrawn from its holder is privilegeWithdrawn.
	 */
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 3,
					       kiln_store_reason_ok(reason, NULL) ? reason
										  : "privilegeWithdrawn",
					       false));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? kiln_ok()
			      : kiln_sqlite_fail(c->db, rc, "revoking an identity certificate", d);
	kiln_sqlite_done(st);
	return r;
}

kiln_result kiln_sqlite_identity_revoke(kiln_store_tx *tx, const char *name, int64_t now,
					const char *reason, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;

	KILN_GUARD(kiln_sqlite_run(c, sql_sp_begin, "starting a savepoint", d));
	return sp_end(c, revoke(c, name, now, reason, d), d);
}

static const char sql_identity_count[] =
	"SELECT count(*) FROM identities WHERE role = ?1 AND status = 'active'";

kiln_result kiln_sqlite_identity_count(kiln_store_tx *tx, const char *role, int64_t *out,
				       kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	sqlite3_stmt *st;
	int rc;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_identity_count, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, role, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	kiln_sqlite_done(st);
	return rc == SQLITE_ROW ? kiln_ok() : kiln_sqlite_fail(c->db, rc, "counting identities", d);
}

/* ------------------------------------------------------------ reads */

kiln_result kiln_sqlite_request_get(kiln_store *s, const char *id, struct kiln_request_rec *out,
				    kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	kiln_result r = tx_request(c, id, out, d);

	kiln_sqlite_reader_put(b, c);
	return r;
}

/*
 * Reads every row of st with read into a growing array of elem bytes, at
 * most KILN_STORE_LIST_MAX (more is KILN_ERR_TOO_BIG, never a cut list).
 */
typedef kiln_result (*row_fn)(sqlite3_stmt *st, void *out, kiln_diag *d);

static kiln_result rows(struct kiln_sqlite_conn *c, sqlite3_stmt *st, size_t elem, row_fn read,
			void **out, size_t *n, const char *what, kiln_diag *d)
{
	uint8_t *list = NULL, *grown;
	size_t cap = 0, count = 0;
	kiln_result r = kiln_ok();
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == KILN_STORE_LIST_MAX) {
			r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "%s: more than %d rows", what,
					  KILN_STORE_LIST_MAX);
			goto fail;
		}
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			grown = realloc(list, cap * elem);
			if (grown == NULL) {
				r = kiln_fail(KILN_ERR_NOMEM);
				goto fail;
			}
			list = grown;
		}
		memset(list + count * elem, 0, elem);
		r = read(st, list + count * elem, d);
		if (!kiln_is_ok(r))
			goto fail;
		count++;
	}
	if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, what, d);
		goto fail;
	}
	*out = list;
	*n = count;
	return kiln_ok();
fail:
	free(list);
	return r;
}

static kiln_result read_request_v(sqlite3_stmt *st, void *out, kiln_diag *d)
{
	return read_request(st, out, d);
}

static kiln_result read_approval_v(sqlite3_stmt *st, void *out, kiln_diag *d)
{
	struct kiln_approval_rec *a = out;

	KILN_GUARD(kiln_sqlite_col_str(st, 0, a->request_id, sizeof(a->request_id), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, a->approver, sizeof(a->approver), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, a->cert_serial, sizeof(a->cert_serial), d));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 3, a->signature, sizeof(a->signature), 0, &a->sig_len,
					 d));
	a->created = sqlite3_column_int64(st, 4);
	return kiln_ok();
}

static kiln_result read_identity_v(sqlite3_stmt *st, void *out, kiln_diag *d)
{
	struct kiln_identity_rec *r = out;

	KILN_GUARD(kiln_sqlite_col_str(st, 0, r->name, sizeof(r->name), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r->role, sizeof(r->role), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r->env, sizeof(r->env), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r->cert_serial, sizeof(r->cert_serial), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r->status, sizeof(r->status), d));
	r->created = sqlite3_column_int64(st, 5);
	return kiln_ok();
}

static const char sql_request_list[] =
	"SELECT " REQUEST_COLS " FROM requests ORDER BY created, id";
static const char sql_approval_list[] =
	"SELECT request_id, approver, cert_serial, signature, created FROM approvals "
	"WHERE request_id = ?1 ORDER BY created, approver";
static const char sql_identity_list[] =
	"SELECT name, role, env, cert_serial, status, created FROM identities ORDER BY created, name";
static const char sql_identity_by_key[] =
	"SELECT i.name, i.role, i.env, i.cert_serial, i.status, i.created FROM identities i "
	"JOIN certificates c ON c.serial = i.cert_serial "
	"WHERE c.spki_sha256 = ?1 AND c.kind = 'identity' ORDER BY i.status = 'active' DESC, "
	"i.created DESC";

static kiln_result list(kiln_store *s, const char *sql, const char *arg, const void *blob,
			size_t elem, row_fn read, void **out, size_t *n, const char *what,
			kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql, &st, d));
	if (arg != NULL)
		rc = kiln_sqlite_bind_str(st, 1, arg, false);
	else if (blob != NULL)
		rc = kiln_sqlite_bind_blob(st, 1, blob, 32);
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, what, d);
		goto out;
	}
	r = rows(c, st, elem, read, out, n, what, d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_request_list(kiln_store *s, struct kiln_request_rec **out, size_t *n,
				     kiln_diag *d)
{
	return list(s, sql_request_list, NULL, NULL, sizeof(**out), read_request_v, (void **)out, n,
		    "listing approval requests", d);
}

kiln_result kiln_sqlite_approval_list(kiln_store *s, const char *id,
				      struct kiln_approval_rec **out, size_t *n, kiln_diag *d)
{
	return list(s, sql_approval_list, id, NULL, sizeof(**out), read_approval_v, (void **)out, n,
		    "listing approvals", d);
}

kiln_result kiln_sqlite_identity_list(kiln_store *s, struct kiln_identity_rec **out, size_t *n,
				      kiln_diag *d)
{
	return list(s, sql_identity_list, NULL, NULL, sizeof(**out), read_identity_v, (void **)out,
		    n, "listing identities", d);
}

kiln_result kiln_sqlite_identity_by_key(kiln_store *s, const uint8_t spki_sha256[32],
					struct kiln_identity_rec *out, kiln_diag *d)
{
	struct kiln_identity_rec *found = NULL;
	size_t n = 0;

	KILN_GUARD(list(s, sql_identity_by_key, NULL, spki_sha256, sizeof(*found), read_identity_v,
			(void **)&found, &n, "looking an identity up by key", d));
	if (n == 0) {
		free(found);
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "the key belongs to no kiln identity certificate");
	}
	*out = found[0];
	free(found);
	return kiln_ok();
}
