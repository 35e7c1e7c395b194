/*
 * The DICE device simulator: a Unique Device Secret and two measured boot
 * images in a state directory, booted in layers as TCG DICE describes. Keys
 * are derived at every boot and never stored.
 *
 * State directory (created mode 0700):
 *   rot.json      {"type":"dice","serial":S,"firmware_version":V,
 *                  "components":{"soc":C,"pcb":P,"se":E}}   (mode 0600, written last)
 *   uds           the Unique Device Secret: 32 random bytes, mode 0600, never logged;
 *                 a boot refuses it when group or others may read it
 *   l0.bin        layer 0: the first mutable code
 *   firmware.bin  layer 1: the firmware (replaced by kiln_rot_dice_install)
 *   deviceid.crt  optional PEM: the DeviceID certificate a vendor CA issued at create
 *
 * Boot (kiln_rot_open), deterministic for the same UDS and images:
 *   CDI_L0   = HMAC-SHA256(key = UDS,    msg = SHA-256(l0.bin))
 *   DeviceID = P-256 key of (CDI_L0, "kiln DICE DeviceID")
 *   CDI_L1   = HMAC-SHA256(key = CDI_L0, msg = SHA-256(firmware.bin))
 *   Alias    = P-256 key of (CDI_L1, "kiln DICE Alias")
 * where the P-256 key of (cdi, info) has the private scalar
 *   k = HKDF-SHA256(ikm = cdi, salt = none, info = info || [counter], L = 32)
 * read big-endian and kept when 0 < k < n; the first try has no counter byte,
 * retries (probability about 2^-32 each) append 0x01, 0x02, ... (rejection
 * sampling: no modular bias).
 *
 * Layer 0 then certifies the Alias key and signs the CSR for DeviceID, and
 * DeviceID's private key is wiped before "layer 1" runs: afterwards only the
 * Alias private key exists, in memory, until kiln_rot_free.
 *
 * Alias certificate (X.509 v3, ECDSA-SHA256 by DeviceID): issuer CN "<serial>
 * DeviceID", subject CN "<serial> Alias", serial number the first 16 bytes of
 * SHA-256(Alias SubjectPublicKeyInfo) with the top bit cleared, validity
 * 20260101000000Z to 99991231235959Z (DICE devices have no clock),
 * basicConstraints CA:FALSE and keyUsage digitalSignature (both critical),
 * subject and authority key ids (SHA-1 of the subjectPublicKey bits; the
 * authority key id names DeviceID), and DiceTcbInfo (non-critical): vendor
 * "kiln-sim", model "widget", version = firmware version, layer 1, one FWID
 * {SHA-256, SHA-256(firmware.bin)}.
 *
 * DeviceID certificate (only with a vendor CA at create): issuer the CA,
 * subject CN "<serial> DeviceID", random serial, valid from create time to the
 * CA's notAfter, basicConstraints CA:TRUE pathlen:0 and keyUsage keyCertSign
 * (critical: DeviceID issues the Alias certificate), key ids.
 */
#include "agent_impl.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UDS_LEN 32
#define CDI_LEN 32
#define KEY_ID_LEN 20
#define P256_POINT_LEN 65
#define IMAGE_MAX ((size_t)16 * 1024 * 1024)
#define PEM_FILE_MAX 65536
#define DEFAULT_VERSION "1.0.0"
#define DER_MAX 16384 /* one certificate or CSR the simulator makes */

/* Faults (kiln_rot_inject): each changes what later calls produce. */
enum {
	FAULT_ALIAS_WRONG_SIGNER = 1u << 0,
	FAULT_BINDING_WRONG_KEY = 1u << 1,
	FAULT_CSR_OTHER_KEY = 1u << 2,
	FAULT_BINDING_OTHER_NONCE = 1u << 3,
};

static const struct {
	const char *name;
	unsigned bit;
} faults[] = {
	{ "alias-wrong-signer", FAULT_ALIAS_WRONG_SIGNER },
	{ "binding-wrong-key", FAULT_BINDING_WRONG_KEY },
	{ "csr-other-key", FAULT_CSR_OTHER_KEY },
	{ "binding-other-nonce", FAULT_BINDING_OTHER_NONCE },
};

struct dice_sim {
	EVP_PKEY *alias;                 /* layer 1's key pair */
	uint8_t deviceid_kid[KEY_ID_LEN]; /* the Alias certificate's authority key id */
	uint8_t fw_sha256[32];
	kiln_buf alias_cert;             /* DER */
	kiln_buf deviceid_cert;          /* DER; empty without a vendor endorsement */
	kiln_buf csr;                    /* DER, signed by DeviceID at boot */
	unsigned faults;
	EVP_PKEY *rogue;                 /* "another key" for faults, made on first need */
};

/* ------------------------------------------------------------ default images */

/*
 * The built-in images, byte for byte examples/firmware/widget-<kind>-<version>.bin:
 * a 256-byte text header (zero padded) naming the image, then 3840 bytes where
 * block i (32 bytes) is SHA-256("kiln-sim-image:" || name || be32(i)).
 */
#define IMAGE_LEN 4096
#define IMAGE_HEADER_LEN 256

