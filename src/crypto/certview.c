/*
 * Certificates and keys read by walking their DER, not by OpenSSL's decoders.
 *
 * OpenSSL 3.0 decodes every public key it meets (in d2i_X509, d2i_PUBKEY)
 * through its provider decoders, which cost more than verifying a P-256
 * signature. On the provisioning path kiln reads a device's Alias
 * certificate and CSR per request; here they are walked with the bounded
 * DER reader, and keys are built from their parts (a copy of cached curve
 * parameters plus the point, EVP_PKEY_fromdata, raw Ed25519). Pure functions, no I/O; fuzzed through the CSR and evidence
 * targets.
 */
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <string.h>

/* ------------------------------------------------------------ signature algorithms */

/*
 * Digests kiln accepts in signatures it checks. An allow-list, so that
 * signature algorithms kiln does not know (and RSA-PSS with its SHA-1
 * default) are refused rather than waved through.
 */
bool kiln_digest_strong(int md)
{
	switch (md) {
	case NID_sha224:
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
	case NID_sha512_224:
	case NID_sha512_256:
	case NID_sha3_224:
	case NID_sha3_256:
	case NID_sha3_384:
	case NID_sha3_512:
		return true;
	default:
		return false;
	}
}

/* The digest RSASSA-PSS parameters name; absent parameters mean SHA-1 (RFC 4055). */
static int pss_digest(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF, md = NID_undef;
	RSA_PSS_PARAMS *pss;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return NID_sha1;
	pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
	if (pss == NULL)
		return NID_undef;
	md = pss->hashAlgorithm == NULL ? NID_sha1 : OBJ_obj2nid(pss->hashAlgorithm->algorithm);
	RSA_PSS_PARAMS_free(pss);
	return md;
}

/* The digest a signature AlgorithmIdentifier implies (NID_undef: unknown, NID_ED25519: none). */
int kiln_sigalg_digest(const X509_ALGOR *alg, int *pk)
{
	int sig = OBJ_obj2nid(alg->algorithm), md = NID_undef;

	*pk = NID_undef;
	if (sig == NID_ED25519 || sig == NID_ED448) {
		*pk = sig;
		return sig;
	}
	if (sig == NID_rsassaPss) {
		*pk = NID_rsassaPss;
		return pss_digest(alg);
	}
	if (OBJ_find_sigid_algs(sig, &md, pk) != 1)
		return NID_undef;
	return md;
}


/* ------------------------------------------------------------ keys */

/*
 * Parameter-only keys for the common curves, made once per process. Building
 * a key by name makes its EC_GROUP from scratch (Montgomery constants and
 * all), which costs a third of a P-256 verification; copying the parameters
 * of a ready key does not. Never freed: they live as long as the process.
 */
static const char *const common_curves[] = { "prime256v1", "secp384r1", "secp521r1" };
static EVP_PKEY *curve_params[sizeof(common_curves) / sizeof(common_curves[0])];
static pthread_once_t curve_once = PTHREAD_ONCE_INIT;

static void curve_init(void)
{
	for (size_t i = 0; i < sizeof(common_curves) / sizeof(common_curves[0]); i++) {
		OSSL_PARAM params[2];
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
							     (char *)common_curves[i], 0);
		params[1] = OSSL_PARAM_construct_end();
		if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &curve_params[i], EVP_PKEY_KEY_PARAMETERS, params) != 1)
			curve_params[i] = NULL; /* the slow path serves this curve */
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
}

/* A key on one of the common curves from a copy of its parameters, or NULL. */
static EVP_PKEY *ec_key_fast(const char *name, kiln_slice point)
{
	EVP_PKEY *pk;

	if (pthread_once(&curve_once, curve_init) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(common_curves) / sizeof(common_curves[0]); i++) {
		if (curve_params[i] == NULL || strcmp(name, common_curves[i]) != 0)
			continue;
		/* EC_POINT_oct2point underneath refuses a point that is not on the curve. */
		pk = EVP_PKEY_new();
		if (pk == NULL || EVP_PKEY_copy_parameters(pk, curve_params[i]) != 1 ||
		    EVP_PKEY_set1_encoded_public_key(pk, point.ptr, point.len) != 1) {
			EVP_PKEY_free(pk);
			return NULL;
		}
		return pk;
	}
	return NULL;
}

