/* Names of environments and attestation types, as policies, configs and APIs spell them. */
#include "policy/policy.h"

#include <string.h>

static const char *const env_names[] = {
	[KILN_ENV_NONE] = "none",
	[KILN_ENV_PRODUCTION] = "production",
	[KILN_ENV_TEST] = "test",
	[KILN_ENV_SERVICE] = "service",
};

static const char *const attest_names[] = {
	[KILN_ATTEST_NONE] = "none",
	[KILN_ATTEST_DICE] = "dice",
	[KILN_ATTEST_TPM2] = "tpm2",
	[KILN_ATTEST_SE] = "secure-element",
};

const char *kiln_env_name(kiln_env env)
{
	if ((unsigned)env >= sizeof(env_names) / sizeof(env_names[0]))
		return "unknown";
	return env_names[env];
}

/* Only the three real environments parse: "none" is the absence of one. */
kiln_result kiln_env_parse(const char *name, kiln_env *out)
{
	KILN_ENSURE(name != NULL && out != NULL, KILN_ERR_ARG);
	for (unsigned i = KILN_ENV_PRODUCTION; i <= KILN_ENV_SERVICE; i++) {
		if (strcmp(name, env_names[i]) == 0) {
			*out = (kiln_env)i;
			return kiln_ok();
		}
	}
	return kiln_fail(KILN_ERR_ARG);
}

const char *kiln_attest_type_name(kiln_attest_type t)
{
	if ((unsigned)t >= sizeof(attest_names) / sizeof(attest_names[0]))
		return "unknown";
	return attest_names[t];
}
