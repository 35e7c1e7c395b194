/*
 * Unit tests for src/agent/dice_sim.c: the DICE device simulator. What it
 * makes is checked by kiln's real verifier (kiln_attest_verify against
 * examples/policies/widget.yaml), by an independent re-derivation of the
 * documented key schedule, and by the openssl CLI for the certificate chain.
 *
 * With KILN_FUZZ_SEEDS_OUT=DIR set, the evidence objects and DiceTcbInfo
 * values made here are also written to DIR (the seeds of fuzz/corpus/evidence).
 */
#include "support/support.h"

#include "agent/agent_impl.h"
#include "attest/attest.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXAMPLES KILN_SOURCE_DIR "/examples"
#define FW_1_0_0_SHA256 "c8c9676e6bc05eb6553b1dc05178301a99dc147f6263dc1b493f40c59a69d32b"
#define FW_1_1_0_SHA256 "cdebfe50e25cec2a65f7e8d19ea1ce9d001130826a282b67f83ab32cabe7d3d8"

static kiln_policy *widget;

/* --------------------------------------------------------------- helpers */

static kiln_policy *policy_from(const char *text)
{
	kiln_policy *p = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_slice_str(text), "widget.yaml", &p, &d)))
		fail_msg("policy: %s", d.text);
	return p;
}

static char *read_text(const char *path)
{
	kiln_buf b;
	size_t len;

	kt_read_file(path, &b);
	KT_OK(kiln_buf_append_u8(&b, 0));
	return (char *)kiln_buf_take(&b, &len);
}

static int group_setup(void **state)
{
	char *text = read_text(EXAMPLES "/policies/widget.yaml");

	(void)state;
	widget = policy_from(text);
	free(text);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	kiln_policy_free(widget);
	kt_keys_free();
	return 0;
}

static char *new_device(const char *name, const struct kiln_dice_sim_opts *o)
{
	char *dir = kt_tmpdir(name);
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_rot_dice_create(dir, o, &d)))
		fail_msg("create: %s", d.text);
	return dir;
}

static kiln_rot *boot(const char *dir)
{
	kiln_rot *rot = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_rot_open(dir, &rot, &d)))
		fail_msg("open: %s", d.text);
	assert_non_null(rot);
	return rot;
}

static void b64_member(const json_t *ev, const char *key, kiln_buf *out)
{
	const json_t *v = json_object_get(ev, key);

	kiln_buf_init(out, 1 << 16);
	assert_non_null(v);
	KT_OK(kiln_base64_decode(kiln_slice_of(json_string_value(v), json_string_length(v)), out));
}

static X509 *der_cert(const kiln_buf *der)
{
	X509 *x = NULL;

	KT_OK(kiln_cert_parse(kiln_buf_view(der), &x, NULL));
	return x;
}

static X509 *alias_cert_of(kiln_rot *rot)
{
	uint8_t nonce[KILN_NONCE_LEN] = { 1 };
	kiln_buf csr, der;
	json_t *ev = NULL;
	X509 *x;

	kiln_buf_init(&csr, 1 << 16);
	KT_OK(kiln_rot_csr(rot, &csr, NULL));
	KT_OK(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &ev, NULL));
	b64_member(ev, "alias_cert", &der);
	x = der_cert(&der);
	kiln_buf_cleanup(&der);
	kiln_buf_cleanup(&csr);
	json_decref(ev);
	return x;
}

static void maybe_write_seed(const char *name, const void *data, size_t len)
{
	const char *dir = getenv("KILN_FUZZ_SEEDS_OUT");
	char *path;

	if (dir == NULL || *dir == '\0')
		return;
	path = kt_path(dir, name);
	kt_write_file(path, data, len);
	free(path);
}

static char *b64_string(kiln_slice in)
{
	kiln_buf b;
	size_t len;

	kiln_buf_init(&b, 1 << 20);
	KT_OK(kiln_base64_encode(in, &b));
	KT_OK(kiln_buf_append_u8(&b, 0));
	return (char *)kiln_buf_take(&b, &len);
}

/* fuzz_evidence's envelope: the evidence with the request it answers ("request-<name>"). */
static void write_envelope_seed(const char *name, const json_t *ev, const kiln_buf *csr_der,
				const uint8_t nonce[KILN_NONCE_LEN], const char *serial,
				const kiln_policy *p)
{
	char *csr64 = b64_string(kiln_buf_view(csr_der));
	char *nonce64 = b64_string(kiln_slice_of(nonce, KILN_NONCE_LEN));
	char file[128];
	json_t *env;
	kiln_buf b;

	if (getenv("KILN_FUZZ_SEEDS_OUT") == NULL) {
		free(csr64);
		free(nonce64);
		return;
	}
	env = json_pack("{s:O, s:s, s:s, s:s}", "evidence", ev, "csr", csr64, "nonce", nonce64,
			"serial", serial);
	assert_non_null(env);
	if (p->attestation.n_vendor_roots > 0)
		assert_int_equal(json_object_set_new(env, "vendor_root",
						     json_string(p->attestation.vendor_roots[0])), 0);
	kiln_buf_init(&b, 1 << 20);
	KT_OK(kiln_json_dump(env, &b));
	(void)snprintf(file, sizeof(file), "request-%s",
		       strncmp(name, "evidence-", 9) == 0 ? name + 9 : name);
	maybe_write_seed(file, b.ptr, b.len);
	kiln_buf_cleanup(&b);
	json_decref(env);
	free(csr64);
	free(nonce64);
}

