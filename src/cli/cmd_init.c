/*
 * kiln init: a new deployment. SoftHSM2 tokens for production, test and
 * service with their own random PINs (secrets/, mode 0600), the three CA
 * hierarchies generated inside them, the inventory, and kiln.yaml written
 * last. A failed init removes what it created.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char init_usage[] =
	"usage: kiln init --dir DIR [--algorithm p256|p384|ed25519|rsa3072] [--org NAME]\n"
	"                 [--hsm-module PATH] [--json]\n"
	"\n"
	"Creates DIR with kiln.yaml, kiln.db (SQLite, WAL), hsm/ (SoftHSM2 tokens kiln-prod,\n"
	"kiln-test and kiln-service), secrets/ (their PINs, mode 0600) and the production,\n"
	"test and service CA hierarchies (root and issuing CA each), keys generated inside\n"
	"the tokens as sensitive and non-extractable. DIR must not exist or be empty.\n"
	"--hsm-module names another PKCS#11 module (default: SoftHSM2); its free slots are\n"
	"initialised as the three tokens.\n";

struct init_ctx {
	const char *dir;
	char abs[KILN_PATH_MAX];
	kiln_alg alg;
	const char *org;
	char deployment_id[17];
	kiln_config cfg;
	bool created_dir;
	struct kiln_checkpoint_rec checkpoint; /* the first one, over init's events */
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

/* Same, but keeps the top directory (it existed, empty, before init). */
static int rm_inside(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;
	return rm_entry(path, sb, flag, ftw);
}

static kiln_result make_dirs(struct init_ctx *ic, kiln_diag *d)
{
	static const char *const subdirs[] = { "hsm", "hsm/tokens", "secrets" };
	char path[KILN_PATH_MAX + 32];

	if (mkdir(ic->dir, 0700) == 0) {
		ic->created_dir = true;
	} else if (errno == EEXIST) {
		DIR *dh = opendir(ic->dir);
		struct dirent *e;
		bool empty = true;

		if (dh == NULL)
			return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", ic->dir, strerror(errno));
		while ((e = readdir(dh)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				empty = false;
		}
		closedir(dh);
		if (!empty)
			return kiln_diag_set(d, KILN_ERR_EXISTS,
					     "%s exists and is not empty; kiln init needs a new directory",
					     ic->dir);
	} else {
		return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", ic->dir, strerror(errno));
	}
	if (!kiln_is_ok(deploy_realpath(ic->dir, ic->abs, sizeof(ic->abs))))
		return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", ic->dir, strerror(errno));
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		KILN_GUARD(deploy_path(ic->abs, subdirs[i], path, sizeof(path)));
		if (mkdir(path, 0700) != 0)
			return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", path, strerror(errno));
	}
	return kiln_ok();
}

static kiln_result write_text(const char *dir, const char *rel, const char *text, unsigned mode,
			      kiln_diag *d)
{
	char path[KILN_PATH_MAX * 2];

	KILN_GUARD(deploy_path(dir, rel, path, sizeof(path)));
	return kiln_file_write(path, kiln_slice_str(text), mode, d);
}

static kiln_result new_pin(char out[33])
{
	uint8_t raw[16];

	KILN_GUARD(kiln_random(raw, sizeof(raw)));
	kiln_hex_encode(raw, sizeof(raw), out);
	kiln_wipe(raw, sizeof(raw));
	return kiln_ok();
}

static kiln_result softhsm_conf(struct init_ctx *ic, kiln_diag *d)
{
	char text[KILN_PATH_MAX + 256], conf[KILN_PATH_MAX * 2];
	int n;

	n = snprintf(text, sizeof(text),
		     "# SoftHSM2 configuration of this kiln deployment (written by kiln init)\n"
		     "directories.tokendir = %s/hsm/tokens\n"
		     "objectstore.backend = file\n"
		     "log.level = ERROR\n"
		     "slots.removable = false\n",
		     ic->abs);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(text), KILN_ERR_TOO_BIG);
	KILN_GUARD(write_text(ic->abs, ic->cfg.softhsm2_conf, text, 0600, d));
	KILN_GUARD(deploy_path(ic->abs, ic->cfg.softhsm2_conf, conf, sizeof(conf)));
	KILN_ENSURE(setenv("SOFTHSM2_CONF", conf, 1) == 0, KILN_ERR_INTERNAL);
	return kiln_ok();
}

