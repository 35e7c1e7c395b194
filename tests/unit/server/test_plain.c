/*
 * Unit tests for src/server/plain.c: the plain-HTTP listener over a real
 * deployment, spoken to with raw HTTP/1.1 over a socket: /healthz, POST
 * /ocsp and GET /ocsp/<base64> answered with verifiable OCSP responses,
 * malformed and oversized requests answered malformedRequest with a
 * rejection event, /crl/<ca>.crl, 404 and 405 (each a rejection event too),
 * and a bad listen address.
 * The threads: several listeners' threads answering concurrent clients
 * (keep-alive and one connection per request), a garbage flood that is
 * answered malformedRequest while good requests keep being answered and
 * every refusal is in the log (one by one or in a "suppressed" count), and
 * a stop with clients connected (no new connection after it).
 */
#include "support/ca_fixture.h"

#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct kt_deploy k;
static kiln_ocsp *ocsp;
static kiln_publisher *pub;
static kiln_plain *plain;
static X509 *leaf, *issuer;

static int setup(void **state)
{
	struct kiln_publisher_opts po = { 0 };
	struct kiln_plain_opts pl = { 0 };
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	char *dir;
	kiln_buf csr;
	BIO *bio;

	(void)state;
	kt_deploy_up(&k, "server-plain", KILN_ALG_P256, true);
	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", "TST-PLAIN-0001", NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "t";
	kiln_issue_result_init(&res);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, NULL));
	bio = BIO_new_mem_buf(res.chain_pem.ptr, (int)res.chain_pem.len);
	leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	issuer = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "t", &ocsp, NULL));
	KT_OK(kiln_ocsp_presign_all(ocsp, NULL, NULL));
	dir = kt_path(k.dir, "crl");
	po = (struct kiln_publisher_opts){ k.ca, k.store, ocsp, dir, 86400, 50, 50, "t", &k.log };
	KT_OK(kiln_publisher_start(&po, &pub, NULL));
	free(dir);
	pl = (struct kiln_plain_opts){ .listen = "127.0.0.1:0", .ocsp = ocsp, .pub = pub,
				       .store = k.store, .log = &k.log, .threads = 3 };
	KT_OK(kiln_plain_start(&pl, &plain, NULL));
	assert_true(kiln_plain_port(plain) > 0);
	assert_int_equal(kiln_plain_threads(plain), 3);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_plain_free(plain);
	kiln_publisher_free(pub);
	kiln_ocsp_free(ocsp);
	X509_free(leaf);
	X509_free(issuer);
	kt_deploy_down(&k);
	return 0;
}

/* One HTTP/1.1 request; returns the status; body (may be NULL) receives the body. */
static int http(const char *method, const char *path, const void *body, size_t len, kiln_buf *out)
{
	struct sockaddr_in sa = { 0 };
	char head[9000], buf[65536];
	kiln_buf all;
	const char *sep;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	ssize_t n;

	assert_true(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)kiln_plain_port(plain));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		     "Content-Type: application/ocsp-request\r\nContent-Length: %zu\r\n\r\n",
		     method, path, len);
	assert_true(write(fd, head, (size_t)n) == n);
	if (len > 0)
		assert_true(write(fd, body, len) == (ssize_t)len);
	kiln_buf_init(&all, 1 << 22);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		KT_OK(kiln_buf_append(&all, buf, (size_t)n));
	close(fd);
	assert_int_equal(sscanf(kiln_buf_cstr(&all), "HTTP/1.1 %d", &status), 1);
	sep = strstr(kiln_buf_cstr(&all), "\r\n\r\n");
	if (out != NULL && sep != NULL)
		KT_OK(kiln_buf_append(out, sep + 4, all.len - (size_t)((const uint8_t *)sep + 4 - all.ptr)));
	kiln_buf_cleanup(&all);
	return status;
}

/* Waits until the audit thread has written every refusal (no time limit: not a timing test). */
static void settle(kiln_plain *p)
{
	struct kiln_plain_stats st;

	for (;;) {
		kiln_plain_stats(p, &st);
		if (st.pending == 0)
			return;
		usleep(10000);
	}
}

