/*
 * Public keys from PKCS#11 attribute values. The bytes come from the token,
 * so they are parsed like any untrusted input: bounded, exact lengths, and
 * the resulting key must be the algorithm and size the caller expects.
 */
#include "p11.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#define RSA_MAX_MODULUS_BYTES 1024 /* 8192 bits */
#define RSA_MAX_EXPONENT_BYTES 8

/*
 * CKA_EC_POINT is a DER OCTET STRING around the point in PKCS#11 2.x and
 * in SoftHSM2; some modules give the bare point. The two never have the
 * same length, so the length decides.
 */
KILN_MUST_USE
static kiln_result unwrap_point(kiln_slice point, size_t raw_len, kiln_slice *out)
{
	kiln_cursor c;
	kiln_slice inner;
	uint8_t tag;

	if (point.len == raw_len) {
		*out = point;
		return kiln_ok();
	}
	kiln_cursor_init(&c, point);
	KILN_GUARD(kiln_der_read(&c, &tag, &inner));
	KILN_GUARD(kiln_cursor_expect_end(&c));
	KILN_ENSURE(tag == KILN_DER_OCTET_STRING && inner.len == raw_len, KILN_ERR_MALFORMED);
	*out = inner;
	return kiln_ok();
}

KILN_MUST_USE
static kiln_result from_data(const char *type, const OSSL_PARAM *params, EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY_CTX *check = NULL;
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);
	EVP_PKEY *pkey = NULL;

	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) != 1)
		goto out;
	/* On the curve, in range: the token is a peer whose bytes we check. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1)
		goto out;
	*out = pkey;
	pkey = NULL;
	r = kiln_ok();
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

kiln_result kiln_p11_pub_ec(kiln_alg alg, kiln_slice params, kiln_slice point, EVP_PKEY **out,
			    kiln_diag *d)
{
	const struct kiln_p11_alg *pa = kiln_p11_alg_get(alg);
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	kiln_slice raw;
	EVP_PKEY *pkey;

	if (pa == NULL || ai == NULL || pa->ec_params.len == 0 || out == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "not an elliptic-curve algorithm");
	if (!kiln_p11_alg_params_ok(pa, params))
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "public key from the HSM: CKA_EC_PARAMS do not name the %s curve",
				     ai->name);
	if (alg == KILN_ALG_ED25519) {
		if (!kiln_is_ok(unwrap_point(point, 32, &raw)))
			return kiln_diag_set(d, KILN_ERR_HSM,
					     "public key from the HSM: CKA_EC_POINT is not a 32-byte Ed25519 key");
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw.ptr, raw.len);
		if (pkey == NULL)
			return kiln_diag_set(d, KILN_ERR_CRYPTO,
					     "OpenSSL refused the Ed25519 public key");
		*out = pkey;
		return kiln_ok();
	}
	if (!kiln_is_ok(unwrap_point(point, 1 + 2 * ai->ec_coord_len, &raw)) || raw.ptr[0] != 0x04)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "public key from the HSM: CKA_EC_POINT is not an uncompressed %s point",
				     ai->name);
	{
		OSSL_PARAM p[] = {
			OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)pa->group, 0),
			OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)raw.ptr, raw.len),
			OSSL_PARAM_END,
		};

		if (!kiln_is_ok(from_data("EC", p, out)))
			return kiln_diag_set(d, KILN_ERR_HSM,
					     "public key from the HSM: the point is not on the %s curve",
					     ai->name);
	}
	return kiln_ok();
}

kiln_result kiln_p11_pub_rsa(kiln_alg alg, kiln_slice modulus, kiln_slice exponent,
			     EVP_PKEY **out, kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	kiln_result r;

	if (ai == NULL || ai->pkey_type != EVP_PKEY_RSA || out == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "not an RSA algorithm");
	if (modulus.len == 0 || modulus.len > RSA_MAX_MODULUS_BYTES || exponent.len == 0 ||
	    exponent.len > RSA_MAX_EXPONENT_BYTES)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "public key from the HSM: RSA modulus or exponent has a bad length");
	n = BN_bin2bn(modulus.ptr, (int)modulus.len, NULL);
	e = BN_bin2bn(exponent.ptr, (int)exponent.len, NULL);
	if (n == NULL || e == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	if ((unsigned)BN_num_bits(n) != ai->bits || !BN_is_odd(e) || BN_is_one(e)) {
		r = kiln_diag_set(d, KILN_ERR_HSM,
				  "public key from the HSM: not an RSA-%u key (%d-bit modulus)",
				  ai->bits, BN_num_bits(n));
		goto out;
	}
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	r = from_data("RSA", params, out);
	if (!kiln_is_ok(r))
		r = kiln_diag_set(d, KILN_ERR_CRYPTO,
				  "OpenSSL refused the RSA public key from the HSM");
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}
