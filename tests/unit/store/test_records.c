/*
 * src/store/records.c: every typed write, its defaults and ids, and every
 * way it fails (duplicates with their exact messages, environments mixed,
 * missing references), plus the atomicity of a failed write. The factory
 * line: batches (quota, closing, why a consumption was refused), nonces (used
 * once, bound to a station, expiry at the boundary, why a use was refused),
 * and both under concurrent group-committed writers.
 */
#include "support/support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	kiln_store *s;
};

static char yaml_text[] = "product: widget\nenv: production\n";
static const uint8_t der_bytes[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-records");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	*state = f;
	return 0;
}

/* The same with group commit: concurrent writers share transactions. */
static int setup_group(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-records");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	o.group_commit = true;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ one op per write */

enum op_kind { OP_CA, OP_RETIRE, OP_POLICY, OP_ACTIVATE, OP_DEVICE, OP_CERT, OP_IDENTITY, OP_EVENT, OP_META };

struct op {
	enum op_kind kind;
	void *rec;
	const char *a, *b;
	int64_t version;
};

static kiln_result op_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct op *o = ctx;

	switch (o->kind) {
	case OP_CA:
		return kiln_store_tx_ca_add(tx, o->rec, d);
	case OP_RETIRE:
		return kiln_store_tx_ca_retire(tx, o->version, d);
	case OP_POLICY:
		return kiln_store_tx_policy_add(tx, o->rec, d);
	case OP_ACTIVATE:
		return kiln_store_tx_policy_activate(tx, o->a, o->version, d);
	case OP_DEVICE:
		return kiln_store_tx_device_add(tx, o->rec, d);
	case OP_CERT:
		return kiln_store_tx_cert_add(tx, o->rec, d);
	case OP_IDENTITY:
		return kiln_store_tx_identity_add(tx, o->rec, d);
	case OP_EVENT:
		return kiln_store_tx_event_add(tx, o->rec, d);
	case OP_META:
		return kiln_store_tx_meta_set(tx, o->a, o->b, d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

static kiln_result run(kiln_store *s, enum op_kind k, void *rec, kiln_diag *d)
{
	struct op o = { .kind = k, .rec = rec };

	kiln_diag_clear(d);
	return kiln_store_write(s, op_fn, &o, d);
}

static kiln_result activate(kiln_store *s, const char *product, int64_t v, kiln_diag *d)
{
	struct op o = { .kind = OP_ACTIVATE, .a = product, .version = v };

	kiln_diag_clear(d);
	return kiln_store_write(s, op_fn, &o, d);
}

static kiln_result meta_set(kiln_store *s, const char *k, const char *v, kiln_diag *d)
{
	struct op o = { .kind = OP_META, .a = k, .b = v };

	kiln_diag_clear(d);
	return kiln_store_write(s, op_fn, &o, d);
}

static int64_t count(kiln_store *s, const char *table)
{
	int64_t n = -1;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_count(s, table, &n, &d));
	return n;
}

/* ------------------------------------------------------------ record builders */

static struct kiln_ca_rec ca_rec(const char *name, const char *env, const char *role,
				 int64_t parent)
{
	struct kiln_ca_rec c = { 0 };

	assert_true(kiln_is_ok(kiln_strlcpy(c.name, name, sizeof(c.name))));
	assert_true(kiln_is_ok(kiln_strlcpy(c.env, env, sizeof(c.env))));
	assert_true(kiln_is_ok(kiln_strlcpy(c.role, role, sizeof(c.role))));
	memcpy(c.alg, "p256", 5);
	memcpy(c.token, "kiln-prod", 10);
	memcpy(c.key_label, "key", 4);
	c.key_id[0] = 0xab;
	c.key_id_len = 1;
	c.parent_id = parent;
	memcpy(c.serial, "01", 3);
	memcpy(c.subject, "CN=test", 8);
	c.not_before = 1000;
	c.not_after = 2000;
	return c;
}

static struct kiln_policy_rec policy_rec(const char *product, const char *env, const char *status)
{
	struct kiln_policy_rec p = { 0 };

	assert_true(kiln_is_ok(kiln_strlcpy(p.product, product, sizeof(p.product))));
	assert_true(kiln_is_ok(kiln_strlcpy(p.env, env, sizeof(p.env))));
	assert_true(kiln_is_ok(kiln_strlcpy(p.status, status, sizeof(p.status))));
	memset(p.sha256, 0x11, sizeof(p.sha256));
	p.yaml = yaml_text;
	p.yaml_len = strlen(yaml_text);
	memcpy(p.added_by, "alice", 6);
	return p;
}

static struct kiln_device_rec device_rec(const char *product, const char *serial, int64_t v)
{
	struct kiln_device_rec r = { 0 };

	assert_true(kiln_is_ok(kiln_strlcpy(r.product, product, sizeof(r.product))));
	assert_true(kiln_is_ok(kiln_strlcpy(r.serial, serial, sizeof(r.serial))));
	r.policy_version = v;
	memcpy(r.lot, "LOT1", 5);
	return r;
}

static struct kiln_cert_rec cert_rec(const char *serial, int64_t ca, const char *env,
				     const char *product, int64_t device)
{
	struct kiln_cert_rec c = { 0 };

	assert_true(kiln_is_ok(kiln_strlcpy(c.serial, serial, sizeof(c.serial))));
	c.ca_id = ca;
	memcpy(c.kind, product[0] != '\0' ? "device" : "tls", product[0] != '\0' ? 7 : 4);
	assert_true(kiln_is_ok(kiln_strlcpy(c.env, env, sizeof(c.env))));
	assert_true(kiln_is_ok(kiln_strlcpy(c.product, product, sizeof(c.product))));
	c.device_id = device;
	memcpy(c.subject, "CN=dev", 7);
	memset(c.spki_sha256, 0x22, sizeof(c.spki_sha256));
	c.der = der_bytes;
	c.der_len = sizeof(der_bytes);
	return c;
}

/* A production hierarchy and the widget product at policy version 1. */
static int64_t base(kiln_store *s)
{
	struct kiln_ca_rec root = ca_rec("production-root", "production", "root", 0);
	struct kiln_ca_rec issuing;
	struct kiln_policy_rec p = policy_rec("widget", "production", "active");
	kiln_diag d;

	KT_OK(run(s, OP_CA, &root, &d));
	issuing = ca_rec("production-issuing", "production", "issuing", root.id);
	KT_OK(run(s, OP_CA, &issuing, &d));
	KT_OK(run(s, OP_POLICY, &p, &d));
	return issuing.id;
}

/* ------------------------------------------------------------ CAs */

static void test_ca_add(void **state)
{
	struct fx *f = *state;
	struct kiln_ca_rec root = ca_rec("production-root", "production", "root", 0);
	struct kiln_ca_rec issuing, dup, got = { 0 };
	kiln_diag d;

	KT_OK(run(f->s, OP_CA, &root, &d));
	assert_true(root.id > 0);
	assert_true(root.created > 0);
	issuing = ca_rec("production-issuing", "production", "issuing", root.id);
	KT_OK(run(f->s, OP_CA, &issuing, &d));
	assert_true(issuing.id > root.id);

	dup = ca_rec("production-issuing", "production", "issuing", root.id);
	KT_ERR(run(f->s, OP_CA, &dup, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "CA production-issuing already exists");
	assert_int_equal(dup.id, 0);

	KT_OK(kiln_store_ca_get(f->s, "production-issuing", &got, &d));
	assert_int_equal(got.parent_id, root.id);
	assert_int_equal(got.key_id_len, 1);
	kiln_ca_rec_cleanup(&got);
	assert_int_equal(count(f->s, "cas"), 2);
}

static void test_ca_env_and_parent(void **state)
{
	struct fx *f = *state;
	struct kiln_ca_rec root = ca_rec("production-root", "production", "root", 0);
	struct kiln_ca_rec test_issuing, orphan, bad;
	kiln_diag d;

	KT_OK(run(f->s, OP_CA, &root, &d));
	/* A test CA under a production root: principle 2, refused by the database itself. */
	test_issuing = ca_rec("test-issuing", "test", "issuing", root.id);
	KT_ERR(run(f->s, OP_CA, &test_issuing, &d), KILN_ERR_POLICY_ENV);
	assert_non_null(strstr(d.text, "parent CA's environment"));

	orphan = ca_rec("orphan", "production", "issuing", 999);
	KT_ERR(run(f->s, OP_CA, &orphan, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "CA orphan: parent CA id 999 does not exist");

	bad = ca_rec("rooty", "production", "root", root.id);
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("nowhere", "staging", "root", 0);
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("odd", "production", "intermediate", root.id);
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("upper", "production", "root", 0);
	memcpy(bad.serial, "0A", 3);
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("keyid", "production", "root", 0);
	bad.key_id_len = 33;
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "cas"), 1);
}

static kiln_result retire(kiln_store *s, int64_t id, kiln_diag *d)
{
	struct op o = { .kind = OP_RETIRE, .version = id };

	kiln_diag_clear(d);
	return kiln_store_write(s, op_fn, &o, d);
}

/* Schema 8: generations, one active issuing CA per environment, retirement final. */
static void test_ca_rotation_records(void **state)
{
	struct fx *f = *state;
	struct kiln_ca_rec root = ca_rec("production-root", "production", "root", 0);
	struct kiln_ca_rec g1, g2, g2b, bad, got = { 0 };
	kiln_diag d;

	KT_OK(run(f->s, OP_CA, &root, &d));
	g1 = ca_rec("production-issuing", "production", "issuing", root.id);
	KT_OK(run(f->s, OP_CA, &g1, &d));
	assert_int_equal(g1.generation, 1); /* defaults written back */
	assert_string_equal(g1.status, "active");
	g2 = ca_rec("production-issuing-2", "production", "issuing", root.id);
	g2.generation = 2;
	/* Two active issuing CAs in one environment: refused by the database. */
	KT_ERR(run(f->s, OP_CA, &g2, &d), KILN_ERR_DUPLICATE);
	KT_OK(retire(f->s, g1.id, &d));
	KT_OK(run(f->s, OP_CA, &g2, &d));
	KT_OK(kiln_store_ca_get(f->s, "production-issuing", &got, &d));
	assert_string_equal(got.status, "retired");
	assert_int_equal(got.generation, 1);
	kiln_ca_rec_cleanup(&got);
	KT_OK(kiln_store_ca_get(f->s, "production-issuing-2", &got, &d));
	assert_string_equal(got.status, "active");
	assert_int_equal(got.generation, 2);
	kiln_ca_rec_cleanup(&got);
	/* A generation is used once per environment, even retired. */
	g2b = ca_rec("production-issuing-2b", "production", "issuing", root.id);
	g2b.generation = 2;
	memcpy(g2b.status, "retired", 8);
	KT_ERR(run(f->s, OP_CA, &g2b, &d), KILN_ERR_DUPLICATE);
	/* Retiring twice, a root, an unknown id. */
	KT_ERR(retire(f->s, g1.id, &d), KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, "not an active issuing CA"));
	KT_ERR(retire(f->s, root.id, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(retire(f->s, 999, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(retire(f->s, 0, &d), KILN_ERR_ARG);
	/* Field checks: a rotating root, an unknown status, a negative generation. */
	bad = ca_rec("root-2", "production", "root", 0);
	bad.generation = 2;
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("odd-status", "production", "issuing", root.id);
	memcpy(bad.status, "paused", 7);
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	bad = ca_rec("neg", "production", "issuing", root.id);
	bad.generation = -1;
	KT_ERR(run(f->s, OP_CA, &bad, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "cas"), 3);
}

/* ------------------------------------------------------------ policies */

static void test_policy_versions(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	for (int64_t v = 1; v <= 3; v++) {
		struct kiln_policy_rec p = policy_rec("widget", "production", "");

		KT_OK(run(f->s, OP_POLICY, &p, &d));
		assert_int_equal(p.version, v);
		assert_string_equal(p.status, "pending");
		assert_true(p.created > 0);
	}
	/* Versions count per product. */
	{
		struct kiln_policy_rec p = policy_rec("gadget", "test", "pending");

		KT_OK(run(f->s, OP_POLICY, &p, &d));
		assert_int_equal(p.version, 1);
	}
	assert_int_equal(count(f->s, "products"), 2);
	assert_int_equal(count(f->s, "policies"), 4);
}

static void test_policy_env_immutable(void **state)
{
	struct fx *f = *state;
	struct kiln_policy_rec prod = policy_rec("widget", "production", "active");
	struct kiln_policy_rec test = policy_rec("widget", "test", "");
	kiln_diag d;

	KT_OK(run(f->s, OP_POLICY, &prod, &d));
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_POLICY_ENV);
	assert_string_equal(d.text, "product widget is production; a test policy cannot be added to it");
	assert_int_equal(test.version, 0);
	assert_int_equal(count(f->s, "policies"), 1);

	/* Bad records never reach the database. */
	test = policy_rec("widget", "staging", "");
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_ARG);
	test = policy_rec("wid/get", "production", "");
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_ARG);
	test = policy_rec("widget", "production", "superseded");
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_ARG);
	test = policy_rec("widget", "production", "");
	test.yaml = NULL;
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_ARG);
	test = policy_rec("widget", "production", "");
	test.added_by[0] = '\0';
	KT_ERR(run(f->s, OP_POLICY, &test, &d), KILN_ERR_ARG);
}

