/*
 * src/govern/approve.c: approval signatures for every identity key type,
 * verified against real identity certificates; who may approve; the
 * requester's own approval; duplicates; a policy activation that runs with
 * the approval reaching the quorum, and the tx_executed path of adopters.
 */
#include "support/ca_fixture.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <string.h>

static struct kt_deploy k;
static struct kiln_govern_rules rules;
static EVP_PKEY *keys[4]; /* o1, o2, o3 (officers), op (operator) */
static const char *const names[4] = { "o1", "o2", "o3", "op" };

static X509 *cert_of(const char *name)
{
	struct kiln_identity_rec id = { 0 };
	struct kiln_cert_rec c = { 0 };
	X509 *x = NULL;

	KT_OK(kiln_store_identity_get(k.store, name, &id, NULL));
	KT_OK(kiln_store_cert_get(k.store, id.cert_serial, &c, NULL));
	KT_OK(kiln_cert_parse(kiln_slice_of(c.der, c.der_len), &x, NULL));
	kiln_cert_rec_cleanup(&c);
	return x;
}

static void add_identity(const char *name, const char *role, const char *alg, EVP_PKEY **key)
{
	struct kiln_identity_result res;
	struct kiln_identity_req req;
	kiln_buf csr;
	kiln_diag d;

	kt_make_csr(alg, name, NULL, &csr, key);
	req = (struct kiln_identity_req){ name, role, KILN_ENV_NONE, kiln_buf_view(&csr), "test",
					  NULL, NULL };
	kiln_identity_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_identity_add(k.ca, &req, &res, &d));
	kiln_identity_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "govern-approve", KILN_ALG_P256, false);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.ttl_s = 3600;
	add_identity("o1", "officer", "p256", &keys[0]);
	add_identity("o2", "officer", "ed25519", &keys[1]);
	add_identity("o3", "officer", "rsa2048", &keys[2]);
	add_identity("op", "operator", "p384", &keys[3]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		EVP_PKEY_free(keys[i]);
	kt_deploy_down(&k);
	return 0;
}

static void test_sign_verify_every_key_type(void **state)
{
	uint8_t digest[32];
	kiln_diag d;

	(void)state;
	memset(digest, 0x42, sizeof(digest));
	for (int i = 0; i < 4; i++) {
		X509 *mine = cert_of(names[i]), *other = cert_of(names[(i + 1) % 4]);
		kiln_buf sig;

		kiln_buf_init(&sig, 1024);
		kiln_diag_clear(&d);
		KT_OK(kiln_govern_sign(keys[i], digest, &sig, &d));
		KT_OK(kiln_govern_verify(mine, digest, kiln_buf_view(&sig), &d));
		KT_ERR(kiln_govern_verify(other, digest, kiln_buf_view(&sig), &d),
		       KILN_ERR_APPROVAL_SIGNATURE);
		digest[0] ^= 1;
		KT_ERR(kiln_govern_verify(mine, digest, kiln_buf_view(&sig), &d),
		       KILN_ERR_APPROVAL_SIGNATURE);
		digest[0] ^= 1;
		sig.ptr[sig.len - 1] ^= 1;
		KT_ERR(kiln_govern_verify(mine, digest, kiln_buf_view(&sig), &d),
		       KILN_ERR_APPROVAL_SIGNATURE);
		kiln_buf_cleanup(&sig);
		X509_free(mine);
		X509_free(other);
	}
}

static void test_signer(void **state)
{
	struct kiln_identity_rec id = { 0 };
	EVP_PKEY *stranger = kt_keygen("p256");
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_signer(k.store, keys[1], &id, &d));
	assert_string_equal(id.name, "o2");
	assert_string_equal(id.role, "officer");
	KT_ERR(kiln_govern_signer(k.store, stranger, &id, &d), KILN_ERR_NOT_FOUND);
	EVP_PKEY_free(stranger);
}

static kiln_result approve_ex(const char *id, int who, const struct kiln_request_rec *q,
			      const struct kiln_govern_exec *ex, struct kiln_approve_result *res,
			      kiln_diag *d)
{
	kiln_buf sig;
	kiln_result r;

	kiln_buf_init(&sig, 1024);
	kiln_diag_clear(d);
	KT_OK(kiln_govern_sign(keys[who], q->digest, &sig, d));
	r = kiln_govern_approve_exec(k.store, id, names[who], kiln_buf_view(&sig), 0, ex, res, d);
	kiln_buf_cleanup(&sig);
	return r;
}

static kiln_result approve(const char *id, int who, const struct kiln_request_rec *q,
			   struct kiln_approve_result *res, kiln_diag *d)
{
	return approve_ex(id, who, q, NULL, res, d);
}

