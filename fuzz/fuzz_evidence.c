/*
 * libFuzzer target for the attestation evidence parsers and the DICE
 * verifier behind them. Every input goes to:
 *   1. kiln_dice_tcb_info_parse (the DiceTcbInfo extension value),
 *   2. kiln_json_parse -> kiln_evidence_parse, and when that succeeds,
 *      kiln_attest_verify against a fixed DICE policy, and
 *   3. kiln_attest_verify with the input as the Alias certificate's DER (so
 *      certificate mutations reach the verifier without the base64 layer).
 * For (2) the input is either an evidence object itself, or a harness-only
 * envelope carrying what a finish request would (so the fuzzer can reach the
 * binding, vendor and firmware checks with a matching request):
 *   {"evidence": {...}, "csr": b64 DER, "nonce": b64 (32 bytes),
 *    "serial": "...", "vendor_root": PEM (optional)}
 * Seeds: fuzz/corpus/evidence/, made by the DICE simulator and the codec
 * tests: run tests/unit_agent_test_dice_sim and tests/unit_crypto_test_dice
 * of a build with KILN_FUZZ_SEEDS_OUT=DIR. evidence-*.json are evidence
 * objects (honest, each fault, unapproved firmware, vendor-endorsed),
 * request-*.json the same in envelopes, tcbinfo-*.der DiceTcbInfo values,
 * alias-*.der and deviceid-*.der certificates.
 *
 * Contract checks besides ASan/UBSan: a parse that succeeds re-encodes and
 * parses back to the same DiceTcbInfo; evidence parse failures leave the
 * record empty and one diag line with the same code; a successful
 * verification names a firmware the policy approves.
 */
#include "attest/attest.h"

#include <jansson.h>
#include <openssl/err.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536

/* widget.yaml's attestation section: the simulator's default image is approved. */
static const char policy_yaml[] =
	"product: widget\n"
	"environment: production\n"
	"keys:\n"
	"  - type: ec\n"
	"    curves: [p256]\n"
	"device_serial:\n"
	"  pattern: '^[A-Z0-9][A-Z0-9-]{3,63}$'\n"
	"subject:\n"
	"  CN: \"{serial}\"\n"
	"validity_days: 365\n"
	"key_usage: [digitalSignature]\n"
	"attestation:\n"
	"  type: dice\n"
	"  firmware:\n"
	"    - version: \"1.0.0\"\n"
	"      sha256: \"c8c9676e6bc05eb6553b1dc05178301a99dc147f6263dc1b493f40c59a69d32b\"\n";

/* A fixed P-256 key (SubjectPublicKeyInfo) for plain evidence objects. */
static const uint8_t fixed_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
	0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x89, 0x5b, 0xd4,
	0x9a, 0xd0, 0x73, 0xe5, 0xee, 0x0f, 0xaa, 0x50, 0x14, 0xcd, 0x03, 0xb7, 0xb7, 0xd7, 0xcc,
	0xc8, 0xbd, 0xac, 0x33, 0xea, 0x50, 0xd2, 0xfe, 0x5f, 0x16, 0x85, 0xcc, 0x6c, 0x2f, 0x54,
	0xdd, 0x2d, 0x38, 0xcf, 0xd6, 0x4e, 0x7c, 0x4b, 0x2b, 0x7f, 0x57, 0xc5, 0x14, 0x73, 0xa8,
	0x90, 0x6b, 0x19, 0x89, 0xf2, 0xdc, 0xce, 0x9c, 0xd9, 0x88, 0x7e, 0x51, 0x49, 0x48, 0xe1,
	0xbe,
};

/* Made once per process; a fuzz target has no caller to pass a context. */
static kiln_policy *policy;
static EVP_PKEY *fixed_key;

static void setup_once(void)
{
	const unsigned char *p = fixed_spki;

	if (policy != NULL)
		return;
	if (!kiln_is_ok(kiln_policy_parse(kiln_slice_str(policy_yaml), "fuzz.yaml", &policy, NULL)))
		__builtin_trap();
	fixed_key = d2i_PUBKEY(NULL, &p, (long)sizeof(fixed_spki));
	if (fixed_key == NULL)
		__builtin_trap();
}

static void check_diag(const kiln_diag *d, kiln_result r)
{
	if (d->code != r.code || d->text[0] == '\0' || strchr(d->text, '\n') != NULL)
		__builtin_trap();
}

/* ------------------------------------------------------------ DiceTcbInfo */