/* An EC key on a named curve, from its uncompressed point. */
static EVP_PKEY *ec_key(const X509_ALGOR *alg, kiln_slice point)
{
	const ASN1_OBJECT *curve = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF;
	EVP_PKEY *pk = NULL;
	const char *name;

	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_OBJECT || (curve = pval) == NULL || OBJ_obj2nid(curve) == NID_undef)
		return NULL;
	/* Uncompressed only (RFC 5480 makes it mandatory): one canonical form per key. */
	if (point.len < 3 || point.ptr[0] != 0x04)
		return NULL;
	name = OBJ_nid2sn(OBJ_obj2nid(curve));
	return kiln_is_ok(kiln_ec_public_key(name, point, &pk)) ? pk : NULL;
}

kiln_result kiln_ec_public_key(const char *curve, kiln_slice point, EVP_PKEY **out)
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk = NULL;

	*out = NULL;
	KILN_ENSURE(curve != NULL && point.len >= 3 && point.ptr[0] == 0x04, KILN_ERR_MALFORMED);
	if ((*out = ec_key_fast(curve, point)) != NULL)
		return kiln_ok();
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      (void *)point.ptr, point.len);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	KILN_ENSURE(pk != NULL, KILN_ERR_MALFORMED);
	*out = pk;
	return kiln_ok();
}

/* A positive, minimally encoded INTEGER's magnitude. */
static kiln_result der_uint(kiln_cursor *c, kiln_slice *out)
{
	uint8_t tag;

	KILN_GUARD(kiln_der_read(c, &tag, out));
	KILN_ENSURE(tag == KILN_DER_INTEGER && out->len > 0 && !(out->ptr[0] & 0x80), KILN_ERR_MALFORMED);
	KILN_ENSURE(!(out->len > 1 && out->ptr[0] == 0 && !(out->ptr[1] & 0x80)), KILN_ERR_MALFORMED);
	if (out->len > 1 && out->ptr[0] == 0)
		*out = kiln_slice_of(out->ptr + 1, out->len - 1);
	return kiln_ok();
}

/* An RSA key from RSAPublicKey ::= SEQUENCE { modulus, publicExponent } (RFC 8017). */
static EVP_PKEY *rsa_key(const X509_ALGOR *alg, kiln_slice key)
{
	kiln_slice seq, n, e;
	kiln_cursor c, s;
	uint8_t tag;
	int ptype = V_ASN1_UNDEF;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	X509_ALGOR_get0(NULL, &ptype, NULL, alg);
	kiln_cursor_init(&c, key);
	if (ptype != V_ASN1_NULL || !kiln_is_ok(kiln_der_read(&c, &tag, &seq)) ||
	    tag != KILN_DER_SEQUENCE || kiln_cursor_remaining(&c) != 0)
		return NULL;
	kiln_cursor_init(&s, seq);
	if (!kiln_is_ok(der_uint(&s, &n)) || !kiln_is_ok(der_uint(&s, &e)) ||
	    kiln_cursor_remaining(&s) != 0 || n.len > KILN_SPKI_RSA_MAX_BITS / 8 || e.len > 8)
		return NULL;
	bn = BN_bin2bn(n.ptr, (int)n.len, NULL);
	be = BN_bin2bn(e.ptr, (int)e.len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn == NULL || be == NULL || bld == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}


/* A BIT STRING's content with no unused bits. */
static kiln_result whole_bits(kiln_slice content, kiln_slice *out)
{
	KILN_ENSURE(content.len >= 2 && content.ptr[0] == 0, KILN_ERR_MALFORMED);
	*out = kiln_slice_of(content.ptr + 1, content.len - 1);
	return kiln_ok();
}

kiln_result kiln_spki_key(kiln_slice spki, EVP_PKEY **out, bool *canonical)
{
	kiln_slice seq, alg_tlv, v, bits, key;
	const unsigned char *q;
	X509_ALGOR *alg;
	kiln_cursor c, k;
	uint8_t tag;
	int nid;

	*out = NULL;
	*canonical = true;
	kiln_cursor_init(&c, spki);
	KILN_GUARD(kiln_der_read(&c, &tag, &seq));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&k, seq);
	KILN_GUARD(kiln_der_read_tlv(&k, &tag, &v, &alg_tlv));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read(&k, &tag, &bits));
	KILN_ENSURE(tag == KILN_DER_BIT_STRING, KILN_ERR_MALFORMED);
	KILN_GUARD(whole_bits(bits, &key));
	KILN_GUARD(kiln_cursor_expect_end(&k));
	q = alg_tlv.ptr;
	alg = d2i_X509_ALGOR(NULL, &q, (long)alg_tlv.len);
	if (alg == NULL || q != alg_tlv.ptr + alg_tlv.len) {
		X509_ALGOR_free(alg);
		ERR_clear_error();
		return kiln_fail(KILN_ERR_MALFORMED);
	}
	nid = OBJ_obj2nid(alg->algorithm);
	if (nid == NID_X9_62_id_ecPublicKey)
		*out = ec_key(alg, key);
	else if (nid == NID_rsaEncryption)
		*out = rsa_key(alg, key);
	else if (nid == NID_ED25519 && alg->parameter == NULL && key.len == 32)
		*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key.ptr, 32);
	X509_ALGOR_free(alg);
	if (*out == NULL) {
		/* Anything else through the decoder; its DER may not be the canonical form. */
		q = spki.ptr;
		*canonical = false;
		*out = d2i_PUBKEY(NULL, &q, (long)spki.len);
		if (*out != NULL && q != spki.ptr + spki.len) {
			EVP_PKEY_free(*out);
			*out = NULL;
		}
	}
	ERR_clear_error();
	KILN_ENSURE(*out != NULL, KILN_ERR_MALFORMED);
	return kiln_ok();
}

