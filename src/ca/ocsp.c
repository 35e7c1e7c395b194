/*
 * The OCSP responder (RFC 6960). Each issuing CA has a delegated OCSP
 * signer: a key in the CA's own token, a certificate from the issuing CA
 * with EKU OCSPSigning and id-pkix-ocsp-nocheck, recorded as CA role "ocsp"
 * ("<env>-ocsp") and certificate kind "ocsp"; made at kiln init, or on first
 * use for deployments older than this.
 *
 * Responses for every certificate of every issuing CA are signed ahead of
 * time, for SHA-1 and SHA-256 CertIDs, and kept in a table keyed by (CA,
 * hash, serial). Answering a cached request is a parse, a lookup and a copy
 * under a read lock: no SQLite, no HSM. A miss (a certificate issued since)
 * reads the store once, signs, and fills the table. Requests with a nonce
 * or several CertIDs are signed for the request. kiln_ocsp_sync() follows
 * the store's revocation generation: every revocation, whichever path made
 * it, replaces its responses; responses past half their validity are
 * signed again. Thread-safe.
 */
#include "ca_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#define OCSP_CERT_DAYS 365
#define BACKDATE_SECONDS 60
#define MAX_ISSUERS 16 /* issuing CAs served: two environments, their rotations */

struct ocsp_issuer {
	struct ca_entry *ca;           /* the issuing CA (borrowed from the engine) */
	uint8_t name_sha1[20], key_sha1[20], name_sha256[32], key_sha256[32];
	kiln_key_ref key;              /* the OCSP signer's key, in ca->token */
	kiln_buf cert_der;             /* the OCSP signer's certificate */
	uint8_t responder_hash[20];    /* SHA-1 of the signer's public key bits */
};

struct slot {
	uint8_t used, issuer, hash, serial_len;
	uint8_t serial[21];
	int status, reason;
	int64_t revoked_at, signed_at;
	uint8_t *der;
	size_t der_len;
};

struct kiln_ocsp {
	kiln_ca *ca;
	int64_t validity_s;
	char actor[KILN_STORE_NAME_MAX];
	struct ocsp_issuer iss[MAX_ISSUERS];
	size_t n_iss;
	pthread_rwlock_t lock; /* guards the table */
	struct slot *tab;
	size_t cap, count;
	int64_t seq;           /* revocation generation reflected (sync thread only) */
};

/* ------------------------------------------------------------ the delegated signer */

static kiln_result signer_subject(const struct ca_entry *issuer, X509_NAME **out, kiln_diag *d)
{
	X509_NAME *n = X509_NAME_dup(X509_get_subject_name(issuer->cert));
	char cn[96];
	int i;

	if (n == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory for a name");
	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) >= 0)
		X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, i));
	if (issuer->rec.generation > 1)
		(void)snprintf(cn, sizeof(cn), "kiln %s OCSP responder %lld", issuer->rec.env,
			       (long long)issuer->rec.generation);
	else
		(void)snprintf(cn, sizeof(cn), "kiln %s OCSP responder", issuer->rec.env);
	if (X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) != 1) {
		X509_NAME_free(n);
		ERR_clear_error();
		return kiln_diag_set(d, KILN_ERR_CRYPTO, "cannot build the OCSP signer's name");
	}
	*out = n;
	return kiln_ok();
}

struct signer_built {
	const struct ca_entry *issuer;
	const char *name, *actor;
	kiln_key_ref key;
	EVP_PKEY *pub;
	X509 *cert;
	kiln_buf der;
	int64_t nb, na;
};

