/*
 * The CA engine: the deployment's CAs loaded from the inventory with their
 * keys located in the right token, and the cache of parsed policies.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = { "admin", "officer", "engineer", "operator", "station", "auditor" };

bool kiln_role_valid(const char *role)
{
	for (size_t i = 0; role != NULL && i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(roles[i], role) == 0)
			return true;
	}
	return false;
}

kiln_result ca_tx_event(kiln_store_tx *tx, const char *type, const char *actor,
		       const char *subject, char *detail, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	KILN_ENSURE(detail != NULL, KILN_ERR_NOMEM);
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, type, sizeof(ev.type));
	kiln_strtrunc(ev.actor, actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, subject, sizeof(ev.subject));
	ev.detail_json = detail;
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(detail);
	return r;
}

/* One member of an event detail: a string, an integer or a boolean. */
struct detail_member {
	const char *key;
	char type; /* 's', 'I' or 'b' */
	const char *str;
	long long num;
};

#define DETAIL_MEMBERS_MAX 16

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct detail_member *)a)->key,
		      ((const struct detail_member *)b)->key);
}

/* Reads "s:X" members of fmt ("{...}") with their arguments; false on anything else. */
static bool read_members(const char *fmt, va_list ap, struct detail_member *m, size_t *count)
{
	const char *f = fmt;

	*count = 0;
	if (*f++ != '{')
		return false;
	while (*f != '}') {
		struct detail_member *x = &m[*count];

		if (*count == DETAIL_MEMBERS_MAX || f[0] != 's' || f[1] != ':')
			return false;
		x->key = va_arg(ap, const char *);
		x->type = f[2] == 'i' ? 'I' : f[2];
		if (f[2] == 's')
			x->str = va_arg(ap, const char *);
		else if (f[2] == 'i' || f[2] == 'b')
			x->num = va_arg(ap, int);
		else if (f[2] == 'I')
			x->num = va_arg(ap, json_int_t);
		else
			return false;
		if (x->key == NULL || (x->type == 's' && x->str == NULL))
			return false;
		(*count)++;
		f += 3;
		if (*f == ',' && f[1] != '}')
			f++;
		else if (*f != '}')
			return false;
	}
	return f[1] == '\0';
}

static kiln_result write_members(struct detail_member *m, size_t count, kiln_buf *out)
{
	KILN_GUARD(kiln_buf_append_u8(out, '{'));
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			KILN_GUARD(kiln_buf_append_u8(out, ','));
		KILN_GUARD(kiln_json_put_str(out, m[i].key, strlen(m[i].key)));
		KILN_GUARD(kiln_buf_append_u8(out, ':'));
		if (m[i].type == 's')
			KILN_GUARD(kiln_json_put_str(out, m[i].str, strlen(m[i].str)));
		else if (m[i].type == 'b')
			KILN_GUARD(kiln_buf_append_str(out, m[i].num != 0 ? "true" : "false"));
		else
			KILN_GUARD(kiln_buf_printf(out, "%lld", m[i].num));
	}
	return kiln_buf_append_u8(out, '}');
}

/*
 * Written directly (this runs for every certificate issued), byte for byte
 * what json_pack(fmt) then json_dumps(COMPACT | SORT_KEYS | ENSURE_ASCII)
 * make (test_engine compares the two). A duplicate key is refused where
 * jansson would keep the last value: the store refuses duplicates anyway.
 */
char *ca_event_json(const char *fmt, ...)
{
	struct detail_member m[DETAIL_MEMBERS_MAX];
	size_t count = 0;
	kiln_buf out;
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = read_members(fmt, ap, m, &count);
	va_end(ap);
	if (!ok)
		return NULL;
	qsort(m, count, sizeof(m[0]), member_cmp);
	for (size_t i = 1; i < count; i++) {
		if (strcmp(m[i - 1].key, m[i].key) == 0)
			return NULL;
	}
	kiln_buf_init(&out, KILN_BUF_DEFAULT_MAX);
	if (!kiln_is_ok(write_members(m, count, &out))) {
		kiln_buf_cleanup(&out);
		return NULL;
	}
	return (char *)kiln_buf_take(&out, NULL);
}

void ca_cert_rec_fill(struct kiln_cert_rec *rec, const char *serial_hex, const struct ca_entry *issuer,
		      const char *kind, const X509_NAME *subject, int64_t nb, int64_t na,
		      kiln_slice der)
{
	kiln_strtrunc(rec->serial, serial_hex, sizeof(rec->serial));
	if (issuer != NULL) {
		rec->ca_id = issuer->rec.id;
		kiln_strtrunc(rec->env, issuer->rec.env, sizeof(rec->env));
	}
	kiln_strtrunc(rec->kind, kind, sizeof(rec->kind));
	if (subject != NULL)
		kiln_name_format(subject, rec->subject, sizeof(rec->subject));
	rec->not_before = nb;
	rec->not_after = na;
	rec->issued = kiln_now();
	kiln_strtrunc(rec->status, "valid", sizeof(rec->status));
	rec->der = der.ptr;
	rec->der_len = der.len;
}

