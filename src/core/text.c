/* Hex, bounded string copy and strict number parsing. */
#include "core.h"

#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void kiln_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

kiln_result kiln_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(hex);

	KILN_ENSURE(n % 2 == 0, KILN_ERR_MALFORMED);
	/* Check every digit first so a failed decode leaves out untouched. */
	for (size_t i = 0; i < n; i++)
		KILN_ENSURE(hexval(hex[i]) >= 0, KILN_ERR_MALFORMED);
	KILN_ENSURE(n / 2 <= cap, KILN_ERR_TOO_BIG);
	for (size_t i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	*len = n / 2;
	return kiln_ok();
}

kiln_result kiln_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);

	KILN_ENSURE(cap > 0, KILN_ERR_ARG);
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return kiln_fail(KILN_ERR_TOO_BIG);
	}
	memcpy(dst, src, n + 1);
	return kiln_ok();
}

void kiln_printable(const char *in, size_t in_len, char *out, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return;
	for (size_t i = 0; i < in_len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)in[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = '\0';
}

void kiln_strtrunc(char *dst, const char *src, size_t cap)
{
	if (cap > 0)
		(void)kiln_is_ok(kiln_strlcpy(dst, src, cap));
}

kiln_result kiln_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	KILN_ENSURE(s != NULL && *s != '\0', KILN_ERR_MALFORMED);
	for (const char *p = s; *p; p++) {
		KILN_ENSURE(*p >= '0' && *p <= '9', KILN_ERR_MALFORMED);
		KILN_ENSURE(!__builtin_mul_overflow(v, 10, &v), KILN_ERR_OVERFLOW);
		KILN_ENSURE(!__builtin_add_overflow(v, (uint64_t)(*p - '0'), &v), KILN_ERR_OVERFLOW);
	}
	KILN_ENSURE(v <= max, KILN_ERR_OVERFLOW);
	*out = v;
	return kiln_ok();
}
