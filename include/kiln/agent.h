/*
 * kiln agent: the device-side library. A root of trust holds the device's
 * identity key and produces evidence about itself; the client speaks the
 * provisioning protocol (docs/protocol.md) to kiln serve over mutual TLS.
 *
 * Roots of trust: "dice" (a DICE device simulator: a Unique Device Secret and
 * measured boot images in a state directory; keys derived at each boot,
 * never stored), later "tpm" (TPM 2.0 through tss2-esys) and "pkcs11"
 * (a secure element).
 *
 * Depends on core, crypto, libcurl (and tss2 for "tpm"). No server code.
 * A kiln_rot is used by one thread at a time; kiln_client is thread-safe to
 * create per thread (each holds its own curl handle).
 */
#ifndef KILN_AGENT_H
#define KILN_AGENT_H

#include "core/core.h"

#include <openssl/evp.h>

struct json_t;

/* ------------------------------------------------------------ roots of trust */

typedef struct kiln_rot kiln_rot;

#define KILN_DEVICE_SERIAL_MAX 64

struct kiln_dice_sim_opts {
	const char *serial;           /* device serial; NULL: "SIM-" + 12 hex digits of the UDS hash */
	kiln_slice firmware;          /* the firmware image; empty: the built-in default image */
	const char *firmware_version; /* NULL: "1.0.0" */
	kiln_slice l0_image;          /* first mutable code; empty: the built-in default */
	const char *vendor_ca_cert;   /* PEM file: a silicon-vendor CA that endorses DeviceID (optional) */
	const char *vendor_ca_key;    /* PEM file: that CA's private key (a test fixture's) */
	const char *soc_id, *pcb_serial, *se_serial; /* components; NULL: derived from the UDS */
};

/*
 * Creates a simulated DICE device in state_dir (created, mode 0700): a random
 * 32-byte UDS (mode 0600), the L0 and firmware images, its metadata, and,
 * with a vendor CA, the DeviceID certificate that CA endorses.
 * KILN_ERR_EXISTS when state_dir already holds a device.
 */
KILN_MUST_USE kiln_result kiln_rot_dice_create(const char *state_dir,
					       const struct kiln_dice_sim_opts *o, kiln_diag *d);
/*
 * Replaces the firmware image of a simulated device (a firmware update, or
 * for tests a tampered image); the next boot measures it.
 */
KILN_MUST_USE kiln_result kiln_rot_dice_install(const char *state_dir, kiln_slice firmware,
						const char *version, kiln_diag *d);

struct kiln_tpm_opts {
	const char *serial;          /* NULL: "TPM-" + 12 hex digits of SHA-256(EK certificate) */
	const char *ek_intermediate; /* PEM or DER file: the CA that issued the EK certificate */
	const char *tamper_stage;    /* measure this boot stage tampered (tests): firmware,
					option-rom, bootloader or secure-boot-policy */
};

/*
 * Creates a TPM 2.0 device in state_dir on the TPM named by KILN_TPM_TCTI (or
 * TPM2TOOLS_TCTI, TSS2_TCTI): reads the EK certificate (NV 0x01c00002),
 * simulates a measured boot (PCRs 0, 2, 4 and 7 extended with the SHA-256 of
 * each boot stage), creates the identity key inside the TPM and keeps its
 * public and TPM-wrapped private parts in state_dir.
 */
KILN_MUST_USE kiln_result kiln_rot_tpm_create(const char *state_dir, const struct kiln_tpm_opts *o,
					      kiln_diag *d);

/* Boots the device in state_dir (whatever its root of trust). Caller frees. */
KILN_MUST_USE kiln_result kiln_rot_open(const char *state_dir, kiln_rot **out, kiln_diag *d);
void kiln_rot_free(kiln_rot *rot);

const char *kiln_rot_type(const kiln_rot *rot);   /* "dice" */
const char *kiln_rot_serial(const kiln_rot *rot);
/* The identity key's public half (borrowed, valid until kiln_rot_free). */
const EVP_PKEY *kiln_rot_public_key(const kiln_rot *rot);

/* {"serial", "firmware_version", "components": {"soc", "pcb", "se"}} for the finish request. */
KILN_MUST_USE kiln_result kiln_rot_device_info(const kiln_rot *rot, struct json_t **out);
/* A PKCS#10 request for the identity key, signed inside the root of trust (DER). */
KILN_MUST_USE kiln_result kiln_rot_csr(kiln_rot *rot, kiln_buf *der, kiln_diag *d);
/* The "evidence" object of the finish request for this nonce and CSR. */
KILN_MUST_USE kiln_result kiln_rot_evidence(kiln_rot *rot, const uint8_t nonce[32],
					    kiln_slice csr_der, struct json_t **out,
					    kiln_diag *d);