static kiln_result default_image(const char *kind, const char *version, kiln_buf *out)
{
	char header[IMAGE_HEADER_LEN], name[64];
	int n;

	memset(header, 0, sizeof(header));
	n = snprintf(header, sizeof(header),
		     "KILN SIMULATED IMAGE\nproduct: widget\nimage: %s\nversion: %s\n", kind, version);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(header), KILN_ERR_ARG);
	n = snprintf(name, sizeof(name), "widget-%s-%s", kind, version);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(name), KILN_ERR_ARG);
	KILN_GUARD(kiln_buf_append(out, header, sizeof(header)));
	for (uint32_t i = 0; i < (IMAGE_LEN - IMAGE_HEADER_LEN) / 32; i++) {
		uint8_t be[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
		uint8_t block[32];
		unsigned int len = 0;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
			  EVP_DigestUpdate(md, "kiln-sim-image:", 15) == 1 &&
			  EVP_DigestUpdate(md, name, strlen(name)) == 1 &&
			  EVP_DigestUpdate(md, be, sizeof(be)) == 1 &&
			  EVP_DigestFinal_ex(md, block, &len) == 1;

		EVP_MD_CTX_free(md);
		KILN_ENSURE(ok && len == 32, KILN_ERR_CRYPTO);
		KILN_GUARD(kiln_buf_append(out, block, sizeof(block)));
	}
	return kiln_ok();
}

/* ----------------------------------------------------------- key derivation */

static kiln_result hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t msg[32],
			       uint8_t out[32])
{
	size_t n = 0;

	KILN_ENSURE(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, msg, 32, out, 32,
			      &n) != NULL &&
			    n == 32,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result hkdf_sha256(const uint8_t cdi[CDI_LEN], const char *info, uint8_t counter,
			       uint8_t out[32])
{
	char digest[] = "SHA256";
	uint8_t inf[64];
	size_t n = strlen(info);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];
	int ok;

	KILN_ENSURE(n + 1 <= sizeof(inf), KILN_ERR_ARG);
	memcpy(inf, info, n);
	if (counter != 0)
		inf[n++] = counter;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)cdi, CDI_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, inf, n);
	params[3] = OSSL_PARAM_construct_end();
	ok = kctx != NULL && EVP_KDF_derive(kctx, out, 32, params) == 1;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* An EC P-256 EVP_PKEY from its parts; priv NULL gives a public-only key. */
static kiln_result p256_pkey(const BIGNUM *priv, const uint8_t pub[P256_POINT_LEN], EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld;
	EVP_PKEY_CTX *pctx;
	OSSL_PARAM *params = NULL;
	bool ok;

	*out = NULL;
	if (priv == NULL) /* from cached curve parameters: no group built per key */
		return kiln_ec_public_key("prime256v1", kiln_slice_of(pub, P256_POINT_LEN), out);
	bld = OSSL_PARAM_BLD_new();
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	ok = bld != NULL && pctx != NULL &&
	     OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
	     OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, P256_POINT_LEN) == 1 &&
	     OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) == 1;
	if (ok)
		params = OSSL_PARAM_BLD_to_param(bld);
	ok = ok && params != NULL && EVP_PKEY_fromdata_init(pctx) == 1 &&
	     EVP_PKEY_fromdata(pctx, out, EVP_PKEY_KEYPAIR, params) == 1;
	OSSL_PARAM_free(params); /* a secure BIGNUM's copy sits in the cleared secure block */
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pctx);
	ERR_clear_error();
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* The scalar of (cdi, info), 0 < k < n, into k. */
static kiln_result derive_scalar(const uint8_t cdi[CDI_LEN], const char *info,
				 const BIGNUM *order, BIGNUM *k)
{
	uint8_t okm[32];
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	for (uint8_t counter = 0; counter < 8; counter++) {
		KILN_TRY(r, hkdf_sha256(cdi, info, counter, okm));
		if (BN_bin2bn(okm, sizeof(okm), k) == NULL) {
			r = kiln_fail(KILN_ERR_CRYPTO);
			goto out;
		}
		if (!BN_is_zero(k) && BN_cmp(k, order) < 0)
			goto out;
		r = kiln_fail(KILN_ERR_CRYPTO);
	}
out:
	kiln_wipe(okm, sizeof(okm));
	return r;
}

/* P-256, built once per process and only read after (EC_POINT_mul takes it const). */
static EC_GROUP *p256_group;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_init(void)
{
	p256_group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

/* The P-256 key pair of (cdi, info): see the top of this file. */
static kiln_result derive_key(const uint8_t cdi[CDI_LEN], const char *info, EVP_PKEY **out)
{
	const EC_GROUP *g = pthread_once(&p256_once, p256_init) == 0 ? p256_group : NULL;
	BN_CTX *bctx = BN_CTX_secure_new();
	BIGNUM *k = BN_secure_new();
	EC_POINT *pub = g != NULL ? EC_POINT_new(g) : NULL;
	uint8_t point[P256_POINT_LEN];
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	*out = NULL;
	if (g == NULL || bctx == NULL || k == NULL || pub == NULL)
		goto out;
	KILN_TRY(r, derive_scalar(cdi, info, EC_GROUP_get0_order(g), k));
	if (EC_POINT_mul(g, pub, k, NULL, NULL, bctx) != 1 ||
	    EC_POINT_point2oct(g, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), bctx) !=
		    sizeof(point)) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	r = p256_pkey(k, point, out);
out:
	BN_clear_free(k);
	BN_CTX_free(bctx);
	EC_POINT_free(pub);
	ERR_clear_error();
	return r;
}

/* The public half of an EC P-256 key, as a key of its own. */
static kiln_result public_half(const EVP_PKEY *key, EVP_PKEY **out)
{
	uint8_t point[P256_POINT_LEN];
	size_t n = 0;

	*out = NULL;
	KILN_ENSURE(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
						    sizeof(point), &n) == 1 &&
			    n == sizeof(point),
		    KILN_ERR_CRYPTO);
	return p256_pkey(NULL, point, out);
}