static void status_of(kiln_store *s, const char *product, int64_t v, const char *want)
{
	struct kiln_policy_rec got = { 0 };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_policy_get(s, product, v, &got, &d));
	assert_string_equal(got.status, want);
	kiln_policy_rec_cleanup(&got);
}

struct version_probe {
	const char *product;
	int64_t version;
	struct kiln_policy_rec *add_first; /* added in the same transaction, then probed */
};

static kiln_result version_probe_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct version_probe *p = ctx;

	if (p->add_first != NULL)
		KILN_GUARD(kiln_store_tx_policy_add(tx, p->add_first, d));
	return kiln_store_tx_policy_version(tx, p->product, &p->version, d);
}

/* The active version as a transaction sees it: what an issuance's commit checks. */
static int64_t tx_version(kiln_store *s, const char *product, struct kiln_policy_rec *add_first)
{
	struct version_probe p = { product, -1, add_first };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(s, version_probe_fn, &p, &d));
	return p.version;
}

static void test_policy_one_active(void **state)
{
	struct fx *f = *state;
	struct kiln_policy_rec p1 = policy_rec("widget", "production", "active");
	struct kiln_policy_rec p2 = policy_rec("widget", "production", "");
	struct kiln_policy_rec p3 = policy_rec("widget", "production", "active");
	struct kiln_policy_rec other = policy_rec("gadget", "production", "active");
	kiln_diag d;

	KT_OK(run(f->s, OP_POLICY, &p1, &d));
	KT_OK(run(f->s, OP_POLICY, &other, &d));
	KT_OK(run(f->s, OP_POLICY, &p2, &d));
	status_of(f->s, "widget", 1, "active");
	status_of(f->s, "widget", 2, "pending");
	assert_int_equal(tx_version(f->s, "widget", NULL), 1);
	assert_int_equal(tx_version(f->s, "gizmo", NULL), 0);

	KT_OK(activate(f->s, "widget", 2, &d));
	status_of(f->s, "widget", 1, "superseded");
	status_of(f->s, "widget", 2, "active");
	assert_int_equal(tx_version(f->s, "widget", NULL), 2);

	/* Adding as active supersedes the rest in the same write, which sees it at once. */
	assert_int_equal(tx_version(f->s, "widget", &p3), 3);
	assert_int_equal(p3.version, 3);
	assert_string_equal(p3.status, "active");
	status_of(f->s, "widget", 2, "superseded");
	status_of(f->s, "widget", 3, "active");
	/* Another product's active version is untouched. */
	status_of(f->s, "gadget", 1, "active");

	/* Going back to an older version is allowed. */
	KT_OK(activate(f->s, "widget", 1, &d));
	status_of(f->s, "widget", 1, "active");
	status_of(f->s, "widget", 3, "superseded");

	KT_ERR(activate(f->s, "widget", 9, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "product widget has no policy version 9");
	KT_ERR(activate(f->s, "widget", 0, &d), KILN_ERR_ARG);
	status_of(f->s, "widget", 1, "active");
	assert_int_equal(tx_version(f->s, "widget", NULL), 1);
}

static kiln_result bad_version_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	int64_t v = 7;
	kiln_result r = kiln_store_tx_policy_version(tx, ctx, &v, d);

	assert_int_equal(v, 7); /* refused before anything is read */
	return r;
}

static void test_policy_version_refusals(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, bad_version_fn, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_write(f->s, bad_version_fn, "", &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_write(f->s, bad_version_fn, "-widget", &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_write(f->s, bad_version_fn, "wid get", &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "policy product id"));
}

/* A failed policy_add leaves nothing behind even when fn swallows the error. */
static kiln_result swallow_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_policy_rec *p = ctx;
	kiln_diag inner;
	kiln_result r;

	(void)d;
	kiln_diag_clear(&inner);
	r = kiln_store_tx_policy_add(tx, p, &inner);
	assert_int_equal(r.code, KILN_ERR_POLICY_ENV);
	return kiln_ok();
}

static void test_policy_add_atomic(void **state)
{
	struct fx *f = *state;
	struct kiln_policy_rec p = policy_rec("widget", "production", "active");
	struct kiln_policy_rec t = policy_rec("widget", "test", "active");
	kiln_diag d;

	KT_OK(run(f->s, OP_POLICY, &p, &d));
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, swallow_fn, &t, &d));
	assert_int_equal(count(f->s, "policies"), 1);
	status_of(f->s, "widget", 1, "active");
}

/* ------------------------------------------------------------ devices */

static void test_device_add(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec dev, dup, other;
	kiln_diag d;

	(void)base(f->s);
	dev = device_rec("widget", "ABC123", 1);
	memcpy(dev.components_json, "{\"soc\":\"x\"}", 12);
	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	assert_true(dev.id > 0);
	assert_string_equal(dev.status, "active");
	assert_true(dev.created > 0);

	dup = device_rec("widget", "ABC123", 1);
	KT_ERR(run(f->s, OP_DEVICE, &dup, &d), KILN_ERR_DEVICE_DUPLICATE);
	assert_string_equal(d.text, "device widget/ABC123 already exists");
	assert_int_equal(dup.id, 0);

	other = device_rec("gizmo", "ABC124", 1);
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_UNKNOWN_PRODUCT);
	assert_string_equal(d.text, "product gizmo has no policy version 1; add the policy first");
	other = device_rec("widget", "ABC124", 7);
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_UNKNOWN_PRODUCT);
	other = device_rec("widget", "ABC\n124", 1);
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_ARG);
	other = device_rec("widget", "", 1);
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_ARG);
	other = device_rec("widget", "ABC124", 1);
	memcpy(other.status, "lost", 5);
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_ARG);
	other = device_rec("widget", "ABC124", 1);
	memset(other.lot, 'x', sizeof(other.lot)); /* not terminated */
	KT_ERR(run(f->s, OP_DEVICE, &other, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "devices"), 1);
}

/* ------------------------------------------------------------ device lifecycle */

enum lc_kind { LC_SET_CERT, LC_RETIRE, LC_REPROV_OPEN, LC_REPLACE };

