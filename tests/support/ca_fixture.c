#include "support/ca_fixture.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

/* A test-environment P-256 policy: its lines before and after the subject's. */
#define KT_POLICY_HEAD                                     \
	"environment: test\n"                              \
	"keys:\n"                                          \
	"  - type: ec\n"                                   \
	"    curves: [p256]\n"                             \
	"device_serial:\n"                                 \
	"  pattern: '^[A-Z0-9][A-Z0-9-]{3,63}$'\n"         \
	"subject:\n"
#define KT_POLICY_TAIL                                     \
	"validity_days: 30\n"                              \
	"key_usage: [digitalSignature]\n"                  \
	"attestation:\n"                                   \
	"  type: none\n"

const char kt_gadget_policy[] =
	"product: gadget\n" KT_POLICY_HEAD "  CN: \"{serial}\"\n" KT_POLICY_TAIL;

kiln_result kt_policy_add_subject(struct kt_deploy *k, const char *product, const char *subject_yaml,
				  kiln_diag *d)
{
	char text[2048];
	int n = snprintf(text, sizeof(text), "product: %s\n" KT_POLICY_HEAD "%s" KT_POLICY_TAIL, product,
			 subject_yaml);

	if (n < 0 || (size_t)n >= sizeof(text))
		return kiln_fail(KILN_ERR_TOO_BIG);
	return kt_policy_add_text(k, text, d);
}

static const char *const pins[4] = { NULL, KT_PIN_PROD, KT_PIN_TEST, KT_PIN_SERVICE };
static const char *const labels[4] = { NULL, "kiln-prod", "kiln-test", "kiln-service" };

void kt_deploy_up(struct kt_deploy *k, const char *name, kiln_alg alg, bool group_commit)
{
	struct kiln_store_opts so = { 0 };
	struct kiln_ca_opts co = { 0 };
	char *db;
	kiln_diag d;

	memset(k, 0, sizeof(*k));
	kiln_diag_clear(&d);
	k->log = (kiln_log){ kiln_log_sink_file, stderr, KILN_LOG_WARN };
	k->dir = kt_tmpdir(name);
	kt_softhsm_setup(k->dir);
	db = kt_path(k->dir, "kiln.db");
	so = (struct kiln_store_opts){ .path = db, .create = true, .group_commit = group_commit,
				       .log = &k->log };
	KT_OK(kiln_store_open(&so, &k->store, &d));
	free(db);
	KT_OK(kiln_p11_load(KILN_SOFTHSM2_MODULE, &k->log, &k->p11, &d));
	for (int env = KILN_ENV_PRODUCTION; env <= KILN_ENV_SERVICE; env++) {
		struct kiln_token_opts to = { labels[env], pins[env], 2 };
		struct kiln_hierarchy_opts ho = { (kiln_env)env, alg, "Test Org", "0011223344556677",
						  7300, 3650, "test" };

		KT_OK(kiln_p11_init_token(k->p11, labels[env], "so-pin-1234", pins[env], &d));
		KT_OK(kiln_token_open(k->p11, &to, &k->tokens[env], &d));
		if (!kiln_is_ok(kiln_ca_create_hierarchy(k->tokens[env], k->store, &ho, &d)))
			fail_msg("hierarchy: %s", d.text);
	}
	memcpy(co.tokens, k->tokens, sizeof(co.tokens));
	co.store = k->store;
	co.public_url = "http://kiln.test";
	co.log = &k->log;
	KT_OK(kiln_ca_open(&co, &k->ca, &d));
	for (int i = 0; i < 2; i++) {
		char *path = kt_path(KILN_SOURCE_DIR "/examples/policies",
				     i == 0 ? "widget.yaml" : "widget-test.yaml");
		kiln_buf text;
		struct kiln_policy_added added;

		kt_read_file(path, &text);
		if (!kiln_is_ok(kiln_ca_policy_add(k->ca, kiln_buf_view(&text), path, "test", &added, &d)))
			fail_msg("policy: %s", d.text);
		kiln_buf_cleanup(&text);
		free(path);
	}
}

void kt_deploy_down(struct kt_deploy *k)
{
	kiln_ca_free(k->ca);
	kiln_store_close(k->store);
	for (int i = 0; i < 4; i++)
		kiln_token_close(k->tokens[i]);
	kiln_p11_free(k->p11);
	kt_rmrf(k->dir);
	free(k->dir);
	memset(k, 0, sizeof(*k));
}

kiln_result kt_policy_add_text(struct kt_deploy *k, const char *yaml, kiln_diag *d)
{
	struct kiln_policy_added added;

	return kiln_ca_policy_add(k->ca, kiln_slice_str(yaml), "inline.yaml", "test", &added, d);
}

void kt_make_csr(const char *key, const char *cn, const char *extra, kiln_buf *der,
		 EVP_PKEY **key_out)
{
	EVP_PKEY *pk = kt_keygen(key);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	const EVP_MD *md = strcmp(key, "ed25519") == 0 ? NULL : EVP_sha256();
	unsigned char *buf = NULL;
	int len;

	assert_non_null(pk);
	assert_non_null(req);
	assert_non_null(name);
	if (cn != NULL)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
							    (const unsigned char *)cn, -1, -1, 0), 1);
	if (extra != NULL) {
		char copy[256], *save = NULL;

		assert_true(strlen(extra) < sizeof(copy));
		memcpy(copy, extra, strlen(extra) + 1);
		for (char *part = strtok_r(copy, ",", &save); part != NULL;
		     part = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(part, '=');

			assert_non_null(eq);
			*eq = '\0';
			assert_int_equal(X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
								    (const unsigned char *)eq + 1,
								    -1, -1, 0), 1);
		}
	}
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, pk), 1);
	assert_true(X509_REQ_sign(req, pk, md) > 0);
	len = i2d_X509_REQ(req, &buf);
	assert_true(len > 0);
	kiln_buf_init(der, KILN_BUF_DEFAULT_MAX);
	KT_OK(kiln_buf_append(der, buf, (size_t)len));
	OPENSSL_free(buf);
	X509_NAME_free(name);
	X509_REQ_free(req);
	if (key_out != NULL)
		*key_out = pk;
	else
		EVP_PKEY_free(pk);
}

int64_t kt_count(struct kt_deploy *k, const char *table)
{
	int64_t n = -1;

	KT_OK(kiln_store_count(k->store, table, &n, NULL));
	return n;
}

int64_t kt_count_events(struct kt_deploy *k, const char *type)
{
	struct kiln_event_rec *ev = NULL;
	size_t n = 0;
	int64_t count = 0;

	KT_OK(kiln_store_event_list(k->store, 0, 0, &ev, &n, NULL));
	for (size_t i = 0; i < n; i++)
		count += strcmp(ev[i].type, type) == 0;
	kiln_store_event_list_free(ev, n);
	return count;
}
