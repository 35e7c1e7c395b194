/*
 * kiln policy: product policies and the deployment configuration (kiln.yaml),
 * both YAML, both validated against a schema with errors that name the file
 * and line ("widget.yaml:7: unknown key 'colour' in 'subject'").
 *
 * Parsing is pure: bytes in, struct out, no I/O. Input is capped at
 * KILN_POLICY_MAX_BYTES, nesting at KILN_YAML_MAX_DEPTH, every list and
 * string has a hard limit, and YAML aliases/anchors are refused.
 *
 * Depends on core (and libyaml). Parsed objects are immutable and may be
 * shared between threads for reading.
 */
#ifndef KILN_POLICY_H
#define KILN_POLICY_H

#include "core/core.h"

#define KILN_POLICY_MAX_BYTES 65536
#define KILN_YAML_MAX_DEPTH 12

/* ------------------------------------------------------------ environments */

typedef enum kiln_env {
	KILN_ENV_NONE = 0,
	KILN_ENV_PRODUCTION,
	KILN_ENV_TEST,
	KILN_ENV_SERVICE, /* kiln's own TLS and client identities; never a product's */
} kiln_env;

const char *kiln_env_name(kiln_env env); /* "production", "test", "service" */
KILN_MUST_USE kiln_result kiln_env_parse(const char *name, kiln_env *out);

/* ------------------------------------------------------------ policy */

#define KILN_PRODUCT_MAX 64   /* product ids: [a-z0-9][a-z0-9-]{0,62} */
#define KILN_POLICY_MAX_KEYS 8
#define KILN_POLICY_MAX_ATTRS 8
#define KILN_POLICY_MAX_SAN 4
#define KILN_POLICY_MAX_FW 64
#define KILN_POLICY_MAX_ROOTS 8
#define KILN_POLICY_MAX_PCRS 24
#define KILN_POLICY_STR_MAX 256
#define KILN_POLICY_PEM_MAX 8192

/* One allowed key kind. key type names match crypto's kiln_key_type_name. */
struct kiln_policy_key {
	char type[16];          /* "ec", "ed25519", "rsa" */
	char curves[4][16];     /* ec: "p256", "p384", "p521" */
	size_t n_curves;
	unsigned min_bits;      /* rsa: inclusive bounds */
	unsigned max_bits;
};

/* One subject attribute of the issued certificate, value from a template. */
struct kiln_policy_attr {
	char attr[16];                       /* "CN", "O", "OU", "C", "L", "ST", "serialNumber" */
	char tmpl[KILN_POLICY_STR_MAX];      /* may use {serial}, {product}, {lot} */
};

struct kiln_policy_firmware {
	char version[64];
	uint8_t sha256[32];
};

struct kiln_policy_pcr {
	unsigned index;      /* 0..23 */
	uint8_t sha256[32];
};

typedef enum kiln_attest_type {
	KILN_ATTEST_NONE = 0, /* test policies only (bring-up) */
	KILN_ATTEST_DICE,
	KILN_ATTEST_TPM2,
	KILN_ATTEST_SE,       /* secure element via PKCS#11 */
} kiln_attest_type;

const char *kiln_attest_type_name(kiln_attest_type t); /* "none", "dice", "tpm2", "secure-element" */

struct kiln_policy_attestation {
	kiln_attest_type type;
	struct kiln_policy_firmware firmware[KILN_POLICY_MAX_FW];
	size_t n_firmware;
	/* PEM certificates, kept as text; checked as PEM-shaped here, parsed by attest. */
	char *vendor_roots[KILN_POLICY_MAX_ROOTS];
	size_t n_vendor_roots;
	char *ek_roots[KILN_POLICY_MAX_ROOTS];
	size_t n_ek_roots;
	struct kiln_policy_pcr pcrs[KILN_POLICY_MAX_PCRS]; /* sha256 bank */
	size_t n_pcrs;
};

