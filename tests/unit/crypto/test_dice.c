/*
 * Unit tests for src/crypto/dice.c: the DiceTcbInfo codec (round trips of
 * every field, exact encodings, and every way untrusted DER can be wrong),
 * finding the extension in a certificate, and the binding message layout.
 */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- helpers */

static void assert_one_line(const kiln_diag *d, const char *needle)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
	if (needle != NULL && strstr(d->text, needle) == NULL)
		fail_msg("diag \"%s\" does not mention \"%s\"", d->text, needle);
}

/* Parses DER that must fail with err and a diag mentioning needle. */
static void expect_bad(const uint8_t *der, size_t len, kiln_err err, const char *needle)
{
	struct kiln_dice_tcb_info t;
	kiln_diag d;

	kiln_diag_clear(&d);
	memset(&t, 0xa5, sizeof(t));
	KT_ERR(kiln_dice_tcb_info_parse(kiln_slice_of(der, len), &t, &d), err);
	assert_int_equal(d.code, err);
	assert_one_line(&d, needle);
	/* Failure leaves *out zeroed, never half-filled. */
	assert_string_equal(t.vendor, "");
	assert_int_equal(t.n_fwids, 0);
	assert_false(t.has_layer);
}

/* Wraps body (a field list) in a SEQUENCE and parses it: must fail with MALFORMED. */
static void expect_bad_body(const uint8_t *body, size_t len, const char *needle)
{
	kiln_buf b;

	kiln_buf_init(&b, 1 << 20);
	KT_OK(kiln_der_write(&b, KILN_DER_SEQUENCE, kiln_slice_of(body, len)));
	expect_bad(b.ptr, b.len, KILN_ERR_MALFORMED, needle);
	kiln_buf_cleanup(&b);
}

static void parse_body_ok(const uint8_t *body, size_t len, struct kiln_dice_tcb_info *out)
{
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&b, 1 << 20);
	KT_OK(kiln_der_write(&b, KILN_DER_SEQUENCE, kiln_slice_of(body, len)));
	KT_OK(kiln_dice_tcb_info_parse(kiln_buf_view(&b), out, &d));
	assert_int_equal(d.code, KILN_OK);
	kiln_buf_cleanup(&b);
}

static void add_fwid(struct kiln_dice_tcb_info *t, int nid, size_t len, uint8_t fill)
{
	struct kiln_dice_fwid *f = &t->fwids[t->n_fwids++];

	f->hash_nid = nid;
	f->len = len;
	memset(f->digest, fill, len);
}

/* Every field set to something that round-trips. */
static void full_info(struct kiln_dice_tcb_info *t)
{
	memset(t, 0, sizeof(*t));
	KT_OK(kiln_strlcpy(t->vendor, "kiln-sim", sizeof(t->vendor)));
	KT_OK(kiln_strlcpy(t->model, "widget \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92", sizeof(t->model)));
	KT_OK(kiln_strlcpy(t->version, "1.0.0-rc1", sizeof(t->version)));
	t->has_svn = true;
	t->svn = 7;
	t->has_layer = true;
	t->layer = 1;
	t->has_index = true;
	t->index = 0x80;
	add_fwid(t, NID_sha256, 32, 0x11);
	add_fwid(t, NID_sha384, 48, 0x22);
	add_fwid(t, NID_sha512, 64, 0x33);
	t->has_flags = true;
	t->flags = (1u << 0) | (1u << 3) | (1u << 17);
	t->has_vendor_info = true;
	t->vendor_info_len = 5;
	memcpy(t->vendor_info, "\x00\x01\x02\xfe\xff", 5);
	t->has_type = true;
	t->type_len = 3;
	memcpy(t->type, "abc", 3);
}

static void round_trip(const struct kiln_dice_tcb_info *in)
{
	struct kiln_dice_tcb_info out;
	kiln_buf der;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KT_OK(kiln_dice_tcb_info_encode(in, &der));
	KT_OK(kiln_der_check(kiln_buf_view(&der)));
	KT_OK(kiln_dice_tcb_info_parse(kiln_buf_view(&der), &out, &d));
	assert_memory_equal(&out, in, sizeof(out));
	kiln_buf_cleanup(&der);
}

