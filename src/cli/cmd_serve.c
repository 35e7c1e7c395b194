/*
 * kiln serve: the HTTPS API on one port. Opens every token this process has
 * a PIN for, the inventory with group commit, a TLS certificate from the
 * service CA (renewed when missing, expiring or for another address; its key
 * is a file key, DIR/secrets/tls.key, mode 0600: kiln's CA, OCSP and log keys
 * stay in the HSM, the TLS key is the one key a web server must hold), and
 * serves until SIGTERM or SIGINT, letting requests in flight finish.
 */
#include "cli.h"

#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char serve_usage[] =
	"usage: kiln --dir DIR serve [--listen ADDR:PORT] [--workers N] [--nonce-ttl SECONDS]\n"
	"                            [--rate REQUESTS_PER_SECOND] [--listen-http ADDR:PORT]\n"
	"                            [--est-product ID] [--ocsp-sign-rate N]\n"
	"\n"
	"Serves the kiln API over HTTPS (TLS 1.2 and 1.3) on ADDR:PORT (default: server.listen\n"
	"in kiln.yaml, 127.0.0.1:8443). /v1 requires a client certificate from kiln identity\n"
	"add; docs/protocol.md lists every route and the roles it admits. Each identity may\n"
	"send --rate requests per second (default 200, bursts of twice that). --workers\n"
	"threads (default 16) do the requests' work. SIGTERM or SIGINT stops it after the\n"
	"requests in flight are answered.\n"
	"\n"
	"--listen-http also serves, in plain HTTP, what relying parties fetch: the OCSP\n"
	"responder (POST /ocsp, GET /ocsp/<base64>) and the CRLs (GET /crl/<ca>.crl), and\n"
	"keeps both current: every revocation recorded in the inventory replaces its OCSP\n"
	"responses within a poll (200 ms) and the CRLs are issued again (coalesced, and\n"
	"before half their validity), also written to DIR/crl/. It answers on one thread\n"
	"per core; refused OCSP requests are recorded as rejection events (docs/revocation.md).\n"
	"Pre-signed responses are served to anyone as fast as they ask; what needs a fresh\n"
	"signature (a nonce, several certificates, an unknown serial) is limited to\n"
	"--ocsp-sign-rate signatures per second per client address (default 50, bursts of\n"
	"twice that): past it, the pre-signed response without the nonce, or tryLater.\n"
	"\n"
	"EST (RFC 7030) is served under /.well-known/est/[PRODUCT/]; --est-product names the\n"
	"product served without a label (for clients that cannot send one).\n";

#define TLS_RENEW_BEFORE (7 * 86400)

/* "127.0.0.1:8443" or "[::1]:8443" -> host "127.0.0.1" / "::1". */
static kiln_result listen_host(const char *listen, char *host, size_t cap)
{
	const char *colon;

	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		KILN_ENSURE(end != NULL && end[1] == ':' && (size_t)(end - listen - 1) < cap,
			    KILN_ERR_USAGE);
		memcpy(host, listen + 1, (size_t)(end - listen - 1));
		host[end - listen - 1] = '\0';
		return kiln_ok();
	}
	colon = strrchr(listen, ':');
	KILN_ENSURE(colon != NULL && colon != listen && (size_t)(colon - listen) < cap,
		    KILN_ERR_USAGE);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	return kiln_ok();
}

