/*
 * SQLite reads, each on a reader checked out of the pool for the duration of
 * one call. Every value is copied out of SQLite's buffers before the
 * statement is reset; values longer than the record's field are an error,
 * never cut. Each read is one statement, so it sees one consistent snapshot.
 */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>

typedef kiln_result (*row_reader)(sqlite3_stmt *st, void *elem, kiln_diag *d);
typedef void (*elem_cleanup)(void *elem);

/* ------------------------------------------------------------ row readers */

#define CA_COLS                                                                    \
	"id, name, env, role, alg, token, key_label, key_id, parent_id, serial, subject, " \
	"not_before, not_after, created, cert_der, generation, status"

static kiln_result read_ca(sqlite3_stmt *st, void *elem, kiln_diag *d)
{
	struct kiln_ca_rec r;
	void *der = NULL;

	memset(&r, 0, sizeof(r));
	r.id = sqlite3_column_int64(st, 0);
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r.name, sizeof(r.name), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.env, sizeof(r.env), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.role, sizeof(r.role), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r.alg, sizeof(r.alg), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 5, r.token, sizeof(r.token), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 6, r.key_label, sizeof(r.key_label), d));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 7, r.key_id, sizeof(r.key_id), 0, &r.key_id_len, d));
	r.parent_id = sqlite3_column_int64(st, 8);
	KILN_GUARD(kiln_sqlite_col_str(st, 9, r.serial, sizeof(r.serial), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 10, r.subject, sizeof(r.subject), d));
	r.not_before = sqlite3_column_int64(st, 11);
	r.not_after = sqlite3_column_int64(st, 12);
	r.created = sqlite3_column_int64(st, 13);
	r.generation = sqlite3_column_int64(st, 15);
	KILN_GUARD(kiln_sqlite_col_str(st, 16, r.status, sizeof(r.status), d));
	/* The only allocation comes last, so nothing leaks when a check above fails. */
	KILN_GUARD(kiln_sqlite_col_dup(st, 14, KILN_STORE_BLOB_MAX, &der, &r.cert_len, d));
	r.cert_der = der;
	*(struct kiln_ca_rec *)elem = r;
	return kiln_ok();
}

#define POLICY_COLS "product, version, env, status, sha256, yaml, added_by, created"
#define POLICY_COLS_NO_YAML "product, version, env, status, sha256, NULL, added_by, created"

static kiln_result read_policy(sqlite3_stmt *st, void *elem, kiln_diag *d)
{
	struct kiln_policy_rec r;
	void *yaml = NULL;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_str(st, 0, r.product, sizeof(r.product), d));
	r.version = sqlite3_column_int64(st, 1);
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.env, sizeof(r.env), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.status, sizeof(r.status), d));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 4, r.sha256, sizeof(r.sha256), sizeof(r.sha256), NULL,
					 d));
	KILN_GUARD(kiln_sqlite_col_str(st, 6, r.added_by, sizeof(r.added_by), d));
	r.created = sqlite3_column_int64(st, 7);
	KILN_GUARD(kiln_sqlite_col_dup(st, 5, KILN_STORE_BLOB_MAX, &yaml, &r.yaml_len, d));
	r.yaml = yaml;
	*(struct kiln_policy_rec *)elem = r;
	return kiln_ok();
}

#define CERT_COLS                                                                  \
	"serial, ca_id, kind, env, product, device_id, subject, spki_sha256, not_before, " \
	"not_after, issued, status, der, coalesce(revoked_at, 0), coalesce(reason, '')"

