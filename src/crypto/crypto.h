/*
 * kiln crypto: the algorithm registry, key description, bounded DER reading
 * and writing, CSR parsing with proof-of-possession, TBS building for
 * certificates and assembly of signed objects around a signature made
 * elsewhere (the HSM). No private key of kiln's ever passes through here.
 *
 * Depends on core and OpenSSL 3. All functions are thread-safe; objects are
 * owned by one thread at a time.
 */
#ifndef KILN_CRYPTO_H
#define KILN_CRYPTO_H

#include "core/core.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---------------------------------------------------------------- registry */

/* Signature algorithms kiln's own keys (CA, OCSP, log) can use. */
typedef enum kiln_alg {
	KILN_ALG_NONE = 0,
	KILN_ALG_P256,    /* ECDSA P-256 with SHA-256 */
	KILN_ALG_P384,    /* ECDSA P-384 with SHA-384 */
	KILN_ALG_ED25519, /* pure Ed25519 */
	KILN_ALG_RSA3072, /* RSA-3072, PKCS#1 v1.5 with SHA-256 */
	KILN_ALG__COUNT
} kiln_alg;

struct kiln_alg_info {
	kiln_alg alg;
	const char *name;    /* "p256": CLI and config spelling */
	const char *display; /* "ECDSA P-256 / SHA-256" */
	int pkey_type;       /* EVP_PKEY_EC, EVP_PKEY_ED25519, EVP_PKEY_RSA */
	int curve_nid;       /* NID_X9_62_prime256v1, NID_secp384r1, else NID_undef */
	unsigned bits;       /* key size in bits */
	int md_nid;          /* digest signed over (NID_undef for Ed25519) */
	int sig_nid;         /* X.509 signature algorithm */
	size_t ec_coord_len; /* 32 or 48 for ECDSA raw r||s, else 0 */
	size_t max_sig_len;  /* upper bound on the X.509 signature value */
	kiln_slice algid;    /* DER AlgorithmIdentifier of the signature */
};

/* NULL for KILN_ALG_NONE or out-of-range values. */
const struct kiln_alg_info *kiln_alg_get(kiln_alg alg);
KILN_MUST_USE kiln_result kiln_alg_parse(const char *name, kiln_alg *out);
/* The kiln_alg a public key belongs to, KILN_ALG_NONE when it is none of them. */
kiln_alg kiln_alg_of_key(const EVP_PKEY *pkey);

/* ---------------------------------------------------------- key description */

typedef enum kiln_key_type {
	KILN_KEY_UNKNOWN = 0,
	KILN_KEY_EC,
	KILN_KEY_ED25519,
	KILN_KEY_RSA,
} kiln_key_type;

/* What a public key is, for policy checks and messages. */
struct kiln_key_desc {
	kiln_key_type type;
	unsigned bits;   /* RSA modulus bits, EC field bits, 256 for Ed25519 */
	char curve[16];  /* "p256", "p384", "p521", "secp256k1"... ("" unless EC) */
	char name[24];   /* "p256", "rsa2048", "ed25519": for messages */
};

KILN_MUST_USE kiln_result kiln_key_describe(const EVP_PKEY *pkey, struct kiln_key_desc *out);
/* "ec", "ed25519", "rsa" and back. */
const char *kiln_key_type_name(kiln_key_type t);
KILN_MUST_USE kiln_result kiln_key_type_parse(const char *name, kiln_key_type *out);
/* DER SubjectPublicKeyInfo and its SHA-256, the key's identity in the inventory. */
KILN_MUST_USE kiln_result kiln_key_spki(const EVP_PKEY *pkey, kiln_buf *der);
KILN_MUST_USE kiln_result kiln_key_fingerprint(const EVP_PKEY *pkey, uint8_t out[32]);

/* --------------------------------------------------------------------- DER */

#define KILN_DER_MAX_DEPTH 32

/*
 * Reads one DER TLV with a single-byte tag (multi-byte tags are refused),
 * definite minimal length, content within the cursor. On success the cursor
 * moves past the TLV; on failure it does not move.
 */
