/*
 * Issuing CA rotation behind M-of-N approvals (operation "ca-rotate").
 *
 * Asking records a request whose parameters name exactly what will be made:
 * {"algorithm", "env", "generation", "name", "role": "issuing"}. No key is
 * made then: a key made for a request that is never approved would be an
 * orphan in the token, and the officers approve "production issuing CA
 * generation 2, P-256", which the run makes and nothing else.
 *
 * Running (once approved, before expiry, once) checks everything that can be
 * checked first, then generates the new key inside the environment's token
 * (CKA_TOKEN, sensitive, not extractable), has the root sign the new CA's
 * certificate with the profile kiln init gives issuing CAs (pathLen 0,
 * keyCertSign and cRLSign, SKI/AKI), and only then commits, in one
 * transaction: the request executed, the old CA retired for issuance, the
 * new CA and its certificate row, a "ca-create" and a "ca-rotate" event. If
 * anything fails after the key exists, the key is destroyed.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKDATE_SECONDS 60
#define GENERATION_MAX 9999

/* What a ca-rotate request names, parsed and checked. */
struct rotate_target {
	kiln_env env;
	kiln_alg alg;
	int64_t generation;
	char name[64];
};

static json_t *target_params(const struct rotate_target *t)
{
	return json_pack("{s:s,s:s,s:I,s:s,s:s}", "algorithm", kiln_alg_get(t->alg)->name, "env",
			 kiln_env_name(t->env), "generation", (json_int_t)t->generation, "name",
			 t->name, "role", "issuing");
}

static void target_name(struct rotate_target *t)
{
	(void)snprintf(t->name, sizeof(t->name), "%s-issuing-%lld", kiln_env_name(t->env),
		       (long long)t->generation);
}

/* The environment of a rotation: production or test (the service CA does not rotate). */
static kiln_result parse_env(const char *name, kiln_env *env, kiln_diag *d)
{
	if (name == NULL || !kiln_is_ok(kiln_env_parse(name, env)) ||
	    (*env != KILN_ENV_PRODUCTION && *env != KILN_ENV_TEST))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "ca rotate: unknown environment '%.32s': production or test",
				     name != NULL ? name : "");
	return kiln_ok();
}

static kiln_result parse_alg(const char *name, kiln_alg *alg, kiln_diag *d)
{
	if (name == NULL || !kiln_is_ok(kiln_alg_parse(name, alg)))
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "ca rotate: unknown algorithm '%.32s': p256, p384, ed25519 or "
				     "rsa3072", name != NULL ? name : "");
	return kiln_ok();
}

kiln_result kiln_ca_rotate_request(kiln_ca *ca, const char *env_name, const char *alg_name,
				   const char *actor, const struct kiln_govern_rules *rules,
				   struct kiln_rotate_result *out, kiln_diag *d)
{
	struct rotate_target t = { 0 };
	struct kiln_request_rec q;
	struct ca_entry *cur = NULL;
	json_t *params = NULL;
	kiln_diag local;
	kiln_result r;