static kiln_result read_cert(sqlite3_stmt *st, struct kiln_cert_rec *out, kiln_diag *d)
{
	struct kiln_cert_rec r;
	void *der = NULL;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_str(st, 0, r.serial, sizeof(r.serial), d));
	r.ca_id = sqlite3_column_int64(st, 1);
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.kind, sizeof(r.kind), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.env, sizeof(r.env), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r.product, sizeof(r.product), d));
	r.device_id = sqlite3_column_int64(st, 5);
	KILN_GUARD(kiln_sqlite_col_str(st, 6, r.subject, sizeof(r.subject), d));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 7, r.spki_sha256, sizeof(r.spki_sha256),
					 sizeof(r.spki_sha256), NULL, d));
	r.not_before = sqlite3_column_int64(st, 8);
	r.not_after = sqlite3_column_int64(st, 9);
	r.issued = sqlite3_column_int64(st, 10);
	KILN_GUARD(kiln_sqlite_col_str(st, 11, r.status, sizeof(r.status), d));
	r.revoked_at = sqlite3_column_int64(st, 13);
	KILN_GUARD(kiln_sqlite_col_str(st, 14, r.reason, sizeof(r.reason), d));
	KILN_GUARD(kiln_sqlite_col_dup(st, 12, KILN_STORE_BLOB_MAX, &der, &r.der_len, d));
	r.der_heap = der;
	r.der = der;
	*out = r;
	return kiln_ok();
}

#define DEVICE_COLS                                                                   \
	"id, product, serial, policy_version, lot, station, operator, firmware_version, "    \
	"firmware_sha256, attestation_sha256, components, cert_serial, status, created, "     \
	"coalesce(replaces, 0), live"

static kiln_result read_device(sqlite3_stmt *st, void *elem, kiln_diag *d)
{
	struct kiln_device_rec *r = elem;

	/* A scratch record: the caller hands it out only when complete. */
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r->product, sizeof(r->product), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r->serial, sizeof(r->serial), d));
	r->policy_version = sqlite3_column_int64(st, 3);
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r->lot, sizeof(r->lot), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 5, r->station, sizeof(r->station), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 6, r->operator_name, sizeof(r->operator_name), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 7, r->firmware_version, sizeof(r->firmware_version), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 8, r->firmware_sha256, sizeof(r->firmware_sha256), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 9, r->attestation_sha256, sizeof(r->attestation_sha256),
				       d));
	KILN_GUARD(kiln_sqlite_col_str(st, 10, r->components_json, sizeof(r->components_json), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 11, r->cert_serial, sizeof(r->cert_serial), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 12, r->status, sizeof(r->status), d));
	r->created = sqlite3_column_int64(st, 13);
	r->replaces = sqlite3_column_int64(st, 14);
	r->live = sqlite3_column_int64(st, 15) != 0;
	return kiln_ok();
}

#define IDENTITY_COLS "name, role, env, cert_serial, status, created"

static kiln_result read_identity(sqlite3_stmt *st, struct kiln_identity_rec *out, kiln_diag *d)
{
	struct kiln_identity_rec r;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_str(st, 0, r.name, sizeof(r.name), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r.role, sizeof(r.role), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.env, sizeof(r.env), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.cert_serial, sizeof(r.cert_serial), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r.status, sizeof(r.status), d));
	r.created = sqlite3_column_int64(st, 5);
	*out = r;
	return kiln_ok();
}

#define EVENT_COLS "seq, time, type, actor, subject, detail"

static kiln_result read_event(sqlite3_stmt *st, void *elem, kiln_diag *d)
{
	struct kiln_event_rec r;
	void *detail = NULL;
	size_t len;

	memset(&r, 0, sizeof(r));
	r.seq = sqlite3_column_int64(st, 0);
	r.time = sqlite3_column_int64(st, 1);
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.type, sizeof(r.type), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 3, r.actor, sizeof(r.actor), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r.subject, sizeof(r.subject), d));
	KILN_GUARD(kiln_sqlite_col_dup(st, 5, KILN_STORE_BLOB_MAX, &detail, &len, d));
	r.detail_heap = detail;
	r.detail_json = detail;
	*(struct kiln_event_rec *)elem = r;
	return kiln_ok();
}

