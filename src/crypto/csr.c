/*
 * PKCS#10 parsing: pure and bounded. Size cap first, then PEM unwrapping,
 * a strict DER walk of our own over the whole request (so OpenSSL only ever
 * sees well-formed pieces of bounded depth: the subject Name, the key's
 * parts, the signature AlgorithmIdentifier), and finally the proof of
 * possession: the signature over CertificationRequestInfo must verify with
 * the key the request carries.
 */
#include "crypto.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

/* Largest RSA modulus a CSR may carry; verification cost grows with its cube. */
#define CSR_MAX_RSA_BITS 16384

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* True when what the PEM reader left unread in bio is whitespace only. */
static bool only_space_left(BIO *bio)
{
	char *rest = NULL;
	long n = BIO_get_mem_data(bio, &rest);

	for (long i = 0; i < n; i++) {
		if (!is_space((uint8_t)rest[i]))
			return false;
	}
	return true;
}

static bool looks_pem(kiln_slice in)
{
	static const char begin[] = "-----BEGIN ";
	size_t i = 0;

	while (i < in.len && is_space(in.ptr[i]))
		i++;
	return in.len - i >= sizeof(begin) - 1 && memcmp(in.ptr + i, begin, sizeof(begin) - 1) == 0;
}

/* Unwraps one PEM block of a certificate request into DER (appended to der). */
static kiln_result pem_unwrap(kiln_slice in, kiln_buf *der, kiln_diag *d)
{
	BIO *bio = BIO_new_mem_buf(in.ptr, (int)in.len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	kiln_result r;

	if (bio == NULL)
		return kiln_fail(KILN_ERR_NOMEM);
	if (PEM_read_bio(bio, &name, &header, &data, &len) != 1 || len <= 0) {
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				  "the CSR is not valid PEM (truncated or corrupt base64)");
		goto out;
	}
	if (strcmp(name, PEM_STRING_X509_REQ) != 0 && strcmp(name, PEM_STRING_X509_REQ_OLD) != 0) {
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				  "the PEM block is a '%.40s', not a CERTIFICATE REQUEST", name);
		goto out;
	}
	/* RFC 7468 strict: no encapsulated headers (Proc-Type etc.) and nothing after the block. */
	if (header[0] != '\0') {
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the PEM block carries headers");
		goto out;
	}
	if (!only_space_left(bio)) {
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				  "the CSR has data after the END CERTIFICATE REQUEST line");
		goto out;
	}
	r = kiln_buf_append(der, data, (size_t)len);
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/*
 * Digests a CSR may be signed with. An allow-list, so that signature
 * algorithms kiln does not know (and RSA-PSS with its SHA-1 default) are
 * refused rather than waved through.
 */
static bool strong_digest(int md)
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
static int sig_digest(const X509_ALGOR *alg, int *pk)
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

static kiln_result check_digest(const X509_ALGOR *alg, kiln_diag *d)
{
	int pk, md = sig_digest(alg, &pk);

	if (md == NID_ED25519 || md == NID_ED448 || strong_digest(md))
		return kiln_ok();
	if (md != NID_undef)
		return kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
				     "the CSR is signed with %s, a broken or unaccepted digest; "
				     "sign it with SHA-256 or better",
				     OBJ_nid2sn(md));
	return kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
			     "the CSR signature algorithm is not one kiln accepts; "
			     "use ECDSA, Ed25519 or RSA with SHA-256 or better");
}

/* The parts of a CertificationRequest (RFC 2986), all views into the DER. */
struct csr_parts {
	kiln_slice info;    /* CertificationRequestInfo TLV: what the signature covers */
	kiln_slice subject; /* Name TLV */
	kiln_slice spki;    /* SubjectPublicKeyInfo TLV */
	kiln_slice key_alg; /* its AlgorithmIdentifier TLV */
	kiln_slice key;     /* subjectPublicKey bits */
	kiln_slice sig_alg; /* signatureAlgorithm TLV */
	kiln_slice sig;     /* signature bits */
};

/* A BIT STRING's content with no unused bits. */
static kiln_result bits_of(kiln_slice content, kiln_slice *out)
{
	KILN_ENSURE(content.len >= 2 && content.ptr[0] == 0, KILN_ERR_MALFORMED);
	*out = kiln_slice_of(content.ptr + 1, content.len - 1);
	return kiln_ok();
}