/* The uncompressed point of a P-256 key: its subjectPublicKey BIT STRING value. */
static kiln_result p256_point(const EVP_PKEY *key, uint8_t point[P256_POINT_LEN])
{
	size_t n = 0;

	KILN_ENSURE(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
						    P256_POINT_LEN, &n) == 1 &&
			    n == P256_POINT_LEN,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
static kiln_result key_id(const EVP_PKEY *key, uint8_t out[KEY_ID_LEN])
{
	uint8_t point[P256_POINT_LEN];
	unsigned int n = 0;
	kiln_result r;

	KILN_TRY(r, p256_point(key, point));
	KILN_ENSURE(EVP_Digest(point, sizeof(point), out, &n, EVP_sha1(), NULL) == 1 &&
			    n == KEY_ID_LEN,
		    KILN_ERR_CRYPTO);
out:
	return r;
}

/*
 * Puts a P-256 key into a certificate's SubjectPublicKeyInfo field by field.
 * X509_set_pubkey would run OpenSSL 3.0's provider encoders, which cost more
 * than the certificate's signature; the DER is the same.
 */
static kiln_result set_p256_pubkey(X509 *x, const EVP_PKEY *key)
{
	uint8_t point[P256_POINT_LEN];
	unsigned char *copy;
	kiln_result r;

	KILN_TRY(r, p256_point(key, point));
	copy = OPENSSL_memdup(point, sizeof(point));
	KILN_ENSURE(copy != NULL, KILN_ERR_NOMEM);
	if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
				   V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy,
				   (int)sizeof(point)) != 1) {
		OPENSSL_free(copy);
		r = kiln_fail(KILN_ERR_CRYPTO);
	}
out:
	return r;
}