static bool same_tcb(const struct kiln_dice_tcb_info *a, const struct kiln_dice_tcb_info *b)
{
	if (strcmp(a->vendor, b->vendor) != 0 || strcmp(a->model, b->model) != 0 ||
	    strcmp(a->version, b->version) != 0 || a->has_svn != b->has_svn ||
	    a->has_layer != b->has_layer || a->has_index != b->has_index || a->svn != b->svn ||
	    a->layer != b->layer || a->index != b->index || a->n_fwids != b->n_fwids ||
	    a->has_flags != b->has_flags || a->flags != b->flags ||
	    a->has_vendor_info != b->has_vendor_info || a->vendor_info_len != b->vendor_info_len ||
	    memcmp(a->vendor_info, b->vendor_info, a->vendor_info_len) != 0 ||
	    a->has_type != b->has_type || a->type_len != b->type_len ||
	    memcmp(a->type, b->type, a->type_len) != 0)
		return false;
	for (size_t i = 0; i < a->n_fwids; i++)
		if (a->fwids[i].hash_nid != b->fwids[i].hash_nid || a->fwids[i].len != b->fwids[i].len ||
		    memcmp(a->fwids[i].digest, b->fwids[i].digest, a->fwids[i].len) != 0)
			return false;
	return true;
}

static void fuzz_tcb_info(kiln_slice in)
{
	struct kiln_dice_tcb_info t, again;
	kiln_diag d;
	kiln_result r;
	kiln_buf der;

	kiln_diag_clear(&d);
	r = kiln_dice_tcb_info_parse(in, &t, &d);
	if (!kiln_is_ok(r)) {
		check_diag(&d, r);
		if (t.n_fwids != 0 || t.vendor[0] != '\0' || t.has_layer)
			__builtin_trap();
		return;
	}
	if (t.n_fwids > KILN_DICE_MAX_FWIDS)
		__builtin_trap();
	kiln_buf_init(&der, KILN_DICE_TCB_INFO_MAX);
	if (!kiln_is_ok(kiln_dice_tcb_info_encode(&t, &der)) ||
	    !kiln_is_ok(kiln_dice_tcb_info_parse(kiln_buf_view(&der), &again, NULL)) ||
	    !same_tcb(&t, &again) || der.len > in.len)
		__builtin_trap();
	kiln_buf_cleanup(&der);
}

/* -------------------------------------------------------------- evidence */

/* The request a harness envelope describes; fields left NULL fall back to fixed ones. */
struct request {
	kiln_buf csr_der;
	kiln_csr *csr;
	uint8_t nonce[KILN_NONCE_LEN];
	const char *serial;
	const char *vendor_root;
};

static void request_from(const json_t *env, struct request *rq)
{
	const json_t *v;
	kiln_buf nonce;

	memset(rq->nonce, 0x4e, sizeof(rq->nonce));
	rq->serial = "SIM-000000000000";
	kiln_buf_init(&rq->csr_der, KILN_CSR_MAX_BYTES);
	rq->csr = NULL;
	rq->vendor_root = NULL;
	if (env == NULL)
		return;
	v = json_object_get(env, "csr");
	if (json_is_string(v) &&
	    kiln_is_ok(kiln_base64_decode(kiln_slice_of(json_string_value(v), json_string_length(v)),
					  &rq->csr_der)) &&
	    !kiln_is_ok(kiln_csr_parse(kiln_buf_view(&rq->csr_der), &rq->csr, NULL)))
		rq->csr = NULL;
	v = json_object_get(env, "nonce");
	kiln_buf_init(&nonce, KILN_NONCE_LEN);
	if (json_is_string(v) &&
	    kiln_is_ok(kiln_base64_decode(kiln_slice_of(json_string_value(v), json_string_length(v)),
					  &nonce)) &&
	    nonce.len == KILN_NONCE_LEN)
		memcpy(rq->nonce, nonce.ptr, KILN_NONCE_LEN);
	kiln_buf_cleanup(&nonce);
	v = json_object_get(env, "serial");
	if (json_is_string(v))
		rq->serial = json_string_value(v);
	v = json_object_get(env, "vendor_root");
	if (json_is_string(v))
		rq->vendor_root = json_string_value(v);
}