/* Initialises one token with fresh PINs (kept only in secrets/) and its CA hierarchy. */
static kiln_result make_env(struct init_ctx *ic, struct deployment *dep, kiln_env env,
			    const char *actor, kiln_diag *d)
{
	const struct kiln_config_token *t = &ic->cfg.tokens[env];
	char user[33], so[33], so_file[KILN_PATH_MAX + 16];
	struct kiln_hierarchy_opts ho = { 0 };
	kiln_result r;

	KILN_TRY(r, new_pin(user));
	KILN_TRY(r, new_pin(so));
	(void)snprintf(so_file, sizeof(so_file), "secrets/%s.so-pin", t->label);
	KILN_TRY(r, write_text(ic->abs, t->pin_file, user, 0600, d));
	KILN_TRY(r, write_text(ic->abs, so_file, so, 0600, d));
	KILN_TRY(r, kiln_p11_init_token(dep->p11, t->label, so, user, d));
	KILN_TRY(r, deploy_token(dep, env, d));
	ho = (struct kiln_hierarchy_opts){ env,
					   ic->alg,
					   ic->org,
					   ic->deployment_id,
					   ic->cfg.root_validity_days,
					   ic->cfg.issuing_validity_days,
					   actor };
	KILN_TRY(r, kiln_ca_create_hierarchy(dep->tokens[env], dep->store, &ho, d));
out:
	kiln_wipe(user, sizeof(user));
	kiln_wipe(so, sizeof(so));
	return r;
}

static kiln_result init_event(struct deployment *dep, struct init_ctx *ic, const char *actor,
			      kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	json_t *j = json_pack("{s:s,s:s,s:s}", "deployment", ic->deployment_id, "algorithm",
			      kiln_alg_get(ic->alg)->name, "org", ic->org);
	kiln_result r;

	KILN_ENSURE(j != NULL, KILN_ERR_NOMEM);
	ev.detail_json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, "init", sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, ic->deployment_id, sizeof(ev.subject));
	r = kiln_store_event_add(dep->store, &ev, d);
	free(ev.detail_json);
	return r;
}

static kiln_result run_init(struct init_ctx *ic, struct deployment *dep, const char *actor,
			    kiln_diag *d)
{
	static const kiln_env envs[] = { KILN_ENV_PRODUCTION, KILN_ENV_TEST, KILN_ENV_SERVICE };
	char db[KILN_PATH_MAX + 16];
	struct kiln_store_opts so = { 0 };
	kiln_buf yaml;
	uint8_t id[8];
	kiln_result r;

	kiln_buf_init(&yaml, KILN_POLICY_MAX_BYTES);
	KILN_TRY(r, kiln_random(id, sizeof(id)));
	kiln_hex_encode(id, sizeof(id), ic->deployment_id);
	KILN_TRY(r, make_dirs(ic, d));
	kiln_strtrunc(dep->dir, ic->abs, sizeof(dep->dir));
	dep->cfg = ic->cfg;
	if (ic->cfg.softhsm2_conf[0] != '\0')
		KILN_TRY(r, softhsm_conf(ic, d));
	KILN_TRY(r, deploy_path(ic->abs, ic->cfg.database, db, sizeof(db)));
	so = (struct kiln_store_opts){ .path = db, .create = true, .log = &dep->log };
	KILN_TRY(r, kiln_store_open(&so, &dep->store, d));
	KILN_TRY(r, init_event(dep, ic, actor, d));
	KILN_TRY(r, kiln_p11_load(ic->cfg.hsm_module, &dep->log, &dep->p11, d));
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		KILN_TRY(r, make_env(ic, dep, envs[i], actor, d));
	KILN_TRY(r, kiln_config_format(&ic->cfg, &yaml));
	KILN_TRY(r, write_text(ic->abs, "kiln.yaml", kiln_buf_cstr(&yaml), 0600, d));
	KILN_TRY(r, deploy_ca(dep, d));
	/* The delegated OCSP signers, one per issuing CA, in that environment's token. */
	KILN_TRY(r, kiln_ca_ocsp_signer_ensure(dep->ca, KILN_ENV_PRODUCTION, actor, NULL, d));
	KILN_TRY(r, kiln_ca_ocsp_signer_ensure(dep->ca, KILN_ENV_TEST, actor, NULL, d));
	/* The backup key: AES-256, in the service token, never leaves it (docs/backup.md). */
	KILN_TRY(r, cli_backup_key_ensure(dep, actor, NULL, d));
	/* The log key is made with the service hierarchy; the first checkpoint covers init. */
	KILN_TRY(r, deploy_ledger(dep, true, actor, d));
	KILN_TRY(r, kiln_ledger_checkpoint(dep->ledger, &ic->checkpoint, NULL, d));
out:
	kiln_buf_cleanup(&yaml);
	return r;
}

