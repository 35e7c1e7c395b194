/*
 * Root of trust "tpm": a TPM 2.0 reached through tss2-esys, its TCTI taken
 * from the environment (KILN_TPM_TCTI, else TPM2TOOLS_TCTI, else TSS2_TCTI;
 * tests use swtpm: "swtpm:host=127.0.0.1,port=P").
 *
 *   EK   the TCG RSA 2048 endorsement key (template L-1), persistent at
 *        0x81010001, and its certificate in NV 0x01c00002 (swtpm_setup
 *        --create-ek-cert puts both there);
 *   AK   an ECC P-256 restricted signing key, a primary of the endorsement
 *        hierarchy, made again at each boot (same seed, same template, same key);
 *   key  the device identity key: ECC P-256, fixedTPM, fixedParent,
 *        sensitiveDataOrigin, userWithAuth, sign; a child of the storage
 *        primary (SRK, ECC P-256), whose public and wrapped private parts are
 *        kept in the state directory (key.pub, key.priv). Its private key
 *        never leaves the TPM: the CSR is signed by TPM2_Sign.
 *
 * Measured boot is simulated at init: each boot stage's SHA-256 is extended
 * into its PCR (0 firmware, 2 option ROMs, 4 boot loader, 7 secure-boot
 * policy); a tampered stage measures other bytes.
 *
 * A TPM without a resource manager keeps transient objects until flushed:
 * every handle this file loads is flushed on every path (at most 3 at once).
 */
#include "agent_impl.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include <unistd.h>

#define EK_HANDLE 0x81010001u
#define EK_CERT_NV 0x01c00002u
#define EK_CERT_MAX 4096
#define BLOB_MAX 2048
#define NV_CHUNK 512

/* Faults (kiln_rot_inject). */
enum {
	FAULT_QUOTE_OTHER_NONCE = 1u << 0,
	FAULT_AK_OTHER_TPM = 1u << 1,
	FAULT_KEY_NOT_FIXEDTPM = 1u << 2,
	FAULT_CSR_OTHER_KEY = 1u << 3,
	FAULT_TRUNCATE = 1u << 4,
	FAULT_OVERSIZE = 1u << 5,
};

struct tpm_sim {
	ESYS_CONTEXT *esys;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_TR ek, ak, key;
	TPM2B_PUBLIC *ak_pub;            /* owned (Esys_Free) */
	TPM2B_PUBLIC key_pub;
	kiln_buf ek_cert, ek_intermediate;
	uint8_t secret[32];              /* recovered by ActivateCredential */
	bool activated;
	unsigned pcrs[24];
	size_t n_pcrs;
	unsigned faults;
	char fault_member[32];           /* for truncate:/oversize: */
	EVP_PKEY *rogue;                 /* csr-other-key */
	char dir[KILN_ROT_PATH_MAX];
};

/* The simulated boot stages and the PCR each is measured into. */
static const struct {
	unsigned pcr;
	const char *name;
} stages[] = {
	{ 0, "firmware" }, { 2, "option-rom" }, { 4, "bootloader" }, { 7, "secure-boot-policy" },
};

#define N_STAGES (sizeof(stages) / sizeof(stages[0]))

/* ------------------------------------------------------------ plumbing */

static kiln_result tss_fail(kiln_diag *d, const char *what, TSS2_RC rc)
{
	return kiln_diag_set(d, KILN_ERR_IO, "TPM: %s failed: %s", what, Tss2_RC_Decode(rc));
}

static const char *tcti_conf(void)
{
	const char *names[] = { "KILN_TPM_TCTI", "TPM2TOOLS_TCTI", "TSS2_TCTI" };

	for (size_t i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);

		if (v != NULL && v[0] != '\0')
			return v;
	}
	return NULL;
}

static kiln_result connect_tpm(const char *conf, ESYS_CONTEXT **esys, TSS2_TCTI_CONTEXT **tcti,
			       kiln_diag *d)
{
	TSS2_RC rc;

	*esys = NULL;
	*tcti = NULL;
	if (conf == NULL)
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "no TPM named: set KILN_TPM_TCTI (e.g. swtpm:host=127.0.0.1,port=2321)");
	rc = Tss2_TctiLdr_Initialize(conf, tcti);
	if (rc != TSS2_RC_SUCCESS)
		return kiln_diag_set(d, KILN_ERR_IO, "TPM: cannot open TCTI '%s': %s", conf,
				     Tss2_RC_Decode(rc));
	rc = Esys_Initialize(esys, *tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		Tss2_TctiLdr_Finalize(tcti);
		return tss_fail(d, "Esys_Initialize", rc);
	}
	return kiln_ok();
}

static void disconnect(ESYS_CONTEXT **esys, TSS2_TCTI_CONTEXT **tcti)
{
	if (*esys != NULL)
		Esys_Finalize(esys);
	if (*tcti != NULL)
		Tss2_TctiLdr_Finalize(tcti);
}

static void flush(ESYS_CONTEXT *esys, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(esys, *h);
	*h = ESYS_TR_NONE;
}

/* ECC P-256 templates: the SRK (restricted decrypt), the AK (restricted sign), the identity key. */
static TPM2B_PUBLIC ecc_template(TPMA_OBJECT attrs, bool storage)
{
	TPM2B_PUBLIC t;

	memset(&t, 0, sizeof(t));
	t.publicArea.type = TPM2_ALG_ECC;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes = attrs;
	t.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	if (storage) {
		t.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
		t.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
		t.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		t.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	} else {
		t.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		t.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		t.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	}
	return t;
}

