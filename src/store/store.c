/*
 * The store's public face: opening and closing, argument checks, dispatch to
 * the backend, and the record cleanups. Nothing here knows SQL, so a second
 * backend reuses all of it.
 *
 * Every record is checked before a backend sees it: strings must end inside
 * their arrays, enumerations must be known values, sizes are capped. The
 * database's own CHECK constraints and triggers repeat the important ones.
 */
#include "store/store_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- checks */

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* A field of a record array: terminated, and non-empty when required. */
#define FIELD_OK(rec, f, required) \
	(terminated((rec)->f, sizeof((rec)->f)) && (!(required) || (rec)->f[0] != '\0'))

static bool one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++) {
		if (strcmp(v, *set) == 0)
			return true;
	}
	return false;
}

static const char *const ca_envs[] = { "production", "test", "service", NULL };
static const char *const product_envs[] = { "production", "test", NULL };
static const char *const identity_envs[] = { "production", "test", "", NULL };
static const char *const ca_roles[] = { "root", "issuing", "ocsp", NULL };
static const char *const ca_statuses[] = { "active", "retired", NULL };
static const char *const policy_statuses[] = { "", "pending", "active", NULL };
static const char *const device_statuses[] = { "", "active", "revoked", "retired", NULL };
static const char *const cert_statuses[] = { "", "valid", "revoked", NULL };
static const char *const cert_kinds[] = { "device", "identity", "ca", "ocsp", "tls", NULL };
static const char *const identity_roles[] = { "admin", "officer", "engineer", "operator",
					      "station", "auditor", NULL };
static const char *const identity_statuses[] = { "", "active", "revoked", NULL };
static const char *const batch_statuses[] = { "", "open", NULL };

/*
 * Product ids appear in URLs, file names and "product/serial" references:
 * letters, digits, '.', '_' and '-' only, starting with a letter or digit.
 */