/* ----------------------------------------------------------- round trips */

static void test_round_trip_full(void **state)
{
	struct kiln_dice_tcb_info t;
	const char *seeds = getenv("KILN_FUZZ_SEEDS_OUT");

	(void)state;
	full_info(&t);
	round_trip(&t);
	/* With KILN_FUZZ_SEEDS_OUT=DIR: every field, as a seed for fuzz/corpus/evidence. */
	if (seeds != NULL && *seeds != '\0') {
		char *path = kt_path(seeds, "tcbinfo-full.der");
		kiln_buf der;

		kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
		KT_OK(kiln_dice_tcb_info_encode(&t, &der));
		kt_write_file(path, der.ptr, der.len);
		kiln_buf_cleanup(&der);
		free(path);
	}
}

static void test_round_trip_each_field_alone(void **state)
{
	struct kiln_dice_tcb_info full, one;

	(void)state;
	full_info(&full);
	for (unsigned field = 0; field < 10; field++) {
		memset(&one, 0, sizeof(one));
		switch (field) {
		case 0:
			memcpy(one.vendor, full.vendor, sizeof(one.vendor));
			break;
		case 1:
			memcpy(one.model, full.model, sizeof(one.model));
			break;
		case 2:
			memcpy(one.version, full.version, sizeof(one.version));
			break;
		case 3:
			one.has_svn = true;
			one.svn = full.svn;
			break;
		case 4:
			one.has_layer = true;
			one.layer = full.layer;
			break;
		case 5:
			one.has_index = true;
			one.index = full.index;
			break;
		case 6:
			add_fwid(&one, NID_sha256, 32, 0x44);
			break;
		case 7:
			one.has_flags = true;
			one.flags = full.flags;
			break;
		case 8:
			one.has_vendor_info = true;
			one.vendor_info_len = full.vendor_info_len;
			memcpy(one.vendor_info, full.vendor_info, full.vendor_info_len);
			break;
		default:
			one.has_type = true;
			one.type_len = full.type_len;
			memcpy(one.type, full.type, full.type_len);
			break;
		}
		round_trip(&one);
	}
}

static void test_empty_and_limits_round_trip(void **state)
{
	struct kiln_dice_tcb_info t;
	static const uint64_t ints[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fffffff, 0x80000000,
					 UINT64_MAX >> 1, (UINT64_MAX >> 1) + 1, UINT64_MAX };

	(void)state;
	memset(&t, 0, sizeof(t));
	round_trip(&t);
	/* 63-byte strings, 64-byte opaque fields, four FWIDs: the caps, inclusive. */
	memset(t.vendor, 'v', KILN_DICE_STR_MAX - 1);
	memset(t.model, 'm', KILN_DICE_STR_MAX - 1);
	memset(t.version, 'x', KILN_DICE_STR_MAX - 1);
	t.has_vendor_info = t.has_type = true;
	t.vendor_info_len = t.type_len = KILN_DICE_STR_MAX;
	memset(t.vendor_info, 0xee, KILN_DICE_STR_MAX);
	memset(t.type, 0xdd, KILN_DICE_STR_MAX);
	for (int i = 0; i < KILN_DICE_MAX_FWIDS; i++)
		add_fwid(&t, NID_sha512, 64, (uint8_t)i);
	round_trip(&t);
	/* Empty opaque fields and zero flags are present, not absent. */
	memset(&t, 0, sizeof(t));
	t.has_flags = t.has_vendor_info = t.has_type = true;
	round_trip(&t);
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.has_svn = t.has_layer = t.has_index = true;
		t.svn = t.layer = t.index = ints[i];
		round_trip(&t);
	}
	for (unsigned bit = 0; bit < 32; bit++) {
		memset(&t, 0, sizeof(t));
		t.has_flags = true;
		t.flags = 1u << bit;
		round_trip(&t);
		t.flags = 0xffffffffu >> bit;
		round_trip(&t);
	}
}

