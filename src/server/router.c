/*
 * Routing: request paths against the route table's patterns, methods, and
 * the media types a request body may have. Pure: no I/O, no allocation;
 * matched params are views into the caller's path.
 */
#include "server_impl.h"

#include <string.h>
#include <strings.h>

/* The messages below spell these limits out. */
_Static_assert(KILN_ROUTE_MAX_PARAMS == 4 && KILN_ROUTE_MAX_PATTERN == 256, "update the messages");

static const char *const methods_known[] = { "GET", "POST", "PUT", "DELETE", "PATCH" };

static bool method_known(const char *m)
{
	for (size_t i = 0; m != NULL && i < sizeof(methods_known) / sizeof(methods_known[0]); i++) {
		if (strcmp(m, methods_known[i]) == 0)
			return true;
	}
	return false;
}

/* Characters a literal pattern segment may hold: RFC 3986 pchar without '%'. */
static bool literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static bool param_name_ok(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static kiln_result bad_pattern(kiln_diag *d, const char *pat, const char *why)
{
	return kiln_diag_set(d, KILN_ERR_CONFIG, "route pattern \"%s\" %s", pat, why);
}

static kiln_result segment_check(const char *pat, const char *s, size_t n, size_t *params,
				 kiln_diag *d)
{
	if (n == 0)
		return bad_pattern(d, pat, "has an empty segment");
	if (s[0] == '{') {
		if (n < 3 || s[n - 1] != '}' || !param_name_ok(s + 1, n - 2))
			return bad_pattern(d, pat, "has a parameter that is not a whole segment "
						   "\"{name}\" with name [a-z0-9_]+");
		if (++*params > KILN_ROUTE_MAX_PARAMS)
			return bad_pattern(d, pat, "has more than 4 parameters");
		return kiln_ok();
	}
	for (size_t i = 0; i < n; i++) {
		if (!literal_char(s[i]))
			return bad_pattern(d, pat, "holds a character not allowed in a path");
	}
	return kiln_ok();
}

static kiln_result pattern_check(const char *pat, kiln_diag *d)
{
	size_t len = pat != NULL ? strlen(pat) : 0, params = 0;

	if (len == 0 || len > KILN_ROUTE_MAX_PATTERN || pat[0] != '/')
		return bad_pattern(d, pat != NULL ? pat : "(null)",
				   "must start with '/' and be at most 256 bytes");
	if (len == 1)
		return kiln_ok();
	for (const char *p = pat; *p == '/';) {
		size_t n = strcspn(p + 1, "/");

		KILN_GUARD(segment_check(pat, p + 1, n, &params, d));
		p += 1 + n;
	}
	return kiln_ok();
}

static kiln_result route_check(const struct kiln_route *r, size_t i, kiln_diag *d)
{
	if (!method_known(r->method))
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "route %zu: method must be GET, POST, PUT, DELETE or PATCH", i);
	KILN_GUARD(pattern_check(r->pattern, d));
	if (r->fn == NULL)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "route %s %s has no handler", r->method,
				     r->pattern);
	if ((r->roles & ~KILN_ROLE_ALL) != 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "route %s %s names unknown roles", r->method,
				     r->pattern);
	/* The loop thread must never wait on authenticate's I/O. */
	if (r->inline_ok && r->roles != 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "route %s %s runs inline and so must be public (roles 0)",
				     r->method, r->pattern);
	return kiln_ok();
}

kiln_result kiln_router_check(const struct kiln_route *routes, size_t n, kiln_diag *d)
{
	if (routes == NULL && n > 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "no route table");
	if (n > KILN_ROUTE_MAX_ROUTES)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "more than %d routes", KILN_ROUTE_MAX_ROUTES);
	for (size_t i = 0; i < n; i++) {
		KILN_GUARD(route_check(&routes[i], i, d));
		for (size_t j = 0; j < i; j++) {
			if (strcmp(routes[j].method, routes[i].method) == 0 &&
			    strcmp(routes[j].pattern, routes[i].pattern) == 0)
				return kiln_diag_set(d, KILN_ERR_CONFIG, "route %s %s is listed twice",
						     routes[i].method, routes[i].pattern);
		}
	}
	return kiln_ok();
}