static bool product_id_ok(const char *p, size_t cap)
{
	size_t n = strnlen(p, cap);

	if (n == 0 || n == cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

/* Serial numbers are stored one way only, so lookups never miss on case. */
static bool serial_hex_ok(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == 0 || n == cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

/* Field sizes, for lots and product ids that arrive as plain strings. */
#define LOT_CAP sizeof(((struct kiln_batch_rec *)NULL)->lot)
#define PRODUCT_CAP sizeof(((struct kiln_batch_rec *)NULL)->product)

/*
 * Lots appear in URLs (/v1/batches/{lot}/close), on labels and in file names:
 * [A-Za-z0-9._-]{1,63}, and never "." or "..", which paths and URLs treat
 * as directories.
 */
static bool lot_ok(const char *lot)
{
	size_t n = strnlen(lot, LOT_CAP);

	if (n == 0 || n == LOT_CAP)
		return false;
	if (strcmp(lot, ".") == 0 || strcmp(lot, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = lot[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Printable text without control characters (device serials end up in logs and CSVs). */
static bool printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

static kiln_result bad(kiln_diag *d, const char *what)
{
	return kiln_diag_set(d, KILN_ERR_ARG, "invalid %s", what);
}

static kiln_result check_tx(const kiln_store_tx *tx)
{
	KILN_ENSURE(tx != NULL && tx->s != NULL && tx->conn != NULL, KILN_ERR_ARG);
	return kiln_ok();
}

/* -------------------------------------------------------------- open, close */

static kiln_store *store_alloc(const struct kiln_store_opts *opts)
{
	kiln_store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->log = opts->log;
	s->group_commit = opts->group_commit;
	return s;
}

kiln_result kiln_store_open(const struct kiln_store_opts *opts, kiln_store **out, kiln_diag *d)
{
	kiln_store *s = NULL;
	kiln_result r;
	bool commit_ready = false;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	*out = NULL;
	if (opts == NULL || opts->path == NULL || opts->path[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "no inventory database path given");
	s = store_alloc(opts);
	if (s == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory opening the inventory");
	KILN_TRY(r, kiln_store_commit_init(s, d));
	commit_ready = true;
	KILN_TRY(r, kiln_sqlite_open(s, opts, d));
	/* The committer needs an open backend, so it starts last. */
	KILN_TRY(r, kiln_store_commit_start(s, d));
	*out = s;
	return kiln_ok();
out:
	if (s->ops != NULL)
		s->ops->close(s);
	if (commit_ready)
		kiln_store_commit_cleanup(s);
	free(s);
	return r;
}

void kiln_store_close(kiln_store *s)
{
	if (s == NULL)
		return;
	kiln_store_commit_stop(s);
	if (s->ops != NULL)
		s->ops->close(s);
	kiln_store_commit_cleanup(s);
	free(s);
}

/* -------------------------------------------------------------- records */

void kiln_ca_rec_cleanup(struct kiln_ca_rec *r)
{
	if (r == NULL)
		return;
	free(r->cert_der);
	r->cert_der = NULL;
	r->cert_len = 0;
}

void kiln_policy_rec_cleanup(struct kiln_policy_rec *r)
{
	if (r == NULL)
		return;
	free(r->yaml);
	r->yaml = NULL;
	r->yaml_len = 0;
}

void kiln_cert_rec_cleanup(struct kiln_cert_rec *r)
{
	if (r == NULL)
		return;
	if (r->der == r->der_heap) {
		r->der = NULL;
		r->der_len = 0;
	}
	free(r->der_heap);
	r->der_heap = NULL;
}

void kiln_event_rec_cleanup(struct kiln_event_rec *r)
{
	if (r == NULL)
		return;
	if (r->detail_json == r->detail_heap)
		r->detail_json = NULL;
	free(r->detail_heap);
	r->detail_heap = NULL;
}

void kiln_store_ca_list_free(struct kiln_ca_rec *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		kiln_ca_rec_cleanup(&list[i]);
	free(list);
}

void kiln_store_policy_list_free(struct kiln_policy_rec *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		kiln_policy_rec_cleanup(&list[i]);
	free(list);
}

void kiln_store_event_list_free(struct kiln_event_rec *list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		kiln_event_rec_cleanup(&list[i]);
	free(list);
}

void kiln_store_device_list_free(struct kiln_device_rec *list)
{
	free(list);
}

/* -------------------------------------------------------------- writes */

kiln_result kiln_store_tx_ca_add(kiln_store_tx *tx, struct kiln_ca_rec *ca, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(ca != NULL, KILN_ERR_ARG);
	if (!FIELD_OK(ca, name, true) || !printable(ca->name))
		return bad(d, "CA name");
	if (!FIELD_OK(ca, env, true) || !one_of(ca->env, ca_envs))
		return kiln_diag_set(d, KILN_ERR_ARG, "CA %s: env must be production, test or service",
				     ca->name);
	if (!FIELD_OK(ca, role, true) || !one_of(ca->role, ca_roles))
		return kiln_diag_set(d, KILN_ERR_ARG, "CA %s: role must be root, issuing or ocsp",
				     ca->name);
	if (!FIELD_OK(ca, alg, true) || !FIELD_OK(ca, token, false) ||
	    !FIELD_OK(ca, key_label, false) || !FIELD_OK(ca, subject, false))
		return bad(d, "CA record: a text field is empty or not terminated");
	if (!FIELD_OK(ca, serial, false) || (ca->serial[0] != '\0' &&
					     !serial_hex_ok(ca->serial, sizeof(ca->serial))))
		return bad(d, "CA serial: use lower-case hex");
	if (ca->key_id_len > sizeof(ca->key_id) || ca->parent_id < 0)
		return bad(d, "CA record: key id or parent id out of range");
	if ((strcmp(ca->role, "root") == 0) != (ca->parent_id == 0))
		return kiln_diag_set(d, KILN_ERR_ARG, "CA %s: a root has no parent, every other CA has one",
				     ca->name);
	if ((ca->cert_der == NULL && ca->cert_len != 0) || ca->cert_len > KILN_STORE_BLOB_MAX)
		return bad(d, "CA certificate length");
	if (ca->generation < 0 || (ca->generation > 1 && strcmp(ca->role, "root") == 0))
		return bad(d, "CA generation: 1 or more, and only issuing CAs rotate");
	if (!FIELD_OK(ca, status, false) || (ca->status[0] != '\0' && !one_of(ca->status, ca_statuses)))
		return bad(d, "CA status: active or retired");
	return tx->s->ops->ca_add(tx, ca, d);
}

kiln_result kiln_store_tx_ca_retire(kiln_store_tx *tx, int64_t id, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (id <= 0)
		return bad(d, "CA id");
	return tx->s->ops->ca_retire(tx, id, d);
}

kiln_result kiln_store_tx_policy_add(kiln_store_tx *tx, struct kiln_policy_rec *p, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(p != NULL, KILN_ERR_ARG);
	if (!product_id_ok(p->product, sizeof(p->product)))
		return bad(d, "product id: use letters, digits, '.', '_' and '-'");
	if (!FIELD_OK(p, env, true) || !one_of(p->env, product_envs))
		return kiln_diag_set(d, KILN_ERR_ARG, "policy for %s: env must be production or test",
				     p->product);
	if (!FIELD_OK(p, status, false) || !one_of(p->status, policy_statuses))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "policy for %s: a new version is pending or active", p->product);
	if (!FIELD_OK(p, added_by, true))
		return bad(d, "policy added_by: say who added it");
	if (p->yaml == NULL || p->yaml_len == 0 || p->yaml_len > KILN_STORE_BLOB_MAX ||
	    memchr(p->yaml, '\0', p->yaml_len) != NULL)
		return bad(d, "policy text: empty, too big or holding NUL bytes");
	return tx->s->ops->policy_add(tx, p, d);
}

kiln_result kiln_store_tx_policy_activate(kiln_store_tx *tx, const char *product, int64_t version,
					  kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (product == NULL || !product_id_ok(product, KILN_STORE_NAME_MAX) || version < 1)
		return bad(d, "product or policy version");
	return tx->s->ops->policy_activate(tx, product, version, d);
}

kiln_result kiln_store_tx_device_add(kiln_store_tx *tx, struct kiln_device_rec *dev, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(dev != NULL, KILN_ERR_ARG);
	if (!product_id_ok(dev->product, sizeof(dev->product)))
		return bad(d, "device product id");
	if (!FIELD_OK(dev, serial, true) || !printable(dev->serial))
		return bad(d, "device serial: empty or holding control characters");
	if (dev->policy_version < 1)
		return bad(d, "device policy version");
	if (!FIELD_OK(dev, status, false) || !one_of(dev->status, device_statuses))
		return bad(d, "device status: active, revoked or retired");
	if (!FIELD_OK(dev, lot, false) || !FIELD_OK(dev, station, false) ||
	    !FIELD_OK(dev, operator_name, false) || !FIELD_OK(dev, firmware_version, false) ||
	    !FIELD_OK(dev, firmware_sha256, false) || !FIELD_OK(dev, attestation_sha256, false) ||
	    !FIELD_OK(dev, components_json, false) || !FIELD_OK(dev, cert_serial, false))
		return bad(d, "device record: a text field is not terminated");
	return tx->s->ops->device_add(tx, dev, d);
}

kiln_result kiln_store_tx_cert_add(kiln_store_tx *tx, const struct kiln_cert_rec *c, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(c != NULL, KILN_ERR_ARG);
	if (!serial_hex_ok(c->serial, sizeof(c->serial)))
		return bad(d, "certificate serial: 1 to 40 lower-case hex digits");
	if (c->ca_id < 1 || c->device_id < 0)
		return bad(d, "certificate CA id or device id");
	if (!FIELD_OK(c, kind, true) || !one_of(c->kind, cert_kinds))
		return bad(d, "certificate kind: device, identity, ca, ocsp or tls");
	if (!FIELD_OK(c, env, true) || !one_of(c->env, ca_envs))
		return bad(d, "certificate env: production, test or service");
	if (!FIELD_OK(c, product, false) ||
	    (c->product[0] != '\0' && !product_id_ok(c->product, sizeof(c->product))))
		return bad(d, "certificate product id");
	if (!FIELD_OK(c, subject, false) || !FIELD_OK(c, status, false) ||
	    !one_of(c->status, cert_statuses))
		return bad(d, "certificate subject or status");
	if (c->der == NULL || c->der_len == 0 || c->der_len > KILN_STORE_BLOB_MAX)
		return bad(d, "certificate DER: missing or too big");
	return tx->s->ops->cert_add(tx, c, d);
}

kiln_result kiln_store_tx_key_seen(kiln_store_tx *tx, const uint8_t spki_sha256[32], bool *seen,
				   char *holder, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(spki_sha256 != NULL && seen != NULL && holder != NULL, KILN_ERR_ARG);
	*seen = false;
	holder[0] = '\0';
	return tx->s->ops->key_seen(tx, spki_sha256, seen, holder, d);
}

kiln_result kiln_store_tx_policy_version(kiln_store_tx *tx, const char *product, int64_t *version,
					 kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(version != NULL, KILN_ERR_ARG);
	if (product == NULL || !product_id_ok(product, KILN_STORE_NAME_MAX))
		return bad(d, "policy product id");
	return tx->s->ops->policy_version(tx, product, version, d);
}

kiln_result kiln_store_tx_identity_add(kiln_store_tx *tx, const struct kiln_identity_rec *id,
				       kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(id != NULL, KILN_ERR_ARG);
	if (!FIELD_OK(id, name, true) || !printable(id->name))
		return bad(d, "identity name");
	if (!FIELD_OK(id, role, true) || !one_of(id->role, identity_roles))
		return kiln_diag_set(d, KILN_ERR_ARG, "identity %s: role must be admin, officer, "
				     "engineer, operator, station or auditor", id->name);
	if (!FIELD_OK(id, env, false) || !one_of(id->env, identity_envs))
		return bad(d, "identity env: production, test or empty for both");
	if (!FIELD_OK(id, cert_serial, false) || !FIELD_OK(id, status, false) ||
	    !one_of(id->status, identity_statuses))
		return bad(d, "identity certificate serial or status");
	return tx->s->ops->identity_add(tx, id, d);
}

/* The audit trail holds JSON objects only, parsed with core's caps (size, depth, duplicate keys). */
static kiln_result check_detail(const struct kiln_event_rec *ev, kiln_diag *d)
{
	json_t *j = NULL;
	kiln_diag ignored;
	bool object;

	if (strlen(ev->detail_json) > KILN_STORE_BLOB_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "event %s: detail is larger than %zu bytes",
				     ev->type, KILN_STORE_BLOB_MAX);
	kiln_diag_clear(&ignored);
	if (!kiln_is_ok(kiln_json_parse(kiln_slice_str(ev->detail_json), KILN_STORE_BLOB_MAX, &j,
					&ignored)))
		j = NULL;
	object = j != NULL && json_is_object(j);
	json_decref(j);
	if (!object)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "event %s: detail must be a JSON object",
				     ev->type);
	return kiln_ok();
}

kiln_result kiln_store_tx_event_add(kiln_store_tx *tx, struct kiln_event_rec *ev, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(ev != NULL, KILN_ERR_ARG);
	if (!FIELD_OK(ev, type, true) || !FIELD_OK(ev, actor, true) ||
	    !FIELD_OK(ev, subject, false))
		return bad(d, "event: type and actor are required");
	if (ev->detail_json != NULL)
		KILN_GUARD(check_detail(ev, d));
	return tx->s->ops->event_add(tx, ev, d);
}

kiln_result kiln_store_tx_meta_set(kiln_store_tx *tx, const char *key, const char *value,
				   kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (key == NULL || key[0] == '\0' || strnlen(key, KILN_STORE_NAME_MAX) == KILN_STORE_NAME_MAX ||
	    value == NULL || strlen(value) > KILN_STORE_BLOB_MAX)
		return bad(d, "meta key or value");
	return tx->s->ops->meta_set(tx, key, value, d);
}

#define LOT_RULE "1 to 63 letters, digits, '.', '_' or '-'"
#define QUANTITY_MAX 1000000000

kiln_result kiln_store_tx_batch_add(kiln_store_tx *tx, struct kiln_batch_rec *b, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(b != NULL, KILN_ERR_ARG);
	if (!terminated(b->lot, sizeof(b->lot)) || !lot_ok(b->lot))
		return bad(d, "batch lot: use " LOT_RULE);
	if (!product_id_ok(b->product, sizeof(b->product)))
		return bad(d, "batch product id");
	if (b->quantity < 1 || b->quantity > QUANTITY_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG, "batch %s: the quantity must be 1 to %d", b->lot,
				     QUANTITY_MAX);
	if (!FIELD_OK(b, opened_by, true) || !printable(b->opened_by))
		return bad(d, "batch opened_by: say who opened it");
	if (!FIELD_OK(b, line, false) || !printable(b->line) || !FIELD_OK(b, station, false) ||
	    !printable(b->station))
		return bad(d, "batch line or station: not terminated or holding control characters");
	if (!FIELD_OK(b, status, false) || !one_of(b->status, batch_statuses) || b->issued != 0 ||
	    b->closed != 0 || b->created < 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "batch %s: a new batch is open, with nothing "
				     "issued", b->lot);
	return tx->s->ops->batch_add(tx, b, d);
}

kiln_result kiln_store_tx_batch_close(kiln_store_tx *tx, const char *lot, int64_t when,
				      kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (lot == NULL || !lot_ok(lot))
		return bad(d, "batch lot: use " LOT_RULE);
	if (when < 0)
		return bad(d, "batch closing time");
	return tx->s->ops->batch_close(tx, lot, when, d);
}

kiln_result kiln_store_tx_device_set_cert(kiln_store_tx *tx, int64_t device_id,
					  const char *cert_serial, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (device_id < 1)
		return bad(d, "device id");
	if (cert_serial == NULL || cert_serial[0] == '\0' ||
	    strlen(cert_serial) >= KILN_STORE_SERIAL_HEX ||
	    strspn(cert_serial, "0123456789abcdef") != strlen(cert_serial))
		return bad(d, "certificate serial (lower-case hex)");
	return tx->s->ops->device_set_cert(tx, device_id, cert_serial, d);
}

static bool reprov_reason_ok(const char *r)
{
	return r != NULL && (strcmp(r, "keyCompromise") == 0 || strcmp(r, "superseded") == 0);
}

kiln_result kiln_store_tx_reprovision_open(kiln_store_tx *tx, const struct kiln_reprovision_rec *g,
					   kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (g == NULL || g->device_id < 1)
		return bad(d, "device id");
	if (!reprov_reason_ok(g->reason))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "re-provisioning reason: keyCompromise or superseded");
	if (memchr(g->opened_by, 0, sizeof(g->opened_by)) == NULL || g->opened_by[0] == '\0')
		return bad(d, "who opened the re-provisioning");
	return tx->s->ops->reprovision_open(tx, g, d);
}

kiln_result kiln_store_tx_device_replace(kiln_store_tx *tx, int64_t old_id,
					 struct kiln_device_rec *dev, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (old_id < 1 || dev == NULL || dev->replaces != old_id)
		return bad(d, "the device record replaced");
	return tx->s->ops->device_replace(tx, old_id, dev, d);
}

kiln_result kiln_store_reprovision_open_get(kiln_store *s, const char *product, const char *serial,
					    struct kiln_reprovision_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL, KILN_ERR_ARG);
	if (product == NULL || serial == NULL)
		return bad(d, "product and serial");
	return s->ops->reprovision_get(s, product, serial, out, d);
}

kiln_result kiln_store_tx_device_retire(kiln_store_tx *tx, int64_t device_id, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (device_id < 1)
		return bad(d, "device id");
	return tx->s->ops->device_retire(tx, device_id, d);
}

/* RFC 5280 CRLReason names, indexed by their code; 7 is not used. */
static const char *const reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
	"aACompromise",
};

bool kiln_store_reason_ok(const char *reason, int *code)
{
	if (reason == NULL)
		return false;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		/* removeFromCRL undoes a hold, and kiln never puts certificates on hold and back. */
		if (reasons[i] == NULL || i == 8 || strcmp(reasons[i], reason) != 0)
			continue;
		if (code != NULL)
			*code = (int)i;
		return true;
	}
	return false;
}

kiln_result kiln_store_tx_cert_revoke(kiln_store_tx *tx, const char *serial, const char *reason,
				      int64_t when, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (serial == NULL || !serial_hex_ok(serial, KILN_STORE_SERIAL_HEX))
		return bad(d, "certificate serial: 1 to 40 lower-case hex digits");
	if (!kiln_store_reason_ok(reason, NULL))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "revocation reason: use an RFC 5280 reason name (unspecified, "
				     "keyCompromise, cACompromise, affiliationChanged, superseded, "
				     "cessationOfOperation, certificateHold, privilegeWithdrawn, "
				     "aACompromise)");
	if (when < 0)
		return bad(d, "revocation time");
	return tx->s->ops->cert_revoke(tx, serial, reason, when != 0 ? when : kiln_now(), d);
}

kiln_result kiln_store_tx_crl_add(kiln_store_tx *tx, const struct kiln_crl_rec *c, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(c != NULL, KILN_ERR_ARG);
	if (c->ca_id < 1 || c->number < 1 || c->next_update <= c->this_update ||
	    c->revocation_seq < 0 || c->entries < 0)
		return bad(d, "CRL record: CA, number, update times or counts");
	return tx->s->ops->crl_add(tx, c, d);
}

kiln_result kiln_store_tx_revocation_visible(kiln_store_tx *tx, const char *serial, int64_t ms,
					     kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (serial == NULL || !serial_hex_ok(serial, KILN_STORE_SERIAL_HEX) || ms < 0)
		return bad(d, "certificate serial or time to revoke");
	return tx->s->ops->revocation_visible(tx, serial, ms, d);
}

kiln_result kiln_store_revocation_seq(kiln_store *s, int64_t *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL, KILN_ERR_ARG);
	*out = 0;
	return s->ops->revocation_seq(s, out, d);
}

kiln_result kiln_store_revoked_each(kiln_store *s, int64_t ca_id, int64_t after_seq,
				    kiln_store_revoked_fn fn, void *ctx, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && fn != NULL && ca_id >= 0 && after_seq >= 0, KILN_ERR_ARG);
	return s->ops->revoked_each(s, ca_id, after_seq, fn, ctx, d);
}

