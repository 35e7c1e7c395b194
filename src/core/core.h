/*
 * kiln core: results and the one error table, diagnostics, byte slices and
 * bounded cursors, capped buffers, secret wiping, constant-time compare,
 * checked arithmetic, hex, time and logging.
 *
 * Depends on libc only. Every type here is plain data: thread-safe to use from
 * several threads as long as each object is touched by one thread at a time,
 * except kiln_log, which is safe to share once set up (sinks must be
 * thread-safe themselves; the built-in ones are).
 */
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KILN_MUST_USE __attribute__((warn_unused_result))
#define KILN_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---------------------------------------------------------------- errors */

/*
 * The one error table lives in error.c. Each code has a stable slug (used as
 * the RFC 9457 problem type suffix), an HTTP status and a message that tells
 * the user what to do.
 */
typedef enum kiln_err {
	KILN_OK = 0,
	KILN_ERR_NOMEM,
	KILN_ERR_INTERNAL,
	KILN_ERR_ARG,
	KILN_ERR_TOO_BIG,
	KILN_ERR_TRUNCATED,
	KILN_ERR_MALFORMED,
	KILN_ERR_OVERFLOW,
	KILN_ERR_IO,
	KILN_ERR_NOT_FOUND,
	KILN_ERR_EXISTS,
	KILN_ERR_CONFIG,
	KILN_ERR_USAGE,
	/* hsm */
	KILN_ERR_HSM_MODULE,
	KILN_ERR_HSM_TOKEN_MISSING,
	KILN_ERR_HSM_TOKEN_GONE,
	KILN_ERR_HSM_PIN,
	KILN_ERR_HSM_KEY_MISSING,
	KILN_ERR_HSM,
	/* crypto and csr */
	KILN_ERR_CSR_EMPTY,
	KILN_ERR_CSR_TOO_BIG,
	KILN_ERR_CSR_MALFORMED,
	KILN_ERR_CSR_SIGNATURE,
	KILN_ERR_CRYPTO,
	/* policy */
	KILN_ERR_POLICY_SYNTAX,
	KILN_ERR_POLICY_SCHEMA,
	KILN_ERR_POLICY_KEY_ALG,
	KILN_ERR_POLICY_SUBJECT,
	KILN_ERR_POLICY_SERIAL,
	KILN_ERR_POLICY_ENV,
	KILN_ERR_UNKNOWN_PRODUCT,
	KILN_ERR_POLICY_CHANGED,
	/* store */
	KILN_ERR_STORE,
	KILN_ERR_STORE_BUSY,
	KILN_ERR_STORE_SCHEMA,
	KILN_ERR_DUPLICATE,
	/* attestation */
	KILN_ERR_ATTEST_REQUIRED,
	KILN_ERR_ATTEST_MALFORMED,
	KILN_ERR_ATTEST_FIRMWARE,
	KILN_ERR_ATTEST_CHAIN,
	KILN_ERR_ATTEST_KEY,
	KILN_ERR_ATTEST_SIGNATURE,
	KILN_ERR_ATTEST_VENDOR,
	KILN_ERR_ATTEST_EK,
	KILN_ERR_ATTEST_ACTIVATION,
	KILN_ERR_ATTEST_NONCE,
	KILN_ERR_ATTEST_PCR,
	KILN_ERR_ATTEST_RESIDENCY,
	/* factory line */
	KILN_ERR_NONCE_UNKNOWN,
	KILN_ERR_NONCE_REPLAY,
	KILN_ERR_NONCE_EXPIRED,
	KILN_ERR_NONCE_STATION,
	KILN_ERR_BATCH_UNKNOWN,
	KILN_ERR_BATCH_CLOSED,
	KILN_ERR_BATCH_QUOTA,
	KILN_ERR_DEVICE_DUPLICATE,
	KILN_ERR_KEY_DUPLICATE,
	/* access */
	KILN_ERR_AUTH_REQUIRED,
	KILN_ERR_AUTH_UNKNOWN,
	KILN_ERR_AUTH_REVOKED,
	KILN_ERR_FORBIDDEN,
	KILN_ERR_RATE_LIMITED,
	KILN_ERR_METHOD,
	KILN_ERR_UNSUPPORTED_MEDIA,
	KILN_ERR_TIMEOUT,
	/* ledger */
	KILN_ERR_LOG_RANGE,
	KILN_ERR_LOG_PROOF,
	KILN_ERR_LOG_SIGNATURE,
	KILN_ERR_LOG_TAMPERED,
	/* lifecycle: renewal (EST), re-provisioning, retirement */
	KILN_ERR_CERT_UNTRUSTED,
	KILN_ERR_CERT_EXPIRED,
	KILN_ERR_CERT_REVOKED,
	KILN_ERR_RENEWAL_SUBJECT,
	KILN_ERR_RENEWAL_WINDOW,
	KILN_ERR_RENEWAL_KEY,
	KILN_ERR_RENEWAL_FIRMWARE,
	KILN_ERR_DEVICE_RETIRED,
	KILN_ERR_ENROLL_FORBIDDEN,
	/* revocation */
	KILN_ERR_ALREADY_REVOKED,
	/* governance: M-of-N approvals (src/govern) */
	KILN_ERR_REQUEST_UNKNOWN,
	KILN_ERR_REQUEST_EXPIRED,
	KILN_ERR_REQUEST_EXECUTED,
	KILN_ERR_REQUEST_MISMATCH,
	KILN_ERR_APPROVALS_MISSING,
	KILN_ERR_APPROVAL_SIGNATURE,
	KILN_ERR_APPROVAL_SELF,
	KILN_ERR_APPROVAL_DUPLICATE,
	KILN_ERR_APPROVAL_ROLE,
	KILN_ERR_DECRYPT,
	KILN_ERR_BACKUP_FORMAT,
	KILN_ERR_BACKUP_MISMATCH,
	KILN_ERR_BUSY,
	KILN_ERR__COUNT
} kiln_err;

