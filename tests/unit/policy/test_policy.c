/*
 * Product policies (src/policy/policy.c): the shipped examples, the error
 * fixtures with their exact messages and lines, every schema and cross-key
 * rule, and the questions the CA asks of a parsed policy.
 */
#include "support/support.h"

#include "policy/policy.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA KILN_ERR_POLICY_SCHEMA
#define FIXTURES KILN_SOURCE_DIR "/tests/unit/policy/fixtures/"

static kiln_policy *parse_file(const char *path, kiln_result *r, kiln_diag *d)
{
	kiln_policy *p = NULL;
	const char *name = strrchr(path, '/') + 1;
	kiln_buf b;

	kt_read_file(path, &b);
	kiln_diag_clear(d);
	*r = kiln_policy_parse(kiln_buf_view(&b), name, &p, d);
	kiln_buf_cleanup(&b);
	return p;
}

static kiln_policy *must_parse_file(const char *path)
{
	kiln_result r;
	kiln_diag d;
	kiln_policy *p = parse_file(path, &r, &d);

	if (!kiln_is_ok(r))
		print_error("%s: %s\n", path, d.text);
	KT_OK(r);
	assert_non_null(p);
	return p;
}

/* ------------------------------------------------------------ examples */

static void test_widget_example(void **state)
{
	kiln_policy *p = must_parse_file(KILN_SOURCE_DIR "/examples/policies/widget.yaml");
	uint8_t fw[32], digest[32];
	unsigned int dlen = 0;
	kiln_buf b;

	(void)state;
	assert_string_equal(p->product, "widget");
	assert_int_equal(p->env, KILN_ENV_PRODUCTION);
	assert_int_equal(p->n_keys, 3);
	assert_string_equal(p->keys[0].type, "ec");
	assert_int_equal(p->keys[0].n_curves, 2);
	assert_string_equal(p->keys[0].curves[0], "p256");
	assert_string_equal(p->keys[0].curves[1], "p384");
	assert_string_equal(p->keys[1].type, "ed25519");
	assert_string_equal(p->keys[2].type, "rsa");
	assert_int_equal(p->keys[2].min_bits, 3072);
	assert_int_equal(p->keys[2].max_bits, 16384); /* the default */
	assert_string_equal(p->serial_pattern, "^[A-Z0-9][A-Z0-9-]{3,63}$");
	assert_int_equal(p->n_subject, 2);
	assert_string_equal(p->subject[0].attr, "CN");
	assert_string_equal(p->subject[0].tmpl, "{serial}");
	assert_string_equal(p->subject[1].attr, "O");
	assert_string_equal(p->subject[1].tmpl, "Example Widgets Inc");
	assert_int_equal(p->n_csr_subject_allowed, 2);
	assert_int_equal(p->n_san_uri, 1);
	assert_string_equal(p->san_uri[0], "urn:kiln:{product}:{serial}");
	assert_int_equal(p->n_san_dns, 0);
	assert_int_equal(p->validity_days, 3650);
	assert_int_equal(p->key_usage, KILN_KU_DIGITAL_SIGNATURE | KILN_KU_KEY_AGREEMENT);
	assert_int_equal(p->ext_key_usage, KILN_EKU_CLIENT_AUTH);
	assert_string_equal(p->crl_url, "");
	assert_string_equal(p->ocsp_url, "");
	assert_int_equal(p->attestation.type, KILN_ATTEST_DICE);
	assert_int_equal(p->attestation.n_firmware, 1);
	assert_string_equal(p->attestation.firmware[0].version, "1.0.0");
	/* The DICE simulator's default image, examples/firmware/widget-fw-1.0.0.bin. */
	kt_read_file(KILN_SOURCE_DIR "/examples/firmware/widget-fw-1.0.0.bin", &b);
	assert_int_equal(EVP_Digest(b.ptr, b.len, fw, &dlen, EVP_sha256(), NULL), 1);
	assert_memory_equal(p->attestation.firmware[0].sha256, fw, 32);
	kiln_buf_cleanup(&b);
	/* The policy's hash is over the exact file bytes. */
	kt_read_file(KILN_SOURCE_DIR "/examples/policies/widget.yaml", &b);
	assert_int_equal(EVP_Digest(b.ptr, b.len, digest, &dlen, EVP_sha256(), NULL), 1);
	assert_memory_equal(p->sha256, digest, 32);
	kiln_buf_cleanup(&b);
	assert_non_null(p->priv);
	kiln_policy_free(p);
}

static void test_widget_test_example(void **state)
{
	kiln_policy *p = must_parse_file(KILN_SOURCE_DIR "/examples/policies/widget-test.yaml");
	kiln_policy *prod = must_parse_file(KILN_SOURCE_DIR "/examples/policies/widget.yaml");

	(void)state;
	assert_string_equal(p->product, "widget-test");
	assert_int_equal(p->env, KILN_ENV_TEST);
	assert_int_equal(p->attestation.type, KILN_ATTEST_NONE);
	assert_int_equal(p->attestation.n_firmware, 0);
	assert_int_equal(p->n_keys, 3);
	assert_int_equal(p->n_subject, 3);
	assert_string_equal(p->subject[2].attr, "OU");
	/* Different bytes, different hash. */
	assert_memory_not_equal(p->sha256, prod->sha256, 32);
	kiln_policy_free(p);
	kiln_policy_free(prod);
}

