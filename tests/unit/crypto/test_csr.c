/* Unit tests for src/crypto/csr.c: PKCS#10 parsing with proof of possession. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- fixtures */

enum { K_P256, K_P384, K_P521, K_SECP256K1, K_ED25519, K_RSA2048, K_RSA3072, K__COUNT };

static const struct {
	const char *label;
	const char *type;
	const char *group; /* EC only */
	size_t rsa_bits;   /* RSA only */
	const char *md;    /* NULL for Ed25519 */
	const char *name;  /* kiln_key_desc name */
} kinds[K__COUNT] = {
	[K_P256] = { "p256", "EC", "P-256", 0, "SHA256", "p256" },
	[K_P384] = { "p384", "EC", "P-384", 0, "SHA384", "p384" },
	[K_P521] = { "p521", "EC", "P-521", 0, "SHA512", "p521" },
	[K_SECP256K1] = { "secp256k1", "EC", "secp256k1", 0, "SHA256", "ec-secp256k1" },
	[K_ED25519] = { "ed25519", "ED25519", NULL, 0, NULL, "ed25519" },
	[K_RSA2048] = { "rsa2048", "RSA", NULL, 2048, "SHA256", "rsa2048" },
	[K_RSA3072] = { "rsa3072", "RSA", NULL, 3072, "SHA256", "rsa3072" },
};

/*
 * Two keys of each kind, made once for the whole file. RSA generation is slow
 * (tens of seconds each under valgrind), so RSA-3072 has one key only and
 * borrows a second RSA-2048 key where a different key is needed.
 */
static EVP_PKEY *keys[K__COUNT][2];

/* Another key than keys[k][0] (of the same kind except for RSA-3072). */
static EVP_PKEY *second(int k)
{
	return k == K_RSA3072 ? keys[K_RSA2048][1] : keys[k][1];
}

static EVP_PKEY *gen(int kind)
{
	EVP_PKEY *k;

	if (kinds[kind].group != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, kinds[kind].type, kinds[kind].group);
	else if (kinds[kind].rsa_bits != 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, kinds[kind].type, kinds[kind].rsa_bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, kinds[kind].type);
	return k;
}

static int group_setup(void **state)
{
	(void)state;
	for (int i = 0; i < K__COUNT; i++) {
		for (int j = 0; j < (i == K_RSA3072 ? 1 : 2); j++) {
			keys[i][j] = gen(i);
			if (keys[i][j] == NULL)
				return -1;
		}
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < K__COUNT; i++) {
		for (int j = 0; j < 2; j++)
			EVP_PKEY_free(keys[i][j]);
	}
	return 0;
}

/* An unsigned request for subject_key with CN=name and the given version. */
static X509_REQ *req_new(EVP_PKEY *subject_key, long version)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(req);
	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"device-0001", -1, -1, 0),
			 1);
	assert_int_equal(X509_REQ_set_subject_name(req, n), 1);
	X509_NAME_free(n);
	assert_int_equal(X509_REQ_set_version(req, version), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, subject_key), 1);
	return req;
}

static void req_sign(X509_REQ *req, EVP_PKEY *signer, const char *md)
{
	EVP_MD *m = md != NULL ? EVP_MD_fetch(NULL, md, NULL) : NULL;

	if (md != NULL)
		assert_non_null(m);
	assert_true(X509_REQ_sign(req, signer, m) > 0);
	EVP_MD_free(m);
}

static void req_der(const X509_REQ *req, kiln_buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);

	assert_true(n > 0);
	kiln_buf_init(out, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(out, der, (size_t)n));
	OPENSSL_free(der);
}

static void bio_to_buf(BIO *bio, kiln_buf *out)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);

	assert_true(n > 0);
	kiln_buf_init(out, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(out, data, (size_t)n));
}

static void req_pem(const X509_REQ *req, kiln_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	bio_to_buf(bio, out);
	BIO_free(bio);
}

/* DER of a CSR for key kind k, signed by its own key with its usual digest. */
static void good_der(int k, kiln_buf *out)
{
	X509_REQ *req = req_new(keys[k][0], X509_REQ_VERSION_1);

	req_sign(req, keys[k][0], kinds[k].md);
	req_der(req, out);
	X509_REQ_free(req);
}

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
	assert_null(strchr(d->text, '\r'));
}