/*
 * What the server does with a finish request: CSR parsed, evidence through
 * the JSON text and kiln_evidence_parse, then kiln_attest_verify.
 */
static kiln_result attest(kiln_rot *rot, const kiln_policy *p, const char *seed,
			  struct kiln_attest_result *res, kiln_diag *d)
{
	uint8_t nonce[KILN_NONCE_LEN];
	kiln_buf csr_der, text;
	kiln_csr *csr = NULL;
	json_t *ev_json = NULL, *reparsed = NULL;
	struct kiln_evidence ev;
	struct kiln_attest_ctx ctx;
	kiln_result r;

	kiln_buf_init(&csr_der, 1 << 16);
	kiln_buf_init(&text, 1 << 20);
	kiln_evidence_init(&ev);
	KT_OK(kiln_random(nonce, sizeof(nonce)));
	KT_OK(kiln_rot_csr(rot, &csr_der, NULL));
	KT_OK(kiln_csr_parse(kiln_buf_view(&csr_der), &csr, NULL));
	KT_OK(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr_der), &ev_json, NULL));
	KT_OK(kiln_json_dump(ev_json, &text));
	if (seed != NULL) {
		maybe_write_seed(seed, text.ptr, text.len);
		write_envelope_seed(seed, ev_json, &csr_der, nonce, kiln_rot_serial(rot), p);
	}
	KT_OK(kiln_json_parse(kiln_buf_view(&text), 1 << 20, &reparsed, NULL));
	KT_OK(kiln_evidence_parse(reparsed, &ev, NULL));
	ctx = (struct kiln_attest_ctx){ .policy = p, .nonce = nonce,
					.csr_der = kiln_buf_view(&csr_der), .csr_key = csr->pkey,
					.device_serial = kiln_rot_serial(rot), .now = kiln_now() };
	kiln_diag_clear(d);
	r = kiln_attest_verify(&ev, &ctx, res, d);
	kiln_evidence_cleanup(&ev);
	json_decref(ev_json);
	json_decref(reparsed);
	kiln_csr_free(csr);
	kiln_buf_cleanup(&csr_der);
	kiln_buf_cleanup(&text);
	return r;
}

/* ---------------------------------------------------- create and the state */

static void test_create_state_dir(void **state)
{
	char *root = kt_tmpdir("dice-create");
	char *dir = kt_path(root, "device");
	struct stat st;
	kiln_buf uds;
	char *p;

	(void)state;
	KT_OK(kiln_rot_dice_create(dir, NULL, NULL));
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	p = kt_path(dir, "uds");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	kt_read_file(p, &uds);
	assert_int_equal(uds.len, 32);
	kiln_buf_cleanup(&uds);
	free(p);
	for (const char *const *n = (const char *const[]){ "rot.json", "l0.bin", "firmware.bin", NULL };
	     *n != NULL; n++) {
		p = kt_path(dir, *n);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(p);
	}
	/* No vendor CA: no DeviceID certificate. */
	p = kt_path(dir, "deviceid.crt");
	assert_int_not_equal(stat(p, &st), 0);
	free(p);
	kt_rmrf(root);
	free(dir);
	free(root);
}

static void test_default_images_are_the_examples(void **state)
{
	char *dir = new_device("dice-images", NULL);
	char *p;
	kiln_buf a, b;
	uint8_t h[32];
	char hex[65];
	unsigned int n = 0;

	(void)state;
	p = kt_path(dir, "firmware.bin");
	kt_read_file(p, &a);
	kt_read_file(EXAMPLES "/firmware/widget-fw-1.0.0.bin", &b);
	assert_int_equal(a.len, 4096);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.ptr, b.ptr, a.len);
	assert_int_equal(EVP_Digest(a.ptr, a.len, h, &n, EVP_sha256(), NULL), 1);
	kiln_hex_encode(h, 32, hex);
	assert_string_equal(hex, FW_1_0_0_SHA256);
	assert_memory_equal(a.ptr, "KILN SIMULATED IMAGE\nproduct: widget\nimage: fw\nversion: 1.0.0\n", 61);
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
	free(p);
	p = kt_path(dir, "l0.bin");
	kt_read_file(p, &a);
	kt_read_file(EXAMPLES "/firmware/widget-l0-1.0.0.bin", &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.ptr, b.ptr, a.len);
	kiln_buf_cleanup(&a);
	kiln_buf_cleanup(&b);
	free(p);
	/* The newer example image is what its README says. */
	kt_read_file(EXAMPLES "/firmware/widget-fw-1.1.0.bin", &b);
	assert_int_equal(EVP_Digest(b.ptr, b.len, h, &n, EVP_sha256(), NULL), 1);
	kiln_hex_encode(h, 32, hex);
	assert_string_equal(hex, FW_1_1_0_SHA256);
	kiln_buf_cleanup(&b);
	kt_rmrf(dir);
	free(dir);
}

static void test_create_into_existing_device(void **state)
{
	char *dir = new_device("dice-exists", NULL);
	char *uds_path = kt_path(dir, "uds");
	kiln_buf before, after;
	kiln_diag d;

	(void)state;
	kt_read_file(uds_path, &before);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_dice_create(dir, NULL, &d), KILN_ERR_EXISTS);
	assert_non_null(strstr(d.text, "already holds a device"));
	/* The device is untouched. */
	kt_read_file(uds_path, &after);
	assert_memory_equal(before.ptr, after.ptr, 32);
	/* A half-made device (uds without rot.json) is not overwritten either. */
	{
		char *meta = kt_path(dir, "rot.json");

		assert_int_equal(unlink(meta), 0);
		KT_ERR(kiln_rot_dice_create(dir, NULL, NULL), KILN_ERR_EXISTS);
		free(meta);
	}
	/* A file where the directory should be. */
	KT_ERR(kiln_rot_dice_create(uds_path, NULL, &d), KILN_ERR_EXISTS);
	kiln_buf_cleanup(&before);
	kiln_buf_cleanup(&after);
	free(uds_path);
	kt_rmrf(dir);
	free(dir);
}

