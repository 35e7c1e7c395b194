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
 * The pipeline is kiln issue's: a CSR without evidence, so the product is
 * widget-test (test CA in the kiln-test token, attestation none); production
 * policies require attestation (bench/provision measures that path).
 *
 * Every figure is the median of --rounds rounds. The ratios are the result;
 * absolute numbers depend on the machine. Never used as a pass/fail gate.
 *
 * usage: bench_issue --dir DIR [--threads T] [--issuers I] [--count N] [--rounds R]
 * DIR is a deployment made by bench/issue (kiln init, then the widget-test policy
 * added and approved by two officers, as every policy change is). A run in which
 * any certificate was not issued exits 1: its figures would measure refusals.
 */
#include "harness.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <unistd.h>

struct bench_opts {
	unsigned threads; /* baselines: one per core */
	unsigned issuers; /* concurrent issuance requests, as a server would have in flight */
	unsigned count;
	unsigned rounds;
	const char *alg;
	const char *dir;
	bool pipeline_only; /* for profiling: skip the baselines */
};

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
		struct kiln_issue_req req = { .product = "widget-test",
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
		/* Unique per run too: serials already in the inventory are refused. */
		(void)snprintf(cn, sizeof(cn), "BENCH-%06u-%02u-%07u", (unsigned)getpid() % 1000000u,
			       round, i);
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
	struct cli_common c = { 0 };
	kiln_diag d;
	char db[KILN_PATH_MAX * 2 + 8];
	struct kiln_store_opts so = { 0 };

	c.dir = o->dir;
	kiln_diag_clear(&d);
	if (!kiln_is_ok(deploy_open(&c, 0, dep, &d)) ||
	    !kiln_is_ok(deploy_token(dep, KILN_ENV_TEST, &d))) {
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
	fputs("usage: bench_issue --dir DIR [--threads T] [--issuers I] [--count N] [--rounds R]\n"
	      "                   [--alg p256|p384|ed25519|rsa3072] [--pipeline-only]\n"
	      "(bench/issue makes DIR and runs this)\n",
	      stderr);
	exit(2);
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	uint64_t v;

	*o = (struct bench_opts){ 2, 32, 2000, 5, "p256", NULL, false };
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
		if (strcmp(argv[i], "--dir") == 0) {
			o->dir = argv[++i];
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
	if (o->dir == NULL)
		usage();
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct deployment dep;
	struct p11_shared p11 = { 0 };
	struct ossl_shared os = { 0 };
	double r_ossl[99], r_hsm[99], r_ver[99], r_kiln[99], r_util[99];
	struct kiln_store_stats st0, st1;
	uint64_t *lat;
	X509_REQ **reqs;
	kiln_buf *csrs;
	struct verify_shared vs;
	unsigned ok = 0, issued = 0, attempted = 0;

	parse_args(argc, argv, &o);
	if (strcmp(o.alg, "p256") != 0)
		fprintf(stderr, "bench: note: the raw baselines use P-256; --alg %s changes the CA key only\n",
			o.alg);
	if (setup(&o, &dep) != 0 || p11_setup(&dep, &p11, "kiln-test", "test-issuing") != 0) {
		fprintf(stderr, "bench: setup failed\n");
		return 1;
	}
	os.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	reqs = calloc(256, sizeof(*reqs));
	/* o.rounds slots of o.count CSRs, then the 256 the verify baseline uses. */
	csrs = calloc((size_t)o.count * o.rounds + 256, sizeof(*csrs));
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
		kiln_store_stats(dep.store, &st0);
		r_kiln[r] = run_threads(o.issuers, o.count, issue_worker, &is, r == o.rounds - 1 ? lat : NULL, &ok);
		r_util[r] = run_cpu_util;
		kiln_store_stats(dep.store, &st1);
		issued += ok;
		attempted += o.count;
		printf("  round %u: openssl %.0f/s  softhsm %.0f/s  verify %.0f/s  kiln %.0f/s "
		       "(cores busy %.2f, %.0f us CPU per certificate, %.1f per commit)\n",
		       r + 1, r_ossl[r], r_hsm[r], r_ver[r], r_kiln[r], r_util[r],
		       r_kiln[r] > 0 ? r_util[r] * 1e6 / r_kiln[r] : 0,
		       st1.commits > st0.commits
			       ? (double)(st1.jobs - st0.jobs) / (double)(st1.commits - st0.commits)
			       : 0);
	}
	{
		double ossl = median(r_ossl, o.rounds), hsm = median(r_hsm, o.rounds);
		double ver = median(r_ver, o.rounds), kiln = median(r_kiln, o.rounds);
		double bound = 1.0 / (1.0 / ver + 1.0 / hsm);

		printf("\nmedians over %u rounds (baselines %u threads, pipeline %u issuers):\n", o.rounds,
		       o.threads, o.issuers);
		printf("  raw OpenSSL P-256 sign      %9.0f /s\n", ossl);
		printf("  raw SoftHSM2 sign (PKCS#11) %9.0f /s\n", hsm);
		printf("  CSR verify                  %9.0f /s\n", ver);
		printf("  crypto bound (verify+sign)  %9.0f /s\n", bound);
		printf("  kiln issuance pipeline      %9.0f /s   (%u of %u issued)\n", kiln, issued,
		       attempted);
		printf("  latency p50 %.2f ms, p99 %.2f ms (last round)\n",
		       percentile_ms(lat, o.count, 50), percentile_ms(lat, o.count, 99));
		printf("\nratios:\n");
		printf("  kiln / crypto bound   %.2f   (target >= 0.50: %s)\n", kiln / bound,
		       kiln / bound >= 0.5 ? "met" : "NOT met");
		printf("  kiln / SoftHSM2 sign  %.2f\n", kiln / hsm);
		printf("  kiln / OpenSSL sign   %.3f\n", kiln / ossl);
		printf("  SoftHSM2 / OpenSSL    %.2f\n", hsm / ossl);
	}
	for (unsigned i = 0; i < 256; i++)
		X509_REQ_free(reqs[i]);
	for (size_t i = 0; i < (size_t)o.count * o.rounds + 256; i++)
		kiln_buf_cleanup(&csrs[i]);
	free(csrs);
	free(reqs);
	free(lat);
	EVP_PKEY_free(os.key);
	deploy_close(&dep);
	if (issued != attempted) {
		fprintf(stderr, "bench: %u of %u certificates were not issued; the figures are void\n",
			attempted - issued, attempted);
		return 1;
	}
	return 0;
}
