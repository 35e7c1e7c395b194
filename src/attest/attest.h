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

struct kiln_evidence {
	kiln_attest_type type; /* KILN_ATTEST_NONE when the request carried none */
	struct kiln_dice_evidence dice;
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

#endif /* KILN_ATTEST_H */