static int ocsp_status(const kiln_buf *b, int *cert_status)
{
	const unsigned char *p = b->ptr;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b->len);
	OCSP_BASICRESP *bs;
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	int st, reason;

	assert_non_null(resp);
	st = OCSP_response_status(resp);
	if (st == 0) {
		bs = OCSP_response_get1_basic(resp);
		assert_int_equal(OCSP_resp_find_status(bs, id, cert_status, &reason, NULL, NULL, NULL), 1);
		OCSP_BASICRESP_free(bs);
	}
	OCSP_CERTID_free(id);
	OCSP_RESPONSE_free(resp);
	return st;
}

/* The newest event is a rejection of operation what, with error slug and a message starting msg. */
static void last_rejection_is(const char *what, const char *slug, const char *msg)
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	json_t *j;

	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	assert_true(n > 0);
	assert_string_equal(ev[n - 1].type, "rejection");
	assert_string_equal(ev[n - 1].subject, what);
	j = json_loads(ev[n - 1].detail_json, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "operation")), what);
	assert_string_equal(json_string_value(json_object_get(j, "error")), slug);
	assert_non_null(json_string_value(json_object_get(j, "message")));
	assert_memory_equal(json_string_value(json_object_get(j, "message")), msg, strlen(msg));
	assert_string_equal(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
	json_decref(j);
	kiln_store_event_list_free(ev, n);
}

