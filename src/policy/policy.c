/*
 * Product policies: the schema of a policy file (docs/policy.md), the rules
 * that span several keys, and the questions the CA asks of a parsed policy.
 */
#include "policy/policy_int.h"
#include "policy/yaml_schema.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(kiln_env) == sizeof(unsigned), "enums are stored as unsigned");
_Static_assert(sizeof(kiln_attest_type) == sizeof(unsigned), "enums are stored as unsigned");

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SIZEOF(type, member) sizeof(((type *)0)->member)
/* Where a value goes: offset and size of a member. */
#define AT(type, member) .off = offsetof(type, member), .size = SIZEOF(type, member)
/* Where a list goes: array, stride, count and capacity. */
#define LIST_AT(type, member, count)                                                     \
	.off = offsetof(type, member), .size = SIZEOF(type, member[0]),                  \
	.count_off = offsetof(type, count), .max = N(((type *)0)->member)

/* ------------------------------------------------------------ names */

static const struct kiln_yaml_name env_names[] = {
	{ "production", KILN_ENV_PRODUCTION },
	{ "test", KILN_ENV_TEST },
	{ NULL, 0 },
};

static const struct kiln_yaml_name key_types[] = {
	{ "ec", 0 }, { "ed25519", 0 }, { "rsa", 0 }, { NULL, 0 },
};

static const struct kiln_yaml_name curve_names[] = {
	{ "p256", 0 }, { "p384", 0 }, { "p521", 0 }, { NULL, 0 },
};

static const struct kiln_yaml_name attr_names[] = {
	{ "CN", 0 }, { "O", 0 }, { "OU", 0 }, { "C", 0 }, { "L", 0 }, { "ST", 0 },
	{ "serialNumber", 0 }, { NULL, 0 },
};

static const struct kiln_yaml_name ku_names[] = {
	{ "digitalSignature", KILN_KU_DIGITAL_SIGNATURE },
	{ "nonRepudiation", KILN_KU_NON_REPUDIATION },
	{ "keyEncipherment", KILN_KU_KEY_ENCIPHERMENT },
	{ "dataEncipherment", KILN_KU_DATA_ENCIPHERMENT },
	{ "keyAgreement", KILN_KU_KEY_AGREEMENT },
	{ NULL, 0 },
};

static const struct kiln_yaml_name eku_names[] = {
	{ "clientAuth", KILN_EKU_CLIENT_AUTH },
	{ "serverAuth", KILN_EKU_SERVER_AUTH },
	{ "codeSigning", KILN_EKU_CODE_SIGNING },
	{ "emailProtection", KILN_EKU_EMAIL_PROTECTION },
	{ NULL, 0 },
};

static const struct kiln_yaml_name attest_names[] = {
	{ "none", KILN_ATTEST_NONE },
	{ "dice", KILN_ATTEST_DICE },
	{ "tpm2", KILN_ATTEST_TPM2 },
	{ "secure-element", KILN_ATTEST_SE },
	{ NULL, 0 },
};

/* ------------------------------------------------------------ value checks */