#define RESIDENT (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN)

static kiln_result create_primary(ESYS_CONTEXT *esys, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
				  ESYS_TR *out, TPM2B_PUBLIC **pub, kiln_diag *d)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	rc = Esys_CreatePrimary(esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
				tmpl, &outside, &pcrs, out, pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(d, "CreatePrimary", rc);
	return kiln_ok();
}

static kiln_result srk(ESYS_CONTEXT *esys, ESYS_TR *out, kiln_diag *d)
{
	TPM2B_PUBLIC t = ecc_template(RESIDENT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
					      TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA,
				      true);

	return create_primary(esys, ESYS_TR_RH_OWNER, &t, out, NULL, d);
}

/* A new identity key under the SRK; its blobs are marshaled into pub_out and priv_out. */
static kiln_result create_key(ESYS_CONTEXT *esys, TPMA_OBJECT attrs, kiln_buf *pub_out,
			      kiln_buf *priv_out, kiln_diag *d)
{
	TPM2B_PUBLIC t = ecc_template(attrs, false);
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR parent = ESYS_TR_NONE;
	uint8_t buf[BLOB_MAX];
	size_t off = 0;
	kiln_result r;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	KILN_GUARD(srk(esys, &parent, d));
	rc = Esys_Create(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &t,
			 &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(d, "Create (identity key)", rc);
		goto out;
	}
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		r = kiln_fail(KILN_ERR_INTERNAL);
		goto out;
	}
	KILN_TRY(r, kiln_buf_append(pub_out, buf, off));
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		r = kiln_fail(KILN_ERR_INTERNAL);
		goto out;
	}
	r = kiln_buf_append(priv_out, buf, off);
out:
	flush(esys, &parent);
	Esys_Free(priv);
	Esys_Free(pub);
	kiln_wipe(buf, sizeof(buf));
	return r;
}

/* Loads a key from its marshaled blobs under a fresh SRK (flushed again). */
static kiln_result load_key(ESYS_CONTEXT *esys, kiln_slice pub_b, kiln_slice priv_b, ESYS_TR *out,
			    TPM2B_PUBLIC *pub, kiln_diag *d)
{
	TPM2B_PRIVATE priv;
	ESYS_TR parent = ESYS_TR_NONE;
	size_t off = 0;
	kiln_result r = kiln_ok();
	TSS2_RC rc;

	memset(pub, 0, sizeof(*pub));
	memset(&priv, 0, sizeof(priv));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub_b.ptr, pub_b.len, &off, pub) != TSS2_RC_SUCCESS ||
	    off != pub_b.len)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "key.pub is not a TPM2B_PUBLIC");
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv_b.ptr, priv_b.len, &off, &priv) != TSS2_RC_SUCCESS ||
	    off != priv_b.len)
		return kiln_diag_set(d, KILN_ERR_CONFIG, "key.priv is not a TPM2B_PRIVATE");
	KILN_GUARD(srk(esys, &parent, d));
	rc = Esys_Load(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, pub, out);
	if (rc != TSS2_RC_SUCCESS)
		r = tss_fail(d, "Load (identity key)", rc);
	flush(esys, &parent);
	kiln_wipe(&priv, sizeof(priv));
	return r;
}

static kiln_result ek_cert_read(ESYS_CONTEXT *esys, kiln_buf *out, kiln_diag *d)
{
	TPM2B_NV_PUBLIC *nvpub = NULL;
	ESYS_TR nv = ESYS_TR_NONE;
	uint16_t size, done = 0;
	kiln_result r = kiln_ok();
	TSS2_RC rc;

	rc = Esys_TR_FromTPMPublic(esys, EK_CERT_NV, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return kiln_diag_set(d, KILN_ERR_CONFIG,
				     "TPM: no EK certificate in NV 0x%08x (make one with swtpm_setup --create-ek-cert): %s",
				     EK_CERT_NV, Tss2_RC_Decode(rc));
	rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvpub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(d, "NV_ReadPublic (EK certificate)", rc);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	if (size == 0 || size > EK_CERT_MAX) {
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "TPM: the EK certificate NV index holds %u bytes",
				  (unsigned)size);
		goto out;
	}
	kiln_buf_reset(out);
	while (done < size) {
		uint16_t n = (uint16_t)(size - done < NV_CHUNK ? size - done : NV_CHUNK);
		TPM2B_MAX_NV_BUFFER *chunk = NULL;

		rc = Esys_NV_Read(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, done,
				  &chunk);
		if (rc != TSS2_RC_SUCCESS) {
			r = tss_fail(d, "NV_Read (EK certificate)", rc);
			goto out;
		}
		r = kiln_buf_append(out, chunk->buffer, chunk->size);
		Esys_Free(chunk);
		KILN_TRY(r, r);
		done = (uint16_t)(done + n);
	}
	/* The NV index is sized generously: keep the DER certificate only. */
	{
		const unsigned char *p = out->ptr;
		X509 *x = d2i_X509(NULL, &p, (long)out->len);

		if (x == NULL) {
			r = kiln_diag_set(d, KILN_ERR_CONFIG, "TPM: the EK certificate in NV is not DER");
			ERR_clear_error();
			goto out;
		}
		out->len = (size_t)(p - out->ptr);
		X509_free(x);
	}
out:
	Esys_Free(nvpub);
	(void)Esys_TR_Close(esys, &nv);
	return r;
}

