/*
 * Unit tests for src/server/transport.c: a real server on 127.0.0.1:0 in a
 * thread, a toy route table and hooks, driven by an in-process HTTPS client
 * (OpenSSL over a socket, so tests can misbehave on purpose: disconnect
 * early, pipeline, send oversized headers or chunked bodies) and by the
 * independent `openssl s_client` and `curl`.
 */
#include "support/support.h"

#include "server/server_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ------------------------------------------------------------ test PKI */

enum kind { CA, SERVER, CLIENT };

static X509 *mkcert(const char *cn, const char *ou, EVP_PKEY *key, X509 *issuer,
		    EVP_PKEY *issuer_key, enum kind kind)
{
	static long serial = 5000;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	const char *ext[6][2] = { { NULL, NULL } };
	size_t n = 0;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, NULL));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL));
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	if (ou != NULL)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
							    (const unsigned char *)ou, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	if (kind == CA) {
		ext[n][0] = "basicConstraints", ext[n++][1] = "critical,CA:TRUE";
		ext[n][0] = "keyUsage", ext[n++][1] = "critical,keyCertSign,cRLSign";
	} else {
		ext[n][0] = "basicConstraints", ext[n++][1] = "critical,CA:FALSE";
		ext[n][0] = "keyUsage", ext[n++][1] = "critical,digitalSignature";
		ext[n][0] = "extendedKeyUsage", ext[n++][1] = kind == SERVER ? "serverAuth" : "clientAuth";
		if (kind == SERVER)
			ext[n][0] = "subjectAltName", ext[n++][1] = "IP:127.0.0.1,IP:::1,DNS:localhost";
	}
	ext[n][0] = "subjectKeyIdentifier", ext[n++][1] = "hash";
	if (issuer != NULL)
		ext[n][0] = "authorityKeyIdentifier", ext[n++][1] = "keyid:always";
	for (size_t i = 0; i < n; i++) {
		X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, ext[i][0], ext[i][1]);

		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x;
}

static void pem_append(kiln_buf *out, X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_int_equal(x != NULL ? PEM_write_bio_X509(b, x)
				   : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL),
			 1);
	n = BIO_get_mem_data(b, &p);
	KT_OK(kiln_buf_append(out, p, (size_t)n));
	BIO_free(b);
}

enum who { ANON, STATION, STATION_CHAIN, STATION2, ADMIN, UNKNOWN, REVOKED, OTHER_CA, RL, N_WHO };

static struct {
	char *dir;
	EVP_PKEY *root_key, *int_key, *srv_key, *cli_key, *other_key;
	X509 *root, *inter, *srv, *other_root;
	X509 *cert[N_WHO];
	SSL_CTX *ctx[N_WHO];
	kiln_buf root_pem, int_pem, chain_pem, key_pem;
	char *root_file, *station_file, *key_file;
} pki;

static SSL_CTX *client_ctx(X509 *cert, X509 *extra, int version, const char *ciphers)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), pki.root), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (version != 0) {
		assert_int_equal(SSL_CTX_set_min_proto_version(c, version), 1);
		assert_int_equal(SSL_CTX_set_max_proto_version(c, version), 1);
	}
	if (ciphers != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(c, ciphers), 1);
	if (cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate(c, cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(c, pki.cli_key), 1);
	}
	if (extra != NULL)
		assert_int_equal(SSL_CTX_add1_chain_cert(c, extra), 1);
	return c;
}

static void pki_up(void)
{
	static const struct {
		const char *cn, *ou;
		bool other;
	} ids[N_WHO] = {
		[STATION] = { "station-1", "station", false },
		[STATION_CHAIN] = { "station-3", "station", false },
		[STATION2] = { "station-2", "station", false },
		[ADMIN] = { "admin-1", "admin", false },
		[UNKNOWN] = { "unknown-1", "station", false },
		[REVOKED] = { "revoked-1", "station", false },
		[OTHER_CA] = { "station-1", "station", true },
		[RL] = { "station-rl", "station", false },
	};
	kiln_buf b;

	pki.dir = kt_tmpdir("server-transport");
	pki.root_key = kt_keygen("p256");
	pki.int_key = kt_keygen("p256");
	pki.srv_key = kt_keygen("p256");
	pki.cli_key = kt_keygen("p256");
	pki.other_key = kt_keygen("p256");
	pki.root = mkcert("Test Service Root", NULL, pki.root_key, NULL, NULL, CA);
	pki.inter = mkcert("Test Service Issuing", NULL, pki.int_key, pki.root, pki.root_key, CA);
	pki.srv = mkcert("localhost", NULL, pki.srv_key, pki.inter, pki.int_key, SERVER);
	pki.other_root = mkcert("Other Root", NULL, pki.other_key, NULL, NULL, CA);
	for (int i = 1; i < N_WHO; i++) {
		X509 *iss = ids[i].other ? pki.other_root : pki.inter;
		EVP_PKEY *ik = ids[i].other ? pki.other_key : pki.int_key;

		pki.cert[i] = mkcert(ids[i].cn, ids[i].ou, pki.cli_key, iss, ik, CLIENT);
	}
	for (int i = 0; i < N_WHO; i++)
		pki.ctx[i] = client_ctx(pki.cert[i], i == STATION_CHAIN ? pki.inter : NULL, 0, NULL);
	kiln_buf_init(&pki.root_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.int_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.chain_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.key_pem, KILN_BUF_DEFAULT_MAX);
	pem_append(&pki.root_pem, pki.root, NULL);
	pem_append(&pki.int_pem, pki.inter, NULL);
	pem_append(&pki.chain_pem, pki.srv, NULL);
	pem_append(&pki.chain_pem, pki.inter, NULL);
	pem_append(&pki.key_pem, NULL, pki.srv_key);
	/* Files for the independent clients. */
	pki.root_file = kt_path(pki.dir, "root.pem");
	pki.station_file = kt_path(pki.dir, "station.pem");
	pki.key_file = kt_path(pki.dir, "station.key");
	kt_write_file(pki.root_file, pki.root_pem.ptr, pki.root_pem.len);
	kiln_buf_init(&b, KILN_BUF_DEFAULT_MAX);
	pem_append(&b, pki.cert[STATION], NULL);
	kt_write_file(pki.station_file, b.ptr, b.len);
	kiln_buf_reset(&b);
	pem_append(&b, NULL, pki.cli_key);
	kt_write_file(pki.key_file, b.ptr, b.len);
	kiln_buf_cleanup(&b);
}

static void pki_down(void)
{
	for (int i = 0; i < N_WHO; i++) {
		X509_free(pki.cert[i]);
		SSL_CTX_free(pki.ctx[i]);
	}
	X509_free(pki.root);
	X509_free(pki.inter);
	X509_free(pki.srv);
	X509_free(pki.other_root);
	EVP_PKEY_free(pki.root_key);
	EVP_PKEY_free(pki.int_key);
	EVP_PKEY_free(pki.srv_key);
	EVP_PKEY_free(pki.cli_key);
	EVP_PKEY_free(pki.other_key);
	kiln_buf_cleanup(&pki.root_pem);
	kiln_buf_cleanup(&pki.int_pem);
	kiln_buf_cleanup(&pki.chain_pem);
	kiln_buf_cleanup(&pki.key_pem);
	free(pki.root_file);
	free(pki.station_file);
	free(pki.key_file);
	kt_rmrf(pki.dir);
	free(pki.dir);
}

/* ------------------------------------------------------------ the application */

