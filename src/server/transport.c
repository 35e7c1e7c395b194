/*
 * The transport: listener, libevent loop, TLS connections and HTTP/1.1 via
 * evhttp over bufferevent_openssl.
 *
 * Threads. One loop thread (the caller of kiln_server_run) does all network
 * I/O and TLS and is the only thread that touches evhttp, bufferevents and
 * the connection list. For each complete request it copies what a handler
 * needs (method, path, query, decoded params, content type, body, the
 * verified client certificate with its own reference, the peer address)
 * into a job and queues it on the worker pool; the worker authenticates,
 * checks the role and the rate limit, runs the handler, and puts the job on
 * the done list, then wakes the loop with event_active (libevent threading
 * is on, so that is safe from any thread). The loop sends the reply.
 *
 * Disconnects. While a request is with a worker its connection does not
 * read, so evhttp cannot free the request under us: a client that went away
 * is noticed when the reply is written, and evhttp then frees the connection
 * and the request together (after evhttp_send_reply we never touch it). Had
 * evhttp seen the EOF first, it detaches the request and evhttp_send_reply
 * merely frees it. Either way a late reply is dropped, never written to
 * freed memory. Only kiln_server_free frees connections with requests still
 * pending, after every worker has stopped and its jobs are gone.
 *
 * Refusals (no or unknown certificate, role, rate, URI length, path,
 * unknown route, method, media type) also run on a worker, so that the
 * application's refused hook (which may write an audit record) never blocks
 * the loop; only a full queue is answered on the loop (503), because the
 * workers it would need are the ones that are busy. Malformed HTTP, headers
 * over max_headers and bodies over twice max_body (plus 64 KiB) are refused
 * by evhttp itself (400, 400 and 413, text/html) before a request exists: the
 * hooks never see those. A body over max_body but under that is refused here,
 * as a problem, with the hook.
 */
#include "server_impl.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_WORKERS 16
#define URI_MAX 2048
#define CONTENT_TYPE_MAX 256
#define DRAIN_POLL_US 20000
#define RATE_KEYS_MAX 65536
#define REQUEST_ID_MAX 40
#define PEER_MAX 64
#define HOST_MAX 256

#define ALL_METHODS                                                                        \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |             \
	 EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |  \
	 EVHTTP_REQ_PATCH)

/* One TLS connection, tied to its SSL object: freed (and unlinked) with it. */
struct kiln_conn {
	struct kiln_conn *prev, *next;
	kiln_server *s; /* NULL until linked */
	struct bufferevent *bev;
	bool over_cap;
	bool nodelay; /* TCP_NODELAY is set on the socket */
};

struct job {
	struct kiln_pool_job pj; /* first: the pool hands this back */
	struct job *next_done;
	kiln_server *s;
	struct evhttp_request *req; /* loop thread only */
	const struct kiln_route *route;
	kiln_result refusal; /* decided on the loop; the worker only reports it */
	int status_override; /* 414 for a long URI, else 0 */
	kiln_diag diag;
	char allow[KILN_ROUTE_ALLOW_MAX];
	char retry_after[16];
	bool media_ok;
	const char *method;
	char *path, *query, *content_type;
	char *params[KILN_ROUTE_MAX_PARAMS];
	size_t n_params;
	uint8_t *body;
	size_t body_len;
	X509 *cert; /* own reference */
	X509 *foreign; /* own reference: a client certificate that did not chain to the anchors */
	char peer[PEER_MAX];
	char request_id[REQUEST_ID_MAX];
	uint64_t start_ns;
	/* Written by the worker; read by the loop after the hand-back (under done_mu). */
	struct kiln_principal who;
	bool have_who;
	struct kiln_response res;
};

struct kiln_server {
	/* Settings, read-only after kiln_server_new: workers read them too. */
	const struct kiln_route *routes;
	size_t n_routes;
	const struct kiln_server_hooks *hooks;
	void *app;
	const kiln_log *log;
	size_t max_body, max_headers, queue_max;
	unsigned workers, timeout_s, max_connections, drain_s;
	double rate;
	int port;
	char id_prefix[16];
	struct kiln_tls *tls;
	kiln_ratelimit *rl;
	int stop_pipe[2];
	/* Loop thread only. */
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev, *done_ev, *drain_ev, *sig_ev[2];
	kiln_pool *pool;
	struct kiln_conn *conns;
	size_t n_conns, in_flight;
	unsigned long long next_id;
	uint64_t drain_deadline_ns;
	bool stopping, ran, cap_warned;
	/* Shared with the workers: finished jobs waiting for the loop. */
	pthread_mutex_t done_mu;
	struct job *done_head, *done_tail;
};

/* ------------------------------------------------ process-wide, set once */

/*
 * The only process-wide state, both required by the libraries: libevent's
 * lock callbacks (evthread_use_pthreads is global by design) and the
 * OpenSSL ex-data index that ties a kiln_conn to its SSL object.
 */
