/*
 * The schema walker: loads YAML with hard caps and walks it against a
 * table-driven schema, so every error names its file and line. See
 * yaml_schema.h for why the bytes are read twice.
 */
#include "policy/yaml_schema.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kiln_result failv(struct kiln_yaml_ctx *c, kiln_err code, unsigned long line,
			 const char *fmt, va_list ap) KILN_PRINTF(4, 0);
static kiln_result fail_line(struct kiln_yaml_ctx *c, kiln_err code, unsigned long line,
			     const char *fmt, ...) KILN_PRINTF(4, 5);

/* ------------------------------------------------------------ messages */

void kiln_yaml_show(const char *s, size_t len, char out[KILN_YAML_SHOW_MAX])
{
	size_t n = len > 40 ? 40 : len, i;

	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	if (len > n)
		memcpy(out + i, "...", 4);
}

static kiln_result failv(struct kiln_yaml_ctx *c, kiln_err code, unsigned long line,
			 const char *fmt, va_list ap)
{
	char msg[KILN_DIAG_MAX];

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	return kiln_diag_set(c->d, code, "%s:%lu: %s", c->file, line, msg);
}

static kiln_result fail_line(struct kiln_yaml_ctx *c, kiln_err code, unsigned long line,
			     const char *fmt, ...)
{
	kiln_result r;
	va_list ap;

	va_start(ap, fmt);
	r = failv(c, code, line, fmt, ap);
	va_end(ap);
	return r;
}

kiln_result kiln_yaml_fail(struct kiln_yaml_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
	kiln_result r;
	va_list ap;

	va_start(ap, fmt);
	r = failv(c, c->schema_code, kiln_yaml_line(node), fmt, ap);
	va_end(ap);
	return r;
}

kiln_result kiln_yaml_fail_at(struct kiln_yaml_ctx *c, const char *path, const char *fmt, ...)
{
	const yaml_node_t *key = NULL, *n = kiln_yaml_find(c, path, &key);
	kiln_result r;
	va_list ap;

	if (key != NULL)
		n = key;
	if (n == NULL)
		n = kiln_yaml_root(c);
	va_start(ap, fmt);
	r = failv(c, c->schema_code, kiln_yaml_line(n), fmt, ap);
	va_end(ap);
	return r;
}

unsigned long kiln_yaml_line(const yaml_node_t *n)
{
	return n == NULL ? 1 : (unsigned long)n->start_mark.line + 1;
}

/* 1-based line holding byte offset off (for errors libyaml reports by offset). */
static unsigned long line_at(kiln_slice in, size_t off)
{
	unsigned long line = 1;

	for (size_t i = 0; i < off && i < in.len; i++)
		line += in.ptr[i] == '\n';
	return line;
}

/* ------------------------------------------------------------ paths */

const char *kiln_yaml_path(const struct kiln_yaml_ctx *c)
{
	return c->path;
}

/* Appends ".key" (or "key" at the root); returns the mark to pop back to. */
static size_t path_push(struct kiln_yaml_ctx *c, const char *key)
{
	size_t mark = c->path_len, room = sizeof(c->path) - mark;
	int n = snprintf(c->path + mark, room, "%s%s", mark > 0 ? "." : "", key);

	if (n > 0)
		c->path_len = (size_t)n < room ? mark + (size_t)n : sizeof(c->path) - 1;
	return mark;
}

/* Appends "[i]". */
static size_t path_push_index(struct kiln_yaml_ctx *c, size_t i)
{
	size_t mark = c->path_len, room = sizeof(c->path) - mark;
	int n = snprintf(c->path + mark, room, "[%zu]", i);

	if (n > 0)
		c->path_len = (size_t)n < room ? mark + (size_t)n : sizeof(c->path) - 1;
	return mark;
}

static void path_pop(struct kiln_yaml_ctx *c, size_t mark)
{
	c->path_len = mark;
	c->path[mark] = '\0';
}

/* " in 'path'" for messages about the mapping being walked, "" at the root. */
static const char *in_path(const struct kiln_yaml_ctx *c, char *buf, size_t cap)
{
	if (c->path_len == 0)
		return "";
	if (snprintf(buf, cap, " in '%s'", c->path) < 0)
		buf[0] = '\0';
	return buf;
}

/* ------------------------------------------------------------ loading */

