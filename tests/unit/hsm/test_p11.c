/* Module loading, the C_Initialize registry, slot lookup and token bootstrap (SoftHSM2). */
#include "support/softhsm.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/p11.h"

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->text[0] != '\0');
	assert_null(strchr(d->text, '\n'));
}

static void test_load_missing(void **state)
{
	kiln_p11 *p = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_load("/nonexistent/libnope.so", NULL, &p, &d), KILN_ERR_HSM_MODULE);
	assert_null(p);
	assert_string_equal(d.text, "PKCS#11 module /nonexistent/libnope.so cannot be loaded: "
				    "cannot open shared object file: No such file or directory");
}

static void test_load_not_a_library(void **state)
{
	char *dir = kt_tmpdir("p11-notlib");
	char *path = kt_path(dir, "libfake-pkcs11.so");
	kiln_p11 *p = NULL;
	kiln_diag d;

	(void)state;
	kt_write_file(path, "this is not a shared object\n", 28);
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_load(path, NULL, &p, &d), KILN_ERR_HSM_MODULE);
	assert_null(p);
	assert_non_null(strstr(d.text, path));
	assert_non_null(strstr(d.text, "cannot be loaded: "));
	assert_one_line(&d);
	kt_rmrf(dir);
	free(path);
	free(dir);
}

static void test_load_not_pkcs11(void **state)
{
	EVP_PKEY *(*fn)(void) = EVP_PKEY_new;
	kiln_p11 *p = NULL;
	void *sym;
	Dl_info info;
	kiln_diag d;
	char want[4200];

	(void)state;
	/* A real shared library without C_GetFunctionList: OpenSSL's libcrypto. */
	memcpy(&sym, &fn, sizeof(sym));
	assert_int_not_equal(dladdr(sym, &info), 0);
	assert_non_null(info.dli_fname);
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_load(info.dli_fname, NULL, &p, &d), KILN_ERR_HSM_MODULE);
	assert_null(p);
	(void)snprintf(want, sizeof(want), "%s is not a PKCS#11 module: it has no C_GetFunctionList",
		       info.dli_fname);
	assert_string_equal(d.text, want);
}

