/* Unit tests for src/server/problem.c: RFC 9457 bodies, sanitising, errors. */
#include "support/support.h"

#include "server/server_impl.h"

#include <jansson.h>
#include <string.h>

static json_t *body_json(const struct kiln_response *res)
{
	json_t *j = NULL;

	KT_OK(kiln_json_parse(kiln_buf_view(&res->body), 1 << 20, &j, NULL));
	assert_true(json_is_object(j));
	return j;
}

static const char *str_of(const json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void test_from_error_table(void **state)
{
	struct kiln_response res;
	kiln_diag d;
	json_t *j;

	(void)state;
	kiln_response_init(&res);
	kiln_diag_clear(&d);
	KT_ERR(kiln_diag_set(&d, KILN_ERR_FORBIDDEN, "role station may not POST /v1/batches"),
	       KILN_ERR_FORBIDDEN);
	KT_OK(kiln_problem(kiln_fail(KILN_ERR_FORBIDDEN), &d, "/v1/batches", &res));
	assert_int_equal(res.status, 403);
	assert_string_equal(res.content_type, "application/problem+json");
	/* Compact: no spaces after separators. */
	assert_null(strstr(kiln_buf_cstr(&res.body), "\": "));
	assert_null(strstr(kiln_buf_cstr(&res.body), "\n"));
	j = body_json(&res);
	assert_string_equal(str_of(j, "type"), "urn:kiln:problem:forbidden");
	assert_string_equal(str_of(j, "title"), kiln_err_info(KILN_ERR_FORBIDDEN)->message);
	assert_string_equal(str_of(j, "detail"), "role station may not POST /v1/batches");
	assert_string_equal(str_of(j, "instance"), "/v1/batches");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 403);
	assert_null(json_object_get(j, "request_id"));
	assert_int_equal(json_object_size(j), 5);
	json_decref(j);
	kiln_response_cleanup(&res);
}

static void test_detail_defaults_to_title(void **state)
{
	struct kiln_response res;
	json_t *j;

	(void)state;
	kiln_response_init(&res);
	KT_OK(kiln_problem(kiln_fail(KILN_ERR_AUTH_REQUIRED), NULL, NULL, &res));
	assert_int_equal(res.status, 401);
	j = body_json(&res);
	assert_string_equal(str_of(j, "type"), "urn:kiln:problem:client-certificate-required");
	assert_string_equal(str_of(j, "detail"), str_of(j, "title"));
	assert_null(json_object_get(j, "instance"));
	json_decref(j);
	kiln_response_cleanup(&res);
}

static void test_every_code_makes_a_problem(void **state)
{
	struct kiln_response res;

	(void)state;
	kiln_response_init(&res);
	for (int c = 1; c < KILN_ERR__COUNT; c++) {
		json_t *j;

		KT_OK(kiln_problem(kiln_fail((kiln_err)c), NULL, "/x", &res));
		assert_true(res.status >= 400 && res.status <= 599);
		j = body_json(&res);
		assert_int_equal(json_integer_value(json_object_get(j, "status")), res.status);
		assert_int_equal(strncmp(str_of(j, "type"), KILN_PROBLEM_TYPE_PREFIX,
					 strlen(KILN_PROBLEM_TYPE_PREFIX)),
				 0);
		json_decref(j);
	}
	/* Success is not a problem. */
	KT_ERR(kiln_problem(kiln_ok(), NULL, "/x", &res), KILN_ERR_ARG);
	kiln_response_cleanup(&res);
}