/* ------------------------------------------------------------ keys as OpenSSL sees them */

static kiln_result ecc_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const TPMS_ECC_POINT *pt = &pub->unique.ecc;
	uint8_t point[65] = { 0x04 };

	*out = NULL;
	KILN_ENSURE(pub->type == TPM2_ALG_ECC && pt->x.size <= 32 && pt->y.size <= 32,
		    KILN_ERR_MALFORMED);
	memcpy(point + 1 + 32 - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(point + 1 + 64 - pt->y.size, pt->y.buffer, pt->y.size);
	/* Off the curve is KILN_ERR_MALFORMED. */
	return kiln_ec_public_key("prime256v1", kiln_slice_of(point, sizeof(point)), out);
}

/* ------------------------------------------------------------ create */

static kiln_result measure(ESYS_CONTEXT *esys, const char *tamper, kiln_diag *d)
{

	for (size_t i = 0; i < N_STAGES; i++) {
		char image[128];
		TPML_DIGEST_VALUES v;
		bool bad = tamper != NULL && strcmp(tamper, stages[i].name) == 0;
		int n = snprintf(image, sizeof(image), "kiln simulated boot stage %s v1%s",
				 stages[i].name, bad ? " (tampered)" : "");
		TSS2_RC rc;

		KILN_ENSURE(n > 0 && (size_t)n < sizeof(image), KILN_ERR_INTERNAL);
		memset(&v, 0, sizeof(v));
		v.count = 1;
		v.digests[0].hashAlg = TPM2_ALG_SHA256;
		KILN_ENSURE(EVP_Digest(image, (size_t)n, v.digests[0].digest.sha256, NULL, EVP_sha256(),
				       NULL) == 1,
			    KILN_ERR_CRYPTO);
		rc = Esys_PCR_Extend(esys, (ESYS_TR)(ESYS_TR_PCR0 + stages[i].pcr), ESYS_TR_PASSWORD,
				     ESYS_TR_NONE, ESYS_TR_NONE, &v);
		if (rc != TSS2_RC_SUCCESS)
			return tss_fail(d, "PCR_Extend", rc);
	}
	return kiln_ok();
}

static kiln_result write_in(const char *dir, const char *name, kiln_slice data, kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];

	KILN_GUARD(kiln_rot_path(dir, name, path, sizeof(path), d));
	return kiln_file_write(path, data, 0600, d);
}

static kiln_result read_in(const char *dir, const char *name, size_t max, kiln_buf *out,
			   kiln_diag *d)
{
	char path[KILN_ROT_PATH_MAX];

	KILN_GUARD(kiln_rot_path(dir, name, path, sizeof(path), d));
	return kiln_file_read(path, max, out, d);
}

/* A PEM or DER certificate file as DER. */
static kiln_result cert_file_der(const char *path, kiln_buf *out, kiln_diag *d)
{
	kiln_buf text;
	BIO *bio;
	X509 *x = NULL;
	unsigned char *der = NULL;
	int n = 0;
	kiln_result r;

	KILN_GUARD(kiln_file_read(path, 65536, &text, d));
	bio = BIO_new_mem_buf(text.ptr, (int)text.len);
	if (bio != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (x == NULL) {
		const unsigned char *p = text.ptr;

		x = d2i_X509(NULL, &p, (long)text.len);
	}
	if (x == NULL || (n = i2d_X509(x, &der)) <= 0)
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "%s: not a PEM or DER certificate", path);
	else
		r = kiln_buf_append(out, der, (size_t)n);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	kiln_buf_cleanup(&text);
	ERR_clear_error();
	return r;
}

