/*
 * src/store/records.c: every typed write, its defaults and ids, and every
 * way it fails (duplicates with their exact messages, environments mixed,
 * missing references), plus the atomicity of a failed write.
 */
#include "support/support.h"

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

enum op_kind { OP_CA, OP_POLICY, OP_ACTIVATE, OP_DEVICE, OP_CERT, OP_IDENTITY, OP_EVENT, OP_META };

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

	KT_OK(activate(f->s, "widget", 2, &d));
	status_of(f->s, "widget", 1, "superseded");
	status_of(f->s, "widget", 2, "active");

	/* Adding as active supersedes the rest in the same write. */
	KT_OK(run(f->s, OP_POLICY, &p3, &d));
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
	KT_ERR(run(f->s, OP_DEVICE, &dup, &d), KILN_ERR_DUPLICATE);
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

static void test_tx_null(void **state)
{
	struct kiln_ca_rec ca = ca_rec("x", "production", "root", 0);
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_tx_ca_add(NULL, &ca, &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_meta_set(NULL, "k", "v", &d), KILN_ERR_ARG);
	KT_ERR(kiln_store_tx_event_add(NULL, NULL, &d), KILN_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_env_and_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_env_immutable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_one_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_add_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_leaves_nothing, setup, teardown),
		cmocka_unit_test(test_tx_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