static kiln_result check_product(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	const char *s = dst;
	bool ok = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9');

	for (size_t i = 1; ok && s[i] != '\0'; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
	if (!ok)
		return kiln_yaml_fail(c, n,
				      "'%s' must be 1 to 63 characters a-z, 0-9 or '-', starting with a letter or digit",
				      kiln_yaml_path(c));
	return kiln_ok();
}

static kiln_result check_template(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	char why[160];

	if (!kiln_is_ok(kiln_policy_tmpl_check(dst, why, sizeof(why))))
		return kiln_yaml_fail(c, n, "'%s' %s", kiln_yaml_path(c), why);
	return kiln_ok();
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_alnum(char ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9');
}

/* A URI template starts with a scheme ("urn:", "https:") and holds no spaces. */
static kiln_result check_uri_template(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	const char *s = dst;
	size_t i = 0;

	KILN_GUARD(check_template(c, n, dst));
	if (is_alpha(s[0]))
		for (i = 1; is_alnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'; i++)
			;
	if (i == 0 || s[i] != ':' || strchr(s, ' ') != NULL)
		return kiln_yaml_fail(c, n, "'%s' must be a URI with a scheme (e.g. urn:...), without spaces",
				      kiln_yaml_path(c));
	return kiln_ok();
}

/* Outside placeholders a DNS template holds letters, digits, '-' and '.' only. */
static kiln_result check_dns_template(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	const char *s = dst;

	KILN_GUARD(check_template(c, n, dst));
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '{') {
			i += strcspn(s + i, "}");
			continue;
		}
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
			return kiln_yaml_fail(c, n, "'%s' must hold only letters, digits, '-', '.' and placeholders",
					      kiln_yaml_path(c));
	}
	return kiln_ok();
}

bool kiln_policy_url_ok(const char *url)
{
	size_t skip;

	if (strncmp(url, "http://", 7) == 0)
		skip = 7;
	else if (strncmp(url, "https://", 8) == 0)
		skip = 8;
	else
		return false;
	if (url[skip] == '\0' || url[skip] == '/')
		return false;
	return strpbrk(url, " \"<>\\^`{|}") == NULL;
}

static kiln_result check_url(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	if (!kiln_policy_url_ok(dst))
		return kiln_yaml_fail(c, n, "'%s' must be an http:// or https:// URL", kiln_yaml_path(c));
	return kiln_ok();
}

static bool base64_line(const char *s, size_t len)
{
	if (len == 0 || len > 76)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '+' && s[i] != '/' && s[i] != '=')
			return false;
	return true;
}

/* One certificate: BEGIN line, base64 lines, END line, surrounding blank space only. */
static bool pem_shaped(const char *s)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
	static const char end[] = "-----END CERTIFICATE-----";
	size_t lines = 0;

	s += strspn(s, " \n");
	if (strncmp(s, begin, sizeof(begin) - 1) != 0)
		return false;
	s += sizeof(begin) - 1;
	for (;;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);

		if (len == sizeof(end) - 1 && memcmp(s, end, len) == 0)
			return lines > 0 && s[len + strspn(s + len, " \n")] == '\0';
		if (!base64_line(s, len) || nl == NULL)
			return false;
		lines++;
		s = nl + 1;
	}
}

static kiln_result check_pem(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	char *const *pem = dst;

	if (!pem_shaped(*pem))
		return kiln_yaml_fail(c, n,
				      "'%s' must be one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
				      kiln_yaml_path(c));
	return kiln_ok();
}

/* ------------------------------------------------------------ keys */

static kiln_result check_key(struct kiln_yaml_ctx *c, const yaml_node_t *map, void *base)
{
	struct kiln_policy_key *k = base;
	const yaml_node_t *kn = NULL;
	bool ec = strcmp(k->type, "ec") == 0, rsa = strcmp(k->type, "rsa") == 0;
	const char *path = kiln_yaml_path(c);

	if (!ec && kiln_yaml_get(c, map, "curves", &kn) != NULL)
		return kiln_yaml_fail(c, kn, "'%s.curves' is only allowed with type ec", path);
	if (!rsa && kiln_yaml_get(c, map, "min_bits", &kn) != NULL)
		return kiln_yaml_fail(c, kn, "'%s.min_bits' is only allowed with type rsa", path);
	if (!rsa && kiln_yaml_get(c, map, "max_bits", &kn) != NULL)
		return kiln_yaml_fail(c, kn, "'%s.max_bits' is only allowed with type rsa", path);
	if (ec && k->n_curves == 0)
		return kiln_yaml_fail(c, map, "missing required key 'curves' in '%s' (needed for type ec)",
				      path);
	if (rsa && kiln_yaml_get(c, map, "min_bits", NULL) == NULL)
		return kiln_yaml_fail(c, map,
				      "missing required key 'min_bits' in '%s' (needed for type rsa)", path);
	if (rsa && kiln_yaml_get(c, map, "max_bits", NULL) == NULL)
		k->max_bits = 16384;
	if (rsa && k->min_bits > k->max_bits) {
		(void)kiln_yaml_get(c, map, "max_bits", &kn);
		return kiln_yaml_fail(c, kn, "'%s.max_bits' (%u) is below 'min_bits' (%u)", path,
				      k->max_bits, k->min_bits);
	}
	return kiln_ok();
}