static struct {
	pthread_mutex_t mu;
	int refused[KILN_ERR__COUNT];
	int refused_total;
	bool refused_on_loop;
	bool last_had_who;
	char last_path[256];
	atomic_int slow_started, slow_done, handled;
	atomic_int slow_hold; /* h_slow waits while set */
	pthread_t loop_thread;
} app = { .mu = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static kiln_buf log_text;

static void log_sink(void *ctx, kiln_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	pthread_mutex_lock(&log_mu);
	if (kiln_is_ok(kiln_buf_append_str(&log_text, msg)))
		(void)kiln_is_ok(kiln_buf_append_str(&log_text, "\n"));
	pthread_mutex_unlock(&log_mu);
}

static const kiln_log test_log = { log_sink, NULL, KILN_LOG_DEBUG };

static bool log_has(const char *needle)
{
	bool hit;

	pthread_mutex_lock(&log_mu);
	hit = strstr(kiln_buf_cstr(&log_text), needle) != NULL;
	pthread_mutex_unlock(&log_mu);
	return hit;
}

static void name_part(const X509 *cert, int nid, char *out, size_t cap)
{
	out[0] = '\0';
	(void)X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, out, (int)cap);
}

static kiln_result authenticate(void *a, const X509 *cert, struct kiln_principal *out, kiln_diag *d)
{
	char cn[64], ou[32];

	(void)a;
	name_part(cert, NID_commonName, cn, sizeof(cn));
	name_part(cert, NID_organizationalUnitName, ou, sizeof(ou));
	if (strncmp(cn, "unknown", 7) == 0)
		return kiln_diag_set(d, KILN_ERR_AUTH_UNKNOWN, "no identity holds the certificate of %s", cn);
	if (strncmp(cn, "revoked", 7) == 0)
		return kiln_diag_set(d, KILN_ERR_AUTH_REVOKED, "identity %s was revoked", cn);
	kiln_strtrunc(out->name, cn, sizeof(out->name));
	kiln_strtrunc(out->role, ou, sizeof(out->role));
	out->role_bit = kiln_role_bit(ou);
	return kiln_ok();
}

static void refused(void *a, const struct kiln_request *req, kiln_result why, const kiln_diag *d)
{
	(void)a;
	(void)d;
	pthread_mutex_lock(&app.mu);
	app.refused[why.code]++;
	app.refused_total++;
	app.last_had_who = req->who != NULL;
	kiln_strtrunc(app.last_path, req->path, sizeof(app.last_path));
	if (pthread_equal(pthread_self(), app.loop_thread))
		app.refused_on_loop = true;
	pthread_mutex_unlock(&app.mu);
}

static const struct kiln_server_hooks hooks = { authenticate, refused };

static int refused_count(kiln_err code)
{
	int n;

	pthread_mutex_lock(&app.mu);
	n = code == KILN_OK ? app.refused_total : app.refused[code];
	pthread_mutex_unlock(&app.mu);
	return n;
}

static kiln_result h_health(void *a, const struct kiln_request *req, struct kiln_response *res,
			    kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	return kiln_buf_append_str(&res->body, "{\"status\":\"ok\"}");
}

static kiln_result h_echo(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)d;
	atomic_fetch_add(&app.handled, 1);
	/* No cmocka asserts here: this runs on a worker thread. */
	KILN_ENSURE(req->who != NULL && req->client_cert != NULL && req->request_id != NULL &&
			    strncmp(req->peer, "127.0.0.1:", 10) == 0,
		    KILN_ERR_INTERNAL);
	KILN_GUARD(kiln_response_header(res, "X-Who", req->who->name));
	return kiln_buf_append_slice(&res->body, req->body);
}

static kiln_result h_slow(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	atomic_fetch_add(&app.slow_started, 1);
	usleep(500 * 1000);
	/* Held (test_graceful_stop) until the test has seen the listener go, 30 s at most. */
	for (int i = 0; i < 30000 && atomic_load(&app.slow_hold); i++)
		usleep(1000);
	atomic_fetch_add(&app.slow_done, 1);
	return kiln_buf_append_str(&res->body, "{\"slow\":true}");
}

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	int waiting;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };

/* Holds its worker until the test opens the gate. */
static kiln_result h_gate(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	pthread_mutex_lock(&gate.mu);
	gate.waiting++;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	return kiln_buf_append_str(&res->body, "{\"gate\":true}");
}

static kiln_result h_slower(void *a, const struct kiln_request *req, struct kiln_response *res,
			    kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	usleep(1500 * 1000);
	atomic_fetch_add(&app.slow_done, 1);
	return kiln_buf_append_str(&res->body, "{\"slower\":true}");
}

static kiln_result h_admin(void *a, const struct kiln_request *req, struct kiln_response *res,
			   kiln_diag *d)
{
	(void)a;
	(void)d;
	KILN_ENSURE(req->who != NULL && req->who->role_bit == KILN_ROLE_ADMIN, KILN_ERR_INTERNAL);
	return kiln_buf_append_str(&res->body, "{\"admin\":true}");
}

static kiln_result h_item(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)d;
	KILN_ENSURE(req->n_params == 1 && req->who == NULL, KILN_ERR_INTERNAL);
	kiln_strtrunc(res->content_type, "text/plain", sizeof(res->content_type));
	KILN_GUARD(kiln_buf_append_str(&res->body, req->params[0]));
	if (req->query != NULL) {
		KILN_GUARD(kiln_buf_append_str(&res->body, "?"));
		KILN_GUARD(kiln_buf_append_str(&res->body, req->query));
	}
	return kiln_ok();
}

static kiln_result h_fail(void *a, const struct kiln_request *req, struct kiln_response *res,
			  kiln_diag *d)
{
	(void)a;
	(void)req;
	/* Half a response, then a failure: the client must see only the problem. */
	KILN_GUARD(kiln_buf_append_str(&res->body, "{\"partial\":"));
	return kiln_diag_set(d, KILN_ERR_BATCH_UNKNOWN, "no batch \"L\x01X\" is open");
}

static kiln_result h_big(void *a, const struct kiln_request *req, struct kiln_response *res,
			 kiln_diag *d)
{
	(void)a;
	(void)req;
	(void)d;
	KILN_GUARD(kiln_buf_reserve(&res->body, 1 << 20));
	for (int i = 0; i < (1 << 20) / 16; i++)
		KILN_GUARD(kiln_buf_append(&res->body, "0123456789abcdef", 16));
	KILN_GUARD(kiln_response_header(res, "Cache-Control", "max-age=60"));
	return kiln_response_header(res, "Content-Length", "1");
}

static const struct kiln_route routes[] = {
	{ "GET", "/healthz", 0, h_health, true },
	{ "POST", "/v1/echo", KILN_ROLE_STATION, h_echo, false },
	{ "POST", "/v1/slow", KILN_ROLE_STATION, h_slow, false },
	{ "GET", "/v1/slow", KILN_ROLE_STATION, h_slow, false },
	{ "GET", "/v1/admin", KILN_ROLE_ADMIN, h_admin, false },
	{ "GET", "/v1/items/{id}", 0, h_item, false },
	{ "GET", "/v1/fail", 0, h_fail, false },
	{ "GET", "/v1/big", 0, h_big, false },
	{ "GET", "/v1/gate", 0, h_gate, false },
	{ "GET", "/v1/slower", 0, h_slower, false },
};

/* ------------------------------------------------------------ server in a thread */

struct srv {
	kiln_server *s;
	pthread_t t;
	kiln_result rc;
	int port;
};

static void *srv_thread(void *arg)
{
	struct srv *v = arg;
	kiln_diag d;

	kiln_diag_clear(&d);
	app.loop_thread = pthread_self();
	v->rc = kiln_server_run(v->s, &d);
	return NULL;
}

static struct kiln_server_opts base_opts(void)
{
	struct kiln_server_opts o = { 0 };

	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&pki.chain_pem);
	o.tls_key_pem = kiln_buf_view(&pki.key_pem);
	o.client_ca_pem = kiln_buf_view(&pki.root_pem);
	o.client_chain_pem = kiln_buf_view(&pki.int_pem);
	o.routes = routes;
	o.n_routes = sizeof(routes) / sizeof(routes[0]);
	o.hooks = &hooks;
	o.app = &app;
	o.log = &test_log;
	o.rate_per_s = 100000;
	o.rate_burst = 100000;
	return o;
}