static pthread_once_t init_once_ctl = PTHREAD_ONCE_INIT;
static int threads_rc = -1;
static int conn_index = -1;

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	struct kiln_conn *c = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (c == NULL)
		return;
	/* SSL objects are freed on the loop thread (or in kiln_server_free). */
	if (c->s != NULL) {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			c->s->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		c->s->n_conns--;
	}
	free(c);
}

static void init_once(void)
{
	threads_rc = evthread_use_pthreads();
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

/* ------------------------------------------------------------ listen */

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == ':' || c == '%';
}

kiln_result kiln_listen_parse(const char *listen, char *host, size_t cap, uint16_t *port)
{
	const char *hs, *he, *ps;
	uint64_t p;
	size_t n;

	KILN_ENSURE(listen != NULL && cap > 0, KILN_ERR_CONFIG);
	if (listen[0] == '[') {
		hs = listen + 1;
		he = strchr(hs, ']');
		KILN_ENSURE(he != NULL && he[1] == ':' && memchr(hs, ':', (size_t)(he - hs)) != NULL,
			    KILN_ERR_CONFIG);
		ps = he + 2;
	} else {
		hs = listen;
		he = strrchr(listen, ':');
		/* A bare IPv6 address needs brackets: "::1:8443" is ambiguous. */
		KILN_ENSURE(he != NULL && memchr(hs, ':', (size_t)(he - hs)) == NULL, KILN_ERR_CONFIG);
		ps = he + 1;
	}
	n = (size_t)(he - hs);
	KILN_ENSURE(n > 0 && n < cap && strlen(ps) >= 1 && strlen(ps) <= 5, KILN_ERR_CONFIG);
	for (size_t i = 0; i < n; i++)
		KILN_ENSURE(host_char(hs[i]), KILN_ERR_CONFIG);
	KILN_ENSURE(kiln_parse_u64(ps, 65535, &p).code == KILN_OK, KILN_ERR_CONFIG);
	memcpy(host, hs, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return kiln_ok();
}

/* ------------------------------------------------------------ jobs */

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->path);
	free(j->query);
	free(j->content_type);
	for (size_t i = 0; i < j->n_params; i++)
		free(j->params[i]);
	if (j->body != NULL) {
		/* Bodies can carry secrets (keys in transit, PINs): wiped like any buffer. */
		kiln_wipe(j->body, j->body_len);
		free(j->body);
	}
	X509_free(j->cert);
	X509_free(j->foreign);
	kiln_response_cleanup(&j->res);
	free(j);
}

static void job_discard(struct kiln_pool_job *pj)
{
	job_free((struct job *)pj);
}

static void request_view(const struct job *j, struct kiln_request *r)
{
	memset(r, 0, sizeof(*r));
	r->method = j->method;
	r->path = j->path;
	r->query = j->query;
	for (size_t i = 0; i < j->n_params; i++)
		r->params[i] = j->params[i];
	r->n_params = j->n_params;
	r->content_type = j->content_type;
	r->body = kiln_slice_of(j->body, j->body_len);
	r->who = j->have_who ? &j->who : NULL;
	r->client_cert = j->cert;
	r->foreign_cert = j->foreign;
	r->peer = j->peer;
	r->request_id = j->request_id;
}

/* The problem for why into j->res; a failure to build it still leaves a bare status. */
static void problem_into(struct job *j, kiln_result why, const kiln_diag *d, int status)
{
	const struct kiln_err_info *info = kiln_err_info(why.code);
	struct kiln_problem_spec p = {
		.status = status != 0 ? status : info->http_status >= 400 ? info->http_status : 500,
		.slug = info->slug,
		.title = info->message,
		.detail = kiln_diag_message(d, why),
		.instance = j->path,
		.request_id = j->request_id,
	};

	if (!kiln_is_ok(kiln_problem_make(&p, &j->res))) {
		kiln_buf_reset(&j->res.body);
		j->res.status = p.status;
	}
}

/* A refusal: the application hears of it first, then the client gets the problem. */
static void refuse(struct job *j, kiln_result why)
{
	const kiln_server *s = j->s;
	struct kiln_request rq;

	request_view(j, &rq);
	if (s->hooks != NULL && s->hooks->refused != NULL)
		s->hooks->refused(s->app, &rq, why, &j->diag);
	kiln_response_cleanup(&j->res);
	kiln_response_init(&j->res);
	problem_into(j, why, &j->diag, j->status_override);
	if (why.code == KILN_ERR_METHOD && j->allow[0] != '\0')
		(void)kiln_is_ok(kiln_response_header(&j->res, "Allow", j->allow));
	if (why.code == KILN_ERR_RATE_LIMITED)
		(void)kiln_is_ok(kiln_response_header(&j->res, "Retry-After", j->retry_after));
}