static kiln_result syntax_error(struct kiln_yaml_ctx *c, const yaml_parser_t *p, kiln_slice in)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return fail_line(c, KILN_ERR_NOMEM, 1, "out of memory while reading YAML");
	case YAML_READER_ERROR:
		return fail_line(c, c->syntax_code, line_at(in, p->problem_offset),
				 "YAML syntax error: %s", problem);
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
	case YAML_COMPOSER_ERROR:
		if (p->context != NULL)
			return fail_line(c, c->syntax_code, (unsigned long)p->problem_mark.line + 1,
					 "YAML syntax error: %s (%s at line %lu)", problem,
					 p->context, (unsigned long)p->context_mark.line + 1);
		return fail_line(c, c->syntax_code, (unsigned long)p->problem_mark.line + 1,
				 "YAML syntax error: %s", problem);
	default:
		return fail_line(c, c->syntax_code, 1, "YAML syntax error: %s", problem);
	}
}

/* Refuses what the document API would hide: anchors, aliases, tags, depth, more documents. */
static kiln_result scan_event(struct kiln_yaml_ctx *c, const yaml_event_t *ev, size_t *depth,
			      size_t *docs)
{
	unsigned long line = (unsigned long)ev->start_mark.line + 1;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	char show[KILN_YAML_SHOW_MAX];

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return fail_line(c, c->schema_code, line,
					 "only one YAML document is allowed per file");
		return kiln_ok();
	case YAML_ALIAS_EVENT:
		anchor = ev->data.alias.anchor;
		kiln_yaml_show((const char *)anchor, strlen((const char *)anchor), show);
		return fail_line(c, c->schema_code, line,
				 "YAML aliases are not allowed ('*%s'); write the value out", show);
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		++*depth;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		++*depth;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (KILN_ALWAYS(*depth > 0))
			--*depth;
		return kiln_ok();
	default:
		return kiln_ok();
	}
	if (anchor != NULL) {
		kiln_yaml_show((const char *)anchor, strlen((const char *)anchor), show);
		return fail_line(c, c->schema_code, line,
				 "YAML anchors are not allowed ('&%s'); write the value out", show);
	}
	if (tag != NULL) {
		kiln_yaml_show((const char *)tag, strlen((const char *)tag), show);
		return fail_line(c, c->schema_code, line, "YAML tags are not allowed ('%s')", show);
	}
	if (*depth > KILN_YAML_MAX_DEPTH)
		return fail_line(c, c->schema_code, line, "nested deeper than %d levels",
				 KILN_YAML_MAX_DEPTH);
	return kiln_ok();
}

