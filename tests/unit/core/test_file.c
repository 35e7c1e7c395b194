/* Unit tests for src/core/file.c: capped reads and atomic writes. */
#include "support/support.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->dir = kt_tmpdir("file");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	(void)closedir(dp);
	return n;
}

static void assert_one_line(const kiln_diag *d)
{
	assert_true(d->code != KILN_OK);
	assert_true(strlen(d->text) > 0);
	assert_null(strchr(d->text, '\n'));
}

static void test_read_ok(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "a.txt");
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	kt_write_file(path, "hello\n", 6);
	KT_OK(kiln_file_read(path, 100, &b, &d));
	assert_int_equal(b.len, 6);
	assert_string_equal(kiln_buf_cstr(&b), "hello\n");
	assert_int_equal(b.max, 100);
	assert_int_equal(d.code, KILN_OK);
	kiln_buf_cleanup(&b);
	free(path);
}

static void test_read_empty(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "empty");
	kiln_buf b;

	kt_write_file(path, "", 0);
	KT_OK(kiln_file_read(path, 0, &b, NULL));
	assert_int_equal(b.len, 0);
	assert_string_equal(kiln_buf_cstr(&b), "");
	kiln_buf_cleanup(&b);
	free(path);
}

/* Larger than the internal chunk, with binary content. */
static void test_read_large_binary(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "big.bin");
	const size_t n = 100000;
	uint8_t *data = malloc(n);
	kiln_buf b;

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 8));
	kt_write_file(path, data, n);
	KT_OK(kiln_file_read(path, n, &b, NULL)); /* exactly max */
	assert_int_equal(b.len, n);
	assert_memory_equal(b.ptr, data, n);
	kiln_buf_cleanup(&b);
	free(data);
	free(path);
}

static void test_read_missing(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "missing");
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_file_read(path, 100, &b, &d), KILN_ERR_NOT_FOUND);
	assert_int_equal(d.code, KILN_ERR_NOT_FOUND);
	assert_non_null(strstr(d.text, path));
	assert_one_line(&d);
	/* out is a valid empty buffer even on failure */
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	KT_ERR(kiln_file_read(path, 100, &b, NULL), KILN_ERR_NOT_FOUND);
	kiln_buf_cleanup(&b);
	free(path);
}

static void test_read_too_big(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "eleven");
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	kt_write_file(path, "0123456789A", 11);
	KT_ERR(kiln_file_read(path, 10, &b, &d), KILN_ERR_TOO_BIG);
	assert_int_equal(d.code, KILN_ERR_TOO_BIG);
	assert_non_null(strstr(d.text, "10-byte limit"));
	assert_one_line(&d);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	/* one more byte allowed: fine */
	KT_OK(kiln_file_read(path, 11, &b, NULL));
	assert_int_equal(b.len, 11);
	kiln_buf_cleanup(&b);
	/* over the limit by far, across several chunks */
	{
		char *big = calloc(1, 50000);

		assert_non_null(big);
		kt_write_file(path, big, 50000);
		KT_ERR(kiln_file_read(path, 20000, &b, NULL), KILN_ERR_TOO_BIG);
		kiln_buf_cleanup(&b);
		free(big);
	}
	free(path);
}

static void test_read_directory(void **state)
{
	struct fixture *f = *state;
	kiln_buf b;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_file_read(f->dir, 100, &b, &d), KILN_ERR_IO);
	assert_one_line(&d);
	kiln_buf_cleanup(&b);
}

static void test_read_unreadable(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "secret");
	kiln_buf b;

	if (geteuid() == 0) {
		free(path);
		skip(); /* root reads everything */
	}
	kt_write_file(path, "x", 1);
	assert_int_equal(chmod(path, 0), 0);
	KT_ERR(kiln_file_read(path, 100, &b, NULL), KILN_ERR_IO);
	kiln_buf_cleanup(&b);
	free(path);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_write_new_file_mode(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "key.pem");
	kiln_buf b;
	kiln_diag d;
	mode_t old = umask(0);

	kiln_diag_clear(&d);
	/* even with a permissive umask, the file is created 0600 */
	KT_OK(kiln_file_write(path, kiln_slice_str("secret\n"), 0600, &d));
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(d.code, KILN_OK);
	kt_read_file(path, &b);
	assert_string_equal(kiln_buf_cstr(&b), "secret\n");
	kiln_buf_cleanup(&b);
	/* the umask does not narrow an explicit mode either */
	(void)umask(077);
	KT_OK(kiln_file_write(path, kiln_slice_str("public\n"), 0644, NULL));
	assert_int_equal(mode_of(path), 0644);
	KT_OK(kiln_file_write(path, kiln_slice_str("public\n"), 0400, NULL));
	assert_int_equal(mode_of(path), 0400);
	(void)umask(old);
	assert_int_equal(count_entries(f->dir), 1);
	free(path);
}