/* The encoding, byte for byte, of what the simulator writes. */
static void test_exact_encoding(void **state)
{
	static const uint8_t want_head[] = {
		0x30, 0x4d,                                          /* DiceTcbInfo */
		0x80, 0x08, 'k', 'i', 'l', 'n', '-', 's', 'i', 'm',  /* vendor */
		0x81, 0x06, 'w', 'i', 'd', 'g', 'e', 't',            /* model */
		0x82, 0x05, '1', '.', '0', '.', '0',                 /* version */
		0x84, 0x01, 0x01,                                    /* layer 1 */
		0xa6, 0x2f, 0x30, 0x2d,                              /* fwids: one FWID */
		0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, /* sha256 */
		0x04, 0x20,                                          /* digest */
	};
	struct kiln_dice_tcb_info t;
	kiln_buf der;

	(void)state;
	memset(&t, 0, sizeof(t));
	KT_OK(kiln_strlcpy(t.vendor, "kiln-sim", sizeof(t.vendor)));
	KT_OK(kiln_strlcpy(t.model, "widget", sizeof(t.model)));
	KT_OK(kiln_strlcpy(t.version, "1.0.0", sizeof(t.version)));
	t.has_layer = true;
	t.layer = 1;
	add_fwid(&t, NID_sha256, 32, 0xab);
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KT_OK(kiln_dice_tcb_info_encode(&t, &der));
	assert_int_equal(der.len, sizeof(want_head) + 32);
	assert_memory_equal(der.ptr, want_head, sizeof(want_head));
	for (size_t i = sizeof(want_head); i < der.len; i++)
		assert_int_equal(der.ptr[i], 0xab);
	kiln_buf_cleanup(&der);
}

static void test_exact_integer_and_flag_encodings(void **state)
{
	static const struct {
		uint64_t v;
		uint8_t der[12];
		size_t len;
	} ints[] = {
		{ 0, { 0x30, 0x03, 0x83, 0x01, 0x00 }, 5 },
		{ 0x7f, { 0x30, 0x03, 0x83, 0x01, 0x7f }, 5 },
		{ 0x80, { 0x30, 0x04, 0x83, 0x02, 0x00, 0x80 }, 6 },
		{ 0x100, { 0x30, 0x04, 0x83, 0x02, 0x01, 0x00 }, 6 },
		{ UINT64_MAX, { 0x30, 0x0b, 0x83, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, }, 13 },
	};
	static const struct {
		uint32_t flags;
		uint8_t der[9];
		size_t len;
	} flags[] = {
		{ 0, { 0x30, 0x03, 0x87, 0x01, 0x00 }, 5 },
		{ 1u << 0, { 0x30, 0x04, 0x87, 0x02, 0x07, 0x80 }, 6 },        /* notConfigured */
		{ 1u << 3, { 0x30, 0x04, 0x87, 0x02, 0x04, 0x10 }, 6 }, /* debug */
		{ 1u << 8, { 0x30, 0x05, 0x87, 0x03, 0x07, 0x00, 0x80 }, 7 },
		{ 1u << 31, { 0x30, 0x07, 0x87, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01 }, 9 },
	};
	struct kiln_dice_tcb_info t;
	kiln_buf der;

	(void)state;
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.has_svn = true;
		t.svn = ints[i].v;
		kiln_buf_reset(&der);
		KT_OK(kiln_dice_tcb_info_encode(&t, &der));
		if (ints[i].len == 13) {
			assert_int_equal(der.len, 13);
			assert_memory_equal(der.ptr, ints[i].der, 12);
			assert_int_equal(der.ptr[12], 0xff);
		} else {
			assert_int_equal(der.len, ints[i].len);
			assert_memory_equal(der.ptr, ints[i].der, ints[i].len);
		}
	}
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		memset(&t, 0, sizeof(t));
		t.has_flags = true;
		t.flags = flags[i].flags;
		kiln_buf_reset(&der);
		KT_OK(kiln_dice_tcb_info_encode(&t, &der));
		assert_int_equal(der.len, flags[i].len);
		assert_memory_equal(der.ptr, flags[i].der, flags[i].len);
	}
	kiln_buf_cleanup(&der);
}

