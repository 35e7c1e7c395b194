/* CLI tests: a deployment made by `kiln init` in-process, with both example policies. */
#ifndef KILN_TEST_CLI_DEPLOY_H
#define KILN_TEST_CLI_DEPLOY_H

#include "support/support.h"

#include "cli/cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Puts a policy in effect the governed way (docs/roles.md): policy add makes
 * a pending version and a request, which two officers approve. The officers
 * (DIR/kt-officer-a and -b, .crt and .key) are made once per deployment,
 * during the bootstrap.
 */
static inline void kt_cli_policy_add(const char *dir, const char *file)
{
	static const char *const officers[] = { "kt-officer-a", "kt-officer-b" };
	char prefix[2][1024], key[2][1040];
	kiln_buf out, err;
	json_t *j;
	const char *id;

	for (int i = 0; i < 2; i++) {
		(void)snprintf(prefix[i], sizeof(prefix[i]), "%.900s/%s", dir, officers[i]);
		(void)snprintf(key[i], sizeof(key[i]), "%.1000s.key", prefix[i]);
		if (access(key[i], F_OK) == 0)
			continue;
		if (kt_run(kiln_cli_main, NULL, &err, "kiln", "--dir", dir, "identity", "add",
			   "--name", officers[i], "--role", "officer", "--out", prefix[i], NULL) != 0)
			fail_msg("officer: %s", kiln_buf_cstr(&err));
		kiln_buf_cleanup(&err);
	}
	if (kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json", "policy", "add", file,
		   NULL) != 0)
		fail_msg("policy add %s: %s", file, kiln_buf_cstr(&err));
	j = json_loads(kiln_buf_cstr(&out), 0, NULL);
	id = json_string_value(json_object_get(j, "request"));
	assert_non_null(id);
	for (int i = 0; i < 2; i++) {
		kiln_buf_cleanup(&err);
		if (kt_run(kiln_cli_main, NULL, &err, "kiln", "--dir", dir, "approve", id, "--key",
			   key[i], NULL) != 0)
			fail_msg("approve %s: %s", id, kiln_buf_cstr(&err));
	}
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static inline void kt_cli_deploy(const char *name, char **root, char **dir)
{
	kiln_buf out, err;

	*root = kt_tmpdir(name);
	*dir = kt_path(*root, "d");
	if (kt_run(kiln_cli_main, &out, &err, "kiln", "init", "--dir", *dir, NULL) != 0)
		fail_msg("deployment: %s", kiln_buf_cstr(&err));
	kt_cli_policy_add(*dir, KILN_SOURCE_DIR "/examples/policies/widget.yaml");
	kt_cli_policy_add(*dir, KILN_SOURCE_DIR "/examples/policies/widget-test.yaml");
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