/* ------------------------------------------------------------ signatures */

kiln_result kiln_signature_verify(kiln_slice sig_alg, kiln_slice tbs, kiln_slice sig,
				  const EVP_PKEY *key)
{
	const unsigned char *q = sig_alg.ptr;
	X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &q, (long)sig_alg.len);
	int pk = NID_undef, md = NID_undef, type = key != NULL ? EVP_PKEY_get_base_id(key) : 0;
	const EVP_MD *evp_md = NULL;
	EVP_MD_CTX *ctx = NULL;
	bool ok = false;

	if (alg == NULL || q != sig_alg.ptr + sig_alg.len || key == NULL)
		goto out;
	md = kiln_sigalg_digest(alg, &pk);
	/* RSA-PSS parameters are not checked here: refused, as an unknown algorithm is. */
	if (pk == NID_rsassaPss || md == NID_undef)
		goto out;
	if ((pk == NID_X9_62_id_ecPublicKey && type != EVP_PKEY_EC) ||
	    (pk == NID_rsaEncryption && type != EVP_PKEY_RSA) ||
	    (pk == NID_ED25519 && type != EVP_PKEY_ED25519) || pk == NID_ED448)
		goto out;
	if (pk != NID_ED25519 &&
	    (!kiln_digest_strong(md) || (evp_md = EVP_get_digestbynid(md)) == NULL))
		goto out;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, evp_md, NULL, (EVP_PKEY *)key) == 1 &&
	     EVP_DigestVerify(ctx, sig.ptr, sig.len, tbs.ptr, tbs.len) == 1;
out:
	EVP_MD_CTX_free(ctx);
	X509_ALGOR_free(alg);
	ERR_clear_error();
	return ok ? kiln_ok() : kiln_fail(KILN_ERR_CRYPTO);
}

/* ------------------------------------------------------------ certificates */

/* Reads the next TLV if it has tag; *present says whether it did. */
static kiln_result optional(kiln_cursor *c, uint8_t want, kiln_slice *content, bool *present)
{
	kiln_cursor peek = *c;
	kiln_slice v;
	uint8_t tag;

	*present = false;
	if (kiln_cursor_remaining(c) == 0)
		return kiln_ok();
	KILN_GUARD(kiln_der_read(&peek, &tag, &v));
	if (tag != want)
		return kiln_ok();
	*c = peek;
	*content = v;
	*present = true;
	return kiln_ok();
}

static kiln_result expect(kiln_cursor *c, uint8_t want, kiln_slice *content, kiln_slice *tlv)
{
	uint8_t tag;

	KILN_GUARD(kiln_der_read_tlv(c, &tag, content, tlv));
	KILN_ENSURE(tag == want, KILN_ERR_MALFORMED);
	return kiln_ok();
}

