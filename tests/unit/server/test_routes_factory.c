/*
 * Unit tests for src/server/routes_factory.c: the batch and provisioning
 * handlers called directly with a request as the transport hands it over
 * (an authenticated principal, a body), over a real deployment. Each answer
 * is checked for its status and JSON; each refusal for its problem type and
 * status and for the one audit event it leaves.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app;

static const struct kiln_principal eng = { "eng-1", "engineer", KILN_ROLE_ENGINEER, "", "" };
static const struct kiln_principal st1 = { "st-1", "station", KILN_ROLE_STATION, "", "" };
static const struct kiln_principal st_test = { "st-t", "station", KILN_ROLE_STATION, "test", "" };

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };

	(void)state;
	kt_deploy_up(&k, "server-routes-factory", KILN_ALG_P256, false);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 90, .log = &k.log, .ledger = NULL };
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

/* One handler call; on success *out is its JSON (caller json_decref), else NULL. */
struct call {
	kiln_result r;
	kiln_diag d;
	int status;
	json_t *json;
	json_t *problem;
};

static void call(kiln_handler_fn fn, const char *method, const char *path, const char *param,
		 const char *body, const struct kiln_principal *who, struct call *c)
{
	struct kiln_request req = { 0 };
	struct kiln_response res;

	memset(c, 0, sizeof(*c));
	req.method = method;
	req.path = path;
	req.params[0] = param;
	req.n_params = param != NULL ? 1 : 0;
	req.content_type = body != NULL ? "application/json" : NULL;
	req.body = body != NULL ? kiln_slice_str(body) : kiln_slice_of(NULL, 0);
	req.who = who;
	req.peer = "127.0.0.1:40000";
	req.request_id = "test-request";
	kiln_response_init(&res);
	kiln_diag_clear(&c->d);
	c->r = fn(app, &req, &res, &c->d);
	if (kiln_is_ok(c->r)) {
		c->status = res.status;
		assert_string_equal(res.content_type, "application/json");
		KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, &c->json, NULL));
	} else {
		/* What the transport makes of a refusal. */
		kiln_response_cleanup(&res);
		kiln_response_init(&res);
		KT_OK(kiln_problem(c->r, &c->d, path, &res));
		c->status = res.status;
		KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, &c->problem,
				      NULL));
	}
	kiln_response_cleanup(&res);
}

static void call_done(struct call *c)
{
	json_decref(c->json);
	json_decref(c->problem);
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string member \"%s\"", key);
	return s;
}

static int64_t jint(const json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v))
		fail_msg("no integer member \"%s\"", key);
	return json_integer_value(v);
}

/* The newest event's type, actor and reason. */
static void last_event(char type[32], char actor[128], char reason[64])
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	json_t *j;

	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	assert_true(n > 0);
	kiln_strtrunc(type, ev[n - 1].type, 32);
	kiln_strtrunc(actor, ev[n - 1].actor, 128);
	j = json_loads(ev[n - 1].detail_json, 0, NULL);
	assert_non_null(j);
	kiln_strtrunc(reason, json_string_value(json_object_get(j, "reason")) != NULL ?
				      json_string_value(json_object_get(j, "reason")) : "",
		      64);
	json_decref(j);
	kiln_store_event_list_free(ev, n);
}

/* A refusal: its problem (type, status, instance) and exactly one event naming it. */
static void refused(struct call *c, int64_t events_before, kiln_err want, const char *actor)
{
	char type[96], t[32], a[128], reason[64];

	if (c->r.code != want)
		fail_msg("expected %s, got %s: %s", kiln_err_info(want)->slug,
			 kiln_err_info(c->r.code)->slug, c->d.text);
	(void)snprintf(type, sizeof(type), "urn:kiln:problem:%s", kiln_err_info(want)->slug);
	assert_string_equal(jstr(c->problem, "type"), type);
	assert_int_equal(jint(c->problem, "status"), kiln_err_info(want)->http_status);
	assert_int_equal(c->status, kiln_err_info(want)->http_status);
	assert_non_null(json_object_get(c->problem, "instance"));
	assert_int_equal(kt_count(&k, "events"), events_before + 1);
	last_event(t, a, reason);
	assert_string_equal(t, "rejection");
	assert_string_equal(a, actor);
	assert_string_equal(reason, kiln_err_info(want)->slug);
}

/* ------------------------------------------------------------ health */

