/*
 * bench_provision: devices provisioned per second end to end, through a
 * running kiln serve over mTLS, by P parallel stations, each device a DICE
 * simulator (boot, key derivation, Alias certificate, CSR, evidence over the
 * server's nonce) going through begin and finish. Two modes per round:
 *
 *   keep-alive   one TLS connection per station, reused device after device
 *   new-conn     a new client, so a new TLS connection, for every device
 *
 * Beside them, measured in the same run on --threads threads, the crypto
 * floor per device: what the cryptography alone of one device costs, device
 * and server together:
 *
 *   device   2 P-256 key derivations (DeviceID, Alias: one scalar
 *            multiplication each, timed as P-256 key generations),
 *            3 ECDSA signatures (Alias certificate, CSR, nonce binding)
 *   server   3 ECDSA verifications (CSR, Alias certificate, binding),
 *            1 HSM signature (the device certificate, SoftHSM2 via PKCS#11)
 *
 *   floor devices/s = 1 / (2/keygen + 3/sign + 3/verify + 1/hsm)
 *
 * with each rate the aggregate of --threads threads: the rate the machine
 * would reach doing nothing but that cryptography. Device states are created
 * before the clock starts (that is manufacturing, not provisioning); opening
 * the state, the whole protocol and the client's writes are timed.
 *
 * Medians over --rounds rounds. Never a pass/fail gate. Run it through
 * bench/provision, which makes the deployment, the station identity and the
 * lot and starts kiln serve.
 */
#include "harness.h"

#include "kiln/agent.h"

#include <jansson.h>

#include <stddef.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct opts {
	const char *dir, *url, *cert, *key, *ca, *product, *lot, *work;
	unsigned count, parallel, rounds, threads;
	unsigned server_pid; /* kiln serve, for its CPU time; 0: not shown */
	const char *only;    /* "keep-alive" or "new-conn": run that mode alone (profiling) */
};

/* CPU seconds (user + system) this process has used. */
static double self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds kiln serve has used, from /proc/PID/stat (utime + stime); 0 if unknown. */
static double server_cpu(unsigned pid)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	const char *p;
	FILE *f;
	size_t n;

	if (pid == 0)
		return 0;
	(void)snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	(void)fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
				&st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One measured mode: rate, latencies, and CPU ms per device on each side. */
struct result {
	double rate, p50, p99, client_ms, server_ms;
};

struct run {
	const struct opts *o;
	char root[512];     /* device states of this run */
	bool fresh;         /* a new connection per device */
	unsigned next;      /* next device index, claimed atomically */
	unsigned ok, failed;
	uint64_t *lat;      /* per device, ns */
	pthread_mutex_t mu;
};

static void device_path(const struct run *run, unsigned i, char *out, size_t cap)
{
	(void)snprintf(out, cap, "%s/D%07u", run->root, i);
}

static int create_devices(struct run *run, const char *tag)
{
	(void)snprintf(run->root, sizeof(run->root), "%s/%s", run->o->work, tag);
	if (mkdir(run->root, 0700) != 0)
		return -1;
	for (unsigned i = 0; i < run->o->count; i++) {
		struct kiln_dice_sim_opts so = { 0 };
		char dir[600], serial[64];
		kiln_diag d;

		kiln_diag_clear(&d);
		(void)snprintf(serial, sizeof(serial), "%s-%07u", tag, i);
		so.serial = serial;
		device_path(run, i, dir, sizeof(dir));
		if (!kiln_is_ok(kiln_rot_dice_create(dir, &so, &d))) {
			fprintf(stderr, "bench: %s: %s\n", dir, d.text);
			return -1;
		}
	}
	return 0;
}

static kiln_result provision_one(kiln_client *cl, const struct run *run, unsigned i, kiln_diag *d)
{
	struct kiln_provision_outcome out;
	kiln_rot *rot = NULL;
	char dir[600];
	kiln_result r;

	device_path(run, i, dir, sizeof(dir));
	kiln_provision_outcome_init(&out);
	r = kiln_rot_open(dir, &rot, d);
	if (kiln_is_ok(r))
		r = kiln_agent_provision(cl, rot, dir, run->o->product, run->o->lot, &out, d);
	if (kiln_is_ok(r) && out.already)
		r = kiln_diag_set(d, KILN_ERR_INTERNAL, "device %u was provisioned already", i);
	kiln_rot_free(rot);
	kiln_provision_outcome_cleanup(&out);
	return r;
}