KILN_MUST_USE kiln_result kiln_der_read(kiln_cursor *c, uint8_t *tag, kiln_slice *content);
/* Like kiln_der_read; *tlv (if not NULL) receives the whole TLV, header included. */
KILN_MUST_USE kiln_result kiln_der_read_tlv(kiln_cursor *c, uint8_t *tag, kiln_slice *content,
					    kiln_slice *tlv);
/* Checks that in is exactly one well-formed DER TLV tree (every constructed
 * value parsed recursively, depth at most KILN_DER_MAX_DEPTH, no trailing bytes). */
KILN_MUST_USE kiln_result kiln_der_check(kiln_slice in);
/* Appends tag, DER length and content. */
KILN_MUST_USE kiln_result kiln_der_write(kiln_buf *out, uint8_t tag, kiln_slice content);
/*
 * Makes the bytes appended to b since offset start the content of one TLV:
 * the tag and DER length are inserted before them. Nested structures are
 * written in one buffer, inside out: remember b->len, write the content, wrap.
 */
KILN_MUST_USE kiln_result kiln_der_wrap(kiln_buf *b, size_t start, uint8_t tag);

#define KILN_DER_SEQUENCE 0x30
#define KILN_DER_BIT_STRING 0x03
#define KILN_DER_OCTET_STRING 0x04
#define KILN_DER_INTEGER 0x02

/*
 * Converts a PKCS#11 ECDSA signature (raw r || s, each ec_coord_len bytes)
 * into the DER ECDSA-Sig-Value X.509 expects. out is appended to.
 */
KILN_MUST_USE kiln_result kiln_ecdsa_raw_to_der(kiln_alg alg, kiln_slice raw, kiln_buf *out);

/* ---------------------------------------------------------------------- CSR */

#define KILN_CSR_MAX_BYTES 65536

/*
 * A parsed, verified PKCS#10 request. Parsing is pure (bytes in, struct out):
 * size cap, PEM unwrapping, kiln's own bounded DER walk of the request, the
 * key built from its parts, then the self-signature (proof of possession)
 * must verify over the CertificationRequestInfo bytes with that key.
 * Attributes are checked for form and otherwise ignored: the CA, not the
 * device, decides what a certificate says.
 */
typedef struct kiln_csr {
	X509_NAME *subject;       /* owned */
	EVP_PKEY *pkey;           /* owned */
	struct kiln_key_desc key;
	uint8_t spki_sha256[32];  /* SHA-256 of the canonical SubjectPublicKeyInfo */
	kiln_buf der;             /* the request's DER (owned) */
	kiln_slice spki;          /* its SubjectPublicKeyInfo TLV, inside der */
} kiln_csr;

/* Accepts DER or PEM ("-----BEGIN CERTIFICATE REQUEST-----"). Caller frees *out. */
KILN_MUST_USE kiln_result kiln_csr_parse(kiln_slice in, kiln_csr **out, kiln_diag *d);
void kiln_csr_free(kiln_csr *csr);

/* ------------------------------------------------------------- certificates */

#define KILN_SERIAL_LEN 16
#define KILN_SERIAL_HEX (2 * KILN_SERIAL_LEN + 1)

/* 128 random bits, top bit clear (a positive INTEGER), never zero. */
KILN_MUST_USE kiln_result kiln_serial_new(uint8_t out[KILN_SERIAL_LEN]);

/* Subject name attributes by short name: "CN", "O", "OU", "C", "L", "ST", "serialNumber". */
struct kiln_name_attr {
	const char *attr;
	const char *value;
};

/* Builds a name from attributes in order (UTF8String values). Caller frees. */
KILN_MUST_USE kiln_result kiln_name_build(const struct kiln_name_attr *attrs, size_t n,
					  X509_NAME **out, kiln_diag *d);
/* One-line RFC 2253 form, for records and messages; cut at cap. */
void kiln_name_format(const X509_NAME *name, char *out, size_t cap);
/*
 * The name's DER (appended to der) and its one-line form (cut at cap) without
 * building an X509_NAME, where that is simple: every value printable ASCII
 * within its attribute's bounds and alphabet. Then the bytes are those of
 * kiln_name_build's name and the text kiln_name_format's (test_name compares
 * them). Otherwise false, nothing appended: kiln_name_build decides, and
 * explains a refusal.
 */
