/* See srv_fixture.h. */
#include "support/srv_fixture.h"

#include <netinet/in.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct kt_srv_fx kt_srv;

/* ------------------------------------------------------------ the server thread */

static void *srv_thread(void *arg)
{
	(void)arg;
	kt_srv.rc = kiln_server_run(kt_srv.s, NULL);
	return NULL;
}

void kt_srv_stop(void)
{
	if (kt_srv.s == NULL)
		return;
	kiln_server_stop(kt_srv.s);
	assert_int_equal(pthread_join(kt_srv.t, NULL), 0);
	kiln_server_free(kt_srv.s);
	kt_srv.s = NULL;
	kt_srv.is_default = false;
	KT_OK(kt_srv.rc);
}

void kt_srv_run(const struct kiln_server_opts *o, bool is_default)
{
	kiln_diag d;

	kt_srv_stop();
	kiln_diag_clear(&d);
	kt_srv.rc = kiln_ok();
	if (!kiln_is_ok(kiln_server_new(o, &kt_srv.s, &d)))
		fail_msg("server: %s", d.text);
	(void)snprintf(kt_srv.url, sizeof(kt_srv.url), "https://127.0.0.1:%d",
		       kiln_server_port(kt_srv.s));
	assert_int_equal(pthread_create(&kt_srv.t, NULL, srv_thread, NULL), 0);
	kt_srv.is_default = is_default;
}

struct kiln_server_opts kt_srv_app_opts(double rate, unsigned burst)
{
	struct kiln_server_opts o = { 0 };
	size_t n;

	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&kt_srv.tls_chain);
	o.tls_key_pem = kiln_buf_view(&kt_srv.tls_key);
	o.client_ca_pem = kiln_buf_view(&kt_srv.svc_root);
	o.client_chain_pem = kiln_buf_view(&kt_srv.svc_issuing);
	o.workers = 2;
	o.rate_per_s = rate;
	o.rate_burst = burst;
	o.routes = kiln_app_routes(&n);
	o.n_routes = n;
	o.hooks = kiln_app_hooks();
	o.app = kt_srv.app;
	o.log = &kt_srv.k.log;
	return o;
}

const char *kt_srv_default_url(void)
{
	struct kiln_server_opts o;

	if (kt_srv.s == NULL || !kt_srv.is_default) {
		o = kt_srv_app_opts(1000, 2000);
		kt_srv_run(&o, true);
	}
	return kt_srv.url;
}

/* ------------------------------------------------------------ identities and ports */

void kt_srv_identity(const char *name, const char *role, kiln_env env, char **cert, char **key)
{
	struct kiln_identity_req req = { name, role, env, kiln_slice_of(NULL, 0), "test", NULL, NULL };
	struct kiln_identity_result res;
	char file[96];
	kiln_diag d;

	kiln_diag_clear(&d);
	kiln_identity_result_init(&res);
	if (!kiln_is_ok(kiln_ca_identity_add(kt_srv.k.ca, &req, &res, &d)))
		fail_msg("identity %s: %s", name, d.text);
	(void)snprintf(file, sizeof(file), "%s.crt", name);
	*cert = kt_path(kt_srv.k.dir, file);
	(void)snprintf(file, sizeof(file), "%s.key", name);
	*key = kt_path(kt_srv.k.dir, file);
	kt_write_file(*cert, res.cert_pem.ptr, res.cert_pem.len);
	kt_write_file(*key, res.key_pem.ptr, res.key_pem.len);
	kiln_identity_result_cleanup(&res);
}

int kt_dead_port(int *fd)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ up and down */

void kt_srv_fixture_up(const char *name)
{
	static const char *const dns[] = { "localhost" };
	static const char *const ips[] = { "127.0.0.1" };
	static const char end[] = "-----END CERTIFICATE-----\n";
	struct kiln_app_opts ao;
	struct kiln_tls_req tr;
	EVP_PKEY *key = kt_keygen("p256");
	kiln_buf chain;
	const char *cut;
	char *data;
	long n;
	BIO *bio;

	memset(&kt_srv, 0, sizeof(kt_srv));
	kt_deploy_up(&kt_srv.k, name, KILN_ALG_P256, true);
	ao = (struct kiln_app_opts){ .ca = kt_srv.k.ca, .store = kt_srv.k.store, .nonce_ttl_s = 0,
				     .log = &kt_srv.k.log, .ledger = NULL };
	KT_OK(kiln_app_new(&ao, &kt_srv.app, NULL));
	tr = (struct kiln_tls_req){ key, dns, 1, ips, 1, 0, "test" };
	kiln_buf_init(&kt_srv.tls_chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_tls_issue(kt_srv.k.ca, &tr, &kt_srv.tls_chain, NULL));
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	kiln_buf_init(&kt_srv.tls_key, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&kt_srv.tls_key, data, (size_t)n));
	BIO_free(bio);
	EVP_PKEY_free(key);
	/* The service chain: issuing CA first (intermediate), root last (anchor). */
	kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_ca_chain_pem(kt_srv.k.ca, KILN_ENV_SERVICE, &chain, NULL));
	cut = strstr(kiln_buf_cstr(&chain), end);
	assert_non_null(cut);
	cut += sizeof(end) - 1;
	kiln_buf_init(&kt_srv.svc_issuing, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&kt_srv.svc_root, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(&kt_srv.svc_issuing, chain.ptr,
			      (size_t)((const uint8_t *)cut - chain.ptr)));
	KT_OK(kiln_buf_append_str(&kt_srv.svc_root, cut));
	kt_srv.ca_file = kt_path(kt_srv.k.dir, "service-chain.pem");
	kt_write_file(kt_srv.ca_file, chain.ptr, chain.len);
	kiln_buf_cleanup(&chain);
}

void kt_srv_fixture_down(void)
{
	kt_srv_stop();
	kiln_app_free(kt_srv.app);
	kt_srv.app = NULL;
	kiln_buf_cleanup(&kt_srv.tls_chain);
	kiln_buf_cleanup(&kt_srv.tls_key);
	kiln_buf_cleanup(&kt_srv.svc_root);
	kiln_buf_cleanup(&kt_srv.svc_issuing);
	free(kt_srv.ca_file);
	kt_srv.ca_file = NULL;
	kt_deploy_down(&kt_srv.k);
}
