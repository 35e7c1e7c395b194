/*
 * bench_issue: certificates issued per second through kiln's whole pipeline
 * (CSR parse and verify, policy checks, TBS build and lint, HSM signature,
 * durable SQLite commit with group commit across issuers), beside baselines
 * measured in the same run and on the same number of threads:
 *
 *   openssl   raw OpenSSL ECDSA P-256 signatures (software key)
 *   softhsm   raw SoftHSM2 signatures: C_SignInit + C_Sign over a digest,
 *             one session per thread, straight through PKCS#11
 *   verify    CSR signature verifications (X509_REQ_verify)
 *   crypto    the bound the crypto alone allows per certificate: one CSR
 *             verification plus one HSM signature, 1 / (1/verify + 1/softhsm)
 *
 * The baselines run on --threads threads (the cores: they are CPU-bound). The
 * pipeline runs --issuers concurrent requests, as a server has in flight:
 * each waits for its durable commit, and the group committer makes one fsync
 * serve all the requests waiting at that moment.
 *
 * Every figure is the median of --rounds rounds. The ratios are the result;
 * absolute numbers depend on the machine. Never used as a pass/fail gate.
 *
 * usage: bench_issue [--threads T] [--issuers I] [--count N] [--rounds R] [--alg p256|...]
 */
#include "cli/cli.h"

#include <dlfcn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

struct bench_opts {
	unsigned threads; /* baselines: one per core */
	unsigned issuers; /* concurrent issuance requests, as a server would have in flight */
	unsigned count;
	unsigned rounds;
	const char *alg;
	char dir[512];
	bool pipeline_only; /* for profiling: skip the baselines */
};

/* ----------------------------------------------------------- timing harness */

typedef void *(*worker_fn)(void *);

struct worker {
	unsigned id;
	unsigned n;      /* operations this worker performs */
	void *shared;
	unsigned done;   /* operations that succeeded */
	uint64_t *lat;   /* per-operation latency, ns (optional) */
};

/* Runs fn on t threads, each doing its share of total; returns operations/second. */
static double run_threads(unsigned t, unsigned total, worker_fn fn, void *shared, uint64_t *lat,
			  unsigned *ok)
{
	pthread_t th[MAX_THREADS];
	struct worker w[MAX_THREADS];
	uint64_t start, ns;
	unsigned off = 0, done = 0;

	for (unsigned i = 0; i < t; i++) {
		w[i] = (struct worker){ i, total / t + (i < total % t ? 1 : 0), shared, 0,
					lat != NULL ? lat + off : NULL };
		off += w[i].n;
	}
	start = kiln_mono_ns();
	for (unsigned i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, fn, &w[i]) != 0)
			abort();
	for (unsigned i = 0; i < t; i++) {
		(void)pthread_join(th[i], NULL);
		done += w[i].done;
	}
	ns = kiln_mono_ns() - start;
	if (ok != NULL)
		*ok = done;
	return (double)done * 1e9 / (double)ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* ----------------------------------------------------------- baselines */

struct ossl_shared {
	EVP_PKEY *key;
};

static void *ossl_sign_worker(void *arg)
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

struct verify_shared {
	X509_REQ **reqs;
	unsigned n;
};

static void *verify_worker(void *arg)
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

/* Raw PKCS#11: the module's own function list, a session per thread. */
struct p11_shared {
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
};

static void *p11_sign_worker(void *arg)
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

