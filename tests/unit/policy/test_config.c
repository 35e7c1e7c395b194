/*
 * kiln.yaml (src/policy/config.c): defaults, the writer and its round trip
 * through the parser, and every schema error with its line.
 */
#include "support/support.h"

#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG KILN_ERR_CONFIG

/*
 * Only the required keys. Lines: 1 version  2 database  3 hsm  4 module
 * 5 tokens  6 production  7 test  8 service  9 ca  10 algorithm
 */
static const char minimal[] =
	"version: 1\n"
	"database: kiln.db\n"
	"hsm:\n"
	"  module: /usr/lib/softhsm/libsofthsm2.so\n"
	"  tokens:\n"
	"    production: {label: kiln-prod, pin_file: secrets/kiln-prod.pin}\n"
	"    test: {label: kiln-test, pin_file: secrets/kiln-test.pin}\n"
	"    service: {label: kiln-service, pin_file: secrets/kiln-service.pin}\n"
	"ca:\n"
	"  algorithm: p384\n";

static char *edit(const char *from, const char *to)
{
	const char *at = strstr(minimal, from);
	size_t n = strlen(minimal) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);

	assert_non_null(at);
	assert_non_null(s);
	snprintf(s, n, "%.*s%s%s", (int)(at - minimal), minimal, to, at + strlen(from));
	return s;
}

static void expect_yaml(const char *yaml, kiln_err code, const char *msg)
{
	kiln_config cfg, before;
	kiln_diag d;
	kiln_result r;

	kiln_config_defaults(&cfg);
	cfg.version = 77;
	before = cfg;
	kiln_diag_clear(&d);
	r = kiln_config_parse(kiln_slice_str(yaml), "kiln.yaml", &cfg, &d);
	if (r.code != code || strcmp(d.text, msg) != 0)
		print_error("input:\n%s\ngot %d '%s'\nwant '%s'\n", yaml, r.code, d.text, msg);
	assert_int_equal(r.code, code);
	assert_string_equal(d.text, msg);
	/* A failed parse leaves the caller's struct alone. */
	assert_memory_equal(&cfg, &before, sizeof(cfg));
}

static void expect_edit(const char *from, const char *to, const char *msg)
{
	char *yaml = edit(from, to);

	expect_yaml(yaml, CONFIG, msg);
	free(yaml);
}

static void ok_edit(const char *from, const char *to, kiln_config *cfg)
{
	char *yaml = edit(from, to);
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = kiln_config_parse(kiln_slice_str(yaml), "kiln.yaml", cfg, &d);
	if (!kiln_is_ok(r))
		print_error("input:\n%s\ngot '%s'\n", yaml, d.text);
	KT_OK(r);
	free(yaml);
}

