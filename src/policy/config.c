/*
 * The deployment configuration, DIR/kiln.yaml: its schema, its defaults and
 * the writer kiln init uses, whose output this parser reads back unchanged.
 */
#include "policy/policy_int.h"
#include "policy/yaml_schema.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SIZEOF(type, member) sizeof(((type *)0)->member)
#define AT(type, member) .off = offsetof(type, member), .size = SIZEOF(type, member)

static const struct kiln_yaml_name algorithm_names[] = {
	{ "p256", 0 }, { "p384", 0 }, { "ed25519", 0 }, { "rsa3072", 0 }, { NULL, 0 },
};

/* ------------------------------------------------------------ checks */

static bool host_char(char ch, bool bracketed)
{
	if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
	    ch == '.')
		return true;
	if (bracketed)
		return ch == ':';
	return (ch >= 'g' && ch <= 'z') || (ch >= 'G' && ch <= 'Z') || ch == '-';
}

/* "HOST:PORT" with HOST a name, an IPv4 address or a bracketed IPv6 address. */
static bool listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':'), *h = s, *end;
	uint64_t port;
	bool bracketed = s[0] == '[';

	if (colon == NULL || colon == s)
		return false;
	end = colon;
	if (bracketed) {
		if (colon[-1] != ']' || colon - s < 3)
			return false;
		h = s + 1;
		end = colon - 1;
	}
	for (; h < end; h++)
		if (!host_char(*h, bracketed))
			return false;
	if (colon[1] == '0')
		return false;
	return kiln_is_ok(kiln_parse_u64(colon + 1, 65535, &port)) && port > 0;
}

static kiln_result check_listen(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	if (!listen_ok(dst))
		return kiln_yaml_fail(c, n, "'%s' must be HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443",
				      kiln_yaml_path(c));
	return kiln_ok();
}

static kiln_result check_url(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	if (!kiln_policy_url_ok(dst))
		return kiln_yaml_fail(c, n, "'%s' must be an http:// or https:// URL", kiln_yaml_path(c));
	return kiln_ok();
}

static const char *present(struct kiln_yaml_ctx *c, const char *path, const char *other)
{
	return kiln_yaml_find(c, path, NULL) != NULL ? path : other;
}

/*
 * Production, test and service keys live in separate tokens (DESIGN.md,
 * principle 2), and no certificate may outlive the CA that issues it.
 */
static kiln_result check_config(struct kiln_yaml_ctx *c, const yaml_node_t *map, void *base)
{
	const kiln_config *cfg = base;
	char path[64], first[64];

	(void)map;
	for (unsigned i = KILN_ENV_TEST; i <= KILN_ENV_SERVICE; i++) {
		for (unsigned j = KILN_ENV_PRODUCTION; j < i; j++) {
			if (strcmp(cfg->tokens[i].label, cfg->tokens[j].label) != 0)
				continue;
			(void)snprintf(path, sizeof(path), "hsm.tokens.%s.label",
				       kiln_env_name((kiln_env)i));
			(void)snprintf(first, sizeof(first), "hsm.tokens.%s.label",
				       kiln_env_name((kiln_env)j));
			return kiln_yaml_fail_at(c, path,
						 "'%s' must differ from '%s': each environment has its own token",
						 path, first);
		}
	}
	/* Point at whichever of the two keys the file actually sets. */
	if (cfg->issuing_validity_days > cfg->root_validity_days)
		return kiln_yaml_fail_at(c, present(c, "ca.issuing_validity_days", "ca.root_validity_days"),
					 "'ca.issuing_validity_days' (%u) exceeds 'ca.root_validity_days' (%u)",
					 cfg->issuing_validity_days, cfg->root_validity_days);
	if (cfg->identity_validity_days > cfg->issuing_validity_days)
		return kiln_yaml_fail_at(c,
					 present(c, "ca.identity_validity_days", "ca.issuing_validity_days"),
					 "'ca.identity_validity_days' (%u) exceeds 'ca.issuing_validity_days' (%u)",
					 cfg->identity_validity_days, cfg->issuing_validity_days);
	return kiln_ok();
}

/* ------------------------------------------------------------ schema */

static const struct kiln_yaml_field token_fields[] = {
	{ .key = "label", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(struct kiln_config_token, label) },
	{ .key = "pin_file", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(struct kiln_config_token, pin_file) },
};

static const struct kiln_yaml_map token_map = { token_fields, N(token_fields), NULL };