static void srv_start(struct srv *v, const struct kiln_server_opts *o)
{
	kiln_diag d;

	kiln_diag_clear(&d);
	memset(v, 0, sizeof(*v));
	if (!kiln_is_ok(kiln_server_new(o, &v->s, &d)))
		fail_msg("kiln_server_new: %s", d.text);
	v->port = kiln_server_port(v->s);
	assert_true(v->port > 0);
	assert_int_equal(pthread_create(&v->t, NULL, srv_thread, v), 0);
}

static void srv_stop(struct srv *v)
{
	kiln_server_stop(v->s);
	assert_int_equal(pthread_join(v->t, NULL), 0);
	KT_OK(v->rc);
	kiln_server_free(v->s);
	v->s = NULL;
}

/* ------------------------------------------------------------ client */

struct conn {
	int fd;
	SSL *ssl;
	kiln_buf in;
};

struct resp {
	int status;
	char head[8192];
	kiln_buf body;
};

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { 0 };
	struct timeval tv = { 20, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

static bool conn_open(struct conn *c, SSL_CTX *ctx, int port)
{
	memset(c, 0, sizeof(*c));
	kiln_buf_init(&c->in, 1 << 24);
	c->fd = tcp_connect(port);
	if (c->fd < 0)
		return false;
	c->ssl = SSL_new(ctx);
	assert_non_null(c->ssl);
	assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1"), 1);
	assert_int_equal(SSL_set_fd(c->ssl, c->fd), 1);
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		SSL_free(c->ssl);
		(void)close(c->fd);
		c->ssl = NULL;
		c->fd = -1;
		return false;
	}
	return true;
}

static void conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		(void)close(c->fd);
	kiln_buf_cleanup(&c->in);
	ERR_clear_error();
	c->ssl = NULL;
	c->fd = -1;
}

/* An abrupt end: no close_notify, the socket just goes. */
static void conn_drop(struct conn *c)
{
	SSL_set_quiet_shutdown(c->ssl, 1);
	(void)close(c->fd);
	c->fd = -1;
	conn_close(c);
}

static bool conn_write(struct conn *c, const void *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		int w = SSL_write(c->ssl, (const char *)p + off, (int)(n - off));

		if (w <= 0) {
			ERR_clear_error();
			return false;
		}
		off += (size_t)w;
	}
	return true;
}

static bool conn_fill(struct conn *c)
{
	char tmp[16384];
	int n = SSL_read(c->ssl, tmp, sizeof(tmp));

	if (n <= 0) {
		ERR_clear_error();
		return false;
	}
	KT_OK(kiln_buf_append(&c->in, tmp, (size_t)n));
	return true;
}

static bool head_get(const char *head, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;

		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			size_t n;

			v += strspn(v, " ");
			n = strcspn(v, "\r");
			if (n >= cap)
				return false;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

static void resp_init(struct resp *r)
{
	memset(r, 0, sizeof(*r));
	kiln_buf_init(&r->body, 1 << 24);
	r->status = -1;
}

static void consume(kiln_buf *b, size_t n)
{
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}

/* One response from the connection; false when the connection ended first. */
static bool conn_read(struct conn *c, struct resp *r)
{
	const uint8_t *end;
	size_t head_len;
	char cl[32];
	uint64_t clen = UINT64_MAX;

	while (c->in.len == 0 || (end = memmem(c->in.ptr, c->in.len, "\r\n\r\n", 4)) == NULL) {
		if (!conn_fill(c))
			return false;
	}
	head_len = (size_t)(end - c->in.ptr) + 4;
	assert_true(head_len < sizeof(r->head));
	memcpy(r->head, c->in.ptr, head_len);
	r->head[head_len] = '\0';
	assert_int_equal(strncmp(r->head, "HTTP/1.1 ", 9), 0);
	r->status = (r->head[9] - '0') * 100 + (r->head[10] - '0') * 10 + (r->head[11] - '0');
	if (head_get(r->head, "Content-Length", cl, sizeof(cl)))
		KT_OK(kiln_parse_u64(cl, 1 << 24, &clen));
	consume(&c->in, head_len);
	if (clen == UINT64_MAX) {
		while (conn_fill(c))
			;
		clen = c->in.len;
	}
	while (c->in.len < clen) {
		if (!conn_fill(c))
			return false;
	}
	KT_OK(kiln_buf_append(&r->body, c->in.ptr, (size_t)clen));
	consume(&c->in, (size_t)clen);
	return true;
}

static bool conn_send(struct conn *c, const char *method, const char *path, const char *ctype,
		      const char *body, bool close)
{
	char head[4096];
	size_t blen = body != NULL ? strlen(body) : 0;
	int n;

	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%s", method,
		     path, ctype != NULL ? "Content-Type: " : "", ctype != NULL ? ctype : "",
		     ctype != NULL ? "\r\n" : "", close ? "Connection: close\r\n" : "");
	assert_true(n > 0 && (size_t)n < sizeof(head));
	if (body != NULL)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", blen);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	assert_true((size_t)n < sizeof(head));
	return conn_write(c, head, (size_t)n) && (blen == 0 || conn_write(c, body, blen));
}

/* One request on a fresh connection; the status, or -1 when TLS or HTTP failed. */
static int request(enum who w, int port, const char *method, const char *path, const char *ctype,
		   const char *body, struct resp *r)
{
	struct conn c;

	resp_init(r);
	if (!conn_open(&c, pki.ctx[w], port))
		return -1;
	if (!conn_send(&c, method, path, ctype, body, true) || !conn_read(&c, r))
		r->status = -1;
	conn_close(&c);
	return r->status;
}

static json_t *problem_of(const struct resp *r, int status, const char *slug)
{
	char ct[128], rid[64], type[128];
	json_t *j = NULL;

	assert_int_equal(r->status, status);
	assert_true(head_get(r->head, "Content-Type", ct, sizeof(ct)));
	assert_string_equal(ct, "application/problem+json");
	KT_OK(kiln_json_parse(kiln_buf_view(&r->body), 1 << 16, &j, NULL));
	(void)snprintf(type, sizeof(type), "urn:kiln:problem:%s", slug);
	assert_string_equal(json_string_value(json_object_get(j, "type")), type);
	assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
	assert_non_null(json_string_value(json_object_get(j, "title")));
	assert_non_null(json_string_value(json_object_get(j, "detail")));
	assert_true(head_get(r->head, "X-Request-Id", rid, sizeof(rid)));
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), rid);
	return j;
}

static const char *jstr(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	assert_non_null(s);
	return s;
}

/* ------------------------------------------------------------ tests */

static void test_public_route_without_certificate(void **state)
{
	struct srv v;
	struct resp r;
	char h[128];
	int before;
	struct kiln_server_opts o = base_opts();

	(void)state;
	srv_start(&v, &o);
	before = refused_count(KILN_OK);
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"status\":\"ok\"}");
	assert_true(head_get(r.head, "Content-Type", h, sizeof(h)));
	assert_string_equal(h, "application/json");
	assert_true(head_get(r.head, "Cache-Control", h, sizeof(h)));
	assert_string_equal(h, "no-store");
	assert_true(head_get(r.head, "X-Content-Type-Options", h, sizeof(h)));
	assert_true(head_get(r.head, "X-Request-Id", h, sizeof(h)));
	kiln_buf_cleanup(&r.body);
	/* A worker route with a decoded parameter and the raw query. */
	assert_int_equal(request(ANON, v.port, "GET", "/v1/items/abc%41?x=1&y", NULL, NULL, &r), 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "abcA?x=1&y");
	assert_true(head_get(r.head, "Content-Type", h, sizeof(h)));
	assert_string_equal(h, "text/plain");
	kiln_buf_cleanup(&r.body);
	/* A client certificate on a public route is fine too. */
	assert_int_equal(request(STATION, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	/* A big body, the route's own Cache-Control, and no forged Content-Length. */
	assert_int_equal(request(ANON, v.port, "GET", "/v1/big", NULL, NULL, &r), 200);
	assert_int_equal(r.body.len, 1 << 20);
	assert_true(head_get(r.head, "Cache-Control", h, sizeof(h)));
	assert_string_equal(h, "max-age=60");
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_OK), before);
	srv_stop(&v);
}

