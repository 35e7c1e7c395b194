/*
 * Unit tests for src/ca/rotate.c over a real deployment (SoftHSM2, SQLite):
 * a ca-rotate request names the next generation and makes no key; the run
 * refuses unknown, short, expired, executed, mismatched and stale requests
 * before any key exists (the token's key count does not move, each refusal
 * an event); an approved run makes the key in the token, a certificate from
 * the root with the issuing CA profile, retires the old CA and records the
 * new one with its events in one commit. A reopened engine issues from the
 * new CA, keeps the old one for CRLs, and the old CA can no longer issue.
 */
#include "support/ca_fixture.h"

#include <jansson.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct kt_deploy k;
static struct kiln_govern_rules rules;
static EVP_PKEY *keys[3]; /* o1, o2, o3: officers */
static const char *const names[3] = { "o1", "o2", "o3" };

static void add_officer(int i)
{
	struct kiln_identity_result res;
	struct kiln_identity_req req;
	kiln_buf csr;
	kiln_diag d;

	kt_make_csr("p256", names[i], NULL, &csr, &keys[i]);
	req = (struct kiln_identity_req){ names[i], "officer", KILN_ENV_NONE, kiln_buf_view(&csr),
					  "test", NULL, NULL };
	kiln_identity_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_identity_add(k.ca, &req, &res, &d));
	kiln_identity_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-rotate", KILN_ALG_P256, false);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.ttl_s = 3600;
	for (int i = 0; i < 3; i++)
		add_officer(i);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		EVP_PKEY_free(keys[i]);
	kt_deploy_down(&k);
	return 0;
}

static void approve(const char *id, int who)
{
	struct kiln_request_rec q;
	struct kiln_approve_result res;
	kiln_buf sig;
	kiln_diag d;

	kiln_buf_init(&sig, 1024);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_request_get(k.store, id, &q, &d));
	KT_OK(kiln_govern_sign(keys[who], q.digest, &sig, &d));
	KT_OK(kiln_govern_approve(k.store, id, names[who], kiln_buf_view(&sig), 0, &res, &d));
	assert_false(res.executed); /* a rotation runs with kiln ca rotate --request */
	kiln_buf_cleanup(&sig);
}

/* Objects in the test token labelled label (key pairs count 2). */
static size_t labelled(const char *label)
{
	struct kiln_key_ref ref = { 0 };

	kiln_strtrunc(ref.label, label, sizeof(ref.label));
	ref.alg = KILN_ALG_P256;
	return kiln_is_ok(kiln_token_find(k.tokens[KILN_ENV_TEST], &ref, NULL)) ? 1 : 0;
}

static void reopen(void)
{
	struct kiln_ca_opts co = { 0 };
	kiln_diag d;

	kiln_ca_free(k.ca);
	co.store = k.store;
	memcpy(co.tokens, k.tokens, sizeof(co.tokens));
	co.log = &k.log;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_open(&co, &k.ca, &d));
}

static void request(const char *env, const char *alg, const char *actor,
		    struct kiln_rotate_result *out)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_ca_rotate_request(k.ca, env, alg, actor, &rules, out, &d));
}

static void test_request_refusals(void **state)
{
	struct kiln_rotate_result res;
	int64_t reqs = kt_count(&k, "requests"), ev = kt_count_events(&k, "request-refused");
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_request(k.ca, "staging", NULL, "o1", &rules, &res, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "unknown environment 'staging'"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_request(k.ca, "service", NULL, "o1", &rules, &res, &d), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_request(k.ca, NULL, NULL, "o1", &rules, &res, &d), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_request(k.ca, "test", "dsa", "o1", &rules, &res, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "unknown algorithm 'dsa'"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_request(NULL, "test", NULL, "o1", &rules, &res, &d), KILN_ERR_ARG);
	assert_int_equal(kt_count(&k, "requests"), reqs);
	assert_int_equal(kt_count_events(&k, "request-refused"), ev + 4);
}

static void test_request_names_next_generation(void **state)
{
	struct kiln_rotate_result res;
	struct kiln_request_rec q;
	kiln_diag d;

	(void)state;
	request("production", "p384", "o1", &res);
	assert_string_equal(res.new_name, "production-issuing-2");
	assert_string_equal(res.old_name, "production-issuing");
	assert_string_equal(res.alg, "p384");
	assert_int_equal(res.generation, 2);
	assert_int_equal(res.quorum, 2);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_request_get(k.store, res.request_id, &q, &d));
	assert_string_equal(q.operation, "ca-rotate");
	assert_string_equal(q.params_json, "{\"algorithm\":\"p384\",\"env\":\"production\","
					   "\"generation\":2,\"name\":\"production-issuing-2\","
					   "\"role\":\"issuing\"}");
	assert_string_equal(q.requester, "o1");
	/* Default algorithm: the active CA's. */
	request("test", NULL, "o1", &res);
	assert_string_equal(res.alg, "p256");
}

