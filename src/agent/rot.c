/*
 * Roots of trust: the state directory's metadata (rot.json) and dispatch by
 * its type to the implementation (dice_sim.c; later tpm and pkcs11). The
 * accessors every root of trust shares live here too.
 */
#include "agent_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kiln_rot_text_ok(const char *s, size_t cap)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strnlen(s, cap);
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

kiln_result kiln_rot_path(const char *state_dir, const char *name, char *out, size_t cap,
			  kiln_diag *d)
{
	int n;

	KILN_ENSURE(state_dir != NULL && state_dir[0] != '\0' && name != NULL, KILN_ERR_ARG);
	n = snprintf(out, cap, "%s/%s", state_dir, name);
	if (n < 0 || (size_t)n >= cap)
		return kiln_diag_set(d, KILN_ERR_ARG, "%s: state directory path too long", state_dir);
	return kiln_ok();
}

/* ----------------------------------------------------------------- rot.json */

static kiln_result meta_text(const json_t *obj, const char *key, char *out, size_t cap,
			     const char *path, kiln_diag *d)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || !json_is_string(v) || json_string_length(v) >= cap ||
	    !kiln_rot_text_ok(json_string_value(v), cap))
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "%s: \"%s\" is missing or not printable text of at most %zu bytes", path,
				     key, cap - 1);
	return kiln_strlcpy(out, json_string_value(v), cap);
}

/* Refuses members outside names (n of them): the file is ours, drift means damage. */
static kiln_result only_members(const json_t *obj, const char *const *names, size_t n,
				const char *path, kiln_diag *d)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		bool known = false;

		for (size_t i = 0; i < n; i++)
			known = known || strcmp(key, names[i]) == 0;
		if (!known)
			return kiln_diag_set(d, KILN_ERR_CONFIG, "%s: unknown member \"%.40s\"", path, key);
	}
	return kiln_ok();
}

static kiln_result meta_from_json(const json_t *j, struct kiln_rot_meta *m, const char *path,
				  kiln_diag *d)
{
	static const char *const top[] = { "type", "serial", "firmware_version", "components" };
	static const char *const comps[] = { "soc", "pcb", "se" };
	const json_t *c;

	if (!json_is_object(j))
		return kiln_diag_set(d, KILN_ERR_CONFIG, "%s: not a JSON object", path);
	KILN_GUARD(only_members(j, top, 4, path, d));
	KILN_GUARD(meta_text(j, "type", m->type, sizeof(m->type), path, d));
	KILN_GUARD(meta_text(j, "serial", m->serial, sizeof(m->serial), path, d));
	KILN_GUARD(meta_text(j, "firmware_version", m->firmware_version,
			     sizeof(m->firmware_version), path, d));
	c = json_object_get(j, "components");
	if (c == NULL || !json_is_object(c))
		return kiln_diag_set(d, KILN_ERR_CONFIG, "%s: \"components\" is missing or not an object",
				     path);
	KILN_GUARD(only_members(c, comps, 3, path, d));
	KILN_GUARD(meta_text(c, "soc", m->soc, sizeof(m->soc), path, d));
	KILN_GUARD(meta_text(c, "pcb", m->pcb, sizeof(m->pcb), path, d));
	return meta_text(c, "se", m->se, sizeof(m->se), path, d);
}

kiln_result kiln_rot_meta_read(const char *state_dir, struct kiln_rot_meta *m, kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];
	struct kiln_rot_meta tmp;
	json_t *j = NULL;
	kiln_buf text;
	kiln_diag ld;
	kiln_result r;

	memset(&tmp, 0, sizeof(tmp));
	KILN_GUARD(kiln_rot_path(state_dir, "rot.json", path, sizeof(path), d));
	kiln_diag_clear(&ld);
	r = kiln_file_read(path, KILN_ROT_META_MAX, &text, &ld);
	if (r.code == KILN_ERR_NOT_FOUND) {
		r = kiln_diag_set(d, r.code, "%s holds no device (no rot.json); create one first",
				  state_dir);
		goto out;
	}
	if (!kiln_is_ok(r)) {
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&ld, r));
		goto out;
	}
	kiln_diag_clear(&ld);
	r = kiln_json_parse(kiln_buf_view(&text), KILN_ROT_META_MAX, &j, &ld);
	if (!kiln_is_ok(r)) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s: %s", path, kiln_diag_message(&ld, r));
		goto out;
	}
	KILN_TRY(r, meta_from_json(j, &tmp, path, d));
	*m = tmp;
