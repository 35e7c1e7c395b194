/*
 * Opening a deployment directory: kiln.yaml, the PIN files, the PKCS#11
 * module and only the tokens a command needs, the inventory, the CA engine.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

kiln_result deploy_realpath(const char *path, char *out, size_t cap)
{
	char *abs = realpath(path, NULL);
	kiln_result r;

	KILN_ENSURE(abs != NULL, KILN_ERR_NOT_FOUND);
	r = kiln_strlcpy(out, abs, cap);
	free(abs);
	return r;
}

kiln_result deploy_serve_lock(const struct deployment *dep, const char *what, int *fd,
			      kiln_diag *d)
{
	char path[KILN_PATH_MAX + 16];

	*fd = -1;
	KILN_GUARD(deploy_path(dep->dir, "serve.lock", path, sizeof(path)));
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (flock(*fd, (what != NULL ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
		return kiln_ok();
	if (what == NULL)
		return kiln_diag_set(d, KILN_ERR_BUSY, "a backup restore or a CA rotation is running "
				     "on this deployment; try again when it is done");
	return kiln_diag_set(d, KILN_ERR_BUSY,
			     "kiln serve is running on this deployment; stop it before %s", what);
}

kiln_result deploy_path(const char *dir, const char *rel, char *out, size_t cap)
{
	int n = rel[0] == '/' ? snprintf(out, cap, "%s", rel) : snprintf(out, cap, "%s/%s", dir, rel);

	KILN_ENSURE(n > 0 && (size_t)n < cap, KILN_ERR_TOO_BIG);
	return kiln_ok();
}

static kiln_result read_config(struct deployment *dep, kiln_diag *d)
{
	char path[KILN_PATH_MAX + 16];
	kiln_diag local;
	kiln_buf text;
	kiln_result r;

	KILN_GUARD(deploy_path(dep->dir, "kiln.yaml", path, sizeof(path)));
	kiln_diag_clear(&local);
	r = kiln_file_read(path, KILN_POLICY_MAX_BYTES, &text, &local);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "%s is not a kiln deployment (no kiln.yaml); run kiln init --dir %s",
				     dep->dir, dep->dir);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	r = kiln_config_parse(kiln_buf_view(&text), path, &dep->cfg, d);
	kiln_buf_cleanup(&text);
	return r;
}

kiln_result deploy_open(const struct cli_common *c, unsigned need, struct deployment *dep,
			kiln_diag *d)
{
	char db[KILN_PATH_MAX + 16];
	struct kiln_store_opts so = { 0 };

	memset(dep, 0, sizeof(*dep));
	dep->log = (kiln_log){ kiln_log_sink_file, stderr, c->verbose ? KILN_LOG_DEBUG : KILN_LOG_WARN };
	if (c->dir == NULL || c->dir[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_USAGE, "no deployment: give --dir DIR or set KILN_DIR");
	if (!kiln_is_ok(deploy_realpath(c->dir, dep->dir, sizeof(dep->dir))))
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "%s: no such deployment directory", c->dir);
	KILN_GUARD(read_config(dep, d));
	if (need & (NEED_STORE | NEED_CA)) {
		KILN_GUARD(deploy_path(dep->dir, dep->cfg.database, db, sizeof(db)));
		so = (struct kiln_store_opts){ .path = db,
					       .create = false,
					       .group_commit = (need & NEED_GROUP_COMMIT) != 0,
					       .log = &dep->log };
		KILN_GUARD(kiln_store_open(&so, &dep->store, d));
	}
	if (need & NEED_CA)
		KILN_GUARD(deploy_ca(dep, d));
	return kiln_ok();
}

static kiln_result read_pin(const struct deployment *dep, const struct kiln_config_token *t,
			    kiln_buf *pin, kiln_diag *d)
{
	char path[KILN_PATH_MAX * 2];

	KILN_GUARD(deploy_path(dep->dir, t->pin_file, path, sizeof(path)));
	KILN_GUARD(kiln_file_read(path, 256, pin, d));
	while (pin->len > 0 && (pin->ptr[pin->len - 1] == '\n' || pin->ptr[pin->len - 1] == '\r'))
		pin->ptr[--pin->len] = '\0';
	if (pin->len == 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "%s: empty PIN file", path);
	return kiln_ok();
}

static kiln_result load_module(struct deployment *dep, kiln_diag *d)
{
	char conf[KILN_PATH_MAX * 2];

	if (dep->p11 != NULL)
		return kiln_ok();
	if (dep->cfg.softhsm2_conf[0] != '\0') {
		/* SoftHSM2 reads its token directory from the environment when loaded. */
		KILN_GUARD(deploy_path(dep->dir, dep->cfg.softhsm2_conf, conf, sizeof(conf)));
		KILN_ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, KILN_ERR_INTERNAL);
	}
	return kiln_p11_load(dep->cfg.hsm_module, &dep->log, &dep->p11, d);
}

