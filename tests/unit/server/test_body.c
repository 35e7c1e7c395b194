/*
 * Unit tests for src/server/body.c: the /v1 request bodies. Each parser is
 * fed its good forms and every malformed one: not JSON, not an object,
 * unknown, missing or duplicate members, wrong types, over-long and
 * non-printable strings, bad base64, a nonce of the wrong length, and the
 * canonical form of device.components.
 */
#include "support/support.h"

#include "server/body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */
#define NONCE31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="
#define NONCE33 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
#define NONCE48 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"

/* Checks a refusal: its code, and that its one-line message says what. */
static void refused(kiln_result r, const kiln_diag *d, kiln_err want, const char *what)
{
	if (r.code != want)
		fail_msg("expected %s, got %s (%s)", kiln_err_info(want)->slug,
			 kiln_err_info(r.code)->slug, d->text);
	if (what != NULL && strstr(d->text, what) == NULL)
		fail_msg("expected '%s' in '%s'", what, d->text);
	assert_null(strchr(d->text, '\n'));
}

/* ------------------------------------------------------------ batches */

static kiln_result batch(const char *json, struct body_batch *b, kiln_diag *d)
{
	kiln_diag_clear(d);
	return body_batch_parse(kiln_slice_str(json), b, d);
}

static void test_batch_good(void **state)
{
	struct body_batch b;
	kiln_diag d;

	(void)state;
	KT_OK(batch("{\"product\": \"widget\", \"lot\": \"LOT-2026-11-A\", \"quantity\": 500, "
		    "\"line\": \"L1\", \"station\": \"st-01\"}", &b, &d));
	assert_string_equal(b.product, "widget");
	assert_string_equal(b.lot, "LOT-2026-11-A");
	assert_int_equal(b.quantity, 500);
	assert_string_equal(b.line, "L1");
	assert_string_equal(b.station, "st-01");
	/* Optional members absent: empty. Members in any order. */
	KT_OK(batch("{\"quantity\": 1000000000, \"lot\": \"L\", \"product\": \"p\"}", &b, &d));
	assert_int_equal(b.quantity, 1000000000);
	assert_string_equal(b.line, "");
	assert_string_equal(b.station, "");
	KT_OK(batch("{\"quantity\": 1, \"lot\": \"L\", \"product\": \"p\"}", &b, &d));
	assert_int_equal(b.quantity, 1);
}

