/*
 * Unit tests for src/agent/provision.c: a simulated DICE device provisioned
 * by kiln_agent_provision against a real kiln server started in-process on
 * 127.0.0.1:0 (the kiln application over a whole deployment), as a station
 * identity issued by the deployment: success, a device that has its
 * certificate already, the resend of a pending request whose response was
 * lost, refusals mapped back from problem types to kiln errors, the 429
 * retry, and what becomes of pending.json when the transport or the server
 * fails.
 */
#include "support/srv_fixture.h"

#include "agent/agent_impl.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ devices and files */

static char *st_cert, *st_key, *st2_cert, *st2_key;
static const char *const FW = KILN_SOURCE_DIR "/examples/firmware";

static int setup(void **state)
{
	struct kiln_batch_req br[] = {
		{ "widget", "LOT-A", 100, NULL, NULL, "eng" },
		{ "widget", "LOT-NX", 100, NULL, NULL, "eng" },
		{ "widget", "LOT-SHUT", 100, NULL, NULL, "eng" },
		{ "widget", "LOT-ST2", 100, NULL, "st-2", "eng" },
	};
	struct kiln_batch_rec rec;

	(void)state;
	kt_srv_fixture_up("agent-provision");
	kt_srv_identity("st-1", "station", KILN_ENV_NONE, &st_cert, &st_key);
	kt_srv_identity("st-2", "station", KILN_ENV_NONE, &st2_cert, &st2_key);
	for (size_t i = 0; i < sizeof(br) / sizeof(br[0]); i++)
		KT_OK(kiln_ca_batch_open(kt_srv.k.ca, &br[i], &rec, NULL));
	KT_OK(kiln_ca_batch_close(kt_srv.k.ca, "LOT-SHUT", "eng", NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_srv_stop();
	free(st_cert);
	free(st_key);
	free(st2_cert);
	free(st2_key);
	kt_srv_fixture_down();
	return 0;
}

/* The URL of the kiln server, started if another server (or none) runs. */
static const char *default_url(void)
{
	return kt_srv_default_url();
}

static kiln_client *client_for(const char *url, const char *cert, const char *key, const char *ca)
{
	struct kiln_client_opts o = { url, cert, key, ca, 20000 };
	kiln_client *c = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_client_new(&o, &c, &d)))
		fail_msg("client: %s", d.text);
	return c;
}

/* A simulated DICE device in kt_srv.k.dir/<serial>; returns its directory (caller frees). */
static char *device_new(const char *serial, const char *firmware, const char *version)
{
	struct kiln_dice_sim_opts o = { 0 };
	char *dir = kt_path(kt_srv.k.dir, serial);
	kiln_buf image;
	kiln_diag d;

	kiln_buf_init(&image, 1);
	if (firmware != NULL) {
		kiln_buf_cleanup(&image);
		kt_read_file(firmware, &image);
	}
	o.serial = serial;
	o.firmware = kiln_buf_view(&image);
	o.firmware_version = version;
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_rot_dice_create(dir, &o, &d)))
		fail_msg("device %s: %s", serial, d.text);
	kiln_buf_cleanup(&image);
	return dir;
}

static kiln_rot *boot(const char *dir)
{
	kiln_rot *rot = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_rot_open(dir, &rot, &d)))
		fail_msg("boot %s: %s", dir, d.text);
	return rot;
}

static bool exists(const char *dir, const char *name)
{
	char *p = kt_path(dir, name);
	bool yes = access(p, F_OK) == 0;

	free(p);
	return yes;
}

/* One provisioning run of the device in dir, as the given client. */
static kiln_result provision(kiln_client *c, const char *dir, const char *product, const char *lot,
			     struct kiln_provision_outcome *out, kiln_diag *d)
{
	kiln_rot *rot = boot(dir);
	kiln_result r;

	kiln_diag_clear(d);
	kiln_provision_outcome_init(out);
	r = kiln_agent_provision(c, rot, dir, product, lot, out, d);
	kiln_rot_free(rot);
	return r;
}