kiln_result deploy_token_opt(struct deployment *dep, kiln_env env, bool optional, kiln_diag *d)
{
	const struct kiln_config_token *t;
	struct kiln_token_opts to = { 0 };
	char path[KILN_PATH_MAX * 2];
	kiln_buf pin;
	kiln_result r;

	KILN_ENSURE(env > KILN_ENV_NONE && env <= KILN_ENV_SERVICE, KILN_ERR_ARG);
	t = &dep->cfg.tokens[env];
	if (dep->tokens[env] != NULL)
		return kiln_ok();
	KILN_GUARD(deploy_path(dep->dir, t->pin_file, path, sizeof(path)));
	if (optional && access(path, F_OK) != 0)
		return kiln_ok();
	KILN_GUARD(load_module(dep, d));
	KILN_GUARD(read_pin(dep, t, &pin, d));
	to = (struct kiln_token_opts){ t->label, kiln_buf_cstr(&pin), dep->cfg.hsm_sessions };
	r = kiln_token_open(dep->p11, &to, &dep->tokens[env], d);
	kiln_buf_cleanup(&pin);
	return r;
}

kiln_result deploy_token(struct deployment *dep, kiln_env env, kiln_diag *d)
{
	return deploy_token_opt(dep, env, false, d);
}

kiln_result deploy_ca(struct deployment *dep, kiln_diag *d)
{
	struct kiln_ca_opts co = { 0 };

	kiln_ca_free(dep->ca);
	dep->ca = NULL;
	co.store = dep->store;
	memcpy(co.tokens, dep->tokens, sizeof(co.tokens));
	co.public_url = dep->cfg.public_url;
	co.identity_validity_days = dep->cfg.identity_validity_days;
	co.log = &dep->log;
	return kiln_ca_open(&co, &dep->ca, d);
}

static kiln_result key_event(struct deployment *dep, const uint8_t pub[32], const char *actor,
			     kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	char hex[65], detail[256];
	uint8_t h[32];

	(void)EVP_Digest(pub, 32, h, NULL, EVP_sha256(), NULL);
	kiln_hex_encode(h, 32, hex);
	if (snprintf(detail, sizeof(detail),
		     "{\"alg\":\"ed25519\",\"purpose\":\"checkpoint\",\"public_key_sha256\":\"%s\","
		     "\"token\":\"%s\"}",
		     hex, dep->cfg.tokens[KILN_ENV_SERVICE].label) <= 0)
		return kiln_fail(KILN_ERR_INTERNAL);
	kiln_strtrunc(ev.type, "key-create", sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor != NULL ? actor : "kiln", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, KILN_LEDGER_KEY_LABEL, sizeof(ev.subject));
	ev.detail_json = detail;
	return kiln_store_event_add(dep->store, &ev, d);
}

/* DIR/log.pub: the log's verifier key, public; rewritten only when it changed. */
static kiln_result write_pub(struct deployment *dep, kiln_diag *d)
{
	char path[KILN_PATH_MAX + 16];
	kiln_buf want, have;
	kiln_result r;

	KILN_GUARD(deploy_path(dep->dir, "log.pub", path, sizeof(path)));
	kiln_buf_init(&want, 1024);
	r = kiln_note_key_format(kiln_ledger_key(dep->ledger), &want);
	if (kiln_is_ok(r))
		r = kiln_buf_append_u8(&want, '\n');
	if (kiln_is_ok(r) && kiln_is_ok(kiln_file_read(path, 1024, &have, NULL))) {
		bool same = kiln_slice_eq(kiln_buf_view(&have), kiln_buf_view(&want));

		kiln_buf_cleanup(&have);
		if (same) {
			kiln_buf_cleanup(&want);
			return kiln_ok();
		}
	}
	if (kiln_is_ok(r))
		r = kiln_file_write(path, kiln_buf_view(&want), 0644, d);
	kiln_buf_cleanup(&want);
	return r;
}

static kiln_result read_pub(struct deployment *dep, struct kiln_note_key *k, kiln_diag *d)
{
	char path[KILN_PATH_MAX + 16];
	kiln_buf text;
	kiln_result r;

	KILN_GUARD(deploy_path(dep->dir, "log.pub", path, sizeof(path)));
	r = kiln_file_read(path, 1024, &text, NULL);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "%s is missing: run kiln audit checkpoint once with the service "
				     "token's PIN to create the log key", path);
	r = kiln_note_key_parse(kiln_buf_view(&text), k, d);
	kiln_buf_cleanup(&text);
	return r;
}

