/*
 * Unit tests for src/crypto/cert.c: serials, TBS building, signed-object
 * assembly around a signature made elsewhere (here: OpenSSL with a CA key,
 * standing in for the HSM), parsing, checking, printing. Chains are also
 * checked by an independent verifier, the openssl CLI, and every kind of
 * TBS is compared byte for byte with the one OpenSSL's X509 object model
 * encodes from the same spec (support/cert_ref.c).
 */
#include "support/cert_ref.h"
#include "support/support.h"

#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- fixtures */

static const kiln_alg algs[] = { KILN_ALG_P256, KILN_ALG_P384, KILN_ALG_ED25519, KILN_ALG_RSA3072 };
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

/* One CA key per algorithm, a spare P-256 CA key and two leaf keys, made once. */
static EVP_PKEY *ca_keys[N_ALGS];
static EVP_PKEY *other_ca_key;
static EVP_PKEY *leaf_ec, *leaf_ed;
static int64_t now;

static EVP_PKEY *gen_for(kiln_alg alg)
{
	switch (alg) {
	case KILN_ALG_P256:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	case KILN_ALG_P384:
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	case KILN_ALG_ED25519:
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	case KILN_ALG_RSA3072:
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	case KILN_ALG_NONE:
	case KILN_ALG__COUNT:
	default:
		return NULL;
	}
}

static int group_setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ALGS; i++) {
		ca_keys[i] = gen_for(algs[i]);
		if (ca_keys[i] == NULL)
			return -1;
	}
	other_ca_key = gen_for(KILN_ALG_P256);
	leaf_ec = gen_for(KILN_ALG_P256);
	leaf_ed = gen_for(KILN_ALG_ED25519);
	now = kiln_now();
	return other_ca_key != NULL && leaf_ec != NULL && leaf_ed != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ALGS; i++)
		EVP_PKEY_free(ca_keys[i]);
	EVP_PKEY_free(other_ca_key);
	EVP_PKEY_free(leaf_ec);
	EVP_PKEY_free(leaf_ed);
	return 0;
}

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
}

static X509_NAME *name_of(const char *o, const char *cn)
{
	const struct kiln_name_attr attrs[] = { { "C", "DE" }, { "O", o }, { "CN", cn } };
	X509_NAME *n = NULL;

	KT_OK(kiln_name_build(attrs, 3, &n, NULL));
	return n;
}

/*
 * The HSM's part: sign the TBS bytes with the CA key. OpenSSL's ECDSA output
 * is already the DER ECDSA-Sig-Value X.509 wants; Ed25519 signs the message itself.
 */
static void sign_tbs(kiln_alg alg, EVP_PKEY *key, kiln_slice tbs, kiln_buf *sig)
{
	const struct kiln_alg_info *ai = kiln_alg_get(alg);
	const char *md = ai->md_nid == NID_undef ? NULL : OBJ_nid2sn(ai->md_nid);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t len = 0;

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, &len, tbs.ptr, tbs.len), 1);
	assert_true(len <= ai->max_sig_len);
	kiln_buf_init(sig, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_reserve(sig, len));
	assert_int_equal(EVP_DigestSign(ctx, sig->ptr, &len, tbs.ptr, tbs.len), 1);
	sig->len = len;
	EVP_MD_CTX_free(ctx);
}

/* tbs -> signature -> assembled DER (appended to der). */
static void sign_and_assemble(const struct kiln_cert_spec *spec, EVP_PKEY *signer, kiln_buf *der)
{
	kiln_buf tbs, sig;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_cert_tbs(spec, &tbs, &d));
	assert_int_equal(d.code, KILN_OK);
	KT_OK(kiln_der_check(kiln_buf_view(&tbs)));
	sign_tbs(spec->sig_alg, signer, kiln_buf_view(&tbs), &sig);
	KT_OK(kiln_signed_assemble(kiln_buf_view(&tbs), spec->sig_alg, kiln_buf_view(&sig), der));
	kiln_buf_cleanup(&sig);
	kiln_buf_cleanup(&tbs);
}

static X509 *issue(const struct kiln_cert_spec *spec, EVP_PKEY *signer)
{
	kiln_buf der;
	X509 *x = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
	sign_and_assemble(spec, signer, &der);
	KT_OK(kiln_cert_parse(kiln_buf_view(&der), &x, &d));
	assert_non_null(x);
	kiln_buf_cleanup(&der);
	return x;
}

static void ca_spec(struct kiln_cert_spec *s, X509_NAME *subject, EVP_PKEY *key, kiln_alg alg,
		    const X509 *issuer, int path_len)
{
	memset(s, 0, sizeof(*s));
	KT_OK(kiln_serial_new(s->serial));
	s->not_before = now - 60;
	s->not_after = now + 10 * 365 * 86400;
	s->subject = subject;
	s->subject_key = key;
	s->issuer = issuer;
	s->sig_alg = alg;
	s->is_ca = true;
	s->path_len = path_len;
	s->key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
}

static void leaf_spec(struct kiln_cert_spec *s, X509_NAME *subject, EVP_PKEY *key, kiln_alg alg,
		      const X509 *issuer)
{
	memset(s, 0, sizeof(*s));
	KT_OK(kiln_serial_new(s->serial));
	s->not_before = now - 60;
	s->not_after = now + 365 * 86400;
	s->subject = subject;
	s->subject_key = key;
	s->issuer = issuer;
	s->sig_alg = alg;
	s->is_ca = false;
	s->path_len = -1;
	s->key_usage = KU_DIGITAL_SIGNATURE;
	s->eku[0] = NID_client_auth;
	s->n_eku = 1;
}

/* A self-signed root for algs[i]. */
static X509 *make_root(size_t i, X509_NAME **name_out)
{
	struct kiln_cert_spec s;
	X509_NAME *n = name_of("Acme", "Acme Root CA");
	X509 *x;

	ca_spec(&s, n, ca_keys[i], algs[i], NULL, 1);
	x = issue(&s, ca_keys[i]);
	if (name_out != NULL)
		*name_out = n;
	else
		X509_NAME_free(n);
	return x;
}

/* SHA-1 of the subjectPublicKey BIT STRING value (RFC 5280 4.2.1.2 method 1). */
static void key_bits_sha1(const X509 *x, uint8_t out[20])
{
	const unsigned char *pk = NULL;
	int pklen = 0;
	unsigned int mdlen = 0;

	assert_int_equal(X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, X509_get_X509_PUBKEY(x)), 1);
	assert_int_equal(EVP_Digest(pk, (size_t)pklen, out, &mdlen, EVP_sha1(), NULL), 1);
	assert_int_equal(mdlen, 20);
}