static void test_health(void **state)
{
	struct call c;

	(void)state;
	call(route_health, "GET", "/healthz", NULL, NULL, NULL, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	assert_string_equal(jstr(c.json, "status"), "ok");
	call_done(&c);
}

/* ------------------------------------------------------------ batches */

static void test_batch_open(void **state)
{
	struct kiln_batch_rec rec = { 0 };
	struct call c;

	(void)state;
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"widget\", \"lot\": \"LOT-R-1\", \"quantity\": 500, \"line\": \"L1\", "
	     "\"station\": \"st-01\"}", &eng, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 201);
	assert_string_equal(jstr(c.json, "lot"), "LOT-R-1");
	assert_string_equal(jstr(c.json, "product"), "widget");
	assert_int_equal(jint(c.json, "quantity"), 500);
	assert_int_equal(jint(c.json, "issued"), 0);
	assert_string_equal(jstr(c.json, "line"), "L1");
	assert_string_equal(jstr(c.json, "station"), "st-01");
	assert_string_equal(jstr(c.json, "status"), "open");
	/* Who opened it is who called, whatever the body says. */
	assert_string_equal(jstr(c.json, "opened_by"), "eng-1");
	assert_int_equal(strlen(jstr(c.json, "created")), 20);
	call_done(&c);
	KT_OK(kiln_store_batch_get(k.store, "LOT-R-1", &rec, NULL));
	assert_string_equal(rec.opened_by, "eng-1");
	assert_int_equal(kt_count_events(&k, "batch-open"), 1);
}

static void test_batch_open_refusals(void **state)
{
	int64_t ev, batches = kt_count(&k, "batches");
	struct call c;

	(void)state;
	ev = kt_count(&k, "events");
	call(route_batch_open, "POST", "/v1/batches", NULL, "{\"product\": \"widget\"", &eng, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "eng-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"widget\", \"lot\": \"L\", \"quantity\": 0}", &eng, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "eng-1");
	assert_non_null(strstr(jstr(c.problem, "detail"), "quantity"));
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"nothing\", \"lot\": \"LOT-R-2\", \"quantity\": 5}", &eng, &c);
	refused(&c, ev, KILN_ERR_UNKNOWN_PRODUCT, "eng-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"widget\", \"lot\": \"LOT-R-1\", \"quantity\": 5}", &eng, &c);
	refused(&c, ev, KILN_ERR_DUPLICATE, "eng-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"widget\", \"lot\": \"a/b\", \"quantity\": 5}", &eng, &c);
	refused(&c, ev, KILN_ERR_ARG, "eng-1");
	call_done(&c);
	assert_int_equal(kt_count(&k, "batches"), batches);
}