out:
	json_decref(j);
	kiln_buf_cleanup(&text);
	return r;
}

kiln_result kiln_rot_meta_write(const char *state_dir, const struct kiln_rot_meta *m, kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];
	json_t *j;
	kiln_buf text;
	kiln_result r;

	KILN_GUARD(kiln_rot_path(state_dir, "rot.json", path, sizeof(path), d));
	j = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "type", m->type, "serial", m->serial,
		      "firmware_version", m->firmware_version, "components", "soc", m->soc, "pcb",
		      m->pcb, "se", m->se);
	KILN_ENSURE(j != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&text, KILN_ROT_META_MAX);
	KILN_TRY(r, kiln_json_dump(j, &text));
	KILN_TRY(r, kiln_buf_append_str(&text, "\n"));
	r = kiln_file_write(path, kiln_buf_view(&text), 0600, d);
out:
	json_decref(j);
	kiln_buf_cleanup(&text);
	return r;
}

/* ----------------------------------------------------------------- dispatch */

kiln_result kiln_rot_open(const char *state_dir, kiln_rot **out, kiln_diag *d)
{
	struct kiln_rot_meta m;

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	*out = NULL;
	KILN_GUARD(kiln_rot_meta_read(state_dir, &m, d));
	if (strcmp(m.type, "dice") == 0)
		return kiln_dice_sim_open(state_dir, &m, out, d);
	if (strcmp(m.type, "tpm") == 0)
		return kiln_tpm_open(state_dir, &m, out, d);
	return kiln_diag_set(d, KILN_ERR_CONFIG,
			     "%s: root of trust type '%s' is not supported by this build", state_dir,
			     m.type);
}

void kiln_rot_free(kiln_rot *rot)
{
	if (rot == NULL)
		return;
	if (rot->impl != NULL)
		rot->ops->destroy(rot->impl);
	EVP_PKEY_free(rot->identity);
	kiln_wipe(rot, sizeof(*rot));
	free(rot);
}

const char *kiln_rot_type(const kiln_rot *rot)
{
	return rot != NULL ? rot->ops->type : "none";
}

const char *kiln_rot_serial(const kiln_rot *rot)
{
	return rot != NULL ? rot->meta.serial : "";
}

const EVP_PKEY *kiln_rot_public_key(const kiln_rot *rot)
{
	return rot != NULL ? rot->identity : NULL;
}

kiln_result kiln_rot_device_info(const kiln_rot *rot, json_t **out)
{
	KILN_ENSURE(rot != NULL && out != NULL, KILN_ERR_ARG);
	*out = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "serial", rot->meta.serial,
			 "firmware_version", rot->meta.firmware_version, "components", "soc",
			 rot->meta.soc, "pcb", rot->meta.pcb, "se", rot->meta.se);
	KILN_ENSURE(*out != NULL, KILN_ERR_NOMEM);
	return kiln_ok();
}

kiln_result kiln_rot_csr(kiln_rot *rot, kiln_buf *der, kiln_diag *d)
{
	KILN_ENSURE(rot != NULL && der != NULL, KILN_ERR_ARG);
	return rot->ops->csr(rot, der, d);
}

kiln_result kiln_rot_evidence(kiln_rot *rot, const uint8_t nonce[32], kiln_slice csr_der,
			      json_t **out, kiln_diag *d)
{
	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	*out = NULL;
	KILN_ENSURE(rot != NULL && nonce != NULL && csr_der.ptr != NULL && csr_der.len > 0,
		    KILN_ERR_ARG);
	return rot->ops->evidence(rot, nonce, csr_der, out, d);
}

kiln_result kiln_rot_inject(kiln_rot *rot, const char *fault)
{
	KILN_ENSURE(rot != NULL && fault != NULL && rot->ops->inject != NULL, KILN_ERR_ARG);
	return rot->ops->inject(rot, fault);
}

bool kiln_rot_needs_activation(const kiln_rot *rot)
{
	return rot != NULL && rot->ops->activation_request != NULL;
}

kiln_result kiln_rot_activation_request(kiln_rot *rot, json_t **out, kiln_diag *d)
{
	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	*out = NULL;
	KILN_ENSURE(kiln_rot_needs_activation(rot), KILN_ERR_ARG);
	return rot->ops->activation_request(rot, out, d);
}

kiln_result kiln_rot_activate(kiln_rot *rot, const json_t *resp, kiln_diag *d)
{
	KILN_ENSURE(kiln_rot_needs_activation(rot) && resp != NULL, KILN_ERR_ARG);
	return rot->ops->activate(rot, resp, d);
}