/* ------------------------------------------------------- lenient readings */

static void test_lenient_forms(void **state)
{
	/* A fixed 32-bit flags field (trailing zero bits kept), as some devices write it. */
	static const uint8_t fixed_flags[] = { 0x87, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00 };
	/* An empty UTF8String reads as absent. */
	static const uint8_t empty_vendor[] = { 0x80, 0x00, 0x82, 0x01, '2' };
	/* An empty fwids list is well-formed: it approves nothing. */
	static const uint8_t empty_fwids[] = { 0xa6, 0x00 };
	struct kiln_dice_tcb_info t;

	(void)state;
	parse_body_ok(fixed_flags, sizeof(fixed_flags), &t);
	assert_true(t.has_flags);
	assert_int_equal(t.flags, 1);
	parse_body_ok(empty_vendor, sizeof(empty_vendor), &t);
	assert_string_equal(t.vendor, "");
	assert_string_equal(t.version, "2");
	parse_body_ok(empty_fwids, sizeof(empty_fwids), &t);
	assert_int_equal(t.n_fwids, 0);
}

/* ------------------------------------------------------------ refusals */

static void test_truncated_every_prefix(void **state)
{
	struct kiln_dice_tcb_info t;
	kiln_buf der;

	(void)state;
	full_info(&t);
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KT_OK(kiln_dice_tcb_info_encode(&t, &der));
	for (size_t n = 0; n < der.len; n++)
		expect_bad(der.ptr, n, KILN_ERR_MALFORMED, "DiceTcbInfo");
	kiln_buf_cleanup(&der);
}

static void test_oversized_and_garbage(void **state)
{
	static const uint8_t not_seq[] = { 0x04, 0x00 };
	static const uint8_t trailing[] = { 0x30, 0x00, 0x00 };
	static const uint8_t indefinite[] = { 0x30, 0x80, 0x00, 0x00 };
	static const uint8_t long_form_small[] = { 0x30, 0x81, 0x01, 0x00 };
	static const uint8_t multibyte_tag[] = { 0x30, 0x03, 0x9f, 0x1f, 0x00 };
	static const uint8_t bad_inner_len[] = { 0x30, 0x02, 0x80, 0x05 };
	uint8_t *big = calloc(1, KILN_DICE_TCB_INFO_MAX + 1);
	uint8_t garbage[256];

	(void)state;
	assert_non_null(big);
	expect_bad(NULL, 0, KILN_ERR_MALFORMED, "empty");
	/* Over the cap: refused before anything reads it, even when well-formed. */
	big[0] = 0x30;
	big[1] = 0x82;
	big[2] = (uint8_t)((KILN_DICE_TCB_INFO_MAX - 3) >> 8);
	big[3] = (uint8_t)((KILN_DICE_TCB_INFO_MAX - 3) & 0xff);
	expect_bad(big, KILN_DICE_TCB_INFO_MAX + 1, KILN_ERR_TOO_BIG, "limit");
	free(big);
	expect_bad(not_seq, sizeof(not_seq), KILN_ERR_MALFORMED, "SEQUENCE");
	expect_bad(trailing, sizeof(trailing), KILN_ERR_MALFORMED, "after");
	expect_bad(indefinite, sizeof(indefinite), KILN_ERR_MALFORMED, "SEQUENCE");
	expect_bad(long_form_small, sizeof(long_form_small), KILN_ERR_MALFORMED, "SEQUENCE");
	expect_bad(multibyte_tag, sizeof(multibyte_tag), KILN_ERR_MALFORMED, "DER");
	expect_bad(bad_inner_len, sizeof(bad_inner_len), KILN_ERR_MALFORMED, "DER");
	/* Deterministic garbage: never accepted as a SEQUENCE by accident (first byte forced). */
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 131 + 7);
	garbage[0] = 0x31;
	expect_bad(garbage, sizeof(garbage), KILN_ERR_MALFORMED, "DiceTcbInfo");
}