/*
 * Whom a public route's rate limit counts: the client certificate's serial
 * when there is one (kiln identity or not: the client proved its key), else
 * the peer's address without its port.
 */
static void public_rate_key(const struct job *j, char *out, size_t cap)
{
	const X509 *cert = j->cert != NULL ? j->cert : j->foreign;
	const char *p = j->peer, *end;

	if (cert != NULL) {
		const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
		const unsigned char *b = ASN1_STRING_get0_data(sn);
		int n = ASN1_STRING_length(sn);
		size_t at = (size_t)snprintf(out, cap, "cert:");

		for (int i = 0; i < n && i < 32 && at + 3 <= cap; i++, at += 2)
			(void)snprintf(out + at, cap - at, "%02x", b[i]);
		return;
	}
	if (p[0] == '[') { /* [v6]:port */
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	(void)snprintf(out, cap, "addr:%.*s", end != NULL ? (int)(end - p) : (int)strlen(p), p);
}

/* A refusal for going over the rate: the client learns when to come back. */
static kiln_result over_rate(struct job *j, const char *who, unsigned wait_s)
{
	(void)snprintf(j->retry_after, sizeof(j->retry_after), "%u", wait_s);
	return kiln_diag_set(&j->diag, KILN_ERR_RATE_LIMITED,
			     "%s exceeded %g requests per second; retry in %u s", who, j->s->rate,
			     wait_s);
}

/*
 * Identity, role, rate and media type, in that order: an anonymous client
 * learns only 401. Public routes that reach a worker are rate-limited too,
 * per client (public_rate_key): EST enrollment is open to whoever the policy
 * admits, and must not be a way to flood the CA.
 */
static kiln_result admit(struct job *j)
{
	const kiln_server *s = j->s;
	const struct kiln_route *rt = j->route;
	unsigned wait_s = 1;
	kiln_result r;

	if (rt->roles != 0) {
		if (j->cert == NULL && j->foreign != NULL)
			return kiln_diag_set(&j->diag, KILN_ERR_AUTH_REQUIRED,
					     "the client certificate was not issued by kiln's service CA: "
					     "use one from kiln identity add");
		if (j->cert == NULL)
			return kiln_fail(KILN_ERR_AUTH_REQUIRED);
		memset(&j->who, 0, sizeof(j->who));
		r = s->hooks->authenticate(s->app, j->cert, &j->who, &j->diag);
		if (!kiln_is_ok(r))
			return r;
		j->who.name[sizeof(j->who.name) - 1] = '\0';
		j->who.role[sizeof(j->who.role) - 1] = '\0';
		j->who.env[sizeof(j->who.env) - 1] = '\0';
		j->who.cert_serial[sizeof(j->who.cert_serial) - 1] = '\0';
		j->have_who = true;
		if ((j->who.role_bit & rt->roles) == 0)
			return kiln_diag_set(&j->diag, KILN_ERR_FORBIDDEN, "role %s may not %s %s",
					     j->who.role[0] != '\0' ? j->who.role : "(none)", j->method,
					     j->path);
		if (!kiln_ratelimit_take(s->rl, j->who.name, kiln_mono_ns(), &wait_s)) {
			char who[sizeof(j->who.name) + 16];

			(void)snprintf(who, sizeof(who), "identity %s", j->who.name);
			return over_rate(j, who, wait_s);
		}
	} else {
		char key[PEER_MAX + 72];

		public_rate_key(j, key, sizeof(key));
		if (!kiln_ratelimit_take(s->rl, key, kiln_mono_ns(), &wait_s))
			return over_rate(j, strchr(key, ':') + 1, wait_s);
	}
	if (!j->media_ok)
		return kiln_diag_set(&j->diag, KILN_ERR_UNSUPPORTED_MEDIA,
				     "content type \"%s\" is not accepted: send application/json, "
				     "application/ocsp-request or application/pkcs10",
				     j->content_type != NULL ? j->content_type : "(none)");
	return kiln_ok();
}

static void handle(struct job *j)
{
	const kiln_server *s = j->s;
	struct kiln_request rq;
	kiln_diag d;
	kiln_result r;

	request_view(j, &rq);
	kiln_diag_clear(&d);
	r = j->route->fn(s->app, &rq, &j->res, &d);
	if (kiln_is_ok(r))
		return;
	if (kiln_err_info(r.code)->http_status >= 500)
		kiln_log_warn(s->log, "%s %s failed (%s): %s", j->method, j->path,
			      kiln_err_info(r.code)->slug, kiln_diag_message(&d, r));
	/* Whatever the handler had written is not what the client gets. */
	kiln_response_cleanup(&j->res);
	kiln_response_init(&j->res);
	problem_into(j, r, &d, 0);
}

static void hand_back(struct job *j)
{
	kiln_server *s = j->s;

	pthread_mutex_lock(&s->done_mu);
	j->next_done = NULL;
	if (s->done_tail != NULL)
		s->done_tail->next_done = j;
	else
		s->done_head = j;
	s->done_tail = j;
	pthread_mutex_unlock(&s->done_mu);
	event_active(s->done_ev, EV_READ, 0);
}

/* Worker thread. */
static void job_run(struct kiln_pool_job *pj)
{
	struct job *j = (struct job *)pj;
	kiln_result r;

	if (!kiln_is_ok(j->refusal))
		refuse(j, j->refusal);
	else if (!kiln_is_ok(r = admit(j)))
		refuse(j, r);
	else
		handle(j);
	hand_back(j);
}

/* ------------------------------------------------------------ replies (loop) */

static bool header_reserved(const char *name)
{
	static const char *const reserved[] = { "Content-Length", "Content-Type", "Connection",
						"Transfer-Encoding", "Date", "X-Request-Id" };

	if (name[0] == '\0')
		return true;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (strcasecmp(name, reserved[i]) == 0)
			return true;
	}
	return false;
}