static kiln_result signer_record(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct signer_built *b = ctx;
	struct kiln_ca_rec rec = { 0 };
	struct kiln_cert_rec cert = { 0 };
	struct kiln_event_rec ev = { 0 };
	char serial[KILN_SERIAL_HEX];
	kiln_result r;

	kiln_cert_serial_hex(b->cert, serial, sizeof(serial));
	kiln_strtrunc(rec.name, b->name, sizeof(rec.name));
	kiln_strtrunc(rec.env, b->issuer->rec.env, sizeof(rec.env));
	kiln_strtrunc(rec.role, "ocsp", sizeof(rec.role));
	kiln_strtrunc(rec.alg, b->issuer->rec.alg, sizeof(rec.alg));
	kiln_strtrunc(rec.token, b->issuer->rec.token, sizeof(rec.token));
	kiln_strtrunc(rec.key_label, b->key.label, sizeof(rec.key_label));
	memcpy(rec.key_id, b->key.id, b->key.id_len);
	rec.key_id_len = b->key.id_len;
	rec.parent_id = b->issuer->rec.id;
	kiln_strtrunc(rec.serial, serial, sizeof(rec.serial));
	kiln_name_format(X509_get_subject_name(b->cert), rec.subject, sizeof(rec.subject));
	rec.not_before = b->nb;
	rec.not_after = b->na;
	rec.created = kiln_now();
	rec.cert_der = b->der.ptr;
	rec.cert_len = b->der.len;
	KILN_GUARD(kiln_store_tx_ca_add(tx, &rec, d));
	ca_cert_rec_fill(&cert, serial, b->issuer, "ocsp", X509_get_subject_name(b->cert), b->nb,
			 b->na, kiln_buf_view(&b->der));
	KILN_GUARD(kiln_key_fingerprint(b->pub, cert.spki_sha256));
	KILN_GUARD(kiln_store_tx_cert_add(tx, &cert, d));
	ev.time = rec.created;
	kiln_strtrunc(ev.type, "ca-create", sizeof(ev.type));
	kiln_strtrunc(ev.actor, b->actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, b->name, sizeof(ev.subject));
	ev.detail_json = ca_event_json("{s:s,s:s,s:s,s:s}", "env", rec.env, "role", "ocsp",
				       "serial", serial, "issuer", b->issuer->rec.name);
	KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
	r = kiln_store_tx_event_add(tx, &ev, d);
	free(ev.detail_json);
	return r;
}

/* Makes and records the OCSP signer of an issuing CA (key in the CA's token). */
static kiln_result signer_make(kiln_ca *ca, const struct ca_entry *issuer, const char *name,
			       const char *actor, kiln_diag *d)
{
	struct signer_built b;
	struct kiln_cert_spec spec = { 0 };
	struct kiln_lint_profile prof = { 0 };
	X509_EXTENSION *nocheck = NULL;
	const X509_EXTENSION *extra[1];
	ASN1_NULL *null = ASN1_NULL_new();
	X509_NAME *subject = NULL;
	kiln_buf tbs;
	kiln_result r;

	memset(&b, 0, sizeof(b));
	b.issuer = issuer;
	b.name = name;
	b.actor = actor;
	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&b.der, KILN_BUF_DEFAULT_MAX);
	nocheck = null != NULL ? X509V3_EXT_i2d(NID_id_pkix_OCSP_noCheck, 0, null) : NULL;
	if (nocheck == NULL) {
		r = kiln_diag_set(d, KILN_ERR_CRYPTO, "cannot encode id-pkix-ocsp-nocheck");
		goto out;
	}
	extra[0] = nocheck;
	KILN_TRY(r, kiln_token_generate(issuer->token, issuer->alg, name, &b.key, &b.pub, d));
	KILN_TRY(r, signer_subject(issuer, &subject, d));
	KILN_TRY(r, kiln_serial_new(spec.serial));
	b.nb = kiln_now() - BACKDATE_SECONDS;
	b.na = b.nb + BACKDATE_SECONDS + (int64_t)OCSP_CERT_DAYS * 86400;
	if (b.na > issuer->rec.not_after)
		b.na = issuer->rec.not_after;
	spec.not_before = b.nb;
	spec.not_after = b.na;
	spec.subject = subject;
	spec.subject_key = b.pub;
	spec.issuer = issuer->cert;
	spec.sig_alg = issuer->alg;
	spec.path_len = -1;
	spec.key_usage = KU_DIGITAL_SIGNATURE;
	spec.eku[0] = NID_OCSP_sign;
	spec.n_eku = 1;
	spec.extra = extra;
	spec.n_extra = 1;
	KILN_TRY(r, kiln_cert_tbs(&spec, &tbs, d));
	prof = (struct kiln_lint_profile){ false, -1, KU_DIGITAL_SIGNATURE, OCSP_CERT_DAYS + 1,
					   issuer->cert, issuer->alg, NULL, b.pub, spec.subject_spki };
	KILN_TRY(r, ca_sign_cert(issuer->token, &issuer->key, kiln_buf_view(&tbs), &prof, true,
				 "ocsp-certificate", &b.der, d));
	KILN_TRY(r, kiln_cert_parse(kiln_buf_view(&b.der), &b.cert, d));
	r = kiln_store_write(ca->store, signer_record, &b, d);
