/*
 * Unit tests for src/cli/cmd_serve.c: kiln serve's usage errors, and real
 * runs over a deployment made by kiln init: kiln_cli_main runs serve in a
 * thread of this process, curl (an independent client, verifying the
 * server against the service chain) waits for /healthz, and SIGTERM stops
 * it. kiln_server_run watches SIGTERM only while it serves; this test first
 * installs a handler of its own that does nothing, so that no SIGTERM can
 * ever end the test process itself, and sends the signal only once /healthz
 * answered (the server's signal events are in place before it serves).
 * Across runs: the TLS key (secrets/tls.key, mode 0600) is kept, and
 * tls/server.pem is reused while it fits and reissued when it does not.
 */
#include "support/cli_deploy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *root, *dir, *service_pem;

static void ignore_signal(int sig)
{
	(void)sig;
}

static int setup(void **state)
{
	struct sigaction sa;
	kiln_buf out, err;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ignore_signal;
	assert_int_equal(sigaction(SIGTERM, &sa, NULL), 0);
	kt_cli_deploy("cli-serve", &root, &dir);
	/* The anchors a client of kiln serve needs. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", dir, "ca", "chain", "--env",
				"service", NULL),
			 CLI_OK);
	service_pem = kt_path(root, "service.pem");
	kt_write_file(service_pem, out.ptr, out.len);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kt_rmrf(root);
	free(root);
	free(dir);
	free(service_pem);
	return 0;
}

/* ------------------------------------------------------------ usage */

static void usage(const char *what, ...)
{
	const char *args[8] = { 0 };
	kiln_buf out, err;
	va_list ap;
	int n = 0, rc;

	va_start(ap, what);
	while (n < 4 && (args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	/* No deployment is opened for a usage error: /nonexistent would fail with exit 1. */
	rc = kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/nonexistent", "serve",
		    args[0] != NULL ? args[0] : "--help", args[1], args[2], args[3], NULL);
	if (rc != CLI_USAGE || strstr(kiln_buf_cstr(&err), what) == NULL)
		fail_msg("%s %s: exit %d, '%s'", args[0], args[1] != NULL ? args[1] : "", rc,
			 kiln_buf_cstr(&err));
	assert_int_equal(kt_lines(&err), 1);
	assert_int_equal(out.len, 0);
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

static void test_usage_errors(void **state)
{
	kiln_buf out, err;

	(void)state;
	usage("--workers must be 1 to 64", "--workers", "0", NULL);
	usage("--workers must be 1 to 64", "--workers", "65", NULL);
	usage("--workers must be 1 to 64", "--workers", "four", NULL);
	usage("--nonce-ttl must be 1 to 3600 seconds", "--nonce-ttl", "0", NULL);
	usage("--nonce-ttl must be 1 to 3600 seconds", "--nonce-ttl", "3601", NULL);
	usage("--nonce-ttl must be 1 to 3600 seconds", "--nonce-ttl", "-1", NULL);
	usage("--rate must be 1 to 100000", "--rate", "0", NULL);
	usage("--rate must be 1 to 100000", "--rate", "100001", NULL);
	usage("--rate must be 1 to 100000", "--rate", "1.5", NULL);
	usage("--ocsp-sign-rate must be 1 to 100000", "--ocsp-sign-rate", "0", NULL);
	usage("--ocsp-sign-rate must be 1 to 100000", "--ocsp-sign-rate", "100001", NULL);
	usage("--ocsp-sign-rate must be 1 to 100000", "--ocsp-sign-rate", "fast", NULL);
	usage("option --listen needs a value", "--listen", NULL);
	usage("unexpected argument 'now'", "now", NULL);
	usage("unknown option '--port'", "--port", "8443", NULL);
	/* --listen: ADDR:PORT or [IPv6]:PORT, checked before anything is opened. */
	usage("--listen must be ADDR:PORT", "--listen", "127.0.0.1", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "127.0.0.1:", NULL);
	usage("--listen must be ADDR:PORT", "--listen", ":8443", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "127.0.0.1:65536", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "127.0.0.1:http", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "[::1]8443", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "[::1", NULL);
	usage("--listen must be ADDR:PORT", "--listen", "[]:8443", NULL);
	/* Valid options, but no deployment. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "--dir", "/nonexistent", "serve",
				"--listen", "[::1]:8443", "--workers", "64", "--nonce-ttl", "3600",
				"--rate", "100000", "--ocsp-sign-rate", "1", NULL),
			 CLI_FAIL);
	assert_int_equal(kt_lines(&err), 1);
	assert_non_null(strstr(kiln_buf_cstr(&err), "/nonexistent"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
	/* --help. */
	assert_int_equal(kt_run(kiln_cli_main, &out, &err, "kiln", "serve", "--help", NULL), CLI_OK);
	assert_non_null(strstr(kiln_buf_cstr(&out), "usage: kiln --dir DIR serve"));
	assert_non_null(strstr(kiln_buf_cstr(&out), "--ocsp-sign-rate"));
	kiln_buf_cleanup(&out);
	kiln_buf_cleanup(&err);
}

/* ------------------------------------------------------------ real runs */

struct run {
	pthread_t t;
	char *argv[16];
	int argc;
	atomic_int done;
	int rc;
};

static void *serve_thread(void *arg)
{
	struct run *r = arg;
	char *argv[16];

	/* kiln_cli_main reorders its argv: give it a copy, keep the strings to free. */
	memcpy(argv, r->argv, sizeof(argv));
	r->rc = kiln_cli_main(r->argc, argv);
	atomic_store(&r->done, 1);
	return NULL;
}

static int free_port(const char *ip)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	(void)close(fd);
	return port;
}

static void run_free(struct run *r)
{
	for (int i = 0; i < r->argc; i++)
		free(r->argv[i]);
	r->argc = 0;
}

/* One try: kiln serve on ip:port; true once /healthz answers over TLS, false if serve ended. */
static bool try_start(struct run *r, const char *ip, int port, const char *const *extra)
{
	char listen[64];

	memset(r, 0, sizeof(*r));
	(void)snprintf(listen, sizeof(listen), "%s:%d", ip, port);
	r->argv[r->argc++] = strdup("kiln");
	r->argv[r->argc++] = strdup("--dir");
	r->argv[r->argc++] = strdup(dir);
	r->argv[r->argc++] = strdup("serve");
	r->argv[r->argc++] = strdup("--listen");
	r->argv[r->argc++] = strdup(listen);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
		r->argv[r->argc++] = strdup(extra[i]);
	for (int i = 0; i < r->argc; i++)
		assert_non_null(r->argv[i]);
	assert_int_equal(pthread_create(&r->t, NULL, serve_thread, r), 0);
	/* Generous: a slow machine, or valgrind. */
	for (int tries = 0; tries < 600; tries++) {
		if (kt_system("curl -s -o /dev/null --max-time 5 --cacert '%s' https://%s:%d/healthz",
			      service_pem, ip, port) == 0)
			return true;
		if (atomic_load(&r->done)) {
			(void)pthread_join(r->t, NULL);
			run_free(r);
			return false;
		}
		(void)usleep(200000);
	}
	fail_msg("kiln serve on %s did not answer /healthz", listen);
	return false;
}

/*
 * Starts kiln serve on a free port of ip (with extra options) and waits for
 * /healthz. The port was free a moment before; should another process take
 * it meanwhile, serve fails to bind and the next free port is tried.
 */
static int serve_start(struct run *r, const char *ip, const char *const *extra)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int port = free_port(ip);

		if (try_start(r, ip, port, extra))
			return port;
	}
	fail_msg("kiln serve did not start on %s (exit %d)", ip, r->rc);
	return 0;
}

