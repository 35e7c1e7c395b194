/*
 * Option parsing and output shared by kiln and kiln-device. Depends on core
 * (and jansson) only, so kiln-device links no server or CA code.
 */
#ifndef KILN_CLI_ARGS_H
#define KILN_CLI_ARGS_H

#include "core/core.h"

#include <stdio.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

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

/* Output helpers: JSON to stdout (jansson json_t *, consumed). */
struct json_t;
int cli_print_json(struct json_t *j);

#endif