/* Parses and expects want; on failure the diag is one non-empty line and *out is NULL. */
static kiln_csr *expect_parse(kiln_slice in, kiln_err want, const char *in_message)
{
	kiln_csr *csr = (kiln_csr *)(void *)&in; /* must be overwritten */
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = kiln_csr_parse(in, &csr, &d);
	assert_int_equal(r.code, want);
	if (want != KILN_OK) {
		assert_null(csr);
		assert_int_equal(d.code, want);
		assert_one_line(&d);
		assert_string_equal(kiln_diag_message(&d, r), d.text);
		if (in_message != NULL && strstr(d.text, in_message) == NULL)
			fail_msg("diag '%s' does not mention '%s'", d.text, in_message);
		return NULL;
	}
	assert_non_null(csr);
	assert_int_equal(d.code, KILN_OK);
	return csr;
}

/* The parsed CSR carries exactly key, described and fingerprinted. */
static void check_csr(const kiln_csr *csr, int k, EVP_PKEY *key)
{
	unsigned char *der = NULL;
	uint8_t want[32];
	unsigned int mdlen = 0;
	int n;

	assert_non_null(csr->subject);
	assert_true(csr->spki.len > 0);
	assert_non_null(csr->pkey);
	assert_int_equal(EVP_PKEY_eq(csr->pkey, key), 1);
	assert_string_equal(csr->key.name, kinds[k].name);
	n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	assert_int_equal(EVP_Digest(der, (size_t)n, want, &mdlen, EVP_sha256(), NULL), 1);
	assert_memory_equal(csr->spki_sha256, want, 32);
	OPENSSL_free(der);
}

/* ------------------------------------------------------------ good input */

static void test_parse_der_each_type(void **state)
{
	(void)state;
	for (int k = 0; k < K__COUNT; k++) {
		kiln_buf der;
		kiln_csr *csr;

		good_der(k, &der);
		csr = expect_parse(kiln_buf_view(&der), KILN_OK, NULL);
		check_csr(csr, k, keys[k][0]);
		kiln_csr_free(csr);
		kiln_buf_cleanup(&der);
	}
}

static void test_parse_pem_each_type(void **state)
{
	(void)state;
	for (int k = 0; k < K__COUNT; k++) {
		X509_REQ *req = req_new(keys[k][0], X509_REQ_VERSION_1);
		kiln_buf pem;
		kiln_csr *csr;

		req_sign(req, keys[k][0], kinds[k].md);
		req_pem(req, &pem);
		assert_non_null(strstr(kiln_buf_cstr(&pem), "-----BEGIN CERTIFICATE REQUEST-----"));
		csr = expect_parse(kiln_buf_view(&pem), KILN_OK, NULL);
		check_csr(csr, k, keys[k][0]);
		kiln_csr_free(csr);
		kiln_buf_cleanup(&pem);
		X509_REQ_free(req);
	}
}

/* Whitespace around the block, CRLF line ends and the old "NEW" label are all fine. */
static void test_parse_pem_variants(void **state)
{
	X509_REQ *req = req_new(keys[K_P256][0], X509_REQ_VERSION_1);
	kiln_buf pem, v;
	kiln_csr *csr;
	BIO *bio;

	(void)state;
	req_sign(req, keys[K_P256][0], "SHA256");
	req_pem(req, &pem);

	kiln_buf_init(&v, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&v, "\n \t\r\n"));
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&pem)));
	KT_OK(kiln_buf_append_str(&v, "\n\n  \r\n"));
	csr = expect_parse(kiln_buf_view(&v), KILN_OK, NULL);
	kiln_csr_free(csr);

	kiln_buf_reset(&v);
	for (size_t i = 0; i < pem.len; i++) {
		if (pem.ptr[i] == '\n')
			KT_OK(kiln_buf_append_u8(&v, '\r'));
		KT_OK(kiln_buf_append_u8(&v, pem.ptr[i]));
	}
	csr = expect_parse(kiln_buf_view(&v), KILN_OK, NULL);
	kiln_csr_free(csr);
	kiln_buf_cleanup(&v);

	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509_REQ_NEW(bio, req), 1);
	bio_to_buf(bio, &v);
	assert_non_null(strstr(kiln_buf_cstr(&v), "NEW CERTIFICATE REQUEST"));
	csr = expect_parse(kiln_buf_view(&v), KILN_OK, NULL);
	check_csr(csr, K_P256, keys[K_P256][0]);
	kiln_csr_free(csr);
	kiln_buf_cleanup(&v);
	BIO_free(bio);

	kiln_buf_cleanup(&pem);
	X509_REQ_free(req);
}