static int ext_critical(const X509 *x, int nid)
{
	int loc = X509_get_ext_by_NID(x, nid, -1);

	assert_true(loc >= 0);
	/* at most once */
	assert_true(X509_get_ext_by_NID(x, nid, loc) < 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, loc));
}

static void check_string(const ASN1_STRING *s, const char *want)
{
	assert_int_equal(ASN1_STRING_length(s), (int)strlen(want));
	assert_memory_equal(ASN1_STRING_get0_data(s), want, strlen(want));
}

static void write_pem(const X509 *x, const char *path)
{
	kiln_buf pem;

	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_cert_pem(x, &pem));
	KT_OK(kiln_file_write(path, kiln_buf_view(&pem), 0600, NULL));
	kiln_buf_cleanup(&pem);
}

/* --------------------------------------------------------------- serials */

static void test_serial_new(void **state)
{
	static const uint8_t zero[KILN_SERIAL_LEN];
	uint8_t prev[KILN_SERIAL_LEN], cur[KILN_SERIAL_LEN];
	int distinct_top = 0;
	bool seen[128] = { false };

	(void)state;
	KT_OK(kiln_serial_new(prev));
	/* 3000 draws: with a 1/128 chance of a zero first byte, the old code hit it ~23 times. */
	for (int i = 0; i < 3000; i++) {
		KT_OK(kiln_serial_new(cur));
		assert_int_equal(cur[0] & 0x80, 0);
		assert_int_not_equal(cur[0], 0); /* DER keeps all 16 bytes: the hex is stable */
		assert_memory_not_equal(cur, zero, KILN_SERIAL_LEN);
		assert_memory_not_equal(cur, prev, KILN_SERIAL_LEN);
		distinct_top += !seen[cur[0]];
		seen[cur[0]] = true;
		memcpy(prev, cur, sizeof(cur));
	}
	/* the rest of the first byte is still random */
	assert_true(distinct_top > 100);
}

/* ------------------------------------------------------ roots, every alg */

static void test_self_signed_root_each_alg(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ALGS; i++) {
		X509_NAME *n = NULL;
		X509 *x = make_root(i, &n);
		const struct kiln_alg_info *ai = kiln_alg_get(algs[i]);
		const ASN1_OCTET_STRING *ski, *aki;
		uint8_t want_ski[20];

		/* independent check with OpenSSL */
		assert_int_equal(X509_verify(x, ca_keys[i]), 1);
		KT_OK(kiln_cert_check_signature(x, x));
		assert_int_equal(X509_get_signature_nid(x), ai->sig_nid);
		assert_int_equal(X509_get_version(x), X509_VERSION_3);
		assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), n), 0);
		assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), n), 0);
		assert_int_equal(X509_check_issued(x, x), X509_V_OK);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), ca_keys[i]), 1);
		/* SKI = SHA-1 of the key bits; self-signed: AKI = SKI */
		ski = X509_get0_subject_key_id(x);
		aki = X509_get0_authority_key_id(x);
		assert_non_null(ski);
		assert_non_null(aki);
		key_bits_sha1(x, want_ski);
		assert_int_equal(ASN1_STRING_length(ski), 20);
		assert_memory_equal(ASN1_STRING_get0_data(ski), want_ski, 20);
		assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
		assert_null(X509_get0_authority_issuer(x));
		assert_null(X509_get0_authority_serial(x));
		/* basicConstraints critical, CA, pathlen 1; keyUsage critical */
		{
			int crit = -1;
			BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);

			assert_non_null(bc);
			assert_int_equal(crit, 1);
			assert_true(bc->ca != 0);
			assert_non_null(bc->pathlen);
			assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 1);
			BASIC_CONSTRAINTS_free(bc);
		}
		assert_int_equal(ext_critical(x, NID_key_usage), 1);
		assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
		assert_int_equal(ext_critical(x, NID_subject_key_identifier), 0);
		assert_int_equal(ext_critical(x, NID_authority_key_identifier), 0);
		/* no EKU, SAN, CRL DP or AIA unless asked */
		assert_true(X509_get_ext_by_NID(x, NID_ext_key_usage, -1) < 0);
		assert_true(X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0);
		assert_true(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) < 0);
		assert_true(X509_get_ext_by_NID(x, NID_info_access, -1) < 0);
		/* the signature check fails with another key */
		assert_int_not_equal(X509_verify(x, other_ca_key), 1);
		X509_free(x);
		X509_NAME_free(n);
	}
}

/* ------------------------------------------------ leaves with everything */

/* The same DER, string types included (X509_NAME_cmp compares canonical forms). */
static void assert_same_name_der(const X509_NAME *a, const X509_NAME *b)
{
	unsigned char *da = NULL, *db = NULL;
	int na = i2d_X509_NAME(a, &da), nb = i2d_X509_NAME(b, &db);

	assert_true(na > 0);
	assert_int_equal(na, nb);
	assert_memory_equal(da, db, (size_t)na);
	OPENSSL_free(da);
	OPENSSL_free(db);
}

static void check_full_leaf(X509 *x, X509 *ca, const struct kiln_cert_spec *s)
{
	int crit = -1;

	/* names */
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), s->subject), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
	assert_same_name_der(X509_get_subject_name(x), s->subject);
	assert_same_name_der(X509_get_issuer_name(x), X509_get_subject_name(ca));
	assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
	/* serial */
	{
		BIGNUM *want = BN_bin2bn(s->serial, KILN_SERIAL_LEN, NULL);
		BIGNUM *got = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

		assert_non_null(want);
		assert_non_null(got);
		assert_int_equal(BN_cmp(want, got), 0);
		BN_free(want);
		BN_free(got);
	}
	/* validity */
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), (time_t)s->not_before), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), (time_t)s->not_after), 0);
	/* basicConstraints: critical, not a CA, no pathlen */
	{
		BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);

		assert_non_null(bc);
		assert_int_equal(crit, 1);
		assert_int_equal(bc->ca, 0);
		assert_null(bc->pathlen);
		BASIC_CONSTRAINTS_free(bc);
	}
	/* keyUsage critical with exactly the bits asked for */
	assert_int_equal(ext_critical(x, NID_key_usage), 1);
	assert_int_equal(X509_get_key_usage(x), s->key_usage);
	/* EKU in order, not critical */
	{
		EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);

		assert_non_null(eku);
		assert_int_equal(crit, 0);
		assert_int_equal(sk_ASN1_OBJECT_num(eku), (int)s->n_eku);
		for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
			assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)), s->eku[i]);
		EXTENDED_KEY_USAGE_free(eku);
	}
	/* SKI = SHA-1 of the key bits, AKI = issuer's SKI */
	{
		uint8_t want[20];
		const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);

		key_bits_sha1(x, want);
		assert_non_null(ski);
		assert_int_equal(ASN1_STRING_length(ski), 20);
		assert_memory_equal(ASN1_STRING_get0_data(ski), want, 20);
		assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
						       X509_get0_subject_key_id(ca)),
				 0);
		assert_int_not_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), ski),
				     0);
	}
}