static void test_wrong_tags(void **state)
{
	static const uint8_t universal_utf8[] = { 0x0c, 0x01, 'a' };
	static const uint8_t fwids_primitive[] = { 0x86, 0x00 };
	static const uint8_t model_constructed[] = { 0xa1, 0x00 };
	static const uint8_t tag10[] = { 0x8a, 0x00 };
	static const uint8_t application[] = { 0x40, 0x00 };
	static const uint8_t out_of_order[] = { 0x82, 0x01, '1', 0x80, 0x01, 'v' };
	static const uint8_t repeated[] = { 0x84, 0x01, 0x01, 0x84, 0x01, 0x02 };
	static const uint8_t fwid_not_seq[] = { 0xa6, 0x02, 0x04, 0x00 };
	static const uint8_t fwid_oid_tag[] = {
		0xa6, 0x0f, 0x30, 0x0d, 0x04, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
		0x01, 0x04, 0x00,
	};
	static const uint8_t fwid_no_digest[] = {
		0xa6, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
	};
	static const uint8_t fwid_extra[] = {
		0xa6, 0x11, 0x30, 0x0f, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
		0x01, 0x04, 0x00, 0x05, 0x00,
	};

	(void)state;
	expect_bad_body(universal_utf8, sizeof(universal_utf8), "unexpected tag 0x0c");
	expect_bad_body(fwids_primitive, sizeof(fwids_primitive), "unexpected tag 0x86");
	expect_bad_body(model_constructed, sizeof(model_constructed), "unexpected tag 0xa1");
	expect_bad_body(tag10, sizeof(tag10), "unexpected tag 0x8a");
	expect_bad_body(application, sizeof(application), "unexpected tag 0x40");
	expect_bad_body(out_of_order, sizeof(out_of_order), "vendor: repeated or out of order");
	expect_bad_body(repeated, sizeof(repeated), "layer: repeated or out of order");
	expect_bad_body(fwid_not_seq, sizeof(fwid_not_seq), "FWID 0 is not a DER SEQUENCE");
	expect_bad_body(fwid_oid_tag, sizeof(fwid_oid_tag), "FWID 0 is not SEQUENCE");
	expect_bad_body(fwid_no_digest, sizeof(fwid_no_digest), "FWID 0 is not SEQUENCE");
	expect_bad_body(fwid_extra, sizeof(fwid_extra), "FWID 0 is not SEQUENCE");
}

/* A fwids field of n SHA-256 FWIDs with digests of len bytes (oid_last: 1 sha256, 2 sha384...). */
static void fwids_body(size_t n, uint8_t oid_last, size_t len, kiln_buf *out)
{
	kiln_buf list, one;
	uint8_t oid[9] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x00 };
	uint8_t digest[80];

	oid[8] = oid_last;
	memset(digest, 0x5a, sizeof(digest));
	kiln_buf_init(&list, 1 << 16);
	kiln_buf_init(&one, 1 << 16);
	for (size_t i = 0; i < n; i++) {
		kiln_buf_reset(&one);
		KT_OK(kiln_der_write(&one, 0x06, kiln_slice_of(oid, sizeof(oid))));
		KT_OK(kiln_der_write(&one, KILN_DER_OCTET_STRING, kiln_slice_of(digest, len)));
		KT_OK(kiln_der_write(&list, KILN_DER_SEQUENCE, kiln_buf_view(&one)));
	}
	KT_OK(kiln_der_write(out, 0xa6, kiln_buf_view(&list)));
	kiln_buf_cleanup(&list);
	kiln_buf_cleanup(&one);
}