static void test_batch_close_and_get(void **state)
{
	int64_t ev;
	struct call c;

	(void)state;
	call(route_batch_open, "POST", "/v1/batches", NULL,
	     "{\"product\": \"widget-test\", \"lot\": \"LOT-R-3\", \"quantity\": 2}", &eng, &c);
	KT_OK(c.r);
	call_done(&c);
	call(route_batch_get, "GET", "/v1/batches/LOT-R-3", "LOT-R-3", NULL, &st1, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	assert_string_equal(jstr(c.json, "status"), "open");
	assert_string_equal(jstr(c.json, "product"), "widget-test");
	assert_int_equal(jint(c.json, "quantity"), 2);
	call_done(&c);
	call(route_batch_close, "POST", "/v1/batches/LOT-R-3/close", "LOT-R-3", NULL, &eng, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	assert_string_equal(jstr(c.json, "lot"), "LOT-R-3");
	assert_string_equal(jstr(c.json, "status"), "closed");
	call_done(&c);
	call(route_batch_get, "GET", "/v1/batches/LOT-R-3", "LOT-R-3", NULL, &st1, &c);
	assert_string_equal(jstr(c.json, "status"), "closed");
	call_done(&c);
	/* Twice, and a lot that never was. */
	ev = kt_count(&k, "events");
	call(route_batch_close, "POST", "/v1/batches/LOT-R-3/close", "LOT-R-3", NULL, &eng, &c);
	refused(&c, ev, KILN_ERR_BATCH_CLOSED, "eng-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_close, "POST", "/v1/batches/NOPE/close", "NOPE", NULL, &eng, &c);
	refused(&c, ev, KILN_ERR_BATCH_UNKNOWN, "eng-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_batch_get, "GET", "/v1/batches/NOPE", "NOPE", NULL, &st1, &c);
	refused(&c, ev, KILN_ERR_BATCH_UNKNOWN, "st-1");
	call_done(&c);
}

/* ------------------------------------------------------------ provisioning */

static void open_lot(const char *product, const char *lot, int quantity)
{
	char body[256];
	struct call c;

	(void)snprintf(body, sizeof(body), "{\"product\": \"%s\", \"lot\": \"%s\", \"quantity\": %d}",
		       product, lot, quantity);
	call(route_batch_open, "POST", "/v1/batches", NULL, body, &eng, &c);
	KT_OK(c.r);
	call_done(&c);
}

/* begin as who into lot; returns the nonce (base64, caller frees). */
static char *begin(const struct kiln_principal *who, const char *lot)
{
	char body[128], *nonce;
	struct call c;

	(void)snprintf(body, sizeof(body), "{\"lot\": \"%s\"}", lot);
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, body, who, &c);
	if (!kiln_is_ok(c.r))
		fail_msg("begin: %s", c.d.text);
	nonce = strdup(jstr(c.json, "nonce"));
	assert_non_null(nonce);
	call_done(&c);
	return nonce;
}

/* A finish body for a test product (no evidence): a fresh P-256 CSR with CN = serial. */
static char *finish_body(const char *nonce, const char *serial)
{
	kiln_buf csr, b64;
	json_t *j;
	char *s;

	kt_make_csr("p256", serial, NULL, &csr, NULL);
	kiln_buf_init(&b64, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_base64_encode(kiln_buf_view(&csr), &b64));
	j = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s}}}", "nonce", nonce, "csr",
		      kiln_buf_cstr(&b64), "device", "serial", serial, "firmware_version", "0.9.1",
		      "components", "soc", "SOC-7", "pcb", "PCB-7");
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	json_decref(j);
	kiln_buf_cleanup(&csr);
	kiln_buf_cleanup(&b64);
	return s;
}

static void test_provision_begin(void **state)
{
	struct call c;
	kiln_buf nonce;
	int64_t ev, now = kiln_now();

	(void)state;
	open_lot("widget", "LOT-B-1", 10);
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, "{\"lot\": \"LOT-B-1\"}", &st1,
	     &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	kiln_buf_init(&nonce, 64);
	KT_OK(kiln_base64_decode(kiln_slice_str(jstr(c.json, "nonce")), &nonce));
	assert_int_equal(nonce.len, KILN_NONCE_LEN);
	kiln_buf_cleanup(&nonce);
	/* The application's TTL (90 s here). */
	assert_true(jint(c.json, "expires") >= now + 90 && jint(c.json, "expires") <= kiln_now() + 90);
	assert_int_equal(strlen(jstr(c.json, "expires_at")), 20);
	assert_string_equal(jstr(c.json, "lot"), "LOT-B-1");
	assert_string_equal(jstr(c.json, "product"), "widget");
	assert_string_equal(jstr(c.json, "attestation"), "dice");
	call_done(&c);

	/* Refusals: the body (recorded by the route), the lot and the environment (by the CA). */
	ev = kt_count(&k, "events");
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, "{\"lot\": 5}", &st1, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "st-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, "{\"lot\": \"LOT-NONE\"}", &st1,
	     &c);
	refused(&c, ev, KILN_ERR_BATCH_UNKNOWN, "st-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, "{\"lot\": \"LOT-B-1\"}",
	     &st_test, &c);
	refused(&c, ev, KILN_ERR_POLICY_ENV, "st-t");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_provision_begin, "POST", "/v1/provision/begin", NULL, "", &st1, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "st-1");
	call_done(&c);
}

