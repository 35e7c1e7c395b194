/*
 * src/ledger/log.c against a real SoftHSM2 token and a real SQLite store: the
 * log key made once and found again, checkpoints signed through the signer
 * and verified as an auditor would, proofs for every event against every
 * checkpoint, consistency, refusals, a read-only ledger, the checkpointer.
 */
#include "support/softhsm.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger.h"

struct fx {
	struct kt_hsm h;
	kiln_store *s;
	kiln_key_ref ref;
	uint8_t pub[32];
	kiln_signer signer;
	kiln_ledger *l;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	struct kiln_ledger_opts lo = { 0 };
	char *path;
	bool created = false;
	kiln_diag d;

	kt_hsm_setup(&f->h, "ledger-log", 0);
	path = kt_path(f->h.dir, "kiln.db");
	o.path = path;
	o.create = true;
	kiln_diag_clear(&d);
	KT_OKD(kiln_store_open(&o, &f->s, &d), &d);
	free(path);
	KT_OKD(kiln_ledger_key_ensure(f->h.token, &f->ref, f->pub, &created, &d), &d);
	assert_true(created);
	f->signer = kiln_token_signer(f->h.token);
	lo = (struct kiln_ledger_opts){ f->s, &f->signer, &f->ref, NULL, f->pub, NULL };
	KT_OKD(kiln_ledger_open(&lo, &f->l, &d), &d);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_ledger_free(f->l);
	kiln_store_close(f->s);
	kt_hsm_teardown(&f->h);
	free(f);
	return 0;
}

static void add_events(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct kiln_event_rec ev = { 0 };
		char detail[64];

		(void)snprintf(detail, sizeof(detail), "{\"i\":%d}", i);
		memcpy(ev.type, "test", 5);
		memcpy(ev.actor, "unit", 5);
		(void)snprintf(ev.subject, sizeof(ev.subject), "s%d", i);
		ev.detail_json = detail;
		KT_OK(kiln_store_event_add(f->s, &ev, NULL));
	}
}

static void test_key_once(void **state)
{
	struct fx *f = *state;
	kiln_key_ref again;
	uint8_t pub[32];
	bool created = true;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_key_ensure(f->h.token, &again, pub, &created, &d), &d);
	assert_false(created);
	assert_memory_equal(pub, f->pub, 32);
	assert_memory_equal(kiln_ledger_key(f->l)->pub, f->pub, 32);
	assert_non_null(strstr(kiln_ledger_key(f->l)->name, "kiln.log/"));
}

static void prove_all(struct fx *f, uint64_t size)
{
	struct kiln_ledger_inclusion inc;
	struct kiln_checkpoint cp;
	kiln_diag d;

	for (uint64_t i = 0; i < size; i++) {
		kiln_diag_clear(&d);
		KT_OKD(kiln_ledger_prove(f->l, i, size, &inc, &d), &d);
		KT_OK(kiln_note_verify(kiln_ledger_key(f->l), kiln_slice_str(inc.checkpoint.note),
				       &cp, NULL));
		assert_memory_equal(cp.root, inc.root, 32);
		KT_OK(kiln_merkle_verify_inclusion(inc.leaf, i, size, &inc.proof, cp.root));
	}
}

static void test_checkpoints_and_proofs(void **state)
{
	struct fx *f = *state;
	struct kiln_checkpoint_rec a, b;
	struct kiln_merkle_proof p;
	struct kiln_ledger_inclusion inc;
	bool made = false;
	int64_t size = 0;
	kiln_diag d;

	add_events(f, 37);
	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_checkpoint(f->l, &a, &made, &d), &d);
	assert_true(made);
	assert_int_equal(a.size, 37);
	KT_OKD(kiln_ledger_checkpoint(f->l, &b, &made, &d), &d);
	assert_false(made); /* nothing new: the same checkpoint */
	assert_int_equal(b.size, 37);
	add_events(f, 20);
	KT_OKD(kiln_ledger_sync(f->l, &size, &d), &d);
	assert_int_equal(size, 57);
	KT_OKD(kiln_ledger_checkpoint(f->l, &b, &made, &d), &d);
	assert_true(made);
	assert_int_equal(b.size, 57);
	prove_all(f, 37);
	prove_all(f, 57);
	/* size 0: the newest checkpoint. */
	KT_OKD(kiln_ledger_prove(f->l, 3, 0, &inc, &d), &d);
	assert_int_equal(inc.size, 57);
	KT_OKD(kiln_ledger_consistency(f->l, 37, 57, &p, &d), &d);
	KT_OK(kiln_merkle_verify_consistency(37, 57, a.root, b.root, &p));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ledger_prove(f->l, 57, 57, &inc, &d), KILN_ERR_LOG_RANGE);
	assert_string_equal(d.text, "event 57 is not in the checkpoint of size 57");
	KT_ERR(kiln_ledger_prove(f->l, 1, 40, &inc, NULL), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_ledger_consistency(f->l, 37, 40, &p, NULL), KILN_ERR_NOT_FOUND);
	KT_ERR(kiln_ledger_consistency(f->l, 0, 57, &p, NULL), KILN_ERR_LOG_RANGE);
	KT_ERR(kiln_ledger_consistency(f->l, 57, 37, &p, NULL), KILN_ERR_LOG_RANGE);
	KT_ERR(kiln_ledger_device_index(f->l, "widget/none", &(uint64_t){ 0 }, NULL),
	       KILN_ERR_NOT_FOUND);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct kiln_ledger_opts lo = { 0 };
	struct kiln_checkpoint_rec cp;
	kiln_ledger *ro = NULL;
	bool made = true;
	kiln_diag d;

	add_events(f, 5);
	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_checkpoint(f->l, &cp, &made, &d), &d);
	lo = (struct kiln_ledger_opts){ f->s, NULL, NULL, kiln_ledger_key(f->l)->name, f->pub, NULL };
	KT_OKD(kiln_ledger_open(&lo, &ro, &d), &d);
	KT_OKD(kiln_ledger_checkpoint(ro, &cp, &made, &d), &d);
	assert_false(made);
	add_events(f, 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ledger_checkpoint(ro, &cp, &made, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "no signer"));
	KT_ERR(kiln_ledger_start(ro, 1, 1, NULL), KILN_ERR_ARG);
	kiln_ledger_free(ro);
	lo.origin = "bad origin";
	KT_ERR(kiln_ledger_open(&lo, &ro, NULL), KILN_ERR_ARG);
	lo.origin = NULL;
	lo.pub = NULL;
	KT_ERR(kiln_ledger_open(&lo, &ro, NULL), KILN_ERR_ARG);
}

static void test_checkpointer(void **state)
{
	struct fx *f = *state;
	struct kiln_checkpoint_rec cp;
	int64_t n = 0;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_start(f->l, 3600, 1000000, &d), &d);
	add_events(f, 12);
	/* Stopping signs a last checkpoint over everything committed. */
	kiln_ledger_stop(f->l);
	kiln_ledger_stop(f->l); /* twice is harmless */
	KT_OK(kiln_store_count(f->s, "events", &n, NULL));
	KT_OK(kiln_store_checkpoint_get(f->s, -1, &cp, NULL));
	assert_int_equal(cp.size, n);
	/* With a small entry count it signs while running. */
	KT_OKD(kiln_ledger_start(f->l, 3600, 5, &d), &d);
	add_events(f, 6);
	for (int i = 0; i < 100; i++) {
		KT_OK(kiln_store_checkpoint_get(f->s, -1, &cp, NULL));
		if (cp.size == n + 6)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(cp.size, n + 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_and_proofs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