static void test_fwid_count_and_digest_lengths(void **state)
{
	static const uint8_t sha1_fwid[] = {
		0xa6, 0x0b, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x04, 0x00,
	};
	struct kiln_dice_tcb_info t;
	kiln_buf b;

	(void)state;
	kiln_buf_init(&b, 1 << 16);
	fwids_body(KILN_DICE_MAX_FWIDS, 1, 32, &b);
	parse_body_ok(b.ptr, b.len, &t);
	assert_int_equal(t.n_fwids, KILN_DICE_MAX_FWIDS);
	assert_int_equal(t.fwids[3].hash_nid, NID_sha256);
	assert_int_equal(t.fwids[3].len, 32);
	kiln_buf_reset(&b);
	fwids_body(KILN_DICE_MAX_FWIDS + 1, 1, 32, &b);
	expect_bad_body(b.ptr, b.len, "more than 4 FWIDs");
	/* The digest length must be the hash's. */
	kiln_buf_reset(&b);
	fwids_body(1, 1, 31, &b);
	expect_bad_body(b.ptr, b.len, "FWID 0 has a 31-byte digest; SHA-256 needs 32");
	kiln_buf_reset(&b);
	fwids_body(1, 1, 33, &b);
	expect_bad_body(b.ptr, b.len, "SHA-256 needs 32");
	kiln_buf_reset(&b);
	fwids_body(1, 2, 32, &b);
	expect_bad_body(b.ptr, b.len, "SHA-384 needs 48");
	kiln_buf_reset(&b);
	fwids_body(1, 3, 48, &b);
	expect_bad_body(b.ptr, b.len, "SHA-512 needs 64");
	kiln_buf_reset(&b);
	fwids_body(1, 2, 48, &b);
	parse_body_ok(b.ptr, b.len, &t);
	assert_int_equal(t.fwids[0].hash_nid, NID_sha384);
	/* SHA-1, or an OID of the right arc but unknown (sha224 is .4): refused. */
	expect_bad_body(sha1_fwid, sizeof(sha1_fwid), "hash other than");
	kiln_buf_reset(&b);
	fwids_body(1, 4, 28, &b);
	expect_bad_body(b.ptr, b.len, "hash other than");
	kiln_buf_cleanup(&b);
}