static void test_leaf_each_alg(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ALGS; i++) {
		X509 *ca = make_root(i, NULL);
		X509_NAME *n = name_of("Acme", "device-0001");
		struct kiln_cert_spec s;
		X509 *x;

		leaf_spec(&s, n, i % 2 == 0 ? leaf_ec : leaf_ed, algs[i], ca);
		x = issue(&s, ca_keys[i]);
		assert_int_equal(X509_verify(x, ca_keys[i]), 1);
		assert_int_equal(X509_get_signature_nid(x), kiln_alg_get(algs[i])->sig_nid);
		KT_OK(kiln_cert_check_signature(x, ca));
		check_full_leaf(x, ca, &s);
		X509_free(x);
		X509_NAME_free(n);
		X509_free(ca);
	}
}

/* A TBS's names are the DER they were given: string types and multi-valued RDNs included. */
static void test_names_copied_exactly(void **state)
{
	X509 *ca = make_root(0, NULL), *x;
	X509_NAME *n = X509_NAME_new();
	struct kiln_cert_spec s;

	(void)state;
	assert_non_null(n);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "C", V_ASN1_PRINTABLESTRING,
						    (const unsigned char *)"DE", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", V_ASN1_UTF8STRING,
						    (const unsigned char *)"Acm\xc3\xa9", -1, -1, 0), 1);
	/* OU + CN in one RDN */
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "OU", V_ASN1_PRINTABLESTRING,
						    (const unsigned char *)"Line 4", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", V_ASN1_UTF8STRING,
						    (const unsigned char *)"device-9", -1, -1, -1), 1);
	assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)),
			 X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 3)));
	leaf_spec(&s, n, leaf_ec, algs[0], ca);
	x = issue(&s, ca_keys[0]);
	assert_same_name_der(X509_get_subject_name(x), n);
	assert_same_name_der(X509_get_issuer_name(x), X509_get_subject_name(ca));
	assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(
				 X509_NAME_get_entry(X509_get_subject_name(x), 0))),
			 V_ASN1_PRINTABLESTRING);
	assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(X509_get_subject_name(x), 3)),
			 X509_NAME_ENTRY_set(X509_NAME_get_entry(X509_get_subject_name(x), 2)));
	X509_free(x);
	X509_NAME_free(n);
	X509_free(ca);
}

static void test_all_extensions(void **state)
{
	X509 *ca = make_root(1, NULL), *x;
	X509_NAME *n = name_of("Acme", "gateway-7");
	struct kiln_cert_spec s;
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55555.7", 1);
	ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
	X509_EXTENSION *extra;
	const X509_EXTENSION *extras[1];
	int crit = -1;

	(void)state;
	assert_non_null(obj);
	assert_non_null(val);
	assert_int_equal(ASN1_OCTET_STRING_set(val, (const unsigned char *)"\x0c\x03" "abc", 5), 1);
	extra = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, val);
	assert_non_null(extra);
	extras[0] = extra;

	leaf_spec(&s, n, leaf_ec, KILN_ALG_P384, ca);
	/* a key-usage mix that exercises the first and the ninth bit */
	s.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT | KU_ENCIPHER_ONLY | KU_DECIPHER_ONLY;
	s.eku[0] = NID_client_auth;
	s.eku[1] = NID_server_auth;
	s.eku[2] = NID_code_sign;
	s.n_eku = 3;
	s.san_uri[0] = "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66";
	s.san_uri[1] = "spiffe://acme.example/device/7";
	s.n_san_uri = 2;
	s.san_dns[0] = "gw7.acme.example";
	s.san_dns[1] = "*.gw7.acme.example";
	s.n_san_dns = 2;
	s.san_ip[0] = "192.0.2.7";
	s.san_ip[1] = "2001:db8::7";
	s.n_san_ip = 2;
	s.crl_url = "http://pki.acme.example/crl/issuing.crl";
	s.ocsp_url = "http://ocsp.acme.example";
	s.ca_issuers_url = "http://pki.acme.example/ca.der";
	s.extra = extras;
	s.n_extra = 1;
	x = issue(&s, ca_keys[1]);
	assert_int_equal(X509_verify(x, ca_keys[1]), 1);
	check_full_leaf(x, ca, &s);

	/* keyUsage bits, read from the BIT STRING itself */
	{
		ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);

		assert_non_null(ku);
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 1), 0);
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 4), 1); /* keyAgreement */
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 5), 0); /* keyCertSign */
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 7), 1); /* encipherOnly */
		assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 8), 1); /* decipherOnly */
		ASN1_BIT_STRING_free(ku);
	}
	/* SAN: URIs, then DNS names, then IPs, in order; not critical */
	{
		GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
		static const uint8_t ip4[] = { 192, 0, 2, 7 };
		static const uint8_t ip6[] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					       0,    0,    0,    0,    0, 0, 0, 7 };
		int type = -1;
		const ASN1_STRING *v;

		assert_non_null(gens);
		assert_int_equal(crit, 0);
		assert_int_equal(sk_GENERAL_NAME_num(gens), 6);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 0), &type);
		assert_int_equal(type, GEN_URI);
		check_string(v, s.san_uri[0]);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 1), &type);
		assert_int_equal(type, GEN_URI);
		check_string(v, s.san_uri[1]);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 2), &type);
		assert_int_equal(type, GEN_DNS);
		check_string(v, s.san_dns[0]);
		assert_int_equal(ASN1_STRING_type(v), V_ASN1_IA5STRING);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 3), &type);
		assert_int_equal(type, GEN_DNS);
		check_string(v, s.san_dns[1]);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 4), &type);
		assert_int_equal(type, GEN_IPADD);
		assert_int_equal(ASN1_STRING_length(v), 4);
		assert_memory_equal(ASN1_STRING_get0_data(v), ip4, 4);
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 5), &type);
		assert_int_equal(type, GEN_IPADD);
		assert_int_equal(ASN1_STRING_length(v), 16);
		assert_memory_equal(ASN1_STRING_get0_data(v), ip6, 16);
		GENERAL_NAMES_free(gens);
	}
	/* CRL distribution point: one full-name URI, no reasons, no CRL issuer */
	{
		CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
		DIST_POINT *dp;
		int type = -1;

		assert_non_null(dps);
		assert_int_equal(crit, 0);
		assert_int_equal(sk_DIST_POINT_num(dps), 1);
		dp = sk_DIST_POINT_value(dps, 0);
		assert_non_null(dp->distpoint);
		assert_int_equal(dp->distpoint->type, 0);
		assert_null(dp->reasons);
		assert_null(dp->CRLissuer);
		assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
		check_string(GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0),
						     &type),
			     s.crl_url);
		assert_int_equal(type, GEN_URI);
		CRL_DIST_POINTS_free(dps);
	}
	/* AIA: OCSP first, then caIssuers */
	{
		AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, &crit, NULL);
		ACCESS_DESCRIPTION *ad;
		int type = -1;

		assert_non_null(aia);
		assert_int_equal(crit, 0);
		assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 2);
		ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
		assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_OCSP);
		check_string(GENERAL_NAME_get0_value(ad->location, &type), s.ocsp_url);
		assert_int_equal(type, GEN_URI);
		ad = sk_ACCESS_DESCRIPTION_value(aia, 1);
		assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
		check_string(GENERAL_NAME_get0_value(ad->location, &type), s.ca_issuers_url);
		AUTHORITY_INFO_ACCESS_free(aia);
	}
	/* the extra extension, verbatim */
	{
		int loc = X509_get_ext_by_OBJ(x, obj, -1);
		X509_EXTENSION *e;

		assert_true(loc >= 0);
		e = X509_get_ext(x, loc);
		assert_int_equal(X509_EXTENSION_get_critical(e), 0);
		assert_int_equal(ASN1_OCTET_STRING_cmp(X509_EXTENSION_get_data(e), val), 0);
	}
	X509_free(x);

	/* only OCSP, only caIssuers */
	s.extra = NULL;
	s.n_extra = 0;
	s.ca_issuers_url = NULL;
	x = issue(&s, ca_keys[1]);
	{
		AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);

		assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
		assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 0)->method), NID_ad_OCSP);
		AUTHORITY_INFO_ACCESS_free(aia);
	}
	X509_free(x);
	s.ocsp_url = NULL;
	s.ca_issuers_url = "http://pki.acme.example/ca.der";
	x = issue(&s, ca_keys[1]);
	{
		AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);

		assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
		assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 0)->method),
				 NID_ad_ca_issuers);
		AUTHORITY_INFO_ACCESS_free(aia);
	}
	X509_free(x);

	X509_EXTENSION_free(extra);
	ASN1_OCTET_STRING_free(val);
	ASN1_OBJECT_free(obj);
	X509_NAME_free(n);
	X509_free(ca);
}