static void *station(void *arg)
{
	struct run *run = arg;
	const struct kiln_client_opts co = { run->o->url, run->o->cert, run->o->key, run->o->ca, 0 };
	kiln_client *cl = NULL;
	kiln_diag d;

	for (;;) {
		unsigned i = __atomic_fetch_add(&run->next, 1, __ATOMIC_RELAXED);
		uint64_t t0;
		kiln_result r;

		if (i >= run->o->count)
			break;
		kiln_diag_clear(&d);
		t0 = kiln_mono_ns();
		r = cl == NULL ? kiln_client_new(&co, &cl, &d) : kiln_ok();
		if (kiln_is_ok(r))
			r = provision_one(cl, run, i, &d);
		if (run->fresh) {
			kiln_client_free(cl);
			cl = NULL;
		}
		run->lat[i] = kiln_mono_ns() - t0;
		if (kiln_is_ok(r)) {
			__atomic_fetch_add(&run->ok, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_fetch_add(&run->failed, 1, __ATOMIC_RELAXED) == 0) {
			(void)pthread_mutex_lock(&run->mu);
			fprintf(stderr, "bench: device %u: %s\n", i, d.text);
			(void)pthread_mutex_unlock(&run->mu);
		}
	}
	kiln_client_free(cl);
	return NULL;
}

/* One mode of one round. */
static int run_mode(const struct opts *o, unsigned round, bool fresh, struct result *res)
{
	struct run run = { .o = o, .fresh = fresh, .mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t th[MAX_THREADS];
	char tag[32];
	uint64_t t0, ns;
	double c0, s0;
	unsigned n = o->parallel;

	(void)snprintf(tag, sizeof(tag), "R%u%s", round, fresh ? "N" : "K");
	run.lat = calloc(o->count, sizeof(*run.lat));
	if (run.lat == NULL || create_devices(&run, tag) != 0) {
		free(run.lat);
		return -1;
	}
	c0 = self_cpu();
	s0 = server_cpu(o->server_pid);
	t0 = kiln_mono_ns();
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, station, &run) != 0)
			n = i;
	for (unsigned i = 0; i < n; i++)
		(void)pthread_join(th[i], NULL);
	ns = kiln_mono_ns() - t0;
	res->client_ms = (self_cpu() - c0) * 1e3 / o->count;
	res->server_ms = (server_cpu(o->server_pid) - s0) * 1e3 / o->count;
	res->rate = (double)run.ok * 1e9 / (double)ns;
	res->p50 = percentile_ms(run.lat, o->count, 50);
	res->p99 = percentile_ms(run.lat, o->count, 99);
	free(run.lat);
	if (run.failed != 0) {
		fprintf(stderr, "bench: %u of %u devices failed\n", run.failed, o->count);
		return -1;
	}
	return 0;
}

/*
 * The simulator alone, no network: per device what provision_one makes it do
 * (open the state, boot, CSR, evidence over a nonce), on one thread; CPU ms
 * per device. Splits "simulator+client" into the device and the client.
 */
static int sim_only(const struct opts *o, unsigned round, double *ms)
{
	struct run run = { .o = o };
	char tag[32];
	double c0;
	unsigned n = o->count < 200 ? o->count : 200;

	(void)snprintf(tag, sizeof(tag), "R%uS", round);
	if (create_devices(&run, tag) != 0)
		return -1;
	c0 = self_cpu();
	for (unsigned i = 0; i < n; i++) {
		uint8_t nonce[32];
		char dir[600];
		kiln_rot *rot = NULL;
		kiln_buf csr;
		json_t *ev = NULL;
		kiln_diag d;
		bool ok;

		kiln_diag_clear(&d);
		kiln_buf_init(&csr, 1 << 16);
		device_path(&run, i, dir, sizeof(dir));
		ok = kiln_is_ok(kiln_random(nonce, sizeof(nonce))) &&
		     kiln_is_ok(kiln_rot_open(dir, &rot, &d)) && kiln_is_ok(kiln_rot_csr(rot, &csr, &d)) &&
		     kiln_is_ok(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &ev, &d));
		json_decref(ev);
		kiln_buf_cleanup(&csr);
		kiln_rot_free(rot);
		if (!ok) {
			fprintf(stderr, "bench: simulator %s: %s\n", dir, d.text);
			return -1;
		}
	}
	*ms = (self_cpu() - c0) * 1e3 / n;
	return 0;
}

