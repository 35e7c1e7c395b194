/*
 * kiln backup create --out FILE | backup restore FILE [--request ID]
 * (docs/backup.md). A backup is a snapshot of the inventory and kiln.yaml,
 * encrypted with AES-256-GCM under the backup key, which never leaves the
 * kiln-service token. A restore is gated (backup-restore, N officers): the
 * first run makes the request over the file's SHA-256; the run with
 * --request decrypts, checks and verifies everything on a staged copy, and
 * only then replaces the live inventory.
 */
#include "cli.h"

#include "govern/govern.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define BACKUP_KEY_LABEL "backup"
#define BACKUP_FILE_MAX ((size_t)KILN_BACKUP_MAX + KILN_BACKUP_HEADER_LEN)

static const char backup_usage[] =
	"usage: kiln --dir DIR backup create --out FILE [--json]\n"
	"       kiln --dir DIR backup restore FILE [--request ID] [--json]\n"
	"\n"
	"create   a consistent snapshot of the inventory (safe while kiln serve runs) and\n"
	"         kiln.yaml, encrypted with AES-256-GCM under the backup key in the\n"
	"         kiln-service token (made on first use; it never leaves the token).\n"
	"         The header names the deployment, the time and the ledger's size and root.\n"
	"restore  without --request: checks the file's header and makes a backup-restore\n"
	"         request over the file's SHA-256 for officers to approve (kiln approve).\n"
	"         With --request ID, once approved: decrypts in the HSM, checks the header,\n"
	"         verifies the restored log (as kiln audit verify) on a staged copy, then\n"
	"         replaces the inventory and kiln.yaml. Refused while kiln serve runs.\n"
	"HSM tokens are not in a backup: back up the token directory (docs/backup.md).\n";

/* ------------------------------------------------------------ shared */

static void sha256_hex(kiln_slice s, char out[65])
{
	uint8_t h[32];

	(void)EVP_Digest(s.ptr, s.len, h, NULL, EVP_sha256(), NULL);
	kiln_hex_encode(h, 32, out);
}

/* The deployment's id: the subject of its "init" event, among the first events. */
static kiln_result deployment_id(kiln_store *s, char out[KILN_BACKUP_ID_LEN + 1], kiln_diag *d)
{
	struct kiln_event_rec *evs = NULL;
	size_t n = 0;
	bool found = false;

	KILN_GUARD(kiln_store_event_list(s, 0, 1000, &evs, &n, d));
	for (size_t i = 0; i < n && !found; i++) {
		if (strcmp(evs[i].type, "init") == 0 &&
		    strlen(evs[i].subject) == KILN_BACKUP_ID_LEN) {
			memcpy(out, evs[i].subject, KILN_BACKUP_ID_LEN + 1);
			found = true;
		}
	}
	kiln_store_event_list_free(evs, n);
	if (!found)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "the inventory has no init event naming its deployment");
	return kiln_ok();
}

static kiln_result event(kiln_store *s, const char *type, const char *actor, const char *subject,
			 json_t *detail, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	KILN_ENSURE(detail != NULL, KILN_ERR_NOMEM);
	ev.detail_json = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(detail);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, type, sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, subject, sizeof(ev.subject));
	r = kiln_store_event_add(s, &ev, d);
	free(ev.detail_json);
	return r;
}

static kiln_result db_path(const struct deployment *dep, char *out, size_t cap)
{
	return deploy_path(dep->dir, dep->cfg.database, out, cap);
}

/* Opens a database file as a store of its own (a snapshot, a staged restore). */
static kiln_result open_file(const char *path, kiln_store **out, kiln_diag *d)
{
	struct kiln_store_opts so = { 0 };

	so.path = path;
	so.create = false;
	so.readers = 1;
	return kiln_store_open(&so, out, d);
}

/* The log of a database file checked with the deployment's log key: size and root. */
static kiln_result verified_log(kiln_store *s, const struct deployment *dep, int64_t *size,
				uint8_t root[32], kiln_diag *d)
{
	struct kiln_audit_report rep;

	KILN_GUARD(cli_audit_store(s, kiln_ledger_key(dep->ledger), &rep, root, d));
	if (!rep.ok)
		return kiln_diag_set(d, KILN_ERR_LOG_TAMPERED, "the backup's log does not verify: %s",
				     rep.what);
	*size = rep.events;
	return kiln_ok();
}