/* CA without pathlen; times before and after 2050 use UTCTime and GeneralizedTime. */
static void test_validity_encoding_and_pathlen(void **state)
{
	X509_NAME *n = name_of("Acme", "Long Root");
	struct kiln_cert_spec s;
	X509 *x;

	(void)state;
	ca_spec(&s, n, ca_keys[0], KILN_ALG_P256, NULL, -1);
	s.not_before = 2524607999; /* 2049-12-31T23:59:59Z */
	s.not_after = 2524608000;  /* 2050-01-01T00:00:00Z */
	x = issue(&s, ca_keys[0]);
	assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
	assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), 2524607999), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), 2524608000), 0);
	{
		BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);

		assert_non_null(bc);
		assert_true(bc->ca != 0);
		assert_null(bc->pathlen);
		BASIC_CONSTRAINTS_free(bc);
	}
	X509_free(x);
	X509_NAME_free(n);
}

/* ------------------------------------------ independent verifier: openssl */

static void test_openssl_verify_chain(void **state)
{
	char *dir = kt_tmpdir("cert");
	char *root_pem = kt_path(dir, "root.pem");
	char *inter_pem = kt_path(dir, "inter.pem");
	char *leaf_pem = kt_path(dir, "leaf.pem");
	char *other_pem = kt_path(dir, "other.pem");

	(void)state;
	for (size_t i = 0; i < N_ALGS; i++) {
		size_t j = (i + 1) % N_ALGS;
		X509 *root = make_root(i, NULL), *inter, *leaf, *other;
		X509_NAME *in = name_of("Acme", "Acme Issuing CA");
		X509_NAME *ln = name_of("Acme", "device-0042");
		X509_NAME *on = name_of("Evil", "Evil Root CA");
		struct kiln_cert_spec s;
		int rc;

		/* root (algs[i]) -> intermediate (key of algs[j]) -> leaf (P-256 or Ed25519 key) */
		ca_spec(&s, in, ca_keys[j], algs[i], root, 0);
		s.not_after = now + 5 * 365 * 86400;
		inter = issue(&s, ca_keys[i]);
		leaf_spec(&s, ln, i % 2 == 0 ? leaf_ec : leaf_ed, algs[j], inter);
		s.san_dns[0] = "device-0042.acme.example";
		s.n_san_dns = 1;
		s.san_ip[0] = "10.0.0.42";
		s.n_san_ip = 1;
		s.crl_url = "http://pki.acme.example/crl";
		s.ocsp_url = "http://ocsp.acme.example";
		leaf = issue(&s, ca_keys[j]);
		ca_spec(&s, on, other_ca_key, KILN_ALG_P256, NULL, 1);
		other = issue(&s, other_ca_key);

		write_pem(root, root_pem);
		write_pem(inter, inter_pem);
		write_pem(leaf, leaf_pem);
		write_pem(other, other_pem);
		rc = kt_system("openssl verify -x509_strict -check_ss_sig -purpose sslclient "
			       "-CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
			       root_pem, inter_pem, leaf_pem);
		if (rc != 0)
			(void)kt_system("openssl verify -x509_strict -check_ss_sig -purpose sslclient "
					"-CAfile '%s' -untrusted '%s' '%s'",
					root_pem, inter_pem, leaf_pem);
		assert_int_equal(rc, 0);
		/* a leaf issued by the root directly */
		{
			X509 *direct;

			leaf_spec(&s, ln, leaf_ec, algs[i], root);
			s.san_uri[0] = "urn:acme:device:42";
			s.n_san_uri = 1;
			direct = issue(&s, ca_keys[i]);
			write_pem(direct, leaf_pem);
			X509_free(direct);
			assert_int_equal(kt_system("openssl verify -x509_strict -check_ss_sig -purpose "
						   "sslclient -CAfile '%s' '%s' >/dev/null 2>&1",
						   root_pem, leaf_pem),
					 0);
			/* exit status 2: verification failed (1 would be a usage error) */
			assert_int_equal(kt_system("openssl verify -x509_strict -CAfile '%s' '%s' "
						   ">/dev/null 2>&1",
						   other_pem, leaf_pem),
					 2);
			write_pem(leaf, leaf_pem);
		}
		/* the root on its own */
		assert_int_equal(kt_system("openssl verify -x509_strict -check_ss_sig -CAfile '%s' "
					   "'%s' >/dev/null 2>&1",
					   root_pem, root_pem),
				 0);
		/* negative: the wrong root, and a missing intermediate */
		assert_int_equal(kt_system("openssl verify -x509_strict -CAfile '%s' -untrusted "
					   "'%s' '%s' >/dev/null 2>&1",
					   other_pem, inter_pem, leaf_pem),
				 2);
		assert_int_equal(kt_system("openssl verify -x509_strict -CAfile '%s' '%s' "
					   ">/dev/null 2>&1",
					   root_pem, leaf_pem),
				 2);
		/* kiln's own check agrees */
		KT_OK(kiln_cert_check_signature(inter, root));
		KT_OK(kiln_cert_check_signature(leaf, inter));
		KT_ERR(kiln_cert_check_signature(leaf, root), KILN_ERR_CRYPTO);
		KT_ERR(kiln_cert_check_signature(leaf, other), KILN_ERR_CRYPTO);

		X509_free(root);
		X509_free(inter);
		X509_free(leaf);
		X509_free(other);
		X509_NAME_free(in);
		X509_NAME_free(ln);
		X509_NAME_free(on);
	}
	kt_rmrf(dir);
	free(root_pem);
	free(inter_pem);
	free(leaf_pem);
	free(other_pem);
	free(dir);
}

