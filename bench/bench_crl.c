/*
 * bench_crl: CRL generation time for 10^5 and 10^6 revoked entries. kiln's
 * path (crypto/crl.c: sorted entries written straight into one buffer, then
 * one signature) beside OpenSSL's X509_CRL API (one X509_REVOKED object per
 * entry, sorted and encoded by OpenSSL, signed with X509_CRL_sign) on the same
 * entries, in this run, as a ratio. Both sign with the same software P-256
 * key (the HSM signature is one operation either way). OpenSSL's 10^6 run is
 * skipped with --fast.
 */
#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now_ms(void)
{
	return (double)kiln_mono_ns() / 1e6;
}

static X509 *make_ca(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bench CA", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, key, EVP_sha256());
	return x;
}

static double kiln_crl(X509 *ca, EVP_PKEY *key, const struct kiln_crl_entry *e, size_t n,
		       size_t *bytes)
{
	struct kiln_crl_spec s = { ca, KILN_ALG_P256, 7, 1795262400, 1795348800, e, n };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	kiln_buf tbs, sig, der;
	size_t len = 0;
	double t0 = now_ms(), t;

	kiln_buf_init(&tbs, KILN_CRL_MAX_BYTES);
	kiln_buf_init(&sig, 4096);
	kiln_buf_init(&der, KILN_CRL_MAX_BYTES);
	if (!kiln_is_ok(kiln_crl_tbs(&s, &tbs, NULL)) ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &len, tbs.ptr, tbs.len) != 1 ||
	    !kiln_is_ok(kiln_buf_reserve(&sig, len)) ||
	    EVP_DigestSign(md, sig.ptr, &len, tbs.ptr, tbs.len) != 1)
		abort();
	sig.len = len;
	if (!kiln_is_ok(kiln_signed_assemble_big(kiln_buf_view(&tbs), KILN_ALG_P256,
						 kiln_buf_view(&sig), &der)))
		abort();
	t = now_ms() - t0;
	*bytes = der.len;
	EVP_MD_CTX_free(md);
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&der);
	return t;
}

static double openssl_crl(X509 *ca, EVP_PKEY *key, const struct kiln_crl_entry *e, size_t n,
			  size_t *bytes)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, 1795262400), *t2 = ASN1_TIME_set(NULL, 1795348800);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	double t0 = now_ms(), t;
	int len;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_CRL_set1_lastUpdate(crl, t1);
	X509_CRL_set1_nextUpdate(crl, t2);
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_TIME *rt = ASN1_TIME_set(NULL, (time_t)e[i].revoked_at);
		BIGNUM *bn = BN_bin2bn(e[i].serial, e[i].serial_len, NULL);

		BN_to_ASN1_INTEGER(bn, s);
		X509_REVOKED_set_serialNumber(r, s);
		X509_REVOKED_set_revocationDate(r, rt);
		if (e[i].reason > 0) {
			ASN1_ENUMERATED *re = ASN1_ENUMERATED_new();

			ASN1_ENUMERATED_set(re, e[i].reason);
			X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, re, 0, 0);
			ASN1_ENUMERATED_free(re);
		}
		X509_CRL_add0_revoked(crl, r);
		BN_free(bn);
		ASN1_INTEGER_free(s);
		ASN1_TIME_free(rt);
	}
	ASN1_INTEGER_set(num, 7);
	X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, key, EVP_sha256());
	len = i2d_X509_CRL(crl, &der);
	t = now_ms() - t0;
	*bytes = len > 0 ? (size_t)len : 0;
	OPENSSL_free(der);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	X509_CRL_free(crl);
	return t;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 100000, 1000000 };
	bool fast = argc > 1 && strcmp(argv[1], "--fast") == 0;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca = make_ca(key);

	printf("CRL generation (thisUpdate/nextUpdate, CRL number, AKI, reason codes; P-256 signature):\n");
	for (size_t k = 0; k < 2; k++) {
		size_t n = sizes[k], kb = 0, ob = 0;
		struct kiln_crl_entry *e = calloc(n, sizeof(*e));
		double kt, ot = 0;

		if (e == NULL)
			return 1;
		for (size_t i = 0; i < n; i++) {
			/* 16-byte serials as kiln issues them, in ascending order. */
			e[i].serial_len = 16;
			e[i].serial[0] = 0x40;
			for (int b = 0; b < 8; b++)
				e[i].serial[15 - b] = (uint8_t)(i * 2654435761u >> (8 * b % 32));
			for (int b = 0; b < 4; b++)
				e[i].serial[4 + b] = (uint8_t)(i >> (8 * (3 - b)));
			e[i].revoked_at = 1795200000 + (int64_t)(i % 86400);
			e[i].reason = (int)(i % 2);
		}
		kt = kiln_crl(ca, key, e, n, &kb);
		if (!fast || n <= 100000)
			ot = openssl_crl(ca, key, e, n, &ob);
		if (ot > 0)
			printf("  %8zu entries: kiln %8.1f ms (%zu bytes), OpenSSL X509_CRL API %8.1f ms "
			       "(%zu bytes): %.1fx faster\n", n, kt, kb, ot, ob, ot / kt);
		else
			printf("  %8zu entries: kiln %8.1f ms (%zu bytes)\n", n, kt, kb);
		free(e);
	}
	X509_free(ca);
	EVP_PKEY_free(key);
	return 0;
}
