/* What a public key is, and its identity (SPKI and its SHA-256). */
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *group; /* OpenSSL group name */
	const char *name;  /* kiln spelling */
} curves[] = {
	{ "prime256v1", "p256" },
	{ "P-256", "p256" },
	{ "secp384r1", "p384" },
	{ "P-384", "p384" },
	{ "secp521r1", "p521" },
	{ "P-521", "p521" },
};

static const char *const type_names[] = { "unknown", "ec", "ed25519", "rsa" };

const char *kiln_key_type_name(kiln_key_type t)
{
	if ((unsigned)t > KILN_KEY_RSA)
		return "unknown";
	return type_names[t];
}

kiln_result kiln_key_type_parse(const char *name, kiln_key_type *out)
{
	for (unsigned i = KILN_KEY_EC; i <= KILN_KEY_RSA; i++) {
		if (name != NULL && strcmp(type_names[i], name) == 0) {
			*out = (kiln_key_type)i;
			return kiln_ok();
		}
	}
	return kiln_fail(KILN_ERR_ARG);
}

static void describe_ec(const EVP_PKEY *pkey, struct kiln_key_desc *out)
{
	char group[64] = "";
	size_t glen = 0;

	out->type = KILN_KEY_EC;
	if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   &glen) != 1)
		kiln_strtrunc(group, "explicit", sizeof(group));
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (strcmp(curves[i].group, group) == 0) {
			kiln_strtrunc(out->curve, curves[i].name, sizeof(out->curve));
			kiln_strtrunc(out->name, curves[i].name, sizeof(out->name));
			return;
		}
	}
	kiln_strtrunc(out->curve, group, sizeof(out->curve));
	(void)snprintf(out->name, sizeof(out->name), "ec-%s", out->curve);
}

kiln_result kiln_key_describe(const EVP_PKEY *pkey, struct kiln_key_desc *out)
{
	memset(out, 0, sizeof(*out));
	KILN_ENSURE(pkey != NULL, KILN_ERR_ARG);
	out->bits = (unsigned)EVP_PKEY_get_bits(pkey);
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_EC:
		describe_ec(pkey, out);
		break;
	case EVP_PKEY_ED25519:
		out->type = KILN_KEY_ED25519;
		kiln_strtrunc(out->name, "ed25519", sizeof(out->name));
		break;
	case EVP_PKEY_RSA:
		out->type = KILN_KEY_RSA;
		(void)snprintf(out->name, sizeof(out->name), "rsa%u", out->bits);
		break;
	default: {
		const char *tn = EVP_PKEY_get0_type_name(pkey);

		out->type = KILN_KEY_UNKNOWN;
		kiln_strtrunc(out->name, tn != NULL ? tn : "unknown", sizeof(out->name));
		break;
	}
	}
	return kiln_ok();
}

/*
 * The SubjectPublicKeyInfo of the common keys, written directly: everything
 * but the key bits is a constant prefix. OpenSSL 3.0's i2d_PUBKEY runs the
 * provider encoders, which cost more than a P-256 signature; the bytes are
 * the same (named curve, the key's own point encoding; unit-tested against
 * i2d_PUBKEY).
 */
static const uint8_t spki_p256[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00 };
static const uint8_t spki_p384[] = { 0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
				     0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
				     0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00 };
static const uint8_t spki_ed25519[] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
					0x2b, 0x65, 0x70, 0x03, 0x21, 0x00 };

static const struct {
	const char *group;   /* "" for Ed25519 */
	const uint8_t *prefix;
	size_t prefix_len;
	size_t key_len;      /* uncompressed point, or raw Ed25519 key */
} spki_forms[] = {
	{ "prime256v1", spki_p256, sizeof(spki_p256), 65 },
	{ "P-256", spki_p256, sizeof(spki_p256), 65 },
	{ "secp384r1", spki_p384, sizeof(spki_p384), 97 },
	{ "P-384", spki_p384, sizeof(spki_p384), 97 },
	{ "", spki_ed25519, sizeof(spki_ed25519), 32 },
};

/* true when key's SPKI was appended by the direct path; false: use i2d_PUBKEY. */
static bool spki_direct(const EVP_PKEY *pkey, kiln_buf *der, kiln_result *r)
{
	char group[32] = "";
	uint8_t key[97];
	size_t glen = 0, n = 0;
	int id = EVP_PKEY_get_base_id(pkey);

	if (id == EVP_PKEY_EC) {
		char form[16] = "";
		size_t flen = 0;

		/* A key set to compressed points is encoded compressed by i2d_PUBKEY. */
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
						   form, sizeof(form), &flen) == 1 &&
		    strcmp(form, "uncompressed") != 0) {
			ERR_clear_error();
			return false;
		}
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &glen) != 1 ||
		    EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, key,
						    sizeof(key), &n) != 1) {
			ERR_clear_error();
			return false;
		}
	} else if (id == EVP_PKEY_ED25519) {
		n = sizeof(key);
		if (EVP_PKEY_get_raw_public_key(pkey, key, &n) != 1) {
			ERR_clear_error();
			return false;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < sizeof(spki_forms) / sizeof(spki_forms[0]); i++) {
		size_t mark = der->len;

		if (strcmp(spki_forms[i].group, group) != 0 || spki_forms[i].key_len != n)
			continue;
		*r = kiln_buf_append(der, spki_forms[i].prefix, spki_forms[i].prefix_len);
		if (kiln_is_ok(*r))
			*r = kiln_buf_append(der, key, n);
		if (!kiln_is_ok(*r))
			der->len = mark;
		return true;
	}
	return false; /* another curve, or a compressed point */
}

kiln_result kiln_key_spki(const EVP_PKEY *pkey, kiln_buf *der)
{
	unsigned char *p = NULL;
	kiln_result r;
	int n;

	KILN_ENSURE(pkey != NULL, KILN_ERR_CRYPTO);
	if (spki_direct(pkey, der, &r))
		return r;
	n = i2d_PUBKEY(pkey, &p);
	KILN_ENSURE(n > 0, KILN_ERR_CRYPTO);
	r = kiln_buf_append(der, p, (size_t)n);
	OPENSSL_free(p);
	return r;
}

kiln_result kiln_key_fingerprint(const EVP_PKEY *pkey, uint8_t out[32])
{
	kiln_buf der;
	unsigned int n = 0;
	kiln_result r;

	kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
	r = kiln_key_spki(pkey, &der);
	if (kiln_is_ok(r) && EVP_Digest(der.ptr, der.len, out, &n, EVP_sha256(), NULL) != 1)
		r = kiln_fail(KILN_ERR_CRYPTO);
	kiln_buf_cleanup(&der);
	return r;
}
