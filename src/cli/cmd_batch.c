/* kiln batch open | close | list | show */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char batch_usage[] =
	"usage: kiln --dir DIR batch open --product ID --lot LOT --quantity N\n"
	"                                 [--line LINE] [--station NAME] [--json]\n"
	"       kiln --dir DIR batch close LOT\n"
	"       kiln --dir DIR batch list [--product ID] [--json]\n"
	"       kiln --dir DIR batch show LOT [--json]\n"
	"\n"
	"A batch (lot) is a planned quantity of one product: its issuance budget. Stations\n"
	"provision devices into open lots only (the lot's station only, when --station names\n"
	"one), and never beyond the quantity. A closed lot issues nothing more.\n";

static json_t *batch_json(const struct kiln_batch_rec *b)
{
	char created[KILN_TIME_STR];

	kiln_time_format(b->created, created);
	return json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "lot", b->lot, "product",
			 b->product, "quantity", (json_int_t)b->quantity, "issued",
			 (json_int_t)b->issued, "line", b->line, "station", b->station, "status",
			 b->status, "opened_by", b->opened_by, "created", created);
}

static void batch_line(const struct kiln_batch_rec *b)
{
	printf("%-16s %-16s %-7s %10lld %10lld %-10s %s\n", b->lot, b->product, b->status,
	       (long long)b->issued, (long long)b->quantity, b->line[0] ? b->line : "-",
	       b->station[0] ? b->station : "-");
}

static int batch_open(const struct cli_common *c, const char *product, const char *lot,
		      const char *qty, const char *line, const char *station)
{
	struct kiln_batch_req req = { 0 };
	struct kiln_batch_rec rec;
	struct deployment dep;
	uint64_t n = 0;
	kiln_diag d;
	kiln_result r;
	int rc;

	if (product == NULL || lot == NULL || qty == NULL)
		return cli_usage_error("batch open: --product, --lot and --quantity are required");
	if (!kiln_is_ok(kiln_parse_u64(qty, 1000000000, &n)) || n == 0)
		return cli_usage_error("batch open: --quantity must be 1 to 1000000000");
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_CA, &dep, &d);
	if (kiln_is_ok(r)) {
		req = (struct kiln_batch_req){ product, lot, (int64_t)n, line, station, c->actor };
		r = kiln_ca_batch_open(dep.ca, &req, &rec, &d);
	}
	if (!kiln_is_ok(r))
		rc = cli_fail(r, &d);
	else if (c->json)
		rc = cli_print_json(batch_json(&rec));
	else
		rc = printf("batch %s opened for %s: %lld devices\n", rec.lot, rec.product,
			    (long long)rec.quantity) > 0 ? CLI_OK : CLI_FAIL;
	deploy_close(&dep);
	return rc;
}

static int batch_close(const struct cli_common *c, const char *lot)
{
	struct deployment dep;
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_CA, &dep, &d);
	if (kiln_is_ok(r))
		r = kiln_ca_batch_close(dep.ca, lot, c->actor, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (!c->json)
		printf("batch %s closed\n", lot);
	return c->json ? cli_print_json(json_pack("{s:s,s:s}", "lot", lot, "status", "closed")) : CLI_OK;
}

static int batch_list(const struct cli_common *c, const char *product, const char *lot)
{
	struct kiln_batch_rec *list = NULL, one = { 0 };
	struct deployment dep;
	size_t n = 0;
	kiln_diag d;
	kiln_result r;
	json_t *arr;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r) && lot != NULL) {
		r = kiln_store_batch_get(dep.store, lot, &one, &d);
		list = &one;
		n = 1;
	} else if (kiln_is_ok(r)) {
		r = kiln_store_batch_list(dep.store, product, &list, &n, &d);
	}
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (lot != NULL && c->json)
		return cli_print_json(batch_json(&one));
	arr = json_array();
	if (!c->json)
		printf("%-16s %-16s %-7s %10s %10s %-10s %s\n", "LOT", "PRODUCT", "STATUS", "ISSUED",
		       "QUANTITY", "LINE", "STATION");
	for (size_t i = 0; i < n; i++) {
		if (c->json)
			(void)json_array_append_new(arr, batch_json(&list[i]));
		else
			batch_line(&list[i]);
	}
	if (list != &one)
		free(list);
	if (c->json)
		return cli_print_json(arr);
	json_decref(arr);
	return CLI_OK;
}

int cmd_batch(int argc, char **argv)
{
	const char *product = NULL, *lot = NULL, *qty = NULL, *line = NULL, *station = NULL;
	const char *pos[2];
	const struct cli_opt opts[] = {
		{ "product", true, &product, NULL }, { "lot", true, &lot, NULL },
		{ "quantity", true, &qty, NULL },    { "line", true, &line, NULL },
		{ "station", true, &station, NULL }, { NULL, false, NULL, NULL },
	};
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(batch_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "open") == 0)
		return batch_open(&c, product, lot, qty, line, station);
	if (npos == 2 && strcmp(pos[0], "close") == 0)
		return batch_close(&c, pos[1]);
	if (npos == 1 && strcmp(pos[0], "list") == 0)
		return batch_list(&c, product, NULL);
	if (npos == 2 && strcmp(pos[0], "show") == 0)
		return batch_list(&c, NULL, pos[1]);
	return cli_usage_error("batch: expected open, close LOT, list or show LOT; see kiln batch --help");
}