static void reply(kiln_server *s, struct job *j)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);
	struct kiln_response *res = &j->res;
	struct evbuffer *buf = evbuffer_new();
	const char *ct = res->content_type[0] != '\0' ? res->content_type : "application/json";
	int status = res->status == 0 ? 200 : res->status;
	bool cache_set = false;
	double ms;

	if (status < 200 || status > 599 || strpbrk(ct, "\r\n") != NULL) {
		kiln_log_error(s->log, "%s %s: handler set status %d or a bad content type", j->method,
			       j->path, status);
		kiln_diag_clear(&j->diag);
		kiln_response_cleanup(res);
		kiln_response_init(res);
		problem_into(j, kiln_fail(KILN_ERR_INTERNAL), NULL, 0);
		ct = res->content_type;
		status = res->status;
	}
	evhttp_add_header(h, "Content-Type", ct);
	for (size_t i = 0; i < res->n_headers && i < KILN_RESPONSE_MAX_HEADERS; i++) {
		if (header_reserved(res->headers[i].name))
			continue;
		if (evhttp_add_header(h, res->headers[i].name, res->headers[i].value) == 0 &&
		    strcasecmp(res->headers[i].name, "Cache-Control") == 0)
			cache_set = true;
	}
	/* Responses carry certificates and identities: no caching unless a route says so. */
	if (!cache_set)
		evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Request-Id", j->request_id);
	if (s->stopping)
		evhttp_add_header(h, "Connection", "close");
	if (res->body.len > 0 && (buf == NULL || evbuffer_add(buf, res->body.ptr, res->body.len) != 0)) {
		/* Out of memory: a bare 500 rather than half a body. */
		status = 500;
		if (buf != NULL)
			(void)evbuffer_drain(buf, evbuffer_get_length(buf));
	}
	evhttp_send_reply(j->req, status, NULL, buf);
	evbuffer_free(buf);
	j->req = NULL;
	ms = (double)(kiln_mono_ns() - j->start_ns) / 1e6;
	kiln_log_info(s->log, "%s %s %d %s %.1fms id=%s peer=%s", j->method, j->path, status,
		      j->have_who ? j->who.name : "-", ms, j->request_id, j->peer);
}

/* The queue is full: answered here, without the hook, whose workers are all busy. */
static void reply_busy(kiln_server *s, struct job *j)
{
	struct kiln_problem_spec p = {
		.status = 503,
		.slug = "server-busy",
		.title = "the server is busy; retry shortly",
		.detail = "every worker is busy and the request queue is full; retry after a second",
		.instance = j->path,
		.request_id = j->request_id,
	};

	kiln_response_cleanup(&j->res);
	kiln_response_init(&j->res);
	if (!kiln_is_ok(kiln_problem_make(&p, &j->res)))
		j->res.status = 503;
	(void)kiln_is_ok(kiln_response_header(&j->res, "Retry-After", "1"));
	reply(s, j);
}

static bool outputs_empty(const kiln_server *s)
{
	for (const struct kiln_conn *c = s->conns; c != NULL; c = c->next) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			return false;
	}
	return true;
}

/* Stopping: done when nothing is in flight and every reply has reached the kernel. */
static void check_drained(kiln_server *s)
{
	bool drained = s->in_flight == 0 && outputs_empty(s);

	if (!drained && kiln_mono_ns() < s->drain_deadline_ns)
		return;
	if (!drained)
		kiln_log_warn(s->log, "stopping after %u s with %zu requests still in flight", s->drain_s,
			      s->in_flight);
	event_del(s->drain_ev);
	event_base_loopexit(s->base, NULL);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	kiln_server *s = arg;
	struct job *j, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->done_mu);
	j = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_mu);
	for (; j != NULL; j = next) {
		next = j->next_done;
		reply(s, j);
		s->in_flight--;
		job_free(j);
	}
	if (s->stopping)
		check_drained(s);
}

