/*
 * libFuzzer target for the CSR parser and the DER walk under it. Both are
 * pure (bytes in, struct out), so the whole input goes to each and
 * everything they allocate is freed. Seeds: fuzz/corpus/csr/ (DER and PEM
 * requests of every key type, made with the openssl CLI).
 *
 * Besides memory safety (ASan/UBSan), the parser's contract is checked:
 * success fills every field, failure leaves *out NULL and a one-line diag.
 */
#include "crypto/crypto.h"

#include <stddef.h>
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
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = kiln_csr_parse(in, &csr, &d);
	if (kiln_is_ok(r)) {
		struct kiln_key_desc kd;
		uint8_t fp[32];

		if (csr == NULL || csr->subject == NULL || csr->spki.len == 0 || csr->pkey == NULL || d.code != KILN_OK)
			__builtin_trap();
		/* What the parser recorded matches the key it carries. */
		if (!kiln_is_ok(kiln_key_describe(csr->pkey, &kd)) ||
		    strcmp(kd.name, csr->key.name) != 0 ||
		    !kiln_is_ok(kiln_key_fingerprint(csr->pkey, fp)) ||
		    memcmp(fp, csr->spki_sha256, sizeof(fp)) != 0)
			__builtin_trap();
		(void)kiln_alg_of_key(csr->pkey);
	} else {
		if (csr != NULL)
			__builtin_trap();
		check_diag(&d, r);
	}
	kiln_csr_free(csr);

	/* The DER walk on its own, and the reader it is built on. */
	if (kiln_is_ok(kiln_der_check(in))) {
		kiln_cursor c;
		kiln_slice content;
		uint8_t tag;

		kiln_cursor_init(&c, in);
		if (!kiln_is_ok(kiln_der_read(&c, &tag, &content)) ||
		    !kiln_is_ok(kiln_cursor_expect_end(&c)))
			__builtin_trap();
	} else {
		kiln_cursor c;
		kiln_slice content;
		uint8_t tag;
		size_t before;

		/* A failed read never moves the cursor. */
		kiln_cursor_init(&c, in);
		do {
			before = c.pos;
			r = kiln_der_read(&c, &tag, &content);
		} while (kiln_is_ok(r) && c.pos > before);
		if (!kiln_is_ok(r) && c.pos != before)
			__builtin_trap();
	}
	/* A certificate parser sees the same kind of bytes. */
	{
		X509 *x = NULL;

		kiln_diag_clear(&d);
		r = kiln_cert_parse(in, &x, &d);
		if (kiln_is_ok(r)) {
			char hex[KILN_SERIAL_HEX * 4];

			kiln_cert_serial_hex(x, hex, sizeof(hex));
		} else if (x != NULL) {
			__builtin_trap();
		} else {
			check_diag(&d, r);
		}
		X509_free(x);
	}
	return 0;
}