static void test_defaults(void **state)
{
	kiln_config c;

	(void)state;
	memset(&c, 0x55, sizeof(c));
	kiln_config_defaults(&c);
	assert_int_equal(c.version, 1);
	assert_string_equal(c.database, "kiln.db");
	assert_string_equal(c.hsm_module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(c.softhsm2_conf, "hsm/softhsm2.conf");
	assert_int_equal(c.hsm_sessions, 4);
	assert_string_equal(c.tokens[KILN_ENV_NONE].label, "");
	assert_string_equal(c.tokens[KILN_ENV_PRODUCTION].label, "kiln-prod");
	assert_string_equal(c.tokens[KILN_ENV_PRODUCTION].pin_file, "secrets/kiln-prod.pin");
	assert_string_equal(c.tokens[KILN_ENV_TEST].label, "kiln-test");
	assert_string_equal(c.tokens[KILN_ENV_TEST].pin_file, "secrets/kiln-test.pin");
	assert_string_equal(c.tokens[KILN_ENV_SERVICE].label, "kiln-service");
	assert_string_equal(c.tokens[KILN_ENV_SERVICE].pin_file, "secrets/kiln-service.pin");
	assert_string_equal(c.ca_algorithm, "p256");
	assert_int_equal(c.root_validity_days, 7300);
	assert_int_equal(c.issuing_validity_days, 3650);
	assert_int_equal(c.identity_validity_days, 825);
	assert_string_equal(c.public_url, "http://127.0.0.1:8443");
	assert_string_equal(c.listen, "127.0.0.1:8443");
	assert_int_equal(c.approvals.quorum, 2);
	assert_int_equal(c.approvals.request_ttl_s, 86400);
	assert_int_equal(c.approvals.policy_activate, 0);
}

static void round_trip(const kiln_config *c)
{
	kiln_config back;
	kiln_diag d;
	kiln_buf b;

	kiln_buf_init(&b, KILN_POLICY_MAX_BYTES);
	KT_OK(kiln_config_format(c, &b));
	kiln_diag_clear(&d);
	memset(&back, 0xaa, sizeof(back));
	if (!kiln_is_ok(kiln_config_parse(kiln_buf_view(&b), "kiln.yaml", &back, &d)))
		print_error("%s\n%s\n", kiln_buf_cstr(&b), d.text);
	assert_int_equal(d.code, KILN_OK);
	assert_memory_equal(&back, c, sizeof(back));
	kiln_buf_cleanup(&b);
}

static void test_format_round_trip(void **state)
{
	kiln_config c;
	kiln_buf b;

	(void)state;
	kiln_config_defaults(&c);
	round_trip(&c);

	kiln_buf_init(&b, 4096);
	KT_OK(kiln_buf_append_str(&b, "prefix\n"));
	KT_OK(kiln_config_format(&c, &b));
	/* Appends, with a comment header first. */
	assert_memory_equal(b.ptr, "prefix\n# kiln deployment configuration", 38);
	assert_non_null(strstr(kiln_buf_cstr(&b), "\n    production:\n      label: \"kiln-prod\"\n"));
	kiln_buf_cleanup(&b);

	/* Text YAML would misread unless quoted, and every field changed. */
	memset(&c, 0, sizeof(c));
	c.version = 1;
	snprintf(c.database, sizeof(c.database), "postgresql://kiln@db/kiln?x=\"1\"&y=\\2 #3");
	snprintf(c.hsm_module, sizeof(c.hsm_module), "/opt/hsm/lib: %s", "yes");
	c.softhsm2_conf[0] = '\0';
	c.hsm_sessions = 64;
	snprintf(c.tokens[KILN_ENV_PRODUCTION].label, sizeof(c.tokens[0].label), "%s",
		 "0123456789012345678901234567890");
	snprintf(c.tokens[KILN_ENV_PRODUCTION].pin_file, sizeof(c.tokens[0].pin_file), "p");
	snprintf(c.tokens[KILN_ENV_TEST].label, sizeof(c.tokens[0].label), "'test' & *x");
	snprintf(c.tokens[KILN_ENV_TEST].pin_file, sizeof(c.tokens[0].pin_file), "- t");
	snprintf(c.tokens[KILN_ENV_SERVICE].label, sizeof(c.tokens[0].label), "{svc}");
	snprintf(c.tokens[KILN_ENV_SERVICE].pin_file, sizeof(c.tokens[0].pin_file),
		 "/srv/kiln/p\xc3\xa9n");
	snprintf(c.ca_algorithm, sizeof(c.ca_algorithm), "rsa3072");
	c.root_validity_days = 36500;
	c.issuing_validity_days = 1;
	c.identity_validity_days = 1;
	snprintf(c.public_url, sizeof(c.public_url), "https://pki.example.com:9443/kiln");
	snprintf(c.listen, sizeof(c.listen), "[::1]:1");
	c.checkpoint_interval_s = 86400;
	c.checkpoint_entries = 1;
	c.crl_validity_hours = 8760;
	c.ocsp_validity_hours = 1;
	c.approvals.quorum = 16;
	c.approvals.request_ttl_s = 1;
	c.approvals.policy_activate = 3;
	c.approvals.identity_add = 0;
	c.approvals.revoke_bulk = 16;
	c.approvals.ca_rotate = 1;
	c.approvals.backup_restore = 2;
	round_trip(&c);
}

/* docs/policy.md shows exactly what kiln init writes. */
static void test_docs_match_writer(void **state)
{
	static const char start[] = "```yaml\n# kiln deployment configuration";
	const char *from, *to;
	kiln_config c;
	kiln_buf doc, out;

	(void)state;
	kt_read_file(KILN_SOURCE_DIR "/docs/policy.md", &doc);
	from = strstr(kiln_buf_cstr(&doc), start);
	assert_non_null(from);
	from += strlen("```yaml\n");
	to = strstr(from, "```");
	assert_non_null(to);
	kiln_config_defaults(&c);
	kiln_buf_init(&out, KILN_POLICY_MAX_BYTES);
	KT_OK(kiln_config_format(&c, &out));
	assert_int_equal(out.len, (size_t)(to - from));
	assert_memory_equal(out.ptr, from, out.len);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&doc);
}