/* begin as c into lot: the nonce (32 bytes). */
static void begin(kiln_client *c, const char *lot, uint8_t nonce[32])
{
	json_t *body = json_pack("{s:s}", "lot", lot), *resp = NULL;
	long status = 0;
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_client_call(c, "POST", "/v1/provision/begin", body, &status, &resp, &d));
	assert_int_equal(status, 200);
	kiln_buf_init(&b, 64);
	KT_OK(kiln_base64_decode(kiln_slice_str(json_string_value(json_object_get(resp, "nonce"))), &b));
	assert_int_equal(b.len, 32);
	memcpy(nonce, b.ptr, 32);
	kiln_buf_cleanup(&b);
	json_decref(resp);
	json_decref(body);
}

/* The finish request for a nonce, saved as the device's pending.json; returned too. */
static json_t *write_pending(const char *dir, const uint8_t nonce[32])
{
	kiln_rot *rot = boot(dir);
	char *path = kt_path(dir, "pending.json"), *text;
	json_t *body = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_agent_finish_body(rot, nonce, "dice", &body, &d));
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(text);
	kt_write_file(path, text, strlen(text));
	free(text);
	free(path);
	kiln_rot_free(rot);
	return body;
}

static size_t count_certs(const char *pem)
{
	size_t n = 0;

	for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
		n++;
	return n;
}

static int64_t count_reason(int64_t from, const char *slug)
{
	struct kiln_event_rec *ev = NULL;
	char needle[80];
	size_t n = 0;
	int64_t hits = 0;

	(void)snprintf(needle, sizeof(needle), "\"reason\":\"%s\"", slug);
	KT_OK(kiln_store_event_list(kt_srv.k.store, from, 0, &ev, &n, NULL));
	for (size_t i = 0; i < n; i++)
		hits += strstr(ev[i].detail_json, needle) != NULL;
	kiln_store_event_list_free(ev, n);
	return hits;
}

/* ------------------------------------------------------------ tests */

