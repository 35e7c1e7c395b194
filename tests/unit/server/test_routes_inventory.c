/*
 * Unit tests for src/server/routes_inventory.c: GET /v1/devices/{id} called
 * directly, over a real deployment: every way to name a device, every field
 * of the answer (lineage, components, certificate), and the refusals with
 * their problem and audit event.
 */
#include "support/ca_fixture.h"

#include "server/app_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kt_deploy k;
static kiln_app *app;

static const struct kiln_principal auditor = { "aud-1", "auditor", KILN_ROLE_AUDITOR, "", "" };
static const struct kiln_station station = { "st-1", "station", "" };

/* The device provisioned in setup, with its lineage. */
static struct kiln_issue_result prov;
static int64_t prov_id;

static int setup(void **state)
{
	struct kiln_app_opts o = { 0 };
	struct kiln_batch_req br = { "widget-test", "LOT-INV", 10, "L2", NULL, "eng-7" };
	struct kiln_batch_rec rec;
	struct kiln_begin_result b;
	struct kiln_provision_req pr;
	bool repeated;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	kt_deploy_up(&k, "server-routes-inventory", KILN_ALG_P256, false);
	o = (struct kiln_app_opts){ .ca = k.ca, .store = k.store, .nonce_ttl_s = 0, .log = &k.log, .ledger = NULL };
	KT_OK(kiln_app_new(&o, &app, NULL));
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_batch_open(k.ca, &br, &rec, &d));
	KT_OK(kiln_ca_provision_begin(k.ca, "LOT-INV", &station, 60, &b, &d));
	kt_make_csr("p256", "WT-INV-1", NULL, &csr, NULL);
	pr = (struct kiln_provision_req){ .station = &station,
					  .nonce = b.nonce,
					  .csr = kiln_buf_view(&csr),
					  .device_serial = "WT-INV-1",
					  .firmware_version = "2.0.0",
					  .components_json = "{\"pcb\":\"PCB-9\",\"soc\":\"SOC-9\"}" };
	kiln_issue_result_init(&prov);
	if (!kiln_is_ok(kiln_ca_provision_finish(k.ca, &pr, &prov, &repeated, &d)))
		fail_msg("provision: %s", d.text);
	prov_id = prov.device_id;
	kiln_buf_cleanup(&csr);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_issue_result_cleanup(&prov);
	kiln_app_free(app);
	kt_deploy_down(&k);
	return 0;
}

struct call {
	kiln_result r;
	kiln_diag d;
	int status;
	json_t *json;
};

/* GET /v1/devices/{ref}: the answer's JSON, or the problem's. */
static void get(const char *ref, struct call *c)
{
	struct kiln_request req = { 0 };
	struct kiln_response res;
	char path[256];

	memset(c, 0, sizeof(*c));
	(void)snprintf(path, sizeof(path), "/v1/devices/%s", ref);
	req.method = "GET";
	req.path = path;
	req.params[0] = ref;
	req.n_params = 1;
	req.who = &auditor;
	req.peer = "127.0.0.1:40001";
	req.request_id = "inv-1";
	kiln_response_init(&res);
	kiln_diag_clear(&c->d);
	c->r = route_device_get(app, &req, &res, &c->d);
	if (!kiln_is_ok(c->r)) {
		kiln_response_cleanup(&res);
		kiln_response_init(&res);
		KT_OK(kiln_problem(c->r, &c->d, path, &res));
	} else {
		assert_string_equal(res.content_type, "application/json");
	}
	c->status = res.status;
	KT_OK(kiln_json_parse(kiln_buf_view(&res.body), KILN_BUF_DEFAULT_MAX, &c->json, NULL));
	kiln_response_cleanup(&res);
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	if (s == NULL)
		fail_msg("no string member \"%s\"", key);
	return s;
}

static void test_device_fields(void **state)
{
	struct kiln_cert_rec cert = { 0 };
	const json_t *comp, *c;
	struct call r;

	(void)state;
	get("widget-test/WT-INV-1", &r);
	KT_OK(r.r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "id")), prov_id);
	assert_string_equal(jstr(r.json, "product"), "widget-test");
	assert_string_equal(jstr(r.json, "serial"), "WT-INV-1");
	assert_int_equal(json_integer_value(json_object_get(r.json, "policy_version")), 1);
	assert_string_equal(jstr(r.json, "lot"), "LOT-INV");
	assert_string_equal(jstr(r.json, "station"), "st-1");
	assert_string_equal(jstr(r.json, "operator"), "eng-7");
	assert_string_equal(jstr(r.json, "firmware_version"), "2.0.0");
	assert_string_equal(jstr(r.json, "firmware_sha256"), "");
	assert_string_equal(jstr(r.json, "attestation_sha256"), "");
	assert_string_equal(jstr(r.json, "status"), "active");
	assert_int_equal(strlen(jstr(r.json, "created")), 20);
	/* Components as an object, not as text. */
	comp = json_object_get(r.json, "components");
	assert_true(json_is_object(comp));
	assert_string_equal(jstr(comp, "soc"), "SOC-9");
	assert_string_equal(jstr(comp, "pcb"), "PCB-9");
	assert_int_equal(json_object_size(comp), 2);
	/* The certificate, as the inventory holds it. */
	KT_OK(kiln_store_cert_get(k.store, prov.serial, &cert, NULL));
	c = json_object_get(r.json, "certificate");
	assert_true(json_is_object(c));
	assert_string_equal(jstr(c, "serial"), prov.serial);
	assert_string_equal(jstr(c, "status"), "valid");
	assert_string_equal(jstr(c, "subject"), cert.subject);
	assert_non_null(strstr(jstr(c, "subject"), "WT-INV-1"));
	assert_int_equal(strlen(jstr(c, "not_before")), 20);
	assert_int_equal(strlen(jstr(c, "not_after")), 20);
	assert_true(strcmp(jstr(c, "not_before"), jstr(c, "not_after")) < 0);
	kiln_cert_rec_cleanup(&cert);
	json_decref(r.json);
}

