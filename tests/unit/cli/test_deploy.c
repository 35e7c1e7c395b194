/* Opening a deployment: config, PIN files, module, tokens, store, CA engine. */
#include "support/support.h"

#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	kiln_buf out, err;

	(void)state;
	root = kt_tmpdir("cli-deploy");
	dir = kt_path(root, "d");
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", dir, NULL), 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_rmrf(root);
	free(dir);
	free(root);
	return 0;
}

static struct cli_common common(const char *d)
{
	struct cli_common c = { 0 };

	c.dir = d;
	return c;
}

static void test_path(void **state)
{
	char out[32];

	(void)state;
	KT_OK(deploy_path("/a", "b/c", out, sizeof(out)));
	assert_string_equal(out, "/a/b/c");
	KT_OK(deploy_path("/a", "/abs", out, sizeof(out)));
	assert_string_equal(out, "/abs");
	KT_ERR(deploy_path("/a", "0123456789012345678901234567890123456789", out, sizeof(out)),
	       KILN_ERR_TOO_BIG);
}

static void test_open_ok(void **state)
{
	struct cli_common c = common(dir);
	struct deployment dep;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(deploy_open(&c, NEED_CA, &dep, &d));
	assert_non_null(dep.store);
	assert_non_null(dep.ca);
	assert_null(dep.tokens[KILN_ENV_PRODUCTION]);
	KT_OK(deploy_token(&dep, KILN_ENV_PRODUCTION, &d));
	assert_non_null(dep.tokens[KILN_ENV_PRODUCTION]);
	assert_string_equal(kiln_token_label(dep.tokens[KILN_ENV_PRODUCTION]), "kiln-prod");
	KT_OK(deploy_token(&dep, KILN_ENV_PRODUCTION, &d)); /* idempotent */
	KT_ERR(deploy_token(&dep, KILN_ENV_NONE, &d), KILN_ERR_ARG);
	deploy_close(&dep);
}

static void test_open_errors(void **state)
{
	struct cli_common c = common(NULL);
	struct deployment dep;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(deploy_open(&c, NEED_STORE, &dep, &d), KILN_ERR_USAGE);
	deploy_close(&dep);
	c.dir = "/nonexistent/kiln";
	kiln_diag_clear(&d);
	KT_ERR(deploy_open(&c, NEED_STORE, &dep, &d), KILN_ERR_NOT_FOUND);
	deploy_close(&dep);
	c.dir = root; /* exists, but holds no kiln.yaml */
	kiln_diag_clear(&d);
	KT_ERR(deploy_open(&c, NEED_STORE, &dep, &d), KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, "not a kiln deployment"));
	deploy_close(&dep);
}

/* Copies the deployment, then edits one file of the copy with sed. */
static char *variant(const char *name, const char *file, const char *sed)
{
	char *copy = kt_path(root, name);

	assert_int_equal(kt_system("cp -a '%s' '%s' && sed -i 's|%s|%s|g' '%s/hsm/softhsm2.conf'",
				   dir, copy, dir, copy, copy), 0);
	assert_int_equal(kt_system("sed -i '%s' '%s/%s'", sed, copy, file), 0);
	return copy;
}

static void token_error(const char *name, const char *file, const char *sed, kiln_err want,
			const char *msg)
{
	char *copy = variant(name, file, sed);
	struct cli_common c = common(copy);
	struct deployment dep;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(deploy_open(&c, NEED_STORE, &dep, NULL));
	KT_ERR(deploy_token(&dep, KILN_ENV_PRODUCTION, &d), want);
	if (strstr(d.text, msg) == NULL)
		fail_msg("%s: '%s' lacks '%s'", name, d.text, msg);
	deploy_close(&dep);
	free(copy);
}

static void test_token_errors(void **state)
{
	(void)state;
	token_error("wrong-pin", "secrets/kiln-prod.pin", "s/.*/0000/", KILN_ERR_HSM_PIN, "kiln-prod");
	token_error("empty-pin", "secrets/kiln-prod.pin", "d", KILN_ERR_CONFIG, "empty PIN file");
	token_error("no-token", "kiln.yaml", "s/\"kiln-prod\"/\"kiln-gone\"/", KILN_ERR_HSM_TOKEN_MISSING,
		    "kiln-gone");
	token_error("no-module", "kiln.yaml", "s|/usr/lib/softhsm/libsofthsm2.so|/nonexistent/p11.so|",
		    KILN_ERR_HSM_MODULE, "/nonexistent/p11.so");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_open_ok),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_token_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
