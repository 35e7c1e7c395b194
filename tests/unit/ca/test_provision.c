/*
 * Unit tests for src/ca/provision.c: the factory path in-process, over a
 * real deployment (SoftHSM2 tokens, CAs, inventory, both example policies),
 * with real DICE evidence from the device simulator of the agent library.
 * Every refusal is checked for its code, its one audit event and that it
 * wrote nothing else (no device, certificate, budget or nonce use).
 */
#include "support/ca_fixture.h"

#include "kiln/agent.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct kt_deploy k;

static const struct kiln_station st1 = { "st-1", "station", "" };
static const struct kiln_station st2 = { "st-2", "station", "" };
static const struct kiln_station st_test = { "st-t", "station", "test" };
static const struct kiln_station st_prod = { "st-p", "operator", "production" };

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "ca-provision", KILN_ALG_P256, false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static void open_lot(const char *product, const char *lot, int64_t qty, const char *station)
{
	struct kiln_batch_req req = { product, lot, qty, "L1", station, "eng-1" };
	struct kiln_batch_rec rec;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_ca_batch_open(k.ca, &req, &rec, &d)))
		fail_msg("batch open %s: %s", lot, d.text);
}

static void close_lot(const char *lot)
{
	KT_OK(kiln_ca_batch_close(k.ca, lot, "eng-1", NULL));
}

/* A simulated DICE device (state under the deployment's directory), booted. */
static kiln_rot *device_new(const char *serial, const char *firmware, const char *version)
{
	struct kiln_dice_sim_opts o = { 0 };
	char name[96];
	char *dir;
	kiln_buf image;
	kiln_rot *rot = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	(void)snprintf(name, sizeof(name), "dev-%s", serial);
	dir = kt_path(k.dir, name);
	kiln_buf_init(&image, 1);
	if (firmware != NULL) {
		kiln_buf_cleanup(&image);
		kt_read_file(firmware, &image);
	}
	o.serial = serial;
	o.firmware = kiln_buf_view(&image);
	o.firmware_version = version;
	if (!kiln_is_ok(kiln_rot_dice_create(dir, &o, &d)) || !kiln_is_ok(kiln_rot_open(dir, &rot, &d)))
		fail_msg("device %s: %s", serial, d.text);
	kiln_buf_cleanup(&image);
	free(dir);
	return rot;
}

static void begin_ok(const char *lot, const struct kiln_station *st, int64_t ttl,
		     struct kiln_begin_result *out)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_ca_provision_begin(k.ca, lot, st, ttl, out, &d)))
		fail_msg("begin %s: %s", lot, d.text);
}

/* A finish request as a station would send it, built from the device's own parts. */
struct preq {
	uint8_t nonce[KILN_NONCE_LEN];
	kiln_buf csr;
	struct kiln_evidence ev;
	char serial[65];
	char fw[64];
	char comps[1024];
	struct kiln_provision_req req;
};

static void preq_make(struct preq *p, kiln_rot *rot, const uint8_t nonce[KILN_NONCE_LEN],
		      const struct kiln_station *st, bool evidence)
{
	json_t *info = NULL, *ev = NULL;
	char *comps;
	kiln_diag d;

	kiln_diag_clear(&d);
	memset(p, 0, sizeof(*p));
	memcpy(p->nonce, nonce, KILN_NONCE_LEN);
	kiln_buf_init(&p->csr, 65536);
	kiln_evidence_init(&p->ev);
	KT_OK(kiln_rot_csr(rot, &p->csr, &d));
	if (evidence) {
		KT_OK(kiln_rot_evidence(rot, nonce, kiln_buf_view(&p->csr), &ev, &d));
		KT_OK(kiln_evidence_parse(ev, &p->ev, &d));
		json_decref(ev);
	}
	KT_OK(kiln_rot_device_info(rot, &info));
	KT_OK(kiln_strlcpy(p->serial, json_string_value(json_object_get(info, "serial")),
			   sizeof(p->serial)));
	KT_OK(kiln_strlcpy(p->fw, json_string_value(json_object_get(info, "firmware_version")),
			   sizeof(p->fw)));
	comps = json_dumps(json_object_get(info, "components"),
			   JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	assert_non_null(comps);
	KT_OK(kiln_strlcpy(p->comps, comps, sizeof(p->comps)));
	free(comps);
	json_decref(info);
	p->req = (struct kiln_provision_req){ .station = st,
					      .nonce = p->nonce,
					      .csr = kiln_buf_view(&p->csr),
					      .evidence = &p->ev,
					      .device_serial = p->serial,
					      .firmware_version = p->fw,
					      .components_json = p->comps };
}

static void preq_cleanup(struct preq *p)
{
	kiln_buf_cleanup(&p->csr);
	kiln_evidence_cleanup(&p->ev);
}

static kiln_result finish(const struct preq *p, struct kiln_issue_result *res, bool *repeated,
			  kiln_diag *d)
{
	kiln_diag_clear(d);
	kiln_issue_result_init(res);
	return kiln_ca_provision_finish(k.ca, &p->req, res, repeated, d);
}

/* What a refusal must leave alone. */
struct counts {
	int64_t devices, certs, events, nonces, batches;
};

static void snap(struct counts *c)
{
	c->devices = kt_count(&k, "devices");
	c->certs = kt_count(&k, "certificates");
	c->events = kt_count(&k, "events");
	c->nonces = kt_count(&k, "nonces");
	c->batches = kt_count(&k, "batches");
}

/* The newest event: its type, and its detail's "reason" and "operation". */
static void last_event(char type[32], char reason[64], char operation[32], char lot[64])
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	json_t *j;

	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	assert_true(n > 0);
	kiln_strtrunc(type, ev[n - 1].type, 32);
	j = json_loads(ev[n - 1].detail_json, 0, NULL);
	assert_non_null(j);
	kiln_strtrunc(reason, json_string_value(json_object_get(j, "reason")) != NULL ?
				      json_string_value(json_object_get(j, "reason")) : "",
		      64);
	kiln_strtrunc(operation, json_string_value(json_object_get(j, "operation")) != NULL ?
					 json_string_value(json_object_get(j, "operation")) : "",
		      32);
	kiln_strtrunc(lot, json_string_value(json_object_get(j, "lot")) != NULL ?
				   json_string_value(json_object_get(j, "lot")) : "",
		      64);
	json_decref(j);
	kiln_store_event_list_free(ev, n);
}