/*
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT INTEGER DEFAULT v1,
 *   serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name,
 *   validity Validity, subject Name, subjectPublicKeyInfo,
 *   issuerUniqueID [1] IMPLICIT OPTIONAL, subjectUniqueID [2] IMPLICIT OPTIONAL,
 *   extensions [3] EXPLICIT Extensions OPTIONAL }
 */
static kiln_result walk_tbs(kiln_slice tbs, kiln_slice outer_alg, struct kiln_cert_view *v)
{
	kiln_slice x, inner_alg, ext;
	kiln_cursor c, e;
	bool present;
	uint8_t tag;

	kiln_cursor_init(&c, tbs);
	KILN_GUARD(optional(&c, 0xa0, &x, &present));
	KILN_GUARD(expect(&c, KILN_DER_INTEGER, &x, NULL));           /* serialNumber */
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &x, &inner_alg));    /* signature */
	/* RFC 5280 4.1.1.2: the same algorithm inside and outside the signed part. */
	KILN_ENSURE(inner_alg.len == outer_alg.len &&
			    memcmp(inner_alg.ptr, outer_alg.ptr, outer_alg.len) == 0,
		    KILN_ERR_MALFORMED);
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &x, NULL));          /* issuer */
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &x, NULL));          /* validity */
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &x, NULL));          /* subject */
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &x, &v->spki));      /* subjectPublicKeyInfo */
	KILN_GUARD(optional(&c, 0x81, &x, &present));
	KILN_GUARD(optional(&c, 0x82, &x, &present));
	KILN_GUARD(optional(&c, 0xa3, &ext, &present));
	if (present) {
		kiln_cursor_init(&e, ext);
		KILN_GUARD(kiln_der_read(&e, &tag, &v->extensions));
		KILN_ENSURE(tag == KILN_DER_SEQUENCE && v->extensions.len > 0, KILN_ERR_MALFORMED);
		KILN_GUARD(kiln_cursor_expect_end(&e));
	}
	return kiln_cursor_expect_end(&c);
}

kiln_result kiln_cert_view_parse(kiln_slice der, struct kiln_cert_view *out)
{
	kiln_slice body, tbs, alg, bits;
	kiln_cursor c, b;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(kiln_der_check(der));
	kiln_cursor_init(&c, der);
	KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &body, NULL));
	kiln_cursor_init(&b, body);
	KILN_GUARD(expect(&b, KILN_DER_SEQUENCE, &tbs, &out->tbs));
	KILN_GUARD(expect(&b, KILN_DER_SEQUENCE, &alg, &out->sig_alg));
	KILN_GUARD(expect(&b, KILN_DER_BIT_STRING, &bits, NULL));
	KILN_GUARD(whole_bits(bits, &out->sig));
	KILN_GUARD(kiln_cursor_expect_end(&b));
	return walk_tbs(tbs, out->sig_alg, out);
}

/*
 * Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE,
 *                          extnValue OCTET STRING }
 */
kiln_result kiln_cert_view_ext(const struct kiln_cert_view *v, kiln_slice oid, kiln_slice *value)
{
	kiln_cursor c;
	bool found = false;

	*value = kiln_slice_of(NULL, 0);
	kiln_cursor_init(&c, v->extensions);
	while (kiln_cursor_remaining(&c) > 0) {
		kiln_slice ext, id, val, x;
		kiln_cursor e;
		bool present;

		KILN_GUARD(expect(&c, KILN_DER_SEQUENCE, &ext, NULL));
		kiln_cursor_init(&e, ext);
		KILN_GUARD(expect(&e, 0x06, &id, NULL));
		KILN_GUARD(optional(&e, 0x01, &x, &present));
		KILN_ENSURE(!present || (x.len == 1 && x.ptr[0] == 0xff), KILN_ERR_MALFORMED);
		KILN_GUARD(expect(&e, KILN_DER_OCTET_STRING, &val, NULL));
		KILN_GUARD(kiln_cursor_expect_end(&e));
		if (id.len != oid.len || memcmp(id.ptr, oid.ptr, oid.len) != 0)
			continue;
		/* RFC 5280 4.2: a certificate must not include an extension more than once. */
		KILN_ENSURE(!found, KILN_ERR_MALFORMED);
		found = true;
		*value = val;
	}
	KILN_ENSURE(found, KILN_ERR_NOT_FOUND);
	return kiln_ok();
}
