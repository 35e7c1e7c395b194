/*
 * The key ceremony for one environment: root and issuing CA keys generated
 * inside the environment's own token, the root self-signed, the issuing CA
 * signed by the root, both checked, both recorded with their events in one
 * transaction. If anything fails after the keys exist, they are destroyed.
 */
#include "ca_impl.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKDATE_SECONDS 60

struct ca_built {
	const char *name;
	kiln_key_ref key;
	EVP_PKEY *pub;
	struct ca_cert_made c;
};

static const char *env_title(kiln_env env)
{
	switch (env) {
	case KILN_ENV_PRODUCTION:
		return "Production";
	case KILN_ENV_TEST:
		return "Test";
	case KILN_ENV_SERVICE:
		return "Service";
	case KILN_ENV_NONE:
	default:
		return "?";
	}
}

static kiln_result build_subject(const struct kiln_hierarchy_opts *o, const char *what,
				 X509_NAME **out, kiln_diag *d)
{
	char cn[128], ou[96];
	struct kiln_name_attr attrs[3];

	(void)snprintf(cn, sizeof(cn), "%.40s %s %s CA", o->org, env_title(o->env), what);
	(void)snprintf(ou, sizeof(ou), "kiln %.64s", o->deployment_id);
	attrs[0] = (struct kiln_name_attr){ "O", o->org };
	attrs[1] = (struct kiln_name_attr){ "OU", ou };
	attrs[2] = (struct kiln_name_attr){ "CN", cn };
	return kiln_name_build(attrs, 3, out, d);
}

static kiln_result make_ca(kiln_token *tok, const struct kiln_hierarchy_opts *o,
			   struct ca_built *self, const struct ca_built *parent, kiln_diag *d)
{
	bool root = parent == NULL;
	unsigned days = root ? o->root_validity_days : o->issuing_validity_days;
	struct kiln_cert_spec spec = { 0 };
	X509_NAME *subject = NULL;
	kiln_result r;

	KILN_TRY(r, kiln_token_generate(tok, o->alg, self->name, &self->key, &self->pub, d));
	KILN_TRY(r, build_subject(o, root ? "Root" : "Issuing", &subject, d));
	self->c.nb = kiln_now() - BACKDATE_SECONDS;
	self->c.na = self->c.nb + BACKDATE_SECONDS + (int64_t)days * 86400;
	if (!root && self->c.na > parent->c.na)
		self->c.na = parent->c.na;
	spec.subject = subject;
	spec.subject_key = self->pub;
	spec.issuer = root ? NULL : parent->c.cert;
	spec.sig_alg = o->alg;
	spec.path_len = root ? 1 : 0;
	KILN_TRY(r, ca_certify_ca(tok, root ? &self->key : &parent->key, &spec, (int64_t)days,
				  &self->c, d));
out:
	X509_NAME_free(subject);
	return r;
}

struct record_ctx {
	const struct kiln_hierarchy_opts *o;
	kiln_token *tok;
	struct ca_built *cas; /* root, issuing */
};

static kiln_result record_one(kiln_store_tx *tx, const struct record_ctx *c,
			      const struct ca_built *b, const char *role, int64_t parent_id,
			      int64_t *id, kiln_diag *d)
{
	struct kiln_ca_rec rec = { 0 };
	struct kiln_cert_rec cert = { 0 };
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	kiln_strtrunc(rec.name, b->name, sizeof(rec.name));
	kiln_strtrunc(rec.env, kiln_env_name(c->o->env), sizeof(rec.env));
	kiln_strtrunc(rec.role, role, sizeof(rec.role));
	kiln_strtrunc(rec.alg, kiln_alg_get(c->o->alg)->name, sizeof(rec.alg));
	kiln_strtrunc(rec.token, kiln_token_label(c->tok), sizeof(rec.token));
	rec.parent_id = parent_id;
	ca_made_rec_fill(&rec, &b->c, &b->key);
	KILN_GUARD(kiln_store_tx_ca_add(tx, &rec, d));
	*id = rec.id;
	ca_cert_rec_fill(&cert, b->c.serial, NULL, "ca", X509_get_subject_name(b->c.cert), b->c.nb,
			 b->c.na, kiln_buf_view(&b->c.der));
	cert.ca_id = parent_id != 0 ? parent_id : rec.id;
	kiln_strtrunc(cert.env, rec.env, sizeof(cert.env));
	KILN_GUARD(kiln_key_fingerprint(b->pub, cert.spki_sha256));
	KILN_GUARD(kiln_store_tx_cert_add(tx, &cert, d));
	ev.time = rec.created;
	kiln_strtrunc(ev.type, "ca-create", sizeof(ev.type));
	kiln_strtrunc(ev.actor, c->o->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, b->name, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:s,s:s,s:s,s:s,s:s,s:s}", "env", rec.env, "role", role,
				       "alg", rec.alg, "token", rec.token, "serial", b->c.serial,
				       "subject", b->c.subject);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

static kiln_result record_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct record_ctx *c = ctx;
	int64_t root_id = 0, issuing_id = 0;

	KILN_GUARD(record_one(tx, c, &c->cas[0], "root", 0, &root_id, d));
	return record_one(tx, c, &c->cas[1], "issuing", root_id, &issuing_id, d);
}

kiln_result kiln_ca_create_hierarchy(kiln_token *tok, kiln_store *store,
				     const struct kiln_hierarchy_opts *o, kiln_diag *d)
{
	char names[2][64];
	struct ca_built cas[2] = { 0 };
	struct record_ctx rc = { o, tok, cas };
	kiln_result r;

	KILN_ENSURE(kiln_alg_get(o->alg) != NULL && o->env != KILN_ENV_NONE, KILN_ERR_ARG);
	(void)snprintf(names[0], sizeof(names[0]), "%s-root", kiln_env_name(o->env));
	(void)snprintf(names[1], sizeof(names[1]), "%s-issuing", kiln_env_name(o->env));
	for (int i = 0; i < 2; i++) {
		cas[i].name = names[i];
		kiln_buf_init(&cas[i].c.der, KILN_BUF_DEFAULT_MAX);
	}
	KILN_TRY(r, make_ca(tok, o, &cas[0], NULL, d));
	KILN_TRY(r, make_ca(tok, o, &cas[1], &cas[0], d));
	KILN_TRY(r, kiln_store_write(store, record_tx, &rc, d));
out:
	for (int i = 0; i < 2; i++) {
		if (!kiln_is_ok(r) && cas[i].key.label[0] != '\0')
			(void)kiln_is_ok(kiln_token_destroy(tok, &cas[i].key, NULL));
		EVP_PKEY_free(cas[i].pub);
		X509_free(cas[i].c.cert);
		kiln_buf_cleanup(&cas[i].c.der);
	}
	return r;
}