static void test_tpm2_fixture(void **state)
{
	kiln_policy *p = must_parse_file(FIXTURES "good-tpm2.yaml");

	(void)state;
	assert_string_equal(p->product, "gateway-7");
	assert_int_equal(p->attestation.type, KILN_ATTEST_TPM2);
	assert_int_equal(p->attestation.n_ek_roots, 1);
	assert_non_null(strstr(p->attestation.ek_roots[0], "-----BEGIN CERTIFICATE-----\nMIIB"));
	assert_int_equal(p->attestation.n_vendor_roots, 0);
	assert_int_equal(p->attestation.n_pcrs, 2);
	assert_int_equal(p->attestation.pcrs[0].index, 0);
	assert_int_equal(p->attestation.pcrs[1].index, 7);
	assert_int_equal(p->attestation.pcrs[1].sha256[31], 0x11);
	assert_int_equal(p->attestation.firmware[0].sha256[0], 0xaa);
	assert_int_equal(p->n_subject, 4);
	assert_string_equal(p->subject[2].attr, "C");
	assert_string_equal(p->subject[2].tmpl, "DE");
	assert_string_equal(p->subject[3].tmpl, "{lot}-{serial}");
	assert_int_equal(p->n_csr_subject_allowed, 0);
	assert_false(kiln_policy_csr_attr_ok(p, "CN"));
	assert_string_equal(p->san_dns[0], "{serial}.devices.example.com");
	assert_string_equal(p->crl_url, "http://pki.example.com/crl/prod.crl");
	assert_string_equal(p->ocsp_url, "https://ocsp.example.com");
	assert_int_equal(p->ext_key_usage, KILN_EKU_CLIENT_AUTH | KILN_EKU_SERVER_AUTH);
	assert_true(kiln_policy_serial_ok(p, "GW7-123456"));
	assert_false(kiln_policy_serial_ok(p, "GW7-12345"));
	kiln_policy_free(p);
}

/* The full example in docs/policy.md is a valid policy. */
static void test_docs_example(void **state)
{
	static const char start[] = "## Product policy: a full example\n\n```yaml\n";
	const char *from, *to;
	kiln_policy *p = NULL;
	kiln_diag d;
	kiln_buf b;

	(void)state;
	kt_read_file(KILN_SOURCE_DIR "/docs/policy.md", &b);
	from = strstr(kiln_buf_cstr(&b), start);
	assert_non_null(from);
	from += strlen(start);
	to = strstr(from, "```");
	assert_non_null(to);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_slice_of(from, (size_t)(to - from)), "policy.md", &p,
					  &d)))
		print_error("%s\n", d.text);
	assert_non_null(p);
	assert_int_equal(p->n_keys, 3);
	assert_int_equal(p->keys[1].max_bits, 4096);
	assert_int_equal(p->attestation.n_vendor_roots, 1);
	assert_int_equal(p->n_san_dns, 1);
	kiln_policy_free(p);
	kiln_buf_cleanup(&b);
}

/* ------------------------------------------------------------ fixtures */

static void test_error_fixtures(void **state)
{
	static const struct {
		const char *file;
		kiln_err code;
		const char *msg;
	} cases[] = {
		{ "unknown-key.yaml", SCHEMA,
		  "unknown-key.yaml:22: unknown key 'colour' in 'subject' (allowed: CN, O, OU, C, L, ST, serialNumber)" },
		{ "wrong-type.yaml", SCHEMA,
		  "wrong-type.yaml:27: 'validity_days' must be an integer, got a string" },
		{ "bad-enum.yaml", SCHEMA,
		  "bad-enum.yaml:4: 'environment' must be one of production, test" },
		{ "bad-hex.yaml", SCHEMA,
		  "bad-hex.yaml:37: 'attestation.firmware[0].sha256' must be 64 hex digits (0-9, a-f)" },
		{ "none-in-production.yaml", SCHEMA,
		  "none-in-production.yaml:33: production policies must require attestation; 'none' is for test bring-up only" },
		{ "bad-placeholder.yaml", SCHEMA,
		  "bad-placeholder.yaml:25: 'san.uri[0]' has an unknown placeholder '{foo}' (allowed: {serial}, {product}, {lot})" },
		{ "bad-regex.yaml", SCHEMA,
		  "bad-regex.yaml:16: 'device_serial.pattern' is not a valid POSIX extended regex: Unmatched ( or \\(" },
		{ "duplicate-key.yaml", SCHEMA,
		  "duplicate-key.yaml:29: duplicate key 'key_usage' (first at line 28)" },
		{ "alias.yaml", SCHEMA,
		  "alias.yaml:25: YAML anchors are not allowed ('&uris'); write the value out" },
		{ "too-deep.yaml", SCHEMA, "too-deep.yaml:5: nested deeper than 12 levels" },
		{ "syntax-error.yaml", KILN_ERR_POLICY_SYNTAX,
		  "syntax-error.yaml:12: YAML syntax error: did not find expected '-' indicator (while parsing a block collection at line 9)" },
		{ "oversized.yaml", KILN_ERR_TOO_BIG,
		  "oversized.yaml:1000: the file is larger than the 65536-byte limit" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[512];
		kiln_result r;
		kiln_diag d;
		kiln_policy *p;

		snprintf(path, sizeof(path), FIXTURES "%s", cases[i].file);
		p = parse_file(path, &r, &d);
		if (r.code != cases[i].code || strcmp(d.text, cases[i].msg) != 0)
			print_error("%s: got %d '%s'\n", cases[i].file, r.code, d.text);
		assert_null(p);
		assert_int_equal(r.code, cases[i].code);
		assert_string_equal(d.text, cases[i].msg);
	}
}

/*
 * Hostile inputs (billion laughs, deep nesting, regex bombs, huge flow
 * collections) and whatever the fuzzer finds: each must parse or fail
 * cleanly and quickly, as both a policy and a config.
 */
static void test_fuzz_regressions(void **state)
{
	DIR *dir = opendir(FIXTURES "fuzz");
	struct dirent *e;
	size_t n = 0;

	(void)state;
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		char path[1024];
		kiln_policy *p = NULL;
		kiln_config cfg;
		kiln_buf b;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), FIXTURES "fuzz/%s", e->d_name);
		kt_read_file(path, &b);
		if (kiln_is_ok(kiln_policy_parse(kiln_buf_view(&b), e->d_name, &p, NULL)))
			assert_non_null(p);
		kiln_policy_free(p);
		if (kiln_is_ok(kiln_config_parse(kiln_buf_view(&b), e->d_name, &cfg, NULL)))
			assert_int_equal(cfg.version, 1);
		kiln_buf_cleanup(&b);
		n++;
	}
	closedir(dir);
	assert_true(n > 0);
}

/* ------------------------------------------------------------ rules, inline */

/*
 * A small valid policy; each case replaces one piece of it. Lines:
 *  1 product  2 environment  3 keys  4-5 ec  6 device_serial  7 pattern
 *  8 subject  9 CN  10 validity_days  11 key_usage  12 attestation  13 type
 *  14 firmware  15 entry
 */
