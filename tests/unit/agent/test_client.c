/*
 * Unit tests for src/agent/client.c: the provisioning client (libcurl) against
 * a real kiln server started in-process on 127.0.0.1:0 (the kiln application
 * over a whole deployment: SoftHSM2 tokens, CAs, inventory), with station
 * and engineer identities issued by the deployment's service CA: JSON calls
 * and their answers, problems as answers, transport and TLS failures as
 * errors, and the 429 retry.
 */
#include "support/srv_fixture.h"

#include "kiln/agent.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ tests */

static char *st_cert, *st_key, *eng_cert, *eng_key;

static int setup(void **state)
{
	(void)state;
	kt_srv_fixture_up("agent-client");
	kt_srv_identity("st-1", "station", KILN_ENV_NONE, &st_cert, &st_key);
	kt_srv_identity("eng-1", "engineer", KILN_ENV_NONE, &eng_cert, &eng_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_srv_stop();
	free(st_cert);
	free(st_key);
	free(eng_cert);
	free(eng_key);
	kt_srv_fixture_down();
	return 0;
}

/* The URL of the kiln server, started if another server (or none) runs. */
static const char *default_url(void)
{
	return kt_srv_default_url();
}

static kiln_client *client_for(const char *url, const char *cert, const char *key, const char *ca)
{
	struct kiln_client_opts o = { url, cert, key, ca, 20000 };
	kiln_client *c = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_client_new(&o, &c, &d)))
		fail_msg("client: %s", d.text);
	return c;
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string member \"%s\"", key);
	return s;
}

static void test_new_refusals(void **state)
{
	struct kiln_client_opts o = { "https://127.0.0.1:1", "c", "k", "a", 0 };
	struct kiln_client_opts bad[4];
	char long_url[600];
	kiln_client *c = (kiln_client *)&o;
	kiln_diag d;

	(void)state;
	for (int i = 0; i < 4; i++) {
		bad[i] = o;
		if (i == 0)
			bad[i].url = NULL;
		else if (i == 1)
			bad[i].cert = NULL;
		else if (i == 2)
			bad[i].key = NULL;
		else
			bad[i].ca = NULL;
		kiln_diag_clear(&d);
		KT_ERR(kiln_client_new(&bad[i], &c, &d), KILN_ERR_USAGE);
		assert_null(c);
		assert_non_null(strstr(d.text, "server URL, a certificate, a key and CA anchors"));
	}
	/* A URL longer than the client keeps. */
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "https://", 8);
	o.url = long_url;
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_new(&o, &c, &d), KILN_ERR_USAGE);
	assert_non_null(strstr(d.text, "URL is longer than 511 bytes"));
	assert_null(c);
	kiln_client_free(NULL);
}

static void test_call(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d));
	assert_int_equal(status, 200);
	assert_string_equal(jstr(resp, "status"), "ok");
	json_decref(resp);
	/* The same client again: the connection is reused, the answer is fresh. */
	KT_OK(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d));
	assert_int_equal(status, 200);
	json_decref(resp);
	kiln_client_free(c);
}

static void test_problems_are_answers(void **state)
{
	kiln_client *st = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	kiln_client *eng = client_for(default_url(), eng_cert, eng_key, kt_srv.ca_file);
	json_t *body = json_pack("{s:s,s:s,s:i}", "product", "widget", "lot", "LOT-C-1", "quantity", 3);
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	/* A station may not open lots: a 403 problem, which is an answer, not an error. */
	KT_OK(kiln_client_call(st, "POST", "/v1/batches", body, &status, &resp, &d));
	assert_int_equal(status, 403);
	assert_string_equal(jstr(resp, "type"), "urn:kiln:problem:forbidden");
	assert_int_equal(json_integer_value(json_object_get(resp, "status")), 403);
	json_decref(resp);
	/* An engineer may. */
	KT_OK(kiln_client_call(eng, "POST", "/v1/batches", body, &status, &resp, &d));
	assert_int_equal(status, 201);
	assert_string_equal(jstr(resp, "lot"), "LOT-C-1");
	assert_string_equal(jstr(resp, "opened_by"), "eng-1");
	json_decref(resp);
	KT_OK(kiln_client_call(st, "GET", "/v1/batches/LOT-C-1", NULL, &status, &resp, &d));
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(resp, "quantity")), 3);
	json_decref(resp);
	/* A POST without a body, and an unknown route. */
	KT_OK(kiln_client_call(st, "POST", "/v1/provision/begin", NULL, &status, &resp, &d));
	assert_int_equal(status, 400);
	assert_string_equal(jstr(resp, "type"), "urn:kiln:problem:malformed");
	json_decref(resp);
	KT_OK(kiln_client_call(st, "GET", "/v1/nothing", NULL, &status, &resp, &d));
	assert_int_equal(status, 404);
	json_decref(resp);
	json_decref(body);
	kiln_client_free(st);
	kiln_client_free(eng);
}

static void test_body_over_the_cap(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	size_t n = 70000;
	char *big = malloc(n + 1);
	json_t *body, *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	/* A body over the server's cap: refused as a problem, which the client returns. */
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	body = json_pack("{s:s}", "lot", big);
	kiln_diag_clear(&d);
	KT_OK(kiln_client_call(c, "POST", "/v1/provision/begin", body, &status, &resp, &d));
	assert_int_equal(status, 413);
	assert_string_equal(jstr(resp, "type"), "urn:kiln:problem:too-big");
	json_decref(resp);
	json_decref(body);
	free(big);
	kiln_client_free(c);
}

