/* kiln audit checkpoint | prove | consistency | verify | export */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char audit_usage[] =
	"usage: kiln --dir DIR audit checkpoint [--json]\n"
	"       kiln --dir DIR audit prove (--device ID | --index N) [--size S] [--json]\n"
	"       kiln --dir DIR audit consistency --from A --to B [--json]\n"
	"       kiln --dir DIR audit verify [--json]\n"
	"       kiln audit verify --export DIR [--json]\n"
	"       kiln --dir DIR audit export OUTDIR\n"
	"\n"
	"Every event is a leaf of an RFC 9162 Merkle tree; checkpoints (signed notes, Ed25519,\n"
	"the log key in the service token) commit to its size and root. checkpoint signs one\n"
	"now (needs the service PIN); prove gives an inclusion proof for an event or for a\n"
	"device's issuance in a checkpoint (default: the newest); consistency proves a later\n"
	"checkpoint extends an earlier one. verify recomputes the tree from the events, checks\n"
	"every checkpoint's signature and consistency with the public key alone (DIR/log.pub,\n"
	"or the export's), and names the first index that was modified, deleted, reordered or\n"
	"inserted. export writes events, checkpoints, keys, CA certificates, policy history\n"
	"and a control map (ISO 27001 Annex A, NIST SP 800-53) for auditors.\n"
	"docs/verifying.md checks all of it without kiln.\n";

static json_t *hex_json(const uint8_t h[32])
{
	char hex[65];

	kiln_hex_encode(h, 32, hex);
	return json_string(hex);
}

static json_t *path_json(const struct kiln_merkle_proof *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < p->n; i++)
		(void)json_array_append_new(arr, hex_json(p->hash[i]));
	return arr;
}

static void print_path(const struct kiln_merkle_proof *p)
{
	char hex[65];

	for (size_t i = 0; i < p->n; i++) {
		kiln_hex_encode(p->hash[i], 32, hex);
		printf("  %s\n", hex);
	}
}

static int checkpoint(const struct cli_common *c)
{
	struct kiln_checkpoint_rec cp;
	struct deployment dep;
	bool made = false;
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, true, c->actor, &d);
	if (kiln_is_ok(r))
		r = kiln_ledger_checkpoint(dep.ledger, &cp, &made, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:I,s:o,s:I,s:b,s:s}", "size", (json_int_t)cp.size,
						"root_hash", hex_json(cp.root), "time",
						(json_int_t)cp.time, "new", made, "note", cp.note));
	fputs(cp.note, stdout);
	return CLI_OK;
}

static int prove(const struct cli_common *c, const char *device, const char *index,
		 const char *size)
{
	struct kiln_ledger_inclusion inc;
	struct deployment dep;
	uint64_t idx = 0, sz = 0;
	kiln_diag d;
	kiln_result r;
	char hex[65];

	if ((device == NULL) == (index == NULL))
		return cli_usage_error("audit prove: give --device ID or --index N");
	if (index != NULL && !kiln_is_ok(kiln_parse_u64(index, KILN_MERKLE_SIZE_MAX, &idx)))
		return cli_usage_error("audit prove: --index must be an event number");
	if (size != NULL && (!kiln_is_ok(kiln_parse_u64(size, KILN_MERKLE_SIZE_MAX, &sz)) || sz == 0))
		return cli_usage_error("audit prove: --size must be a checkpoint's tree size");
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, false, c->actor, &d);
	if (kiln_is_ok(r) && device != NULL)
		r = kiln_ledger_device_index(dep.ledger, device, &idx, &d);
	if (kiln_is_ok(r))
		r = kiln_ledger_prove(dep.ledger, idx, sz, &inc, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:I,s:I,s:o,s:o,s:o,s:s}", "index",
						(json_int_t)inc.index, "size", (json_int_t)inc.size,
						"leaf_hash", hex_json(inc.leaf), "root_hash",
						hex_json(inc.root), "inclusion_path",
						path_json(&inc.proof), "checkpoint",
						inc.checkpoint.note));
	kiln_hex_encode(inc.leaf, 32, hex);
	printf("event %llu is in the checkpoint of size %llu\nleaf_hash %s\n",
	       (unsigned long long)inc.index, (unsigned long long)inc.size, hex);
	kiln_hex_encode(inc.root, 32, hex);
	printf("root_hash %s\ninclusion_path (%zu hashes, leaf level first):\n", hex, inc.proof.n);
	print_path(&inc.proof);
	return CLI_OK;
}

