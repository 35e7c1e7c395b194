/* The PKCS#11 side of each algorithm: complete, well-formed, consistent with crypto. */
#include "support/support.h"

#include "hsm/p11.h"

static void test_every_alg(void **state)
{
	(void)state;
	for (int a = KILN_ALG_NONE + 1; a < KILN_ALG__COUNT; a++) {
		const struct kiln_p11_alg *pa = kiln_p11_alg_get((kiln_alg)a);
		const struct kiln_alg_info *ai = kiln_alg_get((kiln_alg)a);

		assert_non_null(pa);
		assert_non_null(ai);
		assert_int_equal(pa->alg, a);
		if (ai->pkey_type == EVP_PKEY_RSA) {
			assert_int_equal(pa->key_type, CKK_RSA);
			assert_int_equal(pa->ec_params.len, 0);
			assert_false(pa->prehash);
		} else {
			/* Curve parameters are one well-formed DER value. */
			KT_OK(kiln_der_check(pa->ec_params));
			assert_true(kiln_p11_alg_params_ok(pa, pa->ec_params));
			/* ECDSA signs a digest made in software; the token returns raw r||s. */
			assert_int_equal(pa->prehash, ai->ec_coord_len > 0);
			assert_int_equal(pa->group != NULL, ai->ec_coord_len > 0);
		}
	}
	assert_null(kiln_p11_alg_get(KILN_ALG_NONE));
	assert_null(kiln_p11_alg_get(KILN_ALG__COUNT));
}

static void test_mechanisms(void **state)
{
	(void)state;
	assert_int_equal(kiln_p11_alg_get(KILN_ALG_P256)->sign_mech, CKM_ECDSA);
	assert_int_equal(kiln_p11_alg_get(KILN_ALG_P384)->gen_mech, CKM_EC_KEY_PAIR_GEN);
	assert_int_equal(kiln_p11_alg_get(KILN_ALG_ED25519)->sign_mech, CKM_EDDSA);
	assert_int_equal(kiln_p11_alg_get(KILN_ALG_ED25519)->gen_mech, CKM_EC_EDWARDS_KEY_PAIR_GEN);
	assert_int_equal(kiln_p11_alg_get(KILN_ALG_RSA3072)->sign_mech, CKM_SHA256_RSA_PKCS);
}

static void test_params(void **state)
{
	static const uint8_t ed_oid[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
	static const uint8_t ed_str[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
					  's', '2', '5', '5', '1', '9' };
	static const uint8_t ed448[] = { 0x06, 0x03, 0x2b, 0x65, 0x71 };
	const struct kiln_p11_alg *p256 = kiln_p11_alg_get(KILN_ALG_P256);
	const struct kiln_p11_alg *p384 = kiln_p11_alg_get(KILN_ALG_P384);
	const struct kiln_p11_alg *ed = kiln_p11_alg_get(KILN_ALG_ED25519);

	(void)state;
	/* Ed25519 by name (what kiln writes) and by OID (what some modules write). */
	assert_true(kiln_slice_eq(ed->ec_params, kiln_slice_of(ed_str, sizeof(ed_str))));
	assert_true(kiln_p11_alg_params_ok(ed, kiln_slice_of(ed_oid, sizeof(ed_oid))));
	assert_false(kiln_p11_alg_params_ok(ed, kiln_slice_of(ed448, sizeof(ed448))));
	assert_false(kiln_p11_alg_params_ok(p256, p384->ec_params));
	assert_false(kiln_p11_alg_params_ok(p384, p256->ec_params));
	assert_false(kiln_p11_alg_params_ok(p256, kiln_slice_of(NULL, 0)));
	assert_false(kiln_p11_alg_params_ok(kiln_p11_alg_get(KILN_ALG_RSA3072), p256->ec_params));
	assert_false(kiln_p11_alg_params_ok(NULL, p256->ec_params));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_alg),
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
