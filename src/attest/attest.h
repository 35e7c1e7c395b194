/*
 * kiln attest: evidence parsers and verifiers. A device gets a certificate
 * only after its evidence proves what holds the key and what firmware runs,
 * checked against the product policy (principle 2).
 *
 * Parsers are pure and bounded: JSON object in (already size- and
 * depth-capped by core's kiln_json_parse), struct out, no I/O. Verifiers are
 * pure functions of the evidence, the policy and the request.
 *
 * Depends on core, crypto and policy. Thread-safe: no shared state.
 */
#ifndef KILN_ATTEST_H
#define KILN_ATTEST_H

#include "core/core.h"
#include "crypto/crypto.h"
#include "policy/policy.h"

struct json_t;

#define KILN_EVIDENCE_CERT_MAX 8192 /* one DER certificate inside evidence */
#define KILN_EVIDENCE_SIG_MAX 512

/*
 * DICE evidence (docs/protocol.md):
 *   { "type": "dice",
 *     "alias_cert": base64 DER,     certificate of the Alias key, signed by the
 *                                   DeviceID key, with DiceTcbInfo (FWID of the firmware)
 *     "deviceid_cert": base64 DER,  optional: the DeviceID key endorsed by the
 *                                   silicon vendor CA (required when the policy
 *                                   names vendor_roots)
 *     "signature": base64 DER       ECDSA/Ed25519 signature by the Alias key over
 *                                   kiln_dice_binding(nonce, csr, serial) }
 */
struct kiln_dice_evidence {
	kiln_buf alias_cert;    /* DER */
	kiln_buf deviceid_cert; /* DER, empty when absent */
	kiln_buf signature;
};

/* Caps on the TPM 2.0 structures inside evidence (marshaled, TCG Part 2). */
#define KILN_TPM2_PUBLIC_MAX 640     /* TPM2B_PUBLIC */
#define KILN_TPM2_ATTEST_MAX 1024    /* TPMS_ATTEST */
#define KILN_TPM2_SIG_MAX 520        /* TPMT_SIGNATURE */
#define KILN_TPM2_PCRS_MAX (24 * 32) /* PCR values, 32 bytes each */
#define KILN_TPM2_SECRET_LEN 32      /* the credential's secret */
#define KILN_TPM2_BLOB_MAX 1024      /* TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET */

/*
 * TPM 2.0 evidence (docs/protocol.md), every member base64:
 *   ek_cert, ek_intermediate (optional): DER certificates of the EK and its issuer
 *   ak_public:   TPM2B_PUBLIC of the attestation key (restricted signing, ECC P-256)
 *   quote, quote_signature:     TPMS_ATTEST (quote of the policy's PCRs over the nonce)
 *                               and the AK's TPMT_SIGNATURE over it
 *   pcr_values:  the quoted PCR values, 32 bytes each in ascending PCR order
 *   key_public:  TPM2B_PUBLIC of the identity key (the CSR's key)
 *   certify, certify_signature: TPMS_ATTEST of TPM2_Certify(identity key, AK, nonce)
 *   secret:      the secret recovered by TPM2_ActivateCredential
 */
struct kiln_tpm2_evidence {
	kiln_buf ek_cert, ek_intermediate, ak_public, quote, quote_signature, pcr_values;
	kiln_buf key_public, certify, certify_signature, secret;
};

struct kiln_evidence {
	kiln_attest_type type; /* KILN_ATTEST_NONE when the request carried none */
	struct kiln_dice_evidence dice;
	struct kiln_tpm2_evidence tpm2;
	/*
	 * The evidence's identity, for the inventory: SHA-256 over the decoded
	 * members, each with a 4-byte big-endian length prefix (an absent
	 * deviceid_cert counts as length 0):
	 *   be32(|alias_cert|) || alias_cert || be32(|deviceid_cert|) ||
	 *   deviceid_cert || be32(|signature|) || signature
	 * All zero when the request carried no evidence.
	 */
	uint8_t sha256[32];
};

void kiln_evidence_init(struct kiln_evidence *ev);
void kiln_evidence_cleanup(struct kiln_evidence *ev);

/*
 * Parses the "evidence" member of a finish request (NULL: no evidence, type
 * KILN_ATTEST_NONE). out must have been initialised with kiln_evidence_init;
 * whatever it held is replaced on success and left unchanged on failure.
 * Unknown members, wrong types, bad base64 and oversized values are refused
 * with KILN_ERR_ATTEST_MALFORMED naming the member.
 */