static void test_bad_strings(void **state)
{
	static const struct {
		uint8_t body[8];
		size_t len;
	} bad[] = {
		{ { 0x80, 0x02, 'a', 0x00 }, 4 },               /* NUL */
		{ { 0x80, 0x02, 'a', '\n' }, 4 },               /* control */
		{ { 0x81, 0x01, 0x7f }, 3 },                    /* DEL */
		{ { 0x81, 0x02, 0xc0, 0x80 }, 4 },              /* overlong NUL */
		{ { 0x81, 0x01, 0x80 }, 3 },                    /* lone continuation */
		{ { 0x82, 0x03, 0xed, 0xa0, 0x80 }, 5 },        /* surrogate */
		{ { 0x82, 0x02, 0xe2, 0x82 }, 4 },              /* cut sequence */
		{ { 0x82, 0x04, 0xf4, 0x90, 0x80, 0x80 }, 6 },  /* past U+10FFFF */
		{ { 0x82, 0x01, 0xff }, 3 },                    /* never valid */
	};
	uint8_t long_str[2 + KILN_DICE_STR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_body(bad[i].body, bad[i].len, "not printable UTF-8 text");
	long_str[0] = 0x81;
	long_str[1] = KILN_DICE_STR_MAX;
	memset(long_str + 2, 'a', KILN_DICE_STR_MAX);
	expect_bad_body(long_str, sizeof(long_str), "model: longer than 63 bytes");
	long_str[0] = 0x88; /* vendorInfo: 64 bytes fit */
	{
		struct kiln_dice_tcb_info t;

		parse_body_ok(long_str, sizeof(long_str), &t);
		assert_int_equal(t.vendor_info_len, KILN_DICE_STR_MAX);
	}
}

static void test_bad_integers_flags_octets(void **state)
{
	static const struct {
		uint8_t body[14];
		size_t len;
		const char *needle;
	} bad[] = {
		{ { 0x83, 0x00 }, 2, "svn: empty INTEGER" },
		{ { 0x83, 0x01, 0x80 }, 3, "svn: negative" },
		{ { 0x84, 0x02, 0xff, 0x7f }, 4, "layer: negative" },
		{ { 0x85, 0x02, 0x00, 0x01 }, 4, "index: INTEGER not minimally encoded" },
		{ { 0x83, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0 }, 11, "svn: larger than 64 bits" },
		{ { 0x83, 0x0a, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0 }, 12, "svn: larger than 64 bits" },
		{ { 0x87, 0x00 }, 2, "flags: empty BIT STRING" },
		{ { 0x87, 0x01, 0x01 }, 3, "flags: invalid unused-bits count" },
		{ { 0x87, 0x02, 0x08, 0x80 }, 4, "flags: invalid unused-bits count" },
		{ { 0x87, 0x02, 0x07, 0x81 }, 4, "flags: unused bits are not zero" },
		{ { 0x87, 0x06, 0x00, 0, 0, 0, 0, 0x80 }, 8, "flags: more than 32 bits" },
	};
	uint8_t long_octets[3 + KILN_DICE_STR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_body(bad[i].body, bad[i].len, bad[i].needle);
	long_octets[0] = 0x89;
	long_octets[1] = KILN_DICE_STR_MAX + 1;
	memset(long_octets + 2, 0, KILN_DICE_STR_MAX + 1);
	expect_bad_body(long_octets, sizeof(long_octets), "type: longer than 64 bytes");
}

static void test_encode_refuses_bad_input(void **state)
{
	struct kiln_dice_tcb_info t;
	kiln_buf der;

	(void)state;
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KT_ERR(kiln_dice_tcb_info_encode(NULL, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < KILN_DICE_MAX_FWIDS; i++)
		add_fwid(&t, NID_sha256, 32, 1);
	t.n_fwids = KILN_DICE_MAX_FWIDS + 1;
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	add_fwid(&t, NID_sha256, 48, 1);
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	add_fwid(&t, NID_sha1, 20, 1);
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	memset(t.vendor, 'a', sizeof(t.vendor)); /* no NUL */
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	t.model[0] = '\t';
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	memset(&t, 0, sizeof(t));
	t.has_type = true;
	t.type_len = KILN_DICE_STR_MAX + 1;
	KT_ERR(kiln_dice_tcb_info_encode(&t, &der), KILN_ERR_ARG);
	/* Nothing was appended by the refusals. */
	assert_int_equal(der.len, 0);
	kiln_buf_cleanup(&der);
}

/* ------------------------------------------------------ in a certificate */

static X509 *cert_with(const uint8_t *const *exts, const size_t *lens, size_t n)
{
	EVP_PKEY *key = kt_key("p256");
	X509 *x = X509_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);

	assert_non_null(x);
	assert_non_null(oid);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	for (size_t i = 0; i < n; i++) {
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		X509_EXTENSION *e;

		assert_int_equal(ASN1_OCTET_STRING_set(v, exts[i], (int)lens[i]), 1);
		e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, v);
		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(v);
	}
	ASN1_OBJECT_free(oid);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static void test_tcb_info_of_cert(void **state)
{
	struct kiln_dice_tcb_info in, out;
	static const uint8_t garbage[] = { 0x04, 0x00 };
	const uint8_t *exts[2];
	size_t lens[2];
	kiln_buf der;
	kiln_diag d;
	X509 *x;

	(void)state;
	full_info(&in);
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KT_OK(kiln_dice_tcb_info_encode(&in, &der));
	/* No extension: NOT_FOUND, so callers can tell it from a broken one. */
	x = cert_with(NULL, NULL, 0);
	kiln_diag_clear(&d);
	KT_ERR(kiln_dice_tcb_info_of(x, &out, &d), KILN_ERR_NOT_FOUND);
	assert_one_line(&d, "no DiceTcbInfo");
	X509_free(x);
	/* One extension: parsed. */
	exts[0] = der.ptr;
	lens[0] = der.len;
	x = cert_with(exts, lens, 1);
	kiln_diag_clear(&d);
	KT_OK(kiln_dice_tcb_info_of(x, &out, &d));
	assert_memory_equal(&out, &in, sizeof(in));
	X509_free(x);
	/* Two: ambiguous, refused. */
	exts[1] = der.ptr;
	lens[1] = der.len;
	x = cert_with(exts, lens, 2);
	kiln_diag_clear(&d);
	KT_ERR(kiln_dice_tcb_info_of(x, &out, &d), KILN_ERR_MALFORMED);
	assert_one_line(&d, "more than one");
	X509_free(x);
	/* A broken value: the parser's refusal. */
	exts[0] = garbage;
	lens[0] = sizeof(garbage);
	x = cert_with(exts, lens, 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_dice_tcb_info_of(x, &out, &d), KILN_ERR_MALFORMED);
	assert_one_line(&d, "not a DER SEQUENCE");
	X509_free(x);
	KT_ERR(kiln_dice_tcb_info_of(NULL, &out, NULL), KILN_ERR_ARG);
	kiln_buf_cleanup(&der);
}

/* --------------------------------------------------------------- binding */

static void test_binding_layout(void **state)
{
	static const uint8_t csr[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	/* SHA-256 of csr and of "SIM-1", computed independently (Python hashlib). */
	static const char csr_hash[] =
		"b560833d6f787af46113b96aad4dd5b5d1ae00dccc69cf30cc92bed651c56617";
	static const char serial_hash[] =
		"240edc2c141bde1405355e396fe06db8b9fef3f1d345d69bbaea650d07fd4a69";
	uint8_t nonce[KILN_NONCE_LEN], out[KILN_DICE_BINDING_LEN], want[32], other[KILN_DICE_BINDING_LEN];
	size_t n = 0;

	(void)state;
	assert_int_equal(KILN_DICE_BINDING_LEN, 117);
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)i;
	memset(out, 0xcc, sizeof(out));
	KT_OK(kiln_dice_binding(nonce, kiln_slice_of(csr, sizeof(csr)), "SIM-1", out));
	assert_memory_equal(out, "KILN-DICE-BINDING-V1\0", 21);
	assert_memory_equal(out + 21, nonce, 32);
	KT_OK(kiln_hex_decode(csr_hash, want, sizeof(want), &n));
	assert_memory_equal(out + 53, want, 32);
	KT_OK(kiln_hex_decode(serial_hash, want, sizeof(want), &n));
	assert_memory_equal(out + 85, want, 32);
	/* Each input changes its own part only. */
	nonce[31] ^= 1;
	KT_OK(kiln_dice_binding(nonce, kiln_slice_of(csr, sizeof(csr)), "SIM-1", other));
	assert_memory_not_equal(other + 21, out + 21, 32);
	assert_memory_equal(other + 53, out + 53, 64);
	KT_OK(kiln_dice_binding(nonce, kiln_slice_of(csr, sizeof(csr)), "SIM-2", other));
	assert_memory_not_equal(other + 85, out + 85, 32);
	KT_OK(kiln_dice_binding(nonce, kiln_slice_of(csr, 4), "SIM-1", other));
	assert_memory_not_equal(other + 53, out + 53, 32);
	/* Refusals. */
	KT_ERR(kiln_dice_binding(NULL, kiln_slice_of(csr, sizeof(csr)), "SIM-1", out), KILN_ERR_ARG);
	KT_ERR(kiln_dice_binding(nonce, kiln_slice_of(csr, 0), "SIM-1", out), KILN_ERR_ARG);
	KT_ERR(kiln_dice_binding(nonce, kiln_slice_of(NULL, 5), "SIM-1", out), KILN_ERR_ARG);
	KT_ERR(kiln_dice_binding(nonce, kiln_slice_of(csr, sizeof(csr)), NULL, out), KILN_ERR_ARG);
}

static int group_teardown(void **state)
{
	(void)state;
	kt_keys_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_full),
		cmocka_unit_test(test_round_trip_each_field_alone),
		cmocka_unit_test(test_empty_and_limits_round_trip),
		cmocka_unit_test(test_exact_encoding),
		cmocka_unit_test(test_exact_integer_and_flag_encodings),
		cmocka_unit_test(test_lenient_forms),
		cmocka_unit_test(test_truncated_every_prefix),
		cmocka_unit_test(test_oversized_and_garbage),
		cmocka_unit_test(test_wrong_tags),
		cmocka_unit_test(test_fwid_count_and_digest_lengths),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_bad_integers_flags_octets),
		cmocka_unit_test(test_encode_refuses_bad_input),
		cmocka_unit_test(test_tcb_info_of_cert),
		cmocka_unit_test(test_binding_layout),
	};

	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
