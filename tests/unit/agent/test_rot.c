/*
 * Unit tests for src/agent/rot.c: the state directory's rot.json (written,
 * read back, and every way a damaged one is refused), dispatch by its type,
 * and the accessors and argument checks every root of trust shares.
 */
#include "support/support.h"

#include "agent/agent_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct kiln_rot_meta sample = {
	.type = "dice", .serial = "WIDGET-1", .firmware_version = "1.0.0",
	.soc = "SOC-1", .pcb = "PCB-1", .se = "SE-1",
};

static void write_meta_text(const char *dir, const char *text)
{
	char *p = kt_path(dir, "rot.json");

	kt_write_file(p, text, strlen(text));
	free(p);
}

/* ------------------------------------------------------------ helpers */

static void test_text_ok(void **state)
{
	char long_text[KILN_ROT_TEXT_MAX + 1];

	(void)state;
	assert_true(kiln_rot_text_ok("SIM-0A1B", 16));
	assert_true(kiln_rot_text_ok("a!~", 4));
	assert_false(kiln_rot_text_ok(NULL, 16));
	assert_false(kiln_rot_text_ok("", 16));
	assert_false(kiln_rot_text_ok("a b", 16));
	assert_false(kiln_rot_text_ok("a\tb", 16));
	assert_false(kiln_rot_text_ok("a\x7f", 16));
	assert_false(kiln_rot_text_ok("caf\xc3\xa9", 16));
	assert_false(kiln_rot_text_ok("abcd", 4)); /* no room for the NUL */
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	assert_false(kiln_rot_text_ok(long_text, KILN_ROT_TEXT_MAX));
	long_text[KILN_ROT_TEXT_MAX - 1] = '\0';
	assert_true(kiln_rot_text_ok(long_text, KILN_ROT_TEXT_MAX));
}

static void test_path(void **state)
{
	char out[16];
	kiln_diag d;

	(void)state;
	KT_OK(kiln_rot_path("/a", "rot.json", out, sizeof(out), NULL));
	assert_string_equal(out, "/a/rot.json");
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_path("/a/long/directory", "rot.json", out, sizeof(out), &d), KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "path too long"));
	KT_ERR(kiln_rot_path(NULL, "x", out, sizeof(out), NULL), KILN_ERR_ARG);
	KT_ERR(kiln_rot_path("", "x", out, sizeof(out), NULL), KILN_ERR_ARG);
}

/* ----------------------------------------------------------- rot.json */

static void test_meta_round_trip(void **state)
{
	char *dir = kt_tmpdir("rot-meta");
	char *p = kt_path(dir, "rot.json");
	struct kiln_rot_meta m;
	struct stat st;
	kiln_buf text;

	(void)state;
	KT_OK(kiln_rot_meta_write(dir, &sample, NULL));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	memset(&m, 0x55, sizeof(m));
	KT_OK(kiln_rot_meta_read(dir, &m, NULL));
	assert_string_equal(m.type, "dice");
	assert_string_equal(m.serial, "WIDGET-1");
	assert_string_equal(m.firmware_version, "1.0.0");
	assert_string_equal(m.soc, "SOC-1");
	assert_string_equal(m.pcb, "PCB-1");
	assert_string_equal(m.se, "SE-1");
	/* The documented layout, compact and key-sorted. */
	kt_read_file(p, &text);
	assert_string_equal(kiln_buf_cstr(&text),
			    "{\"components\":{\"pcb\":\"PCB-1\",\"se\":\"SE-1\",\"soc\":\"SOC-1\"},"
			    "\"firmware_version\":\"1.0.0\",\"serial\":\"WIDGET-1\",\"type\":\"dice\"}\n");
	kiln_buf_cleanup(&text);
	free(p);
	kt_rmrf(dir);
	free(dir);
}

static void expect_meta_refused(const char *dir, const char *text, kiln_err err, const char *needle)
{
	struct kiln_rot_meta m;
	kiln_rot *rot = (kiln_rot *)1;
	kiln_diag d;

	write_meta_text(dir, text);
	kiln_diag_clear(&d);
	memset(&m, 0, sizeof(m));
	KT_ERR(kiln_rot_meta_read(dir, &m, &d), err);
	if (strstr(d.text, needle) == NULL)
		fail_msg("\"%s\" lacks \"%s\" (input %s)", d.text, needle, text);
	assert_null(strchr(d.text, '\n'));
	assert_string_equal(m.serial, ""); /* nothing half-filled */
	/* kiln_rot_open refuses it the same way. */
	KT_ERR(kiln_rot_open(dir, &rot, NULL), err);
	assert_null(rot);
}

#define GOOD_COMPONENTS "\"components\":{\"soc\":\"S\",\"pcb\":\"P\",\"se\":\"E\"}"

