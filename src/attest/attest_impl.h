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

#endif /* KILN_ATTEST_IMPL_H */
