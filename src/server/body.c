/*
 * JSON request bodies. The body is parsed with core's capped parser (size,
 * depth, duplicate keys), then walked against a fixed list of members.
 */
#include "body.h"

#include <jansson.h>
#include <string.h>

struct member {
	const char *name;
	bool required;
};

/* Every member of obj is one of the known ones; the required ones are there. */
static kiln_result check_members(const json_t *obj, const char *what, const struct member *m,
				 size_t n, kiln_diag *d)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "%s must be a JSON object", what);
	json_object_foreach((json_t *)obj, key, v) {
		bool known = false;

		for (size_t i = 0; i < n && !known; i++)
			known = strcmp(m[i].name, key) == 0;
		if (!known) {
			char shown[40];

			kiln_strtrunc(shown, key, sizeof(shown));
			for (char *p = shown; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					*p = '?';
			return kiln_diag_set(d, KILN_ERR_MALFORMED, "%s has an unknown member \"%s\"",
					     what, shown);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].required && json_object_get(obj, m[i].name) == NULL)
			return kiln_diag_set(d, KILN_ERR_MALFORMED, "%s lacks the member \"%s\"", what,
					     m[i].name);
	}
	return kiln_ok();
}

/* A printable-ASCII string member into out (at most cap - 1 bytes). */
static kiln_result get_name(const json_t *obj, const char *key, bool required, char *out,
			    size_t cap, kiln_diag *d)
{
	const char *s = NULL;

	out[0] = '\0';
	KILN_GUARD(kiln_json_get_str(obj, key, cap - 1, required, &s, d));
	if (s == NULL)
		return kiln_ok();
	if (required && s[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" is empty", key);
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "member \"%s\" must be printable ASCII", key);
	}
	return kiln_strlcpy(out, s, cap);
}

static kiln_result parse(kiln_slice in, json_t **out, kiln_diag *d)
{
	return kiln_json_parse(in, KILN_BODY_MAX, out, d);
}

kiln_result body_batch_parse(kiln_slice in, struct body_batch *out, kiln_diag *d)
{
	static const struct member m[] = { { "product", true }, { "lot", true }, { "quantity", true },
					   { "line", false },   { "station", false } };
	json_t *j = NULL, *q;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the batch", m, 5, d));
	KILN_TRY(r, get_name(j, "product", true, out->product, sizeof(out->product), d));
	KILN_TRY(r, get_name(j, "lot", true, out->lot, sizeof(out->lot), d));
	KILN_TRY(r, get_name(j, "line", false, out->line, sizeof(out->line), d));
	KILN_TRY(r, get_name(j, "station", false, out->station, sizeof(out->station), d));
	q = json_object_get(j, "quantity");
	if (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > 1000000000) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED,
				  "member \"quantity\" must be an integer from 1 to 1000000000");
		goto out;
	}
	out->quantity = json_integer_value(q);
out:
	json_decref(j);
	return r;
}

static kiln_result get_time(const json_t *obj, const char *key, int64_t *out, kiln_diag *d)
{
	const json_t *v = json_object_get(obj, key);

	*out = 0;
	if (v == NULL)
		return kiln_ok();
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 253402300799)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "member \"%s\" must be seconds since 1970 (an integer)", key);
	*out = json_integer_value(v);
	return kiln_ok();
}