static void test_batch_malformed(void **state)
{
	char big[200];
	struct body_batch b;
	kiln_diag d;

	(void)state;
	/* Not JSON, not an object, empty. */
	refused(batch("{\"product\": ", &b, &d), &d, KILN_ERR_MALFORMED, "malformed JSON");
	refused(batch("[1, 2]", &b, &d), &d, KILN_ERR_MALFORMED, "must be a JSON object");
	refused(batch("\"text\"", &b, &d), &d, KILN_ERR_MALFORMED, NULL);
	refused(batch("", &b, &d), &d, KILN_ERR_MALFORMED, "empty");
	/* Unknown, missing and duplicate members. */
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"colour\": \"red\"}", &b,
		      &d), &d, KILN_ERR_MALFORMED, "unknown member \"colour\"");
	refused(batch("{\"lot\": \"L\", \"quantity\": 1}", &b, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"product\"");
	refused(batch("{\"product\": \"p\", \"quantity\": 1}", &b, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"lot\"");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\"}", &b, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"quantity\"");
	refused(batch("{\"product\": \"p\", \"product\": \"q\", \"lot\": \"L\", \"quantity\": 1}", &b,
		      &d), &d, KILN_ERR_MALFORMED, NULL);
	/* An unknown member's name is shown, but never raw control characters. */
	refused(batch("{\"a\\u0001b\": 1}", &b, &d), &d, KILN_ERR_MALFORMED, "\"a?b\"");
	/* Wrong types. */
	refused(batch("{\"product\": 7, \"lot\": \"L\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "\"product\" must be a string");
	refused(batch("{\"product\": \"p\", \"lot\": null, \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "\"lot\" must be a string");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": \"5\"}", &b, &d), &d,
		KILN_ERR_MALFORMED, "quantity");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 5.0}", &b, &d), &d,
		KILN_ERR_MALFORMED, "quantity");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": true}", &b, &d), &d,
		KILN_ERR_MALFORMED, "quantity");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"line\": [\"L1\"]}", &b,
		      &d), &d, KILN_ERR_MALFORMED, "\"line\" must be a string");
	/* Quantity bounds. */
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 0}", &b, &d), &d,
		KILN_ERR_MALFORMED, "1 to 1000000000");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": -3}", &b, &d), &d,
		KILN_ERR_MALFORMED, "1 to 1000000000");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1000000001}", &b, &d), &d,
		KILN_ERR_MALFORMED, "1 to 1000000000");
	/* Empty required names. */
	refused(batch("{\"product\": \"\", \"lot\": \"L\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "\"product\"");
	refused(batch("{\"product\": \"p\", \"lot\": \"\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "\"lot\"");
	/* Non-printable text: control characters, DEL, anything beyond ASCII, NUL. */
	refused(batch("{\"product\": \"p\", \"lot\": \"L\\n2\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "printable ASCII");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\\u007f\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "printable ASCII");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"station\": \"st\\u00e9\"}",
		      &b, &d), &d, KILN_ERR_MALFORMED, "printable ASCII");
	refused(batch("{\"product\": \"p\", \"lot\": \"L\\u0000X\", \"quantity\": 1}", &b, &d), &d,
		KILN_ERR_MALFORMED, "NUL");
	/* Over-long names: lot, product and line hold 63 bytes, station 127. */
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"p\", \"lot\": \"%064d\", \"quantity\": 1}", 0);
	refused(batch(big, &b, &d), &d, KILN_ERR_TOO_BIG, "\"lot\"");
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"p\", \"lot\": \"%063d\", \"quantity\": 1}", 0);
	KT_OK(batch(big, &b, &d));
	assert_int_equal(strlen(b.lot), 63);
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"%064d\", \"lot\": \"L\", \"quantity\": 1}", 0);
	refused(batch(big, &b, &d), &d, KILN_ERR_TOO_BIG, "\"product\"");
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"line\": \"%064d\"}", 0);
	refused(batch(big, &b, &d), &d, KILN_ERR_TOO_BIG, "\"line\"");
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"station\": \"%0128d\"}", 0);
	refused(batch(big, &b, &d), &d, KILN_ERR_TOO_BIG, "\"station\"");
	(void)snprintf(big, sizeof(big),
		       "{\"product\": \"p\", \"lot\": \"L\", \"quantity\": 1, \"station\": \"%0127d\"}", 0);
	KT_OK(batch(big, &b, &d));
	assert_int_equal(strlen(b.station), 127);
}

static void test_size_and_depth_caps(void **state)
{
	struct body_batch b;
	struct body_begin g;
	size_t n = KILN_BODY_MAX + 2;
	char *huge = malloc(n), deep[200];
	kiln_diag d;

	(void)state;
	assert_non_null(huge);
	/* Over 64 KiB: refused before it is parsed. */
	memset(huge, ' ', n - 1);
	huge[0] = '{';
	huge[n - 2] = '}';
	huge[n - 1] = '\0';
	kiln_diag_clear(&d);
	refused(body_begin_parse(kiln_slice_str(huge), &g, &d), &d, KILN_ERR_TOO_BIG, "limit");
	free(huge);
	/* Nested too deep. */
	memset(deep, 0, sizeof(deep));
	for (int i = 0; i < 40; i++)
		deep[i] = '[';
	for (int i = 0; i < 40; i++)
		deep[40 + i] = ']';
	refused(batch(deep, &b, &d), &d, KILN_ERR_MALFORMED, "deeper");
}

/* ------------------------------------------------------------ begin */

static kiln_result begin(const char *json, struct body_begin *b, kiln_diag *d)
{
	kiln_diag_clear(d);
	return body_begin_parse(kiln_slice_str(json), b, d);
}

static kiln_result revocation(const char *text, struct body_revocation *v, kiln_diag *d)
{
	kiln_diag_clear(d);
	return body_revocation_parse(kiln_slice_str(text), v, d);
}

