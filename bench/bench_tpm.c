/*
 * bench_tpm: TPM 2.0 devices attested per second, one device after another,
 * with kiln's verifier cost per device shown apart from the TPM simulator's.
 * bench/provision --rot tpm starts the swtpm (with an EK certificate from a
 * local manufacturer CA) and runs this with KILN_TPM_TCTI set.
 *
 * One "device" is the TPM side (ActivateCredential, PCR reads, Quote,
 * Certify, the CSR signed by TPM2_Sign) and kiln's side (MakeCredential with
 * the EK chain check, then evidence parse and verification: EK chain, AK,
 * activation binding, quote and certification signatures, PCRs, key). The
 * baseline, measured in the same run: raw OpenSSL ECDSA P-256 verifications,
 * the operation the verifier does twice per device. HTTP, the HSM signature
 * and the commit are bench/issue's subject, not this one's.
 *
 * usage: bench_tpm --state DIR --root PEM --intermediate PEM [--count N]
 */
#include "kiln/agent.h"
#include "agent/agent_impl.h"
#include "attest/attest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, kiln_result r, const kiln_diag *d)
{
	fprintf(stderr, "bench_tpm: %s: %s\n", what, kiln_diag_message(d, r));
	exit(1);
}

#define CHECK(what, expr)                           \
	do {                                        \
		kiln_result r_ = (expr);            \
		if (!kiln_is_ok(r_))                \
			die(what, r_, &d);          \
	} while (0)

static kiln_policy *policy_for(const char *root_path)
{
	kiln_buf pem, y;
	kiln_policy *p = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	CHECK("root", kiln_file_read(root_path, 65536, &pem, &d));
	kiln_buf_init(&y, 1 << 16);
	CHECK("policy", kiln_buf_append_str(&y,
		"product: gw-bench\nenvironment: test\nkeys:\n  - type: ec\n    curves: [p256]\n"
		"device_serial:\n  pattern: '^[A-Z0-9-]{4,32}$'\nsubject:\n  CN: \"{serial}\"\n"
		"validity_days: 365\nkey_usage: [digitalSignature]\nattestation:\n  type: tpm2\n"
		"  pcrs:\n    sha256:\n"
		"      0: 5fc17c2a52abb56ab3587cd1866c2470de8b34e2c6dde298e637d92f92f675cc\n"
		"      2: 4d4de53e5eed5b069cc2581db81ee7431e26276c520621f085423b74f3ef53f4\n"
		"      4: 6563f7f4df076aecad1b5a3b56433433315c2ed90a041092e6220d269ec2d2ac\n"
		"      7: 64cc1e268142d593b66ddfbbf592102920e6efc00f7dfa35fc8e0be864772e5c\n"
		"  ek_roots:\n    - |\n"));
	for (const char *s = kiln_buf_cstr(&pem); *s != '\0';) {
		const char *nl = strchr(s, '\n');
		size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);

		CHECK("policy", kiln_buf_append_str(&y, "      "));
		CHECK("policy", kiln_buf_append(&y, s, n));
		CHECK("policy", kiln_buf_append_str(&y, "\n"));
		s += n + (nl != NULL);
	}
	CHECK("policy", kiln_policy_parse(kiln_buf_view(&y), "bench.yaml", &p, &d));
	kiln_buf_cleanup(&y);
	kiln_buf_cleanup(&pem);
	return p;
}

/* Raw OpenSSL ECDSA P-256 verifications per second (the baseline). */
static double ecdsa_verify_rate(unsigned n)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t msg[128] = { 1 }, sig[128];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	double t0;

	EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k);
	EVP_DigestSign(m, sig, &sl, msg, sizeof(msg));
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		EVP_MD_CTX_reset(m);
		if (EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k) != 1 ||
		    EVP_DigestVerify(m, sig, sl, msg, sizeof(msg)) != 1)
			exit(1);
	}
	t0 = now_s() - t0;
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(k);
	return n / t0;
}

static void b64_set(json_t *o, const char *key, const kiln_buf *b)
{
	kiln_buf t;

	kiln_buf_init(&t, 8192);
	if (!kiln_is_ok(kiln_base64_encode(kiln_buf_view(b), &t)))
		exit(1);
	json_object_set_new(o, key, json_string(kiln_buf_cstr(&t)));
	kiln_buf_cleanup(&t);
}

static void b64_get(const json_t *o, const char *key, kiln_buf *out)
{
	const char *v = json_string_value(json_object_get(o, key));

	kiln_buf_reset(out);
	if (v != NULL && !kiln_is_ok(kiln_base64_decode(kiln_slice_str(v), out)))
		exit(1);
}