static kiln_result walk_info(kiln_slice info, struct csr_parts *p, kiln_diag *d)
{
	kiln_slice v, spki, bits;
	kiln_cursor c, k;
	uint8_t tag;

	kiln_cursor_init(&c, info);
	KILN_GUARD(kiln_der_read(&c, &tag, &v));
	KILN_ENSURE(tag == KILN_DER_INTEGER, KILN_ERR_MALFORMED);
	if (v.len != 1 || v.ptr[0] != 0)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the CSR version is not v1 (0)");
	KILN_GUARD(kiln_der_read_tlv(&c, &tag, &v, &p->subject));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read_tlv(&c, &tag, &spki, &p->spki));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read(&c, &tag, &v)); /* attributes [0] IMPLICIT SET OF */
	KILN_ENSURE(tag == 0xa0, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&k, spki);
	KILN_GUARD(kiln_der_read_tlv(&k, &tag, &v, &p->key_alg));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read(&k, &tag, &bits));
	KILN_ENSURE(tag == KILN_DER_BIT_STRING, KILN_ERR_MALFORMED);
	KILN_GUARD(bits_of(bits, &p->key));
	return kiln_cursor_expect_end(&k);
}

static kiln_result walk(kiln_slice der, struct csr_parts *p, kiln_diag *d)
{
	kiln_slice body, info, sig;
	kiln_cursor c, b;
	uint8_t tag;

	kiln_cursor_init(&c, der);
	KILN_GUARD(kiln_der_read(&c, &tag, &body));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	kiln_cursor_init(&b, body);
	KILN_GUARD(kiln_der_read_tlv(&b, &tag, &info, &p->info));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read_tlv(&b, &tag, &sig, &p->sig_alg));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	KILN_GUARD(kiln_der_read(&b, &tag, &sig));
	KILN_ENSURE(tag == KILN_DER_BIT_STRING, KILN_ERR_MALFORMED);
	KILN_GUARD(bits_of(sig, &p->sig));
	KILN_GUARD(kiln_cursor_expect_end(&b));
	return walk_info(info, p, d);
}

/* An EC key on a named curve, from its uncompressed point. */
static EVP_PKEY *ec_key(const X509_ALGOR *alg, kiln_slice point)
{
	const ASN1_OBJECT *curve = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pk = NULL;
	const char *name;

	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_OBJECT || (curve = pval) == NULL || OBJ_obj2nid(curve) == NID_undef)
		return NULL;
	/* Uncompressed only (RFC 5480 makes it mandatory): one canonical form per key. */
	if (point.len < 3 || point.ptr[0] != 0x04)
		return NULL;
	name = OBJ_nid2sn(OBJ_obj2nid(curve));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      (void *)point.ptr, point.len);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pk;
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
	    kiln_cursor_remaining(&s) != 0 || n.len > CSR_MAX_RSA_BITS / 8 || e.len > 8)
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

/*
 * The subject key. P-256/384/521 and other named curves, Ed25519 and RSA are
 * built from their parts (OpenSSL 3.0's generic decoder costs more than the
 * signature check); anything else goes through the decoder, and its
 * fingerprint through OpenSSL's canonical re-encoding.
 */
static kiln_result make_key(const struct csr_parts *p, kiln_csr *csr, bool *canonical)
{
	const unsigned char *q = p->key_alg.ptr;
	X509_ALGOR *alg = d2i_X509_ALGOR(NULL, &q, (long)p->key_alg.len);
	int nid = alg != NULL ? OBJ_obj2nid(alg->algorithm) : NID_undef;

	*canonical = true;
	if (alg == NULL || q != p->key_alg.ptr + p->key_alg.len) {
		X509_ALGOR_free(alg);
		return kiln_fail(KILN_ERR_MALFORMED);
	}
	if (nid == NID_X9_62_id_ecPublicKey)
		csr->pkey = ec_key(alg, p->key);
	else if (nid == NID_rsaEncryption)
		csr->pkey = rsa_key(alg, p->key);
	else if (nid == NID_ED25519 && alg->parameter == NULL && p->key.len == 32)
		csr->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, p->key.ptr, 32);
	X509_ALGOR_free(alg);
	if (csr->pkey == NULL) {
		q = p->spki.ptr;
		*canonical = false;
		csr->pkey = d2i_PUBKEY(NULL, &q, (long)p->spki.len);
		if (csr->pkey != NULL && q != p->spki.ptr + p->spki.len) {
			EVP_PKEY_free(csr->pkey);
			csr->pkey = NULL;
		}
	}
	KILN_ENSURE(csr->pkey != NULL, KILN_ERR_MALFORMED);
	return kiln_ok();
}