/* A refusal left exactly one event, of this type and reason, and no other row. */
static void only_event(const struct counts *before, const char *type, kiln_err why,
		       const char *operation)
{
	struct counts now;
	char t[32], reason[64], op[32], lot[64];

	snap(&now);
	assert_int_equal(now.devices, before->devices);
	assert_int_equal(now.certs, before->certs);
	assert_int_equal(now.nonces, before->nonces);
	assert_int_equal(now.batches, before->batches);
	assert_int_equal(now.events, before->events + 1);
	last_event(t, reason, op, lot);
	assert_string_equal(t, type);
	assert_string_equal(reason, kiln_err_info(why)->slug);
	assert_string_equal(op, operation);
}

static int64_t issued(const char *lot)
{
	struct kiln_batch_rec b = { 0 };

	KT_OK(kiln_store_batch_get(k.store, lot, &b, NULL));
	return b.issued;
}

static void nonce_row(const uint8_t nonce[KILN_NONCE_LEN], struct kiln_nonce_rec *out)
{
	uint8_t h[32];

	assert_int_equal(EVP_Digest(nonce, KILN_NONCE_LEN, h, NULL, EVP_sha256(), NULL), 1);
	KT_OK(kiln_store_nonce_get(k.store, h, out, NULL));
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t h[32];

	assert_int_equal(EVP_Digest(p, n, h, NULL, EVP_sha256(), NULL), 1);
	kiln_hex_encode(h, 32, out);
}

static size_t count_certs(const kiln_buf *pem)
{
	size_t n = 0;

	for (const char *p = kiln_buf_cstr(pem); (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL;
	     p++)
		n++;
	return n;
}

/* ------------------------------------------------------------ begin */

static void test_begin(void **state)
{
	struct kiln_begin_result a, b;
	struct kiln_nonce_rec n = { 0 };
	int64_t nonces, now;

	(void)state;
	open_lot("widget", "LOT-BEGIN", 10, NULL);
	nonces = kt_count(&k, "nonces");
	now = kiln_now();
	begin_ok("LOT-BEGIN", &st1, 120, &a);
	assert_string_equal(a.product, "widget");
	assert_string_equal(a.attestation, "dice");
	assert_true(a.expires >= now + 120 && a.expires <= kiln_now() + 120);
	assert_int_equal(kt_count(&k, "nonces"), nonces + 1);
	nonce_row(a.nonce, &n);
	assert_string_equal(n.station, "st-1");
	assert_string_equal(n.lot, "LOT-BEGIN");
	assert_int_equal(n.expires, a.expires);
	assert_int_equal(n.used, 0);
	/* Each begin is a fresh nonce. */
	begin_ok("LOT-BEGIN", &st1, 120, &b);
	assert_memory_not_equal(a.nonce, b.nonce, KILN_NONCE_LEN);
	/* A TTL out of range falls back to the default. */
	begin_ok("LOT-BEGIN", &st1, 0, &b);
	assert_true(b.expires >= now + KILN_NONCE_TTL_DEFAULT &&
		    b.expires <= kiln_now() + KILN_NONCE_TTL_DEFAULT);
	begin_ok("LOT-BEGIN", &st1, 3601, &b);
	assert_true(b.expires <= kiln_now() + KILN_NONCE_TTL_DEFAULT);
	begin_ok("LOT-BEGIN", &st1, 3600, &b);
	assert_true(b.expires >= now + 3600);
	/* A test product's lot says what evidence it needs. */
	open_lot("widget-test", "LOT-BEGIN-T", 10, NULL);
	begin_ok("LOT-BEGIN-T", &st1, 60, &b);
	assert_string_equal(b.product, "widget-test");
	assert_string_equal(b.attestation, "none");
}

/* One begin refusal: its code, an all-zero nonce, one rejection event, no nonce row. */
static void begin_refused(const char *lot, const struct kiln_station *st, kiln_err want,
			  const char *text)
{
	static const uint8_t zero[KILN_NONCE_LEN] = { 0 };
	struct kiln_begin_result out;
	struct counts before;
	char t[32], reason[64], op[32], l[64];
	kiln_diag d;

	snap(&before);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_provision_begin(k.ca, lot, st, 60, &out, &d), want);
	assert_non_null(strstr(d.text, text));
	assert_memory_equal(out.nonce, zero, KILN_NONCE_LEN);
	only_event(&before, "rejection", want, "provision-begin");
	last_event(t, reason, op, l);
	assert_string_equal(l, lot);
}