static void test_revocation(void **state)
{
	struct body_revocation v;
	kiln_diag d;

	(void)state;
	KT_OK(revocation("{\"serial\": \"0a1b\", \"reason\": \"keyCompromise\"}", &v, &d));
	assert_string_equal(v.serial, "0a1b");
	assert_string_equal(v.reason, "keyCompromise");
	KT_OK(revocation("{\"station\": \"st-1\", \"from\": 100, \"to\": 200, "
			 "\"reason\": \"cACompromise\"}", &v, &d));
	assert_string_equal(v.station, "st-1");
	assert_int_equal(v.from, 100);
	assert_int_equal(v.to, 200);
	refused(revocation("{\"serial\": \"0a\"}", &v, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"reason\"");
	refused(revocation("{\"reason\": \"unspecified\"}", &v, &d), &d, KILN_ERR_MALFORMED,
		"exactly one of");
	refused(revocation("{\"lot\": \"L\", \"device\": \"1\", \"reason\": \"unspecified\"}", &v, &d),
		&d, KILN_ERR_MALFORMED, "exactly one of");
	refused(revocation("{\"lot\": \"L\", \"reason\": \"unspecified\", \"why\": 1}", &v, &d), &d,
		KILN_ERR_MALFORMED, "unknown member \"why\"");
	refused(revocation("{\"station\": \"s\", \"from\": -1, \"reason\": \"unspecified\"}", &v, &d),
		&d, KILN_ERR_MALFORMED, "\"from\"");
	refused(revocation("{\"station\": \"s\", \"to\": \"now\", \"reason\": \"unspecified\"}", &v,
			   &d), &d, KILN_ERR_MALFORMED, "\"to\"");
	refused(revocation("{\"serial\": 12, \"reason\": \"unspecified\"}", &v, &d), &d,
		KILN_ERR_MALFORMED, "must be a string");
	refused(revocation("{\"serial\": \"a\\nb\", \"reason\": \"unspecified\"}", &v, &d), &d,
		KILN_ERR_MALFORMED, "printable");
}

static void test_begin(void **state)
{
	char big[128];
	struct body_begin b;
	kiln_diag d;

	(void)state;
	KT_OK(begin("{\"lot\": \"LOT-2026-11-A\"}", &b, &d));
	assert_string_equal(b.lot, "LOT-2026-11-A");
	refused(begin("{}", &b, &d), &d, KILN_ERR_MALFORMED, "lacks the member \"lot\"");
	refused(begin("{\"lot\": \"L\", \"product\": \"widget\"}", &b, &d), &d, KILN_ERR_MALFORMED,
		"unknown member \"product\"");
	refused(begin("{\"lot\": 12}", &b, &d), &d, KILN_ERR_MALFORMED, "must be a string");
	refused(begin("{\"lot\": \"\"}", &b, &d), &d, KILN_ERR_MALFORMED, "\"lot\"");
	refused(begin("{\"lot\": \"L\\t1\"}", &b, &d), &d, KILN_ERR_MALFORMED, "printable");
	refused(begin("[\"lot\"]", &b, &d), &d, KILN_ERR_MALFORMED, "must be a JSON object");
	refused(begin("{\"lot\": \"L\"} trailing", &b, &d), &d, KILN_ERR_MALFORMED, NULL);
	(void)snprintf(big, sizeof(big), "{\"lot\": \"%064d\"}", 0);
	refused(begin(big, &b, &d), &d, KILN_ERR_TOO_BIG, "\"lot\"");
	/* A refusal leaves nothing half-filled. */
	assert_string_equal(b.lot, "");
}

/* ------------------------------------------------------------ approval */

static kiln_result appr(const char *json, struct body_approval *a, kiln_diag *d)
{
	kiln_diag_clear(d);
	return body_approval_parse(kiln_slice_str(json), a, d);
}

static void test_approval(void **state)
{
	char big[1024];
	struct body_approval a;
	kiln_diag d;

	(void)state;
	KT_OK(appr("{\"signature\": \"AAEC\"}", &a, &d));
	assert_int_equal(a.sig_len, 3);
	assert_int_equal(a.signature[2], 2);
	refused(appr("{}", &a, &d), &d, KILN_ERR_MALFORMED, "lacks the member \"signature\"");
	refused(appr("{\"signature\": \"AA==\", \"by\": \"x\"}", &a, &d), &d, KILN_ERR_MALFORMED,
		"unknown member \"by\"");
	refused(appr("{\"signature\": 7}", &a, &d), &d, KILN_ERR_MALFORMED, "must be a string");
	refused(appr("{\"signature\": \"!!\"}", &a, &d), &d, KILN_ERR_MALFORMED, "not valid base64");
	refused(appr("{\"signature\": \"\"}", &a, &d), &d, KILN_ERR_MALFORMED, "\"signature\"");
	/* 516 bytes of signature: over the cap. */
	memset(big, 0, sizeof(big));
	(void)snprintf(big, sizeof(big), "{\"signature\": \"");
	memset(big + strlen(big), 'A', 688);
	(void)snprintf(big + strlen(big), 8, "\"}");
	refused(appr(big, &a, &d), &d, KILN_ERR_TOO_BIG, "\"signature\"");
	assert_int_equal(a.sig_len, 0);
}

/* ------------------------------------------------------------ finish */

static kiln_result fin(const char *json, struct body_finish *f, kiln_diag *d)
{
	body_finish_cleanup(f);
	body_finish_init(f);
	kiln_diag_clear(d);
	return body_finish_parse(kiln_slice_str(json), f, d);
}

/* A finish body from its parts (the nonce, the CSR, device and evidence as JSON text). */
static char *finish_json(const char *nonce, const char *csr, const char *device,
			 const char *evidence)
{
	size_t n = strlen(nonce) + strlen(csr) + strlen(device) +
		   (evidence != NULL ? strlen(evidence) : 0) + 128;
	char *s = malloc(n);

	assert_non_null(s);
	(void)snprintf(s, n, "{\"nonce\": \"%s\", \"csr\": \"%s\", \"device\": %s%s%s}", nonce, csr,
		       device, evidence != NULL ? ", \"evidence\": " : "",
		       evidence != NULL ? evidence : "");
	return s;
}

static kiln_result fin_parts(const char *nonce, const char *csr, const char *device,
			     const char *evidence, struct body_finish *f, kiln_diag *d)
{
	char *s = finish_json(nonce, csr, device, evidence);
	kiln_result r = fin(s, f, d);

	free(s);
	return r;
}

#define DEV "{\"serial\": \"WGT-000123\"}"

static void test_finish_good(void **state)
{
	struct body_finish f;
	kiln_diag d;

	(void)state;
	body_finish_init(&f);
	KT_OK(fin_parts(NONCE32, "MIIB", "{\"serial\": \"WGT-000123\", \"firmware_version\": \"1.0.0\", "
		       "\"components\": {\"soc\": \"SOC-1\", \"pcb\": \"PCB-2\", \"se\": \"SE-3\"}}",
		       "{\"type\": \"dice\", \"alias_cert\": \"AQID\", \"signature\": \"BAUG\"}", &f,
		       &d));
	for (int i = 0; i < KILN_NONCE_LEN; i++)
		assert_int_equal(f.nonce[i], i);
	assert_int_equal(f.csr.len, 3);
	assert_memory_equal(f.csr.ptr, "\x30\x82\x01", 3);
	assert_string_equal(f.serial, "WGT-000123");
	assert_string_equal(f.firmware_version, "1.0.0");
	assert_string_equal(f.components_json, "{\"pcb\":\"PCB-2\",\"se\":\"SE-3\",\"soc\":\"SOC-1\"}");
	assert_int_equal(f.evidence.type, KILN_ATTEST_DICE);
	assert_int_equal(f.evidence.dice.alias_cert.len, 3);
	assert_int_equal(f.evidence.dice.deviceid_cert.len, 0);
	assert_int_equal(f.evidence.dice.signature.len, 3);

	/* Optional parts absent: no version, no components (""), no evidence. */
	KT_OK(fin_parts(NONCE32, "MIIB", DEV, NULL, &f, &d));
	assert_string_equal(f.firmware_version, "");
	assert_string_equal(f.components_json, "");
	assert_int_equal(f.evidence.type, KILN_ATTEST_NONE);
	body_finish_cleanup(&f);
}

/* "next": a boolean, false when absent; anything else is refused by name. */
static void test_finish_next(void **state)
{
	static const char *const bad[] = { "1", "\"true\"", "null", "{}" };
	struct body_finish f;
	char json[512];
	kiln_diag d;

	(void)state;
	body_finish_init(&f);
	KT_OK(fin_parts(NONCE32, "MIIB", DEV, NULL, &f, &d));
	assert_false(f.next);
	(void)snprintf(json, sizeof(json), "{\"nonce\": \"%s\", \"csr\": \"MIIB\", \"device\": %s, "
		       "\"next\": true}", NONCE32, DEV);
	KT_OK(fin(json, &f, &d));
	assert_true(f.next);
	(void)snprintf(json, sizeof(json), "{\"next\": false, \"nonce\": \"%s\", \"csr\": \"MIIB\", "
		       "\"device\": %s}", NONCE32, DEV);
	KT_OK(fin(json, &f, &d));
	assert_false(f.next);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(json, sizeof(json), "{\"nonce\": \"%s\", \"csr\": \"MIIB\", "
			       "\"device\": %s, \"next\": %s}", NONCE32, DEV, bad[i]);
		refused(fin(json, &f, &d), &d, KILN_ERR_MALFORMED, "member \"next\" must be true or false");
	}
	body_finish_cleanup(&f);
}

