/*
 * SQLite: the ledger's tables. ledger_nodes holds complete-subtree hashes of
 * the Merkle tree over the events (derived, filled by src/ledger when it
 * checkpoints); checkpoints holds the signed notes. Writes run on the writer
 * inside the caller's transaction; reads on a pooled reader.
 */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>


static const char sql_node_put[] =
	"INSERT INTO ledger_nodes (level, idx, hash) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (level, idx) DO NOTHING";

kiln_result kiln_sqlite_ledger_put(kiln_store_tx *tx, const struct kiln_ledger_node *nodes,
				   size_t n, kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n; i++) {
		KILN_GUARD(kiln_sqlite_stmt(c, sql_node_put, &st, d));
		KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, (int64_t)nodes[i].level));
		KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, nodes[i].index));
		KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 3, nodes[i].hash, 32));
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		kiln_sqlite_done(st);
		if (rc != SQLITE_DONE)
			return kiln_sqlite_fail(c->db, rc, "storing ledger nodes", d);
		rc = SQLITE_OK;
	}
	return kiln_ok();
}

static const char sql_checkpoint_add[] =
	"INSERT INTO checkpoints (size, root, time, note) VALUES (?1, ?2, ?3, ?4)";

kiln_result kiln_sqlite_checkpoint_add(kiln_store_tx *tx, const struct kiln_checkpoint_rec *cp,
				       kiln_diag *d)
{
	struct kiln_sqlite_conn *c = tx->conn;
	sqlite3_stmt *st;
	kiln_result r = kiln_ok();
	int rc = SQLITE_OK;

	KILN_GUARD(kiln_sqlite_stmt(c, sql_checkpoint_add, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, cp->size));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_blob(st, 2, cp->root, 32));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, cp->time));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 4, cp->note, false));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = kiln_diag_set(d, KILN_ERR_DUPLICATE, "a checkpoint of size %lld exists already",
				  (long long)cp->size);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "storing a checkpoint", d);
	kiln_sqlite_done(st);
	return r;
}

static const char sql_node_range[] =
	"SELECT idx, hash FROM ledger_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx";

kiln_result kiln_sqlite_ledger_get(kiln_store *s, unsigned level, int64_t from, size_t count,
				   uint8_t (*out)[32], size_t *got, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	size_t k = 0;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_node_range, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, (int64_t)level));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, from));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 3, from + (int64_t)count));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Stop at the first gap: only consecutive nodes from `from` are reported. */
		if (sqlite3_column_int64(st, 0) != from + (int64_t)k)
			break;
		if (k >= count)
			break;
		KILN_TRY(r, kiln_sqlite_col_bytes(st, 1, out[k], 32, 32, NULL, d));
		k++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading ledger nodes", d);
	*got = k;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_ledger_size[] =
	"SELECT coalesce(max(idx) + 1, 0) FROM ledger_nodes WHERE level = 0";

kiln_result kiln_sqlite_ledger_size(kiln_store *s, int64_t *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_ledger_size, &st, d));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading the ledger size", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static kiln_result read_checkpoint(sqlite3_stmt *st, struct kiln_checkpoint_rec *out, kiln_diag *d)
{
	memset(out, 0, sizeof(*out));
	out->size = sqlite3_column_int64(st, 0);
	KILN_GUARD(kiln_sqlite_col_bytes(st, 1, out->root, 32, 32, NULL, d));
	out->time = sqlite3_column_int64(st, 2);
	return kiln_sqlite_col_str(st, 3, out->note, sizeof(out->note), d);
}

static const char sql_checkpoint_get[] =
	"SELECT size, root, time, note FROM checkpoints WHERE size = ?1";
static const char sql_checkpoint_latest[] =
	"SELECT size, root, time, note FROM checkpoints ORDER BY size DESC LIMIT 1";

kiln_result kiln_sqlite_checkpoint_get(kiln_store *s, int64_t size, struct kiln_checkpoint_rec *out,
				       kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, size < 0 ? sql_checkpoint_latest : sql_checkpoint_get, &st,
				     d));
	if (size >= 0)
		rc = sqlite3_bind_int64(st, 1, size);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_checkpoint(st, out, d);
	else if (rc == SQLITE_DONE && size < 0)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "the log has no checkpoint yet");
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no checkpoint of size %lld",
				  (long long)size);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading a checkpoint", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_checkpoint_list[] =
	"SELECT size, root, time, note FROM checkpoints WHERE size >= ?1 ORDER BY size LIMIT ?2";

kiln_result kiln_sqlite_checkpoint_list(kiln_store *s, int64_t from, size_t limit, bool strict,
					struct kiln_checkpoint_rec **out, size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	struct kiln_checkpoint_rec *arr = NULL, *grown;
	sqlite3_stmt *st = NULL;
	size_t cnt = 0, cap = 0;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_checkpoint_list, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, from));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, (int64_t)limit + (strict ? 1 : 0)));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = SQLITE_OK;
		if (cnt == limit) {
			r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "more than %zu checkpoints; page "
					  "with a start size", limit);
			goto out;
		}
		if (cnt == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			grown = realloc(arr, cap * sizeof(*arr));
			if (grown == NULL) {
				r = kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory listing checkpoints");
				goto out;
			}
			arr = grown;
		}
		KILN_TRY(r, read_checkpoint(st, &arr[cnt], d));
		cnt++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		r = kiln_sqlite_fail(c->db, rc, "listing checkpoints", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	if (!kiln_is_ok(r)) {
		free(arr);
		return r;
	}
	*out = arr;
	*n = cnt;
	return r;
}

static const char sql_event_find[] =
	"SELECT min(seq) FROM events WHERE type = ?1 AND subject = ?2";

kiln_result kiln_sqlite_event_find(kiln_store *s, const char *type, const char *subject,
				   int64_t *seq, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_event_find, &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, type, false));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, subject, false));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*seq = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_ROW)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no %s event about %s", type, subject);
	else
		r = kiln_sqlite_fail(c->db, rc, "finding an event", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}