static int p11_setup(struct deployment *dep, struct p11_shared *s)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	const char *label = "production-issuing";
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
	/* kiln already initialised the module and logged in (login is per application). */
	if (s->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (s->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, "kiln-prod ", 10) == 0) {
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

/* ----------------------------------------------------------- the pipeline */

struct issue_shared {
	kiln_ca *ca;
	kiln_buf *csrs;
	unsigned next; /* atomically claimed index into csrs */
	const char *actor;
};

static void *issue_worker(void *arg)
{
	struct worker *w = arg;
	struct issue_shared *s = w->shared;

	for (unsigned i = 0; i < w->n; i++) {
		unsigned idx = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
		struct kiln_issue_req req = { .product = "widget",
					      .csr = kiln_buf_view(&s->csrs[idx]),
					      .actor = s->actor };
		struct kiln_issue_result res;
		kiln_diag d;
		uint64_t t0 = kiln_mono_ns();

		kiln_diag_clear(&d);
		kiln_issue_result_init(&res);
		if (kiln_is_ok(kiln_ca_issue(s->ca, &req, &res, &d)))
			w->done++;
		else if (w->done == 0 && i == 0)
			fprintf(stderr, "bench: issue failed: %s\n", d.text);
		if (w->lat != NULL)
			w->lat[i] = kiln_mono_ns() - t0;
		kiln_issue_result_cleanup(&res);
	}
	return NULL;
}

static int make_csrs(unsigned n, unsigned round, kiln_buf *out, X509_REQ **reqs)
{
	EVP_PKEY *key = NULL;

	for (unsigned i = 0; i < n; i++) {
		X509_REQ *req = X509_REQ_new();
		X509_NAME *name = X509_NAME_new();
		unsigned char *der = NULL;
		char cn[64];
		int len;

		/* A fresh key per device, as on a real line. */
		EVP_PKEY_free(key);
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		(void)snprintf(cn, sizeof(cn), "BENCH-%02u-%07u", round, i);
		if (req == NULL || name == NULL || key == NULL ||
		    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1,
					       -1, 0) != 1 ||
		    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
		    X509_REQ_sign(req, key, EVP_sha256()) <= 0 || (len = i2d_X509_REQ(req, &der)) <= 0)
			return -1;
		kiln_buf_init(&out[i], KILN_CSR_MAX_BYTES);
		if (!kiln_is_ok(kiln_buf_append(&out[i], der, (size_t)len)))
			return -1;
		OPENSSL_free(der);
		X509_NAME_free(name);
		if (reqs != NULL)
			reqs[i] = req;
		else
			X509_REQ_free(req);
	}
	EVP_PKEY_free(key);
	return 0;
}

