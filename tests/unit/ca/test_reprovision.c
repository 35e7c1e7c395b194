/*
 * Unit tests for src/ca/reprovision.c: opening a re-provisioning, and each
 * refusal with its event. (The replacement itself, by an attested
 * provisioning, is driven end to end by tests/integration/test_lifecycle.sh.)
 */
#include "support/ca_fixture.h"

#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	struct kiln_issue_req req = { .product = "widget-test", .actor = "test" };
	struct kiln_issue_result res;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	kt_deploy_up(&k, "ca-reprovision", KILN_ALG_P256, false);
	kt_make_csr("p256", "REP-0001", NULL, &csr, NULL);
	req.csr = kiln_buf_view(&csr);
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static void test_open_and_refusals(void **state)
{
	struct kiln_reprovision_rec g;
	struct kiln_device_rec dev;
	struct kiln_retire_result out;
	int64_t rej;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_reprovision_open_get(k.store, "widget-test", "REP-0001", &g, NULL),
	       KILN_ERR_NOT_FOUND);
	KT_OK(kiln_ca_device_reprovision(k.ca, "REP-0001", "keyCompromise", "cli:eng", &dev, &d));
	assert_string_equal(dev.serial, "REP-0001");
	assert_int_equal(kt_count_events(&k, "reprovision-open"), 1);
	KT_OK(kiln_store_reprovision_open_get(k.store, "widget-test", "REP-0001", &g, NULL));
	assert_int_equal(g.device_id, dev.id);
	assert_string_equal(g.reason, "keyCompromise");
	assert_string_equal(g.opened_by, "cli:eng");
	assert_int_equal(g.used_by, 0);

	rej = kt_count_events(&k, "rejection");
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_device_reprovision(k.ca, "REP-0001", "superseded", "cli:eng", &dev, &d),
	       KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "already open"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_device_reprovision(k.ca, "REP-0001", "cessationOfOperation", "cli:eng", &dev,
					  &d),
	       KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_device_reprovision(k.ca, "NOPE-2", "keyCompromise", "cli:eng", &dev, &d),
	       KILN_ERR_NOT_FOUND);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 3);
	KT_OK(kiln_store_reprovision_open_get(k.store, "widget-test", "REP-0001", &g, NULL));
	assert_string_equal(g.reason, "keyCompromise"); /* the first grant, unchanged */
	/* A retired device is not re-provisioned. */
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_device_retire(k.ca, "REP-0001", "cli:eng", &out, &d));
	KT_ERR(kiln_ca_device_reprovision(k.ca, "REP-0001", "keyCompromise", "cli:eng", &dev, &d),
	       KILN_ERR_DEVICE_RETIRED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_and_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
