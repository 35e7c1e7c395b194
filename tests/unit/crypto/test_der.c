/* Unit tests for src/crypto/der.c: the strict TLV reader, the tree check, the writer, ECDSA conversion. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ kiln_der_read */

/* Reads one TLV from bytes; checks the result and that a failure did not move the cursor. */
static kiln_err read_one(const uint8_t *p, size_t n, uint8_t *tag, kiln_slice *content)
{
	kiln_cursor c;
	kiln_result r;
	uint8_t t = 0xee;
	kiln_slice s = kiln_slice_of(NULL, 0);

	kiln_cursor_init(&c, kiln_slice_of(p, n));
	r = kiln_der_read(&c, &t, &s);
	if (!kiln_is_ok(r)) {
		assert_int_equal(c.pos, 0);
		assert_int_equal(t, 0xee);
		assert_null(s.ptr);
	} else {
		assert_int_equal(c.pos, (size_t)(s.ptr + s.len - p));
	}
	if (tag != NULL)
		*tag = t;
	if (content != NULL)
		*content = s;
	return r.code;
}

static void test_read_short_form(void **state)
{
	static const uint8_t in[] = { 0x02, 0x01, 0x05, 0xaa };
	static const uint8_t empty[] = { 0x05, 0x00 };
	uint8_t tag;
	kiln_slice s;

	(void)state;
	assert_int_equal(read_one(in, sizeof(in), &tag, &s), KILN_OK);
	assert_int_equal(tag, 0x02);
	assert_int_equal(s.len, 1);
	assert_ptr_equal(s.ptr, in + 2);
	assert_int_equal(read_one(empty, sizeof(empty), &tag, &s), KILN_OK);
	assert_int_equal(tag, 0x05);
	assert_int_equal(s.len, 0);
}

static void test_read_sequence_of_tlvs(void **state)
{
	static const uint8_t in[] = { 0x02, 0x01, 0x07, 0x04, 0x02, 0xab, 0xcd, 0x05, 0x00 };
	kiln_cursor c;
	kiln_slice s;
	uint8_t tag;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(in, sizeof(in)));
	KT_OK(kiln_der_read(&c, &tag, &s));
	assert_int_equal(tag, 0x02);
	assert_int_equal(s.ptr[0], 0x07);
	KT_OK(kiln_der_read(&c, &tag, &s));
	assert_int_equal(tag, 0x04);
	assert_int_equal(s.len, 2);
	assert_int_equal(s.ptr[1], 0xcd);
	KT_OK(kiln_der_read(&c, &tag, &s));
	assert_int_equal(tag, 0x05);
	KT_OK(kiln_cursor_expect_end(&c));
	KT_ERR(kiln_der_read(&c, &tag, &s), KILN_ERR_TRUNCATED);
}

/* A TLV with the given header bytes and n content bytes. */
static uint8_t *tlv(const uint8_t *hdr, size_t hlen, size_t n, size_t *total)
{
	uint8_t *p = malloc(hlen + n + 1);

	assert_non_null(p);
	memcpy(p, hdr, hlen);
	memset(p + hlen, 0x5a, n);
	*total = hlen + n;
	return p;
}

static void expect_read(const uint8_t *hdr, size_t hlen, size_t n, kiln_err want, size_t want_len)
{
	size_t total;
	uint8_t *p = tlv(hdr, hlen, n, &total);
	kiln_slice s;

	assert_int_equal(read_one(p, total, NULL, &s), want);
	if (want == KILN_OK) {
		assert_int_equal(s.len, want_len);
		assert_ptr_equal(s.ptr, p + hlen);
	}
	free(p);
}

static void test_read_long_form(void **state)
{
	(void)state;
	expect_read((const uint8_t[]){ 0x04, 0x81, 0x80 }, 3, 128, KILN_OK, 128);
	expect_read((const uint8_t[]){ 0x04, 0x81, 0xff }, 3, 255, KILN_OK, 255);
	expect_read((const uint8_t[]){ 0x04, 0x82, 0x01, 0x00 }, 4, 256, KILN_OK, 256);
	expect_read((const uint8_t[]){ 0x04, 0x82, 0xff, 0xff }, 4, 65535, KILN_OK, 65535);
	expect_read((const uint8_t[]){ 0x04, 0x83, 0x01, 0x00, 0x00 }, 5, 65536, KILN_OK, 65536);
	/* content longer than declared: the rest stays for the next read */
	expect_read((const uint8_t[]){ 0x04, 0x81, 0x80 }, 3, 200, KILN_OK, 128);
}

