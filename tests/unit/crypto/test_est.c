/* Unit tests for src/crypto/est.c: EST request bodies and certs-only responses. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

/* A DER PKCS#10 request for a P-256 key, CN = cn; *key_out (may be NULL) gets the key. */
static void kt_make_csr(const char *alg, const char *cn, const char *extra, kiln_buf *der,
			EVP_PKEY **key_out)
{
	EVP_PKEY *key = kt_keygen(alg);
	X509_REQ *req = X509_REQ_new();
	unsigned char *p = NULL;
	int len;

	(void)extra;
	assert_non_null(key);
	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	len = i2d_X509_REQ(req, &p);
	assert_true(len > 0);
	kiln_buf_init(der, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(der, p, (size_t)len));
	OPENSSL_free(p);
	X509_REQ_free(req);
	if (key_out != NULL)
		*key_out = key;
	else
		EVP_PKEY_free(key);
}

/* base64 of der, broken into lines of width (0: one line). */
static void b64(const kiln_buf *der, size_t width, kiln_buf *out)
{
	kiln_buf one;

	kiln_buf_init(&one, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(out, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_base64_encode(kiln_buf_view(der), &one));
	for (size_t i = 0; i < one.len; i += width ? width : one.len) {
		size_t n = width && one.len - i > width ? width : one.len - i;

		KT_OK(kiln_buf_append(out, one.ptr + i, n));
		if (width)
			KT_OK(kiln_buf_append_str(out, "\r\n"));
	}
	kiln_buf_cleanup(&one);
}

static void test_csr_bodies(void **state)
{
	kiln_buf der, body;
	kiln_csr *csr = NULL;
	kiln_diag d;

	(void)state;
	kt_make_csr("p256", "WGT-0001", NULL, &der, NULL);
	for (size_t width = 0; width <= 76; width += 64) {
		b64(&der, width, &body);
		kiln_diag_clear(&d);
		KT_OK(kiln_est_csr_parse(kiln_buf_view(&body), &csr, &d));
		assert_non_null(csr);
		assert_memory_equal(csr->der.ptr, der.ptr, der.len);
		kiln_csr_free(csr);
		csr = NULL;
		kiln_buf_cleanup(&body);
	}
	kiln_buf_cleanup(&der);
}

static void test_bad_bodies(void **state)
{
	static const struct {
		const char *body;
		kiln_err code;
		const char *msg;
	} cases[] = {
		{ "", KILN_ERR_CSR_EMPTY, "holds no certificate request" },
		{ " \r\n\t", KILN_ERR_CSR_EMPTY, "holds no certificate request" },
		{ "MIIB*AAA", KILN_ERR_MALFORMED, "byte 0x2a at offset 4" },
		{ "MIIB\x01", KILN_ERR_MALFORMED, "not base64" },
		{ "QUJD=", KILN_ERR_MALFORMED, "not valid base64" },
		{ "QUI=", KILN_ERR_CSR_MALFORMED, "does not decode to a DER PKCS#10" },
		{ "MAA=", KILN_ERR_CSR_MALFORMED, NULL },
		/* PEM inside the base64 is not EST */
		{ "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", KILN_ERR_CSR_MALFORMED,
		  "does not decode to a DER PKCS#10" },
	};
	kiln_csr *csr = NULL;
	kiln_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kiln_diag_clear(&d);
		KT_ERR(kiln_est_csr_parse(kiln_slice_str(cases[i].body), &csr, &d), cases[i].code);
		assert_null(csr);
		if (cases[i].msg != NULL && strstr(d.text, cases[i].msg) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, d.text, cases[i].msg);
	}
}

static void test_oversized_body(void **state)
{
	size_t n = KILN_EST_BODY_MAX + 4;
	char *big = malloc(n);
	kiln_buf out;
	kiln_diag d;

	(void)state;
	assert_non_null(big);
	memset(big, 'A', n);
	kiln_buf_init(&out, KILN_BUF_DEFAULT_MAX);
	kiln_diag_clear(&d);
	KT_ERR(kiln_est_body_decode(kiln_slice_of(big, n), &out, &d), KILN_ERR_TOO_BIG);
	assert_int_equal(out.len, 0);
	/* Under the body cap but over the CSR cap once decoded. */
	kiln_diag_clear(&d);
	{
		kiln_csr *csr = NULL;

		KT_ERR(kiln_est_csr_parse(kiln_slice_of(big, KILN_EST_BODY_MAX), &csr, &d),
		       KILN_ERR_TOO_BIG);
		assert_null(csr);
	}
	kiln_buf_cleanup(&out);
	free(big);
}

static void test_certs_only(void **state)
{
	kiln_buf der, out, raw;
	EVP_PKEY *key = NULL;
	X509 *certs[2];
	PKCS7 *p7;
	const unsigned char *p;

	(void)state;
	kt_make_csr("p256", "WGT-0002", NULL, &der, &key);
	for (int i = 0; i < 2; i++) {
		certs[i] = X509_new();
		assert_non_null(certs[i]);
		assert_int_equal(X509_set_version(certs[i], 2), 1);
		assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(certs[i]), i + 1), 1);
		assert_non_null(X509_gmtime_adj(X509_getm_notBefore(certs[i]), 0));
		assert_non_null(X509_gmtime_adj(X509_getm_notAfter(certs[i]), 3600));
		assert_int_equal(X509_set_pubkey(certs[i], key), 1);
		assert_true(X509_sign(certs[i], key, EVP_sha256()) > 0);
	}
	kiln_buf_init(&out, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&raw, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_est_certs_only(certs, 2, &out));
	assert_null(memchr(out.ptr, '\n', out.len)); /* one line: strongSwan's decoder needs it */
	KT_OK(kiln_base64_decode(kiln_buf_view(&out), &raw));
	p = raw.ptr;
	p7 = d2i_PKCS7(NULL, &p, (long)raw.len);
	assert_non_null(p7);
	assert_true(PKCS7_type_is_signed(p7));
	assert_int_equal(sk_X509_num(p7->d.sign->cert), 2);
	assert_int_equal(X509_cmp(sk_X509_value(p7->d.sign->cert, 1), certs[1]), 0);
	assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
	assert_null(p7->d.sign->contents->d.data); /* no content, only id-data */
	PKCS7_free(p7);
	/* Nothing to send is an error, not an empty PKCS#7. */
	kiln_buf_reset(&out);
	KT_ERR(kiln_est_certs_only(certs, 0, &out), KILN_ERR_CRYPTO);
	for (int i = 0; i < 2; i++)
		X509_free(certs[i]);
	EVP_PKEY_free(key);
	kiln_buf_cleanup(&der);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_bodies),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_oversized_body),
		cmocka_unit_test(test_certs_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