static kiln_result fresh_key(EVP_PKEY **out)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ERR_clear_error();
	KILN_ENSURE(*out != NULL, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* ------------------------------------------------------------- certificates */

/* What differs between the Alias and the DeviceID certificate. */
struct cert_parts {
	const X509_NAME *issuer;
	const char *subject_cn;
	const EVP_PKEY *subject_key;
	const uint8_t *serial;
	size_t serial_len;
	bool ca;
	int ku_bit;                /* 0 digitalSignature, 5 keyCertSign */
	const uint8_t *aki;        /* authority key id, NULL for none */
	size_t aki_len;
	X509_EXTENSION *extra;     /* DiceTcbInfo, or NULL */
	EVP_PKEY *signer;
};

static kiln_result name_of(const char *cn, X509_NAME **out)
{
	struct kiln_name_attr a = { "CN", cn };

	return kiln_name_build(&a, 1, out, NULL);
}

static kiln_result add_constraints(X509 *x, const struct cert_parts *p)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	bool ok = bc != NULL && ku != NULL;

	if (ok && p->ca) {
		bc->ca = 0xff;
		bc->pathlen = ASN1_INTEGER_new();
		ok = bc->pathlen != NULL && ASN1_INTEGER_set(bc->pathlen, 0) == 1;
	}
	ok = ok && X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
	     ASN1_BIT_STRING_set_bit(ku, p->ku_bit, 1) == 1 &&
	     X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1;
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result add_key_ids(X509 *x, const struct cert_parts *p)
{
	uint8_t kid[KEY_ID_LEN];
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	AUTHORITY_KEYID *akid = p->aki != NULL ? AUTHORITY_KEYID_new() : NULL;
	bool ok = ski != NULL && (p->aki == NULL || akid != NULL);

	ok = ok && kiln_is_ok(key_id(p->subject_key, kid)) &&
	     ASN1_OCTET_STRING_set(ski, kid, sizeof(kid)) == 1 &&
	     X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1;
	if (ok && akid != NULL) {
		akid->keyid = ASN1_OCTET_STRING_new();
		ok = akid->keyid != NULL &&
		     ASN1_OCTET_STRING_set(akid->keyid, p->aki, (int)p->aki_len) == 1 &&
		     X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
	}
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result set_serial(X509 *x, const uint8_t *serial, size_t len)
{
	BIGNUM *bn = BN_bin2bn(serial, (int)len, NULL);
	ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	bool ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;

	ASN1_INTEGER_free(ai);
	BN_free(bn);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* Builds and signs a certificate; validity is set by the caller on *out's object first. */
static kiln_result cert_finish(X509 *x, const struct cert_parts *p)
{
	X509_NAME *subject = NULL;
	const EVP_MD *md = EVP_PKEY_get_base_id(p->signer) == EVP_PKEY_ED25519 ||
					   EVP_PKEY_get_base_id(p->signer) == EVP_PKEY_ED448
				   ? NULL
				   : EVP_sha256();
	kiln_result r;

	KILN_TRY(r, name_of(p->subject_cn, &subject));
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_issuer_name(x, p->issuer) != 1 ||
	    X509_set_subject_name(x, subject) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	KILN_TRY(r, set_p256_pubkey(x, p->subject_key));
	KILN_TRY(r, set_serial(x, p->serial, p->serial_len));
	KILN_TRY(r, add_constraints(x, p));
	KILN_TRY(r, add_key_ids(x, p));
	if (p->extra != NULL && X509_add_ext(x, p->extra, -1) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	r = X509_sign(x, p->signer, md) > 0 ? kiln_ok() : kiln_fail(KILN_ERR_CRYPTO);
out:
	X509_NAME_free(subject);
	ERR_clear_error();
	return r;
}

static kiln_result cert_der(const X509 *x, kiln_buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	kiln_result r;

	KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
	r = kiln_buf_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return r;
}

static kiln_result tcb_info_ext(const char *version, const uint8_t fw_sha256[32],
				X509_EXTENSION **out)
{
	struct kiln_dice_tcb_info t;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *val = NULL;
	kiln_buf der;
	kiln_result r;

	*out = NULL;
	memset(&t, 0, sizeof(t));
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	KILN_TRY(r, kiln_strlcpy(t.vendor, "kiln-sim", sizeof(t.vendor)));
	KILN_TRY(r, kiln_strlcpy(t.model, "widget", sizeof(t.model)));
	KILN_TRY(r, kiln_strlcpy(t.version, version, sizeof(t.version)));
	t.has_layer = true;
	t.layer = 1;
	t.n_fwids = 1;
	t.fwids[0].hash_nid = NID_sha256;
	t.fwids[0].len = 32;
	memcpy(t.fwids[0].digest, fw_sha256, 32);
	KILN_TRY(r, kiln_dice_tcb_info_encode(&t, &der));
	oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);
	val = ASN1_OCTET_STRING_new();
	if (oid == NULL || val == NULL || ASN1_OCTET_STRING_set(val, der.ptr, (int)der.len) != 1 ||
	    (*out = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, val)) == NULL)
		r = kiln_fail(KILN_ERR_CRYPTO);
out:
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(val);
	kiln_buf_cleanup(&der);
	return r;
}

/* The Alias certificate, signed by signer (DeviceID, or another key for a fault). */
static kiln_result alias_cert_make(const kiln_rot *rot, const struct dice_sim *s,
				   EVP_PKEY *signer, kiln_buf *out)
{
	char issuer_cn[KILN_DEVICE_SERIAL_MAX + 16], subject_cn[KILN_DEVICE_SERIAL_MAX + 16];
	uint8_t fp[32];
	X509_NAME *issuer = NULL;
	X509_EXTENSION *tcb = NULL;
	X509 *x = X509_new();
	struct cert_parts p;
	kiln_result r;

	KILN_ENSURE(x != NULL, KILN_ERR_NOMEM);
	(void)snprintf(issuer_cn, sizeof(issuer_cn), "%s DeviceID", rot->meta.serial);
	(void)snprintf(subject_cn, sizeof(subject_cn), "%s Alias", rot->meta.serial);
	KILN_TRY(r, kiln_key_fingerprint(s->alias, fp));
	fp[0] &= 0x7f;
	fp[15] |= 0x01; /* never zero */
	KILN_TRY(r, name_of(issuer_cn, &issuer));
	KILN_TRY(r, tcb_info_ext(rot->meta.firmware_version, s->fw_sha256, &tcb));
	if (ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20260101000000Z") != 1 ||
	    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	p = (struct cert_parts){ .issuer = issuer, .subject_cn = subject_cn,
				 .subject_key = s->alias, .serial = fp, .serial_len = 16,
				 .ca = false, .ku_bit = 0, .aki = s->deviceid_kid,
				 .aki_len = KEY_ID_LEN, .extra = tcb, .signer = signer };
	KILN_TRY(r, cert_finish(x, &p));
	r = cert_der(x, out);
out:
	X509_EXTENSION_free(tcb);
	X509_NAME_free(issuer);
	X509_free(x);
	return r;
}

/*
 * A PKCS#10 request for key, subject CN=<serial>, signed by key, written
 * directly (RFC 2986): X509_REQ_set_pubkey would run the provider encoders.
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER 0, subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
 */
static kiln_result csr_make(const char *serial, EVP_PKEY *key, kiln_buf *out)
{
	static const uint8_t version0[] = { 0x02, 0x01, 0x00 }, no_attributes[] = { 0xa0, 0x00 };
	X509_NAME *subject = NULL;
	unsigned char *name = NULL, sig[80];
	EVP_MD_CTX *ctx = NULL;
	kiln_buf body, cri;
	size_t sig_len = sizeof(sig);
	kiln_result r;
	int n;

	kiln_buf_init(&body, KILN_CSR_MAX_BYTES);
	kiln_buf_init(&cri, KILN_CSR_MAX_BYTES);
	KILN_TRY(r, name_of(serial, &subject));
	n = i2d_X509_NAME(subject, &name);
	if (n <= 0) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	KILN_TRY(r, kiln_buf_append(&body, version0, sizeof(version0)));
	KILN_TRY(r, kiln_buf_append(&body, name, (size_t)n));
	KILN_TRY(r, kiln_key_spki(key, &body));
	KILN_TRY(r, kiln_buf_append(&body, no_attributes, sizeof(no_attributes)));
	KILN_TRY(r, kiln_der_write(&cri, 0x30, kiln_buf_view(&body)));
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, cri.ptr, cri.len) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	r = kiln_signed_assemble(kiln_buf_view(&cri), KILN_ALG_P256, kiln_slice_of(sig, sig_len),
				 out);
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(name);
	X509_NAME_free(subject);
	kiln_buf_cleanup(&cri);
	kiln_buf_cleanup(&body);
	ERR_clear_error();
	return r;
}

/* ------------------------------------------------------------------- files */

static kiln_result read_file_in(const char *dir, const char *name, size_t max, kiln_buf *out,
				kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];

	kiln_buf_init(out, max);
	KILN_GUARD(kiln_rot_path(dir, name, path, sizeof(path), d));
	return kiln_file_read(path, max, out, d);
}

static kiln_result sha256_of(kiln_slice in, uint8_t out[32])
{
	unsigned int n = 0;

	KILN_ENSURE(EVP_Digest(in.ptr, in.len, out, &n, EVP_sha256(), NULL) == 1 && n == 32,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result hash_file_in(const char *dir, const char *name, uint8_t out[32], kiln_diag *d)
{
	kiln_buf b;
	kiln_result r = read_file_in(dir, name, IMAGE_MAX, &b, d);

	if (kiln_is_ok(r))
		r = sha256_of(kiln_buf_view(&b), out);
	kiln_buf_cleanup(&b);
	return r;
}

static kiln_result read_uds(const char *dir, uint8_t uds[UDS_LEN], kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];
	struct stat st;
	kiln_buf b;
	kiln_result r;

	KILN_GUARD(kiln_rot_path(dir, "uds", path, sizeof(path), d));
	if (stat(path, &st) != 0)
		return kiln_diag_set(d, errno == ENOENT ? KILN_ERR_NOT_FOUND : KILN_ERR_IO,
				     "%s: %s", path, strerror(errno));
	if ((st.st_mode & 077) != 0)
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "%s is readable by group or others; chmod 600 it", path);
	r = kiln_file_read(path, UDS_LEN + 1, &b, d);
	if (kiln_is_ok(r) && b.len != UDS_LEN)
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s: a UDS is %d bytes, not %zu", path, UDS_LEN,
				  b.len);
	if (kiln_is_ok(r))
		memcpy(uds, b.ptr, UDS_LEN);
	kiln_buf_cleanup(&b);
	return r;
}