struct lc_op {
	enum lc_kind kind;
	int64_t id;
	const char *serial;
	struct kiln_device_rec *dev;
	struct kiln_reprovision_rec *g;
};

static kiln_result lc_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct lc_op *o = ctx;

	switch (o->kind) {
	case LC_SET_CERT:
		return kiln_store_tx_device_set_cert(tx, o->id, o->serial, d);
	case LC_RETIRE:
		return kiln_store_tx_device_retire(tx, o->id, d);
	case LC_REPROV_OPEN:
		return kiln_store_tx_reprovision_open(tx, o->g, d);
	case LC_REPLACE:
		return kiln_store_tx_device_replace(tx, o->id, o->dev, d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

static kiln_result lc(kiln_store *s, struct lc_op o, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_store_write(s, lc_fn, &o, d);
}

static void test_device_lifecycle(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec dev, repl, got;
	struct kiln_reprovision_rec g = { 0 }, open;
	char ref[32];
	kiln_diag d;

	(void)base(f->s);
	dev = device_rec("widget", "LC-0001", 1);
	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	KT_OK(lc(f->s, (struct lc_op){ LC_SET_CERT, dev.id, "0abc", NULL, NULL }, &d));
	KT_ERR(lc(f->s, (struct lc_op){ LC_SET_CERT, dev.id + 99, "0abc", NULL, NULL }, &d),
	       KILN_ERR_NOT_FOUND);
	KT_ERR(lc(f->s, (struct lc_op){ LC_SET_CERT, dev.id, "0ABC", NULL, NULL }, &d), KILN_ERR_ARG);

	/* A grant, once. */
	g.device_id = dev.id;
	memcpy(g.reason, "keyCompromise", 14);
	memcpy(g.opened_by, "eng", 4);
	KT_OK(lc(f->s, (struct lc_op){ LC_REPROV_OPEN, 0, NULL, NULL, &g }, &d));
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPROV_OPEN, 0, NULL, NULL, &g }, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "already open"));
	memcpy(g.reason, "unspecified", 12);
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPROV_OPEN, 0, NULL, NULL, &g }, &d), KILN_ERR_ARG);
	KT_OK(kiln_store_reprovision_open_get(f->s, "widget", "LC-0001", &open, NULL));
	assert_int_equal(open.device_id, dev.id);
	assert_int_equal(open.used_by, 0);

	/* The replacement: same product and serial, the old record no longer live. */
	repl = device_rec("widget", "LC-0001", 1);
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPLACE, dev.id, NULL, &repl, NULL }, &d), KILN_ERR_ARG);
	repl.replaces = dev.id;
	KT_OK(lc(f->s, (struct lc_op){ LC_REPLACE, dev.id, NULL, &repl, NULL }, &d));
	assert_true(repl.id > dev.id);
	KT_OK(kiln_store_device_get(f->s, "widget/LC-0001", &got, &d));
	assert_int_equal(got.id, repl.id);
	assert_int_equal(got.replaces, dev.id);
	assert_true(got.live);
	KT_OK(kiln_store_device_get(f->s, "LC-0001", &got, &d));
	assert_int_equal(got.id, repl.id);
	(void)snprintf(ref, sizeof(ref), "%lld", (long long)dev.id);
	KT_OK(kiln_store_device_get(f->s, ref, &got, &d));
	assert_false(got.live);
	KT_ERR(kiln_store_reprovision_open_get(f->s, "widget", "LC-0001", &open, NULL),
	       KILN_ERR_NOT_FOUND);
	/* No second replacement without a new grant; the replaced record takes none. */
	repl = device_rec("widget", "LC-0001", 1);
	repl.replaces = dev.id;
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPLACE, dev.id, NULL, &repl, NULL }, &d), KILN_ERR_NOT_FOUND);
	memcpy(g.reason, "superseded", 11);
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPROV_OPEN, 0, NULL, NULL, &g }, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "was replaced by device"));
	assert_int_equal(count(f->s, "devices"), 2);

	/* Retirement, once; a retired device takes no certificate and no grant. */
	KT_OK(kiln_store_device_get(f->s, "LC-0001", &got, &d));
	KT_OK(lc(f->s, (struct lc_op){ LC_RETIRE, got.id, NULL, NULL, NULL }, &d));
	KT_ERR(lc(f->s, (struct lc_op){ LC_RETIRE, got.id, NULL, NULL, NULL }, &d),
	       KILN_ERR_DEVICE_RETIRED);
	KT_ERR(lc(f->s, (struct lc_op){ LC_RETIRE, 9999, NULL, NULL, NULL }, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(lc(f->s, (struct lc_op){ LC_SET_CERT, got.id, "0abd", NULL, NULL }, &d),
	       KILN_ERR_DEVICE_RETIRED);
	g.device_id = got.id;
	KT_ERR(lc(f->s, (struct lc_op){ LC_REPROV_OPEN, 0, NULL, NULL, &g }, &d),
	       KILN_ERR_DEVICE_RETIRED);
}

/* ------------------------------------------------------------ certificates */

static void test_cert_add(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	struct kiln_device_rec dev = device_rec("widget", "ABC123", 1);
	struct kiln_cert_rec c, dup, got = { 0 };
	kiln_diag d;

	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	c = cert_rec("0a1b2c3d4e5f", ca, "production", "widget", dev.id);
	KT_OK(run(f->s, OP_CERT, &c, &d));
	dup = cert_rec("0a1b2c3d4e5f", ca, "production", "widget", dev.id);
	KT_ERR(run(f->s, OP_CERT, &dup, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "certificate serial 0a1b2c3d4e5f already exists");

	KT_OK(kiln_store_cert_get(f->s, "0a1b2c3d4e5f", &got, &d));
	assert_int_equal(got.device_id, dev.id);
	assert_string_equal(got.status, "valid");
	assert_true(got.issued > 0);
	assert_int_equal(got.der_len, sizeof(der_bytes));
	assert_memory_equal(got.der, der_bytes, sizeof(der_bytes));
	kiln_cert_rec_cleanup(&got);

	/* Non-device certificates carry no product and no device. */
	c = cert_rec("ff", ca, "production", "", 0);
	KT_OK(run(f->s, OP_CERT, &c, &d));
	assert_int_equal(count(f->s, "certificates"), 2);
}

static void test_cert_refused(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	struct kiln_policy_rec tp = policy_rec("gadget", "test", "active");
	struct kiln_cert_rec c;
	kiln_diag d;

	KT_OK(run(f->s, OP_POLICY, &tp, &d));
	/* A production CA cannot hold a test certificate, nor a test product's. */
	c = cert_rec("01", ca, "test", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_POLICY_ENV);
	assert_non_null(strstr(d.text, "production and test never mix"));
	c = cert_rec("02", ca, "production", "gadget", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_POLICY_ENV);

	c = cert_rec("03", 999, "production", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_NOT_FOUND);
	c = cert_rec("04", ca, "production", "widget", 999);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_NOT_FOUND);
	c = cert_rec("05", ca, "production", "nosuch", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_NOT_FOUND);

	c = cert_rec("0A", ca, "production", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("", ca, "production", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("0g", ca, "production", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("06", ca, "production", "", 0);
	c.der = NULL;
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("07", ca, "production", "", 0);
	memcpy(c.kind, "root", 5);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("08", ca, "production", "", 0);
	memcpy(c.status, "expired", 8);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	c = cert_rec("09", 0, "production", "", 0);
	KT_ERR(run(f->s, OP_CERT, &c, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "certificates"), 0);
}

struct key_probe {
	uint8_t spki[32];
	bool seen;
	char holder[KILN_STORE_SERIAL_HEX];
	struct kiln_cert_rec *insert_first; /* inserted in the same transaction, then probed */
};

static kiln_result key_probe_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct key_probe *p = ctx;

	if (p->insert_first != NULL)
		KILN_GUARD(kiln_store_tx_cert_add(tx, p->insert_first, d));
	return kiln_store_tx_key_seen(tx, p->spki, &p->seen, p->holder, d);
}

static void test_key_seen(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	struct kiln_device_rec dev = device_rec("widget", "ABC123", 1);
	struct kiln_cert_rec c, tls;
	struct key_probe probe = { 0 };
	kiln_diag d;

	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	/* Nothing certified yet. */
	memset(probe.spki, 0x22, 32);
	KT_OK(kiln_store_write(f->s, key_probe_fn, &probe, &d));
	assert_false(probe.seen);
	assert_string_equal(probe.holder, "");
	/* A device certificate for the key, written earlier in the same transaction, counts. */
	c = cert_rec("0a0b", ca, "production", "widget", dev.id);
	probe.insert_first = &c;
	KT_OK(kiln_store_write(f->s, key_probe_fn, &probe, &d));
	assert_true(probe.seen);
	assert_string_equal(probe.holder, "0a0b");
	/* And after commit, from a later transaction. */
	probe.insert_first = NULL;
	probe.seen = false;
	KT_OK(kiln_store_write(f->s, key_probe_fn, &probe, &d));
	assert_true(probe.seen);
	/* Another key is not seen; a non-device certificate for a key does not count. */
	memset(probe.spki, 0x33, 32);
	tls = cert_rec("0c0d", ca, "production", "", 0);
	memset(tls.spki_sha256, 0x33, 32);
	probe.insert_first = &tls;
	KT_OK(kiln_store_write(f->s, key_probe_fn, &probe, &d));
	assert_false(probe.seen);
}

/* ------------------------------------------------------------ identities */

static void test_identity_add(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec id = { 0 }, got = { 0 };
	kiln_diag d;

	memcpy(id.name, "alice", 6);
	memcpy(id.role, "officer", 8);
	memcpy(id.env, "production", 11);
	KT_OK(run(f->s, OP_IDENTITY, &id, &d));
	KT_ERR(run(f->s, OP_IDENTITY, &id, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "identity alice already exists");
	KT_OK(kiln_store_identity_get(f->s, "alice", &got, &d));
	assert_string_equal(got.status, "active");
	assert_true(got.created > 0);

	memcpy(id.name, "bob", 4);
	memcpy(id.role, "root", 5);
	KT_ERR(run(f->s, OP_IDENTITY, &id, &d), KILN_ERR_ARG);
	memcpy(id.role, "auditor", 8);
	memcpy(id.env, "service", 8);
	KT_ERR(run(f->s, OP_IDENTITY, &id, &d), KILN_ERR_ARG);
	id.env[0] = '\0'; /* both environments */
	KT_OK(run(f->s, OP_IDENTITY, &id, &d));
	assert_int_equal(count(f->s, "identities"), 2);
}

/* Schema v2: one certificate, one identity; any number may have none yet. */
static void test_identity_cert_unique(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec id = { 0 };
	kiln_diag d;

	memcpy(id.role, "station", 8);
	memcpy(id.name, "station-1", 10);
	memcpy(id.cert_serial, "0abc", 5);
	KT_OK(run(f->s, OP_IDENTITY, &id, &d));
	memcpy(id.name, "station-2", 10);
	KT_ERR(run(f->s, OP_IDENTITY, &id, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text,
			    "identity station-2: certificate 0abc is already bound to another identity");
	id.cert_serial[0] = '\0';
	KT_OK(run(f->s, OP_IDENTITY, &id, &d));
	memcpy(id.name, "station-3", 10);
	KT_OK(run(f->s, OP_IDENTITY, &id, &d));
	assert_int_equal(count(f->s, "identities"), 3);
}

/* ------------------------------------------------------------ events */

static void test_event_seq(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	for (int64_t i = 0; i < 5; i++) {
		struct kiln_event_rec ev = { 0 };

		memcpy(ev.type, "issuance", 9);
		memcpy(ev.actor, "cli:test", 9);
		ev.detail_json = i % 2 == 0 ? NULL : "{\"n\":1}";
		KT_OK(run(f->s, OP_EVENT, &ev, &d));
		assert_int_equal(ev.seq, i);
		assert_true(ev.time > 0);
	}
	{
		struct kiln_event_rec ev = { 0 };

		memcpy(ev.type, "issuance", 9);
		memcpy(ev.actor, "cli:test", 9);
		ev.time = 42;
		ev.detail_json = "[1,2]";
		KT_ERR(run(f->s, OP_EVENT, &ev, &d), KILN_ERR_MALFORMED);
		assert_string_equal(d.text, "event issuance: detail must be a JSON object");
		ev.detail_json = "not json";
		KT_ERR(run(f->s, OP_EVENT, &ev, &d), KILN_ERR_MALFORMED);
		ev.detail_json = NULL;
		ev.actor[0] = '\0';
		KT_ERR(run(f->s, OP_EVENT, &ev, &d), KILN_ERR_ARG);
		memcpy(ev.actor, "cli:test", 9);
		KT_OK(run(f->s, OP_EVENT, &ev, &d));
		assert_int_equal(ev.seq, 5); /* failures leave no gap */
		assert_int_equal(ev.time, 42);
	}
	assert_int_equal(count(f->s, "events"), 6);
}

/* ------------------------------------------------------------ meta */

static void test_meta_set(void **state)
{
	struct fx *f = *state;
	char out[64];
	kiln_diag d;

	KT_OK(meta_set(f->s, "installation", "one", &d));
	KT_OK(meta_set(f->s, "installation", "two", &d));
	KT_OK(kiln_store_meta_get(f->s, "installation", out, sizeof(out), &d));
	assert_string_equal(out, "two");
	assert_int_equal(count(f->s, "meta"), 1);
	KT_ERR(meta_set(f->s, "", "x", &d), KILN_ERR_ARG);
	KT_ERR(meta_set(f->s, "k", NULL, &d), KILN_ERR_ARG);
}

/* ------------------------------------------------------------ rollback */

struct issue {
	int64_t ca;
	bool fail_at_end;
};

/* The hot path's write: device, certificate, event; optionally failing after all three. */
static kiln_result issue_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct issue *is = ctx;
	struct kiln_device_rec dev = device_rec("widget", "SN1", 1);
	struct kiln_cert_rec c;
	struct kiln_event_rec ev = { 0 };

	KILN_GUARD(kiln_store_tx_device_add(tx, &dev, d));
	c = cert_rec("abcd", is->ca, "production", "widget", dev.id);
	KILN_GUARD(kiln_store_tx_cert_add(tx, &c, d));
	memcpy(ev.type, "issuance", 9);
	memcpy(ev.actor, "station-1", 10);
	KILN_GUARD(kiln_store_tx_event_add(tx, &ev, d));
	if (is->fail_at_end)
		return kiln_diag_set(d, KILN_ERR_HSM, "signing failed after the records were written");
	return kiln_ok();
}

static void test_failed_write_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct issue is = { .ca = base(f->s), .fail_at_end = true };
	struct kiln_event_rec ev = { 0 };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, issue_fn, &is, &d), KILN_ERR_HSM);
	assert_string_equal(d.text, "signing failed after the records were written");
	assert_int_equal(count(f->s, "devices"), 0);
	assert_int_equal(count(f->s, "certificates"), 0);
	assert_int_equal(count(f->s, "events"), 0);

	is.fail_at_end = false;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, issue_fn, &is, &d));
	assert_int_equal(count(f->s, "devices"), 1);
	memcpy(ev.type, "note", 5);
	memcpy(ev.actor, "test", 5);
	KT_OK(run(f->s, OP_EVENT, &ev, &d));
	assert_int_equal(ev.seq, 1); /* the rolled-back event left no gap */
}

