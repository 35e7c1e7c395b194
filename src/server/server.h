/*
 * kiln server: HTTPS with mutual TLS (libevent + OpenSSL), a worker pool for
 * crypto and storage work, routing with per-route roles, per-identity rate
 * limits, caps on everything a client sends, RFC 9457 problem responses, and
 * a graceful stop. The transport (transport.c, tls.c, router.c, ...) knows
 * nothing of kiln's inventory: it asks the application, through hooks, who a
 * client certificate belongs to and tells it what it refused. app.c and the
 * routes_*.c files are that application: they wire the CA, the store and the
 * attestation verifiers to the routes.
 *
 * Threads: one event loop thread does all network I/O and TLS; handlers run
 * on the worker pool (or inline on the loop for routes marked so). A
 * kiln_server is used from the thread that runs it, except kiln_server_stop,
 * which any thread (or a signal handler) may call.
 */
#ifndef KILN_SERVER_H
#define KILN_SERVER_H

#include "core/core.h"

#include <openssl/x509.h>

/* ------------------------------------------------------------ roles */

#define KILN_ROLE_ADMIN (1u << 0)
#define KILN_ROLE_OFFICER (1u << 1)
#define KILN_ROLE_ENGINEER (1u << 2)
#define KILN_ROLE_OPERATOR (1u << 3)
#define KILN_ROLE_STATION (1u << 4)
#define KILN_ROLE_AUDITOR (1u << 5)
#define KILN_ROLE_ALL 0x3fu

/* "admin" -> KILN_ROLE_ADMIN ...; 0 for an unknown name. */
unsigned kiln_role_bit(const char *name);

/* Who sent a request: a client certificate bound to an identity in the inventory. */
struct kiln_principal {
	char name[128];
	char role[16];
	unsigned role_bit;
	char env[16];            /* "", "production" or "test": where the identity may act */
	char cert_serial[41];
};

/* ------------------------------------------------------------ requests */

#define KILN_ROUTE_MAX_PARAMS 4

/* What a handler sees. Everything is borrowed and valid during the call. */
struct kiln_request {
	const char *method;                   /* "GET", "POST" */
	const char *path;                     /* without the query */
	const char *query;                    /* raw query string, NULL when none */
	const char *params[KILN_ROUTE_MAX_PARAMS]; /* {name} segments of the route, in order */
	size_t n_params;
	/*
	 * NULL when absent. A request with a body reaches the handler only if
	 * this is application/json, application/ocsp-request or
	 * application/pkcs10 (any case, parameters such as "; charset=utf-8"
	 * allowed); anything else is refused with 415 before the handler runs.
	 */
	const char *content_type;
	kiln_slice body;                      /* at most max_body bytes */
	const struct kiln_principal *who;     /* NULL on public routes */
	const X509 *client_cert;              /* verified chain leaf, NULL when none */
	/*
	 * With kiln_server_opts.accept_foreign_certs: a client certificate that
	 * did not chain to client_ca_pem (the client proved it holds its key in
	 * the handshake, nothing more). Routes that check such certificates
	 * themselves (EST simplereenroll: device certificates) read it; it
	 * never authenticates a route with roles. NULL otherwise.
	 */
	const X509 *foreign_cert;
	const char *peer;                     /* "127.0.0.1:50312" */
	const char *request_id;               /* unique per request, for logs and problems */
};

#define KILN_RESPONSE_MAX_HEADERS 4

struct kiln_response {
	int status;                           /* 0 means 200 */
	char content_type[64];                /* "" means application/json */
	kiln_buf body;                        /* capped at 16 MiB */
	struct {
		char name[32];
		char value[256];
	} headers[KILN_RESPONSE_MAX_HEADERS]; /* extra headers, e.g. Cache-Control */
	size_t n_headers;
};

/* An empty response (status 0, no headers, body capped at 16 MiB); the transport
 * hands handlers one made this way. */
void kiln_response_init(struct kiln_response *res);
/* Wipes and frees the body; NULL-safe. */
void kiln_response_cleanup(struct kiln_response *res);

/* Adds a header to a response (KILN_ERR_TOO_BIG when full or too long). */
KILN_MUST_USE kiln_result kiln_response_header(struct kiln_response *res, const char *name,
					       const char *value);

/*
 * A handler fills res and returns success, or returns a failure whose code
 * and diag become an RFC 9457 problem (the status from the error table).
 * Handlers record their own audit events for the refusals they make.
 */
typedef kiln_result (*kiln_handler_fn)(void *app, const struct kiln_request *req,
				       struct kiln_response *res, kiln_diag *d);

struct kiln_route {
	const char *method;   /* "GET" or "POST" */
	const char *pattern;  /* "/v1/batches/{lot}/close": {x} matches one non-empty segment */
	unsigned roles;       /* 0: public, no client certificate needed; else the roles admitted */
	kiln_handler_fn fn;
	bool inline_ok;       /* cheap and non-blocking: run on the loop thread (e.g. cached OCSP) */
};

