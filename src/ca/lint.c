/*
 * Lint before sign: every TBS is checked against RFC 5280 and its profile
 * before it may reach the HSM, so a bug in profile building can never turn
 * into a signed, mis-issued certificate. Each rule fails with its own line.
 *
 * The lint reads the TBS bytes themselves, the exact bytes the HSM will
 * sign, with kiln's strict DER reader: it does not trust the writer's idea
 * of what it wrote, and it costs no OpenSSL object per certificate.
 */
#include "ca_impl.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#define LINT(d, ...) kiln_diag_set((d), KILN_ERR_INTERNAL, "lint: " __VA_ARGS__)
#define BAD_EXT(d) LINT(d, "extensions must be decodable and not repeated")

#define TAG_BOOLEAN 0x01
#define TAG_OID 0x06
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18
#define TAG_SET 0x31
#define TAG_VERSION 0xa0
#define TAG_EXTENSIONS 0xa3
#define TAG_KEYID 0x80
#define LINT_MAX_EXT 32

/* Content octets of the OIDs the lint looks at. */
static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 }, oid_c[] = { 0x55, 0x04, 0x06 },
		     oid_o[] = { 0x55, 0x04, 0x0a }, oid_ou[] = { 0x55, 0x04, 0x0b },
		     oid_ski[] = { 0x55, 0x1d, 0x0e }, oid_ku[] = { 0x55, 0x1d, 0x0f },
		     oid_san[] = { 0x55, 0x1d, 0x11 }, oid_bc[] = { 0x55, 0x1d, 0x13 },
		     oid_aki[] = { 0x55, 0x1d, 0x23 }, oid_eku[] = { 0x55, 0x1d, 0x25 },
		     oid_crldp[] = { 0x55, 0x1d, 0x1f },
		     oid_aia[] = { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01 };

#define OID_IS(s, o) ((s).len == sizeof(o) && memcmp((s).ptr, (o), sizeof(o)) == 0)

struct lint_ext {
	kiln_slice oid, value; /* value: the extnValue OCTET STRING's content */
	bool critical;
};

struct lint_tbs {
	kiln_slice serial, sigalg, issuer, not_before, not_after, subject, spki;
	uint8_t nb_tag, na_tag;
	struct lint_ext ext[LINT_MAX_EXT];
	size_t n_ext;
};

/* One TLV with tag want; content and tlv may be NULL. */
static bool read_tag(kiln_cursor *c, uint8_t want, kiln_slice *content, kiln_slice *tlv)
{
	kiln_slice unused;
	uint8_t tag;

	return kiln_is_ok(kiln_der_read_tlv(c, &tag, content != NULL ? content : &unused, tlv)) &&
	       tag == want;
}

/* s is exactly one TLV with tag want; its content in *content. */
static bool read_whole(kiln_slice s, uint8_t want, kiln_slice *content)
{
	kiln_cursor c;

	kiln_cursor_init(&c, s);
	return read_tag(&c, want, content, NULL) && kiln_cursor_remaining(&c) == 0;
}

/*
 * Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }:
 * in DER the flag is absent or TRUE.
 */
static bool read_ext(kiln_cursor *c, struct lint_ext *e)
{
	kiln_slice seq, b;
	kiln_cursor in;

	if (!read_tag(c, KILN_DER_SEQUENCE, &seq, NULL))
		return false;
	kiln_cursor_init(&in, seq);
	if (!read_tag(&in, TAG_OID, &e->oid, NULL) || e->oid.len == 0)
		return false;
	e->critical = false;
	if (kiln_cursor_remaining(&in) > 0 && in.ptr[in.pos] == TAG_BOOLEAN) {
		if (!read_tag(&in, TAG_BOOLEAN, &b, NULL) || b.len != 1 || b.ptr[0] != 0xff)
			return false;
		e->critical = true;
	}
	return read_tag(&in, KILN_DER_OCTET_STRING, &e->value, NULL) &&
	       kiln_cursor_remaining(&in) == 0;
}

