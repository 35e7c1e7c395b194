/* JSON with caps: size and nesting limits checked before anything else looks at it. */
#include "core.h"

#include <jansson.h>
#include <string.h>

static size_t depth_of(const json_t *j, size_t limit)
{
	size_t max = 0, d;

	if (limit == 0)
		return 1;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)j, k, v) {
			d = depth_of(v, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v) {
			d = depth_of(v, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	return 0;
}

kiln_result kiln_json_parse(kiln_slice in, size_t max, json_t **out, kiln_diag *d)
{
	json_error_t err;
	json_t *j;

	*out = NULL;
	if (in.len == 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "empty JSON body");
	if (in.len > max)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "JSON body of %zu bytes exceeds the %zu-byte limit",
				     in.len, max);
	j = json_loadb((const char *)in.ptr, in.len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "malformed JSON at line %d column %d: %s",
				     err.line, err.column, err.text);
	if (depth_of(j, KILN_JSON_MAX_DEPTH + 1) > KILN_JSON_MAX_DEPTH) {
		json_decref(j);
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "JSON nested deeper than %d levels",
				     KILN_JSON_MAX_DEPTH);
	}
	*out = j;
	return kiln_ok();
}

kiln_result kiln_json_dump(const json_t *j, kiln_buf *out)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	kiln_result r;

	KILN_ENSURE(s != NULL, KILN_ERR_NOMEM);
	r = kiln_buf_append_str(out, s);
	free(s);
	return r;
}

kiln_result kiln_json_get_str(const json_t *j, const char *key, size_t max_len, bool required,
			      const char **out, kiln_diag *d)
{
	json_t *v = json_is_object(j) ? json_object_get(j, key) : NULL;
	const char *s;

	*out = NULL;
	if (v == NULL) {
		if (!required)
			return kiln_ok();
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "missing member \"%s\"", key);
	}
	if (!json_is_string(v))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" must be a string", key);
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" holds a NUL byte", key);
	if (json_string_length(v) > max_len)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "member \"%s\" is longer than %zu bytes",
				     key, max_len);
	*out = s;
	return kiln_ok();
}
