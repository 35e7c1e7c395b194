/*
 * Unit tests for src/server/app.c: the route table and its roles (checked
 * against the matrix in docs/protocol.md, so code and contract cannot drift
 * apart), authentication of client certificates against the inventory's
 * identities (known, unknown, revoked), the audit events of refusals, and
 * the application's construction.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"
#include "server/server_impl.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app;

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };

	(void)state;
	kt_deploy_up(&k, "server-app", KILN_ALG_P256, false);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 0, .log = &k.log, .ledger = NULL };
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

/* ------------------------------------------------------------ routes and roles */

static const struct kiln_route *route_of(const char *method, const char *pattern)
{
	size_t n;
	const struct kiln_route *r = kiln_app_routes(&n);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(r[i].method, method) == 0 && strcmp(r[i].pattern, pattern) == 0)
			return &r[i];
	}
	return NULL;
}

static void test_route_table(void **state)
{
	static const struct {
		const char *method, *pattern;
		unsigned roles;
	} want[] = {
		{ "GET", "/healthz", 0 },
		{ "POST", "/v1/batches", KILN_ROLE_ADMIN | KILN_ROLE_ENGINEER },
		{ "POST", "/v1/batches/{lot}/close", KILN_ROLE_ADMIN | KILN_ROLE_ENGINEER },
		{ "GET", "/v1/batches/{lot}", KILN_ROLE_ALL },
		{ "POST", "/v1/provision/begin", KILN_ROLE_OPERATOR | KILN_ROLE_STATION },
		{ "POST", "/v1/provision/activate", KILN_ROLE_OPERATOR | KILN_ROLE_STATION },
		{ "POST", "/v1/provision/finish", KILN_ROLE_OPERATOR | KILN_ROLE_STATION },
		{ "GET", "/v1/devices/{id}",
		  KILN_ROLE_ADMIN | KILN_ROLE_OFFICER | KILN_ROLE_ENGINEER | KILN_ROLE_AUDITOR },
		{ "GET", "/v1/log/checkpoint", KILN_ROLE_ALL },
		{ "GET", "/v1/log/checkpoints", KILN_ROLE_ALL },
		{ "GET", "/v1/log/entries",
		  KILN_ROLE_ADMIN | KILN_ROLE_OFFICER | KILN_ROLE_ENGINEER | KILN_ROLE_AUDITOR },
		{ "GET", "/v1/log/proof/inclusion", KILN_ROLE_ALL },
		{ "GET", "/v1/log/proof/consistency", KILN_ROLE_ALL },
		{ "POST", "/v1/revocations", KILN_ROLE_ADMIN | KILN_ROLE_OFFICER },
		/* EST admits its clients in the handlers (routes_est.c). */
		{ "GET", "/.well-known/est/cacerts", 0 },
		{ "GET", "/.well-known/est/{label}/cacerts", 0 },
		{ "GET", "/.well-known/est/csrattrs", 0 },
		{ "GET", "/.well-known/est/{label}/csrattrs", 0 },
		{ "POST", "/.well-known/est/simpleenroll", 0 },
		{ "POST", "/.well-known/est/{label}/simpleenroll", 0 },
		{ "POST", "/.well-known/est/simplereenroll", 0 },
		{ "POST", "/.well-known/est/{label}/simplereenroll", 0 },
		{ "GET", "/v1/requests",
		  KILN_ROLE_ADMIN | KILN_ROLE_OFFICER | KILN_ROLE_ENGINEER | KILN_ROLE_AUDITOR },
		{ "GET", "/v1/requests/{id}",
		  KILN_ROLE_ADMIN | KILN_ROLE_OFFICER | KILN_ROLE_ENGINEER | KILN_ROLE_AUDITOR },
		{ "POST", "/v1/requests/{id}/approvals", KILN_ROLE_OFFICER },
	};
	size_t n;
	const struct kiln_route *routes = kiln_app_routes(&n);
	kiln_diag d;

	(void)state;
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++) {
		const struct kiln_route *r = route_of(want[i].method, want[i].pattern);

		if (r == NULL)
			fail_msg("no route %s %s", want[i].method, want[i].pattern);
		assert_int_equal(r->roles, want[i].roles);
		assert_non_null(r->fn);
		/* Only the health check is cheap enough for the loop thread. */
		assert_int_equal(r->inline_ok, strcmp(r->pattern, "/healthz") == 0);
	}
	/* The transport accepts the table as it is. */
	kiln_diag_clear(&d);
	KT_OK(kiln_router_check(routes, n, &d));
	/* The hooks are both there. */
	assert_non_null(kiln_app_hooks()->authenticate);
	assert_non_null(kiln_app_hooks()->refused);
}

