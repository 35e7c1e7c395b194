/*
 * src/store/query.c: every read, what it copies out and who owns it, lists
 * and their limits, device references and their ambiguities, and values in
 * the file that do not fit a record (refused, never cut). Identities by
 * certificate (through the v2 index), batches and their order, nonces.
 */
#include "support/support.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	kiln_store *s;
	int64_t ca;
};

static char yaml_text[] = "product: widget\n";
static const uint8_t der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };

/* ------------------------------------------------------------ writes used as fixtures */

struct seed {
	const char *product, *env;
	const char *serials[8];
	int64_t ca;
};

static kiln_result policy_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_policy_rec *p = ctx;

	return kiln_store_tx_policy_add(tx, p, d);
}

static void add_policy(kiln_store *s, const char *product, const char *env, const char *status)
{
	struct kiln_policy_rec p = { 0 };
	kiln_diag d;

	assert_true(kiln_is_ok(kiln_strlcpy(p.product, product, sizeof(p.product))));
	assert_true(kiln_is_ok(kiln_strlcpy(p.env, env, sizeof(p.env))));
	assert_true(kiln_is_ok(kiln_strlcpy(p.status, status, sizeof(p.status))));
	memset(p.sha256, 0x5a, sizeof(p.sha256));
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	memcpy(p.added_by, "alice", 6);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(s, policy_fn, &p, &d));
}

static kiln_result ca_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_ca_rec *c = ctx;

	return kiln_store_tx_ca_add(tx, c, d);
}

static int64_t add_ca(kiln_store *s, const char *name, const char *role, int64_t parent)
{
	struct kiln_ca_rec c = { 0 };
	kiln_diag d;

	assert_true(kiln_is_ok(kiln_strlcpy(c.name, name, sizeof(c.name))));
	memcpy(c.env, "production", 11);
	assert_true(kiln_is_ok(kiln_strlcpy(c.role, role, sizeof(c.role))));
	memcpy(c.alg, "p384", 5);
	memcpy(c.token, "kiln-prod", 10);
	memcpy(c.key_label, name, strlen(name) + 1);
	memcpy(c.key_id, "\x01\x02\x03", 3);
	c.key_id_len = 3;
	c.parent_id = parent;
	memcpy(c.serial, "7f", 3);
	memcpy(c.subject, "CN=Root", 8);
	c.not_before = 10;
	c.not_after = 20;
	c.created = 30;
	c.cert_der = malloc(sizeof(der_bytes));
	assert_non_null(c.cert_der);
	memcpy(c.cert_der, der_bytes, sizeof(der_bytes));
	c.cert_len = sizeof(der_bytes);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(s, ca_fn, &c, &d));
	kiln_ca_rec_cleanup(&c);
	assert_null(c.cert_der);
	return c.id;
}

static kiln_result seed_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct seed *sd = ctx;

	for (size_t i = 0; i < 8 && sd->serials[i] != NULL; i++) {
		struct kiln_device_rec dev = { 0 };
		struct kiln_cert_rec c = { 0 };
		char hex[KILN_STORE_SERIAL_HEX];

		memcpy(dev.product, sd->product, strlen(sd->product) + 1);
		memcpy(dev.serial, sd->serials[i], strlen(sd->serials[i]) + 1);
		dev.policy_version = 1;
		memcpy(dev.station, "station-7", 10);
		memcpy(dev.operator_name, "bob", 4);
		memcpy(dev.firmware_version, "1.2.3", 6);
		memset(dev.firmware_sha256, 'a', 64);
		memcpy(dev.components_json, "{\"soc\":\"s1\"}", 13);
		(void)snprintf(hex, sizeof(hex), "%02x%s", (unsigned)i, sd->product[0] == 'w' ? "aa" : "bb");
		memcpy(dev.cert_serial, hex, strlen(hex) + 1);
		KILN_GUARD(kiln_store_tx_device_add(tx, &dev, d));
		if (sd->ca == 0)
			continue;
		memcpy(c.serial, hex, strlen(hex) + 1);
		c.ca_id = sd->ca;
		memcpy(c.kind, "device", 7);
		memcpy(c.env, sd->env, strlen(sd->env) + 1);
		memcpy(c.product, sd->product, strlen(sd->product) + 1);
		c.device_id = dev.id;
		memcpy(c.subject, "CN=x", 5);
		memset(c.spki_sha256, (int)i, sizeof(c.spki_sha256));
		c.not_before = 100;
		c.not_after = 200;
		c.issued = 150;
		c.der = der_bytes;
		c.der_len = sizeof(der_bytes);
		KILN_GUARD(kiln_store_tx_cert_add(tx, &c, d));
	}
	return kiln_ok();
}