kiln_result kiln_rot_tpm_create(const char *state_dir, const struct kiln_tpm_opts *o, kiln_diag *d)
{
	static const struct kiln_tpm_opts defaults;
	ESYS_CONTEXT *esys = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	struct kiln_rot_meta m;
	kiln_buf ek, inter, pub, priv;
	uint8_t h[32];
	char hex[65];
	kiln_result r;

	KILN_ENSURE(state_dir != NULL && state_dir[0] != '\0', KILN_ERR_ARG);
	if (o == NULL)
		o = &defaults;
	kiln_buf_init(&ek, EK_CERT_MAX);
	kiln_buf_init(&inter, EK_CERT_MAX);
	kiln_buf_init(&pub, BLOB_MAX);
	kiln_buf_init(&priv, BLOB_MAX);
	memset(&m, 0, sizeof(m));
	if (kiln_is_ok(kiln_rot_meta_read(state_dir, &m, NULL))) {
		r = kiln_diag_set(d, KILN_ERR_EXISTS, "%s already holds a device", state_dir);
		goto out;
	}
	if (o->tamper_stage != NULL) {
		bool known = false;

		for (size_t i = 0; i < N_STAGES; i++)
			known = known || strcmp(o->tamper_stage, stages[i].name) == 0;
		if (!known) {
			r = kiln_diag_set(d, KILN_ERR_ARG,
					  "no boot stage '%s' (firmware, option-rom, bootloader, secure-boot-policy)",
					  o->tamper_stage);
			goto out;
		}
	}
	if (o->ek_intermediate != NULL)
		KILN_TRY(r, cert_file_der(o->ek_intermediate, &inter, d));
	KILN_TRY(r, connect_tpm(tcti_conf(), &esys, &tcti, d));
	KILN_TRY(r, ek_cert_read(esys, &ek, d));
	KILN_TRY(r, measure(esys, o->tamper_stage, d));
	KILN_TRY(r, create_key(esys, RESIDENT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT,
			       &pub, &priv, d));
	KILN_TRY(r, EVP_Digest(ek.ptr, ek.len, h, NULL, EVP_sha256(), NULL) == 1 ? kiln_ok()
									: kiln_fail(KILN_ERR_CRYPTO));
	kiln_hex_encode(h, 32, hex);
	kiln_strtrunc(m.type, "tpm", sizeof(m.type));
	if (o->serial != NULL) {
		if (!kiln_rot_text_ok(o->serial, sizeof(m.serial))) {
			r = kiln_diag_set(d, KILN_ERR_ARG, "serial '%s' is not printable text of at most %zu bytes",
					  o->serial, sizeof(m.serial) - 1);
			goto out;
		}
		kiln_strtrunc(m.serial, o->serial, sizeof(m.serial));
	} else {
		(void)snprintf(m.serial, sizeof(m.serial), "TPM-%.12s", hex);
	}
	kiln_strtrunc(m.firmware_version, "1.0.0", sizeof(m.firmware_version));
	(void)snprintf(m.soc, sizeof(m.soc), "SOC-%.12s", hex + 12);
	(void)snprintf(m.pcb, sizeof(m.pcb), "PCB-%.12s", hex + 24);
	(void)snprintf(m.se, sizeof(m.se), "TPM-EK-%.12s", hex + 36);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		r = kiln_diag_set(d, KILN_ERR_IO, "%s: %s", state_dir, strerror(errno));
		goto out;
	}
	KILN_TRY(r, write_in(state_dir, "key.pub", kiln_buf_view(&pub), d));
	KILN_TRY(r, write_in(state_dir, "key.priv", kiln_buf_view(&priv), d));
	if (inter.len > 0)
		KILN_TRY(r, write_in(state_dir, "ek-intermediate.der", kiln_buf_view(&inter), d));
	r = kiln_rot_meta_write(state_dir, &m, d);
out:
	disconnect(&esys, &tcti);
	kiln_buf_cleanup(&ek);
	kiln_buf_cleanup(&inter);
	kiln_buf_cleanup(&pub);
	kiln_buf_cleanup(&priv);
	return r;
}

/* ------------------------------------------------------------ boot */

static kiln_result boot(struct tpm_sim *s, kiln_rot *rot, kiln_diag *d)
{
	TPM2B_PUBLIC ak_t = ecc_template(RESIDENT | TPMA_OBJECT_USERWITHAUTH |
						 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
					 false);
	kiln_buf pub, priv;
	kiln_diag ld;
	kiln_result r;
	TSS2_RC rc;

	kiln_buf_init(&pub, BLOB_MAX);
	kiln_buf_init(&priv, BLOB_MAX);
	KILN_TRY(r, connect_tpm(tcti_conf(), &s->esys, &s->tcti, d));
	rc = Esys_TR_FromTPMPublic(s->esys, EK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &s->ek);
	if (rc != TSS2_RC_SUCCESS) {
		s->ek = ESYS_TR_NONE;
		r = kiln_diag_set(d, KILN_ERR_CONFIG, "TPM: no EK at 0x%08x: %s", EK_HANDLE,
				  Tss2_RC_Decode(rc));
		goto out;
	}
	KILN_TRY(r, ek_cert_read(s->esys, &s->ek_cert, d));
	kiln_diag_clear(&ld);
	if (!kiln_is_ok(read_in(s->dir, "ek-intermediate.der", EK_CERT_MAX, &s->ek_intermediate, &ld)))
		kiln_buf_init(&s->ek_intermediate, EK_CERT_MAX);
	KILN_TRY(r, read_in(s->dir, "key.pub", BLOB_MAX, &pub, d));
	KILN_TRY(r, read_in(s->dir, "key.priv", BLOB_MAX, &priv, d));
	KILN_TRY(r, load_key(s->esys, kiln_buf_view(&pub), kiln_buf_view(&priv), &s->key, &s->key_pub,
			     d));
	KILN_TRY(r, create_primary(s->esys, ESYS_TR_RH_ENDORSEMENT, &ak_t, &s->ak, &s->ak_pub, d));
	r = ecc_pkey(&s->key_pub.publicArea, &rot->identity);
out:
	kiln_buf_cleanup(&pub);
	kiln_buf_cleanup(&priv);
	return r;
}

/* ------------------------------------------------------------ CSR */