/* The factory line's rows: shared with records.c (store_impl.h). */
kiln_result kiln_sqlite_read_batch(sqlite3_stmt *st, struct kiln_batch_rec *out, kiln_diag *d)
{
	struct kiln_batch_rec r;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_str(st, 0, r.lot, sizeof(r.lot), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r.product, sizeof(r.product), d));
	r.quantity = sqlite3_column_int64(st, 2);
	r.issued = sqlite3_column_int64(st, 3);
	KILN_GUARD(kiln_sqlite_col_str(st, 4, r.line, sizeof(r.line), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 5, r.station, sizeof(r.station), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 6, r.status, sizeof(r.status), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 7, r.opened_by, sizeof(r.opened_by), d));
	r.created = sqlite3_column_int64(st, 8);
	r.closed = sqlite3_column_int64(st, 9);
	*out = r;
	return kiln_ok();
}

static kiln_result read_batch_v(sqlite3_stmt *st, void *elem, kiln_diag *d)
{
	return kiln_sqlite_read_batch(st, elem, d);
}

kiln_result kiln_sqlite_read_nonce(sqlite3_stmt *st, struct kiln_nonce_rec *out, kiln_diag *d)
{
	struct kiln_nonce_rec r;

	memset(&r, 0, sizeof(r));
	KILN_GUARD(kiln_sqlite_col_bytes(st, 0, r.nonce_sha256, sizeof(r.nonce_sha256),
					 sizeof(r.nonce_sha256), NULL, d));
	KILN_GUARD(kiln_sqlite_col_str(st, 1, r.station, sizeof(r.station), d));
	KILN_GUARD(kiln_sqlite_col_str(st, 2, r.lot, sizeof(r.lot), d));
	r.issued = sqlite3_column_int64(st, 3);
	r.expires = sqlite3_column_int64(st, 4);
	r.used = sqlite3_column_int64(st, 5);
	/* NULL until used; once set, a digest of any other length is refused, not cut. */
	if (sqlite3_column_type(st, 6) != SQLITE_NULL)
		KILN_GUARD(kiln_sqlite_col_bytes(st, 6, r.request_sha256, sizeof(r.request_sha256),
						 sizeof(r.request_sha256), NULL, d));
	KILN_GUARD(kiln_sqlite_col_str(st, 7, r.cert_serial, sizeof(r.cert_serial), d));
	*out = r;
	return kiln_ok();
}

static void ca_cleanup_v(void *e)
{
	kiln_ca_rec_cleanup(e);
}

static void policy_cleanup_v(void *e)
{
	kiln_policy_rec_cleanup(e);
}

static void event_cleanup_v(void *e)
{
	kiln_event_rec_cleanup(e);
}

/* ------------------------------------------------------------ helpers */

/*
 * Steps st and collects at most limit rows into a new array (caller owns).
 * With strict, a row beyond limit is KILN_ERR_TOO_BIG instead of the end:
 * the statement must then ask for limit + 1 rows.
 */
static kiln_result collect(sqlite3 *db, sqlite3_stmt *st, size_t size, size_t limit, bool strict,
			   row_reader read, elem_cleanup cleanup, void **out, size_t *n,
			   const char *what, kiln_diag *d)
{
	uint8_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	kiln_result r = kiln_ok();
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == limit) {
			if (strict)
				r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "more than %zu rows while %s; "
						  "ask for fewer with a limit", limit, what);
			break;
		}
		if (cnt == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2, bytes;
			uint8_t *grown;

			if (ncap > limit)
				ncap = limit;
			if (!kiln_mul_size(ncap, size, &bytes) || (grown = realloc(arr, bytes)) == NULL) {
				r = kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory while %s", what);
				break;
			}
			arr = grown;
			cap = ncap;
		}
		r = read(st, arr + cnt * size, d);
		if (!kiln_is_ok(r))
			break;
		cnt++;
	}
	if (kiln_is_ok(r) && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = kiln_sqlite_fail(db, rc, what, d);
	if (!kiln_is_ok(r)) {
		for (size_t i = 0; cleanup != NULL && i < cnt; i++)
			cleanup(arr + i * size);
		free(arr);
		return r;
	}
	*out = arr;
	*n = cnt;
	return kiln_ok();
}

/* The LIMIT to bind: one more row than wanted when too many must be detected. */
static int64_t limit_arg(size_t limit, bool strict)
{
	return (int64_t)limit + (strict ? 1 : 0);
}