/* SIGTERM, as an init system would send it; serve stops and returns 0. */
static void serve_stop(struct run *r)
{
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	for (int i = 0; i < 600 && !atomic_load(&r->done); i++)
		(void)usleep(100000);
	if (!atomic_load(&r->done))
		fail_msg("kiln serve did not stop on SIGTERM");
	assert_int_equal(pthread_join(r->t, NULL), 0);
	assert_int_equal(r->rc, CLI_OK);
	run_free(r);
}

static char *file_text(const char *rel)
{
	char *p = kt_path(dir, rel);
	kiln_buf b;
	char *s;

	kt_read_file(p, &b);
	s = strdup(kiln_buf_cstr(&b));
	assert_non_null(s);
	kiln_buf_cleanup(&b);
	free(p);
	return s;
}

/* How many TLS certificates the deployment issued (its tls-issue events). */
static int tls_issued(void)
{
	char *db = kt_path(dir, "kiln.db"), cmd[4200], line[32] = "";
	FILE *f;
	int n;

	n = snprintf(cmd, sizeof(cmd),
		     "sqlite3 '%s' \"SELECT count(*) FROM events WHERE type = 'tls-issue'\"", db);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(pclose(f), 0);
	free(db);
	return (int)strtol(line, NULL, 10);
}

