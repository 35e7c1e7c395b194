/*
 * CRLs per issuing CA: every revocation recorded under the CA (by any code
 * path: the store's revocation rows come from a trigger), sorted by serial,
 * built by hand (crypto/crl.c), signed in the HSM, recorded with a number one
 * above the last before it is released.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

struct entries {
	struct kiln_crl_entry *v;
	size_t n, cap;
};

static kiln_result collect(void *ctx, const struct kiln_revoked *r, kiln_diag *d)
{
	struct entries *e = ctx;

	if (e->n == e->cap) {
		size_t ncap = e->cap == 0 ? 1024 : e->cap * 2;
		void *p;

		if (e->n >= KILN_CRL_MAX_ENTRIES)
			return kiln_diag_set(d, KILN_ERR_TOO_BIG, "more than %d revoked certificates",
					     KILN_CRL_MAX_ENTRIES);
		p = realloc(e->v, ncap * sizeof(*e->v));
		if (p == NULL)
			return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory building a CRL");
		e->v = p;
		e->cap = ncap;
	}
	if (!kiln_is_ok(kiln_serial_from_hex(r->serial, &e->v[e->n])))
		return kiln_diag_set(d, KILN_ERR_STORE, "revoked serial %s is not hex", r->serial);
	e->v[e->n].revoked_at = r->revoked_at;
	e->v[e->n].reason = r->reason;
	e->n++;
	return kiln_ok();
}

struct crl_commit {
	const struct kiln_crl_rec *rec;
	const char *ca_name, *actor;
};

static kiln_result crl_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct crl_commit *c = ctx;
	struct kiln_event_rec ev = { 0 };
	kiln_result r;
	char *detail = ca_event_json("{s:I,s:I,s:I,s:I,s:I}", "number", (json_int_t)c->rec->number,
				     "entries", (json_int_t)c->rec->entries, "revocation_seq",
				     (json_int_t)c->rec->revocation_seq, "this_update",
				     (json_int_t)c->rec->this_update, "next_update",
				     (json_int_t)c->rec->next_update);

	KILN_ENSURE(detail != NULL, KILN_ERR_NOMEM);
	KILN_TRY(r, kiln_store_tx_crl_add(tx, c->rec, d));
	ev.time = c->rec->this_update;
	kiln_strtrunc(ev.type, "crl-issue", sizeof(ev.type));
	kiln_strtrunc(ev.actor, c->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, c->ca_name, sizeof(ev.subject));
	ev.detail_json = detail;
	r = kiln_store_tx_event_add(tx, &ev, d);
out:
	free(detail);
	return r;
}

static kiln_result sign_crl(const struct ca_entry *e, const struct kiln_crl_spec *spec,
			    kiln_buf *der, kiln_diag *d)
{
	struct kiln_sign_req req = { &e->key, { NULL, 0 }, "crl" };
	kiln_signer signer = kiln_token_signer(e->token);
	kiln_buf tbs, sig;
	kiln_result r;

	kiln_buf_init(&tbs, KILN_CRL_MAX_BYTES);
	kiln_buf_init(&sig, 4096);
	KILN_TRY(r, kiln_crl_tbs(spec, &tbs, d));
	req.tbs = kiln_buf_view(&tbs);
	KILN_TRY(r, kiln_signer_sign(&signer, &req, &sig, d));
	r = kiln_signed_assemble_big(kiln_buf_view(&tbs), e->alg, kiln_buf_view(&sig), der);
out:
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	return r;
}

kiln_result kiln_ca_crl_issue(kiln_ca *ca, const char *ca_name, int64_t validity_s,
			      const char *actor, struct kiln_crl_result *res, kiln_diag *d)
{
	struct ca_entry *e;
	struct entries ent = { 0 };
	struct kiln_crl_spec spec = { 0 };
	struct kiln_crl_rec last, *rec = &res->rec;
	struct crl_commit cc = { rec, ca_name, actor };
	bool found = false;
	kiln_result r;

	KILN_ENSURE(ca != NULL && ca_name != NULL && actor != NULL && res != NULL, KILN_ERR_ARG);
	e = ca_find(ca, ca_name);
	if (e == NULL || strcmp(e->rec.role, "issuing") != 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no issuing CA named %s", ca_name);
	if (e->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING, "this process has no access to the "
				     "token of CA %s", ca_name);
	if (validity_s < 60 || validity_s > 366 * 86400)
		return kiln_diag_set(d, KILN_ERR_ARG, "CRL validity must be 1 minute to 366 days");
	memset(rec, 0, sizeof(*rec));
	kiln_strtrunc(res->ca_name, ca_name, sizeof(res->ca_name));
	/* The generation first: the CRL reflects at least everything up to it. */
	KILN_GUARD(kiln_store_revocation_seq(ca->store, &rec->revocation_seq, d));
	KILN_TRY(r, kiln_store_revoked_each(ca->store, e->rec.id, 0, collect, &ent, d));
	KILN_TRY(r, kiln_store_crl_last(ca->store, e->rec.id, &last, &found, d));
	rec->ca_id = e->rec.id;
	rec->number = found ? last.number + 1 : 1;
	rec->this_update = kiln_now();
	rec->next_update = rec->this_update + validity_s;
	rec->entries = (int64_t)ent.n;
	spec.issuer = e->cert;
	spec.sig_alg = e->alg;
	spec.number = (uint64_t)rec->number;
	spec.this_update = rec->this_update;
	spec.next_update = rec->next_update;
	spec.entries = ent.v;
	spec.n = ent.n;
	KILN_TRY(r, sign_crl(e, &spec, &res->der, d));
	(void)SHA256(res->der.ptr, res->der.len, rec->sha256);
	r = kiln_store_write(ca->store, crl_tx, &cc, d);
out:
	free(ent.v);
	return r;
}
