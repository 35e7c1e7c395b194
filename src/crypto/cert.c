/*
 * Certificates: serial numbers, the TBSCertificate written as DER from a
 * kiln_cert_spec, and the signed object assembled around a signature made
 * in the HSM. OpenSSL never sees a CA private key: the TBS carries the
 * signature AlgorithmIdentifier of the issuer's algorithm and is handed to
 * the signer as bytes.
 */
#include "crypto.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * Positive, and never a zero first byte: DER drops a leading zero octet, so a
 * serial starting with 0x00 would be one byte shorter in the certificate than
 * in the inventory, and its hex (how identities and certificates are looked
 * up) would differ: 1 identity in 128 could not authenticate.
 */
kiln_result kiln_serial_new(uint8_t out[KILN_SERIAL_LEN])
{
	do {
		KILN_GUARD(kiln_random(out, KILN_SERIAL_LEN));
		out[0] &= 0x7f;
	} while (out[0] == 0);
	return kiln_ok();
}

/*
 * The TBSCertificate is written here as DER, field by field, in the order
 * and encoding OpenSSL's own X509 object model produces for the same spec
 * (tests/unit/crypto/test_cert.c holds an OpenSSL-built reference and
 * requires the same bytes). OpenSSL still encodes the names (X509_NAME) and
 * any extra extension (X509_EXTENSION); everything else is a handful of
 * fixed-shape TLVs. Building and freeing an X509 with its extension objects
 * cost more per certificate than the CSR's signature check (OpenSSL 3.0).
 */

#define TAG_BOOLEAN 0x01
#define TAG_OID 0x06
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18
#define TAG_EXPLICIT0 0xa0 /* [0] constructed: version, DistributionPointName, fullName */
#define TAG_EXPLICIT3 0xa3 /* [3]: extensions */
#define TAG_KEYID 0x80     /* AuthorityKeyIdentifier keyIdentifier [0] IMPLICIT */
#define GN_DNS 0x82        /* GeneralName dNSName [2] IMPLICIT IA5String */
#define GN_URI 0x86        /* uniformResourceIdentifier [6] */
#define GN_IP 0x87         /* iPAddress [7] OCTET STRING */

/* Extensions kiln writes itself, at most one each; extras are checked against these. */
#define TBS_MAX_OWN_EXT 8

struct tbs_ctx {
	const struct kiln_cert_spec *s;
	kiln_buf *b;
	uint8_t ski[20];
	int own[TBS_MAX_OWN_EXT]; /* NIDs of the extensions written so far */
	size_t n_own;
};

static kiln_result put(kiln_buf *b, uint8_t tag, const void *p, size_t n)
{
	return kiln_der_write(b, tag, kiln_slice_of(p, n));
}

static kiln_result put_oid(kiln_buf *b, int nid)
{
	const ASN1_OBJECT *o = OBJ_nid2obj(nid);
	size_t n = o != NULL ? OBJ_length(o) : 0;

	KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
	return put(b, TAG_OID, OBJ_get0_data(o), n);
}

