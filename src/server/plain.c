/*
 * The plain-HTTP listener: CRLs and OCSP, which relying parties fetch
 * without TLS (the objects are signed), and /healthz.
 *
 * Threads. o.threads serving threads (default: one per online core), each
 * with its own event_base and evhttp, all accepting from one listening
 * socket (each holds its own descriptor of it, a dup): whichever loop wakes
 * first accepts, the others find nothing and go back to waiting. Not
 * SO_REUSEPORT: with it a second kiln serve, or any program of the same
 * user, could bind the same port and silently take half the connections,
 * where a plain bind fails with "address in use". A connection stays on the
 * thread that accepted it and
 * every handler runs there, to completion. A cached OCSP answer is a parse,
 * a lookup and a copy under the responder's read lock (kiln_ocsp is
 * thread-safe: a rwlock guards its table, which the publisher replaces
 * under the write lock): no SQLite, no HSM. What is not cached (a nonce, a
 * certificate issued since the table was filled) is signed on the serving
 * thread; the signer and the store are thread-safe.
 *
 * Audit events. A refused OCSP request (malformed, unauthorized) is still
 * answered at once as RFC 6960 says; its "rejection" event is queued (at
 * most o.audit_queue) for one audit thread, which writes it. A serving
 * thread never waits on SQLite, so a flood of garbage cannot stall good
 * answers. When the queue is full the event is counted instead, and the
 * audit thread writes one "rejection" event with error "suppressed" and the
 * count once it has caught up: every refusal is in the log, one by one or
 * in a count.
 *
 * Stop. kiln_plain_free tells each thread to close its listening socket
 * (no new connections), gives the replies already written STOP_GRACE_MS to
 * leave, ends the loops, then drains the audit queue and joins everything.
 */
#include "server_impl.h"

#include "ca/ca.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OCSP_GET_MAX 8192
#define THREADS_MAX 64
#define THREADS_DEFAULT_MAX 16
#define AUDIT_QUEUE_DEFAULT 256
#define AUDIT_QUEUE_MAX 65536
#define SIGN_RATE_DEFAULT 50
#define SIGN_RATE_MAX 100000
#define SIGN_CLIENTS_MAX 4096 /* client addresses with a signing budget at once */
#define STOP_GRACE_MS 100
#define LISTEN_BACKLOG 1024

struct plain_thread {
	struct kiln_plain *p;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev;
	pthread_t thread;
	bool running;
};

/* One refused request, as the audit thread will write it. */
struct audit_item {
	int64_t time;
	char what[16];
	char slug[24];
	char message[KILN_DIAG_MAX];
	char peer[64];
};

struct kiln_plain {
	struct kiln_plain_opts o;
	int port;
	struct plain_thread *t;
	size_t n_threads;

	pthread_mutex_t amu; /* guards everything below */
	pthread_cond_t acv;
	struct audit_item *q; /* ring of o.audit_queue */
	size_t q_head, q_len;
	uint64_t dropped;    /* refusals not queued since the last summary */
	struct kiln_plain_stats stats;
	bool abusy;          /* the audit thread is writing */
	bool astop;
	pthread_t athread;
	bool audit_running;
	kiln_ratelimit *signing; /* fresh OCSP signatures per client address */
};

static void send_bytes(struct evhttp_request *req, int code, const char *type, kiln_slice body,
		       const char *cache)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	(void)evhttp_add_header(h, "Content-Type", type);
	if (cache != NULL)
		(void)evhttp_add_header(h, "Cache-Control", cache);
	(void)evbuffer_add(b, body.ptr, body.len);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

/* Serving thread: queues the refusal's event for the audit thread, or counts it. */
static void record(struct kiln_plain *p, struct evhttp_request *req, const char *what,
		   const char *slug, const kiln_diag *d)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	struct audit_item *it;
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (p->o.store == NULL)
		return;
	if (con != NULL)
		evhttp_connection_get_peer(con, &addr, &port);
	pthread_mutex_lock(&p->amu);
	if (p->q_len == p->o.audit_queue) {
		p->dropped++;
		p->stats.suppressed++;
	} else {
		it = &p->q[(p->q_head + p->q_len) % p->o.audit_queue];
		it->time = kiln_now();
		kiln_strtrunc(it->what, what, sizeof(it->what));
		kiln_strtrunc(it->slug, slug, sizeof(it->slug));
		kiln_strtrunc(it->message, d != NULL ? d->text : "", sizeof(it->message));
		kiln_strtrunc(it->peer, addr != NULL ? addr : "", sizeof(it->peer));
		p->q_len++;
		pthread_cond_signal(&p->acv);
	}
	pthread_mutex_unlock(&p->amu);
}