static void test_create_refuses_bad_options(void **state)
{
	char *dir = kt_tmpdir("dice-badopts");
	char long_serial[KILN_DEVICE_SERIAL_MAX + 2];
	struct {
		struct kiln_dice_sim_opts o;
		const char *needle;
	} cases[] = {
		{ { .serial = "WITH SPACE" }, "serial" },
		{ { .serial = "" }, "serial" },
		{ { .serial = "caf\xc3\xa9" }, "serial" },
		{ { .serial = long_serial }, "serial" },
		{ { .firmware_version = "1.0 beta" }, "firmware version" },
		{ { .soc_id = "a\tb" }, "SoC id" },
		{ { .pcb_serial = "" }, "PCB serial" },
		{ { .se_serial = "x y" }, "secure element serial" },
		{ { .vendor_ca_cert = "/nonexistent.pem" }, "both" },
		{ { .vendor_ca_key = "/nonexistent.pem" }, "both" },
	};
	struct stat st;
	char *meta = kt_path(dir, "rot.json");
	char *uds = kt_path(dir, "uds");

	(void)state;
	memset(long_serial, 'A', sizeof(long_serial) - 1);
	long_serial[sizeof(long_serial) - 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kiln_diag d;

		kiln_diag_clear(&d);
		KT_ERR(kiln_rot_dice_create(dir, &cases[i].o, &d), KILN_ERR_ARG);
		if (strstr(d.text, cases[i].needle) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, d.text, cases[i].needle);
		/* Nothing written. */
		assert_int_not_equal(stat(meta, &st), 0);
		assert_int_not_equal(stat(uds, &st), 0);
	}
	/* 64 characters is the limit, inclusive. */
	long_serial[KILN_DEVICE_SERIAL_MAX] = '\0';
	KT_OK(kiln_rot_dice_create(dir, &(struct kiln_dice_sim_opts){ .serial = long_serial }, NULL));
	KT_ERR(kiln_rot_dice_create(NULL, NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_dice_create("", NULL, NULL), KILN_ERR_ARG);
	free(meta);
	free(uds);
	kt_rmrf(dir);
	free(dir);
}

static void test_options_and_device_info(void **state)
{
	static const uint8_t fw[] = "custom firmware";
	struct kiln_dice_sim_opts o = { .serial = "WIDGET-0042", .firmware = kiln_slice_of(fw, sizeof(fw)),
					.firmware_version = "2.3.4", .soc_id = "SOC-1",
					.pcb_serial = "PCB-2", .se_serial = "SE-3" };
	char *dir = new_device("dice-opts", &o);
	kiln_rot *rot = boot(dir);
	json_t *info = NULL;

	(void)state;
	assert_string_equal(kiln_rot_type(rot), "dice");
	assert_string_equal(kiln_rot_serial(rot), "WIDGET-0042");
	KT_OK(kiln_rot_device_info(rot, &info));
	assert_string_equal(json_string_value(json_object_get(info, "serial")), "WIDGET-0042");
	assert_string_equal(json_string_value(json_object_get(info, "firmware_version")), "2.3.4");
	assert_string_equal(json_string_value(json_object_get(json_object_get(info, "components"), "soc")),
			    "SOC-1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(info, "components"), "pcb")),
			    "PCB-2");
	assert_string_equal(json_string_value(json_object_get(json_object_get(info, "components"), "se")),
			    "SE-3");
	assert_int_equal(json_object_size(info), 3);
	json_decref(info);
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

static void test_derived_defaults(void **state)
{
	char *a = new_device("dice-defaults-a", NULL), *b = new_device("dice-defaults-b", NULL);
	kiln_rot *ra = boot(a), *rb = boot(b);
	json_t *info = NULL;
	const char *soc;

	(void)state;
	/* "SIM-" and 12 upper-case hex digits: fits the example serial pattern. */
	assert_int_equal(strlen(kiln_rot_serial(ra)), 16);
	assert_memory_equal(kiln_rot_serial(ra), "SIM-", 4);
	assert_true(kiln_policy_serial_ok(widget, kiln_rot_serial(ra)));
	assert_string_not_equal(kiln_rot_serial(ra), kiln_rot_serial(rb));
	KT_OK(kiln_rot_device_info(ra, &info));
	soc = json_string_value(json_object_get(json_object_get(info, "components"), "soc"));
	assert_int_equal(strlen(soc), 16);
	assert_memory_equal(soc, "SOC-", 4);
	assert_string_equal(json_string_value(json_object_get(info, "firmware_version")), "1.0.0");
	json_decref(info);
	kiln_rot_free(ra);
	kiln_rot_free(rb);
	kt_rmrf(a);
	kt_rmrf(b);
	free(a);
	free(b);
}

/* ------------------------------------------------------------------- boot */

static void test_boot_is_deterministic(void **state)
{
	char *dir = new_device("dice-determinism", NULL);
	kiln_rot *one = boot(dir), *two = boot(dir);
	X509 *alias1 = alias_cert_of(one), *alias2 = alias_cert_of(two);
	char s1[64], s2[64];

	(void)state;
	/* Same UDS and images: same DeviceID and Alias keys, same Alias serial. */
	assert_int_equal(EVP_PKEY_eq(kiln_rot_public_key(one), kiln_rot_public_key(two)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(alias1), X509_get0_pubkey(alias2)), 1);
	kiln_cert_serial_hex(alias1, s1, sizeof(s1));
	kiln_cert_serial_hex(alias2, s2, sizeof(s2));
	assert_string_equal(s1, s2);
	/* Alias and DeviceID are different keys; the identity key is public only. */
	assert_int_not_equal(EVP_PKEY_eq(kiln_rot_public_key(one), X509_get0_pubkey(alias1)), 1);
	{
		BIGNUM *bn = NULL;

		assert_int_equal(EVP_PKEY_get_bn_param(kiln_rot_public_key(one),
						       OSSL_PKEY_PARAM_PRIV_KEY, &bn), 0);
		assert_null(bn);
	}
	X509_free(alias1);
	X509_free(alias2);
	kiln_rot_free(one);
	kiln_rot_free(two);
	kt_rmrf(dir);
	free(dir);
}

static void test_new_firmware_new_alias(void **state)
{
	char *dir = new_device("dice-update", NULL);
	kiln_rot *before = boot(dir), *after;
	X509 *alias_before = alias_cert_of(before), *alias_after;
	struct kiln_dice_tcb_info t1, t2;
	kiln_buf fw;
	kiln_diag d;

	(void)state;
	kt_read_file(EXAMPLES "/firmware/widget-fw-1.1.0.bin", &fw);
	kiln_diag_clear(&d);
	KT_OK(kiln_rot_dice_install(dir, kiln_buf_view(&fw), "1.1.0", &d));
	after = boot(dir);
	alias_after = alias_cert_of(after);
	/* DeviceID depends on the UDS and L0 only; the Alias key and the FWID follow the firmware. */
	assert_int_equal(EVP_PKEY_eq(kiln_rot_public_key(before), kiln_rot_public_key(after)), 1);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(alias_before), X509_get0_pubkey(alias_after)),
			     1);
	KT_OK(kiln_dice_tcb_info_of(alias_before, &t1, NULL));
	KT_OK(kiln_dice_tcb_info_of(alias_after, &t2, NULL));
	assert_memory_not_equal(t1.fwids[0].digest, t2.fwids[0].digest, 32);
	assert_string_equal(t2.version, "1.1.0");
	kiln_buf_cleanup(&fw);
	X509_free(alias_before);
	X509_free(alias_after);
	kiln_rot_free(before);
	kiln_rot_free(after);
	kt_rmrf(dir);
	free(dir);
}