/* Other strong digests and RSA-PSS with SHA-256 are accepted. */
static void test_parse_other_strong_signatures(void **state)
{
	static const struct {
		int k;
		const char *md;
	} cases[] = { { K_P256, "SHA512" }, { K_P384, "SHA256" }, { K_RSA2048, "SHA384" },
		      { K_RSA2048, "SHA3-256" }, { K_P256, "SHA224" } };
	X509_REQ *req;
	kiln_buf der;
	kiln_csr *csr;
	EVP_MD_CTX *ctx;
	EVP_PKEY_CTX *pctx = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req = req_new(keys[cases[i].k][0], X509_REQ_VERSION_1);
		req_sign(req, keys[cases[i].k][0], cases[i].md);
		req_der(req, &der);
		csr = expect_parse(kiln_buf_view(&der), KILN_OK, NULL);
		kiln_csr_free(csr);
		kiln_buf_cleanup(&der);
		X509_REQ_free(req);
	}
	/* RSASSA-PSS with SHA-256 */
	req = req_new(keys[K_RSA2048][0], X509_REQ_VERSION_1);
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, keys[K_RSA2048][0],
					       NULL),
			 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
	req_der(req, &der);
	csr = expect_parse(kiln_buf_view(&der), KILN_OK, NULL);
	kiln_csr_free(csr);
	kiln_buf_cleanup(&der);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
}

/* ------------------------------------------------------------- bad sizes */

static void test_empty(void **state)
{
	kiln_csr *csr = NULL;

	(void)state;
	expect_parse(kiln_slice_of(NULL, 0), KILN_ERR_CSR_EMPTY, NULL);
	expect_parse(kiln_slice_of("x", 0), KILN_ERR_CSR_EMPTY, NULL);
	expect_parse(kiln_slice_of(NULL, 10), KILN_ERR_CSR_EMPTY, NULL);
	/* NULL diag is fine */
	KT_ERR(kiln_csr_parse(kiln_slice_of(NULL, 0), &csr, NULL), KILN_ERR_CSR_EMPTY);
	assert_null(csr);
	kiln_csr_free(NULL);
}

static void test_too_big(void **state)
{
	uint8_t *big = calloc(1, KILN_CSR_MAX_BYTES + 1);
	kiln_buf der;

	(void)state;
	assert_non_null(big);
	expect_parse(kiln_slice_of(big, KILN_CSR_MAX_BYTES + 1), KILN_ERR_CSR_TOO_BIG, "65537");
	/* at the limit, size is not the complaint */
	expect_parse(kiln_slice_of(big, KILN_CSR_MAX_BYTES), KILN_ERR_CSR_MALFORMED, NULL);
	/* a valid CSR padded past the limit is refused for its size first */
	good_der(K_P256, &der);
	memcpy(big, der.ptr, der.len);
	expect_parse(kiln_slice_of(big, KILN_CSR_MAX_BYTES + 1), KILN_ERR_CSR_TOO_BIG, NULL);
	kiln_buf_cleanup(&der);
	free(big);
}

/* ---------------------------------------------------------------- garbage */

