/*
 * kiln-device: the device and station simulator, built on the agent library
 * only (no server, CA or inventory code is linked in).
 *
 *   init       create a simulated device (a root of trust in a state directory)
 *   install    put another firmware image on it (an update, or a tampered one)
 *   provision  run the factory flow for one device, or, with --count, play a
 *              station provisioning many (DIR/devices/<serial>/), --parallel at once
 *   show       what the device is and holds
 */
#include "../args.h"

#include "kiln/agent.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: kiln-device COMMAND ...\n"
	"\n"
	"  init --state DIR --rot dice [--serial S] [--firmware FILE --firmware-version V]\n"
	"       [--vendor-ca CERT --vendor-key KEY]\n"
	"  init --state DIR --rot tpm [--serial S] [--ek-intermediate CERT] [--tamper STAGE]\n"
	"       (the TPM is named by KILN_TPM_TCTI, e.g. swtpm:host=127.0.0.1,port=2321;\n"
	"       STAGE: firmware, option-rom, bootloader, secure-boot-policy)\n"
	"  install --state DIR --firmware FILE --firmware-version V\n"
	"  provision --state DIR --server URL --cert C --key K --ca CA --product ID --lot LOT\n"
	"            [--count N [--parallel P] [--serial-prefix PREFIX]] [--fault F] [--json]\n"
	"  show --state DIR [--json]\n"
	"  request --state DIR --nonce BASE64 [--attestation dice|none] [--fault F]\n"
	"                 print the finish request for a nonce without sending it (debugging)\n"
	"\n"
	"A simulated DICE device keeps its Unique Device Secret and boot images in DIR; its\n"
	"keys are derived at each boot and never stored. provision speaks docs/protocol.md to\n"
	"kiln serve with a station identity (kiln identity add --role station): with --count it\n"
	"plays a station provisioning N devices (created under DIR/devices/ as needed).\n";

/* ------------------------------------------------------------ init, install, show */

static kiln_result read_opt_file(const char *path, kiln_buf *out, kiln_diag *d)
{
	kiln_buf_init(out, 64 * 1024 * 1024);
	if (path == NULL)
		return kiln_ok();
	return kiln_file_read(path, 64 * 1024 * 1024, out, d);
}

static int cmd_init(int argc, char **argv)
{
	const char *state = NULL, *rot = NULL, *serial = NULL, *fw = NULL, *ver = NULL;
	const char *vca = NULL, *vkey = NULL, *ek_inter = NULL, *tamper = NULL;
	const struct cli_opt opts[] = {
		{ "state", true, &state, NULL },     { "rot", true, &rot, NULL },
		{ "serial", true, &serial, NULL },   { "firmware", true, &fw, NULL },
		{ "firmware-version", true, &ver, NULL }, { "vendor-ca", true, &vca, NULL },
		{ "vendor-key", true, &vkey, NULL }, { "ek-intermediate", true, &ek_inter, NULL },
		{ "tamper", true, &tamper, NULL },   { NULL, false, NULL, NULL },
	};
	struct kiln_dice_sim_opts o = { 0 };
	struct cli_common c;
	kiln_buf image;
	kiln_diag d;
	kiln_result r;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (state == NULL || rot == NULL)
		return cli_usage_error("init: --state and --rot are required");
	if (strcmp(rot, "tpm") == 0) {
		struct kiln_tpm_opts to = { serial, ek_inter, tamper };

		if (fw != NULL || ver != NULL || vca != NULL || vkey != NULL)
			return cli_usage_error("init: --rot tpm takes --serial, --ek-intermediate and --tamper only");
		kiln_diag_clear(&d);
		r = kiln_rot_tpm_create(state, &to, &d);
		if (!kiln_is_ok(r))
			return cli_fail(r, &d);
		if (!c.json)
			printf("TPM device created in %s\n", state);
		return CLI_OK;
	}
	if (strcmp(rot, "dice") != 0)
		return cli_usage_error("init: --rot %s is not available (dice, tpm)", rot);
	if (ek_inter != NULL || tamper != NULL)
		return cli_usage_error("init: --ek-intermediate and --tamper are for --rot tpm");
	if ((vca == NULL) != (vkey == NULL))
		return cli_usage_error("init: --vendor-ca and --vendor-key go together");
	kiln_diag_clear(&d);
	r = read_opt_file(fw, &image, &d);
	if (kiln_is_ok(r)) {
		o = (struct kiln_dice_sim_opts){ .serial = serial,
						 .firmware = kiln_buf_view(&image),
						 .firmware_version = ver,
						 .vendor_ca_cert = vca,
						 .vendor_ca_key = vkey };
		r = kiln_rot_dice_create(state, &o, &d);
	}
	kiln_buf_cleanup(&image);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (!c.json)
		printf("device created in %s\n", state);
	return CLI_OK;
}