out:
	if (!kiln_is_ok(r) && b.key.label[0] != '\0')
		(void)kiln_is_ok(kiln_token_destroy(issuer->token, &b.key, NULL));
	X509_EXTENSION_free(nocheck);
	ASN1_NULL_free(null);
	X509_NAME_free(subject);
	EVP_PKEY_free(b.pub);
	X509_free(b.cert);
	kiln_buf_cleanup(&b.der);
	kiln_buf_cleanup(&tbs);
	return r;
}

/* The signer's CA name: "<env>-ocsp" for generation 1, "<env>-ocsp-<g>" after. */
static void signer_name(const struct ca_entry *issuer, char name[64])
{
	if (issuer->rec.generation > 1)
		(void)snprintf(name, 64, "%s-ocsp-%lld", issuer->rec.env,
			       (long long)issuer->rec.generation);
	else
		(void)snprintf(name, 64, "%s-ocsp", issuer->rec.env);
}

kiln_result ca_ocsp_signer_for(kiln_ca *ca, const struct ca_entry *issuer, const char *actor,
			       bool *made, char name_out[64], kiln_diag *d)
{
	struct kiln_ca_rec rec = { 0 };
	char name[64];
	kiln_diag nd;
	kiln_result r;

	if (made != NULL)
		*made = false;
	signer_name(issuer, name);
	if (name_out != NULL)
		memcpy(name_out, name, sizeof(name));
	kiln_diag_clear(&nd);
	r = kiln_store_ca_get(ca->store, name, &rec, &nd);
	if (kiln_is_ok(r) && rec.parent_id != issuer->rec.id)
		r = kiln_diag_set(&nd, KILN_ERR_STORE, "CA %s is not the OCSP signer of %s", name,
				  issuer->rec.name);
	kiln_ca_rec_cleanup(&rec);
	if (kiln_is_ok(r))
		return kiln_ok();
	if (r.code != KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, r.code, "%s", nd.text);
	if (issuer->token == NULL)
		return kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING, "this process has no access to the "
				     "token of CA %s", issuer->rec.name);
	KILN_GUARD(signer_make(ca, issuer, name, actor, d));
	if (made != NULL)
		*made = true;
	return kiln_ok();
}

kiln_result kiln_ca_ocsp_signer_ensure(kiln_ca *ca, kiln_env env, const char *actor, bool *made,
				       kiln_diag *d)
{
	struct ca_entry *issuer = ca != NULL ? ca_issuing(ca, env) : NULL;

	KILN_ENSURE(ca != NULL && actor != NULL, KILN_ERR_ARG);
	if (made != NULL)
		*made = false;
	if (issuer == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no issuing CA for environment %s",
				     kiln_env_name(env));
	return ca_ocsp_signer_for(ca, issuer, actor, made, NULL, d);
}

/* ------------------------------------------------------------ issuer hashes */

static kiln_result issuer_setup(kiln_ca *ca, struct ocsp_issuer *is, struct ca_entry *issuer,
				kiln_diag *d)
{
	struct kiln_ca_rec rec = { 0 };
	unsigned char *name = NULL;
	const ASN1_BIT_STRING *bits;
	X509 *signer = NULL;
	char sname[64];
	int n;
	kiln_result r;

	is->ca = issuer;
	kiln_buf_init(&is->cert_der, KILN_BUF_DEFAULT_MAX);
	n = i2d_X509_NAME(X509_get_subject_name(issuer->cert), &name);
	bits = X509_get0_pubkey_bitstr(issuer->cert);
	if (n <= 0 || bits == NULL) {
		OPENSSL_free(name);
		ERR_clear_error();
		return kiln_diag_set(d, KILN_ERR_CRYPTO, "cannot hash the issuer of %s", issuer->rec.name);
	}
	(void)SHA1(name, (size_t)n, is->name_sha1);
	(void)SHA256(name, (size_t)n, is->name_sha256);
	(void)SHA1(bits->data, (size_t)bits->length, is->key_sha1);
	(void)SHA256(bits->data, (size_t)bits->length, is->key_sha256);
	OPENSSL_free(name);
	signer_name(issuer, sname);
	KILN_TRY(r, kiln_store_ca_get(ca->store, sname, &rec, d));
	memset(&is->key, 0, sizeof(is->key));
	kiln_strtrunc(is->key.label, rec.key_label, sizeof(is->key.label));
	memcpy(is->key.id, rec.key_id, rec.key_id_len);
	is->key.id_len = rec.key_id_len;
	is->key.alg = issuer->alg;
	KILN_TRY(r, kiln_buf_append(&is->cert_der, rec.cert_der, rec.cert_len));
	KILN_TRY(r, kiln_cert_parse(kiln_buf_view(&is->cert_der), &signer, d));
	bits = X509_get0_pubkey_bitstr(signer);
	if (bits == NULL) {
		r = kiln_diag_set(d, KILN_ERR_CRYPTO, "the OCSP signer's certificate has no key");
		goto out;
	}
	(void)SHA1(bits->data, (size_t)bits->length, is->responder_hash);
out:
	X509_free(signer);
	kiln_ca_rec_cleanup(&rec);
	return r;
}

