/*
 * Keys inside a token: generation (sensitive, non-extractable, signing
 * only), lookup by label and id, the public half as an EVP_PKEY, and
 * destruction.
 *
 * Generation and destruction hold admin_mu so that two threads of this
 * process cannot both pass the "label unused" check. Another process
 * sharing the token can still race; labels are only unique per kiln.
 */
#include "p11.h"

#include <string.h>

/* One attribute value read from the token. */
struct attr {
	uint8_t v[KILN_P11_ATTR_MAX];
	CK_ULONG len;
};

static kiln_slice attr_view(const struct attr *a)
{
	return kiln_slice_of(a->v, a->len);
}

kiln_result kiln_p11_check_ref(const kiln_key_ref *ref, kiln_diag *d)
{
	size_t n;

	if (ref == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "no key named");
	n = strnlen(ref->label, sizeof(ref->label));
	if (n == 0 || n == sizeof(ref->label))
		return kiln_diag_set(d, KILN_ERR_ARG, "key label must be 1 to %d bytes",
				     KILN_KEY_LABEL_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)ref->label[i] < 0x20 || ref->label[i] == 0x7f)
			return kiln_diag_set(d, KILN_ERR_ARG, "key label holds control characters");
	}
	if (ref->id_len > KILN_KEY_ID_MAX)
		return kiln_diag_set(d, KILN_ERR_ARG, "key %s: CKA_ID longer than %d bytes",
				     ref->label, KILN_KEY_ID_MAX);
	if (kiln_p11_alg_get(ref->alg) == NULL || kiln_alg_get(ref->alg) == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "key %s: unknown algorithm %d", ref->label,
				     (int)ref->alg);
	return kiln_ok();
}

/* " with CKA_ID 0a1b..." for messages, or "" when the ref has no id. */
static void id_text(const kiln_key_ref *ref, char out[2 * KILN_KEY_ID_MAX + 16])
{
	out[0] = '\0';
	if (ref->id_len == 0)
		return;
	memcpy(out, " with CKA_ID ", 14);
	kiln_hex_encode(ref->id, ref->id_len, out + 13);
}

/* Up to two objects of class cls (any class if NULL) with ref's label and id. */
KILN_MUST_USE
static kiln_result find_objects(kiln_token *t, struct kiln_tok_sess *s, const CK_OBJECT_CLASS *cls,
				const kiln_key_ref *ref, CK_OBJECT_HANDLE out[2], CK_ULONG *count,
				kiln_diag *d)
{
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG n = 0;
	CK_RV rv, rv_final;

	if (cls != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, (void *)cls, sizeof(*cls) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)ref->label, strlen(ref->label) };
	if (ref->id_len > 0)
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_ID, (void *)ref->id, ref->id_len };
	rv = t->fn->C_FindObjectsInit(s->h, tmpl, n);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjectsInit", d);
	*count = 0;
	rv = t->fn->C_FindObjects(s->h, out, 2, count);
	rv_final = t->fn->C_FindObjectsFinal(s->h);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_FindObjects", d);
	if (rv_final != CKR_OK) {
		s->discard = true; /* a search may still be active on it */
		return kiln_tok_fail(t, s, rv_final, "C_FindObjectsFinal", d);
	}
	if (*count > 2)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "C_FindObjects on HSM token %s returned %lu objects for 2",
				     t->label, (unsigned long)*count);
	return kiln_ok();
}

KILN_MUST_USE
static kiln_result read_attr(kiln_token *t, struct kiln_tok_sess *s, CK_OBJECT_HANDLE h,
			     CK_ATTRIBUTE_TYPE type, struct attr *out, kiln_diag *d)
{
	CK_ATTRIBUTE a = { type, out->v, sizeof(out->v) };
	CK_RV rv = t->fn->C_GetAttributeValue(s->h, h, &a, 1);

	if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && a.ulValueLen > sizeof(out->v)))
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "HSM token %s returned an attribute 0x%lx larger than %d bytes",
				     t->label, (unsigned long)type, KILN_P11_ATTR_MAX);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_GetAttributeValue", d);
	out->len = a.ulValueLen;
	return kiln_ok();
}