static void test_run_refusals_make_no_key(void **state)
{
	struct kiln_rotate_result res, out;
	int64_t cas = kt_count(&k, "cas");
	kiln_diag d;

	(void)state;
	request("test", NULL, "o1", &res);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, "req-000000000000000000000000", "o1", &out, &d),
	       KILN_ERR_REQUEST_UNKNOWN);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, res.request_id, "o1", &out, &d), KILN_ERR_APPROVALS_MISSING);
	approve(res.request_id, 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, res.request_id, "o1", &out, &d), KILN_ERR_APPROVALS_MISSING);
	assert_non_null(strstr(d.text, "1 of the 2"));
	assert_int_equal(labelled("test-issuing-2"), 0);
	assert_int_equal(kt_count(&k, "cas"), cas);
	/* Another operation's request is not a rotation. */
	{
		struct kiln_request_rec q;
		/* backup-restore: like a rotation, it runs apart from its approvals. */
		json_t *params = json_pack("{s:s}", "sha256", "00");

		kiln_diag_clear(&d);
		KT_OK(kiln_govern_request_create(k.store, &rules, KILN_OP_BACKUP_RESTORE, params, "o1",
						 0, &q, &d));
		json_decref(params);
		approve(q.id, 1);
		approve(q.id, 2);
		kiln_diag_clear(&d);
		KT_ERR(kiln_ca_rotate_run(k.ca, q.id, "o1", &out, &d), KILN_ERR_REQUEST_MISMATCH);
	}
	assert_int_equal(labelled("test-issuing-2"), 0);
	assert_int_equal(kt_count(&k, "cas"), cas);
	assert_true(kt_count_events(&k, "request-refused") >= 4);
}

