/*
 * Unit tests for src/ca/retire.c: a device retired destroys its objects in
 * the (SoftHSM2) token, revokes its certificate and records what it did;
 * refusals leave one event and nothing else.
 */
#include "support/ca_fixture.h"

#include <stdio.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-retire", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static struct kiln_issue_result issue(const char *serial)
{
	struct kiln_issue_req req = { .product = "widget-test", .actor = "test" };
	struct kiln_issue_result res;
	kiln_buf csr;
	kiln_diag d;

	kt_make_csr("p256", serial, NULL, &csr, NULL);
	req.csr = kiln_buf_view(&csr);
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_ca_issue(k.ca, &req, &res, &d)))
		fail_msg("issue: %s", d.text);
	kiln_buf_cleanup(&csr);
	return res;
}

static void test_retire(void **state)
{
	struct kiln_issue_result res = issue("RET-0001");
	struct kiln_retire_result out;
	struct kiln_cert_rec cert = { 0 };
	struct kiln_device_rec dev = { 0 };
	char label[KILN_DEVICE_LABEL_MAX];
	kiln_key_ref ref;
	int64_t events = kt_count_events(&k, "device-retire");
	kiln_diag d;

	(void)state;
	KT_OK(kiln_token_device_label("widget-test", "RET-0001", label));
	assert_string_equal(label, "kiln-device:widget-test/RET-0001");
	kiln_diag_clear(&d);
	KT_OK(kiln_token_generate(k.tokens[KILN_ENV_TEST], KILN_ALG_P256, label, &ref, NULL, &d));
	KT_OK(kiln_ca_device_retire(k.ca, "widget-test/RET-0001", "cli:test", &out, &d));
	assert_int_equal(out.destroyed.n, 2);
	assert_true(out.revoked_now);
	assert_string_equal(out.cert_serial, res.serial);
	/* Gone from the token. */
	KT_ERR(kiln_token_find(k.tokens[KILN_ENV_TEST], &ref, NULL), KILN_ERR_HSM_KEY_MISSING);
	KT_OK(kiln_store_device_get(k.store, "widget-test/RET-0001", &dev, NULL));
	assert_string_equal(dev.status, "retired");
	KT_OK(kiln_store_cert_get(k.store, res.serial, &cert, NULL));
	assert_string_equal(cert.status, "revoked");
	kiln_cert_rec_cleanup(&cert);
	assert_int_equal(kt_count_events(&k, "device-retire"), events + 1);
	kiln_issue_result_cleanup(&res);
}

static void test_refusals(void **state)
{
	struct kiln_issue_result res = issue("RET-0002");
	struct kiln_retire_result out;
	int64_t rej, revoked;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	/* Nothing in the token: a count of 0, still retired. */
	KT_OK(kiln_ca_device_retire(k.ca, "RET-0002", "cli:test", &out, &d));
	assert_int_equal(out.destroyed.n, 0);
	rej = kt_count_events(&k, "rejection");
	revoked = kt_count_events(&k, "device-retire");
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_device_retire(k.ca, "RET-0002", "cli:test", &out, &d), KILN_ERR_DEVICE_RETIRED);
	assert_non_null(strstr(d.text, "already retired"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_device_retire(k.ca, "NOPE-1", "cli:test", &out, &d), KILN_ERR_NOT_FOUND);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 2);
	assert_int_equal(kt_count_events(&k, "device-retire"), revoked);
	KT_ERR(kiln_ca_device_retire(k.ca, NULL, "cli:test", &out, NULL), KILN_ERR_ARG);
	kiln_issue_result_cleanup(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retire),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