struct kiln_err_info {
	const char *slug;    /* "csr-signature": stable, lower-case, for APIs */
	int http_status;     /* RFC 9110 status for problem responses */
	const char *message; /* one sentence: what happened, what to do */
};

/* Never NULL: unknown codes map to the KILN_ERR_INTERNAL entry. */
const struct kiln_err_info *kiln_err_info(kiln_err code);
/* The code whose slug this is (a problem type read back by a client); KILN_ERR_INTERNAL if none. */
kiln_err kiln_err_from_slug(const char *slug);

/*
 * A result the compiler will not let a caller drop: every function returning
 * one is declared KILN_MUST_USE.
 */
typedef struct kiln_result {
	kiln_err code;
} kiln_result;

static inline kiln_result kiln_ok(void)
{
	return (kiln_result){ KILN_OK };
}

static inline kiln_result kiln_fail(kiln_err code)
{
	return (kiln_result){ code };
}

static inline bool kiln_is_ok(kiln_result r)
{
	return r.code == KILN_OK;
}

/*
 * A diagnostic in the caller's storage: the code plus one precise line
 * ("widget.yaml:7: unknown key 'colour'"). Functions that can say more than
 * their code take an optional kiln_diag (NULL allowed). The first error set
 * sticks: later calls do not overwrite a more specific earlier message.
 */
#define KILN_DIAG_MAX 512

typedef struct kiln_diag {
	kiln_err code;
	char text[KILN_DIAG_MAX];
} kiln_diag;

void kiln_diag_clear(kiln_diag *d);

/* Records code and message (if d is not NULL and holds no error yet); returns kiln_fail(code). */
KILN_MUST_USE kiln_result kiln_diag_set(kiln_diag *d, kiln_err code, const char *fmt, ...)
	KILN_PRINTF(3, 4);

/* The message for a failed result: the diag text if set, else the table's message. */
const char *kiln_diag_message(const kiln_diag *d, kiln_result r);