bool kiln_name_simple(const struct kiln_name_attr *attrs, size_t n, kiln_buf *der, char *text,
		      size_t cap);

#define KILN_CERT_MAX_SAN 8
#define KILN_CERT_MAX_EKU 4

/* Everything that goes into a certificate; the issuer signs what this describes. */
struct kiln_cert_spec {
	uint8_t serial[KILN_SERIAL_LEN];
	int64_t not_before;
	int64_t not_after;
	const X509_NAME *subject;
	kiln_slice subject_der; /* the subject as DER instead, when subject is NULL */
	const EVP_PKEY *subject_key;
	/*
	 * The subject key's DER SubjectPublicKeyInfo as it arrived (a CSR's).
	 * When set, it is copied into the certificate as it is: OpenSSL 3.0
	 * re-encodes an EVP_PKEY through its provider encoders, which costs
	 * more than a P-256 signature. subject_key must name the same key (the
	 * lint requires the certificate's key bytes to be these).
	 */
	kiln_slice subject_spki;
	/* NULL for a self-signed certificate: then issuer = subject and AKI = SKI. */
	const X509 *issuer;
	kiln_alg sig_alg; /* the issuer key's algorithm */
	bool is_ca;
	int path_len;        /* basicConstraints pathLenConstraint, -1 for none */
	unsigned key_usage;  /* KU_DIGITAL_SIGNATURE | ... (openssl/x509v3.h) */
	int eku[KILN_CERT_MAX_EKU]; /* NIDs, e.g. NID_client_auth */
	size_t n_eku;
	const char *san_uri[KILN_CERT_MAX_SAN];
	size_t n_san_uri;
	const char *san_dns[KILN_CERT_MAX_SAN];
	size_t n_san_dns;
	const char *san_ip[KILN_CERT_MAX_SAN];
	size_t n_san_ip;
	const char *crl_url;  /* CRL distribution point, NULL for none */
	const char *ocsp_url; /* AIA OCSP, NULL for none */
	const char *ca_issuers_url; /* AIA caIssuers, NULL for none */
	/* Extra DER extensions (e.g. attestation evidence), added verbatim. */
	const X509_EXTENSION *const *extra;
	size_t n_extra;
};

/*
 * Writes the TBSCertificate DER for spec (extensions in this order:
 * basicConstraints and keyUsage, critical; extKeyUsage, SKI, AKI,
 * subjectAltName, CRL distribution point, AIA; then spec->extra). The
 * signature AlgorithmIdentifier inside the TBS is the one of spec->sig_alg.
 * tbs is appended to; on failure nothing is.
 */
KILN_MUST_USE kiln_result kiln_cert_tbs(const struct kiln_cert_spec *spec, kiln_buf *tbs,
					kiln_diag *d);
/*
 * Assembles SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING sig } for any
 * X.509 signed object (certificate, CRL). sig is the X.509 signature value
 * (DER ECDSA-Sig-Value, raw Ed25519, raw RSA). out is appended to.
 */
KILN_MUST_USE kiln_result kiln_signed_assemble(kiln_slice tbs, kiln_alg alg, kiln_slice sig,
					       kiln_buf *out);
/* ---------------------------------------------------------- CRLs (crl.c) */

#define KILN_CRL_SERIAL_MAX 20
#define KILN_CRL_MAX_ENTRIES 10000000
/* Ceiling on a CRL's DER: ten million entries of at most 64 bytes, plus the rest. */
#define KILN_CRL_MAX_BYTES ((size_t)660 * 1024 * 1024)

struct kiln_crl_entry {
	uint8_t serial[KILN_CRL_SERIAL_MAX]; /* big-endian, as in the certificate */
	uint8_t serial_len;
	int64_t revoked_at;
	int reason; /* CRLReason code: 0 (unspecified, no extension written) .. 10, not 7 */
};

struct kiln_crl_spec {
	const X509 *issuer;   /* the CA: its subject names the CRL issuer, its SKI the AKI */
	kiln_alg sig_alg;
	uint64_t number;      /* cRLNumber, >= 1 */
	int64_t this_update, next_update;
	const struct kiln_crl_entry *entries; /* in the order they are written (sort first) */
	size_t n;
};