static void test_tls_versions(void **state)
{
	static const struct {
		int version;
		const char *ciphers;
		int want;
	} cases[] = {
		{ TLS1_VERSION, "DEFAULT:@SECLEVEL=0", -1 },
		{ TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0", -1 },
		{ TLS1_2_VERSION, NULL, 200 },
		{ TLS1_3_VERSION, NULL, 200 },
	};
	struct kiln_server_opts o = base_opts();
	struct srv v;

	(void)state;
	srv_start(&v, &o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *save = pki.ctx[ANON];
		struct resp r;

		pki.ctx[ANON] = client_ctx(NULL, NULL, cases[i].version, cases[i].ciphers);
		assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), cases[i].want);
		kiln_buf_cleanup(&r.body);
		SSL_CTX_free(pki.ctx[ANON]);
		pki.ctx[ANON] = save;
	}
	/* The same through an independent client; SECLEVEL=0 so it is the server that says no. */
	if (kt_system("command -v openssl >/dev/null") == 0) {
/* A whole HTTP exchange through s_client: true only if a 200 comes back. */
#define S_CLIENT                                                                         \
	"printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "  \
	"openssl s_client -connect 127.0.0.1:%d -CAfile '%s' %s -quiet -ign_eof 2>/dev/null | " \
	"grep -q '^HTTP/1.1 200'"
		assert_int_not_equal(kt_system(S_CLIENT, v.port, pki.root_file, "-tls1 -cipher 'DEFAULT:@SECLEVEL=0'"), 0);
		assert_int_not_equal(kt_system(S_CLIENT, v.port, pki.root_file, "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'"), 0);
		assert_int_equal(kt_system(S_CLIENT, v.port, pki.root_file, "-tls1_2"), 0);
		assert_int_equal(kt_system(S_CLIENT, v.port, pki.root_file, "-tls1_3"), 0);
		/* TLS 1.2 with CBC only: refused. */
		assert_int_not_equal(kt_system(S_CLIENT, v.port, pki.root_file,
					       "-tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0'"), 0);
		/* The server ends its connections with a close_notify, so s_client exits cleanly. */
		assert_int_equal(kt_system("printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
					   "openssl s_client -connect 127.0.0.1:%d -CAfile '%s' -quiet -ign_eof >/dev/null 2>&1",
					   v.port, pki.root_file), 0);
#undef S_CLIENT
	}
	srv_stop(&v);
}

static void test_certificate_required(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	json_t *j;
	int before = refused_count(KILN_ERR_AUTH_REQUIRED), total = refused_count(KILN_OK);

	(void)state;
	srv_start(&v, &o);
	request(ANON, v.port, "POST", "/v1/echo", "application/json", "{}", &r);
	j = problem_of(&r, 401, "client-certificate-required");
	assert_string_equal(jstr(j, "instance"), "/v1/echo");
	assert_string_equal(jstr(j, "title"), kiln_err_info(KILN_ERR_AUTH_REQUIRED)->message);
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_AUTH_REQUIRED), before + 1);
	assert_int_equal(refused_count(KILN_OK), total + 1);
	/* Authentication comes before the media type: an anonymous client learns only 401. */
	request(ANON, v.port, "POST", "/v1/echo", "text/plain", "x", &r);
	assert_int_equal(r.status, 401);
	kiln_buf_cleanup(&r.body);
	pthread_mutex_lock(&app.mu);
	assert_false(app.last_had_who);
	assert_false(app.refused_on_loop);
	pthread_mutex_unlock(&app.mu);
	srv_stop(&v);
}

static void test_client_from_another_ca(void **state)
{
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	struct kiln_server_opts o = base_opts();
	struct srv v;
	int total = refused_count(KILN_OK);

	(void)state;
	srv_start(&v, &o);
	/* Refused in the handshake (TLS 1.2) or right after it (TLS 1.3): never an HTTP answer. */
	for (size_t i = 0; i < 2; i++) {
		SSL_CTX *save = pki.ctx[OTHER_CA];
		struct resp r;

		pki.ctx[OTHER_CA] = client_ctx(pki.cert[OTHER_CA], NULL, versions[i], NULL);
		assert_int_equal(request(OTHER_CA, v.port, "GET", "/healthz", NULL, NULL, &r), -1);
		assert_int_equal(request(OTHER_CA, v.port, "POST", "/v1/echo", "application/json", "{}", &r), -1);
		kiln_buf_cleanup(&r.body);
		SSL_CTX_free(pki.ctx[OTHER_CA]);
		pki.ctx[OTHER_CA] = save;
	}
	assert_int_equal(refused_count(KILN_OK), total);
	srv_stop(&v);
}

static void test_identities_and_roles(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	char h[64];
	json_t *j;
	int unknown = refused_count(KILN_ERR_AUTH_UNKNOWN);
	int revoked = refused_count(KILN_ERR_AUTH_REVOKED);
	int forbidden = refused_count(KILN_ERR_FORBIDDEN);

	(void)state;
	srv_start(&v, &o);
	request(UNKNOWN, v.port, "POST", "/v1/echo", "application/json", "{}", &r);
	j = problem_of(&r, 403, "identity-unknown");
	assert_string_equal(jstr(j, "detail"), "no identity holds the certificate of unknown-1");
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_AUTH_UNKNOWN), unknown + 1);
	request(REVOKED, v.port, "POST", "/v1/echo", "application/json", "{}", &r);
	json_decref(problem_of(&r, 403, "identity-revoked"));
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_AUTH_REVOKED), revoked + 1);
	/* A station may not use the admin route... */
	request(STATION, v.port, "GET", "/v1/admin", NULL, NULL, &r);
	j = problem_of(&r, 403, "forbidden");
	assert_string_equal(jstr(j, "detail"), "role station may not GET /v1/admin");
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_FORBIDDEN), forbidden + 1);
	pthread_mutex_lock(&app.mu);
	assert_true(app.last_had_who);
	assert_string_equal(app.last_path, "/v1/admin");
	pthread_mutex_unlock(&app.mu);
	/* ...nor the admin the station's. */
	request(ADMIN, v.port, "POST", "/v1/echo", "application/json", "{}", &r);
	j = problem_of(&r, 403, "forbidden");
	assert_string_equal(jstr(j, "detail"), "role admin may not POST /v1/echo");
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(request(ADMIN, v.port, "GET", "/v1/admin", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	/* The leaf alone (the server adds the intermediate) and the full chain both work. */
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "application/json", "{\"a\":1}", &r), 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"a\":1}");
	assert_true(head_get(r.head, "X-Who", h, sizeof(h)));
	assert_string_equal(h, "station-1");
	kiln_buf_cleanup(&r.body);
	assert_int_equal(request(STATION_CHAIN, v.port, "POST", "/v1/echo", "application/json", "{}", &r), 200);
	assert_true(head_get(r.head, "X-Who", h, sizeof(h)));
	assert_string_equal(h, "station-3");
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

