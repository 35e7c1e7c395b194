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
#define CSR_MAX_RSA_BITS KILN_SPKI_RSA_MAX_BITS

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

/* Digests a CSR may be signed with: kiln_digest_strong's allow-list. */
static kiln_result check_digest(const X509_ALGOR *alg, kiln_diag *d)
{
	int pk, md = kiln_sigalg_digest(alg, &pk);

	if (md == NID_ED25519 || md == NID_ED448 || kiln_digest_strong(md))
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

/* The subject key, built from its parts where kiln can (see kiln_spki_key). */
static kiln_result make_key(const struct csr_parts *p, kiln_csr *csr, bool *canonical)
{
	return kiln_spki_key(p->spki, &csr->pkey, canonical);
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
	int pk, md = kiln_sigalg_digest(alg, &pk);
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