/* ------------------------------------------------------------ the table */

static uint64_t slot_hash(uint8_t issuer, uint8_t hash, const uint8_t *serial, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	h = (h ^ issuer) * 1099511628211ull;
	h = (h ^ hash) * 1099511628211ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ serial[i]) * 1099511628211ull;
	return h;
}

/* The slot holding the key, or the empty slot where it would go. Lock held. */
static struct slot *slot_find(struct slot *tab, size_t cap, uint8_t issuer, uint8_t hash,
			      const uint8_t *serial, size_t n)
{
	size_t i = (size_t)slot_hash(issuer, hash, serial, n) & (cap - 1);

	for (;;) {
		struct slot *s = &tab[i];

		if (!s->used || (s->issuer == issuer && s->hash == hash && s->serial_len == n &&
				 memcmp(s->serial, serial, n) == 0))
			return s;
		i = (i + 1) & (cap - 1);
	}
}

/* Write lock held. */
static kiln_result table_grow(kiln_ocsp *o)
{
	size_t ncap = o->cap == 0 ? 1024 : o->cap * 2;
	struct slot *nt = calloc(ncap, sizeof(*nt));

	KILN_ENSURE(nt != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; i < o->cap; i++) {
		struct slot *s = &o->tab[i];

		if (s->used)
			*slot_find(nt, ncap, s->issuer, s->hash, s->serial, s->serial_len) = *s;
	}
	free(o->tab);
	o->tab = nt;
	o->cap = ncap;
	return kiln_ok();
}

/* Puts a signed response in the table (taking der), replacing what was there. */
static kiln_result table_put(kiln_ocsp *o, const struct slot *in, uint8_t *der, size_t len)
{
	struct slot *s;
	uint8_t *old = NULL;
	kiln_result r = kiln_ok();

	pthread_rwlock_wrlock(&o->lock);
	if ((o->count + 1) * 2 > o->cap)
		r = table_grow(o);
	if (kiln_is_ok(r)) {
		s = slot_find(o->tab, o->cap, in->issuer, in->hash, in->serial, in->serial_len);
		if (!s->used)
			o->count++;
		old = s->der;
		*s = *in;
		s->used = 1;
		s->der = der;
		s->der_len = len;
		der = NULL;
	}
	pthread_rwlock_unlock(&o->lock);
	free(old);
	free(der);
	return r;
}

/* ------------------------------------------------------------ signing */

/* Signs a response of n singles with the issuer's OCSP key; out is appended to. */
static kiln_result sign_response(const struct ocsp_issuer *is, const struct kiln_ocsp_single *s,
				 size_t n, kiln_slice nonce, kiln_buf *out, kiln_diag *d)
{
	struct kiln_sign_req req = { &is->key, { NULL, 0 }, "ocsp" };
	kiln_signer signer = kiln_token_signer(is->ca->token);
	kiln_buf tbs, sig;
	kiln_result r;

	kiln_buf_init(&tbs, 65536);
	kiln_buf_init(&sig, 4096);
	KILN_TRY(r, kiln_ocsp_tbs(is->responder_hash, kiln_now(), s, n, nonce, &tbs));
	req.tbs = kiln_buf_view(&tbs);
	KILN_TRY(r, kiln_signer_sign(&signer, &req, &sig, d));
	r = kiln_ocsp_assemble(kiln_buf_view(&tbs), is->ca->alg, kiln_buf_view(&sig),
			       kiln_buf_view(&is->cert_der), out);
out:
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&sig);
	return r;
}

/* The DER INTEGER content of a hex serial. */
static kiln_result serial_content(const char *hex, uint8_t out[21], uint8_t *len)
{
	struct kiln_crl_entry e;
	const uint8_t *p;
	size_t n;

	KILN_GUARD(kiln_serial_from_hex(hex, &e));
	p = e.serial;
	n = e.serial_len;
	while (n > 1 && p[0] == 0) {
		p++;
		n--;
	}
	*len = 0;
	if (p[0] & 0x80)
		out[(*len)++] = 0;
	memcpy(out + *len, p, n);
	*len = (uint8_t)(*len + n);
	return kiln_ok();
}