/* Guards: keep the happy path reading straight down. */
#define KILN_GUARD(expr)                                                 \
	do {                                                             \
		kiln_result kiln_guard_r_ = (expr);                      \
		if (kiln_guard_r_.code != KILN_OK)                       \
			return kiln_guard_r_;                            \
	} while (0)

#define KILN_ENSURE(cond, err)                                           \
	do {                                                             \
		if (!(cond))                                             \
			return kiln_fail(err);                           \
	} while (0)

/* For functions with an out: label: assigns r and jumps on failure. */
#define KILN_TRY(r, expr)                                                \
	do {                                                             \
		(r) = (expr);                                            \
		if ((r).code != KILN_OK)                                 \
			goto out;                                        \
	} while (0)

/* Defensive checks that must hold; compiled in always, cheap. */
#define KILN_ALWAYS(x) (__builtin_expect(!!(x), 1))
#define KILN_NEVER(x) (__builtin_expect(!!(x), 0))

/* ------------------------------------------------------- checked arithmetic */

KILN_MUST_USE static inline bool kiln_add_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

KILN_MUST_USE static inline bool kiln_mul_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* ------------------------------------------------------------------ slices */

/* A borrowed view of bytes: never owns, never frees. */
typedef struct kiln_slice {
	const uint8_t *ptr;
	size_t len;
} kiln_slice;

static inline kiln_slice kiln_slice_of(const void *p, size_t n)
{
	return (kiln_slice){ (const uint8_t *)p, n };
}

kiln_slice kiln_slice_str(const char *s);
bool kiln_slice_eq(kiln_slice a, kiln_slice b); /* not constant-time: public data only */

/*
 * A bounded reader over untrusted bytes. Reads check the bounds first and
 * advance only on success, so a failed read leaves the cursor where it was.
 */
typedef struct kiln_cursor {
	const uint8_t *ptr;
	size_t len;
	size_t pos;
} kiln_cursor;

void kiln_cursor_init(kiln_cursor *c, kiln_slice s);
size_t kiln_cursor_remaining(const kiln_cursor *c);
KILN_MUST_USE kiln_result kiln_cursor_u8(kiln_cursor *c, uint8_t *out);
KILN_MUST_USE kiln_result kiln_cursor_u16be(kiln_cursor *c, uint16_t *out);
KILN_MUST_USE kiln_result kiln_cursor_u32be(kiln_cursor *c, uint32_t *out);
KILN_MUST_USE kiln_result kiln_cursor_u64be(kiln_cursor *c, uint64_t *out);
/* A view of the next n bytes (borrowed from the cursor's buffer). */
KILN_MUST_USE kiln_result kiln_cursor_bytes(kiln_cursor *c, size_t n, kiln_slice *out);
KILN_MUST_USE kiln_result kiln_cursor_copy(kiln_cursor *c, void *dst, size_t n);
KILN_MUST_USE kiln_result kiln_cursor_skip(kiln_cursor *c, size_t n);
/* Fails with KILN_ERR_MALFORMED unless every byte was consumed. */
KILN_MUST_USE kiln_result kiln_cursor_expect_end(const kiln_cursor *c);

/* ----------------------------------------------------------------- buffers */

/*
 * A growable buffer with a ceiling ("toobig" cap): appends past max fail with
 * KILN_ERR_TOO_BIG and leave the contents unchanged. Cleanup wipes, so the
 * same type holds secrets. The bytes are always followed by a NUL (not counted
 * in len) so text can be used as a C string.
 */
typedef struct kiln_buf {
	uint8_t *ptr;
	size_t len;
	size_t cap;
	size_t max;
} kiln_buf;

#define KILN_BUF_DEFAULT_MAX ((size_t)16 * 1024 * 1024)