/*
 * Serving thread: a request for nothing this listener serves (400, 404,
 * 405). The answer is libevent's bare error page; the refusal, with its
 * method and path (sanitised, capped), goes to the audit thread like an
 * OCSP refusal, and a flood of them is counted the same way.
 */
static void refuse(struct kiln_plain *p, struct evhttp_request *req, int code, const char *what,
		   const char *why)
{
	const char *target = evhttp_request_get_uri(req);
	static const char *const slug[] = { "malformed", "not-found", "method-not-allowed" };
	kiln_diag d;
	char shown[97];

	if (target == NULL)
		target = "";
	kiln_printable(target, strlen(target), shown, sizeof(shown));
	kiln_diag_clear(&d);
	(void)snprintf(d.text, sizeof(d.text), "%s %s: %s",
		       kiln_http_method_name(evhttp_request_get_command(req)), shown, why);
	record(p, req, what, slug[code == 405 ? 2 : code == 404 ? 1 : 0], &d);
	evhttp_send_error(req, code, NULL);
}

/* Audit thread: one "rejection" event; false when it could not be written. */
static bool audit_write(struct kiln_plain *p, const struct audit_item *it, uint64_t count)
{
	struct kiln_event_rec ev = { 0 };
	kiln_diag ignored;
	json_t *j;
	bool ok;

	j = count == 0 ? json_pack("{s:s,s:s,s:s,s:s}", "operation", it->what, "error", it->slug,
				   "message", it->message, "peer", it->peer)
		       : json_pack("{s:s,s:s,s:s,s:I}", "operation", it->what, "error", "suppressed",
				   "message", "refused requests over the audit queue, counted",
				   "count", (json_int_t)count);
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (ev.detail_json == NULL)
		return false;
	ev.time = it->time;
	kiln_strtrunc(ev.type, "rejection", sizeof(ev.type));
	kiln_strtrunc(ev.actor, "http", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, it->what, sizeof(ev.subject));
	kiln_diag_clear(&ignored);
	ok = kiln_is_ok(kiln_store_event_add(p->o.store, &ev, &ignored));
	if (!ok)
		kiln_log_warn(p->o.log, "could not record a refused %s request: %s", it->what,
			      ignored.text);
	free(ev.detail_json);
	return ok;
}

/* Writes queued events, then a summary of what was counted; drains the queue before it stops. */
static void *audit_main(void *arg)
{
	struct kiln_plain *p = arg;
	struct audit_item it;
	uint64_t dropped;
	bool ok;

	pthread_mutex_lock(&p->amu);
	for (;;) {
		if (p->q_len > 0) {
			it = p->q[p->q_head];
			p->q_head = (p->q_head + 1) % p->o.audit_queue;
			p->q_len--;
			p->abusy = true;
			pthread_mutex_unlock(&p->amu);
			ok = audit_write(p, &it, 0);
			pthread_mutex_lock(&p->amu);
			p->abusy = false;
			p->stats.recorded += ok ? 1 : 0;
		} else if (p->dropped > 0) {
			dropped = p->dropped;
			p->dropped = 0;
			p->abusy = true;
			pthread_mutex_unlock(&p->amu);
			memset(&it, 0, sizeof(it));
			it.time = kiln_now();
			kiln_strtrunc(it.what, "http", sizeof(it.what));
			ok = audit_write(p, &it, dropped);
			pthread_mutex_lock(&p->amu);
			p->abusy = false;
			p->stats.summaries += ok ? 1 : 0;
		} else if (p->astop) {
			break;
		} else {
			pthread_cond_wait(&p->acv, &p->amu);
		}
	}
	pthread_mutex_unlock(&p->amu);
	return NULL;
}

/* Takes one fresh signature from the client's budget (keyed by its address). */
static bool may_sign(struct kiln_plain *p, struct evhttp_request *req)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;
	unsigned retry;

	if (con != NULL)
		evhttp_connection_get_peer(con, &addr, &port);
	return kiln_ratelimit_take(p->signing, addr != NULL ? addr : "", kiln_mono_ns(), &retry);
}