static void test_provision_finish(void **state)
{
	struct kiln_device_rec dev = { 0 };
	char *nonce, *body, *other, serial[41];
	int64_t ev, devices;
	struct call c;
	const char *pem;
	int certs = 0;

	(void)state;
	open_lot("widget-test", "LOT-F-1", 10);
	nonce = begin(&st1, "LOT-F-1");
	body = finish_body(nonce, "WT-0001");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, body, &st1, &c);
	if (!kiln_is_ok(c.r))
		fail_msg("finish: %s", c.d.text);
	assert_int_equal(c.status, 201);
	assert_false(json_boolean_value(json_object_get(c.json, "repeated")));
	KT_OK(kiln_strlcpy(serial, jstr(c.json, "serial"), sizeof(serial)));
	assert_true(jint(c.json, "device_id") > 0);
	pem = jstr(c.json, "certificate");
	for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
		certs++;
	assert_int_equal(certs, 3);
	call_done(&c);
	/* The device row holds what the body said, components in canonical form. */
	KT_OK(kiln_store_device_get(k.store, "widget-test/WT-0001", &dev, NULL));
	assert_string_equal(dev.station, "st-1");
	assert_string_equal(dev.lot, "LOT-F-1");
	assert_string_equal(dev.firmware_version, "0.9.1");
	assert_string_equal(dev.components_json, "{\"pcb\":\"PCB-7\",\"soc\":\"SOC-7\"}");
	assert_string_equal(dev.cert_serial, serial);

	/* The same body again: 200, the same certificate, nothing written. */
	devices = kt_count(&k, "devices");
	ev = kt_count(&k, "events");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, body, &st1, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	assert_true(json_boolean_value(json_object_get(c.json, "repeated")));
	assert_string_equal(jstr(c.json, "serial"), serial);
	call_done(&c);
	assert_int_equal(kt_count(&k, "devices"), devices);
	assert_int_equal(kt_count(&k, "events"), ev);

	/* Another request on the same nonce: a replay, recorded once (by the CA). */
	other = finish_body(nonce, "WT-0002");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, other, &st1, &c);
	refused(&c, ev, KILN_ERR_NONCE_REPLAY, "st-1");
	assert_non_null(strstr(jstr(c.problem, "detail"), serial));
	call_done(&c);
	free(other);
	/* The nonce belongs to st-1. */
	free(nonce);
	nonce = begin(&st1, "LOT-F-1");
	other = finish_body(nonce, "WT-0003");
	ev = kt_count(&k, "events");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, other, &st_test, &c);
	refused(&c, ev, KILN_ERR_NONCE_STATION, "st-t");
	call_done(&c);
	free(other);
	/* A malformed body, recorded by the route. */
	ev = kt_count(&k, "events");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, "{\"nonce\": [", &st1, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "st-1");
	call_done(&c);
	ev = kt_count(&k, "events");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL,
	     "{\"nonce\": \"AAAA\", \"csr\": \"MIIB\", \"device\": {\"serial\": \"WT-9\"}}", &st1, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "st-1");
	call_done(&c);
	/* A CSR that does not parse: the CA's refusal. */
	{
		char *bad = finish_body(nonce, "WT-0004");
		char *csr = strstr(bad, "\"csr\":\"");

		assert_non_null(csr);
		memcpy(csr + 7, "AAAA", 4);
		ev = kt_count(&k, "events");
		call(route_provision_finish, "POST", "/v1/provision/finish", NULL, bad, &st1, &c);
		assert_false(kiln_is_ok(c.r));
		assert_true(c.status == 400);
		assert_int_equal(kt_count(&k, "events"), ev + 1);
		call_done(&c);
		free(bad);
	}
	assert_int_equal(kt_count(&k, "devices"), devices);
	free(nonce);
	free(body);
}

/* finish_body with "next": value added (JSON text). */
static char *with_next(char *body, const char *value)
{
	size_t n = strlen(body);
	char *s = malloc(n + 32);

	assert_non_null(s);
	assert_true(n > 0 && body[n - 1] == '}');
	(void)snprintf(s, n + 32, "%.*s,\"next\":%s}", (int)(n - 1), body, value);
	free(body);
	return s;
}

/* A finish as st-1 answered with status and no next nonce, and no nonce recorded. */
static void finish_without_next(const char *body, int status)
{
	int64_t nonces = kt_count(&k, "nonces");
	struct call c;

	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, body, &st1, &c);
	if (!kiln_is_ok(c.r))
		fail_msg("finish: %s", c.d.text);
	assert_int_equal(c.status, status);
	assert_null(json_object_get(c.json, "next"));
	call_done(&c);
	assert_int_equal(kt_count(&k, "nonces"), nonces);
}

/*
 * "next": true: the answer carries the station's next nonce, committed with
 * the issuance, which the next device uses without a begin. None in a
 * repeat's answer, none once the lot has no budget left, none when not asked.
 */