/* ------------------------------------------------------------ create */

kiln_result cli_backup_key_ensure(struct deployment *dep, const char *actor, bool *created,
				  kiln_diag *d)
{
	bool made = false;

	KILN_GUARD(kiln_token_secret_ensure(dep->tokens[KILN_ENV_SERVICE], BACKUP_KEY_LABEL,
					    &made, d));
	if (created != NULL)
		*created = made;
	if (!made)
		return kiln_ok();
	return event(dep->store, "key-generate", actor, BACKUP_KEY_LABEL,
		     json_pack("{s:s,s:s,s:s,s:b,s:b}", "token",
			       kiln_token_label(dep->tokens[KILN_ENV_SERVICE]), "key", "AES-256",
			       "purpose", "backup", "sensitive", 1, "extractable", 0), d);
}

struct made {
	struct kiln_backup_header h;
	char sha256[65];
	size_t bytes;
	bool key_created;
};

/* Snapshot, verify its log, and read it back; the plaintext file is removed. */
static kiln_result snapshot(struct deployment *dep, kiln_buf *db, struct made *m, kiln_diag *d)
{
	char live[KILN_PATH_MAX + 64], tmp[KILN_PATH_MAX + 64];
	kiln_store *s = NULL;
	int64_t size = 0;
	kiln_result r;

	KILN_GUARD(db_path(dep, live, sizeof(live)));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.backup-%d", live, (int)getpid()) >= sizeof(tmp))
		return kiln_fail(KILN_ERR_TOO_BIG);
	(void)unlink(tmp);
	KILN_GUARD(kiln_store_snapshot(live, tmp, d));
	r = open_file(tmp, &s, d);
	if (kiln_is_ok(r))
		r = verified_log(s, dep, &size, m->h.root, d);
	kiln_store_close(s);
	if (kiln_is_ok(r))
		r = kiln_file_read(tmp, (size_t)KILN_BACKUP_MAX, db, d);
	(void)unlink(tmp);
	m->h.tree_size = (uint64_t)size;
	return r;
}

static kiln_result seal(struct deployment *dep, kiln_slice payload, kiln_buf *file,
			struct made *m, kiln_diag *d)
{
	uint8_t hdr[KILN_BACKUP_HEADER_LEN];
	struct kiln_aead_req req;
	kiln_buf ct;
	kiln_result r;

	KILN_GUARD(kiln_random(m->h.iv, sizeof(m->h.iv)));
	m->h.ct_len = payload.len;
	memset(m->h.tag, 0, sizeof(m->h.tag));
	KILN_GUARD(kiln_backup_header_encode(&m->h, hdr));
	kiln_buf_init(&ct, payload.len + KILN_AEAD_TAG_LEN + 1);
	req = (struct kiln_aead_req){ BACKUP_KEY_LABEL, m->h.iv,
				      kiln_slice_of(hdr, KILN_BACKUP_AAD_LEN), payload, "backup" };
	r = kiln_token_encrypt(dep->tokens[KILN_ENV_SERVICE], &req, &ct, d);
	if (kiln_is_ok(r)) {
		memcpy(m->h.tag, ct.ptr + payload.len, KILN_AEAD_TAG_LEN);
		r = kiln_backup_header_encode(&m->h, hdr);
	}
	if (kiln_is_ok(r))
		r = kiln_buf_append(file, hdr, sizeof(hdr));
	if (kiln_is_ok(r))
		r = kiln_buf_append(file, ct.ptr, payload.len);
	kiln_buf_cleanup(&ct);
	return r;
}

static kiln_result create(struct deployment *dep, const char *actor, const char *out,
			  struct made *m, kiln_diag *d)
{
	char yaml_path[KILN_PATH_MAX + 16], root[65];
	kiln_buf yaml, db, payload, file;
	kiln_result r;