int main(int argc, char **argv)
{
	const char *state = NULL, *root = NULL, *inter = NULL;
	unsigned count = 50;
	double tpm_s = 0, kiln_s = 0, t, t_all, rate;
	kiln_policy *policy;
	kiln_rot *rot = NULL;
	kiln_buf ek, ic, ak, csr;
	kiln_diag d;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--state") == 0)
			state = argv[i + 1];
		else if (strcmp(argv[i], "--root") == 0)
			root = argv[i + 1];
		else if (strcmp(argv[i], "--intermediate") == 0)
			inter = argv[i + 1];
		else if (strcmp(argv[i], "--count") == 0)
			count = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (state == NULL || root == NULL || inter == NULL || count == 0) {
		fputs("usage: bench_tpm --state DIR --root PEM --intermediate PEM [--count N]\n", stderr);
		return 2;
	}
	setenv("TSS2_LOG", "all+NONE", 0);
	kiln_diag_clear(&d);
	policy = policy_for(root);
	{
		struct kiln_tpm_opts o = { "GW-BENCH", inter, NULL };

		CHECK("device init", kiln_rot_tpm_create(state, &o, &d));
	}
	CHECK("device boot", kiln_rot_open(state, &rot, &d));
	kiln_buf_init(&ek, 8192);
	kiln_buf_init(&ic, 8192);
	kiln_buf_init(&ak, 1024);
	kiln_buf_init(&csr, 65536);
	t_all = now_s();
	for (unsigned i = 0; i < count; i++) {
		uint8_t nonce[KILN_NONCE_LEN];
		struct kiln_tpm2_activation act;
		struct kiln_tpm2_activation_req areq;
		struct kiln_evidence ev;
		struct kiln_attest_result res;
		json_t *req = NULL, *resp = json_object(), *evj = NULL;

		CHECK("nonce", kiln_random(nonce, sizeof(nonce)));
		/* Device: the activation request, the CSR. */
		t = now_s();
		CHECK("activation request", kiln_rot_activation_request(rot, &req, &d));
		kiln_buf_reset(&csr);
		CHECK("csr", kiln_rot_csr(rot, &csr, &d));
		tpm_s += now_s() - t;
		/* kiln: MakeCredential. */
		t = now_s();
		b64_get(req, "ek_cert", &ek);
		b64_get(req, "ek_intermediate", &ic);
		b64_get(req, "ak_public", &ak);
		areq = (struct kiln_tpm2_activation_req){ kiln_buf_view(&ek), kiln_buf_view(&ic),
							  kiln_buf_view(&ak) };
		kiln_tpm2_activation_init(&act);
		CHECK("make credential", kiln_tpm2_activation_make(policy, &areq, 0, &act, &d));
		b64_set(resp, "credential", &act.credential);
		b64_set(resp, "encrypted_secret", &act.encrypted_secret);
		json_object_set_new(resp, "pcrs", json_pack("{s:[i,i,i,i]}", "sha256", 0, 2, 4, 7));
		kiln_s += now_s() - t;
		/* Device: ActivateCredential, quote, certify. */
		t = now_s();
		CHECK("activate", kiln_rot_activate(rot, resp, &d));
		CHECK("evidence", kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &evj, &d));
		tpm_s += now_s() - t;
		/* kiln: parse and verify. */
		t = now_s();
		kiln_evidence_init(&ev);
		CHECK("evidence parse", kiln_evidence_parse(evj, &ev, &d));
		{
			kiln_csr *c = NULL;
			struct kiln_attest_ctx ctx;

			CHECK("csr parse", kiln_csr_parse(kiln_buf_view(&csr), &c, &d));
			ctx = (struct kiln_attest_ctx){ policy, nonce, kiln_buf_view(&csr), c->pkey,
							"GW-BENCH", 0, act.binding_sha256 };
			CHECK("verify", kiln_attest_verify(&ev, &ctx, &res, &d));
			kiln_csr_free(c);
		}
		kiln_s += now_s() - t;
		kiln_evidence_cleanup(&ev);
		kiln_tpm2_activation_cleanup(&act);
		json_decref(req);
		json_decref(resp);
		json_decref(evj);
	}
	t_all = now_s() - t_all;
	rate = ecdsa_verify_rate(2000);
	printf("bench/provision --rot tpm: %u devices, one swtpm, one at a time\n", count);
	printf("  devices attested per second      %8.1f  (TPM side + kiln side, no HTTP/HSM)\n",
	       count / t_all);
	printf("  TPM simulator per device (ms)    %8.2f  (%.0f%% of the time)\n",
	       1e3 * tpm_s / count, 100 * tpm_s / (tpm_s + kiln_s));
	printf("  kiln verifier per device (ms)    %8.2f  (%.0f%%: MakeCredential, parse, verify)\n",
	       1e3 * kiln_s / count, 100 * kiln_s / (tpm_s + kiln_s));
	printf("  kiln verifier capacity           %8.1f  devices/s on one core\n", count / kiln_s);
	printf("  baseline: raw P-256 verify       %8.1f  /s; verifier cost per device = %.1f raw verifies\n",
	       rate, (kiln_s / count) * rate);
	kiln_rot_free(rot);
	kiln_policy_free(policy);
	kiln_buf_cleanup(&ek);
	kiln_buf_cleanup(&ic);
	kiln_buf_cleanup(&ak);
	kiln_buf_cleanup(&csr);
	return 0;
}