/* Fills e->serial from lower-case hex (odd lengths allowed: "100" is 0x0100). */
KILN_MUST_USE kiln_result kiln_serial_from_hex(const char *hex, struct kiln_crl_entry *e);
/*
 * Appends the TBSCertList DER for s to tbs (give tbs a cap of KILN_CRL_MAX_BYTES
 * for large CRLs): v2, the issuer's signature algorithm and name, thisUpdate,
 * nextUpdate, the entries, and the AKI and cRLNumber extensions.
 */
KILN_MUST_USE kiln_result kiln_crl_tbs(const struct kiln_crl_spec *s, kiln_buf *tbs,
				       kiln_diag *d);
/* kiln_signed_assemble without its 16 MiB working buffers: out's own cap applies. */
KILN_MUST_USE kiln_result kiln_signed_assemble_big(kiln_slice tbs, kiln_alg alg, kiln_slice sig,
						   kiln_buf *out);

/* ---------------------------------------------------------- OCSP (ocsp.c) */

#define KILN_OCSP_MAX_BYTES 4096 /* an OCSPRequest larger than this is refused */
#define KILN_OCSP_MAX_IDS 8      /* CertIDs per request */
#define KILN_OCSP_SHA1 1
#define KILN_OCSP_SHA256 2

/* One CertID as it came; slices point into the request bytes. */
struct kiln_ocsp_certid {
	int hash;              /* KILN_OCSP_SHA1, KILN_OCSP_SHA256, 0: another algorithm */
	kiln_slice name_hash, key_hash;
	kiln_slice serial;     /* INTEGER content, positive, minimal */
	kiln_slice tlv;        /* the whole CertID */
};

struct kiln_ocsp_request {
	struct kiln_ocsp_certid ids[KILN_OCSP_MAX_IDS];
	size_t n;              /* >= 1 */
	kiln_slice nonce_ext;  /* the nonce Extension TLV, to echo; empty when none */
	bool signed_req;       /* carried an optionalSignature (not checked: kiln does not require one) */
};

/* Pure and bounded; KILN_ERR_MALFORMED for anything but a DER OCSPRequest. */
KILN_MUST_USE kiln_result kiln_ocsp_request_parse(kiln_slice in, struct kiln_ocsp_request *out);

enum { KILN_OCSP_GOOD = 0, KILN_OCSP_REVOKED = 1, KILN_OCSP_UNKNOWN = 2 };

struct kiln_ocsp_single {
	kiln_slice certid_tlv; /* echoed as the request had it */
	int status;            /* KILN_OCSP_GOOD ... */
	int64_t revoked_at;
	int reason;            /* CRLReason code; 0 (unspecified) is left out */
	int64_t this_update, next_update;
};

/* A CertID of our own (pre-signed responses): hash alg with NULL parameters. */
KILN_MUST_USE kiln_result kiln_ocsp_certid(int hash, const uint8_t *name_hash,
					   const uint8_t *key_hash, kiln_slice serial,
					   kiln_buf *out);
/* ResponseData DER: responder by key hash, producedAt, the responses, the nonce echoed. */
KILN_MUST_USE kiln_result kiln_ocsp_tbs(const uint8_t responder_key_hash[20], int64_t produced_at,
					const struct kiln_ocsp_single *s, size_t n,
					kiln_slice nonce_ext, kiln_buf *tbs);
/* OCSPResponse (successful, basic) around a signed ResponseData and the signer's certificate. */
KILN_MUST_USE kiln_result kiln_ocsp_assemble(kiln_slice tbs, kiln_alg alg, kiln_slice sig,
					     kiln_slice signer_cert, kiln_buf *out);
/* An OCSPResponse with no body: 1 malformedRequest, 2 internalError, 3 tryLater, 6 unauthorized. */
KILN_MUST_USE kiln_result kiln_ocsp_error(int status, kiln_buf *out);