/* ADDR:PORT as --listen takes it: a host and a port from 0 to 65535. */
static bool listen_ok(const char *listen)
{
	char host[256];
	uint64_t port;

	return kiln_is_ok(listen_host(listen, host, sizeof(host))) && host[0] != '\0' &&
	       kiln_is_ok(kiln_parse_u64(strrchr(listen, ':') + 1, 65535, &port));
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The TLS key: made once (P-256), kept in secrets/ with mode 0600. */
static kiln_result tls_key(const struct deployment *dep, EVP_PKEY **key, kiln_buf *pem,
			   kiln_diag *d)
{
	char path[KILN_PATH_MAX + 32];
	BIO *bio;
	char *data = NULL;
	long n;
	kiln_result r;

	KILN_GUARD(deploy_path(dep->dir, "secrets/tls.key", path, sizeof(path)));
	r = kiln_file_read(path, 65536, pem, NULL);
	/* Only a missing key is made anew: a key file that is there is never replaced. */
	if (!kiln_is_ok(r) && r.code != KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "%s cannot be read as a PEM private key (%s)",
				     path, kiln_err_info(r.code)->slug);
	if (kiln_is_ok(r)) {
		bio = BIO_new_mem_buf(pem->ptr, (int)pem->len);
		*key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		if (*key == NULL)
			return kiln_diag_set(d, KILN_ERR_CONFIG, "%s is not a PEM private key", path);
		return kiln_ok();
	}
	*key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	bio = BIO_new(BIO_s_mem());
	if (*key == NULL || bio == NULL ||
	    PEM_write_bio_PrivateKey(bio, *key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0) {
		BIO_free(bio);
		return kiln_fail(KILN_ERR_CRYPTO);
	}
	kiln_buf_init(pem, 65536);
	r = kiln_buf_append(pem, data, (size_t)n);
	kiln_wipe(data, (size_t)n);
	BIO_free(bio);
	KILN_GUARD(r);
	return kiln_file_write(path, kiln_buf_view(pem), 0600, d);
}

/* Is the saved certificate for this key and host, and good for a while longer? */
static bool tls_cert_usable(kiln_slice chain, const EVP_PKEY *key, const char *host)
{
	BIO *bio = BIO_new_mem_buf(chain.ptr, (int)chain.len);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	bool ok = x != NULL && X509_cmp_time(X509_get0_notAfter(x), NULL) > 0 &&
		  EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1;

	if (ok) {
		time_t soon = time(NULL) + TLS_RENEW_BEFORE;

		ok = X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;
	}
	if (ok)
		ok = is_ip(host) ? X509_check_ip_asc(x, host, 0) == 1 :
				   X509_check_host(x, host, 0, 0, NULL) == 1;
	X509_free(x);
	BIO_free(bio);
	return ok;
}

static kiln_result tls_cert(struct deployment *dep, const EVP_PKEY *key, const char *host,
			    const char *actor, kiln_buf *chain, kiln_diag *d)
{
	const char *dns[2] = { "localhost", NULL }, *ips[3] = { "127.0.0.1", "::1", NULL };
	struct kiln_tls_req req = { key, dns, 1, ips, 2, 90, actor };
	char dir[KILN_PATH_MAX + 32], path[KILN_PATH_MAX + 32];

	KILN_GUARD(deploy_path(dep->dir, "tls", dir, sizeof(dir)));
	KILN_GUARD(deploy_path(dep->dir, "tls/server.pem", path, sizeof(path)));
	if (kiln_is_ok(kiln_file_read(path, 1024 * 1024, chain, NULL))) {
		if (tls_cert_usable(kiln_buf_view(chain), key, host))
			return kiln_ok();
		kiln_buf_cleanup(chain);
	}
	if (strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 &&
	    strcmp(host, "::1") != 0) {
		if (is_ip(host))
			ips[req.n_ips++] = host;
		else
			dns[req.n_dns++] = host;
	}
	(void)mkdir(dir, 0755);
	kiln_buf_init(chain, 1024 * 1024);
	KILN_GUARD(kiln_ca_tls_issue(dep->ca, &req, chain, d));
	return kiln_file_write(path, kiln_buf_view(chain), 0644, d);
}

/* The plain-HTTP side: the OCSP table, the publisher, the listener. */
struct revocation_side {
	kiln_ocsp *ocsp;
	kiln_publisher *pub;
	kiln_plain *plain;
};

static kiln_result revocation_start(struct deployment *dep, const char *listen, double sign_rate,
				    const char *actor, struct revocation_side *rs, kiln_diag *d)
{
	struct kiln_publisher_opts po = { 0 };
	struct kiln_plain_opts pl = { 0 };
	char crl_dir[KILN_PATH_MAX];
	size_t certs = 0;
	uint64_t t0 = kiln_mono_ns();

	KILN_GUARD(deploy_path(dep->dir, "crl", crl_dir, sizeof(crl_dir)));
	KILN_GUARD(kiln_ocsp_new(dep->ca, (int64_t)dep->cfg.ocsp_validity_hours * 3600, actor,
				 &rs->ocsp, d));
	KILN_GUARD(kiln_ocsp_presign_all(rs->ocsp, &certs, d));
	kiln_log_info(&dep->log, "OCSP: responses for %zu certificates signed in %.0f ms", certs,
		      (double)(kiln_mono_ns() - t0) / 1e6);
	po = (struct kiln_publisher_opts){ dep->ca, dep->store, rs->ocsp, crl_dir,
					   (int64_t)dep->cfg.crl_validity_hours * 3600, 0, 0, actor,
					   &dep->log };
	KILN_GUARD(kiln_publisher_start(&po, &rs->pub, d));
	pl = (struct kiln_plain_opts){ .listen = listen, .ocsp = rs->ocsp, .pub = rs->pub,
				       .store = dep->store, .log = &dep->log, .sign_rate = sign_rate };
	KILN_GUARD(kiln_plain_start(&pl, &rs->plain, d));
	kiln_log_info(&dep->log, "kiln serve: OCSP and CRLs on http://%s (port %d, %u threads)",
		      listen, kiln_plain_port(rs->plain), kiln_plain_threads(rs->plain));
	return kiln_ok();
}

static void revocation_stop(struct revocation_side *rs)
{
	kiln_plain_free(rs->plain);
	kiln_publisher_free(rs->pub);
	kiln_ocsp_free(rs->ocsp);
	memset(rs, 0, sizeof(*rs));
}

/* The service chain, issuing CA first: trust anchor and intermediate for client certificates. */
static kiln_result split_service(kiln_ca *ca, kiln_buf *root, kiln_buf *issuing, kiln_diag *d)
{
	static const char end[] = "-----END CERTIFICATE-----\n";
	kiln_buf chain;
	const char *cut;
	kiln_result r;

	kiln_buf_init(&chain, 1024 * 1024);
	kiln_buf_init(root, 1024 * 1024);
	kiln_buf_init(issuing, 1024 * 1024);
	KILN_TRY(r, kiln_ca_chain_pem(ca, KILN_ENV_SERVICE, &chain, d));
	cut = strstr(kiln_buf_cstr(&chain), end);
	if (cut == NULL) {
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "the service chain is not PEM");
		goto out;
	}
	cut += sizeof(end) - 1;
	KILN_TRY(r, kiln_buf_append(issuing, chain.ptr, (size_t)((const uint8_t *)cut - chain.ptr)));
	r = kiln_buf_append_str(root, cut);
out:
	kiln_buf_cleanup(&chain);
	return r;
}

#define DEFAULT_RATE 200

struct serve_opts {
	const char *listen;
	const char *listen_http;
	uint64_t workers;
	uint64_t nonce_ttl;
	uint64_t rate;
	uint64_t ocsp_sign_rate;
	const char *est_product;
};

static kiln_result serve(struct deployment *dep, const struct cli_common *c,
			 const struct serve_opts *so, kiln_diag *d)
{
	static const kiln_env envs[] = { KILN_ENV_PRODUCTION, KILN_ENV_TEST, KILN_ENV_SERVICE };
	const char *listen = so->listen != NULL ? so->listen : dep->cfg.listen;
	struct kiln_server_opts opts = { 0 };
	struct kiln_app_opts ao = { 0 };
	struct kiln_govern_rules rules;
	kiln_buf key_pem, chain, root, issuing;
	kiln_server *server = NULL;
	struct revocation_side rs = { 0 };
	kiln_app *app = NULL;
	EVP_PKEY *key = NULL;
	char host[256];
	size_t n_routes;
	kiln_result r;

	kiln_buf_init(&key_pem, 65536);
	kiln_buf_init(&chain, 1);
	kiln_buf_init(&root, 1);
	kiln_buf_init(&issuing, 1);
	if (!kiln_is_ok(listen_host(listen, host, sizeof(host))))
		return kiln_diag_set(d, KILN_ERR_USAGE, "--listen must be ADDR:PORT, not '%s'", listen);
	for (size_t i = 0; i < 3; i++)
		KILN_TRY(r, deploy_token_opt(dep, envs[i], envs[i] != KILN_ENV_SERVICE, d));
	KILN_TRY(r, deploy_ca(dep, d));
	KILN_TRY(r, tls_key(dep, &key, &key_pem, d));
	KILN_TRY(r, tls_cert(dep, key, host, c->actor, &chain, d));
	KILN_TRY(r, split_service(dep->ca, &root, &issuing, d));
	/* The checkpointer signs with the log key in the service token, opened above. */
	KILN_TRY(r, deploy_ledger(dep, true, c->actor, d));
	KILN_TRY(r, kiln_ledger_start(dep->ledger, dep->cfg.checkpoint_interval_s,
				      dep->cfg.checkpoint_entries, d));
	deploy_rules(dep, &rules);
	ao = (struct kiln_app_opts){ .ca = dep->ca,
				     .store = dep->store,
				     .nonce_ttl_s = (int64_t)so->nonce_ttl,
				     .log = &dep->log,
				     .ledger = dep->ledger,
				     .est_default_product = so->est_product,
				     .rules = &rules };
	KILN_TRY(r, kiln_app_new(&ao, &app, d));
	opts.listen = listen;
	opts.tls_chain_pem = kiln_buf_view(&chain);
	opts.tls_key_pem = kiln_buf_view(&key_pem);
	opts.client_ca_pem = kiln_buf_view(&root);
	opts.client_chain_pem = kiln_buf_view(&issuing);
	/* Devices renew over EST with their own certificates (checked by the EST routes). */
	opts.accept_foreign_certs = true;
	opts.workers = (unsigned)so->workers;
	opts.rate_per_s = (double)so->rate;
	opts.rate_burst = (unsigned)(2 * so->rate);
	opts.routes = kiln_app_routes(&n_routes);
	opts.n_routes = n_routes;
	opts.hooks = kiln_app_hooks();
	opts.app = app;
	opts.log = &dep->log;
	KILN_TRY(r, kiln_server_new(&opts, &server, d));
	kiln_buf_cleanup(&key_pem);
	if (so->listen_http != NULL)
		KILN_TRY(r, revocation_start(dep, so->listen_http, (double)so->ocsp_sign_rate,
					     c->actor, &rs, d));
	kiln_log_info(&dep->log, "kiln serve: listening on https://%s (port %d)", listen,
		      kiln_server_port(server));
	r = kiln_server_run(server, d);
	kiln_log_info(&dep->log, "kiln serve: stopped");
out:
	revocation_stop(&rs);
	/* The last checkpoint covers every event of this run (requests in flight are done). */
	kiln_ledger_stop(dep->ledger);
	kiln_server_free(server);
	kiln_app_free(app);
	EVP_PKEY_free(key);
	kiln_buf_cleanup(&key_pem);
	kiln_buf_cleanup(&chain);
	kiln_buf_cleanup(&root);
	kiln_buf_cleanup(&issuing);
	return r;
}

int cmd_serve(int argc, char **argv)
{
	const char *listen = NULL, *workers = NULL, *ttl = NULL, *rate = NULL, *http = NULL;
	const char *est_product = NULL, *sign_rate = NULL;
	const struct cli_opt opts[] = { { "listen", true, &listen, NULL },
					{ "listen-http", true, &http, NULL },
					{ "workers", true, &workers, NULL },
					{ "nonce-ttl", true, &ttl, NULL },
					{ "rate", true, &rate, NULL },
					{ "est-product", true, &est_product, NULL },
					{ "ocsp-sign-rate", true, &sign_rate, NULL },
					{ NULL, false, NULL, NULL } };
	struct serve_opts so = { .rate = DEFAULT_RATE };
	struct cli_common c;
	struct deployment dep;
	int lock_fd = -1;
	kiln_diag d;
	kiln_result r;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(serve_usage, stdout);
		return CLI_OK;
	}
	so.listen = listen;
	so.listen_http = http;
	if (http != NULL && !listen_ok(http))
		return cli_usage_error("serve: --listen-http must be ADDR:PORT, not '%s'", http);
	so.est_product = est_product;
	if (listen != NULL && !listen_ok(listen))
		return cli_usage_error("serve: --listen must be ADDR:PORT (127.0.0.1:8443, [::1]:8443), "
				       "not '%s'", listen);
	if (workers != NULL && (!kiln_is_ok(kiln_parse_u64(workers, 64, &so.workers)) || so.workers == 0))
		return cli_usage_error("serve: --workers must be 1 to 64");
	if (ttl != NULL && (!kiln_is_ok(kiln_parse_u64(ttl, 3600, &so.nonce_ttl)) || so.nonce_ttl == 0))
		return cli_usage_error("serve: --nonce-ttl must be 1 to 3600 seconds");
	if (rate != NULL && (!kiln_is_ok(kiln_parse_u64(rate, 100000, &so.rate)) || so.rate == 0))
		return cli_usage_error("serve: --rate must be 1 to 100000 requests per second");
	if (sign_rate != NULL && (!kiln_is_ok(kiln_parse_u64(sign_rate, 100000, &so.ocsp_sign_rate)) ||
				  so.ocsp_sign_rate == 0))
		return cli_usage_error("serve: --ocsp-sign-rate must be 1 to 100000 signatures per second");
	kiln_diag_clear(&d);
	r = deploy_open(&c, NEED_STORE | NEED_GROUP_COMMIT, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_serve_lock(&dep, NULL, &lock_fd, &d); /* shared: see docs/backup.md */
	if (kiln_is_ok(r)) {
		if (!c.verbose)
			dep.log.min = KILN_LOG_INFO;
		r = serve(&dep, &c, &so, &d);
	}
	deploy_close(&dep);
	if (lock_fd >= 0)
		(void)close(lock_fd);
	return kiln_is_ok(r) ? CLI_OK : cli_fail(r, &d);
}