/* ------------------------------------------------------------- refusals */

static void expect_tbs_error(const struct kiln_cert_spec *s, kiln_err want, const char *in_message)
{
	kiln_buf tbs;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&tbs, "keep"));
	KT_ERR(kiln_cert_tbs(s, &tbs, &d), want);
	/* nothing appended on failure */
	assert_int_equal(tbs.len, 4);
	if (in_message != NULL) {
		assert_int_equal(d.code, want);
		assert_one_line(&d);
		if (strstr(d.text, in_message) == NULL)
			fail_msg("diag '%s' does not mention '%s'", d.text, in_message);
	}
	kiln_buf_cleanup(&tbs);
}

static void test_validity_refused(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;

	(void)state;
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.not_after = s.not_before;
	expect_tbs_error(&s, KILN_ERR_ARG, "ends before it starts");
	s.not_after = s.not_before - 1;
	expect_tbs_error(&s, KILN_ERR_ARG, "ends before it starts");
	/* outliving the issuer by one second */
	s.not_after = now + 10 * 365 * 86400 + 1;
	expect_tbs_error(&s, KILN_ERR_ARG, "outlive its issuer");
	/* ending with the issuer is fine */
	s.not_after = now + 10 * 365 * 86400;
	{
		X509 *x = issue(&s, ca_keys[0]);

		X509_free(x);
	}
	X509_NAME_free(n);
	X509_free(ca);
}

static void test_invalid_san_refused(void **state)
{
	static const char *const bad_ip[] = { "999.1.1.1", "not-an-ip", "", "1.2.3", "1.2.3.4/24",
					      "::g", "192.0.2.1 ", " 192.0.2.1", "010.0.0.1",
					      "1.2.3.4.", "::1%eth0", "256.0.0.1", "1:2:3:4:5:6:7:8:9" };
	static const char *const bad_name[] = { "", "has space.example", "caf\xc3\xa9.example",
						"tab\t.example", "nl\n.example" };
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
		leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
		s.san_ip[0] = "192.0.2.1";
		s.san_ip[1] = bad_ip[i];
		s.n_san_ip = 2;
		expect_tbs_error(&s, KILN_ERR_ARG, "subject alternative name");
	}
	for (size_t i = 0; i < sizeof(bad_name) / sizeof(bad_name[0]); i++) {
		leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
		s.san_dns[0] = bad_name[i];
		s.n_san_dns = 1;
		expect_tbs_error(&s, KILN_ERR_ARG, "subject alternative name");
		leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
		s.san_uri[0] = bad_name[i];
		s.n_san_uri = 1;
		expect_tbs_error(&s, KILN_ERR_ARG, "subject alternative name");
	}
	/* a NULL entry */
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.n_san_dns = 1;
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	/* too many */
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	for (int i = 0; i < KILN_CERT_MAX_SAN; i++)
		s.san_uri[i] = "urn:x";
	s.n_san_uri = KILN_CERT_MAX_SAN + 1;
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	X509_NAME_free(n);
	X509_free(ca);
}

static void test_spec_argument_errors(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;

	(void)state;
	leaf_spec(&s, n, leaf_ec, KILN_ALG_NONE, ca);
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	leaf_spec(&s, n, leaf_ec, KILN_ALG__COUNT, ca);
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	leaf_spec(&s, NULL, leaf_ec, KILN_ALG_P256, ca);
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	leaf_spec(&s, n, NULL, KILN_ALG_P256, ca);
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.n_eku = KILN_CERT_MAX_EKU + 1;
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	/* an EKU NID with no OID */
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.eku[0] = NID_undef;
	expect_tbs_error(&s, KILN_ERR_CRYPTO, NULL);
	X509_NAME_free(n);
	X509_free(ca);
}

/* An extra extension may not repeat one kiln already adds (RFC 5280: at most once). */
static void test_extra_duplicate_refused(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	X509_EXTENSION *dup;
	const X509_EXTENSION *extras[1];

	(void)state;
	assert_non_null(gens);
	assert_non_null(gn);
	assert_int_equal(ASN1_STRING_set(ia5, "evil.example", -1), 1);
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	dup = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
	assert_non_null(dup);
	extras[0] = dup;
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.san_dns[0] = "good.example";
	s.n_san_dns = 1;
	s.extra = extras;
	s.n_extra = 1;
	expect_tbs_error(&s, KILN_ERR_ARG, "repeats");
	/* without kiln's own SAN it goes in as the only one */
	s.n_san_dns = 0;
	{
		X509 *x = issue(&s, ca_keys[0]);

		assert_true(X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0);
		X509_free(x);
	}
	/* a NULL entry */
	extras[0] = NULL;
	expect_tbs_error(&s, KILN_ERR_ARG, NULL);
	X509_EXTENSION_free(dup);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(n);
	X509_free(ca);
}