/* The role matrix of docs/protocol.md, row by row, against the table. */
static void test_roles_match_protocol_doc(void **state)
{
	static const char *const cols[6] = { "admin", "officer", "engineer", "operator", "station",
					     "auditor" };
	kiln_buf doc;
	char *text, *line, *next;
	size_t rows = 0;

	(void)state;
	kt_read_file(KILN_SOURCE_DIR "/docs/protocol.md", &doc);
	text = strdup(kiln_buf_cstr(&doc));
	assert_non_null(text);
	for (line = text; line != NULL; line = next) {
		char method[8], pattern[64];
		const struct kiln_route *r;
		unsigned roles = 0, col = 0;
		const char *p;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (sscanf(line, "| `%7s %63[^` ]", method, pattern) != 2)
			continue;
		r = route_of(method, pattern);
		if (r == NULL)
			fail_msg("docs/protocol.md lists %s %s, which kiln does not route", method,
				 pattern);
		/* Skip the route cell, then read six cells: "yes" or empty. */
		p = strchr(line + 1, '|');
		for (; p != NULL && col < 6; col++) {
			const char *end = strchr(p + 1, '|');

			if (end == NULL)
				break;
			if (memmem(p, (size_t)(end - p), "yes", 3) != NULL)
				roles |= kiln_role_bit(cols[col]);
			p = end;
		}
		assert_int_equal(col, 6);
		/* A public route says so in its cell; every role may call it. */
		if (strstr(line, "no client certificate") != NULL)
			assert_int_equal(r->roles, 0);
		else if (r->roles != roles)
			fail_msg("%s %s: kiln admits roles 0x%x, docs/protocol.md says 0x%x", method,
				 pattern, r->roles, roles);
		rows++;
	}
	assert_int_equal(rows, 25);
	free(text);
	kiln_buf_cleanup(&doc);
}

/* ------------------------------------------------------------ authenticate */

static X509 *identity(const char *name, const char *role, kiln_env env, char serial[KILN_SERIAL_HEX])
{
	struct kiln_identity_req req = { name, role, env, kiln_slice_of(NULL, 0), "test", NULL, NULL };
	struct kiln_identity_result res;
	kiln_diag d;
	X509 *x;
	BIO *bio;

	kiln_diag_clear(&d);
	kiln_identity_result_init(&res);
	if (!kiln_is_ok(kiln_ca_identity_add(k.ca, &req, &res, &d)))
		fail_msg("identity %s: %s", name, d.text);
	bio = BIO_new_mem_buf(res.cert_pem.ptr, (int)res.cert_pem.len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	memcpy(serial, res.serial, KILN_SERIAL_HEX);
	kiln_identity_result_cleanup(&res);
	return x;
}

static kiln_result auth(const X509 *x, struct kiln_principal *p, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_app_hooks()->authenticate(app, x, p, d);
}

static void test_authenticate_known(void **state)
{
	char serial[KILN_SERIAL_HEX];
	struct kiln_principal p;
	X509 *st = identity("st-auth", "station", KILN_ENV_TEST, serial);
	X509 *eng = identity("eng-auth", "engineer", KILN_ENV_NONE, serial);
	kiln_diag d;

	(void)state;
	KT_OK(auth(st, &p, &d));
	assert_string_equal(p.name, "st-auth");
	assert_string_equal(p.role, "station");
	assert_int_equal(p.role_bit, KILN_ROLE_STATION);
	assert_string_equal(p.env, "test");
	KT_OK(auth(eng, &p, &d));
	assert_string_equal(p.name, "eng-auth");
	assert_string_equal(p.role, "engineer");
	assert_int_equal(p.role_bit, KILN_ROLE_ENGINEER);
	assert_string_equal(p.env, "");
	assert_string_equal(p.cert_serial, serial);
	X509_free(st);
	X509_free(eng);
}

static void test_authenticate_unknown(void **state)
{
	static const char *const dns[] = { "localhost" };
	EVP_PKEY *key = kt_keygen("p256");
	struct kiln_tls_req req = { key, dns, 1, NULL, 0, 0, "test" };
	struct kiln_principal p;
	char hex[KILN_SERIAL_HEX * 2];
	kiln_buf pem;
	kiln_diag d;
	X509 *x;
	BIO *bio;

	(void)state;
	/* A certificate from the service CA that is bound to no identity (kiln's own TLS one). */
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_tls_issue(k.ca, &req, &pem, NULL));
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	kiln_cert_serial_hex(x, hex, sizeof(hex));
	memset(&p, 0x55, sizeof(p));
	KT_ERR(auth(x, &p, &d), KILN_ERR_AUTH_UNKNOWN);
	assert_non_null(strstr(d.text, hex));
	assert_non_null(strstr(d.text, "not bound"));
	/* Nothing of a principal is left behind. */
	assert_string_equal(p.name, "");
	assert_int_equal(p.role_bit, 0);
	X509_free(x);
	kiln_buf_cleanup(&pem);
	EVP_PKEY_free(key);
}

