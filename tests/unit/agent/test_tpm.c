/*
 * Unit tests for src/agent/tpm.c against a real swtpm (started here, with an
 * EK certificate from a local TPM manufacturer CA made by swtpm_localca):
 * device creation and measured boot, the CSR signed inside the TPM, the
 * activation round trip through the real MakeCredential (attest/tpm2.c) and
 * ActivateCredential, and evidence the real verifier accepts. Without a TPM
 * named, or with an unreachable one, each call fails with one clear line.
 */
#include "support/support.h"

#include "agent/agent_impl.h"
#include "attest/attest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
	char *dir;
	char tcti[128];
	kiln_policy *policy;
};

static const char pcrs_yaml[] =
	"  pcrs:\n    sha256:\n"
	"      0: 5fc17c2a52abb56ab3587cd1866c2470de8b34e2c6dde298e637d92f92f675cc\n"
	"      2: 4d4de53e5eed5b069cc2581db81ee7431e26276c520621f085423b74f3ef53f4\n"
	"      4: 6563f7f4df076aecad1b5a3b56433433315c2ed90a041092e6220d269ec2d2ac\n"
	"      7: 64cc1e268142d593b66ddfbbf592102920e6efc00f7dfa35fc8e0be864772e5c\n";

static kiln_policy *policy_with_root(const char *root_pem_path)
{
	kiln_buf y, pem;
	kiln_policy *p = NULL;
	kiln_diag d;

	kt_read_file(root_pem_path, &pem);
	kiln_buf_init(&y, 1 << 16);
	KT_OK(kiln_buf_append_str(&y, "product: gw-test\nenvironment: test\nkeys:\n  - type: ec\n"
				      "    curves: [p256]\ndevice_serial:\n  pattern: '^[A-Z0-9-]{4,32}$'\n"
				      "subject:\n  CN: \"{serial}\"\nvalidity_days: 365\n"
				      "key_usage: [digitalSignature]\nattestation:\n  type: tpm2\n"));
	KT_OK(kiln_buf_append_str(&y, pcrs_yaml));
	KT_OK(kiln_buf_append_str(&y, "  ek_roots:\n    - |\n"));
	for (const char *s = kiln_buf_cstr(&pem); *s != '\0';) {
		const char *nl = strchr(s, '\n');
		size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);

		KT_OK(kiln_buf_append_str(&y, "      "));
		KT_OK(kiln_buf_append(&y, s, n));
		KT_OK(kiln_buf_append_str(&y, "\n"));
		s += n + (nl != NULL);
	}
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_buf_view(&y), "gw.yaml", &p, &d)))
		fail_msg("policy: %s", d.text);
	kiln_buf_cleanup(&y);
	kiln_buf_cleanup(&pem);
	return p;
}

/* A loopback port nobody listens on now (and the next one, for swtpm's control channel). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port > 0 && port < 65535 ? port : 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int port = 0, rc = 1;
	char *root;

	f->dir = kt_tmpdir("tpm");
	assert_int_equal(kt_system("cd '%s' && mkdir -p ca st && "
				   "printf 'statedir = %%s/ca\\nsigningkey = %%s/ca/sk.pem\\nissuercert = %%s/ca/ic.pem\\ncertserial = %%s/ca/serial\\n' $PWD $PWD $PWD $PWD >localca.conf && "
				   "printf -- '--platform-manufacturer kiln-test\\n--platform-version 2.1\\n--platform-model swtpm\\n' >localca.options && "
				   "printf 'create_certs_tool = /usr/bin/swtpm_localca\\ncreate_certs_tool_config = %%s/localca.conf\\ncreate_certs_tool_options = %%s/localca.options\\n' $PWD $PWD >setup.conf && "
				   "swtpm_setup --tpm2 --tpmstate st --create-ek-cert --config setup.conf --overwrite >setup.log 2>&1 || { cat setup.log >&2; false; }",
				   f->dir),
			 0);
	/* Another test may take the port between the probe and swtpm's bind: try again. */
	for (int tries = 0; tries < 5 && rc != 0; tries++) {
		port = free_port();
		rc = port == 0 ? 1 : kt_system("cd '%s' && swtpm socket --tpm2 --tpmstate dir=$PWD/st "
					       "--server type=tcp,port=%d,bindaddr=127.0.0.1 "
					       "--ctrl type=tcp,port=%d,bindaddr=127.0.0.1 "
					       "--flags not-need-init,startup-clear --daemon --pid file=$PWD/swtpm.pid",
					       f->dir, port, port + 1);
	}
	assert_int_equal(rc, 0);
	(void)snprintf(f->tcti, sizeof(f->tcti), "swtpm:host=127.0.0.1,port=%d", port);
	root = kt_path(f->dir, "ca/swtpm-localca-rootca-cert.pem");
	f->policy = policy_with_root(root);
	free(root);
	setenv("TSS2_LOG", "all+NONE", 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f == NULL)
		return 0;
	(void)kt_system("kill $(cat '%s/swtpm.pid') 2>/dev/null", f->dir);
	kiln_policy_free(f->policy);
	kt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void test_no_tpm(void **state)
{
	struct fx *f = *state;
	char *dir = kt_path(f->dir, "none");
	kiln_diag d;

	unsetenv("KILN_TPM_TCTI");
	unsetenv("TPM2TOOLS_TCTI");
	unsetenv("TSS2_TCTI");
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_tpm_create(dir, NULL, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "set KILN_TPM_TCTI"));
	setenv("KILN_TPM_TCTI", "swtpm:host=127.0.0.1,port=1", 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_tpm_create(dir, NULL, &d), KILN_ERR_IO);
	assert_null(strchr(d.text, '\n'));
	free(dir);
}

