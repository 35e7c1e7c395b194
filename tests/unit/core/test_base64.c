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

/* RFC 7468: BEGIN and END lines, 64 characters per line, '\n' after each. */
static void test_pem(void **state)
{
	uint8_t der[100];
	kiln_buf p, small;
	const char *line;

	(void)state;
	for (size_t i = 0; i < sizeof(der); i++)
		der[i] = (uint8_t)(i * 7 + 1);
	kiln_buf_init(&p, 4096);
	KT_OK(kiln_pem_encode("TEST", kiln_slice_str("foobar"), &p));
	assert_string_equal(kiln_buf_cstr(&p), "-----BEGIN TEST-----\nZm9vYmFy\n-----END TEST-----\n");
	for (size_t n = 0; n <= sizeof(der); n++) {
		size_t lines = 0, chars = 0;

		p.len = 0;
		KT_OK(kiln_pem_encode("CERTIFICATE", kiln_slice_of(der, n), &p));
		line = strchr(kiln_buf_cstr(&p), '\n') + 1;
		for (const char *nl; (nl = strchr(line, '\n')) != NULL && line[0] != '-';
		     line = nl + 1) {
			assert_true(nl - line <= 64);
			/* Only the last line may be short. */
			if (nl - line < 64)
				assert_true(strncmp(nl + 1, "-----END", 8) == 0);
			chars += (size_t)(nl - line);
			lines++;
		}
		assert_int_equal(lines, (n + 47) / 48);
		assert_int_equal(chars, (n + 2) / 3 * 4);
		assert_string_equal(line, "-----END CERTIFICATE-----\n");
	}
	KT_ERR(kiln_pem_encode("", kiln_slice_str("x"), &p), KILN_ERR_ARG);
	kiln_buf_init(&small, 40);
	KT_ERR(kiln_pem_encode("CERTIFICATE", kiln_slice_of(der, sizeof(der)), &small),
	       KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&small);
	kiln_buf_cleanup(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_binary_round_trip),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_pem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