static void test_policy_activation(void **state)
{
	struct kiln_request_rec q;
	struct kiln_policy_added added;
	struct kiln_approve_result res;
	struct kiln_policy_rec active = { 0 };
	int64_t refused0 = kt_count_events(&k, "approval-refused");
	kiln_diag d;
	kiln_buf sig;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_policy_request(k.ca, kiln_slice_str(kt_gadget_policy), "gadget.yaml", "o1",
				     &rules, &added, &q, &d));
	assert_string_equal(added.status, "pending");
	KT_ERR(kiln_store_policy_active(k.store, "gadget", &active, &d), KILN_ERR_NOT_FOUND);
	/* Refusals: the requester, an operator, a signature by another key, a stranger. */
	KT_ERR(approve(q.id, 0, &q, &res, &d), KILN_ERR_APPROVAL_SELF);
	assert_non_null(strstr(d.text, "the requester's own approval does not count"));
	KT_ERR(approve(q.id, 3, &q, &res, &d), KILN_ERR_APPROVAL_ROLE);
	assert_string_equal(d.text, "op has role operator: only officers approve requests");
	kiln_buf_init(&sig, 1024);
	KT_OK(kiln_govern_sign(keys[2], q.digest, &sig, &d));
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_approve(k.store, q.id, "o2", kiln_buf_view(&sig), 0, &res, &d),
	       KILN_ERR_APPROVAL_SIGNATURE);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_approve(k.store, q.id, "nobody", kiln_buf_view(&sig), 0, &res, &d),
	       KILN_ERR_APPROVAL_ROLE);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_approve(k.store, q.id, "o3", kiln_slice_of(NULL, 0), 0, &res, &d),
	       KILN_ERR_APPROVAL_SIGNATURE);
	kiln_buf_cleanup(&sig);
	assert_int_equal(kt_count_events(&k, "approval-refused"), refused0 + 5);
	assert_int_equal(kt_count(&k, "approvals"), 0);
	/* One officer: counted, not executed. */
	KT_OK(approve(q.id, 1, &q, &res, &d));
	assert_int_equal(res.approvals, 1);
	assert_false(res.executed);
	KT_ERR(kiln_store_policy_active(k.store, "gadget", &active, &d), KILN_ERR_NOT_FOUND);
	KT_ERR(approve(q.id, 1, &q, &res, &d), KILN_ERR_APPROVAL_DUPLICATE);
	/* The second: the version takes effect in the same transaction. */
	KT_OK(approve(q.id, 2, &q, &res, &d));
	assert_int_equal(res.approvals, 2);
	assert_true(res.executed);
	assert_string_equal(res.operation, "policy-activate");
	KT_OK(kiln_store_policy_active(k.store, "gadget", &active, &d));
	assert_int_equal(active.version, added.version);
	kiln_policy_rec_cleanup(&active);
	assert_int_equal(kt_count_events(&k, "policy-activate"), 1);
	assert_int_equal(kt_count_events(&k, "request-executed"), 1);
	assert_int_equal(kt_count_events(&k, "approval"), 2);
	KT_ERR(approve(q.id, 3, &q, &res, &d), KILN_ERR_APPROVAL_ROLE);
	KT_ERR(approve(q.id, 0, &q, &res, &d), KILN_ERR_APPROVAL_SELF);
	KT_ERR(approve("req-none", 1, &q, &res, &d), KILN_ERR_REQUEST_UNKNOWN);
}

struct exec_work {
	const char *id;
};

static kiln_result exec_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct exec_work *w = ctx;

	return kiln_govern_tx_executed(tx, w->id, "adopter", 0, d);
}

/* How another operation adopts the mechanism: create, approve, check, execute once. */
static void test_adopter(void **state)
{
	json_t *p = json_pack("{s:s}", "ca", "production-issuing");
	struct kiln_request_rec q;
	struct kiln_approve_result res;
	struct exec_work w;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_request_create(k.store, &rules, KILN_OP_CA_ROTATE, p, "o3", 0, &q, &d));
	w.id = q.id;
	KT_ERR(kiln_store_write(k.store, exec_fn, &w, &d), KILN_ERR_APPROVALS_MISSING);
	KT_OK(approve(q.id, 0, &q, &res, &d));
	KT_OK(approve(q.id, 1, &q, &res, &d));
	assert_false(res.executed); /* without an executor, the operation runs when asked again */
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_REVOKE_BULK, p, "adopter", 0, NULL, &d),
	       KILN_ERR_REQUEST_MISMATCH);
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_check(k.store, q.id, KILN_OP_CA_ROTATE, p, "adopter", 0, NULL, &d));
	KT_OK(kiln_store_write(k.store, exec_fn, &w, &d));
	KT_ERR(kiln_store_write(k.store, exec_fn, &w, &d), KILN_ERR_REQUEST_EXECUTED);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_CA_ROTATE, p, "adopter", 0, NULL, &d),
	       KILN_ERR_REQUEST_EXECUTED);
	json_decref(p);
}

