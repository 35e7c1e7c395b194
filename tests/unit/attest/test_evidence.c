/*
 * Unit tests for src/attest/evidence.c: the evidence record's lifetime and
 * the strict parser of the finish request's "evidence" member. Every refusal
 * names the member it is about.
 */
#include "support/support.h"

#include "attest/attest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- helpers */

static char *b64_of(const uint8_t *p, size_t n)
{
	kiln_buf b;
	size_t len;

	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_base64_encode(kiln_slice_of(p, n), &b));
	KT_OK(kiln_buf_append_u8(&b, 0));
	return (char *)kiln_buf_take(&b, &len);
}

/* Bytes 0, 1, 2, ... (mod 251) of length n, seeded. */
static uint8_t *pattern(size_t n, uint8_t seed)
{
	uint8_t *p = malloc(n + 1);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i + seed) % 251);
	return p;
}

static json_t *parse_json(const char *text)
{
	json_t *j = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_json_parse(kiln_slice_str(text), 1 << 20, &j, &d));
	return j;
}

/* A valid evidence object with members of the given sizes (deviceid_len 0: absent). */
static json_t *evidence_json(size_t alias_len, size_t deviceid_len, size_t sig_len)
{
	uint8_t *a = pattern(alias_len, 1), *dv = pattern(deviceid_len, 2), *s = pattern(sig_len, 3);
	char *a64 = b64_of(a, alias_len), *d64 = b64_of(dv, deviceid_len), *s64 = b64_of(s, sig_len);
	json_t *j = json_pack("{s:s, s:s, s:s}", "type", "dice", "alias_cert", a64, "signature", s64);

	assert_non_null(j);
	if (deviceid_len > 0)
		assert_int_equal(json_object_set_new(j, "deviceid_cert", json_string(d64)), 0);
	free(a);
	free(dv);
	free(s);
	free(a64);
	free(d64);
	free(s64);
	return j;
}