static int report(struct deployment *dep, struct init_ctx *ic, bool json)
{
	struct kiln_ca_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *cas = json_array();

	kiln_diag_clear(&d);
	r = kiln_store_ca_list(dep->store, &list, &n, &d);
	if (!kiln_is_ok(r)) {
		json_decref(cas);
		return cli_fail(r, &d);
	}
	if (!json)
		printf("kiln deployment %s initialised in %s (%s)\n", ic->deployment_id, ic->abs,
		       kiln_alg_get(ic->alg)->display);
	for (size_t i = 0; i < n; i++) {
		const struct kiln_ca_rec *c = &list[i];

		if (!json)
			printf("  %-20s %-10s %-8s %-8s %s\n", c->name, c->env, c->role, c->alg,
			       c->subject);
		else
			(void)json_array_append_new(cas, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name",
								   c->name, "env", c->env, "role",
								   c->role, "alg", c->alg, "serial",
								   c->serial, "subject", c->subject));
	}
	kiln_store_ca_list_free(list, n);
	if (json)
		return cli_print_json(json_pack("{s:s,s:s,s:s,s:o}", "dir", ic->abs, "deployment",
						ic->deployment_id, "algorithm",
						kiln_alg_get(ic->alg)->name, "cas", cas));
	json_decref(cas);
	printf("tokens: %s, %s, %s; PINs in %s/secrets (mode 0600)\n",
	       ic->cfg.tokens[KILN_ENV_PRODUCTION].label, ic->cfg.tokens[KILN_ENV_TEST].label,
	       ic->cfg.tokens[KILN_ENV_SERVICE].label, ic->abs);
	return CLI_OK;
}

int cmd_init(int argc, char **argv)
{
	const char *alg = "p256", *org = "kiln", *module = NULL;
	const struct cli_opt opts[] = { { "algorithm", true, &alg, NULL },
					{ "org", true, &org, NULL },
					{ "hsm-module", true, &module, NULL },
					{ NULL, false, NULL, NULL } };
	struct init_ctx ic = { 0 };
	struct cli_common c;
	struct deployment dep;
	kiln_diag d;
	kiln_result r;
	size_t npos;
	int rc;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(init_usage, stdout);
		return CLI_OK;
	}
	if (c.dir == NULL)
		return cli_usage_error("init: --dir DIR is required");
	if (!kiln_is_ok(kiln_alg_parse(alg, &ic.alg)))
		return cli_usage_error("init: unknown algorithm '%s' (p256, p384, ed25519, rsa3072)", alg);
	if (org[0] == '\0' || strlen(org) > 64)
		return cli_usage_error("init: --org must be 1 to 64 characters");
	ic.dir = c.dir;
	ic.org = org;
	kiln_config_defaults(&ic.cfg);
	kiln_strtrunc(ic.cfg.ca_algorithm, alg, sizeof(ic.cfg.ca_algorithm));
	if (module != NULL) {
		if (!kiln_is_ok(kiln_strlcpy(ic.cfg.hsm_module, module, sizeof(ic.cfg.hsm_module))))
			return cli_usage_error("init: --hsm-module path too long");
		if (strstr(module, "softhsm") == NULL)
			ic.cfg.softhsm2_conf[0] = '\0';
	}
	memset(&dep, 0, sizeof(dep));
	dep.log = (kiln_log){ kiln_log_sink_file, stderr, c.verbose ? KILN_LOG_DEBUG : KILN_LOG_WARN };
	kiln_diag_clear(&d);
	r = run_init(&ic, &dep, c.actor, &d);
	rc = kiln_is_ok(r) ? report(&dep, &ic, c.json) : cli_fail(r, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r) && ic.abs[0] != '\0') {
		/* Leave nothing half-made behind: the tokens' keys die with their directory. */
		(void)nftw(ic.abs, ic.created_dir ? rm_entry : rm_inside, 16, FTW_DEPTH | FTW_PHYS);
	}
	return rc;
}