static void test_begin_refusals(void **state)
{
	struct kiln_begin_result out;

	(void)state;
	begin_refused("LOT-NONE", &st1, KILN_ERR_BATCH_UNKNOWN, "LOT-NONE");
	open_lot("widget", "LOT-SHUT", 10, NULL);
	close_lot("LOT-SHUT");
	begin_refused("LOT-SHUT", &st1, KILN_ERR_BATCH_CLOSED, "closed");
	/* A lot assigned to st-2 is st-2's only. */
	open_lot("widget", "LOT-ST2", 10, "st-2");
	begin_refused("LOT-ST2", &st1, KILN_ERR_FORBIDDEN, "assigned to station st-2");
	begin_ok("LOT-ST2", &st2, 60, &out);
	/* Production and test identities stay on their side. */
	begin_refused("LOT-ST2", &(struct kiln_station){ "st-2", "station", "test" },
		      KILN_ERR_POLICY_ENV, "strictly apart");
	open_lot("widget-test", "LOT-T", 10, NULL);
	begin_refused("LOT-T", &st_prod, KILN_ERR_POLICY_ENV, "strictly apart");
	begin_ok("LOT-T", &st_test, 60, &out);
	open_lot("widget", "LOT-P", 10, NULL);
	begin_refused("LOT-P", &st_test, KILN_ERR_POLICY_ENV, "strictly apart");
	begin_ok("LOT-P", &st_prod, 60, &out);
	/* A lot name no lot can have. */
	begin_refused("../../etc", &st1, KILN_ERR_ARG, "lot");
}

