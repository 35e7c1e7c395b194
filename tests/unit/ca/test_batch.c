/*
 * Unit tests for src/ca/batch.c: opening and closing lots over a real
 * deployment, every refusal (and that a refusal writes nothing), and the
 * events each change records.
 */
#include "support/ca_fixture.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-batch", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static kiln_result open_lot(const char *product, const char *lot, int64_t qty, const char *line,
			    const char *station, struct kiln_batch_rec *rec, kiln_diag *d)
{
	struct kiln_batch_req req = { product, lot, qty, line, station, "eng-1" };

	kiln_diag_clear(d);
	return kiln_ca_batch_open(k.ca, &req, rec, d);
}

/* The newest event (caller cleans up). */
static void last_event(struct kiln_event_rec *out)
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;

	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	assert_true(n > 0);
	/* Ownership of the detail moves to out. */
	*out = ev[n - 1];
	assert_non_null(out->detail_json);
	ev[n - 1].detail_heap = NULL;
	ev[n - 1].detail_json = NULL;
	kiln_store_event_list_free(ev, n);
}

static void test_open(void **state)
{
	struct kiln_batch_rec rec, got = { 0 };
	struct kiln_event_rec ev;
	int64_t batches = kt_count(&k, "batches"), events = kt_count(&k, "events");
	int64_t before = kiln_now();
	json_t *j;
	kiln_diag d;

	(void)state;
	KT_OK(open_lot("widget", "LOT-OPEN-1", 500, "L1", "st-01", &rec, &d));
	assert_string_equal(rec.lot, "LOT-OPEN-1");
	assert_string_equal(rec.product, "widget");
	assert_int_equal(rec.quantity, 500);
	assert_int_equal(rec.issued, 0);
	assert_string_equal(rec.line, "L1");
	assert_string_equal(rec.station, "st-01");
	assert_string_equal(rec.status, "open");
	assert_string_equal(rec.opened_by, "eng-1");
	assert_true(rec.created >= before && rec.created <= kiln_now());
	assert_int_equal(kt_count(&k, "batches"), batches + 1);
	assert_int_equal(kt_count(&k, "events"), events + 1);

	/* What the store holds is what was returned. */
	KT_OK(kiln_store_batch_get(k.store, "LOT-OPEN-1", &got, NULL));
	assert_string_equal(got.product, "widget");
	assert_int_equal(got.quantity, 500);
	assert_string_equal(got.station, "st-01");
	assert_string_equal(got.status, "open");
	assert_int_equal(got.closed, 0);

	/* The event names the lot, who opened it, and what was planned. */
	last_event(&ev);
	assert_string_equal(ev.type, "batch-open");
	assert_string_equal(ev.actor, "eng-1");
	assert_string_equal(ev.subject, "LOT-OPEN-1");
	j = json_loads(ev.detail_json, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "product")), "widget");
	assert_int_equal(json_integer_value(json_object_get(j, "quantity")), 500);
	assert_string_equal(json_string_value(json_object_get(j, "line")), "L1");
	assert_string_equal(json_string_value(json_object_get(j, "station")), "st-01");
	json_decref(j);
	kiln_event_rec_cleanup(&ev);
}

static void test_open_optional_fields(void **state)
{
	struct kiln_batch_rec rec;
	kiln_diag d;

	(void)state;
	/* No line, no station: any station of the environment may provision into it. */
	KT_OK(open_lot("widget-test", "LOT-OPT-1", 1, NULL, NULL, &rec, &d));
	assert_string_equal(rec.line, "");
	assert_string_equal(rec.station, "");
	assert_string_equal(rec.product, "widget-test");
	KT_OK(open_lot("widget-test", "LOT-OPT-2", 1, "", "", &rec, &d));
	assert_string_equal(rec.station, "");
}

