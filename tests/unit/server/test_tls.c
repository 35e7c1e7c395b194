/*
 * Unit tests for src/server/tls.c: protocol versions, cipher suites, options,
 * client certificate verification (leaf-only clients, other CAs,
 * intermediates that are not anchors, purpose, expiry), configuration
 * errors. Handshakes run in memory over BIO pairs: no sockets, no threads.
 */
#include "support/support.h"

#include "server/server_impl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

enum kind { CA, SERVER, CLIENT };

/* A certificate for key, signed by issuer (or self-signed when issuer is NULL). */
static X509 *mkcert(const char *cn, const char *ou, EVP_PKEY *key, X509 *issuer,
		    EVP_PKEY *issuer_key, enum kind kind, long days_from, long days_to)
{
	static long serial = 1000;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	const char *ext[6][2] = { { NULL, NULL } };
	size_t n = 0;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), (int)days_from, 0, NULL));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), (int)days_to, 0, NULL));
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	if (ou != NULL)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
							    (const unsigned char *)ou, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	switch (kind) {
	case CA:
		ext[n][0] = "basicConstraints", ext[n++][1] = "critical,CA:TRUE";
		ext[n][0] = "keyUsage", ext[n++][1] = "critical,keyCertSign,cRLSign";
		break;
	case SERVER:
		ext[n][0] = "basicConstraints", ext[n++][1] = "critical,CA:FALSE";
		ext[n][0] = "keyUsage", ext[n++][1] = "critical,digitalSignature";
		ext[n][0] = "extendedKeyUsage", ext[n++][1] = "serverAuth";
		ext[n][0] = "subjectAltName", ext[n++][1] = "IP:127.0.0.1,DNS:localhost";
		break;
	case CLIENT:
	default:
		ext[n][0] = "basicConstraints", ext[n++][1] = "critical,CA:FALSE";
		ext[n][0] = "keyUsage", ext[n++][1] = "critical,digitalSignature";
		ext[n][0] = "extendedKeyUsage", ext[n++][1] = "clientAuth";
		break;
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

static void pem_cert(kiln_buf *out, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	n = BIO_get_mem_data(b, &p);
	KT_OK(kiln_buf_append(out, p, (size_t)n));
	BIO_free(b);
}

static void pem_key(kiln_buf *out, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	KT_OK(kiln_buf_append(out, p, (size_t)n));
	BIO_free(b);
}

static struct {
	EVP_PKEY *root_key, *int_key, *srv_key, *cli_key, *other_key;
	X509 *root, *inter, *srv, *cli, *other_root, *other_cli, *expired_cli, *int_only_cli;
	X509 *other_int;
	kiln_buf root_pem, int_pem, chain_pem, key_pem, other_root_pem, cli_key_pem;
} pki;

static int setup(void **state)
{
	(void)state;
	pki.root_key = kt_keygen("p256");
	pki.int_key = kt_keygen("p256");
	pki.srv_key = kt_keygen("p256");
	pki.cli_key = kt_keygen("p256");
	pki.other_key = kt_keygen("p256");
	pki.root = mkcert("Test Service Root", NULL, pki.root_key, NULL, NULL, CA, -1, 365);
	pki.inter = mkcert("Test Service Issuing", NULL, pki.int_key, pki.root, pki.root_key, CA, -1, 365);
	pki.srv = mkcert("localhost", NULL, pki.srv_key, pki.inter, pki.int_key, SERVER, -1, 30);
	pki.cli = mkcert("station-1", "station", pki.cli_key, pki.inter, pki.int_key, CLIENT, -1, 30);
	pki.expired_cli = mkcert("station-old", "station", pki.cli_key, pki.inter, pki.int_key, CLIENT,
				 -30, -1);
	pki.other_root = mkcert("Other Root", NULL, pki.other_key, NULL, NULL, CA, -1, 365);
	pki.other_cli = mkcert("station-1", "station", pki.cli_key, pki.other_root, pki.other_key,
			       CLIENT, -1, 30);
	/* An intermediate of another root, and a client under it. */
	pki.other_int = mkcert("Other Issuing", NULL, pki.int_key, pki.other_root, pki.other_key, CA, -1, 365);
	pki.int_only_cli = mkcert("station-2", "station", pki.cli_key, pki.other_int, pki.int_key,
				  CLIENT, -1, 30);
	kiln_buf_init(&pki.root_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.int_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.chain_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.key_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.other_root_pem, KILN_BUF_DEFAULT_MAX);
	kiln_buf_init(&pki.cli_key_pem, KILN_BUF_DEFAULT_MAX);
	pem_cert(&pki.root_pem, pki.root);
	pem_cert(&pki.int_pem, pki.inter);
	pem_cert(&pki.chain_pem, pki.srv);
	pem_cert(&pki.chain_pem, pki.inter);
	pem_key(&pki.key_pem, pki.srv_key);
	pem_cert(&pki.other_root_pem, pki.other_root);
	pem_key(&pki.cli_key_pem, pki.cli_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(pki.root_key);
	EVP_PKEY_free(pki.int_key);
	EVP_PKEY_free(pki.srv_key);
	EVP_PKEY_free(pki.cli_key);
	EVP_PKEY_free(pki.other_key);
	X509_free(pki.root);
	X509_free(pki.inter);
	X509_free(pki.srv);
	X509_free(pki.cli);
	X509_free(pki.expired_cli);
	X509_free(pki.other_root);
	X509_free(pki.other_cli);
	X509_free(pki.other_int);
	X509_free(pki.int_only_cli);
	kiln_buf_cleanup(&pki.root_pem);
	kiln_buf_cleanup(&pki.int_pem);
	kiln_buf_cleanup(&pki.chain_pem);
	kiln_buf_cleanup(&pki.key_pem);
	kiln_buf_cleanup(&pki.other_root_pem);
	kiln_buf_cleanup(&pki.cli_key_pem);
	return 0;
}

static struct kiln_server_opts opts(void)
{
	struct kiln_server_opts o = { 0 };

	o.listen = "127.0.0.1:0";
	o.tls_chain_pem = kiln_buf_view(&pki.chain_pem);
	o.tls_key_pem = kiln_buf_view(&pki.key_pem);
	o.client_ca_pem = kiln_buf_view(&pki.root_pem);
	o.client_chain_pem = kiln_buf_view(&pki.int_pem);
	return o;
}

static struct kiln_tls *server_tls(const struct kiln_server_opts *o)
{
	struct kiln_tls *t = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_OK(kiln_tls_new(o, &t, &d));
	return t;
}

/* A client context trusting our root, presenting cert (+ extra chain) when given. */
static SSL_CTX *client_ctx(X509 *cert, X509 *extra, int version, const char *ciphers)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	X509_STORE *st;

	assert_non_null(c);
	st = SSL_CTX_get_cert_store(c);
	assert_int_equal(X509_STORE_add_cert(st, pki.root), 1);
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

struct pair {
	SSL *s, *c;
};

static bool want_more(SSL *ssl, int rc)
{
	int e = SSL_get_error(ssl, rc);

	return rc == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Runs a handshake to its end; true when both sides finished it. */
static bool handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *resume, struct pair *p)
{
	BIO *sb, *cb;
	int rs = 0, rc = 0;

	p->s = SSL_new(sctx);
	p->c = SSL_new(cctx);
	assert_non_null(p->s);
	assert_non_null(p->c);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(p->s, sb, sb);
	SSL_set_bio(p->c, cb, cb);
	SSL_set_accept_state(p->s);
	SSL_set_connect_state(p->c);
	if (resume != NULL)
		assert_int_equal(SSL_set_session(p->c, resume), 1);
	for (int i = 0; i < 50; i++) {
		char b;

		if (rc != 1)
			rc = SSL_do_handshake(p->c);
		if (rs != 1)
			rs = SSL_do_handshake(p->s);
		if (!want_more(p->c, rc) || !want_more(p->s, rs))
			break;
		if (rc == 1 && rs == 1) {
			/* TLS 1.3: the client may finish before the server has judged its certificate. */
			if (SSL_read(p->c, &b, 1) <= 0 && !want_more(p->c, -1))
				break;
			if (SSL_read(p->s, &b, 1) <= 0 && SSL_get_error(p->s, -1) == SSL_ERROR_SSL)
				break;
			ERR_clear_error();
			return true;
		}
	}
	ERR_clear_error();
	return false;
}

static void pair_free(struct pair *p)
{
	SSL_free(p->s);
	SSL_free(p->c);
}

static void test_versions(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	static const struct {
		int version;
		const char *ciphers;
		bool ok;
	} cases[] = {
		{ TLS1_3_VERSION, NULL, true },
		{ TLS1_2_VERSION, NULL, true },
		/* SECLEVEL=0 so the refusal is the server's, not the client's own policy. */
		{ TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0", false },
		{ TLS1_VERSION, "DEFAULT:@SECLEVEL=0", false },
	};

	(void)state;
	t = server_tls(&o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *c = client_ctx(NULL, NULL, cases[i].version, cases[i].ciphers);
		struct pair p;
		bool ok = handshake(t->ctx, c, NULL, &p);

		assert_int_equal(ok, cases[i].ok);
		if (ok)
			assert_int_equal(SSL_version(p.s), cases[i].version);
		pair_free(&p);
		SSL_CTX_free(c);
	}
	kiln_tls_free(t);
}

static void test_tls12_cipher_policy(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	static const struct {
		const char *cipher;
		bool ok;
	} cases[] = {
		{ "ECDHE-ECDSA-AES128-GCM-SHA256", true },
		{ "ECDHE-ECDSA-AES256-GCM-SHA384", true },
		{ "ECDHE-ECDSA-CHACHA20-POLY1305", true },
		{ "ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0", false }, /* CBC */
		{ "ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0", false },     /* CBC */
	};
	STACK_OF(SSL_CIPHER) *sk;

	(void)state;
	t = server_tls(&o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SSL_CTX *c = client_ctx(NULL, NULL, TLS1_2_VERSION, cases[i].cipher);
		struct pair p;

		assert_int_equal(handshake(t->ctx, c, NULL, &p), cases[i].ok);
		pair_free(&p);
		SSL_CTX_free(c);
	}
	/* Nothing in the server's list is CBC, RSA key exchange or finite-field DH. */
	sk = SSL_CTX_get_ciphers(t->ctx);
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *ci = sk_SSL_CIPHER_value(sk, i);
		const char *name = SSL_CIPHER_get_name(ci);

		assert_true(SSL_CIPHER_is_aead(ci));
		assert_true(strncmp(name, "TLS_", 4) == 0 || strncmp(name, "ECDHE-", 6) == 0);
	}
	kiln_tls_free(t);
}

static void test_options(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	uint64_t op;

	(void)state;
	t = server_tls(&o);
	op = SSL_CTX_get_options(t->ctx);
	assert_true((op & SSL_OP_NO_COMPRESSION) != 0);
	assert_true((op & SSL_OP_NO_RENEGOTIATION) != 0);
	assert_true((op & SSL_OP_NO_TICKET) != 0);
	assert_int_equal(SSL_CTX_get_session_cache_mode(t->ctx), SSL_SESS_CACHE_OFF);
	assert_int_equal(SSL_CTX_get_num_tickets(t->ctx), 0);
	assert_int_equal(SSL_CTX_get_min_proto_version(t->ctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_max_proto_version(t->ctx), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(t->ctx), SSL_VERIFY_PEER);
	/* The CertificateRequest names the root and the intermediate. */
	assert_int_equal(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(t->ctx)), 2);
	kiln_tls_free(t);
}

static void test_no_resumption(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

	(void)state;
	t = server_tls(&o);
	for (size_t i = 0; i < 2; i++) {
		SSL_CTX *c = client_ctx(pki.cli, NULL, versions[i], NULL);
		SSL_SESSION *sess;
		struct pair p;

		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);
		assert_true(handshake(t->ctx, c, NULL, &p));
		sess = SSL_get1_session(p.c);
		assert_non_null(sess);
		pair_free(&p);
		assert_true(handshake(t->ctx, c, sess, &p));
		assert_int_equal(SSL_session_reused(p.c), 0);
		/* A full handshake again: the certificate was checked again. */
		assert_non_null(kiln_tls_peer_view(p.s));
		pair_free(&p);
		SSL_SESSION_free(sess);
		SSL_CTX_free(c);
	}
	kiln_tls_free(t);
}

static void test_client_certificates(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

	(void)state;
	t = server_tls(&o);
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *c;
		struct pair p;

		/* None: accepted (public routes), no peer. */
		c = client_ctx(NULL, NULL, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_null(kiln_tls_peer_view(p.s));
		pair_free(&p);
		SSL_CTX_free(c);
		/* The leaf alone: the server supplies the intermediate. */
		c = client_ctx(pki.cli, NULL, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_non_null(kiln_tls_peer_view(p.s));
		assert_int_equal(X509_cmp(kiln_tls_peer_view(p.s), pki.cli), 0);
		assert_int_equal(sk_X509_num(SSL_get0_verified_chain(p.s)), 3);
		pair_free(&p);
		SSL_CTX_free(c);
		/* Leaf and intermediate: also fine. */
		c = client_ctx(pki.cli, pki.inter, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_non_null(kiln_tls_peer_view(p.s));
		pair_free(&p);
		SSL_CTX_free(c);
		/* Another CA: the handshake fails. */
		c = client_ctx(pki.other_cli, NULL, versions[v], NULL);
		assert_false(handshake(t->ctx, c, NULL, &p));
		assert_null(kiln_tls_peer_view(p.s));
		pair_free(&p);
		SSL_CTX_free(c);
		/* Expired. */
		c = client_ctx(pki.expired_cli, NULL, versions[v], NULL);
		assert_false(handshake(t->ctx, c, NULL, &p));
		pair_free(&p);
		SSL_CTX_free(c);
		/* A server certificate is not a client certificate (EKU). */
		c = client_ctx(NULL, NULL, versions[v], NULL);
		assert_int_equal(SSL_CTX_use_certificate(c, pki.srv), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(c, pki.srv_key), 1);
		assert_false(handshake(t->ctx, c, NULL, &p));
		pair_free(&p);
		SSL_CTX_free(c);
	}
	kiln_tls_free(t);
}

/*
 * accept_foreign_certs (kiln serve, for EST renewal): a certificate of another
 * CA, or an expired one, finishes the handshake but is never the verified
 * peer; it is only the foreign view.
 */
static void test_accept_foreign(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

	(void)state;
	o.accept_foreign_certs = true;
	t = server_tls(&o);
	for (size_t v = 0; v < 2; v++) {
		SSL_CTX *c;
		struct pair p;

		c = client_ctx(pki.other_cli, NULL, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_null(kiln_tls_peer_view(p.s));
		assert_non_null(kiln_tls_peer_foreign_view(p.s));
		assert_int_equal(X509_cmp(kiln_tls_peer_foreign_view(p.s), pki.other_cli), 0);
		pair_free(&p);
		SSL_CTX_free(c);
		c = client_ctx(pki.expired_cli, NULL, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_null(kiln_tls_peer_view(p.s));
		assert_non_null(kiln_tls_peer_foreign_view(p.s));
		pair_free(&p);
		SSL_CTX_free(c);
		/* A good client certificate is the verified peer, never a foreign one. */
		c = client_ctx(pki.cli, NULL, versions[v], NULL);
		assert_true(handshake(t->ctx, c, NULL, &p));
		assert_non_null(kiln_tls_peer_view(p.s));
		assert_null(kiln_tls_peer_foreign_view(p.s));
		pair_free(&p);
		SSL_CTX_free(c);
	}
	kiln_tls_free(t);
}

/* kiln init may make the service CA (and so the TLS and client keys) P-384, Ed25519 or RSA. */
static void test_key_algorithms(void **state)
{
	static const char *const algs[] = { "p384", "ed25519", "rsa2048" };
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

	(void)state;
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		EVP_PKEY *k = kt_key(algs[a]);
		X509 *srv = mkcert("localhost", NULL, k, pki.inter, pki.int_key, SERVER, -1, 30);
		X509 *cli = mkcert("station-9", "station", k, pki.inter, pki.int_key, CLIENT, -1, 30);
		struct kiln_server_opts o = opts();
		kiln_buf chain, key;
		struct kiln_tls *t;

		kiln_buf_init(&chain, KILN_BUF_DEFAULT_MAX);
		kiln_buf_init(&key, KILN_BUF_DEFAULT_MAX);
		pem_cert(&chain, srv);
		pem_cert(&chain, pki.inter);
		pem_key(&key, k);
		o.tls_chain_pem = kiln_buf_view(&chain);
		o.tls_key_pem = kiln_buf_view(&key);
		t = server_tls(&o);
		for (size_t v = 0; v < 2; v++) {
			SSL_CTX *c = client_ctx(NULL, NULL, versions[v], NULL);
			struct pair p;

			/* The same key type on the client side too. */
			assert_int_equal(SSL_CTX_use_certificate(c, cli), 1);
			assert_int_equal(SSL_CTX_use_PrivateKey(c, k), 1);
			if (!handshake(t->ctx, c, NULL, &p))
				fail_msg("%s over TLS version %x failed", algs[a], (unsigned)versions[v]);
			assert_non_null(kiln_tls_peer_view(p.s));
			pair_free(&p);
			SSL_CTX_free(c);
		}
		kiln_tls_free(t);
		kiln_buf_cleanup(&chain);
		kiln_buf_cleanup(&key);
		X509_free(srv);
		X509_free(cli);
	}
	kt_keys_free();
}

static void test_intermediates_are_not_anchors(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	kiln_buf other_int;
	SSL_CTX *c;
	struct pair p;

	(void)state;
	/* Anchored at our root, with another root's intermediate as a helper. */
	kiln_buf_init(&other_int, KILN_BUF_DEFAULT_MAX);
	pem_cert(&other_int, pki.other_int);
	o.client_chain_pem = kiln_buf_view(&other_int);
	t = server_tls(&o);
	c = client_ctx(pki.int_only_cli, NULL, TLS1_3_VERSION, NULL);
	assert_false(handshake(t->ctx, c, NULL, &p));
	pair_free(&p);
	/* Even when the client sends the intermediate itself. */
	SSL_CTX_free(c);
	c = client_ctx(pki.int_only_cli, pki.other_int, TLS1_2_VERSION, NULL);
	assert_false(handshake(t->ctx, c, NULL, &p));
	pair_free(&p);
	SSL_CTX_free(c);
	kiln_tls_free(t);
	kiln_buf_cleanup(&other_int);
}

static void test_without_client_chain(void **state)
{
	struct kiln_server_opts o = opts();
	struct kiln_tls *t;
	SSL_CTX *c;
	struct pair p;

	(void)state;
	o.client_chain_pem = kiln_slice_of(NULL, 0);
	t = server_tls(&o);
	/* The leaf alone no longer chains... */
	c = client_ctx(pki.cli, NULL, TLS1_3_VERSION, NULL);
	assert_false(handshake(t->ctx, c, NULL, &p));
	pair_free(&p);
	SSL_CTX_free(c);
	/* ...but leaf and intermediate do. */
	c = client_ctx(pki.cli, pki.inter, TLS1_3_VERSION, NULL);
	assert_true(handshake(t->ctx, c, NULL, &p));
	assert_non_null(kiln_tls_peer_view(p.s));
	pair_free(&p);
	SSL_CTX_free(c);
	kiln_tls_free(t);
}

static void config_error(struct kiln_server_opts *o, const char *want)
{
	struct kiln_tls *t = (struct kiln_tls *)&t;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_tls_new(o, &t, &d), KILN_ERR_CONFIG);
	assert_null(t);
	if (strstr(d.text, want) == NULL)
		fail_msg("diag \"%s\" lacks \"%s\"", d.text, want);
}

static void test_config_errors(void **state)
{
	struct kiln_server_opts o;
	kiln_buf many;
	const char *junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

	(void)state;
	o = opts();
	o.tls_chain_pem = kiln_slice_of(NULL, 0);
	config_error(&o, "TLS certificate chain");
	o = opts();
	o.tls_chain_pem = kiln_slice_str("not pem at all");
	config_error(&o, "not valid PEM");
	o = opts();
	o.tls_chain_pem = kiln_slice_str(junk);
	config_error(&o, "not valid PEM");
	o = opts();
	o.tls_key_pem = kiln_slice_of(NULL, 0);
	config_error(&o, "TLS key");
	o = opts();
	o.tls_key_pem = kiln_slice_str("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
	config_error(&o, "TLS key");
	o = opts();
	o.tls_key_pem = kiln_buf_view(&pki.cli_key_pem);
	config_error(&o, "does not match");
	o = opts();
	o.client_ca_pem = kiln_slice_of(NULL, 0);
	config_error(&o, "client CA");
	o = opts();
	o.client_chain_pem = kiln_slice_str(junk);
	config_error(&o, "client CA chain");
	/* More certificates than anyone needs. */
	kiln_buf_init(&many, KILN_BUF_DEFAULT_MAX);
	for (int i = 0; i < 17; i++)
		pem_cert(&many, pki.root);
	o = opts();
	o.client_ca_pem = kiln_buf_view(&many);
	config_error(&o, "more than 16");
	kiln_buf_cleanup(&many);
	/* A key PEM in the certificate slot has no certificate in it. */
	o = opts();
	o.tls_chain_pem = kiln_buf_view(&pki.key_pem);
	config_error(&o, "not valid PEM");
	kiln_tls_free(NULL);
	assert_null(kiln_tls_peer_view(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_tls12_cipher_policy),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_no_resumption),
		cmocka_unit_test(test_client_certificates),
		cmocka_unit_test(test_accept_foreign),
		cmocka_unit_test(test_key_algorithms),
		cmocka_unit_test(test_intermediates_are_not_anchors),
		cmocka_unit_test(test_without_client_chain),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
