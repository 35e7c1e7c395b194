#include "support/support.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp_root(void)
{
	const char *r = getenv("KILN_TEST_TMP");

	return r != NULL && *r != '\0' ? r : "/tmp/kiln-test";
}

char *kt_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	(void)snprintf(p, n, "%s/%s", dir, name);
	return p;
}

char *kt_tmpdir(const char *name)
{
	const char *root = tmp_root();
	char *tmpl;
	size_t n;

	(void)mkdir(root, 0700);
	n = strlen(root) + strlen(name) + 16;
	tmpl = malloc(n);
	assert_non_null(tmpl);
	(void)snprintf(tmpl, n, "%s/%s.XXXXXX", root, name);
	assert_non_null(mkdtemp(tmpl));
	return tmpl;
}

void kt_rmrf(const char *path)
{
	const char *root = tmp_root();

	if (path == NULL || strncmp(path, root, strlen(root)) != 0 || strstr(path, "..") != NULL)
		return;
	(void)kt_system("rm -rf '%s'", path);
}

void kt_softhsm_setup(const char *dir)
{
	char *conf = kt_path(dir, "softhsm2.conf");
	char *tokens = kt_path(dir, "tokens");
	char text[4096];
	int n;

	assert_int_equal(mkdir(tokens, 0700), 0);
	n = snprintf(text, sizeof(text),
		     "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
		     "slots.removable = false\n", tokens);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	kt_write_file(conf, text, (size_t)n);
	assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
	free(conf);
	free(tokens);
}

void kt_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

void kt_read_file(const char *path, kiln_buf *out)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_file_read(path, KILN_BUF_DEFAULT_MAX, out, &d));
}

int kt_system(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void capture_start(int fd, FILE *stream, char *path, int *saved)
{
	int tmp;

	(void)fflush(stream);
	tmp = mkstemp(path);
	assert_true(tmp >= 0);
	*saved = dup(fd);
	assert_true(*saved >= 0);
	assert_true(dup2(tmp, fd) >= 0);
	(void)close(tmp);
}

static void capture_end(int fd, FILE *stream, const char *path, int saved, kiln_buf *into)
{
	(void)fflush(stream);
	assert_true(dup2(saved, fd) >= 0);
	(void)close(saved);
	if (into != NULL)
		kt_read_file(path, into);
	(void)unlink(path);
}

int kt_run(int (*fn)(int, char **), kiln_buf *out, kiln_buf *err, ...)
{
	char *argv[64];
	int argc = 0, rc, so, se;
	char pout[] = "/tmp/kiln-kt-out.XXXXXX", perr[] = "/tmp/kiln-kt-err.XXXXXX";
	va_list ap;
	const char *a;

	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL) {
		assert_true(argc < 63);
		argv[argc++] = strdup(a);
	}
	va_end(ap);
	argv[argc] = NULL;
	capture_start(STDOUT_FILENO, stdout, pout, &so);
	capture_start(STDERR_FILENO, stderr, perr, &se);
	rc = fn(argc, argv);
	capture_end(STDOUT_FILENO, stdout, pout, so, out);
	capture_end(STDERR_FILENO, stderr, perr, se, err);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

size_t kt_lines(const kiln_buf *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->len; i++)
		n += b->ptr[i] == '\n';
	if (b->len > 0 && b->ptr[b->len - 1] != '\n')
		n++;
	return n;
}

static const char *const key_kinds[] = { "p256",    "p384",   "p521",    "secp256k1", "ed25519",
					 "ed448",   "x25519", "rsa2048", "rsa3072" };
#define N_KEY_KINDS (sizeof(key_kinds) / sizeof(key_kinds[0]))
static EVP_PKEY *key_cache[N_KEY_KINDS];

EVP_PKEY *kt_keygen(const char *what)
{
	EVP_PKEY *k = NULL;

	if (strcmp(what, "p256") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (strcmp(what, "p384") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (strcmp(what, "p521") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	else if (strcmp(what, "secp256k1") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	else if (strcmp(what, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (strcmp(what, "ed448") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	else if (strcmp(what, "x25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	else if (strcmp(what, "rsa2048") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(what, "rsa3072") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	if (k == NULL)
		fail_msg("no key kind %s", what);
	return k;
}

EVP_PKEY *kt_key(const char *what)
{
	for (size_t i = 0; i < N_KEY_KINDS; i++) {
		if (strcmp(key_kinds[i], what) == 0) {
			if (key_cache[i] == NULL)
				key_cache[i] = kt_keygen(what);
			return key_cache[i];
		}
	}
	fail_msg("no key kind %s", what);
	return NULL;
}

void kt_keys_free(void)
{
	for (size_t i = 0; i < N_KEY_KINDS; i++) {
		EVP_PKEY_free(key_cache[i]);
		key_cache[i] = NULL;
	}
}