/* ------------------------------------------------------------ factory line helpers */

#define T_2026_11_21 1795262400 /* 2026-11-21T12:00:00Z */

enum line_kind { L_BATCH_ADD, L_BATCH_CLOSE, L_CONSUME, L_NONCE_ADD, L_NONCE_USE };

struct line_op {
	enum line_kind kind;
	struct kiln_batch_rec *batch;
	struct kiln_nonce_rec *nonce;
	const char *lot, *product, *station, *cert_serial;
	const uint8_t *nonce_sha256, *request_sha256;
	int64_t when;               /* closing time or time of use */
	int64_t issued;             /* consume: the count handed back */
	struct kiln_nonce_rec *out; /* nonce use */
};

static kiln_result line_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct line_op *o = ctx;

	switch (o->kind) {
	case L_BATCH_ADD:
		return kiln_store_tx_batch_add(tx, o->batch, d);
	case L_BATCH_CLOSE:
		return kiln_store_tx_batch_close(tx, o->lot, o->when, d);
	case L_CONSUME:
		return kiln_store_tx_batch_consume(tx, o->lot, o->product, &o->issued, d);
	case L_NONCE_ADD:
		return kiln_store_tx_nonce_add(tx, o->nonce, d);
	case L_NONCE_USE:
		return kiln_store_tx_nonce_use(tx, o->nonce_sha256, o->station, o->when,
					       o->request_sha256, o->cert_serial, o->out, d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

static kiln_result line(kiln_store *s, struct line_op *o, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_store_write(s, line_fn, o, d);
}

static kiln_result batch_add(kiln_store *s, struct kiln_batch_rec *b, kiln_diag *d)
{
	struct line_op o = { .kind = L_BATCH_ADD, .batch = b };

	return line(s, &o, d);
}

static kiln_result batch_close(kiln_store *s, const char *lot, int64_t when, kiln_diag *d)
{
	struct line_op o = { .kind = L_BATCH_CLOSE, .lot = lot, .when = when };

	return line(s, &o, d);
}

static kiln_result consume(kiln_store *s, const char *lot, const char *product, int64_t *issued,
			   kiln_diag *d)
{
	struct line_op o = { .kind = L_CONSUME, .lot = lot, .product = product, .issued = -1 };
	kiln_result r = line(s, &o, d);

	if (issued != NULL)
		*issued = o.issued;
	return r;
}

static kiln_result nonce_add(kiln_store *s, struct kiln_nonce_rec *n, kiln_diag *d)
{
	struct line_op o = { .kind = L_NONCE_ADD, .nonce = n };

	return line(s, &o, d);
}

static kiln_result nonce_use(kiln_store *s, const uint8_t *sha, const char *station, int64_t now,
			     const uint8_t *request, const char *serial, struct kiln_nonce_rec *out,
			     kiln_diag *d)
{
	struct line_op o = { .kind = L_NONCE_USE, .nonce_sha256 = sha, .station = station,
			     .when = now, .request_sha256 = request, .cert_serial = serial,
			     .out = out };

	return line(s, &o, d);
}

static struct kiln_batch_rec batch_rec(const char *lot, const char *product, int64_t quantity)
{
	struct kiln_batch_rec b = { 0 };

	assert_true(kiln_is_ok(kiln_strlcpy(b.lot, lot, sizeof(b.lot))));
	assert_true(kiln_is_ok(kiln_strlcpy(b.product, product, sizeof(b.product))));
	b.quantity = quantity;
	memcpy(b.line, "line-2", 7);
	memcpy(b.opened_by, "olivia", 7);
	return b;
}

static void open_batch(kiln_store *s, const char *lot, const char *product, int64_t quantity)
{
	struct kiln_batch_rec b = batch_rec(lot, product, quantity);
	kiln_diag d;

	KT_OK(batch_add(s, &b, &d));
}

static struct kiln_batch_rec batch_read(kiln_store *s, const char *lot)
{
	struct kiln_batch_rec b = { 0 };
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_store_batch_get(s, lot, &b, &d));
	return b;
}

static struct kiln_nonce_rec nonce_rec(uint8_t fill, const char *station, const char *lot,
				       int64_t issued, int64_t expires)
{
	struct kiln_nonce_rec n = { 0 };

	memset(n.nonce_sha256, fill, sizeof(n.nonce_sha256));
	assert_true(kiln_is_ok(kiln_strlcpy(n.station, station, sizeof(n.station))));
	assert_true(kiln_is_ok(kiln_strlcpy(n.lot, lot, sizeof(n.lot))));
	n.issued = issued;
	n.expires = expires;
	return n;
}

/* Records a nonce whose digest is fill, 32 times. */
static void add_nonce(kiln_store *s, uint8_t fill, const char *station, const char *lot,
		      int64_t issued, int64_t expires)
{
	struct kiln_nonce_rec n = nonce_rec(fill, station, lot, issued, expires);
	kiln_diag d;

	KT_OK(nonce_add(s, &n, &d));
}

static struct kiln_nonce_rec nonce_read(kiln_store *s, uint8_t fill)
{
	struct kiln_nonce_rec n = { 0 };
	uint8_t sha[32];
	kiln_diag d;

	memset(sha, fill, sizeof(sha));
	kiln_diag_clear(&d);
	KT_OK(kiln_store_nonce_get(s, sha, &n, &d));
	return n;
}

static kiln_result use(kiln_store *s, uint8_t fill, const char *station, int64_t now,
		       struct kiln_nonce_rec *out, kiln_diag *d)
{
	uint8_t sha[32], req[32];

	memset(sha, fill, sizeof(sha));
	memset(req, 0xaa, sizeof(req));
	return nonce_use(s, sha, station, now, req, "0a0b", out, d);
}

/* ------------------------------------------------------------ batches */

static void test_batch_add(void **state)
{
	struct fx *f = *state;
	static const char *const bad_lots[] = { "", ".", "..", "a/b", "a b", "lot\n", "\xc3\xa9",
						"L%2F", "L:1" };
	struct kiln_batch_rec b, got;
	kiln_diag d;

	(void)base(f->s);
	b = batch_rec("LOT-2026.11_a", "widget", 100);
	KT_OK(batch_add(f->s, &b, &d));
	assert_string_equal(b.status, "open");
	assert_true(b.created > 0);
	got = batch_read(f->s, "LOT-2026.11_a");
	assert_string_equal(got.product, "widget");
	assert_int_equal(got.quantity, 100);
	assert_int_equal(got.issued, 0);
	assert_string_equal(got.line, "line-2");
	assert_string_equal(got.station, "");
	assert_string_equal(got.status, "open");
	assert_string_equal(got.opened_by, "olivia");
	assert_int_equal(got.created, b.created);
	assert_int_equal(got.closed, 0);

	b = batch_rec("LOT-2026.11_a", "widget", 5);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "batch LOT-2026.11_a already exists");
	assert_int_equal(batch_read(f->s, "LOT-2026.11_a").quantity, 100);
	b = batch_rec("L2", "gizmo", 5);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_UNKNOWN_PRODUCT);
	assert_string_equal(d.text, "product gizmo has no policy");

	/* The quantity is 1 .. 10^9. */
	b = batch_rec("L3", "widget", 0);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "batch L3: the quantity must be 1 to 1000000000");
	b.quantity = 1000000001;
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b.quantity = -1;
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b.quantity = 1000000000;
	b.created = 77;
	memcpy(b.station, "station-9", 10);
	KT_OK(batch_add(f->s, &b, &d));
	got = batch_read(f->s, "L3");
	assert_int_equal(got.created, 77);
	assert_string_equal(got.station, "station-9");

	/* Lots: [A-Za-z0-9._-]{1,63}, not "." or "..". */
	for (size_t i = 0; i < sizeof(bad_lots) / sizeof(bad_lots[0]); i++) {
		b = batch_rec(bad_lots[i], "widget", 5);
		KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
		assert_string_equal(d.text,
				    "invalid batch lot: use 1 to 63 letters, digits, '.', '_' or '-'");
	}
	b = batch_rec("", "widget", 5);
	memset(b.lot, 'y', sizeof(b.lot)); /* 64 characters, no terminator */
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b.lot[63] = '\0'; /* 63 is the longest */
	KT_OK(batch_add(f->s, &b, &d));

	/* A new batch is open, with nothing issued, and says who opened it. */
	b = batch_rec("L5", "widget", 5);
	b.issued = 1;
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "batch L5: a new batch is open, with nothing issued");
	b = batch_rec("L5", "widget", 5);
	memcpy(b.status, "closed", 7);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b = batch_rec("L5", "widget", 5);
	b.closed = 5;
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b = batch_rec("L5", "widget", 5);
	b.opened_by[0] = '\0';
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b = batch_rec("L5", "widget", 5);
	memcpy(b.station, "st\n1", 5);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	b = batch_rec("L5", "wid/get", 5);
	KT_ERR(batch_add(f->s, &b, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "batches"), 3);
}