/* An issuer without a subjectKeyIdentifier cannot give an AKI. */
static void test_issuer_without_ski(void **state)
{
	X509 *ca = X509_new();
	X509_NAME *cn = name_of("Old", "Old CA");
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;

	(void)state;
	assert_non_null(ca);
	assert_int_equal(X509_set_version(ca, X509_VERSION_3), 1);
	assert_int_equal(X509_set_subject_name(ca, cn), 1);
	assert_int_equal(X509_set_issuer_name(ca, cn), 1);
	assert_int_equal(X509_set_pubkey(ca, other_ca_key), 1);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(ca), 0, 0, NULL));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(ca), 3650, 0, NULL));
	assert_true(X509_sign(ca, other_ca_key, EVP_sha256()) > 0);
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	expect_tbs_error(&s, KILN_ERR_CRYPTO, NULL);
	X509_NAME_free(n);
	X509_NAME_free(cn);
	X509_free(ca);
}

/* ------------------------------------------------- the reference encoding */

/* kiln's DER writer and OpenSSL's object model encode spec to the same bytes. */
static void assert_same_tbs(const struct kiln_cert_spec *spec)
{
	kiln_buf mine, ref;
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_buf_init(&mine, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&ref, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_cert_tbs(spec, &mine, &d));
	KT_OK(kt_cert_tbs_ref(spec, &ref, NULL, &d));
	assert_int_equal(mine.len, ref.len);
	assert_memory_equal(mine.ptr, ref.ptr, ref.len);
	kiln_buf_cleanup(&mine);
	kiln_buf_cleanup(&ref);
}

static void test_same_bytes_as_openssl(void **state)
{
	static const unsigned kus[] = { KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT,
					 KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
					 KU_DIGITAL_SIGNATURE | KU_ENCIPHER_ONLY,
					 KU_KEY_AGREEMENT | KU_DECIPHER_ONLY, KU_DECIPHER_ONLY,
					 KU_NON_REPUDIATION | KU_DATA_ENCIPHERMENT | KU_CRL_SIGN, 0 };
	static const int path_lens[] = { -1, 0, 1, 127, 128, 255, 256, 70000 };
	X509_NAME *n = name_of("Acme", "device-0001");
	X509_NAME *u = NULL;
	const struct kiln_name_attr uattrs[] = { { "O", "Grüne Geräte GmbH" }, { "OU", "Linie 3" },
						 { "CN", "Prüfplatz 7" } };
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.55555.7", 1);
	ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
	X509_EXTENSION *extra[2] = { NULL, NULL };
	ASN1_NULL *null = ASN1_NULL_new();
	unsigned char *spki = NULL;
	int spki_len;
	struct kiln_cert_spec s;

	(void)state;
	KT_OK(kiln_name_build(uattrs, 3, &u, NULL));
	assert_non_null(obj);
	assert_non_null(val);
	assert_int_equal(ASN1_OCTET_STRING_set(val, (const unsigned char *)"\x0c\x03" "abc", 5), 1);
	extra[0] = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, val);
	extra[1] = X509V3_EXT_i2d(NID_id_pkix_OCSP_noCheck, 0, null);
	assert_non_null(extra[0]);
	assert_non_null(extra[1]);
	spki_len = i2d_PUBKEY(leaf_ec, &spki);
	assert_true(spki_len > 0);
	for (size_t i = 0; i < N_ALGS; i++) {
		X509_NAME *rn = NULL;
		X509 *root = make_root(i, &rn);

		/* roots and intermediates: self-signed, every path length */
		for (size_t k = 0; k < sizeof(path_lens) / sizeof(path_lens[0]); k++) {
			ca_spec(&s, rn, ca_keys[i], algs[i], NULL, path_lens[k]);
			assert_same_tbs(&s);
			ca_spec(&s, n, other_ca_key, algs[i], root, path_lens[k]);
			assert_same_tbs(&s);
		}
		/* leaves: EC and Ed25519 keys, the SPKI given or encoded from the key */
		leaf_spec(&s, n, leaf_ec, algs[i], root);
		assert_same_tbs(&s);
		s.subject_spki = kiln_slice_of(spki, (size_t)spki_len);
		assert_same_tbs(&s);
		leaf_spec(&s, u, leaf_ed, algs[i], root);
		assert_same_tbs(&s);
		/* every key usage shape, every name and URL kind, several EKUs, extras */
		for (size_t k = 0; k < sizeof(kus) / sizeof(kus[0]); k++) {
			leaf_spec(&s, n, leaf_ec, algs[i], root);
			s.key_usage = kus[k];
			s.eku[0] = NID_client_auth;
			s.eku[1] = NID_server_auth;
			s.eku[2] = NID_code_sign;
			s.n_eku = k % 4;
			s.san_uri[0] = "urn:kiln:widget:device-0001";
			s.san_uri[1] = "https://devices.example.com/d/0001?x=1";
			s.n_san_uri = k % 3;
			s.san_dns[0] = "device-0001.example.com";
			s.n_san_dns = k % 2;
			s.san_ip[0] = "192.0.2.7";
			s.san_ip[1] = "2001:db8::7";
			s.n_san_ip = (k + 1) % 3;
			s.crl_url = k % 2 ? "http://ca.example.com/crl/test-issuing.crl" : NULL;
			s.ocsp_url = k % 3 ? "http://ca.example.com/ocsp" : NULL;
			s.ca_issuers_url = k % 4 == 1 ? "http://ca.example.com/ca.crt" : NULL;
			s.extra = (const X509_EXTENSION *const *)extra;
			s.n_extra = k % 3;
			assert_same_tbs(&s);
		}
		/* serials with leading zero octets and a high bit; a far notAfter (GeneralizedTime) */
		leaf_spec(&s, n, leaf_ec, algs[i], NULL);
		memset(s.serial, 0, sizeof(s.serial));
		s.serial[2] = 0x80;
		s.serial[KILN_SERIAL_LEN - 1] = 1;
		s.not_after = 2840140800; /* 2060-01-01 */
		assert_same_tbs(&s);
		memset(s.serial, 0xff, sizeof(s.serial));
		s.not_before = -631152000; /* 1950-01-01 */
		assert_same_tbs(&s);
		X509_NAME_free(rn);
		X509_free(root);
	}
	OPENSSL_free(spki);
	X509_EXTENSION_free(extra[0]);
	X509_EXTENSION_free(extra[1]);
	ASN1_NULL_free(null);
	ASN1_OCTET_STRING_free(val);
	ASN1_OBJECT_free(obj);
	X509_NAME_free(u);
	X509_NAME_free(n);
}