/* A server that answers what kiln never would: text, and nothing. */
static kiln_result h_text(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	kiln_strtrunc(res->content_type, "text/plain", sizeof(res->content_type));
	return kiln_buf_append_str(&res->body, "hello, not JSON");
}

static kiln_result h_empty(void *a, const struct kiln_request *req, struct kiln_response *res,
			   kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	res->status = 200;
	return kiln_ok();
}

static const struct kiln_route odd_routes[] = {
	{ "GET", "/text", 0, h_text, true },
	{ "GET", "/empty", 0, h_empty, true },
};

static void test_answers_that_are_not_json(void **state)
{
	struct kiln_server_opts o = { 0 };
	kiln_client *c;
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&kt_srv.tls_chain);
	o.tls_key_pem = kiln_buf_view(&kt_srv.tls_key);
	o.client_ca_pem = kiln_buf_view(&kt_srv.svc_root);
	o.routes = odd_routes;
	o.n_routes = 2;
	o.log = &kt_srv.k.log;
	kt_srv_run(&o, false);
	c = client_for(kt_srv.url, st_cert, st_key, kt_srv.ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/text", NULL, &status, &resp, &d), KILN_ERR_MALFORMED);
	assert_int_equal(status, 200);
	assert_null(resp);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/empty", NULL, &status, &resp, &d), KILN_ERR_MALFORMED);
	assert_non_null(strstr(d.text, "HTTP 200 with an empty body"));
	assert_null(resp);
	kiln_client_free(c);
}

static void test_path_too_long(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char path[1100];
	json_t *resp = NULL;
	long status = 7;

	(void)state;
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	KT_ERR(kiln_client_call(c, "GET", path, NULL, &status, &resp, NULL), KILN_ERR_TOO_BIG);
	assert_int_equal(status, 0);
	assert_null(resp);
	kiln_client_free(c);
}

static void test_transport_error(void **state)
{
	char url[64];
	kiln_client *c;
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;
	int dead;

	(void)state;
	(void)snprintf(url, sizeof(url), "https://127.0.0.1:%d", kt_dead_port(&dead));
	c = client_for(url, st_cert, st_key, kt_srv.ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	assert_non_null(strstr(d.text, url));
	assert_null(resp);
	kiln_client_free(c);
	(void)close(dead);
	/* Plain http is not spoken at all. */
	c = client_for("http://127.0.0.1:1", st_cert, st_key, kt_srv.ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	kiln_client_free(c);
}

static void test_tls_failures(void **state)
{
	char *prod = kt_path(kt_srv.k.dir, "production-chain.pem"), *missing = kt_path(kt_srv.k.dir, "none.pem");
	kiln_buf chain;
	kiln_client *c;
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	/* Anchors that did not issue the server's certificate: the server is not trusted. */
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(kt_srv.k.ca, KILN_ENV_PRODUCTION, &chain, NULL));
	kt_write_file(prod, chain.ptr, chain.len);
	kiln_buf_cleanup(&chain);
	c = client_for(default_url(), st_cert, st_key, prod);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	assert_non_null(strstr(d.text, "certificate"));
	assert_int_equal(kt_lines(&(kiln_buf){ .ptr = (uint8_t *)d.text, .len = strlen(d.text) }), 1);
	assert_int_equal(status, 0);
	kiln_client_free(c);
	/* A client certificate file that is not there. */
	c = client_for(default_url(), missing, st_key, kt_srv.ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	kiln_client_free(c);
	free(prod);
	free(missing);
}

static void test_rate_limited_retry(void **state)
{
	struct kiln_batch_req br = { "widget", "LOT-C-RATE", 3, NULL, NULL, "eng" };
	struct kiln_batch_rec rec;
	struct kiln_server_opts slow;
	struct kiln_event_rec *ev = NULL;
	int64_t from = kt_count(&kt_srv.k, "events"), limited = 0;
	json_t *resp = NULL;
	long status = 0;
	size_t n = 0;
	kiln_client *c;
	uint64_t t0;
	kiln_diag d;

	(void)state;
	KT_OK(kiln_ca_batch_open(kt_srv.k.ca, &br, &rec, NULL));
	/* One request per four seconds for each identity, no burst beyond one. */
	slow = kt_srv_app_opts(0.25, 1);
	kt_srv_run(&slow, false);
	c = client_for(kt_srv.url, st_cert, st_key, kt_srv.ca_file);
	kiln_diag_clear(&d);
	KT_OK(kiln_client_call(c, "GET", "/v1/batches/LOT-C-RATE", NULL, &status, &resp, &d));
	assert_int_equal(status, 200);
	json_decref(resp);
	/* Sent at once: 429, Retry-After; the client waits as told and sends it again. */
	t0 = kiln_mono_ns();
	KT_OK(kiln_client_call(c, "GET", "/v1/batches/LOT-C-RATE", NULL, &status, &resp, &d));
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(resp, "quantity")), 3);
	json_decref(resp);
	assert_true(kiln_mono_ns() - t0 >= 2000000000ull);
	KT_OK(kiln_store_event_list(kt_srv.k.store, from, 0, &ev, &n, NULL));
	for (size_t i = 0; i < n; i++)
		limited += strstr(ev[i].detail_json, "\"rate-limited\"") != NULL;
	kiln_store_event_list_free(ev, n);
	assert_true(limited >= 1);
	kiln_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_refusals),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_problems_are_answers),
		cmocka_unit_test(test_body_over_the_cap),
		cmocka_unit_test(test_answers_that_are_not_json),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_transport_error),
		cmocka_unit_test(test_tls_failures),
		cmocka_unit_test(test_rate_limited_retry),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