/* ------------------------------------------------------------ requests (loop) */

const char *kiln_http_method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "?";
	}
}

static void peer_of(struct evhttp_connection *evcon, char *out, size_t cap)
{
	char *addr = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evcon, &addr, &port);
	if (addr == NULL)
		(void)snprintf(out, cap, "-");
	else if (strchr(addr, ':') != NULL)
		(void)snprintf(out, cap, "[%s]:%u", addr, (unsigned)port);
	else
		(void)snprintf(out, cap, "%s:%u", addr, (unsigned)port);
}

static kiln_result copy_params(struct job *j, const struct kiln_route_match *m)
{
	for (size_t i = 0; i < m->n_params; i++) {
		char *p = malloc(m->params[i].len + 1);

		KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
		j->params[j->n_params++] = p;
		if (!kiln_is_ok(kiln_router_decode(m->params[i], p, m->params[i].len + 1))) {
			j->refusal = kiln_diag_set(&j->diag, KILN_ERR_MALFORMED,
						   "path segment %zu is not valid percent-encoded text",
						   i + 1);
			return kiln_ok();
		}
	}
	return kiln_ok();
}

static kiln_result copy_body(const kiln_server *s, struct job *j, struct evhttp_request *req)
{
	struct evkeyvalq *in_h = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *ct = evhttp_find_header(in_h, "Content-Type");
	size_t len = evbuffer_get_length(in);

	if (ct != NULL && strlen(ct) <= CONTENT_TYPE_MAX) {
		j->content_type = strdup(ct);
		KILN_ENSURE(j->content_type != NULL, KILN_ERR_NOMEM);
	} else if (ct != NULL) {
		j->content_type = strdup("(too long)");
		KILN_ENSURE(j->content_type != NULL, KILN_ERR_NOMEM);
	}
	j->media_ok = len == 0 || (ct != NULL && strlen(ct) <= CONTENT_TYPE_MAX &&
				   kiln_router_media_ok(ct));
	/* kiln's body limit: evhttp lets through up to 2 * max_body + 64 KiB so this refusal is ours. */
	if (len > s->max_body) {
		j->refusal = kiln_diag_set(&j->diag, KILN_ERR_TOO_BIG,
					   "request body of %zu bytes exceeds the %zu-byte limit", len,
					   s->max_body);
		return kiln_ok();
	}
	if (len > 0) {
		j->body = malloc(len + 1);
		KILN_ENSURE(j->body != NULL, KILN_ERR_NOMEM);
		KILN_ENSURE(evbuffer_copyout(in, j->body, len) == (ev_ssize_t)len, KILN_ERR_INTERNAL);
		j->body[len] = '\0';
		j->body_len = len;
	}
	return kiln_ok();
}

/*
 * Fills a job from the request. Refusals are not failures: they are recorded
 * in j->refusal for a worker to report. Failures are out of memory only.
 */
static kiln_result job_fill(kiln_server *s, struct job *j, struct evhttp_request *req, SSL *ssl)
{
	const char *uri = evhttp_request_get_uri(req);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
	size_t ulen = uri != NULL ? strlen(uri) : 0;
	struct kiln_route_match m;
	X509 *peer = kiln_tls_peer_view(ssl);
	X509 *foreign = kiln_tls_peer_foreign_view(ssl);
	kiln_result r;

	if (peer != NULL && X509_up_ref(peer) == 1)
		j->cert = peer;
	if (foreign != NULL && X509_up_ref(foreign) == 1)
		j->foreign = foreign;
	j->path = strndup(path != NULL ? path : "", URI_MAX);
	KILN_ENSURE(j->path != NULL, KILN_ERR_NOMEM);
	if (ulen > URI_MAX) {
		j->status_override = 414;
		j->refusal = kiln_diag_set(&j->diag, KILN_ERR_TOO_BIG,
					   "request URI of %zu bytes exceeds the %d-byte limit", ulen, URI_MAX);
		return kiln_ok();
	}
	if (!kiln_router_path_ok(path)) {
		j->refusal = kiln_diag_set(&j->diag, KILN_ERR_MALFORMED,
					   "the request path must be absolute and printable ASCII");
		return kiln_ok();
	}
	if (query != NULL) {
		j->query = strdup(query);
		KILN_ENSURE(j->query != NULL, KILN_ERR_NOMEM);
	}
	KILN_GUARD(copy_body(s, j, req));
	if (!kiln_is_ok(j->refusal))
		return kiln_ok();
	r = kiln_router_match(s->routes, s->n_routes, j->method, path, &m);
	if (r.code == KILN_ERR_NOT_FOUND) {
		j->refusal = kiln_diag_set(&j->diag, KILN_ERR_NOT_FOUND, "no resource at %s", path);
		return kiln_ok();
	}
	if (r.code == KILN_ERR_METHOD) {
		memcpy(j->allow, m.allow, sizeof(j->allow));
		j->refusal = kiln_diag_set(&j->diag, KILN_ERR_METHOD, "%s is not allowed on %s; use %s",
					   j->method, path, m.allow);
		return kiln_ok();
	}
	KILN_GUARD(r);
	j->route = m.route;
	return copy_params(j, &m);
}

