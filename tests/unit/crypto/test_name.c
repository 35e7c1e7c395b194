/* Unit tests for src/crypto/name.c: building and printing distinguished names. */
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
}

static void check_entry(const X509_NAME *n, int i, int nid, int type, const char *value)
{
	const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
	const ASN1_STRING *s;

	assert_non_null(e);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
	s = X509_NAME_ENTRY_get_data(e);
	assert_int_equal(ASN1_STRING_type(s), type);
	assert_int_equal(ASN1_STRING_length(s), (int)strlen(value));
	assert_memory_equal(ASN1_STRING_get0_data(s), value, strlen(value));
	/* each attribute in its own RDN, in order */
	assert_int_equal(X509_NAME_ENTRY_set(e), i);
}

static void test_build_all_attributes(void **state)
{
	static const struct kiln_name_attr attrs[] = {
		{ "C", "DE" },        { "ST", "Bayern" },       { "L", "M\xc3\xbcnchen" },
		{ "O", "Acme GmbH" }, { "OU", "Manufacturing" }, { "CN", "device-0001" },
		{ "serialNumber", "SN12345" },
	};
	X509_NAME *n = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_name_build(attrs, 7, &n, &d));
	assert_non_null(n);
	assert_int_equal(X509_NAME_entry_count(n), 7);
	/* C and serialNumber are PrintableString (RFC 5280), the rest UTF8String */
	check_entry(n, 0, NID_countryName, V_ASN1_PRINTABLESTRING, "DE");
	check_entry(n, 1, NID_stateOrProvinceName, V_ASN1_UTF8STRING, "Bayern");
	check_entry(n, 2, NID_localityName, V_ASN1_UTF8STRING, "M\xc3\xbcnchen");
	check_entry(n, 3, NID_organizationName, V_ASN1_UTF8STRING, "Acme GmbH");
	check_entry(n, 4, NID_organizationalUnitName, V_ASN1_UTF8STRING, "Manufacturing");
	check_entry(n, 5, NID_commonName, V_ASN1_UTF8STRING, "device-0001");
	check_entry(n, 6, NID_serialNumber, V_ASN1_PRINTABLESTRING, "SN12345");
	assert_int_equal(d.code, KILN_OK);
	X509_NAME_free(n);
}

static void test_build_empty(void **state)
{
	X509_NAME *n = NULL;
	char out[16];

	(void)state;
	KT_OK(kiln_name_build(NULL, 0, &n, NULL));
	assert_non_null(n);
	assert_int_equal(X509_NAME_entry_count(n), 0);
	kiln_name_format(n, out, sizeof(out));
	assert_string_equal(out, "");
	X509_NAME_free(n);
}

static void expect_refused(const char *attr, const char *value, const char *in_message)
{
	struct kiln_name_attr attrs[2] = { { "CN", "ok" }, { attr, value } };
	X509_NAME *n = (X509_NAME *)(void *)attrs; /* must be reset to NULL */
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_name_build(attrs, 2, &n, &d), KILN_ERR_ARG);
	assert_null(n);
	assert_int_equal(d.code, KILN_ERR_ARG);
	assert_one_line(&d);
	if (in_message != NULL)
		assert_non_null(strstr(d.text, in_message));
}

static void test_unknown_attribute(void **state)
{
	(void)state;
	expect_refused("XYZ", "v", "XYZ");
	expect_refused("cn", "v", "cn");               /* short names are case-sensitive */
	expect_refused("commonName", "v", NULL);       /* long names are not the API */
	expect_refused("2.5.4.3", "v", NULL);          /* nor dotted OIDs */
	expect_refused("sha256", "v", NULL);           /* an OID, but not an attribute */
	expect_refused("basicConstraints", "v", NULL);
	expect_refused("emailAddress", "a@b.c", NULL); /* deprecated in subjects (RFC 5280 4.1.2.6) */
	expect_refused("", "v", NULL);
	expect_refused(NULL, "v", NULL);
}

