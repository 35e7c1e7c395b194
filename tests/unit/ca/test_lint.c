/*
 * Lint before sign: a valid certificate passes, and each RFC 5280 or profile
 * rule, broken on its own, is refused with its own message. Certificates are
 * hand-built with OpenSSL here, and their TBS encoded by OpenSSL, so the
 * lint sees what kiln's writer would never produce.
 */
#include "support/ca_fixture.h"

#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <string.h>

struct mk {
	int version;            /* X509_VERSION_3 */
	long serial;            /* <0: negative; 0: zero */
	bool long_serial;       /* 21 octets */
	int64_t nb, na;
	bool empty_subject;
	bool wrong_issuer_name;
	const char *cn;
	bool bc, bc_crit, bc_ca;
	long pathlen;           /* -1 none */
	bool ku, ku_crit;
	unsigned ku_bits;
	bool ski, aki, aki_wrong;
	bool dup_ext;
	const char *san;        /* "URI:..." or "DNS:..." */
	EVP_PKEY *subject_key;  /* NULL: a fresh P-256 key */
	bool sign_sha384;       /* signature algorithm other than the issuer's */
	bool generalized_2049;  /* GeneralizedTime for a pre-2050 notAfter */
};

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static void add_ext(X509 *x, int nid, bool crit, const char *value, X509 *issuer)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	X509_EXTENSION_set_critical(ext, crit ? 1 : 0);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static struct mk valid(void)
{
	int64_t now = kiln_now();

	return (struct mk){ .version = X509_VERSION_3, .serial = 4242, .nb = now - 60,
			    .na = now + 86400 * 30, .cn = "DEV-0001", .bc = true, .bc_crit = true,
			    .pathlen = -1, .ku = true, .ku_crit = true,
			    .ku_bits = KU_DIGITAL_SIGNATURE, .ski = true, .aki = true };
}

static X509 *build(const struct mk *m)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *key = m->subject_key ? m->subject_key : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ASN1_INTEGER *sn = ASN1_INTEGER_new();
	char bc[64], ku[128];

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, m->version), 1);
	if (m->long_serial) {
		BIGNUM *bn = BN_new();

		assert_int_equal(BN_set_bit(bn, 165), 1);
		assert_non_null(BN_to_ASN1_INTEGER(bn, sn));
		BN_free(bn);
	} else {
		assert_int_equal(ASN1_INTEGER_set(sn, m->serial), 1);
	}
	assert_int_equal(X509_set_serialNumber(x, sn), 1);
	ASN1_INTEGER_free(sn);
	/* A raw UTF8String: OpenSSL's own length table must not stop an over-long CN here. */
	if (!m->empty_subject)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_UTF8STRING,
							    (const unsigned char *)m->cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	if (m->wrong_issuer_name)
		assert_int_equal(X509_set_issuer_name(x, name), 1);
	else
		assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca_cert)), 1);
	X509_NAME_free(name);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)m->nb));
	if (m->generalized_2049)
		assert_int_equal(ASN1_GENERALIZEDTIME_set_string(X509_getm_notAfter(x),
								 "20490101000000Z"), 1);
	else
		assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)m->na));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (m->bc) {
		if (m->pathlen >= 0)
			(void)snprintf(bc, sizeof(bc), "CA:%s,pathlen:%ld", m->bc_ca ? "TRUE" : "FALSE",
				       m->pathlen);
		else
			(void)snprintf(bc, sizeof(bc), "CA:%s", m->bc_ca ? "TRUE" : "FALSE");
		add_ext(x, NID_basic_constraints, m->bc_crit, bc, ca_cert);
	}
	if (m->ku) {
		(void)snprintf(ku, sizeof(ku), "%s%s%s%s",
			       (m->ku_bits & KU_DIGITAL_SIGNATURE) ? "digitalSignature," : "",
			       (m->ku_bits & KU_KEY_AGREEMENT) ? "keyAgreement," : "",
			       (m->ku_bits & KU_KEY_CERT_SIGN) ? "keyCertSign," : "",
			       (m->ku_bits & KU_CRL_SIGN) ? "cRLSign," : "");
		ku[strlen(ku) - 1] = '\0';
		add_ext(x, NID_key_usage, m->ku_crit, ku, ca_cert);
	}
	if (m->ski)
		add_ext(x, NID_subject_key_identifier, false, "hash", ca_cert);
	if (m->aki)
		add_ext(x, NID_authority_key_identifier, false, "keyid:always",
			m->aki_wrong ? x : ca_cert);
	if (m->dup_ext)
		add_ext(x, NID_subject_key_identifier, false, "hash", ca_cert);
	if (m->san != NULL)
		add_ext(x, NID_subject_alt_name, false, m->san, ca_cert);
	assert_true(X509_sign(x, ca_key, m->sign_sha384 ? EVP_sha384() : EVP_sha256()) > 0);
	if (m->subject_key == NULL)
		EVP_PKEY_free(key);
	return x;
}