/* ------------------------------------------------------------------- layers */

/* Layer 0's DeviceID key pair for a UDS and L0 measurement; cdi0 receives CDI_L0. */
static kiln_result layer0(const uint8_t uds[UDS_LEN], const uint8_t l0_sha256[32],
			  uint8_t cdi0[CDI_LEN], EVP_PKEY **deviceid)
{
	KILN_GUARD(hmac_sha256(uds, UDS_LEN, l0_sha256, cdi0));
	return derive_key(cdi0, "kiln DICE DeviceID", deviceid);
}

/* deviceid.crt, when present, must certify this boot's DeviceID key. */
static kiln_result load_deviceid_cert(const char *dir, const EVP_PKEY *deviceid, kiln_buf *der,
				      kiln_diag *d)
{
	kiln_buf pem;
	kiln_diag ld;
	BIO *bio = NULL;
	X509 *x = NULL;
	kiln_result r;

	kiln_diag_clear(&ld);
	r = read_file_in(dir, "deviceid.crt", PEM_FILE_MAX, &pem, &ld);
	if (r.code == KILN_ERR_NOT_FOUND) {
		kiln_buf_cleanup(&pem);
		return kiln_ok(); /* not vendor-endorsed */
	}
	if (!kiln_is_ok(r)) {
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&ld, r));
		goto out;
	}
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (x == NULL) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s/deviceid.crt is not a PEM certificate", dir);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(x), deviceid) != 1) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG,
				  "%s/deviceid.crt certifies another key than this device's DeviceID (UDS or l0.bin changed)",
				  dir);
		goto out;
	}
	r = cert_der(x, der);
out:
	X509_free(x);
	BIO_free(bio);
	kiln_buf_cleanup(&pem);
	ERR_clear_error();
	return r;
}

/* Layer 0 measures and certifies layer 1, then forgets DeviceID's private key. */
static kiln_result boot(const char *dir, kiln_rot *rot, struct dice_sim *s, kiln_diag *d)
{
	uint8_t uds[UDS_LEN], cdi0[CDI_LEN], cdi1[CDI_LEN], l0_sha256[32];
	EVP_PKEY *deviceid = NULL;
	kiln_result r;

	KILN_TRY(r, read_uds(dir, uds, d));
	KILN_TRY(r, hash_file_in(dir, "l0.bin", l0_sha256, d));
	KILN_TRY(r, hash_file_in(dir, "firmware.bin", s->fw_sha256, d));
	KILN_TRY(r, layer0(uds, l0_sha256, cdi0, &deviceid));
	KILN_TRY(r, hmac_sha256(cdi0, CDI_LEN, s->fw_sha256, cdi1));
	KILN_TRY(r, derive_key(cdi1, "kiln DICE Alias", &s->alias));
	KILN_TRY(r, public_half(deviceid, &rot->identity));
	KILN_TRY(r, key_id(deviceid, s->deviceid_kid));
	KILN_TRY(r, alias_cert_make(rot, s, deviceid, &s->alias_cert));
	KILN_TRY(r, csr_make(rot->meta.serial, deviceid, &s->csr));
	r = load_deviceid_cert(dir, rot->identity, &s->deviceid_cert, d);
out:
	kiln_wipe(uds, sizeof(uds));
	kiln_wipe(cdi0, sizeof(cdi0));
	kiln_wipe(cdi1, sizeof(cdi1));
	EVP_PKEY_free(deviceid);
	return r;
}

/* -------------------------------------------------------------- operations */

static kiln_result sim_csr(kiln_rot *rot, kiln_buf *der, kiln_diag *d)
{
	const struct dice_sim *s = rot->impl;

	(void)d;
	return kiln_buf_append_slice(der, kiln_buf_view(&s->csr));
}

static kiln_result sign_binding(EVP_PKEY *key, const uint8_t msg[KILN_DICE_BINDING_LEN],
				kiln_buf *sig)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	uint8_t out[128];
	size_t n = sizeof(out);
	bool ok;

	ok = mctx != NULL && EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestSign(mctx, out, &n, msg, KILN_DICE_BINDING_LEN) == 1;
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_buf_append(sig, out, n);
}

static kiln_result set_b64(json_t *obj, const char *key, const kiln_buf *der)
{
	kiln_buf b64;
	kiln_result r;

	kiln_buf_init(&b64, KILN_BUF_DEFAULT_MAX);
	r = kiln_base64_encode(kiln_buf_view(der), &b64);
	if (kiln_is_ok(r) && json_object_set_new(obj, key, json_string(kiln_buf_cstr(&b64))) != 0)
		r = kiln_fail(KILN_ERR_NOMEM);
	kiln_buf_cleanup(&b64);
	return r;
}