static void test_batch_close(void **state)
{
	struct fx *f = *state;
	struct kiln_batch_rec got;
	int64_t before;
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	KT_OK(batch_close(f->s, "L1", T_2026_11_21, &d));
	got = batch_read(f->s, "L1");
	assert_string_equal(got.status, "closed");
	assert_int_equal(got.closed, T_2026_11_21);

	KT_ERR(batch_close(f->s, "L1", 0, &d), KILN_ERR_BATCH_CLOSED);
	assert_string_equal(d.text, "batch L1 is already closed");
	assert_int_equal(batch_read(f->s, "L1").closed, T_2026_11_21); /* untouched */
	KT_ERR(batch_close(f->s, "NOPE", 0, &d), KILN_ERR_BATCH_UNKNOWN);
	assert_string_equal(d.text, "no batch NOPE");
	KT_ERR(batch_close(f->s, "a/b", 0, &d), KILN_ERR_ARG);
	KT_ERR(batch_close(f->s, NULL, 0, &d), KILN_ERR_ARG);

	/* 0 means now. */
	open_batch(f->s, "L2", "widget", 10);
	KT_ERR(batch_close(f->s, "L2", -1, &d), KILN_ERR_ARG);
	before = kiln_now();
	KT_OK(batch_close(f->s, "L2", 0, &d));
	got = batch_read(f->s, "L2");
	assert_true(got.closed >= before && got.closed <= kiln_now());
}

static void test_batch_consume(void **state)
{
	struct fx *f = *state;
	int64_t issued = -1;
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 3);
	for (int64_t i = 1; i <= 3; i++) {
		KT_OK(consume(f->s, "L1", "widget", &issued, &d));
		assert_int_equal(issued, i);
	}
	KT_ERR(consume(f->s, "L1", "widget", &issued, &d), KILN_ERR_BATCH_QUOTA);
	assert_string_equal(d.text, "batch L1 has issued all 3 of its quantity");
	assert_int_equal(batch_read(f->s, "L1").issued, 3);

	/* Close, then consume. */
	open_batch(f->s, "L2", "widget", 10);
	KT_OK(consume(f->s, "L2", "widget", &issued, &d));
	assert_int_equal(issued, 1);
	KT_OK(batch_close(f->s, "L2", 0, &d));
	KT_ERR(consume(f->s, "L2", "widget", &issued, &d), KILN_ERR_BATCH_CLOSED);
	assert_string_equal(d.text, "batch L2 is closed");
	assert_int_equal(batch_read(f->s, "L2").issued, 1);

	KT_ERR(consume(f->s, "NOPE", "widget", &issued, &d), KILN_ERR_BATCH_UNKNOWN);
	assert_string_equal(d.text, "no batch NOPE");
	KT_ERR(consume(f->s, "a/b", "widget", &issued, &d), KILN_ERR_ARG);
	KT_ERR(consume(f->s, "L1", "wid get", &issued, &d), KILN_ERR_ARG);
	KT_ERR(consume(f->s, "L1", NULL, &issued, &d), KILN_ERR_ARG);

	/* The count out is optional. */
	open_batch(f->s, "L3", "widget", 10);
	{
		struct line_op o = { .kind = L_CONSUME, .lot = "L3", .product = "widget" };

		kiln_diag_clear(&d);
		KT_OK(kiln_store_write(f->s, line_fn, &o, &d));
	}
	assert_int_equal(batch_read(f->s, "L3").issued, 1);
}