static void test_garbage(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		{ "hello", 5 },
		{ "\x30\x00", 2 },             /* an empty SEQUENCE */
		{ "\x30\x03\x02\x01\x01", 5 }, /* well-formed DER, not a CSR */
		{ "\x30\x80\x00\x00", 4 },     /* BER indefinite length */
		{ "\x00", 1 },
		{ "   \n\t", 0 },              /* whitespace only */
		{ "-----BEGIN ", 0 },
		{ "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n", 0 },
		{ "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n", 0 },
		{ "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 0 }, /* no END line */
	};
	uint8_t rnd[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_parse(kiln_slice_of(cases[i].bytes,
					   cases[i].len != 0 ? cases[i].len : strlen(cases[i].bytes)),
			     KILN_ERR_CSR_MALFORMED, NULL);
	for (int round = 0; round < 64; round++) {
		KT_OK(kiln_random(rnd, sizeof(rnd)));
		/* sometimes make it look like a SEQUENCE of the right length */
		if (round % 2 == 0) {
			rnd[0] = 0x30;
			rnd[1] = 0x82;
			rnd[2] = 0x01;
			rnd[3] = 0xfc;
		}
		expect_parse(kiln_slice_of(rnd, sizeof(rnd)), KILN_ERR_CSR_MALFORMED, NULL);
	}
}

/* Well-formed DER of the wrong kind: a certificate is not a request. */
static void test_certificate_is_not_a_csr(void **state)
{
	X509 *x = X509_new();
	unsigned char *der = NULL;
	int n;

	(void)state;
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(X509_set_pubkey(x, keys[K_P256][0]), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_sign(x, keys[K_P256][0], EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	expect_parse(kiln_slice_of(der, (size_t)n), KILN_ERR_CSR_MALFORMED, "PKCS#10");
	OPENSSL_free(der);
	X509_free(x);
}

/* Every prefix of a valid DER CSR fails cleanly (ASan/valgrind watch the reads). */
static void test_truncated_der_every_prefix(void **state)
{
	(void)state;
	for (int k = 0; k < K__COUNT; k++) {
		kiln_buf der;

		good_der(k, &der);
		for (size_t n = 0; n < der.len; n++) {
			/* an exact-size heap copy, so an over-read is caught */
			uint8_t *p = malloc(n > 0 ? n : 1);

			assert_non_null(p);
			if (n > 0)
				memcpy(p, der.ptr, n);
			expect_parse(kiln_slice_of(p, n), n == 0 ? KILN_ERR_CSR_EMPTY : KILN_ERR_CSR_MALFORMED,
				     NULL);
			free(p);
		}
		kiln_buf_cleanup(&der);
	}
}

/* Every prefix of a PEM CSR that loses part of the END line fails. */
static void test_truncated_pem_every_prefix(void **state)
{
	X509_REQ *req = req_new(keys[K_P256][0], X509_REQ_VERSION_1);
	kiln_buf pem;
	const char *end;
	size_t limit;

	(void)state;
	req_sign(req, keys[K_P256][0], "SHA256");
	req_pem(req, &pem);
	end = strstr(kiln_buf_cstr(&pem), "-----END CERTIFICATE REQUEST-----");
	assert_non_null(end);
	limit = (size_t)(end - kiln_buf_cstr(&pem)) + strlen("-----END CERTIFICATE REQUEST-----");
	for (size_t n = 1; n < limit; n++) {
		uint8_t *p = malloc(n);

		assert_non_null(p);
		memcpy(p, pem.ptr, n);
		expect_parse(kiln_slice_of(p, n), KILN_ERR_CSR_MALFORMED, NULL);
		free(p);
	}
	/* without the final newline it is still a complete block */
	kiln_csr_free(expect_parse(kiln_slice_of(pem.ptr, limit), KILN_OK, NULL));
	kiln_buf_cleanup(&pem);
	X509_REQ_free(req);
}

static void test_trailing_garbage_der(void **state)
{
	kiln_buf der, v;

	(void)state;
	good_der(K_P256, &der);
	kiln_buf_init(&v, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&der)));
	KT_OK(kiln_buf_append_u8(&v, 0));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, "trailing");
	kiln_buf_reset(&v);
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&der)));
	KT_OK(kiln_buf_append_str(&v, "\n"));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, NULL);
	/* two CSRs back to back */
	kiln_buf_reset(&v);
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&der)));
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&der)));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, NULL);
	kiln_buf_cleanup(&v);
	kiln_buf_cleanup(&der);
}