static void test_routes(void **state)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	uint8_t *der = NULL, *big;
	kiln_buf b, b64, path;
	int len, cs = -1;
	int64_t rej;

	(void)state;
	kiln_buf_init(&b, 1 << 22);
	assert_int_equal(http("GET", "/healthz", NULL, 0, &b), 200);
	assert_string_equal(kiln_buf_cstr(&b), "ok\n");
	kiln_buf_reset(&b);

	assert_non_null(OCSP_request_add0_id(req, OCSP_cert_to_id(EVP_sha1(), leaf, issuer)));
	len = i2d_OCSP_REQUEST(req, &der);
	assert_int_equal(http("POST", "/ocsp", der, (size_t)len, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), 0);
	assert_int_equal(cs, V_OCSP_CERTSTATUS_GOOD);
	kiln_buf_reset(&b);

	kiln_buf_init(&b64, 8192);
	kiln_buf_init(&path, 16384);
	KT_OK(kiln_base64_encode(kiln_slice_of(der, (size_t)len), &b64));
	KT_OK(kiln_buf_append_str(&path, "/ocsp/"));
	for (size_t i = 0; i < b64.len; i++) {
		char c = (char)b64.ptr[i];

		if (c == '+' || c == '/' || c == '=')
			KT_OK(kiln_buf_printf(&path, "%%%02X", (unsigned)c));
		else
			KT_OK(kiln_buf_append_u8(&path, (uint8_t)c));
	}
	assert_int_equal(http("GET", kiln_buf_cstr(&path), NULL, 0, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), 0);
	assert_int_equal(cs, V_OCSP_CERTSTATUS_GOOD);
	kiln_buf_reset(&b);

	settle(plain);
	rej = kt_count_events(&k, "rejection");
	assert_int_equal(http("POST", "/ocsp", "junk", 4, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	kiln_buf_reset(&b);
	big = calloc(1, 5000);
	assert_non_null(big);
	assert_int_equal(http("POST", "/ocsp", big, 5000, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(big);
	kiln_buf_reset(&b);
	assert_int_equal(http("GET", "/ocsp/!!!", NULL, 0, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	kiln_buf_reset(&b);
	settle(plain);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 3);

	assert_int_equal(http("GET", "/crl/test-issuing.crl", NULL, 0, &b), 200);
	assert_true(b.len > 100);
	/* Requests for nothing served: refused, and each one a rejection event. */
	assert_int_equal(http("GET", "/crl/nope.crl", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/crl/test-issuing", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/v1/devices/1", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/ocsp", NULL, 0, NULL), 405);
	assert_int_equal(http("PUT", "/healthz", NULL, 0, NULL), 405);
	assert_int_equal(http("DELETE", "/crl/test-issuing.crl", NULL, 0, NULL), 405);
	settle(plain);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 9);
	last_rejection_is("crl", "method-not-allowed", "DELETE /crl/test-issuing.crl: CRLs take GET");
	/* The target is quoted as sent (percent-encoded), never decoded into the log. */
	assert_int_equal(http("GET", "/x%0Ay%1B", NULL, 0, NULL), 404);
	settle(plain);
	last_rejection_is("http", "not-found", "GET /x%0Ay%1B: this listener serves");
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(&b64);
	kiln_buf_cleanup(&path);
}

/*
 * Sends a request for the leaf (nonce: with one); returns the
 * OCSPResponseStatus; *echoed: the nonce came back.
 */
static int ask_nonce(bool nonce, bool *echoed)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	const unsigned char *p;
	uint8_t *der = NULL;
	kiln_buf b;
	int len, st;

	assert_non_null(OCSP_request_add0_id(req, OCSP_cert_to_id(EVP_sha1(), leaf, issuer)));
	if (nonce)
		assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
	len = i2d_OCSP_REQUEST(req, &der);
	kiln_buf_init(&b, 1 << 20);
	assert_int_equal(http("POST", "/ocsp", der, (size_t)len, &b), 200);
	p = b.ptr;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len);
	assert_non_null(resp);
	st = OCSP_response_status(resp);
	*echoed = false;
	if (st == 0) {
		bs = OCSP_response_get1_basic(resp);
		assert_non_null(bs);
		*echoed = OCSP_check_nonce(req, bs) == 1;
		OCSP_BASICRESP_free(bs);
	}
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
	kiln_buf_cleanup(&b);
	return st;
}

/*
 * A client's budget of fresh signatures (bursts of 2, one more every 1000 s): two
 * nonces are echoed, the third request gets the pre-signed answer without
 * it, a request without a nonce is answered as always, an unknown serial
 * gets tryLater; each refusal is a rejection event.
 */
static void test_sign_budget(void **state)
{
	struct kiln_plain_opts pl = { .listen = "127.0.0.1:0", .ocsp = ocsp, .pub = pub,
				      .store = k.store, .log = &k.log, .threads = 1, .sign_rate = 0.001 };
	kiln_plain *p = NULL, *saved = plain;
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id;
	ASN1_INTEGER *sn = ASN1_INTEGER_new();
	uint8_t *der = NULL;
	kiln_buf b;
	int len, cs = -1;
	bool echoed = false;
	int64_t rej;

	(void)state;
	KT_OK(kiln_plain_start(&pl, &p, NULL));
	plain = p; /* http() and settle() speak to this listener */
	settle(p);
	rej = kt_count_events(&k, "rejection");
	assert_int_equal(ask_nonce(true, &echoed), 0);
	assert_true(echoed);
	assert_int_equal(ask_nonce(true, &echoed), 0);
	assert_true(echoed);
	assert_int_equal(ask_nonce(true, &echoed), 0);
	assert_false(echoed);
	assert_int_equal(ask_nonce(false, &echoed), 0);
	settle(p);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 1);
	last_rejection_is("ocsp", "rate-limited", "OCSP request with a nonce over this client's");

	assert_int_equal(ASN1_INTEGER_set(sn, 0x4244), 1);
	id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuer),
			      X509_get0_pubkey_bitstr(issuer), sn);
	assert_non_null(OCSP_request_add0_id(req, id));
	len = i2d_OCSP_REQUEST(req, &der);
	kiln_buf_init(&b, 1 << 20);
	assert_int_equal(http("POST", "/ocsp", der, (size_t)len, &b), 200);
	assert_int_equal(ocsp_status(&b, &cs), OCSP_RESPONSE_STATUS_TRYLATER);
	settle(p);
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 2);
	last_rejection_is("ocsp", "tryLater", "OCSP request that needs a fresh signature");
	plain = saved;
	kiln_plain_free(p);
	kiln_buf_cleanup(&b);
	ASN1_INTEGER_free(sn);
	OCSP_REQUEST_free(req);
	OPENSSL_free(der);
}

