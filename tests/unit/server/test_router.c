/* Unit tests for src/server/router.c: patterns, params, 404/405, table checks, media types. */
#include "support/support.h"

#include "server/server_impl.h"

#include <string.h>

static kiln_result nop(void *app, const struct kiln_request *req, struct kiln_response *res,
		       kiln_diag *d)
{
	(void)app;
	(void)req;
	(void)res;
	(void)d;
	return kiln_ok();
}

static const struct kiln_route table[] = {
	{ "GET", "/healthz", 0, nop, true },
	{ "POST", "/v1/batches", KILN_ROLE_OPERATOR, nop, false },
	{ "GET", "/v1/batches/{lot}", KILN_ROLE_OPERATOR, nop, false },
	{ "POST", "/v1/batches/{lot}/close", KILN_ROLE_OPERATOR, nop, false },
	{ "GET", "/v1/batches/open", KILN_ROLE_OPERATOR, nop, false },
	{ "GET", "/v1/{a}/{b}/{c}/{d}", 0, nop, false },
	{ "GET", "/", 0, nop, false },
};
#define N_TABLE (sizeof(table) / sizeof(table[0]))

static bool param_is(const struct kiln_route_match *m, size_t i, const char *want)
{
	return i < m->n_params && m->params[i].len == strlen(want) &&
	       memcmp(m->params[i].ptr, want, m->params[i].len) == 0;
}

static void test_table_is_valid(void **state)
{
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_router_check(table, N_TABLE, &d));
	KT_OK(kiln_router_check(NULL, 0, &d));
}

static void test_literal_and_root(void **state)
{
	struct kiln_route_match m;

	(void)state;
	KT_OK(kiln_router_match(table, N_TABLE, "GET", "/healthz", &m));
	assert_ptr_equal(m.route, &table[0]);
	assert_int_equal(m.n_params, 0);
	KT_OK(kiln_router_match(table, N_TABLE, "GET", "/", &m));
	assert_ptr_equal(m.route, &table[6]);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "/healthz/", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "/healthzz", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "/HEALTHZ", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "healthz", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "//healthz", &m), KILN_ERR_NOT_FOUND);
}

static void test_params(void **state)
{
	struct kiln_route_match m;

	(void)state;
	KT_OK(kiln_router_match(table, N_TABLE, "GET", "/v1/batches/L-42", &m));
	assert_ptr_equal(m.route, &table[2]);
	assert_true(param_is(&m, 0, "L-42"));
	KT_OK(kiln_router_match(table, N_TABLE, "POST", "/v1/batches/L%2042/close", &m));
	assert_ptr_equal(m.route, &table[3]);
	assert_true(param_is(&m, 0, "L%2042"));
	KT_OK(kiln_router_match(table, N_TABLE, "GET", "/v1/w/x/y/z", &m));
	assert_int_equal(m.n_params, 4);
	assert_true(param_is(&m, 0, "w") && param_is(&m, 3, "z"));
	/* Empty segments and dot segments never fill a parameter. */
	KT_ERR(kiln_router_match(table, N_TABLE, "POST", "/v1/batches//close", &m),
	       KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "POST", "/v1/batches/../close", &m),
	       KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "POST", "/v1/batches/./close", &m),
	       KILN_ERR_NOT_FOUND);
	KT_OK(kiln_router_match(table, N_TABLE, "POST", "/v1/batches/.../close", &m));
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "/v1/w/x/y", &m), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_router_match(table, N_TABLE, "GET", "/v1/w/x/y/z/", &m), KILN_ERR_NOT_FOUND);
}

static void test_literal_beats_param(void **state)
{
	struct kiln_route_match m;

	(void)state;
	/* "/v1/batches/open" is listed after "/v1/batches/{lot}" and still wins. */
	KT_OK(kiln_router_match(table, N_TABLE, "GET", "/v1/batches/open", &m));
	assert_ptr_equal(m.route, &table[4]);
	assert_int_equal(m.n_params, 0);
}

static void test_method_not_allowed(void **state)
{
	struct kiln_route_match m;

	(void)state;
	KT_ERR(kiln_router_match(table, N_TABLE, "DELETE", "/v1/batches", &m), KILN_ERR_METHOD);
	assert_string_equal(m.allow, "POST");
	assert_null(m.route);
	KT_ERR(kiln_router_match(table, N_TABLE, "POST", "/healthz", &m), KILN_ERR_METHOD);
	assert_string_equal(m.allow, "GET");
	/* Several patterns match: each method once. */
	KT_ERR(kiln_router_match(table, N_TABLE, "PUT", "/v1/batches/open", &m), KILN_ERR_METHOD);
	assert_string_equal(m.allow, "GET");
	KT_ERR(kiln_router_match(table, N_TABLE, "HEAD", "/healthz", &m), KILN_ERR_METHOD);
}

static void test_allow_lists_every_method(void **state)
{
	static const struct kiln_route t[] = {
		{ "GET", "/x/{id}", 0, nop, false },
		{ "POST", "/x/{id}", 0, nop, false },
		{ "DELETE", "/x/{other}", 0, nop, false },
		{ "PATCH", "/x/y", 0, nop, false },
		{ "PUT", "/x/{id}", 0, nop, false },
	};
	struct kiln_route_match m;

	(void)state;
	KT_OK(kiln_router_check(t, 5, NULL));
	KT_ERR(kiln_router_match(t, 5, "OPTIONS", "/x/y", &m), KILN_ERR_METHOD);
	assert_string_equal(m.allow, "GET, POST, DELETE, PATCH, PUT");
	KT_ERR(kiln_router_match(t, 5, "OPTIONS", "/x/z", &m), KILN_ERR_METHOD);
	assert_string_equal(m.allow, "GET, POST, DELETE, PUT");
}