static void test_device_references(void **state)
{
	char id[32];
	struct call r;

	(void)state;
	/* By id, by serial alone, by product/serial: the same device. */
	(void)snprintf(id, sizeof(id), "%lld", (long long)prov_id);
	get(id, &r);
	KT_OK(r.r);
	assert_string_equal(jstr(r.json, "serial"), "WT-INV-1");
	json_decref(r.json);
	get("WT-INV-1", &r);
	KT_OK(r.r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "id")), prov_id);
	json_decref(r.json);
}

static void test_device_without_components(void **state)
{
	struct kiln_issue_req req = { 0 };
	struct kiln_issue_result res;
	const json_t *comp;
	struct call r;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	/* An operator issuance (test product): no lot, no station, no components. */
	kt_make_csr("p256", "WT-OP-1", NULL, &csr, NULL);
	req = (struct kiln_issue_req){ .product = "widget-test", .csr = kiln_buf_view(&csr),
				       .actor = "cli:alice" };
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	get("WT-OP-1", &r);
	KT_OK(r.r);
	comp = json_object_get(r.json, "components");
	assert_true(json_is_object(comp));
	assert_int_equal(json_object_size(comp), 0);
	assert_string_equal(jstr(r.json, "lot"), "");
	assert_string_equal(jstr(r.json, "operator"), "cli:alice");
	json_decref(r.json);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

/* A refusal: its problem and its one rejection event. */
static void refused(const char *ref, kiln_err want, const char *text)
{
	int64_t events = kt_count(&k, "events");
	struct kiln_event_rec *ev = NULL;
	char type[96];
	size_t n = 0;
	struct call r;

	get(ref, &r);
	if (r.r.code != want)
		fail_msg("%s: expected %s, got %s (%s)", ref, kiln_err_info(want)->slug,
			 kiln_err_info(r.r.code)->slug, r.d.text);
	(void)snprintf(type, sizeof(type), "urn:kiln:problem:%s", kiln_err_info(want)->slug);
	assert_string_equal(jstr(r.json, "type"), type);
	assert_int_equal(r.status, kiln_err_info(want)->http_status);
	if (text != NULL && strstr(jstr(r.json, "detail"), text) == NULL)
		fail_msg("expected '%s' in '%s'", text, jstr(r.json, "detail"));
	json_decref(r.json);
	assert_int_equal(kt_count(&k, "events"), events + 1);
	KT_OK(kiln_store_event_list(k.store, events, 0, &ev, &n, NULL));
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].type, "rejection");
	assert_string_equal(ev[0].actor, "aud-1");
	assert_non_null(strstr(ev[0].detail_json, kiln_err_info(want)->slug));
	kiln_store_event_list_free(ev, n);
}

static void test_refusals(void **state)
{
	struct kiln_issue_req req = { 0 };
	struct kiln_issue_result res;
	kiln_buf csr;
	kiln_diag d;

	(void)state;
	refused("999999", KILN_ERR_NOT_FOUND, NULL);
	refused("WT-NOBODY", KILN_ERR_NOT_FOUND, NULL);
	refused("widget/WT-INV-1", KILN_ERR_NOT_FOUND, NULL);
	refused("/WT-INV-1", KILN_ERR_ARG, "product/serial");
	refused("widget-test/", KILN_ERR_ARG, "product/serial");
	/* One serial in two products: ambiguous without the product. */
	kiln_diag_clear(&d);
	KT_OK(kt_policy_add_text(&k, kt_gadget_policy, &d));
	kt_make_csr("p256", "WT-INV-1", NULL, &csr, NULL);
	req = (struct kiln_issue_req){ .product = "gadget", .csr = kiln_buf_view(&csr),
				       .actor = "cli:alice" };
	kiln_issue_result_init(&res);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	refused("WT-INV-1", KILN_ERR_ARG, "product/serial");
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_fields),
		cmocka_unit_test(test_device_references),
		cmocka_unit_test(test_device_without_components),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