/* ------------------------------------------------------------ threads (no cmocka asserts off the main thread) */

static OCSP_CERTID *leaf_id; /* made on the main thread, only read by the clients */
static uint8_t *good_der;
static int good_len;

static int conn_open(int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * One request on fd; the HTTP status or -1. The body (Content-Length bytes,
 * at most cap) goes to out, its length to *n.
 */
static int exchange(int fd, const char *method, const char *path, const void *body, size_t len,
		    bool close_after, uint8_t *out, size_t cap, size_t *n)
{
	char head[512], buf[16384];
	size_t have = 0, clen;
	const char *sep, *cl;
	int hn, status;
	ssize_t r;

	hn = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
		      "application/ocsp-request\r\nContent-Length: %zu\r\n\r\n", method, path,
		      close_after ? "Connection: close\r\n" : "", len);
	if (write(fd, head, (size_t)hn) != hn || (len > 0 && write(fd, body, len) != (ssize_t)len))
		return -1;
	for (;;) {
		buf[have] = '\0';
		sep = strstr(buf, "\r\n\r\n");
		if (sep != NULL)
			break;
		if (have + 1 >= sizeof(buf) || (r = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			return -1;
		have += (size_t)r;
	}
	cl = strstr(buf, "Content-Length: ");
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || cl == NULL || cl > sep ||
	    sscanf(cl, "Content-Length: %zu", &clen) != 1 || clen > cap ||
	    strstr(buf, "Content-Type: application/ocsp-response") == NULL)
		return -1;
	*n = have - (size_t)(sep + 4 - buf);
	if (*n > clen)
		return -1;
	memcpy(out, sep + 4, *n);
	while (*n < clen) {
		if ((r = read(fd, out + *n, clen - *n)) <= 0)
			return -1;
		*n += (size_t)r;
	}
	return status;
}

/* OCSPResponseStatus of a body, -1 when it does not parse; *good: leaf's status is good. */
static int ocsp_check(const uint8_t *b, size_t n, bool *good)
{
	const unsigned char *p = b;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)n);
	OCSP_BASICRESP *bs;
	int st, cs = -1, reason;

	*good = false;
	if (resp == NULL)
		return -1;
	st = OCSP_response_status(resp);
	if (st == 0 && (bs = OCSP_response_get1_basic(resp)) != NULL) {
		*good = OCSP_resp_find_status(bs, leaf_id, &cs, &reason, NULL, NULL, NULL) == 1 &&
			cs == V_OCSP_CERTSTATUS_GOOD;
		OCSP_BASICRESP_free(bs);
	}
	OCSP_RESPONSE_free(resp);
	return st;
}

struct client {
	pthread_t th;
	int port;
	int requests;        /* 0: until the listener is gone */
	bool keep_alive;
	bool garbage;
	int ok;              /* answers as expected */
	int bad;             /* anything else */
};

/* Good requests (POST /ocsp) or garbage ones; counts answers that are what they should be. */
static void *client_main(void *arg)
{
	struct client *c = arg;
	static const char junk[] = "this is not an OCSP request";
	uint8_t *out = malloc(65536);
	int fd = -1;

	for (int i = 0; out != NULL && (c->requests == 0 || i < c->requests); i++) {
		size_t n = 0;
		bool good = false;
		int st;

		if (fd < 0 && (fd = conn_open(c->port)) < 0)
			break;
		if (c->garbage && i % 2 == 1)
			st = exchange(fd, "GET", "/ocsp/!!!", NULL, 0, !c->keep_alive, out, 65536, &n);
		else if (c->garbage)
			st = exchange(fd, "POST", "/ocsp", junk, sizeof(junk) - 1, !c->keep_alive, out,
				      65536, &n);
		else
			st = exchange(fd, "POST", "/ocsp", good_der, (size_t)good_len, !c->keep_alive,
				      out, 65536, &n);
		if (st == 200 && c->garbage && ocsp_check(out, n, &good) == 1)
			__atomic_add_fetch(&c->ok, 1, __ATOMIC_RELAXED);
		else if (st == 200 && !c->garbage && ocsp_check(out, n, &good) == 0 && good)
			__atomic_add_fetch(&c->ok, 1, __ATOMIC_RELAXED);
		else if (c->requests == 0) /* a stop test: the listener went away */
			break;
		else
			c->bad++;
		if (!c->keep_alive || st != 200) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	free(out);
	return NULL;
}

static void good_request(void)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();

	assert_non_null(req);
	leaf_id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	assert_non_null(OCSP_request_add0_id(req, OCSP_cert_to_id(EVP_sha1(), leaf, issuer)));
	good_der = NULL;
	good_len = i2d_OCSP_REQUEST(req, &good_der);
	assert_true(good_len > 0);
	OCSP_REQUEST_free(req);
}

