/*
 * Bounded DER: a strict TLV reader for untrusted bytes (definite, minimal
 * lengths; single-byte tags; depth cap), a TLV writer, and the ECDSA
 * signature conversion PKCS#11 needs.
 */
#include "crypto.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <string.h>

kiln_result kiln_der_read(kiln_cursor *c, uint8_t *tag, kiln_slice *content)
{
	kiln_cursor t = *c;
	uint8_t tg, lb;
	size_t len = 0;

	KILN_GUARD(kiln_cursor_u8(&t, &tg));
	KILN_ENSURE((tg & 0x1f) != 0x1f, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_cursor_u8(&t, &lb));
	if (lb < 0x80) {
		len = lb;
	} else {
		size_t nbytes = lb & 0x7f;

		/* 0x80 is BER's indefinite length; more than 4 bytes is never needed here. */
		KILN_ENSURE(nbytes >= 1 && nbytes <= 4, KILN_ERR_MALFORMED);
		for (size_t i = 0; i < nbytes; i++) {
			uint8_t b;

			KILN_GUARD(kiln_cursor_u8(&t, &b));
			KILN_ENSURE(!(i == 0 && b == 0), KILN_ERR_MALFORMED);
			len = (len << 8) | b;
		}
		KILN_ENSURE(len >= 0x80, KILN_ERR_MALFORMED);
	}
	KILN_ENSURE(len <= kiln_cursor_remaining(&t), KILN_ERR_TRUNCATED);
	KILN_GUARD(kiln_cursor_bytes(&t, len, content));
	*tag = tg;
	*c = t;
	return kiln_ok();
}

kiln_result kiln_der_read_tlv(kiln_cursor *c, uint8_t *tag, kiln_slice *content, kiln_slice *tlv)
{
	size_t start = c->pos;

	KILN_GUARD(kiln_der_read(c, tag, content));
	if (tlv != NULL)
		*tlv = kiln_slice_of(c->ptr + start, c->pos - start);
	return kiln_ok();
}

static kiln_result check_tree(kiln_slice in, unsigned depth)
{
	kiln_cursor c;

	KILN_ENSURE(depth <= KILN_DER_MAX_DEPTH, KILN_ERR_MALFORMED);
	kiln_cursor_init(&c, in);
	while (kiln_cursor_remaining(&c) > 0) {
		kiln_slice content;
		uint8_t tag;

		KILN_GUARD(kiln_der_read(&c, &tag, &content));
		if (tag & 0x20)
			KILN_GUARD(check_tree(content, depth + 1));
	}
	return kiln_ok();
}

kiln_result kiln_der_check(kiln_slice in)
{
	kiln_cursor c;
	kiln_slice content;
	uint8_t tag;

	kiln_cursor_init(&c, in);
	KILN_GUARD(kiln_der_read(&c, &tag, &content));
	KILN_GUARD(kiln_cursor_expect_end(&c));
	if (tag & 0x20)
		KILN_GUARD(check_tree(content, 1));
	return kiln_ok();
}

kiln_result kiln_der_write(kiln_buf *out, uint8_t tag, kiln_slice content)
{
	uint8_t hdr[6];
	size_t n = 0, len = content.len;

	KILN_ENSURE(len <= 0xffffffffu, KILN_ERR_TOO_BIG);
	hdr[n++] = tag;
	if (len < 0x80) {
		hdr[n++] = (uint8_t)len;
	} else {
		size_t bytes = len > 0xffffff ? 4 : len > 0xffff ? 3 : len > 0xff ? 2 : 1;

		hdr[n++] = (uint8_t)(0x80 | bytes);
		for (size_t i = bytes; i > 0; i--)
			hdr[n++] = (uint8_t)(len >> (8 * (i - 1)));
	}
	KILN_GUARD(kiln_buf_reserve(out, n + len));
	KILN_GUARD(kiln_buf_append(out, hdr, n));
	return kiln_buf_append_slice(out, content);
}

static size_t len_octets(size_t len)
{
	return len < 0x80 ? 1 : len > 0xffffff ? 5 : len > 0xffff ? 4 : len > 0xff ? 3 : 2;
}

kiln_result kiln_der_wrap(kiln_buf *b, size_t start, uint8_t tag)
{
	size_t len, hdr;
	uint8_t *p;

	KILN_ENSURE(start <= b->len, KILN_ERR_ARG);
	len = b->len - start;
	KILN_ENSURE(len <= 0xffffffffu, KILN_ERR_TOO_BIG);
	hdr = 1 + len_octets(len);
	KILN_GUARD(kiln_buf_reserve(b, hdr));
	p = b->ptr + start;
	memmove(p + hdr, p, len);
	p[0] = tag;
	if (len < 0x80) {
		p[1] = (uint8_t)len;
	} else {
		p[1] = (uint8_t)(0x80 | (hdr - 2));
		for (size_t i = 2; i < hdr; i++)
			p[i] = (uint8_t)(len >> (8 * (hdr - 1 - i)));
	}
	b->len += hdr;
	b->ptr[b->len] = 0;
	return kiln_ok();
}

kiln_result kiln_ecdsa_raw_to_der(kiln_alg alg, kiln_slice raw, kiln_buf *out)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	int n;

	KILN_ENSURE(ai != NULL && ai->ec_coord_len > 0, KILN_ERR_ARG);
	KILN_ENSURE(raw.len == 2 * ai->ec_coord_len, KILN_ERR_MALFORMED);
	br = BN_bin2bn(raw.ptr, (int)ai->ec_coord_len, NULL);
	bs = BN_bin2bn(raw.ptr + ai->ec_coord_len, (int)ai->ec_coord_len, NULL);
	sig = ECDSA_SIG_new();
	if (br == NULL || bs == NULL || sig == NULL || ECDSA_SIG_set0(sig, br, bs) != 1)
		goto out;
	br = bs = NULL; /* owned by sig now */
	n = i2d_ECDSA_SIG(sig, &der);
	if (n <= 0)
		goto out;
	r = kiln_buf_append(out, der, (size_t)n);
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	OPENSSL_free(der);
	return r;
}