static void hex_of_serial(const uint8_t *p, size_t n, char out[KILN_STORE_SERIAL_HEX])
{
	while (n > 1 && p[0] == 0) {
		p++;
		n--;
	}
	if (n > 20)
		n = 20;
	kiln_hex_encode(p, n, out);
}

/* Signs and caches the responses (both hashes) for one certificate's state. */
static kiln_result presign(kiln_ocsp *o, size_t issuer, const struct kiln_revoked *row,
			   kiln_diag *d)
{
	const struct ocsp_issuer *is = &o->iss[issuer];
	struct slot sl = { 0 };
	struct kiln_ocsp_single s = { 0 };
	kiln_buf id, der;
	kiln_result r = kiln_ok();

	KILN_GUARD(serial_content(row->serial, sl.serial, &sl.serial_len));
	sl.issuer = (uint8_t)issuer;
	sl.status = row->revoked ? KILN_OCSP_REVOKED : KILN_OCSP_GOOD;
	sl.reason = row->revoked ? row->reason : -1;
	sl.revoked_at = row->revoked_at;
	sl.signed_at = kiln_now();
	for (uint8_t h = KILN_OCSP_SHA1; h <= KILN_OCSP_SHA256 && kiln_is_ok(r); h++) {
		size_t len = 0;
		uint8_t *p;

		kiln_buf_init(&id, 4096);
		kiln_buf_init(&der, 65536);
		r = kiln_ocsp_certid(h, h == KILN_OCSP_SHA1 ? is->name_sha1 : is->name_sha256,
				     h == KILN_OCSP_SHA1 ? is->key_sha1 : is->key_sha256,
				     kiln_slice_of(sl.serial, sl.serial_len), &id);
		s = (struct kiln_ocsp_single){ kiln_buf_view(&id), sl.status, sl.revoked_at,
					       sl.reason > 0 ? sl.reason : 0, sl.signed_at,
					       sl.signed_at + o->validity_s };
		if (kiln_is_ok(r))
			r = sign_response(is, &s, 1, kiln_slice_of(NULL, 0), &der, d);
		sl.hash = h;
		p = kiln_is_ok(r) ? kiln_buf_take(&der, &len) : NULL;
		if (kiln_is_ok(r))
			r = p != NULL ? table_put(o, &sl, p, len) : kiln_fail(KILN_ERR_NOMEM);
		kiln_buf_cleanup(&id);
		kiln_buf_cleanup(&der);
	}
	return r;
}

struct walk {
	kiln_ocsp *o;
	size_t issuer;
	size_t n;
};

static kiln_result presign_fn(void *ctx, const struct kiln_revoked *row, kiln_diag *d)
{
	struct walk *w = ctx;

	w->n++;
	return presign(w->o, w->issuer, row, d);
}

/* ------------------------------------------------------------ life cycle */

kiln_result kiln_ocsp_new(kiln_ca *ca, int64_t validity_s, const char *actor, kiln_ocsp **out,
			  kiln_diag *d)
{
	kiln_ocsp *o;
	kiln_result r = kiln_ok();

	KILN_ENSURE(ca != NULL && actor != NULL && out != NULL, KILN_ERR_ARG);
	*out = NULL;
	if (validity_s < 60 || validity_s > 7 * 86400)
		return kiln_diag_set(d, KILN_ERR_ARG, "OCSP validity must be 1 minute to 7 days");
	o = calloc(1, sizeof(*o));
	KILN_ENSURE(o != NULL, KILN_ERR_NOMEM);
	o->ca = ca;
	o->validity_s = validity_s;
	kiln_strtrunc(o->actor, actor, sizeof(o->actor));
	pthread_rwlock_init(&o->lock, NULL);
	/* Every generation of each issuing CA: certificates of a retired one stay answerable. */
	for (int e = KILN_ENV_PRODUCTION; e <= KILN_ENV_TEST && kiln_is_ok(r); e++) {
		struct ca_entry *issuer;

		for (size_t k = 0; kiln_is_ok(r) && (issuer = ca_issuing_nth(ca, (kiln_env)e, k)) != NULL;
		     k++) {
			if (issuer->token == NULL)
				continue; /* no access to that environment's token: not served */
			if (o->n_iss == MAX_ISSUERS) {
				r = kiln_diag_set(d, KILN_ERR_TOO_BIG, "more than %d issuing CAs to "
						  "answer OCSP for", MAX_ISSUERS);
				break;
			}
			r = ca_ocsp_signer_for(ca, issuer, actor, NULL, NULL, d);
			if (kiln_is_ok(r))
				r = issuer_setup(ca, &o->iss[o->n_iss], issuer, d);
			o->n_iss++;
		}
	}
	if (kiln_is_ok(r) && o->n_iss == 0)
		r = kiln_diag_set(d, KILN_ERR_HSM_TOKEN_MISSING, "no issuing CA's token is open: "
				  "nothing to answer OCSP for");
	if (kiln_is_ok(r))
		r = kiln_store_revocation_seq(ca->store, &o->seq, d);
	if (!kiln_is_ok(r)) {
		kiln_ocsp_free(o);
		return r;
	}
	*out = o;
	return kiln_ok();
}

