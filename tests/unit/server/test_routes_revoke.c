/*
 * Unit tests for src/server/routes_revoke.c: POST /v1/revocations called as
 * the transport calls it, over a real deployment: a revocation by serial
 * (201 with the serials), a station recall (202: a revoke-bulk request with
 * the app's quorum, Location: the request; nothing revoked), an empty recall
 * (404, no request), and each refusal (bad body,
 * unknown serial, bad reason, twice) as its problem with one rejection event
 * and no revocation.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app;
static struct kiln_govern_rules rules;
static char location[256];
static const struct kiln_principal off = { "off-1", "officer", KILN_ROLE_OFFICER, "", "" };

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };

	(void)state;
	kt_deploy_up(&k, "server-routes-revoke", KILN_ALG_P256, false);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.quorum[KILN_OP_REVOKE_BULK] = 3;
	rules.ttl_s = 600;
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 90, .log = &k.log,
				    .rules = &rules };
	KT_OK(kiln_app_new(&o, &app, NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_app_free(app);
	kt_deploy_down(&k);
	return 0;
}

static void issue(const char *sn, const char *station, char serial[KILN_SERIAL_HEX])
{
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	kiln_buf csr;

	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", sn, NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "test-operator";
	req.station = station;
	kiln_issue_result_init(&res);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, NULL));
	memcpy(serial, res.serial, KILN_SERIAL_HEX);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

/* Calls the handler; returns the HTTP status (problem status on refusal); *json the body. */
static int post(const char *body, json_t **json)
{
	struct kiln_request req = { 0 };
	struct kiln_response res;
	kiln_diag d;
	kiln_result r;
	int status;

	req.method = "POST";
	req.path = "/v1/revocations";
	req.content_type = "application/json";
	req.body = kiln_slice_str(body);
	req.who = &off;
	req.peer = "127.0.0.1:40000";
	req.request_id = "test";
	kiln_response_init(&res);
	kiln_diag_clear(&d);
	r = route_revoke(app, &req, &res, &d);
	if (!kiln_is_ok(r)) {
		kiln_response_cleanup(&res);
		kiln_response_init(&res);
		KT_OK(kiln_problem(r, &d, req.path, &res));
	}
	status = res.status;
	location[0] = '\0';
	for (size_t i = 0; i < res.n_headers; i++)
		if (strcmp(res.headers[i].name, "Location") == 0)
			kiln_strtrunc(location, res.headers[i].value, sizeof(location));
	KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, json, NULL));
	kiln_response_cleanup(&res);
	return status;
}

static const char *problem_type(const json_t *j)
{
	return json_string_value(json_object_get(j, "type"));
}

static void test_revoke_and_recall(void **state)
{
	char a[KILN_SERIAL_HEX], b[KILN_SERIAL_HEX], c[KILN_SERIAL_HEX], body[256];
	json_t *j = NULL;

	(void)state;
	issue("TST-RR-0001", "st-x", a);
	issue("TST-RR-0002", "st-x", b);
	issue("TST-RR-0003", "st-y", c);
	(void)snprintf(body, sizeof(body), "{\"serial\":\"%s\",\"reason\":\"keyCompromise\"}", a);
	assert_int_equal(post(body, &j), 201);
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "revoked"), 0)), a);
	assert_int_equal(json_integer_value(json_object_get(j, "revocation_seq")), 1);
	json_decref(j);
	assert_int_equal(kt_count_events(&k, "revocation"), 1);
	/* The event names the officer. */
	/* A recall is a request (202), with the app's quorum for revoke-bulk; nothing revoked. */
	(void)snprintf(body, sizeof(body), "{\"station\":\"st-x\",\"from\":0,\"to\":%lld,"
		       "\"reason\":\"cACompromise\"}", (long long)kiln_now() + 60);
	assert_int_equal(post(body, &j), 202);
	assert_int_equal(json_integer_value(json_object_get(j, "matched")), 1); /* a already revoked */
	assert_int_equal(json_integer_value(json_object_get(j, "quorum")), 3);
	assert_string_equal(json_string_value(json_object_get(j, "operation")), "revoke-bulk");
	(void)snprintf(body, sizeof(body), "/v1/requests/%s",
		       json_string_value(json_object_get(j, "request")));
	assert_string_equal(location, body);
	json_decref(j);
	assert_int_equal(kt_count(&k, "revocations"), 1);
	assert_int_equal(kt_count(&k, "requests"), 1);
	assert_int_equal(kt_count_events(&k, "request"), 1);
	/* A recall that matches nothing: 404, no request. */
	assert_int_equal(post("{\"lot\":\"LOT-NONE\",\"reason\":\"superseded\"}", &j), 404);
	assert_string_equal(problem_type(j), "urn:kiln:problem:not-found");
	json_decref(j);
	assert_int_equal(kt_count(&k, "requests"), 1);
	(void)b;
	(void)c;
}

static void test_refusals(void **state)
{
	char a[KILN_SERIAL_HEX], body[256];
	int64_t rej;
	json_t *j = NULL;

	(void)state;
	issue("TST-RF-0001", "st-x", a);
	rej = kt_count_events(&k, "rejection");
	assert_int_equal(post("{\"reason\":\"keyCompromise\"}", &j), 400);
	assert_string_equal(problem_type(j), "urn:kiln:problem:malformed");
	json_decref(j);
	assert_int_equal(post("{\"serial\":\"00ff\",\"reason\":\"keyCompromise\",\"x\":1}", &j), 400);
	json_decref(j);
	assert_int_equal(post("{\"serial\":\"00ff\",\"reason\":\"keyCompromise\",\"from\":\"x\"}", &j), 400);
	json_decref(j);
	assert_int_equal(post("{\"serial\":\"00ff\",\"reason\":\"keyCompromise\"}", &j), 404);
	json_decref(j);
	(void)snprintf(body, sizeof(body), "{\"serial\":\"%s\",\"reason\":\"lost\"}", a);
	assert_int_equal(post(body, &j), 400);
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")),
			       "unknown revocation reason"));
	json_decref(j);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 5);
	assert_int_equal(kt_count(&k, "revocations"), 0);
	(void)snprintf(body, sizeof(body), "{\"serial\":\"%s\",\"reason\":\"superseded\"}", a);
	assert_int_equal(post(body, &j), 201);
	json_decref(j);
	assert_int_equal(post(body, &j), 409);
	assert_string_equal(problem_type(j), "urn:kiln:problem:already-revoked");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_revoke_and_recall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