static kiln_result sim_evidence(kiln_rot *rot, const uint8_t nonce[KILN_NONCE_LEN],
				kiln_slice csr_der, json_t **out, kiln_diag *d)
{
	struct dice_sim *s = rot->impl;
	uint8_t signed_nonce[KILN_NONCE_LEN], msg[KILN_DICE_BINDING_LEN];
	json_t *ev = json_object();
	kiln_buf sig;
	kiln_result r;

	(void)d;
	KILN_ENSURE(ev != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&sig, 1024);
	memcpy(signed_nonce, nonce, sizeof(signed_nonce));
	if (s->faults & FAULT_BINDING_OTHER_NONCE)
		signed_nonce[0] ^= 0x01;
	KILN_TRY(r, kiln_dice_binding(signed_nonce, csr_der, rot->meta.serial, msg));
	KILN_TRY(r, sign_binding(s->faults & FAULT_BINDING_WRONG_KEY ? s->rogue : s->alias, msg,
				 &sig));
	if (json_object_set_new(ev, "type", json_string("dice")) != 0) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	KILN_TRY(r, set_b64(ev, "alias_cert", &s->alias_cert));
	if (s->deviceid_cert.len > 0)
		KILN_TRY(r, set_b64(ev, "deviceid_cert", &s->deviceid_cert));
	KILN_TRY(r, set_b64(ev, "signature", &sig));
	*out = ev;
	ev = NULL;
out:
	json_decref(ev);
	kiln_buf_cleanup(&sig);
	return r;
}

static kiln_result sim_inject(kiln_rot *rot, const char *fault)
{
	struct dice_sim *s = rot->impl;
	unsigned bit = 0;
	kiln_buf der;
	kiln_result r;

	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		if (strcmp(fault, faults[i].name) == 0)
			bit = faults[i].bit;
	KILN_ENSURE(bit != 0, KILN_ERR_ARG);
	if (s->rogue == NULL)
		KILN_GUARD(fresh_key(&s->rogue));
	kiln_buf_init(&der, DER_MAX);
	if (bit == FAULT_ALIAS_WRONG_SIGNER)
		KILN_TRY(r, alias_cert_make(rot, s, s->rogue, &der));
	else if (bit == FAULT_CSR_OTHER_KEY)
		KILN_TRY(r, csr_make(rot->meta.serial, s->rogue, &der));
	if (bit == FAULT_ALIAS_WRONG_SIGNER || bit == FAULT_CSR_OTHER_KEY) {
		kiln_buf *dst = bit == FAULT_ALIAS_WRONG_SIGNER ? &s->alias_cert : &s->csr;

		kiln_buf_reset(dst);
		KILN_TRY(r, kiln_buf_append_slice(dst, kiln_buf_view(&der)));
	}
	s->faults |= bit;
	r = kiln_ok();
out:
	kiln_buf_cleanup(&der);
	return r;
}

static void sim_destroy(void *impl)
{
	struct dice_sim *s = impl;

	EVP_PKEY_free(s->alias);
	EVP_PKEY_free(s->rogue);
	kiln_buf_cleanup(&s->alias_cert);
	kiln_buf_cleanup(&s->deviceid_cert);
	kiln_buf_cleanup(&s->csr);
	kiln_wipe(s, sizeof(*s));
	free(s);
}

static const struct kiln_rot_ops dice_ops = {
	.type = "dice",
	.csr = sim_csr,
	.evidence = sim_evidence,
	.inject = sim_inject,
	.destroy = sim_destroy,
};