static void test_finish_components_canonical(void **state)
{
	static const char *const same[] = {
		"{\"soc\": \"A\", \"pcb\": \"B\", \"se\": \"C\"}",
		"{\"se\": \"C\", \"soc\": \"A\", \"pcb\": \"B\"}",
		"{ \"pcb\" : \"B\",\n \"se\":\"C\" , \"soc\":\"A\" }",
	};
	struct body_finish f;
	char dev[256];
	kiln_diag d;

	(void)state;
	body_finish_init(&f);
	/* Any order, any spacing: one canonical text, the one the request digest covers. */
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		(void)snprintf(dev, sizeof(dev), "{\"serial\": \"S-1\", \"components\": %s}", same[i]);
		KT_OK(fin_parts(NONCE32, "MIIB", dev, NULL, &f, &d));
		assert_string_equal(f.components_json, "{\"pcb\":\"B\",\"se\":\"C\",\"soc\":\"A\"}");
	}
	/* A subset, and none at all. */
	KT_OK(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S-1\", \"components\": {\"se\": \"C\"}}", NULL,
			&f, &d));
	assert_string_equal(f.components_json, "{\"se\":\"C\"}");
	KT_OK(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S-1\", \"components\": {}}", NULL, &f, &d));
	assert_string_equal(f.components_json, "{}");
	body_finish_cleanup(&f);
}

