/*
 * src/govern/request.c: operation names, canonical bytes and digest, request
 * creation with its event, the check before a gated operation runs (each
 * refusal in order, each an event), execution once, and the bootstrap.
 */
#include "support/ca_fixture.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <string.h>

static struct kt_deploy k;
static struct kiln_govern_rules rules;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "govern-request", KILN_ALG_P256, false);
	for (unsigned i = 0; i < KILN_OP__COUNT; i++)
		rules.quorum[i] = 2;
	rules.ttl_s = 3600;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static void test_op_names(void **state)
{
	kiln_op op;

	(void)state;
	assert_string_equal(kiln_op_name(KILN_OP_POLICY_ACTIVATE), "policy-activate");
	assert_string_equal(kiln_op_name(KILN_OP_IDENTITY_ADD), "identity-add");
	assert_string_equal(kiln_op_name(KILN_OP_REVOKE_BULK), "revoke-bulk");
	assert_string_equal(kiln_op_name(KILN_OP_CA_ROTATE), "ca-rotate");
	assert_string_equal(kiln_op_name(KILN_OP_BACKUP_RESTORE), "backup-restore");
	assert_string_equal(kiln_op_name(KILN_OP__COUNT), "unknown");
	for (unsigned i = 0; i < KILN_OP__COUNT; i++) {
		KT_OK(kiln_op_parse(kiln_op_name((kiln_op)i), &op));
		assert_int_equal(op, i);
	}
	KT_ERR(kiln_op_parse("policy_activate", &op), KILN_ERR_ARG);
	KT_ERR(kiln_op_parse(NULL, &op), KILN_ERR_ARG);
}

static void test_canonical_and_digest(void **state)
{
	static const char want[] = "kiln-request-v1\nid=req-1\noperation=policy-activate\n"
				   "params={\"a\":1,\"b\":\"x\"}\nrequester=alice\nexpires=1795364763\n";
	struct kiln_request_rec q = { 0 };
	json_t *p = json_pack("{s:s,s:i}", "b", "x", "a", 1);
	uint8_t md[32], d2[32];
	kiln_buf b;

	(void)state;
	(void)snprintf(q.id, sizeof(q.id), "req-1");
	(void)snprintf(q.operation, sizeof(q.operation), "policy-activate");
	KT_OK(kiln_govern_params(p, q.params_json, sizeof(q.params_json)));
	assert_string_equal(q.params_json, "{\"a\":1,\"b\":\"x\"}"); /* sorted, compact */
	(void)snprintf(q.requester, sizeof(q.requester), "alice");
	q.expires = 1795364763;
	kiln_buf_init(&b, 4096);
	KT_OK(kiln_govern_canonical(&q, &b));
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.ptr, want, b.len);
	(void)SHA256((const uint8_t *)want, strlen(want), md);
	KT_OK(kiln_govern_digest(&q, d2));
	assert_memory_equal(md, d2, 32);
	/* Any field changes the digest. */
	q.expires++;
	KT_OK(kiln_govern_digest(&q, d2));
	assert_memory_not_equal(md, d2, 32);
	kiln_buf_cleanup(&b);
	/* Parameters that do not fit are refused, not cut. */
	{
		char small[8];

		KT_ERR(kiln_govern_params(p, small, sizeof(small)), KILN_ERR_TOO_BIG);
	}
	json_decref(p);
}

static void test_create_and_check(void **state)
{
	struct kiln_request_rec q, got;
	json_t *p = json_pack("{s:s}", "lot", "LOT-1"), *other = json_pack("{s:s}", "lot", "LOT-2");
	int64_t refused0 = kt_count_events(&k, "request-refused"), now = kiln_now();
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_request_create(k.store, &rules, KILN_OP_REVOKE_BULK, p, "alice", now, &q,
					 &d));
	assert_memory_equal(q.id, "req-", 4);
	assert_int_equal(strlen(q.id), 28);
	assert_int_equal(q.quorum, 2);
	assert_int_equal(q.expires, now + 3600);
	assert_int_equal(kt_count_events(&k, "request"), 1);
	KT_OK(kiln_store_request_get(k.store, q.id, &got, &d));
	assert_memory_equal(got.digest, q.digest, 32);
	/* The refusals, in order, each an event. */
	KT_ERR(kiln_govern_check(k.store, "req-none", KILN_OP_REVOKE_BULK, p, "bob", now, NULL, &d),
	       KILN_ERR_REQUEST_UNKNOWN);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_CA_ROTATE, p, "bob", now, NULL, &d),
	       KILN_ERR_REQUEST_MISMATCH);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_REVOKE_BULK, other, "bob", now, NULL, &d),
	       KILN_ERR_REQUEST_MISMATCH);
	assert_non_null(strstr(d.text, "not for revoke-bulk {\"lot\":\"LOT-2\"}"));
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_REVOKE_BULK, p, "bob", now + 3600, NULL, &d),
	       KILN_ERR_REQUEST_EXPIRED);
	kiln_diag_clear(&d);
	KT_ERR(kiln_govern_check(k.store, q.id, KILN_OP_REVOKE_BULK, p, "bob", now, &got, &d),
	       KILN_ERR_APPROVALS_MISSING);
	assert_non_null(strstr(d.text, "has 0 of the 2 officer approvals"));
	assert_int_equal(kt_count_events(&k, "request-refused"), refused0 + 5);
	/* Invalid rules make no request. */
	rules.quorum[KILN_OP_CA_ROTATE] = 0;
	KT_ERR(kiln_govern_request_create(k.store, &rules, KILN_OP_CA_ROTATE, p, "alice", now, &q,
					  &d),
	       KILN_ERR_ARG);
	rules.quorum[KILN_OP_CA_ROTATE] = 2;
	json_decref(p);
	json_decref(other);
}

