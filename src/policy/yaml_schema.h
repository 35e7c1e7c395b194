/*
 * Internal to src/policy: a small, table-driven schema layer over libyaml's
 * document API, shared by the product policy (policy.c) and kiln.yaml
 * (config.c). Not part of the module's interface.
 *
 * Loading runs libyaml twice over the bytes. The first pass reads the event
 * stream and refuses, with the line of the offending event, everything the
 * document API would hide from us: anchors and aliases (an alias event, or any
 * event carrying an anchor), explicit tags, a second document, and nesting
 * deeper than KILN_YAML_MAX_DEPTH. It stops at the first such event, before a
 * deep or aliased document is ever built. The second pass builds the document
 * (yaml_parser_load), whose nodes carry their start line. The walker then marks
 * every node it visits and refuses a node reached twice: in libyaml's document
 * model an alias is a second reference to the same node, so this check holds
 * even if the event pass were bypassed (see kiln_yaml_prepare).
 *
 * A schema is a table of fields. Each field names a key, a kind (string,
 * integer, enum, flags, hex, nested mapping, list, dictionary), where the value
 * goes in the target struct (offset, size, count) and optional checks. The
 * walker refuses unknown keys, duplicate keys, wrong types, values out of
 * range, strings too long or holding control characters, lists too long, and
 * missing required keys. Every error is one line, "FILE:LINE: what is wrong",
 * with the 1-based line of the offending node, and sticks in the kiln_diag.
 *
 * A context is used by one thread at a time.
 */
#ifndef KILN_POLICY_YAML_SCHEMA_H
#define KILN_POLICY_YAML_SCHEMA_H

#include <yaml.h>

#include "policy/policy.h"

enum kiln_yaml_kind {
	KILN_Y_STR,      /* scalar into char[size], NUL-terminated, rest zeroed */
	KILN_Y_STR_HEAP, /* scalar of at most size bytes into a malloc'd char * (owned by the target) */
	KILN_Y_UINT,     /* plain decimal scalar in [min, max] into unsigned */
	KILN_Y_ENUM,     /* one of names into unsigned (the name's value) */
	KILN_Y_FLAGS,    /* list of distinct names, values OR-ed into unsigned; at least min entries */
	KILN_Y_HEX,      /* exactly 2*size hex digits into uint8_t[size] */
	KILN_Y_MAP,      /* mapping walked with sub, same target base plus off */
	KILN_Y_LIST,     /* sequence of elem into an array (stride size) with a size_t count; min..max entries */
	KILN_Y_DICT,     /* mapping of dict_key -> elem into an array of entries; min..max entries */
};

#define KILN_Y_REQUIRED 1u  /* the key must be present */
#define KILN_Y_MULTILINE 2u /* a string may hold newlines (PEM) */
#define KILN_Y_UNIQUE 4u    /* list entries must differ from each other */
#define KILN_Y_NONEMPTY 8u  /* a string must not be "" */

struct kiln_yaml_name {
	const char *name;
	unsigned value;
};

struct kiln_yaml_ctx;
struct kiln_yaml_map;

/*
 * Runs after a value has been stored; node is the value's node, dst where it
 * went (char[] for KILN_Y_STR, char ** for KILN_Y_STR_HEAP, unsigned * ...).
 * Reports through kiln_yaml_fail so the message carries the line.
 */
typedef kiln_result (*kiln_yaml_check_fn)(struct kiln_yaml_ctx *c, const yaml_node_t *node,
					  void *dst);

struct kiln_yaml_field {
	const char *key;
	enum kiln_yaml_kind kind;
	unsigned flags;
	size_t off;       /* of the value (or the array) in the target */
	size_t size;      /* STR: buffer; STR_HEAP: max length; HEX: bytes; LIST, DICT: stride */
	size_t count_off; /* LIST, DICT: offset of the size_t count */
	uint64_t min, max; /* UINT: value range; LIST, DICT: entries (max is the array capacity); FLAGS: min entries */
	const struct kiln_yaml_name *names;      /* NULL-terminated; ENUM, FLAGS, or allowed STR values */
	const struct kiln_yaml_map *sub;         /* MAP */
	const struct kiln_yaml_field *elem;      /* LIST, DICT: each entry (offsets within the entry) */
	const struct kiln_yaml_field *dict_key;  /* DICT: the key, a STR with names or a UINT */
	kiln_yaml_check_fn check;
};

