/*
 * The algorithm registry: one row per signature algorithm kiln's own keys
 * use, with everything the CA, the HSM backend and DER assembly need.
 */
#include "crypto.h"

#include <openssl/obj_mac.h>
#include <string.h>

/* DER AlgorithmIdentifier values (RFC 5758, RFC 8410, RFC 4055). */
static const uint8_t algid_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
					      0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t algid_ecdsa_sha384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
					      0xce, 0x3d, 0x04, 0x03, 0x03 };
static const uint8_t algid_ed25519[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t algid_rsa_sha256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
					    0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00 };

#define SLICE(a) { a, sizeof(a) }

static const struct kiln_alg_info registry[KILN_ALG__COUNT] = {
	[KILN_ALG_P256] = { KILN_ALG_P256, "p256", "ECDSA P-256 / SHA-256", EVP_PKEY_EC,
			    NID_X9_62_prime256v1, 256, NID_sha256, NID_ecdsa_with_SHA256, 32, 72,
			    SLICE(algid_ecdsa_sha256) },
	[KILN_ALG_P384] = { KILN_ALG_P384, "p384", "ECDSA P-384 / SHA-384", EVP_PKEY_EC,
			    NID_secp384r1, 384, NID_sha384, NID_ecdsa_with_SHA384, 48, 104,
			    SLICE(algid_ecdsa_sha384) },
	[KILN_ALG_ED25519] = { KILN_ALG_ED25519, "ed25519", "Ed25519", EVP_PKEY_ED25519, NID_undef,
			       256, NID_undef, NID_ED25519, 0, 64, SLICE(algid_ed25519) },
	[KILN_ALG_RSA3072] = { KILN_ALG_RSA3072, "rsa3072", "RSA-3072 PKCS#1 v1.5 / SHA-256",
			       EVP_PKEY_RSA, NID_undef, 3072, NID_sha256,
			       NID_sha256WithRSAEncryption, 0, 384, SLICE(algid_rsa_sha256) },
};

const struct kiln_alg_info *kiln_alg_get(kiln_alg alg)
{
	if (alg <= KILN_ALG_NONE || alg >= KILN_ALG__COUNT)
		return NULL;
	return &registry[alg];
}

kiln_result kiln_alg_parse(const char *name, kiln_alg *out)
{
	for (int i = KILN_ALG_NONE + 1; i < KILN_ALG__COUNT; i++) {
		if (name != NULL && strcmp(registry[i].name, name) == 0) {
			*out = (kiln_alg)i;
			return kiln_ok();
		}
	}
	return kiln_fail(KILN_ERR_ARG);
}

kiln_alg kiln_alg_of_key(const EVP_PKEY *pkey)
{
	struct kiln_key_desc kd;

	if (!kiln_is_ok(kiln_key_describe(pkey, &kd)))
		return KILN_ALG_NONE;
	switch (kd.type) {
	case KILN_KEY_EC:
		if (strcmp(kd.curve, "p256") == 0)
			return KILN_ALG_P256;
		if (strcmp(kd.curve, "p384") == 0)
			return KILN_ALG_P384;
		return KILN_ALG_NONE;
	case KILN_KEY_ED25519:
		return KILN_ALG_ED25519;
	case KILN_KEY_RSA:
		return kd.bits == 3072 ? KILN_ALG_RSA3072 : KILN_ALG_NONE;
	case KILN_KEY_UNKNOWN:
	default:
		return KILN_ALG_NONE;
	}
}
