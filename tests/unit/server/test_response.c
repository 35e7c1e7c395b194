/* Unit tests for src/server/response.c: role names, response init, headers. */
#include "support/support.h"

#include "server/server.h"

#include <string.h>

static void test_role_bits(void **state)
{
	(void)state;
	assert_int_equal(kiln_role_bit("admin"), KILN_ROLE_ADMIN);
	assert_int_equal(kiln_role_bit("officer"), KILN_ROLE_OFFICER);
	assert_int_equal(kiln_role_bit("engineer"), KILN_ROLE_ENGINEER);
	assert_int_equal(kiln_role_bit("operator"), KILN_ROLE_OPERATOR);
	assert_int_equal(kiln_role_bit("station"), KILN_ROLE_STATION);
	assert_int_equal(kiln_role_bit("auditor"), KILN_ROLE_AUDITOR);
	assert_int_equal(kiln_role_bit("Admin"), 0);
	assert_int_equal(kiln_role_bit(""), 0);
	assert_int_equal(kiln_role_bit(NULL), 0);
}

static void test_init_and_cleanup(void **state)
{
	struct kiln_response res;

	(void)state;
	memset(&res, 0xa5, sizeof(res));
	kiln_response_init(&res);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.content_type, "");
	assert_int_equal(res.n_headers, 0);
	assert_int_equal(res.body.len, 0);
	assert_int_equal(res.body.max, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&res.body, "{}"));
	kiln_response_cleanup(&res);
	assert_null(res.body.ptr);
	kiln_response_cleanup(NULL);
}

static void test_headers(void **state)
{
	struct kiln_response res;
	char long_value[300];

	(void)state;
	kiln_response_init(&res);
	KT_OK(kiln_response_header(&res, "Cache-Control", "max-age=60"));
	assert_string_equal(res.headers[0].name, "Cache-Control");
	assert_string_equal(res.headers[0].value, "max-age=60");
	/* Header injection is refused. */
	KT_ERR(kiln_response_header(&res, "X-A", "v\r\nSet-Cookie: x"), KILN_ERR_ARG);
	KT_ERR(kiln_response_header(&res, "X-A\n", "v"), KILN_ERR_ARG);
	KT_ERR(kiln_response_header(&res, "X-A: b", "v"), KILN_ERR_ARG);
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	KT_ERR(kiln_response_header(&res, "X-Long", long_value), KILN_ERR_TOO_BIG);
	res.n_headers = 1;
	KT_OK(kiln_response_header(&res, "X-2", "2"));
	KT_OK(kiln_response_header(&res, "X-3", "3"));
	KT_OK(kiln_response_header(&res, "X-4", "4"));
	KT_ERR(kiln_response_header(&res, "X-5", "5"), KILN_ERR_TOO_BIG);
	assert_int_equal(res.n_headers, KILN_RESPONSE_MAX_HEADERS);
	kiln_response_cleanup(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_bits),
		cmocka_unit_test(test_init_and_cleanup),
		cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
