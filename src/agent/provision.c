/*
 * The device's side of the provisioning protocol (docs/protocol.md):
 * begin, then evidence and CSR from the root of trust, then finish. A
 * finish asks for the station's next nonce, which the next device uses
 * instead of a begin (one round trip per device on a busy line). The
 * finish request is written to state_dir/pending.json before it is sent: a
 * device that lost the response (a crash, a cut cable, a killed server)
 * sends the very same request again and kiln answers it with the same
 * certificate. A definitive refusal removes it; a lost connection or a
 * server error keeps it.
 */
#include "agent_impl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STATE_FILE_MAX (256u * 1024)

static kiln_result state_path(const char *dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	KILN_ENSURE(n > 0 && (size_t)n < cap, KILN_ERR_TOO_BIG);
	return kiln_ok();
}

/* A problem response as a kiln error: the type's slug back to its code, detail to d. */
static kiln_result problem(long status, const json_t *resp, const char *what, kiln_diag *d)
{
	const char *type = json_string_value(json_object_get(resp, "type"));
	const char *detail = json_string_value(json_object_get(resp, "detail"));
	static const char prefix[] = "urn:kiln:problem:";
	kiln_err code = KILN_ERR_INTERNAL;

	if (type != NULL && strncmp(type, prefix, sizeof(prefix) - 1) == 0)
		code = kiln_err_from_slug(type + sizeof(prefix) - 1);
	if (code == KILN_ERR_INTERNAL && status >= 400 && status < 500)
		code = KILN_ERR_ARG;
	return kiln_diag_set(d, code, "%s refused (HTTP %ld): %s", what, status,
			     detail != NULL ? detail : "no detail");
}

static kiln_result save_cert(const char *dir, const json_t *resp, struct kiln_provision_outcome *out,
			     kiln_diag *d)
{
	const char *chain = json_string_value(json_object_get(resp, "certificate"));
	const char *serial = json_string_value(json_object_get(resp, "serial"));
	char path[4096];

	if (chain == NULL || serial == NULL)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "the finish response lacks the certificate");
	KILN_GUARD(kiln_strlcpy(out->cert_serial, serial, sizeof(out->cert_serial)));
	kiln_buf_reset(&out->chain_pem);
	KILN_GUARD(kiln_buf_append_str(&out->chain_pem, chain));
	KILN_GUARD(state_path(dir, "cert.pem", path, sizeof(path)));
	return kiln_file_write(path, kiln_buf_view(&out->chain_pem), 0644, d);
}

/* Sends a saved or new finish body (its JSON text); success writes cert.pem and drops pending.json. */
static kiln_result finish(kiln_client *c, const char *dir, const char *body,
			  struct kiln_provision_outcome *out, kiln_diag *d)
{
	char pending[4096];
	json_t *resp = NULL;
	kiln_result r;

	KILN_GUARD(state_path(dir, "pending.json", pending, sizeof(pending)));
	KILN_TRY(r, kiln_client_call_text(c, "POST", "/v1/provision/finish", body, &out->status,
					  &resp, d));
	if (out->status == 200 || out->status == 201) {
		KILN_TRY(r, save_cert(dir, resp, out, d));
		(void)unlink(pending);
		/* The station's next nonce: the next device skips begin. */
		if (json_is_object(json_object_get(resp, "next")))
			kiln_client_next_keep(c, json_incref(json_object_get(resp, "next")));
	} else {
		r = problem(out->status, resp, "provision/finish", d);
		/*
		 * A refusal (4xx) is final for this request: the next attempt starts
		 * afresh. A server that failed (5xx) or still asks us to wait (429)
		 * may have committed it: keep it, resending is always safe.
		 */
		if (out->status < 500 && out->status != 429)
			(void)unlink(pending);
	}
out:
	json_decref(resp);
	return r;
}

/* A begin answer (or a finish answer's "next"): the nonce, for a lot of product (NULL: any). */
static kiln_result nonce_of(const json_t *ans, const char *product, const char *lot,
			    kiln_buf *nonce, kiln_diag *d)
{
	const char *lot_product = json_string_value(json_object_get(ans, "product"));
	const char *b64 = json_string_value(json_object_get(ans, "nonce"));

	if (product != NULL && (lot_product == NULL || strcmp(product, lot_product) != 0))
		return kiln_diag_set(d, KILN_ERR_ARG, "lot %s is for product %s, not %s", lot,
				     lot_product != NULL ? lot_product : "?", product);
	kiln_buf_reset(nonce);
	if (b64 == NULL || !kiln_is_ok(kiln_base64_decode(kiln_slice_str(b64), nonce)) ||
	    nonce->len != 32)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "the begin response carries no valid nonce");
	return kiln_ok();
}