static void usage(void)
{
	fputs("usage: bench_provision --dir DIR --url URL --cert C --key K --ca CA --product P\n"
	      "                       --lot L --work DIR [--count N] [--parallel P] [--rounds R]\n"
	      "                       [--threads T] [--server-pid PID] [--only keep-alive|new-conn]\n",
	      stderr);
	exit(2);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	/*
	 * 16 stations: with 8, kiln serve's group commits held one or two
	 * devices each and the cores idled while they waited for fsync
	 * (docs/design-notes.md); --parallel P to compare.
	 */
	*o = (struct opts){ .count = 1000, .parallel = 16, .rounds = 3, .threads = 2 };
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i], *v = i + 1 < argc ? argv[++i] : NULL;
		const char **s = NULL;
		unsigned *u = NULL;
		uint64_t n;

		if (v == NULL)
			usage();
		if (strcmp(name, "--dir") == 0) s = &o->dir;
		else if (strcmp(name, "--url") == 0) s = &o->url;
		else if (strcmp(name, "--cert") == 0) s = &o->cert;
		else if (strcmp(name, "--key") == 0) s = &o->key;
		else if (strcmp(name, "--ca") == 0) s = &o->ca;
		else if (strcmp(name, "--product") == 0) s = &o->product;
		else if (strcmp(name, "--lot") == 0) s = &o->lot;
		else if (strcmp(name, "--work") == 0) s = &o->work;
		else if (strcmp(name, "--only") == 0) s = &o->only;
		else if (strcmp(name, "--count") == 0) u = &o->count;
		else if (strcmp(name, "--parallel") == 0) u = &o->parallel;
		else if (strcmp(name, "--rounds") == 0) u = &o->rounds;
		else if (strcmp(name, "--threads") == 0) u = &o->threads;
		else if (strcmp(name, "--server-pid") == 0) u = &o->server_pid;
		else
			usage();
		if (s != NULL) {
			*s = v;
			continue;
		}
		if (!kiln_is_ok(kiln_parse_u64(v, 4194304, &n)) || n == 0)
			usage();
		*u = (unsigned)n;
	}
	if (o->dir == NULL || o->url == NULL || o->cert == NULL || o->key == NULL ||
	    o->ca == NULL || o->product == NULL || o->lot == NULL || o->work == NULL ||
	    o->parallel > MAX_THREADS || o->threads > MAX_THREADS || o->rounds > 99 ||
	    (o->only != NULL && strcmp(o->only, "keep-alive") != 0 && strcmp(o->only, "new-conn") != 0))
		usage();
}

/* The deployment's HSM, opened as kiln does, for the raw SoftHSM2 baseline. */
static int open_hsm(const struct opts *o, struct deployment *dep, struct p11_shared *p11)
{
	struct cli_common c = { 0 };
	kiln_diag d;

	c.dir = o->dir;
	kiln_diag_clear(&d);
	if (!kiln_is_ok(deploy_open(&c, 0, dep, &d)) ||
	    !kiln_is_ok(deploy_token(dep, KILN_ENV_PRODUCTION, &d))) {
		fprintf(stderr, "bench: %s\n", d.text);
		return -1;
	}
	return p11_setup(dep, p11, "kiln-prod", "production-issuing");
}

static double med(const struct result *r, unsigned n, size_t off)
{
	double v[99];

	for (unsigned i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + off);
	return median(v, n);
}

#define MED(r, n, field) med(r, n, offsetof(struct result, field))