/* ---- an independent derivation of the documented key schedule (top of dice_sim.c) */

static void hmac32(const uint8_t *key, const uint8_t msg[32], uint8_t out[32])
{
	size_t n = 0;

	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, msg, 32, out, 32, &n));
	assert_int_equal(n, 32);
}

static EVP_PKEY *expected_key(const uint8_t cdi[32], const char *info)
{
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *pt = EC_POINT_new(g);
	BIGNUM *k = BN_new();
	uint8_t okm[32], point[65];
	size_t n = sizeof(okm);
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	char group[] = "prime256v1";

	/* Via the EVP_PKEY HKDF interface this time, not EVP_KDF. */
	assert_int_equal(EVP_PKEY_derive_init(kctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(kctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(kctx, cdi, 32), 1);
	assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(kctx, (const unsigned char *)info, (int)strlen(info)), 1);
	assert_int_equal(EVP_PKEY_derive(kctx, okm, &n), 1);
	assert_non_null(BN_bin2bn(okm, 32, k));
	assert_true(BN_cmp(k, EC_GROUP_get0_order(g)) < 0); /* no retry for these inputs */
	assert_int_equal(EC_POINT_mul(g, pt, k, NULL, NULL, NULL), 1);
	assert_int_equal(EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, point, 65, NULL), 65);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 65);
	params[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(pctx);
	BN_free(k);
	EC_POINT_free(pt);
	EC_GROUP_free(g);
	EVP_PKEY_CTX_free(kctx);
	return pk;
}

static void file_sha256(const char *dir, const char *name, uint8_t out[32])
{
	char *p = kt_path(dir, name);
	kiln_buf b;
	unsigned int n = 0;

	kt_read_file(p, &b);
	assert_int_equal(EVP_Digest(b.ptr, b.len, out, &n, EVP_sha256(), NULL), 1);
	kiln_buf_cleanup(&b);
	free(p);
}

static void test_key_schedule_as_documented(void **state)
{
	char *dir = new_device("dice-schedule", NULL);
	char *p = kt_path(dir, "uds");
	kiln_rot *rot = boot(dir);
	X509 *alias = alias_cert_of(rot);
	uint8_t l0[32], fw[32], cdi0[32], cdi1[32];
	EVP_PKEY *want_deviceid, *want_alias;
	kiln_buf uds;

	(void)state;
	kt_read_file(p, &uds);
	file_sha256(dir, "l0.bin", l0);
	file_sha256(dir, "firmware.bin", fw);
	hmac32(uds.ptr, l0, cdi0);
	hmac32(cdi0, fw, cdi1);
	want_deviceid = expected_key(cdi0, "kiln DICE DeviceID");
	want_alias = expected_key(cdi1, "kiln DICE Alias");
	assert_int_equal(EVP_PKEY_eq(kiln_rot_public_key(rot), want_deviceid), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(alias), want_alias), 1);
	EVP_PKEY_free(want_deviceid);
	EVP_PKEY_free(want_alias);
	kiln_buf_cleanup(&uds);
	X509_free(alias);
	kiln_rot_free(rot);
	free(p);
	kt_rmrf(dir);
	free(dir);
}

