/*
 * Unit tests for src/attest/tpm2.c: the TPM 2.0 verifier and the server's
 * MakeCredential. Evidence is built here in software, structure by structure
 * (tss2-mu marshaling, OpenSSL keys standing in for the TPM's), so that every
 * check can be made to fail alone. The same verifier against real swtpm
 * instances is tests/integration/test_tpm.sh.
 */
#include "support/support.h"

#include "attest/attest_impl.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#define RESIDENT (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN)

static const uint8_t golden[4][32] = { { 0x10 }, { 0x12 }, { 0x14 }, { 0x17 } };
static const unsigned golden_idx[4] = { 0, 2, 4, 7 };

struct fx {
	EVP_PKEY *ek, *ak, *key, *other;
	X509 *ek_cert;
	kiln_buf ek_der;
	kiln_policy *policy;
	uint8_t nonce[KILN_NONCE_LEN];
	uint8_t secret[32];
};

/* ------------------------------------------------------------ building evidence */

static TPM2B_PUBLIC tpm_public(EVP_PKEY *k, TPMA_OBJECT attrs)
{
	TPM2B_PUBLIC p;
	uint8_t pt[65];
	size_t n = 0;

	memset(&p, 0, sizeof(p));
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n), 1);
	assert_int_equal(n, 65);
	p.publicArea.type = TPM2_ALG_ECC;
	p.publicArea.nameAlg = TPM2_ALG_SHA256;
	p.publicArea.objectAttributes = attrs;
	p.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	p.publicArea.unique.ecc.x.size = 32;
	memcpy(p.publicArea.unique.ecc.x.buffer, pt + 1, 32);
	p.publicArea.unique.ecc.y.size = 32;
	memcpy(p.publicArea.unique.ecc.y.buffer, pt + 33, 32);
	return p;
}

static void put_public(kiln_buf *b, EVP_PKEY *k, TPMA_OBJECT attrs, uint8_t name[34])
{
	TPM2B_PUBLIC p = tpm_public(k, attrs);
	uint8_t buf[1024];
	size_t off = 0;

	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	kiln_buf_reset(b);
	KT_OK(kiln_buf_append(b, buf, off));
	name[0] = 0x00;
	name[1] = 0x0b;
	assert_int_equal(EVP_Digest(buf + 2, off - 2, name + 2, NULL, EVP_sha256(), NULL), 1);
}

static void put_attest(kiln_buf *b, const TPMS_ATTEST *a)
{
	uint8_t buf[2048];
	size_t off = 0;

	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(a, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	kiln_buf_reset(b);
	KT_OK(kiln_buf_append(b, buf, off));
}

/* An ECDSA TPMT_SIGNATURE by k over SHA-256(msg). */
static void put_sig(kiln_buf *b, EVP_PKEY *k, const kiln_buf *msg)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	uint8_t der[128], buf[256];
	size_t n = sizeof(der), off = 0;
	const unsigned char *p = der;
	ECDSA_SIG *es;
	TPMT_SIGNATURE s;

	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(m, der, &n, msg->ptr, msg->len), 1);
	EVP_MD_CTX_free(m);
	es = d2i_ECDSA_SIG(NULL, &p, (long)n);
	assert_non_null(es);
	memset(&s, 0, sizeof(s));
	s.sigAlg = TPM2_ALG_ECDSA;
	s.signature.ecdsa.hash = TPM2_ALG_SHA256;
	s.signature.ecdsa.signatureR.size =
		(UINT16)BN_bn2bin(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer);
	s.signature.ecdsa.signatureS.size =
		(UINT16)BN_bn2bin(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer);
	ECDSA_SIG_free(es);
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	kiln_buf_reset(b);
	KT_OK(kiln_buf_append(b, buf, off));
}

