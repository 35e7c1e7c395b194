/*
 * src/store/revoke.c: the revocation generation (every path that revokes
 * moves it), the revoked certificates a CRL lists (by CA, in serial order,
 * with reason codes), the certificates a recall takes (device, lot, station,
 * time window), CRL records whose numbers only grow, and the time to revoke.
 */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir;
	kiln_store *s;
	int64_t ca, ca2;
};

static const uint8_t der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
static char yaml_text[] = "product: widget\n";

static kiln_result base_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct fx *f = ctx;
	struct kiln_ca_rec root = { 0 }, iss = { 0 }, iss2;
	struct kiln_policy_rec p = { 0 };

	memcpy(root.name, "production-root", 16);
	memcpy(root.env, "production", 11);
	memcpy(root.role, "root", 5);
	memcpy(root.alg, "p256", 5);
	memcpy(root.token, "t", 2);
	memcpy(root.key_label, "k", 2);
	memcpy(root.serial, "01", 3);
	memcpy(root.subject, "CN=r", 5);
	root.not_before = 1;
	root.not_after = 2;
	KILN_GUARD(kiln_store_tx_ca_add(tx, &root, d));
	iss = root;
	memcpy(iss.name, "production-issuing", 19);
	memcpy(iss.role, "issuing", 8);
	iss.parent_id = root.id;
	KILN_GUARD(kiln_store_tx_ca_add(tx, &iss, d));
	iss2 = iss;
	memcpy(iss2.name, "production-issuing2", 20);
	/* One active issuing CA per environment (schema 8): the second is a rotation's. */
	iss2.generation = 2;
	memcpy(iss2.status, "retired", 8);
	KILN_GUARD(kiln_store_tx_ca_add(tx, &iss2, d));
	f->ca = iss.id;
	f->ca2 = iss2.id;
	memcpy(p.product, "widget", 7);
	memcpy(p.env, "production", 11);
	memcpy(p.status, "active", 7);
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	memcpy(p.added_by, "a", 2);
	return kiln_store_tx_policy_add(tx, &p, d);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	char *path;
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-revoke");
	path = kt_path(f->dir, "kiln.db");
	o.path = path;
	o.create = true;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	free(path);
	KT_OK(kiln_store_write(f->s, base_fn, f, &d));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

struct dev_op {
	int64_t ca;
	const char *sn, *serial, *lot, *station;
	int64_t issued;
};

static kiln_result dev_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct dev_op *o = ctx;
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec c = { 0 };

	memcpy(dev.product, "widget", 7);
	KILN_GUARD(kiln_strlcpy(dev.serial, o->sn, sizeof(dev.serial)));
	KILN_GUARD(kiln_strlcpy(dev.lot, o->lot, sizeof(dev.lot)));
	KILN_GUARD(kiln_strlcpy(dev.station, o->station, sizeof(dev.station)));
	KILN_GUARD(kiln_strlcpy(dev.cert_serial, o->serial, sizeof(dev.cert_serial)));
	dev.policy_version = 1;
	KILN_GUARD(kiln_store_tx_device_add(tx, &dev, d));
	KILN_GUARD(kiln_strlcpy(c.serial, o->serial, sizeof(c.serial)));
	c.ca_id = o->ca;
	memcpy(c.kind, "device", 7);
	memcpy(c.env, "production", 11);
	memcpy(c.product, "widget", 7);
	c.device_id = dev.id;
	memset(c.spki_sha256, 0x22, 32);
	c.issued = o->issued;
	c.der = der_bytes;
	c.der_len = sizeof(der_bytes);
	return kiln_store_tx_cert_add(tx, &c, d);
}

static void add_dev(struct fx *f, int64_t ca, const char *sn, const char *serial,
		    const char *lot, const char *station, int64_t issued)
{
	struct dev_op o = { ca, sn, serial, lot, station, issued };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, dev_fn, &o, &d));
}