static const struct kiln_yaml_field curve_elem = {
	.key = "curve", .kind = KILN_Y_STR, .size = SIZEOF(struct kiln_policy_key, curves[0]),
	.names = curve_names,
};

static const struct kiln_yaml_field key_fields[] = {
	{ .key = "type", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED,
	  AT(struct kiln_policy_key, type), .names = key_types },
	{ .key = "curves", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(struct kiln_policy_key, curves, n_curves), .min = 1, .elem = &curve_elem },
	{ .key = "min_bits", .kind = KILN_Y_UINT, AT(struct kiln_policy_key, min_bits),
	  .min = 2048, .max = 16384 },
	{ .key = "max_bits", .kind = KILN_Y_UINT, AT(struct kiln_policy_key, max_bits),
	  .min = 2048, .max = 16384 },
};

static const struct kiln_yaml_map key_map = { key_fields, N(key_fields), check_key };

static const struct kiln_yaml_field key_elem = {
	.key = "key", .kind = KILN_Y_MAP, .sub = &key_map,
};

/* ------------------------------------------------------------ subject, SAN, revocation */

static const struct kiln_yaml_field serial_fields[] = {
	{ .key = "pattern", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(kiln_policy, serial_pattern) },
};

static const struct kiln_yaml_map serial_map = { serial_fields, N(serial_fields), NULL };

static const struct kiln_yaml_field attr_key = {
	.key = "attribute", .kind = KILN_Y_STR, AT(struct kiln_policy_attr, attr),
	.names = attr_names,
};

static const struct kiln_yaml_field attr_value = {
	.key = "template", .kind = KILN_Y_STR, .flags = KILN_Y_NONEMPTY,
	AT(struct kiln_policy_attr, tmpl), .check = check_template,
};

static const struct kiln_yaml_field csr_attr_elem = {
	.key = "attribute", .kind = KILN_Y_STR, .size = SIZEOF(kiln_policy, csr_subject_allowed[0]),
	.names = attr_names,
};

static const struct kiln_yaml_field uri_elem = {
	.key = "uri", .kind = KILN_Y_STR, .flags = KILN_Y_NONEMPTY,
	.size = SIZEOF(kiln_policy, san_uri[0]), .check = check_uri_template,
};

static const struct kiln_yaml_field dns_elem = {
	.key = "dns", .kind = KILN_Y_STR, .flags = KILN_Y_NONEMPTY,
	.size = SIZEOF(kiln_policy, san_dns[0]), .check = check_dns_template,
};

static const struct kiln_yaml_field san_fields[] = {
	{ .key = "uri", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(kiln_policy, san_uri, n_san_uri), .elem = &uri_elem },
	{ .key = "dns", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(kiln_policy, san_dns, n_san_dns), .elem = &dns_elem },
};

static const struct kiln_yaml_map san_map = { san_fields, N(san_fields), NULL };

static const struct kiln_yaml_field revocation_fields[] = {
	{ .key = "crl_url", .kind = KILN_Y_STR, AT(kiln_policy, crl_url), .check = check_url },
	{ .key = "ocsp_url", .kind = KILN_Y_STR, AT(kiln_policy, ocsp_url), .check = check_url },
};

static const struct kiln_yaml_map revocation_map = { revocation_fields, N(revocation_fields), NULL };

/* ------------------------------------------------------------ attestation */

#define ATT struct kiln_policy_attestation

static const struct kiln_yaml_field fw_fields[] = {
	{ .key = "version", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(struct kiln_policy_firmware, version) },
	{ .key = "sha256", .kind = KILN_Y_HEX, .flags = KILN_Y_REQUIRED,
	  AT(struct kiln_policy_firmware, sha256) },
};

static const struct kiln_yaml_map fw_map = { fw_fields, N(fw_fields), NULL };

static const struct kiln_yaml_field fw_elem = { .key = "firmware", .kind = KILN_Y_MAP, .sub = &fw_map };

static const struct kiln_yaml_field pem_elem = {
	.key = "certificate", .kind = KILN_Y_STR_HEAP, .flags = KILN_Y_MULTILINE,
	.size = KILN_POLICY_PEM_MAX, .check = check_pem,
};