/* A refused spec appends nothing to the buffer it was given. */
static void test_refusal_appends_nothing(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;
	kiln_buf tbs;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	kiln_buf_init(&tbs, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&tbs, "kept"));
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.san_dns[0] = "bad name";
	s.n_san_dns = 1;
	KT_ERR(kiln_cert_tbs(&s, &tbs, &d), KILN_ERR_ARG);
	assert_int_equal(tbs.len, 4);
	assert_string_equal(kiln_buf_cstr(&tbs), "kept");
	kiln_buf_cleanup(&tbs);
	X509_NAME_free(n);
	X509_free(ca);
}

/* --------------------------------------------------------- assembly */

static void test_signed_assemble_structure(void **state)
{
	static const uint8_t tbs[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
	static const uint8_t sig[] = { 0xde, 0xad, 0xbe, 0xef };
	const struct kiln_alg_info *ai = kiln_alg_get(KILN_ALG_ED25519);
	kiln_buf out;
	kiln_cursor c, inner;
	kiln_slice body, part;
	uint8_t tag;

	(void)state;
	kiln_buf_init(&out, 4096);
	KT_OK(kiln_buf_append_str(&out, "pre"));
	KT_OK(kiln_signed_assemble(kiln_slice_of(tbs, sizeof(tbs)), KILN_ALG_ED25519,
				   kiln_slice_of(sig, sizeof(sig)), &out));
	assert_memory_equal(out.ptr, "pre", 3);
	kiln_cursor_init(&c, kiln_slice_of(out.ptr + 3, out.len - 3));
	KT_OK(kiln_der_read(&c, &tag, &body));
	assert_int_equal(tag, KILN_DER_SEQUENCE);
	KT_OK(kiln_cursor_expect_end(&c));
	kiln_cursor_init(&inner, body);
	KT_OK(kiln_cursor_bytes(&inner, sizeof(tbs), &part)); /* tbs verbatim */
	assert_memory_equal(part.ptr, tbs, sizeof(tbs));
	KT_OK(kiln_cursor_bytes(&inner, ai->algid.len, &part)); /* algid verbatim */
	assert_memory_equal(part.ptr, ai->algid.ptr, ai->algid.len);
	KT_OK(kiln_der_read(&inner, &tag, &part));
	assert_int_equal(tag, KILN_DER_BIT_STRING);
	assert_int_equal(part.len, 1 + sizeof(sig));
	assert_int_equal(part.ptr[0], 0); /* no unused bits */
	assert_memory_equal(part.ptr + 1, sig, sizeof(sig));
	KT_OK(kiln_cursor_expect_end(&inner));
	kiln_buf_cleanup(&out);
}

static void test_signed_assemble_errors(void **state)
{
	static const uint8_t tbs[] = { 0x30, 0x00 };
	kiln_buf out;

	(void)state;
	kiln_buf_init(&out, 4096);
	KT_ERR(kiln_signed_assemble(kiln_slice_of(tbs, 2), KILN_ALG_NONE, kiln_slice_of("s", 1), &out),
	       KILN_ERR_ARG);
	KT_ERR(kiln_signed_assemble(kiln_slice_of(tbs, 2), KILN_ALG__COUNT, kiln_slice_of("s", 1),
				    &out),
	       KILN_ERR_ARG);
	KT_ERR(kiln_signed_assemble(kiln_slice_of(tbs, 2), KILN_ALG_P256, kiln_slice_of(NULL, 0), &out),
	       KILN_ERR_ARG);
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	/* output cap */
	kiln_buf_init(&out, 8);
	KT_ERR(kiln_signed_assemble(kiln_slice_of(tbs, 2), KILN_ALG_P256, kiln_slice_of("sig", 3), &out),
	       KILN_ERR_TOO_BIG);
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
}

/* A signature over other bytes, or by another key, assembles but does not verify. */
static void test_wrong_signature_detected(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;
	kiln_buf der;
	X509 *x = NULL;

	(void)state;
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
	sign_and_assemble(&s, other_ca_key, &der);
	KT_OK(kiln_cert_parse(kiln_buf_view(&der), &x, NULL));
	KT_ERR(kiln_cert_check_signature(x, ca), KILN_ERR_CRYPTO);
	assert_int_not_equal(X509_verify(x, ca_keys[0]), 1);
	X509_free(x);
	/* the right key, then one bit of the signature flipped */
	kiln_buf_reset(&der);
	sign_and_assemble(&s, ca_keys[0], &der);
	der.ptr[der.len - 1] ^= 0x01;
	KT_OK(kiln_cert_parse(kiln_buf_view(&der), &x, NULL));
	KT_ERR(kiln_cert_check_signature(x, ca), KILN_ERR_CRYPTO);
	X509_free(x);
	kiln_buf_cleanup(&der);
	X509_NAME_free(n);
	X509_free(ca);
}

/* ---------------------------------------------------------------- parse */

static void expect_parse_error(kiln_slice in)
{
	X509 *x = (X509 *)(void *)&in;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_cert_parse(in, &x, &d), KILN_ERR_MALFORMED);
	assert_null(x);
	assert_one_line(&d);
}