static void test_trailing_garbage_pem(void **state)
{
	X509_REQ *req = req_new(keys[K_ED25519][0], X509_REQ_VERSION_1);
	kiln_buf pem, v;

	(void)state;
	req_sign(req, keys[K_ED25519][0], NULL);
	req_pem(req, &pem);
	kiln_buf_init(&v, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&pem)));
	KT_OK(kiln_buf_append_str(&v, "garbage\n"));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, "after the END");
	/* a second block (which one would the CA have signed?) */
	kiln_buf_reset(&v);
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&pem)));
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&pem)));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, NULL);
	/* leading text before the BEGIN line */
	kiln_buf_reset(&v);
	KT_OK(kiln_buf_append_str(&v, "Subject: CN=x\n"));
	KT_OK(kiln_buf_append_slice(&v, kiln_buf_view(&pem)));
	expect_parse(kiln_buf_view(&v), KILN_ERR_CSR_MALFORMED, NULL);
	kiln_buf_cleanup(&v);
	kiln_buf_cleanup(&pem);
	X509_REQ_free(req);
}

/* The CSR's DER in a PEM block with another label. */
static void test_pem_wrong_label(void **state)
{
	kiln_buf der, pem;
	BIO *bio = BIO_new(BIO_s_mem());

	(void)state;
	assert_non_null(bio);
	good_der(K_P256, &der);
	assert_true(PEM_write_bio(bio, "CERTIFICATE", "", der.ptr, (long)der.len) > 0);
	bio_to_buf(bio, &pem);
	expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, "'CERTIFICATE'");
	kiln_buf_cleanup(&pem);
	BIO_free(bio);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_true(PEM_write_bio(bio, "PRIVATE KEY", "", der.ptr, (long)der.len) > 0);
	bio_to_buf(bio, &pem);
	expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, "PRIVATE KEY");
	kiln_buf_cleanup(&pem);
	BIO_free(bio);
	kiln_buf_cleanup(&der);
}

static void test_pem_with_headers(void **state)
{
	kiln_buf der, pem;
	BIO *bio = BIO_new(BIO_s_mem());

	(void)state;
	assert_non_null(bio);
	good_der(K_P256, &der);
	assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "Comment: hello\n", der.ptr,
				  (long)der.len) > 0);
	bio_to_buf(bio, &pem);
	expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, "headers");
	kiln_buf_cleanup(&pem);
	kiln_buf_cleanup(&der);
	BIO_free(bio);
}

static void test_pem_corrupt_base64(void **state)
{
	X509_REQ *req = req_new(keys[K_P384][0], X509_REQ_VERSION_1);
	kiln_buf pem;
	size_t body;

	(void)state;
	req_sign(req, keys[K_P384][0], "SHA384");
	req_pem(req, &pem);
	body = strlen("-----BEGIN CERTIFICATE REQUEST-----\n");
	/* a character that is not base64 */
	for (size_t off = body; off < body + 40; off += 7) {
		uint8_t saved = pem.ptr[off];

		pem.ptr[off] = '!';
		expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, NULL);
		pem.ptr[off] = saved;
	}
	/* a valid base64 character changed: decodes, but to something else that must fail */
	for (size_t off = body; off < body + 64; off += 5) {
		uint8_t saved = pem.ptr[off];
		kiln_csr *csr = NULL;
		kiln_diag d;

		pem.ptr[off] = saved == 'A' ? 'B' : 'A';
		kiln_diag_clear(&d);
		assert_false(kiln_is_ok(kiln_csr_parse(kiln_buf_view(&pem), &csr, &d)));
		assert_null(csr);
		assert_one_line(&d);
		pem.ptr[off] = saved;
	}
	/* a line removed from the middle */
	{
		char *s = (char *)pem.ptr;
		char *l1 = strchr(s + body, '\n');
		char *l2 = l1 != NULL ? strchr(l1 + 1, '\n') : NULL;

		assert_non_null(l2);
		memmove(l1, l2, strlen(l2) + 1);
		pem.len = strlen(s);
		expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, NULL);
	}
	kiln_buf_cleanup(&pem);
	X509_REQ_free(req);
}

/* ------------------------------------------------------ proof of possession */

static void test_tampered_signature(void **state)
{
	(void)state;
	for (int k = 0; k < K__COUNT; k++) {
		kiln_buf der;

		good_der(k, &der);
		/* the last byte is inside the signature BIT STRING */
		der.ptr[der.len - 1] ^= 0x01;
		expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, kinds[k].name);
		der.ptr[der.len - 1] ^= 0x01;
		/* a signed byte changed: the subject's last character */
		{
			uint8_t *cn = memmem(der.ptr, der.len, "device-0001", 11);

			assert_non_null(cn);
			cn[10] = '2';
			expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, NULL);
		}
		kiln_buf_cleanup(&der);
	}
}