static void test_read_non_minimal_refused(void **state)
{
	(void)state;
	/* long form for a length that fits the short form */
	expect_read((const uint8_t[]){ 0x04, 0x81, 0x7f }, 3, 127, KILN_ERR_MALFORMED, 0);
	expect_read((const uint8_t[]){ 0x04, 0x81, 0x00 }, 3, 0, KILN_ERR_MALFORMED, 0);
	/* leading zero length bytes */
	expect_read((const uint8_t[]){ 0x04, 0x82, 0x00, 0x80 }, 4, 128, KILN_ERR_MALFORMED, 0);
	expect_read((const uint8_t[]){ 0x04, 0x82, 0x00, 0xff }, 4, 255, KILN_ERR_MALFORMED, 0);
	expect_read((const uint8_t[]){ 0x04, 0x83, 0x00, 0x01, 0x00 }, 5, 256, KILN_ERR_MALFORMED, 0);
	expect_read((const uint8_t[]){ 0x04, 0x84, 0x00, 0x00, 0x00, 0x05 }, 6, 5,
		    KILN_ERR_MALFORMED, 0);
}

static void test_read_indefinite_and_huge_refused(void **state)
{
	(void)state;
	/* BER indefinite length */
	expect_read((const uint8_t[]){ 0x30, 0x80 }, 2, 4, KILN_ERR_MALFORMED, 0);
	/* more than four length bytes */
	expect_read((const uint8_t[]){ 0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00 }, 7, 8,
		    KILN_ERR_MALFORMED, 0);
	expect_read((const uint8_t[]){ 0x04, 0xff }, 2, 200, KILN_ERR_MALFORMED, 0);
	/* four length bytes, declaring more than is there */
	expect_read((const uint8_t[]){ 0x04, 0x84, 0xff, 0xff, 0xff, 0xff }, 6, 16,
		    KILN_ERR_TRUNCATED, 0);
}

static void test_read_multibyte_tag_refused(void **state)
{
	(void)state;
	/* every class, primitive and constructed, with tag number 31 */
	for (unsigned hi = 0; hi < 8; hi++) {
		uint8_t in[4] = { (uint8_t)(hi << 5 | 0x1f), 0x81, 0x01, 0x00 };

		assert_int_equal(read_one(in, sizeof(in), NULL, NULL), KILN_ERR_MALFORMED);
	}
	/* tag number 30 is still single-byte */
	assert_int_equal(read_one((const uint8_t[]){ 0x1e, 0x00 }, 2, NULL, NULL), KILN_OK);
}

static void test_read_truncated(void **state)
{
	(void)state;
	/* no bytes, tag only, length bytes cut, content cut by one */
	assert_int_equal(read_one((const uint8_t *)"", 0, NULL, NULL), KILN_ERR_TRUNCATED);
	assert_int_equal(read_one((const uint8_t[]){ 0x04 }, 1, NULL, NULL), KILN_ERR_TRUNCATED);
	assert_int_equal(read_one((const uint8_t[]){ 0x04, 0x82, 0x01 }, 3, NULL, NULL),
			 KILN_ERR_TRUNCATED);
	assert_int_equal(read_one((const uint8_t[]){ 0x04, 0x81 }, 2, NULL, NULL), KILN_ERR_TRUNCATED);
	assert_int_equal(read_one((const uint8_t[]){ 0x04, 0x05, 1, 2, 3, 4 }, 6, NULL, NULL),
			 KILN_ERR_TRUNCATED);
	expect_read((const uint8_t[]){ 0x04, 0x82, 0x01, 0x00 }, 4, 255, KILN_ERR_TRUNCATED, 0);
	/* exactly enough */
	assert_int_equal(read_one((const uint8_t[]){ 0x04, 0x05, 1, 2, 3, 4, 5 }, 7, NULL, NULL),
			 KILN_OK);
}