static kiln_result tpm_sign(struct tpm_sim *s, const uint8_t digest[32], ECDSA_SIG **out,
			    kiln_diag *d)
{
	TPM2B_DIGEST dg = { .size = 32 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_ECDSA };
	TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
	TPMT_SIGNATURE *sig = NULL;
	BIGNUM *br, *bs;
	TSS2_RC rc;

	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	memcpy(dg.buffer, digest, 32);
	rc = Esys_Sign(s->esys, s->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &dg, &scheme,
		       &ticket, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(d, "Sign (CSR)", rc);
	*out = ECDSA_SIG_new();
	br = BN_bin2bn(sig->signature.ecdsa.signatureR.buffer, sig->signature.ecdsa.signatureR.size, NULL);
	bs = BN_bin2bn(sig->signature.ecdsa.signatureS.buffer, sig->signature.ecdsa.signatureS.size, NULL);
	Esys_Free(sig);
	if (*out == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(*out, br, bs) != 1) {
		BN_free(br);
		BN_free(bs);
		ECDSA_SIG_free(*out);
		*out = NULL;
		return kiln_fail(KILN_ERR_CRYPTO);
	}
	return kiln_ok();
}

/* PKCS#10 for pkey with CN = serial; signed by the TPM key, or by rogue (a software key). */
static kiln_result csr_make(struct tpm_sim *s, const char *serial, EVP_PKEY *pkey,
			    EVP_PKEY *rogue, kiln_buf *out, kiln_diag *d)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
	unsigned char *tbs = NULL, *sigder = NULL, *der = NULL;
	ECDSA_SIG *sig = NULL;
	uint8_t h[32];
	int n = 0, sl = 0;
	kiln_result r = kiln_ok();

	if (req == NULL || name == NULL || alg == NULL || bits == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)serial, -1,
				       -1, 0) != 1 ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pkey) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	if (rogue != NULL) {
		if (X509_REQ_sign(req, rogue, EVP_sha256()) <= 0)
			r = kiln_fail(KILN_ERR_CRYPTO);
	} else {
		if ((n = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0 ||
		    EVP_Digest(tbs, (size_t)n, h, NULL, EVP_sha256(), NULL) != 1) {
			r = kiln_fail(KILN_ERR_CRYPTO);
			goto out;
		}
		KILN_TRY(r, tpm_sign(s, h, &sig, d));
		if ((sl = i2d_ECDSA_SIG(sig, &sigder)) <= 0 ||
		    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL) != 1 ||
		    ASN1_BIT_STRING_set(bits, sigder, sl) != 1 ||
		    X509_REQ_set1_signature_algo(req, alg) != 1) {
			r = kiln_fail(KILN_ERR_CRYPTO);
			goto out;
		}
		bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
		bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
		X509_REQ_set0_signature(req, bits);
		bits = NULL;
	}
	if (kiln_is_ok(r) && (n = i2d_X509_REQ(req, &der)) <= 0)
		r = kiln_fail(KILN_ERR_CRYPTO);
	if (kiln_is_ok(r))
		r = kiln_buf_append(out, der, (size_t)n);
out:
	OPENSSL_free(tbs);
	OPENSSL_free(sigder);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(alg);
	X509_NAME_free(name);
	X509_REQ_free(req);
	ERR_clear_error();
	return r;
}

static kiln_result tpm_csr(kiln_rot *rot, kiln_buf *der, kiln_diag *d)
{
	struct tpm_sim *s = rot->impl;

	if (s->faults & FAULT_CSR_OTHER_KEY) {
		/* A CSR for a software key: the TPM certifies one key, the CSR names another. */
		if (s->rogue == NULL)
			s->rogue = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		ERR_clear_error();
		KILN_ENSURE(s->rogue != NULL, KILN_ERR_CRYPTO);
		return csr_make(s, rot->meta.serial, s->rogue, s->rogue, der, d);
	}
	return csr_make(s, rot->meta.serial, rot->identity, NULL, der, d);
}

/* ------------------------------------------------------------ activation */

static kiln_result set_b64(json_t *obj, const char *key, kiln_slice bytes)
{
	kiln_buf b64;
	kiln_result r;

	kiln_buf_init(&b64, 4 * KILN_BUF_DEFAULT_MAX);
	r = kiln_base64_encode(bytes, &b64);
	if (kiln_is_ok(r) && json_object_set_new(obj, key, json_string(kiln_buf_cstr(&b64))) != 0)
		r = kiln_fail(KILN_ERR_NOMEM);
	kiln_buf_cleanup(&b64);
	return r;
}

static kiln_result marshal_public(const TPM2B_PUBLIC *pub, kiln_buf *out)
{
	uint8_t buf[BLOB_MAX];
	size_t off = 0;

	KILN_ENSURE(Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) == TSS2_RC_SUCCESS,
		    KILN_ERR_INTERNAL);
	return kiln_buf_append(out, buf, off);
}

/* The EK certificate of the TPM at KILN_TPM_OTHER_TCTI (the ak-other-tpm fault). */
static kiln_result other_ek_cert(kiln_buf *out, kiln_diag *d)
{
	ESYS_CONTEXT *esys = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	kiln_result r;

	KILN_GUARD(connect_tpm(getenv("KILN_TPM_OTHER_TCTI"), &esys, &tcti, d));
	r = ek_cert_read(esys, out, d);
	disconnect(&esys, &tcti);
	return r;
}

static kiln_result tpm_activation_request(kiln_rot *rot, json_t **out, kiln_diag *d)
{
	struct tpm_sim *s = rot->impl;
	json_t *o = json_object();
	kiln_buf akpub, ek;
	kiln_result r;

	KILN_ENSURE(o != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&akpub, BLOB_MAX);
	kiln_buf_init(&ek, EK_CERT_MAX);
	if (s->faults & FAULT_AK_OTHER_TPM)
		KILN_TRY(r, other_ek_cert(&ek, d));
	else
		KILN_TRY(r, kiln_buf_append_slice(&ek, kiln_buf_view(&s->ek_cert)));
	KILN_TRY(r, marshal_public(s->ak_pub, &akpub));
	KILN_TRY(r, set_b64(o, "ek_cert", kiln_buf_view(&ek)));
	if (s->ek_intermediate.len > 0)
		KILN_TRY(r, set_b64(o, "ek_intermediate", kiln_buf_view(&s->ek_intermediate)));
	KILN_TRY(r, set_b64(o, "ak_public", kiln_buf_view(&akpub)));
	kiln_buf_reset(&s->ek_cert);
	KILN_TRY(r, kiln_buf_append_slice(&s->ek_cert, kiln_buf_view(&ek)));
	*out = o;
	o = NULL;
out:
	json_decref(o);
	kiln_buf_cleanup(&akpub);
	kiln_buf_cleanup(&ek);
	return r;
}