static kiln_result scan(struct kiln_yaml_ctx *c, kiln_slice in)
{
	size_t depth = 0, docs = 0;
	kiln_result r = kiln_ok();
	yaml_parser_t p;
	yaml_event_t ev;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		return fail_line(c, KILN_ERR_NOMEM, 1, "out of memory while reading YAML");
	yaml_parser_set_input_string(&p, in.ptr, in.len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done && kiln_is_ok(r)) {
		if (!yaml_parser_parse(&p, &ev)) {
			r = syntax_error(c, &p, in);
			break;
		}
		r = scan_event(c, &ev, &depth, &docs);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return r;
}

static const char *node_kind(const yaml_node_t *n);

kiln_result kiln_yaml_prepare(struct kiln_yaml_ctx *c)
{
	const yaml_node_t *root = kiln_yaml_root(c);

	if (root == NULL)
		return fail_line(c, c->schema_code, 1, "the file holds no YAML document");
	if (root->type != YAML_MAPPING_NODE)
		return kiln_yaml_fail(c, root, "the document must be a mapping of keys, got %s",
				      node_kind(root));
	c->n_nodes = (size_t)(c->doc.nodes.top - c->doc.nodes.start);
	c->visited = calloc(c->n_nodes, 1);
	if (c->visited == NULL)
		return fail_line(c, KILN_ERR_NOMEM, 1, "out of memory while reading YAML");
	return kiln_ok();
}

/* The file name goes into one-line messages: no control characters, bounded. */
static void set_file(struct kiln_yaml_ctx *c, const char *file)
{
	size_t n = strnlen(file, sizeof(c->file) - 1), i;

	for (i = 0; i < n; i++)
		c->file[i] = (unsigned char)file[i] >= 0x20 && file[i] != 0x7f ? file[i] : '?';
	c->file[i] = '\0';
}

kiln_result kiln_yaml_load(struct kiln_yaml_ctx *c, kiln_slice in, const char *file,
			   kiln_err syntax_code, kiln_err schema_code, kiln_diag *d)
{
	yaml_parser_t p;
	kiln_result r;

	memset(c, 0, sizeof(*c));
	c->d = d;
	c->syntax_code = syntax_code;
	c->schema_code = schema_code;
	set_file(c, file != NULL ? file : "(input)");
	if (in.len > KILN_POLICY_MAX_BYTES)
		return fail_line(c, KILN_ERR_TOO_BIG, line_at(in, KILN_POLICY_MAX_BYTES),
				 "the file is larger than the %d-byte limit", KILN_POLICY_MAX_BYTES);
	if (in.ptr == NULL || in.len == 0)
		return fail_line(c, schema_code, 1, "the file is empty");
	KILN_GUARD(scan(c, in));
	if (!yaml_parser_initialize(&p))
		return fail_line(c, KILN_ERR_NOMEM, 1, "out of memory while reading YAML");
	yaml_parser_set_input_string(&p, in.ptr, in.len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	if (!yaml_parser_load(&p, &c->doc)) {
		/* libyaml has already freed the partial document. */
		r = syntax_error(c, &p, in);
		yaml_parser_delete(&p);
		return r;
	}
	yaml_parser_delete(&p);
	c->loaded = true;
	return kiln_yaml_prepare(c);
}

void kiln_yaml_cleanup(struct kiln_yaml_ctx *c)
{
	if (c == NULL)
		return;
	if (c->loaded)
		yaml_document_delete(&c->doc);
	c->loaded = false;
	free(c->visited);
	c->visited = NULL;
	c->n_nodes = 0;
}

/* ------------------------------------------------------------ node access */

const yaml_node_t *kiln_yaml_root(struct kiln_yaml_ctx *c)
{
	return c->loaded ? yaml_document_get_root_node(&c->doc) : NULL;
}

static const yaml_node_t *node_at(struct kiln_yaml_ctx *c, int index)
{
	return yaml_document_get_node(&c->doc, index);
}

static bool text_is(const yaml_node_t *n, const char *s, size_t len)
{
	return n != NULL && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

static bool same_text(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->type == YAML_SCALAR_NODE &&
	       text_is(b, (const char *)a->data.scalar.value, a->data.scalar.length);
}

static const yaml_node_t *get_n(struct kiln_yaml_ctx *c, const yaml_node_t *map, const char *key,
				size_t len, const yaml_node_t **key_node)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(c, p->key);

		if (text_is(k, key, len)) {
			if (key_node != NULL)
				*key_node = k;
			return node_at(c, p->value);
		}
	}
	return NULL;
}

const yaml_node_t *kiln_yaml_get(struct kiln_yaml_ctx *c, const yaml_node_t *map, const char *key,
				 const yaml_node_t **key_node)
{
	return get_n(c, map, key, strlen(key), key_node);
}

const yaml_node_t *kiln_yaml_find(struct kiln_yaml_ctx *c, const char *path,
				  const yaml_node_t **key_node)
{
	const yaml_node_t *n = kiln_yaml_root(c), *k = NULL;
	const char *s = path;

	while (n != NULL && *s != '\0') {
		size_t len = strcspn(s, ".[");

		if (len > 0) {
			n = get_n(c, n, s, len, &k);
			s += len;
		}
		while (n != NULL && *s == '[') {
			uint64_t idx;
			char num[24];
			size_t dl = strspn(s + 1, "0123456789");

			if (dl == 0 || dl >= sizeof(num) || s[1 + dl] != ']' ||
			    n->type != YAML_SEQUENCE_NODE)
				return NULL;
			memcpy(num, s + 1, dl);
			num[dl] = '\0';
			if (!kiln_is_ok(kiln_parse_u64(num, SIZE_MAX, &idx)) ||
			    idx >= (uint64_t)(n->data.sequence.items.top - n->data.sequence.items.start))
				return NULL;
			n = node_at(c, n->data.sequence.items.start[idx]);
			k = NULL;
			s += dl + 2;
		}
		if (*s == '.')
			s++;
	}
	if (key_node != NULL)
		*key_node = k;
	return n;
}

/* ------------------------------------------------------------ scalars */

static bool is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return len == 0 || (len == 1 && v[0] == '~') ||
	       (len == 4 && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 ||
			     memcmp(v, "NULL", 4) == 0));
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return is_null(n) ? "null" : "a string";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* Marks a node as walked; a node reached twice came through an alias. */
static kiln_result visit(struct kiln_yaml_ctx *c, const yaml_node_t *n)
{
	size_t i;

	if (KILN_NEVER(n == NULL || n < c->doc.nodes.start || n >= c->doc.nodes.top))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: node outside the document");
	i = (size_t)(n - c->doc.nodes.start);
	if (i >= c->n_nodes || c->visited[i])
		return kiln_yaml_fail(c, n, "'%s' reuses a node (YAML aliases are not allowed)",
				      c->path);
	c->visited[i] = 1;
	return kiln_ok();
}