/* A non-negative INTEGER from big-endian bytes: minimal, with a 0x00 before a high bit. */
static kiln_result put_uint(kiln_buf *b, const uint8_t *p, size_t n)
{
	size_t start = b->len;

	while (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	if (n == 0 || (p[0] & 0x80))
		KILN_GUARD(kiln_buf_append_u8(b, 0));
	KILN_GUARD(kiln_buf_append(b, p, n));
	return kiln_der_wrap(b, start, KILN_DER_INTEGER);
}

/* RFC 5280 4.1.2.5: UTCTime for 1950 through 2049, GeneralizedTime otherwise (as ASN1_TIME_set). */
static kiln_result put_time(kiln_buf *b, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char text[24];
	int year, n;

	KILN_ENSURE(gmtime_r(&tt, &tm) != NULL, KILN_ERR_ARG);
	year = tm.tm_year + 1900;
	KILN_ENSURE(year >= 0 && year <= 9999, KILN_ERR_ARG);
	if (year >= 1950 && year < 2050)
		n = snprintf(text, sizeof(text), "%02d%02d%02d%02d%02d%02dZ", year % 100,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		n = snprintf(text, sizeof(text), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(text), KILN_ERR_ARG);
	return put(b, year >= 1950 && year < 2050 ? TAG_UTCTIME : TAG_GENTIME, text, (size_t)n);
}

static kiln_result put_name(kiln_buf *b, const X509_NAME *name)
{
	const unsigned char *der = NULL;
	size_t len = 0;

	KILN_ENSURE(X509_NAME_get0_der(name, &der, &len) == 1 && len > 0, KILN_ERR_CRYPTO);
	return kiln_buf_append(b, der, len);
}

static kiln_result put_subject(kiln_buf *b, const struct kiln_cert_spec *s)
{
	if (s->subject != NULL)
		return put_name(b, s->subject);
	return kiln_buf_append_slice(b, s->subject_der);
}

/*
 * The subject's SubjectPublicKeyInfo: the DER given (a CSR's, checked for
 * shape here: SEQUENCE { AlgorithmIdentifier, BIT STRING with no unused
 * bits }), else the key's encoding. Its key bits are kept for the SKI.
 */
static kiln_result put_spki(struct tbs_ctx *t)
{
	kiln_slice spki = t->s->subject_spki, seq, alg, bits;
	unsigned char *enc = NULL;
	kiln_cursor c, in;
	uint8_t tag;
	kiln_result r;

	if (spki.len == 0) {
		int n = i2d_PUBKEY((EVP_PKEY *)t->s->subject_key, &enc);

		KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
		spki = kiln_slice_of(enc, (size_t)n);
	}
	kiln_cursor_init(&c, spki);
	KILN_TRY(r, kiln_der_read(&c, &tag, &seq));
	KILN_TRY(r, tag == KILN_DER_SEQUENCE && kiln_cursor_remaining(&c) == 0 ? kiln_ok()
										: kiln_fail(KILN_ERR_MALFORMED));
	kiln_cursor_init(&in, seq);
	KILN_TRY(r, kiln_der_read(&in, &tag, &alg));
	KILN_TRY(r, tag == KILN_DER_SEQUENCE ? kiln_ok() : kiln_fail(KILN_ERR_MALFORMED));
	KILN_TRY(r, kiln_der_read(&in, &tag, &bits));
	KILN_TRY(r, tag == KILN_DER_BIT_STRING && bits.len >= 2 && bits.ptr[0] == 0 &&
				    kiln_cursor_remaining(&in) == 0 ?
			    kiln_ok() :
			    kiln_fail(KILN_ERR_MALFORMED));
	KILN_TRY(r, kiln_buf_append_slice(t->b, spki));
	/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
	KILN_TRY(r, EVP_Digest(bits.ptr + 1, bits.len - 1, t->ski, NULL, EVP_sha1(), NULL) == 1 ?
			    kiln_ok() :
			    kiln_fail(KILN_ERR_CRYPTO));
out:
	OPENSSL_free(enc);
	return r;
}

/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
struct ext_mark {
	size_t start, value;
};

static kiln_result ext_begin(struct tbs_ctx *t, struct ext_mark *m, int nid, bool critical)
{
	KILN_ENSURE(t->n_own < TBS_MAX_OWN_EXT, KILN_ERR_INTERNAL);
	t->own[t->n_own++] = nid;
	m->start = t->b->len;
	KILN_GUARD(put_oid(t->b, nid));
	if (critical)
		KILN_GUARD(put(t->b, TAG_BOOLEAN, "\xff", 1));
	m->value = t->b->len;
	return kiln_ok();
}

static kiln_result ext_end(struct tbs_ctx *t, const struct ext_mark *m)
{
	KILN_GUARD(kiln_der_wrap(t->b, m->value, KILN_DER_OCTET_STRING));
	return kiln_der_wrap(t->b, m->start, KILN_DER_SEQUENCE);
}

static kiln_result ext_basic(struct tbs_ctx *t)
{
	struct ext_mark m;
	size_t seq;

	KILN_GUARD(ext_begin(t, &m, NID_basic_constraints, true));
	seq = t->b->len;
	if (t->s->is_ca) {
		KILN_GUARD(put(t->b, TAG_BOOLEAN, "\xff", 1));
		if (t->s->path_len >= 0) {
			uint32_t v = (uint32_t)t->s->path_len;
			uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
					  (uint8_t)v };

			KILN_GUARD(put_uint(t->b, be, sizeof(be)));
		}
	}
	KILN_GUARD(kiln_der_wrap(t->b, seq, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

/*
 * KU_* values are the DER bit masks: bit n of the BIT STRING is 0x80 >> n
 * for n < 8, decipherOnly (bit 8) is 0x8000. Trailing zero octets are
 * dropped and the unused-bits count is the last octet's trailing zeros.
 */
static kiln_result ext_key_usage(struct tbs_ctx *t)
{
	uint8_t v[3] = { 0, (uint8_t)(t->s->key_usage & 0xff),
			 (uint8_t)((t->s->key_usage & 0x8000) ? 0x80 : 0) };
	size_t n = v[2] != 0 ? 2 : v[1] != 0 ? 1 : 0;
	struct ext_mark m;

	if (n > 0) {
		uint8_t last = v[n];

		while (!(last & 1)) {
			last = (uint8_t)(last >> 1);
			v[0]++;
		}
	}
	KILN_GUARD(ext_begin(t, &m, NID_key_usage, true));
	KILN_GUARD(put(t->b, KILN_DER_BIT_STRING, v, n + 1));
	return ext_end(t, &m);
}

static kiln_result ext_eku(struct tbs_ctx *t)
{
	struct ext_mark m;
	size_t seq;

	if (t->s->n_eku == 0)
		return kiln_ok();
	KILN_ENSURE(t->s->n_eku <= KILN_CERT_MAX_EKU, KILN_ERR_ARG);
	KILN_GUARD(ext_begin(t, &m, NID_ext_key_usage, false));
	seq = t->b->len;
	for (size_t i = 0; i < t->s->n_eku; i++)
		KILN_GUARD(put_oid(t->b, t->s->eku[i]));
	KILN_GUARD(kiln_der_wrap(t->b, seq, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

/* SKI, then AKI: the issuer's SKI (the certificate's own when self-signed). */
static kiln_result ext_key_ids(struct tbs_ctx *t)
{
	const ASN1_OCTET_STRING *issuer_ski =
		t->s->issuer != NULL ? X509_get0_subject_key_id((X509 *)t->s->issuer) : NULL;
	kiln_slice aki = kiln_slice_of(t->ski, sizeof(t->ski));
	struct ext_mark m;
	size_t seq;

	KILN_GUARD(ext_begin(t, &m, NID_subject_key_identifier, false));
	KILN_GUARD(put(t->b, KILN_DER_OCTET_STRING, t->ski, sizeof(t->ski)));
	KILN_GUARD(ext_end(t, &m));
	if (t->s->issuer != NULL) {
		KILN_ENSURE(issuer_ski != NULL, KILN_ERR_CRYPTO);
		aki = kiln_slice_of(ASN1_STRING_get0_data(issuer_ski),
				    (size_t)ASN1_STRING_length(issuer_ski));
	}
	KILN_GUARD(ext_begin(t, &m, NID_authority_key_identifier, false));
	seq = t->b->len;
	KILN_GUARD(kiln_der_write(t->b, TAG_KEYID, aki));
	KILN_GUARD(kiln_der_wrap(t->b, seq, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

/*
 * URIs and DNS names are IA5String: ASCII only. Spaces and control
 * characters are never valid in either, and an empty name is meaningless.
 */
static bool ia5_name_ok(const char *value)
{
	if (value == NULL || value[0] == '\0')
		return false;
	for (const char *p = value; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	}
	return true;
}

static bool put_ia5_name(kiln_buf *b, uint8_t tag, const char *value, kiln_result *r)
{
	if (!ia5_name_ok(value))
		return false;
	*r = put(b, tag, value, strlen(value));
	return kiln_is_ok(*r);
}

/*
 * Strict dotted-quad or RFC 4291 text, via inet_pton: a2i_IPADDRESS also
 * takes trailing blanks and leading zeros ("010.0.0.1"), which other
 * software reads as octal.
 */
static bool put_ip_name(kiln_buf *b, const char *value, kiln_result *r)
{
	unsigned char addr[16];
	size_t len;

	if (value == NULL)
		return false;
	if (inet_pton(AF_INET, value, addr) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, value, addr) == 1)
		len = 16;
	else
		return false;
	*r = put(b, GN_IP, addr, len);
	return kiln_is_ok(*r);
}

static kiln_result ext_san(struct tbs_ctx *t, kiln_diag *d)
{
	const struct kiln_cert_spec *s = t->s;
	kiln_result r = kiln_ok();
	struct ext_mark m;
	bool ok = true;
	size_t seq;

	if (s->n_san_uri + s->n_san_dns + s->n_san_ip == 0)
		return kiln_ok();
	KILN_ENSURE(s->n_san_uri <= KILN_CERT_MAX_SAN && s->n_san_dns <= KILN_CERT_MAX_SAN &&
			    s->n_san_ip <= KILN_CERT_MAX_SAN,
		    KILN_ERR_ARG);
	KILN_GUARD(ext_begin(t, &m, NID_subject_alt_name, false));
	seq = t->b->len;
	for (size_t i = 0; ok && i < s->n_san_uri; i++)
		ok = put_ia5_name(t->b, GN_URI, s->san_uri[i], &r);
	for (size_t i = 0; ok && i < s->n_san_dns; i++)
		ok = put_ia5_name(t->b, GN_DNS, s->san_dns[i], &r);
	for (size_t i = 0; ok && i < s->n_san_ip; i++)
		ok = put_ip_name(t->b, s->san_ip[i], &r);
	if (!kiln_is_ok(r))
		return r;
	if (!ok)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "a subject alternative name is not a valid URI, DNS name or IP address");
	KILN_GUARD(kiln_der_wrap(t->b, seq, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

/* CRLDistributionPoints: one DistributionPoint whose fullName is the URL. */
static kiln_result ext_crl_dp(struct tbs_ctx *t)
{
	size_t outer, dp, dpn, full;
	kiln_result r = kiln_ok();
	struct ext_mark m;

	if (t->s->crl_url == NULL)
		return kiln_ok();
	KILN_GUARD(ext_begin(t, &m, NID_crl_distribution_points, false));
	outer = t->b->len;
	dp = t->b->len;
	dpn = t->b->len;
	full = t->b->len;
	if (!put_ia5_name(t->b, GN_URI, t->s->crl_url, &r))
		return kiln_is_ok(r) ? kiln_fail(KILN_ERR_CRYPTO) : r;
	KILN_GUARD(kiln_der_wrap(t->b, full, TAG_EXPLICIT0)); /* fullName [0] GeneralNames */
	KILN_GUARD(kiln_der_wrap(t->b, dpn, TAG_EXPLICIT0));  /* distributionPoint [0] */
	KILN_GUARD(kiln_der_wrap(t->b, dp, KILN_DER_SEQUENCE));
	KILN_GUARD(kiln_der_wrap(t->b, outer, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

static kiln_result put_access(kiln_buf *b, int method, const char *url)
{
	size_t start = b->len;
	kiln_result r = kiln_ok();

	if (url == NULL)
		return kiln_ok();
	KILN_GUARD(put_oid(b, method));
	if (!put_ia5_name(b, GN_URI, url, &r))
		return kiln_is_ok(r) ? kiln_fail(KILN_ERR_CRYPTO) : r;
	return kiln_der_wrap(b, start, KILN_DER_SEQUENCE);
}

static kiln_result ext_aia(struct tbs_ctx *t)
{
	struct ext_mark m;
	size_t seq;

	if (t->s->ocsp_url == NULL && t->s->ca_issuers_url == NULL)
		return kiln_ok();
	KILN_GUARD(ext_begin(t, &m, NID_info_access, false));
	seq = t->b->len;
	KILN_GUARD(put_access(t->b, NID_ad_OCSP, t->s->ocsp_url));
	KILN_GUARD(put_access(t->b, NID_ad_ca_issuers, t->s->ca_issuers_url));
	KILN_GUARD(kiln_der_wrap(t->b, seq, KILN_DER_SEQUENCE));
	return ext_end(t, &m);
}

/* RFC 5280 4.2: an extension appears at most once. */
static bool ext_repeated(const struct tbs_ctx *t, size_t i)
{
	const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)t->s->extra[i]);

	for (size_t k = 0; k < t->n_own; k++) {
		if (OBJ_cmp(obj, OBJ_nid2obj(t->own[k])) == 0)
			return true;
	}
	for (size_t k = 0; k < i; k++) {
		if (OBJ_cmp(obj, X509_EXTENSION_get_object((X509_EXTENSION *)t->s->extra[k])) == 0)
			return true;
	}
	return false;
}

static kiln_result ext_extra(struct tbs_ctx *t, kiln_diag *d)
{
	for (size_t i = 0; i < t->s->n_extra; i++) {
		unsigned char *der = NULL;
		kiln_result r;
		int n;

		KILN_ENSURE(t->s->extra[i] != NULL, KILN_ERR_ARG);
		if (ext_repeated(t, i))
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "extra extension %zu repeats an extension already present", i);
		n = i2d_X509_EXTENSION((X509_EXTENSION *)t->s->extra[i], &der);
		KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
		r = kiln_buf_append(t->b, der, (size_t)n);
		OPENSSL_free(der);
		KILN_GUARD(r);
	}
	return kiln_ok();
}

static kiln_result check_validity(const struct kiln_cert_spec *s, kiln_diag *d)
{
	if (s->not_after <= s->not_before)
		return kiln_diag_set(d, KILN_ERR_ARG, "certificate validity ends before it starts");
	if (s->issuer != NULL &&
	    ASN1_TIME_cmp_time_t(X509_get0_notAfter(s->issuer), (time_t)s->not_after) < 0)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "certificate would outlive its issuer; shorten validity_days");
	return kiln_ok();
}

/*
 * TBSCertificate ::= SEQUENCE { version [0] v3, serialNumber, signature,
 * issuer, validity, subject, subjectPublicKeyInfo, extensions [3] }
 */
static kiln_result write_tbs(struct tbs_ctx *t, const struct kiln_alg_info *ai, kiln_diag *d)
{
	const struct kiln_cert_spec *s = t->s;
	kiln_buf *b = t->b;
	size_t tbs = b->len, part;

	KILN_GUARD(check_validity(s, d));
	KILN_GUARD(kiln_buf_append(b, "\xa0\x03\x02\x01\x02", 5));
	KILN_GUARD(put_uint(b, s->serial, KILN_SERIAL_LEN));
	KILN_GUARD(kiln_buf_append_slice(b, ai->algid));
	if (s->issuer != NULL)
		KILN_GUARD(put_name(b, X509_get_subject_name(s->issuer)));
	else
		KILN_GUARD(put_subject(b, s));
	part = b->len;
	KILN_GUARD(put_time(b, s->not_before));
	KILN_GUARD(put_time(b, s->not_after));
	KILN_GUARD(kiln_der_wrap(b, part, KILN_DER_SEQUENCE));
	KILN_GUARD(put_subject(b, s));
	KILN_GUARD(put_spki(t));
	part = b->len;
	KILN_GUARD(ext_basic(t));
	KILN_GUARD(ext_key_usage(t));
	KILN_GUARD(ext_eku(t));
	KILN_GUARD(ext_key_ids(t));
	KILN_GUARD(ext_san(t, d));
	KILN_GUARD(ext_crl_dp(t));
	KILN_GUARD(ext_aia(t));
	KILN_GUARD(ext_extra(t, d));
	KILN_GUARD(kiln_der_wrap(b, part, KILN_DER_SEQUENCE));
	KILN_GUARD(kiln_der_wrap(b, part, TAG_EXPLICIT3));
	return kiln_der_wrap(b, tbs, KILN_DER_SEQUENCE);
}

kiln_result kiln_cert_tbs(const struct kiln_cert_spec *spec, kiln_buf *tbs, kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(spec->sig_alg);
	struct tbs_ctx t = { .s = spec, .b = tbs };
	size_t start = tbs->len;
	kiln_result r;

	KILN_ENSURE(ai != NULL && (spec->subject != NULL || spec->subject_der.len > 0) &&
			    spec->subject_key != NULL,
		    KILN_ERR_ARG);
	r = write_tbs(&t, ai, d);
	if (!kiln_is_ok(r) && tbs->ptr != NULL) {
		tbs->len = start; /* nothing half-written is left appended */
		tbs->ptr[start] = 0;
	}
	ERR_clear_error();
	return r;
}

kiln_result kiln_signed_assemble(kiln_slice tbs, kiln_alg alg, kiln_slice sig, kiln_buf *out)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	kiln_buf body, bits;
	kiln_result r;

	KILN_ENSURE(ai != NULL && sig.len > 0, KILN_ERR_ARG);
	kiln_buf_init(&body, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&bits, KILN_BUF_DEFAULT_MAX);
	KILN_TRY(r, kiln_buf_append_u8(&bits, 0)); /* no unused bits */
	KILN_TRY(r, kiln_buf_append_slice(&bits, sig));
	KILN_TRY(r, kiln_buf_append_slice(&body, tbs));
	KILN_TRY(r, kiln_buf_append_slice(&body, ai->algid));
	KILN_TRY(r, kiln_der_write(&body, KILN_DER_BIT_STRING, kiln_buf_view(&bits)));
	r = kiln_der_write(out, KILN_DER_SEQUENCE, kiln_buf_view(&body));
out:
	kiln_buf_cleanup(&body);
	kiln_buf_cleanup(&bits);
	return r;
}

kiln_result kiln_cert_parse(kiln_slice der, X509 **out, kiln_diag *d)
{
	const unsigned char *p = der.ptr;
	X509 *x;

	*out = NULL;
	if (der.len == 0 || der.len > KILN_CSR_MAX_BYTES || !kiln_is_ok(kiln_der_check(der)))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "not a well-formed DER certificate");
	x = d2i_X509(NULL, &p, (long)der.len);
	if (x == NULL || p != der.ptr + der.len) {
		X509_free(x);
		ERR_clear_error();
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "not an X.509 certificate");
	}
	*out = x;
	return kiln_ok();
}

kiln_result kiln_cert_check_signature(const X509 *cert, const X509 *issuer)
{
	EVP_PKEY *pk = X509_get0_pubkey(issuer);
	int ok = pk != NULL && X509_verify((X509 *)cert, pk) == 1;

	ERR_clear_error();
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

void kiln_cert_serial_hex(const X509 *cert, char *out, size_t cap)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(cert);
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	uint8_t bytes[64];
	int n = -1;

	if (cap == 0)
		goto out;
	out[0] = '\0';
	/* A parsed certificate's serial can be any length: check before BN_bn2bin writes. */
	/*
	 * kiln's serials are KILN_SERIAL_LEN random bytes, stored as that many
	 * bytes of hex: a serial whose first byte is 0 (dropped by DER) is padded
	 * back, so a certificate's serial matches its inventory record.
	 */
	if (bn != NULL && BN_num_bytes(bn) <= (int)sizeof(bytes))
		n = BN_bn2binpad(bn, bytes,
				 BN_num_bytes(bn) < KILN_SERIAL_LEN ? KILN_SERIAL_LEN : BN_num_bytes(bn));
	if (n >= 0 && cap >= 2 * (size_t)n + 1)
		kiln_hex_encode(bytes, (size_t)n, out);
out:
	BN_free(bn);
}

kiln_result kiln_cert_pem(const X509 *cert, kiln_buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);
	kiln_result r;

	ERR_clear_error();
	KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
	r = kiln_pem_encode(PEM_STRING_X509, kiln_slice_of(der, (size_t)n), out);
	OPENSSL_free(der);
	return r;
}