static void test_sanitises_outside_text(void **state)
{
	struct kiln_problem_spec p = {
		.status = 400,
		.slug = "malformed",
		.title = "input is malformed",
		.detail = "lot \"A\r\nSet-Cookie: x\"\x01\x7f end",
		.instance = "/v1/\x1b[31mred",
		.request_id = "abc-1",
	};
	struct kiln_response res;
	json_t *j;

	(void)state;
	kiln_response_init(&res);
	KT_OK(kiln_problem_make(&p, &res));
	j = body_json(&res);
	assert_string_equal(str_of(j, "detail"), "lot \"A??Set-Cookie: x\"?? end");
	assert_string_equal(str_of(j, "instance"), "/v1/?[31mred");
	assert_string_equal(str_of(j, "request_id"), "abc-1");
	for (const char *s = kiln_buf_cstr(&res.body); *s != '\0'; s++)
		assert_true((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
	json_decref(j);
	kiln_response_cleanup(&res);
}

static void test_bad_utf8_and_non_ascii(void **state)
{
	struct kiln_problem_spec p = {
		.status = 404, .slug = "not-found", .title = "not found",
		.detail = "caf\xc3\xa9", .instance = "/caf\xc3(\xff",
	};
	struct kiln_response res;
	json_t *j;

	(void)state;
	kiln_response_init(&res);
	KT_OK(kiln_problem_make(&p, &res));
	j = body_json(&res);
	/* Valid UTF-8 survives (escaped as \u00E9 on the wire); invalid bytes do not. */
	assert_string_equal(str_of(j, "detail"), "caf\xc3\xa9");
	assert_non_null(strstr(kiln_buf_cstr(&res.body), "caf\\u00E9"));
	assert_string_equal(str_of(j, "instance"), "/caf?(?");
	json_decref(j);
	kiln_response_cleanup(&res);
}

static void test_long_text_is_cut(void **state)
{
	static char big[10000];
	struct kiln_problem_spec p = { .status = 400, .slug = "too-big", .title = "t" };
	struct kiln_response res;
	json_t *j;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	p.detail = big;
	p.instance = big;
	kiln_response_init(&res);
	KT_OK(kiln_problem_make(&p, &res));
	j = body_json(&res);
	assert_int_equal(strlen(str_of(j, "detail")), 1024);
	assert_int_equal(strlen(str_of(j, "instance")), KILN_PROBLEM_INSTANCE_MAX);
	json_decref(j);
	kiln_response_cleanup(&res);
}

static void test_keeps_headers_replaces_body(void **state)
{
	struct kiln_problem_spec p = { .status = 429, .slug = "rate-limited", .title = "slow down" };
	struct kiln_response res;

	(void)state;
	kiln_response_init(&res);
	KT_OK(kiln_buf_append_str(&res.body, "{\"partial\":"));
	kiln_strtrunc(res.content_type, "text/plain", sizeof(res.content_type));
	KT_OK(kiln_response_header(&res, "Retry-After", "3"));
	KT_OK(kiln_problem_make(&p, &res));
	assert_int_equal(res.n_headers, 1);
	assert_null(strstr(kiln_buf_cstr(&res.body), "partial"));
	assert_string_equal(res.content_type, "application/problem+json");
	kiln_response_cleanup(&res);
}

static void test_refuses_bad_specs(void **state)
{
	struct kiln_problem_spec p = { .status = 400, .slug = "ok-slug", .title = "t" };
	struct kiln_response res;

	(void)state;
	kiln_response_init(&res);
	p.status = 200;
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	p.status = 600;
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	p.status = 400;
	p.slug = "Bad Slug";
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	p.slug = "";
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	p.slug = NULL;
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	p.slug = "x";
	p.title = NULL;
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_ARG);
	/* Nothing was written by the failures. */
	assert_int_equal(res.status, 0);
	assert_int_equal(res.body.len, 0);
	kiln_response_cleanup(&res);
}

static void test_body_cap_applies(void **state)
{
	struct kiln_problem_spec p = { .status = 400, .slug = "x", .title = "t", .detail = "d" };
	struct kiln_response res;

	(void)state;
	kiln_response_init(&res);
	res.body.max = 10;
	KT_ERR(kiln_problem_make(&p, &res), KILN_ERR_TOO_BIG);
	assert_int_equal(res.status, 0);
	kiln_response_cleanup(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_error_table),
		cmocka_unit_test(test_detail_defaults_to_title),
		cmocka_unit_test(test_every_code_makes_a_problem),
		cmocka_unit_test(test_sanitises_outside_text),
		cmocka_unit_test(test_bad_utf8_and_non_ascii),
		cmocka_unit_test(test_long_text_is_cut),
		cmocka_unit_test(test_keeps_headers_replaces_body),
		cmocka_unit_test(test_refuses_bad_specs),
		cmocka_unit_test(test_body_cap_applies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