static void test_uds_must_be_private(void **state)
{
	char *dir = new_device("dice-udsmode", NULL);
	char *p = kt_path(dir, "uds");
	kiln_rot *rot = NULL;
	kiln_diag d;

	(void)state;
	assert_int_equal(chmod(p, 0640), 0);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_open(dir, &rot, &d), KILN_ERR_CONFIG);
	assert_null(rot);
	assert_non_null(strstr(d.text, "chmod 600"));
	/* A UDS of the wrong size. */
	assert_int_equal(chmod(p, 0600), 0);
	kt_write_file(p, "short", 5);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_open(dir, &rot, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "a UDS is 32 bytes, not 5"));
	/* None at all. */
	assert_int_equal(unlink(p), 0);
	KT_ERR(kiln_rot_open(dir, &rot, NULL), KILN_ERR_NOT_FOUND);
	free(p);
	/* A missing image. */
	kt_rmrf(dir);
	free(dir);
	dir = new_device("dice-noimage", NULL);
	p = kt_path(dir, "l0.bin");
	assert_int_equal(unlink(p), 0);
	KT_ERR(kiln_rot_open(dir, &rot, NULL), KILN_ERR_NOT_FOUND);
	free(p);
	kt_rmrf(dir);
	free(dir);
}

/* ------------------------------------------------- the certificates it makes */

static void test_csr_is_for_deviceid(void **state)
{
	char *dir = new_device("dice-csr", &(struct kiln_dice_sim_opts){ .serial = "WIDGET-7" });
	kiln_rot *rot = boot(dir);
	kiln_buf der;
	kiln_csr *csr = NULL;
	kiln_diag d;
	char name[128];

	(void)state;
	kiln_buf_init(&der, 1 << 16);
	KT_OK(kiln_rot_csr(rot, &der, NULL));
	kiln_diag_clear(&d);
	KT_OK(kiln_csr_parse(kiln_buf_view(&der), &csr, &d)); /* proof of possession verified */
	assert_int_equal(EVP_PKEY_eq(csr->pkey, kiln_rot_public_key(rot)), 1);
	assert_string_equal(csr->key.name, "p256");
	kiln_name_format(csr->subject, name, sizeof(name));
	assert_string_equal(name, "CN=WIDGET-7");
	assert_true(kiln_policy_key_ok(widget, "ec", "p256", 256));
	kiln_csr_free(csr);
	kiln_buf_cleanup(&der);
	KT_ERR(kiln_rot_csr(rot, NULL, NULL), KILN_ERR_ARG);
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

static void test_alias_certificate_profile(void **state)
{
	char *dir = new_device("dice-alias", &(struct kiln_dice_sim_opts){ .serial = "WIDGET-8" });
	kiln_rot *rot = boot(dir);
	X509 *x = alias_cert_of(rot);
	struct kiln_dice_tcb_info t;
	const ASN1_OCTET_STRING *aki, *ski;
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	uint8_t fw[32];
	char name[128];
	int crit = -1;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;

	(void)state;
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	kiln_name_format(X509_get_subject_name(x), name, sizeof(name));
	assert_string_equal(name, "CN=WIDGET-8 Alias");
	kiln_name_format(X509_get_issuer_name(x), name, sizeof(name));
	assert_string_equal(name, "CN=WIDGET-8 DeviceID");
	assert_int_equal(X509_verify(x, (EVP_PKEY *)kiln_rot_public_key(rot)), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	/* Fixed validity, GeneralizedTime for 9999 as DICE certificates have it. */
	assert_int_equal(ASN1_STRING_type(nb), V_ASN1_UTCTIME);
	assert_string_equal((const char *)ASN1_STRING_get0_data(nb), "260101000000Z");
	assert_int_equal(ASN1_STRING_type(na), V_ASN1_GENERALIZEDTIME);
	assert_string_equal((const char *)ASN1_STRING_get0_data(na), "99991231235959Z");
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	ASN1_BIT_STRING_free(ku);
	/* AKI names DeviceID; SKI is the Alias key's. */
	aki = X509_get0_authority_key_id(x);
	ski = X509_get0_subject_key_id(x);
	assert_non_null(aki);
	assert_non_null(ski);
	assert_int_equal(ASN1_STRING_length(aki), 20);
	assert_memory_not_equal(ASN1_STRING_get0_data(aki), ASN1_STRING_get0_data(ski), 20);
	/* DiceTcbInfo: non-critical, the firmware's measurement. */
	{
		ASN1_OBJECT *oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);
		int at = X509_get_ext_by_OBJ(x, oid, -1);

		assert_true(at >= 0);
		assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, at)), 0);
		ASN1_OBJECT_free(oid);
	}
	KT_OK(kiln_dice_tcb_info_of(x, &t, NULL));
	assert_string_equal(t.vendor, "kiln-sim");
	assert_string_equal(t.model, "widget");
	assert_string_equal(t.version, "1.0.0");
	assert_true(t.has_layer);
	assert_int_equal(t.layer, 1);
	assert_false(t.has_svn);
	assert_int_equal(t.n_fwids, 1);
	assert_int_equal(t.fwids[0].hash_nid, NID_sha256);
	file_sha256(dir, "firmware.bin", fw);
	assert_memory_equal(t.fwids[0].digest, fw, 32);
	/* The extension value exactly as the device wrote it: a fuzz seed. */
	{
		ASN1_OBJECT *oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);
		const ASN1_OCTET_STRING *v =
			X509_EXTENSION_get_data(X509_get_ext(x, X509_get_ext_by_OBJ(x, oid, -1)));

		maybe_write_seed("tcbinfo-sim.der", ASN1_STRING_get0_data(v),
				 (size_t)ASN1_STRING_length(v));
		ASN1_OBJECT_free(oid);
	}
	X509_free(x);
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

