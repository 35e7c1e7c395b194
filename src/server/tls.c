/*
 * The server's TLS context. Only TLS 1.2 and 1.3; for 1.2 only ECDHE key
 * exchange with AES-GCM or ChaCha20-Poly1305 (no RSA key exchange, no CBC);
 * no compression, no renegotiation, no session resumption (a resumed
 * session would skip the client certificate check we rely on per request).
 *
 * Client certificates are requested but optional (public routes need none);
 * one that is sent must chain to client_ca_pem, the only trust anchors. The
 * intermediates in client_chain_pem are offered to the chain builder as
 * untrusted certificates, through a verify callback, so a client may present
 * its leaf alone; they never become trust anchors themselves.
 */
#include "server_impl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#define TLS12_CIPHERS                                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                 \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
#define CLIENT_VERIFY_DEPTH 4
#define PEM_MAX_CERTS 16

/* Every certificate in a PEM blob, in order; at least one, at most PEM_MAX_CERTS. */
static kiln_result pem_certs(kiln_slice pem, const char *what, STACK_OF(X509) **out,
			     kiln_diag *d)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;
	kiln_result r = kiln_ok();

	*out = NULL;
	ERR_clear_error();
	if (pem.len == 0 || pem.len > INT32_MAX)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "%s: no PEM certificate given", what);
	bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
	sk = sk_X509_new_null();
	if (bio == NULL || sk == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(sk) >= PEM_MAX_CERTS || !sk_X509_push(sk, x)) {
			X509_free(x);
			r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s: more than %d certificates", what,
					  PEM_MAX_CERTS);
			goto out;
		}
	}
	/* The loop ends on "no start line" at the end of the data; anything else is damage. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || sk_X509_num(sk) == 0)
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s: not valid PEM certificates", what);
	ERR_clear_error();
out:
	BIO_free(bio);
	if (kiln_is_ok(r))
		*out = sk;
	else
		sk_X509_pop_free(sk, X509_free);
	return r;
}

static kiln_result load_server_identity(SSL_CTX *ctx, const struct kiln_server_opts *o,
					kiln_diag *d)
{
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	kiln_result r;

	KILN_TRY(r, pem_certs(o->tls_chain_pem, "TLS certificate chain", &chain, d));
	if (SSL_CTX_use_certificate(ctx, sk_X509_value(chain, 0)) != 1) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "TLS certificate refused by OpenSSL (key too weak?)");
		goto out;
	}
	for (int i = 1; i < sk_X509_num(chain); i++) {
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
			r = kiln_fail(KILN_ERR_NOMEM);
			goto out;
		}
	}
	/* A read-only view of the caller's bytes: no copy of the key PEM is made here. */
	if (o->tls_key_pem.len == 0 || o->tls_key_pem.len > INT32_MAX ||
	    (bio = BIO_new_mem_buf(o->tls_key_pem.ptr, (int)o->tls_key_pem.len)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "TLS key: not a valid unencrypted PEM private key");
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "TLS key does not match the TLS certificate");
		goto out;
	}
	r = kiln_ok();
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	BIO_free(bio);
	sk_X509_pop_free(chain, X509_free);
	return r;
}

/*
 * Replaces X509_verify_cert for client chains: the peer's certificates plus
 * our intermediates are the untrusted pool, the verify store the anchors.
 */
static int verify_client(X509_STORE_CTX *xs, void *arg)
{
	const struct kiln_tls *t = arg;
	STACK_OF(X509) *peer = X509_STORE_CTX_get0_untrusted(xs);
	STACK_OF(X509) *pool;
	int ok;

	pool = peer != NULL ? sk_X509_dup(peer) : sk_X509_new_null();
	if (pool == NULL) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	for (int i = 0; i < sk_X509_num(t->client_chain); i++) {
		if (!sk_X509_push(pool, sk_X509_value(t->client_chain, i))) {
			sk_X509_free(pool);
			X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
			return 0;
		}
	}
	X509_STORE_CTX_set0_untrusted(xs, pool);
	ok = X509_verify_cert(xs);
	X509_STORE_CTX_set0_untrusted(xs, peer);
	sk_X509_free(pool);
	/*
	 * A foreign certificate may finish the handshake: the error stays in the
	 * verify result, so kiln_tls_peer_view never returns it.
	 */
	if (ok != 1 && t->accept_foreign && X509_STORE_CTX_get_error(xs) != X509_V_OK)
		return 1;
	return ok;
}