static void test_success_then_already(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char *dir = device_new("WGT-AG-0001", NULL, NULL);
	char *cert = kt_path(dir, "cert.pem");
	struct kiln_provision_outcome out;
	struct kiln_device_rec dev = { 0 };
	int64_t events, nonces;
	kiln_buf saved;
	struct stat st;
	kiln_diag d;

	(void)state;
	if (!kiln_is_ok(provision(c, dir, "widget", "LOT-A", &out, &d)))
		fail_msg("provision: %s", d.text);
	assert_int_equal(out.status, 201);
	assert_false(out.resumed);
	assert_false(out.already);
	assert_int_equal(strlen(out.cert_serial), KILN_SERIAL_HEX - 1);
	assert_int_equal(count_certs(kiln_buf_cstr(&out.chain_pem)), 3);
	/* The chain is saved; nothing is pending. */
	kt_read_file(cert, &saved);
	assert_string_equal(kiln_buf_cstr(&saved), kiln_buf_cstr(&out.chain_pem));
	kiln_buf_cleanup(&saved);
	assert_int_equal(stat(cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_false(exists(dir, "pending.json"));
	/* The inventory has the device, from this station, in this lot. */
	KT_OK(kiln_store_device_get(kt_srv.k.store, "WGT-AG-0001", &dev, NULL));
	assert_string_equal(dev.cert_serial, out.cert_serial);
	assert_string_equal(dev.station, "st-1");
	assert_string_equal(dev.lot, "LOT-A");
	assert_string_equal(dev.firmware_version, "1.0.0");
	kiln_provision_outcome_cleanup(&out);

	/* Run again: the device holds its certificate; nothing is sent. */
	events = kt_count(&kt_srv.k, "events");
	nonces = kt_count(&kt_srv.k, "nonces");
	KT_OK(provision(c, dir, "widget", "LOT-A", &out, &d));
	assert_true(out.already);
	assert_int_equal(out.status, 0);
	assert_int_equal(kt_count(&kt_srv.k, "events"), events);
	assert_int_equal(kt_count(&kt_srv.k, "nonces"), nonces);
	kiln_provision_outcome_cleanup(&out);
	kiln_provision_outcome_cleanup(NULL);
	kiln_client_free(c);
	free(cert);
	free(dir);
}

static void test_resend_after_lost_response(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char *dir = device_new("WGT-AG-0002", NULL, NULL);
	struct kiln_provision_outcome out;
	uint8_t nonce[32];
	json_t *body, *resp = NULL;
	char first[41];
	int64_t devices;
	long status = 0;
	kiln_diag d;

	(void)state;
	/* The device saved its finish request and sent it; kiln committed; the answer was lost. */
	begin(c, "LOT-A", nonce);
	body = write_pending(dir, nonce);
	kiln_diag_clear(&d);
	KT_OK(kiln_client_call(c, "POST", "/v1/provision/finish", body, &status, &resp, &d));
	assert_int_equal(status, 201);
	KT_OK(kiln_strlcpy(first, json_string_value(json_object_get(resp, "serial")), sizeof(first)));
	json_decref(resp);
	json_decref(body);
	devices = kt_count(&kt_srv.k, "devices");
	assert_false(exists(dir, "cert.pem"));

	/* The next run resends it and receives the very certificate kiln issued. */
	KT_OK(provision(c, dir, "widget", "LOT-A", &out, &d));
	assert_true(out.resumed);
	assert_false(out.already);
	assert_int_equal(out.status, 200);
	assert_string_equal(out.cert_serial, first);
	assert_true(exists(dir, "cert.pem"));
	assert_false(exists(dir, "pending.json"));
	assert_int_equal(kt_count(&kt_srv.k, "devices"), devices);
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(dir);
}

static void test_pending_never_issued_starts_again(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char *dir = device_new("WGT-AG-0003", NULL, NULL);
	struct kiln_provision_outcome out;
	uint8_t nonce[32];
	kiln_diag d;

	(void)state;
	/* A pending request for a nonce kiln never issued (or has forgotten): begin again. */
	KT_OK(kiln_random(nonce, sizeof(nonce)));
	json_decref(write_pending(dir, nonce));
	if (!kiln_is_ok(provision(c, dir, "widget", "LOT-A", &out, &d)))
		fail_msg("provision: %s", d.text);
	assert_true(out.resumed);
	assert_int_equal(out.status, 201);
	assert_true(exists(dir, "cert.pem"));
	assert_false(exists(dir, "pending.json"));
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(dir);
}

static void test_pending_replayed_is_refused(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char *a = device_new("WGT-AG-0004", NULL, NULL), *b = device_new("WGT-AG-0005", NULL, NULL);
	struct kiln_provision_outcome out;
	uint8_t nonce[32];
	json_t *body, *resp = NULL;
	long status = 0;
	kiln_diag d;

	(void)state;
	begin(c, "LOT-A", nonce);
	body = write_pending(a, nonce);
	KT_OK(kiln_client_call(c, "POST", "/v1/provision/finish", body, &status, &resp, NULL));
	assert_int_equal(status, 201);
	json_decref(resp);
	json_decref(body);
	/* Device b holds a request over a's nonce: a replay, final; the next run starts afresh. */
	json_decref(write_pending(b, nonce));
	KT_ERR(provision(c, b, "widget", "LOT-A", &out, &d), KILN_ERR_NONCE_REPLAY);
	assert_non_null(strstr(d.text, "provision/finish refused (HTTP 409)"));
	assert_true(out.resumed);
	assert_false(exists(b, "pending.json"));
	assert_false(exists(b, "cert.pem"));
	kiln_provision_outcome_cleanup(&out);
	KT_OK(provision(c, b, "widget", "LOT-A", &out, &d));
	assert_false(out.resumed);
	assert_int_equal(out.status, 201);
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(a);
	free(b);
}

/* One refused run: the kiln error of the problem type, its detail, and no files left. */
static void refused(kiln_client *c, const char *dir, const char *product, const char *lot,
		    kiln_err want, const char *text)
{
	struct kiln_provision_outcome out;
	kiln_diag d;

	KT_ERR(provision(c, dir, product, lot, &out, &d), want);
	if (text != NULL && strstr(d.text, text) == NULL)
		fail_msg("expected '%s' in '%s'", text, d.text);
	assert_false(exists(dir, "pending.json"));
	assert_false(exists(dir, "cert.pem"));
	kiln_provision_outcome_cleanup(&out);
}

static void test_refusals(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	char *fw = kt_path(FW, "widget-fw-1.1.0.bin");
	char *bad_fw = device_new("WGT-AG-0010", fw, "1.1.0");
	char *dev = device_new("WGT-AG-0011", NULL, NULL);
	char *lier = device_new("WGT-AG-0012", NULL, NULL);
	struct kiln_provision_outcome out;
	int64_t devices = kt_count(&kt_srv.k, "devices");
	kiln_rot *rot;
	kiln_diag d;

	(void)state;
	/* finish refusals, back as the kiln error of the problem type. */
	refused(c, bad_fw, "widget", "LOT-A", KILN_ERR_ATTEST_FIRMWARE,
		"provision/finish refused (HTTP 403)");
	/* begin refusals. */
	refused(c, dev, "widget", "LOT-SHUT", KILN_ERR_BATCH_CLOSED,
		"provision/begin refused (HTTP 409)");
	refused(c, dev, "widget", "LOT-NOPE", KILN_ERR_BATCH_UNKNOWN, "LOT-NOPE");
	refused(c, dev, "widget", "LOT-ST2", KILN_ERR_FORBIDDEN, "st-2");
	/* A device whose CSR is not for its DeviceID key. */
	rot = boot(lier);
	KT_OK(kiln_rot_inject(rot, "csr-other-key"));
	kiln_provision_outcome_init(&out);
	kiln_diag_clear(&d);
	KT_ERR(kiln_agent_provision(c, rot, lier, "widget", "LOT-A", &out, &d),
	       KILN_ERR_ATTEST_KEY);
	assert_int_equal(out.status, 403);
	assert_false(exists(lier, "pending.json"));
	kiln_provision_outcome_cleanup(&out);
	kiln_rot_free(rot);
	/* The lot's product is not the one the station expects: nothing is finished. */
	refused(c, dev, "gadget", "LOT-A", KILN_ERR_ARG, "lot LOT-A is for product widget, not gadget");
	assert_int_equal(kt_count(&kt_srv.k, "devices"), devices);
	/* And with no product named, any lot's product will do. */
	KT_OK(provision(c, dev, NULL, "LOT-A", &out, &d));
	assert_int_equal(out.status, 201);
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(fw);
	free(bad_fw);
	free(dev);
	free(lier);
}

static void test_transport_error_keeps_pending(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file), *dead;
	char *dir = device_new("WGT-AG-0020", NULL, NULL), *pending = kt_path(dir, "pending.json");
	struct kiln_provision_outcome out;
	kiln_buf before, after;
	uint8_t nonce[32];
	char url[64];
	kiln_diag d;
	int dead_fd;

	(void)state;
	begin(c, "LOT-A", nonce);
	json_decref(write_pending(dir, nonce));
	kt_read_file(pending, &before);
	/* The link is down: an error, and the request stays to be sent again. */
	(void)snprintf(url, sizeof(url), "https://127.0.0.1:%d", kt_dead_port(&dead_fd));
	dead = client_for(url, st_cert, st_key, kt_srv.ca_file);
	KT_ERR(provision(dead, dir, "widget", "LOT-A", &out, &d), KILN_ERR_IO);
	(void)close(dead_fd);
	assert_true(out.resumed);
	kiln_provision_outcome_cleanup(&out);
	kt_read_file(pending, &after);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.ptr, before.ptr, before.len);
	kiln_buf_cleanup(&after);
	/* A server the device cannot trust is no better. */
	{
		char *prod = kt_path(kt_srv.k.dir, "production-chain.pem");
		kiln_client *untrusted;
		kiln_buf chain;

		kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
		KT_OK(kiln_ca_chain_pem(kt_srv.k.ca, KILN_ENV_PRODUCTION, &chain, NULL));
		kt_write_file(prod, chain.ptr, chain.len);
		kiln_buf_cleanup(&chain);
		untrusted = client_for(default_url(), st_cert, st_key, prod);
		KT_ERR(provision(untrusted, dir, "widget", "LOT-A", &out, &d), KILN_ERR_IO);
		assert_non_null(strstr(d.text, "certificate"));
		kiln_provision_outcome_cleanup(&out);
		kiln_client_free(untrusted);
		free(prod);
	}
	assert_true(exists(dir, "pending.json"));
	/* Back online: the saved request goes through. */
	KT_OK(provision(c, dir, "widget", "LOT-A", &out, &d));
	assert_true(out.resumed);
	assert_int_equal(out.status, 201);
	assert_false(exists(dir, "pending.json"));
	kiln_provision_outcome_cleanup(&out);
	kiln_buf_cleanup(&before);
	kiln_client_free(dead);
	kiln_client_free(c);
	free(pending);
	free(dir);
}