/* ------------------------------------------------------------ meta */

static const char sql_meta_get[] = "SELECT value FROM meta WHERE key = ?1";

kiln_result kiln_sqlite_meta_get(kiln_store *s, const char *key, char *out, size_t cap,
				 kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_meta_get, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, key, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		if (n >= cap)
			r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "meta value %s is %zu bytes; the buffer "
					  "holds %zu", key, n, cap - 1);
		else
			r = kiln_sqlite_col_str(st, 0, out, cap, d);
	} else if (rc == SQLITE_DONE) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no meta value %s", key);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "reading meta", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ CAs */

static const char sql_ca_by_name[] = "SELECT " CA_COLS " FROM cas WHERE name = ?1";
static const char sql_ca_by_id[] = "SELECT " CA_COLS " FROM cas WHERE id = ?1";
static const char sql_ca_list[] = "SELECT " CA_COLS " FROM cas ORDER BY id LIMIT ?1";

kiln_result kiln_sqlite_ca_get(kiln_store *s, const char *name, int64_t id,
			       struct kiln_ca_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, name != NULL ? sql_ca_by_name : sql_ca_by_id, &st, d));
	rc = name != NULL ? kiln_sqlite_bind_str(st, 1, name, false) : sqlite3_bind_int64(st, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_ca(st, out, d);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading a CA", d);
	else if (name != NULL)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no CA named %s", name);
	else
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no CA with id %lld", (long long)id);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_ca_list(kiln_store *s, struct kiln_ca_rec **out, size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	void *list = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_ca_list, &st, d));
	rc = sqlite3_bind_int64(st, 1, limit_arg(KILN_STORE_LIST_MAX, true));
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, "listing CAs", d);
		goto out;
	}
	KILN_TRY(r, collect(c->db, st, sizeof(**out), KILN_STORE_LIST_MAX, true, read_ca,
			    ca_cleanup_v, &list, n, "listing CAs", d));
	*out = list;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ policies */

static const char sql_policy_active[] =
	"SELECT " POLICY_COLS " FROM policies WHERE product = ?1 AND status = 'active'";
static const char sql_policy_version[] =
	"SELECT " POLICY_COLS " FROM policies WHERE product = ?1 AND version = ?2";
static const char sql_policy_active_head[] =
	"SELECT " POLICY_COLS_NO_YAML " FROM policies WHERE product = ?1 AND status = 'active'";
static const char sql_policy_list[] =
	"SELECT " POLICY_COLS_NO_YAML " FROM policies ORDER BY product, version LIMIT ?1";

kiln_result kiln_sqlite_policy_get(kiln_store *s, const char *product, int64_t version,
				   bool text, struct kiln_policy_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	/* A given version is always read whole; text applies to the active one. */
	KILN_TRY(r, kiln_sqlite_stmt(c, version != 0 ? sql_policy_version
						     : text   ? sql_policy_active
							      : sql_policy_active_head,
				     &st, d));
	KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, product, false));
	if (version != 0)
		KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, version));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_policy(st, out, d);
	else if (rc != SQLITE_DONE)
		r = kiln_sqlite_fail(c->db, rc, "reading a policy", d);
	else if (version == 0)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "product %s has no active policy", product);
	else
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "product %s has no policy version %lld",
				  product, (long long)version);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_policy_list(kiln_store *s, struct kiln_policy_rec **out, size_t *n,
				    kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	void *list = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_policy_list, &st, d));
	rc = sqlite3_bind_int64(st, 1, limit_arg(KILN_STORE_LIST_MAX, true));
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, "listing policies", d);
		goto out;
	}
	KILN_TRY(r, collect(c->db, st, sizeof(**out), KILN_STORE_LIST_MAX, true, read_policy,
			    policy_cleanup_v, &list, n, "listing policies", d));
	*out = list;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ certificates */

static const char sql_cert_get[] = "SELECT " CERT_COLS " FROM certificates WHERE serial = ?1";
static const char sql_cert_exists[] = "SELECT 1 FROM certificates WHERE serial = ?1";