static void print_mode(const char *what, const struct result *r, unsigned n, bool cpu)
{
	printf("  %-30s %9.0f devices/s   p50 %.1f ms  p99 %.1f ms\n", what, MED(r, n, rate),
	       MED(r, n, p50), MED(r, n, p99));
	if (cpu) {
		double cl = MED(r, n, client_ms), sv = MED(r, n, server_ms);

		/* Cores the two processes kept busy: 2.00 is this machine saturated. */
		printf("  %-30s CPU per device: simulator+client %.2f ms, kiln serve %.2f ms "
		       "(cores busy %.2f)\n",
		       "", cl, sv, (cl + sv) * MED(r, n, rate) / 1e3);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	struct deployment dep;
	struct p11_shared p11 = { 0 };
	struct ossl_shared os = { 0 };
	X509_REQ *reqs[64];
	struct verify_shared vs = { reqs, 64 };
	double kg[99], sg[99], vf[99], hsm[99], floor_[99];
	struct result ka[99], nc[99];
	double sim[99];

	parse_args(argc, argv, &o);
	if (open_hsm(&o, &dep, &p11) != 0 || make_reqs(64, "FLOOR", reqs) != 0 ||
	    (os.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
		fprintf(stderr, "bench: setup failed\n");
		return 1;
	}
	printf("kiln bench_provision: %u devices per mode and round, %u parallel stations, "
	       "%u rounds; crypto baselines on %u threads\n",
	       o.count, o.parallel, o.rounds, o.threads);
	for (unsigned r = 0; r < o.rounds; r++) {
		unsigned ops = o.count * 2;

		kg[r] = run_threads(o.threads, ops, ossl_keygen_worker, NULL, NULL, NULL);
		sg[r] = run_threads(o.threads, ops, ossl_sign_worker, &os, NULL, NULL);
		vf[r] = run_threads(o.threads, ops, verify_worker, &vs, NULL, NULL);
		hsm[r] = run_threads(o.threads, ops, p11_sign_worker, &p11, NULL, NULL);
		floor_[r] = 1.0 / (2.0 / kg[r] + 3.0 / sg[r] + 3.0 / vf[r] + 1.0 / hsm[r]);
		if (sim_only(&o, r, &sim[r]) != 0)
			return 1;
		ka[r] = nc[r] = (struct result){ 0 };
		if ((o.only == NULL || strcmp(o.only, "keep-alive") == 0) &&
		    run_mode(&o, r, false, &ka[r]) != 0)
			return 1;
		if ((o.only == NULL || strcmp(o.only, "new-conn") == 0) && run_mode(&o, r, true, &nc[r]) != 0)
			return 1;
		printf("  round %u: floor %.0f/s  keep-alive %.0f/s (p50 %.1f ms, p99 %.1f ms)  "
		       "new-conn %.0f/s (p50 %.1f ms, p99 %.1f ms)\n",
		       r + 1, floor_[r], ka[r].rate, ka[r].p50, ka[r].p99, nc[r].rate, nc[r].p50,
		       nc[r].p99);
	}
	{
		unsigned n = o.rounds;
		double fl = median(floor_, n), k = MED(ka, n, rate), c = MED(nc, n, rate);

		printf("\nmedians over %u rounds:\n", n);
		printf("  P-256 keygen (DICE derivation) %9.0f /s\n", median(kg, n));
		printf("  P-256 sign (OpenSSL)           %9.0f /s\n", median(sg, n));
		printf("  P-256 verify (CSR)             %9.0f /s\n", median(vf, n));
		printf("  SoftHSM2 sign (PKCS#11)        %9.0f /s\n", median(hsm, n));
		printf("  crypto floor per device        %9.0f devices/s  (%.2f ms of CPU)\n", fl,
		       o.threads * 1e3 / fl);
		printf("  simulator alone (boot, CSR, evidence; no network) %.2f ms CPU per device\n",
		       median(sim, n));
		if (k > 0)
			print_mode("kiln, keep-alive", ka, n, o.server_pid != 0);
		if (c > 0)
			print_mode("kiln, new TLS connection each", nc, n, o.server_pid != 0);
		printf("\nratios:\n");
		if (k > 0)
			printf("  keep-alive / crypto floor      %.2f\n", k / fl);
		if (c > 0)
			printf("  new-conn / crypto floor        %.2f\n", c / fl);
		if (k > 0 && c > 0)
			printf("  new-conn / keep-alive          %.2f\n", c / k);
		if (k > 0)
			printf("  target: >= 1000 devices/s with keep-alive, simulator included: %s (%.0f)\n",
			       k >= 1000 ? "met" : "NOT met", k);
	}
	for (unsigned i = 0; i < 64; i++)
		X509_REQ_free(reqs[i]);
	EVP_PKEY_free(os.key);
	deploy_close(&dep);
	return 0;
}