	KILN_ENSURE(ca != NULL && actor != NULL && rules != NULL && out != NULL, KILN_ERR_ARG);
	memset(out, 0, sizeof(*out));
	kiln_diag_clear(&local);
	r = parse_env(env_name, &t.env, &local);
	if (kiln_is_ok(r)) {
		cur = ca_issuing(ca, t.env);
		if (cur == NULL)
			r = kiln_diag_set(&local, KILN_ERR_NOT_FOUND,
					  "no active issuing CA for environment %s; run kiln init",
					  kiln_env_name(t.env));
	}
	if (kiln_is_ok(r)) {
		if (alg_name != NULL)
			r = parse_alg(alg_name, &t.alg, &local);
		else
			t.alg = cur->alg; /* the same algorithm as the CA it replaces */
	}
	if (kiln_is_ok(r) && cur->rec.generation >= GENERATION_MAX)
		r = kiln_diag_set(&local, KILN_ERR_TOO_BIG, "issuing CA %s is generation %lld: no more "
				  "rotations", cur->rec.name, (long long)cur->rec.generation);
	if (!kiln_is_ok(r)) {
		r = kiln_govern_refused(ca->store, "request-refused", actor, "ca-rotate", r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	t.generation = cur->rec.generation + 1;
	target_name(&t);
	params = target_params(&t);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	r = kiln_govern_request_create(ca->store, rules, KILN_OP_CA_ROTATE, params, actor, 0, &q, d);
	json_decref(params);
	KILN_GUARD(r);
	kiln_strtrunc(out->request_id, q.id, sizeof(out->request_id));
	kiln_strtrunc(out->env, kiln_env_name(t.env), sizeof(out->env));
	kiln_strtrunc(out->old_name, cur->rec.name, sizeof(out->old_name));
	kiln_strtrunc(out->new_name, t.name, sizeof(out->new_name));
	kiln_strtrunc(out->alg, kiln_alg_get(t.alg)->name, sizeof(out->alg));
	out->generation = t.generation;
	out->quorum = q.quorum;
	out->expires = q.expires;
	return kiln_ok();
}

/*
 * The target a stored request names. Anything else than a well-formed
 * ca-rotate request yields empty parameters, which kiln_govern_check then
 * refuses as a mismatch (with its event).
 */
static json_t *stored_target(const struct kiln_request_rec *q, struct rotate_target *t)
{
	json_t *j = NULL, *p;
	const char *env = NULL, *alg = NULL, *name = NULL, *role = NULL;
	json_int_t gen = 0;
	kiln_diag ignored;

	memset(t, 0, sizeof(*t));
	if (strcmp(q->operation, kiln_op_name(KILN_OP_CA_ROTATE)) == 0)
		j = json_loads(q->params_json, 0, NULL);
	if (j != NULL &&
	    json_unpack(j, "{s:s,s:s,s:I,s:s,s:s}", "algorithm", &alg, "env", &env, "generation",
			&gen, "name", &name, "role", &role) == 0 &&
	    kiln_is_ok(parse_env(env, &t->env, &ignored)) &&
	    kiln_is_ok(parse_alg(alg, &t->alg, &ignored)) && gen > 1 && gen <= GENERATION_MAX &&
	    strcmp(role, "issuing") == 0) {
		t->generation = gen;
		target_name(t);
		p = strcmp(t->name, name) == 0 ? target_params(t) : NULL;
		json_decref(j);
		if (p != NULL)
			return p;
	} else {
		json_decref(j);
	}
	t->generation = 0;
	return json_object();
}

/* The new CA's subject: the old one's, its CN numbered with the generation. */
static kiln_result rotate_subject(const struct ca_entry *cur, int64_t generation, X509_NAME **out,
				  kiln_diag *d)
{
	X509_NAME *n = X509_NAME_dup(X509_get_subject_name(cur->cert));
	char cn[160] = "", base[128] = "";
	int i = n != NULL ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	size_t len;

	if (n == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory for a name");
	if (i >= 0 && ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i))) > 0)
		kiln_strtrunc(base, (const char *)utf8, sizeof(base));
	OPENSSL_free(utf8);
	/* "... Issuing CA 2" becomes "... Issuing CA 3", not "... Issuing CA 2 3". */
	len = strlen(base);
	if (cur->rec.generation > 1) {
		while (len > 0 && base[len - 1] >= '0' && base[len - 1] <= '9')
			base[--len] = '\0';
		while (len > 0 && base[len - 1] == ' ')
			base[--len] = '\0';
	}
	(void)snprintf(cn, sizeof(cn), "%.120s %lld", base[0] != '\0' ? base : "kiln Issuing CA",
		       (long long)generation);
	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) >= 0)
		X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, i));
	if (X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
				       -1, -1, 0) != 1) {
		X509_NAME_free(n);
		ERR_clear_error();
		return kiln_diag_set(d, KILN_ERR_CRYPTO, "cannot build the new issuing CA's name");
	}
	*out = n;
	return kiln_ok();
}

