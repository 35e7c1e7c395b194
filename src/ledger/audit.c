/*
 * kiln audit verify: recomputes the tree from the events, checks every
 * checkpoint's signature, that each signed root is the root of the events as
 * they are now, and that consecutive checkpoints are consistent (RFC 9162
 * proofs). Names the first index that was modified, deleted, reordered or
 * inserted. Trusts nothing but the log's public key: derived leaf hashes are
 * used only once a signed root authenticates them.
 */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cp {
	struct kiln_checkpoint c;
	size_t note;
};

static int cmp_cp(const void *a, const void *b)
{
	const struct cp *x = a, *y = b;

	return x->c.size < y->c.size ? -1 : x->c.size > y->c.size;
}

/* Records a problem at index (or -1) unless an earlier index was already found. */
KILN_PRINTF(3, 4)
static void problem(struct kiln_audit_report *r, int64_t index, const char *fmt, ...)
{
	va_list ap;

	if (!r->ok && (index < 0 || (r->first_bad >= 0 && index >= r->first_bad)))
		return;
	r->ok = false;
	r->first_bad = index;
	va_start(ap, fmt);
	(void)vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
}

/* Root of the first size stored leaf hashes (they are used only if it is a signed root). */
static kiln_result stored_root(const struct kiln_audit_input *in, uint64_t size, uint8_t out[32])
{
	struct kiln_merkle_builder b;

	kiln_merkle_builder_init(&b);
	for (uint64_t i = 0; i < size; i++)
		KILN_GUARD(kiln_merkle_builder_push(&b, in->stored[i], NULL, NULL, NULL));
	kiln_merkle_builder_root(&b, out);
	return kiln_ok();
}

/* A checkpoint whose root differs: where does the log first differ from what was signed? */
static void locate(const struct kiln_audit_input *in, const struct cp *c, uint64_t prev_good,
		   struct kiln_audit_report *r)
{
	uint8_t root[32];

	if (in->stored != NULL && in->n_stored >= c->c.size &&
	    kiln_is_ok(stored_root(in, c->c.size, root)) && memcmp(root, c->c.root, 32) == 0) {
		for (uint64_t i = 0; i < c->c.size; i++) {
			if (memcmp(in->stored[i], in->leaves[i], 32) != 0) {
				problem(r, (int64_t)i,
					"event %llu differs from what checkpoint %llu signed: it was "
					"modified, deleted, reordered or inserted",
					(unsigned long long)i, (unsigned long long)c->c.size);
				return;
			}
		}
	}
	problem(r, (int64_t)prev_good,
		"the events %llu..%llu do not match checkpoint %llu (the first change is in that "
		"range; no authenticated leaf hashes to narrow it)",
		(unsigned long long)prev_good, (unsigned long long)c->c.size - 1,
		(unsigned long long)c->c.size);
}

static kiln_result check_checkpoints(const struct kiln_audit_input *in, struct cp *cps, size_t n,
				     struct kiln_merkle_mem *tree, struct kiln_audit_report *r,
				     kiln_diag *d)
{
	struct kiln_merkle_source src = kiln_merkle_mem_source(tree);
	struct kiln_merkle_proof proof;
	uint64_t prev_good = 0;
	const struct cp *good = NULL;
	uint8_t root[32];

	qsort(cps, n, sizeof(*cps), cmp_cp);
	for (size_t i = 0; i < n; i++) {
		const struct cp *c = &cps[i];

		if (c->c.size > in->n_leaves) {
			problem(r, (int64_t)in->n_leaves,
				"checkpoint %llu covers events the log no longer has: it ends at "
				"index %zu", (unsigned long long)c->c.size, in->n_leaves);
			return kiln_ok();
		}
		KILN_GUARD(kiln_merkle_root(&src, c->c.size, root, d));
		if (memcmp(root, c->c.root, 32) != 0) {
			locate(in, c, prev_good, r);
			return kiln_ok();
		}
		/* Consecutive signed trees must be consistent; prove it as an auditor would. */
		if (good != NULL && good->c.size > 0) {
			KILN_GUARD(kiln_merkle_consistency(&src, good->c.size, c->c.size, &proof, d));
			if (!kiln_is_ok(kiln_merkle_verify_consistency(good->c.size, c->c.size,
								       good->c.root, c->c.root,
								       &proof))) {
				problem(r, (int64_t)good->c.size,
					"checkpoints %llu and %llu are not consistent",
					(unsigned long long)good->c.size,
					(unsigned long long)c->c.size);
				return kiln_ok();
			}
		}
		good = c;
		prev_good = c->c.size;
		r->covered = (int64_t)c->c.size;
		memcpy(r->root, c->c.root, 32);
	}
	return kiln_ok();
}

kiln_result kiln_audit_verify(const struct kiln_audit_input *in, const struct kiln_note_key *key,
			      struct kiln_audit_report *out, kiln_diag *d)
{
	struct kiln_merkle_mem tree;
	struct cp *cps;
	size_t ncp = 0;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	out->ok = true;
	out->first_bad = -1;
	out->events = (int64_t)in->n_leaves;
	out->checkpoints = (int64_t)in->n_notes;
	/* Rows out of sequence: a deleted, inserted or moved row shows as the first wrong seq. */
	for (size_t i = 0; i < in->n_leaves; i++) {
		if (in->seqs[i] != (int64_t)i) {
			problem(out, (int64_t)i,
				"event %zu is missing or out of place (the row there has seq %lld)", i,
				(long long)in->seqs[i]);
			break;
		}
	}
	cps = calloc(in->n_notes + 1, sizeof(*cps));
	KILN_ENSURE(cps != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; i < in->n_notes; i++) {
		kiln_diag local;

		kiln_diag_clear(&local);
		r = kiln_note_verify(key, kiln_slice_str(in->notes[i]), &cps[ncp].c, &local);
		if (!kiln_is_ok(r)) {
			/* A forged or damaged checkpoint is a finding, not a reason to stop. */
			if (out->ok)
				problem(out, -1, "checkpoint %zu: %s", i, kiln_diag_message(&local, r));
			continue;
		}
		cps[ncp++].note = i;
	}
	r = kiln_merkle_mem_build(in->leaves, in->n_leaves, &tree);
	if (kiln_is_ok(r)) {
		r = check_checkpoints(in, cps, ncp, &tree, out, d);
		kiln_merkle_mem_cleanup(&tree);
	}
	free(cps);
	if (kiln_is_ok(r) && ncp == 0 && out->ok)
		problem(out, -1, "no valid checkpoint: nothing to verify the events against");
	return r;
}