static kiln_result read_exts(kiln_slice outer, struct lint_tbs *t, kiln_diag *d)
{
	kiln_cursor in;
	kiln_slice seq;

	if (!read_whole(outer, KILN_DER_SEQUENCE, &seq))
		return BAD_EXT(d);
	kiln_cursor_init(&in, seq);
	while (kiln_cursor_remaining(&in) > 0) {
		struct lint_ext *e = &t->ext[t->n_ext];

		if (t->n_ext == LINT_MAX_EXT)
			return LINT(d, "more than %d extensions", LINT_MAX_EXT);
		if (!read_ext(&in, e))
			return BAD_EXT(d);
		for (size_t i = 0; i < t->n_ext; i++) {
			if (t->ext[i].oid.len == e->oid.len &&
			    memcmp(t->ext[i].oid.ptr, e->oid.ptr, e->oid.len) == 0)
				return BAD_EXT(d);
		}
		t->n_ext++;
	}
	return kiln_ok();
}

/*
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT, serialNumber, signature,
 * issuer, validity, subject, subjectPublicKeyInfo, extensions [3] EXPLICIT }
 * (no unique identifiers: RFC 5280 4.1.2.8, conforming CAs do not write them).
 */
static kiln_result read_tbs(kiln_slice der, struct lint_tbs *t, kiln_diag *d)
{
	kiln_slice seq, ver, v, validity, exts;
	kiln_cursor in, vc;

	if (!read_whole(der, KILN_DER_SEQUENCE, &seq))
		return LINT(d, "the TBS is not one DER SEQUENCE");
	kiln_cursor_init(&in, seq);
	if (!read_tag(&in, TAG_VERSION, &ver, NULL))
		return LINT(d, "version must be v3");
	kiln_cursor_init(&vc, ver);
	if (!read_tag(&vc, KILN_DER_INTEGER, &v, NULL) || kiln_cursor_remaining(&vc) != 0 ||
	    v.len != 1 || v.ptr[0] != 2)
		return LINT(d, "version must be v3");
	if (!read_tag(&in, KILN_DER_INTEGER, &t->serial, NULL) ||
	    !read_tag(&in, KILN_DER_SEQUENCE, NULL, &t->sigalg) ||
	    !read_tag(&in, KILN_DER_SEQUENCE, NULL, &t->issuer) ||
	    !read_tag(&in, KILN_DER_SEQUENCE, &validity, NULL) ||
	    !read_tag(&in, KILN_DER_SEQUENCE, NULL, &t->subject) ||
	    !read_tag(&in, KILN_DER_SEQUENCE, NULL, &t->spki))
		return LINT(d, "the TBS fields are not serial, signature, issuer, validity, "
			       "subject and key in order");
	kiln_cursor_init(&vc, validity);
	if (!kiln_is_ok(kiln_der_read(&vc, &t->nb_tag, &t->not_before)) ||
	    !kiln_is_ok(kiln_der_read(&vc, &t->na_tag, &t->not_after)) ||
	    kiln_cursor_remaining(&vc) != 0)
		return LINT(d, "validity must be two times");
	t->n_ext = 0;
	if (kiln_cursor_remaining(&in) == 0)
		return kiln_ok();
	if (!read_tag(&in, TAG_EXTENSIONS, &exts, NULL) || kiln_cursor_remaining(&in) != 0)
		return LINT(d, "only extensions may follow the subject public key");
	return read_exts(exts, t, d);
}

static const struct lint_ext *find_ext(const struct lint_tbs *t, const uint8_t *oid, size_t len)
{
	for (size_t i = 0; i < t->n_ext; i++) {
		if (t->ext[i].oid.len == len && memcmp(t->ext[i].oid.ptr, oid, len) == 0)
			return &t->ext[i];
	}
	return NULL;
}

#define FIND_EXT(t, o) find_ext((t), (o), sizeof(o))

/* Positive, non-zero, minimally encoded, at most 20 octets of value (RFC 5280 4.1.2.2). */
static kiln_result lint_serial(const struct lint_tbs *t, kiln_diag *d)
{
	kiln_slice s = t->serial;
	/* A set high bit is negative; a 0x00 not followed by a high bit is not minimal. */
	bool ok = s.len > 0 && !(s.ptr[0] & 0x80) &&
		  !(s.len > 1 && s.ptr[0] == 0 && !(s.ptr[1] & 0x80));
	size_t value = ok && s.ptr[0] == 0 ? s.len - 1 : s.len;

	if (!ok || value == 0 || value > 20)
		return LINT(d, "serial number must be positive, non-zero and at most 20 octets");
	return kiln_ok();
}

