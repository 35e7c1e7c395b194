/* Identities: client certificates from the service CA, bound to a role. */
#include "support/ca_fixture.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-identity", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static kiln_result add(const char *name, const char *role, kiln_slice csr,
		       struct kiln_identity_result *res, kiln_diag *d)
{
	struct kiln_identity_req req = { name, role, KILN_ENV_NONE, csr, "test", NULL, NULL };

	kiln_diag_clear(d);
	kiln_identity_result_init(res);
	return kiln_ca_identity_add(k.ca, &req, res, d);
}

static X509 *pem_cert(const kiln_buf *b)
{
	BIO *bio = BIO_new_mem_buf(b->ptr, (int)b->len);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void test_every_role(void **state)
{
	static const char *const roles[] = { "admin", "officer", "engineer", "operator", "station",
					     "auditor" };
	kiln_buf chain;
	X509 *issuing;
	BIO *bio;

	(void)state;
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(k.ca, KILN_ENV_SERVICE, &chain, NULL));
	bio = BIO_new_mem_buf(chain.ptr, (int)chain.len);
	issuing = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	for (size_t i = 0; i < 6; i++) {
		struct kiln_identity_result res;
		struct kiln_identity_rec rec = { 0 };
		char name[32], ou[32];
		kiln_diag d;
		X509 *x;
		BIO *kb;
		EVP_PKEY *key;

		(void)snprintf(name, sizeof(name), "person-%s", roles[i]);
		KT_OK(add(name, roles[i], kiln_slice_of(NULL, 0), &res, &d));
		x = pem_cert(&res.cert_pem);
		KT_OK(kiln_cert_check_signature(x, issuing));
		assert_true((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0);
		assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
		assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
						      NID_organizationalUnitName, ou, sizeof(ou)) > 0);
		assert_string_equal(ou, roles[i]);
		kb = BIO_new_mem_buf(res.key_pem.ptr, (int)res.key_pem.len);
		key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
		assert_non_null(key);
		assert_int_equal(X509_check_private_key(x, key), 1);
		KT_OK(kiln_store_identity_get(k.store, name, &rec, NULL));
		assert_string_equal(rec.role, roles[i]);
		assert_string_equal(rec.status, "active");
		assert_string_equal(rec.cert_serial, res.serial);
		EVP_PKEY_free(key);
		BIO_free(kb);
		X509_free(x);
		kiln_identity_result_cleanup(&res);
	}
	assert_int_equal(kt_count_events(&k, "identity-add"), 6);
	X509_free(issuing);
	kiln_buf_cleanup(&chain);
}

static void test_holder_csr(void **state)
{
	struct kiln_identity_result res;
	EVP_PKEY *key;
	kiln_buf csr;
	kiln_diag d;
	X509 *x;

	(void)state;
	kt_make_csr("p384", "whatever", "O=Ignored", &csr, &key);
	KT_OK(add("station-7", "station", kiln_buf_view(&csr), &res, &d));
	assert_int_equal(res.key_pem.len, 0);
	x = pem_cert(&res.cert_pem);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	kiln_buf_cleanup(&csr);
	kiln_identity_result_cleanup(&res);
}

static void test_refusals(void **state)
{
	struct kiln_identity_result res;
	kiln_diag d;
	int64_t certs = kt_count(&k, "certificates"), ids;

	(void)state;
	KT_ERR(add("bad name", "admin", kiln_slice_of(NULL, 0), &res, &d), KILN_ERR_ARG);
	assert_int_equal(res.key_pem.len, 0);
	kiln_identity_result_cleanup(&res);
	KT_ERR(add("", "admin", kiln_slice_of(NULL, 0), &res, &d), KILN_ERR_ARG);
	kiln_identity_result_cleanup(&res);
	KT_ERR(add("x", "wizard", kiln_slice_of(NULL, 0), &res, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "unknown role 'wizard'"));
	kiln_identity_result_cleanup(&res);
	KT_ERR(add("x", "admin", kiln_slice_str("garbage"), &res, &d), KILN_ERR_CSR_MALFORMED);
	kiln_identity_result_cleanup(&res);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	KT_OK(add("dup", "auditor", kiln_slice_of(NULL, 0), &res, &d));
	kiln_identity_result_cleanup(&res);
	certs = kt_count(&k, "certificates");
	ids = kt_count(&k, "identities");
	KT_ERR(add("dup", "admin", kiln_slice_of(NULL, 0), &res, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "dup"));
	assert_int_equal(res.key_pem.len, 0);
	assert_int_equal(res.cert_pem.len, 0);
	assert_int_equal(kt_count(&k, "certificates"), certs);
	assert_int_equal(kt_count(&k, "identities"), ids);
	kiln_identity_result_cleanup(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_role),
		cmocka_unit_test(test_holder_csr),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
