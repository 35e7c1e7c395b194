/* Unit tests for src/core/base64.c: RFC 4648 vectors, strictness, caps. */
#include "support/support.h"

#include <string.h>

static const struct {
	const char *plain, *enc;
} vectors[] = {
	{ "", "" },	       { "f", "Zg==" },		{ "fo", "Zm8=" },	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		kiln_buf e, dec;

		kiln_buf_init(&e, 64);
		kiln_buf_init(&dec, 64);
		KT_OK(kiln_base64_encode(kiln_slice_str(vectors[i].plain), &e));
		assert_string_equal(kiln_buf_cstr(&e), vectors[i].enc);
		KT_OK(kiln_base64_decode(kiln_slice_str(vectors[i].enc), &dec));
		assert_int_equal(dec.len, strlen(vectors[i].plain));
		assert_memory_equal(dec.ptr, vectors[i].plain, dec.len);
		kiln_buf_cleanup(&e);
		kiln_buf_cleanup(&dec);
	}
}

static void test_binary_round_trip(void **state)
{
	uint8_t in[256];
	kiln_buf e, dec;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(255 - i);
	for (size_t n = 0; n <= sizeof(in); n++) {
		kiln_buf_init(&e, 1024);
		kiln_buf_init(&dec, 1024);
		KT_OK(kiln_base64_encode(kiln_slice_of(in, n), &e));
		KT_OK(kiln_base64_decode(kiln_buf_view(&e), &dec));
		assert_int_equal(dec.len, n);
		if (n > 0)
			assert_memory_equal(dec.ptr, in, n);
		kiln_buf_cleanup(&e);
		kiln_buf_cleanup(&dec);
	}
}

static void test_strict(void **state)
{
	static const char *const bad[] = { "Zg=",  "Zg",	"Z===", "Zh==", "Zm9=", "Zm 9v",
					   "Zm9v\n", "Zm-v", "Zm_v", "=Zm9", "Zg==Zg==", "Zm=v" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_buf dec;

		kiln_buf_init(&dec, 64);
		KT_OK(kiln_buf_append_str(&dec, "keep"));
		if (kiln_base64_decode(kiln_slice_str(bad[i]), &dec).code != KILN_ERR_MALFORMED)
			fail_msg("'%s' was accepted", bad[i]);
		/* A failed decode leaves what was there before. */
		assert_int_equal(dec.len, 4);
		assert_string_equal(kiln_buf_cstr(&dec), "keep");
		kiln_buf_cleanup(&dec);
	}
}

static void test_caps(void **state)
{
	kiln_buf small;

	(void)state;
	kiln_buf_init(&small, 2);
	KT_ERR(kiln_base64_decode(kiln_slice_str("Zm9v"), &small), KILN_ERR_TOO_BIG);
	assert_int_equal(small.len, 0);
	KT_ERR(kiln_base64_encode(kiln_slice_str("f"), &small), KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_binary_round_trip),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