/* The documented activation binding (attest.h), computed independently of tpm2.c. */
static void binding(const uint8_t secret[32], const uint8_t name[34], const kiln_buf *ek,
		    uint8_t out[32])
{
	uint8_t msg[24 + 32 + 2 + 34 + 32];

	memcpy(msg, "KILN-TPM2-ACTIVATION-V1", 24);
	memcpy(msg + 24, secret, 32);
	msg[56] = 0;
	msg[57] = 34;
	memcpy(msg + 58, name, 34);
	assert_int_equal(EVP_Digest(ek->ptr, ek->len, msg + 92, NULL, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_Digest(msg, sizeof(msg), out, NULL, EVP_sha256(), NULL), 1);
}

struct opts {
	TPMA_OBJECT key_attrs;
	bool quote_other_nonce, pcr_tampered, quote_by_other, certify_other_name;
};

/* Evidence as a TPM holding fx's AK and key would make it. */
static void build(struct fx *f, const struct opts *o, struct kiln_evidence *ev, uint8_t ak_name[34])
{
	TPMS_ATTEST q, c;
	uint8_t key_name[34], vals[4 * 32];

	kiln_evidence_init(ev);
	ev->type = KILN_ATTEST_TPM2;
	KT_OK(kiln_buf_append_slice(&ev->tpm2.ek_cert, kiln_buf_view(&f->ek_der)));
	put_public(&ev->tpm2.ak_public, f->ak,
		   RESIDENT | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
			   TPMA_OBJECT_USERWITHAUTH,
		   ak_name);
	put_public(&ev->tpm2.key_public, f->key,
		   o->key_attrs != 0 ? o->key_attrs
				     : RESIDENT | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
		   key_name);
	for (size_t i = 0; i < 4; i++)
		memcpy(vals + 32 * i, golden[i], 32);
	if (o->pcr_tampered)
		vals[2 * 32] ^= 0xff; /* PCR 4 */
	KT_OK(kiln_buf_append(&ev->tpm2.pcr_values, vals, sizeof(vals)));
	memset(&q, 0, sizeof(q));
	q.magic = TPM2_GENERATED_VALUE;
	q.type = TPM2_ST_ATTEST_QUOTE;
	q.extraData.size = KILN_NONCE_LEN;
	memcpy(q.extraData.buffer, f->nonce, KILN_NONCE_LEN);
	if (o->quote_other_nonce)
		q.extraData.buffer[0] ^= 1;
	q.attested.quote.pcrSelect.count = 1;
	q.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
	q.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
	q.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x95; /* 0, 2, 4, 7 */
	q.attested.quote.pcrDigest.size = 32;
	assert_int_equal(EVP_Digest(vals, sizeof(vals), q.attested.quote.pcrDigest.buffer, NULL,
				    EVP_sha256(), NULL), 1);
	put_attest(&ev->tpm2.quote, &q);
	put_sig(&ev->tpm2.quote_signature, o->quote_by_other ? f->other : f->ak, &ev->tpm2.quote);
	memset(&c, 0, sizeof(c));
	c.magic = TPM2_GENERATED_VALUE;
	c.type = TPM2_ST_ATTEST_CERTIFY;
	c.extraData = q.extraData;
	c.extraData.buffer[0] = f->nonce[0];
	c.attested.certify.name.size = 34;
	memcpy(c.attested.certify.name.name, key_name, 34);
	if (o->certify_other_name)
		c.attested.certify.name.name[5] ^= 1;
	put_attest(&ev->tpm2.certify, &c);
	put_sig(&ev->tpm2.certify_signature, f->ak, &ev->tpm2.certify);
	KT_OK(kiln_buf_append(&ev->tpm2.secret, f->secret, 32));
}

static kiln_result verify(struct fx *f, const struct opts *o, EVP_PKEY *csr_key, bool activated,
			  kiln_diag *d)
{
	static const uint8_t csr[] = { 0x30, 0x00 };
	struct kiln_evidence ev;
	struct kiln_attest_result res;
	uint8_t name[34], act[32];
	struct kiln_attest_ctx ctx = { .policy = f->policy, .nonce = f->nonce,
				       .csr_der = kiln_slice_of(csr, sizeof(csr)),
				       .csr_key = csr_key != NULL ? csr_key : f->key,
				       .device_serial = "GW-1", .now = 0 };
	kiln_result r;

	build(f, o, &ev, name);
	binding(f->secret, name, &f->ek_der, act);
	ctx.activation_sha256 = activated ? act : NULL;
	kiln_diag_clear(d);
	r = kiln_attest_verify(&ev, &ctx, &res, d);
	if (kiln_is_ok(r))
		assert_int_equal(res.type, KILN_ATTEST_TPM2);
	kiln_evidence_cleanup(&ev);
	return r;
}

/* ------------------------------------------------------------ fixture */

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"tpm maker", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unsigned char *der = NULL;
	char *yaml = NULL, *pem_text = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	size_t yl;
	kiln_diag d;
	FILE *m;
	int n;

	f->ek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	f->ak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f->other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	/* The EK certificate is its own root here: the chain rule is what is under test. */
	f->ek_cert = self_signed(f->ek);
	n = i2d_X509(f->ek_cert, &der);
	kiln_buf_init(&f->ek_der, 8192);
	KT_OK(kiln_buf_append(&f->ek_der, der, (size_t)n));
	OPENSSL_free(der);
	PEM_write_bio_X509(bio, f->ek_cert);
	BIO_write(bio, "\0", 1);
	BIO_get_mem_data(bio, &pem_text);
	m = open_memstream(&yaml, &yl);
	fprintf(m, "product: gw-test\nenvironment: test\nkeys:\n  - type: ec\n    curves: [p256]\n"
		   "device_serial:\n  pattern: '^[A-Z0-9-]{4,32}$'\nsubject:\n  CN: \"{serial}\"\n"
		   "validity_days: 365\nkey_usage: [digitalSignature]\nattestation:\n  type: tpm2\n"
		   "  pcrs:\n    sha256:\n");
	for (size_t i = 0; i < 4; i++) {
		char hex[65];

		kiln_hex_encode(golden[i], 32, hex);
		fprintf(m, "      %u: %s\n", golden_idx[i], hex);
	}
	fprintf(m, "  ek_roots:\n    - |\n");
	for (const char *p = pem_text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);

		fprintf(m, "      %.*s\n", len, p);
		p += len + (nl != NULL);
	}
	fclose(m);
	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_policy_parse(kiln_slice_str(yaml), "gw.yaml", &f->policy, &d)))
		fail_msg("policy: %s", d.text);
	free(yaml);
	BIO_free(bio);
	memset(f->nonce, 0x5a, sizeof(f->nonce));
	memset(f->secret, 0xc3, sizeof(f->secret));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	EVP_PKEY_free(f->ek);
	EVP_PKEY_free(f->ak);
	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->other);
	X509_free(f->ek_cert);
	kiln_buf_cleanup(&f->ek_der);
	kiln_policy_free(f->policy);
	free(f);
	return 0;
}