/* Decodes one DER certificate, refusing trailing bytes. Caller frees. */
KILN_MUST_USE kiln_result kiln_cert_parse(kiln_slice der, X509 **out, kiln_diag *d);
/* Checks cert's signature with issuer's public key (self-signed: its own). */
KILN_MUST_USE kiln_result kiln_cert_check_signature(const X509 *cert, const X509 *issuer);
/* Lower-case hex of the serial number (no leading zeros beyond the DER). */
void kiln_cert_serial_hex(const X509 *cert, char *out, size_t cap);
/* Appends the PEM of a DER certificate. */
KILN_MUST_USE kiln_result kiln_cert_pem(const X509 *cert, kiln_buf *out);

/* ---------------------------------------------------- walked certificates */

/* Largest RSA modulus kiln reads in a key; verification cost grows with its cube. */
#define KILN_SPKI_RSA_MAX_BITS 16384

/*
 * A DER certificate walked, not decoded: views into the caller's bytes, which
 * must outlive it. kiln_cert_view_parse checks the DER (bounded depth, no
 * trailing bytes), the Certificate and TBSCertificate shapes of RFC 5280 and
 * that the inner and outer signature algorithms agree; names, times and
 * extension contents are not interpreted. For hot paths that need a
 * certificate's key, signature and a few extensions (a device's Alias
 * certificate); anything that judges a certificate as a whole uses X509.
 */
struct kiln_cert_view {
	kiln_slice tbs;        /* the TBSCertificate TLV: what the signature covers */
	kiln_slice sig_alg;    /* signatureAlgorithm TLV */
	kiln_slice sig;        /* the signature value (BIT STRING bytes) */
	kiln_slice spki;       /* subjectPublicKeyInfo TLV */
	kiln_slice extensions; /* content of the Extensions SEQUENCE; empty when none */
};

/* KILN_ERR_MALFORMED (or the DER reader's error) when der is not a certificate. */
KILN_MUST_USE kiln_result kiln_cert_view_parse(kiln_slice der, struct kiln_cert_view *out);
/*
 * The extnValue (OCTET STRING content) of the extension whose OID content
 * bytes are oid. KILN_ERR_NOT_FOUND when absent; an extension present twice,
 * or a malformed Extensions list, is KILN_ERR_MALFORMED.
 */
KILN_MUST_USE kiln_result kiln_cert_view_ext(const struct kiln_cert_view *v, kiln_slice oid,
					     kiln_slice *value);
/*
 * The public key of a DER SubjectPublicKeyInfo. EC keys on named curves
 * (uncompressed points), RSA (up to KILN_SPKI_RSA_MAX_BITS) and Ed25519 are
 * built from their parts, without OpenSSL 3.0's decoders; anything else goes
 * through d2i_PUBKEY and *canonical is false (its DER may not be the key's
 * canonical encoding). Caller frees *out.
 */
KILN_MUST_USE kiln_result kiln_spki_key(kiln_slice spki, EVP_PKEY **out, bool *canonical);
/*
 * A public EC key from its uncompressed point on a named curve (OpenSSL's
 * short name: "prime256v1", "secp384r1", ...). A point off the curve is
 * KILN_ERR_MALFORMED. The common curves' parameters are made once per
 * process and copied, which is four times faster than building the key by
 * name. Caller frees *out.
 */
KILN_MUST_USE kiln_result kiln_ec_public_key(const char *curve, kiln_slice point, EVP_PKEY **out);
/*
 * Checks sig over data with key, as the DER AlgorithmIdentifier sig_alg says:
 * ECDSA, RSA PKCS#1 v1.5 with a digest kiln_digest_strong accepts, or Ed25519.
 * RSA-PSS and anything unknown fail. KILN_ERR_CRYPTO when it does not verify.
 */
KILN_MUST_USE kiln_result kiln_signature_verify(kiln_slice sig_alg, kiln_slice data, kiln_slice sig,
						const EVP_PKEY *key);
/* SHA-224 and up, SHA-3: the digests kiln accepts under a signature. */
bool kiln_digest_strong(int md_nid);
/*
 * The digest NID a signature AlgorithmIdentifier implies, and in *pk the key
 * type NID (NID_undef: unknown; Ed25519/Ed448 return their own NID; RSA-PSS
 * returns the digest its parameters name, SHA-1 when absent).
 */
int kiln_sigalg_digest(const X509_ALGOR *alg, int *pk);