static void names_join(const struct kiln_yaml_name *names, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (const struct kiln_yaml_name *nm = names; nm->name != NULL; nm++) {
		int w = snprintf(out + n, cap - n, "%s%s", n > 0 ? ", " : "", nm->name);

		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

static const struct kiln_yaml_name *name_find(const struct kiln_yaml_name *names,
					      const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE)
		return NULL;
	for (const struct kiln_yaml_name *nm = names; nm->name != NULL; nm++)
		if (text_is(n, nm->name, strlen(nm->name)))
			return nm;
	return NULL;
}

static kiln_result must_be_one_of(struct kiln_yaml_ctx *c, const yaml_node_t *n,
				  const struct kiln_yaml_name *names)
{
	char list[256];

	names_join(names, list, sizeof(list));
	return kiln_yaml_fail(c, n, "'%s' must be one of %s", c->path, list);
}

/*
 * Index of the first character a string may not hold, or len: C0 controls
 * (a newline only if allowed), DEL, C1 controls, the Unicode line and
 * paragraph separators (a YAML reader folds U+0085, U+2028 and U+2029 like
 * newlines, so they would not survive a round trip) and the bidirectional
 * formatting characters, which make text read differently from what it is.
 */
static size_t refused_char(const unsigned char *s, size_t len, bool newline_ok)
{
	for (size_t i = 0; i < len; i++) {
		if ((s[i] < 0x20 && !(s[i] == '\n' && newline_ok)) || s[i] == 0x7f)
			return i;
		if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
			return i;
		if (s[i] == 0xe2 && i + 2 < len &&
		    ((s[i + 1] == 0x80 && (s[i + 2] == 0x8e || s[i + 2] == 0x8f ||
					   (s[i + 2] >= 0xa8 && s[i + 2] <= 0xae))) ||
		     (s[i + 1] == 0x81 && s[i + 2] >= 0xa6 && s[i + 2] <= 0xa9)))
			return i;
	}
	return len;
}

/* A string scalar: not null, no control characters (newlines only if allowed). */
static kiln_result text_of(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			   const yaml_node_t *n, const char **s, size_t *len)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return kiln_yaml_fail(c, n, "'%s' must be a string, got %s", c->path, node_kind(n));
	*s = (const char *)n->data.scalar.value;
	*len = n->data.scalar.length;
	if (refused_char(n->data.scalar.value, *len, f->flags & KILN_Y_MULTILINE) < *len)
		return kiln_yaml_fail(c, n, "'%s' must not contain control characters", c->path);
	if (*len == 0 && (f->flags & KILN_Y_NONEMPTY))
		return kiln_yaml_fail(c, n, "'%s' must not be empty", c->path);
	if (f->names != NULL && name_find(f->names, n) == NULL)
		return must_be_one_of(c, n, f->names);
	return kiln_ok();
}

static kiln_result store_str(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			     const yaml_node_t *n, uint8_t *dst)
{
	const char *s;
	size_t len;

	KILN_GUARD(text_of(c, f, n, &s, &len));
	if (len >= f->size)
		return kiln_yaml_fail(c, n, "'%s' is too long (%zu bytes; at most %zu)", c->path,
				      len, f->size - 1);
	memset(dst, 0, f->size);
	memcpy(dst, s, len);
	return kiln_ok();
}