static const struct kiln_yaml_field pcr_key = {
	.key = "index", .kind = KILN_Y_UINT, AT(struct kiln_policy_pcr, index), .min = 0,
	.max = KILN_POLICY_MAX_PCRS - 1,
};

static const struct kiln_yaml_field pcr_value = {
	.key = "digest", .kind = KILN_Y_HEX, AT(struct kiln_policy_pcr, sha256),
};

static const struct kiln_yaml_field pcrs_fields[] = {
	{ .key = "sha256", .kind = KILN_Y_DICT, .flags = KILN_Y_REQUIRED,
	  LIST_AT(ATT, pcrs, n_pcrs), .elem = &pcr_value, .dict_key = &pcr_key },
};

static const struct kiln_yaml_map pcrs_map = { pcrs_fields, N(pcrs_fields), NULL };

static const struct kiln_yaml_field attestation_fields[] = {
	{ .key = "type", .kind = KILN_Y_ENUM, .flags = KILN_Y_REQUIRED, AT(ATT, type),
	  .names = attest_names },
	{ .key = "firmware", .kind = KILN_Y_LIST, LIST_AT(ATT, firmware, n_firmware),
	  .elem = &fw_elem },
	{ .key = "vendor_roots", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(ATT, vendor_roots, n_vendor_roots), .elem = &pem_elem },
	{ .key = "ek_roots", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(ATT, ek_roots, n_ek_roots), .elem = &pem_elem },
	{ .key = "pcrs", .kind = KILN_Y_MAP, .sub = &pcrs_map },
};

static const struct kiln_yaml_map attestation_map = {
	attestation_fields, N(attestation_fields), NULL
};

/* Which attestation keys each type needs and admits (bits: 1 << kiln_attest_type). */
struct attest_rule {
	const char *key;
	size_t count_off;
	unsigned required;
	unsigned allowed;
};

#define T(x) (1u << (x))

static const struct attest_rule attest_rules[] = {
	{ "firmware", offsetof(ATT, n_firmware), T(KILN_ATTEST_DICE),
	  T(KILN_ATTEST_DICE) | T(KILN_ATTEST_TPM2) | T(KILN_ATTEST_SE) },
	{ "vendor_roots", offsetof(ATT, n_vendor_roots), T(KILN_ATTEST_SE),
	  T(KILN_ATTEST_DICE) | T(KILN_ATTEST_TPM2) | T(KILN_ATTEST_SE) },
	{ "ek_roots", offsetof(ATT, n_ek_roots), T(KILN_ATTEST_TPM2), T(KILN_ATTEST_TPM2) },
	{ "pcrs", offsetof(ATT, n_pcrs), T(KILN_ATTEST_TPM2), T(KILN_ATTEST_TPM2) },
};

static size_t attest_count(const ATT *a, const struct attest_rule *rule)
{
	size_t count;

	memcpy(&count, (const uint8_t *)a + rule->count_off, sizeof(count));
	return count;
}

static kiln_result check_attestation(struct kiln_yaml_ctx *c, const kiln_policy *p)
{
	const ATT *a = &p->attestation;
	const char *type = kiln_attest_type_name(a->type);
	unsigned bit = T(a->type);
	char path[64];

	if (a->type == KILN_ATTEST_NONE && p->env == KILN_ENV_PRODUCTION)
		return kiln_yaml_fail_at(c, "attestation.type",
					 "production policies must require attestation; 'none' is for test bring-up only");
	for (size_t i = 0; i < N(attest_rules); i++) {
		(void)snprintf(path, sizeof(path), "attestation.%s", attest_rules[i].key);
		if (!(attest_rules[i].allowed & bit) && kiln_yaml_find(c, path, NULL) != NULL)
			return kiln_yaml_fail_at(c, path, "'%s' is not used with attestation type %s",
						 path, type);
	}
	for (size_t i = 0; i < N(attest_rules); i++) {
		if (!(attest_rules[i].required & bit))
			continue;
		(void)snprintf(path, sizeof(path), "attestation.%s", attest_rules[i].key);
		if (kiln_yaml_find(c, path, NULL) == NULL)
			return kiln_yaml_fail_at(c, "attestation",
						 "missing required key '%s' in 'attestation' (needed for type %s)",
						 attest_rules[i].key, type);
		if (attest_count(a, &attest_rules[i]) == 0)
			return kiln_yaml_fail_at(c, path, "'%s' must not be empty for attestation type %s",
						 path, type);
	}
	return kiln_ok();
}

