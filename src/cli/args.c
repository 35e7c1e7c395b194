/*
 * Option parsing and output shared by kiln and kiln-device (which links
 * only this file of the CLI, with the agent library).
 */
#include "args.h"

#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool match(const char *arg, const char *name, const char **inline_val)
{
	size_t n = strlen(name);

	*inline_val = NULL;
	if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0)
		return false;
	if (arg[2 + n] == '\0')
		return true;
	if (arg[2 + n] == '=') {
		*inline_val = arg + 3 + n;
		return true;
	}
	return false;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const struct cli_opt *common,
				      const char *arg, const char **inline_val)
{
	for (const struct cli_opt *o = opts; o != NULL && o->name != NULL; o++) {
		if (match(arg, o->name, inline_val))
			return o;
	}
	for (const struct cli_opt *o = common; o->name != NULL; o++) {
		if (match(arg, o->name, inline_val))
			return o;
	}
	return NULL;
}

static void set_actor(struct cli_common *c)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		(void)snprintf(c->actor, sizeof(c->actor), "cli:uid-%u", (unsigned)geteuid());
	else
		(void)snprintf(c->actor, sizeof(c->actor), "cli:%.80s", pw.pw_name);
}

bool cli_parse(int argc, char **argv, struct cli_common *c, const struct cli_opt *opts,
	       const char **pos, size_t max_pos, size_t *n_pos)
{
	const struct cli_opt common[] = {
		{ "dir", true, &c->dir, NULL },	       { "json", false, NULL, &c->json },
		{ "verbose", false, NULL, &c->verbose }, { "help", false, NULL, &c->help },
		{ NULL, false, NULL, NULL },
	};
	bool only_pos = false;

	memset(c, 0, sizeof(*c));
	*n_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val;
		const struct cli_opt *o;

		if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (*n_pos >= max_pos) {
				(void)cli_usage_error("%s: unexpected argument '%s'", argv[0], arg);
				return false;
			}
			pos[(*n_pos)++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0) {
			c->help = true;
			continue;
		}
		o = find_opt(opts, common, arg, &val);
		if (o == NULL) {
			(void)cli_usage_error("%s: unknown option '%s'; see kiln %s --help", argv[0],
					      arg, argv[0]);
			return false;
		}
		if (!o->has_arg) {
			if (val != NULL) {
				(void)cli_usage_error("%s: option --%s takes no value", argv[0], o->name);
				return false;
			}
			*o->flag = true;
			continue;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				(void)cli_usage_error("%s: option --%s needs a value", argv[0], o->name);
				return false;
			}
			val = argv[++i];
		}
		*o->value = val;
	}
	if (c->dir == NULL)
		c->dir = getenv("KILN_DIR");
	set_actor(c);
	return true;
}

/* "kiln" or "kiln-device": the one line on stderr names the program that failed. */
static const char *program(void)
{
	return program_invocation_short_name;
}

int cli_fail(kiln_result r, const kiln_diag *d)
{
	fprintf(stderr, "%s: %s\n", program(), kiln_diag_message(d, r));
	return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_USAGE;
}

int cli_print_json(json_t *j)
{
	char *s;

	if (j == NULL)
		return cli_fail(kiln_fail(KILN_ERR_NOMEM), NULL);
	s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (s == NULL)
		return cli_fail(kiln_fail(KILN_ERR_NOMEM), NULL);
	puts(s);
	free(s);
	return CLI_OK;
}