static kiln_result store_str_heap(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
				  const yaml_node_t *n, uint8_t *dst)
{
	const char *s;
	char *copy, *old;
	size_t len;

	KILN_GUARD(text_of(c, f, n, &s, &len));
	if (len > f->size)
		return kiln_yaml_fail(c, n, "'%s' is too long (%zu bytes; at most %zu)", c->path,
				      len, f->size);
	copy = malloc(len + 1);
	if (copy == NULL)
		return fail_line(c, KILN_ERR_NOMEM, kiln_yaml_line(n), "out of memory");
	memcpy(copy, s, len);
	copy[len] = '\0';
	memcpy(&old, dst, sizeof(old));
	free(old);
	memcpy(dst, &copy, sizeof(copy));
	return kiln_ok();
}

/*
 * A plain (unquoted) decimal integer in [lo, hi]. Leading zeros are refused
 * because YAML 1.1 readers take "010" for octal 8: the file must mean the same
 * to every reader. what is the noun for messages ("'x'" or "keys in 'x'").
 */
static kiln_result parse_uint(struct kiln_yaml_ctx *c, const yaml_node_t *n, const char *what,
			      uint64_t lo, uint64_t hi, uint64_t *out)
{
	char num[24], show[KILN_YAML_SHOW_MAX];
	size_t len, digits;
	const char *s;
	uint64_t v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    is_null(n))
		return kiln_yaml_fail(c, n, "%s must be an integer, got %s", what, node_kind(n));
	s = (const char *)n->data.scalar.value;
	len = n->data.scalar.length;
	digits = strspn(s[0] == '-' || s[0] == '+' ? s + 1 : s, "0123456789");
	if (digits == 0 || digits + (s[0] == '-' || s[0] == '+') != len)
		return kiln_yaml_fail(c, n, "%s must be an integer, got %s", what, node_kind(n));
	kiln_yaml_show(s, len, show);
	if (s[0] == '+' || (s[0] == '0' && len > 1))
		return kiln_yaml_fail(c, n, "%s must be a plain decimal integer, got '%s'", what,
				      show);
	if (s[0] == '-' || len >= sizeof(num)) {
		v = UINT64_MAX;
	} else {
		memcpy(num, s, len);
		num[len] = '\0';
		if (!kiln_is_ok(kiln_parse_u64(num, UINT64_MAX, &v)))
			v = UINT64_MAX;
	}
	if (s[0] == '-' || v < lo || v > hi) {
		if (lo == hi)
			return kiln_yaml_fail(c, n, "%s must be %llu, got %s", what,
					      (unsigned long long)lo, show);
		return kiln_yaml_fail(c, n, "%s must be between %llu and %llu, got %s", what,
				      (unsigned long long)lo, (unsigned long long)hi, show);
	}
	*out = v;
	return kiln_ok();
}

static kiln_result store_uint(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			      const yaml_node_t *n, uint8_t *dst)
{
	char what[KILN_YAML_PATH_MAX + 4];
	uint64_t v;
	unsigned u;

	if (KILN_NEVER(f->size != sizeof(unsigned) || f->max > UINT_MAX))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema for '%s'",
				 c->path);
	if (snprintf(what, sizeof(what), "'%s'", c->path) < 0)
		what[0] = '\0';
	KILN_GUARD(parse_uint(c, n, what, f->min, f->max, &v));
	u = (unsigned)v;
	memcpy(dst, &u, sizeof(u));
	return kiln_ok();
}

