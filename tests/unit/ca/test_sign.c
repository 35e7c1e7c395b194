/* The signing path: lint runs before the HSM is asked, previews and PEM. */
#include "support/ca_fixture.h"

#include "ca/ca_impl.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-sign", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

/* A leaf TBS under production-issuing for a fresh key. */
static void leaf_tbs(kiln_buf *tbs, unsigned ku)
{
	struct ca_entry *issuer = ca_issuing(k.ca, KILN_ENV_PRODUCTION);
	struct kiln_name_attr cn = { "CN", "SIGN-0001" };
	struct kiln_cert_spec spec = { 0 };
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_NAME *name = NULL;

	KT_OK(kiln_name_build(&cn, 1, &name, NULL));
	KT_OK(kiln_serial_new(spec.serial));
	spec.not_before = kiln_now();
	spec.not_after = spec.not_before + 86400;
	spec.subject = name;
	spec.subject_key = key;
	spec.issuer = issuer->cert;
	spec.sig_alg = issuer->alg;
	spec.path_len = -1;
	spec.key_usage = ku;
	kiln_buf_init(tbs, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_cert_tbs(&spec, tbs, NULL));
	X509_NAME_free(name);
	EVP_PKEY_free(key);
}

static void test_lint_runs_before_the_hsm(void **state)
{
	struct ca_entry *issuer = ca_issuing(k.ca, KILN_ENV_PRODUCTION);
	struct kiln_lint_profile p = { false, -1, KU_DIGITAL_SIGNATURE, 10, issuer->cert,
				       issuer->alg, NULL, NULL, { NULL, 0 } };
	kiln_key_ref missing = issuer->key;
	kiln_buf tbs, der;
	kiln_diag d;

	(void)state;
	/* A key the token does not have: only a call to the HSM could notice. */
	kiln_strtrunc(missing.label, "no-such-key", sizeof(missing.label));
	missing.id_len = 0;
	leaf_tbs(&tbs, KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN);
	kiln_buf_init(&der, KILN_BUF_DEFAULT_MAX);
	kiln_diag_clear(&d);
	KT_ERR(ca_sign_cert(issuer->token, &missing, kiln_buf_view(&tbs), &p, false, "t", &der,
			    &d),
	       KILN_ERR_INTERNAL);
	assert_non_null(strstr(d.text, "lint:"));
	assert_int_equal(der.len, 0);
	kiln_buf_cleanup(&tbs);
	/* A TBS that passes the lint does reach the HSM, which refuses the missing key. */
	leaf_tbs(&tbs, KU_DIGITAL_SIGNATURE);
	kiln_diag_clear(&d);
	KT_ERR(ca_sign_cert(issuer->token, &missing, kiln_buf_view(&tbs), &p, false, "t", &der,
			    &d),
	       KILN_ERR_HSM_KEY_MISSING);
	/* Bytes that are not DER never reach the HSM either. */
	kiln_diag_clear(&d);
	KT_ERR(ca_sign_cert(issuer->token, &issuer->key, kiln_slice_str("not der"), &p, false, "t",
			    &der, &d),
	       KILN_ERR_INTERNAL);
	assert_non_null(strstr(d.text, "not well-formed DER"));
	/* And with the right key it signs, and the signature verifies. */
	KT_OK(ca_sign_cert(issuer->token, &issuer->key, kiln_buf_view(&tbs), &p, true, "t", &der,
			   &d));
	assert_true(der.len > tbs.len);
	kiln_buf_cleanup(&tbs);
	kiln_buf_cleanup(&der);
}

static void test_tbs_and_pem(void **state)
{
	kiln_buf tbs, pem;

	(void)state;
	leaf_tbs(&tbs, KU_DIGITAL_SIGNATURE);
	{
		/* OpenSSL reads the TBS (wrapped with a stand-in signature), with the issuer's algorithm. */
		kiln_buf wrapped;
		const unsigned char *q;
		const ASN1_OBJECT *obj = NULL;
		X509 *x;

		kiln_buf_init(&wrapped, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_signed_assemble(kiln_buf_view(&tbs), KILN_ALG_P256, kiln_slice_str("s"),
					   &wrapped));
		q = wrapped.ptr;
		x = d2i_X509(NULL, &q, (long)wrapped.len);
		assert_non_null(x);
		assert_ptr_equal(q, wrapped.ptr + wrapped.len);
		X509_ALGOR_get0(&obj, NULL, NULL, X509_get0_tbs_sigalg(x));
		assert_int_equal(OBJ_obj2nid(obj), NID_ecdsa_with_SHA256);
		X509_free(x);
		kiln_buf_cleanup(&wrapped);
	}
	kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
	KT_OK(ca_der_to_pem(kiln_slice_of(ca_issuing(k.ca, KILN_ENV_TEST)->rec.cert_der,
					  ca_issuing(k.ca, KILN_ENV_TEST)->rec.cert_len),
			    &pem));
	assert_non_null(strstr(kiln_buf_cstr(&pem), "-----BEGIN CERTIFICATE-----"));
	{
		/* Byte for byte what OpenSSL's PEM writer makes of the same DER. */
		const struct kiln_ca_rec *rec = &ca_issuing(k.ca, KILN_ENV_TEST)->rec;
		BIO *bio = BIO_new(BIO_s_mem());
		char *data = NULL;
		long n;

		assert_non_null(bio);
		assert_true(PEM_write_bio(bio, PEM_STRING_X509, "", rec->cert_der,
					  (long)rec->cert_len) > 0);
		n = BIO_get_mem_data(bio, &data);
		assert_int_equal((size_t)n, pem.len);
		assert_memory_equal(data, pem.ptr, pem.len);
		BIO_free(bio);
	}
	kiln_buf_cleanup(&pem);
	kiln_buf_cleanup(&tbs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lint_runs_before_the_hsm),
		cmocka_unit_test(test_tbs_and_pem),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