static void test_empty_or_missing_value(void **state)
{
	(void)state;
	expect_refused("CN", "", "CN");
	expect_refused("O", NULL, "O");
}

static void test_country_must_be_two_printable(void **state)
{
	X509_NAME *n = NULL;
	struct kiln_name_attr ok = { "C", "US" };

	(void)state;
	expect_refused("C", "USA", "C");
	expect_refused("C", "U", "C");
	expect_refused("C", "U$", "C");        /* '$' is not PrintableString */
	expect_refused("C", "\xc3\x9c" "S", "C"); /* non-ASCII */
	KT_OK(kiln_name_build(&ok, 1, &n, NULL));
	check_entry(n, 0, NID_countryName, V_ASN1_PRINTABLESTRING, "US");
	X509_NAME_free(n);
}

static void test_serial_number_printable(void **state)
{
	(void)state;
	expect_refused("serialNumber", "SN_1", "serialNumber"); /* '_' is not PrintableString */
	expect_refused("serialNumber", "S\xc3\xa9", "serialNumber");
}

static void test_length_limits(void **state)
{
	char v[66];
	struct kiln_name_attr a = { "CN", v };
	X509_NAME *n = NULL;

	(void)state;
	/* ub-common-name is 64 */
	memset(v, 'a', 64);
	v[64] = '\0';
	KT_OK(kiln_name_build(&a, 1, &n, NULL));
	X509_NAME_free(n);
	memset(v, 'a', 65);
	v[65] = '\0';
	expect_refused("CN", v, "CN");
}

/* A value with a newline must not break the diag onto a second line. */
static void test_diag_quotes_value_on_one_line(void **state)
{
	(void)state;
	expect_refused("C", "D\nE", "D?E");
}

static X509_NAME *build(const struct kiln_name_attr *a, size_t n)
{
	X509_NAME *name = NULL;

	KT_OK(kiln_name_build(a, n, &name, NULL));
	return name;
}

static void test_format_rfc2253(void **state)
{
	static const struct kiln_name_attr attrs[] = {
		{ "C", "DE" }, { "O", "Acme" }, { "OU", "Lab" }, { "CN", "device-1" },
	};
	X509_NAME *n = build(attrs, 4);
	char out[256];

	(void)state;
	kiln_name_format(n, out, sizeof(out));
	/* RFC 2253 prints the most specific RDN first */
	assert_string_equal(out, "CN=device-1,OU=Lab,O=Acme,C=DE");
	X509_NAME_free(n);
}

static void test_format_escaping(void **state)
{
	static const struct kiln_name_attr attrs[] = {
		{ "O", "A, B+C" }, { "CN", "caf\xc3\xa9" }, { "OU", "x\ny" },
	};
	X509_NAME *n = build(attrs, 3);
	char out[256];

	(void)state;
	kiln_name_format(n, out, sizeof(out));
	/* specials escaped, UTF-8 kept as is, control characters escaped: one line */
	assert_string_equal(out, "OU=x\\0Ay,CN=caf\xc3\xa9,O=A\\, B\\+C");
	assert_null(strchr(out, '\n'));
	X509_NAME_free(n);
}

static void test_format_cut_at_cap(void **state)
{
	static const struct kiln_name_attr attrs[] = { { "CN", "device-1" } };
	X509_NAME *n = build(attrs, 1);
	char out[8];

	(void)state;
	kiln_name_format(n, out, 6);
	assert_string_equal(out, "CN=de");
	kiln_name_format(n, out, 1);
	assert_string_equal(out, "");
	memcpy(out, "keep", 5);
	kiln_name_format(n, out, 0);
	assert_string_equal(out, "keep");
	X509_NAME_free(n);
}