static kiln_result store_enum(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			      const yaml_node_t *n, uint8_t *dst)
{
	const struct kiln_yaml_name *nm = name_find(f->names, n);

	if (KILN_NEVER(f->size != sizeof(unsigned)))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema for '%s'",
				 c->path);
	if (nm == NULL)
		return must_be_one_of(c, n, f->names);
	memcpy(dst, &nm->value, sizeof(nm->value));
	return kiln_ok();
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static kiln_result store_hex(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			     const yaml_node_t *n, uint8_t *dst)
{
	const unsigned char *s;
	size_t len;

	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return kiln_yaml_fail(c, n, "'%s' must be %zu hex digits, got %s", c->path,
				      2 * f->size, node_kind(n));
	s = n->data.scalar.value;
	len = n->data.scalar.length;
	if (len != 2 * f->size)
		return kiln_yaml_fail(c, n, "'%s' must be %zu hex digits, got %zu characters",
				      c->path, 2 * f->size, len);
	for (size_t i = 0; i < len; i++)
		if (hexval(s[i]) < 0)
			return kiln_yaml_fail(c, n, "'%s' must be %zu hex digits (0-9, a-f)",
					      c->path, 2 * f->size);
	for (size_t i = 0; i < f->size; i++)
		dst[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	return kiln_ok();
}

/* ------------------------------------------------------------ collections */

static kiln_result walk_value(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			      const yaml_node_t *key, const yaml_node_t *n, uint8_t *base);
static kiln_result walk_map(struct kiln_yaml_ctx *c, const struct kiln_yaml_map *m,
			    const yaml_node_t *key, const yaml_node_t *map, uint8_t *base);

static size_t items_of(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static kiln_result too_many(struct kiln_yaml_ctx *c, const yaml_node_t *at, uint64_t max)
{
	return kiln_yaml_fail(c, at, "'%s' has more than %llu entries", c->path,
			      (unsigned long long)max);
}

/* at: the key that holds the collection when there is one (an empty block collection starts later). */
static kiln_result too_few(struct kiln_yaml_ctx *c, const yaml_node_t *at, uint64_t min)
{
	if (min == 1)
		return kiln_yaml_fail(c, at, "'%s' must not be empty", c->path);
	return kiln_yaml_fail(c, at, "'%s' needs at least %llu entries", c->path,
			      (unsigned long long)min);
}

/* Refuses item i if it repeats an earlier scalar item of the same sequence. */
static kiln_result unique_item(struct kiln_yaml_ctx *c, const yaml_node_t *seq, size_t i)
{
	const yaml_node_t *it = node_at(c, seq->data.sequence.items.start[i]);
	char show[KILN_YAML_SHOW_MAX];

	if (it == NULL || it->type != YAML_SCALAR_NODE)
		return kiln_ok();
	for (size_t j = 0; j < i; j++) {
		const yaml_node_t *prev = node_at(c, seq->data.sequence.items.start[j]);

		if (prev != NULL && same_text(it, prev)) {
			kiln_yaml_show((const char *)it->data.scalar.value, it->data.scalar.length,
				       show);
			return kiln_yaml_fail(c, it, "duplicate entry '%s' in '%s' (first at line %lu)",
					      show, c->path, kiln_yaml_line(prev));
		}
	}
	return kiln_ok();
}

static kiln_result walk_flags(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			      const yaml_node_t *key, const yaml_node_t *n, uint8_t *dst)
{
	unsigned bits = 0;
	size_t count = items_of(n);

	if (KILN_NEVER(f->size != sizeof(unsigned)))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema for '%s'",
				 c->path);
	/* Every item is a distinct known name, so the loop ends after few items. */
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *it = node_at(c, n->data.sequence.items.start[i]);
		const struct kiln_yaml_name *nm;
		size_t mark;

		KILN_GUARD(visit(c, it));
		KILN_GUARD(unique_item(c, n, i));
		mark = path_push_index(c, i);
		nm = name_find(f->names, it);
		if (nm == NULL)
			return must_be_one_of(c, it, f->names);
		path_pop(c, mark);
		bits |= nm->value;
	}
	if (count < f->min)
		return too_few(c, key != NULL ? key : n, f->min);
	memcpy(dst, &bits, sizeof(bits));
	return kiln_ok();
}

static kiln_result walk_list(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			     const yaml_node_t *key, const yaml_node_t *n, uint8_t *base)
{
	size_t count = items_of(n), done = 0;

	memset(base + f->off, 0, f->size * f->max);
	memcpy(base + f->count_off, &done, sizeof(done));
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *it = node_at(c, n->data.sequence.items.start[i]);
		size_t mark;

		if (i >= f->max)
			return too_many(c, it, f->max);
		if (f->flags & KILN_Y_UNIQUE)
			KILN_GUARD(unique_item(c, n, i));
		mark = path_push_index(c, i);
		KILN_GUARD(walk_value(c, f->elem, NULL, it, base + f->off + i * f->size));
		path_pop(c, mark);
		done = i + 1;
		memcpy(base + f->count_off, &done, sizeof(done));
	}
	if (count < f->min)
		return too_few(c, key != NULL ? key : n, f->min);
	return kiln_ok();
}

