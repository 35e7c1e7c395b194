/* Adding product policies: versions, activation, environment fixed per product. */
#include "support/ca_fixture.h"

#include <string.h>

static struct kt_deploy k;

static const char gadget[] = "product: gadget\n"
			     "environment: test\n"
			     "keys:\n"
			     "  - type: ec\n"
			     "    curves: [p256]\n"
			     "device_serial:\n"
			     "  pattern: '^G-[0-9]{4}$'\n"
			     "subject:\n"
			     "  CN: \"{serial}\"\n"
			     "validity_days: 30\n"
			     "key_usage: [digitalSignature]\n"
			     "attestation:\n"
			     "  type: none\n";

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-policies", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static void test_versions(void **state)
{
	struct kiln_policy_added added = { 0 };
	struct kiln_policy_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_policy_add(k.ca, kiln_slice_str(gadget), "gadget.yaml", "t", &added, &d));
	assert_string_equal(added.product, "gadget");
	assert_int_equal(added.version, 1);
	assert_int_equal(added.env, KILN_ENV_TEST);
	KT_OK(kiln_ca_policy_add(k.ca, kiln_slice_str(gadget), "gadget.yaml", "t", &added, &d));
	assert_int_equal(added.version, 2);
	KT_OK(kiln_store_policy_list(k.store, &list, &n, NULL));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].product, "gadget") == 0)
			assert_string_equal(list[i].status, list[i].version == 2 ? "active" : "superseded");
	}
	kiln_store_policy_list_free(list, n);
	assert_true(kt_count_events(&k, "policy-add") >= 4);
}

static void test_invalid_policy_stores_nothing(void **state)
{
	int64_t before = kt_count(&k, "policies");
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kt_policy_add_text(&k, "product: gadget\nenvironment: test\ncolour: blue\n", &d),
	       KILN_ERR_POLICY_SCHEMA);
	assert_non_null(strstr(d.text, "inline.yaml:3:"));
	assert_int_equal(kt_count(&k, "policies"), before);
}

static void test_environment_is_fixed(void **state)
{
	int64_t before = kt_count(&k, "policies");
	kiln_buf text, changed;
	const char *at;
	kiln_diag d;

	(void)state;
	/* widget is a production product; the same policy declared as test is refused. */
	kt_read_file(KILN_SOURCE_DIR "/examples/policies/widget.yaml", &text);
	at = strstr(kiln_buf_cstr(&text), "environment: production");
	assert_non_null(at);
	kiln_buf_init(&changed, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&changed, text.ptr, (size_t)((const uint8_t *)at - text.ptr)));
	KT_OK(kiln_buf_append_str(&changed, "environment: test"));
	KT_OK(kiln_buf_append_str(&changed, at + strlen("environment: production")));
	kiln_diag_clear(&d);
	KT_ERR(kt_policy_add_text(&k, kiln_buf_cstr(&changed), &d), KILN_ERR_POLICY_ENV);
	assert_non_null(strstr(d.text, "widget"));
	assert_int_equal(kt_count(&k, "policies"), before);
	kiln_buf_cleanup(&text);
	kiln_buf_cleanup(&changed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_invalid_policy_stores_nothing),
		cmocka_unit_test(test_environment_is_fixed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
