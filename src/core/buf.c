/* Growable buffers with a ceiling; cleanup wipes so the same type holds secrets. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char empty_str[1] = "";

void kiln_buf_init(kiln_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void kiln_buf_cleanup(kiln_buf *b)
{
	if (b == NULL)
		return;
	if (b->ptr != NULL) {
		kiln_wipe(b->ptr, b->cap);
		free(b->ptr);
	}
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void kiln_buf_reset(kiln_buf *b)
{
	if (b->ptr != NULL) {
		kiln_wipe(b->ptr, b->len);
		b->ptr[0] = 0;
	}
	b->len = 0;
}

/*
 * Grows to hold len + extra bytes plus the trailing NUL. The old block is
 * wiped before it is freed, because realloc would leave secrets behind.
 */
kiln_result kiln_buf_reserve(kiln_buf *b, size_t extra)
{
	size_t need, want;
	uint8_t *p;

	KILN_ENSURE(kiln_add_size(b->len, extra, &need), KILN_ERR_TOO_BIG);
	KILN_ENSURE(need <= b->max, KILN_ERR_TOO_BIG);
	KILN_ENSURE(kiln_add_size(need, 1, &need), KILN_ERR_TOO_BIG);
	if (need <= b->cap)
		return kiln_ok();
	want = b->cap < 64 ? 64 : b->cap;
	while (want < need) {
		if (!kiln_mul_size(want, 2, &want)) {
			want = need;
			break;
		}
	}
	/* need <= max + 1 here, so max + 1 cannot wrap unless max is SIZE_MAX. */
	if (b->max < SIZE_MAX && want > b->max + 1)
		want = b->max + 1;
	p = malloc(want);
	KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
	if (b->ptr != NULL) {
		memcpy(p, b->ptr, b->len + 1);
		kiln_wipe(b->ptr, b->cap);
		free(b->ptr);
	} else {
		p[0] = 0;
	}
	b->ptr = p;
	b->cap = want;
	return kiln_ok();
}

kiln_result kiln_buf_append(kiln_buf *b, const void *p, size_t n)
{
	KILN_GUARD(kiln_buf_reserve(b, n));
	if (n > 0)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = 0;
	return kiln_ok();
}

kiln_result kiln_buf_append_slice(kiln_buf *b, kiln_slice s)
{
	return kiln_buf_append(b, s.ptr, s.len);
}

kiln_result kiln_buf_append_str(kiln_buf *b, const char *s)
{
	return kiln_buf_append(b, s, strlen(s));
}

kiln_result kiln_buf_append_u8(kiln_buf *b, uint8_t v)
{
	return kiln_buf_append(b, &v, 1);
}

kiln_result kiln_buf_vprintf(kiln_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	KILN_ENSURE(n >= 0, KILN_ERR_INTERNAL);
	KILN_GUARD(kiln_buf_reserve(b, (size_t)n));
	(void)vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return kiln_ok();
}

kiln_result kiln_buf_printf(kiln_buf *b, const char *fmt, ...)
{
	va_list ap;
	kiln_result r;

	va_start(ap, fmt);
	r = kiln_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

kiln_slice kiln_buf_view(const kiln_buf *b)
{
	return kiln_slice_of(b->ptr, b->len);
}

const char *kiln_buf_cstr(const kiln_buf *b)
{
	return b->ptr == NULL ? empty_str : (const char *)b->ptr;
}

uint8_t *kiln_buf_take(kiln_buf *b, size_t *len)
{
	uint8_t *p = b->ptr;

	if (len != NULL)
		*len = b->len;
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
