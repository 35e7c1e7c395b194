/*
 * src/store/store.c: the public front. Arguments checked before any backend
 * sees them, record cleanups (what they free and what they must not), the
 * count allow-list, device reference parsing, the event detail check, and
 * the factory line's lot names and read arguments.
 */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	kiln_store *s;
};

static char yaml_text[] = "product: widget\n";

static kiln_result policy_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_policy_rec p = { 0 };

	(void)ctx;
	memcpy(p.product, "widget", 7);
	memcpy(p.env, "production", 11);
	memcpy(p.status, "active", 7);
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	memcpy(p.added_by, "alice", 6);
	return kiln_store_tx_policy_add(tx, &p, d);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-front");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	o.readers = 1;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	KT_OK(kiln_store_write(f->s, policy_fn, NULL, &d));
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

/* ------------------------------------------------------------ open */

static void test_open_args(void **state)
{
	struct kiln_store_opts o = { 0 };
	kiln_store *s = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_open(NULL, &s, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "no inventory database path given");
	KT_ERR(kiln_store_open(&o, &s, &d), KILN_ERR_ARG);
	o.path = "";
	KT_ERR(kiln_store_open(&o, &s, &d), KILN_ERR_ARG);
	o.path = "/nonexistent/kiln.db";
	KT_ERR(kiln_store_open(&o, NULL, &d), KILN_ERR_ARG);
	assert_null(s);
	assert_true(kiln_store_schema_version() >= 1);
}

/* ------------------------------------------------------------ cleanups */

static void test_cleanups_null_safe(void **state)
{
	(void)state;
	kiln_ca_rec_cleanup(NULL);
	kiln_policy_rec_cleanup(NULL);
	kiln_cert_rec_cleanup(NULL);
	kiln_event_rec_cleanup(NULL);
	kiln_store_ca_list_free(NULL, 3);
	kiln_store_policy_list_free(NULL, 3);
	kiln_store_event_list_free(NULL, 3);
	kiln_store_device_list_free(NULL);
}

static void test_cert_cleanup_frees_only_what_was_read(void **state)
{
	static const uint8_t borrowed[] = { 1, 2, 3 };
	struct kiln_cert_rec c = { 0 };

	(void)state;
	/* Filled for insert: der is borrowed; cleanup must not free it (ASan/valgrind would see). */
	c.der = borrowed;
	c.der_len = sizeof(borrowed);
	kiln_cert_rec_cleanup(&c);
	assert_ptr_equal(c.der, borrowed);
	assert_int_equal(c.der_len, sizeof(borrowed));

	/* Filled by a read: der is the heap block. */
	c.der_heap = malloc(4);
	assert_non_null(c.der_heap);
	c.der = c.der_heap;
	c.der_len = 4;
	kiln_cert_rec_cleanup(&c);
	assert_null(c.der);
	assert_null(c.der_heap);
	assert_int_equal(c.der_len, 0);

	/* Read, then pointed at borrowed bytes for an insert: the read block goes, der stays. */
	c.der_heap = malloc(4);
	assert_non_null(c.der_heap);
	c.der = borrowed;
	c.der_len = sizeof(borrowed);
	kiln_cert_rec_cleanup(&c);
	assert_null(c.der_heap);
	assert_ptr_equal(c.der, borrowed);
	kiln_cert_rec_cleanup(&c);
}

static void test_other_cleanups(void **state)
{
	static char literal[] = "{\"borrowed\":true}";
	struct kiln_event_rec ev = { 0 };
	struct kiln_ca_rec ca = { 0 };
	struct kiln_policy_rec p = { 0 };

	(void)state;
	ev.detail_json = literal;
	kiln_event_rec_cleanup(&ev);
	assert_ptr_equal(ev.detail_json, literal);
	ev.detail_heap = strdup("{}");
	ev.detail_json = ev.detail_heap;
	kiln_event_rec_cleanup(&ev);
	assert_null(ev.detail_json);
	assert_null(ev.detail_heap);

	ca.cert_der = malloc(8);
	ca.cert_len = 8;
	kiln_ca_rec_cleanup(&ca);
	assert_null(ca.cert_der);
	assert_int_equal(ca.cert_len, 0);
	p.yaml = strdup("a: b\n");
	p.yaml_len = 5;
	kiln_policy_rec_cleanup(&p);
	assert_null(p.yaml);
	assert_int_equal(p.yaml_len, 0);
	kiln_policy_rec_cleanup(&p);
}

/* ------------------------------------------------------------ checks before the backend */

struct one {
	int which;
	void *rec;
};