/* ------------------------------------------------------------ a server that fails */

static kiln_result fake_begin(void *a, const struct kiln_request *req, struct kiln_response *res,
			      kiln_diag *d)
{
	uint8_t nonce[32];
	kiln_buf b64;
	kiln_result r;

	(void)a;
	(void)req;
	(void)d;
	json_t *j;

	kiln_buf_init(&b64, 64);
	KILN_GUARD(kiln_random(nonce, sizeof(nonce)));
	r = kiln_base64_encode(kiln_slice_of(nonce, sizeof(nonce)), &b64);
	j = json_pack("{s:s,s:s,s:s,s:s}", "nonce", kiln_buf_cstr(&b64), "lot", "LOT-A", "product",
		      "widget", "attestation", "dice");
	if (kiln_is_ok(r))
		r = j != NULL ? kiln_json_dump(j, &res->body) : kiln_fail(KILN_ERR_NOMEM);
	json_decref(j);
	kiln_buf_cleanup(&b64);
	return r;
}

static kiln_result fake_finish_busy(void *a, const struct kiln_request *req,
				    struct kiln_response *res, kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)res;
	return kiln_diag_set(d, KILN_ERR_STORE_BUSY, "the inventory is busy");
}

static const struct kiln_route busy_routes[] = {
	{ "POST", "/v1/provision/begin", KILN_ROLE_STATION, fake_begin, false },
	{ "POST", "/v1/provision/finish", KILN_ROLE_STATION, fake_finish_busy, false },
};