static kiln_result b64_member(const json_t *obj, const char *key, kiln_buf *out, kiln_diag *d)
{
	const char *v = json_string_value(json_object_get(obj, key));

	if (v == NULL || !kiln_is_ok(kiln_base64_decode(kiln_slice_str(v), out)))
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "the activate response's \"%s\" is missing or not base64", key);
	return kiln_ok();
}

static kiln_result read_pcrs(struct tpm_sim *s, const json_t *resp, kiln_diag *d)
{
	const json_t *arr = json_object_get(json_object_get(resp, "pcrs"), "sha256");
	size_t i;
	json_t *v;

	s->n_pcrs = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 24)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "the activate response names no PCRs");
	json_array_foreach(arr, i, v) {
		json_int_t n = json_integer_value(v);

		if (!json_is_integer(v) || n < 0 || n > 23)
			return kiln_diag_set(d, KILN_ERR_MALFORMED, "the activate response names PCR %lld",
					     (long long)n);
		s->pcrs[s->n_pcrs++] = (unsigned)n;
	}
	return kiln_ok();
}

/* TPM2_ActivateCredential: the EK's policy is PolicySecret(endorsement). */
static kiln_result tpm_activate(kiln_rot *rot, const json_t *resp, kiln_diag *d)
{
	struct tpm_sim *s = rot->impl;
	TPM2B_ID_OBJECT cred;
	TPM2B_ENCRYPTED_SECRET secret;
	TPM2B_DIGEST *cert_info = NULL;
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	ESYS_TR session = ESYS_TR_NONE;
	kiln_buf cb, sb;
	size_t off = 0;
	kiln_result r;
	TSS2_RC rc;

	kiln_buf_init(&cb, BLOB_MAX);
	kiln_buf_init(&sb, BLOB_MAX);
	memset(&cred, 0, sizeof(cred));
	memset(&secret, 0, sizeof(secret));
	KILN_TRY(r, read_pcrs(s, resp, d));
	KILN_TRY(r, b64_member(resp, "credential", &cb, d));
	KILN_TRY(r, b64_member(resp, "encrypted_secret", &sb, d));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(cb.ptr, cb.len, &off, &cred) != TSS2_RC_SUCCESS ||
	    off != cb.len) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED, "the credential is not a TPM2B_ID_OBJECT");
		goto out;
	}
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(sb.ptr, sb.len, &off, &secret) !=
		    TSS2_RC_SUCCESS ||
	    off != sb.len) {
		r = kiln_diag_set(d, KILN_ERR_MALFORMED,
				  "the encrypted secret is not a TPM2B_ENCRYPTED_SECRET");
		goto out;
	}
	rc = Esys_StartAuthSession(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
				   &session);
	if (rc != TSS2_RC_SUCCESS) {
		session = ESYS_TR_NONE;
		r = tss_fail(d, "StartAuthSession", rc);
		goto out;
	}
	rc = Esys_PolicySecret(s->esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD,
			       ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(d, "PolicySecret", rc);
		goto out;
	}
	rc = Esys_ActivateCredential(s->esys, s->ak, s->ek, ESYS_TR_PASSWORD, session, ESYS_TR_NONE,
				     &cred, &secret, &cert_info);
	if (rc == TSS2_RC_SUCCESS && cert_info->size == sizeof(s->secret)) {
		memcpy(s->secret, cert_info->buffer, sizeof(s->secret));
		s->activated = true;
		r = kiln_ok();
	} else if (s->faults & FAULT_AK_OTHER_TPM) {
		/* What a device whose AK is not in the EK's TPM can do: guess. */
		memset(s->secret, 0, sizeof(s->secret));
		s->activated = true;
		r = kiln_ok();
	} else {
		r = rc != TSS2_RC_SUCCESS ? tss_fail(d, "ActivateCredential", rc)
					  : kiln_diag_set(d, KILN_ERR_MALFORMED,
							  "the activated secret is not 32 bytes");
	}
out:
	if (cert_info != NULL) {
		kiln_wipe(cert_info, sizeof(*cert_info));
		Esys_Free(cert_info);
	}
	flush(s->esys, &session);
	kiln_buf_cleanup(&cb);
	kiln_buf_cleanup(&sb);
	return r;
}

/* ------------------------------------------------------------ evidence */

static kiln_result marshal_sig(const TPMT_SIGNATURE *sig, kiln_buf *out)
{
	uint8_t buf[BLOB_MAX];
	size_t off = 0;

	KILN_ENSURE(Tss2_MU_TPMT_SIGNATURE_Marshal(sig, buf, sizeof(buf), &off) == TSS2_RC_SUCCESS,
		    KILN_ERR_INTERNAL);
	return kiln_buf_append(out, buf, off);
}