	kiln_buf_init(&yaml, KILN_BACKUP_YAML_MAX);
	kiln_buf_init(&db, (size_t)KILN_BACKUP_MAX);
	kiln_buf_init(&payload, (size_t)KILN_BACKUP_MAX);
	kiln_buf_init(&file, BACKUP_FILE_MAX);
	KILN_TRY(r, deployment_id(dep->store, m->h.deployment, d));
	KILN_TRY(r, cli_backup_key_ensure(dep, actor, &m->key_created, d));
	KILN_TRY(r, deploy_path(dep->dir, "kiln.yaml", yaml_path, sizeof(yaml_path)));
	KILN_TRY(r, kiln_file_read(yaml_path, KILN_BACKUP_YAML_MAX, &yaml, d));
	m->h.created = kiln_now();
	KILN_TRY(r, snapshot(dep, &db, m, d));
	KILN_TRY(r, kiln_backup_payload_encode(kiln_buf_view(&yaml), kiln_buf_view(&db), &payload));
	KILN_TRY(r, seal(dep, kiln_buf_view(&payload), &file, m, d));
	KILN_TRY(r, kiln_file_write(out, kiln_buf_view(&file), 0600, d));
	sha256_hex(kiln_buf_view(&file), m->sha256);
	m->bytes = file.len;
	kiln_hex_encode(m->h.root, 32, root);
	r = event(dep->store, "backup", actor, m->h.deployment,
		  json_pack("{s:s,s:I,s:I,s:s,s:s,s:I}", "sha256", m->sha256, "tree_size",
			    (json_int_t)m->h.tree_size, "created", (json_int_t)m->h.created,
			    "root_hash", root, "key", BACKUP_KEY_LABEL, "bytes",
			    (json_int_t)m->bytes), d);
out:
	kiln_buf_cleanup(&yaml);
	kiln_buf_cleanup(&db);
	kiln_buf_cleanup(&payload);
	kiln_buf_cleanup(&file);
	return r;
}

static int backup_create(const struct cli_common *c, const char *out)
{
	struct deployment dep;
	struct made m;
	char root[65];
	kiln_diag d;
	kiln_result r;

	memset(&m, 0, sizeof(m));
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_token(&dep, KILN_ENV_SERVICE, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, false, c->actor, &d);
	if (kiln_is_ok(r)) {
		r = create(&dep, c->actor, out, &m, &d);
		if (!kiln_is_ok(r))
			r = kiln_govern_refused(dep.store, "rejection", c->actor, "backup", r, &d);
	}
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	kiln_hex_encode(m.h.root, 32, root);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:b}", "file", out,
						"sha256", m.sha256, "deployment", m.h.deployment,
						"tree_size", (json_int_t)m.h.tree_size, "root_hash",
						root, "bytes", (json_int_t)m.bytes, "key_created",
						m.key_created));
	printf("backup of deployment %s written to %s (%zu bytes, sha256 %s)\n"
	       "ledger: %llu events, root %s%s\n", m.h.deployment, out, m.bytes, m.sha256,
	       (unsigned long long)m.h.tree_size, root,
	       m.key_created ? "; backup key made in the kiln-service token" : "");
	return CLI_OK;
}

/* ------------------------------------------------------------ restore */

struct restore {
	const char *file;
	const char *request_id;
	const char *actor;
	kiln_buf bytes;       /* the backup file */
	struct kiln_backup_header h;
	kiln_slice aad, ct;
	char sha256[65];
	char live_id[KILN_BACKUP_ID_LEN + 1];
	char live[KILN_PATH_MAX + 64], staged[KILN_PATH_MAX + 80];
	struct kiln_request_rec q;
	kiln_buf yaml;        /* decrypted */
	int lock_fd;
	int64_t restored_events;
	bool recorded;        /* the refusal is already an event (kiln_govern_check's) */
};

static json_t *restore_params(const struct restore *w)
{
	return json_pack("{s:s,s:s,s:I,s:I}", "sha256", w->sha256, "deployment", w->h.deployment,
			 "created", (json_int_t)w->h.created, "tree_size",
			 (json_int_t)w->h.tree_size);
}

