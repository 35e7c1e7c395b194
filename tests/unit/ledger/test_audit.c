/*
 * src/ledger/audit.c: verification from the events alone. Checkpoints are
 * signed here with OpenSSL; each kind of tampering is named at its index,
 * with and without authenticated derived hashes; forged and missing
 * checkpoints are findings.
 */
#include "support/support.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger.h"

#define N 100

static EVP_PKEY *key;
static struct kiln_note_key nk;
static uint8_t leaves[N][32], work[N][32], stored[N][32];
static int64_t seqs[N];
static char notes[3][KILN_CHECKPOINT_NOTE_MAX];

static void sign_checkpoint(uint64_t size, char *out)
{
	struct kiln_merkle_builder b;
	struct kiln_checkpoint c = { "kiln.log/audit", size, { 0 } };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[64];
	size_t len = 64;
	kiln_buf t;

	kiln_merkle_builder_init(&b);
	for (uint64_t i = 0; i < size; i++)
		KT_OK(kiln_merkle_builder_push(&b, leaves[i], NULL, NULL, NULL));
	kiln_merkle_builder_root(&b, c.root);
	kiln_buf_init(&t, 4096);
	KT_OK(kiln_checkpoint_format(&c, &t));
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &len, t.ptr, t.len), 1);
	EVP_MD_CTX_free(ctx);
	KT_OK(kiln_buf_append_str(&t, "\n"));
	KT_OK(kiln_note_sig_line(&nk, kiln_slice_of(sig, 64), &t));
	memcpy(out, t.ptr, t.len + 1);
	kiln_buf_cleanup(&t);
}

static int setup(void **state)
{
	uint8_t pub[32];
	size_t len = 32;

	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &len), 1);
	KT_OK(kiln_note_key_make("kiln.log/audit", pub, &nk));
	for (int i = 0; i < N; i++) {
		uint8_t b[2] = { (uint8_t)i, 0x5a };

		kiln_merkle_leaf(kiln_slice_of(b, 2), leaves[i]);
	}
	sign_checkpoint(10, notes[0]);
	sign_checkpoint(64, notes[1]);
	sign_checkpoint(N, notes[2]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static void reset(void)
{
	memcpy(work, leaves, sizeof(work));
	memcpy(stored, leaves, sizeof(stored));
	for (int i = 0; i < N; i++)
		seqs[i] = i;
}

static void run(size_t n, bool with_stored, size_t n_notes, struct kiln_audit_report *rep)
{
	const char *ptrs[3] = { notes[0], notes[1], notes[2] };
	struct kiln_audit_input in = { (const uint8_t(*)[32])work, seqs, n, ptrs, n_notes,
				       with_stored ? (const uint8_t(*)[32])stored : NULL,
				       with_stored ? N : 0 };

	KT_OK(kiln_audit_verify(&in, &nk, rep, NULL));
}

static void test_clean(void **state)
{
	struct kiln_audit_report rep;

	(void)state;
	reset();
	run(N, true, 3, &rep);
	assert_true(rep.ok);
	assert_int_equal(rep.covered, N);
	assert_int_equal(rep.first_bad, -1);
	assert_int_equal(rep.checkpoints, 3);
}

static void test_modified(void **state)
{
	struct kiln_audit_report rep;

	(void)state;
	reset();
	work[37][0] ^= 1;
	run(N, true, 3, &rep);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad, 37);
	assert_non_null(strstr(rep.what, "event 37 differs from what checkpoint 64 signed"));
	/* Without authenticated hashes the signed checkpoints bound it: 10..63. */
	run(N, false, 3, &rep);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad, 10);
	assert_non_null(strstr(rep.what, "the events 10..63 do not match checkpoint 64"));
	/* Derived hashes changed along with the event are not authenticated: not trusted. */
	stored[37][0] ^= 1;
	run(N, true, 3, &rep);
	assert_int_equal(rep.first_bad, 10);
}

static void test_deleted_and_moved(void **state)
{
	struct kiln_audit_report rep;

	(void)state;
	reset();
	/* Row 50 deleted: every later row moves up one. */
	memmove(work[50], work[51], (N - 51) * 32);
	for (int i = 50; i < N - 1; i++)
		seqs[i] = i + 1;
	run(N - 1, true, 3, &rep);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad, 50);
	assert_non_null(strstr(rep.what, "event 50 is missing or out of place"));
	/* Swapped: caught at the first of the two. */
	reset();
	memcpy(work[80], leaves[81], 32);
	memcpy(work[81], leaves[80], 32);
	run(N, true, 3, &rep);
	assert_int_equal(rep.first_bad, 80);
	/* The tail cut off below a checkpoint. */
	reset();
	run(70, true, 3, &rep);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad, 70);
	assert_non_null(strstr(rep.what, "checkpoint 100 covers events the log no longer has"));
}

static void test_checkpoint_findings(void **state)
{
	struct kiln_audit_report rep;
	char saved[KILN_CHECKPOINT_NOTE_MAX];

	(void)state;
	reset();
	run(N, true, 0, &rep);
	assert_false(rep.ok);
	assert_non_null(strstr(rep.what, "no valid checkpoint"));
	memcpy(saved, notes[1], sizeof(saved));
	notes[1][strlen("kiln.log/audit\n")] = '7'; /* a size the key never signed */
	run(N, true, 3, &rep);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad, -1);
	assert_non_null(strstr(rep.what, "checkpoint 1: checkpoint carries no valid signature"));
	memcpy(notes[1], saved, sizeof(saved));
	/* Events after the newest checkpoint are not a finding: they are not covered yet. */
	run(N, true, 2, &rep);
	assert_true(rep.ok);
	assert_int_equal(rep.covered, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_modified),
		cmocka_unit_test(test_deleted_and_moved),
		cmocka_unit_test(test_checkpoint_findings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