/* A failed read after a good one leaves the cursor just after the good one. */
static void test_read_failure_keeps_position(void **state)
{
	static const uint8_t in[] = { 0x02, 0x01, 0x01, 0x04, 0x81, 0x05, 1, 2, 3, 4, 5 };
	kiln_cursor c;
	kiln_slice s;
	uint8_t tag;

	(void)state;
	kiln_cursor_init(&c, kiln_slice_of(in, sizeof(in)));
	KT_OK(kiln_der_read(&c, &tag, &s));
	assert_int_equal(c.pos, 3);
	KT_ERR(kiln_der_read(&c, &tag, &s), KILN_ERR_MALFORMED);
	assert_int_equal(c.pos, 3);
	assert_int_equal(tag, 0x02);
	assert_ptr_equal(s.ptr, in + 2);
}

/* ----------------------------------------------------------- kiln_der_check */

/* depth nested SEQUENCEs around an INTEGER. */
static void nested(kiln_buf *out, unsigned depth)
{
	kiln_buf a, b;

	kiln_buf_init(&a, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_der_write(&a, KILN_DER_INTEGER, kiln_slice_of("\x01", 1)));
	for (unsigned i = 0; i < depth; i++) {
		kiln_buf_reset(&b);
		KT_OK(kiln_der_write(&b, KILN_DER_SEQUENCE, kiln_buf_view(&a)));
		kiln_buf_reset(&a);
		KT_OK(kiln_buf_append_slice(&a, kiln_buf_view(&b)));
	}
	KT_OK(kiln_buf_append_slice(out, kiln_buf_view(&a)));
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
}

static void test_check_nested_valid(void **state)
{
	static const uint8_t in[] = { 0x30, 0x0b, 0x30, 0x04, 0x02, 0x02, 0x01, 0x00,
				      0xa0, 0x03, 0x04, 0x01, 0xff };
	static const uint8_t prim[] = { 0x04, 0x03, 0xff, 0xff, 0xff };

	(void)state;
	KT_OK(kiln_der_check(kiln_slice_of(in, sizeof(in))));
	/* primitive contents are not parsed as TLVs */
	KT_OK(kiln_der_check(kiln_slice_of(prim, sizeof(prim))));
	KT_OK(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x00 }, 2)));
}

static void test_check_depth(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	nested(&b, KILN_DER_MAX_DEPTH);
	KT_OK(kiln_der_check(kiln_buf_view(&b)));
	kiln_buf_reset(&b);
	nested(&b, KILN_DER_MAX_DEPTH + 1);
	KT_ERR(kiln_der_check(kiln_buf_view(&b)), KILN_ERR_MALFORMED);
	/* very deep input is refused without recursing all the way */
	kiln_buf_reset(&b);
	nested(&b, 5000);
	KT_ERR(kiln_der_check(kiln_buf_view(&b)), KILN_ERR_MALFORMED);
	kiln_buf_cleanup(&b);
}

static void test_check_trailing_refused(void **state)
{
	kiln_buf b;

	(void)state;
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x00, 0x00 }, 3)),
	       KILN_ERR_MALFORMED);
	/* two complete TLVs are not one */
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x00, 0x30, 0x00 }, 4)),
	       KILN_ERR_MALFORMED);
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	nested(&b, 3);
	KT_OK(kiln_buf_append_u8(&b, 0));
	KT_ERR(kiln_der_check(kiln_buf_view(&b)), KILN_ERR_MALFORMED);
	kiln_buf_cleanup(&b);
}

static void test_check_inner_errors(void **state)
{
	(void)state;
	/* inner length runs past its parent */
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x03, 0x02, 0x05, 0x00 }, 5)),
	       KILN_ERR_TRUNCATED);
	/* inner indefinite length */
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x04, 0x30, 0x80, 0x00, 0x00 },
					    6)),
	       KILN_ERR_MALFORMED);
	/* inner multi-byte tag inside a context-specific constructed value */
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0xa0, 0x03, 0x1f, 0x01, 0x00 }, 5)),
	       KILN_ERR_MALFORMED);
	/* a stray byte inside a SEQUENCE */
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30, 0x03, 0x05, 0x00, 0x05 }, 5)),
	       KILN_ERR_TRUNCATED);
	/* empty input and a header alone */
	KT_ERR(kiln_der_check(kiln_slice_of(NULL, 0)), KILN_ERR_TRUNCATED);
	KT_ERR(kiln_der_check(kiln_slice_of((const uint8_t[]){ 0x30 }, 1)), KILN_ERR_TRUNCATED);
}

/* ----------------------------------------------------------- kiln_der_write */

