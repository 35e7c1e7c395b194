/*
 * Canonical event bytes: a length-prefixed binary form an outsider rebuilds
 * in a few lines of any language (docs/verifying.md, tests/verifier). The
 * detail is hashed exactly as stored, never re-serialised.
 */
#include "ledger/ledger.h"

#include <string.h>

static kiln_result put_u64(kiln_buf *b, uint64_t v)
{
	uint8_t be[8];

	for (int i = 7; i >= 0; i--) {
		be[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	return kiln_buf_append(b, be, 8);
}

static kiln_result put_str(kiln_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t be[4];

	KILN_ENSURE(n <= UINT32_MAX, KILN_ERR_TOO_BIG);
	be[0] = (uint8_t)(n >> 24);
	be[1] = (uint8_t)(n >> 16);
	be[2] = (uint8_t)(n >> 8);
	be[3] = (uint8_t)n;
	KILN_GUARD(kiln_buf_append(b, be, 4));
	return kiln_buf_append(b, s, n);
}

kiln_result kiln_ledger_event_bytes(const struct kiln_event_rec *ev, kiln_buf *out)
{
	KILN_ENSURE(ev != NULL && ev->seq >= 0, KILN_ERR_ARG);
	KILN_GUARD(kiln_buf_append_str(out, KILN_EVENT_MAGIC));
	KILN_GUARD(put_u64(out, (uint64_t)ev->seq));
	KILN_GUARD(put_u64(out, (uint64_t)ev->time));
	KILN_GUARD(put_str(out, ev->type));
	KILN_GUARD(put_str(out, ev->actor));
	KILN_GUARD(put_str(out, ev->subject));
	return put_str(out, ev->detail_json != NULL ? ev->detail_json : "{}");
}

kiln_result kiln_ledger_event_leaf(const struct kiln_event_rec *ev, uint8_t out[32])
{
	kiln_buf b;
	kiln_result r;

	kiln_buf_init(&b, KILN_STORE_BLOB_MAX + 4096);
	r = kiln_ledger_event_bytes(ev, &b);
	if (kiln_is_ok(r))
		kiln_merkle_leaf(kiln_buf_view(&b), out);
	kiln_buf_cleanup(&b);
	return r;
}