kiln_result kiln_dice_sim_open(const char *state_dir, const struct kiln_rot_meta *m,
			       kiln_rot **out, kiln_diag *d)
{
	kiln_rot *rot = calloc(1, sizeof(*rot));
	struct dice_sim *s = calloc(1, sizeof(*s));
	kiln_result r;

	*out = NULL;
	if (rot == NULL || s == NULL) {
		free(rot);
		free(s);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	rot->ops = &dice_ops;
	rot->meta = *m;
	rot->impl = s;
	kiln_buf_init(&s->alias_cert, DER_MAX);
	kiln_buf_init(&s->deviceid_cert, DER_MAX);
	kiln_buf_init(&s->csr, DER_MAX);
	KILN_TRY(r, boot(state_dir, rot, s, d));
	*out = rot;
	rot = NULL;
out:
	kiln_rot_free(rot);
	return r;
}

/* ------------------------------------------------------------------ create */

/* prefix and the upper-case hex of n bytes: "SIM-0A1B2C3D4E5F" (matches serial patterns). */
static void id_text(const char *prefix, const uint8_t *bytes, size_t n, char *out, size_t cap)
{
	char hex[2 * 32 + 1];

	kiln_hex_encode(bytes, n, hex);
	for (char *p = hex; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	(void)snprintf(out, cap, "%s%s", prefix, hex);
}

/* A component id derived from the UDS: "<prefix>" + 12 hex of HMAC(UDS, SHA-256(label)). */
static kiln_result component_id(const uint8_t uds[UDS_LEN], const char *label, const char *prefix,
				char *out, size_t cap)
{
	uint8_t msg[32], mac[32];

	KILN_GUARD(sha256_of(kiln_slice_str(label), msg));
	KILN_GUARD(hmac_sha256(uds, UDS_LEN, msg, mac));
	id_text(prefix, mac, 6, out, cap);
	kiln_wipe(mac, sizeof(mac));
	return kiln_ok();
}

static kiln_result text_opt(const char *value, const char *what, char *out, size_t cap,
			    kiln_diag *d)
{
	if (!kiln_rot_text_ok(value, cap))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "the %s must be 1 to %zu printable ASCII characters without spaces",
				     what, cap - 1);
	return kiln_strlcpy(out, value, cap);
}

/* rot.json's contents: the options, or values derived from the UDS where they are NULL. */
static kiln_result meta_for(const struct kiln_dice_sim_opts *o, const uint8_t uds[UDS_LEN],
			    struct kiln_rot_meta *m, kiln_diag *d)
{
	uint8_t h[32];

	memset(m, 0, sizeof(*m));
	KILN_GUARD(kiln_strlcpy(m->type, "dice", sizeof(m->type)));
	if (o->serial != NULL) {
		KILN_GUARD(text_opt(o->serial, "serial", m->serial, sizeof(m->serial), d));
	} else {
		KILN_GUARD(sha256_of(kiln_slice_of(uds, UDS_LEN), h));
		id_text("SIM-", h, 6, m->serial, sizeof(m->serial));
	}
	KILN_GUARD(text_opt(o->firmware_version != NULL ? o->firmware_version : DEFAULT_VERSION,
			    "firmware version", m->firmware_version, sizeof(m->firmware_version), d));
	if (o->soc_id != NULL)
		KILN_GUARD(text_opt(o->soc_id, "SoC id", m->soc, sizeof(m->soc), d));
	else
		KILN_GUARD(component_id(uds, "kiln DICE component soc", "SOC-", m->soc, sizeof(m->soc)));
	if (o->pcb_serial != NULL)
		KILN_GUARD(text_opt(o->pcb_serial, "PCB serial", m->pcb, sizeof(m->pcb), d));
	else
		KILN_GUARD(component_id(uds, "kiln DICE component pcb", "PCB-", m->pcb, sizeof(m->pcb)));
	if (o->se_serial != NULL)
		KILN_GUARD(text_opt(o->se_serial, "secure element serial", m->se, sizeof(m->se), d));
	else
		KILN_GUARD(component_id(uds, "kiln DICE component se", "SE-", m->se, sizeof(m->se)));
	return kiln_ok();
}

static kiln_result image_or_default(kiln_slice given, const char *kind, kiln_buf *out,
				    kiln_diag *d)
{
	if (given.len == 0)
		return default_image(kind, DEFAULT_VERSION, out);
	if (given.ptr == NULL || given.len > IMAGE_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG, "the %s image must be 1 byte to 16 MiB", kind);
	return kiln_buf_append_slice(out, given);
}

/* Refuses encrypted keys instead of prompting on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static kiln_result read_pem(const char *path, bool key, X509 **cert, EVP_PKEY **pkey, kiln_diag *d)
{
	kiln_buf pem;
	BIO *bio;
	kiln_result r = kiln_file_read(path, PEM_FILE_MAX, &pem, d);

	if (!kiln_is_ok(r)) {
		kiln_buf_cleanup(&pem);
		return r;
	}
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	if (key)
		*pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	else
		*cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (key ? *pkey == NULL : *cert == NULL)
		r = kiln_diag_set(d, KILN_ERR_ARG, "%s is not a PEM %s", path,
				  key ? "private key (unencrypted)" : "certificate");
	BIO_free(bio);
	kiln_buf_cleanup(&pem); /* wipes the key's PEM */
	ERR_clear_error();
	return r;
}

/* The DeviceID certificate the vendor CA issues for deviceid (PEM, appended to out). */
static kiln_result deviceid_cert_make(const struct kiln_rot_meta *m, const EVP_PKEY *deviceid,
				      X509 *ca, EVP_PKEY *ca_key, kiln_buf *out, kiln_diag *d)
{
	char cn[KILN_DEVICE_SERIAL_MAX + 16];
	uint8_t serial[KILN_SERIAL_LEN];
	const ASN1_OCTET_STRING *ca_kid = X509_get0_subject_key_id(ca);
	struct cert_parts p;
	X509 *x;
	kiln_result r;

	if (X509_cmp_time(X509_get0_notAfter(ca), NULL) <= 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "the vendor CA certificate has expired");
	KILN_GUARD(kiln_serial_new(serial));
	(void)snprintf(cn, sizeof(cn), "%s DeviceID", m->serial);
	x = X509_new();
	KILN_ENSURE(x != NULL, KILN_ERR_NOMEM);
	if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)kiln_now()) == NULL ||
	    X509_set1_notAfter(x, X509_get0_notAfter(ca)) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	p = (struct cert_parts){ .issuer = X509_get_subject_name(ca), .subject_cn = cn,
				 .subject_key = deviceid, .serial = serial,
				 .serial_len = sizeof(serial), .ca = true, .ku_bit = 5,
				 .aki = ca_kid != NULL ? ASN1_STRING_get0_data(ca_kid) : NULL,
				 .aki_len = ca_kid != NULL ? (size_t)ASN1_STRING_length(ca_kid) : 0,
				 .extra = NULL, .signer = ca_key };
	KILN_TRY(r, cert_finish(x, &p));
	r = kiln_cert_pem(x, out);
out:
	X509_free(x);
	return r;
}

