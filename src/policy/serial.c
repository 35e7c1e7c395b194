/*
 * Device serial patterns: POSIX extended regular expressions, checked before
 * regcomp sees them. glibc builds a counted repetition x{m,n} by copying x n
 * times, so nested counts multiply ("((x{99}){99}){99}" is a million nodes);
 * a policy must not be able to make kiln spend seconds or gigabytes in
 * regcomp, so the expansion is estimated and capped first. Back-references
 * (glibc accepts them in EREs) make matching exponential and are refused. The
 * pattern must be anchored, because an unanchored one accepts any serial that
 * merely contains a match.
 */
#include "policy/policy_int.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nodes glibc may build after expanding counted repetitions. */
#define REGEX_COST_MAX 4096
/* No count above this is useful for serials of at most 127 characters. */
#define REGEX_COUNT_MAX 255
#define REGEX_GROUPS_MAX 32

struct cost {
	size_t total; /* of the group so far */
	size_t last;  /* of its last atom, which a repetition applies to */
};

static size_t sat_mul(size_t a, size_t b)
{
	size_t r;

	return kiln_mul_size(a, b, &r) && r <= REGEX_COST_MAX + 1 ? r : REGEX_COST_MAX + 1;
}

static size_t sat_add(size_t a, size_t b)
{
	size_t r;

	return kiln_add_size(a, b, &r) && r <= REGEX_COST_MAX + 1 ? r : REGEX_COST_MAX + 1;
}

/* Applies the repetition factor f to the last atom of g. */
static void repeat(struct cost *g, size_t f)
{
	size_t grown = sat_mul(g->last, f);

	g->total = sat_add(g->total - g->last, grown);
	g->last = grown;
}

static void atom(struct cost *g, size_t c)
{
	g->last = c;
	g->total = sat_add(g->total, c);
}

/* Skips a bracket expression starting at p ('['); returns the index after it. */
static size_t skip_bracket(const char *p, size_t i)
{
	i++;
	if (p[i] == '^')
		i++;
	if (p[i] == ']')
		i++;
	while (p[i] != '\0' && p[i] != ']') {
		if (p[i] == '[' && (p[i + 1] == ':' || p[i + 1] == '=' || p[i + 1] == '.')) {
			char kind = p[i + 1];
			const char *end = p + i + 2;

			while (*end != '\0' && !(end[0] == kind && end[1] == ']'))
				end++;
			if (*end == '\0')
				return (size_t)(end - p);
			i = (size_t)(end - p) + 2;
			continue;
		}
		i++;
	}
	return p[i] == ']' ? i + 1 : i;
}

/*
 * Parses an interval "{m}", "{m,}", "{m,n}" or glibc's "{,n}" at p[i];
 * returns the index after it and its largest count in *f ("{m,}" counts
 * m+1: one more copy plus a loop), or 0 when it is not an interval (regcomp
 * then decides what it is).
 */
static size_t interval(const char *p, size_t i, size_t *f)
{
	uint64_t m = 0, n = 0;
	size_t j = i + 1;
	bool has_m = false, comma = false, has_n = false;

	for (; p[j] >= '0' && p[j] <= '9'; j++, has_m = true)
		m = m < 100000 ? m * 10 + (uint64_t)(p[j] - '0') : m;
	if (p[j] == ',') {
		comma = true;
		for (j++; p[j] >= '0' && p[j] <= '9'; j++, has_n = true)
			n = n < 100000 ? n * 10 + (uint64_t)(p[j] - '0') : n;
	}
	if (p[j] != '}' || !(has_m || has_n))
		return 0;
	*f = (size_t)(has_n ? (n > m ? n : m) : comma ? m + 1 : m);
	return j + 1;
}

static kiln_result refuse(char *why, size_t cap, const char *msg)
{
	(void)snprintf(why, cap, "%s", msg);
	return kiln_fail(KILN_ERR_MALFORMED);
}

static kiln_result shape_check(const char *p, char *why, size_t cap)
{
	struct cost stack[REGEX_GROUPS_MAX + 1] = { { 0, 0 } };
	size_t depth = 0, i = 0, len = strlen(p), f, next, slashes = 0;

	while (slashes + 1 < len && p[len - 2 - slashes] == '\\')
		slashes++;
	if (len < 2 || p[0] != '^' || p[len - 1] != '$' || slashes % 2 == 1)
		return refuse(why, cap, "must be anchored: start with ^ and end with $");
	while (p[i] != '\0') {
		switch (p[i]) {
		case '\\':
			if (p[i + 1] >= '1' && p[i + 1] <= '9')
				return refuse(why, cap, "must not use back-references (\\1 ... \\9)");
			atom(&stack[depth], 1);
			i += p[i + 1] != '\0' ? 2 : 1;
			continue;
		case '[':
			atom(&stack[depth], 1);
			i = skip_bracket(p, i);
			continue;
		case '(':
			if (depth == REGEX_GROUPS_MAX)
				return refuse(why, cap, "nests groups too deeply");
			stack[++depth] = (struct cost){ 0, 0 };
			break;
		case ')':
			if (depth > 0) {
				size_t inner = stack[depth--].total;

				atom(&stack[depth], sat_add(inner, 1));
			}
			break;
		case '|':
			if (depth == 0)
				return refuse(why, cap,
					      "must not use '|' outside parentheses: it splits the anchors; write ^(A|B)$");
			break;
		case '*':
		case '+':
		case '?':
			repeat(&stack[depth], 2);
			break;
		case '{':
			f = 0;
			next = interval(p, i, &f);
			if (next == 0) {
				atom(&stack[depth], 1);
				break;
			}
			if (f > REGEX_COUNT_MAX)
				return refuse(why, cap, "uses a repetition count above 255");
			repeat(&stack[depth], f > 0 ? f : 1);
			i = next;
			continue;
		default:
			atom(&stack[depth], 1);
			break;
		}
		i++;
	}
	for (size_t d = 0; d <= depth; d++)
		if (stack[d].total > REGEX_COST_MAX)
			return refuse(why, cap, "is too complex: its repetitions expand beyond 4096 elements");
	return kiln_ok();
}

kiln_result kiln_policy_regex_compile(const char *pattern, void **out, char *why, size_t cap)
{
	regex_t *re;
	int rc;

	*out = NULL;
	KILN_GUARD(shape_check(pattern, why, cap));
	re = malloc(sizeof(*re));
	KILN_ENSURE(re != NULL, KILN_ERR_NOMEM);
	rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char err[128];

		(void)regerror(rc, re, err, sizeof(err));
		free(re);
		(void)snprintf(why, cap, "is not a valid POSIX extended regex: %s", err);
		return kiln_fail(rc == REG_ESPACE ? KILN_ERR_NOMEM : KILN_ERR_MALFORMED);
	}
	*out = re;
	return kiln_ok();
}

void kiln_policy_regex_free(void *re)
{
	if (re == NULL)
		return;
	regfree(re);
	free(re);
}

bool kiln_policy_serial_ok(const kiln_policy *p, const char *serial)
{
	size_t len;

	if (p == NULL || p->priv == NULL || serial == NULL)
		return false;
	len = strnlen(serial, KILN_POLICY_SERIAL_MAX + 1);
	if (len == 0 || len > KILN_POLICY_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (serial[i] < 0x20 || serial[i] > 0x7e)
			return false;
	return regexec(p->priv, serial, 0, NULL, 0) == 0;
}
