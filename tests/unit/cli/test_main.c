/* main.c: the built binary is a thin wrapper around kiln_cli_main. */
#include "support/support.h"

#include <stdlib.h>

static void test_binary(void **state)
{
	const char *bin = getenv("KILN_BIN");

	(void)state;
	if (bin == NULL)
		skip();
	assert_int_equal(kt_system("'%s' --version >/dev/null", bin), 0);
	assert_int_equal(kt_system("'%s' >/dev/null 2>&1", bin), 2);
	assert_int_equal(kt_system("'%s' --dir /nonexistent ca list >/dev/null 2>&1", bin), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_binary) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
