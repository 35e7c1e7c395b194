/*
 * kiln attest internals: the per-type verifiers the dispatcher in verify.c
 * calls. Not part of the module's interface.
 */
#ifndef KILN_ATTEST_IMPL_H
#define KILN_ATTEST_IMPL_H

#include "attest.h"

/*
 * DICE: checks ev against ctx (policy of type dice) and fills *res only on
 * success. ctx's nonce, csr_der, csr_key and device_serial must be set.
 */
KILN_MUST_USE kiln_result kiln_attest_dice_verify(const struct kiln_evidence *ev,
						  const struct kiln_attest_ctx *ctx,
						  struct kiln_attest_result *res, kiln_diag *d);

/*
 * TPM 2.0: the evidence's TPM structures, unmarshaled with tss2-mu. Each
 * must be exactly one well-formed structure: trailing bytes are refused.
 */
#include <tss2/tss2_mu.h>

struct kiln_tpm2_parsed {
	TPM2B_PUBLIC ak, key;
	TPMS_ATTEST quote, certify;
	TPMT_SIGNATURE quote_sig, certify_sig;
	uint8_t ak_name[2 + 32]; /* nameAlg || SHA-256(TPMT_PUBLIC) */
	uint8_t key_name[2 + 32];
};

/* Pure: parses the TPM members of ev into out. KILN_ERR_ATTEST_MALFORMED naming the member. */
KILN_MUST_USE kiln_result kiln_tpm2_parse(const struct kiln_tpm2_evidence *ev,
					  struct kiln_tpm2_parsed *out, kiln_diag *d);

/* One TPM2B_PUBLIC, exactly; and its name (SHA-256 nameAlg only). */
KILN_MUST_USE kiln_result kiln_tpm2_public_parse(kiln_slice in, const char *member,
						 TPM2B_PUBLIC *out, uint8_t name[34],
						 kiln_diag *d);

/* TPM2: checks ev against ctx (policy of type tpm2); fills *res only on success. */
KILN_MUST_USE kiln_result kiln_attest_tpm2_verify(const struct kiln_evidence *ev,
						  const struct kiln_attest_ctx *ctx,
						  struct kiln_attest_result *res, kiln_diag *d);

#endif /* KILN_ATTEST_IMPL_H */
