/*
 * What the benchmarks share: running a worker on T threads, medians and
 * percentiles, and the raw baselines every ratio is taken against (OpenSSL
 * P-256 sign, verify and key generation, SoftHSM2 signatures straight
 * through PKCS#11). Header-only: each benchmark is one executable.
 */
#ifndef KILN_BENCH_HARNESS_H
#define KILN_BENCH_HARNESS_H

#include "cli/cli.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_THREADS 64

typedef void *(*worker_fn)(void *);

struct worker {
	unsigned id;
	unsigned n;      /* operations this worker performs */
	void *shared;
	unsigned done;   /* operations that succeeded */
	uint64_t *lat;   /* per-operation latency, ns (optional) */
};

/* The last run_threads: process CPU seconds over wall seconds (2.0 = both cores busy). */
static double run_cpu_util;

static inline double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Runs fn on t threads, each doing its share of total; returns operations/second. */
static inline double run_threads(unsigned t, unsigned total, worker_fn fn, void *shared,
				 uint64_t *lat, unsigned *ok)
{
	pthread_t th[MAX_THREADS];
	struct worker w[MAX_THREADS];
	uint64_t start, ns;
	unsigned off = 0, done = 0;
	double cpu0;

	for (unsigned i = 0; i < t; i++) {
		w[i] = (struct worker){ i, total / t + (i < total % t ? 1 : 0), shared, 0,
					lat != NULL ? lat + off : NULL };
		off += w[i].n;
	}
	cpu0 = cpu_seconds();
	start = kiln_mono_ns();
	for (unsigned i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, fn, &w[i]) != 0)
			abort();
	for (unsigned i = 0; i < t; i++) {
		(void)pthread_join(th[i], NULL);
		done += w[i].done;
	}
	ns = kiln_mono_ns() - start;
	run_cpu_util = (cpu_seconds() - cpu0) * 1e9 / (double)ns;
	if (ok != NULL)
		*ok = done;
	return (double)done * 1e9 / (double)ns;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of n latencies in ns, in ms; sorts lat. */
static inline double percentile_ms(uint64_t *lat, unsigned n, unsigned p)
{
	if (n == 0)
		return 0;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	return (double)lat[(size_t)(n - 1) * p / 100] / 1e6;
}

/* ----------------------------------------------------------- OpenSSL baselines */

struct ossl_shared {
	EVP_PKEY *key;
};

static inline void *ossl_sign_worker(void *arg)
{
	struct worker *w = arg;
	struct ossl_shared *s = w->shared;
	unsigned char msg[256], sig[256];

	memset(msg, 0x5a, sizeof(msg));
	for (unsigned i = 0; i < w->n; i++) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		size_t len = sizeof(sig);

		if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) == 1 &&
		    EVP_DigestSign(ctx, sig, &len, msg, sizeof(msg)) == 1)
			w->done++;
		EVP_MD_CTX_free(ctx);
	}
	return NULL;
}

/* P-256 key generation: one scalar multiplication, what a DICE key derivation costs. */
static inline void *ossl_keygen_worker(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < w->n; i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

		if (k != NULL)
			w->done++;
		EVP_PKEY_free(k);
	}
	return NULL;
}

struct verify_shared {
	X509_REQ **reqs;
	unsigned n;
};

static inline void *verify_worker(void *arg)
{
	struct worker *w = arg;
	struct verify_shared *s = w->shared;

	for (unsigned i = 0; i < w->n; i++) {
		X509_REQ *req = s->reqs[(w->id * 7919u + i) % s->n];
		EVP_PKEY *pk = X509_REQ_get0_pubkey(req);

		if (X509_REQ_verify(req, pk) == 1)
			w->done++;
	}
	return NULL;
}

/* n P-256 CSRs, a fresh key each, subject CN=<prefix>-<i>. */
static inline int make_reqs(unsigned n, const char *prefix, X509_REQ **out)
{
	for (unsigned i = 0; i < n; i++) {
		EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		X509_REQ *req = X509_REQ_new();
		X509_NAME *name = X509_NAME_new();
		char cn[64];
		int ok;

		(void)snprintf(cn, sizeof(cn), "%s-%07u", prefix, i);
		ok = key != NULL && req != NULL && name != NULL &&
		     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1,
						-1, 0) == 1 &&
		     X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
		     X509_REQ_sign(req, key, EVP_sha256()) > 0;
		X509_NAME_free(name);
		EVP_PKEY_free(key);
		if (!ok) {
			X509_REQ_free(req);
			return -1;
		}
		out[i] = req;
	}
	return 0;
}

/* ----------------------------------------------------------- raw PKCS#11 */

/* The module's own function list, a session per thread. */
struct p11_shared {
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
};

static inline void *p11_sign_worker(void *arg)
{
	struct worker *w = arg;
	struct p11_shared *s = w->shared;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE sess;
	unsigned char digest[32], sig[256];

	memset(digest, 0x3c, sizeof(digest));
	if (s->f->C_OpenSession(s->slot, CKF_SERIAL_SESSION, NULL, NULL, &sess) != CKR_OK)
		return NULL;
	for (unsigned i = 0; i < w->n; i++) {
		CK_ULONG len = sizeof(sig);

		if (s->f->C_SignInit(sess, &mech, s->key) == CKR_OK &&
		    s->f->C_Sign(sess, digest, sizeof(digest), sig, &len) == CKR_OK)
			w->done++;
	}
	(void)s->f->C_CloseSession(sess);
	return NULL;
}

/*
 * Finds an issuing CA key ("production-issuing" in token "kiln-prod", say) in
 * a deployment kiln has opened (the module is initialised and the token
 * logged in: login is per application).
 */
static inline int p11_setup(struct deployment *dep, struct p11_shared *s, const char *token,
			    const char *label)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	char padded[33];
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) },
				{ CKA_LABEL, (void *)label, strlen(label) } };
	CK_ULONG found = 0;
	CK_SESSION_HANDLE sess;
	void *h = dlopen(dep->cfg.hsm_module, RTLD_NOW | RTLD_NOLOAD);

	if (h == NULL)
		return -1;
	*(void **)&get = dlsym(h, "C_GetFunctionList");
	if (get == NULL || get(&s->f) != CKR_OK)
		return -1;
	if (s->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	/* Token labels are 32 bytes, blank-padded. */
	(void)snprintf(padded, sizeof(padded), "%-32s", token);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (s->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, padded, 32) == 0) {
			s->slot = slots[i];
			break;
		}
	}
	if (s->f->C_OpenSession(s->slot, CKF_SERIAL_SESSION, NULL, NULL, &sess) != CKR_OK)
		return -1;
	if (s->f->C_FindObjectsInit(sess, tmpl, 2) != CKR_OK ||
	    s->f->C_FindObjects(sess, &s->key, 1, &found) != CKR_OK)
		found = 0;
	(void)s->f->C_FindObjectsFinal(sess);
	(void)s->f->C_CloseSession(sess);
	return found == 1 ? 0 : -1;
}

#endif /* KILN_BENCH_HARNESS_H */