/* The application's part in every request the transport cannot decide alone. */
struct kiln_server_hooks {
	/*
	 * Maps a client certificate (its chain already verified against the
	 * client CA) to a principal: KILN_ERR_AUTH_UNKNOWN when no identity has
	 * it, KILN_ERR_AUTH_REVOKED when the identity was revoked. Runs on a worker.
	 */
	kiln_result (*authenticate)(void *app, const X509 *cert, struct kiln_principal *out,
				    kiln_diag *d);
	/*
	 * A refusal the transport made itself (no or unknown certificate, role,
	 * rate limit, size, method, unknown route, bad content type): the
	 * application records the audit event. who is NULL when not known.
	 * Runs on a worker; must not block long.
	 */
	void (*refused)(void *app, const struct kiln_request *req, kiln_result why,
			const kiln_diag *d);
};

/* ------------------------------------------------------------ server */

typedef struct kiln_server kiln_server;

struct kiln_server_opts {
	const char *listen;          /* "127.0.0.1:8443", "[::1]:8443"; port 0 picks a free one */
	kiln_slice tls_chain_pem;    /* server certificate, then its issuing CA(s) */
	kiln_slice tls_key_pem;      /* the server key (PEM); kiln wipes its copy after loading */
	kiln_slice client_ca_pem;    /* trust anchors for client certificates (service root) */
	kiln_slice client_chain_pem; /* intermediates clients need not send (service issuing CA) */
	unsigned workers;            /* 0: 16 (they mostly wait on commits, sessions, readers) */
	size_t max_body;             /* 0: 65536 */
	size_t max_headers;          /* 0: 8192 (all header lines together) */
	unsigned timeout_s;          /* read and write timeout per connection; 0: 10 */
	double rate_per_s;           /* per identity token bucket; 0: 50 */
	unsigned rate_burst;         /* 0: 100 */
	unsigned max_connections;    /* 0: 1024; beyond, new handshakes are cut at ClientHello */
	size_t queue_max;            /* requests waiting for a worker; beyond, 503; 0: 256 */
	unsigned drain_s;            /* on stop, how long in-flight requests may take; 0: 30 */
	/*
	 * false: a client certificate that does not chain to client_ca_pem fails
	 * the handshake. true: the handshake completes (the client still proves
	 * possession of its key); routes with roles answer 401 as if no
	 * certificate was sent, and handlers see it as kiln_request.foreign_cert.
	 */
	bool accept_foreign_certs;
	const struct kiln_route *routes;
	size_t n_routes;
	const struct kiln_server_hooks *hooks;
	void *app;
	const kiln_log *log;
};

/*
 * Binds the socket and sets up TLS (TLS 1.2 and 1.3 only). Caller frees.
 * Checks, in this order, for every request: URI length (414 over 2048
 * bytes), path (404) and method (405 with Allow), then on a worker: client
 * certificate (401), authenticate (its error), role (403), the identity's
 * rate limit (429 with Retry-After), media type (415), then the handler.
 * evhttp itself answers malformed requests and headers over max_headers
 * with 400 and bodies over max_body (also chunked) with 413, as text/html
 * and without calling the hooks: no request exists yet at that point.
 */
KILN_MUST_USE kiln_result kiln_server_new(const struct kiln_server_opts *o, kiln_server **out,
					  kiln_diag *d);
/* The bound port (useful with port 0). */
int kiln_server_port(const kiln_server *s);
/*
 * Serves until kiln_server_stop or SIGTERM/SIGINT: then stops accepting,
 * lets every request in flight finish (its response is written, nothing is
 * half-done) and returns. Runs once per server. Sets SIGPIPE to SIG_IGN for
 * the process (a client that disconnects mid-write must not kill it) and
 * handles SIGTERM and SIGINT while it runs (libevent lets one event base at
 * a time own signals).
 */
KILN_MUST_USE kiln_result kiln_server_run(kiln_server *s, kiln_diag *d);
/* Asks a running server to stop; safe from any thread and from a signal handler. */
void kiln_server_stop(kiln_server *s);
void kiln_server_free(kiln_server *s);

/* The RFC 9457 problem for a failure, into res (application/problem+json). */
KILN_MUST_USE kiln_result kiln_problem(kiln_result why, const kiln_diag *d, const char *instance,
				       struct kiln_response *res);

/* ------------------------------------------------------------ the kiln application */

/*
 * The routes of kiln serve and the hooks that tie the transport to the
 * inventory (app.c, routes_*.c): identities from client certificates,
 * audit events for refusals, batches, provisioning, devices.
 */
typedef struct kiln_app kiln_app;
struct kiln_ca;
struct kiln_store;
struct kiln_ledger;
struct kiln_govern_rules;