void kiln_buf_init(kiln_buf *b, size_t max);
/* Wipes and frees; the buffer can be reused after kiln_buf_init. */
void kiln_buf_cleanup(kiln_buf *b);
/* Empties without freeing (wipes the old contents). */
void kiln_buf_reset(kiln_buf *b);
KILN_MUST_USE kiln_result kiln_buf_reserve(kiln_buf *b, size_t extra);
KILN_MUST_USE kiln_result kiln_buf_append(kiln_buf *b, const void *p, size_t n);
KILN_MUST_USE kiln_result kiln_buf_append_slice(kiln_buf *b, kiln_slice s);
KILN_MUST_USE kiln_result kiln_buf_append_str(kiln_buf *b, const char *s);
KILN_MUST_USE kiln_result kiln_buf_append_u8(kiln_buf *b, uint8_t v);
KILN_MUST_USE kiln_result kiln_buf_printf(kiln_buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
KILN_MUST_USE kiln_result kiln_buf_vprintf(kiln_buf *b, const char *fmt, va_list ap)
	KILN_PRINTF(2, 0);
kiln_slice kiln_buf_view(const kiln_buf *b);
/* The contents as a C string ("" when empty); valid until the next change. */
const char *kiln_buf_cstr(const kiln_buf *b);
/* Moves the heap block out (caller owns, must free); the buffer is left empty. */
uint8_t *kiln_buf_take(kiln_buf *b, size_t *len);

/* ------------------------------------------------------------------ secrets */

/* Wipes memory in a way the compiler may not elide. NULL-safe. */
void kiln_wipe(void *p, size_t n);
/* Constant-time equality of two equal-length byte strings. */
bool kiln_ct_eq(const void *a, const void *b, size_t n);
/* Fills with bytes from the kernel CSPRNG (getrandom). */
KILN_MUST_USE kiln_result kiln_random(void *p, size_t n);

/* ------------------------------------------------------------- hex, strings */

/* Lower-case hex; out must hold 2*n+1 bytes. */
void kiln_hex_encode(const uint8_t *in, size_t n, char *out);
/* Accepts upper or lower case; an optional ':' between bytes is not accepted. */
KILN_MUST_USE kiln_result kiln_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len);
/* Standard base64 (RFC 4648 section 4, with padding), appended to out. */
KILN_MUST_USE kiln_result kiln_base64_encode(kiln_slice in, kiln_buf *out);
/*
 * RFC 7468 text encoding of der under label ("CERTIFICATE"): the BEGIN line,
 * base64 in lines of 64 characters, the END line, each ending in '\n' (what
 * OpenSSL's PEM writer produces). Appended to out.
 */
KILN_MUST_USE kiln_result kiln_pem_encode(const char *label, kiln_slice der, kiln_buf *out);
/*
 * Strict decoding: the standard alphabet, correct padding, no whitespace or
 * other characters, canonical trailing bits. Appended to out (whose cap bounds it).
 */
KILN_MUST_USE kiln_result kiln_base64_decode(kiln_slice in, kiln_buf *out);
/* Bounded copy that always NUL-terminates; KILN_ERR_TOO_BIG when it did not fit. */
KILN_MUST_USE kiln_result kiln_strlcpy(char *dst, const char *src, size_t cap);
/* Copy that truncates silently (for display text only, never for identifiers). */
void kiln_strtrunc(char *dst, const char *src, size_t cap);
/*
 * Untrusted bytes made fit to quote in a message: printable ASCII kept, any
 * other byte '?', cut to cap - 1 characters, always terminated.
 */
void kiln_printable(const char *in, size_t in_len, char *out, size_t cap);
/* Strict decimal parse with range check; no sign, no spaces, no trailing text. */
KILN_MUST_USE kiln_result kiln_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* --------------------------------------------------------------------- time */

/* Seconds since the epoch, UTC. */
int64_t kiln_now(void);
/* Monotonic nanoseconds, for measuring durations. */
uint64_t kiln_mono_ns(void);
/* Wall-clock milliseconds since 1970 (for durations across processes). */
int64_t kiln_wall_ms(void);
/* "2026-11-21T12:00:00Z"; out holds at least KILN_TIME_STR bytes. */
#define KILN_TIME_STR 32
void kiln_time_format(int64_t t, char out[KILN_TIME_STR]);

