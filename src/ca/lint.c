/*
 * Lint before sign: every TBS is checked against RFC 5280 and its profile
 * before it may reach the HSM, so a bug in profile building can never turn
 * into a signed, mis-issued certificate. Each rule fails with its own line.
 */
#include "ca_impl.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#define LINT(d, ...) kiln_diag_set((d), KILN_ERR_INTERNAL, "lint: " __VA_ARGS__)

static kiln_result lint_serial(const X509 *x, kiln_diag *d)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	bool ok = bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20;

	BN_free(bn);
	if (!ok)
		return LINT(d, "serial number must be positive, non-zero and at most 20 octets");
	return kiln_ok();
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
static bool time_encoding_ok(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	if (tm.tm_year + 1900 < 2050)
		return ASN1_STRING_type(t) == V_ASN1_UTCTIME;
	return ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME;
}

static kiln_result lint_validity(const X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	int days = 0, secs = 0;

	if (!time_encoding_ok(nb) || !time_encoding_ok(na))
		return LINT(d, "validity times must be UTCTime before 2050 and GeneralizedTime after");
	if (ASN1_TIME_diff(&days, &secs, nb, na) != 1 || days < 0 || (days == 0 && secs <= 0))
		return LINT(d, "notAfter must be later than notBefore");
	if (p->max_validity_days > 0 && days > p->max_validity_days + 1)
		return LINT(d, "validity of %d days exceeds the profile's %lld", days,
			    (long long)p->max_validity_days);
	if (p->issuer != NULL && ASN1_TIME_compare(na, X509_get0_notAfter(p->issuer)) > 0)
		return LINT(d, "certificate must not outlive its issuer");
	return kiln_ok();
}

static kiln_result lint_names(const X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const X509_NAME *subj = X509_get_subject_name(x);
	const X509_NAME *want = p->issuer != NULL ? X509_get_subject_name(p->issuer) : subj;

	if (X509_NAME_entry_count(subj) == 0)
		return LINT(d, "subject must not be empty");
	if (X509_NAME_cmp(X509_get_issuer_name(x), want) != 0)
		return LINT(d, "issuer name must equal the issuer's subject");
	for (int i = 0; i < X509_NAME_entry_count(subj); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, i);
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		int max = nid == NID_commonName || nid == NID_organizationName ||
					  nid == NID_organizationalUnitName ?
				  64 :
			  nid == NID_countryName ? 2 :
						   128;

		if (ASN1_STRING_length(v) <= 0 || ASN1_STRING_length(v) > max)
			return LINT(d, "subject %s must be 1..%d characters", OBJ_nid2sn(nid), max);
	}
	return kiln_ok();
}

static kiln_result lint_basic(X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	long pl = -1;
	bool is_ca;

	if (bc == NULL)
		return LINT(d, "basicConstraints must be present");
	is_ca = bc->ca != 0;
	if (bc->pathlen != NULL)
		pl = ASN1_INTEGER_get(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	if (crit != 1)
		return LINT(d, "basicConstraints must be critical");
	if (is_ca != p->is_ca)
		return LINT(d, "basicConstraints cA must be %s", p->is_ca ? "TRUE" : "FALSE");
	if (pl != (p->is_ca ? p->path_len : -1))
		return LINT(d, "pathLenConstraint must be %d", p->is_ca ? p->path_len : -1);
	return kiln_ok();
}

static kiln_result lint_key_usage(X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	int crit = -1;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	uint32_t have;

	if (ku == NULL)
		return LINT(d, "keyUsage must be present");
	ASN1_BIT_STRING_free(ku);
	if (crit != 1)
		return LINT(d, "keyUsage must be critical");
	have = X509_get_key_usage(x);
	if (have != p->key_usage)
		return LINT(d, "keyUsage 0x%x differs from the profile's 0x%x", have, p->key_usage);
	if (!p->is_ca && (have & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)))
		return LINT(d, "an end-entity certificate must not have keyCertSign or cRLSign");
	if (p->is_ca && !(have & KU_KEY_CERT_SIGN))
		return LINT(d, "a CA certificate must have keyCertSign");
	return kiln_ok();
}

