/*
 * The transport's internal parts, one concern per file: tls.c (the SSL_CTX),
 * router.c (patterns, methods, media types), pool.c (worker threads and a
 * bounded job queue), ratelimit.c (per-identity token buckets), problem.c
 * (RFC 9457 bodies) and transport.c (listener, event loop, connections).
 * Nothing here is part of the application's interface (server.h).
 */
#ifndef KILN_SERVER_IMPL_H
#define KILN_SERVER_IMPL_H

#include "server.h"

#include <event2/http.h>
#include <openssl/ssl.h>

/* ------------------------------------------------------------ tls.c */

/*
 * The server's TLS context: TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers,
 * no compression, no renegotiation, no session tickets or cache; the
 * server chain and key from PEM; client certificates requested (not
 * required) and verified against client_ca_pem as the only trust anchors,
 * with client_chain_pem as untrusted intermediates so a client may send its
 * leaf alone. A client certificate that does not verify fails the handshake.
 * Read-only once made: safe to share between threads.
 */
struct kiln_tls {
	SSL_CTX *ctx;
	STACK_OF(X509) *client_chain; /* intermediates added to every client chain */
	bool accept_foreign;          /* see kiln_server_opts.accept_foreign_certs */
};

/* Caller frees with kiln_tls_free (after every SSL made from ctx is gone). */
KILN_MUST_USE kiln_result kiln_tls_new(const struct kiln_server_opts *o, struct kiln_tls **out,
				       kiln_diag *d);
void kiln_tls_free(struct kiln_tls *t);
/* The verified client certificate of a finished handshake, or NULL. Borrowed from ssl. */
X509 *kiln_tls_peer_view(const SSL *ssl);
/*
 * The client certificate of a finished handshake that did not verify against
 * the client anchors (accepted only with accept_foreign), or NULL.
 */
X509 *kiln_tls_peer_foreign_view(const SSL *ssl);

/* ------------------------------------------------------------ router.c */

#define KILN_ROUTE_MAX_PATTERN 256
#define KILN_ROUTE_MAX_ROUTES 1024
#define KILN_ROUTE_ALLOW_MAX 64

struct kiln_route_match {
	const struct kiln_route *route;             /* set on success */
	kiln_slice params[KILN_ROUTE_MAX_PARAMS];   /* views into the path, still percent-encoded */
	size_t n_params;
	char allow[KILN_ROUTE_ALLOW_MAX];           /* "GET, POST": set on KILN_ERR_METHOD */
};

/* Checks a route table once, at start-up (KILN_ERR_CONFIG with the reason). */
KILN_MUST_USE kiln_result kiln_router_check(const struct kiln_route *routes, size_t n,
					    kiln_diag *d);
/*
 * The route for method and path: KILN_ERR_NOT_FOUND when no pattern matches
 * the path, KILN_ERR_METHOD when some do but not for this method (m->allow
 * lists the methods that would). A pattern with fewer {params} wins over
 * one with more; among equals the first in the table wins. Params never
 * match "." or "..".
 */
KILN_MUST_USE kiln_result kiln_router_match(const struct kiln_route *routes, size_t n,
					    const char *method, const char *path,
					    struct kiln_route_match *m);
/*
 * Percent-decodes a path segment into out (cap bytes with the NUL). Strict:
 * bad escapes, and decoded bytes outside 0x21..0x7e or equal to '/' or '\\',
 * give KILN_ERR_MALFORMED; too long gives KILN_ERR_TOO_BIG.
 */
KILN_MUST_USE kiln_result kiln_router_decode(kiln_slice seg, char *out, size_t cap);
/*
 * True when a request body with this Content-Type may reach a handler:
 * application/json, application/ocsp-request or application/pkcs10, in any
 * case, with parameters ("; charset=utf-8"). NULL is false.
 */
bool kiln_router_media_ok(const char *content_type);
/* True when a raw request path is "/" followed by printable ASCII only. */
bool kiln_router_path_ok(const char *path);

/* ------------------------------------------------------------ pool.c */

/*
 * A job is embedded in the caller's own struct (first member or via
 * offsetof): the pool never allocates per job, so a full queue costs nothing.
 */
struct kiln_pool_job {
	struct kiln_pool_job *next;
	void (*run)(struct kiln_pool_job *job);
};

typedef struct kiln_pool kiln_pool;

/*
 * Starts threads workers (signals blocked in them) sharing one queue of at
 * most queue_max jobs. discard (may be NULL) receives the jobs still queued
 * when the pool is freed. Thread-safe: submit from any thread. Caller frees.
 */
KILN_MUST_USE kiln_result kiln_pool_new(unsigned threads, size_t queue_max,
					void (*discard)(struct kiln_pool_job *job),
					kiln_pool **out);
/* Queues a job (ownership moves to the pool until run or discard); KILN_ERR_TOO_BIG when full. */
KILN_MUST_USE kiln_result kiln_pool_submit(kiln_pool *p, struct kiln_pool_job *job);
/* Jobs waiting (not running). */
size_t kiln_pool_queued(kiln_pool *p);
/* Lets running jobs finish, discards queued ones, joins the threads. */
void kiln_pool_free(kiln_pool *p);

/* ------------------------------------------------------------ ratelimit.c */

/*
 * Token buckets keyed by identity name: rate tokens per second, at most
 * burst. At most max_keys buckets exist; when full, buckets that have
 * refilled completely (indistinguishable from new ones) are dropped, and if
 * none has, new keys are refused (fail closed). Thread-safe.
 */
typedef struct kiln_ratelimit kiln_ratelimit;

#define KILN_RATELIMIT_KEY_MAX 128

KILN_MUST_USE kiln_result kiln_ratelimit_new(double rate_per_s, unsigned burst, size_t max_keys,
					     kiln_ratelimit **out);
/*
 * Takes one token for key at now_ns (monotonic): true when allowed; when
 * not, *retry_after_s says when the next token is due (at least 1).
 */
bool kiln_ratelimit_take(kiln_ratelimit *rl, const char *key, uint64_t now_ns,
			 unsigned *retry_after_s);
size_t kiln_ratelimit_keys(kiln_ratelimit *rl);
void kiln_ratelimit_free(kiln_ratelimit *rl);

/* ------------------------------------------------------------ problem.c */

#define KILN_PROBLEM_TYPE_PREFIX "urn:kiln:problem:"
#define KILN_PROBLEM_INSTANCE_MAX 2048

struct kiln_problem_spec {
	int status;             /* 400..599 */
	const char *slug;       /* [a-z0-9-]+ */
	const char *title;
	const char *detail;     /* sanitised: control characters and bad UTF-8 become '?' */
	const char *instance;   /* the request path, sanitised and capped; may be NULL */
	const char *request_id; /* may be NULL */
};

/* Replaces res's status, content type and body with the problem (headers are kept). */
KILN_MUST_USE kiln_result kiln_problem_make(const struct kiln_problem_spec *p,
					    struct kiln_response *res);

/* ------------------------------------------------------------ transport.c */

/* Splits "host:port" or "[v6]:port" (host without brackets). */
KILN_MUST_USE kiln_result kiln_listen_parse(const char *listen, char *host, size_t cap,
					    uint16_t *port);
/* "GET", "POST", ...; "?" for a method libevent has no name for. */
const char *kiln_http_method_name(enum evhttp_cmd_type t);

#endif /* KILN_SERVER_IMPL_H */