/* The first certificate of tls/server.pem certifies secrets/tls.key, and names this address. */
static void cert_fits(const char *ip)
{
	char *pem = kt_path(dir, "tls/server.pem"), *key = kt_path(dir, "secrets/tls.key");

	assert_int_equal(kt_system("test \"$(openssl x509 -in '%s' -noout -pubkey)\" = "
				   "\"$(openssl pkey -in '%s' -pubout)\"", pem, key), 0);
	assert_int_equal(kt_system("openssl x509 -in '%s' -noout -ext subjectAltName | grep -q "
				   "'IP Address:%s'", pem, ip), 0);
	assert_int_equal(kt_system("openssl x509 -in '%s' -noout -ext extendedKeyUsage | grep -q "
				   "'TLS Web Server Authentication'", pem), 0);
	free(pem);
	free(key);
}

static void test_serve_and_restarts(void **state)
{
	static const char *const tuned[] = { "--workers", "2", "--nonce-ttl", "60", "--rate", "50",
					     NULL };
	char *key_path = kt_path(dir, "secrets/tls.key");
	char *key1, *key2, *key3, *key4, *cert1, *cert2, *cert3, *cert4;
	struct stat st;
	struct run r;
	int port;

	(void)state;
	/* First run: a key is made (0600) and a certificate issued for it. */
	port = serve_start(&r, "127.0.0.1", NULL);
	assert_int_equal(kt_system("curl -s --cacert '%s' https://127.0.0.1:%d/healthz | grep -q "
				   "'\"status\":\"ok\"'", service_pem, port), 0);
	/* /v1 without a client certificate: 401, as a problem. */
	assert_int_equal(kt_system("test \"$(curl -s -o /dev/null -w '%%{http_code}' --cacert '%s' "
				   "https://127.0.0.1:%d/v1/batches/X)\" = 401", service_pem, port), 0);
	serve_stop(&r);
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	cert_fits("127.0.0.1");
	assert_int_equal(tls_issued(), 1);
	key1 = file_text("secrets/tls.key");
	cert1 = file_text("tls/server.pem");

	/* Second run, same address: the same key and the same certificate, nothing issued. */
	(void)serve_start(&r, "127.0.0.1", tuned);
	serve_stop(&r);
	key2 = file_text("secrets/tls.key");
	cert2 = file_text("tls/server.pem");
	assert_string_equal(key2, key1);
	assert_string_equal(cert2, cert1);
	assert_int_equal(tls_issued(), 1);

	/* An address the certificate does not name: reissued, for the same key. */
	(void)serve_start(&r, "127.0.0.2", NULL);
	serve_stop(&r);
	cert3 = file_text("tls/server.pem");
	key3 = file_text("secrets/tls.key");
	assert_string_not_equal(cert3, cert1);
	assert_string_equal(key3, key1);
	cert_fits("127.0.0.2");
	assert_int_equal(tls_issued(), 2);

	/* The key is gone: a new one (0600), and a certificate for it. */
	assert_int_equal(unlink(key_path), 0);
	(void)serve_start(&r, "127.0.0.1", NULL);
	serve_stop(&r);
	assert_int_equal(stat(key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	key4 = file_text("secrets/tls.key");
	cert4 = file_text("tls/server.pem");
	assert_string_not_equal(key4, key1);
	assert_string_not_equal(cert4, cert3);
	cert_fits("127.0.0.1");
	assert_int_equal(tls_issued(), 3);

	/* A key file that cannot be read as a key is an error, never silently replaced. */
	{
		static char junk[70000];
		struct run bad;
		char *now;

		memset(junk, 'k', sizeof(junk));
		kt_write_file(key_path, junk, sizeof(junk));
		if (try_start(&bad, "127.0.0.1", free_port("127.0.0.1"), NULL)) {
			serve_stop(&bad);
			fail_msg("kiln serve replaced an unreadable TLS key");
		}
		assert_int_equal(bad.rc, CLI_FAIL);
		now = file_text("secrets/tls.key");
		assert_int_equal(strlen(now), sizeof(junk));
		free(now);
		kt_write_file(key_path, "not a key\n", 10);
		if (try_start(&bad, "127.0.0.1", free_port("127.0.0.1"), NULL)) {
			serve_stop(&bad);
			fail_msg("kiln serve started with a TLS key that is no key");
		}
		assert_int_equal(bad.rc, CLI_FAIL);
		now = file_text("secrets/tls.key");
		assert_string_equal(now, "not a key\n");
		free(now);
	}
	free(key1);
	free(key2);
	free(key3);
	free(key4);
	free(cert1);
	free(cert2);
	free(cert3);
	free(cert4);
	free(key_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_serve_and_restarts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