/* Which reason wins when several hold: the wrong product, then closed, then quota. */
static void test_consume_why_order(void **state)
{
	struct fx *f = *state;
	struct kiln_policy_rec gadget = policy_rec("gadget", "production", "active");
	kiln_diag d;

	(void)base(f->s);
	KT_OK(run(f->s, OP_POLICY, &gadget, &d));
	open_batch(f->s, "L1", "widget", 1);
	KT_OK(consume(f->s, "L1", "widget", NULL, &d));
	KT_OK(batch_close(f->s, "L1", 0, &d));
	/* Closed and used up, and asked for another product. */
	KT_ERR(consume(f->s, "L1", "gadget", NULL, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "batch L1 is for product widget, not gadget");
	KT_ERR(consume(f->s, "L1", "widget", NULL, &d), KILN_ERR_BATCH_CLOSED);
	assert_string_equal(d.text, "batch L1 is closed");

	open_batch(f->s, "L2", "widget", 1);
	KT_OK(consume(f->s, "L2", "widget", NULL, &d));
	KT_ERR(consume(f->s, "L2", "gadget", NULL, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "batch L2 is for product widget, not gadget");
	KT_ERR(consume(f->s, "L2", "widget", NULL, &d), KILN_ERR_BATCH_QUOTA);
	assert_string_equal(d.text, "batch L2 has issued all 1 of its quantity");
	/* An open batch with room, for the wrong product. */
	open_batch(f->s, "L3", "gadget", 5);
	KT_ERR(consume(f->s, "L3", "widget", NULL, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "batch L3 is for product gadget, not widget");
	assert_int_equal(batch_read(f->s, "L3").issued, 0);
	KT_ERR(consume(f->s, "NOPE", "gadget", NULL, &d), KILN_ERR_BATCH_UNKNOWN);
}

/* What fn took from a batch goes back when fn fails after it. */
struct take_then_fail {
	const char *lot;
	unsigned takes;
	bool fail;
};

static kiln_result take_then_fail_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct take_then_fail *t = ctx;

	for (unsigned i = 0; i < t->takes; i++)
		KILN_GUARD(kiln_store_tx_batch_consume(tx, t->lot, "widget", NULL, d));
	if (t->fail)
		return kiln_diag_set(d, KILN_ERR_HSM, "signing failed after the batch was charged");
	return kiln_ok();
}

static void test_consume_undone_with_fn(void **state)
{
	struct fx *f = *state;
	struct take_then_fail t = { .lot = "L1", .takes = 2, .fail = true };
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 2);
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, take_then_fail_fn, &t, &d), KILN_ERR_HSM);
	assert_int_equal(batch_read(f->s, "L1").issued, 0);
	/* The third take fails on quota: the two before it go back too. */
	t.takes = 3;
	t.fail = false;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, take_then_fail_fn, &t, &d), KILN_ERR_BATCH_QUOTA);
	assert_int_equal(batch_read(f->s, "L1").issued, 0);
	t.takes = 2;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, take_then_fail_fn, &t, &d));
	assert_int_equal(batch_read(f->s, "L1").issued, 2);
}

/* ------------------------------------------------------------ nonces */

struct act_op {
	const uint8_t *nonce_sha256, *binding;
};

static kiln_result act_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct act_op *a = ctx;

	return kiln_store_tx_activation_add(tx, a->nonce_sha256, a->binding, d);
}

/* TPM credential activations: one per existing nonce, read back as written. */
static void test_activation(void **state)
{
	struct fx *f = *state;
	struct kiln_nonce_rec n;
	uint8_t sha[32], bind[32], got[32], other[32];
	struct act_op a = { sha, bind };
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	n = nonce_rec(0x21, "station-1", "L1", 0, kiln_now() + 600);
	KT_OK(nonce_add(f->s, &n, &d));
	memset(sha, 0x21, sizeof(sha));
	memset(bind, 0xab, sizeof(bind));
	KT_ERR(kiln_store_activation_get(f->s, sha, got, &d), KILN_ERR_NOT_FOUND);
	KT_OK(kiln_store_write(f->s, act_fn, &a, &d));
	KT_OK(kiln_store_activation_get(f->s, sha, got, &d));
	assert_memory_equal(got, bind, 32);
	memset(bind, 0xcd, sizeof(bind));
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, act_fn, &a, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "already made for this nonce"));
	KT_OK(kiln_store_activation_get(f->s, sha, got, &d));
	assert_int_equal(got[0], 0xab);
	memset(other, 0x77, sizeof(other));
	a.nonce_sha256 = other;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, act_fn, &a, &d), KILN_ERR_NONCE_UNKNOWN);
}

static void test_nonce_add(void **state)
{
	struct fx *f = *state;
	struct kiln_nonce_rec n, got;
	int64_t now = kiln_now();
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	n = nonce_rec(0x01, "station-1", "L1", 0, now + 600);
	KT_OK(nonce_add(f->s, &n, &d));
	assert_true(n.issued >= now && n.issued <= kiln_now());
	got = nonce_read(f->s, 0x01);
	assert_int_equal(got.nonce_sha256[0], 0x01);
	assert_int_equal(got.nonce_sha256[31], 0x01);
	assert_string_equal(got.station, "station-1");
	assert_string_equal(got.lot, "L1");
	assert_int_equal(got.issued, n.issued);
	assert_int_equal(got.expires, now + 600);
	assert_int_equal(got.used, 0);
	assert_string_equal(got.cert_serial, "");

	n = nonce_rec(0x01, "station-2", "L1", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "the nonce was already issued");
	assert_string_equal(nonce_read(f->s, 0x01).station, "station-1");
	n = nonce_rec(0x02, "station-1", "NOPE", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_BATCH_UNKNOWN);
	assert_string_equal(d.text, "no batch NOPE");
	open_batch(f->s, "L2", "widget", 10);
	KT_OK(batch_close(f->s, "L2", 0, &d));
	n = nonce_rec(0x03, "station-1", "L2", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_BATCH_CLOSED);
	assert_string_equal(d.text, "batch L2 is closed");

	/* It must expire after it is issued. */
	n = nonce_rec(0x04, "station-1", "L1", 1000, 1000);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "a nonce must expire after it is issued");
	n = nonce_rec(0x04, "station-1", "L1", 0, 5); /* issued now, expired long ago */
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "station-1", "L1", 0, 0);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	/* New nonces are unused; the station and the lot are names kiln accepts. */
	n = nonce_rec(0x04, "station-1", "L1", 0, now + 600);
	n.used = 7;
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "station-1", "L1", 0, now + 600);
	memcpy(n.cert_serial, "ab", 3);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "", "L1", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "st\x7f", "L1", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "station-1", "..", 0, now + 600);
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	n = nonce_rec(0x04, "station-1", "L1", 0, now + 600);
	memset(n.station, 's', sizeof(n.station));
	KT_ERR(nonce_add(f->s, &n, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "nonces"), 1);
}

static void test_nonce_use(void **state)
{
	struct fx *f = *state;
	struct kiln_nonce_rec out = { 0 }, again = { 0 }, got;
	uint8_t sha[32], req[32], other_req[32], zero[32] = { 0 };
	int64_t before;
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	add_nonce(f->s, 0x11, "station-1", "L1", 1000, 2000);
	memset(sha, 0x11, sizeof(sha));
	memset(req, 0xaa, sizeof(req));
	memset(other_req, 0xbb, sizeof(other_req));
	KT_OK(nonce_use(f->s, sha, "station-1", 1500, req, "0a0b", &out, &d));
	assert_memory_equal(out.nonce_sha256, sha, 32);
	assert_int_equal(out.used, 1500);
	assert_string_equal(out.station, "station-1");
	assert_string_equal(out.lot, "L1");
	assert_int_equal(out.issued, 1000);
	assert_int_equal(out.expires, 2000);
	assert_memory_equal(out.request_sha256, req, 32);
	assert_string_equal(out.cert_serial, "0a0b");
	got = nonce_read(f->s, 0x11);
	assert_memory_equal(&got, &out, sizeof(got));

	/* Used once: a second use is refused and out shows the first one. */
	KT_ERR(nonce_use(f->s, sha, "station-1", 1600, other_req, "0c", &again, &d),
	       KILN_ERR_NONCE_REPLAY);
	assert_string_equal(d.text, "the nonce was already used");
	assert_int_equal(again.used, 1500);
	assert_memory_equal(again.request_sha256, req, 32);
	assert_string_equal(again.cert_serial, "0a0b");
	/* The same request again is refused too: the caller decides what a resend gets. */
	KT_ERR(nonce_use(f->s, sha, "station-1", 1600, req, "0a0b", NULL, &d), KILN_ERR_NONCE_REPLAY);
	got = nonce_read(f->s, 0x11);
	assert_int_equal(got.used, 1500);
	assert_string_equal(got.cert_serial, "0a0b");

	/* Neither a request digest nor a certificate: stored as NULL, read as zeros and "". */
	add_nonce(f->s, 0x12, "station-1", "L1", 1000, 2000);
	memset(sha, 0x12, sizeof(sha));
	KT_OK(nonce_use(f->s, sha, "station-1", 1500, NULL, NULL, NULL, &d));
	got = nonce_read(f->s, 0x12);
	assert_int_equal(got.used, 1500);
	assert_memory_equal(got.request_sha256, zero, 32);
	assert_string_equal(got.cert_serial, "");
	add_nonce(f->s, 0x13, "station-1", "L1", 1000, 2000);
	memset(sha, 0x13, sizeof(sha));
	KT_OK(nonce_use(f->s, sha, "station-1", 1500, NULL, "", NULL, &d));
	assert_string_equal(nonce_read(f->s, 0x13).cert_serial, "");

	/* Time 0 means now. */
	before = kiln_now();
	add_nonce(f->s, 0x14, "station-1", "L1", 0, before + 600);
	memset(sha, 0x14, sizeof(sha));
	KT_OK(nonce_use(f->s, sha, "station-1", 0, req, "01", NULL, &d));
	got = nonce_read(f->s, 0x14);
	assert_true(got.used >= before && got.used <= kiln_now());
}