static void dispatch(kiln_server *s, struct job *j, struct bufferevent *bev)
{
	j->pj.run = job_run;
	if (kiln_is_ok(kiln_pool_submit(s->pool, &j->pj))) {
		s->in_flight++;
		/*
		 * evhttp must not parse more input while the reply is pending (its
		 * read callback aborts the process on data in the writing state);
		 * libevent 2.1.12 already stops reading after the headers, this
		 * keeps it so. evhttp reads again once the reply is written.
		 */
		bufferevent_disable(bev, EV_READ);
		return;
	}
	reply_busy(s, j);
	job_free(j);
}

/*
 * evhttp frees a connection without a TLS close_notify, which OpenSSL 3
 * clients report as an unexpected EOF; send one first. Replies are fully
 * written by then (evhttp frees after the write completes).
 */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	(void)arg;
	if (ssl != NULL && SSL_is_init_finished(ssl) &&
	    (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0)
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

/*
 * Responses leave as they are written. Without TCP_NODELAY, Nagle holds the
 * last segment of a response (written after its headers) until the client
 * ACKs the first, and the client delays that ACK: 40 ms a request on Linux.
 * Set once per connection, at its first request (evhttp gives the socket to
 * the bufferevent only after accepting it).
 */
static void set_nodelay(SSL *ssl, struct bufferevent *bev)
{
	struct kiln_conn *c = SSL_get_ex_data(ssl, conn_index);
	evutil_socket_t fd = bufferevent_getfd(bev);
	int one = 1;

	if (c == NULL || c->nodelay || fd < 0)
		return;
	c->nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	kiln_server *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct job *j;

	/* Only if SSL_new failed for this connection: never serve it in clear text. */
	if (ssl == NULL || s->pool == NULL) {
		evhttp_send_error(req, 400, NULL);
		return;
	}
	set_nodelay(ssl, bev);
	evhttp_connection_set_closecb(evcon, on_conn_close, s);
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	j->s = s;
	j->req = req;
	j->start_ns = kiln_mono_ns();
	j->method = kiln_http_method_name(evhttp_request_get_command(req));
	kiln_response_init(&j->res);
	kiln_diag_clear(&j->diag);
	(void)snprintf(j->request_id, sizeof(j->request_id), "%s-%llu", s->id_prefix, ++s->next_id);
	peer_of(evcon, j->peer, sizeof(j->peer));
	if (!kiln_is_ok(job_fill(s, j, req, ssl))) {
		kiln_log_error(s->log, "out of memory reading a request from %s", j->peer);
		j->req = NULL;
		job_free(j);
		evhttp_send_error(req, 503, NULL);
		return;
	}
	if (kiln_is_ok(j->refusal) && j->route->inline_ok && j->media_ok) {
		handle(j);
		reply(s, j);
		job_free(j);
		return;
	}
	dispatch(s, j, bev);
}

/* ------------------------------------------------------------ connections (loop) */

static int on_client_hello(SSL *ssl, int *al, void *arg)
{
	const struct kiln_conn *c = SSL_get_ex_data(ssl, conn_index);

	(void)arg;
	/* Over the connection cap: end it at the first message, before any expensive crypto. */
	if (c != NULL && c->over_cap) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	kiln_server *s = arg;
	struct kiln_conn *c = calloc(1, sizeof(*c));
	SSL *ssl = c != NULL ? SSL_new(s->tls->ctx) : NULL;
	struct bufferevent *bev;

	if (ssl == NULL || SSL_set_ex_data(ssl, conn_index, c) != 1) {
		SSL_free(ssl);
		free(c);
		ERR_clear_error();
		kiln_log_error(s->log, "out of memory for a new connection");
		return NULL;
	}
	c->over_cap = s->n_conns >= s->max_connections;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl); /* frees c through the ex data */
		kiln_log_error(s->log, "out of memory for a new connection");
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->bev = bev;
	c->s = s;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	if (c->over_cap && !s->cap_warned)
		kiln_log_warn(s->log, "%u connections open: refusing new ones until some close",
			      s->max_connections);
	s->cap_warned = c->over_cap;
	return bev;
}

/* ------------------------------------------------------------ stop (loop) */

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	check_drained(arg);
}

