/*
 * The kiln CLI: commands per the contract in DESIGN.md. main.c is a thin
 * wrapper around kiln_cli_main so the commands are testable in-process.
 * Exit status: 0 success, 1 failure, 2 usage error; failures print one line
 * "kiln: <what went wrong>" on stderr.
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "ca/ca.h"
#include "ledger/ledger.h"

#include <stdio.h>

#include "args.h"

int kiln_cli_main(int argc, char **argv);

/* What a command needs opened. */
enum {
	NEED_STORE = 1u << 0,
	NEED_CA = 1u << 1,           /* implies store */
	NEED_GROUP_COMMIT = 1u << 2, /* the store batches concurrent writers (kiln serve) */
};

/* An opened deployment: config, HSM tokens (only those asked for), store, CA engine. */
struct deployment {
	char dir[KILN_PATH_MAX];
	kiln_config cfg;
	kiln_log log;
	kiln_p11 *p11;
	kiln_token *tokens[4];
	kiln_store *store;
	kiln_ca *ca;
	/* The ledger (deploy_ledger); the signer and key it borrows live here. */
	kiln_ledger *ledger;
	kiln_signer log_signer;
	kiln_key_ref log_key;
};

KILN_MUST_USE kiln_result deploy_open(const struct cli_common *c, unsigned need,
				      struct deployment *dep, kiln_diag *d);
/*
 * Opens the token of an environment (loading the module on first use).
 * With optional set, an environment whose PIN file is absent is skipped
 * (success, token left NULL): a process may be given only some PINs.
 */
KILN_MUST_USE kiln_result deploy_token_opt(struct deployment *dep, kiln_env env, bool optional,
					   kiln_diag *d);
/* Opens the token of an environment (loading the module on first use). */
KILN_MUST_USE kiln_result deploy_token(struct deployment *dep, kiln_env env, kiln_diag *d);
/* Builds the CA engine over the store and whatever tokens are open. */
KILN_MUST_USE kiln_result deploy_ca(struct deployment *dep, kiln_diag *d);
/*
 * Opens the ledger. With sign, the service token's log key (created on first
 * use, recorded as a key-create event by actor) signs checkpoints and
 * DIR/log.pub is (re)written; without, DIR/log.pub alone names the key.
 */
KILN_MUST_USE kiln_result deploy_ledger(struct deployment *dep, bool sign, const char *actor,
					kiln_diag *d);
void deploy_close(struct deployment *dep);
/* The canonical absolute path of an existing path, bounded (realpath with a heap buffer). */
KILN_MUST_USE kiln_result deploy_realpath(const char *path, char *out, size_t cap);
/* dir/rel, or rel itself when absolute. */
KILN_MUST_USE kiln_result deploy_path(const char *dir, const char *rel, char *out, size_t cap);
/*
 * DIR/serve.lock, without waiting. kiln serve holds it shared while it runs
 * (what: NULL); an operation a running server would not see (a restore, a CA
 * rotation) takes it exclusively (what: the operation, for the message).
 * KILN_ERR_BUSY when the other side holds it. *fd keeps the lock until closed.
 */
KILN_MUST_USE kiln_result deploy_serve_lock(const struct deployment *dep, const char *what,
					    int *fd, kiln_diag *d);

/* The approval rules of the deployment (kiln.yaml approvals:). */
void deploy_rules(const struct deployment *dep, struct kiln_govern_rules *out);
/*
 * The identity that holds the private key in key_file (PEM): it must be an
 * active identity; out receives its name (the actor of what follows) and,
 * when pkey is not NULL, the key (caller frees).
 */
KILN_MUST_USE kiln_result deploy_key_identity(struct deployment *dep, const char *key_file,
					      struct kiln_identity_rec *out, EVP_PKEY **pkey,
					      kiln_diag *d);
/*
 * The requester a command acts for with --key: an active identity whose role is
 * in roles (NULL-terminated), else KILN_ERR_FORBIDDEN (an auth-failure event).
 */
KILN_MUST_USE kiln_result deploy_requester(struct deployment *dep, const char *key_file,
					   const char *const *roles, struct kiln_identity_rec *out,
					   kiln_diag *d);

/* Commands. argv[0] is the command name. */
int cmd_init(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_request(int argc, char **argv);
int cmd_backup(int argc, char **argv);

/*
 * The backup key (AES-256, label "backup") in the kiln-service token, made
 * on first use (kiln init, or the first backup of an older deployment) with
 * a "key-generate" event. The service token must be open.
 */
KILN_MUST_USE kiln_result cli_backup_key_ensure(struct deployment *dep, const char *actor,
						bool *created, kiln_diag *d);

/*
 * kiln audit verify over an inventory (cmd_audit.c): the events' leaves,
 * the derived tree and the signed checkpoints checked with the log key;
 * rep says whether the log holds. root (may be NULL) receives the Merkle
 * root over every event (rep->events of them), checkpointed or not.
 */
KILN_MUST_USE kiln_result cli_audit_store(kiln_store *s, const struct kiln_note_key *key,
					  struct kiln_audit_report *rep, uint8_t root[32],
					  kiln_diag *d);


#endif
