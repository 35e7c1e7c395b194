/*
 * SQLite: revocation reads (the generation kiln serve watches, the revoked
 * certificates a CRL lists, the certificates a recall takes) and the CRL
 * records. The revocation rows themselves are written by a trigger (v3).
 */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ writes */

static const char sql_crl_add[] =
	"INSERT INTO crls (ca_id, number, this_update, next_update, revocation_seq, entries, "
	"sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

kiln_result kiln_sqlite_crl_add(kiln_store_tx *tx, const struct kiln_crl_rec *cr, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	kiln_result r = kiln_ok();
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_crl_add, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, cr->ca_id));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, cr->number));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, cr->this_update));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 4, cr->next_update));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 5, cr->revocation_seq));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 6, cr->entries));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 7, cr->sha256, sizeof(cr->sha256)));
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_TRIGGER)
		r = kiln_diag_set(d, KILN_ERR_ARG, "CRL number %lld of CA %lld does not follow the "
				  "last one: CRL numbers only grow", (long long)cr->number,
				  (long long)cr->ca_id);
	else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no CA with id %lld", (long long)cr->ca_id);
	else if (rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "recording a CRL", d);
	kiln_sqlite_done(st);
	return r;
}

static const char sql_revocation_visible[] =
	"UPDATE revocations SET visible_ms = ?2 WHERE serial = ?1 RETURNING 1";

kiln_result kiln_sqlite_revocation_visible(kiln_store_tx *tx, const char *serial, int64_t ms,
					   kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	bool row = false;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_revocation_visible, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, serial, false));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, ms));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row = true;
		rc = SQLITE_OK;
	}
	kiln_sqlite_done(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		return kiln_sqlite_fail(c->db, rc, "recording the time to revoke", d);
	if (!row)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "certificate %s is not revoked", serial);
	return kiln_ok();
}

/* ------------------------------------------------------------ reads */

static const char sql_revocation_seq[] = "SELECT coalesce(max(seq), 0) FROM revocations";

kiln_result kiln_sqlite_revocation_seq(kiln_store *s, int64_t *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_revocation_seq, &st, d));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading the revocation sequence", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* Numeric order of lower-case hex without leading zeros: by length, then text. */
static const char sql_revoked_each[] =
	"SELECT serial, ca_id, revoked_at, reason, seq, recorded_ms FROM revocations "
	"WHERE (?1 = 0 OR ca_id = ?1) AND seq > ?2 ORDER BY length(serial), serial";

static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "", "", "privilegeWithdrawn", "aACompromise",
};

static int reason_code(const unsigned char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(reason_names) / sizeof(reason_names[0]); i++) {
		if (reason_names[i][0] != '\0' && strcmp((const char *)name, reason_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

kiln_result kiln_sqlite_revoked_each(kiln_store *s, int64_t ca_id, int64_t after_seq,
				     kiln_store_revoked_fn fn, void *ctx, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	struct kiln_revoked row;
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_revoked_each, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, ca_id));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, after_seq));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		KILN_TRY(r, kiln_sqlite_col_str(st, 0, row.serial, sizeof(row.serial), d));
		row.ca_id = sqlite3_column_int64(st, 1);
		row.revoked_at = sqlite3_column_int64(st, 2);
		row.reason = reason_code(sqlite3_column_text(st, 3));
		row.seq = sqlite3_column_int64(st, 4);
		row.recorded_ms = sqlite3_column_int64(st, 5);
		row.revoked = true;
		if (row.reason < 0) {
			r = kiln_diag_set(d, KILN_ERR_STORE, "revocation of %s has an unknown reason",
					  row.serial);
			goto out;
		}
		KILN_TRY(r, fn(ctx, &row, d));
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading revocations", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_cert_status_each[] =
	"SELECT c.serial, c.status, coalesce(c.revoked_at, 0), coalesce(c.reason, ''), "
	"coalesce(r.seq, 0), coalesce(r.recorded_ms, 0) "
	"FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial WHERE c.ca_id = ?1";