static void test_open_product_unknown(void **state)
{
	struct kiln_batch_rec rec;
	int64_t batches = kt_count(&k, "batches"), events = kt_count(&k, "events");
	kiln_diag d;

	(void)state;
	KT_ERR(open_lot("no-such-product", "LOT-UNK", 10, NULL, NULL, &rec, &d),
	       KILN_ERR_UNKNOWN_PRODUCT);
	assert_non_null(strstr(d.text, "no-such-product"));
	assert_int_equal(kt_count(&k, "batches"), batches);
	assert_int_equal(kt_count(&k, "events"), events);
	KT_ERR(kiln_store_batch_get(k.store, "LOT-UNK", &rec, NULL), KILN_ERR_BATCH_UNKNOWN);
}

static void test_open_quantity_bounds(void **state)
{
	static const int64_t bad[] = { 0, -1, 1000000001, INT64_MAX, INT64_MIN };
	struct kiln_batch_rec rec;
	int64_t batches = kt_count(&k, "batches");
	kiln_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		KT_ERR(open_lot("widget", "LOT-QTY", bad[i], NULL, NULL, &rec, &d), KILN_ERR_ARG);
		assert_non_null(strstr(d.text, "quantity"));
	}
	assert_int_equal(kt_count(&k, "batches"), batches);
	KT_OK(open_lot("widget", "LOT-QTY-MIN", 1, NULL, NULL, &rec, &d));
	assert_int_equal(rec.quantity, 1);
	KT_OK(open_lot("widget", "LOT-QTY-MAX", 1000000000, NULL, NULL, &rec, &d));
	assert_int_equal(rec.quantity, 1000000000);
}