static kiln_result pcr_values(struct tpm_sim *s, TPML_PCR_SELECTION *sel, kiln_buf *out,
			      kiln_diag *d)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (size_t i = 0; i < s->n_pcrs; i++)
		sel->pcrSelections[0].pcrSelect[s->pcrs[i] / 8] |= (uint8_t)(1u << (s->pcrs[i] % 8));
	/* One PCR per read: simple, and the order is ours (ascending, as the server expects). */
	for (size_t i = 0; i < s->n_pcrs; i++) {
		TPML_PCR_SELECTION one = { .count = 1 };
		TPML_DIGEST *vals = NULL;
		TSS2_RC rc;
		kiln_result r;

		one.pcrSelections[0].hash = TPM2_ALG_SHA256;
		one.pcrSelections[0].sizeofSelect = 3;
		one.pcrSelections[0].pcrSelect[s->pcrs[i] / 8] = (uint8_t)(1u << (s->pcrs[i] % 8));
		rc = Esys_PCR_Read(s->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &one, NULL, NULL,
				   &vals);
		if (rc != TSS2_RC_SUCCESS)
			return tss_fail(d, "PCR_Read", rc);
		r = vals->count == 1 && vals->digests[0].size == 32
			    ? kiln_buf_append(out, vals->digests[0].buffer, 32)
			    : kiln_diag_set(d, KILN_ERR_IO, "TPM: PCR %u has no SHA-256 value", s->pcrs[i]);
		Esys_Free(vals);
		KILN_GUARD(r);
	}
	return kiln_ok();
}

/* The faults that damage one member's bytes (truncate:M, oversize:M). */
static kiln_result damage(struct tpm_sim *s, const char *member, kiln_buf *b)
{
	if (strcmp(s->fault_member, member) != 0)
		return kiln_ok();
	if ((s->faults & FAULT_TRUNCATE) && b->len > 1)
		b->len -= 1 + b->len / 4;
	if (s->faults & FAULT_OVERSIZE) {
		static const uint8_t pad[256];

		while (b->len <= 2048)
			KILN_GUARD(kiln_buf_append(b, pad, sizeof(pad)));
	}
	return kiln_ok();
}

/* Saved for independent checks (tpm2_checkquote): used once finish succeeds, so no secret. */
static kiln_result save_quote(struct tpm_sim *s, const kiln_buf *msg, const kiln_buf *sig,
			      const uint8_t nonce[KILN_NONCE_LEN], kiln_diag *d)
{
	EVP_PKEY *ak = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char hex[2 * KILN_NONCE_LEN + 1];
	BUF_MEM *mem = NULL;
	kiln_result r;

	KILN_ENSURE(bio != NULL, KILN_ERR_NOMEM);
	KILN_TRY(r, ecc_pkey(&s->ak_pub->publicArea, &ak));
	if (PEM_write_bio_PUBKEY(bio, ak) != 1 || BIO_get_mem_ptr(bio, &mem) != 1) {
		r = kiln_fail(KILN_ERR_CRYPTO);
		goto out;
	}
	KILN_TRY(r, write_in(s->dir, "quote.ak.pem", kiln_slice_of(mem->data, mem->length), d));
	KILN_TRY(r, write_in(s->dir, "quote.msg", kiln_buf_view(msg), d));
	KILN_TRY(r, write_in(s->dir, "quote.sig", kiln_buf_view(sig), d));
	kiln_hex_encode(nonce, KILN_NONCE_LEN, hex);
	r = write_in(s->dir, "quote.nonce", kiln_slice_str(hex), d);
out:
	EVP_PKEY_free(ak);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

static kiln_result tpm_evidence(kiln_rot *rot, const uint8_t nonce[KILN_NONCE_LEN],
				kiln_slice csr_der, json_t **out, kiln_diag *d)
{
	struct tpm_sim *s = rot->impl;
	TPM2B_DATA q = { .size = KILN_NONCE_LEN };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPML_PCR_SELECTION sel;
	TPM2B_ATTEST *quoted = NULL, *certified = NULL;
	TPMT_SIGNATURE *qsig = NULL, *csig = NULL;
	kiln_buf b[8];
	json_t *ev = json_object();
	static const char *const names[8] = { "ak_public",  "quote",   "quote_signature",
					      "pcr_values", "key_public", "certify",
					      "certify_signature", "secret" };
	kiln_result r;
	TSS2_RC rc;

	(void)csr_der;
	KILN_ENSURE(ev != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; i < 8; i++)
		kiln_buf_init(&b[i], 4 * BLOB_MAX);
	if (!s->activated) {
		r = kiln_diag_set(d, KILN_ERR_ARG, "TPM evidence needs credential activation first");
		goto out;
	}
	memcpy(q.buffer, nonce, KILN_NONCE_LEN);
	if (s->faults & FAULT_QUOTE_OTHER_NONCE)
		q.buffer[0] ^= 0x01;
	KILN_TRY(r, pcr_values(s, &sel, &b[3], d));
	rc = Esys_Quote(s->esys, s->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &q, &scheme,
			&sel, &quoted, &qsig);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(d, "Quote", rc);
		goto out;
	}
	memcpy(q.buffer, nonce, KILN_NONCE_LEN);
	rc = Esys_Certify(s->esys, s->key, s->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &q,
			  &scheme, &certified, &csig);
	if (rc != TSS2_RC_SUCCESS) {
		r = tss_fail(d, "Certify", rc);
		goto out;
	}
	KILN_TRY(r, marshal_public(s->ak_pub, &b[0]));
	KILN_TRY(r, kiln_buf_append(&b[1], quoted->attestationData, quoted->size));
	KILN_TRY(r, marshal_sig(qsig, &b[2]));
	KILN_TRY(r, marshal_public(&s->key_pub, &b[4]));
	KILN_TRY(r, kiln_buf_append(&b[5], certified->attestationData, certified->size));
	KILN_TRY(r, marshal_sig(csig, &b[6]));
	KILN_TRY(r, kiln_buf_append(&b[7], s->secret, sizeof(s->secret)));
	KILN_TRY(r, save_quote(s, &b[1], &b[2], nonce, d));
	if (json_object_set_new(ev, "type", json_string("tpm2")) != 0) {
		r = kiln_fail(KILN_ERR_NOMEM);
		goto out;
	}
	KILN_TRY(r, set_b64(ev, "ek_cert", kiln_buf_view(&s->ek_cert)));
	if (s->ek_intermediate.len > 0)
		KILN_TRY(r, set_b64(ev, "ek_intermediate", kiln_buf_view(&s->ek_intermediate)));
	for (size_t i = 0; i < 8; i++) {
		KILN_TRY(r, damage(s, names[i], &b[i]));
		KILN_TRY(r, set_b64(ev, names[i], kiln_buf_view(&b[i])));
	}
	*out = ev;
	ev = NULL;
out:
	json_decref(ev);
	for (size_t i = 0; i < 8; i++)
		kiln_buf_cleanup(&b[i]);
	Esys_Free(quoted);
	Esys_Free(certified);
	Esys_Free(qsig);
	Esys_Free(csig);
	return r;
}