static void test_finish_malformed(void **state)
{
	struct body_finish f;
	char dev[512];
	kiln_diag d;

	(void)state;
	body_finish_init(&f);
	/* The request itself. */
	refused(fin("[]", &f, &d), &d, KILN_ERR_MALFORMED, "the request must be a JSON object");
	refused(fin("{\"nonce\": [", &f, &d), &d, KILN_ERR_MALFORMED, "malformed JSON");
	refused(fin("{\"csr\": \"MIIB\", \"device\": " DEV "}", &f, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"nonce\"");
	refused(fin("{\"nonce\": \"" NONCE32 "\", \"device\": " DEV "}", &f, &d), &d,
		KILN_ERR_MALFORMED, "lacks the member \"csr\"");
	refused(fin("{\"nonce\": \"" NONCE32 "\", \"csr\": \"MIIB\"}", &f, &d), &d,
		KILN_ERR_MALFORMED, "lacks the member \"device\"");
	refused(fin("{\"nonce\": \"" NONCE32 "\", \"csr\": \"MIIB\", \"device\": " DEV
		    ", \"lot\": \"L\"}", &f, &d), &d, KILN_ERR_MALFORMED, "unknown member \"lot\"");
	/* The nonce: a base64 string of exactly 32 bytes. */
	refused(fin_parts("", "MIIB", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED, "nonce");
	refused(fin_parts(NONCE31, "MIIB", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"must be 32 bytes");
	refused(fin_parts(NONCE33, "MIIB", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"must be 32 bytes");
	refused(fin_parts(NONCE48, "MIIB", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"must be 32 bytes");
	refused(fin_parts(NONCE48 "AAAA", "MIIB", DEV, NULL, &f, &d), &d, KILN_ERR_TOO_BIG, "nonce");
	refused(fin_parts("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "MIIB", DEV, NULL, &f, &d),
		&d, KILN_ERR_MALFORMED, "not valid base64");
	refused(fin_parts("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX GBkaGxwdHh8=", "MIIB", DEV, NULL, &f, &d),
		&d, KILN_ERR_MALFORMED, "not valid base64");
	refused(fin_parts("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-_", "MIIB", DEV, NULL, &f, &d),
		&d, KILN_ERR_MALFORMED, "not valid base64");
	refused(fin("{\"nonce\": 32, \"csr\": \"MIIB\", \"device\": " DEV "}", &f, &d), &d,
		KILN_ERR_MALFORMED, "\"nonce\" must be a string");
	/* The CSR: base64. */
	refused(fin_parts(NONCE32, "MII", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"\"csr\" is not valid base64");
	refused(fin_parts(NONCE32, "MIIB\\n", DEV, NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"\"csr\" is not valid base64");
	refused(fin("{\"nonce\": \"" NONCE32 "\", \"csr\": {}, \"device\": " DEV "}", &f, &d), &d,
		KILN_ERR_MALFORMED, "\"csr\" must be a string");
	/* The device. */
	refused(fin_parts(NONCE32, "MIIB", "\"WGT-1\"", NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"device must be a JSON object");
	refused(fin_parts(NONCE32, "MIIB", "{}", NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"lacks the member \"serial\"");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"\"}", NULL, &f, &d), &d,
		KILN_ERR_MALFORMED, "empty");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S 1\\u0007\"}", NULL, &f, &d), &d,
		KILN_ERR_MALFORMED, "printable");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": 123}", NULL, &f, &d), &d,
		KILN_ERR_MALFORMED, "must be a string");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"model\": \"x\"}", NULL, &f, &d), &d,
		KILN_ERR_MALFORMED, "device has an unknown member \"model\"");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"firmware_version\": 1}", NULL, &f,
			  &d), &d, KILN_ERR_MALFORMED, "\"firmware_version\" must be a string");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"firmware_version\": \"1.0\\r\"}",
			  NULL, &f, &d), &d, KILN_ERR_MALFORMED, "printable");
	(void)snprintf(dev, sizeof(dev), "{\"serial\": \"%065d\"}", 0);
	refused(fin_parts(NONCE32, "MIIB", dev, NULL, &f, &d), &d, KILN_ERR_TOO_BIG, "\"serial\"");
	(void)snprintf(dev, sizeof(dev), "{\"serial\": \"%064d\"}", 0);
	KT_OK(fin_parts(NONCE32, "MIIB", dev, NULL, &f, &d));
	assert_int_equal(strlen(f.serial), 64);
	(void)snprintf(dev, sizeof(dev), "{\"serial\": \"S\", \"firmware_version\": \"%064d\"}", 0);
	refused(fin_parts(NONCE32, "MIIB", dev, NULL, &f, &d), &d, KILN_ERR_TOO_BIG,
		"\"firmware_version\"");
	/* device.components. */
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"components\": [\"soc\"]}", NULL, &f,
			  &d), &d, KILN_ERR_MALFORMED, "device.components must be a JSON object");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"components\": {\"gpu\": \"G\"}}",
			  NULL, &f, &d), &d, KILN_ERR_MALFORMED,
		"device.components has an unknown member \"gpu\"");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"components\": {\"soc\": 1}}", NULL,
			  &f, &d), &d, KILN_ERR_MALFORMED, "\"soc\" must be a string");
	refused(fin_parts(NONCE32, "MIIB",
			  "{\"serial\": \"S\", \"components\": {\"pcb\": {\"rev\": \"B\"}}}", NULL, &f,
			  &d), &d, KILN_ERR_MALFORMED, "\"pcb\" must be a string");
	refused(fin_parts(NONCE32, "MIIB", "{\"serial\": \"S\", \"components\": {\"se\": \"\\u00ff\"}}",
			  NULL, &f, &d), &d, KILN_ERR_MALFORMED, "printable");
	(void)snprintf(dev, sizeof(dev), "{\"serial\": \"S\", \"components\": {\"soc\": \"%065d\"}}", 0);
	refused(fin_parts(NONCE32, "MIIB", dev, NULL, &f, &d), &d, KILN_ERR_TOO_BIG, "\"soc\"");
	/* The evidence, parsed by the attestation module. */
	refused(fin_parts(NONCE32, "MIIB", DEV, "[]", &f, &d), &d, KILN_ERR_ATTEST_MALFORMED,
		"evidence must be a JSON object");
	refused(fin_parts(NONCE32, "MIIB", DEV, "{\"type\": \"se\"}", &f, &d), &d,
		KILN_ERR_ATTEST_MALFORMED, "not supported");
	refused(fin_parts(NONCE32, "MIIB", DEV, "{\"type\": \"tpm2\"}", &f, &d), &d,
		KILN_ERR_ATTEST_MALFORMED, "\"ek_cert\" is missing");
	refused(fin_parts(NONCE32, "MIIB", DEV, "{\"type\": \"dice\", \"alias_cert\": \"AQID\", "
			  "\"signature\": \"BAUG\", \"extra\": 1}", &f, &d), &d,
		KILN_ERR_ATTEST_MALFORMED, "unknown member \"extra\"");
	refused(fin_parts(NONCE32, "MIIB", DEV, "{\"type\": \"dice\", \"alias_cert\": \"AQI\", "
			  "\"signature\": \"BAUG\"}", &f, &d), &d, KILN_ERR_ATTEST_MALFORMED,
		"alias_cert");
	body_finish_cleanup(&f);
}

