/* JSON with caps: size and nesting limits checked before anything else looks at it. */
#include "core.h"

#include <jansson.h>
#include <string.h>

static size_t depth_of(const json_t *j, size_t limit)
{
	size_t max = 0, d;

	if (limit == 0)
		return 1;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)j, k, v) {
			d = depth_of(v, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v) {
			d = depth_of(v, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	return 0;
}

kiln_result kiln_json_parse(kiln_slice in, size_t max, json_t **out, kiln_diag *d)
{
	json_error_t err;
	json_t *j;

	*out = NULL;
	if (in.len == 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "empty JSON body");
	if (in.len > max)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "JSON body of %zu bytes exceeds the %zu-byte limit",
				     in.len, max);
	j = json_loadb((const char *)in.ptr, in.len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "malformed JSON at line %d column %d: %s",
				     err.line, err.column, err.text);
	if (depth_of(j, KILN_JSON_MAX_DEPTH + 1) > KILN_JSON_MAX_DEPTH) {
		json_decref(j);
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "JSON nested deeper than %d levels",
				     KILN_JSON_MAX_DEPTH);
	}
	*out = j;
	return kiln_ok();
}

kiln_result kiln_json_dump(const json_t *j, kiln_buf *out)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	kiln_result r;

	KILN_ENSURE(s != NULL, KILN_ERR_NOMEM);
	r = kiln_buf_append_str(out, s);
	free(s);
	return r;
}

/*
 * One UTF-8 sequence at s[0..n): its length (0 when invalid) and code point.
 * The shortest form only; no surrogates; nothing past U+10FFFF.
 */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		c = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		c = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* jansson's two-character escapes; NULL for the code points it writes as \uXXXX. */
static const char *short_escape(uint32_t c)
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	default:
		return NULL;
	}
}

static size_t put_escape(char *o, uint32_t c)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *e = short_escape(c);

	if (e != NULL) {
		memcpy(o, e, 2);
		return 2;
	}
	if (c >= 0x10000) {
		uint32_t v = c - 0x10000;
		size_t k = put_escape(o, 0xD800 | (v >> 10));

		return k + put_escape(o + k, 0xDC00 | (v & 0x3FF));
	}
	o[0] = '\\';
	o[1] = 'u';
	for (int i = 0; i < 4; i++)
		o[2 + i] = hex[(c >> (12 - 4 * i)) & 0xF];
	return 6;
}

static bool plain(uint32_t c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The length of s as a JSON literal (quotes included); 0 when s is not UTF-8 or holds a NUL. */
static size_t literal_len(const uint8_t *s, size_t n)
{
	size_t len = 2, k;
	uint32_t c;
	char tmp[12];

	for (size_t i = 0; i < n; i += k) {
		k = utf8_next(s + i, n - i, &c);
		if (k == 0 || c == 0)
			return 0;
		len += plain(c) ? 1 : put_escape(tmp, c);
	}
	return len;
}

kiln_result kiln_json_put_str(kiln_buf *out, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t len = literal_len(p, n), k;
	uint32_t c;
	char *o;

	KILN_ENSURE(len != 0, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_buf_reserve(out, len));
	o = (char *)out->ptr + out->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i += k) {
		k = utf8_next(p + i, n - i, &c);
		if (plain(c))
			*o++ = (char)c;
		else
			o += put_escape(o, c);
	}
	*o = '"';
	out->len += len;
	out->ptr[out->len] = 0;
	return kiln_ok();
}

kiln_result kiln_json_get_str(const json_t *j, const char *key, size_t max_len, bool required,
			      const char **out, kiln_diag *d)
{
	json_t *v = json_is_object(j) ? json_object_get(j, key) : NULL;
	const char *s;

	*out = NULL;
	if (v == NULL) {
		if (!required)
			return kiln_ok();
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "missing member \"%s\"", key);
	}
	if (!json_is_string(v))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" must be a string", key);
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" holds a NUL byte", key);
	if (json_string_length(v) > max_len)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "member \"%s\" is longer than %zu bytes",
				     key, max_len);
	*out = s;
	return kiln_ok();
}