kiln_result kiln_store_cert_status_each(kiln_store *s, int64_t ca_id, kiln_store_revoked_fn fn,
					void *ctx, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && fn != NULL && ca_id > 0, KILN_ERR_ARG);
	return s->ops->cert_status_each(s, ca_id, fn, ctx, d);
}

/* What kiln_store_cert_select and its transactional twin accept. */
static kiln_result filter_ok(const struct kiln_cert_filter *f, kiln_diag *d)
{
	if (f->device_id <= 0 && f->lot == NULL && f->station == NULL)
		return bad(d, "recall: name a device, a lot or a station");
	if (f->device_id < 0 || f->from < 0 || f->to < 0 || (f->to != 0 && f->to <= f->from))
		return bad(d, "recall: device id or time window");
	if (f->lot != NULL && !lot_ok(f->lot))
		return bad(d, "batch lot: use " LOT_RULE);
	if (f->station != NULL && (f->station[0] == '\0' ||
				   strnlen(f->station, KILN_STORE_NAME_MAX) == KILN_STORE_NAME_MAX ||
				   !printable(f->station)))
		return bad(d, "station name");
	return kiln_ok();
}

kiln_result kiln_store_cert_select(kiln_store *s, const struct kiln_cert_filter *f,
				   char (**out)[KILN_STORE_SERIAL_HEX], size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && f != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	*out = NULL;
	*n = 0;
	KILN_GUARD(filter_ok(f, d));
	return s->ops->cert_select(s, f, out, n, d);
}

