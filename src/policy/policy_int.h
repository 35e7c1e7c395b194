/*
 * Internal to src/policy: helpers shared between the module's files. Not part
 * of the module's interface. Each check explains a refusal in why (one line,
 * no file or line: the caller adds them) and fails with KILN_ERR_MALFORMED.
 */
#ifndef KILN_POLICY_INT_H
#define KILN_POLICY_INT_H

#include "policy/policy.h"

/* Longest device serial kiln_policy_serial_ok accepts. */
#define KILN_POLICY_SERIAL_MAX 127

/* template.c: only {serial}, {product} and {lot}, braces balanced. */
KILN_MUST_USE kiln_result kiln_policy_tmpl_check(const char *tmpl, char *why, size_t cap);

/*
 * serial.c: checks a device serial pattern (anchored with ^ and $, no
 * top-level |, no back-references, bounded expansion) and compiles it with
 * regcomp(REG_EXTENDED | REG_NOSUB). On success the caller owns *out and
 * releases it with kiln_policy_regex_free.
 */
KILN_MUST_USE kiln_result kiln_policy_regex_compile(const char *pattern, void **out, char *why,
						    size_t cap);
void kiln_policy_regex_free(void *re);

/* policy.c: an http:// or https:// URL with a host, no spaces. */
bool kiln_policy_url_ok(const char *url);

#endif /* KILN_POLICY_INT_H */
