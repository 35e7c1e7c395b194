/* Dispatch, option parsing and output shared by the kiln commands. */
#include "cli.h"

#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: kiln [--dir DIR] [--json] COMMAND ...\n"
	"\n"
	"Secure manufacturing provisioning: an HSM-backed CA for device identities.\n"
	"\n"
	"commands:\n"
	"  init --dir DIR [--algorithm p256|p384|ed25519|rsa3072] [--org NAME]\n"
	"                         create a deployment: SoftHSM2 tokens, CAs, inventory\n"
	"  ca list                list the CAs\n"
	"  ca chain --env production|test|service\n"
	"                         print an issuing CA's chain (PEM, issuing first)\n"
	"  policy add FILE.yaml   add a product policy version\n"
	"  policy list            list product policies and their versions\n"
	"  issue --product ID --csr FILE [--out FILE]\n"
	"                         issue a device certificate from a CSR\n"
	"  identity add --name NAME --role ROLE --out PREFIX\n"
	"                         client certificate for a person or station\n"
	"  device list | device show ID\n"
	"                         the device inventory\n"
	"\n"
	"DIR may also come from $KILN_DIR. Every command takes --help.\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },	  { "ca", cmd_ca },		{ "policy", cmd_policy },
	{ "issue", cmd_issue },	  { "identity", cmd_identity }, { "device", cmd_device },
};

int kiln_cli_main(int argc, char **argv)
{
	int i = 1;

	/* Global options before the command are passed on to it. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			puts("kiln 0.1.0");
			return CLI_OK;
		}
		i += (strcmp(argv[i], "--dir") == 0) ? 2 : 1;
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name) != 0)
			continue;
		/* Move the command name to argv[1]: global options then follow it. */
		char *cmd = argv[i];

		memmove(&argv[2], &argv[1], (size_t)(i - 1) * sizeof(char *));
		argv[1] = cmd;
		return commands[c].fn(argc - 1, argv + 1);
	}
	return cli_usage_error("unknown command '%s'; see kiln --help", argv[i]);
}

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

int cli_fail(kiln_result r, const kiln_diag *d)
{
	fprintf(stderr, "kiln: %s\n", kiln_diag_message(d, r));
	return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("kiln: ", stderr);
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
