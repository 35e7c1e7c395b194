/*
 * Test support shared by the unit tests: temporary directories, SoftHSM2
 * token directories, file helpers. cmocka is included here so every test
 * file starts with #include "support/support.h".
 */
#ifndef KILN_TEST_SUPPORT_H
#define KILN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/core.h"

/* A fresh, empty directory under $KILN_TEST_TMP (or /tmp). Caller frees. */
char *kt_tmpdir(const char *name);
/* rm -rf; refuses paths outside the test temporary root. */
void kt_rmrf(const char *path);
/* path joined with name into a static-free heap string. Caller frees. */
char *kt_path(const char *dir, const char *name);
/*
 * Prepares DIR/softhsm2.conf with its own token directory DIR/tokens and
 * points SOFTHSM2_CONF at it. Tests then initialise tokens through kiln's
 * own PKCS#11 code.
 */
void kt_softhsm_setup(const char *dir);
/* Writes bytes to a file (mode 0600) or fails the test. */
void kt_write_file(const char *path, const void *data, size_t len);
/* Reads a file into a buffer or fails the test; caller cleans up. */
void kt_read_file(const char *path, kiln_buf *out);
/* Runs a shell command; returns its exit status (-1 if it could not run). */
int kt_system(const char *fmt, ...) KILN_PRINTF(1, 2);

/*
 * Runs an in-process main (e.g. kiln_cli_main) with the given arguments
 * (NULL-terminated), capturing stdout and stderr into out and err (which the
 * caller cleans up). Returns its exit status.
 */
int kt_run(int (*fn)(int, char **), kiln_buf *out, kiln_buf *err, ...);
/* Lines in a buffer (a final line without newline counts). */
size_t kt_lines(const kiln_buf *b);

/*
 * A fresh key by name: "p256", "p384", "p521", "secp256k1", "ed25519",
 * "ed448", "x25519", "rsa2048", "rsa3072". Fails the test otherwise.
 * Caller frees (EVP_PKEY_free).
 */
struct evp_pkey_st *kt_keygen(const char *what);
/*
 * The same, made once per process and shared (RSA generation is slow under
 * valgrind). Borrowed: do not free; kt_keys_free() releases them all.
 */
struct evp_pkey_st *kt_key(const char *what);
void kt_keys_free(void);

#define KT_OK(expr) assert_int_equal((expr).code, KILN_OK)
#define KT_ERR(expr, err) assert_int_equal((expr).code, (err))

#endif