static void test_write_lengths_round_trip(void **state)
{
	static const struct {
		size_t len;
		uint8_t hdr[5];
		size_t hlen;
	} cases[] = {
		{ 0, { 0x04, 0x00 }, 2 },
		{ 1, { 0x04, 0x01 }, 2 },
		{ 127, { 0x04, 0x7f }, 2 },
		{ 128, { 0x04, 0x81, 0x80 }, 3 },
		{ 255, { 0x04, 0x81, 0xff }, 3 },
		{ 256, { 0x04, 0x82, 0x01, 0x00 }, 4 },
		{ 65535, { 0x04, 0x82, 0xff, 0xff }, 4 },
		{ 65536, { 0x04, 0x83, 0x01, 0x00, 0x00 }, 5 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *content = malloc(cases[i].len + 1);
		kiln_buf b;
		kiln_cursor c;
		kiln_slice s;
		uint8_t tag;

		assert_non_null(content);
		for (size_t j = 0; j < cases[i].len; j++)
			content[j] = (uint8_t)(j * 13);
		kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_der_write(&b, KILN_DER_OCTET_STRING, kiln_slice_of(content, cases[i].len)));
		assert_int_equal(b.len, cases[i].hlen + cases[i].len);
		assert_memory_equal(b.ptr, cases[i].hdr, cases[i].hlen);
		kiln_cursor_init(&c, kiln_buf_view(&b));
		KT_OK(kiln_der_read(&c, &tag, &s));
		assert_int_equal(tag, KILN_DER_OCTET_STRING);
		assert_int_equal(s.len, cases[i].len);
		if (cases[i].len > 0)
			assert_memory_equal(s.ptr, content, cases[i].len);
		KT_OK(kiln_cursor_expect_end(&c));
		KT_OK(kiln_der_check(kiln_buf_view(&b)));
		kiln_buf_cleanup(&b);
		free(content);
	}
}

static void test_write_appends_and_caps(void **state)
{
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 6);
	KT_OK(kiln_buf_append_u8(&b, 0xaa));
	KT_OK(kiln_der_write(&b, KILN_DER_INTEGER, kiln_slice_of("\x01\x02", 2)));
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.ptr, "\xaa\x02\x02\x01\x02", 5);
	/* does not fit: nothing at all is written (no dangling header) */
	KT_ERR(kiln_der_write(&b, KILN_DER_INTEGER, kiln_slice_of("\x01", 1)), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 5);
	KT_ERR(kiln_der_write(&b, 0x05, kiln_slice_of(NULL, 0)), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 5);
	/* an empty TLV that fits */
	kiln_buf_cleanup(&b);
	kiln_buf_init(&b, 2);
	KT_OK(kiln_der_write(&b, 0x05, kiln_slice_of(NULL, 0)));
	assert_memory_equal(b.ptr, "\x05\x00", 2);
	kiln_buf_cleanup(&b);
}

/* kiln_der_wrap makes of appended bytes what kiln_der_write makes of them, in place. */
static void test_wrap_matches_write(void **state)
{
	static const size_t lens[] = { 0, 1, 127, 128, 255, 256, 65535, 65536 };
	kiln_buf a, b;

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *content = malloc(lens[i] + 1);

		assert_non_null(content);
		for (size_t j = 0; j < lens[i]; j++)
			content[j] = (uint8_t)(j * 7 + 1);
		kiln_buf_init(&a, KILN_BUF_DEFAULT_MAX);
		kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_buf_append(&a, "ab", 2));
		KT_OK(kiln_buf_append(&a, content, lens[i]));
		KT_OK(kiln_der_wrap(&a, 2, KILN_DER_SEQUENCE));
		KT_OK(kiln_buf_append(&b, "ab", 2));
		KT_OK(kiln_der_write(&b, KILN_DER_SEQUENCE, kiln_slice_of(content, lens[i])));
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.ptr, b.ptr, b.len);
		assert_int_equal(a.ptr[a.len], 0);
		kiln_buf_cleanup(&a);
		kiln_buf_cleanup(&b);
		free(content);
	}
	/* nested, inside out: SEQUENCE { SEQUENCE { INTEGER 5 } } */
	kiln_buf_init(&a, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_der_write(&a, KILN_DER_INTEGER, kiln_slice_of("\x05", 1)));
	KT_OK(kiln_der_wrap(&a, 0, KILN_DER_SEQUENCE));
	KT_OK(kiln_der_wrap(&a, 0, KILN_DER_SEQUENCE));
	assert_int_equal(a.len, 7);
	assert_memory_equal(a.ptr, "\x30\x05\x30\x03\x02\x01\x05", 7);
	KT_OK(kiln_der_check(kiln_buf_view(&a)));
	/* a start past the end, or a header that does not fit, changes nothing */
	KT_ERR(kiln_der_wrap(&a, 8, KILN_DER_SEQUENCE), KILN_ERR_ARG);
	assert_int_equal(a.len, 7);
	kiln_buf_cleanup(&a);
	kiln_buf_init(&a, 3);
	KT_OK(kiln_buf_append(&a, "xyz", 3));
	KT_ERR(kiln_der_wrap(&a, 0, KILN_DER_SEQUENCE), KILN_ERR_TOO_BIG);
	assert_int_equal(a.len, 3);
	assert_memory_equal(a.ptr, "xyz", 3);
	kiln_buf_cleanup(&a);
}