static const char base[] =
	"product: widget\n"
	"environment: production\n"
	"keys:\n"
	"  - type: ec\n"
	"    curves: [p256]\n"
	"device_serial:\n"
	"  pattern: '^[A-Z0-9]{4,16}$'\n"
	"subject:\n"
	"  CN: \"{serial}\"\n"
	"validity_days: 365\n"
	"key_usage: [digitalSignature]\n"
	"attestation:\n"
	"  type: dice\n"
	"  firmware:\n"
	"    - {version: \"1\", sha256: "
	"\"0000000000000000000000000000000000000000000000000000000000000000\"}\n";

/* base with the first `from` replaced by `to` (which must be found). */
static char *edit(const char *from, const char *to)
{
	const char *at = strstr(base, from);
	size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);

	assert_non_null(at);
	assert_non_null(s);
	snprintf(s, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	return s;
}

static kiln_result parse_str(const char *yaml, kiln_policy **p, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_policy_parse(kiln_slice_str(yaml), "p.yaml", p, d);
}

static void expect_edit(const char *from, const char *to, const char *msg)
{
	char *yaml = edit(from, to);
	kiln_policy *p = NULL;
	kiln_diag d;
	kiln_result r = parse_str(yaml, &p, &d);

	if (r.code != SCHEMA || strcmp(d.text, msg) != 0)
		print_error("input:\n%s\ngot %d '%s'\nwant '%s'\n", yaml, r.code, d.text, msg);
	assert_int_equal(r.code, SCHEMA);
	assert_null(p);
	assert_string_equal(d.text, msg);
	free(yaml);
}

static kiln_policy *ok_edit(const char *from, const char *to)
{
	char *yaml = edit(from, to);
	kiln_policy *p = NULL;
	kiln_diag d;
	kiln_result r = parse_str(yaml, &p, &d);

	if (!kiln_is_ok(r))
		print_error("input:\n%s\ngot '%s'\n", yaml, d.text);
	KT_OK(r);
	free(yaml);
	return p;
}

#define FW0 "0000000000000000000000000000000000000000000000000000000000000000"

static void test_base_parses(void **state)
{
	kiln_policy *p = ok_edit("", "");

	(void)state;
	assert_int_equal(p->n_csr_subject_allowed, 1); /* the default: [CN] */
	assert_true(kiln_policy_csr_attr_ok(p, "CN"));
	assert_false(kiln_policy_csr_attr_ok(p, "O"));
	kiln_policy_free(p);
}

static void test_product_and_environment(void **state)
{
	(void)state;
	expect_edit("product: widget", "product: Widget",
		    "p.yaml:1: 'product' must be 1 to 63 characters a-z, 0-9 or '-', starting with a letter or digit");
	expect_edit("product: widget", "product: -widget",
		    "p.yaml:1: 'product' must be 1 to 63 characters a-z, 0-9 or '-', starting with a letter or digit");
	expect_edit("product: widget", "product: wid_get",
		    "p.yaml:1: 'product' must be 1 to 63 characters a-z, 0-9 or '-', starting with a letter or digit");
	expect_edit("product: widget", "product: ''", "p.yaml:1: 'product' must not be empty");
	expect_edit("product: widget",
		    "product: a123456789012345678901234567890123456789012345678901234567890123",
		    "p.yaml:1: 'product' is too long (64 bytes; at most 63)");
	expect_edit("product: widget\n", "", "p.yaml:1: missing required key 'product'");
	expect_edit("environment: production", "environment: service",
		    "p.yaml:2: 'environment' must be one of production, test");
	expect_edit("environment: production", "environment: Production",
		    "p.yaml:2: 'environment' must be one of production, test");
	expect_edit("environment: production\n", "description: [x]\n",
		    "p.yaml:2: 'description' must be a string, got a list");
}

static void test_keys(void **state)
{
	kiln_policy *p;

	(void)state;
	expect_edit("keys:\n  - type: ec\n    curves: [p256]\n", "keys: []\n\n\n",
		    "p.yaml:3: 'keys' must not be empty");
	expect_edit("    curves: [p256]\n", "",
		    "p.yaml:4: missing required key 'curves' in 'keys[0]' (needed for type ec)");
	expect_edit("curves: [p256]", "curves: []", "p.yaml:5: 'keys[0].curves' must not be empty");
	expect_edit("curves: [p256]", "curves: [p256, p384, p256]",
		    "p.yaml:5: duplicate entry 'p256' in 'keys[0].curves' (first at line 5)");
	expect_edit("curves: [p256]", "curves: [secp256k1]",
		    "p.yaml:5: 'keys[0].curves[0]' must be one of p256, p384, p521");
	expect_edit("type: ec", "type: dsa", "p.yaml:4: 'keys[0].type' must be one of ec, ed25519, rsa");
	expect_edit("type: ec", "type: ed25519",
		    "p.yaml:5: 'keys[0].curves' is only allowed with type ec");
	expect_edit("curves: [p256]", "curves: [p256]\n    min_bits: 2048",
		    "p.yaml:6: 'keys[0].min_bits' is only allowed with type rsa");
	expect_edit("curves: [p256]", "curves: [p256]\n    max_bits: 2048",
		    "p.yaml:6: 'keys[0].max_bits' is only allowed with type rsa");
	expect_edit("  - type: ec\n    curves: [p256]\n", "  - type: rsa\n\n",
		    "p.yaml:4: missing required key 'min_bits' in 'keys[0]' (needed for type rsa)");
	expect_edit("  - type: ec\n    curves: [p256]\n", "  - type: rsa\n    min_bits: 1024\n",
		    "p.yaml:5: 'keys[0].min_bits' must be between 2048 and 16384, got 1024");
	expect_edit("  - type: ec\n    curves: [p256]\n",
		    "  - type: rsa\n    min_bits: 4096\n    max_bits: 3072\n",
		    "p.yaml:6: 'keys[0].max_bits' (3072) is below 'min_bits' (4096)");
	expect_edit("  - type: ec\n    curves: [p256]\n",
		    "  - type: ec\n    curves: [p256]\n  - type: ed25519\n  - {type: ec, curves: [p384]}\n",
		    "p.yaml:7: 'keys[2]' repeats key type 'ec' (first at line 4); list each type once");
	expect_edit("  - type: ec\n    curves: [p256]\n",
		    "  - type: ec\n    curves: [p256]\n  - type: ed25519\n  - type: ed25519\n"
		    "  - type: ed25519\n  - type: ed25519\n  - type: ed25519\n  - type: ed25519\n"
		    "  - type: ed25519\n  - type: ed25519\n",
		    "p.yaml:13: 'keys' has more than 8 entries");
	expect_edit("    curves: [p256]\n", "    curves: p256\n",
		    "p.yaml:5: 'keys[0].curves' must be a list, got a string");
	/* The key questions. */
	p = ok_edit("  - type: ec\n    curves: [p256]\n",
		    "  - type: ec\n    curves: [p256, p521]\n  - type: rsa\n    min_bits: 3072\n"
		    "    max_bits: 4096\n  - type: ed25519\n");
	assert_true(kiln_policy_key_ok(p, "ec", "p256", 0));
	assert_true(kiln_policy_key_ok(p, "ec", "p521", 256));
	assert_false(kiln_policy_key_ok(p, "ec", "p384", 0));
	assert_false(kiln_policy_key_ok(p, "ec", NULL, 0));
	assert_true(kiln_policy_key_ok(p, "rsa", NULL, 3072));
	assert_true(kiln_policy_key_ok(p, "rsa", NULL, 4096));
	assert_false(kiln_policy_key_ok(p, "rsa", NULL, 3071));
	assert_false(kiln_policy_key_ok(p, "rsa", NULL, 4097));
	assert_false(kiln_policy_key_ok(p, "rsa", NULL, 2048));
	assert_true(kiln_policy_key_ok(p, "ed25519", NULL, 0));
	assert_false(kiln_policy_key_ok(p, "dsa", NULL, 2048));
	assert_false(kiln_policy_key_ok(p, "EC", "p256", 0));
	assert_false(kiln_policy_key_ok(p, NULL, "p256", 0));
	assert_false(kiln_policy_key_ok(NULL, "ec", "p256", 0));
	kiln_policy_free(p);
	p = ok_edit("", "");
	assert_false(kiln_policy_key_ok(p, "ed25519", NULL, 0));
	assert_false(kiln_policy_key_ok(p, "rsa", NULL, 4096));
	kiln_policy_free(p);
}

