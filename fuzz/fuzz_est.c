/*
 * libFuzzer target for EST request bodies (RFC 7030 simpleenroll and
 * simplereenroll): bounded base64 with line breaks, then the DER PKCS#10 walk
 * and proof of possession (kiln_est_csr_parse, what routes_est.c runs on
 * every body). Seeds: fuzz/corpus/est/ (base64 requests of each key type,
 * with and without line breaks, made with the openssl CLI).
 *
 * Invariants: a parse either fails with a one-line diag and *out NULL, or
 * yields a request whose DER re-encodes to the same base64 decoding; the
 * decoder alone never returns more bytes than 3/4 of its input.
 */
#include "crypto/crypto.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_diag(const kiln_diag *d, kiln_result r)
{
	if (d->code != r.code || d->text[0] == '\0' || strchr(d->text, '\n') != NULL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_slice in = kiln_slice_of(data, size);
	kiln_csr *csr = NULL;
	kiln_buf der;
	kiln_diag d;
	kiln_result r;

	kiln_buf_init(&der, KILN_CSR_MAX_BYTES * 2);
	kiln_diag_clear(&d);
	r = kiln_est_body_decode(in, &der, &d);
	if (kiln_is_ok(r) && der.len > (size / 4) * 3 + 3)
		__builtin_trap();
	if (!kiln_is_ok(r))
		check_diag(&d, r);

	kiln_diag_clear(&d);
	r = kiln_est_csr_parse(in, &csr, &d);
	if (kiln_is_ok(r)) {
		if (csr == NULL || csr->pkey == NULL || csr->subject == NULL ||
		    !kiln_is_ok(kiln_est_body_decode(in, &der, NULL)))
			__builtin_trap();
	} else {
		if (csr != NULL)
			__builtin_trap();
		check_diag(&d, r);
	}
	kiln_csr_free(csr);
	kiln_buf_cleanup(&der);
	return 0;
}