static void test_finish_cleanup_wipes(void **state)
{
	struct body_finish f;
	kiln_diag d;

	(void)state;
	body_finish_init(&f);
	/* Refused at its last member, after the nonce was decoded: cleanup still wipes it. */
	refused(fin_parts(NONCE32, "MIIB", DEV, "{\"type\": \"dice\"}", &f, &d), &d,
		KILN_ERR_ATTEST_MALFORMED, NULL);
	assert_int_equal(f.nonce[31], 31);
	body_finish_cleanup(&f);
	for (int i = 0; i < KILN_NONCE_LEN; i++)
		assert_int_equal(f.nonce[i], 0);
	assert_null(f.csr.ptr);
	/* Safe twice. */
	body_finish_cleanup(&f);
}

/* ------------------------------------------------------------ activate */

static kiln_result act(const char *json, struct body_activate *a, kiln_diag *d)
{
	body_activate_cleanup(a);
	body_activate_init(a);
	kiln_diag_clear(d);
	return body_activate_parse(kiln_slice_str(json), a, d);
}

static void test_activate(void **state)
{
	struct body_activate a;
	char big[2048];
	kiln_diag d;

	(void)state;
	body_activate_init(&a);
	KT_OK(act("{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\", \"ak_public\": \"BAUG\"}", &a, &d));
	assert_int_equal(a.nonce[31], 31);
	assert_int_equal(a.ek_cert.len, 3);
	assert_int_equal(a.ek_intermediate.len, 0);
	assert_int_equal(a.ak_public.len, 3);
	KT_OK(act("{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\", \"ek_intermediate\": \"AQ==\", "
		  "\"ak_public\": \"BAUG\"}", &a, &d));
	assert_int_equal(a.ek_intermediate.len, 1);
	refused(act("{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\"}", &a, &d), &d,
		KILN_ERR_MALFORMED, "ak_public");
	refused(act("{\"nonce\": \"" NONCE31 "\", \"ek_cert\": \"AQID\", \"ak_public\": \"BAUG\"}", &a, &d),
		&d, KILN_ERR_MALFORMED, "nonce");
	refused(act("{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\", \"ak_public\": \"BAU\"}", &a, &d),
		&d, KILN_ERR_MALFORMED, "\"ak_public\" is not valid base64");
	refused(act("{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\", \"ak_public\": \"BAUG\", "
		    "\"x\": 1}", &a, &d), &d, KILN_ERR_MALFORMED, "\"x\"");
	/* An AK public area over its cap (640 bytes) is too big. */
	memset(big, 'A', sizeof(big));
	(void)snprintf(big, sizeof(big), "{\"nonce\": \"" NONCE32 "\", \"ek_cert\": \"AQID\", "
		       "\"ak_public\": \"%01000d\"}", 0);
	for (char *p = strstr(big, "\"ak_public\": \"") + 14; *p == '0'; p++)
		*p = 'A';
	refused(act(big, &a, &d), &d, KILN_ERR_TOO_BIG, "ak_public");
	body_activate_cleanup(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_good),
		cmocka_unit_test(test_batch_malformed),
		cmocka_unit_test(test_size_and_depth_caps),
		cmocka_unit_test(test_begin),
		cmocka_unit_test(test_revocation),
		cmocka_unit_test(test_finish_good),
		cmocka_unit_test(test_finish_next),
		cmocka_unit_test(test_finish_components_canonical),
		cmocka_unit_test(test_finish_malformed),
		cmocka_unit_test(test_activate),
		cmocka_unit_test(test_finish_cleanup_wipes),
		cmocka_unit_test(test_approval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