kiln_result body_revocation_parse(kiln_slice in, struct body_revocation *out, kiln_diag *d)
{
	static const struct member m[] = { { "serial", false }, { "device", false },
					   { "lot", false },    { "station", false },
					   { "from", false },   { "to", false },
					   { "reason", true } };
	json_t *j = NULL;
	kiln_result r;
	int ways;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the revocation", m, 7, d));
	KILN_TRY(r, get_name(j, "serial", false, out->serial, sizeof(out->serial), d));
	KILN_TRY(r, get_name(j, "device", false, out->device, sizeof(out->device), d));
	KILN_TRY(r, get_name(j, "lot", false, out->lot, sizeof(out->lot), d));
	KILN_TRY(r, get_name(j, "station", false, out->station, sizeof(out->station), d));
	KILN_TRY(r, get_name(j, "reason", true, out->reason, sizeof(out->reason), d));
	KILN_TRY(r, get_time(j, "from", &out->from, d));
	KILN_TRY(r, get_time(j, "to", &out->to, d));
	ways = (out->serial[0] != '\0') + (out->device[0] != '\0') + (out->lot[0] != '\0') +
	       (out->station[0] != '\0');
	if (ways != 1)
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "the revocation names exactly one of "
				  "\"serial\", \"device\", \"lot\" or \"station\"");
out:
	json_decref(j);
	return r;
}

kiln_result body_begin_parse(kiln_slice in, struct body_begin *out, kiln_diag *d)
{
	static const struct member m[] = { { "lot", true } };
	json_t *j = NULL;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the request", m, 1, d));
	r = get_name(j, "lot", true, out->lot, sizeof(out->lot), d);
out:
	json_decref(j);
	return r;
}

void body_finish_init(struct body_finish *f)
{
	memset(f, 0, sizeof(*f));
	kiln_buf_init(&f->csr, KILN_CSR_MAX_BYTES);
	kiln_evidence_init(&f->evidence);
}

void body_finish_cleanup(struct body_finish *f)
{
	kiln_wipe(f->nonce, sizeof(f->nonce));
	kiln_buf_cleanup(&f->csr);
	kiln_evidence_cleanup(&f->evidence);
}

/* A base64 string member, decoded into out (whose cap bounds it). */
static kiln_result get_b64(const json_t *obj, const char *key, size_t max_text, kiln_buf *out,
			   kiln_diag *d)
{
	const char *s = NULL;
	kiln_result r;

	KILN_GUARD(kiln_json_get_str(obj, key, max_text, true, &s, d));
	r = kiln_base64_decode(kiln_slice_str(s), out);
	if (r.code == KILN_ERR_TOO_BIG)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "member \"%s\" is too large", key);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"%s\" is not valid base64", key);
	return kiln_ok();
}

static kiln_result parse_nonce(const json_t *j, uint8_t out[KILN_NONCE_LEN], kiln_diag *d)
{
	kiln_buf nonce;
	kiln_result r;

	/* Room for whatever 64 base64 characters hold: a wrong length is malformed, not too big. */
	kiln_buf_init(&nonce, 48);
	r = get_b64(j, "nonce", 64, &nonce, d);
	if (kiln_is_ok(r) && nonce.len != KILN_NONCE_LEN)
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"nonce\" must be %d bytes",
				  KILN_NONCE_LEN);
	if (kiln_is_ok(r))
		memcpy(out, nonce.ptr, KILN_NONCE_LEN);
	kiln_buf_cleanup(&nonce);
	return r;
}

static kiln_result parse_components(const json_t *c, char *out, size_t cap, kiln_diag *d)
{
	static const struct member m[] = { { "soc", false }, { "pcb", false }, { "se", false } };
	char tmp[65];
	char *text;
	kiln_result r;

	KILN_GUARD(check_members(c, "device.components", m, 3, d));
	for (size_t i = 0; i < 3; i++)
		KILN_GUARD(get_name(c, m[i].name, false, tmp, sizeof(tmp), d));
	text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	KILN_ENSURE(text != NULL, KILN_ERR_NOMEM);
	r = kiln_strlcpy(out, text, cap);
	free(text);
	return r;
}