static int setup(struct bench_opts *o, struct deployment *dep)
{
	char *argv[] = { "kiln", "init", "--dir", o->dir, "--algorithm", (char *)o->alg, NULL };
	char policy[1024];
	char *pargv[] = { "kiln", "--dir", o->dir, "policy", "add", policy, NULL };
	struct cli_common c = { 0 };
	kiln_diag d;
	char db[KILN_PATH_MAX * 2 + 8];
	struct kiln_store_opts so = { 0 };

	(void)snprintf(policy, sizeof(policy), "%s/examples/policies/widget.yaml", KILN_SOURCE_DIR);
	if (kiln_cli_main(6, argv) != 0 || kiln_cli_main(6, pargv) != 0)
		return -1;
	c.dir = o->dir;
	kiln_diag_clear(&d);
	if (!kiln_is_ok(deploy_open(&c, 0, dep, &d)) ||
	    !kiln_is_ok(deploy_token(dep, KILN_ENV_PRODUCTION, &d))) {
		fprintf(stderr, "bench: %s\n", d.text);
		return -1;
	}
	/* The store as a server runs it: group commit across concurrent issuers. */
	(void)snprintf(db, sizeof(db), "%s/%s", dep->dir, dep->cfg.database);
	so = (struct kiln_store_opts){ .path = db, .group_commit = true, .log = &dep->log };
	if (!kiln_is_ok(kiln_store_open(&so, &dep->store, &d)) || !kiln_is_ok(deploy_ca(dep, &d))) {
		fprintf(stderr, "bench: %s\n", d.text);
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: bench_issue [--threads T] [--issuers I] [--count N] [--rounds R]\n"
	      "                   [--alg p256|p384|ed25519|rsa3072] [--pipeline-only]\n",
	      stderr);
	exit(2);
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	uint64_t v;

	*o = (struct bench_opts){ 2, 32, 2000, 5, "p256", "", false };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--pipeline-only") == 0) {
			o->pipeline_only = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--alg") == 0) {
			o->alg = argv[++i];
			continue;
		}
		if (!kiln_is_ok(kiln_parse_u64(argv[i + 1], 1000000, &v)) || v == 0)
			usage();
		if (strcmp(argv[i], "--threads") == 0 && v <= MAX_THREADS)
			o->threads = (unsigned)v;
		else if (strcmp(argv[i], "--issuers") == 0 && v <= MAX_THREADS)
			o->issuers = (unsigned)v;
		else if (strcmp(argv[i], "--count") == 0)
			o->count = (unsigned)v;
		else if (strcmp(argv[i], "--rounds") == 0 && v <= 99)
			o->rounds = (unsigned)v;
		else
			usage();
		i++;
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct deployment dep;
	struct p11_shared p11 = { 0 };
	struct ossl_shared os = { 0 };
	double r_ossl[99], r_hsm[99], r_ver[99], r_kiln[99];
	uint64_t *lat;
	X509_REQ **reqs;
	kiln_buf *csrs;
	struct verify_shared vs;
	unsigned ok = 0, issued = 0, attempted = 0;
	char tmpl[] = "/tmp/kiln-bench.XXXXXX";

	parse_args(argc, argv, &o);
	if (mkdtemp(tmpl) == NULL)
		return 1;
	(void)snprintf(o.dir, sizeof(o.dir), "%s/d", tmpl);
	if (strcmp(o.alg, "p256") != 0)
		fprintf(stderr, "bench: note: the raw baselines use P-256; --alg %s changes the CA key only\n",
			o.alg);
	if (setup(&o, &dep) != 0 || p11_setup(&dep, &p11) != 0) {
		fprintf(stderr, "bench: setup failed\n");
		return 1;
	}
	os.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	reqs = calloc(256, sizeof(*reqs));
	csrs = calloc((size_t)o.count * (o.rounds + 1), sizeof(*csrs));
	lat = calloc(o.count, sizeof(*lat));
	if (os.key == NULL || reqs == NULL || csrs == NULL || lat == NULL ||
	    make_csrs(256, 99, csrs + (size_t)o.count * o.rounds, reqs) != 0)
		return 1;
	vs = (struct verify_shared){ reqs, 256 };
	printf("kiln bench_issue: baselines on %u threads, pipeline with %u concurrent issuers, "
	       "%u certificates per round, %u rounds, CA %s\n",
	       o.threads, o.issuers, o.count, o.rounds, o.alg);
	for (unsigned r = 0; r < o.rounds; r++) {
		struct issue_shared is = { dep.ca, csrs + (size_t)o.count * r, 0, "bench" };

		if (make_csrs(o.count, r, is.csrs, NULL) != 0)
			return 1;
		if (!o.pipeline_only) {
			r_ossl[r] = run_threads(o.threads, o.count * 4, ossl_sign_worker, &os, NULL, NULL);
			r_hsm[r] = run_threads(o.threads, o.count * 2, p11_sign_worker, &p11, NULL, NULL);
			r_ver[r] = run_threads(o.threads, o.count * 2, verify_worker, &vs, NULL, NULL);
		} else {
			r_ossl[r] = r_hsm[r] = r_ver[r] = 1;
		}
		r_kiln[r] = run_threads(o.issuers, o.count, issue_worker, &is, r == o.rounds - 1 ? lat : NULL, &ok);
		issued += ok;
		attempted += o.count;
		printf("  round %u: openssl %.0f/s  softhsm %.0f/s  verify %.0f/s  kiln %.0f/s\n", r + 1,
		       r_ossl[r], r_hsm[r], r_ver[r], r_kiln[r]);
	}
	{
		double ossl = median(r_ossl, o.rounds), hsm = median(r_hsm, o.rounds);
		double ver = median(r_ver, o.rounds), kiln = median(r_kiln, o.rounds);
		double bound = 1.0 / (1.0 / ver + 1.0 / hsm);

		qsort(lat, o.count, sizeof(*lat), cmp_u64);
		printf("\nmedians over %u rounds (baselines %u threads, pipeline %u issuers):\n", o.rounds,
		       o.threads, o.issuers);
		printf("  raw OpenSSL P-256 sign      %9.0f /s\n", ossl);
		printf("  raw SoftHSM2 sign (PKCS#11) %9.0f /s\n", hsm);
		printf("  CSR verify                  %9.0f /s\n", ver);
		printf("  crypto bound (verify+sign)  %9.0f /s\n", bound);
		printf("  kiln issuance pipeline      %9.0f /s   (%u of %u issued)\n", kiln, issued,
		       attempted);
		printf("  latency p50 %.2f ms, p99 %.2f ms (last round)\n", (double)lat[o.count / 2] / 1e6,
		       (double)lat[o.count * 99 / 100] / 1e6);
		printf("\nratios:\n");
		printf("  kiln / crypto bound   %.2f   (target >= 0.50: %s)\n", kiln / bound,
		       kiln / bound >= 0.5 ? "met" : "NOT met");
		printf("  kiln / SoftHSM2 sign  %.2f\n", kiln / hsm);
		printf("  kiln / OpenSSL sign   %.3f\n", kiln / ossl);
		printf("  SoftHSM2 / OpenSSL    %.2f\n", hsm / ossl);
	}
	for (unsigned i = 0; i < 256; i++)
		X509_REQ_free(reqs[i]);
	for (size_t i = 0; i < (size_t)o.count * (o.rounds + 1); i++)
		kiln_buf_cleanup(&csrs[i]);
	free(csrs);
	free(reqs);
	free(lat);
	EVP_PKEY_free(os.key);
	deploy_close(&dep);
	if (getenv("KEEP_BENCH_DIR") == NULL) {
		char cmd[600];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			fprintf(stderr, "bench: could not remove %s\n", tmpl);
	}
	return 0;
}
