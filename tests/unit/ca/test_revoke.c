/*
 * Unit tests for src/ca/revoke.c over a real deployment: revoking by serial
 * and by device, recalls by lot and by station in a time window, one event
 * per certificate in the same commit, and every refusal (which writes one
 * rejection event and nothing else).
 */
#include "support/ca_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-revoke", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

/* A widget-test device SN, made by station (NULL: none) in lot (NULL: none). */
static void issue(const char *sn, const char *station, const char *lot, char serial[KILN_SERIAL_HEX])
{
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	kiln_buf csr;
	kiln_diag d;

	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", sn, NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "test-operator";
	req.station = station;
	req.lot = lot;
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	memcpy(serial, res.serial, KILN_SERIAL_HEX);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static kiln_result revoke(struct kiln_revoke_req *req, struct kiln_revoke_result *res, kiln_diag *d)
{
	if (req->actor == NULL)
		req->actor = "officer-1";
	kiln_diag_clear(d);
	return kiln_ca_revoke(k.ca, req, res, d);
}

static void status_is(const char *serial, const char *want, const char *reason)
{
	struct kiln_cert_rec c = { 0 };

	KT_OK(kiln_store_cert_get(k.store, serial, &c, NULL));
	assert_string_equal(c.status, want);
	assert_string_equal(c.reason, reason);
	kiln_cert_rec_cleanup(&c);
}

static void test_by_serial_and_device(void **state)
{
	char a[KILN_SERIAL_HEX], b[KILN_SERIAL_HEX];
	struct kiln_revoke_req req = { 0 };
	struct kiln_revoke_result res;
	int64_t events;
	kiln_diag d;

	(void)state;
	issue("TST-RV-0001", NULL, NULL, a);
	issue("TST-RV-0002", NULL, NULL, b);
	events = kt_count_events(&k, "revocation");
	req.serial = a;
	req.reason = "keyCompromise";
	KT_OK(revoke(&req, &res, &d));
	assert_int_equal(res.n, 1);
	assert_string_equal(res.serials[0], a);
	assert_int_equal(res.seq, 1);
	kiln_revoke_result_cleanup(&res);
	status_is(a, "revoked", "keyCompromise");
	status_is(b, "valid", "");
	assert_int_equal(kt_count_events(&k, "revocation"), events + 1);

	memset(&req, 0, sizeof(req));
	req.device = "widget-test/TST-RV-0002";
	req.reason = "superseded";
	KT_OK(revoke(&req, &res, &d));
	assert_string_equal(res.serials[0], b);
	assert_int_equal(res.seq, 2);
	kiln_revoke_result_cleanup(&res);
	status_is(b, "revoked", "superseded");
}

static void test_recalls(void **state)
{
	char s[4][KILN_SERIAL_HEX];
	struct kiln_revoke_req req = { 0 };
	struct kiln_revoke_result res;
	int64_t t0 = kiln_now(), events;
	kiln_diag d;

	(void)state;
	issue("TST-RC-0001", "st-a", NULL, s[0]);
	issue("TST-RC-0002", "st-b", NULL, s[1]);
	issue("TST-RC-0003", "st-a", NULL, s[2]);
	events = kt_count_events(&k, "revocation");
	/* A window after everything was issued takes nothing. */
	req.station = "st-a";
	req.from = kiln_now() + 3600;
	req.reason = "keyCompromise";
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no valid certificate matches the recall");
	req.from = t0 - 60;
	req.to = kiln_now() + 60;
	KT_OK(revoke(&req, &res, &d));
	assert_int_equal(res.n, 2);
	kiln_revoke_result_cleanup(&res);
	status_is(s[0], "revoked", "keyCompromise");
	status_is(s[1], "valid", "");
	status_is(s[2], "revoked", "keyCompromise");
	assert_int_equal(kt_count_events(&k, "revocation"), events + 2);
	/* Again: nothing valid is left in that window. */
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_NOT_FOUND);
}

static void test_refusals(void **state)
{
	char a[KILN_SERIAL_HEX];
	struct kiln_revoke_req req;
	struct kiln_revoke_result res;
	int64_t rej, revs;
	kiln_diag d;
	static const struct {
		const char *serial, *device, *lot, *station, *reason;
		int64_t from, to;
		kiln_err want;
		const char *msg;
	} cases[] = {
		{ "00ff", NULL, NULL, NULL, "keyCompromise", 0, 0, KILN_ERR_NOT_FOUND, "no certificate 00ff" },
		{ "SERIAL", NULL, NULL, NULL, "keyCompromise", 0, 0, KILN_ERR_ARG, "lower-case hex" },
		{ NULL, NULL, NULL, NULL, "keyCompromise", 0, 0, KILN_ERR_ARG, "exactly one of" },
		{ "00ff", "x", NULL, NULL, "keyCompromise", 0, 0, KILN_ERR_ARG, "exactly one of" },
		{ NULL, NULL, NULL, "st-a", "bogus", 0, 0, KILN_ERR_ARG, "unknown revocation reason" },
		{ NULL, NULL, NULL, "st-a", NULL, 0, 0, KILN_ERR_ARG, "unknown revocation reason" },
		{ NULL, NULL, NULL, "st-a", "keyCompromise", 10, 5, KILN_ERR_ARG, "must end after" },
		{ NULL, NULL, "LOT-X", NULL, "keyCompromise", 10, 0, KILN_ERR_ARG, "station recall only" },
		{ NULL, "widget-test/NOPE-1", NULL, NULL, "keyCompromise", 0, 0, KILN_ERR_NOT_FOUND, "" },
		{ NULL, NULL, "../x", NULL, "keyCompromise", 0, 0, KILN_ERR_ARG, "batch lot" },
	};

	(void)state;
	issue("TST-RF-0001", NULL, NULL, a);
	rej = kt_count_events(&k, "rejection");
	revs = kt_count(&k, "revocations");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.serial = cases[i].serial;
		req.device = cases[i].device;
		req.lot = cases[i].lot;
		req.station = cases[i].station;
		req.reason = cases[i].reason;
		req.from = cases[i].from;
		req.to = cases[i].to;
		if (revoke(&req, &res, &d).code != cases[i].want)
			fail_msg("case %zu: %s", i, d.text);
		if (strstr(d.text, cases[i].msg) == NULL)
			fail_msg("case %zu: message %s", i, d.text);
		assert_null(res.serials);
	}
	assert_int_equal(kt_count_events(&k, "rejection"), rej + (int64_t)(sizeof(cases) / sizeof(cases[0])));
	assert_int_equal(kt_count(&k, "revocations"), revs);
	status_is(a, "valid", "");

	memset(&req, 0, sizeof(req));
	req.serial = a;
	req.reason = "cessationOfOperation";
	KT_OK(revoke(&req, &res, &d));
	kiln_revoke_result_cleanup(&res);
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_ALREADY_REVOKED);
	assert_non_null(strstr(d.text, "was already revoked at"));
	req.actor = "";
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_ARG);
	KT_ERR(kiln_ca_revoke(NULL, &req, &res, &d), KILN_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_by_serial_and_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