static const struct kiln_yaml_field tokens_fields[] = {
	{ .key = "production", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED,
	  .off = offsetof(kiln_config, tokens[KILN_ENV_PRODUCTION]), .sub = &token_map },
	{ .key = "test", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED,
	  .off = offsetof(kiln_config, tokens[KILN_ENV_TEST]), .sub = &token_map },
	{ .key = "service", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED,
	  .off = offsetof(kiln_config, tokens[KILN_ENV_SERVICE]), .sub = &token_map },
};

static const struct kiln_yaml_map tokens_map = { tokens_fields, N(tokens_fields), NULL };

static const struct kiln_yaml_field hsm_fields[] = {
	{ .key = "module", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(kiln_config, hsm_module) },
	{ .key = "softhsm2_conf", .kind = KILN_Y_STR, AT(kiln_config, softhsm2_conf) },
	{ .key = "sessions", .kind = KILN_Y_UINT, AT(kiln_config, hsm_sessions), .min = 1, .max = 64 },
	{ .key = "tokens", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED, .sub = &tokens_map },
};

static const struct kiln_yaml_map hsm_map = { hsm_fields, N(hsm_fields), NULL };

static const struct kiln_yaml_field ca_fields[] = {
	{ .key = "algorithm", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED,
	  AT(kiln_config, ca_algorithm), .names = algorithm_names },
	{ .key = "root_validity_days", .kind = KILN_Y_UINT, AT(kiln_config, root_validity_days),
	  .min = 1, .max = 36500 },
	{ .key = "issuing_validity_days", .kind = KILN_Y_UINT, AT(kiln_config, issuing_validity_days),
	  .min = 1, .max = 36500 },
	{ .key = "identity_validity_days", .kind = KILN_Y_UINT,
	  AT(kiln_config, identity_validity_days), .min = 1, .max = 36500 },
};

static const struct kiln_yaml_map ca_map = { ca_fields, N(ca_fields), NULL };

static const struct kiln_yaml_field server_fields[] = {
	{ .key = "listen", .kind = KILN_Y_STR, AT(kiln_config, listen), .check = check_listen },
};

static const struct kiln_yaml_map server_map = { server_fields, N(server_fields), NULL };

static const struct kiln_yaml_field ledger_fields[] = {
	{ .key = "checkpoint_interval_s", .kind = KILN_Y_UINT,
	  AT(kiln_config, checkpoint_interval_s), .min = 1, .max = 86400 },
	{ .key = "checkpoint_entries", .kind = KILN_Y_UINT, AT(kiln_config, checkpoint_entries),
	  .min = 1, .max = 10000000 },
};

static const struct kiln_yaml_map ledger_map = { ledger_fields, N(ledger_fields), NULL };
static const struct kiln_yaml_field revocation_fields[] = {
	{ .key = "crl_validity_hours", .kind = KILN_Y_UINT, AT(kiln_config, crl_validity_hours),
	  .min = 1, .max = 8760 },
	{ .key = "ocsp_validity_hours", .kind = KILN_Y_UINT, AT(kiln_config, ocsp_validity_hours),
	  .min = 1, .max = 168 },
};

static const struct kiln_yaml_map revocation_map = { revocation_fields, N(revocation_fields), NULL };
#define APPROVAL_COUNT(k, f)                                                       \
	{ .key = k, .kind = KILN_Y_UINT, AT(struct kiln_config_approvals, f), .min = 0, \
	  .max = 16 }

static const struct kiln_yaml_field approval_op_fields[] = {
	APPROVAL_COUNT("policy_activate", policy_activate),
	APPROVAL_COUNT("identity_add", identity_add),
	APPROVAL_COUNT("revoke_bulk", revoke_bulk),
	APPROVAL_COUNT("ca_rotate", ca_rotate),
	APPROVAL_COUNT("backup_restore", backup_restore),
};

static const struct kiln_yaml_map approval_op_map = { approval_op_fields, N(approval_op_fields),
						      NULL };

static const struct kiln_yaml_field approval_fields[] = {
	{ .key = "quorum", .kind = KILN_Y_UINT, AT(struct kiln_config_approvals, quorum), .min = 1,
	  .max = 16 },
	{ .key = "request_ttl_s", .kind = KILN_Y_UINT,
	  AT(struct kiln_config_approvals, request_ttl_s), .min = 1, .max = 31 * 86400 },
	{ .key = "operations", .kind = KILN_Y_MAP, .sub = &approval_op_map },
};

static const struct kiln_yaml_map approval_map = { approval_fields, N(approval_fields), NULL };