void kiln_ocsp_free(kiln_ocsp *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->cap; i++)
		free(o->tab[i].der);
	free(o->tab);
	for (size_t i = 0; i < o->n_iss; i++)
		kiln_buf_cleanup(&o->iss[i].cert_der);
	pthread_rwlock_destroy(&o->lock);
	free(o);
}

kiln_result kiln_ocsp_presign_all(kiln_ocsp *o, size_t *signed_n, kiln_diag *d)
{
	struct walk w = { o, 0, 0 };

	KILN_ENSURE(o != NULL, KILN_ERR_ARG);
	for (w.issuer = 0; w.issuer < o->n_iss; w.issuer++)
		KILN_GUARD(kiln_store_cert_status_each(o->ca->store, o->iss[w.issuer].ca->rec.id,
						       presign_fn, &w, d));
	if (signed_n != NULL)
		*signed_n = w.n;
	return kiln_ok();
}

/* ------------------------------------------------------------ following the store */

struct sync_walk {
	kiln_ocsp *o;
	struct kiln_ocsp_sync *res;
	int64_t max_seq;
	char (*serials)[KILN_STORE_SERIAL_HEX];
	int64_t *ms;
	size_t n, cap;
};

static kiln_result sync_fn(void *ctx, const struct kiln_revoked *row, kiln_diag *d)
{
	struct sync_walk *w = ctx;

	if (row->seq > w->max_seq)
		w->max_seq = row->seq;
	for (size_t i = 0; i < w->o->n_iss; i++) {
		if (w->o->iss[i].ca->rec.id != row->ca_id)
			continue;
		KILN_GUARD(presign(w->o, i, row, d));
		if (w->n == w->cap) {
			size_t ncap = w->cap == 0 ? 64 : w->cap * 2;
			void *a = realloc(w->serials, ncap * sizeof(*w->serials));
			void *b = a != NULL ? realloc(w->ms, ncap * sizeof(*w->ms)) : NULL;

			if (a != NULL)
				w->serials = a;
			if (b == NULL)
				return kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory following revocations");
			w->ms = b;
			w->cap = ncap;
		}
		memcpy(w->serials[w->n], row->serial, KILN_STORE_SERIAL_HEX);
		w->ms[w->n] = (int64_t)(kiln_wall_ms() - row->recorded_ms);
		if (w->ms[w->n] < 0)
			w->ms[w->n] = 0;
		w->n++;
	}
	return kiln_ok();
}

static kiln_result visible_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct sync_walk *w = ctx;
	struct kiln_event_rec ev = { 0 };
	kiln_result r;

	for (size_t i = 0; i < w->n; i++) {
		KILN_GUARD(kiln_store_tx_revocation_visible(tx, w->serials[i], w->ms[i], d));
		memset(&ev, 0, sizeof(ev));
		kiln_strtrunc(ev.type, "revocation-published", sizeof(ev.type));
		kiln_strtrunc(ev.actor, w->o->actor, sizeof(ev.actor));
		kiln_strtrunc(ev.subject, w->serials[i], sizeof(ev.subject));
		ev.detail_json = ca_event_json("{s:s,s:I}", "via", "ocsp", "ms_since_recorded",
					       (json_int_t)w->ms[i]);
		KILN_ENSURE(ev.detail_json != NULL, KILN_ERR_NOMEM);
		r = kiln_store_tx_event_add(tx, &ev, d);
		free(ev.detail_json);
		KILN_GUARD(r);
	}
	return kiln_ok();
}