/* ------------------------------------------------------------ the policy */

static kiln_result check_keys_distinct(struct kiln_yaml_ctx *c, const kiln_policy *p)
{
	unsigned long first;
	char path[32];

	for (size_t i = 1; i < p->n_keys; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(p->keys[i].type, p->keys[j].type) != 0)
				continue;
			(void)snprintf(path, sizeof(path), "keys[%zu]", j);
			first = kiln_yaml_line(kiln_yaml_find(c, path, NULL));

			(void)snprintf(path, sizeof(path), "keys[%zu]", i);
			return kiln_yaml_fail_at(c, path,
						 "'%s' repeats key type '%s' (first at line %lu); list each type once",
						 path, p->keys[i].type, first);
		}
	}
	return kiln_ok();
}

static kiln_result check_subject(struct kiln_yaml_ctx *c, const kiln_policy *p)
{
	bool cn = false;

	for (size_t i = 0; i < p->n_subject; i++) {
		const struct kiln_policy_attr *a = &p->subject[i];

		cn = cn || strcmp(a->attr, "CN") == 0;
		if (strcmp(a->attr, "C") == 0 &&
		    !(strlen(a->tmpl) == 2 && a->tmpl[0] >= 'A' && a->tmpl[0] <= 'Z' &&
		      a->tmpl[1] >= 'A' && a->tmpl[1] <= 'Z'))
			return kiln_yaml_fail_at(c, "subject.C",
						 "'subject.C' must be a two-letter country code (ISO 3166), e.g. DE");
	}
	if (!cn)
		return kiln_yaml_fail_at(c, "subject", "'subject' must set CN");
	return kiln_ok();
}

static kiln_result check_serial_pattern(struct kiln_yaml_ctx *c, kiln_policy *p)
{
	char why[200];
	kiln_result r = kiln_policy_regex_compile(p->serial_pattern, &p->priv, why, sizeof(why));

	if (r.code == KILN_ERR_NOMEM)
		return kiln_diag_set(c->d, KILN_ERR_NOMEM, "%s: out of memory compiling the serial pattern",
				     c->file);
	if (!kiln_is_ok(r))
		return kiln_yaml_fail_at(c, "device_serial.pattern", "'device_serial.pattern' %s", why);
	return kiln_ok();
}

/* Rules that span keys, once the whole file is read. */
/* ------------------------------------------------------------ renewal and EST */

static const struct kiln_yaml_name bool_names[] = {
	{ "false", 0 },
	{ "true", 1 },
	{ NULL, 0 },
};

static const struct kiln_yaml_name est_enroll_names[] = {
	{ "none", KILN_EST_ENROLL_NONE },
	{ "station", KILN_EST_ENROLL_STATION },
	{ "open", KILN_EST_ENROLL_OPEN },
	{ "bootstrap", KILN_EST_ENROLL_BOOTSTRAP },
	{ NULL, 0 },
};

static kiln_result check_version(struct kiln_yaml_ctx *c, const yaml_node_t *n, void *dst)
{
	const char *v = dst;

	for (const char *p = v; *p; p++) {
		if ((*p < '0' || *p > '9') && *p != '.')
			return kiln_yaml_fail(c, n, "a firmware version is dotted decimal (\"1.2.0\")");
	}
	return kiln_ok();
}

static const struct kiln_yaml_field renewal_fields[] = {
	{ .key = "window_days", .kind = KILN_Y_UINT,
	  AT(struct kiln_policy_renewal, window_days), .min = 0, .max = 36500 },
	{ .key = "require_new_key", .kind = KILN_Y_ENUM,
	  AT(struct kiln_policy_renewal, require_new_key), .names = bool_names },
	{ .key = "min_firmware_version", .kind = KILN_Y_STR,
	  AT(struct kiln_policy_renewal, min_firmware_version), .check = check_version },
};