struct rv {
	const char *serial, *reason;
	int64_t when;
};

static kiln_result revoke_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct rv *o = ctx;

	return kiln_store_tx_cert_revoke(tx, o->serial, o->reason, o->when, d);
}

static void revoke(struct fx *f, const char *serial, const char *reason, int64_t when)
{
	struct rv o = { serial, reason, when };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, revoke_fn, &o, &d));
}

struct collect {
	struct kiln_revoked rows[16];
	size_t n;
	size_t stop_at; /* fail when this many were seen (0: never) */
};

static kiln_result collect_fn(void *ctx, const struct kiln_revoked *r, kiln_diag *d)
{
	struct collect *c = ctx;

	if (c->stop_at != 0 && c->n == c->stop_at)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "stopped");
	assert_true(c->n < 16);
	c->rows[c->n++] = *r;
	return kiln_ok();
}

static void test_generation_and_each(void **state)
{
	struct fx *f = *state;
	struct collect c = { 0 };
	int64_t seq = -1;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_revocation_seq(f->s, &seq, &d));
	assert_int_equal(seq, 0);
	add_dev(f, f->ca, "A", "100", "L1", "st-1", 1000);
	add_dev(f, f->ca, "B", "ff", "L1", "st-1", 1000);
	add_dev(f, f->ca2, "C", "0c", "L1", "st-1", 1000);
	revoke(f, "100", "keyCompromise", 5000);
	KT_OK(kiln_store_revocation_seq(f->s, &seq, &d));
	assert_int_equal(seq, 1);
	revoke(f, "0c", "superseded", 5001);
	revoke(f, "ff", "aACompromise", 5002);
	KT_OK(kiln_store_revocation_seq(f->s, &seq, &d));
	assert_int_equal(seq, 3);

	/* One CA's, in numeric serial order, with reason codes. */
	KT_OK(kiln_store_revoked_each(f->s, f->ca, 0, collect_fn, &c, &d));
	assert_int_equal(c.n, 2);
	assert_string_equal(c.rows[0].serial, "ff");
	assert_int_equal(c.rows[0].reason, 10);
	assert_int_equal(c.rows[0].revoked_at, 5002);
	assert_string_equal(c.rows[1].serial, "100");
	assert_int_equal(c.rows[1].reason, 1);
	assert_int_equal(c.rows[1].seq, 1);
	/* Every CA's, and only those after a generation. */
	c.n = 0;
	KT_OK(kiln_store_revoked_each(f->s, 0, 1, collect_fn, &c, &d));
	assert_int_equal(c.n, 2);
	assert_string_equal(c.rows[0].serial, "0c");
	assert_int_equal(c.rows[0].reason, 4);
	/* The callback's failure stops the walk and is returned. */
	c.n = 0;
	c.stop_at = 1;
	KT_ERR(kiln_store_revoked_each(f->s, 0, 0, collect_fn, &c, &d), KILN_ERR_INTERNAL);
	assert_int_equal(c.n, 1);
	KT_ERR(kiln_store_revoked_each(f->s, -1, 0, collect_fn, &c, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_revoked_each(f->s, 0, 0, NULL, &c, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_revocation_seq(f->s, NULL, &d), KILN_ERR_ARG);
}

static void test_cert_select(void **state)
{
	struct fx *f = *state;
	struct kiln_cert_filter flt = { 0 };
	char (*list)[KILN_STORE_SERIAL_HEX] = NULL;
	size_t n = 0;
	kiln_diag d;

	add_dev(f, f->ca, "A", "a1", "L1", "st-1", 1000);
	add_dev(f, f->ca, "B", "a2", "L1", "st-1", 2000);
	add_dev(f, f->ca, "C", "a3", "L1", "st-2", 2000);
	add_dev(f, f->ca, "D", "a4", "L2", "st-1", 3000);
	kiln_diag_clear(&d);

	flt.station = "st-1";
	flt.from = 2000;
	flt.to = 3001;
	KT_OK(kiln_store_cert_select(f->s, &flt, &list, &n, &d));
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "a2");
	assert_string_equal(list[1], "a4");
	free(list);

	memset(&flt, 0, sizeof(flt));
	flt.lot = "L1";
	KT_OK(kiln_store_cert_select(f->s, &flt, &list, &n, &d));
	assert_int_equal(n, 3);
	free(list);
	revoke(f, "a1", "unspecified", 0);
	flt.valid_only = true;
	KT_OK(kiln_store_cert_select(f->s, &flt, &list, &n, &d));
	assert_int_equal(n, 2);
	assert_string_equal(list[0], "a2");
	free(list);

	flt.lot = "NOPE";
	KT_OK(kiln_store_cert_select(f->s, &flt, &list, &n, &d));
	assert_int_equal(n, 0);
	free(list);

	memset(&flt, 0, sizeof(flt));
	KT_ERR(kiln_store_cert_select(f->s, &flt, &list, &n, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "name a device, a lot or a station"));
	flt.station = "st-1";
	flt.from = 10;
	flt.to = 10;
	KT_ERR(kiln_store_cert_select(f->s, &flt, &list, &n, &d), KILN_ERR_ARG);
	flt.to = 0;
	flt.lot = "../x";
	KT_ERR(kiln_store_cert_select(f->s, &flt, &list, &n, &d), KILN_ERR_ARG);
	flt.lot = NULL;
	flt.station = "st\n1";
	KT_ERR(kiln_store_cert_select(f->s, &flt, &list, &n, &d), KILN_ERR_ARG);
}