static struct kiln_lint_profile leaf_profile(void)
{
	return (struct kiln_lint_profile){ false, -1, KU_DIGITAL_SIGNATURE, 365, ca_cert,
					   KILN_ALG_P256, NULL, NULL, { NULL, 0 } };
}

/* Lints DER against p; expects failure naming want (NULL: success). */
static void expect_der(kiln_slice der, const struct kiln_lint_profile *p, const char *want)
{
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = kiln_lint_tbs(der, p, &d);
	if (want == NULL) {
		if (!kiln_is_ok(r))
			fail_msg("unexpected lint failure: %s", d.text);
	} else {
		assert_int_not_equal(r.code, KILN_OK);
		assert_non_null(strstr(d.text, "lint: "));
		if (strstr(d.text, want) == NULL)
			fail_msg("lint message '%s' lacks '%s'", d.text, want);
	}
}

/* The TBS OpenSSL encodes for x: what the lint reads. */
static void tbs_of(X509 *x, kiln_buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_re_X509_tbs(x, &der);

	assert_true(n > 0);
	kiln_buf_init(out, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(out, der, (size_t)n));
	OPENSSL_free(der);
}

/* Builds m, then lints its TBS against p; expects failure naming want (NULL: success). */
static void expect(const struct mk *m, const struct kiln_lint_profile *p, const char *want)
{
	X509 *x = build(m);
	kiln_buf tbs;

	tbs_of(x, &tbs);
	expect_der(kiln_buf_view(&tbs), p, want);
	kiln_buf_cleanup(&tbs);
	X509_free(x);
}

