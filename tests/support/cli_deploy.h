/* CLI tests: a deployment made by `kiln init` in-process, with both example policies. */
#ifndef KILN_TEST_CLI_DEPLOY_H
#define KILN_TEST_CLI_DEPLOY_H

#include "support/support.h"

#include "cli/cli.h"

#include <stdlib.h>

static inline void kt_cli_deploy(const char *name, char **root, char **dir)
{
	kiln_buf out, err;

	*root = kt_tmpdir(name);
	*dir = kt_path(*root, "d");
	if (kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", *dir, NULL) != 0 ||
	    kt_run(kiln_cli_main, NULL, NULL, "kiln", "--dir", *dir, "policy", "add",
		   KILN_SOURCE_DIR "/examples/policies/widget.yaml", NULL) != 0 ||
	    kt_run(kiln_cli_main, NULL, NULL, "kiln", "--dir", *dir, "policy", "add",
		   KILN_SOURCE_DIR "/examples/policies/widget-test.yaml", NULL) != 0)
		fail_msg("deployment: %s", kiln_buf_cstr(&err));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

/* Writes a PEM CSR for a fresh P-256 key with the given CN into root/name.csr. */
static inline char *kt_cli_csr(const char *root, const char *name, const char *subj)
{
	char *base = kt_path(root, name);
	size_t n = strlen(base) + 8;
	char *csr = malloc(n);

	assert_non_null(csr);
	(void)snprintf(csr, n, "%s.csr", base);
	assert_int_equal(kt_system("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
				   "-nodes -keyout '%s.key' -subj '%s' -out '%s' 2>/dev/null",
				   base, subj, csr), 0);
	free(base);
	return csr;
}

#endif
