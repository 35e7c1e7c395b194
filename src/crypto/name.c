/* Distinguished names: built from (attribute, value) pairs, printed as RFC 2253. */
#include "crypto.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <limits.h>
#include <string.h>

/*
 * The attributes crypto.h promises, by their short names only: OBJ_txt2nid
 * alone would also take "sha256" or a dotted OID and put it in a subject.
 * The OID arc, bounds (characters) and string type are those of OpenSSL's
 * string table (a_strnid.c) under its default "utf8only" mask, which is what
 * kiln_name_build gets; kiln_name_simple writes them without it.
 */
struct attr_info {
	const char *attr;
	int nid;
	uint8_t arc; /* the OID is 2.5.4.arc */
	uint8_t min, max;
	bool printable; /* PrintableString; else UTF8String */
};

static const struct attr_info attr_names[] = {
	{ "CN", NID_commonName, 3, 1, 64, false },
	{ "O", NID_organizationName, 10, 1, 64, false },
	{ "OU", NID_organizationalUnitName, 11, 1, 64, false },
	{ "C", NID_countryName, 6, 2, 2, true },
	{ "L", NID_localityName, 7, 1, 128, false },
	{ "ST", NID_stateOrProvinceName, 8, 1, 128, false },
	{ "serialNumber", NID_serialNumber, 5, 1, 64, true },
};

static const struct attr_info *attr_find(const char *attr)
{
	if (attr == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
		if (strcmp(attr_names[i].attr, attr) == 0)
			return &attr_names[i];
	}
	return NULL;
}

static int attr_nid(const char *attr)
{
	const struct attr_info *a = attr_find(attr);

	return a != NULL ? a->nid : NID_undef;
}

kiln_result kiln_name_build(const struct kiln_name_attr *attrs, size_t n, X509_NAME **out,
			    kiln_diag *d)
{
	X509_NAME *name;

	*out = NULL;
	KILN_ENSURE(attrs != NULL || n == 0, KILN_ERR_ARG);
	name = X509_NAME_new();
	KILN_ENSURE(name != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; i < n; i++) {
		int nid = attr_nid(attrs[i].attr);

		if (nid == NID_undef) {
			X509_NAME_free(name);
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "'%.32s' is not a subject attribute kiln knows (CN, O, OU, C, L, ST, serialNumber)",
					     attrs[i].attr != NULL ? attrs[i].attr : "");
		}
		if (attrs[i].value == NULL || attrs[i].value[0] == '\0' ||
		    X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
					       (const unsigned char *)attrs[i].value, -1, -1,
					       0) != 1) {
			X509_NAME_free(name);
			ERR_clear_error();
			return kiln_diag_set(d, KILN_ERR_ARG,
					     "subject attribute %s cannot hold the value '%.64s'",
					     attrs[i].attr, attrs[i].value ? attrs[i].value : "");
		}
	}
	*out = name;
	return kiln_ok();
}

/* The PrintableString alphabet (X.680), as OpenSSL's is_printable has it. */
static bool printable_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr(" '()+,-./:=?", c) != NULL);
}

/* Printable ASCII within the attribute's bounds (and alphabet, for PrintableString). */
static bool simple_value(const struct attr_info *a, const char *v, size_t len)
{
	if (len < a->min || len > a->max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < 0x20 || v[i] > 0x7e || (a->printable && !printable_char(v[i])))
			return false;
	}
	return true;
}

/* One "SN=value" in RFC 2253 form (X509_NAME_print_ex, XN_FLAG_RFC2253) for a simple value. */
static kiln_result put_rdn_text(kiln_buf *t, const struct attr_info *a, const char *v, size_t len)
{
	KILN_GUARD(kiln_buf_append_str(t, a->attr));
	KILN_GUARD(kiln_buf_append_u8(t, '='));
	for (size_t i = 0; i < len; i++) {
		/* OpenSSL's do_buf: the last character's rule replaces the first's. */
		bool first = i == 0 && i != len - 1, last = i == len - 1;
		bool esc = strchr(",+\"\\<>;", v[i]) != NULL ||
			   (first && (v[i] == '#' || v[i] == ' ')) || (last && v[i] == ' ');

		if (esc)
			KILN_GUARD(kiln_buf_append_u8(t, '\\'));
		KILN_GUARD(kiln_buf_append_u8(t, (uint8_t)v[i]));
	}
	return kiln_ok();
}

/* One RDN: SET { SEQUENCE { 2.5.4.arc, value } }. */
static kiln_result put_rdn_der(kiln_buf *b, const struct attr_info *a, const char *v, size_t len)
{
	const uint8_t oid[] = { 0x06, 0x03, 0x55, 0x04, a->arc };
	size_t set = b->len;

	KILN_GUARD(kiln_buf_append(b, oid, sizeof(oid)));
	KILN_GUARD(kiln_der_write(b, a->printable ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING,
				  kiln_slice_of(v, len)));
	KILN_GUARD(kiln_der_wrap(b, set, KILN_DER_SEQUENCE));
	return kiln_der_wrap(b, set, V_ASN1_SET | V_ASN1_CONSTRUCTED);
}

static kiln_result put_simple(const struct kiln_name_attr *attrs, size_t n, kiln_buf *der,
			      kiln_buf *text, bool *simple)
{
	size_t start = der->len;

	*simple = false;
	for (size_t i = 0; i < n; i++) {
		const struct attr_info *a = attr_find(attrs[i].attr);

		if (a == NULL || attrs[i].value == NULL ||
		    !simple_value(a, attrs[i].value, strlen(attrs[i].value)))
			return kiln_ok();
	}
	for (size_t i = 0; i < n; i++)
		KILN_GUARD(put_rdn_der(der, attr_find(attrs[i].attr), attrs[i].value,
				       strlen(attrs[i].value)));
	KILN_GUARD(kiln_der_wrap(der, start, KILN_DER_SEQUENCE));
	/* The text lists the RDNs last first. */
	for (size_t i = n; i-- > 0;) {
		if (i < n - 1)
			KILN_GUARD(kiln_buf_append_u8(text, ','));
		KILN_GUARD(put_rdn_text(text, attr_find(attrs[i].attr), attrs[i].value,
					strlen(attrs[i].value)));
	}
	*simple = true;
	return kiln_ok();
}

bool kiln_name_simple(const struct kiln_name_attr *attrs, size_t n, kiln_buf *der, char *text,
		      size_t cap)
{
	size_t start = der->len;
	bool simple = false;
	kiln_buf t;

	if (attrs == NULL && n > 0)
		return false;
	kiln_buf_init(&t, KILN_BUF_DEFAULT_MAX);
	if (!kiln_is_ok(put_simple(attrs, n, der, &t, &simple)) || !simple) {
		der->len = start;
		if (der->ptr != NULL)
			der->ptr[start] = 0;
		simple = false;
	} else if (cap > 0) {
		kiln_strtrunc(text, kiln_buf_cstr(&t), cap);
	}
	kiln_buf_cleanup(&t);
	return simple;
}

void kiln_name_format(const X509_NAME *name, char *out, size_t cap)
{
	BIO *bio;
	int n;

	if (cap == 0)
		return;
	out[0] = '\0';
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_read(bio, out, cap - 1 > INT_MAX ? INT_MAX : (int)(cap - 1));
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
}