kiln_result kiln_store_tx_cert_select(kiln_store_tx *tx, const struct kiln_cert_filter *f,
				      char (**out)[KILN_STORE_SERIAL_HEX], size_t *n,
				      kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(f != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	*out = NULL;
	*n = 0;
	KILN_GUARD(filter_ok(f, d));
	return tx->s->ops->tx_cert_select(tx, f, out, n, d);
}

kiln_result kiln_store_revocation_timing(kiln_store *s, const char *serial, int64_t *recorded_ms,
					 int64_t *visible_ms, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && recorded_ms != NULL && visible_ms != NULL, KILN_ERR_ARG);
	if (serial == NULL || !serial_hex_ok(serial, KILN_STORE_SERIAL_HEX))
		return bad(d, "certificate serial: 1 to 40 lower-case hex digits");
	return s->ops->revocation_timing(s, serial, recorded_ms, visible_ms, d);
}

kiln_result kiln_store_crl_last(kiln_store *s, int64_t ca_id, struct kiln_crl_rec *out,
				bool *found, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && found != NULL && ca_id > 0, KILN_ERR_ARG);
	*found = false;
	return s->ops->crl_last(s, ca_id, out, found, d);
}

kiln_result kiln_store_tx_batch_consume(kiln_store_tx *tx, const char *lot, const char *product,
					int64_t *issued, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	if (lot == NULL || !lot_ok(lot))
		return bad(d, "batch lot: use " LOT_RULE);
	if (product == NULL || !product_id_ok(product, PRODUCT_CAP))
		return bad(d, "product id");
	return tx->s->ops->batch_consume(tx, lot, product, issued, d);
}