/* A value for the differential test: bounds, RFC 2253 specials, now and then non-ASCII. */
static void random_value(char *v, size_t cap)
{
	static const size_t lens[] = { 0, 1, 2, 3, 5, 17, 63, 64, 65, 127, 128, 129 };
	static const char pick[] = " ,+\"\\<>;#='()-./:?aZ09";
	size_t len = lens[(size_t)rand() % (sizeof(lens) / sizeof(lens[0]))];

	if (len >= cap)
		len = cap - 1;
	for (size_t i = 0; i < len; i++) {
		int r = rand() % 40;

		if (r < 20)
			v[i] = pick[(size_t)rand() % (sizeof(pick) - 1)];
		else if (r < 38)
			v[i] = (char)('a' + rand() % 26);
		else if (r == 38)
			v[i] = (char)(0x01 + rand() % 0x1f);
		else
			v[i] = (char)0xc3; /* half of a UTF-8 pair: not simple, and OpenSSL refuses it */
	}
	v[len] = '\0';
}

static bool all_printable_ascii(const struct kiln_name_attr *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (const char *p = a[i].value; *p != '\0'; p++) {
			if (*p < 0x20 || *p > 0x7e)
				return false;
		}
	}
	return true;
}

/* kiln_name_simple against kiln_name_build + X509_NAME_get0_der + kiln_name_format. */
static void test_simple_same_as_openssl(void **state)
{
	static const char *const attr_pool[] = { "CN", "O", "OU", "C", "L", "ST", "serialNumber", "DC" };
	char vals[6][140];
	unsigned simple_count = 0;

	(void)state;
	srand(11);
	for (int round = 0; round < 4000; round++) {
		struct kiln_name_attr attrs[6];
		size_t n = (size_t)rand() % 7;
		X509_NAME *name = NULL;
		kiln_buf der;
		char want[512], got[512], cut[12], want_cut[12];
		const unsigned char *ref = NULL;
		size_t ref_len = 0;
		bool built, simple;
		kiln_diag d;

		for (size_t i = 0; i < n; i++) {
			int a = rand() % 50 == 0 ? 7 : rand() % 7;

			random_value(vals[i], sizeof(vals[i]));
			if (a == 3 && rand() % 2) /* countries of the right length, often */
				(void)snprintf(vals[i], sizeof(vals[i]), "%c%c", 'A' + rand() % 26,
					       rand() % 9 ? 'A' + rand() % 26 : ' ');
			attrs[i] = (struct kiln_name_attr){ attr_pool[a], vals[i] };
		}
		kiln_diag_clear(&d);
		built = kiln_is_ok(kiln_name_build(attrs, n, &name, &d));
		kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_buf_append_str(&der, "pre"));
		simple = kiln_name_simple(attrs, n, &der, got, sizeof(got));
		assert_int_equal(simple, built && all_printable_ascii(attrs, n));
		if (simple) {
			simple_count++;
			assert_int_equal(X509_NAME_get0_der(name, &ref, &ref_len), 1);
			assert_int_equal(der.len, 3 + ref_len);
			assert_memory_equal(der.ptr + 3, ref, ref_len);
			kiln_name_format(name, want, sizeof(want));
			assert_string_equal(got, want);
			/* cut at cap as kiln_name_format cuts */
			der.len = 3;
			assert_true(kiln_name_simple(attrs, n, &der, cut, sizeof(cut)));
			kiln_name_format(name, want_cut, sizeof(want_cut));
			assert_string_equal(cut, want_cut);
		} else {
			assert_int_equal(der.len, 3);
			assert_string_equal(kiln_buf_cstr(&der), "pre");
		}
		X509_NAME_free(name);
		kiln_buf_cleanup(&der);
	}
	/* the comparison ran on many names both ways */
	assert_true(simple_count > 500);
	assert_true(simple_count < 3500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_all_attributes),
		cmocka_unit_test(test_build_empty),
		cmocka_unit_test(test_unknown_attribute),
		cmocka_unit_test(test_empty_or_missing_value),
		cmocka_unit_test(test_country_must_be_two_printable),
		cmocka_unit_test(test_serial_number_printable),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_diag_quotes_value_on_one_line),
		cmocka_unit_test(test_format_rfc2253),
		cmocka_unit_test(test_format_escaping),
		cmocka_unit_test(test_format_cut_at_cap),
		cmocka_unit_test(test_simple_same_as_openssl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