static bool dot_segment(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* Walks pattern and path segment by segment; params are recorded in m. */
static bool match_one(const char *pat, const char *path, struct kiln_route_match *m)
{
	const char *p = pat, *x = path;

	m->n_params = 0;
	if (*p != '/' || *x != '/')
		return false;
	while (*p == '/' && *x == '/') {
		size_t pn, xn;

		p++;
		x++;
		pn = strcspn(p, "/");
		xn = strcspn(x, "/");
		if (pn > 0 && p[0] == '{') {
			if (xn == 0 || dot_segment(x, xn) || m->n_params >= KILN_ROUTE_MAX_PARAMS)
				return false;
			m->params[m->n_params++] = kiln_slice_of(x, xn);
		} else if (pn != xn || memcmp(p, x, pn) != 0) {
			return false;
		}
		p += pn;
		x += xn;
	}
	return *p == '\0' && *x == '\0';
}

static void allow_add(char *allow, const char *method)
{
	size_t len = strlen(allow), mlen = strlen(method);
	const char *hit = strstr(allow, method);

	/* Already listed: whole-token match only ("POST" is not in "POSTX"). */
	while (hit != NULL) {
		bool start = hit == allow || hit[-1] == ' ';
		bool end = hit[mlen] == '\0' || hit[mlen] == ',';

		if (start && end)
			return;
		hit = strstr(hit + 1, method);
	}
	if (len + (len > 0 ? 2 : 0) + mlen + 1 > KILN_ROUTE_ALLOW_MAX)
		return;
	if (len > 0) {
		memcpy(allow + len, ", ", 2);
		len += 2;
	}
	memcpy(allow + len, method, mlen + 1);
}

kiln_result kiln_router_match(const struct kiln_route *routes, size_t n, const char *method,
			      const char *path, struct kiln_route_match *m)
{
	struct kiln_route_match tmp;
	bool path_known = false;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		if (!match_one(routes[i].pattern, path, &tmp))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, method) != 0) {
			allow_add(m->allow, routes[i].method);
			continue;
		}
		if (m->route == NULL || tmp.n_params < m->n_params) {
			memcpy(m->params, tmp.params, sizeof(m->params));
			m->n_params = tmp.n_params;
			m->route = &routes[i];
		}
	}
	if (m->route != NULL) {
		m->allow[0] = '\0';
		return kiln_ok();
	}
	return kiln_fail(path_known ? KILN_ERR_METHOD : KILN_ERR_NOT_FOUND);
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

kiln_result kiln_router_decode(kiln_slice seg, char *out, size_t cap)
{
	kiln_cursor c;
	size_t len = 0;

	KILN_ENSURE(cap > 0, KILN_ERR_ARG);
	kiln_cursor_init(&c, seg);
	while (kiln_cursor_remaining(&c) > 0) {
		uint8_t b, h, l;

		KILN_GUARD(kiln_cursor_u8(&c, &b));
		if (b == '%') {
			KILN_ENSURE(kiln_cursor_u8(&c, &h).code == KILN_OK && hex_value(h) >= 0,
				    KILN_ERR_MALFORMED);
			KILN_ENSURE(kiln_cursor_u8(&c, &l).code == KILN_OK && hex_value(l) >= 0,
				    KILN_ERR_MALFORMED);
			b = (uint8_t)(hex_value(h) * 16 + hex_value(l));
		}
		KILN_ENSURE(b >= 0x21 && b <= 0x7e && b != '/' && b != '\\', KILN_ERR_MALFORMED);
		KILN_ENSURE(len + 1 < cap, KILN_ERR_TOO_BIG);
		out[len++] = (char)b;
	}
	out[len] = '\0';
	return kiln_ok();
}

bool kiln_router_media_ok(const char *ct)
{
	static const char *const allowed[] = { "application/json", "application/ocsp-request",
					       "application/pkcs10" };
	size_t n;

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (strlen(allowed[i]) == n && strncasecmp(ct, allowed[i], n) == 0)
			return true;
	}
	return false;
}

bool kiln_router_path_ok(const char *path)
{
	if (path == NULL || path[0] != '/')
		return false;
	for (const char *p = path; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	}
	return true;
}