static void test_provision_next_nonce(void **state)
{
	char *nonce, *body, *next, *other;
	struct kiln_nonce_rec rec = { 0 };
	int64_t ev, nonces, now = kiln_now();
	kiln_buf raw;
	struct call c;

	(void)state;
	open_lot("widget-test", "LOT-N-1", 3);
	nonce = begin(&st1, "LOT-N-1");
	body = with_next(finish_body(nonce, "WT-N-01"), "true");
	nonces = kt_count(&k, "nonces");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, body, &st1, &c);
	if (!kiln_is_ok(c.r))
		fail_msg("finish: %s", c.d.text);
	assert_int_equal(c.status, 201);
	{
		const json_t *n = json_object_get(c.json, "next");

		assert_true(json_is_object(n));
		/* A begin answer's members: the lot used, its product, the application's TTL. */
		assert_string_equal(jstr(n, "lot"), "LOT-N-1");
		assert_string_equal(jstr(n, "product"), "widget-test");
		assert_string_equal(jstr(n, "attestation"), "none");
		assert_true(jint(n, "expires") >= now + 90 && jint(n, "expires") <= kiln_now() + 90);
		assert_int_equal(strlen(jstr(n, "expires_at")), 20);
		next = strdup(jstr(n, "nonce"));
		assert_non_null(next);
	}
	call_done(&c);
	/* Recorded, bound to the station and the lot, unused. */
	assert_int_equal(kt_count(&k, "nonces"), nonces + 1);
	kiln_buf_init(&raw, 64);
	KT_OK(kiln_base64_decode(kiln_slice_str(next), &raw));
	assert_int_equal(raw.len, KILN_NONCE_LEN);
	{
		uint8_t h[32];

		assert_int_equal(EVP_Digest(raw.ptr, raw.len, h, NULL, EVP_sha256(), NULL), 1);
		KT_OK(kiln_store_nonce_get(k.store, h, &rec, NULL));
	}
	kiln_buf_cleanup(&raw);
	assert_string_equal(rec.station, "st-1");
	assert_string_equal(rec.lot, "LOT-N-1");
	assert_int_equal(rec.used, 0);

	/* The same request again: the same certificate, and no next nonce (nothing is written). */
	finish_without_next(body, 200);
	free(body);

	/* The next device on the next nonce, no begin: issued; the lot's last unit, so no next. */
	other = with_next(finish_body(next, "WT-N-02"), "true");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, other, &st1, &c);
	if (!kiln_is_ok(c.r))
		fail_msg("finish on the next nonce: %s", c.d.text);
	assert_int_equal(c.status, 201);
	assert_true(json_is_object(json_object_get(c.json, "next")));
	free(next);
	next = strdup(jstr(json_object_get(c.json, "next"), "nonce"));
	call_done(&c);
	free(other);
	other = with_next(finish_body(next, "WT-N-03"), "true");
	finish_without_next(other, 201);
	free(other);
	free(next);

	/* Not asked ("next": false, or absent as in test_provision_finish): none. */
	open_lot("widget-test", "LOT-N-2", 5);
	free(nonce);
	nonce = begin(&st1, "LOT-N-2");
	other = with_next(finish_body(nonce, "WT-N-04"), "false");
	finish_without_next(other, 201);
	free(other);

	/* A next that is not a boolean: refused by the route, one event, nothing else. */
	free(nonce);
	nonce = begin(&st1, "LOT-N-2");
	other = with_next(finish_body(nonce, "WT-N-05"), "\"yes\"");
	ev = kt_count(&k, "events");
	nonces = kt_count(&k, "nonces");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, other, &st1, &c);
	refused(&c, ev, KILN_ERR_MALFORMED, "st-1");
	assert_non_null(strstr(jstr(c.problem, "detail"), "\"next\" must be true or false"));
	call_done(&c);
	assert_int_equal(kt_count(&k, "nonces"), nonces);
	free(other);

	/* A refused finish that asked for a next nonce gets none, and none is recorded. */
	other = with_next(finish_body(nonce, "WT-N-06"), "true");
	ev = kt_count(&k, "events");
	call(route_provision_finish, "POST", "/v1/provision/finish", NULL, other, &st_test, &c);
	refused(&c, ev, KILN_ERR_NONCE_STATION, "st-t");
	assert_null(json_object_get(c.problem, "next"));
	call_done(&c);
	assert_int_equal(kt_count(&k, "nonces"), nonces);
	free(other);
	free(nonce);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_batch_open),
		cmocka_unit_test(test_batch_open_refusals),
		cmocka_unit_test(test_batch_close_and_get),
		cmocka_unit_test(test_provision_begin),
		cmocka_unit_test(test_provision_finish),
		cmocka_unit_test(test_provision_next_nonce),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
