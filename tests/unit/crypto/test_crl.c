/*
 * src/crypto/crl.c: the hand-built CRL is what OpenSSL reads back (issuer,
 * times, number, AKI, every entry in order with its serial, date and reason,
 * no reason extension for unspecified), its signature verifies, serials of
 * odd length and with the high bit set encode as DER INTEGERs, and bad specs
 * are refused. A 10^5-entry CRL is built and read back whole.
 */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static int group_setup(void **state)
{
	const struct kiln_name_attr attrs[] = { { "O", "Acme" }, { "CN", "Acme Issuing CA" } };
	struct kiln_cert_spec s;
	X509_NAME *n = NULL;
	kiln_buf tbs, sig, der;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len = 0;

	(void)state;
	ca_key = kt_keygen("p256");
	KT_OK(kiln_name_build(attrs, 2, &n, NULL));
	memset(&s, 0, sizeof(s));
	KT_OK(kiln_serial_new(s.serial));
	s.not_before = kiln_now() - 60;
	s.not_after = kiln_now() + 86400;
	s.subject = n;
	s.subject_key = ca_key;
	s.sig_alg = KILN_ALG_P256;
	s.is_ca = true;
	s.path_len = 0;
	s.key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&sig, 4096);
	kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_cert_tbs(&s, &tbs, NULL));
	assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, ca_key, NULL), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &len, tbs.ptr, tbs.len), 1);
	KT_OK(kiln_buf_reserve(&sig, len));
	assert_int_equal(EVP_DigestSign(ctx, sig.ptr, &len, tbs.ptr, tbs.len), 1);
	sig.len = len;
	KT_OK(kiln_signed_assemble(kiln_buf_view(&tbs), KILN_ALG_P256, kiln_buf_view(&sig), &der));
	KT_OK(kiln_cert_parse(kiln_buf_view(&der), &ca_cert, NULL));
	EVP_MD_CTX_free(ctx);
	X509_NAME_free(n);
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&der);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return 0;
}

/* Builds, signs with the CA key, parses back with OpenSSL. */
static X509_CRL *make_crl(const struct kiln_crl_entry *e, size_t n, uint64_t number)
{
	struct kiln_crl_spec s = { ca_cert, KILN_ALG_P256, number, 1795262400, 1795348800, e, n };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const unsigned char *p;
	kiln_buf tbs, sig, der;
	X509_CRL *crl;
	size_t len = 0;

	kiln_buf_init(&tbs, KILN_CRL_MAX_BYTES);
	kiln_buf_init(&sig, 4096);
	kiln_buf_init(&der, KILN_CRL_MAX_BYTES);
	KT_OK(kiln_crl_tbs(&s, &tbs, NULL));
	KT_OK(kiln_der_check(kiln_buf_view(&tbs)));
	assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, ca_key, NULL), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &len, tbs.ptr, tbs.len), 1);
	KT_OK(kiln_buf_reserve(&sig, len));
	assert_int_equal(EVP_DigestSign(ctx, sig.ptr, &len, tbs.ptr, tbs.len), 1);
	sig.len = len;
	KT_OK(kiln_signed_assemble_big(kiln_buf_view(&tbs), KILN_ALG_P256, kiln_buf_view(&sig), &der));
	p = der.ptr;
	crl = d2i_X509_CRL(NULL, &p, (long)der.len);
	assert_non_null(crl);
	assert_ptr_equal(p, der.ptr + der.len);
	assert_int_equal(X509_CRL_verify(crl, ca_key), 1);
	EVP_MD_CTX_free(ctx);
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&der);
	return crl;
}

static void entry(struct kiln_crl_entry *e, const char *hex, int64_t when, int reason)
{
	memset(e, 0, sizeof(*e));
	KT_OK(kiln_serial_from_hex(hex, e));
	e->revoked_at = when;
	e->reason = reason;
}

static void serial_is(const X509_REVOKED *r, const char *hex_upper)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
	char *h = BN_bn2hex(bn);

	assert_string_equal(h, hex_upper);
	OPENSSL_free(h);
	BN_free(bn);
}

static int reason_of(X509_REVOKED *r)
{
	ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
	int v = e != NULL ? (int)ASN1_ENUMERATED_get(e) : -1;

	ASN1_ENUMERATED_free(e);
	return v;
}