/* One rotation being run: everything computed before the commit. */
struct rotate_work {
	kiln_ca *ca;
	const char *id, *actor;
	struct rotate_target t;
	struct ca_entry *cur, *root;
	kiln_key_ref key;
	EVP_PKEY *pub;
	struct ca_cert_made c;
	int64_t new_id;
};

/* The new CA's certificate, from the root, with kiln init's issuing CA profile. */
static kiln_result rotate_cert(struct rotate_work *w, kiln_diag *d)
{
	struct kiln_cert_spec spec = { 0 };
	X509_NAME *subject = NULL;
	int64_t days = (w->cur->rec.not_after - w->cur->rec.not_before) / 86400;
	kiln_result r;

	if (days < 1)
		days = 1;
	KILN_TRY(r, rotate_subject(w->cur, w->t.generation, &subject, d));
	w->c.nb = kiln_now() - BACKDATE_SECONDS;
	w->c.na = w->c.nb + BACKDATE_SECONDS + days * 86400;
	if (w->c.na > w->root->rec.not_after)
		w->c.na = w->root->rec.not_after;
	if (w->c.na <= kiln_now()) {
		r = kiln_diag_set(d, KILN_ERR_CERT_EXPIRED, "root CA %s has expired: a new issuing "
				  "CA under it would be born invalid", w->root->rec.name);
		goto out;
	}
	spec.subject = subject;
	spec.subject_key = w->pub;
	spec.issuer = w->root->cert;
	spec.sig_alg = w->root->alg;
	spec.path_len = 0;
	KILN_TRY(r, ca_certify_ca(w->root->token, &w->root->key, &spec, days, &w->c, d));
out:
	X509_NAME_free(subject);
	return r;
}

static kiln_result rotate_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct rotate_work *w = ctx;
	struct kiln_ca_rec rec = { 0 };
	struct kiln_cert_rec cert = { 0 };
	const char *alg = kiln_alg_get(w->t.alg)->name;

	KILN_GUARD(kiln_govern_tx_executed(tx, w->id, w->actor, 0, d));
	/* Retire first: the schema allows one active issuing CA per environment. */
	KILN_GUARD(kiln_store_tx_ca_retire(tx, w->cur->rec.id, d));
	kiln_strtrunc(rec.name, w->t.name, sizeof(rec.name));
	kiln_strtrunc(rec.env, w->cur->rec.env, sizeof(rec.env));
	kiln_strtrunc(rec.role, "issuing", sizeof(rec.role));
	kiln_strtrunc(rec.alg, alg, sizeof(rec.alg));
	kiln_strtrunc(rec.token, w->cur->rec.token, sizeof(rec.token));
	rec.parent_id = w->root->rec.id;
	ca_made_rec_fill(&rec, &w->c, &w->key);
	rec.generation = w->t.generation;
	kiln_strtrunc(rec.status, "active", sizeof(rec.status));
	KILN_GUARD(kiln_store_tx_ca_add(tx, &rec, d));
	w->new_id = rec.id;
	ca_cert_rec_fill(&cert, w->c.serial, w->root, "ca", X509_get_subject_name(w->c.cert), w->c.nb,
			 w->c.na, kiln_buf_view(&w->c.der));
	KILN_GUARD(kiln_key_fingerprint(w->pub, cert.spki_sha256));
	KILN_GUARD(kiln_store_tx_cert_add(tx, &cert, d));
	KILN_GUARD(ca_tx_event(tx, "ca-create", w->actor, rec.name,
			       ca_event_json("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "env", rec.env,
					     "role", "issuing", "alg", alg, "token", rec.token,
					     "serial", w->c.serial, "subject", w->c.subject,
					     "generation", (json_int_t)rec.generation),
			       d));
	return ca_tx_event(tx, "ca-rotate", w->actor, rec.env,
			   ca_event_json("{s:s,s:s,s:s,s:s,s:I,s:s}", "request", w->id, "retired",
					 w->cur->rec.name, "active", rec.name, "serial",
					 w->c.serial, "generation", (json_int_t)rec.generation,
					 "alg", alg),
			   d);
}

