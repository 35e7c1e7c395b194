/*
 * Unit tests for src/agent/client.c: the provisioning client (libcurl) against
 * a real kiln server started in-process on 127.0.0.1:0 (the kiln application
 * over a whole deployment: SoftHSM2 tokens, CAs, inventory), with station
 * and engineer identities issued by the deployment's service CA: JSON calls
 * and their answers, problems as answers, transport and TLS failures as
 * errors, and the 429 retry.
 */
#include "support/ca_fixture.h"

#include "kiln/agent.h"
#include "server/server.h"

#include <jansson.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ a kiln server in a thread */

static struct kt_deploy k;
static kiln_app *app;
static kiln_buf tls_chain, tls_key, svc_root, svc_issuing;
static char *ca_file;

struct srv {
	kiln_server *s;
	pthread_t t;
	kiln_result rc;
	char url[64];
};

static void *srv_thread(void *arg)
{
	struct srv *v = arg;

	v->rc = kiln_server_run(v->s, NULL);
	return NULL;
}

static void srv_start_with(struct srv *v, const struct kiln_server_opts *o)
{
	kiln_diag d;

	memset(v, 0, sizeof(*v));
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_server_new(o, &v->s, &d)))
		fail_msg("server: %s", d.text);
	(void)snprintf(v->url, sizeof(v->url), "https://127.0.0.1:%d", kiln_server_port(v->s));
	assert_int_equal(pthread_create(&v->t, NULL, srv_thread, v), 0);
}

static void srv_stop(struct srv *v)
{
	if (v->s == NULL)
		return;
	kiln_server_stop(v->s);
	assert_int_equal(pthread_join(v->t, NULL), 0);
	kiln_server_free(v->s);
	v->s = NULL;
	KT_OK(v->rc);
}

/*
 * The one server running (libevent lets one event base at a time own the
 * signals): each test asks for the server it needs, which replaces whatever
 * ran before, so a test that fails half-way leaves nothing behind that the
 * next one could trip over.
 */
static struct srv srv;
static bool srv_is_default;

static void srv_run(const struct kiln_server_opts *o, bool is_default)
{
	srv_stop(&srv);
	srv_is_default = false;
	srv_start_with(&srv, o);
	srv_is_default = is_default;
}

/* The kiln application's routes and hooks, with a rate limit. */
static struct kiln_server_opts app_opts(double rate, unsigned burst)
{
	struct kiln_server_opts o = { 0 };
	size_t n;

	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&tls_chain);
	o.tls_key_pem = kiln_buf_view(&tls_key);
	o.client_ca_pem = kiln_buf_view(&svc_root);
	o.client_chain_pem = kiln_buf_view(&svc_issuing);
	o.workers = 2;
	o.rate_per_s = rate;
	o.rate_burst = burst;
	o.routes = kiln_app_routes(&n);
	o.n_routes = n;
	o.hooks = kiln_app_hooks();
	o.app = app;
	o.log = &k.log;
	return o;
}

/* The kiln server with a limit no test reaches. */
static void srv_default(void)
{
	struct kiln_server_opts o;

	if (srv.s != NULL && srv_is_default)
		return;
	o = app_opts(1000, 2000);
	srv_run(&o, true);
}

/* Writes a station's (or anyone's) certificate and key, issued by the deployment. */
static void identity(const char *name, const char *role, kiln_env env, char **cert, char **key)
{
	struct kiln_identity_req req = { name, role, env, kiln_slice_of(NULL, 0), "test", NULL, NULL };
	struct kiln_identity_result res;
	char file[96];
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_identity_result_init(&res);
	if (!kiln_is_ok(kiln_ca_identity_add(k.ca, &req, &res, &d)))
		fail_msg("identity %s: %s", name, d.text);
	(void)snprintf(file, sizeof(file), "%s.crt", name);
	*cert = kt_path(k.dir, file);
	(void)snprintf(file, sizeof(file), "%s.key", name);
	*key = kt_path(k.dir, file);
	kt_write_file(*cert, res.cert_pem.ptr, res.cert_pem.len);
	kt_write_file(*key, res.key_pem.ptr, res.key_pem.len);
	kiln_identity_result_cleanup(&res);
}