kiln_result kiln_sqlite_cert_status_each(kiln_store *s, int64_t ca_id, kiln_store_revoked_fn fn,
					 void *ctx, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	struct kiln_revoked row;
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_cert_status_each, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, ca_id));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		KILN_TRY(r, kiln_sqlite_col_str(st, 0, row.serial, sizeof(row.serial), d));
		row.ca_id = ca_id;
		row.revoked = strcmp((const char *)sqlite3_column_text(st, 1), "revoked") == 0;
		row.revoked_at = sqlite3_column_int64(st, 2);
		row.reason = row.revoked ? reason_code(sqlite3_column_text(st, 3)) : -1;
		row.seq = sqlite3_column_int64(st, 4);
		row.recorded_ms = sqlite3_column_int64(st, 5);
		if (row.revoked && row.reason < 0)
			row.reason = 0;
		KILN_TRY(r, fn(ctx, &row, d));
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading certificates", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_cert_select[] =
	"SELECT c.serial FROM certificates c JOIN devices v ON v.id = c.device_id "
	"WHERE c.kind = 'device' AND (?1 = 0 OR v.id = ?1) AND (?2 IS NULL OR v.lot = ?2) "
	"AND (?3 IS NULL OR v.station = ?3) AND (?4 = 0 OR c.issued >= ?4) "
	"AND (?5 = 0 OR c.issued < ?5) AND (?6 = 0 OR c.status = 'valid') "
	"ORDER BY length(c.serial), c.serial LIMIT ?7";

/* The recall query on connection c (a reader, or the writer inside a transaction). */
static kiln_result cert_select(struct kiln_sqlite_conn *c, const struct kiln_cert_filter *f,
			       char (**out)[KILN_STORE_SERIAL_HEX], size_t *n, kiln_diag *d)
{
	char (*list)[KILN_STORE_SERIAL_HEX] = NULL;
	size_t cap = 0, len = 0;
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_cert_select, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, f->device_id));
	KILN_SQ_BIND(rc, f->lot != NULL ? kiln_sqlite_bind_str(st, 2, f->lot, false)
					: sqlite3_bind_null(st, 2));
	KILN_SQ_BIND(rc, f->station != NULL ? kiln_sqlite_bind_str(st, 3, f->station, false)
					    : sqlite3_bind_null(st, 3));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 4, f->from));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 5, f->to));
	KILN_SQ_BIND(rc, sqlite3_bind_int(st, 6, f->valid_only ? 1 : 0));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 7, (int64_t)KILN_STORE_LIST_MAX + 1));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == KILN_STORE_LIST_MAX) {
			r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "the recall takes more than %d "
					  "certificates: narrow it", KILN_STORE_LIST_MAX);
			goto out;
		}
		if (len == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			void *p = realloc(list, ncap * sizeof(*list));

			if (p == NULL) {
				r = kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory listing a recall");
				goto out;
			}
			list = p;
			cap = ncap;
		}
		KILN_TRY(r, kiln_sqlite_col_str(st, 0, list[len], sizeof(list[len]), d));
		len++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "selecting certificates", d);
out:
	kiln_sqlite_done(st);
	if (!kiln_is_ok(r)) {
		free(list);
		return r;
	}
	*out = list;
	*n = len;
	return r;
}

kiln_result kiln_sqlite_cert_select(kiln_store *s, const struct kiln_cert_filter *f,
				    char (**out)[KILN_STORE_SERIAL_HEX], size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	kiln_result r = cert_select(c, f, out, n, d);

	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_tx_cert_select(kiln_store_tx *tx, const struct kiln_cert_filter *f,
				       char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
				       kiln_diag *d)
{
	return cert_select(tx->conn, f, out, n, d);
}

static const char sql_crl_last[] =
	"SELECT ca_id, number, this_update, next_update, revocation_seq, entries, sha256 "
	"FROM crls WHERE ca_id = ?1 ORDER BY number DESC LIMIT 1";

kiln_result kiln_sqlite_crl_last(kiln_store *s, int64_t ca_id, struct kiln_crl_rec *out,
				 bool *found, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	struct kiln_crl_rec rec;
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_crl_last, &st, d));
	rc = sqlite3_bind_int64(st, 1, ca_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		rec.ca_id = sqlite3_column_int64(st, 0);
		rec.number = sqlite3_column_int64(st, 1);
		rec.this_update = sqlite3_column_int64(st, 2);
		rec.next_update = sqlite3_column_int64(st, 3);
		rec.revocation_seq = sqlite3_column_int64(st, 4);
		rec.entries = sqlite3_column_int64(st, 5);
		KILN_TRY(r, kiln_sqlite_col_bytes(st, 6, rec.sha256, sizeof(rec.sha256),
						  sizeof(rec.sha256), NULL, d));
		*out = rec;
		*found = true;
	} else if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "reading the last CRL", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_revocation_timing[] =
	"SELECT recorded_ms, coalesce(visible_ms, -1) FROM revocations WHERE serial = ?1";

kiln_result kiln_sqlite_revocation_timing(kiln_store *s, const char *serial, int64_t *recorded_ms,
					  int64_t *visible_ms, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_revocation_timing, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, serial, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*recorded_ms = sqlite3_column_int64(st, 0);
		*visible_ms = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "certificate %s is not revoked", serial);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "reading a revocation", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}
