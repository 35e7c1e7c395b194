/*
 * RFC 9457 problem details: {"type","title","status","detail","instance",
 * "request_id"} as compact JSON with the media type application/problem+json.
 * The type is "urn:kiln:problem:<slug>" from the one error table, the title
 * its message (the same for every occurrence of the type, as the RFC asks).
 * Detail and instance may carry text from outside (a path, a diag quoting
 * input): both are cut to size and lose their control characters first.
 */
#include "server_impl.h"

#include <jansson.h>
#include <string.h>

#define PROBLEM_DETAIL_MAX 1024

static bool slug_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	}
	return true;
}

/*
 * A JSON string from untrusted text: at most max bytes, control characters
 * replaced; if what is left is not valid UTF-8 (jansson refuses it), every
 * non-ASCII byte is replaced too. NULL on allocation failure.
 */
static json_t *clean_string(const char *in, size_t max)
{
	char buf[KILN_PROBLEM_INSTANCE_MAX + 1];
	size_t n = strnlen(in, max < sizeof(buf) - 1 ? max : sizeof(buf) - 1);
	json_t *j;

	memcpy(buf, in, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	}
	j = json_stringn(buf, n);
	if (j != NULL)
		return j;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)buf[i] >= 0x80)
			buf[i] = '?';
	}
	return json_stringn(buf, n);
}

static bool set_new(json_t *o, const char *key, json_t *v)
{
	return v != NULL && json_object_set_new(o, key, v) == 0;
}

kiln_result kiln_problem_make(const struct kiln_problem_spec *p, struct kiln_response *res)
{
	char type[96];
	json_t *o;
	kiln_buf body;
	bool ok;
	kiln_result r;

	KILN_ENSURE(p->status >= 400 && p->status <= 599 && slug_ok(p->slug) && p->title != NULL,
		    KILN_ERR_ARG);
	(void)snprintf(type, sizeof(type), "%s%s", KILN_PROBLEM_TYPE_PREFIX, p->slug);
	o = json_object();
	KILN_ENSURE(o != NULL, KILN_ERR_NOMEM);
	ok = set_new(o, "type", json_string(type)) && set_new(o, "title", json_string(p->title)) &&
	     set_new(o, "status", json_integer(p->status)) &&
	     set_new(o, "detail", clean_string(p->detail != NULL ? p->detail : p->title,
					       PROBLEM_DETAIL_MAX));
	if (ok && p->instance != NULL)
		ok = set_new(o, "instance", clean_string(p->instance, KILN_PROBLEM_INSTANCE_MAX));
	if (ok && p->request_id != NULL)
		ok = set_new(o, "request_id", clean_string(p->request_id, 64));
	if (!ok) {
		json_decref(o);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	/* Built aside, then swapped in: a failure leaves res as it was. */
	kiln_buf_init(&body, res->body.max != 0 ? res->body.max : KILN_BUF_DEFAULT_MAX);
	r = kiln_json_dump(o, &body);
	json_decref(o);
	if (!kiln_is_ok(r)) {
		kiln_buf_cleanup(&body);
		return r;
	}
	kiln_buf_cleanup(&res->body);
	res->body = body;
	res->status = p->status;
	kiln_strtrunc(res->content_type, "application/problem+json", sizeof(res->content_type));
	return kiln_ok();
}

kiln_result kiln_problem(kiln_result why, const kiln_diag *d, const char *instance,
			 struct kiln_response *res)
{
	const struct kiln_err_info *info = kiln_err_info(why.code);
	struct kiln_problem_spec p = {
		.status = info->http_status >= 400 ? info->http_status : 500,
		.slug = info->slug,
		.title = info->message,
		.detail = kiln_diag_message(d, why),
		.instance = instance,
		.request_id = NULL,
	};

	KILN_ENSURE(why.code != KILN_OK, KILN_ERR_ARG);
	return kiln_problem_make(&p, res);
}