/* Key i of a mapping: a scalar that no earlier key of the same mapping repeats. */
static kiln_result check_key(struct kiln_yaml_ctx *c, const yaml_node_t *map, size_t i,
			     const yaml_node_t *k)
{
	char show[KILN_YAML_SHOW_MAX], where[KILN_YAML_PATH_MAX + 8];

	KILN_GUARD(visit(c, k));
	if (k->type != YAML_SCALAR_NODE)
		return kiln_yaml_fail(c, k, "keys%s must be strings, got %s",
				      in_path(c, where, sizeof(where)), node_kind(k));
	for (size_t j = 0; j < i; j++) {
		const yaml_node_t *prev = node_at(c, map->data.mapping.pairs.start[j].key);

		if (prev != NULL && same_text(k, prev)) {
			kiln_yaml_show((const char *)k->data.scalar.value, k->data.scalar.length,
				       show);
			return kiln_yaml_fail(c, k, "duplicate key '%s'%s (first at line %lu)", show,
					      in_path(c, where, sizeof(where)),
					      kiln_yaml_line(prev));
		}
	}
	return kiln_ok();
}

static kiln_result unknown_key(struct kiln_yaml_ctx *c, const yaml_node_t *k, const char *allowed)
{
	char show[KILN_YAML_SHOW_MAX], where[KILN_YAML_PATH_MAX + 8];

	kiln_yaml_show((const char *)k->data.scalar.value, k->data.scalar.length, show);
	return kiln_yaml_fail(c, k, "unknown key '%s'%s (allowed: %s)", show,
			      in_path(c, where, sizeof(where)), allowed);
}

static kiln_result dict_key(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			    const yaml_node_t *k, uint8_t *entry)
{
	const struct kiln_yaml_field *kf = f->dict_key;
	char list[256], what[KILN_YAML_PATH_MAX + 16];
	uint64_t v;
	unsigned u;

	if (kf->kind == KILN_Y_UINT) {
		if (KILN_NEVER(kf->size != sizeof(unsigned) || kf->max > UINT_MAX))
			return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema");
		if (snprintf(what, sizeof(what), "keys in '%s'", c->path) < 0)
			what[0] = '\0';
		KILN_GUARD(parse_uint(c, k, what, kf->min, kf->max, &v));
		u = (unsigned)v;
		memcpy(entry + kf->off, &u, sizeof(u));
		return kiln_ok();
	}
	if (KILN_NEVER(kf->kind != KILN_Y_STR || kf->names == NULL))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema");
	names_join(kf->names, list, sizeof(list));
	if (name_find(kf->names, k) == NULL || k->data.scalar.length >= kf->size)
		return unknown_key(c, k, list);
	memset(entry + kf->off, 0, kf->size);
	memcpy(entry + kf->off, k->data.scalar.value, k->data.scalar.length);
	return kiln_ok();
}

static kiln_result walk_dict(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			     const yaml_node_t *key, const yaml_node_t *n, uint8_t *base)
{
	const yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
	size_t count = (size_t)(n->data.mapping.pairs.top - pairs), done = 0;

	memset(base + f->off, 0, f->size * f->max);
	memcpy(base + f->count_off, &done, sizeof(done));
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *k = node_at(c, pairs[i].key), *v = node_at(c, pairs[i].value);
		uint8_t *entry = base + f->off + i * f->size;
		size_t mark;

		if (KILN_NEVER(k == NULL || v == NULL))
			return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: broken pair");
		if (i >= f->max)
			return too_many(c, k, f->max);
		KILN_GUARD(check_key(c, n, i, k));
		KILN_GUARD(dict_key(c, f, k, entry));
		/* The key passed dict_key: a known name or digits, safe in a path. */
		mark = path_push(c, (const char *)k->data.scalar.value);
		KILN_GUARD(walk_value(c, f->elem, k, v, entry));
		path_pop(c, mark);
		done = i + 1;
		memcpy(base + f->count_off, &done, sizeof(done));
	}
	if (count < f->min)
		return too_few(c, key != NULL ? key : n, f->min);
	return kiln_ok();
}

static kiln_result expect_type(struct kiln_yaml_ctx *c, const yaml_node_t *n, yaml_node_type_t t)
{
	if (n->type == t)
		return kiln_ok();
	return kiln_yaml_fail(c, n, "'%s' must be %s, got %s", c->path,
			      t == YAML_MAPPING_NODE ? "a mapping" : "a list", node_kind(n));
}