/* -------------------------------------------------------------------- DICE */

/*
 * TCG DICE Attestation Architecture: the DiceTcbInfo certificate extension
 * (OID 2.23.133.5.4.1) a DICE layer puts in the certificate of the next
 * layer's key, carrying that layer's measurement (FWID).
 *
 *   DiceTcbInfo ::= SEQUENCE {
 *     vendor  [0] IMPLICIT UTF8String OPTIONAL,
 *     model   [1] IMPLICIT UTF8String OPTIONAL,
 *     version [2] IMPLICIT UTF8String OPTIONAL,
 *     svn     [3] IMPLICIT INTEGER OPTIONAL,
 *     layer   [4] IMPLICIT INTEGER OPTIONAL,
 *     index   [5] IMPLICIT INTEGER OPTIONAL,
 *     fwids   [6] IMPLICIT SEQUENCE OF FWID OPTIONAL,
 *     flags   [7] IMPLICIT BIT STRING OPTIONAL,
 *     vendorInfo [8] IMPLICIT OCTET STRING OPTIONAL,
 *     type    [9] IMPLICIT OCTET STRING OPTIONAL }
 *   FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }
 */
#define KILN_DICE_TCB_INFO_OID "2.23.133.5.4.1"
#define KILN_DICE_MAX_FWIDS 4
#define KILN_DICE_STR_MAX 64
#define KILN_DICE_TCB_INFO_MAX 2048 /* largest DiceTcbInfo DER accepted */

struct kiln_dice_fwid {
	int hash_nid;       /* NID_sha256, NID_sha384, NID_sha512 */
	uint8_t digest[64];
	size_t len;         /* must match the hash */
};

struct kiln_dice_tcb_info {
	char vendor[KILN_DICE_STR_MAX];   /* "" when absent */
	char model[KILN_DICE_STR_MAX];
	char version[KILN_DICE_STR_MAX];
	bool has_svn, has_layer, has_index;
	uint64_t svn, layer, index;
	struct kiln_dice_fwid fwids[KILN_DICE_MAX_FWIDS];
	size_t n_fwids;
	uint32_t flags;     /* OperationalFlags bits as read (bit 0 = notConfigured ...) */
	bool has_flags;
	/* vendorInfo [8] and type [9]: opaque bytes, at most KILN_DICE_STR_MAX each. */
	uint8_t vendor_info[KILN_DICE_STR_MAX];
	size_t vendor_info_len;
	bool has_vendor_info;
	uint8_t type[KILN_DICE_STR_MAX];
	size_t type_len;
	bool has_type;
};

/*
 * Parses the extension's value (the DER of the DiceTcbInfo SEQUENCE). Pure and
 * bounded: at most KILN_DICE_TCB_INFO_MAX bytes (else KILN_ERR_TOO_BIG), fields
 * in tag order, each at most once, strings UTF-8 text of at most
 * KILN_DICE_STR_MAX - 1 bytes, FWIDs with a known hash (SHA-256/384/512) and a
 * digest of its length. Anything else is KILN_ERR_MALFORMED with one line in d.
 * *out is zeroed first and filled only on success.
 */
KILN_MUST_USE kiln_result kiln_dice_tcb_info_parse(kiln_slice der, struct kiln_dice_tcb_info *out,
						   kiln_diag *d);
/* Encodes one (the device side); appended to out. */
KILN_MUST_USE kiln_result kiln_dice_tcb_info_encode(const struct kiln_dice_tcb_info *in,
						    kiln_buf *out);
/* Finds and parses the DiceTcbInfo extension of a certificate (KILN_ERR_NOT_FOUND when absent). */
KILN_MUST_USE kiln_result kiln_dice_tcb_info_of(const X509 *cert, struct kiln_dice_tcb_info *out,
						kiln_diag *d);

#define KILN_NONCE_LEN 32

/*
 * The message a device's DICE Alias key signs in the provisioning protocol
 * (docs/protocol.md): it binds the server's nonce, the exact CSR and the
 * device serial the device claims, so none can be swapped for another.
 *   "KILN-DICE-BINDING-V1" 0x00 || nonce (32) || SHA-256(CSR DER) || SHA-256(serial)
 * out receives the message (117 bytes), not a digest.
 */