static kiln_result one_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct one *o = ctx;

	switch (o->which) {
	case 0:
		return kiln_store_tx_device_add(tx, o->rec, d);
	case 1:
		return kiln_store_tx_cert_add(tx, o->rec, d);
	case 2:
		return kiln_store_tx_event_add(tx, o->rec, d);
	case 3:
		return kiln_store_tx_policy_add(tx, o->rec, d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

static kiln_result one(kiln_store *s, int which, void *rec, kiln_diag *d)
{
	struct one o = { which, rec };

	kiln_diag_clear(d);
	return kiln_store_write(s, one_fn, &o, d);
}

static void test_product_ids(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "-widget", "wid get", "wid/get", "widget\n", "é", "" };
	struct kiln_policy_rec p = { 0 };
	kiln_diag d;

	memcpy(p.env, "production", 11);
	memcpy(p.added_by, "alice", 6);
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(p.product, 0, sizeof(p.product));
		memcpy(p.product, bad[i], strlen(bad[i]));
		KT_ERR(one(f->s, 3, &p, &d), KILN_ERR_ARG);
	}
	memset(p.product, 'a', sizeof(p.product)); /* no terminator */
	KT_ERR(one(f->s, 3, &p, &d), KILN_ERR_ARG);
	memset(p.product, 0, sizeof(p.product));
	memcpy(p.product, "Widget_2.0-b", 13);
	KT_OK(one(f->s, 3, &p, &d));
	/* yaml_len must match: no NUL inside the text. */
	p.yaml_len = sizeof(yaml_text);
	KT_ERR(one(f->s, 3, &p, &d), KILN_ERR_ARG);
}

static void test_unterminated_fields(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec c = { 0 };
	struct kiln_event_rec ev = { 0 };
	kiln_diag d;

	memcpy(dev.product, "widget", 7);
	memset(dev.serial, 'S', sizeof(dev.serial));
	dev.policy_version = 1;
	KT_ERR(one(f->s, 0, &dev, &d), KILN_ERR_ARG);
	memcpy(dev.serial, "S1", 3);
	memset(dev.cert_serial, 'a', sizeof(dev.cert_serial));
	KT_ERR(one(f->s, 0, &dev, &d), KILN_ERR_ARG);

	memset(c.serial, 'a', sizeof(c.serial)); /* 41 hex digits, no terminator */
	c.ca_id = 1;
	memcpy(c.kind, "tls", 4);
	memcpy(c.env, "service", 8);
	c.der = (const uint8_t *)"x";
	c.der_len = 1;
	KT_ERR(one(f->s, 1, &c, &d), KILN_ERR_ARG);

	memset(ev.type, 't', sizeof(ev.type));
	memcpy(ev.actor, "a", 2);
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_ARG);
}

static void test_event_detail_checked(void **state)
{
	struct fx *f = *state;
	struct kiln_event_rec ev = { 0 };
	char deep[128];
	char *huge;
	kiln_diag d;

	memcpy(ev.type, "issuance", 9);
	memcpy(ev.actor, "a", 2);
	ev.detail_json = "{\"a\":1,\"a\":2}"; /* duplicate keys */
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_MALFORMED);
	assert_string_equal(d.text, "event issuance: detail must be a JSON object");
	for (int i = 0; i < 17; i++)
		memcpy(deep + 5 * i, "{\"a\":", 5);
	memcpy(deep + 85, "1", 2);
	ev.detail_json = deep; /* too deep (and unbalanced) */
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_MALFORMED);
	ev.detail_json = "";
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_MALFORMED);
	ev.detail_json = "\"text\"";
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_MALFORMED);
	huge = malloc(KILN_STORE_BLOB_MAX + 16);
	assert_non_null(huge);
	memset(huge, ' ', KILN_STORE_BLOB_MAX + 15);
	huge[0] = '{';
	huge[KILN_STORE_BLOB_MAX + 14] = '}';
	huge[KILN_STORE_BLOB_MAX + 15] = '\0';
	ev.detail_json = huge;
	KT_ERR(one(f->s, 2, &ev, &d), KILN_ERR_TOO_BIG);
	free(huge);
	ev.detail_json = "{\"nested\":{\"ok\":[1,2,3]}}";
	KT_OK(one(f->s, 2, &ev, &d));
	assert_int_equal(ev.seq, 0);
}

static void test_event_add_convenience(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	for (int64_t i = 0; i < 3; i++) {
		struct kiln_event_rec ev = { 0 };

		memcpy(ev.type, "auth-failure", 13);
		memcpy(ev.actor, "tls:unknown", 12);
		kiln_diag_clear(&d);
		KT_OK(kiln_store_event_add(f->s, &ev, &d));
		assert_int_equal(ev.seq, i);
	}
}

/* ------------------------------------------------------------ reads */

static kiln_result device_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_device_rec dev = { 0 };

	memcpy(dev.product, "widget", 7);
	assert_true(kiln_is_ok(kiln_strlcpy(dev.serial, ctx, sizeof(dev.serial))));
	dev.policy_version = 1;
	return kiln_store_tx_device_add(tx, &dev, d);
}

