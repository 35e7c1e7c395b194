/*
 * The schema walker (src/policy/yaml.c) against a small schema of its own that
 * uses every kind of field, so each error path is checked with its exact
 * message and line, independently of the policy and config schemas.
 */
#include "support/support.h"

#include "policy/yaml_schema.h"

#include <stdlib.h>
#include <string.h>

struct t_item {
	char name[8];
	unsigned n;
};

struct t_entry {
	char key[8];
	unsigned idx;
	uint8_t hex[2];
	char val[8];
};

struct t_doc {
	char s[8];
	char *heap;
	unsigned u;
	unsigned one;
	unsigned e;
	unsigned flags;
	uint8_t hex[4];
	char inner[8];
	struct t_item items[2];
	size_t n_items;
	char words[3][8];
	size_t n_words;
	struct t_entry dict[2];
	size_t n_dict;
	struct t_entry idict[3];
	size_t n_idict;
	char req[8];
	int checked; /* how often the map check ran */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SZ(type, m) sizeof(((type *)0)->m)
#define AT(type, m) .off = offsetof(type, m), .size = SZ(type, m)
#define LIST_AT(type, m, cnt)                                                            \
	.off = offsetof(type, m), .size = SZ(type, m[0]), .count_off = offsetof(type, cnt), \
	.max = N(((type *)0)->m)

static const struct kiln_yaml_name colours[] = { { "red", 1 }, { "green", 2 }, { NULL, 0 } };
static const struct kiln_yaml_name letters[] = { { "a", 1 }, { "b", 2 }, { "c", 4 }, { NULL, 0 } };
static const struct kiln_yaml_name xyz[] = { { "x", 0 }, { "y", 0 }, { "z", 0 }, { NULL, 0 } };

static const struct kiln_yaml_field inner_fields[] = {
	{ .key = "inner", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED, AT(struct t_doc, inner) },
};
static const struct kiln_yaml_map inner_map = { inner_fields, N(inner_fields), NULL };

static const struct kiln_yaml_field item_fields[] = {
	{ .key = "name", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED, AT(struct t_item, name) },
	{ .key = "n", .kind = KILN_Y_UINT, AT(struct t_item, n), .min = 0, .max = 9 },
};
static const struct kiln_yaml_map item_map = { item_fields, N(item_fields), NULL };
static const struct kiln_yaml_field item_elem = { .key = "item", .kind = KILN_Y_MAP, .sub = &item_map };
static const struct kiln_yaml_field word_elem = { .key = "word", .kind = KILN_Y_STR, .size = 8 };

static const struct kiln_yaml_field dict_key = { .key = "k", .kind = KILN_Y_STR,
						 AT(struct t_entry, key), .names = xyz };
static const struct kiln_yaml_field dict_val = { .key = "v", .kind = KILN_Y_STR,
						 AT(struct t_entry, val) };
static const struct kiln_yaml_field idict_key = { .key = "i", .kind = KILN_Y_UINT,
						  AT(struct t_entry, idx), .min = 0, .max = 7 };
static const struct kiln_yaml_field idict_val = { .key = "h", .kind = KILN_Y_HEX,
						  AT(struct t_entry, hex) };

static kiln_result check_doc(struct kiln_yaml_ctx *c, const yaml_node_t *map, void *base)
{
	struct t_doc *t = base;

	t->checked++;
	if (strcmp(t->req, "bad") == 0)
		return kiln_yaml_fail_at(c, "req", "'req' must not be bad");
	(void)map;
	return kiln_ok();
}

static kiln_result check_s(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	if (strcmp(dst, "nope") == 0)
		return kiln_yaml_fail(c, n, "'%s' says nope", kiln_yaml_path(c));
	return kiln_ok();
}

static const struct kiln_yaml_field doc_fields[] = {
	{ .key = "s", .kind = KILN_Y_STR, .flags = KILN_Y_NONEMPTY, AT(struct t_doc, s),
	  .check = check_s },
	{ .key = "heap", .kind = KILN_Y_STR_HEAP, .flags = KILN_Y_MULTILINE,
	  .off = offsetof(struct t_doc, heap), .size = 16 },
	{ .key = "u", .kind = KILN_Y_UINT, AT(struct t_doc, u), .min = 1, .max = 100 },
	{ .key = "one", .kind = KILN_Y_UINT, AT(struct t_doc, one), .min = 1, .max = 1 },
	{ .key = "e", .kind = KILN_Y_ENUM, AT(struct t_doc, e), .names = colours },
	{ .key = "flags", .kind = KILN_Y_FLAGS, AT(struct t_doc, flags), .min = 1, .names = letters },
	{ .key = "hex", .kind = KILN_Y_HEX, AT(struct t_doc, hex) },
	{ .key = "m", .kind = KILN_Y_MAP, .sub = &inner_map },
	{ .key = "items", .kind = KILN_Y_LIST, LIST_AT(struct t_doc, items, n_items), .min = 1,
	  .elem = &item_elem },
	{ .key = "words", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(struct t_doc, words, n_words), .elem = &word_elem },
	{ .key = "dict", .kind = KILN_Y_DICT, LIST_AT(struct t_doc, dict, n_dict),
	  .elem = &dict_val, .dict_key = &dict_key },
	{ .key = "idict", .kind = KILN_Y_DICT, LIST_AT(struct t_doc, idict, n_idict), .min = 2,
	  .elem = &idict_val, .dict_key = &idict_key },
	{ .key = "req", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED, AT(struct t_doc, req) },
};
static const struct kiln_yaml_map doc_map = { doc_fields, N(doc_fields), check_doc };

static kiln_result run_n(const char *yaml, size_t len, struct t_doc *t, kiln_diag *d)
{
	struct kiln_yaml_ctx c;
	kiln_result r;

	memset(t, 0, sizeof(*t));
	kiln_diag_clear(d);
	r = kiln_yaml_load(&c, kiln_slice_of(yaml, len), "t.yaml", KILN_ERR_POLICY_SYNTAX,
			   KILN_ERR_POLICY_SCHEMA, d);
	if (kiln_is_ok(r))
		r = kiln_yaml_walk(&c, &doc_map, t);
	kiln_yaml_cleanup(&c);
	free(t->heap);
	t->heap = NULL;
	return r;
}

static kiln_result run(const char *yaml, struct t_doc *t, kiln_diag *d)
{
	return run_n(yaml, strlen(yaml), t, d);
}

/* Parses yaml, expects failure with code and the exact message. */
static void expect(const char *yaml, kiln_err code, const char *msg)
{
	struct t_doc t;
	kiln_diag d;
	kiln_result r = run(yaml, &t, &d);

	if (r.code != code || strcmp(d.text, msg) != 0)
		print_error("input:\n%s\ngot %d '%s'\nwant %d '%s'\n", yaml, r.code, d.text, code, msg);
	assert_int_equal(r.code, code);
	assert_int_equal(d.code, code);
	assert_string_equal(d.text, msg);
}

#define SCHEMA KILN_ERR_POLICY_SCHEMA
#define SYNTAX KILN_ERR_POLICY_SYNTAX

static void test_full_document(void **state)
{
	static const char yaml[] =
		"# comment\n"
		"s: hello\n"
		"heap: \"two\\nlines\"\n"
		"u: 100\n"
		"one: 1\n"
		"e: green\n"
		"flags: [a, c]\n"
		"hex: AaBb0019\n"
		"m:\n"
		"  inner: in\n"
		"items:\n"
		"  - name: first\n"
		"    n: 0\n"
		"  - {name: second, n: 9}\n"
		"words: [x, 'y', \"z\"]\n"
		"dict: {z: last, x: first}\n"
		"idict:\n"
		"  7: '0a0B'\n"
		"  0: \"ffff\"\n"
		"req: \"\"\n";
	struct kiln_yaml_ctx c;
	struct t_doc t;
	kiln_diag d;

	(void)state;
	memset(&t, 0, sizeof(t));
	kiln_diag_clear(&d);
	KT_OK(kiln_yaml_load(&c, kiln_slice_str(yaml), "t.yaml", SYNTAX, SCHEMA, &d));
	KT_OK(kiln_yaml_walk(&c, &doc_map, &t));
	assert_string_equal(t.s, "hello");
	assert_string_equal(t.heap, "two\nlines");
	assert_int_equal(t.u, 100);
	assert_int_equal(t.one, 1);
	assert_int_equal(t.e, 2);
	assert_int_equal(t.flags, 5);
	assert_memory_equal(t.hex, "\xaa\xbb\x00\x19", 4);
	assert_string_equal(t.inner, "in");
	assert_int_equal(t.n_items, 2);
	assert_string_equal(t.items[0].name, "first");
	assert_int_equal(t.items[0].n, 0);
	assert_string_equal(t.items[1].name, "second");
	assert_int_equal(t.items[1].n, 9);
	assert_int_equal(t.n_words, 3);
	assert_string_equal(t.words[2], "z");
	assert_int_equal(t.n_dict, 2);
	assert_string_equal(t.dict[0].key, "z");
	assert_string_equal(t.dict[0].val, "last");
	assert_string_equal(t.dict[1].key, "x");
	assert_int_equal(t.n_idict, 2);
	assert_int_equal(t.idict[0].idx, 7);
	assert_memory_equal(t.idict[0].hex, "\x0a\x0b", 2);
	assert_int_equal(t.idict[1].idx, 0);
	assert_string_equal(t.req, "");
	assert_int_equal(t.checked, 1);
	assert_int_equal(d.code, KILN_OK);

	/* Lookups used by cross-field checks. */
	assert_int_equal(kiln_yaml_line(kiln_yaml_find(&c, "items[1].n", NULL)), 14);
	assert_int_equal(kiln_yaml_line(kiln_yaml_find(&c, "idict.0", NULL)), 19);
	{
		const yaml_node_t *key = NULL;

		assert_non_null(kiln_yaml_find(&c, "m.inner", &key));
		assert_int_equal(kiln_yaml_line(key), 10);
		assert_non_null(kiln_yaml_find(&c, "m", &key));
		assert_int_equal(kiln_yaml_line(key), 9);
	}
	assert_null(kiln_yaml_find(&c, "items[2]", NULL));
	assert_null(kiln_yaml_find(&c, "items[x]", NULL));
	assert_null(kiln_yaml_find(&c, "items[1", NULL));
	assert_null(kiln_yaml_find(&c, "s[0]", NULL));
	assert_null(kiln_yaml_find(&c, "nothere", NULL));
	assert_null(kiln_yaml_find(&c, "m.inner.deeper", NULL));
	assert_int_equal(kiln_yaml_line(NULL), 1);
	assert_int_equal(kiln_yaml_line(kiln_yaml_root(&c)), 2);

	/* fail_at: the key's line, the root's line when the path is absent. */
	KT_ERR(kiln_yaml_fail_at(&c, "dict.x", "x is wrong"), SCHEMA);
	assert_string_equal(d.text, "t.yaml:16: x is wrong");
	kiln_diag_clear(&d);
	KT_ERR(kiln_yaml_fail_at(&c, "nothere", "absent"), SCHEMA);
	assert_string_equal(d.text, "t.yaml:2: absent");
	/* The first error sticks. */
	KT_ERR(kiln_yaml_fail_at(&c, "u", "later"), SCHEMA);
	assert_string_equal(d.text, "t.yaml:2: absent");
	kiln_yaml_cleanup(&c);
	kiln_yaml_cleanup(&c); /* twice is harmless */
	free(t.heap);
}

static void test_minimal_and_checks(void **state)
{
	struct t_doc t;
	kiln_diag d;

	(void)state;
	KT_OK(run("req: x\n", &t, &d));
	assert_int_equal(t.checked, 1);
	expect("req: bad\n", SCHEMA, "t.yaml:1: 'req' must not be bad");
	expect("req: x\ns: nope\n", SCHEMA, "t.yaml:2: 's' says nope");
	/* A map check runs after the keys: a key error comes first. */
	expect("req: bad\nzz: 1\n", SCHEMA,
	       "t.yaml:2: unknown key 'zz' (allowed: s, heap, u, one, e, flags, hex, m, items, "
	       "words, dict, idict, req)");
}

static void test_input_limits(void **state)
{
	struct t_doc t;
	kiln_diag d;
	char *big = malloc(KILN_POLICY_MAX_BYTES + 2);
	size_t i;

	(void)state;
	expect("", SCHEMA, "t.yaml:1: the file is empty");
	KT_ERR(run_n(NULL, 0, &t, &d), SCHEMA);
	expect("# only a comment\n", SCHEMA, "t.yaml:1: the file holds no YAML document");
	expect("\n\n- a\n", SCHEMA, "t.yaml:3: the document must be a mapping of keys, got a list");
	expect("hello\n", SCHEMA, "t.yaml:1: the document must be a mapping of keys, got a string");

	/* 65537 bytes: "req: x\n" then comment lines; the limit falls on line 3. */
	assert_non_null(big);
	memset(big, '#', KILN_POLICY_MAX_BYTES + 1);
	memcpy(big, "req: x\n", 7);
	big[100] = '\n';
	big[KILN_POLICY_MAX_BYTES + 1] = '\0';
	KT_ERR(run_n(big, KILN_POLICY_MAX_BYTES + 1, &t, &d), KILN_ERR_TOO_BIG);
	assert_string_equal(d.text, "t.yaml:3: the file is larger than the 65536-byte limit");
	/* Exactly at the limit is accepted. */
	KT_OK(run_n(big, KILN_POLICY_MAX_BYTES, &t, &d));
	/* A newline after the limit does not count. */
	for (i = KILN_POLICY_MAX_BYTES; i < KILN_POLICY_MAX_BYTES + 1; i++)
		big[i] = '\n';
	KT_ERR(run_n(big, KILN_POLICY_MAX_BYTES + 1, &t, &d), KILN_ERR_TOO_BIG);
	assert_string_equal(d.text, "t.yaml:3: the file is larger than the 65536-byte limit");
	free(big);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	expect("req: x\nitems: [\n", SYNTAX,
	       "t.yaml:3: YAML syntax error: did not find expected node content "
	       "(while parsing a flow node at line 3)");
	expect("req: x\n s: y\n", SYNTAX,
	       "t.yaml:2: YAML syntax error: mapping values are not allowed in this context");
	expect("req: x\ns: \"open\n", SYNTAX,
	       "t.yaml:3: YAML syntax error: found unexpected end of stream "
	       "(while scanning a quoted scalar at line 2)");
	/* Reader errors are reported by offset; the line is computed. */
	expect("req: x\ns: \"a\x01\"\n", SYNTAX,
	       "t.yaml:2: YAML syntax error: control characters are not allowed");
	expect("req: x\n\ns: \xff\n", SYNTAX,
	       "t.yaml:3: YAML syntax error: invalid leading UTF-8 octet");
	/* UTF-16 is not UTF-8. */
	expect("\xff\xfer\0e\0q\0:\0 \0x\0\n\0", SYNTAX,
	       "t.yaml:1: YAML syntax error: invalid leading UTF-8 octet");
}

static void test_anchors_aliases_tags(void **state)
{
	(void)state;
	expect("req: x\ns: &a v\n", SCHEMA,
	       "t.yaml:2: YAML anchors are not allowed ('&a'); write the value out");
	expect("req: x\nm: &node\n  inner: y\n", SCHEMA,
	       "t.yaml:2: YAML anchors are not allowed ('&node'); write the value out");
	expect("req: x\nwords: &w [a]\n", SCHEMA,
	       "t.yaml:2: YAML anchors are not allowed ('&w'); write the value out");
	/* An alias without its anchor is still an alias. */
	expect("req: x\ns: *a\n", SCHEMA,
	       "t.yaml:2: YAML aliases are not allowed ('*a'); write the value out");
	expect("req: x\ns: !!str v\n", SCHEMA,
	       "t.yaml:2: YAML tags are not allowed ('tag:yaml.org,2002:str')");
	expect("req: x\nm: !custom {inner: y}\n", SCHEMA,
	       "t.yaml:2: YAML tags are not allowed ('!custom')");
	expect("req: x\nwords: !!seq [a]\n", SCHEMA,
	       "t.yaml:2: YAML tags are not allowed ('tag:yaml.org,2002:seq')");
	expect("req: x\n---\nreq: y\n", SCHEMA, "t.yaml:2: only one YAML document is allowed per file");
	/* Billion laughs never gets past the first anchor. */
	expect("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", SCHEMA,
	       "t.yaml:1: YAML anchors are not allowed ('&a'); write the value out");
}

/*
 * A document built by hand that shares a node, as an alias does in libyaml's
 * document model: the walker's visit map refuses it even without the event
 * scan.
 */
static void test_node_reached_twice(void **state)
{
	struct kiln_yaml_ctx c;
	yaml_mark_t mark = { 0, 4, 0 };
	struct t_doc t;
	kiln_diag d;
	int root, k1, k2, v;

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(&t, 0, sizeof(t));
	kiln_diag_clear(&d);
	snprintf(c.file, sizeof(c.file), "hand.yaml");
	c.d = &d;
	c.syntax_code = SYNTAX;
	c.schema_code = SCHEMA;
	assert_true(yaml_document_initialize(&c.doc, NULL, NULL, NULL, 1, 1));
	c.loaded = true;
	root = yaml_document_add_mapping(&c.doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	k1 = yaml_document_add_scalar(&c.doc, NULL, (yaml_char_t *)"req", 3, YAML_PLAIN_SCALAR_STYLE);
	k2 = yaml_document_add_scalar(&c.doc, NULL, (yaml_char_t *)"s", 1, YAML_PLAIN_SCALAR_STYLE);
	v = yaml_document_add_scalar(&c.doc, NULL, (yaml_char_t *)"v", 1, YAML_PLAIN_SCALAR_STYLE);
	assert_true(root > 0 && k1 > 0 && k2 > 0 && v > 0);
	c.doc.nodes.start[v - 1].start_mark = mark;
	assert_true(yaml_document_append_mapping_pair(&c.doc, root, k1, v));
	assert_true(yaml_document_append_mapping_pair(&c.doc, root, k2, v));
	KT_OK(kiln_yaml_prepare(&c));
	KT_ERR(kiln_yaml_walk(&c, &doc_map, &t), SCHEMA);
	assert_string_equal(d.text, "hand.yaml:5: 's' reuses a node (YAML aliases are not allowed)");
	kiln_yaml_cleanup(&c);
}

static void test_depth(void **state)
{
	char yaml[128];
	struct t_doc t;
	kiln_diag d;

	(void)state;
	/* The root is level 1: eleven brackets make twelve levels, allowed. */
	snprintf(yaml, sizeof(yaml), "req: x\n\nwords: [[[[[[[[[[[a]]]]]]]]]]]\n");
	KT_ERR(run(yaml, &t, &d), SCHEMA);
	assert_string_equal(d.text, "t.yaml:3: 'words[0]' must be a string, got a list");
	snprintf(yaml, sizeof(yaml), "req: x\n\nwords: [[[[[[[[[[[[a]]]]]]]]]]]]\n");
	expect(yaml, SCHEMA, "t.yaml:3: nested deeper than 12 levels");
	/* Block style counts the same. */
	expect("req: x\nm:\n a:\n  b:\n   c:\n    d:\n     e:\n      f:\n       g:\n        h:\n"
	       "         i:\n          j:\n           k:\n            l: 1\n",
	       SCHEMA, "t.yaml:14: nested deeper than 12 levels");
}

static void test_keys(void **state)
{
	(void)state;
	expect("req: x\ncolour: blue\n", SCHEMA,
	       "t.yaml:2: unknown key 'colour' (allowed: s, heap, u, one, e, flags, hex, m, items, "
	       "words, dict, idict, req)");
	expect("req: x\nm:\n  inner: a\n  outer: b\n", SCHEMA,
	       "t.yaml:4: unknown key 'outer' in 'm' (allowed: inner)");
	expect("req: x\nitems:\n  - name: a\n    nn: 1\n", SCHEMA,
	       "t.yaml:4: unknown key 'nn' in 'items[0]' (allowed: name, n)");
	expect("req: a\n\nreq: b\n", SCHEMA, "t.yaml:3: duplicate key 'req' (first at line 1)");
	expect("req: x\nm: {inner: a,\n    inner: b}\n", SCHEMA,
	       "t.yaml:3: duplicate key 'inner' in 'm' (first at line 2)");
	/* Keys compare by value, whatever their quoting. */
	expect("req: a\n'req': b\n", SCHEMA, "t.yaml:2: duplicate key 'req' (first at line 1)");
	expect("req: x\n? [a]\n: b\n", SCHEMA, "t.yaml:2: keys must be strings, got a list");
	expect("req: x\nm:\n  ? {a: 1}\n  : b\n", SCHEMA,
	       "t.yaml:3: keys in 'm' must be strings, got a mapping");
	/* Untrusted text in messages: printable ASCII only, cut at 40 bytes. */
	expect("req: x\n\"a\\nb\\u00e9\": 1\n", SCHEMA,
	       "t.yaml:2: unknown key 'a?b?" "?' (allowed: s, heap, u, one, e, flags, hex, m, items, "
	       "words, dict, idict, req)");
	expect("req: x\nm:\n  aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeee: 1\n", SCHEMA,
	       "t.yaml:3: unknown key 'aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd...' in 'm' "
	       "(allowed: inner)");
}

static void test_missing_required(void **state)
{
	(void)state;
	expect("\n# c\ns: abc\n", SCHEMA, "t.yaml:3: missing required key 'req'");
	/* Inside a mapping: the line of the key that holds it. */
	expect("req: x\nm:\n\n  {}\n", SCHEMA, "t.yaml:2: missing required key 'inner' in 'm'");
	/* In a list item: the item's line. */
	expect("req: x\nitems:\n  - n: 1\n", SCHEMA,
	       "t.yaml:3: missing required key 'name' in 'items[0]'");
	expect("req: x\nitems:\n  - name: a\n  - n: 2\n", SCHEMA,
	       "t.yaml:4: missing required key 'name' in 'items[1]'");
}

static void test_strings(void **state)
{
	struct t_doc t;
	kiln_diag d;

	(void)state;
	expect("req: [a]\n", SCHEMA, "t.yaml:1: 'req' must be a string, got a list");
	expect("req: {a: b}\n", SCHEMA, "t.yaml:1: 'req' must be a string, got a mapping");
	expect("req:\n", SCHEMA, "t.yaml:1: 'req' must be a string, got null");
	expect("req: ~\n", SCHEMA, "t.yaml:1: 'req' must be a string, got null");
	expect("req: NULL\n", SCHEMA, "t.yaml:1: 'req' must be a string, got null");
	expect("req: x\ns: abcdefgh\n", SCHEMA, "t.yaml:2: 's' is too long (8 bytes; at most 7)");
	expect("req: x\ns: \"a\\tb\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\0b\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\x7fb\"\n", SCHEMA,
	       "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\nb\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: ''\n", SCHEMA, "t.yaml:2: 's' must not be empty");
	/* C1 controls, Unicode line breaks (a reader folds them) and bidi controls. */
	expect("req: x\ns: \"a\\N\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\x9b\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\L\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"a\\P\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"\\u202e\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"\\u202a\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"\\u200f\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\ns: \"\\u2066\"\n", SCHEMA, "t.yaml:2: 's' must not contain control characters");
	expect("req: x\nheap: \"a\\u2069\\n\"\n", SCHEMA,
	       "t.yaml:2: 'heap' must not contain control characters");
	/* Their neighbours are ordinary text. */
	KT_OK(run("req: \"\\u00a0\\u2027\"\ns: \"\\u202f\\u2065\"\n", &t, &d));
	assert_string_equal(t.req, "\xc2\xa0\xe2\x80\xa7");
	assert_string_equal(t.s, "\xe2\x80\xaf\xe2\x81\xa5");
	expect("req: x\nheap: 0123456789abcdefg\n", SCHEMA,
	       "t.yaml:2: 'heap' is too long (17 bytes; at most 16)");
	expect("req: x\nheap: \"a\\rb\"\n", SCHEMA,
	       "t.yaml:2: 'heap' must not contain control characters");
	/* Plain scalars YAML 1.1 would turn into other types stay text. */
	KT_OK(run("req: NO\ns: 'null'\n", &t, &d));
	assert_string_equal(t.req, "NO");
	assert_string_equal(t.s, "null");
	KT_OK(run("req: 1.50\ns: true\n", &t, &d));
	assert_string_equal(t.req, "1.50");
	/* Exactly at the limit; multi-byte UTF-8 is text. */
	KT_OK(run("req: \"\xc3\xa9t\xc3\xa9\"\ns: abcdefg\nheap: 0123456789abcdef\n", &t, &d));
	assert_string_equal(t.req, "\xc3\xa9t\xc3\xa9");
	assert_string_equal(t.s, "abcdefg");
}

static void test_integers(void **state)
{
	struct t_doc t;
	kiln_diag d;

	(void)state;
	expect("req: x\nu: \"5\"\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: five\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: 1.5\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: 0x10\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: 1_0\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: -x\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a string");
	expect("req: x\nu: [1]\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got a list");
	expect("req: x\nu:\n", SCHEMA, "t.yaml:2: 'u' must be an integer, got null");
	expect("req: x\nu: 0\n", SCHEMA, "t.yaml:2: 'u' must be between 1 and 100, got 0");
	expect("req: x\nu: 101\n", SCHEMA, "t.yaml:2: 'u' must be between 1 and 100, got 101");
	expect("req: x\nu: -1\n", SCHEMA, "t.yaml:2: 'u' must be between 1 and 100, got -1");
	expect("req: x\nu: 99999999999999999999999\n", SCHEMA,
	       "t.yaml:2: 'u' must be between 1 and 100, got 99999999999999999999999");
	expect("req: x\nu: 18446744073709551616\n", SCHEMA,
	       "t.yaml:2: 'u' must be between 1 and 100, got 18446744073709551616");
	expect("req: x\nu: 010\n", SCHEMA,
	       "t.yaml:2: 'u' must be a plain decimal integer, got '010'");
	expect("req: x\nu: +5\n", SCHEMA, "t.yaml:2: 'u' must be a plain decimal integer, got '+5'");
	expect("req: x\none: 2\n", SCHEMA, "t.yaml:2: 'one' must be 1, got 2");
	KT_OK(run("req: x\nu: 1\nitems: [{name: a, n: 0}]\n", &t, &d));
	assert_int_equal(t.u, 1);
	assert_int_equal(t.items[0].n, 0);
}

static void test_enums_flags_hex(void **state)
{
	struct t_doc t;
	kiln_diag d;

	(void)state;
	expect("req: x\ne: blue\n", SCHEMA, "t.yaml:2: 'e' must be one of red, green");
	expect("req: x\ne: [red]\n", SCHEMA, "t.yaml:2: 'e' must be one of red, green");
	expect("req: x\ne: Red\n", SCHEMA, "t.yaml:2: 'e' must be one of red, green");
	expect("req: x\nflags: []\n", SCHEMA, "t.yaml:2: 'flags' must not be empty");
	expect("req: x\nflags: a\n", SCHEMA, "t.yaml:2: 'flags' must be a list, got a string");
	expect("req: x\nflags:\n  - a\n  - d\n", SCHEMA, "t.yaml:4: 'flags[1]' must be one of a, b, c");
	expect("req: x\nflags: [a, [b]]\n", SCHEMA, "t.yaml:2: 'flags[1]' must be one of a, b, c");
	expect("req: x\nflags:\n  - b\n  - a\n  - b\n", SCHEMA,
	       "t.yaml:5: duplicate entry 'b' in 'flags' (first at line 3)");
	expect("req: x\nhex: 0011223\n", SCHEMA,
	       "t.yaml:2: 'hex' must be 8 hex digits, got 7 characters");
	expect("req: x\nhex: 0011223g\n", SCHEMA, "t.yaml:2: 'hex' must be 8 hex digits (0-9, a-f)");
	expect("req: x\nhex: [00112233]\n", SCHEMA, "t.yaml:2: 'hex' must be 8 hex digits, got a list");
	expect("req: x\nhex:\n", SCHEMA, "t.yaml:2: 'hex' must be 8 hex digits, got null");
	KT_OK(run("req: x\nhex: 00112233\nflags: [b]\ne: red\n", &t, &d));
	assert_memory_equal(t.hex, "\x00\x11\x22\x33", 4);
	assert_int_equal(t.flags, 2);
	assert_int_equal(t.e, 1);
}

static void test_lists(void **state)
{
	struct t_doc t;
	kiln_diag d;

	(void)state;
	expect("req: x\nm: 5\n", SCHEMA, "t.yaml:2: 'm' must be a mapping, got a string");
	expect("req: x\nm: [a]\n", SCHEMA, "t.yaml:2: 'm' must be a mapping, got a list");
	expect("req: x\nitems: {}\n", SCHEMA, "t.yaml:2: 'items' must be a list, got a mapping");
	expect("req: x\nitems: []\n", SCHEMA, "t.yaml:2: 'items' must not be empty");
	expect("req: x\nitems: [a]\n", SCHEMA, "t.yaml:2: 'items[0]' must be a mapping, got a string");
	expect("req: x\nitems:\n  - name: a\n  - name: b\n  - name: c\n", SCHEMA,
	       "t.yaml:5: 'items' has more than 2 entries");
	expect("req: x\nwords: [a, b,\n  a]\n", SCHEMA,
	       "t.yaml:3: duplicate entry 'a' in 'words' (first at line 2)");
	expect("req: x\nwords: [a, b, c, d]\n", SCHEMA, "t.yaml:2: 'words' has more than 3 entries");
	expect("req: x\nwords: [abcdefgh]\n", SCHEMA,
	       "t.yaml:2: 'words[0]' is too long (8 bytes; at most 7)");
	expect("req: x\nitems: [{name: a, n: 10}]\n", SCHEMA,
	       "t.yaml:2: 'items[0].n' must be between 0 and 9, got 10");
	/* An empty optional list is allowed. */
	KT_OK(run("req: x\nwords: []\n", &t, &d));
	assert_int_equal(t.n_words, 0);
}

static void test_dicts(void **state)
{
	(void)state;
	expect("req: x\ndict: [x]\n", SCHEMA, "t.yaml:2: 'dict' must be a mapping, got a list");
	expect("req: x\ndict:\n  x: a\n  w: b\n", SCHEMA,
	       "t.yaml:4: unknown key 'w' in 'dict' (allowed: x, y, z)");
	expect("req: x\ndict:\n  x: a\n  x: b\n", SCHEMA,
	       "t.yaml:4: duplicate key 'x' in 'dict' (first at line 3)");
	expect("req: x\ndict: {x: a, y: b, z: c}\n", SCHEMA, "t.yaml:2: 'dict' has more than 2 entries");
	expect("req: x\ndict: {x: [a]}\n", SCHEMA, "t.yaml:2: 'dict.x' must be a string, got a list");
	expect("req: x\nidict: {a: '0000'}\n", SCHEMA,
	       "t.yaml:2: keys in 'idict' must be an integer, got a string");
	expect("req: x\nidict:\n  8: '0000'\n", SCHEMA,
	       "t.yaml:3: keys in 'idict' must be between 0 and 7, got 8");
	expect("req: x\nidict:\n  07: '0000'\n", SCHEMA,
	       "t.yaml:3: keys in 'idict' must be a plain decimal integer, got '07'");
	expect("req: x\nidict:\n  1: '00'\n", SCHEMA,
	       "t.yaml:3: 'idict.1' must be 4 hex digits, got 2 characters");
	expect("req: x\nidict:\n  1: '0000'\n  1: '0000'\n", SCHEMA,
	       "t.yaml:4: duplicate key '1' in 'idict' (first at line 3)");
	expect("req: x\nidict:\n  1: '0000'\n", SCHEMA, "t.yaml:2: 'idict' needs at least 2 entries");
}

/* Broken schemas are bugs in kiln: they fail as internal errors, never crash. */
static void run_schema(const struct kiln_yaml_map *m, const char *yaml, kiln_err want)
{
	struct kiln_yaml_ctx c;
	uint8_t target[256];
	kiln_diag d;

	memset(target, 0, sizeof(target));
	kiln_diag_clear(&d);
	KT_OK(kiln_yaml_load(&c, kiln_slice_str(yaml), "s.yaml", SYNTAX, SCHEMA, &d));
	KT_ERR(kiln_yaml_walk(&c, m, target), want);
	kiln_yaml_cleanup(&c);
}

static void test_bad_schemas(void **state)
{
	static const struct kiln_yaml_name none[] = { { NULL, 0 } };
	static const struct kiln_yaml_field u8_elem = { .key = "k", .kind = KILN_Y_UINT, .size = 1,
							.max = 9 };
	static const struct kiln_yaml_field str_elem = { .key = "v", .kind = KILN_Y_STR, .size = 8 };
	static const struct kiln_yaml_field bad[] = {
		{ .key = "u", .kind = KILN_Y_UINT, .size = 1, .max = 9 },
		{ .key = "big", .kind = KILN_Y_UINT, .size = sizeof(unsigned), .max = UINT64_MAX },
		{ .key = "e", .kind = KILN_Y_ENUM, .size = 1, .names = none },
		{ .key = "f", .kind = KILN_Y_FLAGS, .size = 1, .names = none },
		{ .key = "d", .kind = KILN_Y_DICT, .size = 16, .max = 2, .count_off = 64,
		  .elem = &str_elem, .dict_key = &u8_elem },
		{ .key = "d2", .kind = KILN_Y_DICT, .size = 16, .max = 2, .count_off = 64,
		  .elem = &str_elem, .dict_key = &str_elem },
		{ .key = "k", .kind = (enum kiln_yaml_kind)99 },
	};
	static const struct kiln_yaml_map m = { bad, sizeof(bad) / sizeof(bad[0]), NULL };
	static struct kiln_yaml_field wide[33];
	static const char *const names[33] = {
		"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0", "b1", "b2", "b3", "b4",
		"b5", "b6", "b7", "b8", "b9", "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9",
		"d0", "d1", "d2",
	};
	struct kiln_yaml_map wide_map = { wide, 33, NULL };

	(void)state;
	run_schema(&m, "u: 1\n", KILN_ERR_INTERNAL);
	run_schema(&m, "big: 1\n", KILN_ERR_INTERNAL);
	run_schema(&m, "e: x\n", KILN_ERR_INTERNAL);
	run_schema(&m, "f: [x]\n", KILN_ERR_INTERNAL);
	run_schema(&m, "d: {1: x}\n", KILN_ERR_INTERNAL);
	run_schema(&m, "d2: {1: x}\n", KILN_ERR_INTERNAL);
	run_schema(&m, "k: 1\n", KILN_ERR_INTERNAL);
	for (size_t i = 0; i < 33; i++)
		wide[i] = (struct kiln_yaml_field){ .key = names[i], .kind = KILN_Y_STR, .size = 1 };
	run_schema(&wide_map, "a0: ''\n", KILN_ERR_INTERNAL);
	/* Walking without a loaded document. */
	{
		struct kiln_yaml_ctx c;
		kiln_diag d;

		memset(&c, 0, sizeof(c));
		kiln_diag_clear(&d);
		c.d = &d;
		c.schema_code = SCHEMA;
		KT_ERR(kiln_yaml_walk(&c, &m, &d), KILN_ERR_INTERNAL);
		assert_null(kiln_yaml_root(&c));
		KT_ERR(kiln_yaml_prepare(&c), SCHEMA);
	}
}

static void test_file_names(void **state)
{
	struct kiln_yaml_ctx c;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_yaml_load(&c, kiln_slice_str("- a\n"), "evil\nname.yaml", SYNTAX, SCHEMA, &d),
	       SCHEMA);
	kiln_yaml_cleanup(&c);
	assert_string_equal(d.text, "evil?name.yaml:1: the document must be a mapping of keys, got a list");
	kiln_diag_clear(&d);
	KT_ERR(kiln_yaml_load(&c, kiln_slice_str("- a\n"), NULL, SYNTAX, SCHEMA, &d), SCHEMA);
	kiln_yaml_cleanup(&c);
	assert_string_equal(d.text, "(input):1: the document must be a mapping of keys, got a list");
	/* A NULL diag is allowed. */
	KT_ERR(kiln_yaml_load(&c, kiln_slice_str("- a\n"), NULL, SYNTAX, SCHEMA, NULL), SCHEMA);
	kiln_yaml_cleanup(&c);
	kiln_yaml_cleanup(NULL);
}

static void test_show(void **state)
{
	char out[KILN_YAML_SHOW_MAX];

	(void)state;
	kiln_yaml_show("ok", 2, out);
	assert_string_equal(out, "ok");
	kiln_yaml_show("a\x01\x7f\xff", 4, out);
	assert_string_equal(out, "a???");
	kiln_yaml_show("0123456789012345678901234567890123456789X", 41, out);
	assert_string_equal(out, "0123456789012345678901234567890123456789...");
	kiln_yaml_show("", 0, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_document),
		cmocka_unit_test(test_minimal_and_checks),
		cmocka_unit_test(test_input_limits),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_anchors_aliases_tags),
		cmocka_unit_test(test_node_reached_twice),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_enums_flags_hex),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_dicts),
		cmocka_unit_test(test_bad_schemas),
		cmocka_unit_test(test_file_names),
		cmocka_unit_test(test_show),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