static kiln_result begin(kiln_client *c, const char *product, const char *lot, kiln_buf *nonce,
			 json_t **info, struct kiln_provision_outcome *out, kiln_diag *d)
{
	json_t *body = json_pack("{s:s}", "lot", lot), *resp = NULL;
	kiln_result r;

	KILN_ENSURE(body != NULL, KILN_ERR_NOMEM);
	KILN_TRY(r, kiln_client_call(c, "POST", "/v1/provision/begin", body, &out->status, &resp, d));
	if (out->status != 200) {
		r = problem(out->status, resp, "provision/begin", d);
		goto out;
	}
	KILN_TRY(r, nonce_of(resp, product, lot, nonce, d));
	*info = json_incref(resp);
out:
	json_decref(body);
	json_decref(resp);
	return r;
}

static kiln_result finish_body(kiln_rot *rot, const kiln_buf *nonce, const char *attestation,
			       json_t **out, kiln_diag *d);

kiln_result kiln_agent_finish_body(kiln_rot *rot, const uint8_t nonce[32], const char *attestation,
				   json_t **out, kiln_diag *d)
{
	kiln_buf n;
	kiln_result r;

	kiln_buf_init(&n, 32);
	r = kiln_buf_append(&n, nonce, 32);
	if (kiln_is_ok(r))
		r = finish_body(rot, &n, attestation, out, d);
	kiln_buf_cleanup(&n);
	return r;
}

/* The finish body: nonce, CSR, device, evidence (when the policy asks for it). */
static kiln_result finish_body(kiln_rot *rot, const kiln_buf *nonce, const char *attestation,
			       json_t **out, kiln_diag *d)
{
	kiln_buf csr, csr_b64, nonce_b64;
	json_t *device = NULL, *evidence = NULL;
	kiln_result r;

	*out = NULL;
	kiln_buf_init(&csr, 65536);
	kiln_buf_init(&csr_b64, 131072);
	kiln_buf_init(&nonce_b64, 64);
	KILN_TRY(r, kiln_rot_csr(rot, &csr, d));
	KILN_TRY(r, kiln_base64_encode(kiln_buf_view(&csr), &csr_b64));
	KILN_TRY(r, kiln_base64_encode(kiln_buf_view(nonce), &nonce_b64));
	KILN_TRY(r, kiln_rot_device_info(rot, &device));
	if (attestation != NULL && strcmp(attestation, "none") != 0)
		KILN_TRY(r, kiln_rot_evidence(rot, nonce->ptr, kiln_buf_view(&csr), &evidence, d));
	*out = json_pack("{s:s,s:s,s:O}", "nonce", kiln_buf_cstr(&nonce_b64), "csr",
			 kiln_buf_cstr(&csr_b64), "device", device);
	if (*out != NULL && evidence != NULL && json_object_set(*out, "evidence", evidence) != 0) {
		json_decref(*out);
		*out = NULL;
	}
	r = *out != NULL ? kiln_ok() : kiln_fail(KILN_ERR_NOMEM);
out:
	json_decref(device);
	json_decref(evidence);
	kiln_buf_cleanup(&csr);
	kiln_buf_cleanup(&csr_b64);
	kiln_buf_cleanup(&nonce_b64);
	return r;
}

/* The pending request from an earlier run, if any (*found false when none), checked to be JSON. */
static kiln_result load_pending(const char *path, kiln_buf *text, bool *found, kiln_diag *d)
{
	json_t *j = NULL;
	kiln_result r;

	*found = false;
	r = kiln_file_read(path, STATE_FILE_MAX, text, NULL);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_ok();
	KILN_GUARD(r);
	r = kiln_json_parse(kiln_buf_view(text), STATE_FILE_MAX, &j, d);
	json_decref(j);
	*found = kiln_is_ok(r);
	return r;
}

/* TPM credential activation: POST provision/activate, then ActivateCredential inside the TPM. */
static kiln_result activate(kiln_client *c, kiln_rot *rot, const kiln_buf *nonce,
			    struct kiln_provision_outcome *out, kiln_diag *d)
{
	json_t *body = NULL, *resp = NULL;
	kiln_buf b64;
	kiln_result r;