static void test_signed_by_other_key(void **state)
{
	(void)state;
	for (int k = 0; k < K__COUNT; k++) {
		X509_REQ *req = req_new(keys[k][0], X509_REQ_VERSION_1);
		kiln_buf der;

		/* carries key 0, signed by another key (of the same kind but for RSA-3072) */
		req_sign(req, second(k), kinds[k].md);
		req_der(req, &der);
		expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, "proof of possession");
		kiln_buf_cleanup(&der);
		X509_REQ_free(req);
	}
	/* signed by a key of another kind */
	{
		X509_REQ *req = req_new(keys[K_P256][0], X509_REQ_VERSION_1);
		kiln_buf der;

		req_sign(req, keys[K_RSA2048][0], "SHA256");
		req_der(req, &der);
		expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, NULL);
		kiln_buf_cleanup(&der);
		X509_REQ_free(req);
	}
}

static void test_weak_digests_refused(void **state)
{
	static const struct {
		int k;
		const char *md;
	} cases[] = { { K_RSA2048, "SHA1" }, { K_P256, "SHA1" }, { K_RSA2048, "MD5" } };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509_REQ *req = req_new(keys[cases[i].k][0], X509_REQ_VERSION_1);
		kiln_buf der;

		req_sign(req, keys[cases[i].k][0], cases[i].md);
		req_der(req, &der);
		expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, "SHA-256 or better");
		kiln_buf_cleanup(&der);
		X509_REQ_free(req);
	}
}

/* RSASSA-PSS hides its digest in the parameters; SHA-1 there is refused too. */
static void test_pss_sha1_refused(void **state)
{
	X509_REQ *req = req_new(keys[K_RSA2048][0], X509_REQ_VERSION_1);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	kiln_buf der;

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, "SHA1", NULL, NULL, keys[K_RSA2048][0],
					       NULL),
			 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
	req_der(req, &der);
	expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, "SHA1");
	kiln_buf_cleanup(&der);
	EVP_MD_CTX_free(ctx);
	X509_REQ_free(req);
}

/* The signatureAlgorithm names something kiln does not accept. */
static void test_unknown_signature_algorithm(void **state)
{
	X509_REQ *req = req_new(keys[K_P256][0], X509_REQ_VERSION_1);
	X509_ALGOR *alg = X509_ALGOR_new();
	kiln_buf der;

	(void)state;
	req_sign(req, keys[K_P256][0], "SHA256");
	assert_non_null(alg);
	/* ecdsa-with-SHA256 swapped for a private OID */
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1), V_ASN1_UNDEF,
					 NULL),
			 1);
	assert_int_equal(X509_REQ_set1_signature_algo(req, alg), 1);
	req_der(req, &der);
	expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_SIGNATURE, "not one kiln accepts");
	kiln_buf_cleanup(&der);
	X509_ALGOR_free(alg);
	X509_REQ_free(req);
}

/* ---------------------------------------------------------- other refusals */

static void test_version_not_v1(void **state)
{
	(void)state;
	for (long v = 1; v <= 2; v++) {
		X509_REQ *req = req_new(keys[K_P256][0], v);
		kiln_buf der;

		req_sign(req, keys[K_P256][0], "SHA256");
		req_der(req, &der);
		expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_MALFORMED, "version");
		kiln_buf_cleanup(&der);
		X509_REQ_free(req);
	}
}

