/*
 * Unit tests for src/cli/device/main.c: the kiln-device binary, run as a
 * program (it links the agent library only, no server): --help, unknown
 * commands, and init, install, show, request and provision with their usage
 * errors (exit 2), failures (exit 1) and outputs, one line on stderr each.
 * The binary is $KILN_BIN's sibling, or the one this test was built with.
 */
#include "support/support.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FW KILN_SOURCE_DIR "/examples/firmware"
#define NONCE32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static char bin[4096];
static char *tmp, *out_path, *err_path;
static kiln_buf out, err;

static int setup(void **state)
{
	const char *kb = getenv("KILN_BIN");

	(void)state;
	if (kb != NULL && kb[0] != '\0') {
		char copy[4096];

		assert_true(strlen(kb) < sizeof(copy));
		memcpy(copy, kb, strlen(kb) + 1);
		assert_true((size_t)snprintf(bin, sizeof(bin), "%s/kiln-device", dirname(copy)) <
			    sizeof(bin));
	} else {
		KT_OK(kiln_strlcpy(bin, KILN_DEVICE_BIN, sizeof(bin)));
	}
	tmp = kt_tmpdir("device-main");
	out_path = kt_path(tmp, "out.txt");
	err_path = kt_path(tmp, "err.txt");
	kiln_buf_init(&out, 1);
	kiln_buf_init(&err, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	kt_rmrf(tmp);
	free(tmp);
	free(out_path);
	free(err_path);
	return 0;
}

/* Runs kiln-device with the given (shell-quoted by the caller) arguments; out and err hold its output. */
static int run(const char *fmt, ...) KILN_PRINTF(1, 2);

static int run(const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(args));
	rc = kt_system("'%s' %s >'%s' 2>'%s'", bin, args, out_path, err_path);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	kt_read_file(out_path, &out);
	kt_read_file(err_path, &err);
	return rc;
}

static const char *o(void)
{
	return kiln_buf_cstr(&out);
}

static const char *e(void)
{
	return kiln_buf_cstr(&err);
}

/* The run failed with want and one line on stderr saying what. */
static void failed(int rc, int want, const char *what)
{
	if (rc != want || strstr(e(), what) == NULL || kt_lines(&err) != 1)
		fail_msg("expected exit %d and '%s', got exit %d and '%s'", want, what, rc, e());
	assert_true(strncmp(e(), "kiln-device: ", 13) == 0);
}

static json_t *json_out(void)
{
	json_t *j = json_loadb((const char *)out.ptr, out.len, 0, NULL);

	if (j == NULL)
		fail_msg("not JSON: %s", o());
	return j;
}

static char *state_dir(const char *name)
{
	return kt_path(tmp, name);
}

/* ------------------------------------------------------------ dispatch */

static void test_help_and_dispatch(void **state)
{
	(void)state;
	assert_int_equal(run("--help"), 0);
	assert_non_null(strstr(o(), "usage: kiln-device COMMAND"));
	assert_int_equal(err.len, 0);
	assert_int_equal(run("-h"), 0);
	assert_non_null(strstr(o(), "provision --state DIR"));
	/* No command: the usage on stderr, exit 2. */
	assert_int_equal(run("%s", ""), 2);
	assert_non_null(strstr(e(), "usage: kiln-device COMMAND"));
	assert_int_equal(out.len, 0);
	failed(run("flash --state x"), 2, "unknown command 'flash'; see kiln-device --help");
	failed(run("--state x init"), 2, "unknown command '--state'");
	/* Each command's --help is the usage. */
	assert_int_equal(run("init --help"), 0);
	assert_non_null(strstr(o(), "init --state DIR --rot dice"));
	assert_int_equal(run("show -h"), 0);
	assert_non_null(strstr(o(), "usage: kiln-device"));
}

/* ------------------------------------------------------------ init */