static const struct kiln_yaml_field config_fields[] = {
	{ .key = "version", .kind = KILN_Y_UINT, .flags = KILN_Y_REQUIRED, AT(kiln_config, version),
	  .min = 1, .max = 1 },
	{ .key = "database", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(kiln_config, database) },
	{ .key = "hsm", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED, .sub = &hsm_map },
	{ .key = "ca", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED, .sub = &ca_map },
	{ .key = "public_url", .kind = KILN_Y_STR, AT(kiln_config, public_url), .check = check_url },
	{ .key = "server", .kind = KILN_Y_MAP, .sub = &server_map },
	{ .key = "ledger", .kind = KILN_Y_MAP, .sub = &ledger_map },
	{ .key = "revocation", .kind = KILN_Y_MAP, .sub = &revocation_map },
	{ .key = "approvals", .kind = KILN_Y_MAP, .off = offsetof(kiln_config, approvals),
	  .sub = &approval_map },
};

static const struct kiln_yaml_map config_map = { config_fields, N(config_fields), check_config };

/* ------------------------------------------------------------ API */

static void set(char *dst, size_t cap, const char *s)
{
	memset(dst, 0, cap);
	if (snprintf(dst, cap, "%s", s) < 0)
		dst[0] = '\0';
}

void kiln_config_defaults(kiln_config *cfg)
{
	static const char *const labels[] = { "", "kiln-prod", "kiln-test", "kiln-service" };

	memset(cfg, 0, sizeof(*cfg));
	cfg->version = 1;
	set(cfg->database, sizeof(cfg->database), "kiln.db");
	set(cfg->hsm_module, sizeof(cfg->hsm_module), "/usr/lib/softhsm/libsofthsm2.so");
	set(cfg->softhsm2_conf, sizeof(cfg->softhsm2_conf), "hsm/softhsm2.conf");
	cfg->hsm_sessions = 4;
	for (unsigned i = KILN_ENV_PRODUCTION; i <= KILN_ENV_SERVICE; i++) {
		set(cfg->tokens[i].label, sizeof(cfg->tokens[i].label), labels[i]);
		if (snprintf(cfg->tokens[i].pin_file, sizeof(cfg->tokens[i].pin_file),
			     "secrets/%s.pin", labels[i]) < 0)
			cfg->tokens[i].pin_file[0] = '\0';
	}
	set(cfg->ca_algorithm, sizeof(cfg->ca_algorithm), "p256");
	cfg->root_validity_days = 7300;
	cfg->issuing_validity_days = 3650;
	cfg->identity_validity_days = 825;
	set(cfg->public_url, sizeof(cfg->public_url), "http://127.0.0.1:8443");
	set(cfg->listen, sizeof(cfg->listen), "127.0.0.1:8443");
	cfg->checkpoint_interval_s = 10;
	cfg->checkpoint_entries = 1000;
	cfg->crl_validity_hours = 24;
	cfg->ocsp_validity_hours = 4;
	cfg->approvals.quorum = 2;
	cfg->approvals.request_ttl_s = 86400;
}

kiln_result kiln_config_parse(kiln_slice yaml, const char *filename, kiln_config *out,
			      kiln_diag *d)
{
	struct kiln_yaml_ctx c;
	kiln_config cfg;
	kiln_result r;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	kiln_config_defaults(&cfg);
	/* Absent means the module is not SoftHSM2; kiln init always writes it. */
	memset(cfg.softhsm2_conf, 0, sizeof(cfg.softhsm2_conf));
	KILN_TRY(r, kiln_yaml_load(&c, yaml, filename, KILN_ERR_CONFIG, KILN_ERR_CONFIG, d));
	KILN_TRY(r, kiln_yaml_walk(&c, &config_map, &cfg));
	*out = cfg;
out:
	kiln_yaml_cleanup(&c);
	return r;
}

/* ------------------------------------------------------------ writer */

/*
 * The YAML escape for the character at s[i] if it needs one (its length in
 * *n), else NULL: quotes, backslashes, control characters, and the Unicode
 * line breaks a reader would fold (U+0085, U+2028, U+2029). What the parser
 * refuses is still written faithfully, so it is refused, not changed.
 */
static const char *escape(const unsigned char *s, size_t len, size_t i, size_t *n, char buf[8])
{
	*n = 1;
	if (s[i] == '"')
		return "\\\"";
	if (s[i] == '\\')
		return "\\\\";
	if (s[i] < 0x20 || s[i] == 0x7f) {
		(void)snprintf(buf, 8, "\\x%02x", s[i]);
		return buf;
	}
	if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
		*n = 2;
		(void)snprintf(buf, 8, "\\x%02x", s[i + 1]);
		return buf;
	}
	if (s[i] == 0xe2 && i + 2 < len && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
		*n = 3;
		return s[i + 2] == 0xa8 ? "\\L" : "\\P";
	}
	return NULL;
}