static void good_request_free(void)
{
	OPENSSL_free(good_der);
	OCSP_CERTID_free(leaf_id);
}

static int scale(int n)
{
	return getenv("KILN_UNDER_VALGRIND") != NULL ? n / 10 : n;
}

/* Concurrent clients, keep-alive and one connection per request, all answered good. */
static void test_concurrent(void **state)
{
	struct client c[6];

	(void)state;
	good_request();
	for (int i = 0; i < 6; i++) {
		c[i] = (struct client){ .port = kiln_plain_port(plain), .keep_alive = i % 2 == 0 };
		c[i].requests = c[i].keep_alive ? scale(300) : scale(60);
		assert_int_equal(pthread_create(&c[i].th, NULL, client_main, &c[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(c[i].th, NULL), 0);
		assert_int_equal(c[i].bad, 0);
		assert_int_equal(c[i].ok, c[i].requests);
	}
	good_request_free();
}

/* Sums the counts of the "suppressed" rejection events in the log. */
static uint64_t suppressed_in_log(int64_t *events)
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	uint64_t sum = 0;

	*events = 0;
	KT_OK(kiln_store_event_list(k.store, 0, 0, &ev, &n, NULL));
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_loads(ev[i].detail_json != NULL ? ev[i].detail_json : "", 0, NULL);
		const char *err = json_string_value(json_object_get(j, "error"));

		if (strcmp(ev[i].type, "rejection") == 0 && err != NULL &&
		    strcmp(err, "suppressed") == 0) {
			sum += (uint64_t)json_integer_value(json_object_get(j, "count"));
			++*events;
		}
		json_decref(j);
	}
	kiln_store_event_list_free(ev, n);
	return sum;
}

/*
 * A garbage flood on a listener with a four-event audit queue: every garbage
 * request is answered malformedRequest, the good client beside it is
 * answered good every time, and every refusal is in the log, as its own
 * event or in a "suppressed" event's count.
 */
static void test_garbage_flood(void **state)
{
	struct kiln_plain_opts pl = { .listen = "127.0.0.1:0", .ocsp = ocsp, .pub = pub,
				      .store = k.store, .log = &k.log, .threads = 2,
				      .audit_queue = 4 };
	struct kiln_plain_stats st;
	struct client c[5];
	kiln_plain *p = NULL;
	int64_t rej0, sup_events0, sup_events;
	uint64_t sup0, garbage = 0;

	(void)state;
	good_request();
	KT_OK(kiln_plain_start(&pl, &p, NULL));
	rej0 = kt_count_events(&k, "rejection");
	sup0 = suppressed_in_log(&sup_events0);
	for (int i = 0; i < 5; i++) {
		c[i] = (struct client){ .port = kiln_plain_port(p), .keep_alive = i != 1,
					.garbage = i < 4, .requests = i < 4 ? scale(200) : scale(100) };
		assert_int_equal(pthread_create(&c[i].th, NULL, client_main, &c[i]), 0);
	}
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pthread_join(c[i].th, NULL), 0);
		assert_int_equal(c[i].bad, 0);
		assert_int_equal(c[i].ok, c[i].requests);
		garbage += c[i].garbage ? (uint64_t)c[i].requests : 0;
	}
	settle(p);
	kiln_plain_stats(p, &st);
	print_message("garbage %llu: %llu events, %llu counted in %llu suppressed events\n",
		      (unsigned long long)garbage, (unsigned long long)st.recorded,
		      (unsigned long long)st.suppressed, (unsigned long long)st.summaries);
	assert_int_equal(st.recorded + st.suppressed, garbage);
	assert_int_equal(kt_count_events(&k, "rejection") - rej0,
			 (int64_t)(st.recorded + st.summaries));
	assert_int_equal(suppressed_in_log(&sup_events) - sup0, st.suppressed);
	assert_int_equal(sup_events - sup_events0, (int64_t)st.summaries);
	assert_true(st.suppressed == 0 || st.summaries > 0);
	kiln_plain_free(p);
	good_request_free();
}