static void test_rotate(void **state)
{
	struct kiln_rotate_result res, out, again;
	struct kiln_ca_rec old = { 0 }, neu = { 0 };
	struct kiln_issue_req ir = { 0 };
	struct kiln_issue_result is;
	int64_t cas = kt_count(&k, "cas");
	X509 *cert = NULL, *root = NULL, *dev = NULL, *olddev = NULL, *renewed = NULL;
	X509 *chain[2];
	size_t n = 0;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	/* A device certificate from the old CA, renewed after the rotation below. */
	kt_make_csr("p256", "TST-ROT-OLD1", NULL, &csr, NULL);
	ir.product = "widget-test";
	ir.csr = kiln_buf_view(&csr);
	ir.actor = "test";
	kiln_issue_result_init(&is);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &ir, &is, &d));
	KT_OK(kiln_cert_parse(kiln_buf_view(&is.cert_der), &olddev, &d));
	kiln_issue_result_cleanup(&is);
	kiln_buf_cleanup(&csr);

	request("test", NULL, "o1", &res);
	approve(res.request_id, 1);
	approve(res.request_id, 2);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_rotate_run(k.ca, res.request_id, "o3", &out, &d));
	assert_string_equal(out.new_name, "test-issuing-2");
	assert_string_equal(out.key_label, "test-issuing-2");
	assert_int_equal(labelled("test-issuing-2"), 1);
	assert_int_equal(kt_count(&k, "cas"), cas + 1);
	assert_int_equal(kt_count_events(&k, "ca-rotate"), 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, res.request_id, "o3", &again, &d), KILN_ERR_REQUEST_EXECUTED);
	assert_int_equal(kt_count(&k, "cas"), cas + 1);

	kiln_diag_clear(&d);
	KT_OK(kiln_store_ca_get(k.store, "test-issuing", &old, &d));
	kiln_diag_clear(&d);
	KT_OK(kiln_store_ca_get(k.store, "test-issuing-2", &neu, &d));
	assert_string_equal(old.status, "retired");
	assert_string_equal(neu.status, "active");
	assert_int_equal(neu.generation, 2);
	assert_int_equal(neu.parent_id, old.parent_id);
	assert_string_equal(neu.token, "kiln-test");
	kiln_diag_clear(&d);
	KT_OK(kiln_cert_parse(kiln_slice_of(neu.cert_der, neu.cert_len), &cert, &d));
	/* The profile of kiln init's issuing CA. */
	assert_int_equal(X509_check_ca(cert), 1);
	assert_int_equal(X509_get_pathlen(cert), 0);
	assert_int_equal(X509_get_key_usage(cert), (uint32_t)(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	assert_non_null(X509_get0_subject_key_id(cert));
	assert_non_null(X509_get0_authority_key_id(cert));
	assert_int_equal(old.not_after - old.not_before, neu.not_after - neu.not_before);

	/* A reopened engine issues from the new CA, chained to the same root. */
	reopen();
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_chain_certs(k.ca, KILN_ENV_TEST, chain, &n, &d));
	assert_int_equal(X509_cmp(chain[0], cert), 0);
	root = chain[1];
	assert_int_equal(X509_check_issued(root, cert), X509_V_OK);
	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", "TST-ROT-0001", NULL, &csr, NULL);
	ir.product = "widget-test";
	ir.csr = kiln_buf_view(&csr);
	ir.actor = "test";
	kiln_issue_result_init(&is);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &ir, &is, &d));
	kiln_diag_clear(&d);
	KT_OK(kiln_cert_parse(kiln_buf_view(&is.cert_der), &dev, &d));
	assert_int_equal(X509_check_issued(cert, dev), X509_V_OK);
	kiln_issue_result_cleanup(&is);
	/* Renewing the old CA's certificate gives one from the new CA. */
	{
		struct kiln_renew_req rr = { olddev, { 0 }, NULL, "device:test" };
		kiln_buf rcsr;

		kt_make_csr("p256", "TST-ROT-OLD1", NULL, &rcsr, NULL);
		rr.csr = kiln_buf_view(&rcsr);
		kiln_issue_result_init(&is);
		kiln_diag_clear(&d);
		if (!kiln_is_ok(kiln_ca_renew(k.ca, &rr, &is, &d)))
			fail_msg("renew: %s", d.text);
		KT_OK(kiln_cert_parse(kiln_buf_view(&is.cert_der), &renewed, &d));
		assert_int_equal(X509_check_issued(cert, renewed), X509_V_OK);
		assert_int_not_equal(X509_check_issued(cert, olddev), X509_V_OK);
		kiln_issue_result_cleanup(&is);
		kiln_buf_cleanup(&rcsr);
	}
	/* The retired CA issues no more, but still signs its CRL. */
	ir.ca_name = "test-issuing";
	kiln_issue_result_init(&is);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_issue(k.ca, &ir, &is, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "retired for issuance"));
	kiln_issue_result_cleanup(&is);
	{
		struct kiln_crl_result crl;

		memset(&crl, 0, sizeof(crl));
		kiln_buf_init(&crl.der, KILN_CRL_MAX_BYTES);
		kiln_diag_clear(&d);
		KT_OK(kiln_ca_crl_issue(k.ca, "test-issuing", 3600, "test", &crl, &d));
		kiln_buf_cleanup(&crl.der);
		memset(&crl, 0, sizeof(crl));
		kiln_buf_init(&crl.der, KILN_CRL_MAX_BYTES);
		kiln_diag_clear(&d);
		KT_OK(kiln_ca_crl_issue(k.ca, "test-issuing-2", 3600, "test", &crl, &d));
		kiln_buf_cleanup(&crl.der);
	}
	/* The new CA's OCSP signer, named for its generation. */
	{
		bool made = false;
		struct kiln_ca_rec o = { 0 };

		kiln_diag_clear(&d);
		KT_OK(kiln_ca_ocsp_signer_ensure(k.ca, KILN_ENV_TEST, "test", &made, &d));
		assert_true(made);
		kiln_diag_clear(&d);
		KT_OK(kiln_store_ca_get(k.store, "test-ocsp-2", &o, &d));
		assert_int_equal(o.parent_id, neu.id);
		kiln_ca_rec_cleanup(&o);
	}
	kiln_buf_cleanup(&csr);
	X509_free(dev);
	X509_free(olddev);
	X509_free(renewed);
	X509_free(cert);
	kiln_ca_rec_cleanup(&old);
	kiln_ca_rec_cleanup(&neu);
}