static void test_init(void **state)
{
	char *d = state_dir("dev-init");
	struct stat st;
	json_t *j, *c;

	(void)state;
	assert_int_equal(run("init --state '%s' --rot dice --serial WGT-DEV-0001", d), 0);
	assert_int_equal(kt_lines(&out), 1);
	assert_non_null(strstr(o(), "device created in"));
	assert_int_equal(err.len, 0);
	assert_int_equal(stat(d, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* show: what it is, as JSON. */
	assert_int_equal(run("show --state '%s'", d), 0);
	j = json_out();
	assert_string_equal(json_string_value(json_object_get(j, "serial")), "WGT-DEV-0001");
	assert_string_equal(json_string_value(json_object_get(j, "firmware_version")), "1.0.0");
	assert_string_equal(json_string_value(json_object_get(j, "rot")), "dice");
	c = json_object_get(j, "components");
	assert_true(json_is_object(c));
	assert_non_null(json_string_value(json_object_get(c, "soc")));
	assert_non_null(json_string_value(json_object_get(c, "pcb")));
	assert_non_null(json_string_value(json_object_get(c, "se")));
	json_decref(j);
	/* Twice into the same state: refused, the device is kept. */
	failed(run("init --state '%s' --rot dice --serial WGT-DEV-0002", d), 1,
	       "already holds a device");
	assert_int_equal(run("show --state '%s'", d), 0);
	assert_non_null(strstr(o(), "WGT-DEV-0001"));
	/* --json: nothing on stdout but success. */
	free(d);
	d = state_dir("dev-init-json");
	assert_int_equal(run("init --state '%s' --rot dice --json", d), 0);
	assert_int_equal(out.len, 0);
	/* Without --serial the simulator names it. */
	assert_int_equal(run("show --state '%s'", d), 0);
	assert_non_null(strstr(o(), "\"SIM-"));
	free(d);
}

static void test_init_with_firmware(void **state)
{
	char *d = state_dir("dev-fw");
	json_t *j;

	(void)state;
	assert_int_equal(run("init --state '%s' --rot dice --serial WGT-DEV-0003 --firmware '%s' "
			     "--firmware-version 1.1.0", d, FW "/widget-fw-1.1.0.bin"), 0);
	assert_int_equal(run("show --state '%s' --json", d), 0);
	j = json_out();
	assert_string_equal(json_string_value(json_object_get(j, "firmware_version")), "1.1.0");
	json_decref(j);
	free(d);
}

static void test_init_usage_and_failures(void **state)
{
	char *d = state_dir("dev-bad");

	(void)state;
	failed(run("init --rot dice"), 2, "init: --state and --rot are required");
	failed(run("init --state '%s'", d), 2, "init: --state and --rot are required");
	failed(run("init --state '%s' --rot pkcs11", d), 2, "init: --rot pkcs11 is not available (dice, tpm)");
	failed(run("init --state '%s' --rot tpm --firmware x", d), 2, "--rot tpm takes --serial");
	failed(run("init --state '%s' --rot dice --tamper bootloader", d), 2, "are for --rot tpm");
	failed(run("init --state '%s' --rot dice --vendor-ca ca.pem", d), 2,
	       "--vendor-ca and --vendor-key go together");
	failed(run("init --state '%s' --rot dice --vendor-key k.pem", d), 2,
	       "--vendor-ca and --vendor-key go together");
	failed(run("init --state '%s' --rot dice --colour red", d), 2, "unknown option '--colour'");
	failed(run("init --state '%s' --rot dice extra", d), 2, "unexpected argument 'extra'");
	failed(run("init --state '%s' --rot", d), 2, "option --rot needs a value");
	/* Failures: nothing is left half-made. */
	failed(run("init --state '%s' --rot dice --firmware '%s/none.bin' --firmware-version 1.0.0",
		   d, tmp), 1, "none.bin");
	failed(run("init --state '%s' --rot dice --serial 'has space'", d), 1, "serial");
	assert_int_not_equal(run("show --state '%s'", d), 0);
	free(d);
}

/* ------------------------------------------------------------ install */

static void test_install(void **state)
{
	char *d = state_dir("dev-install");
	json_t *j;

	(void)state;
	assert_int_equal(run("init --state '%s' --rot dice --serial WGT-DEV-0010", d), 0);
	assert_int_equal(run("install --state '%s' --firmware '%s' --firmware-version 1.1.0", d,
			     FW "/widget-fw-1.1.0.bin"), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(run("show --state '%s'", d), 0);
	j = json_out();
	assert_string_equal(json_string_value(json_object_get(j, "firmware_version")), "1.1.0");
	json_decref(j);
	failed(run("install --state '%s' --firmware '%s'", d, FW "/widget-fw-1.1.0.bin"), 2,
	       "install: --state, --firmware and --firmware-version are required");
	failed(run("install --state '%s' --firmware-version 2", d), 2,
	       "install: --state, --firmware and --firmware-version are required");
	failed(run("install --firmware '%s' --firmware-version 2", FW "/widget-fw-1.1.0.bin"), 2,
	       "install: --state, --firmware and --firmware-version are required");
	failed(run("install --state '%s' --firmware '%s/none.bin' --firmware-version 2", d, tmp), 1,
	       "none.bin");
	failed(run("install --state '%s/nothing' --firmware '%s' --firmware-version 2", tmp,
		   FW "/widget-fw-1.1.0.bin"), 1, "holds no device");
	assert_int_equal(run("install --help"), 0);
	free(d);
}

/* ------------------------------------------------------------ show */

static void test_show_failures(void **state)
{
	(void)state;
	failed(run("show"), 2, "show: --state is required");
	failed(run("show --state '%s/nothing'", tmp), 1, "holds no device");
	/* A directory that holds no device. */
	failed(run("show --state '%s'", tmp), 1, "holds no device");
}

/* ------------------------------------------------------------ request */

static void test_request(void **state)
{
	char *d = state_dir("dev-request");
	json_t *j, *ev;

	(void)state;
	assert_int_equal(run("init --state '%s' --rot dice --serial WGT-DEV-0020", d), 0);
	assert_int_equal(run("request --state '%s' --nonce %s", d, NONCE32), 0);
	j = json_out();
	/* The finish request of docs/protocol.md, for that nonce. */
	assert_string_equal(json_string_value(json_object_get(j, "nonce")), NONCE32);
	assert_non_null(json_string_value(json_object_get(j, "csr")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "device"), "serial")),
			    "WGT-DEV-0020");
	ev = json_object_get(j, "evidence");
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "dice");
	assert_non_null(json_string_value(json_object_get(ev, "alias_cert")));
	assert_non_null(json_string_value(json_object_get(ev, "signature")));
	json_decref(j);
	/* A policy without attestation: no evidence. */
	assert_int_equal(run("request --state '%s' --nonce %s --attestation none", d, NONCE32), 0);
	j = json_out();
	assert_null(json_object_get(j, "evidence"));
	json_decref(j);
	/* A fault a test asks for. */
	assert_int_equal(run("request --state '%s' --nonce %s --fault binding-other-nonce", d, NONCE32),
			 0);
	/* Usage errors and failures. */
	failed(run("request --state '%s'", d), 2, "request: --state and --nonce are required");
	failed(run("request --nonce %s", NONCE32), 2, "request: --state and --nonce are required");
	failed(run("request --state '%s' --nonce 'not base64'", d), 2,
	       "--nonce must be the base64 of 32 bytes");
	failed(run("request --state '%s' --nonce AAAA", d), 2,
	       "--nonce must be the base64 of 32 bytes");
	failed(run("request --state '%s' --nonce %s --fault no-such-fault", d, NONCE32), 1,
	       "unknown fault 'no-such-fault'");
	failed(run("request --state '%s/nothing' --nonce %s", tmp, NONCE32), 1, "holds no device");
	free(d);
}