/* A station identity's name, as kiln_store_tx_identity_add accepts it. */
static bool station_ok(const char *station)
{
	size_t n = strnlen(station, KILN_STORE_NAME_MAX);

	return n > 0 && n < KILN_STORE_NAME_MAX && printable(station);
}

kiln_result kiln_store_tx_nonce_add(kiln_store_tx *tx, struct kiln_nonce_rec *n, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(n != NULL, KILN_ERR_ARG);
	if (!terminated(n->station, sizeof(n->station)) || !station_ok(n->station))
		return bad(d, "nonce station: the station identity's name");
	if (!terminated(n->lot, sizeof(n->lot)) || !lot_ok(n->lot))
		return bad(d, "nonce lot: use " LOT_RULE);
	if (n->issued < 0 || n->expires <= 0)
		return bad(d, "nonce issue or expiry time");
	if (n->used != 0 || !FIELD_OK(n, cert_serial, false) || n->cert_serial[0] != '\0')
		return bad(d, "nonce: a new nonce is unused");
	return tx->s->ops->nonce_add(tx, n, d);
}

kiln_result kiln_store_tx_nonce_use(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
				    const char *station, int64_t now,
				    const uint8_t *request_sha256, const char *cert_serial,
				    struct kiln_nonce_rec *out, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(nonce_sha256 != NULL, KILN_ERR_ARG);
	if (station == NULL || !station_ok(station))
		return bad(d, "station name");
	if (now < 0)
		return bad(d, "time of use");
	if (cert_serial != NULL && cert_serial[0] != '\0' &&
	    !serial_hex_ok(cert_serial, KILN_STORE_SERIAL_HEX))
		return bad(d, "certificate serial: 1 to 40 lower-case hex digits");
	/* used = 0 means unused, so a use is always stamped with a real time. */
	return tx->s->ops->nonce_use(tx, nonce_sha256, station, now != 0 ? now : kiln_now(),
				     request_sha256, cert_serial, out, d);
}

kiln_result kiln_store_tx_activation_add(kiln_store_tx *tx, const uint8_t nonce_sha256[32],
					  const uint8_t binding_sha256[32], kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(nonce_sha256 != NULL && binding_sha256 != NULL, KILN_ERR_ARG);
	return tx->s->ops->activation_add(tx, nonce_sha256, binding_sha256, kiln_now(), d);
}

