/*
 * src/server/routes_log.c: the log routes called directly over a real
 * deployment (SoftHSM2 tokens, the log key in the service token, a device
 * provisioned so that its issuance can be proved): answers checked with the
 * ledger's own verifiers, refusals as problems with their audit events.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app;
static kiln_ledger *ledger;
static kiln_signer signer;
static kiln_key_ref ref;
static struct kiln_checkpoint_rec first, second;

static const struct kiln_principal auditor = { "aud-1", "auditor", KILN_ROLE_AUDITOR, "", "" };
static const struct kiln_station station = { "st-1", "station", "" };

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };
	struct kiln_ledger_opts lo = { 0 };
	struct kiln_batch_req br = { "widget-test", "LOT-LOG", 10, "L2", NULL, "eng-7" };
	struct kiln_batch_rec rec;
	struct kiln_begin_result b;
	struct kiln_provision_req pr;
	struct kiln_issue_result prov;
	uint8_t pub[32];
	bool created, repeated;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	kt_deploy_up(&k, "server-routes-log", KILN_ALG_P256, false);
	kiln_diag_clear(&d);
	KT_OK(kiln_ledger_key_ensure(k.tokens[KILN_ENV_SERVICE], &ref, pub, &created, &d));
	signer = kiln_token_signer(k.tokens[KILN_ENV_SERVICE]);
	lo = (struct kiln_ledger_opts){ k.store, &signer, &ref, NULL, pub, NULL };
	KT_OK(kiln_ledger_open(&lo, &ledger, &d));
	KT_OK(kiln_ledger_checkpoint(ledger, &first, NULL, &d));
	KT_OK(kiln_ca_batch_open(k.ca, &br, &rec, &d));
	KT_OK(kiln_ca_provision_begin(k.ca, "LOT-LOG", &station, 60, &b, &d));
	kt_make_csr("p256", "WT-LOG-1", NULL, &csr, NULL);
	pr = (struct kiln_provision_req){ .station = &station,
					  .nonce = b.nonce,
					  .csr = kiln_buf_view(&csr),
					  .device_serial = "WT-LOG-1",
					  .firmware_version = "2.0.0" };
	kiln_issue_result_init(&prov);
	if (!kiln_is_ok(kiln_ca_provision_finish(k.ca, &pr, &prov, &repeated, &d)))
		fail_msg("provision: %s", d.text);
	kiln_issue_result_cleanup(&prov);
	kiln_buf_cleanup(&csr);
	KT_OK(kiln_ledger_checkpoint(ledger, &second, NULL, &d));
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 0, .log = &k.log, .ledger = ledger };
	KT_OK(kiln_app_new(&o, &app, NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_app_free(app);
	kiln_ledger_free(ledger);
	kt_deploy_down(&k);
	return 0;
}

struct call {
	kiln_result r;
	kiln_diag d;
	int status;
	kiln_buf body;
	json_t *json;
};

static void call(kiln_app *a, kiln_handler_fn fn, const char *path, const char *query,
		 struct call *c)
{
	struct kiln_request req = { 0 };
	struct kiln_response res;

	memset(c, 0, sizeof(*c));
	req.method = "GET";
	req.path = path;
	req.query = query;
	req.who = &auditor;
	req.peer = "127.0.0.1:40002";
	req.request_id = "log-1";
	kiln_response_init(&res);
	kiln_diag_clear(&c->d);
	c->r = fn(a, &req, &res, &c->d);
	if (!kiln_is_ok(c->r)) {
		kiln_response_cleanup(&res);
		kiln_response_init(&res);
		KT_OK(kiln_problem(c->r, &c->d, path, &res));
	}
	c->status = res.status;
	kiln_buf_init(&c->body, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append_slice(&c->body, kiln_buf_view(&res.body)));
	if (strncmp(res.content_type, "text/plain", 10) != 0)
		KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, &c->json,
				      NULL));
	kiln_response_cleanup(&res);
}

static void done(struct call *c)
{
	json_decref(c->json);
	kiln_buf_cleanup(&c->body);
}

static void hex32(const json_t *j, const char *key, uint8_t out[32])
{
	size_t len = 0;

	KT_OK(kiln_hex_decode(json_string_value(json_object_get(j, key)), out, 32, &len));
	assert_int_equal(len, 32);
}

static void path_of(const json_t *arr, struct kiln_merkle_proof *p)
{
	size_t len;

	p->n = json_array_size(arr);
	for (size_t i = 0; i < p->n; i++)
		KT_OK(kiln_hex_decode(json_string_value(json_array_get(arr, i)), p->hash[i], 32,
				      &len));
}

static void test_checkpoint(void **state)
{
	struct kiln_checkpoint cp;
	struct call c;

	(void)state;
	call(app, route_log_checkpoint, "/v1/log/checkpoint", NULL, &c);
	KT_OK(c.r);
	assert_int_equal(c.status, 200);
	KT_OK(kiln_note_verify(kiln_ledger_key(ledger), kiln_buf_view(&c.body), &cp, NULL));
	assert_int_equal(cp.size, second.size);
	done(&c);
	call(app, route_log_checkpoints, "/v1/log/checkpoints", NULL, &c);
	KT_OK(c.r);
	assert_int_equal(json_array_size(c.json), 2);
	done(&c);
	call(app, route_log_checkpoints, "/v1/log/checkpoints", "start=1000", &c);
	assert_int_equal(json_array_size(c.json), 0);
	done(&c);
}

static void test_inclusion(void **state)
{
	struct kiln_merkle_proof p;
	uint8_t leaf[32], root[32];
	json_t *entries;
	char q[64];
	struct call c, e;

	(void)state;
	call(app, route_log_inclusion, "/v1/log/proof/inclusion", "device=widget-test%2FWT-LOG-1",
	     &c);
	KT_OK(c.r);
	assert_int_equal(json_integer_value(json_object_get(c.json, "size")), second.size);
	hex32(c.json, "leaf_hash", leaf);
	hex32(c.json, "root_hash", root);
	assert_memory_equal(root, second.root, 32);
	path_of(json_object_get(c.json, "inclusion_path"), &p);
	KT_OK(kiln_merkle_verify_inclusion(leaf, (uint64_t)json_integer_value(json_object_get(
							   c.json, "index")),
					   (uint64_t)second.size, &p, root));
	/* The leaf is the issuance event's, as the entries route shows it. */
	(void)snprintf(q, sizeof(q), "start=%lld&end=%lld",
		       (long long)json_integer_value(json_object_get(c.json, "index")),
		       (long long)json_integer_value(json_object_get(c.json, "index")) + 1);
	call(app, route_log_entries, "/v1/log/entries", q, &e);
	KT_OK(e.r);
	entries = e.json;
	assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "type")),
			    "issuance");
	assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0),
							      "leaf_hash")),
			    json_string_value(json_object_get(c.json, "leaf_hash")));
	done(&e);
	done(&c);
	(void)snprintf(q, sizeof(q), "index=2&size=%lld", (long long)first.size);
	call(app, route_log_inclusion, "/v1/log/proof/inclusion", q, &c);
	KT_OK(c.r);
	assert_int_equal(json_integer_value(json_object_get(c.json, "size")), first.size);
	done(&c);
}