static void test_routes_methods_media(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	char h[64];
	json_t *j;
	int nf = refused_count(KILN_ERR_NOT_FOUND), me = refused_count(KILN_ERR_METHOD);
	int um = refused_count(KILN_ERR_UNSUPPORTED_MEDIA), mal = refused_count(KILN_ERR_MALFORMED);
	int total = refused_count(KILN_OK);

	(void)state;
	srv_start(&v, &o);
	request(ANON, v.port, "GET", "/nope", NULL, NULL, &r);
	j = problem_of(&r, 404, "not-found");
	assert_string_equal(jstr(j, "instance"), "/nope");
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_NOT_FOUND), nf + 1);
	request(STATION, v.port, "GET", "/v1/echo", NULL, NULL, &r);
	json_decref(problem_of(&r, 405, "method-not-allowed"));
	assert_true(head_get(r.head, "Allow", h, sizeof(h)));
	assert_string_equal(h, "POST");
	kiln_buf_cleanup(&r.body);
	request(ANON, v.port, "DELETE", "/healthz", NULL, NULL, &r);
	json_decref(problem_of(&r, 405, "method-not-allowed"));
	assert_true(head_get(r.head, "Allow", h, sizeof(h)));
	assert_string_equal(h, "GET");
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_METHOD), me + 2);
	/* Media types: refused after authentication, parameters allowed. */
	request(STATION, v.port, "POST", "/v1/echo", "text/plain", "hello", &r);
	json_decref(problem_of(&r, 415, "unsupported-media-type"));
	kiln_buf_cleanup(&r.body);
	request(STATION, v.port, "POST", "/v1/echo", NULL, "{}", &r);
	json_decref(problem_of(&r, 415, "unsupported-media-type"));
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_UNSUPPORTED_MEDIA), um + 2);
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "Application/JSON; charset=utf-8", "{}", &r), 200);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "application/pkcs10", "{}", &r), 200);
	kiln_buf_cleanup(&r.body);
	/* A parameter that decodes to a slash or a control character. */
	request(ANON, v.port, "GET", "/v1/items/a%2Fb", NULL, NULL, &r);
	json_decref(problem_of(&r, 400, "malformed"));
	kiln_buf_cleanup(&r.body);
	request(ANON, v.port, "GET", "/v1/items/%0a", NULL, NULL, &r);
	json_decref(problem_of(&r, 400, "malformed"));
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_MALFORMED), mal + 2);
	assert_int_equal(refused_count(KILN_OK), total + 7);
	pthread_mutex_lock(&app.mu);
	assert_false(app.refused_on_loop);
	pthread_mutex_unlock(&app.mu);
	srv_stop(&v);
}

static void test_handler_failure_is_a_problem(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	json_t *j;
	int total = refused_count(KILN_OK);

	(void)state;
	srv_start(&v, &o);
	request(ANON, v.port, "GET", "/v1/fail", NULL, NULL, &r);
	j = problem_of(&r, 404, "batch-unknown");
	/* The diag's control character never reaches the client. */
	assert_string_equal(jstr(j, "detail"), "no batch \"L?X\" is open");
	assert_null(strstr(kiln_buf_cstr(&r.body), "partial"));
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	/* Handlers report their own refusals: the hook is for the transport's. */
	assert_int_equal(refused_count(KILN_OK), total);
	srv_stop(&v);
}