/* The file, its header, and the deployment it belongs to. */
static kiln_result read_backup(struct deployment *dep, struct restore *w, kiln_diag *d)
{
	KILN_GUARD(kiln_file_read(w->file, BACKUP_FILE_MAX, &w->bytes, d));
	sha256_hex(kiln_buf_view(&w->bytes), w->sha256);
	KILN_GUARD(kiln_backup_parse(kiln_buf_view(&w->bytes), &w->h, &w->aad, &w->ct, d));
	KILN_GUARD(deployment_id(dep->store, w->live_id, d));
	if (strcmp(w->h.deployment, w->live_id) != 0)
		return kiln_diag_set(d, KILN_ERR_BACKUP_MISMATCH,
				     "the backup belongs to deployment %s, this is deployment %s",
				     w->h.deployment, w->live_id);
	return kiln_ok();
}

/* Decrypts in the HSM and writes the database to the staged file beside the live one. */
static kiln_result unseal(struct deployment *dep, struct restore *w, kiln_diag *d)
{
	struct kiln_aead_req req;
	kiln_buf in, pt;
	kiln_slice yaml, db;
	kiln_result r;

	kiln_buf_init(&in, (size_t)w->ct.len + KILN_AEAD_TAG_LEN + 1);
	kiln_buf_init(&pt, (size_t)w->ct.len + KILN_AEAD_TAG_LEN + 1);
	r = kiln_buf_append_slice(&in, w->ct);
	if (kiln_is_ok(r))
		r = kiln_buf_append(&in, w->h.tag, KILN_AEAD_TAG_LEN);
	req = (struct kiln_aead_req){ BACKUP_KEY_LABEL, w->h.iv, w->aad, kiln_buf_view(&in),
				      "restore" };
	if (kiln_is_ok(r))
		r = deploy_token(dep, KILN_ENV_SERVICE, d);
	if (kiln_is_ok(r))
		r = kiln_token_decrypt(dep->tokens[KILN_ENV_SERVICE], &req, &pt, d);
	if (kiln_is_ok(r))
		r = kiln_backup_payload_parse(kiln_buf_view(&pt), &yaml, &db, d);
	if (kiln_is_ok(r))
		r = kiln_buf_append_slice(&w->yaml, yaml);
	if (kiln_is_ok(r)) {
		(void)unlink(w->staged);
		r = kiln_file_write(w->staged, db, 0600, d);
	}
	kiln_buf_cleanup(&in);
	kiln_buf_cleanup(&pt);
	return r;
}

struct carry {
	const struct restore *w;
	struct kiln_approval_rec *approvals;
	size_t n;
	json_t *detail;
};

/*
 * In the restored inventory, one transaction: the request and its approvals
 * (made after the backup, so absent from it), the "backup-restore" event
 * naming them, and request-executed.
 */
static kiln_result carry_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct carry *c = ctx;
	struct kiln_request_rec q = c->w->q;
	struct kiln_event_rec ev = { 0 };
	int64_t now = kiln_now(), count = 0;
	kiln_result r;

	kiln_strtrunc(q.status, "pending", sizeof(q.status));
	q.executed = 0;
	q.approvals = 0;
	KILN_GUARD(kiln_store_tx_request_add(tx, &q, d));
	for (size_t i = 0; i < c->n; i++)
		KILN_GUARD(kiln_store_tx_approval_add(tx, &c->approvals[i], c->approvals[i].created,
						      &count, d));
	ev.detail_json = json_dumps(c->detail, JSON_COMPACT | JSON_SORT_KEYS);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	ev.time = now;
	kiln_strtrunc(ev.type, "backup-restore", sizeof(ev.type));
	kiln_strtrunc(ev.actor, c->w->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, c->w->q.id, sizeof(ev.subject));
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	KILN_GUARD(r);
	return kiln_govern_tx_executed(tx, c->w->q.id, c->w->actor, now, d);
}