/*
 * Credential activation (tpm): whether the root of trust needs it, the
 * members of the provision/activate request (EK certificate, AK public
 * area), and the answer handled inside the TPM (ActivateCredential).
 */
bool kiln_rot_needs_activation(const kiln_rot *rot);
KILN_MUST_USE kiln_result kiln_rot_activation_request(kiln_rot *rot, struct json_t **out,
						      kiln_diag *d);
KILN_MUST_USE kiln_result kiln_rot_activate(kiln_rot *rot, const struct json_t *resp,
					    kiln_diag *d);

/*
 * Faults a simulator can inject, for the tests of what kiln refuses:
 *   "alias-wrong-signer"  the Alias certificate is signed by a key other than DeviceID
 *   "binding-wrong-key"   the binding is signed by a key other than the Alias key
 *   "csr-other-key"       the CSR is for a key other than DeviceID
 *   "binding-other-nonce" the binding covers another nonce
 * and the TPM device:
 *   "quote-other-nonce"   the quote is made over another nonce (a replay)
 *   "ak-other-tpm"        the EK certificate presented is that of the TPM at
 *                         KILN_TPM_OTHER_TCTI, the AK is in this one: activation
 *                         fails and the device guesses the secret
 *   "key-not-fixedtpm"    the identity key is a duplicable one (no fixedTPM)
 *   "csr-other-key"       the CSR is for a software key, not the certified one
 *   "truncate:MEMBER", "oversize:MEMBER"  damage one evidence member's bytes
 * KILN_ERR_ARG for an unknown fault or a root of trust that cannot inject it.
 */
KILN_MUST_USE kiln_result kiln_rot_inject(kiln_rot *rot, const char *fault);

/* ------------------------------------------------------------ client */

typedef struct kiln_client kiln_client;

struct kiln_client_opts {
	const char *url;      /* "https://127.0.0.1:8443" */
	const char *cert;     /* PEM client certificate (station identity) */
	const char *key;      /* PEM private key */
	const char *ca;       /* PEM trust anchors for the server (the service chain) */
	long timeout_ms;      /* 0: 30000 */
};

KILN_MUST_USE kiln_result kiln_client_new(const struct kiln_client_opts *o, kiln_client **out,
					  kiln_diag *d);
void kiln_client_free(kiln_client *c);

/*
 * One JSON request. *status receives the HTTP status; *resp (caller
 * json_decref) the parsed JSON body, a result or an RFC 9457 problem.
 * Transport failures are errors; HTTP error statuses are not.
 */
KILN_MUST_USE kiln_result kiln_client_call(kiln_client *c, const char *method, const char *path,
					   const struct json_t *body, long *status,
					   struct json_t **resp, kiln_diag *d);

struct kiln_provision_outcome {
	char cert_serial[41];
	long status;          /* HTTP status of the last call */
	bool resumed;         /* a pending finish from an earlier run was resent */
	bool already;         /* the device held a certificate already; nothing sent */
	kiln_buf chain_pem;
};

void kiln_provision_outcome_init(struct kiln_provision_outcome *o);
void kiln_provision_outcome_cleanup(struct kiln_provision_outcome *o);

/*
 * Provisions the device in state_dir into batch lot (of product, when not
 * NULL: a lot of another product is refused before anything is sent):
 * begin, evidence and CSR, finish. The finish asks for the station's next
 * nonce, which c keeps: the next device of the same lot provisioned through
 * c skips begin (docs/protocol.md). The finish request is saved in state_dir before it is sent,
 * so a device that lost the response resends the identical request (kiln
 * answers it with the same certificate); the chain is saved as
 * state_dir/cert.pem on success. A refusal is KILN_ERR_* from the problem's
 * type with its detail in d.
 */
KILN_MUST_USE kiln_result kiln_agent_provision(kiln_client *c, kiln_rot *rot,
					       const char *state_dir, const char *product,
					       const char *lot, struct kiln_provision_outcome *out,
					       kiln_diag *d);

/*
 * The finish request body for a nonce (docs/protocol.md) without sending it:
 * CSR, device information and, unless attestation is "none", evidence.
 * For protocol debugging and tests. Caller json_decref.
 */
KILN_MUST_USE kiln_result kiln_agent_finish_body(kiln_rot *rot, const uint8_t nonce[32],
						 const char *attestation, struct json_t **out,
						 kiln_diag *d);

#endif /* KILN_AGENT_H */
