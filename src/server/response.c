/* Response helpers and role names shared by the transport and the routes. */
#include "server.h"

#include <string.h>

static const struct {
	const char *name;
	unsigned bit;
} role_bits[] = {
	{ "admin", KILN_ROLE_ADMIN },	    { "officer", KILN_ROLE_OFFICER },
	{ "engineer", KILN_ROLE_ENGINEER }, { "operator", KILN_ROLE_OPERATOR },
	{ "station", KILN_ROLE_STATION },   { "auditor", KILN_ROLE_AUDITOR },
};

unsigned kiln_role_bit(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(role_bits) / sizeof(role_bits[0]); i++) {
		if (strcmp(role_bits[i].name, name) == 0)
			return role_bits[i].bit;
	}
	return 0;
}

kiln_result kiln_response_header(struct kiln_response *res, const char *name, const char *value)
{
	KILN_ENSURE(res->n_headers < KILN_RESPONSE_MAX_HEADERS, KILN_ERR_TOO_BIG);
	/* Header injection: no CR, LF or NUL from anywhere. */
	KILN_ENSURE(strpbrk(name, "\r\n:") == NULL && strpbrk(value, "\r\n") == NULL, KILN_ERR_ARG);
	KILN_GUARD(kiln_strlcpy(res->headers[res->n_headers].name, name,
				sizeof(res->headers[0].name)));
	KILN_GUARD(kiln_strlcpy(res->headers[res->n_headers].value, value,
				sizeof(res->headers[0].value)));
	res->n_headers++;
	return kiln_ok();
}

void kiln_response_init(struct kiln_response *res)
{
	memset(res, 0, sizeof(*res));
	kiln_buf_init(&res->body, KILN_BUF_DEFAULT_MAX);
}

void kiln_response_cleanup(struct kiln_response *res)
{
	if (res == NULL)
		return;
	kiln_buf_cleanup(&res->body);
	res->n_headers = 0;
}