static json_t *restore_detail(const struct restore *w, const struct kiln_approval_rec *a, size_t n)
{
	char root[65];
	json_t *arr = json_array();

	kiln_hex_encode(w->h.root, 32, root);
	for (size_t i = 0; arr != NULL && i < n; i++)
		(void)json_array_append_new(arr, json_pack("{s:s,s:s,s:I}", "approver",
							   a[i].approver, "cert_serial",
							   a[i].cert_serial, "time",
							   (json_int_t)a[i].created));
	return json_pack("{s:s,s:s,s:I,s:I,s:s,s:o*}", "sha256", w->sha256, "deployment",
			 w->h.deployment, "backup_created", (json_int_t)w->h.created,
			 "tree_size", (json_int_t)w->h.tree_size, "root_hash", root,
			 "approvals", arr);
}

/* Checks the staged inventory: its log verifies with this deployment's key, to the header. */
static kiln_result check_and_carry(struct deployment *dep, struct restore *w, kiln_diag *d)
{
	struct carry c = { w, NULL, 0, NULL };
	char staged_id[KILN_BACKUP_ID_LEN + 1];
	kiln_store *s = NULL;
	uint8_t root[32];
	int64_t size = 0;
	kiln_result r;

	KILN_TRY(r, kiln_store_approval_list(dep->store, w->q.id, &c.approvals, &c.n, d));
	KILN_TRY(r, open_file(w->staged, &s, d));
	KILN_TRY(r, verified_log(s, dep, &size, root, d));
	if ((uint64_t)size != w->h.tree_size || memcmp(root, w->h.root, 32) != 0) {
		r = kiln_diag_set(d, KILN_ERR_LOG_TAMPERED,
				  "the backup's log (%lld events) does not match its header "
				  "(%llu events and their root)", (long long)size,
				  (unsigned long long)w->h.tree_size);
		goto out;
	}
	KILN_TRY(r, deployment_id(s, staged_id, d));
	if (strcmp(staged_id, w->live_id) != 0) {
		r = kiln_diag_set(d, KILN_ERR_BACKUP_MISMATCH,
				  "the backed-up inventory belongs to deployment %s", staged_id);
		goto out;
	}
	c.detail = restore_detail(w, c.approvals, c.n);
	KILN_ENSURE(c.detail != NULL, KILN_ERR_NOMEM);
	KILN_TRY(r, kiln_store_write(s, carry_tx, &c, d));
	KILN_TRY(r, kiln_store_count(s, "events", &w->restored_events, d));
out:
	json_decref(c.detail);
	free(c.approvals);
	kiln_store_close(s);
	return r;
}

/* Everything before the live inventory is touched; a refusal here changes nothing else. */
static kiln_result prepare_restore(struct deployment *dep, struct restore *w, kiln_diag *d)
{
	json_t *params;
	kiln_result r;

	/* No kiln serve on this deployment, and none starts while we restore. */
	KILN_GUARD(deploy_serve_lock(dep, "restoring", &w->lock_fd, d));
	params = restore_params(w);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	r = kiln_govern_check(dep->store, w->request_id, KILN_OP_BACKUP_RESTORE, params, w->actor,
			      0, &w->q, d);
	json_decref(params);
	if (!kiln_is_ok(r)) {
		char t[sizeof(d->text)];

		w->recorded = true;
		if (r.code == KILN_ERR_REQUEST_MISMATCH && d != NULL) {
			if (snprintf(t, sizeof(t), "%.400s: the file's SHA-256 is not the approved one",
				     d->text) > 0)
				memcpy(d->text, t, sizeof(t));
		}
		return r;
	}
	KILN_GUARD(db_path(dep, w->live, sizeof(w->live)));
	if ((size_t)snprintf(w->staged, sizeof(w->staged), "%s.restore", w->live) >=
	    sizeof(w->staged))
		return kiln_fail(KILN_ERR_TOO_BIG);
	KILN_GUARD(unseal(dep, w, d));
	return check_and_carry(dep, w, d);
}

static kiln_result request_restore(struct deployment *dep, struct restore *w, kiln_diag *d)
{
	struct kiln_govern_rules rules;
	json_t *params = restore_params(w);
	kiln_result r;

	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	deploy_rules(dep, &rules);
	r = kiln_govern_request_create(dep->store, &rules, KILN_OP_BACKUP_RESTORE, params,
				       w->actor, 0, &w->q, d);
	json_decref(params);
	return r;
}