/* ------------------------------------------------------------ tests */

/* With KILN_FUZZ_SEEDS_OUT=DIR: the honest evidence, framed as fuzz/fuzz_tpm2.c reads it. */
static void write_seed(struct fx *f)
{
	const char *dir = getenv("KILN_FUZZ_SEEDS_OUT");
	struct opts o = { 0 };
	struct kiln_evidence ev;
	uint8_t name[34];
	kiln_buf out;
	char *path;

	if (dir == NULL)
		return;
	build(f, &o, &ev, name);
	kiln_buf_init(&out, 65536);
	{
		const kiln_buf *parts[8] = { &ev.tpm2.ak_public, &ev.tpm2.key_public, &ev.tpm2.quote,
					     &ev.tpm2.certify, &ev.tpm2.quote_signature,
					     &ev.tpm2.certify_signature, &ev.tpm2.pcr_values,
					     &ev.tpm2.secret };

		for (size_t i = 0; i < 8; i++) {
			uint8_t be[2] = { (uint8_t)(parts[i]->len >> 8), (uint8_t)parts[i]->len };

			KT_OK(kiln_buf_append(&out, be, 2));
			KT_OK(kiln_buf_append_slice(&out, kiln_buf_view(parts[i])));
		}
	}
	path = kt_path(dir, "tpm2-honest.bin");
	kt_write_file(path, out.ptr, out.len);
	free(path);
	kiln_buf_cleanup(&out);
	kiln_evidence_cleanup(&ev);
}

static void test_good_evidence(void **state)
{
	struct opts o = { 0 };
	kiln_diag d;

	KT_OK(verify(*state, &o, NULL, true, &d));
	write_seed(*state);
}

static void test_each_check_refuses(void **state)
{
	struct fx *f = *state;
	struct opts o;
	kiln_diag d;

	memset(&o, 0, sizeof(o));
	KT_ERR(verify(f, &o, NULL, false, &d), KILN_ERR_ATTEST_ACTIVATION);
	assert_non_null(strstr(d.text, "provision/activate"));
	f->secret[0] ^= 1;
	{
		/* The device returns another secret than the one the binding was made of. */
		struct kiln_evidence ev;
		struct kiln_attest_result res;
		uint8_t name[34], act[32];
		static const uint8_t csr[] = { 0x30, 0x00 };
		struct kiln_attest_ctx ctx = { f->policy, f->nonce, kiln_slice_of(csr, 2), f->key,
					       "GW-1", 0, act };

		build(f, &o, &ev, name);
		f->secret[0] ^= 1;
		binding(f->secret, name, &f->ek_der, act);
		kiln_diag_clear(&d);
		KT_ERR(kiln_attest_verify(&ev, &ctx, &res, &d), KILN_ERR_ATTEST_ACTIVATION);
		assert_non_null(strstr(d.text, "not in the EK's TPM"));
		kiln_evidence_cleanup(&ev);
	}
	o = (struct opts){ .quote_other_nonce = true };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_NONCE);
	o = (struct opts){ .pcr_tampered = true };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_PCR);
	assert_non_null(strstr(d.text, "PCR 4 is"));
	o = (struct opts){ .quote_by_other = true };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_SIGNATURE);
	o = (struct opts){ .key_attrs = TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_RESIDENCY);
	assert_non_null(strstr(d.text, "lacks fixedTPM fixedParent"));
	o = (struct opts){ .key_attrs = RESIDENT | TPMA_OBJECT_DECRYPT };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_RESIDENCY);
	o = (struct opts){ .certify_other_name = true };
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_KEY);
	o = (struct opts){ 0 };
	KT_ERR(verify(f, &o, f->other, true, &d), KILN_ERR_ATTEST_KEY);
	assert_string_equal(d.text, "the CSR's key is not the key the TPM certified");
}