static void test_consistency(void **state)
{
	struct kiln_merkle_proof p;
	uint8_t a[32], b[32];
	char q[64];
	struct call c;

	(void)state;
	(void)snprintf(q, sizeof(q), "from=%lld&to=%lld", (long long)first.size,
		       (long long)second.size);
	call(app, route_log_consistency, "/v1/log/proof/consistency", q, &c);
	KT_OK(c.r);
	hex32(c.json, "from_root", a);
	hex32(c.json, "to_root", b);
	path_of(json_object_get(c.json, "consistency_path"), &p);
	KT_OK(kiln_merkle_verify_consistency((uint64_t)first.size, (uint64_t)second.size, a, b,
					     &p));
	done(&c);
}

static void test_refusals(void **state)
{
	static const struct {
		kiln_handler_fn fn;
		const char *query;
		int status;
		const char *detail;
	} bad[] = {
		{ route_log_inclusion, "index=1&bogus=2", 400, "query: unknown parameter 'bogus'" },
		{ route_log_inclusion, NULL, 400, "inclusion proof: give index=N or device=ID" },
		{ route_log_inclusion, "index=1&device=x", 400, "inclusion proof: give index=N" },
		{ route_log_inclusion, "index=99999", 400, "event 99999 is not in the checkpoint" },
		{ route_log_inclusion, "index=1&size=3", 404, "no checkpoint of size 3" },
		{ route_log_inclusion, "device=widget%2Fnope", 404, "" },
		{ route_log_consistency, "from=1", 400, "consistency proof: give from=A and to=B" },
		{ route_log_consistency, "from=0&to=5", 400, "a consistency proof needs 0 < from" },
		{ route_log_entries, "start=5&end=5", 400, "entries: need start < end" },
		{ route_log_entries, "start=0&end=5000", 400, "at most 1000 entries" },
		{ route_log_checkpoints, "size=%zz", 400, "query: size must be" },
	};
	struct call c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t before = kt_count_events(&k, "rejection");

		call(app, bad[i].fn, "/v1/log/x", bad[i].query, &c);
		if (c.status != bad[i].status || strstr(c.d.text, bad[i].detail) == NULL)
			fail_msg("case %zu: %d '%s'", i, c.status, c.d.text);
		assert_int_equal(kt_count_events(&k, "rejection"), before + 1);
		done(&c);
	}
}

static void test_no_ledger(void **state)
{
	struct kiln_app_opts o = { .ca = k.ca, .store = k.store, .log = &k.log };
	kiln_app *bare = NULL;
	struct call c;

	(void)state;
	KT_OK(kiln_app_new(&o, &bare, NULL));
	call(bare, route_log_checkpoint, "/v1/log/checkpoint", NULL, &c);
	assert_int_equal(c.status, 404);
	done(&c);
	kiln_app_free(bare);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_inclusion),
		cmocka_unit_test(test_consistency),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_ledger),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