/* ---------------------------------------------------- kiln_ecdsa_raw_to_der */

/* The DER OpenSSL produces for r, s given as big-endian bytes. */
static void reference_der(const uint8_t *r, const uint8_t *s, size_t n, kiln_buf *out)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *br = BN_bin2bn(r, (int)n, NULL), *bs = BN_bin2bn(s, (int)n, NULL);
	unsigned char *der = NULL;
	int len;

	assert_non_null(sig);
	assert_non_null(br);
	assert_non_null(bs);
	assert_int_equal(ECDSA_SIG_set0(sig, br, bs), 1);
	len = i2d_ECDSA_SIG(sig, &der);
	assert_true(len > 0);
	KT_OK(kiln_buf_append(out, der, (size_t)len));
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
}

static void check_raw(kiln_alg alg, const uint8_t *r, const uint8_t *s)
{
	size_t n = kiln_alg_get(alg)->ec_coord_len;
	uint8_t raw[96];
	kiln_buf got, want;

	memcpy(raw, r, n);
	memcpy(raw + n, s, n);
	kiln_buf_init(&got, 4096);
	kiln_buf_init(&want, 4096);
	KT_OK(kiln_ecdsa_raw_to_der(alg, kiln_slice_of(raw, 2 * n), &got));
	reference_der(r, s, n, &want);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.ptr, want.ptr, want.len);
	assert_true(got.len <= kiln_alg_get(alg)->max_sig_len);
	KT_OK(kiln_der_check(kiln_buf_view(&got)));
	kiln_buf_cleanup(&got);
	kiln_buf_cleanup(&want);
}

static void test_ecdsa_known_small_values(void **state)
{
	uint8_t raw[64];
	kiln_buf b;
	/* r = 1, s = 0x80: s needs a 0x00 pad to stay positive */
	static const uint8_t want[] = { 0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80 };

	(void)state;
	memset(raw, 0, sizeof(raw));
	raw[31] = 0x01;
	raw[63] = 0x80;
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 64), &b));
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.ptr, want, sizeof(want));
	kiln_buf_cleanup(&b);
}

static void test_ecdsa_leading_zero_and_high_bit(void **state)
{
	static const kiln_alg algs[] = { KILN_ALG_P256, KILN_ALG_P384 };

	(void)state;
	for (size_t a = 0; a < 2; a++) {
		size_t n = kiln_alg_get(algs[a])->ec_coord_len;
		uint8_t r[48], s[48];

		/* both high bit: padded, the longest encoding */
		memset(r, 0xff, n);
		memset(s, 0x80, n);
		check_raw(algs[a], r, s);
		/* leading zero bytes: stripped */
		memset(r, 0, n);
		r[n - 1] = 0x42;
		memset(s, 0, 3);
		memset(s + 3, 0x11, n - 3);
		check_raw(algs[a], r, s);
		/* leading zero byte followed by a high bit: the zero stays as the pad */
		memset(r, 0, n);
		memset(r + 1, 0x90, n - 1);
		memset(s, 0x7f, n);
		check_raw(algs[a], r, s);
		/* zero */
		memset(r, 0, n);
		memset(s, 0, n);
		check_raw(algs[a], r, s);
	}
}