static kiln_result walk_value(struct kiln_yaml_ctx *c, const struct kiln_yaml_field *f,
			      const yaml_node_t *key, const yaml_node_t *n, uint8_t *base)
{
	uint8_t *dst = base + f->off;

	KILN_GUARD(visit(c, n));
	switch (f->kind) {
	case KILN_Y_STR:
		KILN_GUARD(store_str(c, f, n, dst));
		break;
	case KILN_Y_STR_HEAP:
		KILN_GUARD(store_str_heap(c, f, n, dst));
		break;
	case KILN_Y_UINT:
		KILN_GUARD(store_uint(c, f, n, dst));
		break;
	case KILN_Y_ENUM:
		KILN_GUARD(store_enum(c, f, n, dst));
		break;
	case KILN_Y_HEX:
		KILN_GUARD(store_hex(c, f, n, dst));
		break;
	case KILN_Y_FLAGS:
		KILN_GUARD(expect_type(c, n, YAML_SEQUENCE_NODE));
		KILN_GUARD(walk_flags(c, f, key, n, dst));
		break;
	case KILN_Y_MAP:
		KILN_GUARD(expect_type(c, n, YAML_MAPPING_NODE));
		KILN_GUARD(walk_map(c, f->sub, key, n, dst));
		break;
	case KILN_Y_LIST:
		KILN_GUARD(expect_type(c, n, YAML_SEQUENCE_NODE));
		KILN_GUARD(walk_list(c, f, key, n, base));
		break;
	case KILN_Y_DICT:
		KILN_GUARD(expect_type(c, n, YAML_MAPPING_NODE));
		KILN_GUARD(walk_dict(c, f, key, n, base));
		break;
	default:
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: bad schema for '%s'",
				 c->path);
	}
	if (f->check != NULL)
		KILN_GUARD(f->check(c, n, dst));
	return kiln_ok();
}

static const struct kiln_yaml_field *field_find(const struct kiln_yaml_map *m,
						const yaml_node_t *k, size_t *idx)
{
	for (size_t i = 0; i < m->n_fields; i++) {
		if (text_is(k, m->fields[i].key, strlen(m->fields[i].key))) {
			*idx = i;
			return &m->fields[i];
		}
	}
	return NULL;
}

static kiln_result walk_map(struct kiln_yaml_ctx *c, const struct kiln_yaml_map *m,
			    const yaml_node_t *key, const yaml_node_t *map, uint8_t *base)
{
	const yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
	size_t count = (size_t)(map->data.mapping.pairs.top - pairs);
	char where[KILN_YAML_PATH_MAX + 8];
	uint32_t seen = 0;

	if (KILN_NEVER(m->n_fields > 32))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: schema too wide");
	/*
	 * Every key before pair i is a distinct known field (an unknown or
	 * repeated key fails at once), so the duplicate scan stays short.
	 */
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *k = node_at(c, pairs[i].key), *v = node_at(c, pairs[i].value);
		const struct kiln_yaml_field *f;
		size_t idx = 0, mark;

		if (KILN_NEVER(k == NULL || v == NULL))
			return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: broken pair");
		KILN_GUARD(check_key(c, map, i, k));
		f = field_find(m, k, &idx);
		if (f == NULL) {
			char list[320];
			size_t n = 0;

			list[0] = '\0';
			for (size_t j = 0; j < m->n_fields; j++) {
				int w = snprintf(list + n, sizeof(list) - n, "%s%s", j ? ", " : "",
						 m->fields[j].key);

				if (w < 0 || (size_t)w >= sizeof(list) - n)
					break;
				n += (size_t)w;
			}
			return unknown_key(c, k, list);
		}
		mark = path_push(c, f->key);
		KILN_GUARD(walk_value(c, f, k, v, base));
		path_pop(c, mark);
		seen |= 1u << idx;
	}
	for (size_t i = 0; i < m->n_fields; i++)
		if ((m->fields[i].flags & KILN_Y_REQUIRED) && !(seen & (1u << i)))
			return kiln_yaml_fail(c, key != NULL ? key : map,
					      "missing required key '%s'%s", m->fields[i].key,
					      in_path(c, where, sizeof(where)));
	if (m->check != NULL)
		KILN_GUARD(m->check(c, map, base));
	return kiln_ok();
}

kiln_result kiln_yaml_walk(struct kiln_yaml_ctx *c, const struct kiln_yaml_map *m, void *base)
{
	const yaml_node_t *root = kiln_yaml_root(c);

	if (KILN_NEVER(root == NULL || c->visited == NULL))
		return fail_line(c, KILN_ERR_INTERNAL, 1, "internal error: no document loaded");
	path_pop(c, 0);
	KILN_GUARD(visit(c, root));
	return walk_map(c, m, NULL, root, base);
}