static void test_bootstrap(void **state)
{
	struct kiln_identity_result res;
	struct kiln_identity_req req = { "boot-1", "officer", KILN_ENV_NONE, kiln_slice_of(NULL, 0),
					 "test", &rules, NULL };
	bool gated = true;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_govern_identity_gated(k.store, &rules, "engineer", &gated, &d));
	assert_false(gated);
	KT_OK(kiln_govern_identity_gated(k.store, &rules, "officer", &gated, &d));
	assert_false(gated);
	kiln_identity_result_init(&res);
	KT_OK(kiln_ca_identity_add(k.ca, &req, &res, &d));
	kiln_identity_result_cleanup(&res);
	KT_OK(kiln_govern_identity_gated(k.store, &rules, "admin", &gated, &d));
	assert_false(gated); /* one officer of two */
	req.name = "boot-2";
	kiln_identity_result_init(&res);
	KT_OK(kiln_ca_identity_add(k.ca, &req, &res, &d));
	kiln_identity_result_cleanup(&res);
	assert_int_equal(kt_count_events(&k, "bootstrap"), 2);
	KT_OK(kiln_govern_identity_gated(k.store, &rules, "admin", &gated, &d));
	assert_true(gated);
	KT_OK(kiln_govern_identity_gated(k.store, &rules, "station", &gated, &d));
	assert_false(gated);
	/* Without the holder's CSR, a gated addition makes nothing. */
	req.name = "boot-3";
	kiln_identity_result_init(&res);
	KT_ERR(kiln_ca_identity_add(k.ca, &req, &res, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "give the holder's CSR with --csr"));
	kiln_identity_result_cleanup(&res);
	assert_int_equal(kt_count(&k, "identities"), 2);
}

static kiln_result boot_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	(void)ctx;
	return kiln_govern_tx_bootstrap(tx, &rules, "late", "officer", "test", d);
}

/* Past the bootstrap, the in-transaction check refuses too. */
static void test_bootstrap_closed(void **state)
{
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(k.store, boot_fn, NULL, &d), KILN_ERR_APPROVALS_MISSING);
	assert_non_null(strstr(d.text, "the deployment has 2 officers"));
}

/* How a request is shown (kiln request, GET /v1/requests): its state at a time, its JSON. */
static void test_presentation(void **state)
{
	struct kiln_request_rec q;
	json_t *j;

	(void)state;
	memset(&q, 0, sizeof(q));
	(void)snprintf(q.id, sizeof(q.id), "%s", "req-1");
	(void)snprintf(q.operation, sizeof(q.operation), "%s", "policy-activate");
	(void)snprintf(q.params_json, sizeof(q.params_json), "%s", "{\"product\":\"widget\"}");
	(void)snprintf(q.requester, sizeof(q.requester), "%s", "cli:root");
	(void)snprintf(q.status, sizeof(q.status), "%s", "pending");
	memset(q.digest, 0xab, sizeof(q.digest));
	q.quorum = 2;
	q.created = 1000;
	q.expires = 2000;
	q.approvals = 1;
	assert_string_equal(kiln_govern_request_state(&q, 1500), "pending");
	assert_string_equal(kiln_govern_request_state(&q, 2000), "expired");
	q.approvals = 2;
	assert_string_equal(kiln_govern_request_state(&q, 1500), "approved");
	(void)snprintf(q.status, sizeof(q.status), "%s", "executed");
	assert_string_equal(kiln_govern_request_state(&q, 5000), "executed");
	j = kiln_govern_request_json(&q, 1500);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "id")), "req-1");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "executed");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "params"), "product")),
			    "widget");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "digest"))), 64);
	assert_int_equal(json_integer_value(json_object_get(j, "quorum")), 2);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_presentation),
		cmocka_unit_test(test_canonical_and_digest),
		cmocka_unit_test(test_create_and_check),
		cmocka_unit_test(test_bootstrap),
		cmocka_unit_test(test_bootstrap_closed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
