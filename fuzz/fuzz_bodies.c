/*
 * libFuzzer target: the JSON request bodies of the /v1 API (batch, begin,
 * finish with its evidence, revocation, approval). The first byte picks the parser; the rest is the
 * body. Invariants: a parse either fails with a one-line diag or yields
 * values within their caps; nothing leaks.
 */
#include "server/body.h"

#include <stdlib.h>
#include <string.h>

static void check_diag(kiln_result r, const kiln_diag *d)
{
	if (kiln_is_ok(r))
		return;
	if (d->code == KILN_OK || d->text[0] == '\0' || strchr(d->text, '\n') != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_slice body;
	kiln_diag d;
	kiln_result r;

	if (size < 1)
		return 0;
	body = kiln_slice_of(data + 1, size - 1);
	kiln_diag_clear(&d);
	switch (data[0] % 5) {
	case 0: {
		struct body_batch b;

		r = body_batch_parse(body, &b, &d);
		check_diag(r, &d);
		if (kiln_is_ok(r) && (b.quantity < 1 || b.quantity > 1000000000 || b.lot[0] == '\0'))
			abort();
		break;
	}
	case 3: {
		struct body_revocation v;

		r = body_revocation_parse(body, &v, &d);
		check_diag(r, &d);
		if (kiln_is_ok(r) && v.reason[0] == '\0')
			abort();
		break;
	}
	case 1: {
		struct body_begin b;

		r = body_begin_parse(body, &b, &d);
		check_diag(r, &d);
		break;
	}
	case 4: {
		struct body_approval a;

		r = body_approval_parse(body, &a, &d);
		check_diag(r, &d);
		if (kiln_is_ok(r) && (a.sig_len == 0 || a.sig_len > KILN_BODY_SIG_MAX))
			abort();
		break;
	}
	default: {
		struct body_finish f;

		body_finish_init(&f);
		r = body_finish_parse(body, &f, &d);
		check_diag(r, &d);
		if (kiln_is_ok(r) && (f.serial[0] == '\0' || f.csr.len > KILN_CSR_MAX_BYTES))
			abort();
		body_finish_cleanup(&f);
		break;
	}
	}
	return 0;
}