KILN_MUST_USE
static kiln_result check_key_type(kiln_token *t, struct kiln_tok_sess *s, CK_OBJECT_HANDLE h,
				  const kiln_key_ref *ref, bool private_key, kiln_diag *d)
{
	const struct kiln_p11_alg *pa = kiln_p11_alg_get(ref->alg);
	const struct kiln_alg_info *ai = kiln_alg_get(ref->alg);
	CK_KEY_TYPE kt = 0;
	CK_BBOOL sign = CK_FALSE;
	CK_ATTRIBUTE a[2] = { { CKA_KEY_TYPE, &kt, sizeof(kt) },
			      { CKA_SIGN, &sign, sizeof(sign) } };
	struct attr params;
	CK_RV rv;

	rv = t->fn->C_GetAttributeValue(s->h, h, a, private_key ? 2 : 1);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_GetAttributeValue", d);
	if (kt != pa->key_type)
		goto wrong;
	if (private_key && sign != CK_TRUE)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "key %s in HSM token %s may not sign (CKA_SIGN false)",
				     ref->label, t->label);
	if (pa->ec_params.len > 0) {
		KILN_GUARD(read_attr(t, s, h, CKA_EC_PARAMS, &params, d));
		if (!kiln_p11_alg_params_ok(pa, attr_view(&params)))
			goto wrong;
	}
	return kiln_ok();
wrong:
	return kiln_diag_set(d, KILN_ERR_HSM_KEY_MISSING, "key %s in HSM token %s is not a %s key",
			     ref->label, t->label, ai->name);
}

/* The single object of class cls for ref; KILN_ERR_HSM_KEY_MISSING if none. */
KILN_MUST_USE
static kiln_result find_one(kiln_token *t, struct kiln_tok_sess *s, CK_OBJECT_CLASS cls,
			    const kiln_key_ref *ref, CK_OBJECT_HANDLE *out, kiln_diag *d)
{
	const char *what = cls == CKO_PRIVATE_KEY ? "private" : "public";
	char idt[2 * KILN_KEY_ID_MAX + 16];
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;

	KILN_GUARD(find_objects(t, s, &cls, ref, found, &n, d));
	id_text(ref, idt);
	if (n == 0) {
		/* Private objects hide from a session that lost its login; so do gone tokens. */
		KILN_GUARD(kiln_tok_alive(t, s, d));
		return kiln_diag_set(d, KILN_ERR_HSM_KEY_MISSING,
				     "no %s key labelled %s%s in HSM token %s", what, ref->label, idt,
				     t->label);
	}
	if (n > 1)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "HSM token %s holds several %s keys labelled %s%s; name the key by CKA_ID",
				     t->label, what, ref->label, idt);
	KILN_GUARD(check_key_type(t, s, found[0], ref, cls == CKO_PRIVATE_KEY, d));
	*out = found[0];
	return kiln_ok();
}

kiln_result kiln_tok_key_handle(kiln_token *t, struct kiln_tok_sess *s, const kiln_key_ref *ref,
				CK_OBJECT_HANDLE *out, kiln_diag *d)
{
	if (kiln_keycache_get(&t->cache, ref, s->gen, out))
		return kiln_ok();
	KILN_GUARD(find_one(t, s, CKO_PRIVATE_KEY, ref, out, d));
	kiln_keycache_put(&t->cache, ref, s->gen, *out);
	return kiln_ok();
}

KILN_MUST_USE
static kiln_result read_public(kiln_token *t, struct kiln_tok_sess *s, CK_OBJECT_HANDLE h,
			       kiln_alg alg, EVP_PKEY **out, kiln_diag *d)
{
	const struct kiln_p11_alg *pa = kiln_p11_alg_get(alg);
	struct attr a, b;

	if (pa->ec_params.len > 0) {
		KILN_GUARD(read_attr(t, s, h, CKA_EC_PARAMS, &a, d));
		KILN_GUARD(read_attr(t, s, h, CKA_EC_POINT, &b, d));
		return kiln_p11_pub_ec(alg, attr_view(&a), attr_view(&b), out, d);
	}
	KILN_GUARD(read_attr(t, s, h, CKA_MODULUS, &a, d));
	KILN_GUARD(read_attr(t, s, h, CKA_PUBLIC_EXPONENT, &b, d));
	return kiln_p11_pub_rsa(alg, attr_view(&a), attr_view(&b), out, d);
}