static kiln_result lint_key_ids(const X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id((X509 *)x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id((X509 *)x);
	const ASN1_OCTET_STRING *want = p->issuer != NULL ?
						X509_get0_subject_key_id((X509 *)p->issuer) :
						ski;

	if (ski == NULL)
		return LINT(d, "subjectKeyIdentifier must be present");
	if (aki == NULL || want == NULL || ASN1_OCTET_STRING_cmp(aki, want) != 0)
		return LINT(d, "authorityKeyIdentifier must equal the issuer's subjectKeyIdentifier");
	return kiln_ok();
}

static kiln_result lint_key(const X509 *x, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const EVP_PKEY *pk = p->subject_key != NULL ? p->subject_key : X509_get0_pubkey(x);
	struct kiln_key_desc kd;

	if (pk == NULL || !kiln_is_ok(kiln_key_describe(pk, &kd)) || kd.type == KILN_KEY_UNKNOWN)
		return LINT(d, "subject public key must be EC, Ed25519 or RSA");
	if (kd.type == KILN_KEY_RSA && kd.bits < 2048)
		return LINT(d, "RSA keys must have at least 2048 bits");
	if (p->issuer != NULL && EVP_PKEY_eq(pk, X509_get0_pubkey(p->issuer)) == 1)
		return LINT(d, "subject key must differ from the issuer key");
	if (p->policy != NULL && !kiln_policy_key_ok(p->policy, kiln_key_type_name(kd.type),
						      kd.curve, kd.bits))
		return LINT(d, "key %s is not allowed by policy %s", kd.name, p->policy->product);
	return kiln_ok();
}

static kiln_result lint_san(X509 *x, kiln_diag *d)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	kiln_result r = kiln_ok();

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const char *s;
		int n;

		if (gn->type != GEN_URI && gn->type != GEN_DNS)
			continue;
		s = (const char *)ASN1_STRING_get0_data(gn->d.ia5);
		n = ASN1_STRING_length(gn->d.ia5);
		if (n <= 0 || memchr(s, '\0', (size_t)n) != NULL ||
		    (gn->type == GEN_URI && memchr(s, ':', (size_t)n) == NULL)) {
			r = LINT(d, "subjectAltName entries must be non-empty; URIs need a scheme");
			break;
		}
		for (int j = 0; gn->type == GEN_DNS && j < n; j++) {
			char c = s[j];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '.')) {
				r = LINT(d, "dNSName '%.*s' holds a character outside LDH", n, s);
				break;
			}
		}
		if (!kiln_is_ok(r))
			break;
	}
	GENERAL_NAMES_free(gens);
	return r;
}

/* The TBS signature algorithm is the issuer's; a parsed certificate's outer one agrees. */
static bool sigalg_ok(const X509 *x, const struct kiln_alg_info *ai)
{
	const X509_ALGOR *tbs = X509_get0_tbs_sigalg(x), *outer = NULL;
	const ASN1_OBJECT *obj = NULL;

	X509_ALGOR_get0(&obj, NULL, NULL, tbs);
	if (obj == NULL || OBJ_obj2nid(obj) != ai->sig_nid)
		return false;
	X509_get0_signature(NULL, &outer, x);
	X509_ALGOR_get0(&obj, NULL, NULL, outer);
	return obj == NULL || OBJ_length(obj) == 0 || X509_ALGOR_cmp(tbs, outer) == 0;
}

kiln_result kiln_lint_cert(const X509 *cert, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(p->sig_alg);
	X509 *x = (X509 *)cert; /* OpenSSL's extension getters are not const-correct */
	kiln_result r;

	if (X509_get_version(x) != X509_VERSION_3)
		return LINT(d, "version must be v3");
	/* Caches extensions; flags duplicates and undecodable ones as invalid. */
	if (X509_check_purpose(x, -1, 0) != 1 || (X509_get_extension_flags(x) & EXFLAG_INVALID)) {
		ERR_clear_error();
		return LINT(d, "extensions must be decodable and not repeated");
	}
	if (ai == NULL || !sigalg_ok(x, ai))
		return LINT(d, "signature algorithm must be the issuer's (%s)",
			    ai != NULL ? ai->display : "?");
	KILN_TRY(r, lint_serial(x, d));
	KILN_TRY(r, lint_validity(x, p, d));
	KILN_TRY(r, lint_names(x, p, d));
	KILN_TRY(r, lint_basic(x, p, d));
	KILN_TRY(r, lint_key_usage(x, p, d));
	KILN_TRY(r, lint_key_ids(x, p, d));
	KILN_TRY(r, lint_key(x, p, d));
	KILN_TRY(r, lint_san(x, d));
out:
	ERR_clear_error();
	return r;
}