/* Renewal of a device identity (EST simplereenroll). */
struct kiln_policy_renewal {
	unsigned window_days;         /* renew only within this many days of expiry; 0: any time */
	unsigned require_new_key;     /* 1: the renewal CSR must carry a key never certified before */
	char min_firmware_version[64];/* "" none; else the device's attested firmware must be >= */
};

/* Who may enroll a new identity with EST simpleenroll (no attestation on that path). */
typedef enum kiln_est_enroll {
	KILN_EST_ENROLL_NONE = 0,  /* nobody: new identities come from /v1/provision (attested) */
	KILN_EST_ENROLL_STATION,   /* a station or operator identity (mTLS); attestation none only */
	KILN_EST_ENROLL_OPEN,      /* anyone who can reach kiln; attestation none (test) only */
	KILN_EST_ENROLL_BOOTSTRAP, /* a device bootstrap certificate from est.bootstrap_roots (mTLS) */
} kiln_est_enroll;

typedef struct kiln_policy {
	char product[KILN_PRODUCT_MAX];
	kiln_env env;                        /* production or test only */
	char description[KILN_POLICY_STR_MAX];
	struct kiln_policy_key keys[KILN_POLICY_MAX_KEYS];
	size_t n_keys;
	/* Device serials must match this POSIX extended regex (anchored by the author). */
	char serial_pattern[KILN_POLICY_STR_MAX];
	/* Subject of issued certificates, in order. */
	struct kiln_policy_attr subject[KILN_POLICY_MAX_ATTRS];
	size_t n_subject;
	/* Subject attributes a CSR may carry; any other one is refused. */
	char csr_subject_allowed[KILN_POLICY_MAX_ATTRS][16];
	size_t n_csr_subject_allowed;
	char san_uri[KILN_POLICY_MAX_SAN][KILN_POLICY_STR_MAX]; /* templates */
	size_t n_san_uri;
	char san_dns[KILN_POLICY_MAX_SAN][KILN_POLICY_STR_MAX]; /* templates */
	size_t n_san_dns;
	unsigned validity_days;              /* 1..36500 */
	unsigned key_usage;                  /* KILN_KU_* bits */
	unsigned ext_key_usage;              /* KILN_EKU_* bits */
	char crl_url[KILN_POLICY_STR_MAX];   /* "" when not set: the deployment default applies */
	char ocsp_url[KILN_POLICY_STR_MAX];
	struct kiln_policy_attestation attestation;
	struct kiln_policy_renewal renewal;
	unsigned est_enroll;                 /* kiln_est_enroll */
	/* PEM anchors of device bootstrap certificates (est.enroll bootstrap); owned. */
	char *est_bootstrap_roots[KILN_POLICY_MAX_ROOTS];
	size_t n_est_bootstrap_roots;
	uint8_t sha256[32];                  /* SHA-256 of the exact file bytes */
	void *priv;                          /* compiled serial regex; owned */
} kiln_policy;

/* Key usage and extended key usage bits, independent of OpenSSL's values. */
#define KILN_KU_DIGITAL_SIGNATURE (1u << 0)
#define KILN_KU_NON_REPUDIATION (1u << 1)
#define KILN_KU_KEY_ENCIPHERMENT (1u << 2)
#define KILN_KU_DATA_ENCIPHERMENT (1u << 3)
#define KILN_KU_KEY_AGREEMENT (1u << 4)
#define KILN_EKU_CLIENT_AUTH (1u << 0)
#define KILN_EKU_SERVER_AUTH (1u << 1)
#define KILN_EKU_CODE_SIGNING (1u << 2)
#define KILN_EKU_EMAIL_PROTECTION (1u << 3)

/*
 * Parses and validates a policy. filename is only used in messages. On
 * failure d names "<filename>:<line>: <what is wrong>". Caller frees *out.
 */
KILN_MUST_USE kiln_result kiln_policy_parse(kiln_slice yaml, const char *filename,
					    kiln_policy **out, kiln_diag *d);
void kiln_policy_free(kiln_policy *p);