static void seed(kiln_store *s, const char *product, const char *env, int64_t ca,
		 const char *const *serials)
{
	struct seed sd = { .product = product, .env = env, .ca = ca };
	kiln_diag d;

	for (size_t i = 0; i < 8 && serials[i] != NULL; i++)
		sd.serials[i] = serials[i];
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(s, seed_fn, &sd, &d));
}

static void add_event(kiln_store *s, const char *type, const char *detail)
{
	struct kiln_event_rec ev = { 0 };
	kiln_diag d;

	assert_true(kiln_is_ok(kiln_strlcpy(ev.type, type, sizeof(ev.type))));
	memcpy(ev.actor, "cli:root", 9);
	memcpy(ev.subject, "widget", 7);
	ev.detail_json = (char *)detail;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_event_add(s, &ev, &d));
}

static kiln_result batch_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_batch_add(tx, ctx, d);
}

static void add_batch(kiln_store *s, const char *lot, const char *product, int64_t created)
{
	struct kiln_batch_rec b = { 0 };
	kiln_diag d;

	assert_true(kiln_is_ok(kiln_strlcpy(b.lot, lot, sizeof(b.lot))));
	assert_true(kiln_is_ok(kiln_strlcpy(b.product, product, sizeof(b.product))));
	b.quantity = 50;
	memcpy(b.line, "line-A", 7);
	memcpy(b.station, "station-7", 10);
	memcpy(b.opened_by, "olivia", 7);
	b.created = created;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(s, batch_fn, &b, &d));
}

static kiln_result nonce_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_nonce_add(tx, ctx, d);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-query");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	o.readers = 2;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	f->ca = add_ca(f->s, "production-root", "root", 0);
	add_policy(f->s, "widget", "production", "active");
	add_policy(f->s, "gadget", "production", "active");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

/* Writes through an independent connection: the file changed outside kiln. */
static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ------------------------------------------------------------ tests */

static void test_meta_get(void **state)
{
	struct fx *f = *state;
	char small[4], out[32];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_meta_get(f->s, "nothing", out, sizeof(out), &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no meta value nothing");
	raw_exec(f->path, "INSERT INTO meta VALUES ('k', 'a longer value')");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_meta_get(f->s, "k", out, sizeof(out), &d));
	assert_string_equal(out, "a longer value");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_meta_get(f->s, "k", small, sizeof(small), &d), KILN_ERR_TOO_BIG);
	KT_ERR(kiln_store_meta_get(f->s, "k", out, 0, &d), KILN_ERR_ARG);
}

static void test_ca_reads(void **state)
{
	struct fx *f = *state;
	int64_t issuing = add_ca(f->s, "production-issuing", "issuing", f->ca);
	struct kiln_ca_rec got = { 0 }, *list = NULL;
	size_t n = 0;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_ca_get(f->s, "production-root", &got, &d));
	assert_int_equal(got.id, f->ca);
	assert_string_equal(got.env, "production");
	assert_string_equal(got.role, "root");
	assert_string_equal(got.alg, "p384");
	assert_string_equal(got.token, "kiln-prod");
	assert_string_equal(got.key_label, "production-root");
	assert_int_equal(got.key_id_len, 3);
	assert_memory_equal(got.key_id, "\x01\x02\x03", 3);
	assert_int_equal(got.parent_id, 0);
	assert_string_equal(got.serial, "7f");
	assert_string_equal(got.subject, "CN=Root");
	assert_int_equal(got.not_before, 10);
	assert_int_equal(got.not_after, 20);
	assert_int_equal(got.created, 30);
	assert_int_equal(got.cert_len, sizeof(der_bytes));
	assert_memory_equal(got.cert_der, der_bytes, sizeof(der_bytes));
	kiln_ca_rec_cleanup(&got);
	assert_null(got.cert_der);
	kiln_ca_rec_cleanup(&got); /* idempotent */

	KT_OK(kiln_store_ca_get_id(f->s, issuing, &got, &d));
	assert_string_equal(got.name, "production-issuing");
	assert_int_equal(got.parent_id, f->ca);
	kiln_ca_rec_cleanup(&got);

	KT_ERR(kiln_store_ca_get(f->s, "nope", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no CA named nope");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_ca_get_id(f->s, 99, &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no CA with id 99");

	KT_OK(kiln_store_ca_list(f->s, &list, &n, &d));
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "production-root");
	assert_string_equal(list[1].name, "production-issuing");
	assert_non_null(list[1].cert_der);
	kiln_store_ca_list_free(list, n);
}