static void ocsp_answer(struct kiln_plain *p, struct evhttp_request *req, kiln_slice body, bool get)
{
	struct kiln_ocsp_answer ans;
	kiln_buf out;
	kiln_diag d;
	kiln_result r;

	kiln_buf_init(&out, 1024 * 1024);
	kiln_diag_clear(&d);
	/* The table first; a fresh signature only within this client's budget. */
	r = kiln_ocsp_respond(p->o.ocsp, body, KILN_OCSP_TABLE, &out, &ans, &d);
	if (ans.wants_signature && may_sign(p, req)) {
		kiln_buf_reset(&out);
		kiln_diag_clear(&d);
		r = kiln_ocsp_respond(p->o.ocsp, body, KILN_OCSP_SIGN, &out, &ans, &d);
	} else if (ans.nonce_dropped) {
		(void)snprintf(d.text, sizeof(d.text), "OCSP request with a nonce over this client's "
			       "signing budget: answered from the table without the nonce");
		record(p, req, "ocsp", "rate-limited", &d);
	}
	if (out.len == 0) {
		kiln_log_error(p->o.log, "OCSP: %s", d.text);
		out.len = 0;
		if (!kiln_is_ok(kiln_ocsp_error(2, &out)))
			out.len = 0;
	} else if (!kiln_is_ok(r)) {
		record(p, req, "ocsp", ans.status == 6 ? "unauthorized" : ans.status == 3 ? "tryLater" :
				       "malformedRequest", &d);
	}
	send_bytes(req, 200, "application/ocsp-response", kiln_buf_view(&out),
		   get && ans.status == 0 && !ans.unknown ? "max-age=60, public" : "no-store");
	kiln_buf_cleanup(&out);
}

static void ocsp_malformed(struct kiln_plain *p, struct evhttp_request *req, const char *why)
{
	kiln_diag d;
	kiln_buf out;

	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_diag_set(&d, KILN_ERR_MALFORMED, "%s", why)))
		return;
	record(p, req, "ocsp", "malformedRequest", &d);
	kiln_buf_init(&out, 64);
	if (!kiln_is_ok(kiln_ocsp_error(1, &out)))
		out.len = 0;
	send_bytes(req, 200, "application/ocsp-response", kiln_buf_view(&out), "no-store");
	kiln_buf_cleanup(&out);
}

static void ocsp_post(struct kiln_plain *p, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	uint8_t *body;

	if (n == 0 || n > KILN_OCSP_MAX_BYTES) {
		ocsp_malformed(p, req, n == 0 ? "empty OCSP request" : "OCSP request over 4096 bytes");
		return;
	}
	body = evbuffer_pullup(in, (ev_ssize_t)n);
	if (body == NULL) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	ocsp_answer(p, req, kiln_slice_of(body, n), false);
}

static void ocsp_get(struct kiln_plain *p, struct evhttp_request *req, const char *enc)
{
	size_t len = 0;
	char *b64 = strlen(enc) <= OCSP_GET_MAX ? evhttp_uridecode(enc, 0, &len) : NULL;
	kiln_buf der;

	kiln_buf_init(&der, KILN_OCSP_MAX_BYTES);
	if (b64 == NULL || !kiln_is_ok(kiln_base64_decode(kiln_slice_of(b64, len), &der)))
		ocsp_malformed(p, req, "GET /ocsp/: not a base64 OCSP request");
	else
		ocsp_answer(p, req, kiln_buf_view(&der), true);
	free(b64);
	kiln_buf_cleanup(&der);
}

