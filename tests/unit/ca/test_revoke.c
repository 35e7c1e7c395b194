/*
 * Unit tests for src/ca/revoke.c over a real deployment: revoking by serial
 * and by device, at once; recalls by station in a time window, which are
 * revoke-bulk requests that run (kiln_ca_approve) when two officers other
 * than the requester approve, over what matches then, one event per
 * certificate in the approval's commit, once; and every refusal (which
 * writes one event and nothing else).
 */
#include "support/ca_fixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static struct kiln_govern_rules rules;
static EVP_PKEY *keys[4]; /* o1, o2, o3 (officers), op (operator) */
static const char *const names[4] = { "o1", "o2", "o3", "op" };

static void add_identity(int i, const char *role)
{
	struct kiln_identity_result res;
	struct kiln_identity_req req;
	kiln_buf csr;
	kiln_diag d;

	kt_make_csr("p256", names[i], NULL, &csr, &keys[i]);
	req = (struct kiln_identity_req){ names[i], role, KILN_ENV_NONE, kiln_buf_view(&csr), "test",
					  NULL, NULL };
	kiln_identity_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_identity_add(k.ca, &req, &res, &d));
	kiln_identity_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-revoke", KILN_ALG_P256, false);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.ttl_s = 3600;
	for (int i = 0; i < 3; i++)
		add_identity(i, "officer");
	add_identity(3, "operator");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		EVP_PKEY_free(keys[i]);
		keys[i] = NULL;
	}
	kt_deploy_down(&k);
	return 0;
}

/* Identity who signs request id's digest; kiln_ca_approve at now (0: the clock). */
static kiln_result approve(const char *id, int who, int64_t now, struct kiln_approve_result *res,
			   kiln_diag *d)
{
	struct kiln_request_rec q;
	kiln_buf sig;
	kiln_result r;

	kiln_diag_clear(d);
	KT_OK(kiln_store_request_get(k.store, id, &q, d));
	kiln_buf_init(&sig, 1024);
	KT_OK(kiln_govern_sign(keys[who], q.digest, &sig, d));
	r = kiln_ca_approve(k.ca, id, names[who], kiln_buf_view(&sig), now, res, d);
	kiln_buf_cleanup(&sig);
	return r;
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
	char s[5][KILN_SERIAL_HEX];
	struct kiln_revoke_req req = { 0 };
	struct kiln_revoke_result res;
	struct kiln_approve_result ar;
	struct kiln_request_rec q;
	int64_t t0 = kiln_now(), events, executed;
	char id[KILN_STORE_REQUEST_ID], want[256];
	kiln_diag d;

	(void)state;
	issue("TST-RC-0001", "st-a", NULL, s[0]);
	issue("TST-RC-0002", "st-b", NULL, s[1]);
	issue("TST-RC-0003", "st-a", NULL, s[2]);
	events = kt_count_events(&k, "revocation");
	executed = kt_count_events(&k, "request-executed");
	/* A window after everything was issued takes nothing: refused, no request. */
	req.station = "st-a";
	req.from = kiln_now() + 3600;
	req.reason = "keyCompromise";
	req.rules = &rules;
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no valid certificate matches the recall");
	assert_int_equal(kt_count(&k, "requests"), 0);
	/* The recall is a request: nothing is revoked yet. */
	req.from = t0 - 60;
	req.to = kiln_now() + 60;
	KT_OK(revoke(&req, &res, &d));
	assert_int_equal(res.n, 0);
	assert_null(res.serials);
	assert_int_equal(res.matched, 2);
	assert_int_equal(res.quorum, 2);
	assert_true(res.request_id[0] != '\0');
	memcpy(id, res.request_id, sizeof(id));
	kiln_revoke_result_cleanup(&res);
	KT_OK(kiln_store_request_get(k.store, id, &q, &d));
	assert_string_equal(q.operation, "revoke-bulk");
	assert_string_equal(q.requester, "officer-1");
	(void)snprintf(want, sizeof(want),
		       "{\"count\":2,\"from\":%lld,\"reason\":\"keyCompromise\",\"station\":\"st-a\","
		       "\"to\":%lld}", (long long)req.from, (long long)req.to);
	assert_string_equal(q.params_json, want);
	status_is(s[0], "valid", "");
	status_is(s[2], "valid", "");
	/* One officer is not enough; an operator cannot approve. */
	KT_OK(approve(id, 0, 0, &ar, &d));
	assert_false(ar.executed);
	assert_int_equal(ar.approvals, 1);
	KT_ERR(approve(id, 3, 0, &ar, &d), KILN_ERR_APPROVAL_ROLE);
	status_is(s[0], "valid", "");
	assert_int_equal(kt_count_events(&k, "revocation"), events);
	/* An expired request cannot run. */
	KT_ERR(approve(id, 1, q.expires + 1, &ar, &d), KILN_ERR_REQUEST_EXPIRED);
	status_is(s[0], "valid", "");
	/* What matches at execution time is recalled: a device st-a made since. */
	issue("TST-RC-0004", "st-a", NULL, s[3]);
	KT_OK(approve(id, 1, 0, &ar, &d));
	assert_true(ar.executed);
	assert_int_equal(ar.affected, 3);
	assert_string_equal(ar.operation, "revoke-bulk");
	status_is(s[0], "revoked", "keyCompromise");
	status_is(s[1], "valid", "");
	status_is(s[2], "revoked", "keyCompromise");
	status_is(s[3], "revoked", "keyCompromise");
	assert_int_equal(kt_count_events(&k, "revocation"), events + 3);
	assert_int_equal(kt_count_events(&k, "request-executed"), executed + 1);
	/* Once. */
	KT_ERR(approve(id, 2, 0, &ar, &d), KILN_ERR_REQUEST_EXECUTED);
	assert_int_equal(kt_count_events(&k, "revocation"), events + 3);
	/* Again: nothing valid is left in that window. */
	KT_ERR(revoke(&req, &res, &d), KILN_ERR_NOT_FOUND);

	/* The requester's own approval does not count. */
	memset(&req, 0, sizeof(req));
	req.station = "st-b";
	req.reason = "superseded";
	req.actor = "o1";
	KT_OK(revoke(&req, &res, &d));
	memcpy(id, res.request_id, sizeof(id));
	KT_ERR(approve(id, 0, 0, &ar, &d), KILN_ERR_APPROVAL_SELF);
	KT_OK(approve(id, 1, 0, &ar, &d));
	/* What the recall matched is gone by the quorum: the approval is refused. */
	issue("TST-RC-0005", NULL, NULL, s[4]);
	memset(&req, 0, sizeof(req));
	req.serial = s[1];
	req.reason = "superseded";
	KT_OK(revoke(&req, &res, &d));
	kiln_revoke_result_cleanup(&res);
	KT_ERR(approve(id, 2, 0, &ar, &d), KILN_ERR_NOT_FOUND);
	KT_OK(kiln_store_request_get(k.store, id, &q, &d));
	assert_string_equal(q.status, "pending");
	assert_int_equal(q.approvals, 1);
	status_is(s[4], "valid", "");
	/* No rules: the default quorum of 2 still gates the recall. */
	memset(&req, 0, sizeof(req));
	req.station = "st-a";
	req.reason = "unspecified";
	issue("TST-RC-0006", "st-a", NULL, s[4]);
	KT_OK(revoke(&req, &res, &d));
	assert_int_equal(res.n, 0);
	assert_int_equal(res.quorum, 2);
	status_is(s[4], "valid", "");
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