static kiln_result event_add_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_event_add(tx, ctx, d);
}

kiln_result kiln_store_event_add(kiln_store *s, struct kiln_event_rec *ev, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && ev != NULL, KILN_ERR_ARG);
	return kiln_store_write(s, event_add_fn, ev, d);
}

/* -------------------------------------------------------------- reads */

kiln_result kiln_store_meta_get(kiln_store *s, const char *key, char *out, size_t cap,
				kiln_diag *d)
{
	KILN_ENSURE(s != NULL && key != NULL && out != NULL && cap > 0, KILN_ERR_ARG);
	return s->ops->meta_get(s, key, out, cap, d);
}

kiln_result kiln_store_ca_get(kiln_store *s, const char *name, struct kiln_ca_rec *out,
			      kiln_diag *d)
{
	KILN_ENSURE(s != NULL && name != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->ca_get(s, name, 0, out, d);
}

kiln_result kiln_store_ca_get_id(kiln_store *s, int64_t id, struct kiln_ca_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->ca_get(s, NULL, id, out, d);
}

kiln_result kiln_store_ca_list(kiln_store *s, struct kiln_ca_rec **out, size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	return s->ops->ca_list(s, out, n, d);
}

kiln_result kiln_store_policy_active(kiln_store *s, const char *product,
				     struct kiln_policy_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && product != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->policy_get(s, product, 0, true, out, d);
}

kiln_result kiln_store_policy_active_head(kiln_store *s, const char *product,
					  struct kiln_policy_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && product != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->policy_get(s, product, 0, false, out, d);
}

kiln_result kiln_store_policy_get(kiln_store *s, const char *product, int64_t version,
				  struct kiln_policy_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && product != NULL && out != NULL, KILN_ERR_ARG);
	if (version < 1)
		return bad(d, "policy version");
	return s->ops->policy_get(s, product, version, true, out, d);
}

kiln_result kiln_store_policy_list(kiln_store *s, struct kiln_policy_rec **out, size_t *n,
				   kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	return s->ops->policy_list(s, out, n, d);
}

kiln_result kiln_store_cert_get(kiln_store *s, const char *serial, struct kiln_cert_rec *out,
				kiln_diag *d)
{
	bool found = false;

	KILN_ENSURE(s != NULL && serial != NULL && out != NULL, KILN_ERR_ARG);
	KILN_GUARD(s->ops->cert_get(s, serial, out, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no certificate with serial %s", serial);
	return kiln_ok();
}

kiln_result kiln_store_cert_exists(kiln_store *s, const char *serial, bool *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && serial != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->cert_get(s, serial, NULL, out, d);
}

/* A number that could be an id: digits only, no sign, fits an int64. */
static bool ref_as_id(const char *ref, int64_t *id)
{
	uint64_t v;

	if (!kiln_is_ok(kiln_parse_u64(ref, (uint64_t)INT64_MAX, &v)) || v == 0)
		return false;
	*id = (int64_t)v;
	return true;
}

static kiln_result device_get_number(kiln_store *s, const char *ref, int64_t id,
				     struct kiln_device_rec *out, kiln_diag *d)
{
	struct kiln_store_device_key by_id = { .id = id };
	struct kiln_store_device_key by_serial = { .serial = ref };
	struct kiln_device_rec a = { 0 }, b = { 0 };
	size_t na = 0, nb = 0;

	KILN_GUARD(s->ops->device_get(s, &by_id, &a, &na, d));
	KILN_GUARD(s->ops->device_get(s, &by_serial, &b, &nb, d));
	/* "42" must never silently pick one of two different devices. */
	if (na == 1 && (nb > 1 || (nb == 1 && b.id != a.id)))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "%s is both a device id and a device serial; use product/serial",
				     ref);
	if (na == 1) {
		*out = a;
		return kiln_ok();
	}
	if (nb > 1)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "device serial %s exists in several products; use product/serial",
				     ref);
	if (nb == 1) {
		*out = b;
		return kiln_ok();
	}
	return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no device %s", ref);
}

kiln_result kiln_store_device_get(kiln_store *s, const char *ref, struct kiln_device_rec *out,
				  kiln_diag *d)
{
	struct kiln_store_device_key k = { 0 };
	struct kiln_device_rec found = { 0 };
	char product[sizeof(out->product)];
	const char *slash;
	size_t matches = 0;
	int64_t id;

	KILN_ENSURE(s != NULL && ref != NULL && out != NULL, KILN_ERR_ARG);
	if (ref[0] == '\0' || strnlen(ref, 512) == 512)
		return bad(d, "device reference");
	if (ref_as_id(ref, &id))
		return device_get_number(s, ref, id, out, d);
	slash = strchr(ref, '/');
	if (slash != NULL) {
		size_t plen = (size_t)(slash - ref);

		if (plen == 0 || plen >= sizeof(product) || slash[1] == '\0')
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "device reference %s: use id, product/serial or serial", ref);
		memcpy(product, ref, plen);
		product[plen] = '\0';
		k.product = product;
		k.serial = slash + 1;
	} else {
		k.serial = ref;
	}
	KILN_GUARD(s->ops->device_get(s, &k, &found, &matches, d));
	if (matches > 1)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "device serial %s exists in several products; use product/serial",
				     ref);
	if (matches == 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no device %s", ref);
	*out = found;
	return kiln_ok();
}

