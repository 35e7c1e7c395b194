/*
 * Unit tests for src/server/publish.c over a real deployment: the first CRLs
 * exist when start returns (in memory and in crl_dir); a revocation made
 * anywhere (here straight through the store) reaches the OCSP table and,
 * after the quiet time, a new CRL with a higher number; bad options are
 * refused.
 */
#include "support/ca_fixture.h"

#include "server/server.h"

#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct kt_deploy k;

static int setup(void **state)
{
	(void)state;
	kt_deploy_up(&k, "server-publish", KILN_ALG_P256, true);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_deploy_down(&k);
	return 0;
}

static kiln_result raw_revoke(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_cert_revoke(tx, ctx, "keyCompromise", 0, d);
}

static int crl_entries(kiln_publisher *p, long *number)
{
	kiln_buf b;
	const unsigned char *q;
	X509_CRL *crl;
	ASN1_INTEGER *num;
	int n;

	kiln_buf_init(&b, KILN_CRL_MAX_BYTES);
	KT_OK(kiln_publisher_crl(p, "test-issuing", &b));
	q = b.ptr;
	crl = d2i_X509_CRL(NULL, &q, (long)b.len);
	assert_non_null(crl);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	*number = ASN1_INTEGER_get(num);
	n = X509_CRL_get_REVOKED(crl) != NULL ? sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) : 0;
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	kiln_buf_cleanup(&b);
	return n;
}

static void test_follows_revocations(void **state)
{
	struct kiln_publisher_opts po = { 0 };
	struct kiln_issue_result res;
	struct kiln_issue_req req = { 0 };
	const struct timespec pause = { 0, 20 * 1000000L };
	kiln_publisher *p = NULL;
	kiln_ocsp *o = NULL;
	char *dir = kt_path(k.dir, "crl"), *file = kt_path(dir, "test-issuing.crl");
	int64_t rec = 0, vis = -1;
	long number = 0;
	kiln_buf csr, b;
	kiln_diag d;
	int tries;

	(void)state;
	kiln_diag_clear(&d);
	KT_OK(kiln_ocsp_new(k.ca, 3600, "test", &o, &d));
	po = (struct kiln_publisher_opts){ k.ca, k.store, o, dir, 86400, 20, 100, "test", &k.log };
	KT_OK(kiln_publisher_start(&po, &p, &d));
	assert_int_equal(crl_entries(p, &number), 0);
	assert_int_equal(number, 1);
	assert_int_equal(access(file, R_OK), 0);
	kiln_buf_init(&b, 1024);
	KT_ERR(kiln_publisher_crl(p, "nope", &b), KILN_ERR_NOT_FOUND);
	kiln_buf_cleanup(&b);

	kiln_buf_init(&csr, 1 << 16);
	kt_make_csr("p256", "TST-PUB-0001", NULL, &csr, NULL);
	req.product = "widget-test";
	req.csr = kiln_buf_view(&csr);
	req.actor = "t";
	kiln_issue_result_init(&res);
	KT_OK(kiln_ca_issue(k.ca, &req, &res, &d));
	KT_OK(kiln_store_write(k.store, raw_revoke, res.serial, &d));
	for (tries = 0; tries < 250 && vis < 0; tries++) {
		(void)nanosleep(&pause, NULL);
		KT_OK(kiln_store_revocation_timing(k.store, res.serial, &rec, &vis, &d));
	}
	assert_true(vis >= 0); /* published in OCSP within 5 s */
	for (tries = 0; tries < 250 && crl_entries(p, &number) == 0; tries++)
		(void)nanosleep(&pause, NULL);
	assert_int_equal(crl_entries(p, &number), 1);
	assert_true(number >= 2);
	kiln_publisher_free(p);
	kiln_ocsp_free(o);
	kiln_issue_result_cleanup(&res);
	kiln_buf_cleanup(&csr);
	free(file);
	free(dir);
}

static void test_refused(void **state)
{
	struct kiln_publisher_opts po = { 0 };
	kiln_publisher *p = NULL;
	kiln_diag d;

	(void)state;
	kiln_diag_clear(&d);
	KT_ERR(kiln_publisher_start(&po, &p, &d), KILN_ERR_ARG);
	po = (struct kiln_publisher_opts){ k.ca, k.store, NULL, "/proc/nope/crl", 86400, 0, 0,
					   "t", &k.log };
	KT_ERR(kiln_publisher_start(&po, &p, &d), KILN_ERR_IO);
	assert_null(p);
	kiln_publisher_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_follows_revocations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