static void test_stale_request_refused(void **state)
{
	struct kiln_rotate_result a, b, out;
	kiln_diag d;

	(void)state;
	request("production", NULL, "o1", &a);
	request("production", NULL, "o1", &b); /* both for generation 2 */
	assert_string_equal(a.new_name, b.new_name);
	approve(a.request_id, 1);
	approve(a.request_id, 2);
	approve(b.request_id, 1);
	approve(b.request_id, 2);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_rotate_run(k.ca, a.request_id, "o1", &out, &d));
	reopen();
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, b.request_id, "o1", &out, &d), KILN_ERR_REQUEST_MISMATCH);
	assert_non_null(strstr(d.text, "make a new request"));
	assert_int_equal(kt_count_events(&k, "ca-rotate"), 1);
}

static void test_expired_request_refused(void **state)
{
	struct kiln_rotate_result a, out;
	struct kiln_govern_rules short_rules = rules;
	kiln_diag d;

	(void)state;
	/* Long enough for two approvals under valgrind, then wait until it has passed. */
	short_rules.ttl_s = 8;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_rotate_request(k.ca, "test", NULL, "o1", &short_rules, &a, &d));
	approve(a.request_id, 1);
	approve(a.request_id, 2);
	while (kiln_now() <= a.expires)
		sleep(1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_rotate_run(k.ca, a.request_id, "o1", &out, &d), KILN_ERR_REQUEST_EXPIRED);
	assert_int_equal(labelled("test-issuing-2"), 0);
}

/* A row named like the new CA, so the rotation's commit fails after the key exists. */
static kiln_result squat_tx(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_ca_rec rec = { 0 }, *parent = ctx;

	kiln_strtrunc(rec.name, "test-issuing-2", sizeof(rec.name));
	kiln_strtrunc(rec.env, "test", sizeof(rec.env));
	kiln_strtrunc(rec.role, "ocsp", sizeof(rec.role));
	kiln_strtrunc(rec.alg, "p256", sizeof(rec.alg));
	kiln_strtrunc(rec.token, "kiln-test", sizeof(rec.token));
	kiln_strtrunc(rec.key_label, "squat", sizeof(rec.key_label));
	rec.parent_id = parent->id;
	return kiln_store_tx_ca_add(tx, &rec, d);
}

static void test_failed_commit_destroys_key(void **state)
{
	struct kiln_rotate_result a, out;
	struct kiln_ca_rec cur = { 0 };
	struct kiln_request_rec q;
	int64_t cas;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_ca_get(k.store, "test-issuing", &cur, &d));
	KT_OK(kiln_store_write(k.store, squat_tx, &cur, &d));
	cas = kt_count(&k, "cas");
	request("test", NULL, "o1", &a);
	approve(a.request_id, 1);
	approve(a.request_id, 2);
	KT_ERR(kiln_ca_rotate_run(k.ca, a.request_id, "o1", &out, &d), KILN_ERR_DUPLICATE);
	/* Nothing of the rotation stays: no key, no row, the request still pending, the old CA active. */
	assert_int_equal(labelled("test-issuing-2"), 0);
	assert_int_equal(kt_count(&k, "cas"), cas);
	assert_int_equal(kt_count_events(&k, "ca-rotate"), 0);
	assert_int_equal(kt_count_events(&k, "ca-rotate-failed"), 1);
	kiln_diag_clear(&d);
	KT_OK(kiln_store_request_get(k.store, a.request_id, &q, &d));
	assert_string_equal(q.status, "pending");
	kiln_ca_rec_cleanup(&cur);
	KT_OK(kiln_store_ca_get(k.store, "test-issuing", &cur, &d));
	assert_string_equal(cur.status, "active");
	kiln_ca_rec_cleanup(&cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_names_next_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_refusals_make_no_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_request_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_request_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_destroys_key, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
