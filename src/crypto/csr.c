/*
 * PKCS#10 parsing: pure and bounded. Size cap first, then PEM unwrapping,
 * a strict DER walk of our own (so OpenSSL only ever sees well-formed DER of
 * bounded depth), the OpenSSL decode with no trailing bytes, and finally the
 * proof of possession: the request must be signed by the key it carries.
 */
#include "crypto.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
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

static kiln_result check_weak_digest(const X509_REQ *req, kiln_diag *d)
{
	const X509_ALGOR *alg = NULL;
	int sig, md = NID_undef, pk = NID_undef;

	X509_REQ_get0_signature(req, NULL, &alg);
	if (alg == NULL)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the CSR has no signature algorithm");
	sig = OBJ_obj2nid(alg->algorithm);
	if (sig == NID_ED25519 || sig == NID_ED448)
		return kiln_ok();
	if (sig == NID_rsassaPss)
		md = pss_digest(alg);
	else if (OBJ_find_sigid_algs(sig, &md, &pk) != 1)
		md = NID_undef;
	if (strong_digest(md))
		return kiln_ok();
	if (md != NID_undef)
		return kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
				     "the CSR is signed with %s, a broken or unaccepted digest; sign it with SHA-256 or better",
				     OBJ_nid2sn(md));
	return kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
			     "the CSR signature algorithm is not one kiln accepts; use ECDSA, Ed25519 or RSA with SHA-256 or better");
}

static kiln_result decode(kiln_slice der, kiln_csr *csr, kiln_diag *d)
{
	const unsigned char *p = der.ptr;

	if (!kiln_is_ok(kiln_der_check(der)))
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR is not well-formed DER (truncated, trailing bytes or bad lengths)");
	csr->req = d2i_X509_REQ(NULL, &p, (long)der.len);
	if (csr->req == NULL || p != der.ptr + der.len)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the DER is not a PKCS#10 certification request");
	if (X509_REQ_get_version(csr->req) != X509_REQ_VERSION_1)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED, "the CSR version is not v1 (0)");
	csr->pkey = X509_REQ_get_pubkey(csr->req);
	if (csr->pkey == NULL)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR's public key cannot be decoded");
	return kiln_ok();
}

static kiln_result verify_pop(kiln_csr *csr, kiln_diag *d)
{
	KILN_GUARD(kiln_key_describe(csr->pkey, &csr->key));
	if (csr->key.type == KILN_KEY_RSA && csr->key.bits > CSR_MAX_RSA_BITS)
		return kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				     "the CSR's RSA key has %u bits, more than the %u kiln accepts",
				     csr->key.bits, CSR_MAX_RSA_BITS);
	KILN_GUARD(check_weak_digest(csr->req, d));
	if (X509_REQ_verify(csr->req, csr->pkey) != 1)
		return kiln_diag_set(d, KILN_ERR_CSR_SIGNATURE,
				     "the CSR signature does not verify with its %s key (no proof of possession)",
				     csr->key.name);
	return kiln_key_fingerprint(csr->pkey, csr->spki_sha256);
}

kiln_result kiln_csr_parse(kiln_slice in, kiln_csr **out, kiln_diag *d)
{
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
	KILN_TRY(r, decode(der, csr, d));
	KILN_TRY(r, verify_pop(csr, d));
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
	X509_REQ_free(csr->req);
	free(csr);
}
