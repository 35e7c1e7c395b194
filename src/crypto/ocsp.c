/*
 * OCSP (RFC 6960), pure: a bounded walk of OCSPRequest (our own, like the
 * CSR walker: OpenSSL never sees the request) and the DER of responses.
 * Requests: at most KILN_OCSP_MAX_BYTES, KILN_OCSP_MAX_IDS CertIDs, SHA-1 or
 * SHA-256 CertIDs (others are reported as hash 0, for the responder to
 * refuse), the nonce extension kept as it came so it can be echoed.
 */
#include "crypto.h"

#include <string.h>
#include <time.h>

static const uint8_t oid_sha1[] = { 0x2b, 0x0e, 0x03, 0x02, 0x1a };
static const uint8_t oid_sha256[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
static const uint8_t oid_nonce[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02 };
static const uint8_t oid_basic[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01 };

#define MAL KILN_ERR_MALFORMED

static bool slice_eq(kiln_slice s, const uint8_t *p, size_t n)
{
	return s.len == n && memcmp(s.ptr, p, n) == 0;
}

/* Reads one TLV that must carry tag. */
static kiln_result expect(kiln_cursor *c, uint8_t tag, kiln_slice *content, kiln_slice *tlv)
{
	kiln_cursor t = *c;
	uint8_t got;

	KILN_GUARD(kiln_der_read_tlv(&t, &got, content, tlv));
	KILN_ENSURE(got == tag, MAL);
	*c = t;
	return kiln_ok();
}

static bool peek(const kiln_cursor *c, uint8_t tag)
{
	return kiln_cursor_remaining(c) > 0 && c->ptr[c->pos] == tag;
}

static kiln_result parse_certid(kiln_slice tlv_in, kiln_cursor *outer, struct kiln_ocsp_certid *id)
{
	kiln_slice body, alg, oid, v;
	kiln_cursor c, a;

	(void)tlv_in;
	KILN_GUARD(expect(outer, 0x30, &body, &id->tlv));
	kiln_cursor_init(&c, body);
	KILN_GUARD(expect(&c, 0x30, &alg, NULL));
	kiln_cursor_init(&a, alg);
	KILN_GUARD(expect(&a, 0x06, &oid, NULL));
	if (peek(&a, 0x05)) {
		KILN_GUARD(expect(&a, 0x05, &v, NULL));
		KILN_ENSURE(v.len == 0, MAL);
	}
	KILN_GUARD(kiln_cursor_expect_end(&a));
	id->hash = slice_eq(oid, oid_sha1, sizeof(oid_sha1)) ? KILN_OCSP_SHA1
		   : slice_eq(oid, oid_sha256, sizeof(oid_sha256)) ? KILN_OCSP_SHA256 : 0;
	KILN_GUARD(expect(&c, 0x04, &id->name_hash, NULL));
	KILN_GUARD(expect(&c, 0x04, &id->key_hash, NULL));
	KILN_GUARD(expect(&c, 0x02, &id->serial, NULL));
	/* A serial number is positive, at most 20 octets (RFC 5280 4.1.2.2), minimally encoded. */
	KILN_ENSURE(id->serial.len >= 1 && id->serial.len <= 21, MAL);
	KILN_ENSURE(!(id->serial.len > 1 && id->serial.ptr[0] == 0 && !(id->serial.ptr[1] & 0x80)),
		    MAL);
	KILN_ENSURE(!(id->serial.ptr[0] & 0x80), MAL);
	if (id->hash != 0)
		KILN_ENSURE(id->name_hash.len == (id->hash == KILN_OCSP_SHA1 ? 20u : 32u) &&
				    id->key_hash.len == id->name_hash.len,
			    MAL);
	return kiln_cursor_expect_end(&c);
}

/* Extensions ::= SEQUENCE OF Extension; keeps the nonce extension's TLV. */
static kiln_result parse_exts(kiln_slice exts, kiln_slice *nonce)
{
	kiln_slice seq, ext, tlv, oid, v;
	kiln_cursor c, e, x;
	size_t n = 0;

	kiln_cursor_init(&c, exts);
	KILN_GUARD(expect(&c, 0x30, &seq, NULL));
	KILN_GUARD(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&e, seq);
	while (kiln_cursor_remaining(&e) > 0) {
		KILN_ENSURE(++n <= 16, MAL);
		KILN_GUARD(expect(&e, 0x30, &ext, &tlv));
		kiln_cursor_init(&x, ext);
		KILN_GUARD(expect(&x, 0x06, &oid, NULL));
		if (peek(&x, 0x01))
			KILN_GUARD(expect(&x, 0x01, &v, NULL)); /* critical */
		KILN_GUARD(expect(&x, 0x04, &v, NULL));
		KILN_GUARD(kiln_cursor_expect_end(&x));
		if (slice_eq(oid, oid_nonce, sizeof(oid_nonce))) {
			KILN_ENSURE(nonce->len == 0, MAL); /* one nonce */
			/* RFC 8954: 1 to 32 octets of nonce (checked loosely: the value as a whole). */
			KILN_ENSURE(v.len >= 1 && v.len <= 34, MAL);
			*nonce = tlv;
		}
	}
	return kiln_ok();
}

static kiln_result request_walk(kiln_slice in, struct kiln_ocsp_request *out)
{
	kiln_slice req, tbs, list, one, v;
	kiln_cursor c, t, l, r;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	memset(out, 0, sizeof(*out));
	KILN_ENSURE(in.len > 0 && in.len <= KILN_OCSP_MAX_BYTES, MAL);
	kiln_cursor_init(&c, in);
	KILN_GUARD(expect(&c, 0x30, &req, NULL));
	KILN_GUARD(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&c, req);
	KILN_GUARD(expect(&c, 0x30, &tbs, NULL));
	if (peek(&c, 0xa0)) {
		KILN_GUARD(expect(&c, 0xa0, &v, NULL));
		out->signed_req = true;
	}
	KILN_GUARD(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&t, tbs);
	if (peek(&t, 0xa0)) { /* version: only v1 (0) exists */
		KILN_GUARD(expect(&t, 0xa0, &v, NULL));
		KILN_ENSURE(v.len == 3 && v.ptr[0] == 0x02 && v.ptr[1] == 1 && v.ptr[2] == 0, MAL);
	}
	if (peek(&t, 0xa1))
		KILN_GUARD(expect(&t, 0xa1, &v, NULL)); /* requestorName: not used */
	KILN_GUARD(expect(&t, 0x30, &list, NULL));
	if (peek(&t, 0xa2)) {
		KILN_GUARD(expect(&t, 0xa2, &v, NULL));
		KILN_GUARD(parse_exts(v, &out->nonce_ext));
	}
	KILN_GUARD(kiln_cursor_expect_end(&t));
	kiln_cursor_init(&l, list);
	while (kiln_cursor_remaining(&l) > 0) {
		KILN_ENSURE(out->n < KILN_OCSP_MAX_IDS, MAL);
		KILN_GUARD(expect(&l, 0x30, &one, NULL));
		kiln_cursor_init(&r, one);
		KILN_GUARD(parse_certid(one, &r, &out->ids[out->n]));
		if (peek(&r, 0xa0))
			KILN_GUARD(expect(&r, 0xa0, &v, NULL)); /* singleRequestExtensions: ignored */
		KILN_GUARD(kiln_cursor_expect_end(&r));
		out->n++;
	}
	KILN_ENSURE(out->n > 0, MAL);
	return kiln_ok();
}

/* Whatever the walk stumbled on (truncation, bad lengths), the request is malformed. */
kiln_result kiln_ocsp_request_parse(kiln_slice in, struct kiln_ocsp_request *out)
{
	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	if (!kiln_is_ok(request_walk(in, out))) {
		memset(out, 0, sizeof(*out));
		return kiln_fail(MAL);
	}
	return kiln_ok();
}

/* ------------------------------------------------------------ responses */

static kiln_result gen_time(kiln_buf *b, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[32];
	int n;

	KILN_ENSURE(t >= 0 && t <= 253402300799, KILN_ERR_ARG);
	memset(&tm, 0, sizeof(tm));
	(void)gmtime_r(&tt, &tm);
	n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	KILN_ENSURE(n == 15, KILN_ERR_ARG);
	return kiln_der_write(b, 0x18, kiln_slice_of(s, 15));
}

kiln_result kiln_ocsp_certid(int hash, const uint8_t *name_hash, const uint8_t *key_hash,
			     kiln_slice serial, kiln_buf *out)
{
	kiln_buf body, alg;
	size_t hl = hash == KILN_OCSP_SHA1 ? 20 : 32;
	kiln_result r;

	KILN_ENSURE((hash == KILN_OCSP_SHA1 || hash == KILN_OCSP_SHA256) && serial.len > 0, KILN_ERR_ARG);
	kiln_buf_init(&body, 4096);
	kiln_buf_init(&alg, 64);
	KILN_TRY(r, hash == KILN_OCSP_SHA1
			    ? kiln_der_write(&alg, 0x06, kiln_slice_of(oid_sha1, sizeof(oid_sha1)))
			    : kiln_der_write(&alg, 0x06, kiln_slice_of(oid_sha256, sizeof(oid_sha256))));
	KILN_TRY(r, kiln_buf_append(&alg, "\x05\x00", 2));
	KILN_TRY(r, kiln_der_write(&body, 0x30, kiln_buf_view(&alg)));
	KILN_TRY(r, kiln_der_write(&body, 0x04, kiln_slice_of(name_hash, hl)));
	KILN_TRY(r, kiln_der_write(&body, 0x04, kiln_slice_of(key_hash, hl)));
	KILN_TRY(r, kiln_der_write(&body, 0x02, serial));
	r = kiln_der_write(out, 0x30, kiln_buf_view(&body));
out:
	kiln_buf_cleanup(&body);
	kiln_buf_cleanup(&alg);
	return r;
}

static kiln_result single(kiln_buf *out, const struct kiln_ocsp_single *s)
{
	kiln_buf b, st, t;
	kiln_result r;

	kiln_buf_init(&b, 4096);
	kiln_buf_init(&st, 256);
	kiln_buf_init(&t, 64);
	KILN_TRY(r, kiln_buf_append_slice(&b, s->certid_tlv));
	switch (s->status) {
	case KILN_OCSP_GOOD:
		KILN_TRY(r, kiln_buf_append(&b, "\x80\x00", 2));
		break;
	case KILN_OCSP_REVOKED:
		KILN_TRY(r, gen_time(&st, s->revoked_at));
		if (s->reason > 0) {
			uint8_t rs[5] = { 0xa0, 0x03, 0x0a, 0x01, (uint8_t)s->reason };

			KILN_TRY(r, kiln_buf_append(&st, rs, sizeof(rs)));
		}
		KILN_TRY(r, kiln_der_write(&b, 0xa1, kiln_buf_view(&st)));
		break;
	case KILN_OCSP_UNKNOWN:
		KILN_TRY(r, kiln_buf_append(&b, "\x82\x00", 2));
		break;
	default:
		r = kiln_fail(KILN_ERR_ARG);
		goto out;
	}
	KILN_TRY(r, gen_time(&b, s->this_update));
	KILN_TRY(r, gen_time(&t, s->next_update));
	KILN_TRY(r, kiln_der_write(&b, 0xa0, kiln_buf_view(&t)));
	r = kiln_der_write(out, 0x30, kiln_buf_view(&b));
out:
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(&st);
	kiln_buf_cleanup(&t);
	return r;
}

kiln_result kiln_ocsp_tbs(const uint8_t responder_key_hash[20], int64_t produced_at,
			  const struct kiln_ocsp_single *s, size_t n, kiln_slice nonce_ext,
			  kiln_buf *tbs)
{
	kiln_buf body, list, tmp;
	kiln_result r;

	KILN_ENSURE(responder_key_hash != NULL && s != NULL && n > 0 && n <= KILN_OCSP_MAX_IDS,
		    KILN_ERR_ARG);
	kiln_buf_init(&body, 65536);
	kiln_buf_init(&list, 65536);
	kiln_buf_init(&tmp, 4096);
	/* responderID byKey [2] EXPLICIT KeyHash */
	KILN_TRY(r, kiln_der_write(&tmp, 0x04, kiln_slice_of(responder_key_hash, 20)));
	KILN_TRY(r, kiln_der_write(&body, 0xa2, kiln_buf_view(&tmp)));
	KILN_TRY(r, gen_time(&body, produced_at));
	for (size_t i = 0; i < n; i++)
		KILN_TRY(r, single(&list, &s[i]));
	KILN_TRY(r, kiln_der_write(&body, 0x30, kiln_buf_view(&list)));
	if (nonce_ext.len > 0) {
		kiln_buf_reset(&tmp);
		KILN_TRY(r, kiln_der_write(&tmp, 0x30, nonce_ext));
		kiln_buf_reset(&list);
		KILN_TRY(r, kiln_der_write(&list, 0xa1, kiln_buf_view(&tmp)));
		KILN_TRY(r, kiln_buf_append_slice(&body, kiln_buf_view(&list)));
	}
	r = kiln_der_write(tbs, 0x30, kiln_buf_view(&body));
out:
	kiln_buf_cleanup(&body);
	kiln_buf_cleanup(&list);
	kiln_buf_cleanup(&tmp);
	return r;
}

kiln_result kiln_ocsp_assemble(kiln_slice tbs, kiln_alg alg, kiln_slice sig, kiln_slice signer_cert,
			       kiln_buf *out)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	kiln_buf basic, b, bits, certs;
	kiln_result r;

	KILN_ENSURE(ai != NULL && sig.len > 0 && signer_cert.len > 0, KILN_ERR_ARG);
	kiln_buf_init(&basic, 65536);
	kiln_buf_init(&b, 65536);
	kiln_buf_init(&bits, 4096);
	kiln_buf_init(&certs, 65536);
	KILN_TRY(r, kiln_buf_append_slice(&b, tbs));
	KILN_TRY(r, kiln_buf_append_slice(&b, ai->algid));
	KILN_TRY(r, kiln_buf_append_u8(&bits, 0));
	KILN_TRY(r, kiln_buf_append_slice(&bits, sig));
	KILN_TRY(r, kiln_der_write(&b, 0x03, kiln_buf_view(&bits)));
	KILN_TRY(r, kiln_der_write(&certs, 0x30, signer_cert));
	KILN_TRY(r, kiln_der_write(&b, 0xa0, kiln_buf_view(&certs)));
	KILN_TRY(r, kiln_der_write(&basic, 0x30, kiln_buf_view(&b)));
	/* responseBytes: SEQUENCE { id-pkix-ocsp-basic, OCTET STRING basic } */
	kiln_buf_reset(&b);
	KILN_TRY(r, kiln_der_write(&b, 0x06, kiln_slice_of(oid_basic, sizeof(oid_basic))));
	KILN_TRY(r, kiln_der_write(&b, 0x04, kiln_buf_view(&basic)));
	kiln_buf_reset(&certs);
	KILN_TRY(r, kiln_der_write(&certs, 0x30, kiln_buf_view(&b)));
	kiln_buf_reset(&b);
	KILN_TRY(r, kiln_buf_append(&b, "\x0a\x01\x00", 3));
	KILN_TRY(r, kiln_der_write(&b, 0xa0, kiln_buf_view(&certs)));
	r = kiln_der_write(out, 0x30, kiln_buf_view(&b));
out:
	kiln_buf_cleanup(&basic);
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(&bits);
	kiln_buf_cleanup(&certs);
	return r;
}

kiln_result kiln_ocsp_error(int status, kiln_buf *out)
{
	uint8_t e[5] = { 0x30, 0x03, 0x0a, 0x01, (uint8_t)status };

	KILN_ENSURE(status >= 1 && status <= 6 && status != 4, KILN_ERR_ARG);
	return kiln_buf_append(out, e, sizeof(e));
}
