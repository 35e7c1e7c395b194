/* The CA engine: loading CAs, chains, token checks, roles, the policy cache. */
#include "support/ca_fixture.h"

#include "ca/ca_impl.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <string.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-engine", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static void test_chain_order(void **state)
{
	static const kiln_env envs[] = { KILN_ENV_PRODUCTION, KILN_ENV_TEST, KILN_ENV_SERVICE };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		kiln_buf pem;
		BIO *bio;
		X509 *issuing, *root;

		kiln_buf_init(&pem, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_ca_chain_pem(k.ca, envs[i], &pem, NULL));
		bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
		issuing = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		root = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		assert_non_null(issuing);
		assert_non_null(root);
		assert_null(PEM_read_bio_X509(bio, NULL, NULL, NULL));
		assert_int_equal(X509_check_issued(root, issuing), X509_V_OK);
		assert_int_equal(X509_check_issued(root, root), X509_V_OK);
		assert_int_equal(X509_get_pathlen(issuing), 0);
		BIO_free(bio);
		X509_free(issuing);
		X509_free(root);
		kiln_buf_cleanup(&pem);
	}
	assert_non_null(ca_find(k.ca, "test-root"));
	assert_null(ca_find(k.ca, "nope"));
	assert_true(ca_issuing(k.ca, KILN_ENV_TEST)->env == KILN_ENV_TEST);
	assert_true(ca_find(k.ca, "production-issuing")->parent == ca_find(k.ca, "production-root"));
}

static void test_open_without_tokens(void **state)
{
	struct kiln_ca_opts co = { .store = k.store, .public_url = "http://x" };
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	kiln_ca *ca = NULL;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_open(&co, &ca, NULL));
	/* Without the token the engine still reads, but cannot sign. */
	kt_make_csr("p256", "NOTOK-0001", NULL, &csr, NULL);
	req = (struct kiln_issue_req){ .product = "widget", .csr = kiln_buf_view(&csr), .actor = "t" };
	kiln_issue_result_init(&res);
	KT_ERR(kiln_ca_issue(ca, &req, &res, &d), KILN_ERR_HSM_TOKEN_MISSING);
	assert_non_null(strstr(d.text, "kiln-prod"));
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
	kiln_ca_free(ca);
}

static void test_token_mismatch_refused(void **state)
{
	struct kiln_ca_opts co = { .store = k.store };
	kiln_ca *ca = NULL;
	kiln_diag d;

	(void)state;
	/* The test token offered as the production token: the CA records say otherwise. */
	co.tokens[KILN_ENV_PRODUCTION] = k.tokens[KILN_ENV_TEST];
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_open(&co, &ca, &d), KILN_ERR_POLICY_ENV);
	assert_non_null(strstr(d.text, "kiln-prod"));
	assert_null(ca);
}

static void test_empty_inventory(void **state)
{
	struct kiln_store_opts so = { 0 };
	struct kiln_ca_opts co = { 0 };
	kiln_store *s = NULL;
	kiln_ca *ca = NULL;
	char *db = kt_path(k.dir, "empty.db");
	kiln_diag d;

	(void)state;
	so = (struct kiln_store_opts){ .path = db, .create = true };
	KT_OK(kiln_store_open(&so, &s, NULL));
	co.store = s;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_open(&co, &ca, &d), KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, "kiln init"));
	kiln_store_close(s);
	free(db);
}

static void test_roles(void **state)
{
	(void)state;
	assert_true(kiln_role_valid("admin"));
	assert_true(kiln_role_valid("auditor"));
	assert_true(kiln_role_valid("station"));
	assert_false(kiln_role_valid("root"));
	assert_false(kiln_role_valid(""));
	assert_false(kiln_role_valid(NULL));
}