struct ca_entry *ca_find(kiln_ca *ca, const char *name)
{
	for (size_t i = 0; name != NULL && i < ca->n_cas; i++) {
		if (strcmp(ca->cas[i].rec.name, name) == 0)
			return &ca->cas[i];
	}
	return NULL;
}

bool ca_retired(const struct ca_entry *e)
{
	return strcmp(e->rec.status, "retired") == 0;
}

struct ca_entry *ca_issuing(kiln_ca *ca, kiln_env env)
{
	for (size_t i = 0; i < ca->n_cas; i++) {
		if (ca->cas[i].env == env && strcmp(ca->cas[i].rec.role, "issuing") == 0 &&
		    !ca_retired(&ca->cas[i]))
			return &ca->cas[i];
	}
	return NULL;
}

struct ca_entry *ca_issuing_nth(kiln_ca *ca, kiln_env env, size_t nth)
{
	for (size_t i = 0; i < ca->n_cas; i++) {
		if (ca->cas[i].env == env && strcmp(ca->cas[i].rec.role, "issuing") == 0 &&
		    nth-- == 0)
			return &ca->cas[i];
	}
	return NULL;
}

static kiln_result load_entry(kiln_ca *ca, struct ca_entry *e, kiln_diag *d)
{
	KILN_GUARD(kiln_env_parse(e->rec.env, &e->env));
	if (!kiln_is_ok(kiln_alg_parse(e->rec.alg, &e->alg)))
		return kiln_diag_set(d, KILN_ERR_STORE, "CA %s has unknown algorithm %s", e->rec.name,
				     e->rec.alg);
	KILN_GUARD(kiln_cert_parse(kiln_slice_of(e->rec.cert_der, e->rec.cert_len), &e->cert, d));
	e->is_root = strcmp(e->rec.role, "root") == 0;
	kiln_strtrunc(e->key.label, e->rec.key_label, sizeof(e->key.label));
	KILN_ENSURE(e->rec.key_id_len <= sizeof(e->key.id), KILN_ERR_STORE);
	memcpy(e->key.id, e->rec.key_id, e->rec.key_id_len);
	e->key.id_len = e->rec.key_id_len;
	e->key.alg = e->alg;
	e->token = ca->tokens[e->env];
	if (e->token != NULL && strcmp(kiln_token_label(e->token), e->rec.token) != 0)
		return kiln_diag_set(d, KILN_ERR_POLICY_ENV,
				     "CA %s lives in token %s, but the %s token is %s; check kiln.yaml",
				     e->rec.name, e->rec.token, e->rec.env,
				     kiln_token_label(e->token));
	return kiln_ok();
}

static void link_parents(kiln_ca *ca)
{
	for (size_t i = 0; i < ca->n_cas; i++) {
		for (size_t j = 0; j < ca->n_cas; j++) {
			if (ca->cas[i].rec.parent_id == ca->cas[j].rec.id && i != j)
				ca->cas[i].parent = &ca->cas[j];
		}
	}
}

kiln_result kiln_ca_open(const struct kiln_ca_opts *opts, kiln_ca **out, kiln_diag *d)
{
	struct kiln_ca_rec *list = NULL;
	size_t n = 0;
	kiln_ca *ca = calloc(1, sizeof(*ca));
	kiln_result r;

	*out = NULL;
	KILN_ENSURE(ca != NULL, KILN_ERR_NOMEM);
	if (pthread_mutex_init(&ca->lock, NULL) != 0) {
		free(ca);
		return kiln_fail(KILN_ERR_INTERNAL);
	}
	ca->store = opts->store;
	memcpy(ca->tokens, opts->tokens, sizeof(ca->tokens));
	kiln_strtrunc(ca->public_url, opts->public_url != NULL ? opts->public_url : "",
		      sizeof(ca->public_url));
	ca->identity_validity_days =
		opts->identity_validity_days != 0 ? opts->identity_validity_days : 825;
	ca->log = opts->log;
	KILN_TRY(r, kiln_store_ca_list(ca->store, &list, &n, d));
	if (n == 0) {
		r = kiln_diag_set(d, KILN_ERR_NOT_FOUND, "the inventory holds no CA; run kiln init");
		goto out;
	}
	ca->cas = calloc(n, sizeof(*ca->cas));
	if (ca->cas == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ca->cas[i].rec = list[i]; /* the record's heap fields move to the entry */
		memset(&list[i], 0, sizeof(list[i]));
		ca->n_cas++;
		KILN_TRY(r, load_entry(ca, &ca->cas[i], d));
	}
	link_parents(ca);
	for (size_t i = 0; i < ca->n_cas; i++) {
		kiln_buf_init(&ca->cas[i].chain_pem, KILN_BUF_DEFAULT_MAX);
		for (struct ca_entry *e = &ca->cas[i]; e != NULL; e = e->parent)
			KILN_TRY(r, ca_der_to_pem(kiln_slice_of(e->rec.cert_der, e->rec.cert_len),
						  &ca->cas[i].chain_pem));
	}
	*out = ca;
	ca = NULL;
out:
	kiln_store_ca_list_free(list, n);
	kiln_ca_free(ca);
	return r;
}