	kiln_buf_init(&b64, 64);
	KILN_TRY(r, kiln_rot_activation_request(rot, &body, d));
	KILN_TRY(r, kiln_base64_encode(kiln_buf_view(nonce), &b64));
	if (json_object_set_new(body, "nonce", json_string(kiln_buf_cstr(&b64))) != 0) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	KILN_TRY(r, kiln_client_call(c, "POST", "/v1/provision/activate", body, &out->status, &resp,
				     d));
	if (out->status != 200) {
		r = problem(out->status, resp, "provision/activate", d);
		goto out;
	}
	r = kiln_rot_activate(rot, resp, d);
out:
	json_decref(body);
	json_decref(resp);
	kiln_buf_cleanup(&b64);
	return r;
}

/*
 * One attempt: the nonce (*info: the station's next nonce, when it has one,
 * else from begin), activation when the root of trust needs it, the finish
 * body saved, then sent asking for the next nonce.
 */
static kiln_result attempt(kiln_client *c, kiln_rot *rot, const char *pending, const char *dir,
			   const char *product, const char *lot, json_t *info,
			   struct kiln_provision_outcome *out, kiln_diag *d)
{
	json_t *body = NULL;
	char *text = NULL;
	kiln_buf nonce;
	kiln_result r;

	kiln_buf_init(&nonce, 64);
	if (info != NULL)
		KILN_TRY(r, nonce_of(info, product, lot, &nonce, d));
	else
		KILN_TRY(r, begin(c, product, lot, &nonce, &info, out, d));
	if (kiln_rot_needs_activation(rot))
		KILN_TRY(r, activate(c, rot, &nonce, out, d));
	KILN_TRY(r, finish_body(rot, &nonce, json_string_value(json_object_get(info, "attestation")),
				&body, d));
	if (json_object_set_new(body, "next", json_true()) != 0) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	/* Saved before it is sent: the request a lost response will be asked again with. */
	KILN_TRY(r, kiln_file_write(pending, kiln_slice_str(text), 0600, d));
	r = finish(c, dir, text, out, d);
out:
	free(text);
	json_decref(info);
	json_decref(body);
	kiln_buf_cleanup(&nonce);
	return r;
}

static kiln_result fresh(kiln_client *c, kiln_rot *rot, const char *dir, const char *product,
			 const char *lot, struct kiln_provision_outcome *out, kiln_diag *d)
{
	char pending[4096];
	json_t *next = kiln_client_next_take(c, lot);
	kiln_diag first;
	kiln_result r;

	r = state_path(dir, "pending.json", pending, sizeof(pending));
	if (!kiln_is_ok(r)) {
		json_decref(next);
		return r;
	}
	if (next == NULL)
		return attempt(c, rot, pending, dir, product, lot, NULL, out, d);
	/*
	 * A next nonce the server no longer honours (expired on the way, or the
	 * lot's state changed) issued nothing: begin and try once more.
	 */
	kiln_diag_clear(&first);
	r = attempt(c, rot, pending, dir, product, lot, next, out, &first);
	if (r.code != KILN_ERR_NONCE_EXPIRED && r.code != KILN_ERR_NONCE_UNKNOWN) {
		if (!kiln_is_ok(r))
			return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&first, r));
		return r;
	}
	return attempt(c, rot, pending, dir, product, lot, NULL, out, d);
}

kiln_result kiln_agent_provision(kiln_client *c, kiln_rot *rot, const char *state_dir,
				 const char *product, const char *lot,
				 struct kiln_provision_outcome *out, kiln_diag *d)
{
	char path[4096];
	kiln_buf pending;
	bool found = false;
	kiln_diag first;
	kiln_result r;

	KILN_GUARD(state_path(state_dir, "cert.pem", path, sizeof(path)));
	if (access(path, F_OK) == 0) {
		out->already = true;
		return kiln_ok();
	}
	KILN_GUARD(state_path(state_dir, "pending.json", path, sizeof(path)));
	r = load_pending(path, &pending, &found, d); /* initialises pending on every path */
	if (!kiln_is_ok(r) || !found)
		kiln_buf_cleanup(&pending);
	KILN_GUARD(r);
	if (found) {
		out->resumed = true;
		kiln_diag_clear(&first);
		r = finish(c, state_dir, kiln_buf_cstr(&pending), out, &first);
		kiln_buf_cleanup(&pending);
		/* An expired or unknown nonce never issued anything: start again. */
		if (r.code != KILN_ERR_NONCE_EXPIRED && r.code != KILN_ERR_NONCE_UNKNOWN) {
			if (!kiln_is_ok(r))
				return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&first, r));
			return r;
		}
	}
	return fresh(c, rot, state_dir, product, lot, out, d);
}