static void test_authenticate_revoked(void **state)
{
	char serial[KILN_SERIAL_HEX], *db = kt_path(k.dir, "kiln.db");
	struct kiln_principal p;
	X509 *x = identity("st-revoked", "station", KILN_ENV_NONE, serial);
	kiln_diag d;

	(void)state;
	KT_OK(auth(x, &p, &d));
	assert_int_equal(kt_system("sqlite3 '%s' \"UPDATE identities SET status = 'revoked' "
				   "WHERE name = 'st-revoked'\"", db), 0);
	memset(&p, 0x55, sizeof(p));
	KT_ERR(auth(x, &p, &d), KILN_ERR_AUTH_REVOKED);
	assert_non_null(strstr(d.text, "st-revoked"));
	assert_string_equal(p.name, "");
	X509_free(x);
	free(db);
}

/* ------------------------------------------------------------ refusals */

/* The newest event and its detail (caller json_decref). */
static json_t *last_event(struct kiln_event_rec *out)
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	json_t *j;

	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	assert_true(n > 0);
	*out = ev[n - 1];
	out->detail_json = NULL;
	out->detail_heap = NULL;
	j = json_loads(ev[n - 1].detail_json, 0, NULL);
	assert_non_null(j);
	kiln_store_event_list_free(ev, n);
	return j;
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string member %s", key);
	return s;
}

static void test_refused_hook(void **state)
{
	static const struct {
		kiln_err why;
		const char *type;
		bool who;
	} cases[] = {
		{ KILN_ERR_AUTH_REQUIRED, "auth-failure", false },
		{ KILN_ERR_AUTH_UNKNOWN, "auth-failure", false },
		{ KILN_ERR_AUTH_REVOKED, "auth-failure", false },
		{ KILN_ERR_FORBIDDEN, "auth-failure", true },
		{ KILN_ERR_RATE_LIMITED, "rejection", true },
		{ KILN_ERR_METHOD, "rejection", true },
		{ KILN_ERR_UNSUPPORTED_MEDIA, "rejection", true },
		{ KILN_ERR_NOT_FOUND, "rejection", false },
		{ KILN_ERR_TOO_BIG, "rejection", true },
	};
	struct kiln_principal who = { .name = "st-9", .role = "station", .role_bit = KILN_ROLE_STATION };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kiln_request req = { 0 };
		struct kiln_event_rec ev;
		int64_t events = kt_count(&k, "events");
		char msg[64];
		kiln_diag d;
		json_t *j;

		req.method = "POST";
		req.path = "/v1/provision/begin";
		req.who = cases[i].who ? &who : NULL;
		req.peer = "127.0.0.1:50312";
		req.request_id = "req-42";
		(void)snprintf(msg, sizeof(msg), "refusal number %zu", i);
		kiln_diag_clear(&d);
		kiln_app_hooks()->refused(app, &req, kiln_diag_set(&d, cases[i].why, "%s", msg), &d);
		assert_int_equal(kt_count(&k, "events"), events + 1);
		j = last_event(&ev);
		assert_string_equal(ev.type, cases[i].type);
		assert_string_equal(ev.actor, cases[i].who ? "st-9" : "anonymous");
		assert_string_equal(ev.subject, "/v1/provision/begin");
		assert_string_equal(jstr(j, "reason"), kiln_err_info(cases[i].why)->slug);
		assert_string_equal(jstr(j, "message"), msg);
		assert_string_equal(jstr(j, "method"), "POST");
		assert_string_equal(jstr(j, "path"), "/v1/provision/begin");
		assert_string_equal(jstr(j, "peer"), "127.0.0.1:50312");
		assert_string_equal(jstr(j, "request_id"), "req-42");
		json_decref(j);
	}
}