/* ------------------------------------------------------------ provision */

static void test_provision_usage_and_failures(void **state)
{
	char *d = state_dir("dev-prov");
	const char *all = "--server https://127.0.0.1:1 --cert c.pem --key k.pem --ca ca.pem "
			  "--product widget --lot LOT-1";

	(void)state;
	assert_int_equal(run("init --state '%s' --rot dice --serial WGT-DEV-0030", d), 0);
	failed(run("provision --state '%s'", d), 2,
	       "provision: --state, --server, --cert, --key, --ca, --product and --lot are required");
	failed(run("provision --state '%s' --server https://127.0.0.1:1 --cert c --key k --ca a "
		   "--product widget", d), 2, "are required");
	failed(run("provision --state '%s' %s --count 0", d, all), 2,
	       "--count must be 1 to 10000000");
	failed(run("provision --state '%s' %s --count 10000001", d, all), 2,
	       "--count must be 1 to 10000000");
	failed(run("provision --state '%s' %s --count 2 --parallel 0", d, all), 2,
	       "--parallel must be 1 to 64");
	failed(run("provision --state '%s' %s --count 2 --parallel 65", d, all), 2,
	       "--parallel must be 1 to 64");
	/* Nothing listens there: one line, exit 1, and the device has no certificate. */
	failed(run("provision --state '%s' %s", d, all), 1, "https://127.0.0.1:1/v1/provision/begin");
	{
		char *cert = kt_path(d, "cert.pem");

		assert_int_not_equal(access(cert, F_OK), 0);
		free(cert);
	}
	/* An unknown fault is named. */
	failed(run("provision --state '%s' %s --fault no-such-fault", d, all), 1,
	       "unknown fault 'no-such-fault'");
	/* A station run where every device fails: a summary, exit 1. */
	assert_int_equal(run("provision --state '%s/station' %s --count 2 --json", tmp, all), 1);
	{
		json_t *j = json_out();

		assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
		assert_int_equal(json_integer_value(json_object_get(j, "failed")), 2);
		assert_int_equal(json_integer_value(json_object_get(j, "issued")), 0);
		json_decref(j);
	}
	assert_int_equal(kt_lines(&err), 2);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_and_dispatch),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_init_with_firmware),
		cmocka_unit_test(test_init_usage_and_failures),
		cmocka_unit_test(test_install),
		cmocka_unit_test(test_show_failures),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_provision_usage_and_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
