/*
 * The token's encrypter and decrypter, beside its signer: AES-256-GCM with a
 * secret key that lives in the token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
 * not CKA_EXTRACTABLE, encrypt and decrypt only), through C_EncryptInit /
 * C_Encrypt and C_DecryptInit / C_Decrypt with CKM_AES_GCM. The key never
 * leaves the token; kiln uses it for backups (docs/backup.md).
 */
#include "p11.h"

#include <string.h>

/* The one secret key labelled label; *found false when there is none. */
KILN_MUST_USE
static kiln_result find_secret(kiln_token *t, struct kiln_tok_sess *s, const char *label,
			       CK_OBJECT_HANDLE *out, bool *found, kiln_diag *d)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) },
				 { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;
	CK_RV rv, rv_final;

	*found = false;
	rv = t->fn->C_FindObjectsInit(s->h, tmpl, 2);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjectsInit", d);
	rv = t->fn->C_FindObjects(s->h, h, 2, &n);
	rv_final = t->fn->C_FindObjectsFinal(s->h);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjects", d);
	if (rv_final != CKR_OK) {
		s->discard = true;
		return kiln_tok_fail(t, s, rv_final, "C_FindObjectsFinal", d);
	}
	if (n > 1)
		return kiln_diag_set(d, KILN_ERR_HSM, "HSM token %s holds several secret keys labelled %s",
				     t->label, label);
	if (n == 0)
		return kiln_tok_alive(t, s, d);
	*out = h[0];
	*found = true;
	return kiln_ok();
}

struct ensure_arg {
	const char *label;
	bool created;
};

static kiln_result ensure_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct ensure_arg *a = arg;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	uint8_t id[KILN_KEY_ID_LEN];
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_SIGN, &no, sizeof(no) },
		{ CKA_VERIFY, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)a->label, strlen(a->label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_OBJECT_HANDLE h;
	bool found = false;
	CK_RV rv;

	a->created = false;
	KILN_GUARD(find_secret(t, s, a->label, &h, &found, d));
	if (found)
		return kiln_ok();
	KILN_GUARD(kiln_random(id, sizeof(id)));
	rv = t->fn->C_GenerateKey(s->h, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_GenerateKey", d);
	s->committed = true;
	a->created = true;
	return kiln_ok();
}

kiln_result kiln_token_secret_ensure(kiln_token *t, const char *label, bool *created, kiln_diag *d)
{
	struct ensure_arg a = { label, false };
	kiln_result r;

	if (t == NULL || label == NULL || label[0] == '\0' || strlen(label) >= KILN_KEY_LABEL_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG, "a secret key needs a token and a label of 1 "
				     "to %d bytes", KILN_KEY_LABEL_MAX - 1);
	(void)pthread_mutex_lock(&t->admin_mu);
	r = kiln_tok_run(t, ensure_op, &a, d);
	(void)pthread_mutex_unlock(&t->admin_mu);
	if (!kiln_is_ok(r))
		return r;
	if (a.created)
		kiln_log_info(&t->log, "HSM token %s: generated AES-256 key %s", t->label, label);
	if (created != NULL)
		*created = a.created;
	return kiln_ok();
}

struct aead_arg {
	const struct kiln_aead_req *req;
	bool encrypt;
	kiln_buf *out;
};

static kiln_result aead_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct aead_arg *a = arg;
	const struct kiln_aead_req *req = a->req;
	CK_GCM_PARAMS gcm;
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof(gcm) };
	CK_OBJECT_HANDLE key;
	CK_ULONG want;
	bool found = false;
	size_t at, span;
	CK_RV rv;

	KILN_GUARD(find_secret(t, s, req->label, &key, &found, d));
	if (!found)
		return kiln_diag_set(d, KILN_ERR_HSM_KEY_MISSING,
				     "no secret key labelled %s in HSM token %s", req->label, t->label);
	memset(&gcm, 0, sizeof(gcm));
	gcm.pIv = (CK_BYTE_PTR)req->iv;
	gcm.ulIvLen = KILN_AEAD_IV_LEN;
	gcm.ulIvBits = KILN_AEAD_IV_LEN * 8;
	gcm.pAAD = (CK_BYTE_PTR)req->aad.ptr;
	gcm.ulAADLen = req->aad.len;
	gcm.ulTagBits = KILN_AEAD_TAG_LEN * 8;
	/* SoftHSM2 wants room for the whole input when it decrypts, tag included. */
	want = a->encrypt ? req->in.len + KILN_AEAD_TAG_LEN : req->in.len;
	at = a->out->len;
	KILN_GUARD(kiln_buf_reserve(a->out, (size_t)want + 1));
	rv = a->encrypt ? t->fn->C_EncryptInit(s->h, &mech, key)
			: t->fn->C_DecryptInit(s->h, &mech, key);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, a->encrypt ? "C_EncryptInit" : "C_DecryptInit", d);
	want += 1;
	span = (size_t)want;
	rv = a->encrypt ? t->fn->C_Encrypt(s->h, (CK_BYTE_PTR)req->in.ptr, req->in.len,
					   a->out->ptr + at, &want)
			: t->fn->C_Decrypt(s->h, (CK_BYTE_PTR)req->in.ptr, req->in.len,
					   a->out->ptr + at, &want);
	if (rv == CKR_BUFFER_TOO_SMALL)
		s->discard = true;
	if (rv != CKR_OK)
		kiln_wipe(a->out->ptr + at, span); /* nothing of a failed decryption stays */
	if (!a->encrypt && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
			    rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED))
		return kiln_diag_set(d, KILN_ERR_DECRYPT,
				     "AES-GCM authentication failed with key %s (%s): the data or "
				     "its header was altered", req->label, kiln_p11_ckr_name(rv));
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, a->encrypt ? "C_Encrypt" : "C_Decrypt", d);
	a->out->len = at + want;
	return kiln_ok();
}

static kiln_result aead(kiln_token *t, const struct kiln_aead_req *req, bool encrypt,
			kiln_buf *out, kiln_diag *d)
{
	struct aead_arg a = { req, encrypt, out };
	kiln_result r;

	if (t == NULL || req == NULL || out == NULL || req->label == NULL || req->iv == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "AES-GCM needs a token, a key label and an IV");
	if (req->in.len > KILN_AEAD_MAX || (!encrypt && req->in.len < KILN_AEAD_TAG_LEN) ||
	    req->aad.len > 4096)
		return kiln_diag_set(d, KILN_ERR_ARG, "AES-GCM input: %s", encrypt
				     ? "at most 1 GiB" : "16 bytes of tag to 1 GiB");
	kiln_log_debug(&t->log, "HSM token %s: %s %zu bytes (%s) with key %s", t->label,
		       encrypt ? "encrypting" : "decrypting", req->in.len,
		       req->purpose != NULL ? req->purpose : "(no purpose)", req->label);
	r = kiln_tok_run(t, aead_op, &a, d);
	return r;
}

kiln_result kiln_token_encrypt(kiln_token *t, const struct kiln_aead_req *req, kiln_buf *out,
			       kiln_diag *d)
{
	return aead(t, req, true, out, d);
}

kiln_result kiln_token_decrypt(kiln_token *t, const struct kiln_aead_req *req, kiln_buf *out,
			       kiln_diag *d)
{
	return aead(t, req, false, out, d);
}