static void test_device_end_to_end(void **state)
{
	struct fx *f = *state;
	char *dir = kt_path(f->dir, "dev");
	char *inter = kt_path(f->dir, "ca/ic.pem");
	struct kiln_tpm_opts o = { "GW-0001", inter, NULL };
	struct kiln_tpm2_activation act;
	struct kiln_tpm2_activation_req areq;
	struct kiln_evidence ev;
	struct kiln_attest_result res;
	uint8_t nonce[KILN_NONCE_LEN];
	kiln_buf csr, ek, ak, b64a, b64b, ic;
	json_t *req = NULL, *resp = NULL, *evj = NULL;
	kiln_csr *parsed = NULL;
	kiln_rot *rot = NULL;
	kiln_diag d;

	setenv("KILN_TPM_TCTI", f->tcti, 1);
	kiln_diag_clear(&d);
	KT_ERR(kiln_rot_tpm_create(dir, &(struct kiln_tpm_opts){ NULL, NULL, "kernel" }, &d),
	       KILN_ERR_ARG);
	assert_non_null(strstr(d.text, "no boot stage 'kernel'"));
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_rot_tpm_create(dir, &o, &d)))
		fail_msg("create: %s", d.text);
	KT_ERR(kiln_rot_tpm_create(dir, &o, &d), KILN_ERR_EXISTS);
	KT_OK(kiln_rot_open(dir, &rot, &d));
	assert_string_equal(kiln_rot_type(rot), "tpm");
	assert_string_equal(kiln_rot_serial(rot), "GW-0001");
	assert_true(kiln_rot_needs_activation(rot));
	assert_int_equal(kiln_rot_inject(rot, "no-such-fault").code, KILN_ERR_ARG);

	/* The CSR is signed inside the TPM, for the TPM's identity key. */
	kiln_buf_init(&csr, 65536);
	KT_OK(kiln_rot_csr(rot, &csr, &d));
	KT_OK(kiln_csr_parse(kiln_buf_view(&csr), &parsed, &d));
	assert_int_equal(EVP_PKEY_eq(parsed->pkey, kiln_rot_public_key(rot)), 1);

	/* Evidence needs activation first. */
	memset(nonce, 0x3c, sizeof(nonce));
	KT_ERR(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &evj, &d), KILN_ERR_ARG);

	/* The round trip: the server's MakeCredential, the TPM's ActivateCredential. */
	KT_OK(kiln_rot_activation_request(rot, &req, &d));
	kiln_buf_init(&ek, 8192);
	kiln_buf_init(&ak, 1024);
	KT_OK(kiln_base64_decode(kiln_slice_str(json_string_value(json_object_get(req, "ek_cert"))), &ek));
	KT_OK(kiln_base64_decode(kiln_slice_str(json_string_value(json_object_get(req, "ak_public"))), &ak));
	kiln_buf_init(&ic, 8192);
	kiln_tpm2_activation_init(&act);
	KT_OK(kiln_base64_decode(kiln_slice_str(json_string_value(json_object_get(req, "ek_intermediate"))), &ic));
	areq = (struct kiln_tpm2_activation_req){ kiln_buf_view(&ek), kiln_slice_of(NULL, 0),
						  kiln_buf_view(&ak) };
	/* Without the EK's issuer the chain to the manufacturer's root is incomplete. */
	KT_ERR(kiln_tpm2_activation_make(f->policy, &areq, 0, &act, &d), KILN_ERR_ATTEST_EK);
	areq.ek_intermediate = kiln_buf_view(&ic);
	kiln_diag_clear(&d);
	KT_OK(kiln_tpm2_activation_make(f->policy, &areq, 0, &act, &d));
	kiln_buf_init(&b64a, 4096);
	kiln_buf_init(&b64b, 4096);
	KT_OK(kiln_base64_encode(kiln_buf_view(&act.credential), &b64a));
	KT_OK(kiln_base64_encode(kiln_buf_view(&act.encrypted_secret), &b64b));
	resp = json_pack("{s:s,s:s,s:{s:[i,i,i,i]}}", "credential", kiln_buf_cstr(&b64a),
			 "encrypted_secret", kiln_buf_cstr(&b64b), "pcrs", "sha256", 0, 2, 4, 7);
	KT_OK(kiln_rot_activate(rot, resp, &d));

	/* Evidence the verifier accepts, bound to this activation. */
	KT_OK(kiln_rot_evidence(rot, nonce, kiln_buf_view(&csr), &evj, &d));
	kiln_evidence_init(&ev);
	KT_OK(kiln_evidence_parse(evj, &ev, &d));
	{
		struct kiln_attest_ctx ctx = { f->policy, nonce, kiln_buf_view(&csr), parsed->pkey,
					       "GW-0001", 0, act.binding_sha256 };

		KT_OK(kiln_attest_verify(&ev, &ctx, &res, &d));
		assert_int_equal(res.type, KILN_ATTEST_TPM2);
		/* Another nonce: the same evidence is a replay. */
		nonce[0] ^= 1;
		kiln_diag_clear(&d);
		KT_ERR(kiln_attest_verify(&ev, &ctx, &res, &d), KILN_ERR_ATTEST_NONCE);
	}
	kiln_evidence_cleanup(&ev);
	kiln_tpm2_activation_cleanup(&act);
	kiln_buf_cleanup(&b64a);
	kiln_buf_cleanup(&b64b);
	kiln_buf_cleanup(&ek);
	kiln_buf_cleanup(&ak);
	kiln_buf_cleanup(&ic);
	kiln_buf_cleanup(&csr);
	free(inter);
	kiln_csr_free(parsed);
	json_decref(req);
	json_decref(resp);
	json_decref(evj);
	kiln_rot_free(rot);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_tpm),
		cmocka_unit_test(test_device_end_to_end),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
