/* The signer interface: request checks, dispatch, and no half signatures. */
#include "support/support.h"

#include <string.h>

#include "hsm/hsm.h"

struct fake {
	unsigned calls;
	kiln_err fail_with;
	const struct kiln_sign_req *seen;
};

/* Appends a marker, then fails if told to: the interface must undo the append. */
static kiln_result fake_sign(void *impl, const struct kiln_sign_req *req, kiln_buf *sig,
			     kiln_diag *d)
{
	struct fake *f = impl;

	f->calls++;
	f->seen = req;
	KILN_GUARD(kiln_buf_append_str(sig, "SIGNATURE"));
	if (f->fail_with != KILN_OK)
		return kiln_diag_set(d, f->fail_with, "fake backend failed");
	return kiln_ok();
}

static const struct kiln_signer_ops fake_ops = { .sign = fake_sign };

static const kiln_key_ref key = { "ca-key", { 1, 2, 3 }, 3, KILN_ALG_P256 };

static void test_dispatch(void **state)
{
	struct fake f = { 0, KILN_OK, NULL };
	kiln_signer s = { &fake_ops, &f };
	struct kiln_sign_req req = { &key, kiln_slice_str("tbs"), "certificate" };
	kiln_buf sig;
	kiln_diag d;

	(void)state;
	kiln_buf_init(&sig, 1024);
	kiln_diag_clear(&d);
	KT_OK(kiln_buf_append_str(&sig, "prefix:"));
	KT_OK(kiln_signer_sign(&s, &req, &sig, &d));
	assert_int_equal(f.calls, 1);
	assert_ptr_equal(f.seen, &req);
	assert_string_equal(kiln_buf_cstr(&sig), "prefix:SIGNATURE");
	kiln_buf_cleanup(&sig);
}

static void test_failure_leaves_buffer(void **state)
{
	struct fake f = { 0, KILN_ERR_HSM_KEY_MISSING, NULL };
	kiln_signer s = { &fake_ops, &f };
	struct kiln_sign_req req = { &key, kiln_slice_str("tbs"), "crl" };
	kiln_buf sig;
	kiln_diag d;

	(void)state;
	kiln_buf_init(&sig, 1024);
	kiln_diag_clear(&d);
	KT_OK(kiln_buf_append_str(&sig, "prefix:"));
	KT_ERR(kiln_signer_sign(&s, &req, &sig, &d), KILN_ERR_HSM_KEY_MISSING);
	assert_string_equal(d.text, "fake backend failed");
	assert_int_equal(sig.len, strlen("prefix:"));
	assert_string_equal(kiln_buf_cstr(&sig), "prefix:");
	kiln_buf_cleanup(&sig);
}

static void test_bad_requests(void **state)
{
	struct fake f = { 0, KILN_OK, NULL };
	kiln_signer s = { &fake_ops, &f };
	kiln_signer no_ops = { NULL, &f };
	struct kiln_signer_ops null_fn = { NULL };
	kiln_signer no_fn = { &null_fn, &f };
	struct kiln_sign_req ok = { &key, kiln_slice_str("tbs"), "ocsp" };
	struct kiln_sign_req r;
	kiln_buf sig;
	kiln_diag d;

	(void)state;
	kiln_buf_init(&sig, 1024);
	KT_ERR(kiln_signer_sign(NULL, &ok, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_signer_sign(&no_ops, &ok, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_signer_sign(&no_fn, &ok, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_signer_sign(&s, NULL, &sig, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_signer_sign(&s, &ok, NULL, NULL), KILN_ERR_ARG);
	r = ok;
	r.key = NULL;
	KT_ERR(kiln_signer_sign(&s, &r, &sig, NULL), KILN_ERR_ARG);
	r = ok;
	r.purpose = NULL;
	KT_ERR(kiln_signer_sign(&s, &r, &sig, NULL), KILN_ERR_ARG);
	r.purpose = "";
	kiln_diag_clear(&d);
	KT_ERR(kiln_signer_sign(&s, &r, &sig, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "sign request names no purpose");
	r = ok;
	r.tbs = kiln_slice_of(NULL, 0);
	KT_ERR(kiln_signer_sign(&s, &r, &sig, NULL), KILN_ERR_ARG);
	r.tbs = kiln_slice_of("x", 0);
	KT_ERR(kiln_signer_sign(&s, &r, &sig, NULL), KILN_ERR_ARG);
	/* None of them reached the backend or touched the buffer. */
	assert_int_equal(f.calls, 0);
	assert_int_equal(sig.len, 0);
	kiln_buf_cleanup(&sig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_failure_leaves_buffer),
		cmocka_unit_test(test_bad_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