static void test_write_replaces_content(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "state.json");
	kiln_buf b;
	struct stat before, after;

	kt_write_file(path, "a much longer old content", 25);
	assert_int_equal(stat(path, &before), 0);
	KT_OK(kiln_file_write(path, kiln_slice_str("new"), 0600, NULL));
	kt_read_file(path, &b);
	assert_int_equal(b.len, 3);
	assert_string_equal(kiln_buf_cstr(&b), "new");
	kiln_buf_cleanup(&b);
	/* a new inode: the old file was replaced by rename, not rewritten */
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	/* empty content */
	KT_OK(kiln_file_write(path, kiln_slice_of(NULL, 0), 0600, NULL));
	kt_read_file(path, &b);
	assert_int_equal(b.len, 0);
	kiln_buf_cleanup(&b);
	/* no temporary file left behind */
	assert_int_equal(count_entries(f->dir), 1);
	free(path);
}

static void test_write_binary_large(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "blob");
	const size_t n = 300000;
	uint8_t *data = malloc(n);
	kiln_buf b;

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i ^ (i >> 9));
	KT_OK(kiln_file_write(path, kiln_slice_of(data, n), 0600, NULL));
	kt_read_file(path, &b);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.ptr, data, n);
	kiln_buf_cleanup(&b);
	assert_int_equal(count_entries(f->dir), 1);
	free(data);
	free(path);
}

static void test_write_missing_dir(void **state)
{
	struct fixture *f = *state;
	char *sub = kt_path(f->dir, "nope");
	char *path = kt_path(sub, "file");
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_file_write(path, kiln_slice_str("x"), 0600, &d), KILN_ERR_IO);
	assert_int_equal(d.code, KILN_ERR_IO);
	assert_non_null(strstr(d.text, path));
	assert_one_line(&d);
	assert_int_equal(count_entries(f->dir), 0);
	free(path);
	free(sub);
}

/* The target is a directory: rename fails, and the temporary file is removed. */
static void test_write_over_directory_cleans_up(void **state)
{
	struct fixture *f = *state;
	char *path = kt_path(f->dir, "adir");
	kiln_diag d;

	kiln_diag_clear(&d);
	assert_int_equal(mkdir(path, 0700), 0);
	KT_ERR(kiln_file_write(path, kiln_slice_str("x"), 0600, &d), KILN_ERR_IO);
	assert_one_line(&d);
	assert_int_equal(count_entries(f->dir), 1);
	assert_int_equal(count_entries(path), 0);
	free(path);
}

static void test_write_path_too_long(void **state)
{
	char *path = malloc(5000);
	kiln_diag d;

	(void)state;
	assert_non_null(path);
	memset(path, 'a', 4999);
	path[0] = '/';
	path[4999] = '\0';
	kiln_diag_clear(&d);
	KT_ERR(kiln_file_write(path, kiln_slice_str("x"), 0600, &d), KILN_ERR_ARG);
	assert_int_equal(d.code, KILN_ERR_ARG);
	free(path);
}

/* A bare file name (no directory part) syncs the current directory. */
static void test_write_relative(void **state)
{
	struct fixture *f = *state;
	char cwd[4096];
	kiln_buf b;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	KT_OK(kiln_file_write("rel.txt", kiln_slice_str("rel"), 0600, NULL));
	KT_OK(kiln_file_read("rel.txt", 10, &b, NULL));
	assert_string_equal(kiln_buf_cstr(&b), "rel");
	kiln_buf_cleanup(&b);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(count_entries(f->dir), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_large_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_new_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_replaces_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_binary_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_missing_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_over_directory_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_path_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_relative, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
