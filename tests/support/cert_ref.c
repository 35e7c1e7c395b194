/*
 * The reference TBSCertificate: the same kiln_cert_spec built as an OpenSSL
 * X509 object and encoded by OpenSSL (i2d_re_X509_tbs), as kiln did before
 * it wrote the TBS as DER itself. test_cert requires kiln_cert_tbs to write
 * exactly these bytes.
 */
#include "cert_ref.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

/*
 * Sets the signature AlgorithmIdentifier, in the TBS and in the outer
 * structure (OpenSSL only sets them when it signs itself): the unsigned object
 * then reads like a certificate with an empty signature, which is what the
 * lint inspects.
 */
static kiln_result set_tbs_sigalg(X509 *x, const struct kiln_alg_info *ai)
{
	const unsigned char *p = ai->algid.ptr;
	X509_ALGOR *parsed = d2i_X509_ALGOR(NULL, &p, (long)ai->algid.len);
	X509_ALGOR *tbs_alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
	const X509_ALGOR *outer = NULL;
	int ok;

	KILN_ENSURE(parsed != NULL, KILN_ERR_CRYPTO);
	X509_get0_signature(NULL, &outer, x);
	ok = X509_ALGOR_copy(tbs_alg, parsed) == 1 && outer != NULL &&
	     X509_ALGOR_copy((X509_ALGOR *)outer, parsed) == 1;
	X509_ALGOR_free(parsed);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
static kiln_result key_id(const X509_PUBKEY *xpk, ASN1_OCTET_STRING **out)
{
	const unsigned char *pk;
	unsigned char md[20];
	unsigned int mdlen = 0;
	int pklen = 0;
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	*out = NULL;
	if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, (X509_PUBKEY *)xpk) != 1)
		goto out;
	if (EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL) != 1)
		goto out;
	*out = ASN1_OCTET_STRING_new();
	if (*out == NULL || ASN1_OCTET_STRING_set(*out, md, (int)mdlen) != 1)
		goto out;
	r = kiln_ok();
out:
	if (!kiln_is_ok(r)) {
		ASN1_OCTET_STRING_free(*out);
		*out = NULL;
	}
	return r;
}

/* A deep copy of an AlgorithmIdentifier parameter, for X509_PUBKEY_set0_param. */
static bool dup_param(int ptype, const void *pval, void **out)
{
	*out = NULL;
	switch (ptype) {
	case V_ASN1_UNDEF:
	case V_ASN1_NULL:
		return true;
	case V_ASN1_OBJECT:
		*out = OBJ_dup(pval);
		return *out != NULL;
	default:
		*out = ASN1_STRING_dup(pval);
		return *out != NULL;
	}
}

/* Copies a DER SubjectPublicKeyInfo field by field: no provider encoder involved. */
static kiln_result copy_spki(X509 *x, kiln_slice spki)
{
	X509_PUBKEY *dst = X509_get_X509_PUBKEY(x);
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	const unsigned char *p;
	X509_ALGOR *alg = NULL;
	ASN1_OBJECT *obj_copy = NULL;
	unsigned char *enc = NULL;
	void *pval_copy = NULL;
	kiln_slice seq, alg_der, bits;
	kiln_cursor c, in;
	uint8_t tag;
	int ptype = V_ASN1_UNDEF;
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	kiln_cursor_init(&c, spki);
	KILN_GUARD(kiln_der_read(&c, &tag, &seq));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE && kiln_cursor_remaining(&c) == 0, KILN_ERR_MALFORMED);
	kiln_cursor_init(&in, seq);
	KILN_GUARD(kiln_der_read(&in, &tag, &alg_der));
	KILN_ENSURE(tag == KILN_DER_SEQUENCE, KILN_ERR_MALFORMED);
	alg_der = kiln_slice_of(seq.ptr, in.pos); /* the whole AlgorithmIdentifier TLV */
	KILN_GUARD(kiln_der_read(&in, &tag, &bits));
	KILN_ENSURE(tag == KILN_DER_BIT_STRING && bits.len >= 2 && bits.ptr[0] == 0 &&
			    kiln_cursor_remaining(&in) == 0,
		    KILN_ERR_MALFORMED);
	p = alg_der.ptr;
	alg = d2i_X509_ALGOR(NULL, &p, (long)alg_der.len);
	KILN_ENSURE(alg != NULL && dst != NULL, KILN_ERR_CRYPTO);
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	obj_copy = OBJ_dup(obj);
	enc = OPENSSL_memdup(bits.ptr + 1, bits.len - 1);
	if (obj_copy == NULL || enc == NULL || !dup_param(ptype, pval, &pval_copy) ||
	    X509_PUBKEY_set0_param(dst, obj_copy, ptype, pval_copy, enc, (int)(bits.len - 1)) != 1) {
		ASN1_OBJECT_free(obj_copy);
		OPENSSL_free(enc);
		if (ptype == V_ASN1_OBJECT)
			ASN1_OBJECT_free(pval_copy);
		else
			ASN1_STRING_free(pval_copy);
		goto out;
	}
	r = kiln_ok();
