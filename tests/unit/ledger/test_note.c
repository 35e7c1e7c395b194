/*
 * src/ledger/note.c: checkpoint text, signed notes and verifier keys (the
 * key hash by hand, notes signed here with OpenSSL and verified by kiln),
 * every refusal of the parsers, and proof query strings.
 */
#include "support/support.h"

#include <openssl/evp.h>
#include <string.h>

#include "ledger/ledger.h"

static EVP_PKEY *key;
static struct kiln_note_key nk;

static int setup(void **state)
{
	uint8_t pub[32];
	size_t len = 32;

	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(key);
	assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &len), 1);
	KT_OK(kiln_note_key_make("kiln.log/test", pub, &nk));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

/* A signed note over body, by key (as kiln's log does it, but with OpenSSL). */
static void sign_note(const char *body, kiln_buf *out)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t sig[64];
	size_t len = sizeof(sig);

	/* The signed message is the text up to and including its last newline. */
	kiln_buf_init(out, 4096);
	KT_OK(kiln_buf_printf(out, "%s\n", body));
	assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, key), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &len, out->ptr, out->len), 1);
	EVP_MD_CTX_free(c);
	KT_OK(kiln_buf_append_str(out, "\n"));
	KT_OK(kiln_note_sig_line(&nk, kiln_slice_of(sig, 64), out));
}

static void test_key(void **state)
{
	struct kiln_note_key back;
	uint8_t buf[64], h[32];
	size_t n = strlen("kiln.log/test");
	kiln_buf b;
	kiln_diag d;

	(void)state;
	/* key hash = SHA-256(name || "\n" || 0x01 || pub)[:4] */
	memcpy(buf, "kiln.log/test", n);
	buf[n] = '\n';
	buf[n + 1] = 0x01;
	memcpy(buf + n + 2, nk.pub, 32);
	assert_int_equal(EVP_Digest(buf, n + 34, h, NULL, EVP_sha256(), NULL), 1);
	assert_memory_equal(nk.key_hash, h, 4);
	kiln_buf_init(&b, 1024);
	KT_OK(kiln_note_key_format(&nk, &b));
	KT_OK(kiln_buf_append_str(&b, "\n"));
	kiln_diag_clear(&d);
	KT_OK(kiln_note_key_parse(kiln_buf_view(&b), &back, &d));
	assert_memory_equal(&back, &nk, sizeof(nk));
	/* A key hash that does not match its key is refused. */
	b.ptr[strlen("kiln.log/test+")] ^= 1;
	KT_ERR(kiln_note_key_parse(kiln_buf_view(&b), &back, &d), KILN_ERR_MALFORMED);
	kiln_buf_cleanup(&b);
	KT_ERR(kiln_note_key_parse(kiln_slice_str("nope"), &back, NULL), KILN_ERR_MALFORMED);
	KT_ERR(kiln_note_key_parse(kiln_slice_str("a+0011+"), &back, NULL), KILN_ERR_MALFORMED);
	KT_ERR(kiln_note_key_parse(kiln_slice_str("a+00112233+"), &back, NULL), KILN_ERR_MALFORMED);
	KT_ERR(kiln_note_key_make("has space", nk.pub, &back), KILN_ERR_ARG);
	KT_ERR(kiln_note_key_make("a+b", nk.pub, &back), KILN_ERR_ARG);
}

static void test_checkpoint_text(void **state)
{
	struct kiln_checkpoint c = { "kiln.log/test", 1009, { 0 } }, back;
	kiln_buf b;
	kiln_diag d;

	(void)state;
	memset(c.root, 0xab, 32);
	kiln_buf_init(&b, 1024);
	KT_OK(kiln_checkpoint_format(&c, &b));
	assert_string_equal(kiln_buf_cstr(&b),
			    "kiln.log/test\n1009\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n");
	kiln_diag_clear(&d);
	KT_OK(kiln_checkpoint_parse(kiln_buf_view(&b), &back, &d));
	assert_memory_equal(&back, &c, sizeof(c));
	/* Extension lines are allowed and ignored. */
	KT_OK(kiln_buf_append_str(&b, "ext line\n"));
	KT_OK(kiln_checkpoint_parse(kiln_buf_view(&b), &back, &d));
	kiln_buf_cleanup(&b);
	static const char *const bad[] = {
		"o\n1\n",                                                    /* no root */
		"o\n01\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",      /* leading zero */
		"o\n-1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",      /* sign */
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\n",        /* short */
		"o o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",     /* space in origin */
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n",     /* empty extension */
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",         /* no final newline */
		"o\n99999999999999999999\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_diag_clear(&d);
		KT_ERR(kiln_checkpoint_parse(kiln_slice_str(bad[i]), &back, &d), KILN_ERR_MALFORMED);
		assert_non_null(strstr(d.text, "checkpoint:"));
	}
}