static void crl_get(struct kiln_plain *p, struct evhttp_request *req, const char *file)
{
	char name[64];
	size_t n = strlen(file);
	kiln_buf out;

	if (n <= 4 || n - 4 >= sizeof(name) || strcmp(file + n - 4, ".crl") != 0) {
		refuse(p, req, 404, "crl", "no CRL at this path: /crl/<CA name>.crl");
		return;
	}
	memcpy(name, file, n - 4);
	name[n - 4] = '\0';
	kiln_buf_init(&out, KILN_CRL_MAX_BYTES);
	if (p->o.pub != NULL && kiln_is_ok(kiln_publisher_crl(p->o.pub, name, &out)))
		send_bytes(req, 200, "application/pkix-crl", kiln_buf_view(&out), "max-age=60, public");
	else
		refuse(p, req, 404, "crl", "no CRL for this CA name");
	kiln_buf_cleanup(&out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct kiln_plain *p = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST;

	if (path == NULL) {
		refuse(p, req, 400, "http", "the request target is not a path");
		return;
	}
	if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0) {
		if (post)
			ocsp_post(p, req);
		else
			refuse(p, req, 405, "ocsp", "OCSP takes POST at /ocsp, GET at /ocsp/<base64>");
	} else if (strncmp(path, "/ocsp/", 6) == 0 && get) {
		ocsp_get(p, req, path + 6);
	} else if (strncmp(path, "/crl/", 5) == 0 && get) {
		crl_get(p, req, path + 5);
	} else if (strcmp(path, "/healthz") == 0 && get) {
		send_bytes(req, 200, "text/plain", kiln_slice_of("ok\n", 3), "no-store");
	} else if (strncmp(path, "/ocsp/", 6) == 0) {
		refuse(p, req, 405, "ocsp", "OCSP takes POST at /ocsp, GET at /ocsp/<base64>");
	} else if (strncmp(path, "/crl/", 5) == 0) {
		refuse(p, req, 405, "crl", "CRLs take GET");
	} else if (strcmp(path, "/healthz") == 0) {
		refuse(p, req, 405, "healthz", "/healthz takes GET");
	} else {
		refuse(p, req, 404, "http", "this listener serves /ocsp, /crl/<CA name>.crl and /healthz");
	}
}

static void *plain_main(void *arg)
{
	struct plain_thread *t = arg;
	sigset_t all;

	/* Signals go to the main thread (kiln serve waits for SIGTERM there). */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, NULL);
	(void)event_base_dispatch(t->base);
	return NULL;
}

/* On the thread's own loop: no new connections; what was written gets STOP_GRACE_MS to leave. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct plain_thread *t = arg;
	struct timeval grace = { 0, STOP_GRACE_MS * 1000 };

	(void)fd;
	(void)what;
	if (t->bound != NULL)
		evhttp_del_accept_socket(t->http, t->bound);
	t->bound = NULL;
	(void)event_base_loopexit(t->base, &grace);
}

/*
 * The listening socket on host:port (the serving threads share it); *port
 * receives the port bound (port 0 picks one). -1 on failure.
 */
static evutil_socket_t listen_socket(const char *host, uint16_t *port)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char serv[8];
	evutil_socket_t fd = -1;
	int one = 1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	(void)snprintf(serv, sizeof(serv), "%u", (unsigned)*port);
	if (getaddrinfo(host[0] != '\0' ? host : NULL, serv, &hints, &ai) != 0 || ai == NULL)
		return -1;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* One serving thread's loop and evhttp, on its own descriptor of the listening socket. */
static kiln_result thread_init(struct kiln_plain *p, struct plain_thread *t, evutil_socket_t lfd,
			       kiln_diag *d)
{
	evutil_socket_t fd;

	t->p = p;
	t->base = event_base_new();
	t->http = t->base != NULL ? evhttp_new(t->base) : NULL;
	t->stop_ev = t->base != NULL ? event_new(t->base, -1, 0, on_stop, t) : NULL;
	if (t->http == NULL || t->stop_ev == NULL)
		return kiln_diag_set(d, KILN_ERR_NOMEM, "cannot create the plain-HTTP loop");
	evhttp_set_gencb(t->http, on_request, p);
	evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_body_size(t->http, 2 * KILN_OCSP_MAX_BYTES);
	evhttp_set_max_headers_size(t->http, 16384);
	evhttp_set_timeout(t->http, 10);
	fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot listen on %s", p->o.listen);
	/* evhttp owns fd from here (it closes it with the bound socket). */
	t->bound = evhttp_accept_socket_with_handle(t->http, fd);
	if (t->bound == NULL) {
		close(fd);
		return kiln_diag_set(d, KILN_ERR_IO, "cannot listen on %s", p->o.listen);
	}
	return kiln_ok();
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > THREADS_DEFAULT_MAX ? THREADS_DEFAULT_MAX : (unsigned)n;
}

