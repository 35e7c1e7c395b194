/*
 * libFuzzer target for the TPM 2.0 evidence parsers (src/attest/tpm2.c,
 * evidence.c). Every input goes to:
 *   1. kiln_tpm2_public_parse, whole (one TPM2B_PUBLIC);
 *   2. kiln_tpm2_parse, with the input cut into the TPM members, each framed
 *      as be16(length) || bytes in this order: ak_public, key_public, quote,
 *      certify, quote_signature, certify_signature, pcr_values, secret
 *      (a member that does not fit its cap is left empty);
 *   3. kiln_json_parse -> kiln_evidence_parse (the "tpm2" members' base64 and caps).
 * Seeds: fuzz/corpus/tpm2/, written by tests/unit_attest_test_tpm2 of a build
 * run with KILN_FUZZ_SEEDS_OUT=DIR (honest software-built evidence, framed).
 *
 * Contract checks besides ASan/UBSan: a parse that succeeds yields structures
 * of the expected types; a failure leaves one diag line with the code
 * KILN_ERR_ATTEST_MALFORMED.
 */
#include "attest/attest_impl.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* tss2-mu would log every rejected structure to stderr. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	return 0;
}

#define INPUT_MAX 65536

static void framed(const uint8_t *data, size_t size)
{
	struct kiln_evidence ev;
	kiln_buf *parts[8];
	struct kiln_tpm2_parsed *t = malloc(sizeof(*t));
	size_t off = 0;
	kiln_diag d;
	kiln_result r;

	if (t == NULL)
		return;
	kiln_evidence_init(&ev);
	parts[0] = &ev.tpm2.ak_public;
	parts[1] = &ev.tpm2.key_public;
	parts[2] = &ev.tpm2.quote;
	parts[3] = &ev.tpm2.certify;
	parts[4] = &ev.tpm2.quote_signature;
	parts[5] = &ev.tpm2.certify_signature;
	parts[6] = &ev.tpm2.pcr_values;
	parts[7] = &ev.tpm2.secret;
	for (size_t i = 0; i < 8 && off + 2 <= size; i++) {
		size_t n = ((size_t)data[off] << 8) | data[off + 1];

		off += 2;
		if (n > size - off)
			n = size - off;
		(void)kiln_buf_append(parts[i], data + off, n); /* over its cap: stays empty */
		off += n;
	}
	kiln_diag_clear(&d);
	r = kiln_tpm2_parse(&ev.tpm2, t, &d);
	if (kiln_is_ok(r)) {
		if (t->quote.type != TPM2_ST_ATTEST_QUOTE || t->certify.type != TPM2_ST_ATTEST_CERTIFY ||
		    t->quote_sig.sigAlg != TPM2_ALG_ECDSA || ev.tpm2.secret.len != 32)
			abort();
	} else if (r.code != KILN_ERR_ATTEST_MALFORMED || strchr(d.text, '\n') != NULL) {
		abort();
	}
	kiln_evidence_cleanup(&ev);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	TPM2B_PUBLIC pub;
	uint8_t name[34];
	struct kiln_evidence ev;
	json_t *j = NULL;
	kiln_diag d;

	if (size > INPUT_MAX)
		return 0;
	kiln_diag_clear(&d);
	(void)kiln_tpm2_public_parse(kiln_slice_of(data, size), "fuzz", &pub, name, &d);
	framed(data, size);
	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_json_parse(kiln_slice_of(data, size), INPUT_MAX, &j, &d))) {
		kiln_evidence_init(&ev);
		if (kiln_is_ok(kiln_evidence_parse(j, &ev, &d)) && ev.type == KILN_ATTEST_TPM2) {
			struct kiln_tpm2_parsed *t = malloc(sizeof(*t));

			if (t != NULL)
				(void)kiln_tpm2_parse(&ev.tpm2, t, &d);
			free(t);
		}
		kiln_evidence_cleanup(&ev);
		json_decref(j);
	}
	return 0;
}