static void test_subject_and_templates(void **state)
{
	kiln_policy *p;

	(void)state;
	expect_edit("  CN: \"{serial}\"\n", "  O: \"{serial}\"\n", "p.yaml:8: 'subject' must set CN");
	expect_edit("subject:\n  CN: \"{serial}\"\n", "subject: {}\n\n",
		    "p.yaml:8: 'subject' must not be empty");
	expect_edit("subject:\n  CN: \"{serial}\"\n", "subject: [CN]\n\n",
		    "p.yaml:8: 'subject' must be a mapping, got a list");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\n  colour: blue\n",
		    "p.yaml:10: unknown key 'colour' in 'subject' (allowed: CN, O, OU, C, L, ST, serialNumber)");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\n  CN: x\n",
		    "p.yaml:10: duplicate key 'CN' in 'subject' (first at line 9)");
	expect_edit("\"{serial}\"", "\"{foo}\"",
		    "p.yaml:9: 'subject.CN' has an unknown placeholder '{foo}' (allowed: {serial}, {product}, {lot})");
	expect_edit("\"{serial}\"", "\"{serial\"",
		    "p.yaml:9: 'subject.CN' has an unbalanced '{' at character 1");
	expect_edit("\"{serial}\"", "\"x-{serial}}\"",
		    "p.yaml:9: 'subject.CN' has an unbalanced '}' at character 11");
	expect_edit("\"{serial}\"", "\"{{serial}}\"",
		    "p.yaml:9: 'subject.CN' has an unbalanced '{' at character 1");
	expect_edit("\"{serial}\"", "\"\"", "p.yaml:9: 'subject.CN' must not be empty");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\n  C: Germany\n",
		    "p.yaml:10: 'subject.C' must be a two-letter country code (ISO 3166), e.g. DE");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\n  C: \"{lot}\"\n",
		    "p.yaml:10: 'subject.C' must be a two-letter country code (ISO 3166), e.g. DE");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\ncsr_subject_allowed: [CN, email]\n",
		    "p.yaml:10: 'csr_subject_allowed[1]' must be one of CN, O, OU, C, L, ST, serialNumber");
	expect_edit("  CN: \"{serial}\"\n", "  CN: \"{serial}\"\ncsr_subject_allowed: [CN, CN]\n",
		    "p.yaml:10: duplicate entry 'CN' in 'csr_subject_allowed' (first at line 10)");
	p = ok_edit("  CN: \"{serial}\"\n",
		    "  serialNumber: \"{serial}\"\n  CN: \"{product} {serial} ({lot})\"\n  C: US\n"
		    "  ST: CA\n  L: Somewhere\n  OU: Devices\n  O: Example\n"
		    "csr_subject_allowed: [serialNumber, O]\n");
	assert_int_equal(p->n_subject, 7);
	assert_string_equal(p->subject[0].attr, "serialNumber"); /* order kept */
	assert_string_equal(p->subject[6].attr, "O");
	assert_true(kiln_policy_csr_attr_ok(p, "O"));
	assert_true(kiln_policy_csr_attr_ok(p, "serialNumber"));
	assert_false(kiln_policy_csr_attr_ok(p, "CN"));
	assert_false(kiln_policy_csr_attr_ok(p, NULL));
	assert_false(kiln_policy_csr_attr_ok(NULL, "O"));
	kiln_policy_free(p);
}