/* Everything after the approvals check: the key, the certificate, the commit. */
static kiln_result rotate_run(struct rotate_work *w, kiln_diag *d)
{
	kiln_ca *ca = w->ca;

	w->cur = ca_issuing(ca, w->t.env);
	if (w->cur == NULL || w->cur->parent == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no active issuing CA for environment %s",
				     kiln_env_name(w->t.env));
	if (w->cur->rec.generation + 1 != w->t.generation)
		return kiln_diag_set(d, KILN_ERR_REQUEST_MISMATCH,
				     "request %s makes %s generation %lld, but the active issuing CA "
				     "is %s (generation %lld) now; make a new request", w->id,
				     kiln_env_name(w->t.env), (long long)w->t.generation,
				     w->cur->rec.name, (long long)w->cur->rec.generation);
	w->root = w->cur->parent;
	if (w->cur->token == NULL || w->root->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING, "this process has no access to "
				     "token %s of the %s CAs", w->cur->rec.token, w->cur->rec.env);
	KILN_GUARD(kiln_token_generate(w->cur->token, w->t.alg, w->t.name, &w->key, &w->pub, d));
	KILN_GUARD(rotate_cert(w, d));
	return kiln_store_write(ca->store, rotate_tx, w, d);
}

kiln_result kiln_ca_rotate_run(kiln_ca *ca, const char *id, const char *actor,
			       struct kiln_rotate_result *out, kiln_diag *d)
{
	struct rotate_work w;
	struct kiln_request_rec q;
	json_t *params;
	kiln_diag local;
	kiln_result r;

	KILN_ENSURE(ca != NULL && id != NULL && actor != NULL && out != NULL, KILN_ERR_ARG);
	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.ca = ca;
	w.id = id;
	w.actor = actor;
	kiln_buf_init(&w.c.der, KILN_BUF_DEFAULT_MAX);
	kiln_diag_clear(&local);
	r = kiln_store_request_get(ca->store, id, &q, &local);
	if (!kiln_is_ok(r)) {
		r = kiln_govern_refused(ca->store, "request-refused", actor, id, r, &local);
		return kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	}
	params = stored_target(&q, &w.t);
	KILN_ENSURE(params != NULL, KILN_ERR_NOMEM);
	/* Unknown, mismatched, executed, expired, short of approvals: one event each, nothing else. */
	r = kiln_govern_check(ca->store, id, KILN_OP_CA_ROTATE, params, actor, 0, &q, d);
	json_decref(params);
	KILN_GUARD(r);
	r = rotate_run(&w, &local);
	if (!kiln_is_ok(r) && w.key.label[0] != '\0')
		(void)kiln_is_ok(kiln_token_destroy(w.cur->token, &w.key, NULL));
	if (!kiln_is_ok(r)) {
		r = kiln_govern_refused(ca->store, r.code == KILN_ERR_REQUEST_MISMATCH ?
					"request-refused" : "ca-rotate-failed", actor, id, r, &local);
		r = kiln_diag_set(d, r.code, "%s", kiln_diag_message(&local, r));
	} else {
		kiln_strtrunc(out->request_id, id, sizeof(out->request_id));
		kiln_strtrunc(out->env, w.cur->rec.env, sizeof(out->env));
		kiln_strtrunc(out->old_name, w.cur->rec.name, sizeof(out->old_name));
		kiln_strtrunc(out->new_name, w.t.name, sizeof(out->new_name));
		kiln_strtrunc(out->alg, kiln_alg_get(w.t.alg)->name, sizeof(out->alg));
		kiln_strtrunc(out->serial, w.c.serial, sizeof(out->serial));
		kiln_strtrunc(out->key_label, w.key.label, sizeof(out->key_label));
		out->generation = w.t.generation;
		out->quorum = q.quorum;
		out->expires = q.expires;
	}
	EVP_PKEY_free(w.pub);
	X509_free(w.c.cert);
	kiln_buf_cleanup(&w.c.der);
	return r;
}