static int consistency(const struct cli_common *c, const char *from, const char *to)
{
	struct kiln_checkpoint_rec a, b;
	struct kiln_merkle_proof p;
	struct deployment dep;
	uint64_t m = 0, n = 0;
	kiln_diag d;
	kiln_result r;

	if (from == NULL || to == NULL ||
	    !kiln_is_ok(kiln_parse_u64(from, KILN_MERKLE_SIZE_MAX, &m)) ||
	    !kiln_is_ok(kiln_parse_u64(to, KILN_MERKLE_SIZE_MAX, &n)))
		return cli_usage_error("audit consistency: --from and --to must be checkpoint sizes");
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, false, c->actor, &d);
	if (kiln_is_ok(r))
		r = kiln_ledger_consistency(dep.ledger, m, n, &p, &d);
	if (kiln_is_ok(r))
		r = kiln_store_checkpoint_get(dep.store, (int64_t)m, &a, &d);
	if (kiln_is_ok(r))
		r = kiln_store_checkpoint_get(dep.store, (int64_t)n, &b, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:I,s:I,s:o,s:o,s:o}", "from", (json_int_t)m, "to",
						(json_int_t)n, "from_root", hex_json(a.root),
						"to_root", hex_json(b.root), "consistency_path",
						path_json(&p)));
	printf("checkpoint %llu extends checkpoint %llu\nconsistency_path (%zu hashes):\n",
	       (unsigned long long)n, (unsigned long long)m, p.n);
	print_path(&p);
	return CLI_OK;
}

/* ------------------------------------------------------------ verify */

struct collected {
	uint8_t (*leaves)[32];
	int64_t *seqs;
	size_t n;
	uint8_t (*stored)[32];
	size_t n_stored;
	char **notes;
	size_t n_notes;
};

static void collected_free(struct collected *k)
{
	free(k->leaves);
	free(k->seqs);
	free(k->stored);
	for (size_t i = 0; i < k->n_notes; i++)
		free(k->notes[i]);
	free(k->notes);
}

static kiln_result collect_events(kiln_store *s, struct collected *k, kiln_diag *d)
{
	struct kiln_event_rec *evs = NULL;
	int64_t total = 0, from = 0;
	size_t n = 0;
	kiln_result r = kiln_ok();

	KILN_GUARD(kiln_store_count(s, "events", &total, d));
	k->leaves = calloc((size_t)total + 1, 32);
	k->seqs = calloc((size_t)total + 1, sizeof(*k->seqs));
	KILN_ENSURE(k->leaves != NULL && k->seqs != NULL, KILN_ERR_NOMEM);
	do {
		KILN_GUARD(kiln_store_event_list(s, from, 10000, &evs, &n, d));
		for (size_t i = 0; i < n && kiln_is_ok(r) && k->n < (size_t)total; i++) {
			k->seqs[k->n] = evs[i].seq;
			r = kiln_ledger_event_leaf(&evs[i], k->leaves[k->n]);
			k->n++;
		}
		if (n > 0)
			from = evs[n - 1].seq + 1;
		kiln_store_event_list_free(evs, n);
		KILN_GUARD(r);
	} while (n == 10000);
	return kiln_ok();
}