static void test_san_and_revocation(void **state)
{
	kiln_policy *p;

	(void)state;
	expect_edit("validity_days", "san:\n  uri: [\"kiln:{serial}\", \"no scheme\"]\nvalidity_days",
		    "p.yaml:11: 'san.uri[1]' must be a URI with a scheme (e.g. urn:...), without spaces");
	expect_edit("validity_days", "san:\n  uri: [\"urn:a b\"]\nvalidity_days",
		    "p.yaml:11: 'san.uri[0]' must be a URI with a scheme (e.g. urn:...), without spaces");
	expect_edit("validity_days", "san:\n  uri: [\"1urn:x\"]\nvalidity_days",
		    "p.yaml:11: 'san.uri[0]' must be a URI with a scheme (e.g. urn:...), without spaces");
	expect_edit("validity_days", "san:\n  dns: [\"{serial}_x.example.com\"]\nvalidity_days",
		    "p.yaml:11: 'san.dns[0]' must hold only letters, digits, '-', '.' and placeholders");
	expect_edit("validity_days", "san:\n  dns: [\"{seriel}.example.com\"]\nvalidity_days",
		    "p.yaml:11: 'san.dns[0]' has an unknown placeholder '{seriel}' (allowed: {serial}, {product}, {lot})");
	expect_edit("validity_days", "san:\n  dns: [a, b, c, d, e]\nvalidity_days",
		    "p.yaml:11: 'san.dns' has more than 4 entries");
	expect_edit("validity_days", "san:\n  dns: [a, a]\nvalidity_days",
		    "p.yaml:11: duplicate entry 'a' in 'san.dns' (first at line 11)");
	expect_edit("validity_days", "san:\n  email: [a]\nvalidity_days",
		    "p.yaml:11: unknown key 'email' in 'san' (allowed: uri, dns)");
	expect_edit("validity_days", "revocation:\n  crl_url: ftp://x/crl\nvalidity_days",
		    "p.yaml:11: 'revocation.crl_url' must be an http:// or https:// URL");
	expect_edit("validity_days", "revocation:\n  ocsp_url: \"http://\"\nvalidity_days",
		    "p.yaml:11: 'revocation.ocsp_url' must be an http:// or https:// URL");
	expect_edit("validity_days", "revocation:\n  ocsp_url: \"http:///x\"\nvalidity_days",
		    "p.yaml:11: 'revocation.ocsp_url' must be an http:// or https:// URL");
	expect_edit("validity_days", "revocation:\n  ocsp_url: \"http://a b\"\nvalidity_days",
		    "p.yaml:11: 'revocation.ocsp_url' must be an http:// or https:// URL");
	p = ok_edit("validity_days",
		    "san:\n  uri: [\"urn:kiln:{product}:{serial}\", \"https://x.example/{lot}\"]\n"
		    "  dns: [\"{serial}.example.com\"]\n"
		    "revocation:\n  crl_url: https://pki.example/crl\n  ocsp_url: http://ocsp:8080/\n"
		    "validity_days");
	assert_int_equal(p->n_san_uri, 2);
	assert_int_equal(p->n_san_dns, 1);
	assert_string_equal(p->ocsp_url, "http://ocsp:8080/");
	kiln_policy_free(p);
}

static void test_validity_and_usage(void **state)
{
	kiln_policy *p;

	(void)state;
	expect_edit("validity_days: 365", "validity_days: 0",
		    "p.yaml:10: 'validity_days' must be between 1 and 36500, got 0");
	expect_edit("validity_days: 365", "validity_days: 36501",
		    "p.yaml:10: 'validity_days' must be between 1 and 36500, got 36501");
	expect_edit("validity_days: 365", "validity_days: '365'",
		    "p.yaml:10: 'validity_days' must be an integer, got a string");
	expect_edit("validity_days: 365\n", "", "p.yaml:1: missing required key 'validity_days'");
	expect_edit("key_usage: [digitalSignature]", "key_usage: []",
		    "p.yaml:11: 'key_usage' must not be empty");
	expect_edit("key_usage: [digitalSignature]", "key_usage: [digitalsignature]",
		    "p.yaml:11: 'key_usage[0]' must be one of digitalSignature, nonRepudiation, "
		    "keyEncipherment, dataEncipherment, keyAgreement");
	expect_edit("key_usage: [digitalSignature]",
		    "key_usage: [digitalSignature]\nextended_key_usage: [clientAuth, anyExtendedKeyUsage]",
		    "p.yaml:12: 'extended_key_usage[1]' must be one of clientAuth, serverAuth, "
		    "codeSigning, emailProtection");
	p = ok_edit("key_usage: [digitalSignature]",
		    "key_usage: [digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, "
		    "keyAgreement]\nextended_key_usage: [clientAuth, serverAuth, codeSigning, "
		    "emailProtection]");
	assert_int_equal(p->key_usage, 0x1f);
	assert_int_equal(p->ext_key_usage, 0xf);
	kiln_policy_free(p);
	/* An empty EKU list means no extendedKeyUsage extension. */
	p = ok_edit("key_usage: [digitalSignature]",
		    "key_usage: [digitalSignature]\nextended_key_usage: []");
	assert_int_equal(p->ext_key_usage, 0);
	kiln_policy_free(p);
}

#define PEM                                                                   \
	"-----BEGIN CERTIFICATE-----\\n"                                       \
	"MIIBkDCCATegAwIBAgIUF8qKHa7K+Y6zKKeERkb1p0l/q1QwCgYIKoZIzj0EAwIw\\n" \
	"kRJx8ivoHvquqacAZHLwp+cb9PE=\\n"                                      \
	"-----END CERTIFICATE-----\\n"

#define ATT_TAIL                                                                  \
	"attestation:\n  type: dice\n  firmware:\n    - {version: \"1\", sha256: \"" FW0 "\"}\n"

/* The base policy with its attestation section (from line 12 on) replaced. */
static void expect_att(const char *section, const char *msg)
{
	expect_edit(ATT_TAIL, section, msg);
}

static kiln_policy *ok_att(const char *section)
{
	return ok_edit(ATT_TAIL, section);
}

/* head followed by n copies of entry, as a C string on the heap (caller frees). */
static char *repeat_entries(const char *head, const char *entry, size_t n)
{
	kiln_buf b;
	size_t len;

	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&b, head));
	for (size_t i = 0; i < n; i++)
		KT_OK(kiln_buf_append_str(&b, entry));
	return (char *)kiln_buf_take(&b, &len);
}

static void expect_yaml(const char *yaml, const char *msg)
{
	kiln_policy *p = NULL;
	kiln_diag d;
	kiln_result r = parse_str(yaml, &p, &d);

	if (r.code != SCHEMA || strcmp(d.text, msg) != 0)
		print_error("input:\n%s\ngot %d '%s'\nwant '%s'\n", yaml, r.code, d.text, msg);
	assert_int_equal(r.code, SCHEMA);
	assert_null(p);
	assert_string_equal(d.text, msg);
}

