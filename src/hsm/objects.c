/*
 * Per-device objects in a token: found by label and destroyed, whatever
 * their class, when a device is retired.
 */
#include "p11.h"

#include <stdio.h>
#include <string.h>

#define FIND_BATCH 32

kiln_result kiln_token_device_label(const char *product, const char *serial,
				    char out[KILN_DEVICE_LABEL_MAX])
{
	int n;

	KILN_ENSURE(product != NULL && serial != NULL && product[0] && serial[0], KILN_ERR_ARG);
	n = snprintf(out, KILN_DEVICE_LABEL_MAX, "kiln-device:%s/%s", product, serial);
	KILN_ENSURE(n > 0 && n < KILN_DEVICE_LABEL_MAX, KILN_ERR_TOO_BIG);
	return kiln_ok();
}

static const char *class_name(CK_OBJECT_CLASS c)
{
	switch (c) {
	case CKO_PRIVATE_KEY:
		return "private-key";
	case CKO_PUBLIC_KEY:
		return "public-key";
	case CKO_SECRET_KEY:
		return "secret-key";
	case CKO_CERTIFICATE:
		return "certificate";
	case CKO_DATA:
		return "data";
	default:
		return "other";
	}
}

struct destroy_arg {
	const char *label;
	struct kiln_destroyed *out;
};

/* Up to FIND_BATCH objects labelled label. */
static kiln_result find_batch(kiln_token *t, struct kiln_tok_sess *s, const char *label,
			      CK_OBJECT_HANDLE *h, CK_ULONG *n, kiln_diag *d)
{
	CK_ATTRIBUTE tmpl = { CKA_LABEL, (void *)label, strlen(label) };
	CK_RV rv, rv_final;

	rv = t->fn->C_FindObjectsInit(s->h, &tmpl, 1);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjectsInit", d);
	*n = 0;
	rv = t->fn->C_FindObjects(s->h, h, FIND_BATCH, n);
	rv_final = t->fn->C_FindObjectsFinal(s->h);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjects", d);
	if (rv_final != CKR_OK) {
		s->discard = true;
		return kiln_tok_fail(t, s, rv_final, "C_FindObjectsFinal", d);
	}
	KILN_ENSURE(*n <= FIND_BATCH, KILN_ERR_HSM);
	return kiln_ok();
}

static kiln_result destroy_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct destroy_arg *a = arg;
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_ULONG n = 0;

	/* Signing must never use a cached handle of an object destroyed here. */
	kiln_keycache_drop(&t->cache, a->label);
	do {
		KILN_GUARD(find_batch(t, s, a->label, h, &n, d));
		for (CK_ULONG i = 0; i < n; i++) {
			CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
			CK_ATTRIBUTE at = { CKA_CLASS, &cls, sizeof(cls) };
			CK_RV rv;

			if (a->out->n >= KILN_DESTROY_MAX)
				return kiln_diag_set(d, KILN_ERR_TOO_BIG,
						     "more than %d objects labelled %s in token %s",
						     KILN_DESTROY_MAX, a->label, t->label);
			if (t->fn->C_GetAttributeValue(s->h, h[i], &at, 1) != CKR_OK)
				cls = (CK_OBJECT_CLASS)-1;
			rv = t->fn->C_DestroyObject(s->h, h[i]);
			if (rv != CKR_OK)
				return kiln_tok_fail(t, s, rv, "C_DestroyObject", d);
			s->committed = true;
			kiln_strtrunc(a->out->what[a->out->n++], class_name(cls),
				      sizeof(a->out->what[0]));
		}
	} while (n == FIND_BATCH);
	return kiln_ok();
}

kiln_result kiln_token_destroy_labelled(kiln_token *t, const char *label,
					struct kiln_destroyed *out, kiln_diag *d)
{
	struct destroy_arg a = { label, out };
	kiln_result r;

	memset(out, 0, sizeof(*out));
	if (t == NULL || label == NULL || label[0] == '\0')
		return kiln_diag_set(d, KILN_ERR_ARG, "destroying objects needs a token and a label");
	(void)pthread_mutex_lock(&t->admin_mu);
	r = kiln_tok_run(t, destroy_op, &a, d);
	(void)pthread_mutex_unlock(&t->admin_mu);
	kiln_log_info(&t->log, "HSM token %s: destroyed %zu object(s) labelled %s", t->label, out->n,
		      label);
	return r;
}