static int cmd_install(int argc, char **argv)
{
	const char *state = NULL, *fw = NULL, *ver = NULL;
	const struct cli_opt opts[] = { { "state", true, &state, NULL },
					{ "firmware", true, &fw, NULL },
					{ "firmware-version", true, &ver, NULL },
					{ NULL, false, NULL, NULL } };
	struct cli_common c;
	kiln_buf image;
	kiln_diag d;
	kiln_result r;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (state == NULL || fw == NULL || ver == NULL)
		return cli_usage_error("install: --state, --firmware and --firmware-version are required");
	kiln_diag_clear(&d);
	r = read_opt_file(fw, &image, &d);
	if (kiln_is_ok(r))
		r = kiln_rot_dice_install(state, kiln_buf_view(&image), ver, &d);
	kiln_buf_cleanup(&image);
	return kiln_is_ok(r) ? CLI_OK : cli_fail(r, &d);
}

static int cmd_show(int argc, char **argv)
{
	const char *state = NULL;
	const struct cli_opt opts[] = { { "state", true, &state, NULL }, { NULL, false, NULL, NULL } };
	struct cli_common c;
	kiln_rot *rot = NULL;
	json_t *info = NULL;
	kiln_diag d;
	kiln_result r;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (state == NULL)
		return cli_usage_error("show: --state is required");
	kiln_diag_clear(&d);
	r = kiln_rot_open(state, &rot, &d);
	if (kiln_is_ok(r))
		r = kiln_rot_device_info(rot, &info);
	if (kiln_is_ok(r)) {
		(void)json_object_set_new(info, "rot", json_string(kiln_rot_type(rot)));
		(void)cli_print_json(info);
	}
	kiln_rot_free(rot);
	return kiln_is_ok(r) ? CLI_OK : cli_fail(r, &d);
}

static int cmd_request(int argc, char **argv)
{
	const char *state = NULL, *nonce_b64 = NULL, *att = "dice", *fault = NULL;
	const struct cli_opt opts[] = { { "state", true, &state, NULL },
					{ "nonce", true, &nonce_b64, NULL },
					{ "attestation", true, &att, NULL },
					{ "fault", true, &fault, NULL },
					{ NULL, false, NULL, NULL } };
	struct cli_common c;
	kiln_rot *rot = NULL;
	json_t *body = NULL;
	kiln_buf nonce;
	kiln_diag d;
	kiln_result r;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (state == NULL || nonce_b64 == NULL)
		return cli_usage_error("request: --state and --nonce are required");
	kiln_buf_init(&nonce, 32);
	if (!kiln_is_ok(kiln_base64_decode(kiln_slice_str(nonce_b64), &nonce)) || nonce.len != 32) {
		kiln_buf_cleanup(&nonce);
		return cli_usage_error("request: --nonce must be the base64 of 32 bytes");
	}
	kiln_diag_clear(&d);
	r = kiln_rot_open(state, &rot, &d);
	if (kiln_is_ok(r) && fault != NULL && !kiln_is_ok(kiln_rot_inject(rot, fault)))
		r = kiln_diag_set(&d, KILN_ERR_ARG, "unknown fault '%s'", fault);
	if (kiln_is_ok(r))
		r = kiln_agent_finish_body(rot, nonce.ptr, att, &body, &d);
	kiln_rot_free(rot);
	kiln_buf_cleanup(&nonce);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	return cli_print_json(body);
}

/* ------------------------------------------------------------ provision */

struct prov_opts {
	struct kiln_client_opts client;
	const char *product;
	const char *lot;
	const char *fault;
	const char *prefix;
	uint64_t count;
	uint64_t parallel;
	bool json;
};

