/*
 * The key ceremony: for every algorithm, root and issuing CA keys live in the
 * token, the certificates chain and carry the CA profile, and a ceremony that
 * fails after generating keys destroys them.
 */
#include "support/ca_fixture.h"

#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct env {
	char *dir;
	kiln_p11 *p11;
	kiln_token *tok[2];
	kiln_store *store;
	kiln_log log;
};

static void env_up(struct env *e, const char *name)
{
	struct kiln_store_opts so = { 0 };
	char *db;

	memset(e, 0, sizeof(*e));
	e->log = (kiln_log){ kiln_log_sink_file, stderr, KILN_LOG_WARN };
	e->dir = kt_tmpdir(name);
	kt_softhsm_setup(e->dir);
	db = kt_path(e->dir, "kiln.db");
	so = (struct kiln_store_opts){ .path = db, .create = true, .log = &e->log };
	KT_OK(kiln_store_open(&so, &e->store, NULL));
	free(db);
	KT_OK(kiln_p11_load(KILN_SOFTHSM2_MODULE, &e->log, &e->p11, NULL));
	for (int i = 0; i < 2; i++) {
		const char *label = i == 0 ? "tok-a" : "tok-b";
		struct kiln_token_opts to = { label, "1234", 2 };

		KT_OK(kiln_p11_init_token(e->p11, label, "so-1234", "1234", NULL));
		KT_OK(kiln_token_open(e->p11, &to, &e->tok[i], NULL));
	}
}

static void env_down(struct env *e)
{
	kiln_store_close(e->store);
	kiln_token_close(e->tok[0]);
	kiln_token_close(e->tok[1]);
	kiln_p11_free(e->p11);
	kt_rmrf(e->dir);
	free(e->dir);
}

static X509 *ca_cert(kiln_store *s, const char *name, struct kiln_ca_rec *rec)
{
	X509 *x = NULL;

	KT_OK(kiln_store_ca_get(s, name, rec, NULL));
	KT_OK(kiln_cert_parse(kiln_slice_of(rec->cert_der, rec->cert_len), &x, NULL));
	return x;
}

static void check_hierarchy(struct env *e, kiln_alg alg)
{
	struct kiln_ca_rec rr = { 0 }, ir = { 0 };
	X509 *root = ca_cert(e->store, "production-root", &rr);
	X509 *issuing = ca_cert(e->store, "production-issuing", &ir);
	EVP_PKEY *pub = NULL;
	kiln_key_ref ref = { 0 };

	KT_OK(kiln_cert_check_signature(root, root));
	KT_OK(kiln_cert_check_signature(issuing, root));
	assert_int_equal(X509_check_issued(root, issuing), X509_V_OK);
	assert_int_equal(X509_check_ca(root), 1);
	assert_int_equal(X509_check_ca(issuing), 1);
	assert_int_equal(X509_get_pathlen(root), 1);
	assert_int_equal(X509_get_pathlen(issuing), 0);
	assert_int_equal(X509_get_key_usage(issuing), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(kiln_alg_of_key(X509_get0_pubkey(issuing)), alg);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(issuing), X509_get0_notAfter(root)) <= 0);
	assert_string_equal(rr.role, "root");
	assert_string_equal(ir.role, "issuing");
	assert_int_equal(ir.parent_id, rr.id);
	assert_string_equal(ir.token, "tok-a");
	assert_string_equal(ir.env, "production");
	/* The issuing key is in the token, and it is the key the certificate names. */
	kiln_strtrunc(ref.label, ir.key_label, sizeof(ref.label));
	memcpy(ref.id, ir.key_id, ir.key_id_len);
	ref.id_len = ir.key_id_len;
	ref.alg = alg;
	KT_OK(kiln_token_find(e->tok[0], &ref, NULL));
	KT_OK(kiln_token_public_key(e->tok[0], &ref, &pub, NULL));
	assert_int_equal(EVP_PKEY_eq(pub, X509_get0_pubkey(issuing)), 1);
	EVP_PKEY_free(pub);
	X509_free(root);
	X509_free(issuing);
	kiln_ca_rec_cleanup(&rr);
	kiln_ca_rec_cleanup(&ir);
}

static void test_each_algorithm(void **state)
{
	static const kiln_alg algs[] = { KILN_ALG_P256, KILN_ALG_P384, KILN_ALG_ED25519,
					 KILN_ALG_RSA3072 };

	(void)state;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct env e;
		struct kiln_hierarchy_opts ho = { KILN_ENV_PRODUCTION, algs[i], "Org", "abcd", 7300,
						  3650, "test" };
		kiln_diag d;
		int64_t n = 0;

		kiln_diag_clear(&d);
		env_up(&e, "ca-hier");
		if (!kiln_is_ok(kiln_ca_create_hierarchy(e.tok[0], e.store, &ho, &d)))
			fail_msg("%s: %s", kiln_alg_get(algs[i])->name, d.text);
		check_hierarchy(&e, algs[i]);
		KT_OK(kiln_store_count(e.store, "cas", &n, NULL));
		assert_int_equal(n, 2);
		KT_OK(kiln_store_count(e.store, "events", &n, NULL));
		assert_int_equal(n, 2);
		env_down(&e);
	}
}

static void test_failed_ceremony_destroys_keys(void **state)
{
	struct env e;
	struct kiln_hierarchy_opts ho = { KILN_ENV_PRODUCTION, KILN_ALG_P256, "Org", "abcd", 7300,
					  3650, "test" };
	kiln_key_ref ref = { .label = "production-root", .alg = KILN_ALG_P256 };
	kiln_diag d;
	int64_t n = 0;

	(void)state;
	env_up(&e, "ca-hier-fail");
	KT_OK(kiln_ca_create_hierarchy(e.tok[0], e.store, &ho, NULL));
	/* Same CA names in the same inventory: keys get made in tok-b, then the commit fails. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_create_hierarchy(e.tok[1], e.store, &ho, &d), KILN_ERR_DUPLICATE);
	assert_non_null(strstr(d.text, "production-root"));
	KT_ERR(kiln_token_find(e.tok[1], &ref, NULL), KILN_ERR_HSM_KEY_MISSING);
	kiln_strtrunc(ref.label, "production-issuing", sizeof(ref.label));
	KT_ERR(kiln_token_find(e.tok[1], &ref, NULL), KILN_ERR_HSM_KEY_MISSING);
	KT_OK(kiln_token_find(e.tok[0], &ref, NULL));
	KT_OK(kiln_store_count(e.store, "cas", &n, NULL));
	assert_int_equal(n, 2);
	/* A second ceremony in the same token fails on the label, before any new key. */
	KT_ERR(kiln_ca_create_hierarchy(e.tok[0], e.store, &ho, NULL), KILN_ERR_EXISTS);
	KT_OK(kiln_token_find(e.tok[0], &ref, NULL));
	env_down(&e);
}

static void test_bad_arguments(void **state)
{
	struct env e;
	struct kiln_hierarchy_opts ho = { KILN_ENV_NONE, KILN_ALG_P256, "Org", "abcd", 7300, 3650,
					  "test" };

	(void)state;
	env_up(&e, "ca-hier-args");
	KT_ERR(kiln_ca_create_hierarchy(e.tok[0], e.store, &ho, NULL), KILN_ERR_ARG);
	ho.env = KILN_ENV_TEST;
	ho.alg = KILN_ALG_NONE;
	KT_ERR(kiln_ca_create_hierarchy(e.tok[0], e.store, &ho, NULL), KILN_ERR_ARG);
	env_down(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_algorithm),
		cmocka_unit_test(test_failed_ceremony_destroys_keys),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
