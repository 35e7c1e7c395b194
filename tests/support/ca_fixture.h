/*
 * A whole deployment for the ca and cli unit tests: three SoftHSM2 tokens in a
 * temporary directory, the three CA hierarchies, the inventory, the CA engine
 * and both example policies.
 */
#ifndef KILN_TEST_CA_FIXTURE_H
#define KILN_TEST_CA_FIXTURE_H

#include "support/support.h"

#include "ca/ca.h"

struct kt_deploy {
	char *dir;
	kiln_p11 *p11;
	kiln_token *tokens[4];
	kiln_store *store;
	kiln_ca *ca;
	kiln_log log;
};

#define KT_PIN_PROD "prod-user-pin"
#define KT_PIN_TEST "test-user-pin"
#define KT_PIN_SERVICE "svc-user-pin"

/* Everything up, or the test fails. group_commit selects the store's write mode. */
void kt_deploy_up(struct kt_deploy *k, const char *name, kiln_alg alg, bool group_commit);
void kt_deploy_down(struct kt_deploy *k);
/* A test product (attestation none) besides the examples: product "gadget". */
extern const char kt_gadget_policy[];
/* Adds a policy from YAML text; returns the result (the diag gets the message). */
kiln_result kt_policy_add_text(struct kt_deploy *k, const char *yaml, kiln_diag *d);
/* Adds (and approves) the gadget policy's shape for product with this subject (YAML lines). */
kiln_result kt_policy_add_subject(struct kt_deploy *k, const char *product, const char *subject_yaml,
				  kiln_diag *d);
/*
 * A DER CSR. key: "p256", "p384", "p521", "secp256k1", "ed25519", "rsa2048",
 * "rsa3072". cn may be NULL; extra is "O=...,OU=..." style additional
 * attributes or NULL. *key_out (if not NULL) receives the key (caller frees).
 */
void kt_make_csr(const char *key, const char *cn, const char *extra, kiln_buf *der,
		 EVP_PKEY **key_out);
/* Row count of a table. */
int64_t kt_count(struct kt_deploy *k, const char *table);
/* Number of events of a type. */
int64_t kt_count_events(struct kt_deploy *k, const char *type);

#endif