kiln_result kiln_sqlite_cert_get(kiln_store *s, const char *serial, struct kiln_cert_rec *out,
				 bool *found, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r = kiln_ok();
	int rc;

	*found = false;
	KILN_TRY(r, kiln_sqlite_stmt(c, out != NULL ? sql_cert_get : sql_cert_exists, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, serial, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out != NULL)
			r = read_cert(st, out, d);
		*found = kiln_is_ok(r);
	} else if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "reading a certificate", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ devices */

static const char sql_device_by_id[] = "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1";
static const char sql_device_by_ps[] =
	"SELECT " DEVICE_COLS " FROM devices WHERE product = ?1 AND serial = ?2 AND live = 1";
static const char sql_device_by_serial[] =
	"SELECT " DEVICE_COLS " FROM devices WHERE serial = ?1 AND live = 1 ORDER BY id LIMIT 2";
static const char sql_device_list[] =
	"SELECT " DEVICE_COLS " FROM devices ORDER BY id DESC LIMIT ?1";
static const char sql_device_list_product[] =
	"SELECT " DEVICE_COLS " FROM devices WHERE product = ?2 ORDER BY id DESC LIMIT ?1";

static const char *device_sql(const struct kiln_store_device_key *k)
{
	if (k->id > 0)
		return sql_device_by_id;
	return k->product != NULL ? sql_device_by_ps : sql_device_by_serial;
}

static int device_bind(sqlite3_stmt *st, const struct kiln_store_device_key *k)
{
	int rc = SQLITE_OK;

	if (k->id > 0)
		return sqlite3_bind_int64(st, 1, k->id);
	if (k->product != NULL) {
		KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 1, k->product, false));
		KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, k->serial, false));
		return rc;
	}
	return kiln_sqlite_bind_str(st, 1, k->serial, false);
}

kiln_result kiln_sqlite_device_get(kiln_store *s, const struct kiln_store_device_key *k,
				   struct kiln_device_rec *out, size_t *matches, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	struct kiln_device_rec tmp;
	sqlite3_stmt *st = NULL;
	kiln_result r = kiln_ok();
	size_t found = 0;
	int rc;

	*matches = 0;
	KILN_TRY(r, kiln_sqlite_stmt(c, device_sql(k), &st, d));
	rc = device_bind(st, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		KILN_TRY(r, read_device(st, &tmp, d));
		found = 1;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			found = 2;
			rc = SQLITE_DONE;
		}
	}
	if (rc != SQLITE_DONE) {
		r = kiln_sqlite_fail(c->db, rc, "reading a device", d);
		goto out;
	}
	if (found > 0)
		*out = tmp;
	*matches = found;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_device_list(kiln_store *s, const char *product, size_t limit, bool strict,
				    struct kiln_device_rec **out, size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	void *list = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, product != NULL ? sql_device_list_product : sql_device_list,
				     &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, limit_arg(limit, strict)));
	if (product != NULL)
		KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, product, false));
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, "listing devices", d);
		goto out;
	}
	KILN_TRY(r, collect(c->db, st, sizeof(**out), limit, strict, read_device, NULL, &list, n,
			    "listing devices", d));
	*out = list;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ identities */

static const char sql_identity_get[] = "SELECT " IDENTITY_COLS " FROM identities WHERE name = ?1";