static void test_roundtrip(void **state)
{
	struct kiln_crl_entry e[4];
	STACK_OF(X509_REVOKED) *rev;
	ASN1_INTEGER *num;
	AUTHORITY_KEYID *aki;
	X509_CRL *crl;

	(void)state;
	entry(&e[0], "100", 1795200000, 1);                       /* odd length */
	entry(&e[1], "ff", 1795200001, 0);                        /* high bit: 00 ff */
	entry(&e[2], "00ab", 2556144000, 5);                      /* leading zero; 2051: GeneralizedTime */
	entry(&e[3], "0102030405060708090a0b0c0d0e0f1011121314", 1, 10); /* 20 bytes */
	crl = make_crl(e, 4, 300);
	assert_int_equal(X509_CRL_get_version(crl), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_cert)), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), 1795262400), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), 1795348800), 0);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_get(num), 300);
	ASN1_INTEGER_free(num);
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
	assert_non_null(aki);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(ca_cert)), 0);
	AUTHORITY_KEYID_free(aki);
	rev = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(rev), 4);
	/* Written in the order given (OpenSSL would re-sort on its own encoder only). */
	serial_is(sk_X509_REVOKED_value(rev, 0), "0100");
	serial_is(sk_X509_REVOKED_value(rev, 1), "FF");
	serial_is(sk_X509_REVOKED_value(rev, 2), "AB");
	serial_is(sk_X509_REVOKED_value(rev, 3), "0102030405060708090A0B0C0D0E0F1011121314");
	assert_int_equal(reason_of(sk_X509_REVOKED_value(rev, 0)), 1);
	assert_int_equal(reason_of(sk_X509_REVOKED_value(rev, 1)), -1); /* unspecified: omitted */
	assert_int_equal(reason_of(sk_X509_REVOKED_value(rev, 2)), 5);
	assert_int_equal(reason_of(sk_X509_REVOKED_value(rev, 3)), 10);
	assert_int_equal(ASN1_TIME_cmp_time_t(
		X509_REVOKED_get0_revocationDate(sk_X509_REVOKED_value(rev, 2)), 2556144000), 0);
	X509_CRL_free(crl);

	/* No entries: the revokedCertificates field is left out. */
	crl = make_crl(NULL, 0, 1);
	assert_null(X509_CRL_get_REVOKED(crl) != NULL && sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) > 0 ? crl : NULL);
	X509_CRL_free(crl);
}

static void test_refused(void **state)
{
	struct kiln_crl_entry e;
	struct kiln_crl_spec s = { ca_cert, KILN_ALG_P256, 1, 100, 200, &e, 1 };
	kiln_buf tbs;
	kiln_diag d;

	(void)state;
	kiln_buf_init(&tbs, 1 << 20);
	entry(&e, "01", 50, 7);
	kiln_diag_clear(&d);
	KT_ERR(kiln_crl_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	e.reason = 11;
	KT_ERR(kiln_crl_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	e.reason = 1;
	e.serial_len = 0;
	KT_ERR(kiln_crl_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	entry(&e, "01", 50, 1);
	s.number = 0;
	KT_ERR(kiln_crl_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	s.number = 1;
	s.next_update = 100;
	KT_ERR(kiln_crl_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	assert_int_equal(tbs.len, 0);
	KT_ERR(kiln_serial_from_hex("", &e), KILN_ERR_ARG);
	KT_ERR(kiln_serial_from_hex("xyz", &e), KILN_ERR_ARG);
	KT_ERR(kiln_serial_from_hex("0102030405060708090a0b0c0d0e0f101112131415", &e), KILN_ERR_ARG);
	kiln_buf_cleanup(&tbs);
}

/*
 * 10^5 entries, sorted 16-byte serials: built and parsed back by OpenSSL
 * (bench/ocsp times 10^6; under valgrind a million would take minutes).
 */
static void test_many(void **state)
{
	const size_t n = 100000;
	struct kiln_crl_entry *e = calloc(n, sizeof(*e));
	struct kiln_crl_spec s = { ca_cert, KILN_ALG_P256, 9, 1795262400, 1795348800, e, n };
	uint64_t t0;
	kiln_buf tbs;
	const unsigned char *p;
	X509_CRL *crl;
	kiln_buf der;

	(void)state;
	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		e[i].serial_len = 16;
		e[i].serial[0] = 0x40;
		for (int b = 0; b < 8; b++)
			e[i].serial[15 - b] = (uint8_t)(i >> (8 * b));
		e[i].revoked_at = 1795200000 + (int64_t)i;
		e[i].reason = (int)(i % 2);
	}
	kiln_buf_init(&tbs, KILN_CRL_MAX_BYTES);
	t0 = kiln_mono_ns();
	KT_OK(kiln_crl_tbs(&s, &tbs, NULL));
	printf("# crl: TBS of %zu entries, %zu bytes, built in %.1f ms\n", n, tbs.len,
	       (double)(kiln_mono_ns() - t0) / 1e6);
	kiln_buf_init(&der, KILN_CRL_MAX_BYTES);
	KT_OK(kiln_signed_assemble_big(kiln_buf_view(&tbs), KILN_ALG_P256,
				       kiln_slice_of((const uint8_t *)"\x30\x06\x02\x01\x01\x02\x01\x01", 8),
				       &der));
	p = der.ptr;
	crl = d2i_X509_CRL(NULL, &p, (long)der.len);
	assert_non_null(crl);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), (int)n);
	X509_CRL_free(crl);
	kiln_buf_cleanup(&der);
	kiln_buf_cleanup(&tbs);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
