/* Strict base64 (RFC 4648 section 4): protocol bodies carry DER and nonces in it. */
#include "core.h"

#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

kiln_result kiln_base64_encode(kiln_slice in, kiln_buf *out)
{
	size_t groups = in.len / 3 + (in.len % 3 != 0), need, i = 0;
	char *q;

	KILN_ENSURE(kiln_mul_size(groups, 4, &need), KILN_ERR_TOO_BIG);
	KILN_GUARD(kiln_buf_reserve(out, need));
	/* Written in place: the reservation holds the text and its terminating NUL. */
	q = (char *)out->ptr + out->len;
	for (; in.len - i >= 3; i += 3, q += 4) {
		uint32_t v = (uint32_t)in.ptr[i] << 16 | (uint32_t)in.ptr[i + 1] << 8 | in.ptr[i + 2];

		q[0] = alphabet[(v >> 18) & 63];
		q[1] = alphabet[(v >> 12) & 63];
		q[2] = alphabet[(v >> 6) & 63];
		q[3] = alphabet[v & 63];
	}
	if (i < in.len) {
		uint32_t v = (uint32_t)in.ptr[i] << 16;

		if (in.len - i > 1)
			v |= (uint32_t)in.ptr[i + 1] << 8;
		q[0] = alphabet[(v >> 18) & 63];
		q[1] = alphabet[(v >> 12) & 63];
		q[2] = in.len - i > 1 ? alphabet[(v >> 6) & 63] : '=';
		q[3] = '=';
	}
	out->len += need;
	out->ptr[out->len] = 0;
	return kiln_ok();
}

kiln_result kiln_pem_encode(const char *label, kiln_slice der, kiln_buf *out)
{
	size_t frame = sizeof("-----BEGIN -----\n-----END -----\n") - 1, lines = (der.len + 47) / 48;
	size_t need, b64;

	KILN_ENSURE(label != NULL && label[0] != '\0', KILN_ERR_ARG);
	KILN_ENSURE(kiln_mul_size(der.len / 3 + (der.len % 3 != 0), 4, &b64), KILN_ERR_TOO_BIG);
	/* All or nothing: room for the whole text first, so no append below fails half-way. */
	KILN_ENSURE(kiln_mul_size(strlen(label), 2, &need) && kiln_add_size(need, frame, &need) &&
			    kiln_add_size(need, b64, &need) &&
			    kiln_add_size(need, lines, &need),
		    KILN_ERR_TOO_BIG);
	KILN_GUARD(kiln_buf_reserve(out, need));
	KILN_GUARD(kiln_buf_append_str(out, "-----BEGIN "));
	KILN_GUARD(kiln_buf_append_str(out, label));
	KILN_GUARD(kiln_buf_append_str(out, "-----\n"));
	/* 48 bytes make a 64-character line (RFC 7468 section 2). */
	for (size_t i = 0; i < der.len; i += 48) {
		size_t n = der.len - i < 48 ? der.len - i : 48;

		KILN_GUARD(kiln_base64_encode(kiln_slice_of(der.ptr + i, n), out));
		KILN_GUARD(kiln_buf_append(out, "\n", 1));
	}
	KILN_GUARD(kiln_buf_append_str(out, "-----END "));
	KILN_GUARD(kiln_buf_append_str(out, label));
	return kiln_buf_append_str(out, "-----\n");
}

static int value_of(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

kiln_result kiln_base64_decode(kiln_slice in, kiln_buf *out)
{
	size_t start = out->len;

	KILN_ENSURE(in.len % 4 == 0, KILN_ERR_MALFORMED);
	for (size_t i = 0; i < in.len; i += 4) {
		bool last = i + 4 == in.len;
		size_t pad = 0;
		uint32_t v = 0;
		uint8_t b[3];

		for (size_t j = 0; j < 4; j++) {
			uint8_t c = in.ptr[i + j];
			int x = value_of(c);

			/* '=' only at the very end: "xx==" or "xxx=". */
			if (c == '=' && last && j >= 2 && (pad > 0 || j == 2 || in.ptr[i + 3] == '=')) {
				if (j == 2 && in.ptr[i + 3] != '=')
					goto bad;
				pad++;
				v <<= 6;
				continue;
			}
			if (x < 0 || pad > 0)
				goto bad;
			v = (v << 6) | (uint32_t)x;
		}
		/* Canonical: the bits padding leaves over must be zero. */
		if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
			goto bad;
		b[0] = (uint8_t)(v >> 16);
		b[1] = (uint8_t)(v >> 8);
		b[2] = (uint8_t)v;
		if (!kiln_is_ok(kiln_buf_append(out, b, 3 - pad))) {
			kiln_wipe(out->ptr + start, out->len - start);
			out->len = start;
			return kiln_fail(KILN_ERR_TOO_BIG);
		}
	}
	return kiln_ok();
bad:
	if (out->ptr != NULL) {
		kiln_wipe(out->ptr + start, out->len - start);
		out->len = start;
		out->ptr[start] = 0;
	}
	return kiln_fail(KILN_ERR_MALFORMED);
}