static const struct kiln_yaml_map renewal_map = { renewal_fields, N(renewal_fields), NULL };

static const struct kiln_yaml_field est_fields[] = {
	{ .key = "enroll", .kind = KILN_Y_ENUM, AT(kiln_policy, est_enroll), .names = est_enroll_names },
	{ .key = "bootstrap_roots", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(kiln_policy, est_bootstrap_roots, n_est_bootstrap_roots), .elem = &pem_elem },
};

static const struct kiln_yaml_map est_map = { est_fields, N(est_fields), NULL };

/* No identity without evidence: enrollment without attestation only where attestation is none. */
static kiln_result check_est(struct kiln_yaml_ctx *c, const kiln_policy *p)
{
	if (p->est_enroll != KILN_EST_ENROLL_NONE && p->attestation.type != KILN_ATTEST_NONE)
		return kiln_yaml_fail_at(c, "est.enroll",
					 "EST enrollment of new identities carries no attestation: "
					 "only policies with attestation type none may allow it");
	if (p->est_enroll == KILN_EST_ENROLL_BOOTSTRAP && p->n_est_bootstrap_roots == 0)
		return kiln_yaml_fail_at(c, "est.enroll",
					 "enroll: bootstrap needs est.bootstrap_roots, the CA certificates "
					 "that issue the devices' bootstrap certificates");
	if (p->est_enroll != KILN_EST_ENROLL_BOOTSTRAP && p->n_est_bootstrap_roots > 0)
		return kiln_yaml_fail_at(c, "est.bootstrap_roots",
					 "'bootstrap_roots' is used only with enroll: bootstrap");
	return kiln_ok();
}

static int part_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	bool num = al > 0 && bl > 0 && strspn(a, "0123456789") >= al && strspn(b, "0123456789") >= bl;
	int c;

	if (num) {
		while (al > 1 && *a == '0') {
			a++;
			al--;
		}
		while (bl > 1 && *b == '0') {
			b++;
			bl--;
		}
		if (al != bl)
			return al < bl ? -1 : 1;
	}
	c = strncmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return al == bl ? 0 : al < bl ? -1 : 1;
}

int kiln_policy_version_cmp(const char *a, const char *b)
{
	while (*a != '\0' || *b != '\0') {
		size_t al = strcspn(a, "."), bl = strcspn(b, ".");
		int c = part_cmp(al ? a : "0", al ? al : 1, bl ? b : "0", bl ? bl : 1);

		if (c != 0)
			return c;
		a += al + (a[al] == '.');
		b += bl + (b[bl] == '.');
	}
	return 0;
}

static kiln_result check_policy(struct kiln_yaml_ctx *c, const yaml_node_t *map, void *base)
{
	kiln_policy *p = base;

	(void)map;
	KILN_GUARD(check_keys_distinct(c, p));
	KILN_GUARD(check_subject(c, p));
	KILN_GUARD(check_attestation(c, p));
	KILN_GUARD(check_est(c, p));
	return check_serial_pattern(c, p);
}