static int setup(void **state)
{
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	(void)state;
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_cert = X509_new();
	assert_int_equal(X509_set_version(ca_cert, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(ca_cert), 1), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"Lint CA", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(ca_cert, n), 1);
	assert_int_equal(X509_set_issuer_name(ca_cert, n), 1);
	X509_NAME_free(n);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(ca_cert), (time_t)(kiln_now() - 86400)));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(ca_cert), (time_t)(kiln_now() + 86400 * 3650)));
	assert_int_equal(X509_set_pubkey(ca_cert, ca_key), 1);
	X509V3_set_ctx(&ctx, ca_cert, ca_cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	assert_int_equal(X509_add_ext(ca_cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(ca_cert, ca_key, EVP_sha256()) > 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return 0;
}

static void test_valid_leaf_passes(void **state)
{
	struct mk m = valid();
	struct kiln_lint_profile p = leaf_profile();

	(void)state;
	expect(&m, &p, NULL);
	m.san = "URI:urn:kiln:widget:DEV-0001,DNS:dev-0001.example.com";
	expect(&m, &p, NULL);
}

static void test_valid_ca_passes(void **state)
{
	struct mk m = valid();
	struct kiln_lint_profile p = leaf_profile();

	(void)state;
	m.bc_ca = true;
	m.pathlen = 0;
	m.ku_bits = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
	p.is_ca = true;
	p.path_len = 0;
	p.key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
	expect(&m, &p, NULL);
	m.pathlen = 1;
	expect(&m, &p, "pathLenConstraint");
	m.pathlen = 0;
	m.ku_bits = KU_CRL_SIGN;
	p.key_usage = KU_CRL_SIGN;
	expect(&m, &p, "keyCertSign");
}

static void test_version_serial(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.version = X509_VERSION_1;
	m.bc = m.ku = m.ski = m.aki = false;
	expect(&m, &p, "version must be v3");
	m = valid();
	m.serial = 0;
	expect(&m, &p, "serial number");
	m.serial = -5;
	expect(&m, &p, "serial number");
	m = valid();
	m.long_serial = true;
	expect(&m, &p, "serial number");
}

static void test_validity(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.na = m.nb - 10;
	expect(&m, &p, "notAfter must be later");
	m = valid();
	m.na = m.nb + 86400LL * 400;
	expect(&m, &p, "exceeds the profile");
	m = valid();
	m.na = m.nb + 86400LL * 3660 * 2;
	p.max_validity_days = 0;
	expect(&m, &p, "outlive its issuer");
	m = valid();
	m.generalized_2049 = true;
	p.max_validity_days = 0;
	expect(&m, &p, "UTCTime");
}

static void test_names(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.empty_subject = true;
	expect(&m, &p, "subject must not be empty");
	m = valid();
	m.wrong_issuer_name = true;
	expect(&m, &p, "issuer name");
	m = valid();
	m.cn = "0123456789012345678901234567890123456789012345678901234567890123456789";
	expect(&m, &p, "subject CN");
}

static void test_basic_constraints(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.bc = false;
	expect(&m, &p, "basicConstraints must be present");
	m = valid();
	m.bc_crit = false;
	expect(&m, &p, "basicConstraints must be critical");
	m = valid();
	m.bc_ca = true;
	m.ku_bits = KU_DIGITAL_SIGNATURE;
	expect(&m, &p, "cA must be FALSE");
}

static void test_key_usage(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.ku = false;
	expect(&m, &p, "keyUsage must be present");
	m = valid();
	m.ku_crit = false;
	expect(&m, &p, "keyUsage must be critical");
	m = valid();
	m.ku_bits = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT;
	expect(&m, &p, "differs from the profile");
	m = valid();
	m.ku_bits = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN;
	p.key_usage = m.ku_bits;
	expect(&m, &p, "must not have keyCertSign");
}

static void test_key_identifiers_and_duplicates(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.ski = false;
	expect(&m, &p, "subjectKeyIdentifier");
	m = valid();
	m.aki = false;
	expect(&m, &p, "authorityKeyIdentifier");
	m = valid();
	m.aki_wrong = true;
	expect(&m, &p, "authorityKeyIdentifier");
	m = valid();
	m.dup_ext = true;
	expect(&m, &p, "not repeated");
}

static void test_signature_algorithm(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.sign_sha384 = true;
	expect(&m, &p, "signature algorithm");
	p.sig_alg = KILN_ALG_ED25519;
	m.sign_sha384 = false;
	expect(&m, &p, "signature algorithm");
}

static void test_subject_key(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	kiln_policy *pol = NULL;
	kiln_buf text;
	kiln_diag d;

	(void)state;
	m.subject_key = rsa;
	expect(&m, &p, "at least 2048 bits");
	EVP_PKEY_free(rsa);
	m.subject_key = ca_key;
	expect(&m, &p, "differ from the issuer key");
	kiln_diag_clear(&d);
	kt_read_file(KILN_SOURCE_DIR "/examples/policies/widget.yaml", &text);
	KT_OK(kiln_policy_parse(kiln_buf_view(&text), "widget.yaml", &pol, &d));
	kiln_buf_cleanup(&text);
	p.policy = pol;
	m.subject_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	expect(&m, &p, "not allowed by policy widget");
	EVP_PKEY_free(m.subject_key);
	m.subject_key = NULL;
	expect(&m, &p, NULL);
	kiln_policy_free(pol);
}

static void test_san(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();

	(void)state;
	m.san = "URI:no-scheme-here";
	expect(&m, &p, "URIs need a scheme");
	m.san = "DNS:bad_name.example.com";
	expect(&m, &p, "outside LDH");
}

/* TBS bytes wrapped again as a SEQUENCE after their content, with extra appended. */
static void rewrap(kiln_slice tbs, const char *extra, size_t extra_len, kiln_buf *out)
{
	kiln_cursor c;
	kiln_slice content;
	uint8_t tag;

	kiln_cursor_init(&c, tbs);
	KT_OK(kiln_der_read(&c, &tag, &content));
	kiln_buf_init(out, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_slice(out, content));
	KT_OK(kiln_buf_append(out, extra, extra_len));
	KT_OK(kiln_der_wrap(out, 0, KILN_DER_SEQUENCE));
}

/* Offset of the extensions ([3]) inside a TBS. */
static size_t extensions_at(kiln_slice tbs)
{
	kiln_cursor c, in;
	kiln_slice content, f;
	uint8_t tag;

	kiln_cursor_init(&c, tbs);
	KT_OK(kiln_der_read(&c, &tag, &content));
	kiln_cursor_init(&in, content);
	for (int i = 0; i < 7; i++)
		KT_OK(kiln_der_read(&in, &tag, &f));
	return (size_t)(content.ptr - tbs.ptr) + in.pos;
}

/*
 * The lint reads the bytes to be signed: not a TBS at all, a field after the
 * extensions, an explicit FALSE critical flag (not DER), a key other than the
 * one requested (given as bytes, or as a key to compare with).
 */
static void test_tbs_bytes(void **state)
{
	struct kiln_lint_profile p = leaf_profile();
	struct mk m = valid();
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char *spki = NULL, *ospki = NULL;
	uint8_t *crit;
	kiln_buf tbs, bad;
	size_t at;
	int n, on;
	X509 *x;

	(void)state;
	assert_non_null(key);
	assert_non_null(other);
	expect_der(kiln_slice_str("\x04\x00"), &p, "not one DER SEQUENCE");
	expect_der(kiln_slice_str(""), &p, "not one DER SEQUENCE");
	m.subject_key = key;
	x = build(&m);
	tbs_of(x, &tbs);
	n = i2d_PUBKEY(key, &spki);
	on = i2d_PUBKEY(other, &ospki);
	assert_true(n > 0 && on > 0);
	p.subject_key = key;
	p.subject_spki = kiln_slice_of(spki, (size_t)n);
	expect_der(kiln_buf_view(&tbs), &p, NULL);
	p.subject_key = other;
	p.subject_spki = kiln_slice_of(ospki, (size_t)on);
	expect_der(kiln_buf_view(&tbs), &p, "the one requested");
	p.subject_spki = kiln_slice_of(NULL, 0);
	expect_der(kiln_buf_view(&tbs), &p, "the one requested");
	p.subject_key = key;
	expect_der(kiln_buf_view(&tbs), &p, NULL);
	p = leaf_profile();
	/* an issuerUniqueID-like [1] after the extensions */
	rewrap(kiln_buf_view(&tbs), "\x81\x01\x00", 3, &bad);
	expect_der(kiln_buf_view(&bad), &p, "only extensions may follow");
	kiln_buf_cleanup(&bad);
	/* basicConstraints' critical flag as an explicit FALSE */
	at = extensions_at(kiln_buf_view(&tbs));
	crit = memmem(tbs.ptr + at, tbs.len - at, "\x01\x01\xff", 3);
	assert_non_null(crit);
	crit[2] = 0x00;
	expect_der(kiln_buf_view(&tbs), &p, "extensions must be decodable");
	kiln_buf_cleanup(&tbs);
	OPENSSL_free(spki);
	OPENSSL_free(ospki);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_leaf_passes),
		cmocka_unit_test(test_valid_ca_passes),
		cmocka_unit_test(test_version_serial),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_basic_constraints),
		cmocka_unit_test(test_key_usage),
		cmocka_unit_test(test_key_identifiers_and_duplicates),
		cmocka_unit_test(test_signature_algorithm),
		cmocka_unit_test(test_subject_key),
		cmocka_unit_test(test_san),
		cmocka_unit_test(test_tbs_bytes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