kiln_result kiln_store_device_list(kiln_store *s, const char *product, size_t limit,
				   struct kiln_device_rec **out, size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	if (limit == 0 || limit > KILN_STORE_LIST_MAX)
		return s->ops->device_list(s, product, KILN_STORE_LIST_MAX, limit == 0, out, n, d);
	return s->ops->device_list(s, product, limit, false, out, n, d);
}

kiln_result kiln_store_identity_get(kiln_store *s, const char *name, struct kiln_identity_rec *out,
				    kiln_diag *d)
{
	KILN_ENSURE(s != NULL && name != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->identity_get(s, name, out, d);
}

kiln_result kiln_store_identity_by_cert(kiln_store *s, const char *cert_serial,
					struct kiln_identity_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && cert_serial != NULL && out != NULL, KILN_ERR_ARG);
	if (!serial_hex_ok(cert_serial, KILN_STORE_SERIAL_HEX))
		return bad(d, "certificate serial: 1 to 40 lower-case hex digits");
	return s->ops->identity_by_cert(s, cert_serial, out, d);
}

kiln_result kiln_store_batch_get(kiln_store *s, const char *lot, struct kiln_batch_rec *out,
				 kiln_diag *d)
{
	KILN_ENSURE(s != NULL && lot != NULL && out != NULL, KILN_ERR_ARG);
	if (!lot_ok(lot))
		return bad(d, "batch lot: use " LOT_RULE);
	return s->ops->batch_get(s, lot, out, d);
}

kiln_result kiln_store_batch_list(kiln_store *s, const char *product, struct kiln_batch_rec **out,
				  size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	if (product != NULL && !product_id_ok(product, PRODUCT_CAP))
		return bad(d, "product id");
	return s->ops->batch_list(s, product, KILN_STORE_LIST_MAX, out, n, d);
}

kiln_result kiln_store_activation_get(kiln_store *s, const uint8_t nonce_sha256[32],
				      uint8_t binding_sha256[32], kiln_diag *d)
{
	KILN_ENSURE(s != NULL && nonce_sha256 != NULL && binding_sha256 != NULL, KILN_ERR_ARG);
	return s->ops->activation_get(s, nonce_sha256, binding_sha256, d);
}

kiln_result kiln_store_nonce_get(kiln_store *s, const uint8_t nonce_sha256[32],
				 struct kiln_nonce_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && nonce_sha256 != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->nonce_get(s, nonce_sha256, out, d);
}

kiln_result kiln_store_event_list(kiln_store *s, int64_t from, size_t limit,
				  struct kiln_event_rec **out, size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	if (from < 0)
		return bad(d, "event sequence number");
	if (limit == 0 || limit > KILN_STORE_LIST_MAX)
		return s->ops->event_list(s, from, KILN_STORE_LIST_MAX, limit == 0, out, n, d);
	return s->ops->event_list(s, from, limit, false, out, n, d);
}

/* The only names kiln_store_count accepts: the backend gets an enum, never the text. */
static const char *const table_names[KILN_STORE_T__COUNT] = {
	[KILN_STORE_T_META] = "meta",
	[KILN_STORE_T_PRODUCTS] = "products",
	[KILN_STORE_T_POLICIES] = "policies",
	[KILN_STORE_T_CAS] = "cas",
	[KILN_STORE_T_CERTIFICATES] = "certificates",
	[KILN_STORE_T_DEVICES] = "devices",
	[KILN_STORE_T_IDENTITIES] = "identities",
	[KILN_STORE_T_EVENTS] = "events",
	[KILN_STORE_T_BATCHES] = "batches",
	[KILN_STORE_T_NONCES] = "nonces",
	[KILN_STORE_T_REVOCATIONS] = "revocations",
	[KILN_STORE_T_CRLS] = "crls",
	[KILN_STORE_T_REQUESTS] = "requests",
	[KILN_STORE_T_APPROVALS] = "approvals",
};

kiln_result kiln_store_count(kiln_store *s, const char *table, int64_t *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && table != NULL && out != NULL, KILN_ERR_ARG);
	for (size_t i = 0; i < KILN_STORE_T__COUNT; i++) {
		if (strcmp(table, table_names[i]) == 0)
			return s->ops->count(s, (enum kiln_store_table)i, out, d);
	}
	return kiln_diag_set(d, KILN_ERR_ARG, "no table named '%.64s' can be counted", table);
}

/* -------------------------------------------------------------- ledger */

#define LEDGER_PUT_MAX ((size_t)1 << 20)
#define LEDGER_GET_MAX ((size_t)1 << 21)

kiln_result kiln_store_tx_ledger_put(kiln_store_tx *tx, const struct kiln_ledger_node *nodes,
				     size_t n, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(nodes != NULL || n == 0, KILN_ERR_ARG);
	if (n > LEDGER_PUT_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "more than %zu ledger nodes in one call",
				     LEDGER_PUT_MAX);
	for (size_t i = 0; i < n; i++) {
		if (nodes[i].level > 62 || nodes[i].index < 0)
			return bad(d, "ledger node");
	}
	return tx->s->ops->ledger_put(tx, nodes, n, d);
}

kiln_result kiln_store_tx_checkpoint_add(kiln_store_tx *tx, const struct kiln_checkpoint_rec *c,
					 kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(c != NULL, KILN_ERR_ARG);
	if (c->size < 0 || c->time <= 0 || !FIELD_OK(c, note, true))
		return bad(d, "checkpoint");
	return tx->s->ops->checkpoint_add(tx, c, d);
}

kiln_result kiln_store_ledger_get(kiln_store *s, unsigned level, int64_t from, size_t count,
				  uint8_t (*out)[32], size_t *got, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && got != NULL, KILN_ERR_ARG);
	*got = 0;
	if (level > 62 || from < 0 || count > LEDGER_GET_MAX)
		return bad(d, "ledger node range");
	return s->ops->ledger_get(s, level, from, count, out, got, d);
}

