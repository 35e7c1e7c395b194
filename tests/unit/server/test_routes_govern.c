/*
 * Unit tests for src/server/routes_govern.c: the approval request routes
 * called directly over a real deployment with real identity certificates:
 * list, show, approve (an activation over two officers), and the refusals
 * with their problem and audit event.
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
static EVP_PKEY *keys[2];
static struct kiln_request_rec q;

static const struct kiln_principal auditor = { "aud-1", "auditor", KILN_ROLE_AUDITOR, "", "" };
static const struct kiln_principal officers[2] = {
	{ "off-1", "officer", KILN_ROLE_OFFICER, "", "" },
	{ "off-2", "officer", KILN_ROLE_OFFICER, "", "" },
};

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };
	struct kiln_policy_added added;
	kiln_diag d;

	(void)state;
	kt_deploy_up(&k, "server-routes-govern", KILN_ALG_P256, false);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .log = &k.log };
	KT_OK(kiln_app_new(&o, &app, NULL));
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.ttl_s = 600;
	for (int i = 0; i < 2; i++) {
		struct kiln_identity_result res;
		struct kiln_identity_req req;
		kiln_buf csr;

		kt_make_csr("p256", officers[i].name, NULL, &csr, &keys[i]);
		req = (struct kiln_identity_req){ officers[i].name, "officer", KILN_ENV_NONE,
						  kiln_buf_view(&csr), "test", NULL, NULL };
		kiln_identity_result_init(&res);
		KT_OK(kiln_ca_identity_add(k.ca, &req, &res, NULL));
		kiln_identity_result_cleanup(&res);
		kiln_buf_cleanup(&csr);
	}
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_policy_request(k.ca, kiln_slice_str(kt_gadget_policy), "gadget.yaml", "eng-1",
				     &rules, &added, &q, &d));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
	kiln_app_free(app);
	kt_deploy_down(&k);
	return 0;
}

struct call {
	kiln_result r;
	kiln_diag d;
	int status;
	json_t *json;
};

static void call(kiln_handler_fn fn, const char *method, const char *path, const char *param,
		 const struct kiln_principal *who, const char *body, struct call *c)
{
	struct kiln_request req = { 0 };
	struct kiln_response res;

	memset(c, 0, sizeof(*c));
	req.method = method;
	req.path = path;
	req.params[0] = param;
	req.n_params = param != NULL ? 1 : 0;
	req.who = who;
	req.peer = "127.0.0.1:40001";
	req.request_id = "gov-1";
	req.body = body != NULL ? kiln_slice_str(body) : kiln_slice_of(NULL, 0);
	req.content_type = body != NULL ? "application/json" : NULL;
	kiln_response_init(&res);
	kiln_diag_clear(&c->d);
	c->r = fn(app, &req, &res, &c->d);
	if (!kiln_is_ok(c->r)) {
		kiln_response_cleanup(&res);
		kiln_response_init(&res);
		KT_OK(kiln_problem(c->r, &c->d, path, &res));
	}
	c->status = res.status;
	KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, &c->json, NULL));
	kiln_response_cleanup(&res);
}

/* {"signature": base64 of who's signature over the request digest} */
static char *body_for(int who, const uint8_t digest[32])
{
	kiln_buf sig, b64;
	char *out;

	kiln_buf_init(&sig, 1024);
	kiln_buf_init(&b64, 2048);
	KT_OK(kiln_govern_sign(keys[who], digest, &sig, NULL));
	KT_OK(kiln_base64_encode(kiln_buf_view(&sig), &b64));
	out = malloc(b64.len + 32);
	assert_non_null(out);
	(void)snprintf(out, b64.len + 32, "{\"signature\":\"%s\"}", kiln_buf_cstr(&b64));
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&b64);
	return out;
}

static void test_list_and_show(void **state)
{
	char path[128], digest[65];
	struct call c;

	(void)state;
	call(route_request_list, "GET", "/v1/requests", NULL, &auditor, NULL, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	assert_int_equal(json_array_size(json_object_get(c.json, "requests")), 1);
	json_decref(c.json);
	(void)snprintf(path, sizeof(path), "/v1/requests/%s", q.id);
	call(route_request_get, "GET", path, q.id, &auditor, NULL, &c);
	KT_OK(c.r);
	kiln_hex_encode(q.digest, 32, digest);
	assert_string_equal(json_string_value(json_object_get(c.json, "digest")), digest);
	assert_string_equal(json_string_value(json_object_get(c.json, "operation")),
			    "policy-activate");
	assert_string_equal(json_string_value(json_object_get(c.json, "status")), "pending");
	assert_string_equal(json_string_value(json_object_get(c.json, "requester")), "eng-1");
	assert_int_equal(json_array_size(json_object_get(c.json, "approved_by")), 0);
	json_decref(c.json);
	call(route_request_get, "GET", "/v1/requests/req-none", "req-none", &auditor, NULL, &c);
	assert_int_equal(c.status, 404);
	assert_string_equal(json_string_value(json_object_get(c.json, "type")),
			    "urn:kiln:problem:request-unknown");
	json_decref(c.json);
}

static void test_approve(void **state)
{
	int64_t rejections = kt_count_events(&k, "approval-refused");
	char path[128], *b0 = body_for(0, q.digest), *b1 = body_for(1, q.digest);
	struct kiln_policy_rec active = { 0 };
	struct call c;

	(void)state;
	(void)snprintf(path, sizeof(path), "/v1/requests/%s/approvals", q.id);
	/* Malformed bodies: 400 and an event, nothing approved. */
	call(route_request_approve, "POST", path, q.id, &officers[0], "{\"signature\":1}", &c);
	assert_int_equal(c.status, 400);
	json_decref(c.json);
	call(route_request_approve, "POST", path, q.id, &officers[0], "{\"sig\":\"AA==\"}", &c);
	assert_int_equal(c.status, 400);
	json_decref(c.json);
	/* off-2's signature presented by off-1. */
	call(route_request_approve, "POST", path, q.id, &officers[0], b1, &c);
	assert_int_equal(c.status, 400);
	assert_string_equal(json_string_value(json_object_get(c.json, "type")),
			    "urn:kiln:problem:approval-signature");
	json_decref(c.json);
	assert_int_equal(kt_count_events(&k, "approval-refused"), rejections + 3);
	assert_int_equal(kt_count(&k, "approvals"), 0);
	call(route_request_approve, "POST", path, q.id, &officers[0], b0, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 201);
	assert_int_equal(json_integer_value(json_object_get(c.json, "approvals")), 1);
	assert_false(json_is_true(json_object_get(c.json, "executed")));
	json_decref(c.json);
	call(route_request_approve, "POST", path, q.id, &officers[0], b0, &c);
	assert_int_equal(c.status, 409);
	assert_string_equal(json_string_value(json_object_get(c.json, "type")),
			    "urn:kiln:problem:approval-duplicate");
	json_decref(c.json);
	call(route_request_approve, "POST", path, q.id, &officers[1], b1, &c);
	assert_int_equal(c.status, 201);
	assert_true(json_is_true(json_object_get(c.json, "executed")));
	json_decref(c.json);
	KT_OK(kiln_store_policy_active(k.store, "gadget", &active, NULL));
	kiln_policy_rec_cleanup(&active);
	call(route_request_approve, "POST", path, q.id, &officers[1], b1, &c);
	assert_int_equal(c.status, 409);
	assert_string_equal(json_string_value(json_object_get(c.json, "type")),
			    "urn:kiln:problem:request-executed");
	json_decref(c.json);
	free(b0);
	free(b1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_and_show),
		cmocka_unit_test(test_approve),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
