/*
 * libFuzzer target for the ledger's parsers of untrusted bytes: signed notes
 * and checkpoints (what auditors fetch and kiln audit verify reads from an
 * export), note verifier keys, proof queries (the HTTP query strings of
 * /v1/log/...), and proof verification over attacker-chosen hashes.
 * Seeds: fuzz/corpus/checkpoint/.
 */
#include "ledger/ledger.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void proofs(const uint8_t *data, size_t size)
{
	struct kiln_merkle_proof p = { 0 };
	uint8_t a[32] = { 0 }, b[32] = { 1 };
	uint64_t m, n;

	if (size < 16)
		return;
	memcpy(&m, data, 8);
	memcpy(&n, data + 8, 8);
	data += 16;
	size -= 16;
	p.n = size / 32 > KILN_MERKLE_PROOF_MAX ? KILN_MERKLE_PROOF_MAX : size / 32;
	memcpy(p.hash, data, p.n * 32);
	(void)kiln_merkle_verify_inclusion(a, m, n, &p, b);
	(void)kiln_merkle_verify_consistency(m, n, a, b, &p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pub[32] = { 0x3d, 0x40, 0x17, 0xc3 };
	struct kiln_checkpoint cp, again;
	struct kiln_note_key key;
	struct kiln_log_query q;
	struct kiln_note note;
	kiln_slice in = kiln_slice_of(data, size);
	char *text;
	kiln_buf b;

	if (kiln_is_ok(kiln_note_parse(in, &note, NULL)) &&
	    kiln_is_ok(kiln_checkpoint_parse(note.body, &cp, NULL))) {
		/* What parses must format back to something that parses the same. */
		kiln_buf_init(&b, 4096);
		if (kiln_is_ok(kiln_checkpoint_format(&cp, &b)) &&
		    (!kiln_is_ok(kiln_checkpoint_parse(kiln_buf_view(&b), &again, NULL)) ||
		     again.size != cp.size || memcmp(again.root, cp.root, 32) != 0))
			abort();
		kiln_buf_cleanup(&b);
	}
	(void)kiln_checkpoint_parse(in, &cp, NULL);
	if (kiln_is_ok(kiln_note_key_make("kiln.log/fuzz", pub, &key)))
		(void)kiln_note_verify(&key, in, &cp, NULL);
	(void)kiln_note_key_parse(in, &key, NULL);
	text = malloc(size + 1);
	if (text != NULL) {
		memcpy(text, data, size);
		text[size] = '\0';
		(void)kiln_log_query_parse(text, &q, NULL);
		free(text);
	}
	proofs(data, size);
	return 0;
}