/* ------------------------------------------------------------ faults, lifetime */

/* An identity key without fixedTPM and fixedParent (duplicable), used instead of the real one. */
static kiln_result swap_in_loose_key(kiln_rot *rot, struct tpm_sim *s)
{
	kiln_buf pub, priv;
	kiln_result r;

	kiln_buf_init(&pub, BLOB_MAX);
	kiln_buf_init(&priv, BLOB_MAX);
	flush(s->esys, &s->key);
	KILN_TRY(r, create_key(s->esys,
			       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
				       TPMA_OBJECT_SIGN_ENCRYPT,
			       &pub, &priv, NULL));
	KILN_TRY(r, load_key(s->esys, kiln_buf_view(&pub), kiln_buf_view(&priv), &s->key, &s->key_pub,
			     NULL));
	EVP_PKEY_free(rot->identity);
	rot->identity = NULL;
	r = ecc_pkey(&s->key_pub.publicArea, &rot->identity);
out:
	kiln_buf_cleanup(&pub);
	kiln_buf_cleanup(&priv);
	return r;
}

static kiln_result tpm_inject(kiln_rot *rot, const char *fault)
{
	struct tpm_sim *s = rot->impl;

	if (strcmp(fault, "quote-other-nonce") == 0)
		s->faults |= FAULT_QUOTE_OTHER_NONCE;
	else if (strcmp(fault, "ak-other-tpm") == 0)
		s->faults |= FAULT_AK_OTHER_TPM;
	else if (strcmp(fault, "csr-other-key") == 0)
		s->faults |= FAULT_CSR_OTHER_KEY;
	else if (strcmp(fault, "key-not-fixedtpm") == 0) {
		KILN_GUARD(swap_in_loose_key(rot, s));
		s->faults |= FAULT_KEY_NOT_FIXEDTPM;
	} else if (strncmp(fault, "truncate:", 9) == 0 || strncmp(fault, "oversize:", 9) == 0) {
		KILN_GUARD(kiln_strlcpy(s->fault_member, fault + 9, sizeof(s->fault_member)));
		s->faults |= fault[0] == 't' ? FAULT_TRUNCATE : FAULT_OVERSIZE;
	} else {
		return kiln_fail(KILN_ERR_ARG);
	}
	return kiln_ok();
}

static void tpm_destroy(void *impl)
{
	struct tpm_sim *s = impl;

	if (s->esys != NULL) {
		flush(s->esys, &s->ak);
		flush(s->esys, &s->key);
		if (s->ek != ESYS_TR_NONE)
			(void)Esys_TR_Close(s->esys, &s->ek);
	}
	disconnect(&s->esys, &s->tcti);
	Esys_Free(s->ak_pub);
	EVP_PKEY_free(s->rogue);
	kiln_buf_cleanup(&s->ek_cert);
	kiln_buf_cleanup(&s->ek_intermediate);
	kiln_wipe(s, sizeof(*s));
	free(s);
}

static const struct kiln_rot_ops tpm_ops = {
	.type = "tpm",
	.csr = tpm_csr,
	.evidence = tpm_evidence,
	.inject = tpm_inject,
	.destroy = tpm_destroy,
	.activation_request = tpm_activation_request,
	.activate = tpm_activate,
};

kiln_result kiln_tpm_open(const char *state_dir, const struct kiln_rot_meta *m, kiln_rot **out,
			  kiln_diag *d)
{
	kiln_rot *rot = calloc(1, sizeof(*rot));
	struct tpm_sim *s = calloc(1, sizeof(*s));
	kiln_result r;

	*out = NULL;
	if (rot == NULL || s == NULL) {
		free(rot);
		free(s);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	rot->ops = &tpm_ops;
	rot->meta = *m;
	rot->impl = s;
	s->ek = s->ak = s->key = ESYS_TR_NONE;
	kiln_buf_init(&s->ek_cert, EK_CERT_MAX);
	kiln_buf_init(&s->ek_intermediate, EK_CERT_MAX);
	KILN_TRY(r, kiln_strlcpy(s->dir, state_dir, sizeof(s->dir)));
	KILN_TRY(r, boot(s, rot, d));
	*out = rot;
	rot = NULL;
out:
	kiln_rot_free(rot);
	return r;
}