static kiln_result collect_stored(kiln_store *s, struct collected *k, kiln_diag *d)
{
	const size_t chunk = (size_t)1 << 20;
	int64_t size = 0;
	size_t got = 0;

	KILN_GUARD(kiln_store_ledger_size(s, &size, d));
	k->stored = calloc((size_t)size + 1, 32);
	KILN_ENSURE(k->stored != NULL, KILN_ERR_NOMEM);
	while (k->n_stored < (size_t)size) {
		size_t want = (size_t)size - k->n_stored;

		KILN_GUARD(kiln_store_ledger_get(s, 0, (int64_t)k->n_stored,
						 want < chunk ? want : chunk,
						 k->stored + k->n_stored, &got, d));
		if (got == 0)
			break; /* a gap: only the prefix before it can be authenticated */
		k->n_stored += got;
	}
	return kiln_ok();
}

static kiln_result collect_notes(kiln_store *s, struct collected *k, kiln_diag *d)
{
	struct kiln_checkpoint_rec *cps = NULL;
	size_t n = 0;

	KILN_GUARD(kiln_store_checkpoint_list(s, 0, 0, &cps, &n, d));
	k->notes = calloc(n + 1, sizeof(*k->notes));
	if (k->notes == NULL) {
		free(cps);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		k->notes[i] = strdup(cps[i].note);
		if (k->notes[i] == NULL)
			break;
		k->n_notes++;
	}
	free(cps);
	KILN_ENSURE(k->n_notes == n, KILN_ERR_NOMEM);
	return kiln_ok();
}

static int report(const struct cli_common *c, const struct kiln_audit_report *rep,
		  const char *source)
{
	char hex[65];

	kiln_hex_encode(rep->root, 32, hex);
	if (c->json) {
		int rc = cli_print_json(json_pack("{s:b,s:s,s:I,s:I,s:I,s:s,s:I,s:s}", "ok", rep->ok,
						  "source", source, "events",
						  (json_int_t)rep->events, "checkpoints",
						  (json_int_t)rep->checkpoints, "covered",
						  (json_int_t)rep->covered, "root_hash", hex,
						  "first_bad_index", (json_int_t)rep->first_bad,
						  "problem", rep->what));

		return rep->ok ? rc : CLI_FAIL;
	}
	if (!rep->ok) {
		if (rep->first_bad >= 0)
			fprintf(stderr, "kiln: log verification FAILED at index %lld: %s\n",
				(long long)rep->first_bad, rep->what);
		else
			fprintf(stderr, "kiln: log verification FAILED: %s\n", rep->what);
		return CLI_FAIL;
	}
	printf("log verified: %lld events, %lld checkpoints, signed up to size %lld, root %s\n",
	       (long long)rep->events, (long long)rep->checkpoints, (long long)rep->covered, hex);
	if (rep->events > rep->covered)
		printf("note: events %lld..%lld are not in a checkpoint yet\n",
		       (long long)rep->covered, (long long)rep->events - 1);
	return CLI_OK;
}

static int verify_export(const struct cli_common *c, const char *dir)
{
	struct kiln_export_data e;
	struct kiln_audit_input in = { 0 };
	struct kiln_audit_report rep;
	kiln_diag d;
	kiln_result r;
	int rc;

	kiln_diag_clear(&d);
	r = kiln_export_load(dir, &e, &d);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	in = (struct kiln_audit_input){ (const uint8_t(*)[32])e.leaves, e.seqs, e.n,
					(const char *const *)e.notes, e.n_notes, NULL, 0 };
	r = kiln_audit_verify(&in, &e.key, &rep, &d);
	rc = kiln_is_ok(r) ? report(c, &rep, dir) : cli_fail(r, &d);
	kiln_export_data_cleanup(&e);
	return rc;
}

kiln_result cli_audit_store(kiln_store *s, const struct kiln_note_key *key,
			    struct kiln_audit_report *rep, uint8_t root[32], kiln_diag *d)
{
	struct collected k = { 0 };
	struct kiln_audit_input in;
	struct kiln_merkle_mem m = { 0 };
	struct kiln_merkle_source src;
	kiln_result r;