static void test_attestation_types(void **state)
{
	kiln_policy *p;

	(void)state;
	expect_att("attestation:\n  type: tpm3\n",
		   "p.yaml:13: 'attestation.type' must be one of none, dice, tpm2, secure-element");
	expect_att("attestation:\n  type: none\n",
		   "p.yaml:13: production policies must require attestation; 'none' is for test bring-up only");
	expect_att("", "p.yaml:1: missing required key 'attestation'");
	expect_att("attestation: {}\n", "p.yaml:12: missing required key 'type' in 'attestation'");
	expect_att("attestation: dice\n", "p.yaml:12: 'attestation' must be a mapping, got a string");
	expect_att("attestation:\n  type: dice\n",
		   "p.yaml:12: missing required key 'firmware' in 'attestation' (needed for type dice)");
	expect_att("attestation:\n  type: dice\n  firmware: []\n",
		   "p.yaml:14: 'attestation.firmware' must not be empty for attestation type dice");
	expect_att(ATT_TAIL "  ek_roots: [\"" PEM "\"]\n",
		   "p.yaml:16: 'attestation.ek_roots' is not used with attestation type dice");
	expect_att(ATT_TAIL "  pcrs: {sha256: {0: \"" FW0 "\"}}\n",
		   "p.yaml:16: 'attestation.pcrs' is not used with attestation type dice");
	expect_att("attestation:\n  type: tpm2\n  pcrs: {sha256: {0: \"" FW0 "\"}}\n",
		   "p.yaml:12: missing required key 'ek_roots' in 'attestation' (needed for type tpm2)");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: []\n",
		   "p.yaml:14: 'attestation.ek_roots' must not be empty for attestation type tpm2");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n",
		   "p.yaml:12: missing required key 'pcrs' in 'attestation' (needed for type tpm2)");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs: {}\n",
		   "p.yaml:15: missing required key 'sha256' in 'attestation.pcrs'");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs: {sha256: {}}\n",
		   "p.yaml:15: 'attestation.pcrs' must not be empty for attestation type tpm2");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs:\n    sha1: {}\n",
		   "p.yaml:16: unknown key 'sha1' in 'attestation.pcrs' (allowed: sha256)");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs:\n    sha256:\n"
		   "      24: \"" FW0 "\"\n",
		   "p.yaml:17: keys in 'attestation.pcrs.sha256' must be between 0 and 23, got 24");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs:\n    sha256:\n"
		   "      1: \"" FW0 "\"\n      1: \"" FW0 "\"\n",
		   "p.yaml:18: duplicate key '1' in 'attestation.pcrs.sha256' (first at line 17)");
	expect_att("attestation:\n  type: tpm2\n  ek_roots: [\"" PEM "\"]\n  pcrs:\n    sha256:\n"
		   "      1: \"00\"\n",
		   "p.yaml:17: 'attestation.pcrs.sha256.1' must be 64 hex digits, got 2 characters");
	expect_att("attestation:\n  type: secure-element\n",
		   "p.yaml:12: missing required key 'vendor_roots' in 'attestation' (needed for type secure-element)");
	expect_att("attestation:\n  type: secure-element\n  pcrs: {sha256: {0: \"" FW0 "\"}}\n",
		   "p.yaml:14: 'attestation.pcrs' is not used with attestation type secure-element");
	p = ok_att("attestation:\n  type: secure-element\n  vendor_roots: [\"" PEM "\"]\n");
	assert_int_equal(p->attestation.type, KILN_ATTEST_SE);
	assert_int_equal(p->attestation.n_vendor_roots, 1);
	kiln_policy_free(p);
	/* tpm2 may also pin firmware and vendor roots. */
	p = ok_att(ATT_TAIL "  vendor_roots: [\"" PEM "\"]\n");
	assert_int_equal(p->attestation.n_vendor_roots, 1);
	kiln_policy_free(p);
	/* Test policies may go without evidence, but then say nothing more. */
	{
		char *yaml = edit("environment: production\n", "environment: test\n");
		char *none = strstr(yaml, "type: dice");

		assert_non_null(none);
		memcpy(none, "type: none", 10);
		expect_yaml(yaml, "p.yaml:14: 'attestation.firmware' is not used with attestation type none");
		/* Without the firmware list it is a valid bring-up policy. */
		*strstr(yaml, "  firmware:") = '\0';
		KT_OK(parse_str(yaml, &p, NULL));
		assert_int_equal(p->env, KILN_ENV_TEST);
		assert_int_equal(p->attestation.type, KILN_ATTEST_NONE);
		kiln_policy_free(p);
		free(yaml);
	}
}
static void test_attestation_lists(void **state)
{
	char *yaml;
	kiln_policy *p;

	(void)state;
	expect_att("attestation:\n  type: dice\n  firmware:\n    - version: \"1\"\n",
		   "p.yaml:15: missing required key 'sha256' in 'attestation.firmware[0]'");
	expect_att("attestation:\n  type: dice\n  firmware:\n    - sha256: \"" FW0 "\"\n",
		   "p.yaml:15: missing required key 'version' in 'attestation.firmware[0]'");
	expect_att("attestation:\n  type: dice\n  firmware:\n    - {version: \"\", sha256: \"" FW0 "\"}\n",
		   "p.yaml:15: 'attestation.firmware[0].version' must not be empty");
	expect_att("attestation:\n  type: dice\n  firmware:\n    - {version: "
		   "\"1234567890123456789012345678901234567890123456789012345678901234\", sha256: \""
		   FW0 "\"}\n",
		   "p.yaml:15: 'attestation.firmware[0].version' is too long (64 bytes; at most 63)");
	expect_att("attestation:\n  type: dice\n  firmware:\n    - {version: \"1\", sha256: \"" FW0
		   "\", build: 7}\n",
		   "p.yaml:15: unknown key 'build' in 'attestation.firmware[0]' (allowed: version, sha256)");
	expect_att("attestation:\n  type: dice\n  firmware:\n    - {version: \"1\", sha256: \""
		   "00000000000000000000000000000000000000000000000000000000000000\"}\n",
		   "p.yaml:15: 'attestation.firmware[0].sha256' must be 64 hex digits, got 62 characters");
	/* 64 firmware entries fit; the 65th is refused on its own line. */
	yaml = repeat_entries("attestation:\n  type: dice\n  firmware:\n",
			      "    - {version: \"1\", sha256: \"" FW0 "\"}\n", 64);
	p = ok_att(yaml);
	assert_int_equal(p->attestation.n_firmware, 64);
	kiln_policy_free(p);
	free(yaml);
	yaml = repeat_entries("attestation:\n  type: dice\n  firmware:\n",
			      "    - {version: \"1\", sha256: \"" FW0 "\"}\n", 65);
	expect_att(yaml, "p.yaml:79: 'attestation.firmware' has more than 64 entries");
	free(yaml);

	/* Roots must look like one PEM certificate each. */
	expect_att(ATT_TAIL "  vendor_roots: [hello]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"" PEM PEM "\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"-----BEGIN CERTIFICATE-----\\n-----END CERTIFICATE-----\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"-----BEGIN CERTIFICATE-----\\nMII*\\n-----END CERTIFICATE-----\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"" PEM "junk\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must be one PEM certificate "
		   "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)");
	expect_att(ATT_TAIL "  vendor_roots: [\"" PEM "\", \"" PEM "\"]\n",
		   "p.yaml:16: duplicate entry '-----BEGIN CERTIFICATE-----?MIIBkDCCATeg...' in "
		   "'attestation.vendor_roots' (first at line 16)");
	expect_att(ATT_TAIL "  vendor_roots: [\"\\t" PEM "\"]\n",
		   "p.yaml:16: 'attestation.vendor_roots[0]' must not contain control characters");
	/* Block style, with blank space around the certificate. */
	p = ok_att(ATT_TAIL "  vendor_roots:\n    - |\n\n      -----BEGIN CERTIFICATE-----\n"
		   "      MIIBkDCCATegAwIBAgIUF8qKHa7K+Y6zKKeERkb1p0l/q1QwCgYIKoZIzj0EAwIw\n"
		   "      kRJx8ivoHvquqacAZHLwp+cb9PE=\n      -----END CERTIFICATE-----\n\n");
	assert_non_null(p->attestation.vendor_roots[0]);
	kiln_policy_free(p);
	/* Eight roots fit, a ninth does not. */
	yaml = repeat_entries(ATT_TAIL "  vendor_roots:\n", "    - \"" PEM "\"\n", 8);
	{
		/* Make the entries distinct: vary one base64 character per entry. */
		char *at = yaml;

		for (char ch = 'a'; (at = strstr(at, "kRJx")) != NULL; ch++)
			*at++ = ch;
	}
	p = ok_att(yaml);
	assert_int_equal(p->attestation.n_vendor_roots, 8);
	kiln_policy_free(p);
	free(yaml);
	yaml = repeat_entries(ATT_TAIL "  vendor_roots:\n", "    - \"" PEM "\"\n", 9);
	{
		char *at = yaml;

		for (char ch = 'a'; (at = strstr(at, "kRJx")) != NULL; ch++)
			*at++ = ch;
	}
	expect_att(yaml, "p.yaml:25: 'attestation.vendor_roots' has more than 8 entries");
	free(yaml);
	/* A root of more than 8 KiB is refused before its shape is looked at. */
	yaml = repeat_entries(ATT_TAIL "  vendor_roots: [", "a", KILN_POLICY_PEM_MAX + 1);
	{
		char *full = repeat_entries(yaml, "]\n", 1);

		expect_att(full, "p.yaml:16: 'attestation.vendor_roots[0]' is too long (8193 bytes; at most 8192)");
		free(full);
	}
	free(yaml);
}