/* Refreshes every response older than half its validity (the table is walked under the read lock). */
static kiln_result refresh_stale(kiln_ocsp *o, size_t *n, kiln_diag *d)
{
	struct kiln_revoked row;
	struct slot *stale = NULL;
	size_t ns = 0;
	int64_t limit = kiln_now() - o->validity_s / 2;
	kiln_result r = kiln_ok();

	pthread_rwlock_rdlock(&o->lock);
	for (size_t i = 0; i < o->cap; i++) {
		if (o->tab[i].used && o->tab[i].hash == KILN_OCSP_SHA1 && o->tab[i].signed_at < limit)
			ns++;
	}
	stale = ns > 0 ? calloc(ns, sizeof(*stale)) : NULL;
	ns = 0;
	for (size_t i = 0; stale != NULL && i < o->cap; i++) {
		if (o->tab[i].used && o->tab[i].hash == KILN_OCSP_SHA1 && o->tab[i].signed_at < limit) {
			stale[ns] = o->tab[i];
			stale[ns++].der = NULL;
		}
	}
	pthread_rwlock_unlock(&o->lock);
	for (size_t i = 0; i < ns && kiln_is_ok(r); i++) {
		memset(&row, 0, sizeof(row));
		hex_of_serial(stale[i].serial, stale[i].serial_len, row.serial);
		row.revoked = stale[i].status == KILN_OCSP_REVOKED;
		row.revoked_at = stale[i].revoked_at;
		row.reason = stale[i].reason;
		r = presign(o, stale[i].issuer, &row, d);
	}
	free(stale);
	*n = ns;
	return r;
}

kiln_result kiln_ocsp_sync(kiln_ocsp *o, struct kiln_ocsp_sync *res, kiln_diag *d)
{
	struct sync_walk w = { o, res, 0, NULL, NULL, 0, 0 };
	int64_t seq = 0;
	kiln_result r;

	KILN_ENSURE(o != NULL && res != NULL, KILN_ERR_ARG);
	memset(res, 0, sizeof(*res));
	KILN_GUARD(kiln_store_revocation_seq(o->ca->store, &seq, d));
	w.max_seq = o->seq;
	if (seq > o->seq) {
		KILN_TRY(r, kiln_store_revoked_each(o->ca->store, 0, o->seq, sync_fn, &w, d));
		if (w.n > 0)
			KILN_TRY(r, kiln_store_write(o->ca->store, visible_tx, &w, d));
		res->revoked = w.n;
		for (size_t i = 0; i < w.n; i++)
			res->max_visible_ms = w.ms[i] > res->max_visible_ms ? w.ms[i] : res->max_visible_ms;
		o->seq = w.max_seq;
	}
	res->seq = o->seq;
	r = refresh_stale(o, &res->refreshed, d);
out:
	free(w.serials);
	free(w.ms);
	return r;
}

/* ------------------------------------------------------------ answering */

static int issuer_of(const kiln_ocsp *o, const struct kiln_ocsp_certid *id)
{
	for (size_t i = 0; i < o->n_iss; i++) {
		const struct ocsp_issuer *is = &o->iss[i];
		bool sha1 = id->hash == KILN_OCSP_SHA1;

		if (id->hash == 0)
			return -1;
		if (memcmp(id->name_hash.ptr, sha1 ? is->name_sha1 : is->name_sha256,
			   id->name_hash.len) == 0 &&
		    memcmp(id->key_hash.ptr, sha1 ? is->key_sha1 : is->key_sha256,
			   id->key_hash.len) == 0)
			return (int)i;
	}
	return -1;
}

/* The state of one CertID: the table, else the store (the certificate may be newer). */
static kiln_result state_of(kiln_ocsp *o, int issuer, const struct kiln_ocsp_certid *id,
			    struct slot *st, kiln_diag *d)
{
	struct kiln_cert_rec c = { 0 };
	struct kiln_revoked row = { 0 };
	struct slot *s;
	bool found = false;
	kiln_result r;

	pthread_rwlock_rdlock(&o->lock);
	s = o->cap > 0 ? slot_find(o->tab, o->cap, (uint8_t)issuer, (uint8_t)id->hash,
				   id->serial.ptr, id->serial.len) : NULL;
	if (s != NULL && s->used) {
		*st = *s;
		st->der = NULL;
		found = true;
	}
	pthread_rwlock_unlock(&o->lock);
	if (found)
		return kiln_ok();
	memset(st, 0, sizeof(*st));
	st->status = KILN_OCSP_UNKNOWN;
	hex_of_serial(id->serial.ptr, id->serial.len, row.serial);
	r = kiln_store_cert_get(o->ca->store, row.serial, &c, NULL);
	if (r.code == KILN_ERR_NOT_FOUND || (kiln_is_ok(r) && c.ca_id != o->iss[issuer].ca->rec.id)) {
		kiln_cert_rec_cleanup(&c);
		return kiln_ok();
	}
	KILN_GUARD(r);
	row.revoked = strcmp(c.status, "revoked") == 0;
	row.revoked_at = c.revoked_at;
	(void)kiln_store_reason_ok(c.reason, &row.reason);
	kiln_cert_rec_cleanup(&c);
	/* A certificate the table did not know yet: sign it for next time, answer from the row. */
	KILN_GUARD(presign(o, (size_t)issuer, &row, d));
	st->status = row.revoked ? KILN_OCSP_REVOKED : KILN_OCSP_GOOD;
	st->revoked_at = row.revoked_at;
	st->reason = row.reason;
	return kiln_ok();
}