/* ---------------------------------------------------------------------- log */

typedef enum kiln_log_level {
	KILN_LOG_DEBUG = 0,
	KILN_LOG_INFO,
	KILN_LOG_WARN,
	KILN_LOG_ERROR,
} kiln_log_level;

typedef void (*kiln_log_fn)(void *ctx, kiln_log_level level, const char *msg);

/*
 * A log is a sink plus a threshold, passed explicitly to whoever logs.
 * Messages are formatted into a bounded line (longer ones are cut) and
 * control characters are replaced, so untrusted text cannot forge lines.
 * Never log secrets: PINs, keys, seeds, nonces.
 */
typedef struct kiln_log {
	kiln_log_fn fn;
	void *ctx;
	kiln_log_level min;
} kiln_log;

#define KILN_LOG_LINE_MAX 1024

/* A sink writing "LEVEL message" lines to a FILE* (ctx), locked per line. */
void kiln_log_sink_file(void *ctx, kiln_log_level level, const char *msg);
const char *kiln_log_level_name(kiln_log_level level);
void kiln_log_write(const kiln_log *log, kiln_log_level level, const char *fmt, ...)
	KILN_PRINTF(3, 4);

#define kiln_log_debug(l, ...) kiln_log_write((l), KILN_LOG_DEBUG, __VA_ARGS__)
#define kiln_log_info(l, ...) kiln_log_write((l), KILN_LOG_INFO, __VA_ARGS__)
#define kiln_log_warn(l, ...) kiln_log_write((l), KILN_LOG_WARN, __VA_ARGS__)
#define kiln_log_error(l, ...) kiln_log_write((l), KILN_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------------ files */

/* Reads a whole file, refusing files larger than max (KILN_ERR_TOO_BIG). */
KILN_MUST_USE kiln_result kiln_file_read(const char *path, size_t max, kiln_buf *out, kiln_diag *d);
/*
 * Writes atomically: a temporary file in the same directory, fsync, rename,
 * fsync of the directory. mode applies to the new file (0600 for secrets).
 */
KILN_MUST_USE kiln_result kiln_file_write(const char *path, kiln_slice data, unsigned mode,
					  kiln_diag *d);

/* --------------------------------------------------------------------- json */

/* jansson's json_t, kept opaque here so only JSON users include jansson.h. */
struct json_t;

#define KILN_JSON_MAX_DEPTH 16

/*
 * Parses untrusted JSON: at most max bytes, nesting at most
 * KILN_JSON_MAX_DEPTH, no duplicate keys, no NUL in strings. On success the
 * caller owns *out (json_decref).
 */
KILN_MUST_USE kiln_result kiln_json_parse(kiln_slice in, size_t max, struct json_t **out,
					  kiln_diag *d);
/* Compact, key-sorted serialisation appended to out. */
KILN_MUST_USE kiln_result kiln_json_dump(const struct json_t *j, kiln_buf *out);
/*
 * Appends s (n bytes of UTF-8) as a JSON string literal, quoted and escaped
 * exactly as kiln_json_dump writes strings (jansson with JSON_ENSURE_ASCII:
 * \uXXXX upper-case, surrogate pairs beyond the BMP). KILN_ERR_MALFORMED for
 * bytes that are not UTF-8 (overlong forms, surrogates, past U+10FFFF) or a
 * NUL; nothing is appended on any refusal.
 */
KILN_MUST_USE kiln_result kiln_json_put_str(kiln_buf *out, const char *s, size_t n);
/*
 * A string member of an object, at most max_len bytes. Missing members give
 * KILN_ERR_NOT_FOUND when required, else *out = NULL and success. The string
 * is borrowed from j.
 */
KILN_MUST_USE kiln_result kiln_json_get_str(const struct json_t *j, const char *key,
					    size_t max_len, bool required, const char **out,
					    kiln_diag *d);

#endif /* KILN_CORE_H */