static int restore_print(const struct cli_common *c, const struct restore *w, bool done)
{
	char until[KILN_TIME_STR];

	kiln_time_format(w->q.expires, until);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:b}", "request",
						w->q.id, "operation", "backup-restore", "sha256",
						w->sha256, "deployment", w->h.deployment, "quorum",
						(json_int_t)w->q.quorum, "tree_size",
						(json_int_t)w->h.tree_size, "expires", until,
						"restored", done));
	if (done)
		printf("inventory restored from %s (sha256 %s): %llu events backed up, %lld now; "
		       "request %s executed\n", w->file, w->sha256,
		       (unsigned long long)w->h.tree_size, (long long)w->restored_events, w->q.id);
	else
		printf("restore of %s (sha256 %s, %llu events) requested: request %s\n"
		       "it runs once %lld officers approve (kiln approve %s --key KEY), then\n"
		       "kiln backup restore %s --request %s, before %s\n", w->file, w->sha256,
		       (unsigned long long)w->h.tree_size, w->q.id, (long long)w->q.quorum, w->q.id,
		       w->file, w->q.id, until);
	return CLI_OK;
}

static int backup_restore(const struct cli_common *c, const char *file, const char *request_id)
{
	struct deployment dep;
	struct restore w;
	char yaml_path[KILN_PATH_MAX + 16];
	kiln_diag d;
	kiln_result r;
	int rc;

	memset(&w, 0, sizeof(w));
	w.file = file;
	w.request_id = request_id;
	w.actor = c->actor;
	w.lock_fd = -1;
	kiln_buf_init(&w.bytes, BACKUP_FILE_MAX);
	kiln_buf_init(&w.yaml, KILN_BACKUP_YAML_MAX);
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r) && request_id != NULL)
		r = deploy_ledger(&dep, false, c->actor, &d);
	if (kiln_is_ok(r)) {
		r = read_backup(&dep, &w, &d);
		if (kiln_is_ok(r))
			r = request_id == NULL ? request_restore(&dep, &w, &d)
					       : prepare_restore(&dep, &w, &d);
		if (kiln_is_ok(r))
			r = deploy_path(dep.dir, "kiln.yaml", yaml_path, sizeof(yaml_path));
		if (!kiln_is_ok(r)) {
			if (w.staged[0] != '\0')
				(void)unlink(w.staged);
			if (!w.recorded)
				r = kiln_govern_refused(dep.store, "restore-refused", c->actor,
							request_id != NULL ? request_id : file, r,
							&d);
		}
	}
	/* The live inventory closes before it is replaced; nothing of ours holds it open. */
	deploy_close(&dep);
	if (kiln_is_ok(r) && request_id != NULL) {
		r = kiln_store_replace(w.live, w.staged, &d);
		if (!kiln_is_ok(r))
			(void)unlink(w.staged);
		/* kiln.yaml follows the inventory it was backed up with. */
		if (kiln_is_ok(r))
			r = kiln_file_write(yaml_path, kiln_buf_view(&w.yaml), 0644, &d);
	}
	if (w.lock_fd >= 0)
		(void)close(w.lock_fd);
	rc = kiln_is_ok(r) ? restore_print(c, &w, request_id != NULL) : cli_fail(r, &d);
	kiln_buf_cleanup(&w.bytes);
	kiln_buf_cleanup(&w.yaml);
	return rc;
}

int cmd_backup(int argc, char **argv)
{
	const char *pos[2], *out = NULL, *request = NULL;
	const struct cli_opt opts[] = {
		{ "out", true, &out, NULL },
		{ "request", true, &request, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct cli_common c;
	size_t npos = 0;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(backup_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "create") == 0 && out != NULL && request == NULL)
		return backup_create(&c, out);
	if (npos == 2 && strcmp(pos[0], "restore") == 0 && out == NULL)
		return backup_restore(&c, pos[1], request);
	return cli_usage_error("backup: expected 'create --out FILE' or 'restore FILE "
			       "[--request ID]'; see kiln backup --help");
}