/* A tpm2 policy naming firmware digests would look appraised but is not: refused. */
static void test_unappraised_policy_keys(void **state)
{
	struct fx *f = *state;
	struct opts o = { 0 };
	kiln_diag d;

	f->policy->attestation.n_firmware = 1;
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_CONFIG);
	assert_non_null(strstr(d.text, "remove firmware and vendor_roots"));
	f->policy->attestation.n_firmware = 0;
}

static void test_untrusted_ek(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	X509 *x = self_signed(k);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	struct opts o = { 0 };
	kiln_buf saved = f->ek_der;
	kiln_diag d;

	kiln_buf_init(&f->ek_der, 8192);
	KT_OK(kiln_buf_append(&f->ek_der, der, (size_t)n));
	KT_ERR(verify(f, &o, NULL, true, &d), KILN_ERR_ATTEST_EK);
	assert_non_null(strstr(d.text, "does not chain to a TPM manufacturer root of policy gw-test"));
	kiln_buf_cleanup(&f->ek_der);
	f->ek_der = saved;
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Every structure: cut short, or with a byte after it, is refused naming the member. */
static void test_truncated_and_trailing(void **state)
{
	struct fx *f = *state;
	static const char *const members[] = { "ak_public", "key_public", "quote", "certify",
					       "quote_signature", "certify_signature" };
	struct opts o = { 0 };
	struct kiln_tpm2_parsed *t = calloc(1, sizeof(*t));
	struct kiln_evidence ev;
	uint8_t name[34];
	kiln_diag d;

	for (size_t i = 0; i < 6; i++) {
		for (int trailing = 0; trailing < 2; trailing++) {
			kiln_buf *b;

			build(f, &o, &ev, name);
			b = i == 0 ? &ev.tpm2.ak_public : i == 1 ? &ev.tpm2.key_public
				: i == 2 ? &ev.tpm2.quote : i == 3 ? &ev.tpm2.certify
				: i == 4 ? &ev.tpm2.quote_signature : &ev.tpm2.certify_signature;
			if (trailing)
				KT_OK(kiln_buf_append(b, "\0", 1));
			else
				b->len -= 3;
			kiln_diag_clear(&d);
			KT_ERR(kiln_tpm2_parse(&ev.tpm2, t, &d), KILN_ERR_ATTEST_MALFORMED);
			if (strstr(d.text, members[i]) == NULL)
				fail_msg("%s: %s", members[i], d.text);
			kiln_evidence_cleanup(&ev);
		}
	}
	/* A quote that is a certification, and a secret of the wrong size. */
	build(f, &o, &ev, name);
	kiln_buf_reset(&ev.tpm2.quote);
	KT_OK(kiln_buf_append_slice(&ev.tpm2.quote, kiln_buf_view(&ev.tpm2.certify)));
	kiln_diag_clear(&d);
	KT_ERR(kiln_tpm2_parse(&ev.tpm2, t, &d), KILN_ERR_ATTEST_MALFORMED);
	assert_non_null(strstr(d.text, "is not a quote"));
	kiln_evidence_cleanup(&ev);
	build(f, &o, &ev, name);
	ev.tpm2.secret.len = 16;
	KT_ERR(kiln_tpm2_parse(&ev.tpm2, t, &d), KILN_ERR_ATTEST_MALFORMED);
	kiln_evidence_cleanup(&ev);
	free(t);
}

/* MakeCredential: the seed decrypts with the EK (OAEP, label IDENTITY), the blob's shape. */
static void test_make_credential(void **state)
{
	struct fx *f = *state;
	uint8_t seed[32], name[34] = { 0x00, 0x0b, 1, 2, 3 }, out[512];
	size_t n = sizeof(out);
	kiln_buf cred, sec;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(f->ek, NULL);

	memset(seed, 0x42, sizeof(seed));
	kiln_buf_init(&cred, KILN_TPM2_BLOB_MAX);
	kiln_buf_init(&sec, KILN_TPM2_BLOB_MAX);
	KT_OK(kiln_tpm2_make_credential(f->ek, kiln_slice_of(name, 34), seed, f->secret, &cred, &sec));
	/* TPM2B_ID_OBJECT: size, then TPM2B_DIGEST(HMAC-SHA256), then the 34-byte encIdentity. */
	assert_int_equal(cred.len, 2 + 2 + 32 + 34);
	assert_int_equal((cred.ptr[0] << 8) | cred.ptr[1], cred.len - 2);
	assert_int_equal((cred.ptr[2] << 8) | cred.ptr[3], 32);
	assert_int_equal(sec.len, 2 + 256);
	assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(c, OPENSSL_memdup("IDENTITY", 9), 9), 1);
	assert_int_equal(EVP_PKEY_decrypt(c, out, &n, sec.ptr + 2, sec.len - 2), 1);
	assert_int_equal(n, 32);
	assert_memory_equal(out, seed, 32);
	EVP_PKEY_CTX_free(c);
	/* Another name, another credential. */
	kiln_buf_reset(&sec);
	{
		kiln_buf cred2;

		kiln_buf_init(&cred2, KILN_TPM2_BLOB_MAX);
		name[4] ^= 1;
		KT_OK(kiln_tpm2_make_credential(f->ek, kiln_slice_of(name, 34), seed, f->secret,
						&cred2, &sec));
		assert_memory_not_equal(cred.ptr, cred2.ptr, cred.len);
		kiln_buf_cleanup(&cred2);
	}
	kiln_buf_cleanup(&cred);
	kiln_buf_cleanup(&sec);
}

