/*
 * Unit tests for src/server/plain.c: the plain-HTTP listener over a real
 * deployment, spoken to with raw HTTP/1.1 over a socket: /healthz, POST
 * /ocsp and GET /ocsp/<base64> answered with verifiable OCSP responses,
 * malformed and oversized requests answered malformedRequest with a
 * rejection event, /crl/<ca>.crl, 404 and 405, and a bad listen address.
 */
#include "support/ca_fixture.h"

#include "server/server.h"

#include <arpa/inet.h>
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
	pl = (struct kiln_plain_opts){ "127.0.0.1:0", ocsp, pub, k.store, &k.log };
	KT_OK(kiln_plain_start(&pl, &plain, NULL));
	assert_true(kiln_plain_port(plain) > 0);
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
	assert_int_equal(kt_count_events(&k, "rejection"), rej + 3);

	assert_int_equal(http("GET", "/crl/test-issuing.crl", NULL, 0, &b), 200);
	assert_true(b.len > 100);
	assert_int_equal(http("GET", "/crl/nope.crl", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/crl/test-issuing", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/v1/devices/1", NULL, 0, NULL), 404);
	assert_int_equal(http("GET", "/ocsp", NULL, 0, NULL), 405);
	assert_int_equal(http("DELETE", "/crl/test-issuing.crl", NULL, 0, NULL), 405);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	kiln_buf_cleanup(&b);
	kiln_buf_cleanup(&b64);
	kiln_buf_cleanup(&path);
}

static void test_bad_listen(void **state)
{
	struct kiln_plain_opts pl = { "nonsense", ocsp, pub, k.store, &k.log };
	kiln_plain *p = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_USAGE);
	assert_null(p);
	pl.ocsp = NULL;
	KT_ERR(kiln_plain_start(&pl, &p, &d), KILN_ERR_ARG);
	kiln_plain_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_bad_listen),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