static void test_refuse_without_details(void **state)
{
	struct kiln_request req = { 0 };
	struct kiln_event_rec ev;
	json_t *j;

	(void)state;
	/* No peer, no request id, no diag: the error table's message stands in. */
	req.method = "GET";
	req.path = "/v1/devices/7";
	app_refuse(app, &req, "rejection", kiln_fail(KILN_ERR_NOT_FOUND), NULL);
	j = last_event(&ev);
	assert_string_equal(ev.type, "rejection");
	assert_string_equal(jstr(j, "peer"), "");
	assert_string_equal(jstr(j, "request_id"), "");
	assert_string_equal(jstr(j, "message"), kiln_err_info(KILN_ERR_NOT_FOUND)->message);
	json_decref(j);
}

/* ------------------------------------------------------------ helpers and construction */

static void test_app_json(void **state)
{
	struct kiln_response res;

	(void)state;
	kiln_response_init(&res);
	KT_OK(app_json(&res, 201, json_pack("{s:s,s:i}", "b", "x", "a", 1)));
	assert_int_equal(res.status, 201);
	assert_string_equal(res.content_type, "application/json");
	assert_string_equal(kiln_buf_cstr(&res.body), "{\"a\":1,\"b\":\"x\"}");
	kiln_response_cleanup(&res);
	kiln_response_init(&res);
	KT_ERR(app_json(&res, 200, NULL), KILN_ERR_NOMEM);
	kiln_response_cleanup(&res);
}

static void test_app_new(void **state)
{
	struct kiln_app_opts o = { 0 };
	kiln_app *a = (kiln_app *)&o;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	o = (struct kiln_app_opts){ .ca = NULL, .store = k.store, .nonce_ttl_s = 0, .log = NULL, .ledger = NULL };
	KT_ERR(kiln_app_new(&o, &a, &d), KILN_ERR_ARG);
	assert_null(a);
	assert_non_null(strstr(d.text, "CA engine"));
	o = (struct kiln_app_opts){ .ca = k.ca, .store = NULL, .nonce_ttl_s = 0, .log = NULL, .ledger = NULL };
	KT_ERR(kiln_app_new(&o, &a, NULL), KILN_ERR_ARG);
	/* The nonce TTL: a default unless a positive one is given. */
	assert_int_equal(app->nonce_ttl_s, KILN_NONCE_TTL_DEFAULT);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 30, .log = NULL, .ledger = NULL };
	KT_OK(kiln_app_new(&o, &a, NULL));
	assert_int_equal(a->nonce_ttl_s, 30);
	assert_ptr_equal(a->ca, k.ca);
	assert_ptr_equal(a->store, k.store);
	kiln_app_free(a);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = -5, .log = NULL, .ledger = NULL };
	KT_OK(kiln_app_new(&o, &a, NULL));
	assert_int_equal(a->nonce_ttl_s, KILN_NONCE_TTL_DEFAULT);
	kiln_app_free(a);
	kiln_app_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_roles_match_protocol_doc),
		cmocka_unit_test(test_authenticate_known),
		cmocka_unit_test(test_authenticate_unknown),
		cmocka_unit_test(test_authenticate_revoked),
		cmocka_unit_test(test_refused_hook),
		cmocka_unit_test(test_refuse_without_details),
		cmocka_unit_test(test_app_json),
		cmocka_unit_test(test_app_new),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