/* A stop with clients connected and busy: it returns, and the port takes no new connection. */
static void test_stop(void **state)
{
	struct kiln_plain_opts pl = { .listen = "127.0.0.1:0", .ocsp = ocsp, .pub = pub,
				      .store = k.store, .log = &k.log, .threads = 2 };
	struct client c[3];
	kiln_plain *p = NULL;
	uint8_t out[4096];
	size_t n = 0;
	int idle, port, fd;
	bool busy;

	(void)state;
	good_request();
	KT_OK(kiln_plain_start(&pl, &p, NULL));
	port = kiln_plain_port(p);
	idle = conn_open(port);
	assert_true(idle >= 0);
	assert_int_equal(exchange(idle, "POST", "/ocsp", good_der, (size_t)good_len, false, out,
				  sizeof(out), &n), 200);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct client){ .port = port, .keep_alive = i == 0 };
		assert_int_equal(pthread_create(&c[i].th, NULL, client_main, &c[i]), 0);
	}
	/* Every client answered at least once before the stop (polled, not timed). */
	do {
		usleep(5000);
		busy = true;
		for (int i = 0; i < 3; i++)
			busy = busy && __atomic_load_n(&c[i].ok, __ATOMIC_RELAXED) > 0;
	} while (!busy);
	kiln_plain_free(p);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(c[i].th, NULL), 0);
		assert_int_equal(c[i].bad, 0);
		assert_true(c[i].ok > 0);
	}
	/* The idle keep-alive connection was closed, and nobody listens any more. */
	assert_true(read(idle, out, sizeof(out)) <= 0);
	close(idle);
	fd = conn_open(port);
	assert_int_equal(fd, -1);
	good_request_free();
}

static void test_bad_listen(void **state)
{
	struct kiln_plain_opts pl = { .listen = "nonsense", .ocsp = ocsp, .pub = pub,
				      .store = k.store, .log = &k.log };
	kiln_plain *p = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_USAGE);
	assert_null(p);
	pl.listen = "127.0.0.1:0";
	pl.threads = 65;
	kiln_diag_clear(&d);
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_USAGE);
	assert_non_null(strstr(d.text, "1 to 64 threads"));
	assert_null(p);
	pl.threads = 1;
	pl.audit_queue = 65537;
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_USAGE);
	assert_null(p);
	pl.audit_queue = 0;
	pl.listen = "203.0.113.1:0"; /* TEST-NET-3: not an address of this machine */
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_IO);
	assert_null(p);
	/* A port in use is refused, not shared: a second listener on it fails. */
	{
		kiln_plain *first = NULL;
		char addr[32];

		pl.listen = "127.0.0.1:0";
		pl.threads = 2;
		KT_OK(kiln_plain_start(&pl, &first, &d));
		(void)snprintf(addr, sizeof(addr), "127.0.0.1:%d", kiln_plain_port(first));
		pl.listen = addr;
		kiln_diag_clear(&d);
		KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_IO);
		assert_null(p);
		kiln_plain_free(first);
		pl.threads = 1;
	}
	pl.listen = "nonsense";
	pl.ocsp = NULL;
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_ARG);
	kiln_plain_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_sign_budget),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_garbage_flood),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_bad_listen),
	};

	/*
	 * The clients here write on sockets the listener may have closed (the stop
	 * test): that must be an EPIPE they count, not a signal that kills the run.
	 * The listener's own threads block every signal, so this is the clients'.
	 */
	(void)signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
