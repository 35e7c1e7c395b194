/*
 * Subject and SAN templates: "{serial}", "{product}" and "{lot}" expand to the
 * device's values; every other brace is an error, so a typo in a policy is
 * caught when the policy is added, not when the first device is refused.
 */
#include "policy/policy_int.h"

#include <stdio.h>
#include <string.h>

static const char *const placeholders[] = { "serial", "product", "lot" };

#define N_PLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

/* Index of the placeholder named by len bytes at s, or -1. */
static int placeholder(const char *s, size_t len)
{
	for (size_t i = 0; i < N_PLACEHOLDERS; i++)
		if (strlen(placeholders[i]) == len && memcmp(placeholders[i], s, len) == 0)
			return (int)i;
	return -1;
}

static void show(const char *s, size_t len, char out[40])
{
	size_t n = len > 32 ? 32 : len, i;

	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	if (len > n)
		memcpy(out + i, "...", 4);
}

/*
 * Finds the next placeholder at or after s: *open at its '{', *len the length
 * of its name. Returns 0 when there is none, 1 when found, -1 for a brace out
 * of place (*open at it).
 */
static int next_brace(const char *s, const char **open, size_t *len)
{
	const char *o = strpbrk(s, "{}"), *close;

	if (o == NULL)
		return 0;
	*open = o;
	if (*o == '}')
		return -1;
	close = strpbrk(o + 1, "{}");
	if (close == NULL || *close == '{')
		return -1;
	*len = (size_t)(close - o - 1);
	return 1;
}

kiln_result kiln_policy_tmpl_check(const char *tmpl, char *why, size_t cap)
{
	const char *s = tmpl, *open = NULL;
	char name[40];
	size_t len = 0;
	int k;

	while ((k = next_brace(s, &open, &len)) != 0) {
		if (k < 0) {
			(void)snprintf(why, cap, "has an unbalanced '%c' at character %zu", *open,
				       (size_t)(open - tmpl) + 1);
			return kiln_fail(KILN_ERR_MALFORMED);
		}
		if (placeholder(open + 1, len) < 0) {
			show(open + 1, len, name);
			(void)snprintf(why, cap,
				       "has an unknown placeholder '{%s}' (allowed: {serial}, {product}, {lot})",
				       name);
			return kiln_fail(KILN_ERR_MALFORMED);
		}
		s = open + len + 2;
	}
	return kiln_ok();
}

static const char *value_of(const struct kiln_policy_vars *v, int which)
{
	switch (which) {
	case 0:
		return v->serial;
	case 1:
		return v->product;
	case 2:
		return v->lot != NULL ? v->lot : "";
	default:
		return NULL;
	}
}

/* Values go into certificate subjects: no control characters may ride along. */
static bool printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static kiln_result put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
	KILN_ENSURE(len < cap - *n, KILN_ERR_TOO_BIG);
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
	return kiln_ok();
}

static kiln_result render(const char *tmpl, const struct kiln_policy_vars *v, char *out,
			  size_t cap)
{
	const char *s = tmpl, *open = NULL, *val;
	size_t n = 0, len = 0;
	int k;

	out[0] = '\0';
	while ((k = next_brace(s, &open, &len)) != 0) {
		KILN_ENSURE(k > 0, KILN_ERR_ARG);
		val = value_of(v, placeholder(open + 1, len));
		KILN_ENSURE(val != NULL && printable(val), KILN_ERR_ARG);
		KILN_GUARD(put(out, cap, &n, s, (size_t)(open - s)));
		KILN_GUARD(put(out, cap, &n, val, strlen(val)));
		s = open + len + 2;
	}
	return put(out, cap, &n, s, strlen(s));
}

kiln_result kiln_policy_render(const char *tmpl, const struct kiln_policy_vars *v, char *out,
			       size_t cap)
{
	kiln_result r;

	KILN_ENSURE(out != NULL && cap > 0, KILN_ERR_ARG);
	out[0] = '\0';
	KILN_ENSURE(tmpl != NULL && v != NULL, KILN_ERR_ARG);
	r = render(tmpl, v, out, cap);
	if (!kiln_is_ok(r))
		out[0] = '\0';
	return r;
}