/* unknown, then station, then replay, then expiry. */
static void test_nonce_why_order(void **state)
{
	struct fx *f = *state;
	struct kiln_nonce_rec out;
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	add_nonce(f->s, 0x21, "station-a", "L1", 1000, 2000);
	KT_OK(use(f->s, 0x21, "station-a", 1500, NULL, &d));

	memset(&out, 0x5c, sizeof(out));
	KT_ERR(use(f->s, 0x99, "station-a", 1500, &out, &d), KILN_ERR_NONCE_UNKNOWN);
	assert_string_equal(d.text, "unknown nonce");
	assert_int_equal(out.used, (int64_t)0x5c5c5c5c5c5c5c5cLL); /* untouched */

	/* Used, expired and from another station: the station is what is wrong first. */
	KT_ERR(use(f->s, 0x21, "station-b", 3000, &out, &d), KILN_ERR_NONCE_STATION);
	assert_string_equal(d.text, "the nonce was issued to station station-a, not station-b");
	assert_string_equal(out.station, "station-a");
	assert_int_equal(out.used, 1500);
	/* Used and expired. */
	KT_ERR(use(f->s, 0x21, "station-a", 3000, &out, &d), KILN_ERR_NONCE_REPLAY);
	assert_string_equal(d.text, "the nonce was already used");

	/* Unused: expired and from another station, then expired alone. */
	add_nonce(f->s, 0x22, "station-a", "L1", 1000, T_2026_11_21);
	KT_ERR(use(f->s, 0x22, "station-b", T_2026_11_21 + 5, &out, &d), KILN_ERR_NONCE_STATION);
	assert_string_equal(d.text, "the nonce was issued to station station-a, not station-b");
	KT_ERR(use(f->s, 0x22, "station-a", T_2026_11_21 + 5, &out, &d), KILN_ERR_NONCE_EXPIRED);
	assert_string_equal(d.text, "the nonce expired at 2026-11-21T12:00:00Z");
	assert_int_equal(out.used, 0);
	KT_ERR(use(f->s, 0x22, "station-b", 1500, &out, &d), KILN_ERR_NONCE_STATION);
	/* No refusal used it up. */
	assert_int_equal(nonce_read(f->s, 0x22).used, 0);
	KT_OK(use(f->s, 0x22, "station-a", 1500, NULL, &d));
}

/* A nonce is usable while now < expires: at expires it has expired. */
static void test_nonce_expiry_boundary(void **state)
{
	struct fx *f = *state;
	kiln_diag d;

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	add_nonce(f->s, 0x31, "station-1", "L1", T_2026_11_21 - 600, T_2026_11_21);
	KT_ERR(use(f->s, 0x31, "station-1", T_2026_11_21, NULL, &d), KILN_ERR_NONCE_EXPIRED);
	assert_string_equal(d.text, "the nonce expired at 2026-11-21T12:00:00Z");
	KT_ERR(use(f->s, 0x31, "station-1", T_2026_11_21 + 1, NULL, &d), KILN_ERR_NONCE_EXPIRED);
	assert_int_equal(nonce_read(f->s, 0x31).used, 0);
	KT_OK(use(f->s, 0x31, "station-1", T_2026_11_21 - 1, NULL, &d));
	assert_int_equal(nonce_read(f->s, 0x31).used, T_2026_11_21 - 1);
}

static void test_nonce_use_args(void **state)
{
	struct fx *f = *state;
	uint8_t sha[32];
	char longname[KILN_STORE_NAME_MAX + 1];
	char longserial[KILN_STORE_SERIAL_HEX + 1];
	kiln_diag d;

	memset(sha, 0x41, sizeof(sha));
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(longserial, 'a', sizeof(longserial) - 1);
	longserial[sizeof(longserial) - 1] = '\0';
	KT_ERR(nonce_use(f->s, NULL, "station-1", 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, NULL, 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, "", 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, "a\nb", 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, longname, 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, "station-1", -1, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(nonce_use(f->s, sha, "station-1", 0, NULL, "0A", NULL, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "invalid certificate serial: 1 to 40 lower-case hex digits");
	KT_ERR(nonce_use(f->s, sha, "station-1", 0, NULL, longserial, NULL, &d), KILN_ERR_ARG);
	/* Valid arguments reach the database. */
	KT_ERR(nonce_use(f->s, sha, "station-1", 0, NULL, "0a", NULL, &d), KILN_ERR_NONCE_UNKNOWN);
}

/* ------------------------------------------------------------ the hot path, grouped */

struct provision {
	const char *device_serial;
	uint8_t request[32];
};

/* Nonce, batch, device: all of it or none of it. */
static kiln_result provision_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct provision *p = ctx;
	struct kiln_device_rec dev = device_rec("widget", p->device_serial, 1);
	uint8_t sha[32];

	memset(sha, 0x51, sizeof(sha));
	KILN_GUARD(kiln_store_tx_nonce_use(tx, sha, "station-1", 0, p->request, "0abc", NULL, d));
	KILN_GUARD(kiln_store_tx_batch_consume(tx, "L1", "widget", NULL, d));
	return kiln_store_tx_device_add(tx, &dev, d);
}

static void test_hot_path_undone_whole(void **state)
{
	struct fx *f = *state;
	struct kiln_device_rec dev = device_rec("widget", "SN1", 1);
	struct provision p = { .device_serial = "SN1" };
	kiln_diag d;

	(void)base(f->s);
	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	open_batch(f->s, "L1", "widget", 10);
	add_nonce(f->s, 0x51, "station-1", "L1", 0, kiln_now() + 600);
	memset(p.request, 0xcd, sizeof(p.request));

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, provision_fn, &p, &d), KILN_ERR_DEVICE_DUPLICATE);
	assert_string_equal(d.text, "device widget/SN1 already exists");
	assert_int_equal(nonce_read(f->s, 0x51).used, 0);
	assert_int_equal(batch_read(f->s, "L1").issued, 0);

	p.device_serial = "SN2";
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, provision_fn, &p, &d));
	assert_true(nonce_read(f->s, 0x51).used > 0);
	assert_int_equal(batch_read(f->s, "L1").issued, 1);

	p.device_serial = "SN3";
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, provision_fn, &p, &d), KILN_ERR_NONCE_REPLAY);
	assert_int_equal(batch_read(f->s, "L1").issued, 1);
	assert_int_equal(count(f->s, "devices"), 2);
}

/* ------------------------------------------------------------ races */

#define RACERS 8
#define QUOTA 100
#define ATTEMPTS 200 /* in all, split among the racers */

struct consumer {
	kiln_store *s;
	pthread_barrier_t *start;
	unsigned ok, quota;
	int64_t counts[ATTEMPTS];
	char problem[256];
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;

	(void)pthread_barrier_wait(c->start);
	for (unsigned i = 0; i < ATTEMPTS / RACERS; i++) {
		struct line_op o = { .kind = L_CONSUME, .lot = "L1", .product = "widget" };
		kiln_diag d;
		kiln_result r;

		kiln_diag_clear(&d);
		r = kiln_store_write(c->s, line_fn, &o, &d);
		if (kiln_is_ok(r)) {
			c->counts[c->ok++] = o.issued;
		} else if (r.code == KILN_ERR_BATCH_QUOTA &&
			   strcmp(d.text, "batch L1 has issued all 100 of its quantity") == 0) {
			c->quota++;
		} else {
			(void)snprintf(c->problem, sizeof(c->problem), "attempt %u: code %d: %.200s", i,
				       r.code, d.text);
			return NULL;
		}
	}
	return NULL;
}

static void test_batch_quota_concurrent(void **state)
{
	struct fx *f = *state;
	struct consumer *c = calloc(RACERS, sizeof(*c));
	bool seen[QUOTA + 1] = { false };
	pthread_barrier_t start;
	pthread_t th[RACERS];
	unsigned ok = 0, quota = 0;
	struct kiln_store_stats st;

	assert_non_null(c);
	(void)base(f->s);
	open_batch(f->s, "L1", "widget", QUOTA);
	assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
	for (unsigned t = 0; t < RACERS; t++) {
		c[t].s = f->s;
		c[t].start = &start;
		assert_int_equal(pthread_create(&th[t], NULL, consumer_main, &c[t]), 0);
	}
	for (unsigned t = 0; t < RACERS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	(void)pthread_barrier_destroy(&start);
	for (unsigned t = 0; t < RACERS; t++) {
		if (c[t].problem[0] != '\0')
			fail_msg("racer %u: %s", t, c[t].problem);
		ok += c[t].ok;
		quota += c[t].quota;
		/* Every count handed back is 1..100 and handed back once. */
		for (unsigned i = 0; i < c[t].ok; i++) {
			int64_t n = c[t].counts[i];

			if (n < 1 || n > QUOTA || seen[n])
				fail_msg("racer %u got count %lld twice or out of range", t, (long long)n);
			seen[n] = true;
		}
	}
	assert_int_equal(ok, QUOTA);
	assert_int_equal(quota, ATTEMPTS - QUOTA);
	assert_int_equal(batch_read(f->s, "L1").issued, QUOTA);
	kiln_store_stats(f->s, &st);
	assert_true(st.jobs >= ATTEMPTS);
	free(c);
}

#define NONCE_ROUNDS 10

struct nonce_racer {
	kiln_store *s;
	pthread_barrier_t *start;
	uint8_t fill;
	unsigned id;
	kiln_err code;
	char text[KILN_DIAG_MAX];
};

static void *nonce_racer_main(void *arg)
{
	struct nonce_racer *u = arg;
	uint8_t sha[32], req[32];
	char serial[8];
	kiln_diag d;

	memset(sha, u->fill, sizeof(sha));
	memset(req, (int)u->id + 1, sizeof(req));
	(void)snprintf(serial, sizeof(serial), "%02x", u->id + 1);
	(void)pthread_barrier_wait(u->start);
	u->code = nonce_use(u->s, sha, "station-1", 0, req, serial, NULL, &d).code;
	memcpy(u->text, d.text, sizeof(u->text));
	return NULL;
}

static void test_nonce_once_concurrent(void **state)
{
	struct fx *f = *state;
	struct nonce_racer u[RACERS];
	pthread_barrier_t start;
	pthread_t th[RACERS];

	(void)base(f->s);
	open_batch(f->s, "L1", "widget", 10);
	for (unsigned round = 0; round < NONCE_ROUNDS; round++) {
		uint8_t fill = (uint8_t)(0x60 + round);
		unsigned winners = 0, winner = 0;
		struct kiln_nonce_rec got;
		char serial[16];

		add_nonce(f->s, fill, "station-1", "L1", 0, kiln_now() + 600);
		assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
		for (unsigned t = 0; t < RACERS; t++) {
			u[t] = (struct nonce_racer){ .s = f->s, .start = &start, .fill = fill, .id = t };
			assert_int_equal(pthread_create(&th[t], NULL, nonce_racer_main, &u[t]), 0);
		}
		for (unsigned t = 0; t < RACERS; t++)
			assert_int_equal(pthread_join(th[t], NULL), 0);
		(void)pthread_barrier_destroy(&start);
		for (unsigned t = 0; t < RACERS; t++) {
			if (u[t].code == KILN_OK) {
				winners++;
				winner = t;
				continue;
			}
			if (u[t].code != KILN_ERR_NONCE_REPLAY ||
			    strcmp(u[t].text, "the nonce was already used") != 0)
				fail_msg("round %u racer %u: code %d: %s", round, t, u[t].code, u[t].text);
		}
		assert_int_equal(winners, 1);
		/* The row holds the winner's request and certificate. */
		got = nonce_read(f->s, fill);
		assert_int_equal(got.request_sha256[0], winner + 1);
		(void)snprintf(serial, sizeof(serial), "%02x", winner + 1);
		assert_string_equal(got.cert_serial, serial);
	}
}

/* ------------------------------------------------------------ revocation */

struct revoke_op {
	const char *serial, *reason;
	int64_t when;
	int times; /* revoke this many times in one transaction */
};

static kiln_result revoke_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct revoke_op *o = ctx;

	for (int i = 0; i < o->times; i++)
		KILN_GUARD(kiln_store_tx_cert_revoke(tx, o->serial, o->reason, o->when, d));
	return kiln_ok();
}