static void test_server_failure_keeps_pending(void **state)
{
	struct kiln_server_opts o = { 0 };
	struct kiln_provision_outcome out;
	char *dir = device_new("WGT-AG-0030", NULL, NULL);
	kiln_client *c;
	kiln_diag d;

	(void)state;
	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&kt_srv.tls_chain);
	o.tls_key_pem = kiln_buf_view(&kt_srv.tls_key);
	o.client_ca_pem = kiln_buf_view(&kt_srv.svc_root);
	o.client_chain_pem = kiln_buf_view(&kt_srv.svc_issuing);
	o.routes = busy_routes;
	o.n_routes = 2;
	o.hooks = kiln_app_hooks();
	o.app = kt_srv.app;
	o.log = &kt_srv.k.log;
	o.rate_per_s = 1000;
	o.rate_burst = 1000;
	kt_srv_run(&o, false);
	c = client_for(kt_srv.url, st_cert, st_key, kt_srv.ca_file);
	/* The server could not answer (503): it may have committed; the request is kept. */
	KT_ERR(provision(c, dir, "widget", "LOT-A", &out, &d), KILN_ERR_STORE_BUSY);
	assert_int_equal(out.status, 503);
	assert_non_null(strstr(d.text, "the inventory is busy"));
	assert_true(exists(dir, "pending.json"));
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	/* The real server never issued that nonce: the next run starts again and succeeds. */
	c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	KT_OK(provision(c, dir, "widget", "LOT-A", &out, &d));
	assert_true(out.resumed);
	assert_int_equal(out.status, 201);
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(dir);
}

static void test_rate_limited(void **state)
{
	struct kiln_provision_outcome out;
	char *dir = device_new("WGT-AG-0040", NULL, NULL);
	int64_t from = kt_count(&kt_srv.k, "events");
	struct kiln_server_opts slow;
	kiln_client *c;
	kiln_diag d;

	(void)state;
	/* One request per four seconds: begin passes, finish waits as told and is sent again. */
	slow = kt_srv_app_opts(0.25, 1);
	kt_srv_run(&slow, false);
	c = client_for(kt_srv.url, st_cert, st_key, kt_srv.ca_file);
	if (!kiln_is_ok(provision(c, dir, "widget", "LOT-A", &out, &d)))
		fail_msg("provision: %s", d.text);
	assert_int_equal(out.status, 201);
	assert_true(exists(dir, "cert.pem"));
	assert_true(count_reason(from, "rate-limited") >= 1);
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(c);
	free(dir);
}

/* One provisioning of a new device into lot as c: the nonces it recorded. */
static int64_t provision_new(kiln_client *c, const char *serial, const char *lot)
{
	char *dir = device_new(serial, NULL, NULL);
	struct kiln_provision_outcome out;
	int64_t nonces = kt_count(&kt_srv.k, "nonces");
	kiln_diag d;

	if (!kiln_is_ok(provision(c, dir, "widget", lot, &out, &d)))
		fail_msg("provision %s: %s", serial, d.text);
	assert_int_equal(out.status, 201);
	assert_true(exists(dir, "cert.pem"));
	assert_false(exists(dir, "pending.json"));
	kiln_provision_outcome_cleanup(&out);
	free(dir);
	return kt_count(&kt_srv.k, "nonces") - nonces;
}