static void begin_stop(kiln_server *s)
{
	const struct timeval poll = { 0, DRAIN_POLL_US };

	if (s->stopping)
		return;
	s->stopping = true;
	if (s->bound != NULL) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
	s->drain_deadline_ns = kiln_mono_ns() + (uint64_t)s->drain_s * 1000000000ull;
	kiln_log_info(s->log, "stopping: listener closed, %zu requests in flight", s->in_flight);
	event_add(s->drain_ev, &poll);
	check_drained(s);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	char buf[16];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	begin_stop(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	kiln_server *s = arg;

	(void)what;
	kiln_log_info(s->log, "signal %d: stopping", (int)sig);
	begin_stop(s);
}

void kiln_server_stop(kiln_server *s)
{
	ssize_t n;

	/* write(2) is async-signal-safe; a full pipe already holds a stop request. */
	if (s == NULL || s->stop_pipe[1] < 0)
		return;
	n = write(s->stop_pipe[1], "s", 1);
	(void)n;
}

/* ------------------------------------------------------------ new, run, free */

static kiln_result check_opts(const struct kiln_server_opts *o, kiln_diag *d)
{
	bool needs_auth = false;

	if (o == NULL || o->listen == NULL)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "no listen address");
	KILN_GUARD(kiln_router_check(o->routes, o->n_routes, d));
	for (size_t i = 0; i < o->n_routes; i++)
		needs_auth = needs_auth || o->routes[i].roles != 0;
	if (needs_auth && (o->hooks == NULL || o->hooks->authenticate == NULL))
		return kiln_diag_set(d, KILN_ERR_CONFIG, "routes with roles need an authenticate hook");
	if (o->workers > 256 || o->max_body > KILN_BUF_DEFAULT_MAX ||
	    o->max_headers > 1024 * 1024 || o->timeout_s > 3600 || o->drain_s > 3600 ||
	    o->rate_burst > 1000000 || o->max_connections > 1000000 || o->queue_max > 1000000 ||
	    !(o->rate_per_s >= 0 && o->rate_per_s <= 1e6))
		return kiln_diag_set(d, KILN_ERR_CONFIG, "a server limit is out of range");
	return kiln_ok();
}

static void apply_defaults(kiln_server *s, const struct kiln_server_opts *o)
{
	s->routes = o->routes;
	s->n_routes = o->n_routes;
	s->hooks = o->hooks;
	s->app = o->app;
	s->log = o->log;
	/*
	 * A worker spends much of a request waiting: for its group commit's
	 * fsync, an HSM session, a reader connection. With 4 workers on two
	 * cores the cores idled while all four waited (bench/provision: 853-911
	 * devices/s against 889-994 with 16, same runs interleaved).
	 */
	s->workers = o->workers != 0 ? o->workers : DEFAULT_WORKERS;
	s->max_body = o->max_body != 0 ? o->max_body : 65536;
	s->max_headers = o->max_headers != 0 ? o->max_headers : 8192;
	s->timeout_s = o->timeout_s != 0 ? o->timeout_s : 10;
	s->rate = o->rate_per_s != 0 ? o->rate_per_s : 50;
	s->max_connections = o->max_connections != 0 ? o->max_connections : 1024;
	s->queue_max = o->queue_max != 0 ? o->queue_max : 256;
	s->drain_s = o->drain_s != 0 ? o->drain_s : 30;
}

static kiln_result setup_loop(kiln_server *s, kiln_diag *d)
{
	s->base = event_base_new();
	s->http = s->base != NULL ? evhttp_new(s->base) : NULL;
	if (s->http == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "cannot create the event loop");
	evhttp_set_bevcb(s->http, make_bev, s);
	evhttp_set_gencb(s->http, on_request, s);
	/*
	 * evhttp's own limit sits above kiln's: a body a little over max_body still
	 * becomes a request, refused by kiln with a problem response and an audit
	 * record; only a body far over it is cut off by evhttp itself (raw 413).
	 */
	evhttp_set_max_body_size(s->http, (ev_ssize_t)(2 * s->max_body + 65536));
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)s->max_headers);
	evhttp_set_timeout(s->http, (int)s->timeout_s);
	/* Every method reaches the router, which answers 405 with Allow. */
	evhttp_set_allowed_methods(s->http, ALL_METHODS);
	if (pipe2(s->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot create the stop pipe: %s", strerror(errno));
	s->stop_ev = event_new(s->base, s->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, s);
	s->done_ev = event_new(s->base, -1, 0, on_done, s);
	s->drain_ev = event_new(s->base, -1, EV_PERSIST, on_drain, s);
	if (s->stop_ev == NULL || s->done_ev == NULL || s->drain_ev == NULL ||
	    event_add(s->stop_ev, NULL) != 0)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "cannot create the loop's events");
	return kiln_ok();
}