#define KILN_DICE_BINDING_LEN (21 + KILN_NONCE_LEN + 32 + 32)
KILN_MUST_USE kiln_result kiln_dice_binding(const uint8_t nonce[KILN_NONCE_LEN], kiln_slice csr_der,
					    const char *serial, uint8_t out[KILN_DICE_BINDING_LEN]);

/* ---------------------------------------------------------------------- EST */

/*
 * RFC 7030 bodies. A request body (simpleenroll, simplereenroll) is the
 * base64 of a DER PKCS#10 request, possibly broken into lines: whitespace
 * (space, tab, CR, LF) is skipped, any other character outside the standard
 * alphabet, bad padding or non-canonical trailing bits are refused, and the
 * body is capped at KILN_EST_BODY_MAX bytes before anything is decoded.
 */
#define KILN_EST_BODY_MAX ((size_t)96 * 1024)

/* Decodes a body into der (appended). KILN_ERR_TOO_BIG, KILN_ERR_CSR_EMPTY, KILN_ERR_MALFORMED. */
KILN_MUST_USE kiln_result kiln_est_body_decode(kiln_slice body, kiln_buf *der, kiln_diag *d);
/* Decodes a body and parses the request in it (kiln_csr_parse: DER only). Caller frees *out. */
KILN_MUST_USE kiln_result kiln_est_csr_parse(kiln_slice body, kiln_csr **out, kiln_diag *d);
/*
 * A certs-only CMS/PKCS#7 SignedData (no signers, no content) holding certs
 * in order, base64 on one line, appended to out: the body of
 * application/pkcs7-mime; smime-type=certs-only responses.
 */
KILN_MUST_USE kiln_result kiln_est_certs_only(X509 *const *certs, size_t n, kiln_buf *out);

/* ---------------------------------------------------------------- backup.c */

/* The backup file format (docs/backup.md); the encryption itself is the HSM's. */
#define KILN_BACKUP_VERSION 1
#define KILN_BACKUP_HEADER_LEN 128
#define KILN_BACKUP_AAD_LEN 112 /* the header without its tag: the GCM AAD */
#define KILN_BACKUP_ID_LEN 16
#define KILN_BACKUP_MAX ((uint64_t)1 << 30 ) /* 1 GiB of ciphertext or database */
#define KILN_BACKUP_YAML_MAX (1u << 20)

struct kiln_backup_header {
	char deployment[KILN_BACKUP_ID_LEN + 1]; /* 16 lower-case hex digits */
	int64_t created;
	uint64_t tree_size;  /* events in the ledger at backup time */
	uint8_t root[32];    /* the ledger's root hash over those events */
	uint8_t iv[12];
	uint8_t tag[16];
	uint64_t ct_len;     /* ciphertext bytes after the header (tag not included) */
};

/* The 128 header bytes for h (version 1); KILN_ERR_ARG for a bad id or size. */
KILN_MUST_USE kiln_result kiln_backup_header_encode(const struct kiln_backup_header *h,
						    uint8_t out[KILN_BACKUP_HEADER_LEN]);
/*
 * Parses a whole backup file (untrusted): magic, version, header length,
 * deployment id, reserved bytes zero, ciphertext length equal to what follows
 * (truncated or trailing bytes refused). KILN_ERR_BACKUP_FORMAT names the
 * first problem. aad and ct are views into file.
 */
KILN_MUST_USE kiln_result kiln_backup_parse(kiln_slice file, struct kiln_backup_header *out,
					    kiln_slice *aad, kiln_slice *ct, kiln_diag *d);
/* The plaintext: u32 yaml length || yaml || u64 database length || database. */
KILN_MUST_USE kiln_result kiln_backup_payload_encode(kiln_slice yaml, kiln_slice db,
						     kiln_buf *out);
/* Its parser (views into payload); the database must start as SQLite's do. */
KILN_MUST_USE kiln_result kiln_backup_payload_parse(kiln_slice payload, kiln_slice *yaml,
						    kiln_slice *db, kiln_diag *d);

#endif /* KILN_CRYPTO_H */