static bool digits(const uint8_t *p, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int dd)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ for 1950-2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ from 2050; nothing else (no fractions, no offsets).
 */
static bool parse_time(uint8_t tag, kiln_slice s, int64_t *out)
{
	size_t ylen = tag == TAG_UTCTIME ? 2 : 4;
	int y, mo, dd, h, mi, se;

	if ((tag != TAG_UTCTIME && tag != TAG_GENTIME) || s.len != ylen + 11 ||
	    s.ptr[s.len - 1] != 'Z' || !digits(s.ptr, ylen, &y) ||
	    !digits(s.ptr + ylen, 2, &mo) || !digits(s.ptr + ylen + 2, 2, &dd) ||
	    !digits(s.ptr + ylen + 4, 2, &h) || !digits(s.ptr + ylen + 6, 2, &mi) ||
	    !digits(s.ptr + ylen + 8, 2, &se))
		return false;
	if (tag == TAG_UTCTIME)
		y += y >= 50 ? 1900 : 2000;
	else if (y < 2050)
		return false;
	if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || h > 23 || mi > 59 || se > 59)
		return false;
	*out = days_from_civil(y, mo, dd) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

static kiln_result lint_validity(const struct lint_tbs *t, const struct kiln_lint_profile *p,
				 kiln_diag *d)
{
	int64_t nb, na, days;

	if (!parse_time(t->nb_tag, t->not_before, &nb) || !parse_time(t->na_tag, t->not_after, &na))
		return LINT(d, "validity times must be UTCTime before 2050 and GeneralizedTime after");
	if (na <= nb)
		return LINT(d, "notAfter must be later than notBefore");
	days = (na - nb) / 86400;
	if (p->max_validity_days > 0 && days > p->max_validity_days + 1)
		return LINT(d, "validity of %lld days exceeds the profile's %lld", (long long)days,
			    (long long)p->max_validity_days);
	if (p->issuer != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(p->issuer), (time_t)na) < 0)
		return LINT(d, "certificate must not outlive its issuer");
	return kiln_ok();
}

/* An attribute's short name, for a message. */
static const char *attr_name(kiln_slice oid)
{
	if (OID_IS(oid, oid_cn))
		return "CN";
	if (OID_IS(oid, oid_o))
		return "O";
	if (OID_IS(oid, oid_ou))
		return "OU";
	if (OID_IS(oid, oid_c))
		return "C";
	return "attribute";
}

/* Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value }: each value 1..max octets. */
static kiln_result lint_subject(kiln_slice subject, kiln_diag *d)
{
	kiln_slice names, set, atv, oid, val;
	kiln_cursor c, rdns, in, a;
	size_t n = 0;
	uint8_t tag;

	kiln_cursor_init(&c, subject);
	if (!read_tag(&c, KILN_DER_SEQUENCE, &names, NULL))
		return LINT(d, "subject must be a Name");
	kiln_cursor_init(&rdns, names);
	while (kiln_cursor_remaining(&rdns) > 0) {
		if (!read_tag(&rdns, TAG_SET, &set, NULL) || set.len == 0)
			return LINT(d, "subject must be a Name");
		kiln_cursor_init(&in, set);
		while (kiln_cursor_remaining(&in) > 0) {
			int max;

			if (!read_tag(&in, KILN_DER_SEQUENCE, &atv, NULL))
				return LINT(d, "subject must be a Name");
			kiln_cursor_init(&a, atv);
			if (!read_tag(&a, TAG_OID, &oid, NULL) ||
			    !kiln_is_ok(kiln_der_read(&a, &tag, &val)) || kiln_cursor_remaining(&a) != 0)
				return LINT(d, "subject must be a Name");
			max = OID_IS(oid, oid_cn) || OID_IS(oid, oid_o) || OID_IS(oid, oid_ou) ? 64 :
			      OID_IS(oid, oid_c)					     ? 2 :
												       128;
			if (val.len == 0 || val.len > (size_t)max)
				return LINT(d, "subject %s must be 1..%d characters", attr_name(oid), max);
			n++;
		}
	}
	if (n == 0)
		return LINT(d, "subject must not be empty");
	return kiln_ok();
}