static const struct kiln_yaml_field policy_fields[] = {
	{ .key = "product", .kind = KILN_Y_STR, .flags = KILN_Y_REQUIRED | KILN_Y_NONEMPTY,
	  AT(kiln_policy, product), .check = check_product },
	{ .key = "environment", .kind = KILN_Y_ENUM, .flags = KILN_Y_REQUIRED, AT(kiln_policy, env),
	  .names = env_names },
	{ .key = "description", .kind = KILN_Y_STR, AT(kiln_policy, description) },
	{ .key = "keys", .kind = KILN_Y_LIST, .flags = KILN_Y_REQUIRED,
	  LIST_AT(kiln_policy, keys, n_keys), .min = 1, .elem = &key_elem },
	{ .key = "device_serial", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED, .sub = &serial_map },
	{ .key = "subject", .kind = KILN_Y_DICT, .flags = KILN_Y_REQUIRED,
	  LIST_AT(kiln_policy, subject, n_subject), .min = 1, .elem = &attr_value,
	  .dict_key = &attr_key },
	{ .key = "csr_subject_allowed", .kind = KILN_Y_LIST, .flags = KILN_Y_UNIQUE,
	  LIST_AT(kiln_policy, csr_subject_allowed, n_csr_subject_allowed), .elem = &csr_attr_elem },
	{ .key = "san", .kind = KILN_Y_MAP, .sub = &san_map },
	{ .key = "validity_days", .kind = KILN_Y_UINT, .flags = KILN_Y_REQUIRED,
	  AT(kiln_policy, validity_days), .min = 1, .max = 36500 },
	{ .key = "key_usage", .kind = KILN_Y_FLAGS, .flags = KILN_Y_REQUIRED,
	  AT(kiln_policy, key_usage), .min = 1, .names = ku_names },
	{ .key = "extended_key_usage", .kind = KILN_Y_FLAGS, AT(kiln_policy, ext_key_usage),
	  .names = eku_names },
	{ .key = "revocation", .kind = KILN_Y_MAP, .sub = &revocation_map },
	{ .key = "attestation", .kind = KILN_Y_MAP, .flags = KILN_Y_REQUIRED,
	  .off = offsetof(kiln_policy, attestation), .sub = &attestation_map },
	{ .key = "renewal", .kind = KILN_Y_MAP, .off = offsetof(kiln_policy, renewal),
	  .sub = &renewal_map },
	{ .key = "est", .kind = KILN_Y_MAP, .sub = &est_map },
};

static const struct kiln_yaml_map policy_map = { policy_fields, N(policy_fields), check_policy };

kiln_result kiln_policy_parse(kiln_slice yaml, const char *filename, kiln_policy **out,
			      kiln_diag *d)
{
	struct kiln_yaml_ctx c;
	kiln_policy *p = NULL;
	kiln_result r;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	*out = NULL;
	KILN_TRY(r, kiln_yaml_load(&c, yaml, filename, KILN_ERR_POLICY_SYNTAX,
				   KILN_ERR_POLICY_SCHEMA, d));
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		r = kiln_diag_set(d, KILN_ERR_NOMEM, "%s: out of memory", c.file);
		goto out;
	}
	/* The one default the walker cannot express: a CSR may carry its CN. */
	memcpy(p->csr_subject_allowed[0], "CN", 3);
	p->n_csr_subject_allowed = 1;
	KILN_TRY(r, kiln_yaml_walk(&c, &policy_map, p));
	if (EVP_Digest(yaml.ptr, yaml.len, p->sha256, NULL, EVP_sha256(), NULL) != 1) {
		r = kiln_diag_set(d, KILN_ERR_CRYPTO, "%s: SHA-256 failed", c.file);
		goto out;
	}
	*out = p;
	p = NULL;
out:
	kiln_yaml_cleanup(&c);
	kiln_policy_free(p);
	return r;
}

void kiln_policy_free(kiln_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < KILN_POLICY_MAX_ROOTS; i++) {
		free(p->attestation.vendor_roots[i]);
		free(p->attestation.ek_roots[i]);
		free(p->est_bootstrap_roots[i]);
	}
	kiln_policy_regex_free(p->priv);
	free(p);
}

/* ------------------------------------------------------------ queries */

static bool listed(const char (*list)[16], size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

bool kiln_policy_key_ok(const kiln_policy *p, const char *type, const char *curve, unsigned bits)
{
	if (p == NULL || type == NULL)
		return false;
	for (size_t i = 0; i < p->n_keys && i < KILN_POLICY_MAX_KEYS; i++) {
		const struct kiln_policy_key *k = &p->keys[i];

		if (strcmp(k->type, type) != 0)
			continue;
		if (strcmp(type, "ec") == 0)
			return curve != NULL && listed(k->curves, k->n_curves, curve);
		if (strcmp(type, "rsa") == 0)
			return bits >= k->min_bits && bits <= k->max_bits;
		return true;
	}
	return false;
}

bool kiln_policy_csr_attr_ok(const kiln_policy *p, const char *attr)
{
	if (p == NULL || attr == NULL)
		return false;
	return listed(p->csr_subject_allowed, p->n_csr_subject_allowed, attr);
}