static void test_size_limits(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	struct conn c;
	char *big, *path;
	json_t *j;
	int tb = refused_count(KILN_ERR_TOO_BIG);

	(void)state;
	o.max_body = 1024;
	o.max_headers = 4096;
	srv_start(&v, &o);
	big = malloc(6000);
	assert_non_null(big);
	memset(big, 'a', 5999);
	big[5999] = '\0';
	/* Exactly max_body is fine. */
	big[1024] = '\0';
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "application/json", big, &r), 200);
	assert_int_equal(r.body.len, 1024);
	kiln_buf_cleanup(&r.body);
	big[1024] = 'a';
	/* Over max_body: read whole, then refused by kiln as a problem, with the hook. */
	big[5000] = '\0';
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "application/json", big, &r), 413);
	assert_non_null(strstr(kiln_buf_cstr(&r.body), "urn:kiln:problem:too-big"));
	assert_int_equal(refused_count(KILN_ERR_TOO_BIG), tb + 1);
	kiln_buf_cleanup(&r.body);
	big[5000] = 'a';
	/* Content-Length far over the cap (past evhttp's own): 413 from the headers alone. */
	resp_init(&r);
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	{
		static const char h[] = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
					"Content-Length: 500000\r\n\r\n";

		assert_true(conn_write(&c, h, sizeof(h) - 1));
	}
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 413);
	conn_close(&c);
	kiln_buf_cleanup(&r.body);
	/* Chunked: one chunk far over the cap... */
	resp_init(&r);
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	{
		static const char h[] = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
					"Transfer-Encoding: chunked\r\n\r\n80000\r\n";

		assert_true(conn_write(&c, h, sizeof(h) - 1));
	}
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 413);
	conn_close(&c);
	kiln_buf_cleanup(&r.body);
	/* ...and small chunks that add up to more than max_body: kiln's problem again. */
	resp_init(&r);
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	{
		static const char h[] = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
					"Transfer-Encoding: chunked\r\n\r\n";
		bool ok = conn_write(&c, h, sizeof(h) - 1);

		for (int i = 0; ok && i < 3; i++)
			ok = conn_write(&c, "200\r\n", 5) && conn_write(&c, big, 512) && conn_write(&c, "\r\n", 2);
		ok = ok && conn_write(&c, "0\r\n\r\n", 5);
		(void)ok; /* the server may close before the last chunk */
	}
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 413);
	conn_close(&c);
	kiln_buf_cleanup(&r.body);
	/* A small chunked body is read whole. */
	resp_init(&r);
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	{
		static const char h[] = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
					"Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";

		assert_true(conn_write(&c, h, sizeof(h) - 1));
	}
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"a\":1}");
	conn_close(&c);
	kiln_buf_cleanup(&r.body);
	/* Headers over max_headers: evhttp refuses (400) or just closes. */
	resp_init(&r);
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	{
		char *h = malloc(10000);
		int n;

		assert_non_null(h);
		big[5000] = '\0';
		n = snprintf(h, 10000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
		big[5000] = 'a';
		(void)conn_write(&c, h, (size_t)n);
		free(h);
	}
	if (conn_read(&c, &r))
		assert_true(r.status == 400 || r.status == 431);
	else
		assert_int_equal(r.status, -1);
	conn_close(&c);
	kiln_buf_cleanup(&r.body);
	/* A URI over 2048 bytes (but within max_headers): 414 from kiln. */
	path = malloc(3100);
	assert_non_null(path);
	memcpy(path, "/v1/items/", 10);
	memset(path + 10, 'x', 3000);
	path[3010] = '\0';
	request(ANON, v.port, "GET", path, NULL, NULL, &r);
	j = problem_of(&r, 414, "too-big");
	assert_true(strlen(jstr(j, "instance")) <= 2048);
	json_decref(j);
	kiln_buf_cleanup(&r.body);
	/* Three of kiln's own: the 5000-byte body, the chunks adding up, the long URI. */
	assert_int_equal(refused_count(KILN_ERR_TOO_BIG), tb + 3);
	free(path);
	free(big);
	/* The server is still fine. */
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

static void test_rate_limit(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	struct conn c;
	char h[32];
	uint64_t wait;
	int rl = refused_count(KILN_ERR_RATE_LIMITED);

	(void)state;
	o.rate_per_s = 0.5;
	o.rate_burst = 5;
	srv_start(&v, &o);
	assert_true(conn_open(&c, pki.ctx[RL], v.port));
	for (int i = 0; i < 5; i++) {
		resp_init(&r);
		assert_true(conn_send(&c, "POST", "/v1/echo", "application/json", "{}", false));
		assert_true(conn_read(&c, &r));
		assert_int_equal(r.status, 200);
		kiln_buf_cleanup(&r.body);
	}
	resp_init(&r);
	assert_true(conn_send(&c, "POST", "/v1/echo", "application/json", "{}", false));
	assert_true(conn_read(&c, &r));
	json_decref(problem_of(&r, 429, "rate-limited"));
	assert_true(head_get(r.head, "Retry-After", h, sizeof(h)));
	KT_OK(kiln_parse_u64(h, 10, &wait));
	assert_true(wait >= 1 && wait <= 2);
	kiln_buf_cleanup(&r.body);
	conn_close(&c);
	assert_int_equal(refused_count(KILN_ERR_RATE_LIMITED), rl + 1);
	/* Per identity: another station is not affected. */
	assert_int_equal(request(STATION2, v.port, "POST", "/v1/echo", "application/json", "{}", &r), 200);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

/* Public routes that reach a worker are limited per client: address, or certificate. */
static void test_rate_limit_public(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;
	char h[32];
	int rl = refused_count(KILN_ERR_RATE_LIMITED);

	(void)state;
	o.rate_per_s = 0.5;
	o.rate_burst = 3;
	srv_start(&v, &o);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(request(ANON, v.port, "GET", "/v1/items/7", NULL, NULL, &r), 200);
		kiln_buf_cleanup(&r.body);
	}
	assert_int_equal(request(ANON, v.port, "GET", "/v1/items/7", NULL, NULL, &r), 429);
	json_decref(problem_of(&r, 429, "rate-limited"));
	assert_true(head_get(r.head, "Retry-After", h, sizeof(h)));
	assert_non_null(strstr((const char *)r.body.ptr, "127.0.0.1 exceeded"));
	kiln_buf_cleanup(&r.body);
	assert_int_equal(refused_count(KILN_ERR_RATE_LIMITED), rl + 1);
	/* A client with a certificate is counted apart, by its certificate (a foreign one too). */
	assert_int_equal(request(STATION, v.port, "GET", "/v1/items/7", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	/* Inline routes (health, cached answers) are never held back. */
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

struct worker_arg {
	int port;
	enum who who;
	int id, n, ok;
};

static void *client_worker(void *arg)
{
	struct worker_arg *w = arg;
	struct conn c;
	bool open = false;

	for (int i = 0; i < w->n; i++) {
		char body[96], who[32];
		struct resp r;

		/* Keep-alive, with a fresh handshake every tenth request. */
		if (open && i % 10 == 0) {
			conn_close(&c);
			open = false;
		}
		if (!open && !(open = conn_open(&c, pki.ctx[w->who], w->port)))
			continue;
		(void)snprintf(body, sizeof(body), "{\"client\":%d,\"i\":%d}", w->id, i);
		resp_init(&r);
		if (conn_send(&c, "POST", "/v1/echo", "application/json", body, false) && conn_read(&c, &r) &&
		    r.status == 200 && strcmp(kiln_buf_cstr(&r.body), body) == 0 &&
		    head_get(r.head, "X-Who", who, sizeof(who)) &&
		    strcmp(who, w->who == STATION ? "station-1" : "station-2") == 0)
			w->ok++;
		kiln_buf_cleanup(&r.body);
	}
	if (open)
		conn_close(&c);
	return NULL;
}

static void test_concurrent_clients(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct worker_arg w[8];
	pthread_t t[8];
	struct srv v;
	int n = 50;

	(void)state;
	srv_start(&v, &o);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker_arg){ v.port, i % 2 == 0 ? STATION : STATION2, i, n, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, client_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, n);
	}
	srv_stop(&v);
}

struct slow_arg {
	int port;
	struct resp r;
};

static void *slow_client(void *arg)
{
	struct slow_arg *a = arg;

	request(STATION, a->port, "POST", "/v1/slow", "application/json", "{}", &a->r);
	return NULL;
}

static void wait_for(atomic_int *counter, int value)
{
	for (int i = 0; i < 20000 && atomic_load(counter) < value; i++)
		usleep(1000);
	assert_true(atomic_load(counter) >= value);
}

static void test_graceful_stop(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct slow_arg a;
	struct srv v;
	pthread_t t;
	char h[32];
	bool refused_now = false;
	int started = atomic_load(&app.slow_started), done = atomic_load(&app.slow_done);

	(void)state;
	srv_start(&v, &o);
	a.port = v.port;
	atomic_store(&app.slow_hold, 1);
	assert_int_equal(pthread_create(&t, NULL, slow_client, &a), 0);
	wait_for(&app.slow_started, started + 1);
	kiln_server_stop(v.s);
	/*
	 * The listener goes away (at once, but a loaded machine may take a while to
	 * schedule the loop); the slow request, held, is still running meanwhile.
	 */
	{
		int accepted = 0, other = 0, last_errno = 0;

		for (int i = 0; i < 2000 && !refused_now; i++) {
			int fd = tcp_connect(v.port);

			if (fd >= 0) {
				accepted++;
				(void)close(fd);
			} else if (errno == ECONNREFUSED) {
				refused_now = true;
			} else {
				other++;
				last_errno = errno;
			}
			if (!refused_now)
				usleep(10000);
		}
		/* Release the held request first, so a failure here does not poison the next tests. */
		if (!refused_now) {
			atomic_store(&app.slow_hold, 0);
			pthread_join(t, NULL);
			srv_stop(&v);
			kiln_buf_cleanup(&a.r.body);
			fail_msg("the listener did not go after stop: %d connects accepted, %d failed "
				 "otherwise (last errno %d)", accepted, other, last_errno);
		}
	}
	assert_int_equal(atomic_load(&app.slow_done), done);
	atomic_store(&app.slow_hold, 0);
	pthread_join(t, NULL);
	/* Its response arrived whole. */
	assert_int_equal(a.r.status, 200);
	assert_string_equal(kiln_buf_cstr(&a.r.body), "{\"slow\":true}");
	assert_true(head_get(a.r.head, "Connection", h, sizeof(h)));
	assert_string_equal(h, "close");
	kiln_buf_cleanup(&a.r.body);
	assert_int_equal(pthread_join(v.t, NULL), 0);
	KT_OK(v.rc);
	kiln_server_free(v.s);
}

static void test_disconnect_before_response(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct conn c;
	struct resp r;
	int done = atomic_load(&app.slow_done);

	(void)state;
	srv_start(&v, &o);
	/* Goes away while the handler sleeps. */
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	assert_true(conn_send(&c, "POST", "/v1/slow", "application/json", "{}", false));
	conn_drop(&c);
	/* The same with a clean close_notify. */
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	assert_true(conn_send(&c, "POST", "/v1/slow", "application/json", "{}", false));
	conn_close(&c);
	wait_for(&app.slow_done, done + 2);
	usleep(100 * 1000);
	/* Replies were dropped; the server carries on. */
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

static void test_bytes_after_request_while_handler_runs(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct conn c;
	struct resp r;
	static const char req[] = "POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
				  "Content-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	srv_start(&v, &o);
	/* A pipelined second request arrives while the first is on a worker. */
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	assert_true(conn_write(&c, req, sizeof(req) - 1));
	resp_init(&r);
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"slow\":true}");
	kiln_buf_cleanup(&r.body);
	resp_init(&r);
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"status\":\"ok\"}");
	kiln_buf_cleanup(&r.body);
	conn_close(&c);
	/* Bytes that arrive while a body-less request is on a worker (evhttp still reads then). */
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	assert_true(conn_send(&c, "GET", "/v1/slow", NULL, NULL, false));
	usleep(100 * 1000);
	assert_true(conn_write(&c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35));
	resp_init(&r);
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 200);
	assert_string_equal(kiln_buf_cstr(&r.body), "{\"slow\":true}");
	kiln_buf_cleanup(&r.body);
	resp_init(&r);
	assert_true(conn_read(&c, &r));
	assert_int_equal(r.status, 200);
	kiln_buf_cleanup(&r.body);
	conn_close(&c);
	/* Garbage after a request, then the client leaves. */
	assert_true(conn_open(&c, pki.ctx[STATION], v.port));
	assert_true(conn_send(&c, "POST", "/v1/slow", "application/json", "{}", false));
	assert_true(conn_write(&c, "\x01\x02garbage\r\n\r\n", 13));
	resp_init(&r);
	if (conn_read(&c, &r))
		assert_int_equal(r.status, 200);
	kiln_buf_cleanup(&r.body);
	conn_close(&c);
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
}