static void test_load_args(void **state)
{
	kiln_p11 *p = NULL;
	kiln_diag d;

	(void)state;
	KT_ERR(kiln_p11_load(NULL, NULL, &p, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_load("", NULL, &p, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_load(KILN_SOFTHSM2_MODULE, NULL, NULL, NULL), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_load("/tmp/evil\nINFO forged line", NULL, &p, &d), KILN_ERR_ARG);
	assert_one_line(&d);
	assert_null(p);
	kiln_p11_free(NULL);
}

static CK_RV slot_count(CK_FUNCTION_LIST_PTR fn, CK_ULONG *n)
{
	*n = 0;
	return fn->C_GetSlotList(CK_FALSE, NULL, n);
}

static int setup(void **state)
{
	struct kt_hsm *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	kt_hsm_setup_module(h, "p11");
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	kt_hsm_teardown(*state);
	free(*state);
	return 0;
}

static void test_load_twice(void **state)
{
	struct kt_hsm *h = *state;
	kiln_p11 *second = NULL;
	CK_FUNCTION_LIST_PTR fn;
	CK_ULONG n;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_p11_load(KILN_SOFTHSM2_MODULE, NULL, &second, &d), &d);
	fn = second->fn;
	assert_ptr_equal(fn, h->p11->fn);
	/* Freeing one handle must not finalise the module under the other. */
	kiln_p11_free(h->p11);
	h->p11 = NULL;
	assert_int_equal(slot_count(fn, &n), CKR_OK);
	KT_OKD(kiln_p11_find_slot(second, KT_TOKEN_LABEL, &(CK_SLOT_ID){ 0 }, &d), &d);
	/* The last one does. */
	kiln_p11_free(second);
	assert_int_equal(slot_count(fn, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_foreign_initialize(void **state)
{
	char *dir = kt_tmpdir("p11-foreign");
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR fn = NULL;
	kiln_p11 *p = NULL;
	void *dl, *sym;
	CK_ULONG n;
	kiln_diag d;

	(void)state;
	kt_softhsm_setup(dir);
	/* Someone else in the process initialised the module first. */
	dl = dlopen(KILN_SOFTHSM2_MODULE, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl);
	sym = dlsym(dl, "C_GetFunctionList");
	assert_non_null(sym);
	memcpy(&get, &sym, sizeof(get));
	assert_int_equal(get(&fn), CKR_OK);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	assert_int_equal(fn->C_Initialize(&args), CKR_OK);

	kiln_diag_clear(&d);
	KT_OKD(kiln_p11_load(KILN_SOFTHSM2_MODULE, NULL, &p, &d), &d);
	assert_ptr_equal(p->fn, fn);
	kiln_p11_free(p);
	/* kiln did not initialise it, so kiln did not finalise it. */
	assert_int_equal(slot_count(fn, &n), CKR_OK);
	assert_int_equal(fn->C_Finalize(NULL), CKR_OK);
	kt_rmrf(dir);
	free(dir);
}

static void test_init_token(void **state)
{
	struct kt_hsm *h = *state;
	CK_SLOT_ID a = 0, b = 0;
	CK_TOKEN_INFO ti;
	CK_UTF8CHAR want[KILN_TOKEN_LABEL_LEN];
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OKD(kiln_p11_find_slot(h->p11, KT_TOKEN_LABEL, &a, &d), &d);
	assert_int_equal(h->p11->fn->C_GetTokenInfo(a, &ti), CKR_OK);
	kiln_p11_label_pad(KT_TOKEN_LABEL, want);
	assert_memory_equal(ti.label, want, sizeof(want));
	assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
	assert_true(ti.flags & CKF_USER_PIN_INITIALIZED);

	/* The same label again is refused, whatever the PINs. */
	KT_ERR(kiln_p11_init_token(h->p11, KT_TOKEN_LABEL, "other-so-pin", "other-pin", &d),
	       KILN_ERR_EXISTS);
	assert_string_equal(d.text, "HSM token kiln-test exists already");

	/* A second token goes into the next free slot; both are found by label. */
	kiln_diag_clear(&d);
	KT_OKD(kiln_p11_init_token(h->p11, "kiln-second", KT_SO_PIN, KT_USER_PIN, &d), &d);
	KT_OKD(kiln_p11_find_slot(h->p11, "kiln-second", &b, &d), &d);
	KT_OKD(kiln_p11_find_slot(h->p11, KT_TOKEN_LABEL, &a, &d), &d);
	assert_int_not_equal(a, b);
	/* A label that is a prefix of another is not that other. */
	KT_ERR(kiln_p11_find_slot(h->p11, "kiln", &b, NULL), KILN_ERR_HSM_TOKEN_MISSING);
}

static void test_init_token_bad(void **state)
{
	struct kt_hsm *h = *state;
	char long_pin[300];
	kiln_diag d;

	memset(long_pin, 'x', sizeof(long_pin) - 1);
	long_pin[sizeof(long_pin) - 1] = '\0';
	KT_ERR(kiln_p11_init_token(NULL, "a", KT_SO_PIN, KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, "", KT_SO_PIN, KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, NULL, KT_SO_PIN, KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, "012345678901234567890123456789012", KT_SO_PIN,
				   KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, "trailing ", KT_SO_PIN, KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, "tab\there", KT_SO_PIN, KT_USER_PIN, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_p11_init_token(h->p11, "x", "", KT_USER_PIN, NULL), KILN_ERR_HSM_PIN);
	KT_ERR(kiln_p11_init_token(h->p11, "x", KT_SO_PIN, NULL, NULL), KILN_ERR_HSM_PIN);
	KT_ERR(kiln_p11_init_token(h->p11, "x", long_pin, KT_USER_PIN, NULL), KILN_ERR_HSM_PIN);
	/* 32 bytes is the most a label holds, and it works. */
	kiln_diag_clear(&d);
	KT_OKD(kiln_p11_init_token(h->p11, "01234567890123456789012345678901", KT_SO_PIN,
				   KT_USER_PIN, &d), &d);
	/*
	 * SoftHSM2 wants PINs of 4 bytes or more and says so with
	 * CKR_PIN_INCORRECT (not CKR_PIN_LEN_RANGE); the message names the call.
	 */
	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_init_token(h->p11, "short-pin", "123", KT_USER_PIN, &d), KILN_ERR_HSM_PIN);
	assert_string_equal(d.text, "C_InitToken failed for HSM token short-pin: "
				    "CKR_PIN_INCORRECT (0xa0)");
	KT_ERR(kiln_p11_find_slot(h->p11, "short-pin", &(CK_SLOT_ID){ 0 }, NULL),
	       KILN_ERR_HSM_TOKEN_MISSING);
}

static void test_find_slot_missing(void **state)
{
	struct kt_hsm *h = *state;
	CK_SLOT_ID s;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_p11_find_slot(h->p11, "kiln-prod", &s, &d), KILN_ERR_HSM_TOKEN_MISSING);
	assert_string_equal(d.text,
			    "no HSM token labelled kiln-prod in PKCS#11 module " KILN_SOFTHSM2_MODULE);
	KT_ERR(kiln_p11_find_slot(h->p11, "", &s, NULL), KILN_ERR_ARG);
}

static void test_label_pad(void **state)
{
	CK_UTF8CHAR out[KILN_TOKEN_LABEL_LEN];

	(void)state;
	kiln_p11_label_pad("ab", out);
	assert_memory_equal(out, "ab                              ", KILN_TOKEN_LABEL_LEN);
	kiln_p11_label_pad("01234567890123456789012345678901", out);
	assert_memory_equal(out, "01234567890123456789012345678901", KILN_TOKEN_LABEL_LEN);
	KT_OK(kiln_p11_check_label("kiln-prod", NULL));
	KT_ERR(kiln_p11_check_label(" ", NULL), KILN_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test(test_load_not_a_library),
		cmocka_unit_test(test_load_not_pkcs11),
		cmocka_unit_test(test_load_args),
		cmocka_unit_test_setup_teardown(test_load_twice, setup, teardown),
		cmocka_unit_test(test_foreign_initialize),
		cmocka_unit_test_setup_teardown(test_init_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_token_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_slot_missing, setup, teardown),
		cmocka_unit_test(test_label_pad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