/* The cached DER for a single-CertID request without a nonce; false on a miss. */
static bool cached(kiln_ocsp *o, int issuer, const struct kiln_ocsp_certid *id, kiln_buf *out,
		   kiln_result *r)
{
	struct slot *s;
	bool hit = false;

	pthread_rwlock_rdlock(&o->lock);
	s = o->cap > 0 ? slot_find(o->tab, o->cap, (uint8_t)issuer, (uint8_t)id->hash,
				   id->serial.ptr, id->serial.len) : NULL;
	if (s != NULL && s->used && s->der != NULL) {
		*r = kiln_buf_append(out, s->der, s->der_len);
		hit = true;
	}
	pthread_rwlock_unlock(&o->lock);
	return hit;
}

kiln_result kiln_ocsp_respond(kiln_ocsp *o, kiln_slice body, enum kiln_ocsp_mode mode,
			      kiln_buf *out, struct kiln_ocsp_answer *ans, kiln_diag *d)
{
	struct kiln_ocsp_request req;
	struct kiln_ocsp_single s[KILN_OCSP_MAX_IDS];
	struct slot st;
	int issuer = -1;
	kiln_result r = kiln_ok();

	KILN_ENSURE(o != NULL && out != NULL && ans != NULL, KILN_ERR_ARG);
	memset(ans, 0, sizeof(*ans));
	if (!kiln_is_ok(kiln_ocsp_request_parse(body, &req))) {
		ans->status = 1;
		KILN_GUARD(kiln_ocsp_error(1, out));
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "malformed OCSP request (%zu bytes)",
				     body.len);
	}
	for (size_t i = 0; i < req.n; i++) {
		int k = issuer_of(o, &req.ids[i]);

		if (k < 0 || (issuer >= 0 && k != issuer)) {
			ans->status = 6;
			KILN_GUARD(kiln_ocsp_error(6, out));
			return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "OCSP request for an issuer kiln "
					     "does not serve");
		}
		issuer = k;
	}
	hex_of_serial(req.ids[0].serial.ptr, req.ids[0].serial.len, ans->serial);
	if (req.n == 1 && req.nonce_ext.len == 0 && cached(o, issuer, &req.ids[0], out, &r)) {
		ans->cached = true;
		return r;
	}
	if (mode == KILN_OCSP_TABLE) {
		ans->wants_signature = true;
		if (req.n == 1 && cached(o, issuer, &req.ids[0], out, &r)) {
			ans->cached = true;
			ans->nonce_dropped = true;
			return r;
		}
		ans->status = 3;
		KILN_GUARD(kiln_ocsp_error(3, out));
		return kiln_diag_set(d, KILN_ERR_RATE_LIMITED,
				     "OCSP request that needs a fresh signature (%s), over this "
				     "client's signing budget: tryLater",
				     req.n > 1 ? "several CertIDs" : "a serial not in the table");
	}
	for (size_t i = 0; i < req.n; i++) {
		KILN_GUARD(state_of(o, issuer, &req.ids[i], &st, d));
		s[i] = (struct kiln_ocsp_single){ req.ids[i].tlv, st.status, st.revoked_at,
						  st.reason > 0 ? st.reason : 0, kiln_now(),
						  kiln_now() + o->validity_s };
		if (st.status == KILN_OCSP_UNKNOWN)
			ans->unknown = true;
	}
	/* A single CertID that is in the table now (it was just signed) is answered from it. */
	if (req.n == 1 && req.nonce_ext.len == 0 && !ans->unknown &&
	    cached(o, issuer, &req.ids[0], out, &r))
		return r;
	return sign_response(&o->iss[issuer], s, req.n, req.nonce_ext, out, d);
}

void kiln_ocsp_stats(kiln_ocsp *o, size_t *responses)
{
	pthread_rwlock_rdlock(&o->lock);
	*responses = o->count;
	pthread_rwlock_unlock(&o->lock);
}