static void test_parse_errors(void **state)
{
	X509 *root = make_root(0, NULL);
	unsigned char *der = NULL;
	int n = i2d_X509(root, &der);
	uint8_t *big = calloc(1, KILN_CSR_MAX_BYTES + 1);
	kiln_buf v;

	(void)state;
	assert_true(n > 0);
	assert_non_null(big);
	expect_parse_error(kiln_slice_of(NULL, 0));
	expect_parse_error(kiln_slice_str("garbage"));
	expect_parse_error(kiln_slice_of("\x30\x00", 2));
	expect_parse_error(kiln_slice_of("\x30\x03\x02\x01\x01", 5)); /* DER, not a certificate */
	/* trailing bytes */
	kiln_buf_init(&v, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&v, der, (size_t)n));
	KT_OK(kiln_buf_append_u8(&v, 0));
	expect_parse_error(kiln_buf_view(&v));
	kiln_buf_reset(&v);
	KT_OK(kiln_buf_append(&v, der, (size_t)n));
	KT_OK(kiln_buf_append(&v, der, (size_t)n));
	expect_parse_error(kiln_buf_view(&v));
	kiln_buf_cleanup(&v);
	/* every truncation */
	for (int i = 1; i < n; i++) {
		uint8_t *p = malloc((size_t)i);

		assert_non_null(p);
		memcpy(p, der, (size_t)i);
		expect_parse_error(kiln_slice_of(p, (size_t)i));
		free(p);
	}
	/* too big, even if it starts with a certificate */
	memcpy(big, der, (size_t)n);
	expect_parse_error(kiln_slice_of(big, KILN_CSR_MAX_BYTES + 1));
	/* PEM is not DER */
	{
		kiln_buf pem;

		kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_cert_pem(root, &pem));
		expect_parse_error(kiln_buf_view(&pem));
		kiln_buf_cleanup(&pem);
	}
	/* the full certificate parses, with a NULL diag too */
	{
		X509 *x = NULL;

		KT_OK(kiln_cert_parse(kiln_slice_of(der, (size_t)n), &x, NULL));
		assert_int_equal(X509_cmp(x, root), 0);
		X509_free(x);
	}
	free(big);
	OPENSSL_free(der);
	X509_free(root);
}

/* ---------------------------------------------------------- serial hex */

static void test_serial_hex(void **state)
{
	X509 *ca = make_root(0, NULL);
	X509_NAME *n = name_of("Acme", "d");
	struct kiln_cert_spec s;
	char hex[KILN_SERIAL_HEX], want[KILN_SERIAL_HEX];
	X509 *x;

	(void)state;
	/* a full 16-byte serial */
	leaf_spec(&s, n, leaf_ec, KILN_ALG_P256, ca);
	s.serial[0] = 0x7f;
	x = issue(&s, ca_keys[0]);
	kiln_hex_encode(s.serial, KILN_SERIAL_LEN, want);
	kiln_cert_serial_hex(x, hex, sizeof(hex));
	assert_string_equal(hex, want);
	/* too small a buffer: empty, never cut */
	kiln_cert_serial_hex(x, hex, KILN_SERIAL_HEX - 1);
	assert_string_equal(hex, "");
	memcpy(hex, "keep", 5);
	kiln_cert_serial_hex(x, hex, 0);
	assert_string_equal(hex, "keep");
	X509_free(x);
	/* leading zero bytes (dropped by DER) are printed back: the serial as kiln stores it */
	memset(s.serial, 0, KILN_SERIAL_LEN);
	s.serial[2] = 0x05;
	s.serial[15] = 0xa0;
	x = issue(&s, ca_keys[0]);
	kiln_cert_serial_hex(x, hex, sizeof(hex));
	assert_string_equal(hex, "000005000000000000000000000000a0");
	X509_free(x);
	X509_NAME_free(n);
	X509_free(ca);
}

/* A parsed certificate can carry a serial of any length; printing it must not overflow. */
static void test_serial_hex_oversized(void **state)
{
	X509 *x = X509_new(), *parsed = NULL;
	ASN1_INTEGER *serial;
	BIGNUM *bn = BN_new();
	unsigned char *der = NULL;
	char hex[512];
	int n;

	(void)state;
	assert_non_null(x);
	assert_non_null(bn);
	for (int bits = 8 * 64; bits <= 8 * 200; bits += 8 * 68) {
		assert_int_equal(BN_rand(bn, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
		serial = BN_to_ASN1_INTEGER(bn, NULL);
		assert_non_null(serial);
		assert_int_equal(X509_set_serialNumber(x, serial), 1);
		ASN1_INTEGER_free(serial);
		assert_int_equal(X509_set_pubkey(x, leaf_ec), 1);
		assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
		assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
		assert_true(X509_sign(x, leaf_ec, EVP_sha256()) > 0);
		n = i2d_X509(x, &der);
		assert_true(n > 0);
		KT_OK(kiln_cert_parse(kiln_slice_of(der, (size_t)n), &parsed, NULL));
		memset(hex, 'x', sizeof(hex));
		kiln_cert_serial_hex(parsed, hex, sizeof(hex));
		/* 64 bytes still print; beyond that the result is empty */
		if (bits <= 8 * 64)
			assert_int_equal(strlen(hex), 128);
		else
			assert_string_equal(hex, "");
		X509_free(parsed);
		OPENSSL_free(der);
		der = NULL;
	}
	BN_free(bn);
	X509_free(x);
}

/* ------------------------------------------------------------------ pem */

static void test_pem(void **state)
{
	X509 *root = make_root(2, NULL), *back;
	kiln_buf pem;
	BIO *bio;
	const char *s;

	(void)state;
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_str(&pem, "# root\n"));
	KT_OK(kiln_cert_pem(root, &pem));
	s = kiln_buf_cstr(&pem);
	assert_memory_equal(s, "# root\n-----BEGIN CERTIFICATE-----\n", 35);
	assert_string_equal(s + pem.len - 26, "-----END CERTIFICATE-----\n");
	bio = BIO_new_mem_buf(s, (int)pem.len);
	assert_non_null(bio);
	back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(back);
	assert_int_equal(X509_cmp(back, root), 0);
	X509_free(back);
	BIO_free(bio);
	kiln_buf_cleanup(&pem);
	/* output cap */
	kiln_buf_init(&pem, 16);
	KT_ERR(kiln_cert_pem(root, &pem), KILN_ERR_TOO_BIG);
	assert_int_equal(pem.len, 0);
	kiln_buf_cleanup(&pem);
	X509_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_new),
		cmocka_unit_test(test_same_bytes_as_openssl),
		cmocka_unit_test(test_refusal_appends_nothing),
		cmocka_unit_test(test_self_signed_root_each_alg),
		cmocka_unit_test(test_leaf_each_alg),
		cmocka_unit_test(test_names_copied_exactly),
		cmocka_unit_test(test_all_extensions),
		cmocka_unit_test(test_validity_encoding_and_pathlen),
		cmocka_unit_test(test_openssl_verify_chain),
		cmocka_unit_test(test_validity_refused),
		cmocka_unit_test(test_invalid_san_refused),
		cmocka_unit_test(test_spec_argument_errors),
		cmocka_unit_test(test_extra_duplicate_refused),
		cmocka_unit_test(test_issuer_without_ski),
		cmocka_unit_test(test_signed_assemble_structure),
		cmocka_unit_test(test_signed_assemble_errors),
		cmocka_unit_test(test_wrong_signature_detected),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_serial_hex),
		cmocka_unit_test(test_serial_hex_oversized),
		cmocka_unit_test(test_pem),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