kiln_result kiln_store_ledger_size(kiln_store *s, int64_t *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->ledger_size(s, out, d);
}

kiln_result kiln_store_checkpoint_get(kiln_store *s, int64_t size, struct kiln_checkpoint_rec *out,
				      kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->checkpoint_get(s, size, out, d);
}

kiln_result kiln_store_checkpoint_list(kiln_store *s, int64_t from, size_t limit,
				       struct kiln_checkpoint_rec **out, size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	if (from < 0)
		return bad(d, "checkpoint size");
	if (limit == 0 || limit > KILN_STORE_LIST_MAX)
		return s->ops->checkpoint_list(s, from, KILN_STORE_LIST_MAX, limit == 0, out, n, d);
	return s->ops->checkpoint_list(s, from, limit, false, out, n, d);
}

kiln_result kiln_store_event_find(kiln_store *s, const char *type, const char *subject,
				  int64_t *seq, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && type != NULL && subject != NULL && seq != NULL, KILN_ERR_ARG);
	return s->ops->event_find(s, type, subject, seq, d);
}

/* -------------------------------------------------------------- governance (schema v6) */

#define REQ_FIELDS_OK(q) \
	(FIELD_OK(q, id, true) && FIELD_OK(q, operation, true) && FIELD_OK(q, params_json, true) && \
	 FIELD_OK(q, requester, true))

kiln_result kiln_store_tx_request_add(kiln_store_tx *tx, const struct kiln_request_rec *q,
				      kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(q != NULL, KILN_ERR_ARG);
	if (!REQ_FIELDS_OK(q))
		return bad(d, "request: id, operation, parameters and requester are required");
	if (q->quorum < 1 || q->quorum > 64 || q->expires <= q->created)
		return bad(d, "request: quorum 1..64 and an expiry after its creation");
	return tx->s->ops->request_add(tx, q, d);
}

kiln_result kiln_store_tx_approval_add(kiln_store_tx *tx, const struct kiln_approval_rec *a,
				       int64_t now, int64_t *count, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(a != NULL, KILN_ERR_ARG);
	if (!FIELD_OK(a, request_id, true) || !FIELD_OK(a, approver, true) ||
	    !FIELD_OK(a, cert_serial, true))
		return bad(d, "approval: request id, approver and certificate serial are required");
	if (a->sig_len == 0 || a->sig_len > sizeof(a->signature))
		return bad(d, "approval signature length");
	return tx->s->ops->approval_add(tx, a, now != 0 ? now : kiln_now(), count, d);
}

kiln_result kiln_store_tx_request_execute(kiln_store_tx *tx, const char *id, int64_t now,
					  kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(id != NULL, KILN_ERR_ARG);
	if (strnlen(id, KILN_STORE_REQUEST_ID) == KILN_STORE_REQUEST_ID || id[0] == '\0')
		return bad(d, "request id");
	return tx->s->ops->request_execute(tx, id, now != 0 ? now : kiln_now(), d);
}

kiln_result kiln_store_tx_identity_revoke(kiln_store_tx *tx, const char *name, int64_t now,
					  const char *reason, kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(name != NULL && reason != NULL, KILN_ERR_ARG);
	if (name[0] == '\0' || strnlen(name, KILN_STORE_NAME_MAX) == KILN_STORE_NAME_MAX)
		return bad(d, "identity name");
	return tx->s->ops->identity_revoke(tx, name, now != 0 ? now : kiln_now(), reason, d);
}

kiln_result kiln_store_tx_identity_count(kiln_store_tx *tx, const char *role, int64_t *out,
					 kiln_diag *d)
{
	KILN_GUARD(check_tx(tx));
	KILN_ENSURE(role != NULL && out != NULL, KILN_ERR_ARG);
	if (!one_of(role, identity_roles))
		return bad(d, "role");
	return tx->s->ops->identity_count(tx, role, out, d);
}

kiln_result kiln_store_request_get(kiln_store *s, const char *id, struct kiln_request_rec *out,
				   kiln_diag *d)
{
	KILN_ENSURE(s != NULL && id != NULL && out != NULL, KILN_ERR_ARG);
	if (id[0] == '\0' || strnlen(id, KILN_STORE_REQUEST_ID) == KILN_STORE_REQUEST_ID)
		return kiln_diag_set(d, KILN_ERR_REQUEST_UNKNOWN, "no request %.64s", id);
	return s->ops->request_get(s, id, out, d);
}

kiln_result kiln_store_request_list(kiln_store *s, struct kiln_request_rec **out, size_t *n,
				    kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	return s->ops->request_list(s, out, n, d);
}

kiln_result kiln_store_approval_list(kiln_store *s, const char *id, struct kiln_approval_rec **out,
				     size_t *n, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && id != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	return s->ops->approval_list(s, id, out, n, d);
}

kiln_result kiln_store_identity_list(kiln_store *s, struct kiln_identity_rec **out, size_t *n,
				     kiln_diag *d)
{
	KILN_ENSURE(s != NULL && out != NULL && n != NULL, KILN_ERR_ARG);
	return s->ops->identity_list(s, out, n, d);
}

kiln_result kiln_store_identity_by_key(kiln_store *s, const uint8_t spki_sha256[32],
				       struct kiln_identity_rec *out, kiln_diag *d)
{
	KILN_ENSURE(s != NULL && spki_sha256 != NULL && out != NULL, KILN_ERR_ARG);
	return s->ops->identity_by_key(s, spki_sha256, out, d);
}