/* ------------------------------------------------------------ verification */

static void test_evidence_shape(void **state)
{
	char *dir = new_device("dice-shape", NULL);
	kiln_rot *rot = boot(dir);
	uint8_t nonce[KILN_NONCE_LEN] = { 0 };
	kiln_buf csr;
	json_t *ev = NULL;

	(void)state;
	kiln_buf_init(&csr, 1 << 16);
	KT_OK(kiln_rot_csr(rot, &csr, NULL));
	KT_OK(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &ev, NULL));
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "dice");
	assert_true(json_is_string(json_object_get(ev, "alias_cert")));
	assert_true(json_is_string(json_object_get(ev, "signature")));
	assert_null(json_object_get(ev, "deviceid_cert"));
	assert_int_equal(json_object_size(ev), 3);
	json_decref(ev);
	/* Arguments. */
	ev = (json_t *)1;
	KT_ERR(kiln_rot_evidence(rot, NULL, kiln_buf_view(&csr), &ev, NULL), KILN_ERR_ARG);
	assert_null(ev);
	KT_ERR(kiln_rot_evidence(rot, nonce, kiln_slice_of(NULL, 0), &ev, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), NULL, NULL), KILN_ERR_ARG);
	kiln_buf_cleanup(&csr);
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

static void test_verifies_against_widget_policy(void **state)
{
	char *dir = new_device("dice-verify", NULL);
	kiln_rot *rot = boot(dir);
	struct kiln_attest_result res;
	kiln_diag d;
	uint8_t fw[32];

	(void)state;
	if (!kiln_is_ok(attest(rot, widget, "evidence-sim.json", &res, &d)))
		fail_msg("verify: %s", d.text);
	assert_int_equal(res.type, KILN_ATTEST_DICE);
	assert_true(res.has_firmware);
	assert_string_equal(res.firmware_version, "1.0.0");
	file_sha256(dir, "firmware.bin", fw);
	assert_memory_equal(res.firmware_sha256, fw, 32);
	/* Many nonces, many CSR calls: each one verifies (fresh signatures). */
	for (int i = 0; i < 3; i++)
		KT_OK(attest(rot, widget, NULL, &res, &d));
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

static void test_unapproved_firmware_refused(void **state)
{
	char *dir = new_device("dice-unapproved", NULL);
	kiln_rot *rot;
	struct kiln_attest_result res;
	kiln_buf fw;
	kiln_diag d;
	json_t *info = NULL;

	(void)state;
	kt_read_file(EXAMPLES "/firmware/widget-fw-1.1.0.bin", &fw);
	KT_OK(kiln_rot_dice_install(dir, kiln_buf_view(&fw), "1.1.0", NULL));
	rot = boot(dir);
	KT_OK(kiln_rot_device_info(rot, &info));
	assert_string_equal(json_string_value(json_object_get(info, "firmware_version")), "1.1.0");
	json_decref(info);
	KT_ERR(attest(rot, widget, "evidence-sim-fw-1.1.0.json", &res, &d), KILN_ERR_ATTEST_FIRMWARE);
	assert_string_equal(d.text, "firmware sha256 " FW_1_1_0_SHA256
			    " is not approved by policy widget (approved: 1.0.0)");
	kiln_rot_free(rot);
	/* Back to the approved image: accepted again. */
	kiln_buf_cleanup(&fw);
	kt_read_file(EXAMPLES "/firmware/widget-fw-1.0.0.bin", &fw);
	KT_OK(kiln_rot_dice_install(dir, kiln_buf_view(&fw), "1.0.0", NULL));
	rot = boot(dir);
	KT_OK(attest(rot, widget, NULL, &res, &d));
	kiln_rot_free(rot);
	kiln_buf_cleanup(&fw);
	kt_rmrf(dir);
	free(dir);
}

static void test_install_refusals(void **state)
{
	char *dir = new_device("dice-install", NULL);
	char *empty = kt_tmpdir("dice-install-empty");
	static const uint8_t fw[] = { 1, 2, 3 };
	kiln_diag d;

	(void)state;
	KT_ERR(kiln_rot_dice_install(dir, kiln_slice_of(fw, sizeof(fw)), NULL, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_dice_install(dir, kiln_slice_of(fw, sizeof(fw)), "1 0", NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_dice_install(dir, kiln_slice_of(fw, 0), "1.0", NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_dice_install(dir, kiln_slice_of(NULL, 3), "1.0", NULL), KILN_ERR_ARG);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_dice_install(empty, kiln_slice_of(fw, sizeof(fw)), "1.0", &d),
	       KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, "holds no device"));
	KT_OK(kiln_rot_dice_install(dir, kiln_slice_of(fw, sizeof(fw)), "9.9", NULL));
	kt_rmrf(dir);
	kt_rmrf(empty);
	free(dir);
	free(empty);
}

static void expect_fault(const char *fault, kiln_err err, const char *needle)
{
	char *dir = new_device("dice-fault", NULL);
	kiln_rot *rot = boot(dir);
	struct kiln_attest_result res;
	char seed[64];
	kiln_diag d;

	KT_OK(kiln_rot_inject(rot, fault));
	(void)snprintf(seed, sizeof(seed), "evidence-fault-%s.json", fault);
	KT_ERR(attest(rot, widget, seed, &res, &d), err);
	if (strstr(d.text, needle) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", fault, d.text, needle);
	assert_false(res.has_firmware);
	kiln_rot_free(rot);
	/* A fault lives in memory only: the next boot is honest again. */
	rot = boot(dir);
	KT_OK(attest(rot, widget, NULL, &res, &d));
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

static void test_faults(void **state)
{
	char *dir;
	kiln_rot *rot;

	(void)state;
	expect_fault("alias-wrong-signer", KILN_ERR_ATTEST_CHAIN,
		     "the Alias certificate is not signed by the CSR's key (the DeviceID key)");
	expect_fault("csr-other-key", KILN_ERR_ATTEST_KEY,
		     "is not the DeviceID key that issued the Alias certificate");
	expect_fault("binding-wrong-key", KILN_ERR_ATTEST_SIGNATURE,
		     "the binding of nonce, CSR and serial is not signed by the Alias key");
	expect_fault("binding-other-nonce", KILN_ERR_ATTEST_SIGNATURE,
		     "the binding of nonce, CSR and serial is not signed by the Alias key");
	dir = new_device("dice-fault-unknown", NULL);
	rot = boot(dir);
	KT_ERR(kiln_rot_inject(rot, "power-glitch"), KILN_ERR_ARG);
	KT_ERR(kiln_rot_inject(rot, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_inject(NULL, "csr-other-key"), KILN_ERR_ARG);
	/* Injecting twice is the same fault. */
	KT_OK(kiln_rot_inject(rot, "csr-other-key"));
	KT_OK(kiln_rot_inject(rot, "csr-other-key"));
	{
		kiln_buf der;
		kiln_csr *csr = NULL;

		kiln_buf_init(&der, 1 << 16);
		KT_OK(kiln_rot_csr(rot, &der, NULL));
		KT_OK(kiln_csr_parse(kiln_buf_view(&der), &csr, NULL));
		/* The CSR is well-formed, just for another key. */
		assert_int_not_equal(EVP_PKEY_eq(csr->pkey, kiln_rot_public_key(rot)), 1);
		kiln_csr_free(csr);
		kiln_buf_cleanup(&der);
	}
	kiln_rot_free(rot);
	kt_rmrf(dir);
	free(dir);
}

/* ------------------------------------------------------------ vendor CA */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A vendor CA (self-signed P-256) written as dir/ca.pem and dir/ca.key. */
static X509 *make_vendor_ca(const char *dir, const char *cn, EVP_PKEY **key_out)
{
	EVP_PKEY *key = kt_keygen("p256");
	X509 *x = X509_new();
	char *cert_path = kt_path(dir, "ca.pem"), *key_path = kt_path(dir, "ca.key");
	FILE *f;

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 3650));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(x, x, NID_subject_key_identifier, "hash");
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	f = fopen(cert_path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
	f = fopen(key_path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	free(cert_path);
	free(key_path);
	if (key_out != NULL)
		*key_out = key;
	else
		EVP_PKEY_free(key);
	return x;
}

/* widget.yaml with vendor_roots: [PEM of ca]. */
static kiln_policy *widget_with_root(X509 *ca)
{
	char *base = read_text(EXAMPLES "/policies/widget.yaml");
	kiln_buf y, pem;
	kiln_policy *p;

	kiln_buf_init(&y, 1 << 20);
	kiln_buf_init(&pem, 1 << 16);
	KT_OK(kiln_cert_pem(ca, &pem));
	KT_OK(kiln_buf_append_str(&y, base));
	KT_OK(kiln_buf_append_str(&y, "  vendor_roots:\n    - \""));
	for (size_t i = 0; i < pem.len; i++)
		KT_OK(pem.ptr[i] == '\n' ? kiln_buf_append_str(&y, "\\n")
					 : kiln_buf_append_u8(&y, pem.ptr[i]));
	KT_OK(kiln_buf_append_str(&y, "\"\n"));
	p = policy_from(kiln_buf_cstr(&y));
	assert_int_equal(p->attestation.n_vendor_roots, 1);
	kiln_buf_cleanup(&y);
	kiln_buf_cleanup(&pem);
	free(base);
	return p;
}

static void test_vendor_endorsed_device(void **state)
{
	char *cadir = kt_tmpdir("dice-vendor-ca"), *otherdir = kt_tmpdir("dice-vendor-other");
	char *cert = kt_path(cadir, "ca.pem"), *key = kt_path(cadir, "ca.key");
	X509 *ca = make_vendor_ca(cadir, "Example Silicon Root", NULL);
	X509 *other_ca = make_vendor_ca(otherdir, "Example Silicon Root", NULL);
	kiln_policy *trusting = widget_with_root(ca), *other_policy = widget_with_root(other_ca);
	struct kiln_dice_sim_opts o = { .serial = "WIDGET-99", .vendor_ca_cert = cert,
					.vendor_ca_key = key };
	char *dir = new_device("dice-vendor", &o);
	char *devid_path = kt_path(dir, "deviceid.crt");
	kiln_rot *rot = boot(dir);
	struct kiln_attest_result res;
	struct stat st;
	kiln_diag d;
	X509 *alias;

	(void)state;
	assert_int_equal(stat(devid_path, &st), 0);
	if (!kiln_is_ok(attest(rot, trusting, "evidence-sim-vendor.json", &res, &d)))
		fail_msg("verify: %s", d.text);
	assert_string_equal(res.firmware_version, "1.0.0");
	/* The plain policy asks for no endorsement and accepts it too. */
	KT_OK(attest(rot, widget, NULL, &res, &d));
	/* A policy trusting another vendor refuses it. */
	KT_ERR(attest(rot, other_policy, NULL, &res, &d), KILN_ERR_ATTEST_VENDOR);
	/* An unendorsed device is refused by the trusting policy. */
	{
		char *plain = new_device("dice-vendor-plain", NULL);
		kiln_rot *prot = boot(plain);

		KT_ERR(attest(prot, trusting, NULL, &res, &d), KILN_ERR_ATTEST_VENDOR);
		assert_non_null(strstr(d.text, "the evidence has none"));
		kiln_rot_free(prot);
		kt_rmrf(plain);
		free(plain);
	}
	/* Independently: openssl verifies vendor CA -> DeviceID -> Alias. */
	alias = alias_cert_of(rot);
	{
		char *alias_path = kt_path(dir, "alias.pem");
		FILE *f = fopen(alias_path, "w");

		assert_non_null(f);
		assert_int_equal(PEM_write_X509(f, alias), 1);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(kt_system("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", cert,
					   devid_path), 0);
		assert_int_equal(kt_system("openssl verify -CAfile '%s' -untrusted '%s' '%s' >/dev/null 2>&1",
					   cert, devid_path, alias_path), 0);
		assert_int_not_equal(kt_system("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1",
					       cert, alias_path), 0);
		free(alias_path);
	}
	X509_free(alias);
	kiln_rot_free(rot);
	/* A DeviceID certificate that is not this device's is refused at boot. */
	{
		char *dir2 = new_device("dice-vendor-2", &o);
		char *p2 = kt_path(dir2, "deviceid.crt");
		kiln_buf mine;
		kiln_rot *r2 = NULL;

		kt_read_file(devid_path, &mine);
		kt_write_file(p2, mine.ptr, mine.len);
		kiln_diag_clear(&d);
		KT_ERR(kiln_rot_open(dir2, &r2, &d), KILN_ERR_CONFIG);
		assert_non_null(strstr(d.text, "certifies another key"));
		kt_write_file(p2, "junk", 4);
		KT_ERR(kiln_rot_open(dir2, &r2, NULL), KILN_ERR_CONFIG);
		kiln_buf_cleanup(&mine);
		free(p2);
		kt_rmrf(dir2);
		free(dir2);
	}
	X509_free(ca);
	X509_free(other_ca);
	kiln_policy_free(trusting);
	kiln_policy_free(other_policy);
	free(devid_path);
	free(cert);
	free(key);
	kt_rmrf(dir);
	kt_rmrf(cadir);
	kt_rmrf(otherdir);
	free(dir);
	free(cadir);
	free(otherdir);
}

static void test_vendor_option_refusals(void **state)
{
	char *a = kt_tmpdir("dice-vca-a"), *b = kt_tmpdir("dice-vca-b");
	char *cert_a = kt_path(a, "ca.pem"), *key_b = kt_path(b, "ca.key");
	char *target = kt_tmpdir("dice-vca-target");
	char *meta = kt_path(target, "rot.json");
	X509 *ca_a = make_vendor_ca(a, "A", NULL), *ca_b = make_vendor_ca(b, "B", NULL);
	struct stat st;
	kiln_diag d;

	(void)state;
	/* The key of another CA. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_dice_create(target, &(struct kiln_dice_sim_opts){ .vendor_ca_cert = cert_a,
									   .vendor_ca_key = key_b },
				    &d),
	       KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "is not the key of"));
	/* A certificate where the key should be, and the other way round. */
	KT_ERR(kiln_rot_dice_create(target, &(struct kiln_dice_sim_opts){ .vendor_ca_cert = cert_a,
									   .vendor_ca_key = cert_a },
				    NULL),
	       KILN_ERR_ARG);
	KT_ERR(kiln_rot_dice_create(target, &(struct kiln_dice_sim_opts){ .vendor_ca_cert = key_b,
									   .vendor_ca_key = key_b },
				    NULL),
	       KILN_ERR_ARG);
	assert_int_not_equal(stat(meta, &st), 0);
	X509_free(ca_a);
	X509_free(ca_b);
	free(cert_a);
	free(key_b);
	free(meta);
	kt_rmrf(a);
	kt_rmrf(b);
	kt_rmrf(target);
	free(a);
	free(b);
	free(target);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_state_dir),
		cmocka_unit_test(test_default_images_are_the_examples),
		cmocka_unit_test(test_create_into_existing_device),
		cmocka_unit_test(test_create_refuses_bad_options),
		cmocka_unit_test(test_options_and_device_info),
		cmocka_unit_test(test_derived_defaults),
		cmocka_unit_test(test_boot_is_deterministic),
		cmocka_unit_test(test_new_firmware_new_alias),
		cmocka_unit_test(test_key_schedule_as_documented),
		cmocka_unit_test(test_uds_must_be_private),
		cmocka_unit_test(test_csr_is_for_deviceid),
		cmocka_unit_test(test_alias_certificate_profile),
		cmocka_unit_test(test_evidence_shape),
		cmocka_unit_test(test_verifies_against_widget_policy),
		cmocka_unit_test(test_unapproved_firmware_refused),
		cmocka_unit_test(test_install_refusals),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_vendor_endorsed_device),
		cmocka_unit_test(test_vendor_option_refusals),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
