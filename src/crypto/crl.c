/*
 * CRL TBS built by hand: entries are written straight into one buffer in
 * the order given (the caller sorts), so a CRL of a million entries costs a
 * pass over memory, not a million OpenSSL objects. Extensions: the
 * authority key identifier and the CRL number; per entry, the reason code
 * (left out for "unspecified", as RFC 5280 5.3.1 recommends).
 */
#include "crypto/crypto.h"

#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static size_t len_size(size_t n)
{
	size_t k = 1;

	if (n < 0x80)
		return 1;
	while (n > 0) {
		k++;
		n >>= 8;
	}
	return k;
}

/* Writes tag and length at p; returns the bytes written. */
static size_t put_hdr(uint8_t *p, uint8_t tag, size_t n)
{
	size_t k = len_size(n);

	p[0] = tag;
	if (k == 1) {
		p[1] = (uint8_t)n;
		return 2;
	}
	p[1] = (uint8_t)(0x80 | (k - 1));
	for (size_t i = 0; i < k - 1; i++)
		p[2 + i] = (uint8_t)(n >> (8 * (k - 2 - i)));
	return 1 + k;
}

static kiln_result append_hdr(kiln_buf *b, uint8_t tag, size_t n)
{
	uint8_t h[10];

	return kiln_buf_append(b, h, put_hdr(h, tag, n));
}

/* UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5); returns the TLV length. */
static size_t put_time(uint8_t *p, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[20];
	size_t n;

	memset(&tm, 0, sizeof(tm));
	(void)gmtime_r(&tt, &tm);
	if (tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050)
		n = (size_t)snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
				     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		n = (size_t)snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
				     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	p[0] = n == 13 ? 0x17 : 0x18;
	p[1] = (uint8_t)n;
	memcpy(p + 2, s, n);
	return 2 + n;
}

kiln_result kiln_serial_from_hex(const char *hex, struct kiln_crl_entry *e)
{
	char even[2 * KILN_CRL_SERIAL_MAX + 2];
	size_t n = hex != NULL ? strnlen(hex, sizeof(even)) : 0, len = 0;

	KILN_ENSURE(n > 0 && n <= 2 * KILN_CRL_SERIAL_MAX, KILN_ERR_ARG);
	even[0] = '0';
	memcpy(even + 1, hex, n + 1);
	if (!kiln_is_ok(kiln_hex_decode(n % 2 == 1 ? even : even + 1, e->serial, sizeof(e->serial),
					&len)) || len == 0)
		return kiln_fail(KILN_ERR_ARG);
	e->serial_len = (uint8_t)len;
	return kiln_ok();
}

/* The DER INTEGER content of a serial: no leading zero bytes, one added for a high bit. */
static size_t put_serial(uint8_t *p, const struct kiln_crl_entry *e)
{
	const uint8_t *s = e->serial;
	size_t n = e->serial_len, k = 0;

	while (n > 1 && s[0] == 0) {
		s++;
		n--;
	}
	p[k++] = 0x02;
	p[k++] = (uint8_t)(n + ((s[0] & 0x80) ? 1 : 0));
	if (s[0] & 0x80)
		p[k++] = 0;
	memcpy(p + k, s, n);
	return k + n;
}

/* One revokedCertificates entry into p (at most 64 bytes); returns its length. */
static size_t put_entry(uint8_t *p, const struct kiln_crl_entry *e)
{
	static const uint8_t reason_ext[] = { 0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d,
					      0x15, 0x04, 0x03, 0x0a, 0x01 };
	uint8_t body[62];
	size_t n = put_serial(body, e);

	n += put_time(body + n, e->revoked_at);
	if (e->reason > 0) {
		memcpy(body + n, reason_ext, sizeof(reason_ext));
		n += sizeof(reason_ext);
		body[n++] = (uint8_t)e->reason;
	}
	p[0] = 0x30;
	p[1] = (uint8_t)n;
	memcpy(p + 2, body, n);
	return n + 2;
}

static kiln_result crl_exts(const struct kiln_crl_spec *s, kiln_buf *out)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id((X509 *)s->issuer);
	uint8_t num[10], tmp[64];
	size_t nlen = 0, k;
	kiln_buf exts;
	kiln_result r;
	uint64_t v = s->number;

	KILN_ENSURE(ski != NULL && ski->length > 0 && ski->length <= 40, KILN_ERR_ARG);
	kiln_buf_init(&exts, 4096);
	/* authorityKeyIdentifier: SEQUENCE { OID, OCTET STRING { SEQUENCE { [0] keyid } } } */
	k = put_hdr(tmp, 0x30, 5 + 2 + 2 + 2 + (size_t)ski->length);
	memcpy(tmp + k, "\x06\x03\x55\x1d\x23", 5);
	k += 5;
	k += put_hdr(tmp + k, 0x04, 2 + 2 + (size_t)ski->length);
	k += put_hdr(tmp + k, 0x30, 2 + (size_t)ski->length);
	k += put_hdr(tmp + k, 0x80, (size_t)ski->length);
	memcpy(tmp + k, ski->data, (size_t)ski->length);
	k += (size_t)ski->length;
	KILN_TRY(r, kiln_buf_append(&exts, tmp, k));
	/* cRLNumber: INTEGER, non-negative, minimal */
	do {
		num[sizeof(num) - 1 - nlen++] = (uint8_t)v;
		v >>= 8;
	} while (v > 0);
	if (num[sizeof(num) - nlen] & 0x80)
		num[sizeof(num) - 1 - nlen++] = 0;
	k = put_hdr(tmp, 0x30, 5 + 2 + 2 + nlen);
	memcpy(tmp + k, "\x06\x03\x55\x1d\x14", 5);
	k += 5;
	k += put_hdr(tmp + k, 0x04, 2 + nlen);
	k += put_hdr(tmp + k, 0x02, nlen);
	memcpy(tmp + k, num + sizeof(num) - nlen, nlen);
	k += nlen;
	KILN_TRY(r, kiln_buf_append(&exts, tmp, k));
	KILN_TRY(r, append_hdr(out, 0xa0, 2 + exts.len));
	KILN_TRY(r, append_hdr(out, 0x30, exts.len));
	r = kiln_buf_append_slice(out, kiln_buf_view(&exts));