static void test_format_errors(void **state)
{
	kiln_config c;
	kiln_buf b;

	(void)state;
	kiln_config_defaults(&c);
	kiln_buf_init(&b, 100);
	KT_OK(kiln_buf_append_str(&b, "keep"));
	/* Too small a buffer: nothing appended. */
	KT_ERR(kiln_config_format(&c, &b), KILN_ERR_TOO_BIG);
	assert_string_equal(kiln_buf_cstr(&b), "keep");
	kiln_buf_cleanup(&b);
	/* Control characters are escaped, so the output stays one value per line... */
	kiln_buf_init(&b, 8192);
	snprintf(c.database, sizeof(c.database), "a\tb\n");
	KT_OK(kiln_config_format(&c, &b));
	assert_non_null(strstr(kiln_buf_cstr(&b), "\ndatabase: \"a\\x09b\\x0a\"\n"));
	/* ...and the parser, which refuses them, says where. */
	expect_yaml(kiln_buf_cstr(&b), CONFIG, "kiln.yaml:5: 'database' must not contain control characters");
	kiln_buf_cleanup(&b);
	/* Unicode line breaks are escaped too: written faithfully, then refused, never folded. */
	kiln_buf_init(&b, 8192);
	snprintf(c.database, sizeof(c.database), "a\xc2\x85" "b\xe2\x80\xa8" "c\xe2\x80\xa9" "d\xc2\x9b\xc3\xa9");
	KT_OK(kiln_config_format(&c, &b));
	assert_non_null(strstr(kiln_buf_cstr(&b), "\ndatabase: \"a\\x85b\\Lc\\Pd\\x9b\xc3\xa9\"\n"));
	expect_yaml(kiln_buf_cstr(&b), CONFIG, "kiln.yaml:5: 'database' must not contain control characters");
	kiln_buf_cleanup(&b);
	kiln_config_defaults(&c);
	/* A field without its NUL is refused, not overread. */
	kiln_buf_init(&b, 8192);
	memset(c.listen, 'x', sizeof(c.listen));
	KT_ERR(kiln_config_format(&c, &b), KILN_ERR_ARG);
	assert_int_equal(b.len, 0);
	KT_ERR(kiln_config_format(NULL, &b), KILN_ERR_ARG);
	KT_ERR(kiln_config_format(&c, NULL), KILN_ERR_ARG);
	kiln_buf_cleanup(&b);
}

static void test_minimal(void **state)
{
	kiln_config c, want;

	(void)state;
	ok_edit("", "", &c);
	kiln_config_defaults(&want);
	/* Absent softhsm2_conf means the module is not SoftHSM2. */
	want.softhsm2_conf[0] = '\0';
	memset(want.softhsm2_conf, 0, sizeof(want.softhsm2_conf));
	snprintf(want.ca_algorithm, sizeof(want.ca_algorithm), "p384");
	assert_memory_equal(&c, &want, sizeof(c));
	KT_ERR(kiln_config_parse(kiln_slice_str(minimal), "kiln.yaml", NULL, NULL), KILN_ERR_ARG);
	/* The shipped fuzz seed is what kiln init writes. */
	{
		kiln_buf b;

		kt_read_file(KILN_SOURCE_DIR "/fuzz/corpus/policy/kiln.yaml", &b);
		KT_OK(kiln_config_parse(kiln_buf_view(&b), "kiln.yaml", &c, NULL));
		kiln_config_defaults(&want);
		assert_memory_equal(&c, &want, sizeof(c));
		kiln_buf_cleanup(&b);
	}
}