	r = collect_events(s, &k, d);
	if (kiln_is_ok(r))
		r = collect_stored(s, &k, d);
	if (kiln_is_ok(r))
		r = collect_notes(s, &k, d);
	if (kiln_is_ok(r)) {
		in = (struct kiln_audit_input){ (const uint8_t(*)[32])k.leaves, k.seqs, k.n,
						(const char *const *)k.notes, k.n_notes,
						(const uint8_t(*)[32])k.stored, k.n_stored };
		r = kiln_audit_verify(&in, key, rep, d);
	}
	/* The root over every event, checkpointed or not (what a backup header names). */
	if (kiln_is_ok(r) && root != NULL) {
		r = kiln_merkle_mem_build((const uint8_t(*)[32])k.leaves, k.n, &m);
		src = kiln_merkle_mem_source(&m);
		if (kiln_is_ok(r))
			r = kiln_merkle_root(&src, k.n, root, d);
		kiln_merkle_mem_cleanup(&m);
	}
	collected_free(&k);
	return r;
}

static int verify(const struct cli_common *c, const char *export_dir)
{
	struct kiln_audit_report rep;
	struct deployment dep;
	kiln_diag d;
	kiln_result r;
	int rc;

	if (export_dir != NULL)
		return verify_export(c, export_dir);
	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, false, c->actor, &d);
	if (kiln_is_ok(r))
		r = cli_audit_store(dep.store, kiln_ledger_key(dep.ledger), &rep, NULL, &d);
	rc = kiln_is_ok(r) ? report(c, &rep, "inventory") : cli_fail(r, &d);
	deploy_close(&dep);
	return rc;
}

static int export(const struct cli_common *c, const char *out)
{
	struct kiln_checkpoint_rec cp;
	struct deployment dep;
	kiln_diag d;
	kiln_result r;

	kiln_diag_clear(&d);
	r = deploy_open(c, NEED_STORE, &dep, &d);
	/* With the service PIN at hand, a fresh checkpoint covers every event exported. */
	if (kiln_is_ok(r))
		r = deploy_token_opt(&dep, KILN_ENV_SERVICE, true, &d);
	if (kiln_is_ok(r))
		r = deploy_ledger(&dep, dep.tokens[KILN_ENV_SERVICE] != NULL, c->actor, &d);
	if (kiln_is_ok(r) && dep.tokens[KILN_ENV_SERVICE] != NULL)
		r = kiln_ledger_checkpoint(dep.ledger, &cp, NULL, &d);
	if (kiln_is_ok(r))
		r = kiln_ledger_export(dep.ledger, out, &d);
	deploy_close(&dep);
	if (!kiln_is_ok(r))
		return cli_fail(r, &d);
	if (c->json)
		return cli_print_json(json_pack("{s:s}", "export", out));
	printf("exported the log and its evidence to %s\n", out);
	return CLI_OK;
}

int cmd_audit(int argc, char **argv)
{
	const char *device = NULL, *index = NULL, *size = NULL, *from = NULL, *to = NULL,
		   *export_dir = NULL;
	const char *pos[2];
	const struct cli_opt opts[] = {
		{ "device", true, &device, NULL }, { "index", true, &index, NULL },
		{ "size", true, &size, NULL },	   { "from", true, &from, NULL },
		{ "to", true, &to, NULL },	   { "export", true, &export_dir, NULL },
		{ NULL, false, NULL, NULL },
	};
	struct cli_common c;
	size_t npos;

	if (!cli_parse(argc, argv, &c, opts, pos, 2, &npos))
		return CLI_USAGE;
	if (c.help) {
		fputs(audit_usage, stdout);
		return CLI_OK;
	}
	if (npos == 1 && strcmp(pos[0], "checkpoint") == 0)
		return checkpoint(&c);
	if (npos == 1 && strcmp(pos[0], "prove") == 0)
		return prove(&c, device, index, size);
	if (npos == 1 && strcmp(pos[0], "consistency") == 0)
		return consistency(&c, from, to);
	if (npos == 1 && strcmp(pos[0], "verify") == 0)
		return verify(&c, export_dir);
	if (npos == 2 && strcmp(pos[0], "export") == 0)
		return export(&c, pos[1]);
	return cli_usage_error("audit: expected checkpoint, prove, consistency, verify or "
			       "export DIR; see kiln audit --help");
}