static kiln_result decode(kiln_slice der, kiln_csr *csr, struct csr_parts *p, kiln_diag *d)
{
	const unsigned char *q;
	bool canonical;

	if (!kiln_is_ok(kiln_der_check(der)))
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR is not well-formed DER (truncated, trailing bytes or bad lengths)");
	if (!kiln_is_ok(walk(der, p, d)))
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the DER is not a PKCS#10 certification request");
	KILN_GUARD(kiln_buf_append_slice(&csr->der, der));
	q = p->subject.ptr;
	csr->subject = d2i_X509_NAME(NULL, &q, (long)p->subject.len);
	if (csr->subject == NULL || q != p->subject.ptr + p->subject.len)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the CSR's subject name cannot be decoded");
	if (!kiln_is_ok(make_key(p, csr, &canonical)))
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR's public key cannot be decoded (EC points must be uncompressed)");
	csr->spki = kiln_slice_of(csr->der.ptr + (p->spki.ptr - der.ptr), p->spki.len);
	/* A key built from its parts was read from canonical DER: hash the bytes as they are. */
	if (!canonical)
		return kiln_key_fingerprint(csr->pkey, csr->spki_sha256);
	KILN_ENSURE(EVP_Digest(csr->spki.ptr, csr->spki.len, csr->spki_sha256, NULL, EVP_sha256(),
			       NULL) == 1,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* The signature over CertificationRequestInfo, with the key the request carries. */
static bool signature_ok(const struct csr_parts *p, const kiln_csr *csr, const X509_ALGOR *alg)
{
	int pk, md = sig_digest(alg, &pk);
	const EVP_MD *evp_md = NULL;
	EVP_MD_CTX *ctx;
	X509_REQ *req;
	const unsigned char *q;
	bool ok = false;

	if (pk == NID_rsassaPss) {
		/* PSS parameters are OpenSSL's business: let it check the whole request. */
		q = csr->der.ptr;
		req = d2i_X509_REQ(NULL, &q, (long)csr->der.len);
		ok = req != NULL && X509_REQ_verify(req, csr->pkey) == 1;
		X509_REQ_free(req);
		return ok;
	}
	if ((pk == NID_X9_62_id_ecPublicKey && csr->key.type != KILN_KEY_EC) ||
	    (pk == NID_rsaEncryption && csr->key.type != KILN_KEY_RSA) ||
	    (pk == NID_ED25519 && csr->key.type != KILN_KEY_ED25519))
		return false;
	if (md != NID_ED25519 && md != NID_ED448 && (evp_md = EVP_get_digestbynid(md)) == NULL)
		return false;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	     EVP_DigestVerifyInit(ctx, NULL, evp_md, NULL, csr->pkey) == 1 &&
	     EVP_DigestVerify(ctx, p->sig.ptr, p->sig.len, p->info.ptr, p->info.len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static kiln_result verify_pop(const struct csr_parts *p, kiln_csr *csr, kiln_diag *d)
{
	const unsigned char *q = p->sig_alg.ptr;
	X509_ALGOR *alg;
	kiln_result r = kiln_ok();

	KILN_GUARD(kiln_key_describe(csr->pkey, &csr->key));
	if (csr->key.type == KILN_KEY_RSA && csr->key.bits > CSR_MAX_RSA_BITS)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR's RSA key has %u bits, more than the %u kiln accepts",
				     csr->key.bits, CSR_MAX_RSA_BITS);
	alg = d2i_X509_ALGOR(NULL, &q, (long)p->sig_alg.len);
	if (alg == NULL || q != p->sig_alg.ptr + p->sig_alg.len)
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the CSR has no valid signature algorithm");
	if (kiln_is_ok(r))
		r = check_digest(alg, d);
	if (kiln_is_ok(r) && !signature_ok(p, csr, alg))
		r = kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
				  "the CSR signature does not verify with its %s key (no proof of possession)",
				  csr->key.name);
	X509_ALGOR_free(alg);
	return r;
}

kiln_result kiln_csr_parse(kiln_slice in, kiln_csr **out, kiln_diag *d)
{
	struct csr_parts parts = { 0 };
	kiln_result r;
	kiln_csr *csr = NULL;
	kiln_buf pem_der;
	kiln_slice der = in;

	*out = NULL;
	kiln_buf_init(&pem_der, KILN_CSR_MAX_BYTES);
	if (in.ptr == NULL || in.len == 0)
		return kiln_diag_set(d, KILN_ERR_CSR_EMPTY, "the CSR is empty");
	if (in.len > KILN_CSR_MAX_BYTES)
		return kiln_diag_set(d, KILN_ERR_CSR_TOO_BIG, "the CSR is %zu bytes, over the %d-byte limit",
				     in.len, KILN_CSR_MAX_BYTES);
	if (looks_pem(in)) {
		KILN_TRY(r, pem_unwrap(in, &pem_der, d));
		der = kiln_buf_view(&pem_der);
	}
	csr = calloc(1, sizeof(*csr));
	if (csr == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	kiln_buf_init(&csr->der, KILN_CSR_MAX_BYTES);
	KILN_TRY(r, decode(der, csr, &parts, d));
	KILN_TRY(r, verify_pop(&parts, csr, d));
	*out = csr;
	csr = NULL;
out:
	ERR_clear_error();
	kiln_csr_free(csr);
	kiln_buf_cleanup(&pem_der);
	return r;
}

void kiln_csr_free(kiln_csr *csr)
{
	if (csr == NULL)
		return;
	EVP_PKEY_free(csr->pkey);
	X509_NAME_free(csr->subject);
	kiln_buf_cleanup(&csr->der);
	free(csr);
}