struct kiln_yaml_map {
	const struct kiln_yaml_field *fields; /* at most 32 */
	size_t n_fields;
	/* Cross-field rules, after every key of the mapping was stored. */
	kiln_result (*check)(struct kiln_yaml_ctx *c, const yaml_node_t *map, void *base);
};

#define KILN_YAML_PATH_MAX 160
#define KILN_YAML_FILE_MAX 200

struct kiln_yaml_ctx {
	yaml_document_t doc;
	bool loaded;
	char file[KILN_YAML_FILE_MAX]; /* for messages, control characters replaced */
	kiln_diag *d;
	kiln_err syntax_code;          /* YAML syntax errors */
	kiln_err schema_code;          /* everything else the file says wrong */
	uint8_t *visited;              /* one flag per node */
	size_t n_nodes;
	char path[KILN_YAML_PATH_MAX]; /* of the value being walked: "keys[1].curves" */
	size_t path_len;
};

/*
 * Checks the size cap, scans the event stream (anchors, aliases, tags, depth,
 * one document), loads the document and checks its root is a mapping.
 * file is used in messages only (NULL: "(input)"). Always leaves c ready for
 * kiln_yaml_cleanup, also on failure.
 */
KILN_MUST_USE kiln_result kiln_yaml_load(struct kiln_yaml_ctx *c, kiln_slice in, const char *file,
					 kiln_err syntax_code, kiln_err schema_code, kiln_diag *d);
/*
 * The second half of load, for a document already in c->doc (c->loaded set):
 * checks the root and allocates the visit map. Tests use it to feed documents
 * built by hand, which may share nodes as an alias would.
 */
KILN_MUST_USE kiln_result kiln_yaml_prepare(struct kiln_yaml_ctx *c);
void kiln_yaml_cleanup(struct kiln_yaml_ctx *c);

/* Walks the root mapping with schema m into base. */
KILN_MUST_USE kiln_result kiln_yaml_walk(struct kiln_yaml_ctx *c, const struct kiln_yaml_map *m,
					 void *base);

/* 1-based line of a node (1 for NULL). */
unsigned long kiln_yaml_line(const yaml_node_t *n);
const yaml_node_t *kiln_yaml_root(struct kiln_yaml_ctx *c);
/* The value of key in mapping map, or NULL; *key_node (optional) gets the key's node. */
const yaml_node_t *kiln_yaml_get(struct kiln_yaml_ctx *c, const yaml_node_t *map, const char *key,
				 const yaml_node_t **key_node);
/* The node at a path from the root ("attestation.type", "keys[1].max_bits"), or NULL. */
const yaml_node_t *kiln_yaml_find(struct kiln_yaml_ctx *c, const char *path,
				  const yaml_node_t **key_node);
/* The path of the value being walked ("" at the root); valid until the walk moves on. */
const char *kiln_yaml_path(const struct kiln_yaml_ctx *c);

/* Records "FILE:LINE: message" (line of node) with the schema code and returns it. */
KILN_MUST_USE kiln_result kiln_yaml_fail(struct kiln_yaml_ctx *c, const yaml_node_t *node,
					 const char *fmt, ...) KILN_PRINTF(3, 4);
/*
 * As kiln_yaml_fail, at the line of the key at path (its value's line for list
 * items; the root's line when the path is absent).
 */
KILN_MUST_USE kiln_result kiln_yaml_fail_at(struct kiln_yaml_ctx *c, const char *path,
					    const char *fmt, ...) KILN_PRINTF(3, 4);

/* Copies untrusted text for a message: printable ASCII only, at most 40 bytes, then "...". */
#define KILN_YAML_SHOW_MAX 48
void kiln_yaml_show(const char *s, size_t len, char out[KILN_YAML_SHOW_MAX]);

#endif /* KILN_POLICY_YAML_SCHEMA_H */