static kiln_result setup_client_auth(struct kiln_tls *t, const struct kiln_server_opts *o,
				     kiln_diag *d)
{
	STACK_OF(X509) *anchors = NULL;
	X509_STORE *store = NULL;
	kiln_result r;

	KILN_TRY(r, pem_certs(o->client_ca_pem, "client CA", &anchors, d));
	if (o->client_chain_pem.len > 0)
		KILN_TRY(r, pem_certs(o->client_chain_pem, "client CA chain", &t->client_chain, d));
	else if ((t->client_chain = sk_X509_new_null()) == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	r = kiln_fail(KILN_ERR_NOMEM);
	if ((store = X509_STORE_new()) == NULL)
		goto out;
	/* The names clients see in CertificateRequest: anchors and intermediates. */
	for (int i = 0; i < sk_X509_num(anchors); i++) {
		if (X509_STORE_add_cert(store, sk_X509_value(anchors, i)) != 1 ||
		    SSL_CTX_add_client_CA(t->ctx, sk_X509_value(anchors, i)) != 1)
			goto out;
	}
	for (int i = 0; i < sk_X509_num(t->client_chain); i++) {
		if (SSL_CTX_add_client_CA(t->ctx, sk_X509_value(t->client_chain, i)) != 1)
			goto out;
	}
	/* A store of its own: the anchors verify clients and nothing else. */
	SSL_CTX_set0_verify_cert_store(t->ctx, store);
	store = NULL;
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(t->ctx, CLIENT_VERIFY_DEPTH);
	SSL_CTX_set_cert_verify_callback(t->ctx, verify_client, t);
	r = kiln_ok();
out:
	X509_STORE_free(store);
	sk_X509_pop_free(anchors, X509_free);
	return r;
}

static kiln_result setup_protocol(SSL_CTX *ctx)
{
	static const unsigned char sid_ctx[] = "kiln";

	KILN_ENSURE(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
			    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
		    KILN_ERR_CRYPTO);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle keep-alive connections should not hold 34 KiB of buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	KILN_ENSURE(SSL_CTX_set_num_tickets(ctx, 0) == 1, KILN_ERR_CRYPTO);
	KILN_ENSURE(SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) == 1,
		    KILN_ERR_CRYPTO);
	KILN_ENSURE(SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) == 1 &&
			    SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) == 1 &&
			    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) == 1,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}

kiln_result kiln_tls_new(const struct kiln_server_opts *o, struct kiln_tls **out, kiln_diag *d)
{
	struct kiln_tls *t;
	kiln_result r;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	KILN_ENSURE(t != NULL, KILN_ERR_NOMEM);
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (t->ctx == NULL) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	t->accept_foreign = o->accept_foreign_certs;
	KILN_TRY(r, setup_protocol(t->ctx));
	KILN_TRY(r, load_server_identity(t->ctx, o, d));
	KILN_TRY(r, setup_client_auth(t, o, d));
out:
	ERR_clear_error();
	if (!kiln_is_ok(r)) {
		kiln_tls_free(t);
		return r;
	}
	*out = t;
	return kiln_ok();
}

void kiln_tls_free(struct kiln_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	sk_X509_pop_free(t->client_chain, X509_free);
	free(t);
}

X509 *kiln_tls_peer_view(const SSL *ssl)
{
	X509 *x;

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return NULL;
	x = SSL_get0_peer_certificate(ssl);
	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return x;
}

X509 *kiln_tls_peer_foreign_view(const SSL *ssl)
{
	if (ssl == NULL || !SSL_is_init_finished(ssl) || SSL_get_verify_result(ssl) == X509_V_OK)
		return NULL;
	return SSL_get0_peer_certificate(ssl);
}