static kiln_result lint_names(const struct lint_tbs *t, const struct kiln_lint_profile *p,
			      kiln_diag *d)
{
	kiln_slice want = t->subject;

	KILN_GUARD(lint_subject(t->subject, d));
	if (p->issuer != NULL) {
		const unsigned char *der = NULL;
		size_t len = 0;

		if (X509_NAME_get0_der(X509_get_subject_name(p->issuer), &der, &len) != 1)
			return LINT(d, "the issuer's name cannot be encoded");
		want = kiln_slice_of(der, len);
	}
	if (t->issuer.len != want.len || memcmp(t->issuer.ptr, want.ptr, want.len) != 0)
		return LINT(d, "issuer name must equal the issuer's subject");
	return kiln_ok();
}

static kiln_result lint_basic(const struct lint_tbs *t, const struct kiln_lint_profile *p,
			      kiln_diag *d)
{
	const struct lint_ext *e = FIND_EXT(t, oid_bc);
	kiln_slice seq, b, pl;
	kiln_cursor in;
	bool is_ca = false;
	long path_len = -1;

	if (e == NULL)
		return LINT(d, "basicConstraints must be present");
	if (!read_whole(e->value, KILN_DER_SEQUENCE, &seq))
		return BAD_EXT(d);
	kiln_cursor_init(&in, seq);
	if (kiln_cursor_remaining(&in) > 0 && in.ptr[in.pos] == TAG_BOOLEAN) {
		if (!read_tag(&in, TAG_BOOLEAN, &b, NULL) || b.len != 1 || b.ptr[0] != 0xff)
			return BAD_EXT(d);
		is_ca = true;
	}
	if (kiln_cursor_remaining(&in) > 0) {
		if (!read_tag(&in, KILN_DER_INTEGER, &pl, NULL) || pl.len == 0 || pl.len > 2 ||
		    (pl.ptr[0] & 0x80) || kiln_cursor_remaining(&in) != 0)
			return BAD_EXT(d);
		path_len = pl.len == 1 ? pl.ptr[0] : (long)pl.ptr[0] << 8 | pl.ptr[1];
	}
	if (!e->critical)
		return LINT(d, "basicConstraints must be critical");
	if (is_ca != p->is_ca)
		return LINT(d, "basicConstraints cA must be %s", p->is_ca ? "TRUE" : "FALSE");
	if (path_len != (p->is_ca ? p->path_len : -1))
		return LINT(d, "pathLenConstraint must be %d", p->is_ca ? p->path_len : -1);
	return kiln_ok();
}

/* keyUsage as OpenSSL's KU_* mask: the first octet, and the second's as bits 8-15. */
static kiln_result lint_key_usage(const struct lint_tbs *t, const struct kiln_lint_profile *p,
				  kiln_diag *d)
{
	const struct lint_ext *e = FIND_EXT(t, oid_ku);
	kiln_slice bits;
	unsigned have;

	if (e == NULL)
		return LINT(d, "keyUsage must be present");
	if (!read_whole(e->value, KILN_DER_BIT_STRING, &bits) || bits.len == 0 || bits.ptr[0] > 7 || (bits.len == 1 && bits.ptr[0] != 0) ||
	    (bits.len > 1 && (bits.ptr[bits.len - 1] & ((1u << bits.ptr[0]) - 1)) != 0))
		return BAD_EXT(d);
	if (!e->critical)
		return LINT(d, "keyUsage must be critical");
	have = (bits.len > 1 ? bits.ptr[1] : 0) | (bits.len > 2 ? (unsigned)bits.ptr[2] << 8 : 0);
	if (have != p->key_usage)
		return LINT(d, "keyUsage 0x%x differs from the profile's 0x%x", have, p->key_usage);
	if (!p->is_ca && (have & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)))
		return LINT(d, "an end-entity certificate must not have keyCertSign or cRLSign");
	if (p->is_ca && !(have & KU_KEY_CERT_SIGN))
		return LINT(d, "a CA certificate must have keyCertSign");
	return kiln_ok();
}