static void test_verify(void **state)
{
	struct kiln_checkpoint c;
	struct kiln_note_key other;
	kiln_buf note;
	kiln_diag d;
	uint8_t pub[32] = { 9 };

	(void)state;
	sign_note("kiln.log/test\n42\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", &note);
	kiln_diag_clear(&d);
	KT_OK(kiln_note_verify(&nk, kiln_buf_view(&note), &c, &d));
	assert_int_equal(c.size, 42);
	/* Another key, a changed body, a changed signature: refused. */
	KT_OK(kiln_note_key_make("kiln.log/test", pub, &other));
	KT_ERR(kiln_note_verify(&other, kiln_buf_view(&note), &c, &d), KILN_ERR_LOG_SIGNATURE);
	note.ptr[15] = '3';
	kiln_diag_clear(&d);
	KT_ERR(kiln_note_verify(&nk, kiln_buf_view(&note), &c, &d), KILN_ERR_LOG_SIGNATURE);
	assert_non_null(strstr(d.text, "no valid signature by log key kiln.log/test"));
	kiln_buf_cleanup(&note);
	/* A valid signature over a checkpoint of another origin is not this log's. */
	sign_note("other.log\n42\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", &note);
	kiln_diag_clear(&d);
	KT_ERR(kiln_note_verify(&nk, kiln_buf_view(&note), &c, &d), KILN_ERR_LOG_SIGNATURE);
	assert_non_null(strstr(d.text, "origin other.log"));
	kiln_buf_cleanup(&note);
}

static void test_note_refusals(void **state)
{
	struct kiln_note n;
	kiln_diag d;
	char big[KILN_NOTE_TEXT_MAX + 2];
	static const char sig[] = "\xe2\x80\x94 k AAAAAAAA\n";
	kiln_buf b;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_note_parse(kiln_slice_str("body\n"), &n, &d), KILN_ERR_MALFORMED);
	assert_non_null(strstr(d.text, "no blank line"));
	KT_ERR(kiln_note_parse(kiln_slice_str("body\n\n"), &n, NULL), KILN_ERR_MALFORMED);
	KT_ERR(kiln_note_parse(kiln_slice_str("body\n\n- k AAAAAAAA\n"), &n, NULL),
	       KILN_ERR_MALFORMED);
	KT_ERR(kiln_note_parse(kiln_slice_str("body\n\n\xe2\x80\x94 k \n"), &n, NULL),
	       KILN_ERR_MALFORMED); /* empty base64: the fuzzer's first find */
	KT_ERR(kiln_note_parse(kiln_slice_str("body\n\n\xe2\x80\x94 k AAAA\n"), &n, NULL),
	       KILN_ERR_MALFORMED); /* shorter than a key hash and one byte */
	KT_ERR(kiln_note_parse(kiln_slice_str("bo\tdy\n\n\xe2\x80\x94 k AAAAAAAA\n"), &n, NULL),
	       KILN_ERR_MALFORMED);
	KT_OK(kiln_note_parse(kiln_slice_str("body\n\n\xe2\x80\x94 k AAAAAAAA\n"), &n, NULL));
	assert_int_equal(n.n_sigs, 1);
	assert_int_equal(n.body.len, 5);
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_buf_append_str(&b, "body\n\n"));
	for (int i = 0; i <= KILN_NOTE_SIGS_MAX; i++)
		KT_OK(kiln_buf_append_str(&b, sig));
	KT_ERR(kiln_note_parse(kiln_buf_view(&b), &n, NULL), KILN_ERR_TOO_BIG);
	kiln_buf_cleanup(&b);
	memset(big, 'a', sizeof(big));
	KT_ERR(kiln_note_parse(kiln_slice_of(big, sizeof(big)), &n, NULL), KILN_ERR_TOO_BIG);
}

static void test_query(void **state)
{
	struct kiln_log_query q;
	kiln_diag d;

	(void)state;
	KT_OK(kiln_log_query_parse(NULL, &q, NULL));
	assert_false(q.has_index || q.has_device || q.has_size);
	KT_OK(kiln_log_query_parse("index=5&size=10", &q, NULL));
	assert_true(q.has_index && q.has_size && !q.has_device);
	assert_int_equal(q.index, 5);
	assert_int_equal(q.size, 10);
	KT_OK(kiln_log_query_parse("device=widget%2FSN+1", &q, NULL));
	assert_string_equal(q.device, "widget/SN 1");
	KT_OK(kiln_log_query_parse("from=3&to=9&start=0&end=100", &q, NULL));
	assert_int_equal(q.to, 9);
	static const struct {
		const char *q, *msg;
	} bad[] = {
		{ "index=1&index=2", "query: index given twice" },
		{ "bogus=1", "query: unknown parameter 'bogus'" },
		{ "index=01", "query: index must be a decimal number below 2^62" },
		{ "size=-1", "query: size must be a decimal number below 2^62" },
		{ "size=4611686018427387905", "query: size must be a decimal number below 2^62" },
		{ "index", "query: expected name=value pairs" },
		{ "index=1&", "query: expected name=value pairs" },
		{ "device=%2", "query: invalid device" },
		{ "device=%0a", "query: invalid device" },
		{ "device=", "query: invalid device" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kiln_diag_clear(&d);
		KT_ERR(kiln_log_query_parse(bad[i].q, &q, &d), KILN_ERR_ARG);
		assert_string_equal(d.text, bad[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_checkpoint_text),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_note_refusals),
		cmocka_unit_test(test_query),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