struct gate_arg {
	int port;
	struct resp r;
	atomic_int *finished;
};

static void *gate_client(void *arg)
{
	struct gate_arg *a = arg;

	request(ANON, a->port, "GET", "/v1/gate", NULL, NULL, &a->r);
	atomic_fetch_add(a->finished, 1);
	return NULL;
}

static void test_busy_queue(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct gate_arg a[3];
	atomic_int finished;
	pthread_t t[3];
	struct srv v;
	int busy = 0, total = refused_count(KILN_OK);

	(void)state;
	o.workers = 1;
	o.queue_max = 1;
	srv_start(&v, &o);
	atomic_init(&finished, 0);
	pthread_mutex_lock(&gate.mu);
	gate.open = false;
	gate.waiting = 0;
	pthread_mutex_unlock(&gate.mu);
	/* The one worker is held at the gate... */
	a[0] = (struct gate_arg){ .port = v.port, .finished = &finished };
	assert_int_equal(pthread_create(&t[0], NULL, gate_client, &a[0]), 0);
	pthread_mutex_lock(&gate.mu);
	while (gate.waiting < 1)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	/* ...one more request fits in the queue, the other is refused at once. */
	for (int i = 1; i < 3; i++) {
		a[i] = (struct gate_arg){ .port = v.port, .finished = &finished };
		assert_int_equal(pthread_create(&t[i], NULL, gate_client, &a[i]), 0);
	}
	wait_for(&finished, 1);
	pthread_mutex_lock(&gate.mu);
	gate.open = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(a[0].r.status, 200);
	for (int i = 1; i < 3; i++) {
		if (a[i].r.status == 503) {
			char h[16];

			json_decref(problem_of(&a[i].r, 503, "server-busy"));
			assert_true(head_get(a[i].r.head, "Retry-After", h, sizeof(h)));
			busy++;
		} else {
			assert_int_equal(a[i].r.status, 200);
		}
	}
	for (int i = 0; i < 3; i++)
		kiln_buf_cleanup(&a[i].r.body);
	assert_int_equal(busy, 1);
	/* A full queue is answered on the loop without the hook (its workers are busy). */
	assert_int_equal(refused_count(KILN_OK), total);
	srv_stop(&v);
}

static void test_stop_deadline(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct conn c;
	struct resp r;
	int done = atomic_load(&app.slow_done);
	uint64_t t0;

	(void)state;
	o.drain_s = 1;
	srv_start(&v, &o);
	assert_true(conn_open(&c, pki.ctx[ANON], v.port));
	assert_true(conn_send(&c, "GET", "/v1/slower", NULL, NULL, false));
	usleep(200 * 1000);
	t0 = kiln_mono_ns();
	kiln_server_stop(v.s);
	assert_int_equal(pthread_join(v.t, NULL), 0);
	KT_OK(v.rc);
	/* run waited for the deadline, then for the handler, and dropped its reply. */
	assert_true(kiln_mono_ns() - t0 >= 900000000ull);
	assert_int_equal(atomic_load(&app.slow_done), done + 1);
	assert_true(log_has("stopping after 1 s with 1 requests still in flight"));
	kiln_server_free(v.s);
	resp_init(&r);
	assert_false(conn_read(&c, &r));
	kiln_buf_cleanup(&r.body);
	conn_close(&c);
}

static void test_connection_cap(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct conn c[3];
	struct resp r;
	struct srv v;
	bool again = false;

	(void)state;
	o.max_connections = 2;
	srv_start(&v, &o);
	assert_true(conn_open(&c[0], pki.ctx[ANON], v.port));
	assert_true(conn_open(&c[1], pki.ctx[ANON], v.port));
	assert_false(conn_open(&c[2], pki.ctx[ANON], v.port));
	/* The open ones still work. */
	resp_init(&r);
	assert_true(conn_send(&c[0], "GET", "/healthz", NULL, NULL, false));
	assert_true(conn_read(&c[0], &r));
	assert_int_equal(r.status, 200);
	kiln_buf_cleanup(&r.body);
	conn_close(&c[1]);
	for (int i = 0; i < 200 && !again; i++) {
		usleep(10000);
		again = conn_open(&c[2], pki.ctx[ANON], v.port);
	}
	assert_true(again);
	conn_close(&c[2]);
	conn_close(&c[0]);
	assert_true(log_has("connections open: refusing new ones"));
	srv_stop(&v);
}

static void test_idle_timeout(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct conn c;
	char b;
	uint64_t t0;
	int fd;

	(void)state;
	o.timeout_s = 1;
	srv_start(&v, &o);
	/* No ClientHello at all. */
	fd = tcp_connect(v.port);
	assert_true(fd >= 0);
	t0 = kiln_mono_ns();
	assert_int_equal(recv(fd, &b, 1, 0), 0);
	assert_true(kiln_mono_ns() - t0 < 8000000000ull);
	(void)close(fd);
	/* Half a request. */
	assert_true(conn_open(&c, pki.ctx[ANON], v.port));
	assert_true(conn_write(&c, "GET /healthz HTTP/1.1\r\nHo", 25));
	assert_false(conn_fill(&c));
	conn_close(&c);
	srv_stop(&v);
}

static void test_log_lines(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;

	(void)state;
	pthread_mutex_lock(&log_mu);
	kiln_buf_reset(&log_text);
	pthread_mutex_unlock(&log_mu);
	srv_start(&v, &o);
	assert_int_equal(request(STATION, v.port, "POST", "/v1/echo", "application/json",
				 "{\"pin\":\"SECRET-MARKER\"}", &r), 200);
	kiln_buf_cleanup(&r.body);
	request(ANON, v.port, "POST", "/v1/echo", "application/json", "{\"k\":\"SECRET-MARKER\"}", &r);
	kiln_buf_cleanup(&r.body);
	request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r);
	kiln_buf_cleanup(&r.body);
	srv_stop(&v);
	assert_true(log_has("POST /v1/echo 200 station-1 "));
	assert_true(log_has("POST /v1/echo 401 - "));
	assert_true(log_has("GET /healthz 200 - "));
	assert_true(log_has("ms id="));
	assert_true(log_has("stopped"));
	assert_false(log_has("SECRET-MARKER"));
	assert_false(log_has("PRIVATE KEY"));
}