static void expect_refused(const json_t *j, const char *needle)
{
	struct kiln_evidence ev;
	kiln_diag d;

	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_ERR(kiln_evidence_parse(j, &ev, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_int_equal(d.code, KILN_ERR_ATTEST_MALFORMED);
	assert_null(strchr(d.text, '\n'));
	if (strstr(d.text, needle) == NULL)
		fail_msg("diag \"%s\" does not mention \"%s\"", d.text, needle);
	/* Failure leaves the record as it was: empty here. */
	assert_int_equal(ev.type, KILN_ATTEST_NONE);
	assert_int_equal(ev.dice.alias_cert.len, 0);
	assert_int_equal(ev.dice.signature.len, 0);
	kiln_evidence_cleanup(&ev);
}

/* j with member key set to v (stolen). */
static void expect_member_refused(const char *key, json_t *v, const char *needle)
{
	json_t *j = evidence_json(100, 100, 70);

	assert_int_equal(json_object_set_new(j, key, v), 0);
	expect_refused(j, needle);
	json_decref(j);
}

static void digest_of(const uint8_t *a, size_t an, const uint8_t *dv, size_t dn, const uint8_t *s,
		      size_t sn, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const uint8_t *parts[3] = { a, dv, s };
	size_t lens[3] = { an, dn, sn };
	unsigned int n = 0;

	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 3; i++) {
		uint8_t be[4] = { (uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16),
				  (uint8_t)(lens[i] >> 8), (uint8_t)lens[i] };

		assert_int_equal(EVP_DigestUpdate(md, be, 4), 1);
		assert_int_equal(EVP_DigestUpdate(md, parts[i], lens[i]), 1);
	}
	assert_int_equal(EVP_DigestFinal_ex(md, out, &n), 1);
	EVP_MD_CTX_free(md);
}

/* -------------------------------------------------------------- accepted */

static void test_init_cleanup(void **state)
{
	struct kiln_evidence ev;

	(void)state;
	kiln_evidence_init(&ev);
	assert_int_equal(ev.type, KILN_ATTEST_NONE);
	assert_int_equal(ev.dice.alias_cert.max, KILN_EVIDENCE_CERT_MAX);
	assert_int_equal(ev.dice.deviceid_cert.max, KILN_EVIDENCE_CERT_MAX);
	assert_int_equal(ev.dice.signature.max, KILN_EVIDENCE_SIG_MAX);
	kiln_evidence_cleanup(&ev);
	kiln_evidence_cleanup(&ev); /* idempotent */
	kiln_evidence_cleanup(NULL);
}

static void test_no_evidence(void **state)
{
	static const uint8_t zero[32];
	struct kiln_evidence ev;
	kiln_diag d;

	(void)state;
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_OK(kiln_evidence_parse(NULL, &ev, &d));
	assert_int_equal(ev.type, KILN_ATTEST_NONE);
	assert_memory_equal(ev.sha256, zero, 32);
	assert_int_equal(d.code, KILN_OK);
	kiln_evidence_cleanup(&ev);
	KT_ERR(kiln_evidence_parse(NULL, NULL, &d), KILN_ERR_ARG);
}

static void test_full_evidence_and_digest(void **state)
{
	uint8_t *a = pattern(700, 1), *dv = pattern(650, 2), *s = pattern(72, 3);
	json_t *j = evidence_json(700, 650, 72);
	struct kiln_evidence ev;
	uint8_t want[32];
	kiln_diag d;

	(void)state;
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_OK(kiln_evidence_parse(j, &ev, &d));
	assert_int_equal(ev.type, KILN_ATTEST_DICE);
	assert_int_equal(ev.dice.alias_cert.len, 700);
	assert_memory_equal(ev.dice.alias_cert.ptr, a, 700);
	assert_int_equal(ev.dice.deviceid_cert.len, 650);
	assert_memory_equal(ev.dice.deviceid_cert.ptr, dv, 650);
	assert_int_equal(ev.dice.signature.len, 72);
	assert_memory_equal(ev.dice.signature.ptr, s, 72);
	/* The documented layout: be32 length prefixes, deviceid_cert in the middle. */
	digest_of(a, 700, dv, 650, s, 72, want);
	assert_memory_equal(ev.sha256, want, 32);
	kiln_evidence_cleanup(&ev);
	json_decref(j);
	free(a);
	free(dv);
	free(s);
}

static void test_without_deviceid_and_digest(void **state)
{
	uint8_t *a = pattern(10, 1), *s = pattern(64, 3);
	json_t *j = evidence_json(10, 0, 64), *j2;
	struct kiln_evidence ev, ev2;
	uint8_t want[32];
	kiln_diag d;

	(void)state;
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_OK(kiln_evidence_parse(j, &ev, &d));
	assert_int_equal(ev.dice.deviceid_cert.len, 0);
	digest_of(a, 10, NULL, 0, s, 64, want);
	assert_memory_equal(ev.sha256, want, 32);
	/* Length prefixes keep boundaries: moving a byte between members changes the digest. */
	j2 = json_pack("{s:s, s:s, s:s}", "type", "dice", "alias_cert", "AAAA", "signature", "AA==");
	kiln_evidence_init(&ev2);
	KT_OK(kiln_evidence_parse(j2, &ev2, &d));
	json_decref(j2);
	j2 = json_pack("{s:s, s:s, s:s}", "type", "dice", "alias_cert", "AAA=", "signature", "AAA=");
	{
		struct kiln_evidence ev3;

		kiln_evidence_init(&ev3);
		KT_OK(kiln_evidence_parse(j2, &ev3, &d));
		assert_int_equal(ev2.dice.alias_cert.len + ev2.dice.signature.len,
				 ev3.dice.alias_cert.len + ev3.dice.signature.len);
		assert_memory_not_equal(ev2.sha256, ev3.sha256, 32);
		kiln_evidence_cleanup(&ev3);
	}
	kiln_evidence_cleanup(&ev2);
	kiln_evidence_cleanup(&ev);
	json_decref(j);
	json_decref(j2);
	free(a);
	free(s);
}

static void test_parse_replaces_and_failure_keeps(void **state)
{
	json_t *big = evidence_json(300, 200, 70), *small = evidence_json(5, 0, 6), *bad;
	struct kiln_evidence ev;
	uint8_t before[32];
	kiln_diag d;

	(void)state;
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	KT_OK(kiln_evidence_parse(big, &ev, &d));
	memcpy(before, ev.sha256, 32);
	/* A failed parse leaves what was there. */
	bad = parse_json("{\"type\":\"dice\",\"alias_cert\":\"!!!!\",\"signature\":\"AA==\"}");
	KT_ERR(kiln_evidence_parse(bad, &ev, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_int_equal(ev.dice.alias_cert.len, 300);
	assert_int_equal(ev.dice.deviceid_cert.len, 200);
	assert_memory_equal(ev.sha256, before, 32);
	/* A successful one replaces all of it (no deviceid_cert left over). */
	KT_OK(kiln_evidence_parse(small, &ev, NULL));
	assert_int_equal(ev.dice.alias_cert.len, 5);
	assert_int_equal(ev.dice.deviceid_cert.len, 0);
	assert_int_equal(ev.dice.signature.len, 6);
	assert_memory_not_equal(ev.sha256, before, 32);
	/* And no evidence resets to none. */
	KT_OK(kiln_evidence_parse(NULL, &ev, NULL));
	assert_int_equal(ev.type, KILN_ATTEST_NONE);
	assert_int_equal(ev.dice.alias_cert.len, 0);
	kiln_evidence_cleanup(&ev);
	json_decref(big);
	json_decref(small);
	json_decref(bad);
}

static void test_caps_inclusive(void **state)
{
	json_t *j = evidence_json(KILN_EVIDENCE_CERT_MAX, KILN_EVIDENCE_CERT_MAX, KILN_EVIDENCE_SIG_MAX);
	struct kiln_evidence ev;

	(void)state;
	kiln_evidence_init(&ev);
	KT_OK(kiln_evidence_parse(j, &ev, NULL));
	assert_int_equal(ev.dice.alias_cert.len, KILN_EVIDENCE_CERT_MAX);
	assert_int_equal(ev.dice.deviceid_cert.len, KILN_EVIDENCE_CERT_MAX);
	assert_int_equal(ev.dice.signature.len, KILN_EVIDENCE_SIG_MAX);
	kiln_evidence_cleanup(&ev);
	json_decref(j);
}

/* -------------------------------------------------------------- refusals */

static void test_not_an_object(void **state)
{
	/* Inside a request body the member can hold any JSON value. */
	json_t *values[] = { parse_json("[]"), json_string("dice"), json_integer(1), json_null(),
			     json_true() };

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		expect_refused(values[i], "evidence must be a JSON object");
		json_decref(values[i]);
	}
}

static void test_type_member(void **state)
{
	json_t *j = evidence_json(10, 0, 10);

	(void)state;
	assert_int_equal(json_object_del(j, "type"), 0);
	expect_refused(j, "\"type\" is missing");
	json_decref(j);
	expect_member_refused("type", json_integer(1), "\"type\" is missing or not a string");
	expect_member_refused("type", json_null(), "\"type\"");
	/* tpm2 evidence has members of its own: DICE's are unknown to it. */
	expect_member_refused("type", json_string("tpm2"), "unknown member \"alias_cert\"");
	expect_member_refused("type", json_string("secure-element"), "\"secure-element\" is not supported");
	expect_member_refused("type", json_string("DICE"), "is not supported");
	expect_member_refused("type", json_string(""), "is not supported");
	expect_member_refused("type", json_stringn("dice\0x", 6), "is not supported");
}

static void test_unknown_member(void **state)
{
	(void)state;
	expect_member_refused("nonce", json_string("AAAA"), "unknown member \"nonce\"");
	expect_member_refused("alias_certificate", json_string("AAAA"),
			      "unknown member \"alias_certificate\"");
	expect_member_refused("", json_string("AAAA"), "unknown member \"\"");
	/* A control character in the name cannot break the line. */
	expect_member_refused("a\nb", json_true(), "unknown member \"a?b\"");
}

static void test_member_values(void **state)
{
	static const char *const members[] = { "alias_cert", "deviceid_cert", "signature" };
	static const char *const bad_b64[] = {
		"AAA",       /* not a multiple of 4 */
		"AA=A",      /* padding inside */
		"AAAA\n",    /* whitespace */
		" AAAA",
		"AA AA===",
		"A===",      /* too much padding */
		"AB==",      /* non-canonical trailing bits */
		"AAA-",      /* base64url alphabet */
		"AAA_",
		"AA\xc3\xa9",
	};

	(void)state;
	for (size_t m = 0; m < 3; m++) {
		char needle[64];

		(void)snprintf(needle, sizeof(needle), "member \"%s\"", members[m]);
		expect_member_refused(members[m], json_integer(5), needle);
		expect_member_refused(members[m], json_null(), needle);
		expect_member_refused(members[m], json_object(), needle);
		expect_member_refused(members[m], json_array(), needle);
		expect_member_refused(members[m], json_true(), needle);
		expect_member_refused(members[m], json_string(""), "is empty");
		for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
			(void)snprintf(needle, sizeof(needle), "member \"%s\" is not strict base64",
				       members[m]);
			expect_member_refused(members[m], json_string(bad_b64[i]), needle);
		}
		/* A NUL inside the string. */
		expect_member_refused(members[m], json_stringn("AA\0A", 4), "not strict base64");
	}
}

static void test_required_members(void **state)
{
	json_t *j = evidence_json(10, 10, 10);

	(void)state;
	assert_int_equal(json_object_del(j, "alias_cert"), 0);
	expect_refused(j, "member \"alias_cert\" is missing");
	json_decref(j);
	j = evidence_json(10, 10, 10);
	assert_int_equal(json_object_del(j, "signature"), 0);
	expect_refused(j, "member \"signature\" is missing");
	json_decref(j);
}

static void test_oversized(void **state)
{
	static const struct {
		const char *member;
		size_t cert, deviceid, sig;
	} cases[] = {
		{ "alias_cert", KILN_EVIDENCE_CERT_MAX + 1, 10, 10 },
		{ "deviceid_cert", 10, KILN_EVIDENCE_CERT_MAX + 1, 10 },
		{ "signature", 10, 10, KILN_EVIDENCE_SIG_MAX + 1 },
		{ "alias_cert", 1 << 20, 10, 10 },
		{ "signature", 10, 10, 1 << 16 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = evidence_json(cases[i].cert, cases[i].deviceid, cases[i].sig);
		char needle[80];

		(void)snprintf(needle, sizeof(needle), "member \"%s\" is larger than", cases[i].member);
		expect_refused(j, needle);
		json_decref(j);
	}
}

static void test_from_text(void **state)
{
	/* What the server sees: a request body through kiln_json_parse. */
	json_t *j = parse_json("{\"type\":\"dice\",\"alias_cert\":\"MAA=\",\"signature\":\"MAYCAQECAQE=\"}");
	struct kiln_evidence ev;

	(void)state;
	kiln_evidence_init(&ev);
	KT_OK(kiln_evidence_parse(j, &ev, NULL));
	assert_int_equal(ev.dice.alias_cert.len, 2);
	assert_int_equal(ev.dice.signature.len, 8);
	kiln_evidence_cleanup(&ev);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_cleanup),
		cmocka_unit_test(test_no_evidence),
		cmocka_unit_test(test_full_evidence_and_digest),
		cmocka_unit_test(test_without_deviceid_and_digest),
		cmocka_unit_test(test_parse_replaces_and_failure_keeps),
		cmocka_unit_test(test_caps_inclusive),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_type_member),
		cmocka_unit_test(test_unknown_member),
		cmocka_unit_test(test_member_values),
		cmocka_unit_test(test_required_members),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_from_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
