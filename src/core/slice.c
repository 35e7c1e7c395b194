/* Byte slices and the bounded cursor every parser of untrusted bytes reads through. */
#include "core.h"

#include <string.h>

kiln_slice kiln_slice_str(const char *s)
{
	if (s == NULL)
		return kiln_slice_of(NULL, 0);
	return kiln_slice_of(s, strlen(s));
}

bool kiln_slice_eq(kiln_slice a, kiln_slice b)
{
	if (a.len != b.len)
		return false;
	return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

void kiln_cursor_init(kiln_cursor *c, kiln_slice s)
{
	c->ptr = s.ptr;
	c->len = s.ptr == NULL ? 0 : s.len;
	c->pos = 0;
}

size_t kiln_cursor_remaining(const kiln_cursor *c)
{
	return c->len - c->pos;
}

kiln_result kiln_cursor_bytes(kiln_cursor *c, size_t n, kiln_slice *out)
{
	KILN_ENSURE(n <= kiln_cursor_remaining(c), KILN_ERR_TRUNCATED);
	/* NULL + 0 is undefined behaviour: an empty cursor may have no buffer. */
	*out = kiln_slice_of(c->ptr == NULL ? NULL : c->ptr + c->pos, n);
	c->pos += n;
	return kiln_ok();
}

kiln_result kiln_cursor_copy(kiln_cursor *c, void *dst, size_t n)
{
	kiln_slice s;

	KILN_GUARD(kiln_cursor_bytes(c, n, &s));
	if (n > 0)
		memcpy(dst, s.ptr, n);
	return kiln_ok();
}

kiln_result kiln_cursor_skip(kiln_cursor *c, size_t n)
{
	kiln_slice s;

	return kiln_cursor_bytes(c, n, &s);
}

static kiln_result read_be(kiln_cursor *c, size_t n, uint64_t *out)
{
	kiln_slice s;
	uint64_t v = 0;

	KILN_GUARD(kiln_cursor_bytes(c, n, &s));
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | s.ptr[i];
	*out = v;
	return kiln_ok();
}

kiln_result kiln_cursor_u8(kiln_cursor *c, uint8_t *out)
{
	uint64_t v;

	KILN_GUARD(read_be(c, 1, &v));
	*out = (uint8_t)v;
	return kiln_ok();
}

kiln_result kiln_cursor_u16be(kiln_cursor *c, uint16_t *out)
{
	uint64_t v;

	KILN_GUARD(read_be(c, 2, &v));
	*out = (uint16_t)v;
	return kiln_ok();
}

kiln_result kiln_cursor_u32be(kiln_cursor *c, uint32_t *out)
{
	uint64_t v;

	KILN_GUARD(read_be(c, 4, &v));
	*out = (uint32_t)v;
	return kiln_ok();
}

kiln_result kiln_cursor_u64be(kiln_cursor *c, uint64_t *out)
{
	return read_be(c, 8, out);
}

kiln_result kiln_cursor_expect_end(const kiln_cursor *c)
{
	KILN_ENSURE(c->pos == c->len, KILN_ERR_MALFORMED);
	return kiln_ok();
}