kiln_result kiln_sqlite_identity_get(kiln_store *s, const char *name,
				     struct kiln_identity_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_identity_get, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, name, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_identity(st, out, d);
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no identity named %s", name);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading an identity", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/*
 * The partial unique index holds only non-empty serials; the second term lets
 * the planner use it (a bound value alone does not prove it non-empty).
 */
static const char sql_identity_by_cert[] =
	"SELECT " IDENTITY_COLS " FROM identities WHERE cert_serial = ?1 AND cert_serial <> ''";

kiln_result kiln_sqlite_identity_by_cert(kiln_store *s, const char *cert_serial,
					 struct kiln_identity_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_identity_by_cert, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, cert_serial, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_identity(st, out, d);
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no identity holds certificate %s",
				  cert_serial);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading an identity", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ batches */

static const char sql_batch_get[] =
	"SELECT " KILN_SQLITE_BATCH_COLS " FROM batches WHERE lot = ?1";
/* Newest first; rowid orders batches opened in the same second. */
static const char sql_batch_list[] =
	"SELECT " KILN_SQLITE_BATCH_COLS " FROM batches ORDER BY created DESC, rowid DESC LIMIT ?1";
static const char sql_batch_list_product[] =
	"SELECT " KILN_SQLITE_BATCH_COLS " FROM batches WHERE product = ?2 "
	"ORDER BY created DESC, rowid DESC LIMIT ?1";

kiln_result kiln_sqlite_batch_get(kiln_store *s, const char *lot, struct kiln_batch_rec *out,
				  kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_batch_get, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, lot, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = kiln_sqlite_read_batch(st, out, d);
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch %s", lot);
	else
		r = kiln_sqlite_fail(c->db, rc, "reading a batch", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

kiln_result kiln_sqlite_batch_list(kiln_store *s, const char *product, size_t limit,
				   struct kiln_batch_rec **out, size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	void *list = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, product != NULL ? sql_batch_list_product : sql_batch_list,
				     &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, limit_arg(limit, true)));
	if (product != NULL)
		KILN_SQ_BIND(rc, kiln_sqlite_bind_str(st, 2, product, false));
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, "listing batches", d);
		goto out;
	}
	KILN_TRY(r, collect(c->db, st, sizeof(**out), limit, true, read_batch_v, NULL, &list, n,
			    "listing batches", d));
	*out = list;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ nonces */

static const char sql_nonce_get[] =
	"SELECT " KILN_SQLITE_NONCE_COLS " FROM nonces WHERE nonce_sha256 = ?1";