void kiln_ca_free(kiln_ca *ca)
{
	struct policy_cache_entry *p, *next;

	if (ca == NULL)
		return;
	for (size_t i = 0; i < ca->n_cas; i++) {
		X509_free(ca->cas[i].cert);
		kiln_ca_rec_cleanup(&ca->cas[i].rec);
		kiln_buf_cleanup(&ca->cas[i].chain_pem);
	}
	free(ca->cas);
	for (p = ca->policies; p != NULL; p = next) {
		next = p->next;
		kiln_policy_free(p->policy);
		free(p);
	}
	(void)pthread_mutex_destroy(&ca->lock);
	free(ca);
}

kiln_result kiln_ca_chain_pem(kiln_ca *ca, kiln_env env, kiln_buf *out, kiln_diag *d)
{
	struct ca_entry *e = ca_issuing(ca, env);

	if (e == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no issuing CA for environment %s",
				     kiln_env_name(env));
	return kiln_buf_append_slice(out, kiln_buf_view(&e->chain_pem));
}

static struct policy_cache_entry *cache_find(kiln_ca *ca, const struct kiln_policy_rec *rec)
{
	for (struct policy_cache_entry *p = ca->policies; p != NULL; p = p->next) {
		if (p->version == rec->version && strcmp(p->product, rec->product) == 0 &&
		    memcmp(p->sha256, rec->sha256, 32) == 0)
			return p;
	}
	return NULL;
}

kiln_result ca_policy_active(kiln_ca *ca, const char *product, const kiln_policy **out,
			     int64_t *version, kiln_diag *d)
{
	struct kiln_policy_rec rec = { 0 };
	struct policy_cache_entry *e;
	kiln_policy *parsed = NULL;
	kiln_result r;

	/* Version and digest first: the text is read and parsed once per version. */
	r = kiln_store_policy_active_head(ca->store, product, &rec, NULL);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_UNKNOWN_PRODUCT,
				     "unknown product '%.64s': no active policy; add one with kiln policy add",
				     product);
	KILN_GUARD(r);
	KILN_ENSURE(pthread_mutex_lock(&ca->lock) == 0, KILN_ERR_INTERNAL);
	e = cache_find(ca, &rec);
	if (e == NULL) {
		/* That very version (the active one may have changed since: it is then parsed next time). */
		int64_t v = rec.version;

		kiln_policy_rec_cleanup(&rec);
		r = kiln_store_policy_get(ca->store, product, v, &rec, d);
		if (kiln_is_ok(r))
			r = kiln_policy_parse(kiln_slice_of(rec.yaml, rec.yaml_len), product, &parsed,
					      d);
		e = kiln_is_ok(r) ? calloc(1, sizeof(*e)) : NULL;
		if (e != NULL) {
			kiln_strtrunc(e->product, rec.product, sizeof(e->product));
			e->version = rec.version;
			memcpy(e->sha256, rec.sha256, 32);
			e->policy = parsed;
			parsed = NULL;
			e->next = ca->policies;
			ca->policies = e;
		} else if (kiln_is_ok(r)) {
			r = kiln_fail(KILN_ERR_NOMEM);
		}
	}
	if (e != NULL) {
		for (struct policy_cache_entry *p = ca->policies; p != NULL; p = p->next)
			if (strcmp(p->product, e->product) == 0)
				p->head = p == e;
		*out = e->policy;
		*version = e->version;
	}
	(void)pthread_mutex_unlock(&ca->lock);
	kiln_policy_free(parsed);
	kiln_policy_rec_cleanup(&rec);
	return r;
}

kiln_result ca_policy_current(kiln_ca *ca, const char *product, const kiln_policy **out,
			      int64_t *version, kiln_diag *d)
{
	struct policy_cache_entry *e;

	KILN_ENSURE(pthread_mutex_lock(&ca->lock) == 0, KILN_ERR_INTERNAL);
	for (e = ca->policies; e != NULL; e = e->next)
		if (e->head && strcmp(e->product, product) == 0)
			break;
	if (e != NULL) {
		*out = e->policy;
		*version = e->version;
	}
	(void)pthread_mutex_unlock(&ca->lock);
	return e != NULL ? kiln_ok() : ca_policy_active(ca, product, out, version, d);
}

void ca_policy_forget(kiln_ca *ca, const char *product)
{
	if (pthread_mutex_lock(&ca->lock) != 0)
		return;
	for (struct policy_cache_entry *e = ca->policies; e != NULL; e = e->next)
		if (strcmp(e->product, product) == 0)
			e->head = false;
	(void)pthread_mutex_unlock(&ca->lock);
}