/* Revokes a2, then selects the lot's valid certificates in the same transaction. */
struct sel_work {
	struct kiln_cert_filter flt;
	char (*list)[KILN_STORE_SERIAL_HEX];
	size_t n;
};

static kiln_result select_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct sel_work *w = ctx;

	KILN_GUARD(kiln_store_tx_cert_revoke(tx, "a2", "superseded", 5000, d));
	return kiln_store_tx_cert_select(tx, &w->flt, &w->list, &w->n, d);
}

static kiln_result bad_select_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct sel_work *w = ctx;

	return kiln_store_tx_cert_select(tx, &w->flt, &w->list, &w->n, d);
}

/* The transactional select sees the transaction's own writes (a reader would not). */
static void test_tx_cert_select(void **state)
{
	struct fx *f = *state;
	struct sel_work w = { 0 };
	kiln_diag d;

	add_dev(f, f->ca, "A", "a1", "L1", "st-1", 1000);
	add_dev(f, f->ca, "B", "a2", "L1", "st-1", 2000);
	kiln_diag_clear(&d);
	w.flt.lot = "L1";
	w.flt.valid_only = true;
	KT_OK(kiln_store_write(f->s, select_fn, &w, &d));
	assert_int_equal(w.n, 1);
	assert_string_equal(w.list[0], "a1");
	free(w.list);
	memset(&w, 0, sizeof(w));
	KT_ERR(kiln_store_write(f->s, bad_select_fn, &w, &d), KILN_ERR_ARG);
	assert_null(w.list);
	KT_ERR(kiln_store_tx_cert_select(NULL, &w.flt, &w.list, &w.n, &d), KILN_ERR_ARG);
}

static kiln_result crl_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_crl_add(tx, ctx, d);
}