static void test_schema_errors(void **state)
{
	char *big;

	(void)state;
	expect_edit("version: 1", "version: 2", "kiln.yaml:1: 'version' must be 1, got 2");
	expect_edit("version: 1\n", "", "kiln.yaml:1: missing required key 'version'");
	expect_edit("database: kiln.db", "database: ''", "kiln.yaml:2: 'database' must not be empty");
	expect_edit("database: kiln.db", "database: [a]",
		    "kiln.yaml:2: 'database' must be a string, got a list");
	expect_edit("  module: /usr/lib/softhsm/libsofthsm2.so\n", "  module:\n",
		    "kiln.yaml:4: 'hsm.module' must be a string, got null");
	expect_edit("  module: /usr/lib/softhsm/libsofthsm2.so\n", "",
		    "kiln.yaml:3: missing required key 'module' in 'hsm'");
	expect_edit("  module:", "  sessions: 0\n  module:",
		    "kiln.yaml:4: 'hsm.sessions' must be between 1 and 64, got 0");
	expect_edit("  module:", "  sessions: 65\n  module:",
		    "kiln.yaml:4: 'hsm.sessions' must be between 1 and 64, got 65");
	expect_edit("  module:", "  pin: 1234\n  module:",
		    "kiln.yaml:4: unknown key 'pin' in 'hsm' (allowed: module, softhsm2_conf, sessions, tokens)");
	expect_edit("    test: {label: kiln-test, pin_file: secrets/kiln-test.pin}\n", "",
		    "kiln.yaml:5: missing required key 'test' in 'hsm.tokens'");
	expect_edit("test: {label: kiln-test, pin_file: secrets/kiln-test.pin}",
		    "test: {label: kiln-test}",
		    "kiln.yaml:7: missing required key 'pin_file' in 'hsm.tokens.test'");
	expect_edit("label: kiln-prod", "label: 01234567890123456789012345678901",
		    "kiln.yaml:6: 'hsm.tokens.production.label' is too long (32 bytes; at most 31)");
	expect_edit("service: {label:", "none: {label: x, pin_file: y}\n    service: {label:",
		    "kiln.yaml:8: unknown key 'none' in 'hsm.tokens' (allowed: production, test, service)");
	expect_edit("label: kiln-test", "label: kiln-prod",
		    "kiln.yaml:7: 'hsm.tokens.test.label' must differ from 'hsm.tokens.production.label': "
		    "each environment has its own token");
	expect_edit("label: kiln-service", "label: kiln-test",
		    "kiln.yaml:8: 'hsm.tokens.service.label' must differ from 'hsm.tokens.test.label': "
		    "each environment has its own token");
	expect_edit("  algorithm: p384\n", "  algorithm: rsa2048\n",
		    "kiln.yaml:10: 'ca.algorithm' must be one of p256, p384, ed25519, rsa3072");
	expect_edit("ca:\n  algorithm: p384\n", "ca: {}\n",
		    "kiln.yaml:9: missing required key 'algorithm' in 'ca'");
	expect_edit("ca:\n  algorithm: p384\n", "",
		    "kiln.yaml:1: missing required key 'ca'");
	expect_edit("  algorithm: p384\n", "  algorithm: p384\n  root_validity_days: 36501\n",
		    "kiln.yaml:11: 'ca.root_validity_days' must be between 1 and 36500, got 36501");
	expect_edit("  algorithm: p384\n", "  algorithm: p384\n  root_validity_days: 3000\n",
		    "kiln.yaml:11: 'ca.issuing_validity_days' (3650) exceeds 'ca.root_validity_days' (3000)");
	expect_edit("  algorithm: p384\n", "  algorithm: p384\n  issuing_validity_days: 800\n",
		    "kiln.yaml:11: 'ca.identity_validity_days' (825) exceeds 'ca.issuing_validity_days' (800)");
	expect_edit("  algorithm: p384\n",
		    "  algorithm: p384\n  issuing_validity_days: 800\n  identity_validity_days: 900\n",
		    "kiln.yaml:12: 'ca.identity_validity_days' (900) exceeds 'ca.issuing_validity_days' (800)");
	expect_edit("ca:", "public_url: ftp://x\nca:",
		    "kiln.yaml:9: 'public_url' must be an http:// or https:// URL");
	expect_edit("ca:", "server:\n  listen: 8443\nca:",
		    "kiln.yaml:10: 'server.listen' must be HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443");
	expect_edit("ca:", "server: {port: 1}\nca:",
		    "kiln.yaml:9: unknown key 'port' in 'server' (allowed: listen)");
	expect_edit("version: 1", "version: 1\nlog: debug",
		    "kiln.yaml:2: unknown key 'log' (allowed: version, database, hsm, ca, public_url, server, "
		    "ledger, revocation, approvals)");
	/* Syntax errors and oversized files have their own codes' lines too. */
	expect_yaml("version: 1\n  database: x\n", CONFIG,
		    "kiln.yaml:2: YAML syntax error: mapping values are not allowed in this context");
	big = calloc(1, KILN_POLICY_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, '#', KILN_POLICY_MAX_BYTES + 1);
	expect_yaml(big, KILN_ERR_TOO_BIG, "kiln.yaml:1: the file is larger than the 65536-byte limit");
	free(big);
	expect_yaml("version: &v 1\n", CONFIG,
		    "kiln.yaml:1: YAML anchors are not allowed ('&v'); write the value out");
}

static void test_listen(void **state)
{
	static const char *const good[] = {
		"127.0.0.1:8443", "0.0.0.0:1", "localhost:65535", "[::1]:8443", "[::]:443",
		"kiln.example.com:8443",
	};
	static const char *const bad[] = {
		"8443", ":8443", "host:", "host:0", "host:65536", "host:08443", "host:84a3",
		"[::1]", "[::1:8443", "::1:8443", "a b:80", "host:+80", "[]:80", "ho_st:80",
	};
	char from[] = "  algorithm: p384\n", to[128];
	kiln_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(to, sizeof(to), "  algorithm: p384\nserver:\n  listen: \"%s\"\n", good[i]);
		ok_edit(from, to, &c);
		assert_string_equal(c.listen, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(to, sizeof(to), "  algorithm: p384\nserver:\n  listen: \"%s\"\n", bad[i]);
		expect_edit(from, to,
			    "kiln.yaml:12: 'server.listen' must be HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_docs_match_writer),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