/* ------------------------------------------------------------ generate */

struct gen_arg {
	kiln_key_ref ref; /* label and alg in; id out */
	EVP_PKEY **pub;
};

KILN_MUST_USE
static kiln_result generate_pair(kiln_token *t, struct kiln_tok_sess *s, kiln_key_ref *ref,
				 CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv, kiln_diag *d)
{
	const struct kiln_p11_alg *pa = kiln_p11_alg_get(ref->alg);
	const struct kiln_alg_info *ai = kiln_alg_get(ref->alg);
	static const CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt = pa->key_type;
	CK_ULONG bits = ai->bits, label_len = strlen(ref->label);
	CK_MECHANISM mech = { pa->gen_mech, NULL, 0 };
	CK_ATTRIBUTE pub_t[12] = {
		{ CKA_CLASS, &pub_class, sizeof(pub_class) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, ref->label, label_len },
		{ CKA_ID, ref->id, KILN_KEY_ID_LEN },
	};
	CK_ATTRIBUTE priv_t[] = {
		{ CKA_CLASS, &priv_class, sizeof(priv_class) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_LABEL, ref->label, label_len },
		{ CKA_ID, ref->id, KILN_KEY_ID_LEN },
	};
	CK_ULONG n_pub = 10;
	CK_RV rv;

	if (pa->ec_params.len > 0) {
		pub_t[n_pub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)pa->ec_params.ptr,
						 pa->ec_params.len };
	} else {
		pub_t[n_pub++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
		pub_t[n_pub++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, (void *)f4, sizeof(f4) };
	}
	KILN_GUARD(kiln_random(ref->id, KILN_KEY_ID_LEN));
	ref->id_len = KILN_KEY_ID_LEN;
	rv = t->fn->C_GenerateKeyPair(s->h, &mech, pub_t, n_pub, priv_t,
				      sizeof(priv_t) / sizeof(priv_t[0]), pub, priv);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_GenerateKeyPair", d);
	return kiln_ok();
}

static kiln_result generate_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct gen_arg *g = arg;
	kiln_key_ref by_label = g->ref;
	CK_OBJECT_HANDLE found[2], pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	kiln_result r;

	by_label.id_len = 0;
	KILN_GUARD(find_objects(t, s, NULL, &by_label, found, &n, d));
	if (n > 0)
		return kiln_diag_set(d, KILN_ERR_EXISTS,
				     "HSM token %s already holds a key labelled %s",
				     t->label, g->ref.label);
	KILN_GUARD(generate_pair(t, s, &g->ref, &pub, &priv, d));
	s->committed = true;
	if (g->pub != NULL) {
		r = read_public(t, s, pub, g->ref.alg, g->pub, d);
		if (!kiln_is_ok(r)) {
			/* A key nobody can use must not stay behind. */
			(void)t->fn->C_DestroyObject(s->h, priv);
			(void)t->fn->C_DestroyObject(s->h, pub);
			return r;
		}
	}
	kiln_keycache_put(&t->cache, &g->ref, s->gen, priv);
	return kiln_ok();
}

