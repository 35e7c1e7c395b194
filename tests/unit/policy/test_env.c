/* Environment and attestation type names (src/policy/env.c). */
#include "support/support.h"

#include "policy/policy.h"

static void test_env_names(void **state)
{
	(void)state;
	assert_string_equal(kiln_env_name(KILN_ENV_NONE), "none");
	assert_string_equal(kiln_env_name(KILN_ENV_PRODUCTION), "production");
	assert_string_equal(kiln_env_name(KILN_ENV_TEST), "test");
	assert_string_equal(kiln_env_name(KILN_ENV_SERVICE), "service");
	assert_string_equal(kiln_env_name((kiln_env)4), "unknown");
	assert_string_equal(kiln_env_name((kiln_env)-1), "unknown");
}

static void test_env_parse(void **state)
{
	kiln_env e = KILN_ENV_NONE;

	(void)state;
	KT_OK(kiln_env_parse("production", &e));
	assert_int_equal(e, KILN_ENV_PRODUCTION);
	KT_OK(kiln_env_parse("test", &e));
	assert_int_equal(e, KILN_ENV_TEST);
	KT_OK(kiln_env_parse("service", &e));
	assert_int_equal(e, KILN_ENV_SERVICE);
	/* Exact names only; "none" is the absence of an environment. */
	e = KILN_ENV_TEST;
	KT_ERR(kiln_env_parse("none", &e), KILN_ERR_ARG);
	KT_ERR(kiln_env_parse("Production", &e), KILN_ERR_ARG);
	KT_ERR(kiln_env_parse("prod", &e), KILN_ERR_ARG);
	KT_ERR(kiln_env_parse("test ", &e), KILN_ERR_ARG);
	KT_ERR(kiln_env_parse("", &e), KILN_ERR_ARG);
	assert_int_equal(e, KILN_ENV_TEST); /* untouched on failure */
	KT_ERR(kiln_env_parse(NULL, &e), KILN_ERR_ARG);
	KT_ERR(kiln_env_parse("test", NULL), KILN_ERR_ARG);
}

static void test_attest_names(void **state)
{
	(void)state;
	assert_string_equal(kiln_attest_type_name(KILN_ATTEST_NONE), "none");
	assert_string_equal(kiln_attest_type_name(KILN_ATTEST_DICE), "dice");
	assert_string_equal(kiln_attest_type_name(KILN_ATTEST_TPM2), "tpm2");
	assert_string_equal(kiln_attest_type_name(KILN_ATTEST_SE), "secure-element");
	assert_string_equal(kiln_attest_type_name((kiln_attest_type)4), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_env_parse),
		cmocka_unit_test(test_attest_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