static kiln_result bind_listener(kiln_server *s, const char *listen, kiln_diag *d)
{
	char host[HOST_MAX];
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd;

	if (!kiln_is_ok(kiln_listen_parse(listen, host, sizeof(host), &port)))
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "listen address \"%s\" must be HOST:PORT or [IPv6]:PORT", listen);
	errno = 0;
	s->bound = evhttp_bind_socket_with_handle(s->http, host, port);
	if (s->bound == NULL)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot listen on %s: %s", listen,
				     errno != 0 ? strerror(errno) : "address not usable");
	fd = evhttp_bound_socket_get_fd(s->bound);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot read the bound port: %s", strerror(errno));
	if (ss.ss_family == AF_INET6)
		s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return kiln_ok();
}

kiln_result kiln_server_new(const struct kiln_server_opts *o, kiln_server **out, kiln_diag *d)
{
	uint8_t rnd[6];
	kiln_server *s;
	kiln_result r;

	*out = NULL;
	KILN_GUARD(check_opts(o, d));
	pthread_once(&init_once_ctl, init_once);
	if (threads_rc != 0 || conn_index < 0)
		return kiln_diag_set(d, KILN_ERR_INTERNAL, "libevent threading or OpenSSL ex data unavailable");
	s = calloc(1, sizeof(*s));
	KILN_ENSURE(s != NULL, KILN_ERR_NOMEM);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->done_mu, NULL);
	apply_defaults(s, o);
	KILN_TRY(r, kiln_random(rnd, sizeof(rnd)));
	kiln_hex_encode(rnd, sizeof(rnd), s->id_prefix);
	KILN_TRY(r, kiln_tls_new(o, &s->tls, d));
	SSL_CTX_set_client_hello_cb(s->tls->ctx, on_client_hello, NULL);
	KILN_TRY(r, kiln_ratelimit_new(s->rate, o->rate_burst != 0 ? o->rate_burst : 100,
				       RATE_KEYS_MAX, &s->rl));
	KILN_TRY(r, setup_loop(s, d));
	KILN_TRY(r, bind_listener(s, o->listen, d));
out:
	if (!kiln_is_ok(r)) {
		kiln_server_free(s);
		return r;
	}
	*out = s;
	return kiln_ok();
}

int kiln_server_port(const kiln_server *s)
{
	return s != NULL ? s->port : 0;
}

static void free_done(kiln_server *s)
{
	struct job *j, *next;

	pthread_mutex_lock(&s->done_mu);
	j = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_mu);
	/* Never replied to: evhttp frees the requests with their connections. */
	for (; j != NULL; j = next) {
		next = j->next_done;
		job_free(j);
	}
}

kiln_result kiln_server_run(kiln_server *s, kiln_diag *d)
{
	static const int sigs[2] = { SIGTERM, SIGINT };
	struct sigaction ign;
	kiln_result r = kiln_ok();
	int rc;

	if (s->ran)
		return kiln_diag_set(d, KILN_ERR_USAGE, "a kiln server runs once");
	s->ran = true;
	/* A peer that vanishes mid-write must cost an EPIPE, not the process. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &ign, NULL);
	if (!kiln_is_ok(kiln_pool_new(s->workers, s->queue_max, job_discard, &s->pool)))
		return kiln_diag_set(d, KILN_ERR_NOMEM, "cannot start %u worker threads", s->workers);
	for (size_t i = 0; i < 2; i++) {
		s->sig_ev[i] = evsignal_new(s->base, sigs[i], on_signal, s);
		if (s->sig_ev[i] == NULL || event_add(s->sig_ev[i], NULL) != 0) {
			r = kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot watch signal %d", sigs[i]);
			goto out;
		}
	}
	kiln_log_info(s->log, "serving on port %d with %u workers", s->port, s->workers);
	rc = event_base_dispatch(s->base);
	if (rc == -1)
		r = kiln_diag_set(d, KILN_ERR_IO, "the event loop failed");
	else
		kiln_log_info(s->log, "stopped");
out:
	for (size_t i = 0; i < 2; i++) {
		if (s->sig_ev[i] != NULL)
			event_free(s->sig_ev[i]); /* restores the previous handler */
		s->sig_ev[i] = NULL;
	}
	/* Past the drain deadline some handlers may still run: wait for them, drop their replies. */
	kiln_pool_free(s->pool);
	s->pool = NULL;
	free_done(s);
	s->in_flight = 0;
	return r;
}

void kiln_server_free(kiln_server *s)
{
	if (s == NULL)
		return;
	kiln_pool_free(s->pool);
	s->pool = NULL;
	free_done(s);
	/* Connections (and the requests on them) go first; their SSL objects unlink themselves. */
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->stop_ev != NULL)
		event_free(s->stop_ev);
	if (s->done_ev != NULL)
		event_free(s->done_ev);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->base != NULL)
		event_base_free(s->base);
	kiln_tls_free(s->tls);
	kiln_ratelimit_free(s->rl);
	if (s->stop_pipe[0] >= 0)
		(void)close(s->stop_pipe[0]);
	if (s->stop_pipe[1] >= 0)
		(void)close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->done_mu);
	free(s);
}
