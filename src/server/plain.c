/*
 * The plain-HTTP listener: CRLs and OCSP, which relying parties fetch
 * without TLS (the objects are signed), and /healthz. One thread, one event
 * loop; every handler runs on it. A cached OCSP answer is a parse, a table
 * lookup and a copy: no SQLite, no HSM. What is not cached (a nonce, a
 * certificate issued since the table was filled) is signed on this thread.
 */
#include "server_impl.h"

#include "ca/ca.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OCSP_GET_MAX 8192

struct kiln_plain {
	struct kiln_plain_opts o;
	struct event_base *base;
	struct evhttp *http;
	int port;
	pthread_t thread;
	bool running;
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

static void record(struct kiln_plain *p, struct evhttp_request *req, const char *what,
		   const char *slug, const kiln_diag *d)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	struct kiln_event_rec ev = { 0 };
	char *addr = NULL;
	ev_uint16_t port = 0;
	kiln_diag ignored;
	json_t *j;

	if (p->o.store == NULL)
		return;
	if (con != NULL)
		evhttp_connection_get_peer(con, &addr, &port);
	j = json_pack("{s:s,s:s,s:s,s:s}", "operation", what, "error", slug, "message",
		      d != NULL ? d->text : "", "peer", addr != NULL ? addr : "");
	ev.detail_json = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (ev.detail_json == NULL)
		return;
	ev.time = kiln_now();
	kiln_strtrunc(ev.type, "rejection", sizeof(ev.type));
	kiln_strtrunc(ev.actor, "http", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, what, sizeof(ev.subject));
	kiln_diag_clear(&ignored);
	if (!kiln_is_ok(kiln_store_event_add(p->o.store, &ev, &ignored)))
		kiln_log_warn(p->o.log, "could not record a refused %s request: %s", what, ignored.text);
	free(ev.detail_json);
}

static void ocsp_answer(struct kiln_plain *p, struct evhttp_request *req, kiln_slice body, bool get)
{
	struct kiln_ocsp_answer ans;
	kiln_buf out;
	kiln_diag d;
	kiln_result r;

	kiln_buf_init(&out, 1024 * 1024);
	kiln_diag_clear(&d);
	r = kiln_ocsp_respond(p->o.ocsp, body, &out, &ans, &d);
	if (out.len == 0) {
		kiln_log_error(p->o.log, "OCSP: %s", d.text);
		out.len = 0;
		if (!kiln_is_ok(kiln_ocsp_error(2, &out)))
			out.len = 0;
	} else if (!kiln_is_ok(r)) {
		record(p, req, "ocsp", ans.status == 6 ? "unauthorized" : "malformedRequest", &d);
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
		evhttp_send_error(req, 404, NULL);
		return;
	}
	memcpy(name, file, n - 4);
	name[n - 4] = '\0';
	kiln_buf_init(&out, KILN_CRL_MAX_BYTES);
	if (p->o.pub != NULL && kiln_is_ok(kiln_publisher_crl(p->o.pub, name, &out)))
		send_bytes(req, 200, "application/pkix-crl", kiln_buf_view(&out), "max-age=60, public");
	else
		evhttp_send_error(req, 404, NULL);
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
		evhttp_send_error(req, 400, NULL);
		return;
	}
	if (strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0) {
		if (post)
			ocsp_post(p, req);
		else
			evhttp_send_error(req, 405, NULL);
	} else if (strncmp(path, "/ocsp/", 6) == 0 && get) {
		ocsp_get(p, req, path + 6);
	} else if (strncmp(path, "/crl/", 5) == 0 && get) {
		crl_get(p, req, path + 5);
	} else if (strcmp(path, "/healthz") == 0 && get) {
		send_bytes(req, 200, "text/plain", kiln_slice_of("ok\n", 3), "no-store");
	} else if (strncmp(path, "/ocsp/", 6) == 0 || strncmp(path, "/crl/", 5) == 0 ||
		   strcmp(path, "/healthz") == 0) {
		evhttp_send_error(req, 405, NULL);
	} else {
		evhttp_send_error(req, 404, NULL);
	}
}

static void *plain_main(void *arg)
{
	struct kiln_plain *p = arg;

	(void)event_base_dispatch(p->base);
	return NULL;
}

kiln_result kiln_plain_start(const struct kiln_plain_opts *o, kiln_plain **out, kiln_diag *d)
{
	struct kiln_plain *p;
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256];
	uint16_t port = 0;
	kiln_result r = kiln_ok();

	KILN_ENSURE(o != NULL && o->listen != NULL && o->ocsp != NULL && out != NULL, KILN_ERR_ARG);
	*out = NULL;
	if (!kiln_is_ok(kiln_listen_parse(o->listen, host, sizeof(host), &port)))
		return kiln_diag_set(d, KILN_ERR_USAGE, "--listen-http must be ADDR:PORT, not '%s'",
				     o->listen);
	(void)evthread_use_pthreads();
	p = calloc(1, sizeof(*p));
	KILN_ENSURE(p != NULL, KILN_ERR_NOMEM);
	p->o = *o;
	p->base = event_base_new();
	p->http = p->base != NULL ? evhttp_new(p->base) : NULL;
	if (p->http == NULL) {
		r = kiln_diag_set(d, KILN_ERR_NOMEM, "cannot create the plain-HTTP loop");
		goto out;
	}
	evhttp_set_gencb(p->http, on_request, p);
	evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_max_body_size(p->http, 2 * KILN_OCSP_MAX_BYTES);
	evhttp_set_max_headers_size(p->http, 16384);
	evhttp_set_timeout(p->http, 10);
	bound = evhttp_bind_socket_with_handle(p->http, host, port);
	if (bound == NULL) {
		r = kiln_diag_set(d, KILN_ERR_IO, "cannot listen on %s", o->listen);
		goto out;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0)
		p->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	if (pthread_create(&p->thread, NULL, plain_main, p) != 0) {
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "cannot start the plain-HTTP thread");
		goto out;
	}
	p->running = true;
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

void kiln_plain_free(kiln_plain *p)
{
	if (p == NULL)
		return;
	if (p->running) {
		(void)event_base_loopbreak(p->base);
		pthread_join(p->thread, NULL);
	}
	if (p->http != NULL)
		evhttp_free(p->http);
	if (p->base != NULL)
		event_base_free(p->base);
	free(p);
}