struct station {
	const struct prov_opts *o;
	const char *root;
	unsigned next;      /* next device index, claimed atomically */
	unsigned issued, already, resumed, failed;
	pthread_mutex_t mu; /* serialises the failure lines */
};

/* One device: boot it, inject a fault if asked, provision it. */
static kiln_result provision_one(kiln_client *cl, const struct prov_opts *o, const char *state,
				 struct kiln_provision_outcome *out, kiln_diag *d)
{
	kiln_rot *rot = NULL;
	kiln_result r;

	KILN_GUARD(kiln_rot_open(state, &rot, d));
	r = o->fault != NULL ? kiln_rot_inject(rot, o->fault) : kiln_ok();
	if (!kiln_is_ok(r))
		r = kiln_diag_set(d, r.code, "unknown fault '%s'", o->fault);
	if (kiln_is_ok(r))
		r = kiln_agent_provision(cl, rot, state, o->product, o->lot, out, d);
	kiln_rot_free(rot);
	return r;
}

static kiln_result device_dir(const struct station *st, unsigned i, char *dir, size_t cap,
			      kiln_diag *d)
{
	char serial[KILN_DEVICE_SERIAL_MAX + 1];
	struct kiln_dice_sim_opts so = { 0 };
	kiln_result r;
	int n;

	n = snprintf(serial, sizeof(serial), "%s%06u", st->o->prefix, i + 1);
	KILN_ENSURE(n > 0 && (size_t)n < sizeof(serial), KILN_ERR_TOO_BIG);
	n = snprintf(dir, cap, "%s/devices/%s", st->root, serial);
	KILN_ENSURE(n > 0 && (size_t)n < cap, KILN_ERR_TOO_BIG);
	if (access(dir, F_OK) == 0)
		return kiln_ok();
	so.serial = serial;
	r = kiln_rot_dice_create(dir, &so, d);
	return r.code == KILN_ERR_EXISTS ? kiln_ok() : r;
}

static void *station_worker(void *arg)
{
	struct station *st = arg;
	kiln_client *cl = NULL;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (!kiln_is_ok(kiln_client_new(&st->o->client, &cl, &d))) {
		(void)cli_fail(kiln_fail(d.code), &d);
		__atomic_fetch_add(&st->failed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	for (;;) {
		unsigned i = __atomic_fetch_add(&st->next, 1, __ATOMIC_RELAXED);
		struct kiln_provision_outcome out;
		char dir[4096];
		kiln_result r;

		if (i >= st->o->count)
			break;
		kiln_diag_clear(&d);
		kiln_provision_outcome_init(&out);
		r = device_dir(st, i, dir, sizeof(dir), &d);
		if (kiln_is_ok(r))
			r = provision_one(cl, st->o, dir, &out, &d);
		if (!kiln_is_ok(r)) {
			__atomic_fetch_add(&st->failed, 1, __ATOMIC_RELAXED);
			(void)pthread_mutex_lock(&st->mu);
			fprintf(stderr, "kiln-device: %s: %s\n", dir, kiln_diag_message(&d, r));
			(void)pthread_mutex_unlock(&st->mu);
		} else if (out.already) {
			__atomic_fetch_add(&st->already, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_fetch_add(&st->issued, 1, __ATOMIC_RELAXED);
			if (out.resumed)
				__atomic_fetch_add(&st->resumed, 1, __ATOMIC_RELAXED);
		}
		kiln_provision_outcome_cleanup(&out);
	}
	kiln_client_free(cl);
	return NULL;
}

static int run_station(const struct prov_opts *o, const char *root)
{
	struct station st = { o, root, 0, 0, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER };
	pthread_t th[64];
	char devices[4096];
	uint64_t t0 = kiln_mono_ns();
	double secs;
	unsigned n = (unsigned)o->parallel;

	(void)mkdir(root, 0700);
	(void)snprintf(devices, sizeof(devices), "%s/devices", root);
	(void)mkdir(devices, 0700);
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, station_worker, &st) != 0)
			n = i;
	for (unsigned i = 0; i < n; i++)
		(void)pthread_join(th[i], NULL);
	secs = (double)(kiln_mono_ns() - t0) / 1e9;
	if (o->json)
		(void)cli_print_json(json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "count", (json_int_t)o->count,
					       "issued", (json_int_t)st.issued, "already",
					       (json_int_t)st.already, "resumed", (json_int_t)st.resumed,
					       "failed", (json_int_t)st.failed, "seconds", secs));
	else
		printf("station: %u issued (%u resumed), %u already provisioned, %u failed, %.1f s, "
		       "%.1f devices/s\n",
		       st.issued, st.resumed, st.already, st.failed, secs,
		       secs > 0 ? (double)st.issued / secs : 0.0);
	return st.failed == 0 ? CLI_OK : CLI_FAIL;
}

