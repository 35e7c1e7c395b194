/* Dispatch, option parsing and output shared by the kiln commands. */
#include "cli.h"

#include <string.h>

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
	"  batch open --product ID --lot LOT --quantity N | batch close LOT | batch list\n"
	"                         production lots and their issuance budget\n"
	"  revoke (--serial HEX | --device ID | --batch LOT | --station NAME) --reason R\n"
	"                         revoke a certificate; recall a lot or a station's output\n"
	"                         (a recall is a request that N officers approve)\n"
	"  crl --env production|test\n"
	"                         issue and write the CRL of an environment's issuing CA\n"
	"  identity list | identity revoke NAME\n"
	"                         the identities and their roles; lock one out\n"
	"  approve REQUEST-ID --key KEY\n"
	"                         an officer's signed approval of a request\n"
	"  request list | request show ID\n"
	"                         approval requests (policy activation, officers, ...)\n"
	"  serve [--listen ADDR:PORT]\n"
	"                         the HTTPS API: provisioning, batches, inventory\n"
	"  audit checkpoint | prove (--device ID | --index N) [--size S]\n"
	"        | consistency --from A --to B | verify [--export DIR] | export DIR\n"
	"                         the signed Merkle log of every event, its proofs\n"
	"  backup create --out FILE | backup restore FILE [--request ID]\n"
	"                         encrypted backups; a restore needs officer approvals\n"
	"\n"
	"DIR may also come from $KILN_DIR. Every command takes --help.\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },	  { "ca", cmd_ca },		{ "policy", cmd_policy },
	{ "issue", cmd_issue },	  { "identity", cmd_identity }, { "device", cmd_device },
	{ "batch", cmd_batch },	  { "serve", cmd_serve },	{ "audit", cmd_audit },
	{ "revoke", cmd_revoke }, { "crl", cmd_crl },		{ "approve", cmd_approve },
	{ "request", cmd_request }, { "backup", cmd_backup },
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