static void test_device_ref_forms(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec got = { 0 };
	char longref[600];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, device_fn, "0", &d));     /* id 1 */
	KT_OK(kiln_store_write(f->s, device_fn, "A/B/C", &d)); /* id 2 */
	/* "0" is never an id: it is the serial. */
	KT_OK(kiln_store_device_get(f->s, "0", &got, &d));
	assert_int_equal(got.id, 1);
	/* Leading zeros still mean the id. */
	KT_OK(kiln_store_device_get(f->s, "002", &got, &d));
	assert_string_equal(got.serial, "A/B/C");
	/* The product ends at the first '/'; the serial may hold more. */
	KT_OK(kiln_store_device_get(f->s, "widget/A/B/C", &got, &d));
	assert_int_equal(got.id, 2);
	/* Alone, such a serial reads as product "A": use the id or widget/A/B/C. */
	KT_ERR(kiln_store_device_get(f->s, "A/B/C", &got, &d), KILN_ERR_NOT_FOUND);
	memset(longref, 'x', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_device_get(f->s, longref, &got, &d), KILN_ERR_ARG);
	memcpy(longref + 100, "/s", 3); /* a product id longer than any product */
	KT_ERR(kiln_store_device_get(f->s, longref, &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_device_get(f->s, NULL, &got, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_device_get(f->s, "1", NULL, &d), KILN_ERR_ARG);
}

static void test_read_args(void **state)
{
	struct fx *f = *state;
	struct kiln_ca_rec ca = { 0 };
	struct kiln_policy_rec p = { 0 };
	struct kiln_cert_rec c = { 0 };
	struct kiln_device_rec *devs = NULL;
	size_t n;
	int64_t cnt;
	kiln_diag d;
	char out[8];

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_meta_get(NULL, "k", out, sizeof(out), &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_ca_get(f->s, NULL, &ca, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_ca_get_id(f->s, 1, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_ca_list(f->s, NULL, &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_policy_active(f->s, NULL, &p, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_policy_list(f->s, NULL, &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_cert_get(f->s, NULL, &c, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_cert_exists(f->s, "aa", NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_identity_get(f->s, "x", NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_device_list(f->s, NULL, 0, &devs, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_event_list(f->s, 0, 0, NULL, &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_count(f->s, NULL, &cnt, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_count(NULL, "events", &cnt, &d), KILN_ERR_ARG);
}

static void test_factory_read_args(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec id = { 0 };
	struct kiln_batch_rec b = { 0 }, *list = NULL;
	struct kiln_nonce_rec nr = { 0 };
	uint8_t sha[32] = { 0 };
	size_t n;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_identity_by_cert(NULL, "ab", &id, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_identity_by_cert(f->s, "ab:cd", &id, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_get(NULL, "L1", &b, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_get(f->s, NULL, &b, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_get(f->s, "L1", NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_list(NULL, NULL, &list, &n, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_list(f->s, NULL, &list, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_nonce_get(NULL, sha, &nr, &d), KILN_ERR_ARG);
	/* Absent things are reported as such, with the codes the API promises. */
	KT_ERR(kiln_store_batch_get(f->s, "L1", &b, &d), KILN_ERR_BATCH_UNKNOWN);
	KT_ERR(kiln_store_nonce_get(f->s, sha, &nr, &d), KILN_ERR_NONCE_UNKNOWN);
	KT_ERR(kiln_store_identity_by_cert(f->s, "ab", &id, &d), KILN_ERR_NOT_FOUND);
}

/* Lots: [A-Za-z0-9._-]{1,63}, except "." and ".."; checked before any SQL. */
static void test_lot_forms(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "", ".", "..", "a/b", "a\\b", "a b", "a\tb", "a+b",
					   "\xc3\xa9t\xc3\xa9", "L1;DROP", "%2e%2e" };
	static const char *const good[] = { "L1", "...", ".hidden", "-x", "_", "2026.11-A_b",
					    "Z" };
	struct kiln_batch_rec b = { 0 };
	char longest[64], too_long[65];
	kiln_diag d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_diag_clear(&d);
		if (kiln_store_batch_get(f->s, bad[i], &b, &d).code != KILN_ERR_ARG)
			fail_msg("lot '%s' was accepted", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		kiln_diag_clear(&d);
		if (kiln_store_batch_get(f->s, good[i], &b, &d).code != KILN_ERR_BATCH_UNKNOWN)
			fail_msg("lot '%s' was refused: %s", good[i], d.text);
	}
	memset(longest, 'x', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_batch_get(f->s, longest, &b, &d), KILN_ERR_BATCH_UNKNOWN);
	KT_ERR(kiln_store_batch_get(f->s, too_long, &b, &d), KILN_ERR_ARG);
}

static void test_count_every_table(void **state)
{
	struct fx *f = *state;
	static const char *const tables[] = { "meta", "products", "policies", "cas",
					      "certificates", "devices", "identities", "events",
					      "batches", "nonces" };
	static const int64_t want[] = { 0, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
	kiln_diag d;

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int64_t n = -1;

		kiln_diag_clear(&d);
		KT_OK(kiln_store_count(f->s, tables[i], &n, &d));
		assert_int_equal(n, want[i]);
	}
	{
		int64_t n = -1;

		KT_ERR(kiln_store_count(f->s, "events ", &n, &d), KILN_ERR_ARG);
		assert_int_equal(n, -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_args),
		cmocka_unit_test(test_cleanups_null_safe),
		cmocka_unit_test(test_cert_cleanup_frees_only_what_was_read),
		cmocka_unit_test(test_other_cleanups),
		cmocka_unit_test_setup_teardown(test_product_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unterminated_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_detail_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_add_convenience, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_ref_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_every_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_factory_read_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lot_forms, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