static void test_meta_refusals(void **state)
{
	char *dir = kt_tmpdir("rot-bad");
	char *big;

	(void)state;
	expect_meta_refused(dir, "not json", KILN_ERR_CONFIG, "malformed JSON");
	expect_meta_refused(dir, "[]", KILN_ERR_CONFIG, "not a JSON object");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\"," GOOD_COMPONENTS
			    ",\"uds\":\"00\"}",
			    KILN_ERR_CONFIG, "unknown member \"uds\"");
	expect_meta_refused(dir, "{\"type\":\"dice\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}",
			    KILN_ERR_CONFIG, "\"serial\" is missing");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"serial\":\"A B\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}",
			    KILN_ERR_CONFIG, "\"serial\" is missing or not printable");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"serial\":7,\"firmware_version\":\"1\"," GOOD_COMPONENTS "}",
			    KILN_ERR_CONFIG, "\"serial\"");
	expect_meta_refused(dir, "{\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\"}",
			    KILN_ERR_CONFIG, "\"components\" is missing");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\","
			    "\"components\":{\"soc\":\"S\",\"pcb\":\"P\",\"se\":\"E\",\"gpu\":\"G\"}}",
			    KILN_ERR_CONFIG, "unknown member \"gpu\"");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\","
			    "\"components\":{\"soc\":\"S\",\"pcb\":\"P\"}}",
			    KILN_ERR_CONFIG, "\"se\" is missing");
	expect_meta_refused(dir,
			    "{\"type\":\"dice\",\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\","
			    GOOD_COMPONENTS "}",
			    KILN_ERR_CONFIG, "duplicate");
	/* A serial longer than KILN_DEVICE_SERIAL_MAX. */
	{
		char text[512];

		(void)snprintf(text, sizeof(text),
			       "{\"type\":\"dice\",\"serial\":\"%065d\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}",
			       1);
		expect_meta_refused(dir, text, KILN_ERR_CONFIG, "at most 64 bytes");
	}
	/* Larger than the cap. */
	big = malloc(KILN_ROT_META_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', KILN_ROT_META_MAX + 1);
	big[KILN_ROT_META_MAX + 1] = '\0';
	expect_meta_refused(dir, big, KILN_ERR_TOO_BIG, "limit");
	free(big);
	kt_rmrf(dir);
	free(dir);
}

/* ----------------------------------------------------------- dispatch */

static void test_open_dispatch(void **state)
{
	char *dir = kt_tmpdir("rot-open");
	char *empty = kt_tmpdir("rot-empty");
	kiln_rot *rot = (kiln_rot *)1;
	kiln_diag d;

	(void)state;
	/* Nothing there. */
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_open(empty, &rot, &d), KILN_ERR_NOT_FOUND);
	assert_null(rot);
	assert_non_null(strstr(d.text, "holds no device"));
	KT_ERR(kiln_rot_open("/nonexistent/kiln/state", &rot, NULL), KILN_ERR_NOT_FOUND);
	/* A type this build does not know. */
	write_meta_text(dir, "{\"type\":\"pkcs11\",\"serial\":\"A\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}");
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_open(dir, &rot, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "root of trust type 'pkcs11' is not supported by this build"));
	/* A tpm type: reaches the TPM root of trust, which needs a TPM named. */
	write_meta_text(dir, "{\"type\":\"tpm\",\"serial\":\"A\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}");
	unsetenv("KILN_TPM_TCTI");
	unsetenv("TPM2TOOLS_TCTI");
	unsetenv("TSS2_TCTI");
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_open(dir, &rot, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "set KILN_TPM_TCTI"));
	assert_null(rot);
	/* A dice type: reaches the simulator, which needs its files. */
	write_meta_text(dir, "{\"type\":\"dice\",\"serial\":\"A\",\"firmware_version\":\"1\"," GOOD_COMPONENTS "}");
	KT_ERR(kiln_rot_open(dir, &rot, NULL), KILN_ERR_NOT_FOUND);
	assert_null(rot);
	KT_ERR(kiln_rot_open(dir, NULL, NULL), KILN_ERR_ARG);
	kt_rmrf(dir);
	kt_rmrf(empty);
	free(dir);
	free(empty);
}

static void test_accessors(void **state)
{
	char *dir = kt_tmpdir("rot-accessors");
	struct kiln_dice_sim_opts o = { .serial = "WIDGET-5", .soc_id = "S1", .pcb_serial = "P1",
					.se_serial = "E1", .firmware_version = "3.0" };
	kiln_rot *rot = NULL;
	json_t *info = NULL;
	kiln_buf der;

	(void)state;
	KT_OK(kiln_rot_dice_create(dir, &o, NULL));
	KT_OK(kiln_rot_open(dir, &rot, NULL));
	assert_string_equal(kiln_rot_type(rot), "dice");
	assert_string_equal(kiln_rot_serial(rot), "WIDGET-5");
	assert_non_null(kiln_rot_public_key(rot));
	KT_OK(kiln_rot_device_info(rot, &info));
	{
		json_t *want = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "serial", "WIDGET-5",
					 "firmware_version", "3.0", "components", "soc", "S1", "pcb",
					 "P1", "se", "E1");

		assert_true(json_equal(info, want));
		json_decref(want);
	}
	json_decref(info);
	KT_ERR(kiln_rot_device_info(NULL, &info), KILN_ERR_ARG);
	KT_ERR(kiln_rot_device_info(rot, NULL), KILN_ERR_ARG);
	kiln_buf_init(&der, 1 << 16);
	KT_ERR(kiln_rot_csr(NULL, &der, NULL), KILN_ERR_ARG);
	KT_OK(kiln_rot_csr(rot, &der, NULL));
	assert_true(der.len > 0);
	kiln_buf_cleanup(&der);
	kiln_rot_free(rot);
	/* NULL-safe. */
	kiln_rot_free(NULL);
	assert_string_equal(kiln_rot_type(NULL), "none");
	assert_string_equal(kiln_rot_serial(NULL), "");
	assert_null(kiln_rot_public_key(NULL));
	{
		uint8_t nonce[32] = { 0 };
		json_t *ev = NULL;

		KT_ERR(kiln_rot_evidence(NULL, nonce, kiln_slice_of(nonce, 1), &ev, NULL), KILN_ERR_ARG);
		KT_ERR(kiln_rot_inject(NULL, "csr-other-key"), KILN_ERR_ARG);
	}
	kt_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_ok),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_meta_round_trip),
		cmocka_unit_test(test_meta_refusals),
		cmocka_unit_test(test_open_dispatch),
		cmocka_unit_test(test_accessors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