static kiln_result revoke(kiln_store *s, const char *serial, const char *reason, int64_t when,
			  kiln_diag *d)
{
	struct revoke_op o = { serial, reason, when, 1 };

	kiln_diag_clear(d);
	return kiln_store_write(s, revoke_fn, &o, d);
}

static struct kiln_device_rec device_read(kiln_store *s, int64_t id)
{
	struct kiln_device_rec dev = { 0 };
	char ref[32];
	kiln_diag d;

	(void)snprintf(ref, sizeof(ref), "%lld", (long long)id);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_device_get(s, ref, &dev, &d));
	return dev;
}

/* A device SN with its current certificate serial, issued by ca. */
static int64_t device_with_cert(kiln_store *s, int64_t ca, const char *sn, const char *serial)
{
	struct kiln_device_rec dev = device_rec("widget", sn, 1);
	struct kiln_cert_rec c;
	kiln_diag d;

	assert_true(kiln_is_ok(kiln_strlcpy(dev.cert_serial, serial, sizeof(dev.cert_serial))));
	KT_OK(run(s, OP_DEVICE, &dev, &d));
	c = cert_rec(serial, ca, "production", "widget", dev.id);
	KT_OK(run(s, OP_CERT, &c, &d));
	return dev.id;
}

static void test_cert_revoke(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	int64_t dev = device_with_cert(f->s, ca, "SN1", "0a");
	struct kiln_cert_rec got = { 0 }, tls;
	struct kiln_device_rec dr;
	kiln_diag d;

	KT_OK(revoke(f->s, "0a", "keyCompromise", T_2026_11_21, &d));
	KT_OK(kiln_store_cert_get(f->s, "0a", &got, &d));
	assert_string_equal(got.status, "revoked");
	assert_int_equal(got.revoked_at, T_2026_11_21);
	assert_string_equal(got.reason, "keyCompromise");
	kiln_cert_rec_cleanup(&got);
	dr = device_read(f->s, dev);
	assert_string_equal(dr.status, "revoked");
	assert_int_equal(count(f->s, "revocations"), 1);

	/* A certificate that certifies no device; when 0 means now. */
	tls = cert_rec("ff", ca, "production", "", 0);
	KT_OK(run(f->s, OP_CERT, &tls, &d));
	KT_OK(revoke(f->s, "ff", "cessationOfOperation", 0, &d));
	KT_OK(kiln_store_cert_get(f->s, "ff", &got, &d));
	assert_true(got.revoked_at >= kiln_now() - 5 && got.revoked_at <= kiln_now());
	assert_string_equal(got.reason, "cessationOfOperation");
	kiln_cert_rec_cleanup(&got);
	assert_int_equal(count(f->s, "revocations"), 2);
}

static void test_cert_revoke_refused(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	int64_t events;
	struct kiln_cert_rec got = { 0 };
	struct revoke_op twice = { "0b", "unspecified", 0, 2 };
	kiln_diag d;

	(void)device_with_cert(f->s, ca, "SN1", "0a");
	(void)device_with_cert(f->s, ca, "SN2", "0b");
	events = count(f->s, "events");
	KT_ERR(revoke(f->s, "0c", "keyCompromise", 0, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no certificate 0c");
	KT_ERR(revoke(f->s, "0a", "compromised", 0, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "RFC 5280 reason name"));
	KT_ERR(revoke(f->s, "0a", "removeFromCRL", 0, &d), KILN_ERR_ARG);
	KT_ERR(revoke(f->s, "0a", NULL, 0, &d), KILN_ERR_ARG);
	KT_ERR(revoke(f->s, "0A", "keyCompromise", 0, &d), KILN_ERR_ARG);
	KT_ERR(revoke(f->s, "", "keyCompromise", 0, &d), KILN_ERR_ARG);
	KT_ERR(revoke(f->s, NULL, "keyCompromise", 0, &d), KILN_ERR_ARG);
	KT_ERR(revoke(f->s, "0a", "keyCompromise", -1, &d), KILN_ERR_ARG);
	assert_int_equal(count(f->s, "revocations"), 0);
	KT_OK(kiln_store_cert_get(f->s, "0a", &got, &d));
	assert_string_equal(got.status, "valid");
	assert_int_equal(got.revoked_at, 0);
	assert_string_equal(got.reason, "");
	kiln_cert_rec_cleanup(&got);

	KT_OK(revoke(f->s, "0a", "keyCompromise", T_2026_11_21, &d));
	KT_ERR(revoke(f->s, "0a", "superseded", 0, &d), KILN_ERR_ALREADY_REVOKED);
	assert_string_equal(d.text, "certificate 0a was already revoked at 2026-11-21T12:00:00Z");
	KT_OK(kiln_store_cert_get(f->s, "0a", &got, &d));
	assert_string_equal(got.reason, "keyCompromise"); /* the first revocation stands */
	assert_int_equal(got.revoked_at, T_2026_11_21);
	kiln_cert_rec_cleanup(&got);

	/* Twice in one transaction: the second fails, and the whole write with it. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, revoke_fn, &twice, &d), KILN_ERR_ALREADY_REVOKED);
	KT_OK(kiln_store_cert_get(f->s, "0b", &got, &d));
	assert_string_equal(got.status, "valid");
	kiln_cert_rec_cleanup(&got);
	assert_int_equal(count(f->s, "revocations"), 1);
	assert_int_equal(count(f->s, "events"), events);
}

/* Only the device's current certificate revokes the device; a retired device stays retired. */
static void test_cert_revoke_device_rules(void **state)
{
	struct fx *f = *state;
	int64_t ca = base(f->s);
	struct kiln_device_rec dev = device_rec("widget", "SN9", 1);
	struct kiln_cert_rec old, cur;
	kiln_diag d;

	memcpy(dev.cert_serial, "0e", 3);
	KT_OK(run(f->s, OP_DEVICE, &dev, &d));
	old = cert_rec("0d", ca, "production", "widget", dev.id); /* before re-provisioning */
	cur = cert_rec("0e", ca, "production", "widget", dev.id);
	KT_OK(run(f->s, OP_CERT, &old, &d));
	KT_OK(run(f->s, OP_CERT, &cur, &d));
	KT_OK(revoke(f->s, "0d", "superseded", 0, &d));
	assert_string_equal(device_read(f->s, dev.id).status, "active");
	KT_OK(revoke(f->s, "0e", "keyCompromise", 0, &d));
	assert_string_equal(device_read(f->s, dev.id).status, "revoked");
	assert_int_equal(count(f->s, "revocations"), 2);
}

static void test_reason_names(void **state)
{
	static const char *const names[] = {
		"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
		"cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise",
	};
	static const int codes[] = { 0, 1, 2, 3, 4, 5, 6, 9, 10 };
	int code = -1;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_true(kiln_store_reason_ok(names[i], &code));
		assert_int_equal(code, codes[i]);
	}
	assert_false(kiln_store_reason_ok("removeFromCRL", &code));
	assert_false(kiln_store_reason_ok("KeyCompromise", &code));
	assert_false(kiln_store_reason_ok("", &code));
	assert_false(kiln_store_reason_ok(NULL, &code));
	assert_true(kiln_store_reason_ok("superseded", NULL));
}

static void test_tx_null(void **state)
{
	struct kiln_ca_rec ca = ca_rec("x", "production", "root", 0);
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_tx_ca_add(NULL, &ca, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_meta_set(NULL, "k", "v", &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_event_add(NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_batch_add(NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_batch_close(NULL, "L", 0, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_batch_consume(NULL, "L", "widget", NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_nonce_add(NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_nonce_use(NULL, NULL, "s", 0, NULL, NULL, NULL, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_cert_revoke(NULL, "0a", "unspecified", 0, &d), KILN_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_env_and_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_rotation_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_env_immutable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_one_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_version_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_add_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_cert_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_consume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consume_why_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consume_undone_with_fn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_why_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_expiry_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_use_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_path_undone_whole, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_batch_quota_concurrent, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_once_concurrent, setup_group, teardown),
		cmocka_unit_test_setup_teardown(test_cert_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_revoke_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_revoke_device_rules, setup, teardown),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_tx_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