static void test_policy_reads(void **state)
{
	struct fx *f = *state;
	struct kiln_policy_rec got = { 0 }, *list = NULL;
	size_t n = 0;
	kiln_diag d;

	add_policy(f->s, "widget", "production", "");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_policy_active(f->s, "widget", &got, &d));
	assert_int_equal(got.version, 1);
	assert_string_equal(got.status, "active");
	assert_string_equal(got.added_by, "alice");
	assert_int_equal(got.yaml_len, strlen(yaml_text));
	assert_string_equal(got.yaml, yaml_text);
	assert_int_equal(got.sha256[31], 0x5a);
	kiln_policy_rec_cleanup(&got);
	assert_null(got.yaml);
	/* The head: the same version and digest, no text. */
	memset(&got, 0, sizeof(got));
	KT_OK(kiln_store_policy_active_head(f->s, "widget", &got, &d));
	assert_int_equal(got.version, 1);
	assert_string_equal(got.status, "active");
	assert_int_equal(got.sha256[31], 0x5a);
	assert_null(got.yaml);
	assert_int_equal(got.yaml_len, 0);
	KT_ERR(kiln_store_policy_active_head(f->s, "gizmo", &got, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_store_policy_active_head(f->s, NULL, &got, &d), KILN_ERR_ARG);
	kiln_diag_clear(&d);

	KT_OK(kiln_store_policy_get(f->s, "widget", 2, &got, &d));
	assert_string_equal(got.status, "pending");
	kiln_policy_rec_cleanup(&got);
	KT_ERR(kiln_store_policy_get(f->s, "widget", 3, &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "product widget has no policy version 3");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_policy_active(f->s, "gizmo", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "product gizmo has no active policy");
	KT_ERR(kiln_store_policy_get(f->s, "widget", 0, &got, &d), KILN_ERR_ARG);

	kiln_diag_clear(&d);
	KT_OK(kiln_store_policy_list(f->s, &list, &n, &d));
	assert_int_equal(n, 3);
	assert_string_equal(list[0].product, "gadget");
	assert_string_equal(list[1].product, "widget");
	assert_int_equal(list[1].version, 1);
	assert_int_equal(list[2].version, 2);
	assert_null(list[2].yaml); /* lists leave the text out */
	kiln_store_policy_list_free(list, n);
}

static void test_cert_reads(void **state)
{
	struct fx *f = *state;
	static const char *const serials[] = { "A1", "A2", NULL };
	struct kiln_cert_rec got = { 0 };
	bool exists = true;
	kiln_diag d;

	seed(f->s, "widget", "production", f->ca, serials);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_cert_get(f->s, "01aa", &got, &d));
	assert_string_equal(got.serial, "01aa");
	assert_int_equal(got.ca_id, f->ca);
	assert_string_equal(got.kind, "device");
	assert_string_equal(got.env, "production");
	assert_string_equal(got.product, "widget");
	assert_true(got.device_id > 0);
	assert_string_equal(got.subject, "CN=x");
	assert_int_equal(got.spki_sha256[0], 1);
	assert_int_equal(got.not_before, 100);
	assert_int_equal(got.not_after, 200);
	assert_int_equal(got.issued, 150);
	assert_string_equal(got.status, "valid");
	assert_memory_equal(got.der, der_bytes, sizeof(der_bytes));
	assert_ptr_equal(got.der, got.der_heap);
	kiln_cert_rec_cleanup(&got);
	assert_null(got.der);
	assert_null(got.der_heap);

	KT_ERR(kiln_store_cert_get(f->s, "ffff", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no certificate with serial ffff");
	KT_OK(kiln_store_cert_exists(f->s, "00aa", &exists, &d));
	assert_true(exists);
	KT_OK(kiln_store_cert_exists(f->s, "ffff", &exists, &d));
	assert_false(exists);
	/* Serials are stored lower-case only; an upper-case lookup does not match. */
	KT_OK(kiln_store_cert_exists(f->s, "00AA", &exists, &d));
	assert_false(exists);
}

static void test_device_refs(void **state)
{
	struct fx *f = *state;
	static const char *const w[] = { "ABC123", "SHARED", "2", NULL };
	static const char *const g[] = { "SHARED", "XYZ", NULL };
	struct kiln_device_rec got = { 0 };
	kiln_diag d;

	seed(f->s, "widget", "production", 0, w); /* ids 1, 2, 3 */
	seed(f->s, "gadget", "production", 0, g); /* ids 4, 5 */
	kiln_diag_clear(&d);

	KT_OK(kiln_store_device_get(f->s, "ABC123", &got, &d));
	assert_int_equal(got.id, 1);
	assert_string_equal(got.product, "widget");
	assert_int_equal(got.policy_version, 1);
	assert_string_equal(got.station, "station-7");
	assert_string_equal(got.operator_name, "bob");
	assert_string_equal(got.firmware_version, "1.2.3");
	assert_int_equal(strlen(got.firmware_sha256), 64);
	assert_string_equal(got.components_json, "{\"soc\":\"s1\"}");
	assert_string_equal(got.cert_serial, "00aa");
	assert_string_equal(got.status, "active");

	KT_OK(kiln_store_device_get(f->s, "5", &got, &d));
	assert_string_equal(got.serial, "XYZ");
	KT_OK(kiln_store_device_get(f->s, "gadget/SHARED", &got, &d));
	assert_int_equal(got.id, 4);
	KT_OK(kiln_store_device_get(f->s, "widget/2", &got, &d));
	assert_int_equal(got.id, 3);

	KT_ERR(kiln_store_device_get(f->s, "SHARED", &got, &d), KILN_ERR_ARG);
	assert_string_equal(d.text,
			    "device serial SHARED exists in several products; use product/serial");
	kiln_diag_clear(&d);
	/* "2" is device 2's id and device 3's serial: never guess. */
	KT_ERR(kiln_store_device_get(f->s, "2", &got, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "2 is both a device id and a device serial; use product/serial");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_device_get(f->s, "99", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no device 99");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_device_get(f->s, "widget/NOPE", &got, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_store_device_get(f->s, "/ABC123", &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_device_get(f->s, "widget/", &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_device_get(f->s, "", &got, &d), KILN_ERR_ARG);
	/* A failed lookup leaves the record as it was. */
	assert_string_equal(got.serial, "2");
}

static void test_device_list(void **state)
{
	struct fx *f = *state;
	static const char *const w[] = { "W1", "W2", "W3", NULL };
	static const char *const g[] = { "G1", NULL };
	struct kiln_device_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;

	seed(f->s, "widget", "production", 0, w);
	seed(f->s, "gadget", "production", 0, g);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_device_list(f->s, NULL, 0, &list, &n, &d));
	assert_int_equal(n, 4);
	assert_string_equal(list[0].serial, "G1"); /* newest first */
	assert_string_equal(list[3].serial, "W1");
	kiln_store_device_list_free(list);
	KT_OK(kiln_store_device_list(f->s, "widget", 2, &list, &n, &d));
	assert_int_equal(n, 2);
	assert_string_equal(list[0].serial, "W3");
	assert_string_equal(list[1].serial, "W2");
	kiln_store_device_list_free(list);
	KT_OK(kiln_store_device_list(f->s, "nothing", 0, &list, &n, &d));
	assert_int_equal(n, 0);
	kiln_store_device_list_free(list);
	kiln_store_device_list_free(NULL);
}

static void test_identity_get(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec got = { 0 };
	kiln_diag d;

	raw_exec(f->path, "INSERT INTO identities VALUES ('station-1', 'station', 'test', 'ab', "
			  "'active', 5)");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_identity_get(f->s, "station-1", &got, &d));
	assert_string_equal(got.role, "station");
	assert_string_equal(got.env, "test");
	assert_string_equal(got.cert_serial, "ab");
	assert_int_equal(got.created, 5);
	KT_ERR(kiln_store_identity_get(f->s, "mallory", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no identity named mallory");
}

static void test_event_list(void **state)
{
	struct fx *f = *state;
	struct kiln_event_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;

	for (int i = 0; i < 10; i++)
		add_event(f->s, i % 2 ? "rejection" : "issuance", i == 3 ? "{\"reason\":\"x\"}" : NULL);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_event_list(f->s, 0, 0, &list, &n, &d));
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(list[i].seq, (int64_t)i);
	assert_string_equal(list[3].detail_json, "{\"reason\":\"x\"}");
	assert_string_equal(list[4].detail_json, "{}");
	assert_string_equal(list[3].actor, "cli:root");
	assert_string_equal(list[3].subject, "widget");
	kiln_store_event_list_free(list, n);

	KT_OK(kiln_store_event_list(f->s, 7, 2, &list, &n, &d));
	assert_int_equal(n, 2);
	assert_int_equal(list[0].seq, 7);
	assert_int_equal(list[1].seq, 8);
	kiln_store_event_list_free(list, n);
	KT_OK(kiln_store_event_list(f->s, 10, 5, &list, &n, &d));
	assert_int_equal(n, 0);
	kiln_store_event_list_free(list, n);
	KT_ERR(kiln_store_event_list(f->s, -1, 5, &list, &n, &d), KILN_ERR_ARG);
	kiln_store_event_list_free(NULL, 0);
}

static void test_count(void **state)
{
	struct fx *f = *state;
	int64_t n = -1;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_count(f->s, "products", &n, &d));
	assert_int_equal(n, 2);
	KT_OK(kiln_store_count(f->s, "policies", &n, &d));
	assert_int_equal(n, 2);
	KT_OK(kiln_store_count(f->s, "cas", &n, &d));
	assert_int_equal(n, 1);
	KT_OK(kiln_store_count(f->s, "identities", &n, &d));
	assert_int_equal(n, 0);
	/* Only the fixed names: anything else never reaches SQL. */
	KT_ERR(kiln_store_count(f->s, "devices; DROP TABLE devices", &n, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "no table named 'devices; DROP TABLE devices' can be counted");
	KT_ERR(kiln_store_count(f->s, "sqlite_schema", &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_count(f->s, "DEVICES", &n, &d), KILN_ERR_ARG);
	KT_OK(kiln_store_count(f->s, "devices", &n, &d));
	assert_int_equal(n, 0);
	add_batch(f->s, "L1", "widget", 1);
	add_batch(f->s, "L2", "gadget", 2);
	KT_OK(kiln_store_count(f->s, "batches", &n, &d));
	assert_int_equal(n, 2);
	KT_OK(kiln_store_count(f->s, "nonces", &n, &d));
	assert_int_equal(n, 0);
}

/* A value longer than its field is refused, not cut: a cut serial names another device. */
static void test_oversized_values_refused(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec got = { 0 }, *list = NULL;
	struct kiln_cert_rec cert = { 0 };
	size_t n = 0;
	kiln_diag d;

	raw_exec(f->path, "INSERT INTO devices (product, serial, policy_version, status, created) "
			  "VALUES ('widget', 'S' || printf('%.200c', 'x'), 1, 'active', 1)");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_device_list(f->s, NULL, 0, &list, &n, &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "inventory column serial holds 201 bytes"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_device_get(f->s, "1", &got, &d), KILN_ERR_STORE);

	/* A digest of the wrong length is refused too. */
	raw_exec(f->path, "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; "
			  "INSERT INTO certificates (serial, ca_id, kind, env, subject, spki_sha256, "
			  "not_before, not_after, issued, status, der) VALUES ('aa', 1, 'tls', "
			  "'production', 'CN=x', x'0102', 1, 2, 3, 'valid', x'00')");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_cert_get(f->s, "aa", &cert, &d), KILN_ERR_STORE);
	assert_null(cert.der_heap);
}

/* Reads never see a write that has not committed. */
static kiln_result peek_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct fx *f = ctx;
	struct kiln_event_rec ev = { 0 };
	int64_t n = -1;

	memcpy(ev.type, "x", 2);
	memcpy(ev.actor, "y", 2);
	KILN_GUARD(kiln_store_tx_event_add(tx, &ev, d));
	KILN_GUARD(kiln_store_count(f->s, "events", &n, d));
	assert_int_equal(n, 0);
	return kiln_ok();
}

static void test_reads_see_committed_only(void **state)
{
	struct fx *f = *state;
	int64_t n = -1;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, peek_fn, f, &d));
	KT_OK(kiln_store_count(f->s, "events", &n, &d));
	assert_int_equal(n, 1);
}