KILN_MUST_USE kiln_result kiln_evidence_parse(const struct json_t *obj, struct kiln_evidence *out,
					      kiln_diag *d);

/* What the evidence is checked against. */
struct kiln_attest_ctx {
	const kiln_policy *policy;
	const uint8_t *nonce;       /* KILN_NONCE_LEN bytes issued by provision/begin */
	kiln_slice csr_der;         /* the exact CSR DER the request carries */
	const EVP_PKEY *csr_key;    /* its key, already parsed */
	const char *device_serial;  /* the serial the device claims */
	int64_t now;                /* validity time of vendor certificates; 0: the current time */
	/* tpm2: the activation binding stored for this nonce (NULL: none was made) */
	const uint8_t *activation_sha256;
};

struct kiln_attest_result {
	kiln_attest_type type;
	char firmware_version[64];  /* the policy's name for the approved digest */
	uint8_t firmware_sha256[32];
	bool has_firmware;
};

/*
 * Verifies evidence against the policy's attestation section:
 *   none: only for test policies; evidence, if any, is ignored.
 *   dice: the Alias certificate is signed by the CSR's key (the CSR key is
 *         the DeviceID key), carries a DiceTcbInfo whose SHA-256 FWID is one
 *         of the policy's approved firmware digests, and its key signed the
 *         binding of nonce, CSR and serial; where the policy names
 *         vendor_roots, the DeviceID certificate chains to one of them and
 *         certifies the CSR's key.
 * Each failure has its own code and one precise line.
 */
KILN_MUST_USE kiln_result kiln_attest_verify(const struct kiln_evidence *ev,
					     const struct kiln_attest_ctx *ctx,
					     struct kiln_attest_result *res, kiln_diag *d);

/* ------------------------------------------------ TPM 2.0 credential activation */

struct kiln_tpm2_activation_req {
	kiln_slice ek_cert;         /* DER */
	kiln_slice ek_intermediate; /* DER, may be empty */
	kiln_slice ak_public;       /* TPM2B_PUBLIC */
};

struct kiln_tpm2_activation {
	kiln_buf credential;        /* TPM2B_ID_OBJECT, marshaled */
	kiln_buf encrypted_secret;  /* TPM2B_ENCRYPTED_SECRET, marshaled */
	/*
	 * What the store keeps for the nonce (the secret itself is never stored):
	 * SHA-256("KILN-TPM2-ACTIVATION-V1" 0x00 || secret || be16(|AK name|) ||
	 * AK name || SHA-256(EK certificate DER)).
	 */
	uint8_t binding_sha256[32];
};

void kiln_tpm2_activation_init(struct kiln_tpm2_activation *a);
void kiln_tpm2_activation_cleanup(struct kiln_tpm2_activation *a);

/*
 * The server's half of TPM2_MakeCredential: checks that the EK certificate
 * chains to one of the policy's ek_roots (at now; 0: the current time) and
 * that the AK is a restricted signing key fixed to its TPM, draws a random
 * secret and wraps it to the EK for the AK's name (TCG Part 1, 24: seed
 * RSA-OAEP encrypted to the EK, KDFa, AES-128-CFB, HMAC-SHA256). Only the
 * TPM holding both keys can recover the secret with TPM2_ActivateCredential.
 */
KILN_MUST_USE kiln_result kiln_tpm2_activation_make(const kiln_policy *p,
						    const struct kiln_tpm2_activation_req *req,
						    int64_t now, struct kiln_tpm2_activation *out,
						    kiln_diag *d);

/*
 * Adds a policy's PEM trust anchors pems[0..n) to store (each one an anchor:
 * a policy may pin an intermediate). field names them in the error
 * ("vendor_roots", "ek_roots", "est.bootstrap_roots"): KILN_ERR_CONFIG for
 * one that is not a readable PEM certificate.
 */
KILN_MUST_USE kiln_result kiln_attest_load_roots(const kiln_policy *p, char *const *pems, size_t n,
						 const char *field, X509_STORE *store,
						 kiln_diag *d);

/* The same, with the seed and secret given (for tests against known answers). */
KILN_MUST_USE kiln_result kiln_tpm2_make_credential(const EVP_PKEY *ek, kiln_slice ak_name,
						    const uint8_t seed[32],
						    const uint8_t secret[KILN_TPM2_SECRET_LEN],
						    kiln_buf *credential, kiln_buf *encrypted_secret);

#endif /* KILN_ATTEST_H */