static void test_serial_pattern(void **state)
{
	kiln_policy *p;
	char serial[200];

	(void)state;
	expect_edit("'^[A-Z0-9]{4,16}$'", "'[A-Z0-9]{4,16}'",
		    "p.yaml:7: 'device_serial.pattern' must be anchored: start with ^ and end with $");
	expect_edit("'^[A-Z0-9]{4,16}$'", "'^A|B$'",
		    "p.yaml:7: 'device_serial.pattern' must not use '|' outside parentheses: it "
		    "splits the anchors; write ^(A|B)$");
	expect_edit("'^[A-Z0-9]{4,16}$'", "'^([A-Z]$'",
		    "p.yaml:7: 'device_serial.pattern' is not a valid POSIX extended regex: Unmatched ( or \\(");
	expect_edit("'^[A-Z0-9]{4,16}$'", "''", "p.yaml:7: 'device_serial.pattern' must not be empty");
	expect_edit("device_serial:\n  pattern: '^[A-Z0-9]{4,16}$'\n", "device_serial: {}\n\n",
		    "p.yaml:6: missing required key 'pattern' in 'device_serial'");
	expect_edit("device_serial:\n  pattern: '^[A-Z0-9]{4,16}$'\n", "\n\n",
		    "p.yaml:1: missing required key 'device_serial'");
	p = ok_edit("", "");
	assert_true(kiln_policy_serial_ok(p, "ABCD"));
	assert_true(kiln_policy_serial_ok(p, "ABCD0123456789XY"));
	assert_false(kiln_policy_serial_ok(p, "ABC"));
	assert_false(kiln_policy_serial_ok(p, "ABCD0123456789XYZ"));
	assert_false(kiln_policy_serial_ok(p, "abcd"));
	assert_false(kiln_policy_serial_ok(p, "xABCD"));
	assert_false(kiln_policy_serial_ok(p, ""));
	assert_false(kiln_policy_serial_ok(p, NULL));
	assert_false(kiln_policy_serial_ok(NULL, "ABCD"));
	kiln_policy_free(p);
	/* Printable ASCII only, at most 127 characters, whatever the pattern says. */
	p = ok_edit("'^[A-Z0-9]{4,16}$'", "'^.+$'");
	memset(serial, 'A', sizeof(serial));
	serial[127] = '\0';
	assert_true(kiln_policy_serial_ok(p, serial));
	serial[127] = 'A';
	serial[128] = '\0';
	assert_false(kiln_policy_serial_ok(p, serial));
	assert_true(kiln_policy_serial_ok(p, "A B~"));
	assert_false(kiln_policy_serial_ok(p, "AB\nCD"));
	assert_false(kiln_policy_serial_ok(p, "AB\x7f"));
	assert_false(kiln_policy_serial_ok(p, "AB\xc3\xa9"));
	kiln_policy_free(p);
}