static void test_policy_cache(void **state)
{
	const kiln_policy *a = NULL, *b = NULL;
	int64_t va = 0, vb = 0;
	kiln_diag d;

	(void)state;
	KT_OK(ca_policy_active(k.ca, "widget", &a, &va, NULL));
	KT_OK(ca_policy_active(k.ca, "widget", &b, &vb, NULL));
	assert_ptr_equal(a, b);
	assert_int_equal(va, 1);
	assert_string_equal(a->product, "widget");
	kiln_diag_clear(&d);
	KT_ERR(ca_policy_active(k.ca, "nope", &a, &va, &d), KILN_ERR_UNKNOWN_PRODUCT);
	assert_non_null(strstr(d.text, "kiln policy add"));
}

/* jansson's text for the same format and arguments (the writer it replaced). */
static char *jansson_event(const char *fmt, ...)
{
	va_list ap;
	json_t *j;
	char *s;

	va_start(ap, fmt);
	j = json_vpack_ex(NULL, 0, fmt, ap);
	va_end(ap);
	s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	return s;
}

#define SAME_AS_JANSSON(...)                                          \
	do {                                                          \
		char *want_ = jansson_event(__VA_ARGS__);             \
		char *got_ = ca_event_json(__VA_ARGS__);              \
		assert_non_null(want_);                               \
		assert_non_null(got_);                                \
		assert_string_equal(got_, want_);                     \
		free(want_);                                          \
		free(got_);                                           \
	} while (0)

static void test_event_json(void **state)
{
	char *s = ca_event_json("{s:s,s:i}", "a", "x\"y", "b", 3);

	(void)state;
	assert_string_equal(s, "{\"a\":\"x\\\"y\",\"b\":3}");
	free(s);
	SAME_AS_JANSSON("{}");
	SAME_AS_JANSSON("{s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "product", "widget",
			"device", "SN-\xc3\xa9\xf0\x9f\x94\x91", "policy_version", (json_int_t)7, "ca",
			"test-issuing", "env", "test", "spki_sha256", "00ff", "key", "P-256", "lot",
			"L\n1\t\\", "station", "st/1", "attestation", "none", "firmware_sha256", "",
			"evidence_sha256", "\x01\x7f");
	SAME_AS_JANSSON("{s:s,s:s,s:I,s:s,s:s,s:s,s:b,s:I}", "product", "p", "device", "d",
			"device_id", (json_int_t)-9223372036854775807LL - 1, "renews", "ab", "ca",
			"c", "spki_sha256", "f", "same_key", 1, "policy_version",
			(json_int_t)9223372036854775807LL);
	SAME_AS_JANSSON("{s:b,s:b,s:i}", "z", 0, "a", 42, "m", -1);
	/* Keys sort by their bytes: upper case before lower, shorter prefix first. */
	SAME_AS_JANSSON("{s:s,s:s,s:s,s:s}", "ab", "1", "a", "2", "B", "3", "\xc3\xa9", "4");
	/* Refused: a NULL string or key, bytes that are not UTF-8, a duplicate key, an unknown type. */
	assert_null(ca_event_json("{s:s}", "a", NULL));
	assert_null(ca_event_json("{s:s}", NULL, "a"));
	assert_null(ca_event_json("{s:s}", "a", "\xc3"));
	assert_null(ca_event_json("{s:s}", "\xff", "a"));
	assert_null(ca_event_json("{s:s,s:s}", "a", "1", "a", "2"));
	assert_null(ca_event_json("{s:o}", "a", NULL));
	assert_null(ca_event_json("[s]", "a"));
	assert_null(ca_event_json("{s:s", "a", "b"));
	assert_null(ca_event_json("{s:s,}", "a", "b"));
	assert_null(ca_event_json("{s:s}x", "a", "b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_order),
		cmocka_unit_test(test_open_without_tokens),
		cmocka_unit_test(test_token_mismatch_refused),
		cmocka_unit_test(test_empty_inventory),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_policy_cache),
		cmocka_unit_test(test_event_json),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