/* With a vendor CA: boots layer 0 once to learn DeviceID, and has the CA certify it. */
static kiln_result endorse(const struct kiln_dice_sim_opts *o, const uint8_t uds[UDS_LEN],
			   const kiln_buf *l0, const struct kiln_rot_meta *m, kiln_buf *pem,
			   kiln_diag *d)
{
	uint8_t l0_sha256[32], cdi0[CDI_LEN];
	EVP_PKEY *deviceid = NULL, *ca_key = NULL;
	X509 *ca = NULL;
	kiln_result r;

	if (o->vendor_ca_cert == NULL || o->vendor_ca_key == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "a vendor CA needs both its certificate and its key");
	KILN_TRY(r, read_pem(o->vendor_ca_cert, false, &ca, NULL, d));
	KILN_TRY(r, read_pem(o->vendor_ca_key, true, NULL, &ca_key, d));
	if (X509_check_private_key(ca, ca_key) != 1) {
		ERR_clear_error();
		r = kiln_diag_set(d, KILN_ERR_ARG, "%s is not the key of %s", o->vendor_ca_key,
				  o->vendor_ca_cert);
		goto out;
	}
	KILN_TRY(r, sha256_of(kiln_buf_view(l0), l0_sha256));
	KILN_TRY(r, layer0(uds, l0_sha256, cdi0, &deviceid));
	r = deviceid_cert_make(m, deviceid, ca, ca_key, pem, d);
out:
	kiln_wipe(cdi0, sizeof(cdi0));
	EVP_PKEY_free(deviceid);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	return r;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[KILN_ROT_PATH_MAX];
	struct stat st;

	return kiln_is_ok(kiln_rot_path(dir, name, path, sizeof(path), NULL)) &&
	       lstat(path, &st) == 0;
}

static kiln_result check_free(const char *dir, kiln_diag *d)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return errno == ENOENT ? kiln_ok()
				       : kiln_diag_set(d, KILN_ERR_IO, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return kiln_diag_set(d, KILN_ERR_EXISTS, "%s exists and is not a directory", dir);
	if (exists_in(dir, "rot.json") || exists_in(dir, "uds"))
		return kiln_diag_set(d, KILN_ERR_EXISTS,
				     "%s already holds a device; remove it or choose another state directory",
				     dir);
	return kiln_ok();
}

struct state_file {
	const char *name;
	kiln_slice data;
};

/* Writes every file, rot.json last; on failure removes what it wrote. */
static kiln_result write_state(const char *dir, const struct state_file *files, size_t n,
			       const struct kiln_rot_meta *m, kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];
	size_t done = 0;
	kiln_result r = kiln_ok();

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", dir, strerror(errno));
	for (; done < n; done++) {
		if (files[done].data.len == 0)
			continue;
		KILN_TRY(r, kiln_rot_path(dir, files[done].name, path, sizeof(path), d));
		KILN_TRY(r, kiln_file_write(path, files[done].data, 0600, d));
	}
	r = kiln_rot_meta_write(dir, m, d);
out:
	if (!kiln_is_ok(r)) {
		for (size_t i = 0; i < done; i++)
			if (files[i].data.len > 0 &&
			    kiln_is_ok(kiln_rot_path(dir, files[i].name, path, sizeof(path), NULL)))
				(void)unlink(path);
	}
	return r;
}

kiln_result kiln_rot_dice_create(const char *state_dir, const struct kiln_dice_sim_opts *o,
				 kiln_diag *d)
{
	static const struct kiln_dice_sim_opts defaults;
	uint8_t uds[UDS_LEN];
	struct kiln_rot_meta m;
	kiln_buf fw, l0, deviceid_pem;
	kiln_result r;

	KILN_ENSURE(state_dir != NULL && state_dir[0] != '\0', KILN_ERR_ARG);
	if (o == NULL)
		o = &defaults;
	kiln_buf_init(&fw, IMAGE_MAX);
	kiln_buf_init(&l0, IMAGE_MAX);
	kiln_buf_init(&deviceid_pem, PEM_FILE_MAX);
	KILN_TRY(r, check_free(state_dir, d));
	KILN_TRY(r, kiln_random(uds, sizeof(uds)));
	KILN_TRY(r, meta_for(o, uds, &m, d));
	KILN_TRY(r, image_or_default(o->firmware, "fw", &fw, d));
	KILN_TRY(r, image_or_default(o->l0_image, "l0", &l0, d));
	if (o->vendor_ca_cert != NULL || o->vendor_ca_key != NULL)
		KILN_TRY(r, endorse(o, uds, &l0, &m, &deviceid_pem, d));
	{
		const struct state_file files[] = {
			{ "uds", kiln_slice_of(uds, sizeof(uds)) },
			{ "l0.bin", kiln_buf_view(&l0) },
			{ "firmware.bin", kiln_buf_view(&fw) },
			{ "deviceid.crt", kiln_buf_view(&deviceid_pem) },
		};

		r = write_state(state_dir, files, sizeof(files) / sizeof(files[0]), &m, d);
	}
out:
	kiln_wipe(uds, sizeof(uds));
	kiln_buf_cleanup(&fw);
	kiln_buf_cleanup(&l0);
	kiln_buf_cleanup(&deviceid_pem);
	return r;
}

kiln_result kiln_rot_dice_install(const char *state_dir, kiln_slice firmware, const char *version,
				  kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];
	struct kiln_rot_meta m;

	if (firmware.ptr == NULL || firmware.len == 0 || firmware.len > IMAGE_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG, "the firmware image must be 1 byte to 16 MiB");
	if (!kiln_rot_text_ok(version, sizeof(m.firmware_version)))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "the firmware version must be 1 to %zu printable ASCII characters without spaces",
				     sizeof(m.firmware_version) - 1);
	KILN_GUARD(kiln_rot_meta_read(state_dir, &m, d));
	if (strcmp(m.type, "dice") != 0)
		return kiln_diag_set(d, KILN_ERR_ARG, "%s is not a simulated DICE device", state_dir);
	KILN_GUARD(kiln_rot_path(state_dir, "firmware.bin", path, sizeof(path), d));
	KILN_GUARD(kiln_file_write(path, firmware, 0600, d));
	KILN_GUARD(kiln_strlcpy(m.firmware_version, version, sizeof(m.firmware_version)));
	return kiln_rot_meta_write(state_dir, &m, d);
}