static void test_renewal_and_est(void **state)
{
	kiln_policy *p;

	(void)state;
	p = ok_edit("validity_days", "renewal:\n  window_days: 30\n  require_new_key: true\n"
				     "  min_firmware_version: \"1.2.0\"\nvalidity_days");
	assert_int_equal(p->renewal.window_days, 30);
	assert_int_equal(p->renewal.require_new_key, 1);
	assert_string_equal(p->renewal.min_firmware_version, "1.2.0");
	assert_int_equal(p->est_enroll, KILN_EST_ENROLL_NONE);
	kiln_policy_free(p);
	p = ok_edit("", "");
	assert_int_equal(p->renewal.window_days, 0);
	assert_int_equal(p->renewal.require_new_key, 0);
	assert_string_equal(p->renewal.min_firmware_version, "");
	kiln_policy_free(p);
	expect_edit("validity_days", "renewal:\n  window_days: 40000\nvalidity_days",
		    "p.yaml:11: 'renewal.window_days' must be between 0 and 36500, got 40000");
	expect_edit("validity_days", "renewal:\n  min_firmware_version: \"1.2-rc1\"\nvalidity_days",
		    "p.yaml:11: a firmware version is dotted decimal (\"1.2.0\")");
	expect_edit("validity_days", "est:\n  enroll: open\nvalidity_days",
		    "p.yaml:11: EST enrollment of new identities carries no attestation: only "
		    "policies with attestation type none may allow it");
	{
		char *yaml = edit("environment: production\n", "environment: test\nest:\n  enroll: station\n");
		char *none = strstr(yaml, "type: dice");
		kiln_diag d;

		assert_non_null(none);
		memcpy(none, "type: none", 10);
		none[10] = '\0';
		KT_OK(parse_str(yaml, &p, &d));
		assert_int_equal(p->est_enroll, KILN_EST_ENROLL_STATION);
		kiln_policy_free(p);
		free(yaml);
	}
	/* Bootstrap certificates: the roots come with enroll: bootstrap, and only with it. */
	{
		static const char *const est[] = {
			"est:\n  enroll: bootstrap\n  bootstrap_roots: [\"" PEM "\"]\n",
			"est:\n  enroll: bootstrap\n",
			"est:\n  enroll: open\n  bootstrap_roots: [\"" PEM "\"]\n",
		};
		static const char *const want[] = {
			NULL,
			"enroll: bootstrap needs est.bootstrap_roots, the CA certificates that "
			"issue the devices' bootstrap certificates",
			"'bootstrap_roots' is used only with enroll: bootstrap",
		};

		for (size_t i = 0; i < 3; i++) {
			char *yaml = edit("environment: production\n", "environment: test\n");
			char *none = strstr(yaml, "type: dice"), *full;
			size_t n;
			kiln_diag d;

			assert_non_null(none);
			memcpy(none, "type: none", 10);
			none[10] = '\0';
			n = strlen(yaml) + strlen(est[i]) + 2;
			full = malloc(n);
			assert_non_null(full);
			(void)snprintf(full, n, "%s\n%s", yaml, est[i]);
			kiln_diag_clear(&d);
			if (want[i] == NULL) {
				KT_OK(parse_str(full, &p, &d));
				assert_int_equal(p->est_enroll, KILN_EST_ENROLL_BOOTSTRAP);
				assert_int_equal(p->n_est_bootstrap_roots, 1);
				assert_non_null(strstr(p->est_bootstrap_roots[0], "BEGIN CERTIFICATE"));
				kiln_policy_free(p);
			} else {
				assert_false(kiln_is_ok(parse_str(full, &p, &d)));
				assert_non_null(strstr(d.text, want[i]));
			}
			free(full);
			free(yaml);
		}
	}
}

static void test_version_cmp(void **state)
{
	(void)state;
	assert_true(kiln_policy_version_cmp("1.10", "1.9") > 0);
	assert_true(kiln_policy_version_cmp("1.2", "1.2.0") == 0);
	assert_true(kiln_policy_version_cmp("1.2.0", "1.2.1") < 0);
	assert_true(kiln_policy_version_cmp("", "0.1") < 0);
	assert_true(kiln_policy_version_cmp("2", "10") < 0);
	assert_true(kiln_policy_version_cmp("01.0", "1") == 0);
	assert_true(kiln_policy_version_cmp("1.a", "1.b") < 0);
}

static void test_api_edges(void **state)
{
	kiln_policy *p = (kiln_policy *)1;
	kiln_diag d;

	(void)state;
	KT_ERR(kiln_policy_parse(kiln_slice_str(base), "p.yaml", NULL, NULL), KILN_ERR_ARG);
	/* A failed parse leaves *out NULL. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_policy_parse(kiln_slice_str("- x\n"), NULL, &p, &d), SCHEMA);
	assert_null(p);
	assert_string_equal(d.text, "(input):1: the document must be a mapping of keys, got a list");
	KT_OK(kiln_policy_parse(kiln_slice_str(base), NULL, &p, NULL));
	kiln_policy_free(p);
	kiln_policy_free(NULL);
	/* Config files are not policies. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_policy_parse(kiln_slice_str("version: 1\n"), "kiln.yaml", &p, &d), SCHEMA);
	assert_string_equal(d.text,
			    "kiln.yaml:1: unknown key 'version' (allowed: product, environment, description, "
			    "keys, device_serial, subject, csr_subject_allowed, san, validity_days, "
			    "key_usage, extended_key_usage, revocation, attestation, renewal, est)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_widget_example),
		cmocka_unit_test(test_widget_test_example),
		cmocka_unit_test(test_tpm2_fixture),
		cmocka_unit_test(test_docs_example),
		cmocka_unit_test(test_error_fixtures),
		cmocka_unit_test(test_fuzz_regressions),
		cmocka_unit_test(test_base_parses),
		cmocka_unit_test(test_product_and_environment),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_subject_and_templates),
		cmocka_unit_test(test_san_and_revocation),
		cmocka_unit_test(test_validity_and_usage),
		cmocka_unit_test(test_attestation_types),
		cmocka_unit_test(test_attestation_lists),
		cmocka_unit_test(test_serial_pattern),
		cmocka_unit_test(test_renewal_and_est),
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_api_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