static void test_open_names(void **state)
{
	char lot64[65], lot63[64], line64[65], station128[129];
	struct kiln_batch_rec rec;
	int64_t batches = kt_count(&k, "batches"), events = kt_count(&k, "events");
	kiln_diag d;

	(void)state;
	memset(lot64, 'L', 64);
	lot64[64] = '\0';
	memset(lot63, 'M', 63);
	lot63[63] = '\0';
	memset(line64, 'l', 64);
	line64[64] = '\0';
	memset(station128, 's', 128);
	station128[128] = '\0';
	KT_ERR(open_lot("widget", lot64, 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "too long"));
	KT_ERR(open_lot("widget", "LOT-LONG-LINE", 1, line64, NULL, &rec, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "too long"));
	KT_ERR(open_lot("widget", "LOT-LONG-ST", 1, NULL, station128, &rec, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "too long"));
	/* Lots end up in URLs and file names: only [A-Za-z0-9._-], never "." or "..". */
	KT_ERR(open_lot("widget", "LOT 1", 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(open_lot("widget", "LOT/1", 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(open_lot("widget", "..", 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(open_lot("widget", "", 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(open_lot("widget", "LOT-CTL", 1, "L\n1", NULL, &rec, &d), KILN_ERR_ARG);
	assert_int_equal(kt_count(&k, "batches"), batches);
	assert_int_equal(kt_count(&k, "events"), events);
	/* The longest names that fit are taken. */
	station128[127] = '\0';
	line64[63] = '\0';
	KT_OK(open_lot("widget", lot63, 1, line64, station128, &rec, &d));
	assert_string_equal(rec.lot, lot63);
	assert_int_equal(strlen(rec.station), 127);
}

static void test_open_missing_arguments(void **state)
{
	struct kiln_batch_req req = { "widget", "LOT-ARGS", 1, NULL, NULL, NULL };
	struct kiln_batch_rec rec;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_open(k.ca, &req, &rec, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "actor"));
	KT_ERR(open_lot(NULL, "LOT-ARGS", 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(open_lot("widget", NULL, 1, NULL, NULL, &rec, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_batch_get(k.store, "LOT-ARGS", &rec, NULL), KILN_ERR_BATCH_UNKNOWN);
}

static void test_open_duplicate(void **state)
{
	struct kiln_batch_rec rec, got = { 0 };
	int64_t events;
	kiln_diag d;

	(void)state;
	KT_OK(open_lot("widget", "LOT-DUP", 10, NULL, NULL, &rec, &d));
	events = kt_count(&k, "events");
	/* A lot is opened once, even for another product or quantity. */
	KT_ERR(open_lot("widget", "LOT-DUP", 10, NULL, NULL, &rec, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "LOT-DUP"));
	KT_ERR(open_lot("widget-test", "LOT-DUP", 99, NULL, NULL, &rec, &d), KILN_ERR_DUPLICATE);
	assert_int_equal(kt_count(&k, "events"), events);
	KT_OK(kiln_store_batch_get(k.store, "LOT-DUP", &got, NULL));
	assert_string_equal(got.product, "widget");
	assert_int_equal(got.quantity, 10);
}

static void test_close(void **state)
{
	struct kiln_batch_rec rec, got = { 0 };
	struct kiln_event_rec ev;
	int64_t events;
	kiln_diag d;

	(void)state;
	KT_OK(open_lot("widget", "LOT-CLOSE", 10, NULL, NULL, &rec, &d));
	events = kt_count(&k, "events");
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_batch_close(k.ca, "LOT-CLOSE", "eng-2", &d));
	KT_OK(kiln_store_batch_get(k.store, "LOT-CLOSE", &got, NULL));
	assert_string_equal(got.status, "closed");
	assert_true(got.closed >= got.created);
	assert_int_equal(kt_count(&k, "events"), events + 1);
	last_event(&ev);
	assert_string_equal(ev.type, "batch-close");
	assert_string_equal(ev.actor, "eng-2");
	assert_string_equal(ev.subject, "LOT-CLOSE");
	kiln_event_rec_cleanup(&ev);

	/* Twice: refused, nothing recorded. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_close(k.ca, "LOT-CLOSE", "eng-2", &d), KILN_ERR_BATCH_CLOSED);
	assert_non_null(strstr(d.text, "LOT-CLOSE"));
	assert_int_equal(kt_count(&k, "events"), events + 1);
}

static void test_close_refusals(void **state)
{
	int64_t events = kt_count(&k, "events");
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_close(k.ca, "LOT-NEVER", "eng", &d), KILN_ERR_BATCH_UNKNOWN);
	assert_non_null(strstr(d.text, "LOT-NEVER"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_close(k.ca, "../etc", "eng", &d), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_close(k.ca, NULL, "eng", &d), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_batch_close(k.ca, "LOT-NEVER", NULL, &d), KILN_ERR_ARG);
	assert_int_equal(kt_count(&k, "events"), events);
}

static void test_events_in_order(void **state)
{
	struct kiln_event_rec *ev = NULL;
	struct kiln_batch_rec rec;
	size_t n = 0;
	int64_t from = kt_count(&k, "events");
	kiln_diag d;

	(void)state;
	KT_OK(open_lot("widget", "LOT-SEQ", 3, NULL, NULL, &rec, &d));
	KT_OK(kiln_ca_batch_close(k.ca, "LOT-SEQ", "eng-3", &d));
	KT_OK(kiln_store_event_list(k.store, from, 0, &ev, &n, NULL));
	assert_int_equal(n, 2);
	assert_string_equal(ev[0].type, "batch-open");
	assert_string_equal(ev[1].type, "batch-close");
	assert_true(ev[0].seq < ev[1].seq);
	assert_string_equal(ev[0].subject, "LOT-SEQ");
	assert_string_equal(ev[1].subject, "LOT-SEQ");
	kiln_store_event_list_free(ev, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_open_optional_fields),
		cmocka_unit_test(test_open_product_unknown),
		cmocka_unit_test(test_open_quantity_bounds),
		cmocka_unit_test(test_open_names),
		cmocka_unit_test(test_open_missing_arguments),
		cmocka_unit_test(test_open_duplicate),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_close_refusals),
		cmocka_unit_test(test_events_in_order),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