/* A next nonce the client keeps, as a finish answer would carry it. */
static void keep_next(kiln_client *c, const uint8_t nonce[32], const char *lot, int64_t expires)
{
	kiln_buf b64;

	kiln_buf_init(&b64, 64);
	KT_OK(kiln_base64_encode(kiln_slice_of(nonce, 32), &b64));
	kiln_client_next_keep(c, json_pack("{s:s,s:I,s:s,s:s,s:s}", "nonce", kiln_buf_cstr(&b64),
					   "expires", (json_int_t)expires, "lot", lot, "product",
					   "widget", "attestation", "dice"));
	kiln_buf_cleanup(&b64);
}

/*
 * A station provisioning device after device: the first begins, each finish
 * asks for the next nonce and the next device uses it (no begin: one nonce
 * recorded per device instead of two). A next nonce for another lot, or about
 * to expire, is not used; one the server refuses as unknown costs a begin and
 * one more try.
 */
static void test_next_nonce_skips_begin(void **state)
{
	kiln_client *c = client_for(default_url(), st_cert, st_key, kt_srv.ca_file);
	uint8_t forged[32];
	int64_t from;

	(void)state;
	assert_int_equal(provision_new(c, "WGT-NX-0001", "LOT-NX"), 2); /* begin's, the next */
	assert_int_equal(provision_new(c, "WGT-NX-0002", "LOT-NX"), 1); /* the next only */
	assert_int_equal(provision_new(c, "WGT-NX-0003", "LOT-NX"), 1);
	/* Another lot: the kept nonce is for LOT-NX; begin. */
	assert_int_equal(provision_new(c, "WGT-NX-0004", "LOT-A"), 2);
	/* A nonce about to expire is not sent. */
	from = kt_count(&kt_srv.k, "events");
	KT_OK(kiln_random(forged, sizeof(forged)));
	keep_next(c, forged, "LOT-A", kiln_now() + KILN_NEXT_NONCE_MARGIN_S - 1);
	assert_int_equal(provision_new(c, "WGT-NX-0005", "LOT-A"), 2);
	assert_int_equal(count_reason(from, "nonce-unknown"), 0);
	/* One the server never issued: refused (one rejection event), then begin and success. */
	from = kt_count(&kt_srv.k, "events");
	keep_next(c, forged, "LOT-A", kiln_now() + 100);
	assert_int_equal(provision_new(c, "WGT-NX-0006", "LOT-A"), 2);
	assert_int_equal(count_reason(from, "nonce-unknown"), 1);
	/* Without a client's kept nonce the take finds nothing; keep NULL drops one. */
	keep_next(c, forged, "LOT-A", kiln_now() + 100);
	kiln_client_next_keep(c, NULL);
	assert_null(kiln_client_next_take(c, "LOT-A"));
	kiln_client_free(c);
}

static void test_finish_body(void **state)
{
	char *dir = device_new("WGT-AG-0050", NULL, NULL);
	kiln_rot *rot = boot(dir);
	uint8_t nonce[32] = { 1, 2, 3 };
	json_t *body = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_agent_finish_body(rot, nonce, "dice", &body, &d));
	assert_non_null(json_object_get(body, "evidence"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "device"), "serial")),
			    "WGT-AG-0050");
	json_decref(body);
	/* A policy without attestation: no evidence member. */
	KT_OK(kiln_agent_finish_body(rot, nonce, "none", &body, &d));
	assert_null(json_object_get(body, "evidence"));
	assert_non_null(json_object_get(body, "csr"));
	json_decref(body);
	KT_OK(kiln_agent_finish_body(rot, nonce, NULL, &body, &d));
	assert_null(json_object_get(body, "evidence"));
	json_decref(body);
	kiln_rot_free(rot);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_then_already),
		cmocka_unit_test(test_resend_after_lost_response),
		cmocka_unit_test(test_pending_never_issued_starts_again),
		cmocka_unit_test(test_pending_replayed_is_refused),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_transport_error_keeps_pending),
		cmocka_unit_test(test_server_failure_keeps_pending),
		cmocka_unit_test(test_rate_limited),
		cmocka_unit_test(test_next_nonce_skips_begin),
		cmocka_unit_test(test_finish_body),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