/* An executor: counts its calls; run fails when told to, or records an event. */
struct fake_exec {
	int prepared, ran;
	bool fail_prepare, fail_run;
};

static kiln_result fake_prepare(void *ctx, const struct kiln_request_rec *q, kiln_diag *d)
{
	struct fake_exec *x = ctx;

	(void)q;
	x->prepared++;
	return x->fail_prepare ? kiln_diag_set(d, KILN_ERR_NOT_FOUND, "nothing to do") : kiln_ok();
}

static kiln_result fake_run(kiln_store_tx *tx, void *ctx, const struct kiln_request_rec *q,
			    const char *approver, int64_t now, int64_t *affected, kiln_diag *d)
{
	struct fake_exec *x = ctx;
	struct kiln_event_rec ev = { 0 };

	x->ran++;
	if (x->fail_run)
		return kiln_diag_set(d, KILN_ERR_ALREADY_REVOKED, "run failed");
	ev.time = now;
	kiln_strtrunc(ev.type, "fake-run", sizeof(ev.type));
	kiln_strtrunc(ev.actor, approver, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, q->id, sizeof(ev.subject));
	ev.detail_json = (char *)"{}";
	*affected = 7;
	return kiln_store_tx_event_add(tx, &ev, d);
}

/*
 * An operation with an executor (the CA's recalls): it runs in the approval
 * that completes the quorum, not before; a failing prepare or run refuses
 * that approval and changes nothing; a revoke-bulk request cannot complete
 * its quorum without its executor; and it runs once.
 */
static void test_executor(void **state)
{
	json_t *p = json_pack("{s:s,s:s}", "lot", "LOT-X", "reason", "superseded");
	struct fake_exec x = { 0 };
	struct kiln_govern_exec ex = { KILN_OP_REVOKE_BULK, fake_prepare, fake_run, &x };
	struct kiln_govern_exec bad = { KILN_OP_REVOKE_BULK, NULL, fake_run, &x };
	struct kiln_request_rec q;
	struct kiln_approve_result res;
	int64_t approvals0;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_request_create(k.store, &rules, KILN_OP_REVOKE_BULK, p, "cli:someone", 0,
					 &q, &d));
	KT_ERR(approve_ex(q.id, 0, &q, &bad, &res, &d), KILN_ERR_ARG);
	KT_OK(approve_ex(q.id, 0, &q, &ex, &res, &d));
	assert_false(res.executed);
	assert_int_equal(x.prepared, 0);
	assert_int_equal(x.ran, 0);
	approvals0 = kt_count(&k, "approvals");
	/* Without the executor the quorum-completing approval is refused. */
	KT_ERR(approve(q.id, 1, &q, &res, &d), KILN_ERR_INTERNAL);
	assert_non_null(strstr(d.text, "cannot run it"));
	/* prepare refuses: the approval is refused, nothing ran. */
	x.fail_prepare = true;
	KT_ERR(approve_ex(q.id, 1, &q, &ex, &res, &d), KILN_ERR_NOT_FOUND);
	assert_int_equal(x.ran, 0);
	/* run fails: the approval is rolled back with it. */
	x.fail_prepare = false;
	x.fail_run = true;
	KT_ERR(approve_ex(q.id, 1, &q, &ex, &res, &d), KILN_ERR_ALREADY_REVOKED);
	assert_int_equal(kt_count(&k, "approvals"), approvals0);
	assert_int_equal(kt_count_events(&k, "fake-run"), 0);
	/* The quorum lands: prepare, run, executed, in one transaction. */
	x.fail_run = false;
	KT_OK(approve_ex(q.id, 1, &q, &ex, &res, &d));
	assert_true(res.executed);
	assert_int_equal(res.affected, 7);
	assert_int_equal(res.approvals, 2);
	assert_string_equal(res.operation, "revoke-bulk");
	assert_int_equal(kt_count_events(&k, "fake-run"), 1);
	/* Once: a third approval is refused before anything runs. */
	x.ran = 0;
	x.prepared = 0;
	KT_ERR(approve_ex(q.id, 2, &q, &ex, &res, &d), KILN_ERR_REQUEST_EXECUTED);
	assert_int_equal(x.ran, 0);
	assert_int_equal(kt_count_events(&k, "fake-run"), 1);
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify_every_key_type),
		cmocka_unit_test(test_signer),
		cmocka_unit_test(test_policy_activation),
		cmocka_unit_test(test_adopter),
		cmocka_unit_test(test_executor),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