static void check_bad(const struct kiln_route *r, const char *want)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_router_check(r, 1, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, want));
}

static void test_check_refuses_bad_tables(void **state)
{
	struct kiln_route r = { "GET", "/ok", 0, nop, false };
	struct kiln_route two[2] = { { "GET", "/a/{x}", 0, nop, false },
				     { "GET", "/a/{x}", 0, nop, false } };
	kiln_diag d;

	(void)state;
	r.method = "get";
	check_bad(&r, "method");
	r.method = NULL;
	check_bad(&r, "method");
	r.method = "GET";
	r.pattern = "nope";
	check_bad(&r, "must start with '/'");
	r.pattern = NULL;
	check_bad(&r, "must start with '/'");
	r.pattern = "/a//b";
	check_bad(&r, "empty segment");
	r.pattern = "/a/";
	check_bad(&r, "empty segment");
	r.pattern = "/a/{}";
	check_bad(&r, "whole segment");
	r.pattern = "/a/x{id}";
	check_bad(&r, "not allowed");
	r.pattern = "/a/{id}x";
	check_bad(&r, "whole segment");
	r.pattern = "/a/{ID}";
	check_bad(&r, "whole segment");
	r.pattern = "/a/b%20c";
	check_bad(&r, "not allowed");
	r.pattern = "/{a}/{b}/{c}/{d}/{e}";
	check_bad(&r, "more than 4");
	r.pattern = "/ok";
	r.fn = NULL;
	check_bad(&r, "no handler");
	r.fn = nop;
	r.roles = 1u << 9;
	check_bad(&r, "unknown roles");
	r.roles = KILN_ROLE_ADMIN;
	r.inline_ok = true;
	check_bad(&r, "must be public");
	kiln_diag_clear(&d);
	KT_ERR(kiln_router_check(two, 2, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "twice"));
	KT_ERR(kiln_router_check(NULL, 1, NULL), KILN_ERR_CONFIG);
}

static void decode_ok(const char *in, const char *want)
{
	char out[64];

	KT_OK(kiln_router_decode(kiln_slice_str(in), out, sizeof(out)));
	assert_string_equal(out, want);
}

static void decode_bad(const char *in, kiln_err want)
{
	char out[8];

	KT_ERR(kiln_router_decode(kiln_slice_str(in), out, sizeof(out)), want);
}

static void test_decode(void **state)
{
	(void)state;
	decode_ok("L-42", "L-42");
	decode_ok("a%41b", "aAb");
	decode_ok("%7e%7E", "~~");
	decode_ok("", "");
	decode_bad("%", KILN_ERR_MALFORMED);
	decode_bad("%4", KILN_ERR_MALFORMED);
	decode_bad("%zz", KILN_ERR_MALFORMED);
	decode_bad("%00", KILN_ERR_MALFORMED);
	decode_bad("%2F", KILN_ERR_MALFORMED);
	decode_bad("%5c", KILN_ERR_MALFORMED);
	decode_bad("%20", KILN_ERR_MALFORMED);
	decode_bad("%0a", KILN_ERR_MALFORMED);
	decode_bad("%7f", KILN_ERR_MALFORMED);
	decode_bad("%c3%a9", KILN_ERR_MALFORMED);
	decode_bad("12345678", KILN_ERR_TOO_BIG);
	decode_ok("1234567", "1234567");
}

static void test_media_types(void **state)
{
	(void)state;
	assert_true(kiln_router_media_ok("application/json"));
	assert_true(kiln_router_media_ok("Application/JSON"));
	assert_true(kiln_router_media_ok("application/json; charset=utf-8"));
	assert_true(kiln_router_media_ok("application/json;charset=UTF-8"));
	assert_true(kiln_router_media_ok("  application/json  ; q=1"));
	assert_true(kiln_router_media_ok("application/ocsp-request"));
	assert_true(kiln_router_media_ok("application/pkcs10"));
	assert_false(kiln_router_media_ok(NULL));
	assert_false(kiln_router_media_ok(""));
	assert_false(kiln_router_media_ok("text/plain"));
	assert_false(kiln_router_media_ok("application/jsonx"));
	assert_false(kiln_router_media_ok("application/json-seq"));
	assert_false(kiln_router_media_ok("application/x-www-form-urlencoded"));
	assert_false(kiln_router_media_ok("multipart/form-data; boundary=x"));
	assert_false(kiln_router_media_ok("application"));
}

static void test_path_ok(void **state)
{
	(void)state;
	assert_true(kiln_router_path_ok("/"));
	assert_true(kiln_router_path_ok("/v1/x%20y"));
	assert_false(kiln_router_path_ok(NULL));
	assert_false(kiln_router_path_ok(""));
	assert_false(kiln_router_path_ok("v1"));
	assert_false(kiln_router_path_ok("/a b"));
	assert_false(kiln_router_path_ok("/a\tb"));
	assert_false(kiln_router_path_ok("/a\x01"));
	assert_false(kiln_router_path_ok("/caf\xc3\xa9"));
	assert_false(kiln_router_path_ok("/\x7f"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_valid),
		cmocka_unit_test(test_literal_and_root),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_literal_beats_param),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_allow_lists_every_method),
		cmocka_unit_test(test_check_refuses_bad_tables),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_media_types),
		cmocka_unit_test(test_path_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
