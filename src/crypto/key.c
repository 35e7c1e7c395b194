/* What a public key is, and its identity (SPKI and its SHA-256). */
#include "crypto.h"

#include <openssl/core_names.h>
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

kiln_result kiln_key_spki(const EVP_PKEY *pkey, kiln_buf *der)
{
	unsigned char *p = NULL;
	int n = i2d_PUBKEY(pkey, &p);
	kiln_result r;

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