/* ------------------------------------------------------------ factory line */

static void test_identity_by_cert(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec got = { 0 };
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	kiln_diag d;

	raw_exec(f->path, "INSERT INTO identities VALUES "
			  "('station-1', 'station', 'test', '0abc', 'active', 5), "
			  "('alice', 'admin', '', '', 'active', 6), "
			  "('bob', 'auditor', '', '', 'revoked', 7)");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_identity_by_cert(f->s, "0abc", &got, &d));
	assert_string_equal(got.name, "station-1");
	assert_string_equal(got.role, "station");
	assert_string_equal(got.env, "test");
	assert_string_equal(got.cert_serial, "0abc");
	assert_string_equal(got.status, "active");
	assert_int_equal(got.created, 5);
	KT_ERR(kiln_store_identity_by_cert(f->s, "ffff", &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no identity holds certificate ffff");
	/* Identities without a certificate are never found by one. */
	KT_ERR(kiln_store_identity_by_cert(f->s, "", &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_identity_by_cert(f->s, "0ABC", &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_identity_by_cert(f->s, NULL, &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_identity_by_cert(f->s, "0abc", NULL, &d), KILN_ERR_ARG);
	assert_string_equal(got.name, "station-1"); /* failed lookups leave it alone */

	/* Every TLS handshake looks this up: the planner must use the v2 index, not scan. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT name FROM identities "
					    "WHERE cert_serial = ?1 AND cert_serial <> ''", -1, &st,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_non_null(strstr((const char *)sqlite3_column_text(st, 3), "INDEX identities_cert"));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_batch_reads(void **state)
{
	struct fx *f = *state;
	struct kiln_batch_rec got = { 0 }, *list = NULL;
	size_t n = 0;
	kiln_diag d;

	add_batch(f->s, "L-old", "widget", 100);
	add_batch(f->s, "L-new", "widget", 300);
	add_batch(f->s, "L-mid", "gadget", 200);
	add_batch(f->s, "L-mid2", "widget", 200);
	raw_exec(f->path, "UPDATE batches SET issued = 7, status = 'closed', closed = 400 "
			  "WHERE lot = 'L-new'");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_batch_get(f->s, "L-new", &got, &d));
	assert_string_equal(got.lot, "L-new");
	assert_string_equal(got.product, "widget");
	assert_int_equal(got.quantity, 50);
	assert_int_equal(got.issued, 7);
	assert_string_equal(got.line, "line-A");
	assert_string_equal(got.station, "station-7");
	assert_string_equal(got.status, "closed");
	assert_string_equal(got.opened_by, "olivia");
	assert_int_equal(got.created, 300);
	assert_int_equal(got.closed, 400);
	KT_ERR(kiln_store_batch_get(f->s, "NOPE", &got, &d), KILN_ERR_BATCH_UNKNOWN);
	assert_string_equal(d.text, "no batch NOPE");
	KT_ERR(kiln_store_batch_get(f->s, "a/b", &got, &d), KILN_ERR_ARG);
	assert_string_equal(got.lot, "L-new");

	/* Newest first; the same second in the order they were opened, latest first. */
	kiln_diag_clear(&d);
	KT_OK(kiln_store_batch_list(f->s, NULL, &list, &n, &d));
	assert_int_equal(n, 4);
	assert_string_equal(list[0].lot, "L-new");
	assert_string_equal(list[1].lot, "L-mid2");
	assert_string_equal(list[2].lot, "L-mid");
	assert_string_equal(list[3].lot, "L-old");
	assert_int_equal(list[0].issued, 7);
	free(list);
	KT_OK(kiln_store_batch_list(f->s, "widget", &list, &n, &d));
	assert_int_equal(n, 3);
	assert_string_equal(list[0].lot, "L-new");
	assert_string_equal(list[1].lot, "L-mid2");
	assert_string_equal(list[2].lot, "L-old");
	free(list);
	list = NULL;
	KT_OK(kiln_store_batch_list(f->s, "nothing", &list, &n, &d));
	assert_int_equal(n, 0);
	free(list);
	KT_ERR(kiln_store_batch_list(f->s, "wid get", &list, &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_list(f->s, NULL, NULL, &n, &d), KILN_ERR_ARG);
}

/* More batches than a list may hold is refused, not cut. */
static void test_batch_list_too_big(void **state)
{
	struct fx *f = *state;
	struct kiln_batch_rec *list = NULL;
	char sql[512];
	size_t n = 0;
	kiln_diag d;

	(void)snprintf(sql, sizeof(sql),
		       "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < %d) "
		       "INSERT INTO batches (lot, product, quantity, status, opened_by, created) "
		       "SELECT 'L' || x, 'widget', 1, 'open', 'o', x FROM i", KILN_STORE_LIST_MAX + 1);
	raw_exec(f->path, sql);
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_batch_list(f->s, NULL, &list, &n, &d), KILN_ERR_TOO_BIG);
	assert_non_null(strstr(d.text, "more than 100000 rows while listing batches"));
	assert_null(list);
	raw_exec(f->path, "DELETE FROM batches WHERE lot = 'L1'");
	KT_OK(kiln_store_batch_list(f->s, "widget", &list, &n, &d));
	assert_int_equal(n, KILN_STORE_LIST_MAX);
	assert_string_equal(list[0].lot, "L100001");
	free(list);
}

static void test_nonce_get(void **state)
{
	struct fx *f = *state;
	struct kiln_nonce_rec n = { 0 }, got = { 0 };
	uint8_t sha[32];
	kiln_diag d;

	add_batch(f->s, "L1", "widget", 100);
	memset(n.nonce_sha256, 0x42, sizeof(n.nonce_sha256));
	memcpy(n.station, "station-7", 10);
	memcpy(n.lot, "L1", 3);
	n.issued = 1000;
	n.expires = 1600;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, nonce_fn, &n, &d));
	memset(sha, 0x42, sizeof(sha));
	KT_OK(kiln_store_nonce_get(f->s, sha, &got, &d));
	assert_memory_equal(got.nonce_sha256, sha, 32);
	assert_string_equal(got.station, "station-7");
	assert_string_equal(got.lot, "L1");
	assert_int_equal(got.issued, 1000);
	assert_int_equal(got.expires, 1600);
	assert_int_equal(got.used, 0);
	assert_string_equal(got.cert_serial, "");

	raw_exec(f->path, "UPDATE nonces SET used = 1200, request_sha256 = zeroblob(32), "
			  "cert_serial = '0f'");
	KT_OK(kiln_store_nonce_get(f->s, sha, &got, &d));
	assert_int_equal(got.used, 1200);
	assert_string_equal(got.cert_serial, "0f");

	sha[31] = 0x43;
	KT_ERR(kiln_store_nonce_get(f->s, sha, &got, &d), KILN_ERR_NONCE_UNKNOWN);
	assert_string_equal(d.text, "unknown nonce");
	KT_ERR(kiln_store_nonce_get(f->s, NULL, &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_nonce_get(f->s, sha, NULL, &d), KILN_ERR_ARG);

	/* A digest of the wrong length, written around the CHECK, is refused. */
	raw_exec(f->path, "PRAGMA ignore_check_constraints = ON; "
			  "INSERT INTO nonces VALUES (zeroblob(32), 's', 'L1', 1, 2, 3, x'0102', NULL)");
	memset(sha, 0, sizeof(sha));
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_nonce_get(f->s, sha, &got, &d), KILN_ERR_STORE);
	assert_non_null(strstr(d.text, "inventory column request_sha256 holds 2 bytes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_meta_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_values_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_see_committed_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_by_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_list_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_get, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
