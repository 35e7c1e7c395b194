/*
 * The one error table. Messages say what happened and what to do; the slug is
 * stable API (problem types, JSON output), so never rename one.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

static const struct kiln_err_info table[KILN_ERR__COUNT] = {
	[KILN_OK] = { "ok", 200, "success" },
	[KILN_ERR_NOMEM] = { "out-of-memory", 503, "out of memory; retry, or give kiln more memory" },
	[KILN_ERR_INTERNAL] = { "internal", 500, "internal error; this is a bug in kiln, please report it" },
	[KILN_ERR_ARG] = { "bad-argument", 400, "invalid argument" },
	[KILN_ERR_TOO_BIG] = { "too-big", 413, "input exceeds its size limit" },
	[KILN_ERR_TRUNCATED] = { "truncated", 400, "input ends before its declared length" },
	[KILN_ERR_MALFORMED] = { "malformed", 400, "input is malformed" },
	[KILN_ERR_OVERFLOW] = { "overflow", 400, "a length or count in the input overflows" },
	[KILN_ERR_IO] = { "io", 500, "I/O error; check the path, its permissions and free space" },
	[KILN_ERR_NOT_FOUND] = { "not-found", 404, "not found" },
	[KILN_ERR_EXISTS] = { "exists", 409, "already exists" },
	[KILN_ERR_CONFIG] = { "config", 500, "invalid configuration; check kiln.yaml" },
	[KILN_ERR_USAGE] = { "usage", 400, "invalid usage; see --help" },
	[KILN_ERR_HSM_MODULE] = { "hsm-module", 503,
		"the PKCS#11 module could not be loaded; check hsm.module in kiln.yaml" },
	[KILN_ERR_HSM_TOKEN_MISSING] = { "hsm-token-missing", 503,
		"no token with that label; check the HSM configuration or run kiln init" },
	[KILN_ERR_HSM_TOKEN_GONE] = { "hsm-token-gone", 503,
		"the HSM token is no longer present; reconnect it and retry" },
	[KILN_ERR_HSM_PIN] = { "hsm-pin", 503, "HSM login failed: wrong PIN; check the token's PIN file" },
	[KILN_ERR_HSM_KEY_MISSING] = { "hsm-key-missing", 503,
		"the key is not in the HSM token; check the token and the CA records" },
	[KILN_ERR_HSM] = { "hsm", 503, "the HSM refused the operation" },
	[KILN_ERR_CSR_EMPTY] = { "csr-empty", 400, "the CSR is empty" },
	[KILN_ERR_CSR_TOO_BIG] = { "csr-too-big", 413, "the CSR exceeds 64 KiB" },
	[KILN_ERR_CSR_MALFORMED] = { "csr-malformed", 400,
		"the CSR is not a valid PKCS#10 request (DER or PEM)" },
	[KILN_ERR_CSR_SIGNATURE] = { "csr-signature", 400,
		"the CSR signature does not verify: it was not signed by the key it carries" },
	[KILN_ERR_CRYPTO] = { "crypto", 500, "a cryptographic operation failed" },
	[KILN_ERR_POLICY_SYNTAX] = { "policy-syntax", 400, "the policy file is not valid YAML" },
	[KILN_ERR_POLICY_SCHEMA] = { "policy-schema", 400, "the policy file does not match the schema" },
	[KILN_ERR_POLICY_KEY_ALG] = { "key-algorithm", 403,
		"the key algorithm or size is not allowed by the product policy" },
	[KILN_ERR_POLICY_SUBJECT] = { "subject-forbidden", 403,
		"the request's subject holds fields the product policy forbids" },
	[KILN_ERR_POLICY_SERIAL] = { "device-serial", 400,
		"the device serial does not match the product policy" },
	[KILN_ERR_POLICY_ENV] = { "environment", 403,
		"production and test are strictly apart: this CA cannot issue for this product" },
	[KILN_ERR_UNKNOWN_PRODUCT] = { "unknown-product", 404,
		"no active policy for this product; add one with kiln policy add" },
	[KILN_ERR_POLICY_CHANGED] = { "policy-changed", 409,
		"the product's active policy changed while the request was processed; retry" },
	[KILN_ERR_STORE] = { "store", 500, "the inventory database failed; check its file and free space" },
	[KILN_ERR_STORE_BUSY] = { "store-busy", 503, "the inventory database is busy; retry" },
	[KILN_ERR_STORE_SCHEMA] = { "store-schema", 500,
		"the inventory schema is newer than this kiln; upgrade kiln" },
	[KILN_ERR_DUPLICATE] = { "duplicate", 409, "a record with that identity already exists" },
	[KILN_ERR_ATTEST_REQUIRED] = { "attestation-required", 403,
		"the product policy requires device attestation: provision through kiln serve" },
	[KILN_ERR_ATTEST_MALFORMED] = { "evidence-malformed", 400, "the attestation evidence is malformed" },
	[KILN_ERR_ATTEST_FIRMWARE] = { "firmware-not-approved", 403,
		"the device runs firmware the product policy does not approve" },
	[KILN_ERR_ATTEST_CHAIN] = { "evidence-chain", 403,
		"the attestation certificate chain does not verify" },
	[KILN_ERR_ATTEST_KEY] = { "evidence-key-mismatch", 403,
		"the CSR's key is not the key the evidence attests" },
	[KILN_ERR_ATTEST_SIGNATURE] = { "evidence-signature", 403,
		"the evidence's signature over the nonce does not verify" },
	[KILN_ERR_ATTEST_VENDOR] = { "vendor-endorsement", 403,
		"the device identity is not endorsed by a silicon vendor CA the policy trusts" },
	[KILN_ERR_ATTEST_EK] = { "ek-untrusted", 403,
		"the TPM's endorsement key certificate does not chain to a TPM manufacturer root the policy trusts" },
	[KILN_ERR_ATTEST_ACTIVATION] = { "credential-activation", 403,
		"credential activation failed: the attestation key is not shown to live in the TPM of the endorsement key" },
	[KILN_ERR_ATTEST_NONCE] = { "evidence-nonce", 403,
		"the evidence was made for another nonce (a replay); call provision/begin again" },
	[KILN_ERR_ATTEST_PCR] = { "pcr-mismatch", 403,
		"a measured-boot PCR differs from the product policy's golden value" },
	[KILN_ERR_ATTEST_RESIDENCY] = { "key-not-resident", 403,
		"the identity key is not proven to be generated in and fixed to the TPM" },
	[KILN_ERR_NONCE_UNKNOWN] = { "nonce-unknown", 403, "the nonce was never issued; call provision/begin" },
	[KILN_ERR_NONCE_REPLAY] = { "nonce-replayed", 409,
		"the nonce was already used for another request; call provision/begin again" },
	[KILN_ERR_NONCE_EXPIRED] = { "nonce-expired", 403, "the nonce expired; call provision/begin again" },
	[KILN_ERR_NONCE_STATION] = { "nonce-station", 403, "the nonce was issued to another station" },
	[KILN_ERR_BATCH_UNKNOWN] = { "batch-unknown", 404, "no batch with that lot; open it first" },
	[KILN_ERR_BATCH_CLOSED] = { "batch-closed", 409, "the batch is closed" },
	[KILN_ERR_BATCH_QUOTA] = { "batch-quota-exceeded", 409,
		"the batch has used its planned quantity" },
	[KILN_ERR_DEVICE_DUPLICATE] = { "device-duplicate", 409,
		"a device with that serial was already provisioned" },
	[KILN_ERR_KEY_DUPLICATE] = { "key-duplicate", 409, "that public key was already certified" },
	[KILN_ERR_AUTH_REQUIRED] = { "client-certificate-required", 401,
		"a client certificate from kiln identity add is required" },
	[KILN_ERR_AUTH_UNKNOWN] = { "identity-unknown", 403,
		"the client certificate is not bound to a kiln identity" },
	[KILN_ERR_AUTH_REVOKED] = { "identity-revoked", 403, "the identity was revoked" },
	[KILN_ERR_FORBIDDEN] = { "forbidden", 403, "the identity's role may not do this" },
	[KILN_ERR_RATE_LIMITED] = { "rate-limited", 429, "too many requests from this identity; slow down" },
	[KILN_ERR_METHOD] = { "method-not-allowed", 405, "method not allowed on this resource" },
	[KILN_ERR_UNSUPPORTED_MEDIA] = { "unsupported-media-type", 415,
		"the request body must be application/json" },
	[KILN_ERR_TIMEOUT] = { "timeout", 408, "the request took too long to arrive" },
	[KILN_ERR_LOG_RANGE] = { "log-range", 400,
		"index or tree size outside the log; ask for a size the log has checkpointed" },
	[KILN_ERR_LOG_PROOF] = { "log-proof", 422,
		"the Merkle proof does not lead to the root it should; the log or the proof was altered" },
	[KILN_ERR_LOG_SIGNATURE] = { "log-signature", 422,
		"a checkpoint's signature does not verify with the log's public key" },
	[KILN_ERR_LOG_TAMPERED] = { "log-tampered", 500,
		"the event log does not match its signed checkpoints: it was modified" },
	[KILN_ERR_CERT_UNTRUSTED] = { "certificate-untrusted", 403,
		"the certificate was not issued by a kiln production or test issuing CA" },
	[KILN_ERR_CERT_EXPIRED] = { "certificate-expired", 403,
		"the certificate has expired (or is not yet valid): re-provision the device" },
	[KILN_ERR_CERT_REVOKED] = { "certificate-revoked", 403,
		"the certificate was revoked: a revoked identity cannot be renewed" },
	[KILN_ERR_RENEWAL_SUBJECT] = { "renewal-subject", 403,
		"a renewal must request the subject of the certificate being renewed" },
	[KILN_ERR_RENEWAL_WINDOW] = { "renewal-window", 403,
		"the certificate is not yet in the renewal window of the product policy" },
	[KILN_ERR_RENEWAL_KEY] = { "renewal-new-key-required", 403,
		"the product policy requires a new key at each renewal" },
	[KILN_ERR_RENEWAL_FIRMWARE] = { "renewal-reattest", 403,
		"the device's attested firmware is below the policy's minimum: re-attest "
		"(kiln device reprovision, then provision/begin and finish)" },
	[KILN_ERR_DEVICE_RETIRED] = { "device-retired", 409, "the device is retired" },
	[KILN_ERR_ENROLL_FORBIDDEN] = { "enroll-forbidden", 403,
		"the product policy does not allow EST enrollment of new identities this way" },
	[KILN_ERR_ALREADY_REVOKED] = { "already-revoked", 409,
		"the certificate was already revoked; a revocation is final" },
	[KILN_ERR_REQUEST_UNKNOWN] = { "request-unknown", 404,
		"no such approval request; list them with kiln request list" },
	[KILN_ERR_REQUEST_EXPIRED] = { "request-expired", 409,
		"the approval request expired; make a new request" },
	[KILN_ERR_REQUEST_EXECUTED] = { "request-executed", 409,
		"the approval request was already carried out" },
	[KILN_ERR_REQUEST_MISMATCH] = { "request-mismatch", 409,
		"the approval request is for another operation or other parameters" },
	[KILN_ERR_APPROVALS_MISSING] = { "approvals-missing", 409,
		"the request does not have its officer approvals yet; see kiln request show" },
	[KILN_ERR_APPROVAL_SIGNATURE] = { "approval-signature", 400,
		"the approval signature does not verify over the request digest" },
	[KILN_ERR_APPROVAL_SELF] = { "approval-self", 403,
		"the requester's own approval does not count; another officer must approve" },
	[KILN_ERR_APPROVAL_DUPLICATE] = { "approval-duplicate", 409,
		"this officer has already approved the request" },
	[KILN_ERR_APPROVAL_ROLE] = { "approval-role", 403,
		"only an active officer identity may approve requests" },
	[KILN_ERR_DECRYPT] = { "decrypt-failed", 400,
		"authenticated decryption failed: the data or its header was altered, or another "
		"key encrypted it" },
	[KILN_ERR_BACKUP_FORMAT] = { "backup-format", 400,
		"not a kiln backup of a version this kiln reads, or a truncated one" },
	[KILN_ERR_BACKUP_MISMATCH] = { "backup-mismatch", 409,
		"the backup is not the one approved, or belongs to another deployment" },
	[KILN_ERR_BUSY] = { "busy", 409,
		"the deployment is in use (kiln serve is running); stop it and try again" },
};

const struct kiln_err_info *kiln_err_info(kiln_err code)
{
	if ((unsigned)code >= KILN_ERR__COUNT || table[code].slug == NULL)
		return &table[KILN_ERR_INTERNAL];
	return &table[code];
}

kiln_err kiln_err_from_slug(const char *slug)
{
	for (int i = 1; slug != NULL && i < KILN_ERR__COUNT; i++) {
		if (table[i].slug != NULL && strcmp(table[i].slug, slug) == 0)
			return (kiln_err)i;
	}
	return KILN_ERR_INTERNAL;
}

void kiln_diag_clear(kiln_diag *d)
{
	if (d == NULL)
		return;
	d->code = KILN_OK;
	d->text[0] = '\0';
}

kiln_result kiln_diag_set(kiln_diag *d, kiln_err code, const char *fmt, ...)
{
	if (d != NULL && d->code == KILN_OK) {
		va_list ap;

		d->code = code;
		va_start(ap, fmt);
		(void)vsnprintf(d->text, sizeof(d->text), fmt, ap);
		va_end(ap);
		/* One line, whatever the arguments held (paths, names, values from outside). */
		for (char *p = d->text; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		}
	}
	return kiln_fail(code);
}

const char *kiln_diag_message(const kiln_diag *d, kiln_result r)
{
	if (d != NULL && d->code != KILN_OK && d->text[0] != '\0')
		return d->text;
	return kiln_err_info(r.code)->message;
}
