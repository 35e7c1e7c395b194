/*
 * The PKCS#11 side of each signature algorithm: key type, mechanisms and
 * the curve parameters a key is generated with and recognised by.
 */
#include "p11.h"

/* namedCurve OIDs (RFC 5480). */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
/*
 * Ed25519: PKCS#11 3.0 names the curve with the PrintableString
 * "edwards25519", which is what OpenSC and most HSMs write; some write the
 * RFC 8410 OID 1.3.101.112 instead. SoftHSM2 2.6.1 accepts both (checked by
 * hand); kiln writes the string and reads either.
 */
static const uint8_t str_ed25519[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
				       's', '2', '5', '5', '1', '9' };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

#define SLICE(a) { a, sizeof(a) }
#define NO_SLICE { NULL, 0 }

static const struct kiln_p11_alg table[] = {
	{ KILN_ALG_P256, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, SLICE(oid_p256), NO_SLICE,
	  "P-256", true },
	{ KILN_ALG_P384, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, SLICE(oid_p384), NO_SLICE,
	  "P-384", true },
	{ KILN_ALG_ED25519, CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA,
	  SLICE(str_ed25519), SLICE(oid_ed25519), NULL, false },
	{ KILN_ALG_RSA3072, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_SHA256_RSA_PKCS, NO_SLICE,
	  NO_SLICE, NULL, false },
};

const struct kiln_p11_alg *kiln_p11_alg_get(kiln_alg alg)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].alg == alg)
			return &table[i];
	}
	return NULL;
}

bool kiln_p11_alg_params_ok(const struct kiln_p11_alg *pa, kiln_slice params)
{
	if (pa == NULL || pa->ec_params.len == 0)
		return false;
	return kiln_slice_eq(params, pa->ec_params) ||
	       (pa->ec_params_alt.len > 0 && kiln_slice_eq(params, pa->ec_params_alt));
}