struct kiln_app_opts {
	struct kiln_ca *ca;         /* borrowed */
	struct kiln_store *store;   /* borrowed */
	int64_t nonce_ttl_s;        /* 0: KILN_NONCE_TTL_DEFAULT */
	const kiln_log *log;
	struct kiln_ledger *ledger; /* borrowed; NULL: no log routes (404) */
	/*
	 * The product EST serves at /.well-known/est/ without a label (RFC 7030
	 * 3.2.2: the server's default CA), for clients that cannot send a label;
	 * NULL: production's CAs, and enrollment needs a label.
	 */
	const char *est_default_product;
	/* Governance (quorum per operation, request lifetime); NULL: 2 officers, a day. */
	const struct kiln_govern_rules *rules;
};

KILN_MUST_USE kiln_result kiln_app_new(const struct kiln_app_opts *o, kiln_app **out,
				       kiln_diag *d);
void kiln_app_free(kiln_app *app);
/* The route table (static) and the hooks (static) to pass in kiln_server_opts with app. */
const struct kiln_route *kiln_app_routes(size_t *n);
const struct kiln_server_hooks *kiln_app_hooks(void);

/* ------------------------------------------------------------ revocation publishing */

struct kiln_ocsp;

/* publish.c: follows revocations; keeps CRLs (memory and crl_dir) and OCSP responses current. */
typedef struct kiln_publisher kiln_publisher;

struct kiln_publisher_opts {
	struct kiln_ca *ca;         /* borrowed */
	struct kiln_store *store;   /* borrowed */
	struct kiln_ocsp *ocsp;     /* borrowed; NULL: CRLs only */
	const char *crl_dir;        /* DIR/crl */
	int64_t crl_validity_s;     /* nextUpdate - thisUpdate */
	unsigned poll_ms;           /* how often the generation is read; 0: 200 */
	unsigned coalesce_ms;       /* quiet time before a CRL is issued; 0: 500 */
	const char *actor;
	const kiln_log *log;
};

/* Issues the CRLs of every issuing CA whose token is open, then starts the thread. */
KILN_MUST_USE kiln_result kiln_publisher_start(const struct kiln_publisher_opts *o,
					       kiln_publisher **out, kiln_diag *d);
/* The current CRL of a CA, appended to out (KILN_ERR_NOT_FOUND). Thread-safe. */
KILN_MUST_USE kiln_result kiln_publisher_crl(kiln_publisher *p, const char *ca_name, kiln_buf *out);
/* Stops the thread and frees. NULL-safe. */
void kiln_publisher_free(kiln_publisher *p);

/*
 * plain.c: the plain-HTTP listener for what relying parties fetch without
 * TLS: GET /healthz, GET /crl/<ca>.crl (application/pkix-crl), POST /ocsp
 * and GET /ocsp/<base64 request> (RFC 6960 appendix A). Several serving
 * threads, each with its own event loop, accepting from one listening
 * socket. Malformed and unauthorized OCSP requests, and requests over a
 * client's signing budget (sign_rate), are answered as RFC 6960 says (an
 * OCSPResponse with that status) and recorded as "rejection"
 * events by an audit thread, off the serving threads; past audit_queue
 * waiting events they are counted and recorded as one "suppressed" event.
 */
typedef struct kiln_plain kiln_plain;

struct kiln_plain_opts {
	const char *listen;         /* ADDR:PORT; port 0 picks one */
	struct kiln_ocsp *ocsp;     /* borrowed */
	kiln_publisher *pub;        /* borrowed */
	struct kiln_store *store;   /* for audit events */
	const kiln_log *log;
	unsigned threads;           /* serving threads, 1..64; 0: one per online core (at most 16) */
	size_t audit_queue;         /* refusals waiting for the audit thread; 0: 256 */
	/*
	 * Fresh OCSP signatures per client address (a nonce echoed, several
	 * CertIDs, an unknown serial): sign_rate per second, bursts of twice
	 * that; 0: 50. Past it a client gets the table's answer without its
	 * nonce, or tryLater, and the refusal is recorded: the HSM's signing rate
	 * is not one client's to spend. Below 1 (tests): bursts of 2.
	 */
	double sign_rate;
};

/* The audit thread's counts (thread-safe snapshot). */
struct kiln_plain_stats {
	uint64_t recorded;   /* "rejection" events written one by one */
	uint64_t suppressed; /* refusals counted instead (queue full) */
	uint64_t summaries;  /* "suppressed" events written (each with a count) */
	size_t pending;      /* refusals not yet written (queued, counted or being written) */
};

KILN_MUST_USE kiln_result kiln_plain_start(const struct kiln_plain_opts *o, kiln_plain **out,
					   kiln_diag *d);
int kiln_plain_port(const kiln_plain *p);
/* Serving threads running. */
unsigned kiln_plain_threads(const kiln_plain *p);
void kiln_plain_stats(kiln_plain *p, struct kiln_plain_stats *st);
/*
 * Stops accepting, lets replies already written leave (100 ms), stops the
 * loops, writes the audit events still queued, joins every thread, frees.
 * NULL-safe.
 */
void kiln_plain_free(kiln_plain *p);

#endif /* KILN_SERVER_H */