kiln_result deploy_ledger(struct deployment *dep, bool sign, const char *actor, kiln_diag *d)
{
	struct kiln_ledger_opts lo = { 0 };
	struct kiln_note_key k;
	uint8_t pub[32];
	bool created = false;

	if (dep->ledger != NULL)
		return kiln_ok();
	KILN_ENSURE(dep->store != NULL, KILN_ERR_ARG);
	lo.store = dep->store;
	lo.log = &dep->log;
	if (sign) {
		KILN_GUARD(deploy_token(dep, KILN_ENV_SERVICE, d));
		KILN_GUARD(kiln_ledger_key_ensure(dep->tokens[KILN_ENV_SERVICE], &dep->log_key, pub,
						  &created, d));
		dep->log_signer = kiln_token_signer(dep->tokens[KILN_ENV_SERVICE]);
		lo.signer = &dep->log_signer;
		lo.key = &dep->log_key;
		lo.pub = pub;
	} else {
		KILN_GUARD(read_pub(dep, &k, d));
		lo.pub = k.pub;
		lo.origin = k.name;
	}
	KILN_GUARD(kiln_ledger_open(&lo, &dep->ledger, d));
	if (created)
		KILN_GUARD(key_event(dep, pub, actor, d));
	return sign ? write_pub(dep, d) : kiln_ok();
}

void deploy_close(struct deployment *dep)
{
	kiln_ledger_free(dep->ledger);
	kiln_ca_free(dep->ca);
	kiln_store_close(dep->store);
	for (int i = 0; i < 4; i++)
		kiln_token_close(dep->tokens[i]);
	kiln_p11_free(dep->p11);
	memset(dep, 0, sizeof(*dep));
}

void deploy_rules(const struct deployment *dep, struct kiln_govern_rules *out)
{
	const struct kiln_config_approvals *a = &dep->cfg.approvals;
	const unsigned per_op[KILN_OP__COUNT] = {
		[KILN_OP_POLICY_ACTIVATE] = a->policy_activate,
		[KILN_OP_IDENTITY_ADD] = a->identity_add,
		[KILN_OP_REVOKE_BULK] = a->revoke_bulk,
		[KILN_OP_CA_ROTATE] = a->ca_rotate,
		[KILN_OP_BACKUP_RESTORE] = a->backup_restore,
	};

	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		out->quorum[i] = per_op[i] != 0 ? per_op[i] : (a->quorum != 0 ? a->quorum : 2);
	out->ttl_s = a->request_ttl_s != 0 ? a->request_ttl_s : 86400;
}

kiln_result deploy_key_identity(struct deployment *dep, const char *key_file,
				struct kiln_identity_rec *out, EVP_PKEY **pkey, kiln_diag *d)
{
	EVP_PKEY *key = NULL;
	kiln_buf pem;
	BIO *bio;
	kiln_result r;

	KILN_GUARD(kiln_file_read(key_file, 64 * 1024, &pem, d));
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	kiln_buf_cleanup(&pem);
	ERR_clear_error();
	if (key == NULL)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "%s: not a PEM private key", key_file);
	r = kiln_govern_signer(dep->store, key, out, d);
	if (r.code == KILN_ERR_NOT_FOUND)
		r = kiln_diag_set(d, KILN_ERR_AUTH_UNKNOWN,
				  "%s: the key belongs to no kiln identity", key_file);
	else if (kiln_is_ok(r) && strcmp(out->status, "active") != 0)
		r = kiln_diag_set(d, KILN_ERR_AUTH_REVOKED, "identity %s was revoked", out->name);
	if (r.code == KILN_ERR_AUTH_UNKNOWN || r.code == KILN_ERR_AUTH_REVOKED)
		r = kiln_govern_refused(dep->store, "auth-failure",
					r.code == KILN_ERR_AUTH_REVOKED ? out->name : "cli", "cli", r,
					d);
	if (kiln_is_ok(r) && pkey != NULL) {
		*pkey = key;
		key = NULL;
	}
	EVP_PKEY_free(key);
	return r;
}

kiln_result deploy_requester(struct deployment *dep, const char *key_file,
			     const char *const *roles, struct kiln_identity_rec *out, kiln_diag *d)
{
	KILN_GUARD(deploy_key_identity(dep, key_file, out, NULL, d));
	for (const char *const *r = roles; *r != NULL; r++) {
		if (strcmp(out->role, *r) == 0)
			return kiln_ok();
	}
	return kiln_govern_refused(dep->store, "auth-failure", out->name, "cli",
				   kiln_diag_set(d, KILN_ERR_FORBIDDEN,
						 "%s has role %s, which may not make this request",
						 out->name, out->role),
				   d);
}