static kiln_result lint_key_ids(const struct lint_tbs *t, const struct kiln_lint_profile *p,
				kiln_diag *d)
{
	const struct lint_ext *ski = FIND_EXT(t, oid_ski), *aki = FIND_EXT(t, oid_aki);
	kiln_slice own, seq, keyid = { 0 }, want;
	kiln_cursor c;
	uint8_t tag = 0;

	if (ski == NULL)
		return LINT(d, "subjectKeyIdentifier must be present");
	if (!read_whole(ski->value, KILN_DER_OCTET_STRING, &own) || own.len == 0)
		return BAD_EXT(d);
	want = own;
	if (p->issuer != NULL) {
		const ASN1_OCTET_STRING *is = X509_get0_subject_key_id((X509 *)p->issuer);

		want = is != NULL ? kiln_slice_of(ASN1_STRING_get0_data(is), (size_t)ASN1_STRING_length(is))
				  : kiln_slice_of(NULL, 0);
	}
	if (aki != NULL) {
		if (!read_whole(aki->value, KILN_DER_SEQUENCE, &seq))
			return BAD_EXT(d);
		kiln_cursor_init(&c, seq);
		/* keyIdentifier [0] comes first when present; [1] issuer and [2] serial are not compared. */
		if (kiln_cursor_remaining(&c) > 0 && !kiln_is_ok(kiln_der_read(&c, &tag, &keyid)))
			return BAD_EXT(d);
		if (tag != TAG_KEYID)
			keyid = kiln_slice_of(NULL, 0);
	}
	if (aki == NULL || want.len == 0 || keyid.len != want.len ||
	    memcmp(keyid.ptr, want.ptr, want.len) != 0)
		return LINT(d, "authorityKeyIdentifier must equal the issuer's subjectKeyIdentifier");
	return kiln_ok();
}

/* subjectPublicKeyInfo's key bits (the BIT STRING's value after its unused-bits octet). */
static bool spki_bits(kiln_slice spki, kiln_slice *bits)
{
	kiln_slice seq, b;
	kiln_cursor c;

	kiln_cursor_init(&c, spki);
	if (!read_tag(&c, KILN_DER_SEQUENCE, &seq, NULL))
		return false;
	kiln_cursor_init(&c, seq);
	if (!read_tag(&c, KILN_DER_SEQUENCE, NULL, NULL) ||
	    !read_tag(&c, KILN_DER_BIT_STRING, &b, NULL) || kiln_cursor_remaining(&c) != 0 ||
	    b.len < 2 || b.ptr[0] != 0)
		return false;
	*bits = kiln_slice_of(b.ptr + 1, b.len - 1);
	return true;
}

/*
 * The key in the TBS: exactly the bytes of p->subject_spki when the caller
 * gives them (then p->subject_key is their decoded form), else decoded here
 * and, when p->subject_key is set, the same key.
 */
static kiln_result lint_key(const struct lint_tbs *t, const struct kiln_lint_profile *p,
			    kiln_diag *d)
{
	const ASN1_BIT_STRING *issuer_bits = p->issuer != NULL ? X509_get0_pubkey_bitstr(p->issuer) : NULL;
	const EVP_PKEY *pk = p->subject_key;
	EVP_PKEY *decoded = NULL;
	struct kiln_key_desc kd;
	kiln_slice bits;
	kiln_result r = kiln_ok();
	bool canonical;

	if (!spki_bits(t->spki, &bits))
		return LINT(d, "subject public key info must be an algorithm and a key");
	if (p->subject_spki.len > 0) {
		if (pk == NULL || t->spki.len != p->subject_spki.len ||
		    memcmp(t->spki.ptr, p->subject_spki.ptr, t->spki.len) != 0)
			return LINT(d, "subject public key must be the one requested");
	} else {
		if (!kiln_is_ok(kiln_spki_key(t->spki, &decoded, &canonical)) ||
		    (pk != NULL && EVP_PKEY_eq(decoded, pk) != 1)) {
			r = LINT(d, "subject public key must be the one requested");
			goto out;
		}
		pk = decoded;
	}
	if (!kiln_is_ok(kiln_key_describe(pk, &kd)) || kd.type == KILN_KEY_UNKNOWN) {
		r = LINT(d, "subject public key must be EC, Ed25519 or RSA");
	} else if (kd.type == KILN_KEY_RSA && kd.bits < 2048) {
		r = LINT(d, "RSA keys must have at least 2048 bits");
	} else if (issuer_bits != NULL && (size_t)ASN1_STRING_length(issuer_bits) == bits.len &&
		   memcmp(ASN1_STRING_get0_data(issuer_bits), bits.ptr, bits.len) == 0) {
		r = LINT(d, "subject key must differ from the issuer key");
	} else if (p->policy != NULL && !kiln_policy_key_ok(p->policy, kiln_key_type_name(kd.type),
							    kd.curve, kd.bits)) {
		r = LINT(d, "key %s is not allowed by policy %s", kd.name, p->policy->product);
	}
out:
	EVP_PKEY_free(decoded);
	return r;
}