/* A real signature: OpenSSL's DER, taken apart into r || s, comes back identical and verifies. */
static void test_ecdsa_real_signature(void **state)
{
	static const struct {
		const char *curve;
		kiln_alg alg;
		const char *md;
	} cases[] = { { "P-256", KILN_ALG_P256, "SHA256" }, { "P-384", KILN_ALG_P384, "SHA384" } };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", cases[i].curve);
		size_t n = kiln_alg_get(cases[i].alg)->ec_coord_len;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		uint8_t der[128], raw[96];
		size_t dlen = sizeof(der);
		const unsigned char *p = der;
		ECDSA_SIG *sig;
		kiln_buf b;

		assert_non_null(k);
		assert_non_null(ctx);
		for (int round = 0; round < 16; round++) {
			dlen = sizeof(der);
			assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, cases[i].md, NULL, NULL, k,
							       NULL),
					 1);
			assert_int_equal(EVP_DigestSign(ctx, der, &dlen, (const uint8_t *)"tbs", 3), 1);
			p = der;
			sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
			assert_non_null(sig);
			assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int)n), (int)n);
			assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + n, (int)n), (int)n);
			ECDSA_SIG_free(sig);
			kiln_buf_init(&b, 4096);
			KT_OK(kiln_ecdsa_raw_to_der(cases[i].alg, kiln_slice_of(raw, 2 * n), &b));
			assert_int_equal(b.len, dlen);
			assert_memory_equal(b.ptr, der, dlen);
			assert_int_equal(EVP_DigestVerifyInit_ex(ctx, NULL, cases[i].md, NULL, NULL, k,
								 NULL),
					 1);
			assert_int_equal(EVP_DigestVerify(ctx, b.ptr, b.len, (const uint8_t *)"tbs", 3),
					 1);
			kiln_buf_cleanup(&b);
		}
		EVP_MD_CTX_free(ctx);
		EVP_PKEY_free(k);
	}
}

static void test_ecdsa_errors(void **state)
{
	uint8_t raw[97];
	kiln_buf b;

	(void)state;
	memset(raw, 0x11, sizeof(raw));
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_buf_append_str(&b, "keep"));
	/* wrong lengths */
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 63), &b), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 65), &b), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 96), &b), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P384, kiln_slice_of(raw, 64), &b), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P384, kiln_slice_of(raw, 97), &b), KILN_ERR_MALFORMED);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(NULL, 0), &b), KILN_ERR_MALFORMED);
	/* not ECDSA algorithms */
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_ED25519, kiln_slice_of(raw, 64), &b), KILN_ERR_ARG);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_RSA3072, kiln_slice_of(raw, 64), &b), KILN_ERR_ARG);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_NONE, kiln_slice_of(raw, 64), &b), KILN_ERR_ARG);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG__COUNT, kiln_slice_of(raw, 64), &b), KILN_ERR_ARG);
	assert_string_equal(kiln_buf_cstr(&b), "keep");
	/* success appends */
	KT_OK(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 64), &b));
	assert_memory_equal(b.ptr, "keep", 4);
	assert_int_equal(b.ptr[4], 0x30);
	kiln_buf_cleanup(&b);
	/* output cap */
	kiln_buf_init(&b, 10);
	KT_ERR(kiln_ecdsa_raw_to_der(KILN_ALG_P256, kiln_slice_of(raw, 64), &b), KILN_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_short_form),
		cmocka_unit_test(test_read_sequence_of_tlvs),
		cmocka_unit_test(test_read_long_form),
		cmocka_unit_test(test_read_non_minimal_refused),
		cmocka_unit_test(test_read_indefinite_and_huge_refused),
		cmocka_unit_test(test_read_multibyte_tag_refused),
		cmocka_unit_test(test_read_truncated),
		cmocka_unit_test(test_read_failure_keeps_position),
		cmocka_unit_test(test_check_nested_valid),
		cmocka_unit_test(test_check_depth),
		cmocka_unit_test(test_check_trailing_refused),
		cmocka_unit_test(test_check_inner_errors),
		cmocka_unit_test(test_wrap_matches_write),
		cmocka_unit_test(test_write_lengths_round_trip),
		cmocka_unit_test(test_write_appends_and_caps),
		cmocka_unit_test(test_ecdsa_known_small_values),
		cmocka_unit_test(test_ecdsa_leading_zero_and_high_bit),
		cmocka_unit_test(test_ecdsa_real_signature),
		cmocka_unit_test(test_ecdsa_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