out:
	X509_ALGOR_free(alg);
	return r;
}

static kiln_result add_basic(X509 *x, const struct kiln_cert_spec *s)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int ok = 0;

	KILN_ENSURE(bc != NULL, KILN_ERR_NOMEM);
	bc->ca = s->is_ca ? 0xff : 0;
	if (s->is_ca && s->path_len >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, s->path_len) != 1)
			goto out;
	}
	ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT);
out:
	BASIC_CONSTRAINTS_free(bc);
	KILN_ENSURE(ok == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result add_key_usage(X509 *x, unsigned ku)
{
	ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
	int ok = bs != NULL;

	/* KU_* values are the DER bit masks; bit n of the BIT STRING is mask 0x80 >> n. */
	for (int bit = 0; ok && bit < 9; bit++) {
		unsigned mask = bit < 8 ? (0x80u >> bit) : 0x8000u;

		if (ku & mask)
			ok = ASN1_BIT_STRING_set_bit(bs, bit, 1);
	}
	if (ok)
		ok = X509_add1_ext_i2d(x, NID_key_usage, bs, 1, X509V3_ADD_DEFAULT);
	ASN1_BIT_STRING_free(bs);
	KILN_ENSURE(ok == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result add_eku(X509 *x, const struct kiln_cert_spec *s)
{
	EXTENDED_KEY_USAGE *eku;
	int ok = 1;

	if (s->n_eku == 0)
		return kiln_ok();
	KILN_ENSURE(s->n_eku <= KILN_CERT_MAX_EKU, KILN_ERR_ARG);
	eku = sk_ASN1_OBJECT_new_null();
	KILN_ENSURE(eku != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; ok && i < s->n_eku; i++) {
		ASN1_OBJECT *o = OBJ_nid2obj(s->eku[i]);

		ok = o != NULL && sk_ASN1_OBJECT_push(eku, o) > 0;
	}
	if (ok)
		ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT);
	sk_ASN1_OBJECT_free(eku); /* OBJ_nid2obj objects are static */
	KILN_ENSURE(ok == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

/* A GeneralName from valid text (kiln_cert_tbs checks names; the reference is given good ones). */
static bool push_name(GENERAL_NAMES *gens, int type, const char *value)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *v = type == GEN_IPADD ? a2i_IPADDRESS(value) : ASN1_IA5STRING_new();

	if (gn == NULL || v == NULL ||
	    (type != GEN_IPADD && ASN1_STRING_set(v, value, -1) != 1)) {
		GENERAL_NAME_free(gn);
		ASN1_STRING_free(v);
		return false;
	}
	GENERAL_NAME_set0_value(gn, type, v);
	if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
		GENERAL_NAME_free(gn);
		return false;
	}
	return true;
}

static kiln_result add_san(X509 *x, const struct kiln_cert_spec *s, kiln_diag *d)
{
	GENERAL_NAMES *gens;
	bool ok = true;

	if (s->n_san_uri + s->n_san_dns + s->n_san_ip == 0)
		return kiln_ok();
	KILN_ENSURE(s->n_san_uri <= KILN_CERT_MAX_SAN && s->n_san_dns <= KILN_CERT_MAX_SAN &&
			    s->n_san_ip <= KILN_CERT_MAX_SAN,
		    KILN_ERR_ARG);
	gens = sk_GENERAL_NAME_new_null();
	KILN_ENSURE(gens != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; ok && i < s->n_san_uri; i++)
		ok = push_name(gens, GEN_URI, s->san_uri[i]);
	for (size_t i = 0; ok && i < s->n_san_dns; i++)
		ok = push_name(gens, GEN_DNS, s->san_dns[i]);
	for (size_t i = 0; ok && i < s->n_san_ip; i++)
		ok = push_name(gens, GEN_IPADD, s->san_ip[i]);
	if (ok)
		ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(gens);
	if (!ok)
		return kiln_diag_set(d, KILN_ERR_ARG,
				     "a subject alternative name is not a valid URI, DNS name or IP address");
	return kiln_ok();
}

static kiln_result add_crl_dp(X509 *x, const char *url)
{
	CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
	DIST_POINT *dp = DIST_POINT_new();
	DIST_POINT_NAME *dpn = DIST_POINT_NAME_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	bool ok = dps != NULL && dp != NULL && dpn != NULL && gens != NULL &&
		  push_name(gens, GEN_URI, url);

	if (ok) {
		dpn->type = 0;
		dpn->name.fullname = gens;
		gens = NULL;
		dp->distpoint = dpn;
		dpn = NULL;
		ok = sk_DIST_POINT_push(dps, dp) > 0;
		if (ok)
			dp = NULL;
	}
	if (ok)
		ok = X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(gens);
	DIST_POINT_NAME_free(dpn);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static bool push_access(AUTHORITY_INFO_ACCESS *aia, int method, const char *url)
{
	ACCESS_DESCRIPTION *ad;
	GENERAL_NAMES *one;
	bool ok;

	if (url == NULL)
		return true;
	one = sk_GENERAL_NAME_new_null();
	ad = ACCESS_DESCRIPTION_new();
	ok = one != NULL && ad != NULL && push_name(one, GEN_URI, url);
	if (ok) {
		GENERAL_NAME_free(ad->location);
		ad->location = sk_GENERAL_NAME_pop(one);
		ASN1_OBJECT_free(ad->method);
		ad->method = OBJ_nid2obj(method);
		ok = sk_ACCESS_DESCRIPTION_push(aia, ad) > 0;
		if (ok)
			ad = NULL;
	}
	ACCESS_DESCRIPTION_free(ad);
	GENERAL_NAMES_free(one);
	return ok;
}

static kiln_result add_aia(X509 *x, const struct kiln_cert_spec *s)
{
	AUTHORITY_INFO_ACCESS *aia;
	bool ok;

	if (s->ocsp_url == NULL && s->ca_issuers_url == NULL)
		return kiln_ok();
	aia = sk_ACCESS_DESCRIPTION_new_null();
	KILN_ENSURE(aia != NULL, KILN_ERR_NOMEM);
	ok = push_access(aia, NID_ad_OCSP, s->ocsp_url) &&
	     push_access(aia, NID_ad_ca_issuers, s->ca_issuers_url);
	if (ok)
		ok = X509_add1_ext_i2d(x, NID_info_access, aia, 0, X509V3_ADD_DEFAULT) == 1;
	AUTHORITY_INFO_ACCESS_free(aia);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result add_key_ids(X509 *x, const struct kiln_cert_spec *s)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	kiln_result r;
	int ok;

	KILN_TRY(r, key_id(X509_get_X509_PUBKEY(x), &ski));
	ok = X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT);
	if (ok == 1) {
		const ASN1_OCTET_STRING *issuer_ski =
			s->issuer != NULL ? X509_get0_subject_key_id((X509 *)s->issuer) : ski;

		akid = AUTHORITY_KEYID_new();
		ok = akid != NULL && issuer_ski != NULL;
		if (ok) {
			akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
			ok = akid->keyid != NULL &&
			     X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
					   X509V3_ADD_DEFAULT) == 1;
		}
	}
	r = ok == 1 ? kiln_ok() : kiln_fail(KILN_ERR_CRYPTO);
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_OCTET_STRING_free(ski);
	return r;
}

static kiln_result set_serial(X509 *x, const uint8_t serial[KILN_SERIAL_LEN])
{
	BIGNUM *bn = BN_bin2bn(serial, KILN_SERIAL_LEN, NULL);
	ASN1_INTEGER *ai = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;

	ASN1_INTEGER_free(ai);
	BN_free(bn);
	KILN_ENSURE(ok, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result set_basics(X509 *x, const struct kiln_cert_spec *s)
{
	const X509_NAME *issuer_name =
		s->issuer != NULL ? X509_get_subject_name(s->issuer) : s->subject;

	KILN_ENSURE(X509_set_version(x, X509_VERSION_3) == 1, KILN_ERR_CRYPTO);
	KILN_GUARD(set_serial(x, s->serial));
	KILN_ENSURE(X509_set_issuer_name(x, issuer_name) == 1, KILN_ERR_CRYPTO);
	KILN_ENSURE(X509_set_subject_name(x, s->subject) == 1, KILN_ERR_CRYPTO);
	KILN_ENSURE(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before) != NULL,
		    KILN_ERR_CRYPTO);
	KILN_ENSURE(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after) != NULL,
		    KILN_ERR_CRYPTO);
	if (s->subject_spki.len > 0)
		return copy_spki(x, s->subject_spki);
	KILN_ENSURE(X509_set_pubkey(x, (EVP_PKEY *)s->subject_key) == 1, KILN_ERR_CRYPTO);
	return kiln_ok();
}

static kiln_result add_extensions(X509 *x, const struct kiln_cert_spec *s, kiln_diag *d)
{
	KILN_GUARD(add_basic(x, s));
	KILN_GUARD(add_key_usage(x, s->key_usage));
	KILN_GUARD(add_eku(x, s));
	KILN_GUARD(add_key_ids(x, s));
	KILN_GUARD(add_san(x, s, d));
	if (s->crl_url != NULL)
		KILN_GUARD(add_crl_dp(x, s->crl_url));
	KILN_GUARD(add_aia(x, s));
	for (size_t i = 0; i < s->n_extra; i++) {
		const X509_EXTENSION *ext = s->extra[i];

		KILN_ENSURE(ext != NULL, KILN_ERR_ARG);
		/* RFC 5280 4.2: an extension appears at most once. */
		if (X509_get_ext_by_OBJ(x, X509_EXTENSION_get_object((X509_EXTENSION *)ext), -1) >= 0)
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "extra extension %zu repeats an extension already present", i);
		KILN_ENSURE(X509_add_ext(x, (X509_EXTENSION *)ext, -1) == 1, KILN_ERR_CRYPTO);
	}
	return kiln_ok();
}

kiln_result kt_cert_tbs_ref(const struct kiln_cert_spec *spec, kiln_buf *tbs, X509 **built,
			    kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(spec->sig_alg);
	unsigned char *der = NULL;
	kiln_result r;
	X509 *x;
	int n;

	if (built != NULL)
		*built = NULL;
	KILN_ENSURE(ai != NULL && spec->subject != NULL && spec->subject_key != NULL, KILN_ERR_ARG);
	x = X509_new();
	KILN_ENSURE(x != NULL, KILN_ERR_NOMEM);
	KILN_TRY(r, set_basics(x, spec));
	KILN_TRY(r, add_extensions(x, spec, d));
	KILN_TRY(r, set_tbs_sigalg(x, ai));
	n = i2d_re_X509_tbs(x, &der);
	if (n <= 0) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	r = kiln_buf_append(tbs, der, (size_t)n);
	if (kiln_is_ok(r) && built != NULL) {
		*built = x;
		x = NULL;
	}
out:
	OPENSSL_free(der);
	X509_free(x);
	ERR_clear_error();
	return r;
}