/* GeneralNames: URIs and DNS names non-empty, no NUL; URIs with a scheme, DNS names LDH. */
static kiln_result lint_san(const struct lint_tbs *t, kiln_diag *d)
{
	const struct lint_ext *e = FIND_EXT(t, oid_san);
	kiln_slice seq, v;
	kiln_cursor c;
	uint8_t tag;

	if (e == NULL)
		return kiln_ok();
	if (!read_whole(e->value, KILN_DER_SEQUENCE, &seq) || seq.len == 0)
		return BAD_EXT(d);
	kiln_cursor_init(&c, seq);
	while (kiln_cursor_remaining(&c) > 0) {
		if (!kiln_is_ok(kiln_der_read(&c, &tag, &v)))
			return BAD_EXT(d);
		if (tag != 0x86 && tag != 0x82)
			continue;
		if (v.len == 0 || memchr(v.ptr, '\0', v.len) != NULL ||
		    (tag == 0x86 && memchr(v.ptr, ':', v.len) == NULL))
			return LINT(d, "subjectAltName entries must be non-empty; URIs need a scheme");
		for (size_t j = 0; tag == 0x82 && j < v.len; j++) {
			uint8_t ch = v.ptr[j];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
				return LINT(d, "dNSName '%.*s' holds a character outside LDH", (int)v.len,
					    (const char *)v.ptr);
		}
	}
	return kiln_ok();
}

/* extKeyUsage is a non-empty list of OIDs; CRL distribution points and AIA are well-formed DER. */
static kiln_result lint_other_exts(const struct lint_tbs *t, kiln_diag *d)
{
	const struct lint_ext *eku = FIND_EXT(t, oid_eku), *dp = FIND_EXT(t, oid_crldp),
			      *aia = FIND_EXT(t, oid_aia);
	kiln_slice seq, oid;
	kiln_cursor c;

	if (eku != NULL) {
		if (!read_whole(eku->value, KILN_DER_SEQUENCE, &seq) || seq.len == 0)
			return BAD_EXT(d);
		kiln_cursor_init(&c, seq);
		while (kiln_cursor_remaining(&c) > 0) {
			if (!read_tag(&c, TAG_OID, &oid, NULL) || oid.len == 0)
				return BAD_EXT(d);
		}
	}
	if ((dp != NULL && !kiln_is_ok(kiln_der_check(dp->value))) ||
	    (aia != NULL && !kiln_is_ok(kiln_der_check(aia->value))))
		return BAD_EXT(d);
	return kiln_ok();
}

kiln_result kiln_lint_tbs(kiln_slice tbs, const struct kiln_lint_profile *p, kiln_diag *d)
{
	const struct kiln_alg_info *ai = kiln_alg_get(p->sig_alg);
	struct lint_tbs tl, *t = &tl;
	kiln_result r;

	KILN_TRY(r, read_tbs(tbs, t, d));
	if (ai == NULL || t->sigalg.len != ai->algid.len ||
	    memcmp(t->sigalg.ptr, ai->algid.ptr, ai->algid.len) != 0) {
		r = LINT(d, "signature algorithm must be the issuer's (%s)",
			 ai != NULL ? ai->display : "?");
		goto out;
	}
	KILN_TRY(r, lint_serial(t, d));
	KILN_TRY(r, lint_validity(t, p, d));
	KILN_TRY(r, lint_names(t, p, d));
	KILN_TRY(r, lint_basic(t, p, d));
	KILN_TRY(r, lint_key_usage(t, p, d));
	KILN_TRY(r, lint_key_ids(t, p, d));
	KILN_TRY(r, lint_key(t, p, d));
	KILN_TRY(r, lint_san(t, d));
	r = lint_other_exts(t, d);
out:
	ERR_clear_error();
	return r;
}