static void test_begin_arguments(void **state)
{
	struct kiln_begin_result out;
	struct counts before;

	(void)state;
	snap(&before);
	KT_ERR(kiln_ca_provision_begin(k.ca, NULL, &st1, 60, &out, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_ca_provision_begin(k.ca, "LOT-P", NULL, 60, &out, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_ca_provision_begin(k.ca, "LOT-P", &(struct kiln_station){ NULL, "station", "" },
				       60, &out, NULL),
	       KILN_ERR_ARG);
	assert_int_equal(kt_count(&k, "events"), before.events);
	assert_int_equal(kt_count(&k, "nonces"), before.nonces);
}

/* ------------------------------------------------------------ finish */

static void test_happy_path_and_lineage(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_device_rec dev = { 0 };
	struct kiln_cert_rec cert = { 0 };
	struct kiln_nonce_rec n = { 0 };
	struct counts before;
	struct preq p;
	kiln_buf fw, digest_in;
	char fw_hex[65], ev_hex[65], cn[80];
	const uint8_t *der;
	uint8_t be[4];
	bool repeated = true;
	X509 *x;
	kiln_rot *rot = device_new("WGT-H-0001", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-HAPPY", 5, NULL);
	begin_ok("LOT-HAPPY", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	snap(&before);
	if (!kiln_is_ok(finish(&p, &res, &repeated, &d)))
		fail_msg("finish: %s", d.text);
	assert_false(repeated);
	assert_true(res.device_id > 0);
	assert_int_equal(res.policy_version, 1);
	assert_int_equal(strlen(res.serial), KILN_SERIAL_HEX - 1);
	/* The chain: device, production issuing CA, production root. */
	assert_int_equal(count_certs(&res.chain_pem), 3);
	der = res.cert_der.ptr;
	x = d2i_X509(NULL, &der, (long)res.cert_der.len);
	assert_non_null(x);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), kiln_rot_public_key(rot)), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "WGT-H-0001");
	X509_free(x);

	/* One device, one certificate, one event; the lot's budget and the nonce are used. */
	assert_int_equal(kt_count(&k, "devices"), before.devices + 1);
	assert_int_equal(kt_count(&k, "certificates"), before.certs + 1);
	assert_int_equal(kt_count(&k, "events"), before.events + 1);
	assert_int_equal(issued("LOT-HAPPY"), 1);
	nonce_row(b.nonce, &n);
	assert_true(n.used != 0);
	assert_string_equal(n.cert_serial, res.serial);

	/* The device row's lineage. */
	KT_OK(kiln_store_device_get(k.store, "WGT-H-0001", &dev, NULL));
	assert_int_equal(dev.id, res.device_id);
	assert_string_equal(dev.product, "widget");
	assert_string_equal(dev.serial, "WGT-H-0001");
	assert_int_equal(dev.policy_version, 1);
	assert_string_equal(dev.lot, "LOT-HAPPY");
	assert_string_equal(dev.station, "st-1");
	assert_string_equal(dev.operator_name, "eng-1");
	assert_string_equal(dev.firmware_version, "1.0.0");
	kt_read_file(KILN_SOURCE_DIR "/examples/firmware/widget-fw-1.0.0.bin", &fw);
	sha256_hex(fw.ptr, fw.len, fw_hex);
	kiln_buf_cleanup(&fw);
	assert_string_equal(dev.firmware_sha256, fw_hex);
	/* The evidence digest, recomputed here from its decoded members. */
	kiln_buf_init(&digest_in, 65536);
	for (int i = 0; i < 3; i++) {
		const kiln_buf *m = i == 0 ? &p.ev.dice.alias_cert :
				    i == 1 ? &p.ev.dice.deviceid_cert : &p.ev.dice.signature;

		be[0] = (uint8_t)(m->len >> 24);
		be[1] = (uint8_t)(m->len >> 16);
		be[2] = (uint8_t)(m->len >> 8);
		be[3] = (uint8_t)m->len;
		KT_OK(kiln_buf_append(&digest_in, be, 4));
		KT_OK(kiln_buf_append(&digest_in, m->ptr, m->len));
	}
	assert_true(p.ev.dice.alias_cert.len > 0 && p.ev.dice.signature.len > 0);
	sha256_hex(digest_in.ptr, digest_in.len, ev_hex);
	kiln_buf_cleanup(&digest_in);
	assert_string_equal(dev.attestation_sha256, ev_hex);
	assert_string_equal(dev.components_json, p.comps);
	assert_non_null(strstr(dev.components_json, "\"soc\":"));
	assert_string_equal(dev.cert_serial, res.serial);
	assert_string_equal(dev.status, "active");

	/* The certificate row points back at the device. */
	KT_OK(kiln_store_cert_get(k.store, res.serial, &cert, NULL));
	assert_string_equal(cert.kind, "device");
	assert_string_equal(cert.product, "widget");
	assert_string_equal(cert.env, "production");
	assert_int_equal(cert.device_id, res.device_id);
	assert_int_equal(cert.der_len, res.cert_der.len);
	assert_memory_equal(cert.der, res.cert_der.ptr, cert.der_len);
	kiln_cert_rec_cleanup(&cert);
	assert_int_equal(kt_count_events(&k, "issuance"), 1);

	/* ------------------------------------------------ the same request again */
	{
		struct kiln_issue_result again;
		struct counts mid;

		snap(&mid);
		KT_OK(finish(&p, &again, &repeated, &d));
		assert_true(repeated);
		assert_string_equal(again.serial, res.serial);
		assert_int_equal(again.device_id, res.device_id);
		assert_int_equal(again.cert_der.len, res.cert_der.len);
		assert_memory_equal(again.cert_der.ptr, res.cert_der.ptr, res.cert_der.len);
		assert_string_equal(kiln_buf_cstr(&again.chain_pem), kiln_buf_cstr(&res.chain_pem));
		kiln_issue_result_cleanup(&again);
		/* Even once the lot is closed: the answer to a lost response issues nothing. */
		close_lot("LOT-HAPPY");
		snap(&mid);
		KT_OK(finish(&p, &again, &repeated, &d));
		assert_true(repeated);
		assert_string_equal(again.serial, res.serial);
		kiln_issue_result_cleanup(&again);
		assert_int_equal(kt_count(&k, "devices"), mid.devices);
		assert_int_equal(kt_count(&k, "certificates"), mid.certs);
		assert_int_equal(kt_count(&k, "events"), mid.events);
		assert_int_equal(issued("LOT-HAPPY"), 1);
	}
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

/* Runs a finish that must be refused with want, leaving only its event. */
static void finish_refused(const struct preq *p, kiln_err want, const char *type, const char *text)
{
	struct kiln_issue_result res;
	struct counts before;
	bool repeated = true;
	kiln_diag d;

	snap(&before);
	KT_ERR(finish(p, &res, &repeated, &d), want);
	if (text != NULL && strstr(d.text, text) == NULL)
		fail_msg("expected '%s' in '%s'", text, d.text);
	assert_false(repeated);
	assert_int_equal(res.cert_der.len, 0);
	assert_int_equal(res.chain_pem.len, 0);
	kiln_issue_result_cleanup(&res);
	only_event(&before, type, want, "provision");
}

static void test_replay(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_nonce_rec n = { 0 };
	struct preq p, other, changed;
	bool repeated;
	kiln_rot *a = device_new("WGT-R-0001", NULL, NULL);
	kiln_rot *c = device_new("WGT-R-0002", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-REPLAY", 10, NULL);
	begin_ok("LOT-REPLAY", &st1, 120, &b);
	preq_make(&p, a, b.nonce, &st1, true);
	KT_OK(finish(&p, &res, &repeated, &d));
	assert_false(repeated);
	/* Another device with the used nonce: a replay, naming the certificate it got. */
	preq_make(&other, c, b.nonce, &st1, true);
	finish_refused(&other, KILN_ERR_NONCE_REPLAY, "rejection", res.serial);
	/* The same device, but a request that differs (the components it claims). */
	preq_make(&changed, a, b.nonce, &st1, true);
	KT_OK(kiln_strlcpy(changed.comps, "{\"soc\":\"SOC-OTHER\"}", sizeof(changed.comps)));
	finish_refused(&changed, KILN_ERR_NONCE_REPLAY, "rejection", "already used");
	nonce_row(b.nonce, &n);
	assert_string_equal(n.cert_serial, res.serial);
	assert_int_equal(issued("LOT-REPLAY"), 1);
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	preq_cleanup(&other);
	preq_cleanup(&changed);
	kiln_rot_free(a);
	kiln_rot_free(c);
}

/*
 * The next nonce: filled only when the commit recorded it (bound to the
 * station and the lot, with the TTL asked), used by the next device in
 * place of a begin; zeroed by a refusal; none once the lot's budget is spent.
 */
static void test_next_nonce(void **state)
{
	static const uint8_t zero[KILN_NONCE_LEN];
	struct kiln_begin_result b, next, next2;
	struct kiln_issue_result res;
	struct kiln_nonce_rec n = { 0 };
	struct preq p, q;
	bool repeated;
	kiln_rot *a = device_new("WGT-NX-0001", NULL, NULL);
	kiln_rot *c = device_new("WGT-NX-0002", NULL, NULL);
	int64_t now = kiln_now();
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-NEXT", 2, NULL);
	begin_ok("LOT-NEXT", &st1, 120, &b);
	preq_make(&p, a, b.nonce, &st1, true);
	p.req.next = &next;
	p.req.next_ttl_s = 30;
	KT_OK(finish(&p, &res, &repeated, &d));
	assert_true(next.expires >= now + 30 && next.expires <= kiln_now() + 30);
	assert_string_equal(next.lot, "LOT-NEXT");
	assert_string_equal(next.product, "widget");
	assert_string_equal(next.attestation, "dice");
	assert_memory_not_equal(next.nonce, zero, sizeof(zero));
	nonce_row(next.nonce, &n);
	assert_string_equal(n.station, "st-1");
	assert_string_equal(n.lot, "LOT-NEXT");
	assert_int_equal(n.used, 0);
	kiln_issue_result_cleanup(&res);

	/* Another station cannot use it: refused, and the refusal's next nonce is wiped. */
	preq_make(&q, c, next.nonce, &st2, true);
	q.req.next = &next2;
	memset(&next2, 0xaa, sizeof(next2));
	finish_refused(&q, KILN_ERR_NONCE_STATION, "rejection", "st-1");
	assert_int_equal(next2.expires, 0);
	assert_memory_equal(next2.nonce, zero, sizeof(zero));
	preq_cleanup(&q);

	/* The next device of st-1 on it: issued without a begin; the lot's last unit, so no next. */
	preq_make(&q, c, next.nonce, &st1, true);
	q.req.next = &next2;
	KT_OK(finish(&q, &res, &repeated, &d));
	assert_false(repeated);
	assert_int_equal(next2.expires, 0);
	assert_memory_equal(next2.nonce, zero, sizeof(zero));
	assert_int_equal(issued("LOT-NEXT"), 2);
	kiln_issue_result_cleanup(&res);

	/* The same request again: answered as a repeat, with no next nonce. */
	KT_OK(finish(&q, &res, &repeated, &d));
	assert_true(repeated);
	assert_int_equal(next2.expires, 0);
	kiln_issue_result_cleanup(&res);

	/* No next nonce was handed out past the budget: a begin now says why. */
	begin_refused("LOT-NEXT", &st1, KILN_ERR_BATCH_QUOTA, "issued all 2");
	preq_cleanup(&p);
	preq_cleanup(&q);
	kiln_rot_free(a);
	kiln_rot_free(c);
}

static void test_unknown_nonce(void **state)
{
	uint8_t nonce[KILN_NONCE_LEN];
	struct preq p;
	kiln_rot *rot = device_new("WGT-U-0001", NULL, NULL);

	(void)state;
	KT_OK(kiln_random(nonce, sizeof(nonce)));
	preq_make(&p, rot, nonce, &st1, true);
	finish_refused(&p, KILN_ERR_NONCE_UNKNOWN, "rejection", NULL);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_nonce_of_another_station(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_nonce_rec n = { 0 };
	struct preq p;
	bool repeated;
	kiln_rot *rot = device_new("WGT-S-0001", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-STATION", 10, NULL);
	begin_ok("LOT-STATION", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st2, true);
	finish_refused(&p, KILN_ERR_NONCE_STATION, "rejection", "st-1");
	nonce_row(b.nonce, &n);
	assert_int_equal(n.used, 0);
	/* The station it was issued to can still use it. */
	p.req.station = &st1;
	KT_OK(finish(&p, &res, &repeated, &d));
	assert_false(repeated);
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_expired_nonce(void **state)
{
	struct kiln_begin_result b;
	struct kiln_nonce_rec n = { 0 };
	struct preq p;
	kiln_rot *rot = device_new("WGT-E-0001", NULL, NULL);

	(void)state;
	open_lot("widget", "LOT-EXPIRE", 10, NULL);
	begin_ok("LOT-EXPIRE", &st1, 1, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	for (int i = 0; i < 30 && kiln_now() <= b.expires; i++)
		(void)sleep(1);
	assert_true(kiln_now() > b.expires);
	finish_refused(&p, KILN_ERR_NONCE_EXPIRED, "rejection", "expired");
	nonce_row(b.nonce, &n);
	assert_int_equal(n.used, 0);
	assert_int_equal(issued("LOT-EXPIRE"), 0);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_closed_lot(void **state)
{
	struct kiln_begin_result b;
	struct preq p;
	kiln_rot *rot = device_new("WGT-C-0001", NULL, NULL);

	(void)state;
	open_lot("widget", "LOT-CLOSING", 10, NULL);
	begin_ok("LOT-CLOSING", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	close_lot("LOT-CLOSING");
	finish_refused(&p, KILN_ERR_BATCH_CLOSED, "rejection", "LOT-CLOSING");
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_quota(void **state)
{
	struct kiln_begin_result b1, b2;
	struct kiln_issue_result res;
	struct preq p1, p2;
	bool repeated;
	kiln_rot *a = device_new("WGT-Q-0001", NULL, NULL);
	kiln_rot *c = device_new("WGT-Q-0002", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-ONE", 1, NULL);
	/* Two nonces while the budget is untouched; only one device is issued. */
	begin_ok("LOT-ONE", &st1, 120, &b1);
	begin_ok("LOT-ONE", &st1, 120, &b2);
	preq_make(&p1, a, b1.nonce, &st1, true);
	preq_make(&p2, c, b2.nonce, &st1, true);
	KT_OK(finish(&p1, &res, &repeated, &d));
	kiln_issue_result_cleanup(&res);
	finish_refused(&p2, KILN_ERR_BATCH_QUOTA, "rejection", "LOT-ONE");
	assert_int_equal(issued("LOT-ONE"), 1);
	begin_refused("LOT-ONE", &st1, KILN_ERR_BATCH_QUOTA, "quantity");
	preq_cleanup(&p1);
	preq_cleanup(&p2);
	kiln_rot_free(a);
	kiln_rot_free(c);
}

static void test_station_environment(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_device_rec dev = { 0 };
	struct preq p;
	bool repeated;
	kiln_rot *rot = device_new("WGT-T-0001", NULL, NULL);
	kiln_diag d;

	(void)state;
	/* A test station provisions a test product, without evidence (policy "none"). */
	open_lot("widget-test", "LOT-ENV-T", 10, NULL);
	begin_ok("LOT-ENV-T", &st_test, 120, &b);
	preq_make(&p, rot, b.nonce, &st_test, false);
	/* The same nonce presented by a production identity of the same name: refused. */
	p.req.station = &(struct kiln_station){ "st-t", "station", "production" };
	finish_refused(&p, KILN_ERR_POLICY_ENV, "rejection", "strictly apart");
	p.req.station = &st_test;
	if (!kiln_is_ok(finish(&p, &res, &repeated, &d)))
		fail_msg("finish: %s", d.text);
	KT_OK(kiln_store_device_get(k.store, "widget-test/WGT-T-0001", &dev, NULL));
	/* No evidence: the claimed version is kept, no measurement, no evidence digest. */
	assert_string_equal(dev.firmware_version, "1.0.0");
	assert_string_equal(dev.firmware_sha256, "");
	assert_string_equal(dev.attestation_sha256, "");
	assert_string_equal(dev.station, "st-t");
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_lot_assigned_to_another_station(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct preq p;
	bool repeated;
	kiln_rot *rot = device_new("WGT-A-0001", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-ASSIGNED", 10, "st-2");
	begin_refused("LOT-ASSIGNED", &st1, KILN_ERR_FORBIDDEN, "st-2");
	begin_ok("LOT-ASSIGNED", &st2, 120, &b);
	preq_make(&p, rot, b.nonce, &st2, true);
	KT_OK(finish(&p, &res, &repeated, &d));
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_csr_names_another_device(void **state)
{
	struct kiln_begin_result b;
	struct preq p;
	kiln_rot *rot = device_new("WGT-N-0001", NULL, NULL);

	(void)state;
	open_lot("widget", "LOT-CN", 10, NULL);
	begin_ok("LOT-CN", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	/* The CSR's CN is WGT-N-0001; the request claims another (valid) serial. */
	KT_OK(kiln_strlcpy(p.serial, "WGT-N-0002", sizeof(p.serial)));
	finish_refused(&p, KILN_ERR_POLICY_SUBJECT, "rejection", "'WGT-N-0001' is not the device serial 'WGT-N-0002'");
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_firmware_claims(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_device_rec dev = { 0 };
	struct preq p;
	bool repeated;
	kiln_rot *rot = device_new("WGT-F-0001", NULL, NULL);
	kiln_rot *upd = device_new("WGT-F-0002", KILN_SOURCE_DIR "/examples/firmware/widget-fw-1.1.0.bin",
				   "1.1.0");
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-FW", 10, NULL);
	/* A claim other than what was measured. */
	begin_ok("LOT-FW", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	KT_OK(kiln_strlcpy(p.fw, "9.9.9", sizeof(p.fw)));
	finish_refused(&p, KILN_ERR_ATTEST_FIRMWARE, "rejection",
		       "claims firmware 9.9.9 but measured 1.0.0");
	preq_cleanup(&p);
	/* No claim at all: the measurement decides, and is what the inventory records. */
	begin_ok("LOT-FW", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	p.fw[0] = '\0';
	KT_OK(finish(&p, &res, &repeated, &d));
	KT_OK(kiln_store_device_get(k.store, "WGT-F-0001", &dev, NULL));
	assert_string_equal(dev.firmware_version, "1.0.0");
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);
	/* Firmware the policy does not approve, honestly claimed. */
	begin_ok("LOT-FW", &st1, 120, &b);
	preq_make(&p, upd, b.nonce, &st1, true);
	assert_string_equal(p.fw, "1.1.0");
	finish_refused(&p, KILN_ERR_ATTEST_FIRMWARE, "rejection", NULL);
	preq_cleanup(&p);
	kiln_rot_free(rot);
	kiln_rot_free(upd);
}

static void test_device_serial(void **state)
{
	struct kiln_begin_result b;
	struct preq p;
	kiln_rot *rot = device_new("WGT-M-0001", NULL, NULL);

	(void)state;
	open_lot("widget", "LOT-SERIAL", 10, NULL);
	begin_ok("LOT-SERIAL", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	p.req.device_serial = NULL;
	finish_refused(&p, KILN_ERR_POLICY_SERIAL, "rejection", "no device serial");
	p.req.device_serial = "";
	finish_refused(&p, KILN_ERR_POLICY_SERIAL, "rejection", "no device serial");
	p.req.device_serial = "wgt-lower";
	finish_refused(&p, KILN_ERR_POLICY_SERIAL, "rejection", "pattern");
	preq_cleanup(&p);
	kiln_rot_free(rot);
}

static void test_evidence_refusals(void **state)
{
	static const struct {
		const char *fault;
		kiln_err want;
	} faults[] = {
		{ "alias-wrong-signer", KILN_ERR_ATTEST_CHAIN },
		{ "binding-wrong-key", KILN_ERR_ATTEST_SIGNATURE },
		{ "binding-other-nonce", KILN_ERR_ATTEST_SIGNATURE },
		{ "csr-other-key", KILN_ERR_ATTEST_KEY },
	};
	struct kiln_begin_result b;
	struct preq p;
	kiln_rot *rot = device_new("WGT-V-0001", NULL, NULL);

	(void)state;
	open_lot("widget", "LOT-EVIDENCE", 10, NULL);
	/* No evidence for a policy that asks for DICE. */
	begin_ok("LOT-EVIDENCE", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, false);
	finish_refused(&p, KILN_ERR_ATTEST_MALFORMED, "rejection", "DICE");
	p.req.evidence = NULL;
	finish_refused(&p, KILN_ERR_ATTEST_MALFORMED, "rejection", "DICE");
	preq_cleanup(&p);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		kiln_rot *bad = NULL;
		char *dir = kt_path(k.dir, "dev-WGT-V-0001");

		KT_OK(kiln_rot_open(dir, &bad, NULL));
		KT_OK(kiln_rot_inject(bad, faults[i].fault));
		begin_ok("LOT-EVIDENCE", &st1, 120, &b);
		preq_make(&p, bad, b.nonce, &st1, true);
		finish_refused(&p, faults[i].want, "rejection", NULL);
		preq_cleanup(&p);
		kiln_rot_free(bad);
		free(dir);
	}
	assert_int_equal(issued("LOT-EVIDENCE"), 0);
	kiln_rot_free(rot);
}

/* Rewrites the serial in a simulated device's rot.json (a cloned or lying device). */
static void set_serial(const char *dir, const char *serial)
{
	char *meta = kt_path(dir, "rot.json");
	kiln_buf text;
	json_t *j;
	char *s;

	kt_read_file(meta, &text);
	j = json_loadb((const char *)text.ptr, text.len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_set_new(j, "serial", json_string(serial)), 0);
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	kt_write_file(meta, s, strlen(s));
	free(s);
	json_decref(j);
	kiln_buf_cleanup(&text);
	free(meta);
}

static void test_duplicates_are_anomalies(void **state)
{
	struct kiln_begin_result b;
	struct kiln_issue_result res;
	struct kiln_nonce_rec n = { 0 };
	struct preq p;
	bool repeated;
	char *other = kt_path(k.dir, "dev-WGT-D-0009");
	char *orig = kt_path(k.dir, "dev-WGT-D-0001");
	char *clone = kt_path(k.dir, "dev-clone");
	kiln_rot *first = device_new("WGT-D-0001", NULL, NULL);
	kiln_rot *rot = device_new("WGT-D-0009", NULL, NULL);
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-DUP", 10, NULL);
	begin_ok("LOT-DUP", &st1, 120, &b);
	preq_make(&p, first, b.nonce, &st1, true);
	KT_OK(finish(&p, &res, &repeated, &d));
	kiln_issue_result_cleanup(&res);
	preq_cleanup(&p);

	/* Another device (its own secret, its own keys) with the serial already provisioned. */
	kiln_rot_free(rot);
	set_serial(other, "WGT-D-0001");
	KT_OK(kiln_rot_open(other, &rot, NULL));
	begin_ok("LOT-DUP", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	finish_refused(&p, KILN_ERR_DEVICE_DUPLICATE, "anomaly", "WGT-D-0001");
	preq_cleanup(&p);
	kiln_rot_free(rot);
	/* Nothing was used up by the refused commit. */
	nonce_row(b.nonce, &n);
	assert_int_equal(n.used, 0);
	assert_int_equal(issued("LOT-DUP"), 1);

	/* A clone of the first device (same secret, same key) under a new serial. */
	assert_int_equal(kt_system("cp -a '%s' '%s'", orig, clone), 0);
	set_serial(clone, "WGT-D-0003");
	KT_OK(kiln_rot_open(clone, &rot, NULL));
	assert_int_equal(EVP_PKEY_eq(kiln_rot_public_key(rot), kiln_rot_public_key(first)), 1);
	begin_ok("LOT-DUP", &st1, 120, &b);
	preq_make(&p, rot, b.nonce, &st1, true);
	finish_refused(&p, KILN_ERR_KEY_DUPLICATE, "anomaly", "already certified");
	preq_cleanup(&p);
	kiln_rot_free(rot);
	assert_int_equal(issued("LOT-DUP"), 1);
	kiln_rot_free(first);
	free(other);
	free(orig);
	free(clone);
}

/* ------------------------------------------------------------ the same request twice at once */

struct racer {
	const struct preq *p;
	pthread_barrier_t *go;
	struct kiln_issue_result res;
	bool repeated;
	kiln_result r;
	kiln_diag d;
};

static void *race(void *arg)
{
	struct racer *x = arg;

	kiln_issue_result_init(&x->res);
	kiln_diag_clear(&x->d);
	(void)pthread_barrier_wait(x->go);
	x->r = kiln_ca_provision_finish(k.ca, &x->p->req, &x->res, &x->repeated, &x->d);
	return NULL;
}

/*
 * A station that resends while its first request is still being signed (a
 * timeout shorter than the HSM) sends the same request twice at once: both
 * get the one certificate, whichever commits first.
 */
static void test_same_request_concurrently(void **state)
{
	char serial[32], lot[32];
	kiln_rot *rot;

	(void)state;
	for (int round = 0; round < 6; round++) {
		struct kiln_begin_result b;
		struct racer x[2];
		pthread_t t[2];
		pthread_barrier_t go;
		struct preq p;
		int64_t devices = kt_count(&k, "devices");

		(void)snprintf(serial, sizeof(serial), "WGT-X-%04d", round);
		(void)snprintf(lot, sizeof(lot), "LOT-RACE-%d", round);
		rot = device_new(serial, NULL, NULL);
		open_lot("widget", lot, 10, NULL);
		begin_ok(lot, &st1, 120, &b);
		preq_make(&p, rot, b.nonce, &st1, true);
		assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
		for (int i = 0; i < 2; i++) {
			x[i] = (struct racer){ .p = &p, .go = &go };
			assert_int_equal(pthread_create(&t[i], NULL, race, &x[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_join(t[i], NULL), 0);
		(void)pthread_barrier_destroy(&go);
		for (int i = 0; i < 2; i++) {
			if (!kiln_is_ok(x[i].r))
				fail_msg("round %d, request %d: %s", round, i, x[i].d.text);
		}
		assert_true(x[0].repeated != x[1].repeated);
		assert_string_equal(x[0].res.serial, x[1].res.serial);
		assert_int_equal(kt_count(&k, "devices"), devices + 1);
		assert_int_equal(issued(lot), 1);
		for (int i = 0; i < 2; i++)
			kiln_issue_result_cleanup(&x[i].res);
		preq_cleanup(&p);
		kiln_rot_free(rot);
	}
}

/*
 * Credential activation (TPM 2.0) refuses, with a rejection event and nothing
 * recorded, a nonce kiln never issued and a lot whose product is not tpm2.
 * The TPM path itself, over swtpm, is tests/unit/agent/test_tpm.c and
 * tests/integration/test_tpm.sh.
 */
static void test_activate_refusals(void **state)
{
	struct kiln_begin_result b;
	struct kiln_activate_result res;
	struct kiln_activate_req req;
	uint8_t nonce[KILN_NONCE_LEN], ak[4] = { 0 }, ek[4] = { 0 };
	int64_t rejections;
	kiln_diag d;

	(void)state;
	open_lot("widget", "LOT-ACT", 10, NULL);
	KT_OK(kiln_random(nonce, sizeof(nonce)));
	req = (struct kiln_activate_req){ &st1, nonce, kiln_slice_of(ek, 4), kiln_slice_of(NULL, 0),
					  kiln_slice_of(ak, 4) };
	kiln_activate_result_init(&res);
	rejections = kt_count_events(&k, "rejection");
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_provision_activate(k.ca, &req, &res, &d), KILN_ERR_NONCE_UNKNOWN);
	assert_int_equal(kt_count_events(&k, "rejection"), rejections + 1);
	begin_ok("LOT-ACT", &st1, 60, &b);
	req.nonce = b.nonce;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_provision_activate(k.ca, &req, &res, &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "provision/activate is for tpm2 products"));
	assert_int_equal(kt_count_events(&k, "rejection"), rejections + 2);
	assert_int_equal(kt_count_events(&k, "activation"), 0);
	/* Another station's nonce. */
	req.station = &st2;
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_provision_activate(k.ca, &req, &res, &d), KILN_ERR_NONCE_STATION);
	KT_ERR(kiln_ca_provision_activate(k.ca, NULL, &res, &d), KILN_ERR_ARG);
	kiln_activate_result_cleanup(&res);
}

static void test_finish_arguments(void **state)
{
	struct kiln_issue_result res;
	struct kiln_provision_req req = { 0 };
	struct counts before;
	bool repeated = true;
	kiln_diag d;

	(void)state;
	snap(&before);
	kiln_issue_result_init(&res);
	kiln_diag_clear(&d);
	KT_ERR(kiln_ca_provision_finish(k.ca, &req, &res, &repeated, &d), KILN_ERR_ARG);
	assert_false(repeated);
	req.station = &st1;
	KT_ERR(kiln_ca_provision_finish(k.ca, &req, &res, &repeated, NULL), KILN_ERR_ARG);
	kiln_issue_result_cleanup(&res);
	assert_int_equal(kt_count(&k, "events"), before.events);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin),
		cmocka_unit_test(test_activate_refusals),
		cmocka_unit_test(test_begin_refusals),
		cmocka_unit_test(test_begin_arguments),
		cmocka_unit_test(test_happy_path_and_lineage),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_next_nonce),
		cmocka_unit_test(test_unknown_nonce),
		cmocka_unit_test(test_nonce_of_another_station),
		cmocka_unit_test(test_expired_nonce),
		cmocka_unit_test(test_closed_lot),
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_station_environment),
		cmocka_unit_test(test_lot_assigned_to_another_station),
		cmocka_unit_test(test_csr_names_another_device),
		cmocka_unit_test(test_firmware_claims),
		cmocka_unit_test(test_device_serial),
		cmocka_unit_test(test_evidence_refusals),
		cmocka_unit_test(test_duplicates_are_anomalies),
		cmocka_unit_test(test_same_request_concurrently),
		cmocka_unit_test(test_finish_arguments),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