/* The deployment, the application, kiln's TLS certificate, the service anchors. */
static void fixture_up(const char *name)
{
	static const char *const dns[] = { "localhost" };
	static const char *const ips[] = { "127.0.0.1" };
	static const char end[] = "-----END CERTIFICATE-----\n";
	struct kiln_app_opts ao = { 0 };
	struct kiln_tls_req tr;
	EVP_PKEY *key = kt_keygen("p256");
	kiln_buf chain;
	const char *cut;
	char *data;
	long n;
	BIO *bio;

	kt_deploy_up(&k, name, KILN_ALG_P256, true);
	ao = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 0, .log = &k.log, .ledger = NULL };
	KT_OK(kiln_app_new(&ao, &app, NULL));
	tr = (struct kiln_tls_req){ key, dns, 1, ips, 1, 0, "test" };
	kiln_buf_init(&tls_chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_tls_issue(k.ca, &tr, &tls_chain, NULL));
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	kiln_buf_init(&tls_key, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&tls_key, data, (size_t)n));
	BIO_free(bio);
	EVP_PKEY_free(key);
	/* The service chain: issuing CA first (intermediate), root last (anchor). */
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_SERVICE, &chain, NULL));
	cut = strstr(kiln_buf_cstr(&chain), end);
	assert_non_null(cut);
	cut += sizeof(end) - 1;
	kiln_buf_init(&svc_issuing, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&svc_root, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&svc_issuing, chain.ptr, (size_t)((const uint8_t *)cut - chain.ptr)));
	KT_OK(kiln_buf_append_str(&svc_root, cut));
	ca_file = kt_path(k.dir, "service-chain.pem");
	kt_write_file(ca_file, chain.ptr, chain.len);
	kiln_buf_cleanup(&chain);
}

static void fixture_down(void)
{
	kiln_app_free(app);
	app = NULL;
	kiln_buf_cleanup(&tls_chain);
	kiln_buf_cleanup(&tls_key);
	kiln_buf_cleanup(&svc_root);
	kiln_buf_cleanup(&svc_issuing);
	free(ca_file);
	ca_file = NULL;
	kt_deploy_down(&k);
}

/* A TCP port nothing listens on (bound, then closed). */
static int dead_port(void)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	(void)close(fd);
	return port;
}

/* ------------------------------------------------------------ tests */

static char *st_cert, *st_key, *eng_cert, *eng_key;

static int setup(void **state)
{
	(void)state;
	fixture_up("agent-client");
	identity("st-1", "station", KILN_ENV_NONE, &st_cert, &st_key);
	identity("eng-1", "engineer", KILN_ENV_NONE, &eng_cert, &eng_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	srv_stop(&srv);
	free(st_cert);
	free(st_key);
	free(eng_cert);
	free(eng_key);
	fixture_down();
	return 0;
}

/* The URL of the kiln server, started if another server (or none) runs. */
static const char *default_url(void)
{
	srv_default();
	return srv.url;
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
	kiln_client *c = client_for(default_url(), st_cert, st_key, ca_file);
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
	kiln_client *st = client_for(default_url(), st_cert, st_key, ca_file);
	kiln_client *eng = client_for(default_url(), eng_cert, eng_key, ca_file);
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
	kiln_client *c = client_for(default_url(), st_cert, st_key, ca_file);
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
	o.tls_chain_pem = kiln_buf_view(&tls_chain);
	o.tls_key_pem = kiln_buf_view(&tls_key);
	o.client_ca_pem = kiln_buf_view(&svc_root);
	o.routes = odd_routes;
	o.n_routes = 2;
	o.log = &k.log;
	srv_run(&o, false);
	c = client_for(srv.url, st_cert, st_key, ca_file);
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
	kiln_client *c = client_for(default_url(), st_cert, st_key, ca_file);
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

	(void)state;
	(void)snprintf(url, sizeof(url), "https://127.0.0.1:%d", dead_port());
	c = client_for(url, st_cert, st_key, ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	assert_non_null(strstr(d.text, url));
	assert_null(resp);
	kiln_client_free(c);
	/* Plain http is not spoken at all. */
	c = client_for("http://127.0.0.1:1", st_cert, st_key, ca_file);
	kiln_diag_clear(&d);
	KT_ERR(kiln_client_call(c, "GET", "/healthz", NULL, &status, &resp, &d), KILN_ERR_IO);
	kiln_client_free(c);
}

static void test_tls_failures(void **state)
{
	char *prod = kt_path(k.dir, "production-chain.pem"), *missing = kt_path(k.dir, "none.pem");
	kiln_buf chain;
	kiln_client *c;
	json_t *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	/* Anchors that did not issue the server's certificate: the server is not trusted. */
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_PRODUCTION, &chain, NULL));
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
	c = client_for(default_url(), missing, st_key, ca_file);
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
	int64_t from = kt_count(&k, "events"), limited = 0;
	json_t *resp = NULL;
	long status = 0;
	size_t n = 0;
	kiln_client *c;
	uint64_t t0;
	kiln_diag d;

	(void)state;
	KT_OK(kiln_ca_batch_open(k.ca, &br, &rec, NULL));
	/* One request per four seconds for each identity, no burst beyond one. */
	slow = app_opts(0.25, 1);
	srv_run(&slow, false);
	c = client_for(srv.url, st_cert, st_key, ca_file);
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
	KT_OK(kiln_store_event_list(k.store, from, 0, &ev, &n, NULL));
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