static void verify(const struct kiln_evidence *ev, const struct request *rq)
{
	static const uint8_t placeholder_csr[] = { 0x30, 0x00 };
	kiln_policy *p = policy;
	kiln_policy *with_root = NULL;
	struct kiln_attest_result res;
	struct kiln_attest_ctx ctx;
	kiln_diag d;
	kiln_result r;

	if (rq->vendor_root != NULL) {
		with_root = malloc(sizeof(*with_root));
		if (with_root == NULL)
			return;
		*with_root = *policy; /* shares priv; never freed through kiln_policy_free */
		with_root->attestation.vendor_roots[0] = (char *)rq->vendor_root;
		with_root->attestation.n_vendor_roots = 1;
		p = with_root;
	}
	ctx = (struct kiln_attest_ctx){
		.policy = p,
		.nonce = rq->nonce,
		.csr_der = rq->csr != NULL ? kiln_buf_view(&rq->csr_der)
					   : kiln_slice_of(placeholder_csr, sizeof(placeholder_csr)),
		.csr_key = rq->csr != NULL ? rq->csr->pkey : fixed_key,
		.device_serial = rq->serial,
		.now = 1800000000, /* fixed (2027-01-15): runs are reproducible */
	};
	kiln_diag_clear(&d);
	r = kiln_attest_verify(ev, &ctx, &res, &d);
	if (kiln_is_ok(r)) {
		if (res.type != KILN_ATTEST_DICE || !res.has_firmware ||
		    memcmp(res.firmware_sha256, p->attestation.firmware[0].sha256, 32) != 0)
			__builtin_trap();
	} else {
		check_diag(&d, r);
		if (res.has_firmware)
			__builtin_trap();
	}
	free(with_root);
}

static void fuzz_evidence(kiln_slice in)
{
	json_t *j = NULL;
	const json_t *evj, *inner;
	struct kiln_evidence ev;
	struct request rq;
	kiln_diag d;
	kiln_result r;

	if (!kiln_is_ok(kiln_json_parse(in, INPUT_MAX, &j, NULL)))
		return;
	inner = json_object_get(j, "evidence");
	evj = inner != NULL ? inner : j;
	kiln_evidence_init(&ev);
	kiln_diag_clear(&d);
	r = kiln_evidence_parse(evj, &ev, &d);
	if (kiln_is_ok(r)) {
		if (ev.type != KILN_ATTEST_DICE || ev.dice.alias_cert.len == 0 ||
		    ev.dice.signature.len == 0 || ev.dice.alias_cert.len > KILN_EVIDENCE_CERT_MAX ||
		    ev.dice.deviceid_cert.len > KILN_EVIDENCE_CERT_MAX ||
		    ev.dice.signature.len > KILN_EVIDENCE_SIG_MAX || d.code != KILN_OK)
			__builtin_trap();
		request_from(inner != NULL ? j : NULL, &rq);
		verify(&ev, &rq);
		kiln_csr_free(rq.csr);
		kiln_buf_cleanup(&rq.csr_der);
	} else {
		check_diag(&d, r);
		if (r.code != KILN_ERR_ATTEST_MALFORMED || ev.type != KILN_ATTEST_NONE ||
		    ev.dice.alias_cert.len != 0 || ev.dice.signature.len != 0)
			__builtin_trap();
	}
	kiln_evidence_cleanup(&ev);
	json_decref(j);
}

static void fuzz_alias_der(kiln_slice in)
{
	static const uint8_t sig[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };
	struct kiln_evidence ev;
	struct request rq;

	if (in.len == 0 || in.len > KILN_EVIDENCE_CERT_MAX || in.ptr[0] != KILN_DER_SEQUENCE)
		return;
	/* The extension lookup on its own: the verifier reaches it only past the signatures. */
	{
		struct kiln_dice_tcb_info t;
		X509 *x = NULL;
		kiln_diag d;
		kiln_result r;

		if (kiln_is_ok(kiln_cert_parse(in, &x, NULL))) {
			kiln_diag_clear(&d);
			r = kiln_dice_tcb_info_of(x, &t, &d);
			if (!kiln_is_ok(r))
				check_diag(&d, r);
			else if (t.n_fwids > KILN_DICE_MAX_FWIDS)
				__builtin_trap();
		}
		X509_free(x);
	}
	kiln_evidence_init(&ev);
	ev.type = KILN_ATTEST_DICE;
	if (kiln_is_ok(kiln_buf_append_slice(&ev.dice.alias_cert, in)) &&
	    kiln_is_ok(kiln_buf_append(&ev.dice.signature, sig, sizeof(sig)))) {
		request_from(NULL, &rq);
		verify(&ev, &rq);
		kiln_buf_cleanup(&rq.csr_der);
	}
	kiln_evidence_cleanup(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_slice in = kiln_slice_of(data, size);

	setup_once();
	fuzz_tcb_info(in);
	fuzz_evidence(in);
	fuzz_alias_der(in);
	ERR_clear_error();
	return 0;
}
