/*
 * Unit tests for src/cli/cmd_backup.c over a deployment made by kiln init:
 * backup create (--json) writes a sealed file; restore makes a request,
 * refuses to run it before two officers approve, then brings back the
 * inventory as it was (a lot opened after the backup is gone); a truncated
 * file and usage errors are refused (exit 1 or 2, one line on stderr).
 */
#include "support/cli_deploy.h"

#include <jansson.h>
#include <sqlite3.h>
#include <string.h>

static char *root, *dir;

static int setup(void **state)
{
	(void)state;
	kt_cli_deploy("cli-backup", &root, &dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_rmrf(root);
	free(root);
	free(dir);
	return 0;
}

static void fails(int want, const char *what, kiln_buf *out, kiln_buf *err, int rc)
{
	assert_int_equal(rc, want);
	assert_int_equal(kt_lines(err), 1);
	if (strstr(kiln_buf_cstr(err), what) == NULL)
		fail_msg("expected '%s' in '%s'", what, kiln_buf_cstr(err));
	kiln_buf_cleanup(out);
	kiln_buf_cleanup(err);
}

static int64_t lots(const char *lot)
{
	char *db = kt_path(dir, "kiln.db");
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM batches WHERE lot = ?", -1,
					    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_bind_text(st, 1, lot, -1, SQLITE_STATIC), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(db);
	return v;
}

static void test_create_and_restore(void **state)
{
	char *file = kt_path(root, "b.kbk"), *cut = kt_path(root, "cut.kbk");
	char *ka = kt_path(dir, "kt-officer-a.key"), *kb = kt_path(dir, "kt-officer-b.key");
	char id[64];
	kiln_buf out, err, bytes;
	json_t *j;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json", "backup",
				"create", "--out", file, NULL), CLI_OK);
	j = json_loadb((const char *)out.ptr, out.len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "sha256"))), 64);
	assert_true(json_integer_value(json_object_get(j, "tree_size")) > 0);
	assert_false(json_is_true(json_object_get(j, "key_created"))); /* made by kiln init */
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	KT_OK(kiln_file_read(file, 1 << 26, &bytes, NULL));
	assert_memory_equal(bytes.ptr, "KILNBKUP", 8);
	KT_OK(kiln_file_write(cut, kiln_slice_of(bytes.ptr, bytes.len - 1), 0600, NULL));
	kiln_buf_cleanup(&bytes);

	/* After the backup: a lot the restore takes away. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "batch", "open",
				"--product", "widget-test", "--lot", "LOT-AFTER", "--quantity", "2",
				NULL), CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(lots("LOT-AFTER"), 1);

	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "--json", "backup",
				"restore", file, NULL), CLI_OK);
	j = json_loadb((const char *)out.ptr, out.len, 0, NULL);
	assert_non_null(j);
	kiln_strtrunc(id, json_string_value(json_object_get(j, "request")), sizeof(id));
	assert_string_equal(json_string_value(json_object_get(j, "operation")), "backup-restore");
	json_decref(j);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	fails(CLI_FAIL, "officer approvals", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "restore", file,
		     "--request", id, NULL));
	assert_int_equal(lots("LOT-AFTER"), 1);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", id,
				"--key", ka, NULL), CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "approve", id,
				"--key", kb, NULL), CLI_OK);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	fails(CLI_FAIL, "truncated backup", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "restore", cut,
		     "--request", id, NULL));
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup",
				"restore", file, "--request", id, NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "inventory restored from"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	assert_int_equal(lots("LOT-AFTER"), 0);
	fails(CLI_FAIL, "already executed", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "restore", file,
		     "--request", id, NULL));
	free(file);
	free(cut);
	free(ka);
	free(kb);
}

static void test_usage(void **state)
{
	kiln_buf out, err;

	(void)state;
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "backup", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "backup create --out FILE"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	fails(CLI_USAGE, "expected 'create --out FILE'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "create", NULL));
	fails(CLI_USAGE, "expected 'create --out FILE'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "restore", NULL));
	fails(CLI_USAGE, "expected 'create --out FILE'", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "create", "--out",
		     "x", "--request", "r", NULL));
	fails(CLI_FAIL, "No such file", &out, &err,
	      kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "backup", "restore",
		     "/nonexistent/b.kbk", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