static int run_single(const struct prov_opts *o, const char *state)
{
	struct kiln_provision_outcome out;
	kiln_client *cl = NULL;
	kiln_diag d;
	kiln_result r;
	int rc;

	kiln_diag_clear(&d);
	kiln_provision_outcome_init(&out);
	r = kiln_client_new(&o->client, &cl, &d);
	if (kiln_is_ok(r))
		r = provision_one(cl, o, state, &out, &d);
	if (!kiln_is_ok(r))
		rc = cli_fail(r, &d);
	else if (o->json)
		rc = cli_print_json(json_pack("{s:s,s:b,s:b,s:I}", "serial", out.cert_serial, "already",
					      out.already, "resumed", out.resumed, "status",
					      (json_int_t)out.status));
	else if (out.already)
		rc = printf("%s: already provisioned (cert.pem)\n", state) > 0 ? CLI_OK : CLI_FAIL;
	else
		rc = printf("%s: provisioned, certificate %s%s -> %s/cert.pem\n", state,
			    out.cert_serial, out.resumed ? " (resumed)" : "", state) > 0 ?
			     CLI_OK :
			     CLI_FAIL;
	kiln_provision_outcome_cleanup(&out);
	kiln_client_free(cl);
	return rc;
}

static int cmd_provision(int argc, char **argv)
{
	const char *state = NULL, *server = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	const char *product = NULL, *lot = NULL, *count = NULL, *parallel = NULL;
	const char *fault = NULL, *prefix = NULL;
	const struct cli_opt opts[] = {
		{ "state", true, &state, NULL },	 { "server", true, &server, NULL },
		{ "cert", true, &cert, NULL },		 { "key", true, &key, NULL },
		{ "ca", true, &ca, NULL },		 { "product", true, &product, NULL },
		{ "lot", true, &lot, NULL },		 { "count", true, &count, NULL },
		{ "parallel", true, &parallel, NULL },	 { "fault", true, &fault, NULL },
		{ "serial-prefix", true, &prefix, NULL }, { NULL, false, NULL, NULL },
	};
	struct prov_opts o = { 0 };
	struct cli_common c;
	char default_prefix[80];
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, NULL, 0, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (state == NULL || server == NULL || cert == NULL || key == NULL || ca == NULL ||
	    product == NULL || lot == NULL)
		return cli_usage_error("provision: --state, --server, --cert, --key, --ca, --product "
				       "and --lot are required");
	o = (struct prov_opts){ { server, cert, key, ca, 0 }, product, lot, fault, prefix, 0, 1,
				c.json };
	if (count != NULL && (!kiln_is_ok(kiln_parse_u64(count, 10000000, &o.count)) || o.count == 0))
		return cli_usage_error("provision: --count must be 1 to 10000000");
	if (parallel != NULL &&
	    (!kiln_is_ok(kiln_parse_u64(parallel, 64, &o.parallel)) || o.parallel == 0))
		return cli_usage_error("provision: --parallel must be 1 to 64");
	if (count == NULL)
		return run_single(&o, state);
	if (prefix == NULL) {
		(void)snprintf(default_prefix, sizeof(default_prefix), "SIM-%.40s-", lot);
		for (char *p = default_prefix; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		o.prefix = default_prefix;
	}
	return run_station(&o, state);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} commands[] = { { "init", cmd_init },
			 { "install", cmd_install },
			 { "provision", cmd_provision },
			 { "show", cmd_show },
			 { "request", cmd_request } };

	/*
	 * tss2 logs TPM error codes to stderr on its own; kiln-device reports
	 * failures in one line of its own. TSS2_LOG set by the user wins.
	 */
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	}
	return cli_usage_error("unknown command '%s'; see kiln-device --help", argv[1]);
}