out:
	kiln_buf_cleanup(&exts);
	return r;
}

static kiln_result crl_head(const struct kiln_crl_spec *s, kiln_buf *out, kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(s->sig_alg);
	unsigned char *name = NULL;
	uint8_t t[20];
	int nlen;
	kiln_result r;

	KILN_ENSURE(ai != NULL, KILN_ERR_ARG);
	nlen = i2d_X509_NAME(X509_get_subject_name(s->issuer), &name);
	if (nlen <= 0) {
		ERR_clear_error();
		return kiln_diag_set(d, KILN_ERR_CRYPTO, "encoding the CRL issuer name failed");
	}
	KILN_TRY(r, kiln_buf_append(out, "\x02\x01\x01", 3)); /* version v2 */
	KILN_TRY(r, kiln_buf_append_slice(out, ai->algid));
	KILN_TRY(r, kiln_buf_append(out, name, (size_t)nlen));
	KILN_TRY(r, kiln_buf_append(out, t, put_time(t, s->this_update)));
	r = kiln_buf_append(out, t, put_time(t, s->next_update));
out:
	OPENSSL_free(name);
	return r;
}

kiln_result kiln_crl_tbs(const struct kiln_crl_spec *s, kiln_buf *tbs, kiln_diag *d)
{
	uint8_t e[64];
	size_t revoked = 0, body;
	kiln_buf head, exts;
	kiln_result r;

	KILN_ENSURE(s != NULL && tbs != NULL && s->issuer != NULL, KILN_ERR_ARG);
	KILN_ENSURE(s->n <= KILN_CRL_MAX_ENTRIES && (s->n == 0 || s->entries != NULL), KILN_ERR_ARG);
	if (s->number < 1 || s->next_update <= s->this_update || s->this_update < 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "CRL: number must be >= 1 and nextUpdate after "
				     "thisUpdate");
	for (size_t i = 0; i < s->n; i++) {
		const struct kiln_crl_entry *x = &s->entries[i];

		if (x->serial_len == 0 || x->serial_len > KILN_CRL_SERIAL_MAX || x->reason < 0 ||
		    x->reason > 10 || x->reason == 7 || x->revoked_at < 0)
			return kiln_diag_set(d, KILN_ERR_ARG, "CRL entry %zu: bad serial or reason", i);
		revoked += put_entry(e, x);
	}
	kiln_buf_init(&head, 64 * 1024);
	kiln_buf_init(&exts, 4096);
	KILN_TRY(r, crl_head(s, &head, d));
	KILN_TRY(r, crl_exts(s, &exts));
	body = head.len + exts.len + (s->n > 0 ? 1 + len_size(revoked) + revoked : 0);
	KILN_TRY(r, kiln_buf_reserve(tbs, body + 16));
	KILN_TRY(r, append_hdr(tbs, 0x30, body));
	KILN_TRY(r, kiln_buf_append_slice(tbs, kiln_buf_view(&head)));
	if (s->n > 0) {
		KILN_TRY(r, append_hdr(tbs, 0x30, revoked));
		for (size_t i = 0; i < s->n; i++)
			KILN_TRY(r, kiln_buf_append(tbs, e, put_entry(e, &s->entries[i])));
	}
	r = kiln_buf_append_slice(tbs, kiln_buf_view(&exts));
out:
	kiln_buf_cleanup(&head);
	kiln_buf_cleanup(&exts);
	return r;
}

kiln_result kiln_signed_assemble_big(kiln_slice tbs, kiln_alg alg, kiln_slice sig, kiln_buf *out)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	size_t body;

	KILN_ENSURE(ai != NULL && sig.len > 0, KILN_ERR_ARG);
	body = tbs.len + ai->algid.len + 1 + len_size(sig.len + 1) + sig.len + 1;
	KILN_GUARD(kiln_buf_reserve(out, body + 16));
	KILN_GUARD(append_hdr(out, 0x30, body));
	KILN_GUARD(kiln_buf_append_slice(out, tbs));
	KILN_GUARD(kiln_buf_append_slice(out, ai->algid));
	KILN_GUARD(append_hdr(out, 0x03, sig.len + 1));
	KILN_GUARD(kiln_buf_append_u8(out, 0));
	return kiln_buf_append_slice(out, sig);
}