static void test_curl_interop(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	char *out, *code;
	kiln_buf b;

	(void)state;
	if (kt_system("command -v curl >/dev/null") != 0)
		skip();
	srv_start(&v, &o);
	out = kt_path(pki.dir, "curl.out");
	code = kt_path(pki.dir, "curl.code");
	assert_int_equal(kt_system("curl -sS --max-time 60 --cacert '%s' --cert '%s' --key '%s' "
				   "-H 'Content-Type: application/json' --data-binary '{\"curl\":1}' "
				   "-o '%s' -w '%%{http_code}' https://127.0.0.1:%d/v1/echo > '%s'",
				   pki.root_file, pki.station_file, pki.key_file, out, v.port, code), 0);
	kiln_buf_init(&b, 1 << 20);
	kt_read_file(code, &b);
	assert_string_equal(kiln_buf_cstr(&b), "200");
	kiln_buf_cleanup(&b);
	kt_read_file(out, &b);
	assert_string_equal(kiln_buf_cstr(&b), "{\"curl\":1}");
	kiln_buf_cleanup(&b);
	/* Without a certificate: the problem, as curl sees it. */
	assert_int_equal(kt_system("curl -sS --max-time 60 --cacert '%s' -H 'Content-Type: application/json' "
				   "--data-binary '{}' -o '%s' -w '%%{http_code}' https://127.0.0.1:%d/v1/echo > '%s'",
				   pki.root_file, out, v.port, code), 0);
	kt_read_file(code, &b);
	assert_string_equal(kiln_buf_cstr(&b), "401");
	kiln_buf_cleanup(&b);
	kt_read_file(out, &b);
	assert_non_null(strstr(kiln_buf_cstr(&b), "urn:kiln:problem:client-certificate-required"));
	kiln_buf_cleanup(&b);
	free(out);
	free(code);
	srv_stop(&v);
}

static void test_sigterm_stops(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct srv v;
	struct resp r;

	(void)state;
	srv_start(&v, &o);
	/* A served request proves the loop (and its signal events) is running. */
	assert_int_equal(request(ANON, v.port, "GET", "/healthz", NULL, NULL, &r), 200);
	kiln_buf_cleanup(&r.body);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	assert_int_equal(pthread_join(v.t, NULL), 0);
	KT_OK(v.rc);
	kiln_server_free(v.s);
	assert_true(log_has("signal 15: stopping"));
}

static void test_stop_before_run_and_run_once(void **state)
{
	struct kiln_server_opts o = base_opts();
	kiln_server *s;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_server_new(&o, &s, &d));
	kiln_server_stop(s);
	KT_OK(kiln_server_run(s, &d));
	KT_ERR(kiln_server_run(s, &d), KILN_ERR_USAGE);
	kiln_server_free(s);
	kiln_server_stop(NULL);
	kiln_server_free(NULL);
	assert_int_equal(kiln_server_port(NULL), 0);
}

static void new_fails(const struct kiln_server_opts *o, kiln_err want, const char *text)
{
	kiln_server *s = (kiln_server *)&s;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_server_new(o, &s, &d), want);
	assert_null(s);
	if (text != NULL && strstr(d.text, text) == NULL)
		fail_msg("diag \"%s\" lacks \"%s\"", d.text, text);
}

static void test_new_refuses_bad_options(void **state)
{
	static const struct kiln_route inline_admin[] = {
		{ "GET", "/x", KILN_ROLE_ADMIN, h_health, true },
	};
	static const struct kiln_server_hooks no_auth = { NULL, refused };
	struct kiln_server_opts o;
	kiln_server *s;
	kiln_diag d;

	(void)state;
	new_fails(NULL, KILN_ERR_CONFIG, "listen");
	o = base_opts();
	o.listen = NULL;
	new_fails(&o, KILN_ERR_CONFIG, "listen");
	o.listen = "127.0.0.1";
	new_fails(&o, KILN_ERR_CONFIG, "HOST:PORT");
	o.listen = "::1:8443";
	new_fails(&o, KILN_ERR_CONFIG, "HOST:PORT");
	o.listen = "127.0.0.1:65536";
	new_fails(&o, KILN_ERR_CONFIG, "HOST:PORT");
	o.listen = "192.0.2.1:0"; /* not an address of this machine */
	new_fails(&o, KILN_ERR_IO, "cannot listen");
	o = base_opts();
	o.routes = inline_admin;
	o.n_routes = 1;
	new_fails(&o, KILN_ERR_CONFIG, "must be public");
	o = base_opts();
	o.hooks = &no_auth;
	new_fails(&o, KILN_ERR_CONFIG, "authenticate");
	o.hooks = NULL;
	new_fails(&o, KILN_ERR_CONFIG, "authenticate");
	o = base_opts();
	o.max_body = (size_t)1 << 30;
	new_fails(&o, KILN_ERR_CONFIG, "out of range");
	o = base_opts();
	o.rate_per_s = -1;
	new_fails(&o, KILN_ERR_CONFIG, "out of range");
	o = base_opts();
	o.tls_key_pem = kiln_slice_of(NULL, 0);
	new_fails(&o, KILN_ERR_CONFIG, "TLS key");
	/* A port already taken. */
	o = base_opts();
	kiln_diag_clear(&d);
	KT_OK(kiln_server_new(&o, &s, &d));
	{
		char listen[32];

		(void)snprintf(listen, sizeof(listen), "127.0.0.1:%d", kiln_server_port(s));
		o.listen = listen;
		new_fails(&o, KILN_ERR_IO, "cannot listen");
	}
	kiln_server_free(s);
}

static void test_listen_parse(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	KT_OK(kiln_listen_parse("127.0.0.1:8443", host, sizeof(host), &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8443);
	KT_OK(kiln_listen_parse("[::1]:0", host, sizeof(host), &port));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	KT_OK(kiln_listen_parse("localhost:65535", host, sizeof(host), &port));
	assert_int_equal(port, 65535);
	KT_OK(kiln_listen_parse("[fe80::1%eth0]:1", host, sizeof(host), &port));
	assert_string_equal(host, "fe80::1%eth0");
	KT_ERR(kiln_listen_parse(NULL, host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse(":8443", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("host:", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("host:-1", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("host:123456", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("host:80x", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("[::1:80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("[::1]80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("[127.0.0.1]:80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("::1:80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("ho st:80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("a/b:80", host, sizeof(host), &port), KILN_ERR_CONFIG);
	KT_ERR(kiln_listen_parse("averyveryverylonghostname:80", host, 8, &port), KILN_ERR_CONFIG);
}

static void test_ipv6_listener(void **state)
{
	struct kiln_server_opts o = base_opts();
	struct sockaddr_in6 sa = { 0 };
	kiln_server *s;
	kiln_diag d;
	struct srv v;
	int fd;

	(void)state;
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			(void)close(fd);
		skip();
	}
	(void)close(fd);
	o.listen = "[::1]:0";
	kiln_diag_clear(&d);
	KT_OK(kiln_server_new(&o, &s, &d));
	assert_true(kiln_server_port(s) > 0);
	/* Serve one request over IPv6 with curl when it is there. */
	memset(&v, 0, sizeof(v));
	v.s = s;
	v.port = kiln_server_port(s);
	assert_int_equal(pthread_create(&v.t, NULL, srv_thread, &v), 0);
	if (kt_system("command -v curl >/dev/null") == 0)
		assert_int_equal(kt_system("curl -sS --max-time 60 --cacert '%s' -o /dev/null "
					   "https://[::1]:%d/healthz", pki.root_file, v.port), 0);
	srv_stop(&v);
}

static int setup(void **state)
{
	(void)state;
	kiln_buf_init(&log_text, 4 << 20);
	pki_up();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pki_down();
	kiln_buf_cleanup(&log_text);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_parse),
		cmocka_unit_test(test_public_route_without_certificate),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_certificate_required),
		cmocka_unit_test(test_client_from_another_ca),
		cmocka_unit_test(test_identities_and_roles),
		cmocka_unit_test(test_routes_methods_media),
		cmocka_unit_test(test_handler_failure_is_a_problem),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_public),
		cmocka_unit_test(test_concurrent_clients),
		cmocka_unit_test(test_graceful_stop),
		cmocka_unit_test(test_disconnect_before_response),
		cmocka_unit_test(test_bytes_after_request_while_handler_runs),
		cmocka_unit_test(test_busy_queue),
		cmocka_unit_test(test_stop_deadline),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_curl_interop),
		cmocka_unit_test(test_sigterm_stops),
		cmocka_unit_test(test_stop_before_run_and_run_once),
		cmocka_unit_test(test_new_refuses_bad_options),
		cmocka_unit_test(test_ipv6_listener),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