kiln_result kiln_plain_start(const struct kiln_plain_opts *o, kiln_plain **out, kiln_diag *d)
{
	struct kiln_plain *p;
	char host[256];
	uint16_t port = 0;
	evutil_socket_t lfd;
	kiln_result r = kiln_ok();

	KILN_ENSURE(o != NULL && o->listen != NULL && o->ocsp != NULL && out != NULL, KILN_ERR_ARG);
	*out = NULL;
	if (!kiln_is_ok(kiln_listen_parse(o->listen, host, sizeof(host), &port)))
		return kiln_diag_set(d, KILN_ERR_USAGE, "--listen-http must be ADDR:PORT, not '%s'",
				     o->listen);
	if (o->threads > THREADS_MAX || o->audit_queue > AUDIT_QUEUE_MAX ||
	    !(o->sign_rate >= 0 && o->sign_rate <= SIGN_RATE_MAX))
		return kiln_diag_set(d, KILN_ERR_USAGE, "the plain-HTTP listener takes 1 to %d threads, "
				     "an audit queue of at most %d and at most %d OCSP signatures "
				     "per second per client", THREADS_MAX, AUDIT_QUEUE_MAX,
				     SIGN_RATE_MAX);
	(void)evthread_use_pthreads();
	p = calloc(1, sizeof(*p));
	KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
	p->o = *o;
	if (p->o.threads == 0)
		p->o.threads = default_threads();
	if (p->o.audit_queue == 0)
		p->o.audit_queue = AUDIT_QUEUE_DEFAULT;
	if (p->o.sign_rate == 0)
		p->o.sign_rate = SIGN_RATE_DEFAULT;
	pthread_mutex_init(&p->amu, NULL);
	pthread_cond_init(&p->acv, NULL);
	p->q = calloc(p->o.audit_queue, sizeof(*p->q));
	p->t = calloc(p->o.threads, sizeof(*p->t));
	if (p->q == NULL || p->t == NULL ||
	    !kiln_is_ok(kiln_ratelimit_new(p->o.sign_rate,
					   p->o.sign_rate >= 1 ? (unsigned)(2 * p->o.sign_rate) : 2,
					   SIGN_CLIENTS_MAX, &p->signing))) {
		r = kiln_diag_set(d, KILN_ERR_NOMEM, "out of memory for the plain-HTTP listener");
		goto out;
	}
	lfd = listen_socket(host, &port);
	if (lfd < 0) {
		r = kiln_diag_set(d, KILN_ERR_IO, "cannot listen on %s", p->o.listen);
		goto out;
	}
	for (size_t i = 0; i < p->o.threads && kiln_is_ok(r); i++, p->n_threads++)
		r = thread_init(p, &p->t[i], lfd, d);
	/* Each thread holds its own descriptor; the socket closes with the last. */
	(void)close(lfd);
	if (!kiln_is_ok(r))
		goto out;
	p->port = port;
	if (pthread_create(&p->athread, NULL, audit_main, p) != 0) {
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot start the audit thread");
		goto out;
	}
	p->audit_running = true;
	for (size_t i = 0; i < p->n_threads; i++) {
		if (pthread_create(&p->t[i].thread, NULL, plain_main, &p->t[i]) != 0) {
			r = kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot start the plain-HTTP threads");
			goto out;
		}
		p->t[i].running = true;
	}
out:
	if (!kiln_is_ok(r)) {
		kiln_plain_free(p);
		return r;
	}
	*out = p;
	return kiln_ok();
}

int kiln_plain_port(const kiln_plain *p)
{
	return p != NULL ? p->port : 0;
}

unsigned kiln_plain_threads(const kiln_plain *p)
{
	return p != NULL ? (unsigned)p->n_threads : 0;
}

void kiln_plain_stats(kiln_plain *p, struct kiln_plain_stats *st)
{
	pthread_mutex_lock(&p->amu);
	*st = p->stats;
	st->pending = p->q_len + (size_t)p->dropped + (p->abusy ? 1 : 0);
	pthread_mutex_unlock(&p->amu);
}

void kiln_plain_free(kiln_plain *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_threads; i++) {
		if (p->t[i].running)
			event_active(p->t[i].stop_ev, 0, 0);
	}
	for (size_t i = 0; i < p->n_threads; i++) {
		struct plain_thread *t = &p->t[i];

		if (t->running)
			pthread_join(t->thread, NULL);
		if (t->stop_ev != NULL)
			event_free(t->stop_ev);
		if (t->http != NULL)
			evhttp_free(t->http);
		if (t->base != NULL)
			event_base_free(t->base);
	}
	if (p->audit_running) {
		pthread_mutex_lock(&p->amu);
		p->astop = true;
		pthread_cond_signal(&p->acv);
		pthread_mutex_unlock(&p->amu);
		pthread_join(p->athread, NULL);
	}
	pthread_mutex_destroy(&p->amu);
	pthread_cond_destroy(&p->acv);
	kiln_ratelimit_free(p->signing);
	free(p->q);
	free(p->t);
	free(p);
}
