/* Distinguished names: built from (attribute, value) pairs, printed as RFC 2253. */
#include "crypto.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <limits.h>
#include <string.h>

/*
 * The attributes crypto.h promises, by their short names only: OBJ_txt2nid
 * alone would also take "sha256" or a dotted OID and put it in a subject.
 */
static const struct {
	const char *attr;
	int nid;
} attr_names[] = {
	{ "CN", NID_commonName },
	{ "O", NID_organizationName },
	{ "OU", NID_organizationalUnitName },
	{ "C", NID_countryName },
	{ "L", NID_localityName },
	{ "ST", NID_stateOrProvinceName },
	{ "serialNumber", NID_serialNumber },
};

static int attr_nid(const char *attr)
{
	if (attr == NULL)
		return NID_undef;
	for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
		if (strcmp(attr_names[i].attr, attr) == 0)
			return attr_names[i].nid;
	}
	return NID_undef;
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