static kiln_result parse_device(const json_t *dev, struct body_finish *out, kiln_diag *d)
{
	static const struct member m[] = { { "serial", true },
					   { "firmware_version", false },
					   { "components", false } };
	const json_t *c;

	KILN_GUARD(check_members(dev, "device", m, 3, d));
	KILN_GUARD(get_name(dev, "serial", true, out->serial, sizeof(out->serial), d));
	if (out->serial[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"device.serial\" is empty");
	KILN_GUARD(get_name(dev, "firmware_version", false, out->firmware_version,
			    sizeof(out->firmware_version), d));
	c = json_object_get(dev, "components");
	if (c != NULL)
		KILN_GUARD(parse_components(c, out->components_json, sizeof(out->components_json), d));
	return kiln_ok();
}

kiln_result body_finish_parse(kiln_slice in, struct body_finish *out, kiln_diag *d)
{
	static const struct member m[] = { { "nonce", true },	 { "csr", true },
					   { "device", true },	 { "evidence", false },
					   { "next", false } };
	json_t *j = NULL, *next;
	kiln_result r;

	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the request", m, 5, d));
	next = json_object_get(j, "next");
	if (next != NULL && !json_is_boolean(next)) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"next\" must be true or false");
		goto out;
	}
	out->next = json_is_true(next);
	KILN_TRY(r, parse_nonce(j, out->nonce, d));
	KILN_TRY(r, get_b64(j, "csr", KILN_BODY_MAX, &out->csr, d));
	KILN_TRY(r, parse_device(json_object_get(j, "device"), out, d));
	r = kiln_evidence_parse(json_object_get(j, "evidence"), &out->evidence, d);
out:
	json_decref(j);
	return r;
}

kiln_result body_approval_parse(kiln_slice in, struct body_approval *out, kiln_diag *d)
{
	static const struct member m[] = { { "signature", true } };
	json_t *j = NULL;
	kiln_buf sig;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	kiln_buf_init(&sig, KILN_BODY_SIG_MAX);
	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the request", m, 1, d));
	/* 4 base64 characters per 3 bytes, and room for padding. */
	KILN_TRY(r, get_b64(j, "signature", (KILN_BODY_SIG_MAX / 3 + 1) * 4, &sig, d));
	if (sig.len == 0) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "member \"signature\" is empty");
		goto out;
	}
	memcpy(out->signature, sig.ptr, sig.len);
	out->sig_len = sig.len;
out:
	kiln_buf_cleanup(&sig);
	json_decref(j);
	return r;
}

void body_activate_init(struct body_activate *a)
{
	memset(a->nonce, 0, sizeof(a->nonce));
	kiln_buf_init(&a->ek_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&a->ek_intermediate, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&a->ak_public, KILN_TPM2_PUBLIC_MAX);
}

void body_activate_cleanup(struct body_activate *a)
{
	if (a == NULL)
		return;
	kiln_buf_cleanup(&a->ek_cert);
	kiln_buf_cleanup(&a->ek_intermediate);
	kiln_buf_cleanup(&a->ak_public);
}

kiln_result body_activate_parse(kiln_slice in, struct body_activate *out, kiln_diag *d)
{
	static const struct member m[] = {
		{ "nonce", true }, { "ek_cert", true }, { "ek_intermediate", false }, { "ak_public", true }
	};
	json_t *j = NULL;
	kiln_result r;

	KILN_GUARD(parse(in, &j, d));
	KILN_TRY(r, check_members(j, "the request", m, 4, d));
	KILN_TRY(r, parse_nonce(j, out->nonce, d));
	KILN_TRY(r, get_b64(j, "ek_cert", (KILN_EVIDENCE_CERT_MAX + 2) / 3 * 4, &out->ek_cert, d));
	if (json_object_get(j, "ek_intermediate") != NULL)
		KILN_TRY(r, get_b64(j, "ek_intermediate", (KILN_EVIDENCE_CERT_MAX + 2) / 3 * 4,
				    &out->ek_intermediate, d));
	r = get_b64(j, "ak_public", (KILN_TPM2_PUBLIC_MAX + 2) / 3 * 4, &out->ak_public, d);
out:
	json_decref(j);
	return r;
}