static void test_crl_records(void **state)
{
	struct fx *f = *state;
	struct kiln_crl_rec c = { 0 }, got;
	bool found = true;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_crl_last(f->s, f->ca, &got, &found, &d));
	assert_false(found);
	c.ca_id = f->ca;
	c.number = 1;
	c.this_update = 100;
	c.next_update = 200;
	memset(c.sha256, 0x5a, 32);
	KT_OK(kiln_store_write(f->s, crl_fn, &c, &d));
	c.number = 2;
	c.entries = 7;
	c.revocation_seq = 3;
	KT_OK(kiln_store_write(f->s, crl_fn, &c, &d));
	KT_OK(kiln_store_crl_last(f->s, f->ca, &got, &found, &d));
	assert_true(found);
	assert_int_equal(got.number, 2);
	assert_int_equal(got.entries, 7);
	assert_int_equal(got.revocation_seq, 3);
	assert_memory_equal(got.sha256, c.sha256, 32);

	KT_ERR(kiln_store_write(f->s, crl_fn, &c, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "CRL number 2 of CA 2 does not follow the last one: CRL "
				    "numbers only grow");
	c.number = 1;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, crl_fn, &c, &d), KILN_ERR_ARG);
	c.number = 5;
	c.next_update = c.this_update;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, crl_fn, &c, &d), KILN_ERR_ARG);
	c.next_update = 300;
	c.ca_id = 99;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, crl_fn, &c, &d), KILN_ERR_NOT_FOUND);
	/* Numbers are per CA. */
	c.ca_id = f->ca2;
	c.number = 1;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, crl_fn, &c, &d));
	KT_ERR(kiln_store_crl_last(f->s, 0, &got, &found, &d), KILN_ERR_ARG);
}

struct vis {
	const char *serial;
	int64_t ms;
};

static kiln_result vis_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct vis *v = ctx;

	return kiln_store_tx_revocation_visible(tx, v->serial, v->ms, d);
}

static void test_time_to_revoke(void **state)
{
	struct fx *f = *state;
	struct vis v = { "b1", 42 };
	kiln_diag d;

	add_dev(f, f->ca, "A", "b1", "L1", "st-1", 1000);
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, vis_fn, &v, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "certificate b1 is not revoked");
	revoke(f, "b1", "keyCompromise", 0);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, vis_fn, &v, &d));
	v.ms = -1;
	KT_ERR(kiln_store_write(f->s, vis_fn, &v, &d), KILN_ERR_ARG);
}

static kiln_result status_fn(void *ctx, const struct kiln_revoked *r, kiln_diag *d)
{
	struct collect *c = ctx;

	(void)d;
	assert_true(c->n < 16);
	c->rows[c->n++] = *r;
	return kiln_ok();
}

static void test_status_each_and_timing(void **state)
{
	struct fx *f = *state;
	struct collect c = { 0 };
	int64_t rec = 0, vis = 0, before = kiln_wall_ms();
	kiln_diag d;

	add_dev(f, f->ca, "A", "c1", "L1", "st-1", 1000);
	add_dev(f, f->ca, "B", "c2", "L1", "st-1", 1000);
	add_dev(f, f->ca2, "C", "c3", "L1", "st-1", 1000);
	revoke(f, "c2", "privilegeWithdrawn", 7000);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_cert_status_each(f->s, f->ca, status_fn, &c, &d));
	assert_int_equal(c.n, 2);
	for (size_t i = 0; i < c.n; i++) {
		if (strcmp(c.rows[i].serial, "c1") == 0) {
			assert_false(c.rows[i].revoked);
			assert_int_equal(c.rows[i].reason, -1);
		} else {
			assert_string_equal(c.rows[i].serial, "c2");
			assert_true(c.rows[i].revoked);
			assert_int_equal(c.rows[i].reason, 9);
			assert_int_equal(c.rows[i].revoked_at, 7000);
			assert_int_equal(c.rows[i].seq, 1);
		}
	}
	KT_OK(kiln_store_revocation_timing(f->s, "c2", &rec, &vis, &d));
	assert_true(rec >= before - 1000 && rec <= kiln_wall_ms() + 1000);
	assert_int_equal(vis, -1);
	KT_ERR(kiln_store_revocation_timing(f->s, "c1", &rec, &vis, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_store_revocation_timing(f->s, "C1", &rec, &vis, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_cert_status_each(f->s, 0, status_fn, &c, &d), KILN_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_generation_and_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_cert_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_time_to_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_each_and_timing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