/* Does serial match the policy's serial pattern (and contain only printable ASCII)? */
bool kiln_policy_serial_ok(const kiln_policy *p, const char *serial);

/*
 * Compares dotted decimal versions ("1.10.2" > "1.9"): <0, 0, >0. Missing
 * parts count as 0; a part that is not decimal compares as text. Total order.
 */
int kiln_policy_version_cmp(const char *a, const char *b);

/* Is a key of this type/curve/size allowed? type as in struct kiln_policy_key. */
bool kiln_policy_key_ok(const kiln_policy *p, const char *type, const char *curve,
			unsigned bits);

/* May a CSR carry this subject attribute (short name, e.g. "O")? */
bool kiln_policy_csr_attr_ok(const kiln_policy *p, const char *attr);

struct kiln_policy_vars {
	const char *serial;
	const char *product;
	const char *lot; /* NULL or "" outside a batch */
};

/*
 * Expands {serial}, {product} and {lot} in tmpl into out (at most cap bytes
 * including the NUL). Unknown placeholders were refused at parse time.
 */
KILN_MUST_USE kiln_result kiln_policy_render(const char *tmpl, const struct kiln_policy_vars *v,
					     char *out, size_t cap);

/* ------------------------------------------------------------ config */

#define KILN_PATH_MAX 1024

struct kiln_config_token {
	char label[32];                 /* e.g. "kiln-prod" */
	char pin_file[KILN_PATH_MAX];   /* relative paths are relative to the deployment dir */
};

/*
 * M-of-N approvals (docs/roles.md): how many distinct officers must approve
 * each gated operation, and how long a request stays open. An operation's
 * own count of 0 means "quorum".
 */
struct kiln_config_approvals {
	unsigned quorum;                /* default 2 */
	unsigned request_ttl_s;         /* default 86400 */
	unsigned policy_activate;
	unsigned identity_add;          /* adding an admin or an officer */
	unsigned revoke_bulk;           /* revoking a batch or a station's devices */
	unsigned ca_rotate;
	unsigned backup_restore;
};

/* The deployment configuration, DIR/kiln.yaml. */
typedef struct kiln_config {
	unsigned version;                        /* 1 */
	char database[KILN_PATH_MAX];            /* "kiln.db" */
	char hsm_module[KILN_PATH_MAX];          /* "/usr/lib/softhsm/libsofthsm2.so" */
	char softhsm2_conf[KILN_PATH_MAX];       /* "" unless the module is SoftHSM2 */
	unsigned hsm_sessions;                   /* session pool size per token */
	struct kiln_config_token tokens[4];      /* indexed by kiln_env */
	char ca_algorithm[16];                   /* "p256", ... */
	unsigned root_validity_days;
	unsigned issuing_validity_days;
	unsigned identity_validity_days;
	char public_url[KILN_POLICY_STR_MAX];    /* base of CRL and OCSP URLs */
	char listen[64];                         /* "127.0.0.1:8443" */
	unsigned checkpoint_interval_s;          /* kiln serve signs a checkpoint this often (10) */
	unsigned checkpoint_entries;             /* ... or after this many new events (1000) */
	unsigned crl_validity_hours;             /* nextUpdate - thisUpdate of CRLs (24) */
	unsigned ocsp_validity_hours;            /* nextUpdate - thisUpdate of OCSP responses (4) */
	struct kiln_config_approvals approvals;
} kiln_config;

/* Parses kiln.yaml; fills defaults for optional keys. */
KILN_MUST_USE kiln_result kiln_config_parse(kiln_slice yaml, const char *filename,
					    kiln_config *out, kiln_diag *d);
/* Writes cfg as YAML text (what kiln init saves); parse(format(c)) == c. */
KILN_MUST_USE kiln_result kiln_config_format(const kiln_config *cfg, kiln_buf *out);
/* Defaults for a new deployment. */
void kiln_config_defaults(kiln_config *cfg);

#endif /* KILN_POLICY_H */
