/*
 * The kiln CLI: commands per the contract in DESIGN.md. main.c is a thin
 * wrapper around kiln_cli_main so the commands are testable in-process.
 * Exit status: 0 success, 1 failure, 2 usage error; failures print one line
 * "kiln: <what went wrong>" on stderr.
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "ca/ca.h"

#include <stdio.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

int kiln_cli_main(int argc, char **argv);

/* Options every command accepts, set by the shared parser. */
struct cli_common {
	const char *dir;
	bool json;
	bool verbose;
	bool help;
	char actor[96]; /* "cli:<login name>", for events */
};

/* One option of a command: long name, whether it takes a value, where it goes. */
struct cli_opt {
	const char *name;
	bool has_arg;
	const char **value; /* has_arg */
	bool *flag;         /* !has_arg */
};

/*
 * Parses argv (options anywhere, "--name value" or "--name=value") into the
 * common options and the command's own; positional arguments are collected
 * in pos (at most max_pos). Prints a usage error and returns false on
 * unknown options or missing values.
 */
bool cli_parse(int argc, char **argv, struct cli_common *common, const struct cli_opt *opts,
	       const char **pos, size_t max_pos, size_t *n_pos);

/* Prints "kiln: message" for a failed result. Returns CLI_FAIL. */
int cli_fail(kiln_result r, const kiln_diag *d);
/* Prints "kiln: <formatted>" and returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) KILN_PRINTF(1, 2);

/* What a command needs opened. */
enum {
	NEED_STORE = 1u << 0,
	NEED_CA = 1u << 1, /* implies store */
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
};

KILN_MUST_USE kiln_result deploy_open(const struct cli_common *c, unsigned need,
				      struct deployment *dep, kiln_diag *d);
/* Opens the token of an environment (loading the module on first use). */
KILN_MUST_USE kiln_result deploy_token(struct deployment *dep, kiln_env env, kiln_diag *d);
/* Builds the CA engine over the store and whatever tokens are open. */
KILN_MUST_USE kiln_result deploy_ca(struct deployment *dep, kiln_diag *d);
void deploy_close(struct deployment *dep);
/* The canonical absolute path of an existing path, bounded (realpath with a heap buffer). */
KILN_MUST_USE kiln_result deploy_realpath(const char *path, char *out, size_t cap);
/* dir/rel, or rel itself when absolute. */
KILN_MUST_USE kiln_result deploy_path(const char *dir, const char *rel, char *out, size_t cap);

/* Commands. argv[0] is the command name. */
int cmd_init(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_device(int argc, char **argv);

/* Output helpers: JSON to stdout (jansson json_t *, consumed). */
struct json_t;
int cli_print_json(struct json_t *j);

#endif
