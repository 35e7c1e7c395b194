/*
 * src/ledger/export.c: an export written from a real store and token, read
 * back and verified with the public key alone; its files and checksums;
 * loading refuses a damaged export with a precise message.
 */
#include "support/softhsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ledger/ledger.h"

struct fx {
	struct kt_hsm h;
	kiln_store *s;
	kiln_key_ref ref;
	uint8_t pub[32];
	kiln_signer signer;
	kiln_ledger *l;
	char *out;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	struct kiln_ledger_opts lo = { 0 };
	struct kiln_checkpoint_rec cp;
	char *path;
	bool created;
	kiln_diag d;

	kt_hsm_setup(&f->h, "ledger-export", 0);
	path = kt_path(f->h.dir, "kiln.db");
	o.path = path;
	o.create = true;
	kiln_diag_clear(&d);
	KT_OKD(kiln_store_open(&o, &f->s, &d), &d);
	free(path);
	KT_OKD(kiln_ledger_key_ensure(f->h.token, &f->ref, f->pub, &created, &d), &d);
	f->signer = kiln_token_signer(f->h.token);
	lo = (struct kiln_ledger_opts){ f->s, &f->signer, &f->ref, NULL, f->pub, NULL };
	KT_OKD(kiln_ledger_open(&lo, &f->l, &d), &d);
	for (int i = 0; i < 25; i++) {
		struct kiln_event_rec ev = { 0 };

		memcpy(ev.type, i == 3 ? "policy-add" : "test", i == 3 ? 11 : 5);
		memcpy(ev.actor, "unit", 5);
		memcpy(ev.subject, "widget", 7);
		ev.detail_json = "{\"text\":\"caf\\u00e9 \\\"quoted\\\"\"}";
		KT_OK(kiln_store_event_add(f->s, &ev, NULL));
		if (i == 9)
			KT_OKD(kiln_ledger_checkpoint(f->l, &cp, NULL, &d), &d);
	}
	KT_OKD(kiln_ledger_checkpoint(f->l, &cp, NULL, &d), &d);
	f->out = kt_path(f->h.dir, "export");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_ledger_free(f->l);
	kiln_store_close(f->s);
	kt_hsm_teardown(&f->h);
	free(f->out);
	free(f);
	return 0;
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct kiln_export_data e;
	struct kiln_audit_input in;
	struct kiln_audit_report rep;
	static const char *const files[] = { "events.jsonl", "log.pub", "log-key.pem",
					     "controls.json", "SHA256SUMS", "ca/index.json",
					     "policies/index.json", "checkpoints/000000000010.txt",
					     "checkpoints/000000000025.txt" };
	struct stat st;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_export(f->l, f->out, &d), &d);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = kt_path(f->out, files[i]);

		if (stat(p, &st) != 0 || st.st_size == 0)
			fail_msg("export lacks %s", files[i]);
		free(p);
	}
	KT_OKD(kiln_export_load(f->out, &e, &d), &d);
	assert_int_equal(e.n, 25);
	assert_int_equal(e.n_notes, 2);
	assert_memory_equal(e.key.pub, f->pub, 32);
	in = (struct kiln_audit_input){ (const uint8_t(*)[32])e.leaves, e.seqs, e.n,
					(const char *const *)e.notes, e.n_notes, NULL, 0 };
	KT_OK(kiln_audit_verify(&in, &e.key, &rep, &d));
	assert_true(rep.ok);
	assert_int_equal(rep.covered, 25);
	kiln_export_data_cleanup(&e);
	kiln_export_data_cleanup(&e); /* idempotent */
}

static void test_damaged(void **state)
{
	struct fx *f = *state;
	struct kiln_export_data e;
	char *p;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_ledger_export(f->l, f->out, &d), &d);
	p = kt_path(f->out, "events.jsonl");
	kt_write_file(p, "{\"seq\":0}\n", 10);
	kiln_diag_clear(&d);
	KT_ERR(kiln_export_load(f->out, &e, &d), KILN_ERR_MALFORMED);
	assert_non_null(strstr(d.text, "events.jsonl line 1: needs seq, time, type"));
	kt_write_file(p, "not json\n", 9);
	KT_ERR(kiln_export_load(f->out, &e, NULL), KILN_ERR_MALFORMED);
	free(p);
	p = kt_path(f->out, "log.pub");
	kt_write_file(p, "garbage", 7);
	KT_ERR(kiln_export_load(f->out, &e, NULL), KILN_ERR_MALFORMED);
	free(p);
	KT_ERR(kiln_export_load("/nonexistent/kiln-export", &e, NULL), KILN_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