kiln_result kiln_sqlite_nonce_get(kiln_store *s, const uint8_t nonce_sha256[32],
				  struct kiln_nonce_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_nonce_get, &st, d));
	rc = kiln_sqlite_bind_blob(st, 1, nonce_sha256, 32);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = kiln_sqlite_read_nonce(st, out, d);
	else if (rc == SQLITE_DONE)
		r = kiln_diag_set(d, KILN_ERR_NONCE_UNKNOWN, "unknown nonce");
	else
		r = kiln_sqlite_fail(c->db, rc, "reading a nonce", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

static const char sql_activation_get[] =
	"SELECT binding_sha256 FROM activations WHERE nonce_sha256 = ?1";

kiln_result kiln_sqlite_activation_get(kiln_store *s, const uint8_t nonce_sha256[32],
				       uint8_t binding_sha256[32], kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_activation_get, &st, d));
	rc = kiln_sqlite_bind_blob(st, 1, nonce_sha256, 32);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(binding_sha256, sqlite3_column_blob(st, 0), 32);
		r = kiln_ok();
	} else if (rc == SQLITE_ROW) {
		r = kiln_diag_set(d, KILN_ERR_STORE, "an activation's binding is not 32 bytes");
	} else if (rc == SQLITE_DONE) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no credential was made for this nonce");
	} else {
		r = kiln_sqlite_fail(c->db, rc, "reading an activation", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ events */

static const char sql_event_list[] =
	"SELECT " EVENT_COLS " FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

kiln_result kiln_sqlite_event_list(kiln_store *s, int64_t from, size_t limit, bool strict,
				   struct kiln_event_rec **out, size_t *n, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	void *list = NULL;
	kiln_result r;
	int rc = SQLITE_OK;

	KILN_TRY(r, kiln_sqlite_stmt(c, sql_event_list, &st, d));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 1, from));
	KILN_SQ_BIND(rc, sqlite3_bind_int64(st, 2, limit_arg(limit, strict)));
	if (rc != SQLITE_OK) {
		r = kiln_sqlite_fail(c->db, rc, "listing events", d);
		goto out;
	}
	KILN_TRY(r, collect(c->db, st, sizeof(**out), limit, strict, read_event, event_cleanup_v,
			    &list, n, "listing events", d));
	*out = list;
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ counts */

/* Fixed statements per table: kiln_store_count never builds SQL from its argument. */
static const char *const sql_count[KILN_STORE_T__COUNT] = {
	[KILN_STORE_T_META] = "SELECT count(*) FROM meta",
	[KILN_STORE_T_PRODUCTS] = "SELECT count(*) FROM products",
	[KILN_STORE_T_POLICIES] = "SELECT count(*) FROM policies",
	[KILN_STORE_T_CAS] = "SELECT count(*) FROM cas",
	[KILN_STORE_T_CERTIFICATES] = "SELECT count(*) FROM certificates",
	[KILN_STORE_T_DEVICES] = "SELECT count(*) FROM devices",
	[KILN_STORE_T_IDENTITIES] = "SELECT count(*) FROM identities",
	[KILN_STORE_T_EVENTS] = "SELECT count(*) FROM events",
	[KILN_STORE_T_BATCHES] = "SELECT count(*) FROM batches",
	[KILN_STORE_T_NONCES] = "SELECT count(*) FROM nonces",
	[KILN_STORE_T_REVOCATIONS] = "SELECT count(*) FROM revocations",
	[KILN_STORE_T_CRLS] = "SELECT count(*) FROM crls",
	[KILN_STORE_T_REQUESTS] = "SELECT count(*) FROM requests",
	[KILN_STORE_T_APPROVALS] = "SELECT count(*) FROM approvals",
};

kiln_result kiln_sqlite_count(kiln_store *s, enum kiln_store_table t, int64_t *out, kiln_diag *d)
{
	struct kiln_sqlite *b;
	struct kiln_sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	if ((unsigned)t >= KILN_STORE_T__COUNT)
		return kiln_diag_set(d, KILN_ERR_ARG, "no such table");
	b = s->backend;
	c = kiln_sqlite_reader_get(b);
	KILN_TRY(r, kiln_sqlite_stmt(c, sql_count[t], &st, d));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		r = kiln_sqlite_fail(c->db, rc, "counting rows", d);
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}

/* ------------------------------------------------------------ re-provisioning */

static const char sql_reprovision_get[] =
	"SELECT g.device_id, g.reason, g.opened_by, g.created, coalesce(g.used_by, 0) "
	"FROM reprovisions g JOIN devices v ON v.id = g.device_id "
	"WHERE v.product = ?1 AND v.serial = ?2 AND v.live = 1 AND g.used_by IS NULL";

kiln_result kiln_sqlite_reprovision_get(kiln_store *s, const char *product, const char *serial,
					struct kiln_reprovision_rec *out, kiln_diag *d)
{
	struct kiln_sqlite *b = s->backend;
	struct kiln_sqlite_conn *c = kiln_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	kiln_result r;
	int rc;

	memset(out, 0, sizeof(*out));
	KILN_TRY(r, kiln_sqlite_stmt(c, sql_reprovision_get, &st, d));
	rc = kiln_sqlite_bind_str(st, 1, product, false);
	if (rc == SQLITE_OK)
		rc = kiln_sqlite_bind_str(st, 2, serial, false);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->device_id = sqlite3_column_int64(st, 0);
		KILN_TRY(r, kiln_sqlite_col_str(st, 1, out->reason, sizeof(out->reason), d));
		KILN_TRY(r, kiln_sqlite_col_str(st, 2, out->opened_by, sizeof(out->opened_by), d));
		out->created = sqlite3_column_int64(st, 3);
		out->used_by = sqlite3_column_int64(st, 4);
		r = kiln_ok();
	} else if (rc == SQLITE_DONE) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no open re-provisioning of %s/%s", product,
				  serial);
	} else {
		r = kiln_sqlite_fail(c->db, rc, "reading a re-provisioning", d);
	}
out:
	kiln_sqlite_done(st);
	kiln_sqlite_reader_put(b, c);
	return r;
}