static void test_activation_make(void **state)
{
	struct fx *f = *state;
	struct kiln_tpm2_activation a, b;
	kiln_buf ak;
	uint8_t name[34];
	struct kiln_tpm2_activation_req req;
	kiln_diag d;

	kiln_buf_init(&ak, KILN_TPM2_PUBLIC_MAX);
	put_public(&ak, f->ak, RESIDENT | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT, name);
	req = (struct kiln_tpm2_activation_req){ kiln_buf_view(&f->ek_der), kiln_slice_of(NULL, 0),
						 kiln_buf_view(&ak) };
	kiln_tpm2_activation_init(&a);
	kiln_tpm2_activation_init(&b);
	kiln_diag_clear(&d);
	KT_OK(kiln_tpm2_activation_make(f->policy, &req, 0, &a, &d));
	KT_OK(kiln_tpm2_activation_make(f->policy, &req, 0, &b, &d));
	/* A fresh secret each time. */
	assert_memory_not_equal(a.binding_sha256, b.binding_sha256, 32);
	assert_int_equal(a.encrypted_secret.len, 258);
	/* The AK must be a restricted signing key. */
	put_public(&ak, f->ak, RESIDENT | TPMA_OBJECT_SIGN_ENCRYPT, name);
	req.ak_public = kiln_buf_view(&ak);
	KT_ERR(kiln_tpm2_activation_make(f->policy, &req, 0, &a, &d), KILN_ERR_ATTEST_CHAIN);
	assert_non_null(strstr(d.text, "restricted signing key"));
	req.ak_public = kiln_slice_of(ak.ptr, 10);
	KT_ERR(kiln_tpm2_activation_make(f->policy, &req, 0, &a, &d), KILN_ERR_ATTEST_MALFORMED);
	req.ak_public = kiln_buf_view(&ak);
	req.ek_cert = kiln_slice_of(ak.ptr, ak.len);
	KT_ERR(kiln_tpm2_activation_make(f->policy, &req, 0, &a, &d), KILN_ERR_ATTEST_MALFORMED);
	kiln_tpm2_activation_cleanup(&a);
	kiln_tpm2_activation_cleanup(&b);
	kiln_buf_cleanup(&ak);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_evidence),
		cmocka_unit_test(test_each_check_refuses),
		cmocka_unit_test(test_unappraised_policy_keys),
		cmocka_unit_test(test_untrusted_ek),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_make_credential),
		cmocka_unit_test(test_activation_make),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