kiln_result kiln_token_generate(kiln_token *t, kiln_alg alg, const char *label, kiln_key_ref *out,
				EVP_PKEY **pub, kiln_diag *d)
{
	struct gen_arg g;
	kiln_result r;

	if (t == NULL || out == NULL || label == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "generating a key needs a token, a label and a result");
	memset(&g, 0, sizeof(g));
	g.ref.alg = alg;
	if (!kiln_is_ok(kiln_strlcpy(g.ref.label, label, sizeof(g.ref.label))))
		return kiln_diag_set(d, KILN_ERR_ARG, "key label must be 1 to %d bytes",
				     KILN_KEY_LABEL_MAX - 1);
	KILN_GUARD(kiln_p11_check_ref(&g.ref, d));
	g.pub = pub;
	(void)pthread_mutex_lock(&t->admin_mu);
	r = kiln_tok_run(t, generate_op, &g, d);
	(void)pthread_mutex_unlock(&t->admin_mu);
	if (!kiln_is_ok(r))
		return r;
	kiln_log_info(&t->log, "HSM token %s: generated %s key %s", t->label,
		      kiln_alg_get(alg)->name, g.ref.label);
	*out = g.ref;
	return kiln_ok();
}

/* ------------------------------------------------------------ find, public key */

static kiln_result find_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	CK_OBJECT_HANDLE h;

	return kiln_tok_key_handle(t, s, arg, &h, d);
}

kiln_result kiln_token_find(kiln_token *t, const kiln_key_ref *ref, kiln_diag *d)
{
	if (t == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "no HSM token given");
	KILN_GUARD(kiln_p11_check_ref(ref, d));
	return kiln_tok_run(t, find_op, (void *)ref, d);
}

struct pub_arg {
	const kiln_key_ref *ref;
	EVP_PKEY *pkey;
};

static kiln_result public_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	struct pub_arg *a = arg;
	CK_OBJECT_HANDLE h;

	KILN_GUARD(find_one(t, s, CKO_PUBLIC_KEY, a->ref, &h, d));
	return read_public(t, s, h, a->ref->alg, &a->pkey, d);
}

kiln_result kiln_token_public_key(kiln_token *t, const kiln_key_ref *ref, EVP_PKEY **out,
				  kiln_diag *d)
{
	struct pub_arg a = { ref, NULL };

	if (t == NULL || out == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "reading a public key needs a token and a result");
	KILN_GUARD(kiln_p11_check_ref(ref, d));
	KILN_GUARD(kiln_tok_run(t, public_op, &a, d));
	*out = a.pkey;
	return kiln_ok();
}

/* ------------------------------------------------------------ destroy */

static kiln_result destroy_op(kiln_token *t, struct kiln_tok_sess *s, void *arg, kiln_diag *d)
{
	const kiln_key_ref *ref = arg;
	CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE priv, pub[2];
	CK_ULONG n_pub = 0;
	CK_RV rv;

	KILN_GUARD(find_one(t, s, CKO_PRIVATE_KEY, ref, &priv, d));
	KILN_GUARD(find_objects(t, s, &pub_class, ref, pub, &n_pub, d));
	if (n_pub > 1)
		return kiln_diag_set(d, KILN_ERR_HSM,
				     "HSM token %s holds several public keys labelled %s; name the key by CKA_ID",
				     t->label, ref->label);
	kiln_keycache_drop(&t->cache, ref->label);
	rv = t->fn->C_DestroyObject(s->h, priv);
	if (rv != CKR_OK)
		return kiln_tok_fail(t, s, rv, "C_DestroyObject", d);
	s->committed = true;
	if (n_pub == 1) {
		rv = t->fn->C_DestroyObject(s->h, pub[0]);
		if (rv != CKR_OK)
			return kiln_tok_fail(t, s, rv, "C_DestroyObject", d);
	}
	return kiln_ok();
}

kiln_result kiln_token_destroy(kiln_token *t, const kiln_key_ref *ref, kiln_diag *d)
{
	kiln_result r;

	if (t == NULL)
		return kiln_diag_set(d, KILN_ERR_ARG, "no HSM token given");
	KILN_GUARD(kiln_p11_check_ref(ref, d));
	(void)pthread_mutex_lock(&t->admin_mu);
	r = kiln_tok_run(t, destroy_op, (void *)ref, d);
	(void)pthread_mutex_unlock(&t->admin_mu);
	if (kiln_is_ok(r))
		kiln_log_info(&t->log, "HSM token %s: destroyed key %s", t->label, ref->label);
	return r;
}