/* indent, key, then the value as a double-quoted YAML string. */
static kiln_result put_str(kiln_buf *b, const char *indent, const char *key, const char *s,
			   size_t cap)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strnlen(s, cap), n;
	const char *esc;
	char buf[8];

	KILN_ENSURE(len < cap, KILN_ERR_ARG);
	KILN_GUARD(kiln_buf_printf(b, "%s%s: \"", indent, key));
	for (size_t i = 0; i < len; i += n) {
		esc = escape(u, len, i, &n, buf);
		if (esc != NULL)
			KILN_GUARD(kiln_buf_append_str(b, esc));
		else
			KILN_GUARD(kiln_buf_append_u8(b, u[i]));
	}
	return kiln_buf_append_str(b, "\"\n");
}

#define PUT(b, indent, key, field) put_str((b), (indent), (key), (field), sizeof(field))

static kiln_result format(const kiln_config *cfg, kiln_buf *b)
{
	KILN_GUARD(kiln_buf_append_str(b,
		"# kiln deployment configuration, written by kiln init.\n"
		"# Reference: docs/policy.md. Relative paths are relative to this file's directory.\n"
		"# Production, test and service keys live in separate HSM tokens.\n"));
	KILN_GUARD(kiln_buf_printf(b, "version: %u\n", cfg->version));
	KILN_GUARD(PUT(b, "", "database", cfg->database));
	KILN_GUARD(kiln_buf_append_str(b, "hsm:\n"));
	KILN_GUARD(PUT(b, "  ", "module", cfg->hsm_module));
	KILN_GUARD(PUT(b, "  ", "softhsm2_conf", cfg->softhsm2_conf));
	KILN_GUARD(kiln_buf_printf(b, "  sessions: %u\n  tokens:\n", cfg->hsm_sessions));
	for (unsigned i = KILN_ENV_PRODUCTION; i <= KILN_ENV_SERVICE; i++) {
		KILN_GUARD(kiln_buf_printf(b, "    %s:\n", kiln_env_name((kiln_env)i)));
		KILN_GUARD(PUT(b, "      ", "label", cfg->tokens[i].label));
		KILN_GUARD(PUT(b, "      ", "pin_file", cfg->tokens[i].pin_file));
	}
	KILN_GUARD(kiln_buf_append_str(b, "ca:\n"));
	KILN_GUARD(PUT(b, "  ", "algorithm", cfg->ca_algorithm));
	KILN_GUARD(kiln_buf_printf(b,
				   "  root_validity_days: %u\n  issuing_validity_days: %u\n"
				   "  identity_validity_days: %u\n",
				   cfg->root_validity_days, cfg->issuing_validity_days,
				   cfg->identity_validity_days));
	KILN_GUARD(PUT(b, "", "public_url", cfg->public_url));
	KILN_GUARD(kiln_buf_append_str(b, "server:\n"));
	KILN_GUARD(PUT(b, "  ", "listen", cfg->listen));
	KILN_GUARD(kiln_buf_printf(b, "ledger:\n  checkpoint_interval_s: %u\n  checkpoint_entries: %u\n",
				   cfg->checkpoint_interval_s, cfg->checkpoint_entries));
	KILN_GUARD(kiln_buf_printf(b, "revocation:\n  crl_validity_hours: %u\n  ocsp_validity_hours: %u\n",
				   cfg->crl_validity_hours, cfg->ocsp_validity_hours));
	return kiln_buf_printf(b,
			       "# M-of-N officer approvals (docs/roles.md); an operation's 0 means quorum.\n"
			       "approvals:\n  quorum: %u\n  request_ttl_s: %u\n  operations:\n"
			       "    policy_activate: %u\n    identity_add: %u\n    revoke_bulk: %u\n"
			       "    ca_rotate: %u\n    backup_restore: %u\n",
			       cfg->approvals.quorum, cfg->approvals.request_ttl_s,
			       cfg->approvals.policy_activate, cfg->approvals.identity_add,
			       cfg->approvals.revoke_bulk, cfg->approvals.ca_rotate,
			       cfg->approvals.backup_restore);
}

kiln_result kiln_config_format(const kiln_config *cfg, kiln_buf *out)
{
	kiln_result r;
	kiln_buf b;

	KILN_ENSURE(cfg != NULL && out != NULL, KILN_ERR_ARG);
	kiln_buf_init(&b, KILN_POLICY_MAX_BYTES);
	/* Built aside and appended whole, so a failure leaves out as it was. */
	KILN_TRY(r, format(cfg, &b));
	KILN_TRY(r, kiln_buf_append_slice(out, kiln_buf_view(&b)));
out:
	kiln_buf_cleanup(&b);
	return r;
}