/* An RSA key past the size cap is refused before its signature is checked. */
static void test_rsa_too_large(void **state)
{
	const int bits = 16384 + 64;
	BIGNUM *n = BN_new(), *e = BN_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pub = NULL;
	X509_REQ *req;
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
	uint8_t sigbytes[16] = { 1 };
	kiln_buf der;

	(void)state;
	assert_non_null(n);
	assert_non_null(e);
	assert_non_null(bld);
	assert_non_null(pctx);
	assert_int_equal(BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	assert_int_equal(BN_set_word(e, 65537), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_int_equal(EVP_PKEY_get_bits(pub), bits);

	req = req_new(pub, X509_REQ_VERSION_1);
	/* no private key exists: put a made-up sha256WithRSAEncryption signature in */
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL,
					 NULL),
			 1);
	assert_int_equal(X509_REQ_set1_signature_algo(req, alg), 1);
	assert_int_equal(ASN1_BIT_STRING_set(sig, sigbytes, sizeof(sigbytes)), 1);
	X509_REQ_set0_signature(req, sig);
	req_der(req, &der);
	expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_MALFORMED, "16448 bits");
	kiln_buf_cleanup(&der);

	X509_REQ_free(req);
	X509_ALGOR_free(alg);
	EVP_PKEY_free(pub);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
}

/* A public key algorithm OpenSSL cannot decode. */
static void test_undecodable_public_key(void **state)
{
	static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	kiln_buf der;
	uint8_t *oid;

	(void)state;
	good_der(K_ED25519, &der);
	/* the first id-Ed25519 is the SPKI's, the second the signature's */
	oid = memmem(der.ptr, der.len, ed_oid, sizeof(ed_oid));
	assert_non_null(oid);
	assert_non_null(memmem(oid + 1, der.len - (size_t)(oid + 1 - der.ptr), ed_oid, sizeof(ed_oid)));
	oid[4] = 0x7f; /* 1.3.101.127: unassigned */
	expect_parse(kiln_buf_view(&der), KILN_ERR_CSR_MALFORMED, "public key");
	kiln_buf_cleanup(&der);
}

/*
 * Nesting far past KILN_DER_MAX_DEPTH, as DER and inside PEM: refused by the
 * depth cap before OpenSSL's decoder sees it.
 */
static void test_deep_nesting_refused(void **state)
{
	kiln_buf a, b, pem;
	BIO *bio;

	(void)state;
	kiln_buf_init(&a, KILN_CSR_MAX_BYTES);
	kiln_buf_init(&b, KILN_CSR_MAX_BYTES);
	KT_OK(kiln_der_write(&a, KILN_DER_INTEGER, kiln_slice_of("\x01", 1)));
	for (int i = 0; i < 4000; i++) {
		kiln_buf_reset(&b);
		KT_OK(kiln_der_write(&b, KILN_DER_SEQUENCE, kiln_buf_view(&a)));
		kiln_buf_reset(&a);
		KT_OK(kiln_buf_append_slice(&a, kiln_buf_view(&b)));
	}
	expect_parse(kiln_buf_view(&a), KILN_ERR_CSR_MALFORMED, "well-formed DER");
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "", a.ptr, (long)a.len) > 0);
	bio_to_buf(bio, &pem);
	expect_parse(kiln_buf_view(&pem), KILN_ERR_CSR_MALFORMED, "well-formed DER");
	kiln_buf_cleanup(&pem);
	BIO_free(bio);
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
}

/*
 * Fuzzer regression cases (fuzz/fuzz_csr.c) go here, one test per crasher.
 * None so far: about 18 million fuzz_csr runs (ASan+UBSan) found no crash.
 */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_der_each_type),
		cmocka_unit_test(test_parse_pem_each_type),
		cmocka_unit_test(test_parse_pem_variants),
		cmocka_unit_test(test_parse_other_strong_signatures),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_certificate_is_not_a_csr),
		cmocka_unit_test(test_truncated_der_every_prefix),
		cmocka_unit_test(test_truncated_pem_every_prefix),
		cmocka_unit_test(test_trailing_garbage_der),
		cmocka_unit_test(test_trailing_garbage_pem),
		cmocka_unit_test(test_pem_wrong_label),
		cmocka_unit_test(test_pem_with_headers),
		cmocka_unit_test(test_pem_corrupt_base64),
		cmocka_unit_test(test_tampered_signature),
		cmocka_unit_test(test_signed_by_other_key),
		cmocka_unit_test(test_weak_digests_refused),
		cmocka_unit_test(test_pss_sha1_refused),
		cmocka_unit_test(test_unknown_signature_algorithm),
		cmocka_unit_test(test_version_not_v1),
		cmocka_unit_test(test_rsa_too_large),
		cmocka_unit_test(test_undecodable_public_key),
		cmocka_unit_test(test_deep_nesting_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
