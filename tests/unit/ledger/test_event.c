/* src/ledger/event.c: the canonical event bytes, byte for byte, and their leaf hash. */
#include "support/support.h"

#include <openssl/evp.h>
#include <string.h>

#include "ledger/ledger.h"

static void test_bytes(void **state)
{
	struct kiln_event_rec ev = { 0 };
	static const uint8_t want[] = {
		'k', 'i', 'l', 'n', '-', 'e', 'v', 'e', 'n', 't', '-', 'v', '1', /* magic */
		0, 0, 0, 0, 0, 0, 1, 2,                                         /* seq 258 */
		0, 0, 0, 0, 0x69, 0x20, 0x52, 0x80,                             /* time */
		0, 0, 0, 8, 'i', 's', 's', 'u', 'a', 'n', 'c', 'e',             /* type */
		0, 0, 0, 3, 'c', 'l', 'i',                                      /* actor */
		0, 0, 0, 0,                                                     /* subject */
		0, 0, 0, 7, '{', '"', 'a', '"', ':', '1', '}',                  /* detail */
	};
	uint8_t leaf[32], want_leaf[32], pre[sizeof(want) + 1];
	kiln_buf b;

	(void)state;
	ev.seq = 258;
	ev.time = 0x69205280;
	memcpy(ev.type, "issuance", 9);
	memcpy(ev.actor, "cli", 4);
	ev.detail_json = "{\"a\":1}";
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_ledger_event_bytes(&ev, &b));
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.ptr, want, sizeof(want));
	kiln_buf_cleanup(&b);
	/* leaf = SHA-256(0x00 || bytes) */
	pre[0] = 0;
	memcpy(pre + 1, want, sizeof(want));
	assert_int_equal(EVP_Digest(pre, sizeof(pre), want_leaf, NULL, EVP_sha256(), NULL), 1);
	KT_OK(kiln_ledger_event_leaf(&ev, leaf));
	assert_memory_equal(leaf, want_leaf, 32);
	/* Any field changes the leaf; a missing detail is "{}". */
	ev.subject[0] = 'x';
	KT_OK(kiln_ledger_event_leaf(&ev, leaf));
	assert_memory_not_equal(leaf, want_leaf, 32);
	ev.detail_json = NULL;
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_ledger_event_bytes(&ev, &b));
	assert_memory_equal(b.ptr + b.len - 6, "\0\0\0\2{}", 6);
	kiln_buf_cleanup(&b);
	ev.seq = -1;
	kiln_buf_init(&b, 4096);
	KT_ERR(kiln_ledger_event_bytes(&ev, &b), KILN_ERR_ARG);
	kiln_buf_cleanup(&b);
	/* A detail beyond the buffer's cap fails instead of being cut. */
	ev.seq = 1;
	ev.detail_json = "{\"long\":\"..............................\"}";
	kiln_buf_init(&b, 40);
	KT_ERR(kiln_ledger_event_bytes(&ev, &b), KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
