/*
 * The auditor's export: everything `kiln audit verify --export DIR` and an
 * outside verifier (tests/verifier/kiln_verify.py, docs/verifying.md) need,
 * public data only: the events exactly as stored, the signed checkpoints,
 * the log key, the CA certificates, the policy history and a control map.
 */
#include "ledger/ledger.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXPORT_MAX ((size_t)1 << 31)
#define PAGE 10000

struct exporter {
	const char *dir;
	kiln_buf sums; /* SHA256SUMS */
	json_t *by_subject; /* product -> [events about it] for the policy history */
};

static kiln_result path_of(const char *dir, const char *rel, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, rel);

	KILN_ENSURE(n > 0 && (size_t)n < cap, KILN_ERR_TOO_BIG);
	return kiln_ok();
}

static kiln_result put_file(struct exporter *x, const char *rel, kiln_slice data, kiln_diag *d)
{
	char path[4096], hex[65];
	uint8_t h[32];

	KILN_GUARD(path_of(x->dir, rel, path, sizeof(path)));
	KILN_GUARD(kiln_file_write(path, data, 0644, d));
	(void)EVP_Digest(data.ptr, data.len, h, NULL, EVP_sha256(), NULL);
	kiln_hex_encode(h, 32, hex);
	return kiln_buf_printf(&x->sums, "%s  %s\n", hex, rel);
}

static kiln_result put_json(struct exporter *x, const char *rel, json_t *j, kiln_diag *d)
{
	kiln_buf b;
	kiln_result r;

	KILN_ENSURE(j != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&b, EXPORT_MAX);
	r = kiln_buf_append_str(&b, "");
	if (kiln_is_ok(r)) {
		char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

		r = text != NULL ? kiln_buf_append_str(&b, text) : kiln_fail(KILN_ERR_NOMEM);
		free(text);
	}
	if (kiln_is_ok(r))
		r = kiln_buf_append_u8(&b, '\n');
	if (kiln_is_ok(r))
		r = put_file(x, rel, kiln_buf_view(&b), d);
	kiln_buf_cleanup(&b);
	json_decref(j);
	return r;
}

static kiln_result make_dir(const char *path, kiln_diag *d)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return kiln_diag_set(d, KILN_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
	return kiln_ok();
}

static kiln_result event_line(struct exporter *x, const struct kiln_event_rec *ev, kiln_buf *out)
{
	uint8_t leaf[32];
	char hex[65];
	json_t *j, *list;
	char *text;
	kiln_result r;

	KILN_GUARD(kiln_ledger_event_leaf(ev, leaf));
	kiln_hex_encode(leaf, 32, hex);
	/* detail is a string: the exact stored text is what the leaf hashes. */
	j = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)ev->seq, "time",
		      (json_int_t)ev->time, "type", ev->type, "actor", ev->actor, "subject",
		      ev->subject, "detail", ev->detail_json != NULL ? ev->detail_json : "{}",
		      "leaf_hash", hex);
	KILN_ENSURE(j != NULL, KILN_ERR_NOMEM);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	KILN_ENSURE(text != NULL, KILN_ERR_NOMEM);
	r = kiln_buf_append_str(out, text);
	free(text);
	KILN_GUARD(r);
	if (ev->subject[0] != '\0' &&
	    (strncmp(ev->type, "policy", 6) == 0 || strstr(ev->type, "approv") != NULL)) {
		list = json_object_get(x->by_subject, ev->subject);
		if (list == NULL) {
			list = json_array();
			(void)json_object_set_new(x->by_subject, ev->subject, list);
		}
		(void)json_array_append_new(list, json_pack("{s:I,s:s,s:s}", "seq",
							    (json_int_t)ev->seq, "type", ev->type,
							    "actor", ev->actor));
	}
	return kiln_buf_append_u8(out, '\n');
}

static kiln_result export_events(struct exporter *x, kiln_store *s, kiln_diag *d)
{
	struct kiln_event_rec *evs = NULL;
	size_t n = 0;
	int64_t from = 0;
	kiln_buf b;
	kiln_result r;

	kiln_buf_init(&b, EXPORT_MAX);
	do {
		KILN_TRY(r, kiln_store_event_list(s, from, PAGE, &evs, &n, d));
		for (size_t i = 0; i < n && kiln_is_ok(r); i++)
			r = event_line(x, &evs[i], &b);
		kiln_store_event_list_free(evs, n);
		evs = NULL;
		KILN_TRY(r, r);
		from += (int64_t)n;
	} while (n == PAGE);
	r = put_file(x, "events.jsonl", kiln_buf_view(&b), d);
out:
	kiln_buf_cleanup(&b);
	return r;
}

static kiln_result export_checkpoints(struct exporter *x, kiln_store *s, kiln_diag *d)
{
	struct kiln_checkpoint_rec *cps = NULL;
	char rel[64], path[4096];
	kiln_result r = kiln_ok();
	size_t n = 0;

	KILN_GUARD(path_of(x->dir, "checkpoints", path, sizeof(path)));
	KILN_GUARD(make_dir(path, d));
	KILN_GUARD(kiln_store_checkpoint_list(s, 0, 0, &cps, &n, d));
	for (size_t i = 0; i < n && kiln_is_ok(r); i++) {
		(void)snprintf(rel, sizeof(rel), "checkpoints/%012lld.txt", (long long)cps[i].size);
		r = put_file(x, rel, kiln_slice_str(cps[i].note), d);
	}
	free(cps);
	return r;
}

static kiln_result export_key(struct exporter *x, const struct kiln_note_key *k, kiln_diag *d)
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pub, 32);
	BIO *bio = BIO_new(BIO_s_mem());
	kiln_buf b;
	char *mem = NULL;
	long len;
	kiln_result r;

	kiln_buf_init(&b, 4096);
	r = kiln_note_key_format(k, &b);
	if (kiln_is_ok(r))
		r = kiln_buf_append_u8(&b, '\n');
	if (kiln_is_ok(r))
		r = put_file(x, "log.pub", kiln_buf_view(&b), d);
	if (kiln_is_ok(r) && (pk == NULL || bio == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1))
		r = kiln_fail(KILN_ERR_CRYPTO);
	if (kiln_is_ok(r)) {
		len = BIO_get_mem_data(bio, &mem);
		r = put_file(x, "log-key.pem", kiln_slice_of(mem, (size_t)len), d);
	}
	BIO_free(bio);
	EVP_PKEY_free(pk);
	kiln_buf_cleanup(&b);
	return r;
}

static kiln_result export_cas(struct exporter *x, kiln_store *s, kiln_diag *d)
{
	struct kiln_ca_rec *cas = NULL;
	char rel[128], path[4096];
	kiln_result r = kiln_ok();
	json_t *index = json_array();
	size_t n = 0;

	KILN_ENSURE(index != NULL, KILN_ERR_NOMEM);
	KILN_GUARD(path_of(x->dir, "ca", path, sizeof(path)));
	KILN_GUARD(make_dir(path, d));
	KILN_GUARD(kiln_store_ca_list(s, &cas, &n, d));
	for (size_t i = 0; i < n && kiln_is_ok(r); i++) {
		const uint8_t *p = cas[i].cert_der;
		X509 *cert = cas[i].cert_der != NULL ? d2i_X509(NULL, &p, (long)cas[i].cert_len) : NULL;
		kiln_buf pem;

		if (cert == NULL)
			continue;
		kiln_buf_init(&pem, 65536);
		(void)snprintf(rel, sizeof(rel), "ca/%s.pem", cas[i].name);
		r = kiln_cert_pem(cert, &pem);
		if (kiln_is_ok(r))
			r = put_file(x, rel, kiln_buf_view(&pem), d);
		(void)json_array_append_new(index, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name",
							     cas[i].name, "env", cas[i].env, "role",
							     cas[i].role, "alg", cas[i].alg, "subject",
							     cas[i].subject, "file", rel));
		kiln_buf_cleanup(&pem);
		X509_free(cert);
	}
	kiln_store_ca_list_free(cas, n);
	if (!kiln_is_ok(r)) {
		json_decref(index);
		return r;
	}
	return put_json(x, "ca/index.json", index, d);
}

static kiln_result export_policies(struct exporter *x, kiln_store *s, kiln_diag *d)
{
	struct kiln_policy_rec *list = NULL;
	char rel[160], path[4096], hex[65];
	json_t *index = json_array(), *ev;
	kiln_result r = kiln_ok();
	size_t n = 0;

	KILN_ENSURE(index != NULL, KILN_ERR_NOMEM);
	KILN_GUARD(path_of(x->dir, "policies", path, sizeof(path)));
	KILN_GUARD(make_dir(path, d));
	KILN_GUARD(kiln_store_policy_list(s, &list, &n, d));
	for (size_t i = 0; i < n && kiln_is_ok(r); i++) {
		struct kiln_policy_rec p = { 0 };

		r = kiln_store_policy_get(s, list[i].product, list[i].version, &p, d);
		if (!kiln_is_ok(r))
			break;
		(void)snprintf(rel, sizeof(rel), "policies/%s-v%lld.yaml", p.product,
			       (long long)p.version);
		r = put_file(x, rel, kiln_slice_of(p.yaml, p.yaml_len), d);
		kiln_hex_encode(p.sha256, 32, hex);
		ev = json_object_get(x->by_subject, p.product);
		(void)json_array_append_new(
			index, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:I,s:s,s:O}", "product",
					 p.product, "version", (json_int_t)p.version, "env", p.env,
					 "status", p.status, "sha256", hex, "added_by", p.added_by,
					 "created", (json_int_t)p.created, "file", rel,
					 "events_and_approvals", ev != NULL ? ev : json_array()));
		kiln_policy_rec_cleanup(&p);
	}
	kiln_store_policy_list_free(list, n);
	if (!kiln_is_ok(r)) {
		json_decref(index);
		return r;
	}
	return put_json(x, "policies/index.json", index, d);
}

/* Which files are evidence for which control (ISO/IEC 27001:2022 Annex A, NIST SP 800-53 r5). */
static const struct {
	const char *framework, *control, *title, *evidence, *how;
} controls[] = {
	{ "ISO/IEC 27001:2022 Annex A", "A.5.15", "Access control", "events.jsonl",
	  "identity-add, auth-failure and rejection events name who acted and what was refused" },
	{ "ISO/IEC 27001:2022 Annex A", "A.5.28", "Collection of evidence",
	  "events.jsonl checkpoints/ log.pub SHA256SUMS",
	  "signed checkpoints over an RFC 9162 Merkle tree of every event; verifiable offline" },
	{ "ISO/IEC 27001:2022 Annex A", "A.5.33", "Protection of records",
	  "checkpoints/ log.pub log-key.pem",
	  "any modification, deletion, reordering or insertion of an event breaks a signed root" },
	{ "ISO/IEC 27001:2022 Annex A", "A.8.15", "Logging", "events.jsonl checkpoints/",
	  "issuance, rejection, revocation, policy, approval, identity, CA and authentication events" },
	{ "ISO/IEC 27001:2022 Annex A", "A.8.24", "Use of cryptography", "ca/ log-key.pem",
	  "CA certificates and the log key; their private keys are non-extractable HSM keys" },
	{ "ISO/IEC 27001:2022 Annex A", "A.8.32", "Change management", "policies/",
	  "every policy version with its SHA-256, author, status and approval events" },
	{ "NIST SP 800-53 Rev. 5", "AU-2", "Event logging", "events.jsonl",
	  "the event types kiln records (docs/verifying.md)" },
	{ "NIST SP 800-53 Rev. 5", "AU-3", "Content of audit records", "events.jsonl",
	  "time, type, actor, subject and detail of each event" },
	{ "NIST SP 800-53 Rev. 5", "AU-9(3)", "Cryptographic protection of audit information",
	  "checkpoints/ log.pub", "Ed25519 signed checkpoints from a key held in the HSM" },
	{ "NIST SP 800-53 Rev. 5", "AU-10", "Non-repudiation", "checkpoints/ events.jsonl",
	  "inclusion proofs tie each event to a signed checkpoint" },
	{ "NIST SP 800-53 Rev. 5", "CM-3", "Configuration change control", "policies/",
	  "policy versions, hashes and approvals" },
	{ "NIST SP 800-53 Rev. 5", "AC-5", "Separation of duties", "policies/ events.jsonl",
	  "approval events by distinct approvers" },
	{ "NIST SP 800-53 Rev. 5", "SC-12", "Cryptographic key establishment and management",
	  "ca/ events.jsonl", "CA ceremonies (ca-create events) and the CA certificates" },
	{ "NIST SP 800-53 Rev. 5", "SI-7", "Software, firmware, and information integrity",
	  "events.jsonl policies/", "firmware and evidence digests in issuance events" },
};

static kiln_result export_controls(struct exporter *x, kiln_diag *d)
{
	json_t *arr = json_array();

	KILN_ENSURE(arr != NULL, KILN_ERR_NOMEM);
	for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
		(void)json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s}", "framework",
							   controls[i].framework, "control",
							   controls[i].control, "title",
							   controls[i].title, "evidence",
							   controls[i].evidence, "how",
							   controls[i].how));
	return put_json(x, "controls.json", arr, d);
}

kiln_result kiln_ledger_export(kiln_ledger *l, const char *dir, kiln_diag *d)
{
	struct exporter x = { dir, { 0 }, json_object() };
	char path[4096];
	kiln_store *s;
	kiln_result r;

	KILN_ENSURE(x.by_subject != NULL, KILN_ERR_NOMEM);
	kiln_buf_init(&x.sums, (size_t)64 << 20);
	s = kiln_ledger_store(l);
	KILN_TRY(r, make_dir(dir, d));
	KILN_TRY(r, export_events(&x, s, d));
	KILN_TRY(r, export_checkpoints(&x, s, d));
	KILN_TRY(r, export_key(&x, kiln_ledger_key(l), d));
	KILN_TRY(r, export_cas(&x, s, d));
	KILN_TRY(r, export_policies(&x, s, d));
	KILN_TRY(r, export_controls(&x, d));
	KILN_TRY(r, path_of(dir, "SHA256SUMS", path, sizeof(path)));
	r = kiln_file_write(path, kiln_buf_view(&x.sums), 0644, d);
out:
	kiln_buf_cleanup(&x.sums);
	json_decref(x.by_subject);
	return r;
}

/* ------------------------------------------------------------ loading an export */

void kiln_export_data_cleanup(struct kiln_export_data *e)
{
	if (e == NULL)
		return;
	free(e->leaves);
	free(e->seqs);
	for (size_t i = 0; i < e->n_notes; i++)
		free(e->notes[i]);
	free(e->notes);
	memset(e, 0, sizeof(*e));
}

static kiln_result load_event(kiln_slice line, size_t lineno, struct kiln_export_data *e,
			      kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };
	json_t *j = NULL, *seq, *time;
	const char *type, *actor, *subject, *detail;
	kiln_result r;

	r = kiln_json_parse(line, KILN_STORE_BLOB_MAX * 2, &j, d);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "events.jsonl line %zu: not JSON", lineno);
	seq = json_object_get(j, "seq");
	time = json_object_get(j, "time");
	if (!json_is_integer(seq) || !json_is_integer(time) ||
	    !kiln_is_ok(kiln_json_get_str(j, "type", sizeof(ev.type) - 1, true, &type, NULL)) ||
	    !kiln_is_ok(kiln_json_get_str(j, "actor", sizeof(ev.actor) - 1, true, &actor, NULL)) ||
	    !kiln_is_ok(kiln_json_get_str(j, "subject", sizeof(ev.subject) - 1, true, &subject,
					  NULL)) ||
	    !kiln_is_ok(kiln_json_get_str(j, "detail", KILN_STORE_BLOB_MAX, true, &detail, NULL)) ||
	    json_integer_value(seq) < 0) {
		json_decref(j);
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "events.jsonl line %zu: needs seq, time, type, actor, subject "
				     "and detail", lineno);
	}
	ev.seq = json_integer_value(seq);
	ev.time = json_integer_value(time);
	kiln_strtrunc(ev.type, type, sizeof(ev.type)); /* lengths checked above */
	kiln_strtrunc(ev.actor, actor, sizeof(ev.actor));
	kiln_strtrunc(ev.subject, subject, sizeof(ev.subject));
	ev.detail_json = (char *)(uintptr_t)detail;
	e->seqs[e->n] = ev.seq;
	r = kiln_ledger_event_leaf(&ev, e->leaves[e->n]);
	json_decref(j);
	if (kiln_is_ok(r))
		e->n++;
	return r;
}

static kiln_result load_events(const char *dir, struct kiln_export_data *e, kiln_diag *d)
{
	char path[4096];
	size_t lines = 0, pos = 0, lineno = 0;
	kiln_buf text;
	kiln_result r = kiln_ok();

	KILN_GUARD(path_of(dir, "events.jsonl", path, sizeof(path)));
	KILN_GUARD(kiln_file_read(path, EXPORT_MAX, &text, d));
	for (size_t i = 0; i < text.len; i++)
		lines += text.ptr[i] == '\n';
	e->leaves = calloc(lines + 1, 32);
	e->seqs = calloc(lines + 1, sizeof(*e->seqs));
	if (e->leaves == NULL || e->seqs == NULL)
		r = kiln_fail(KILN_ERR_NOMEM);
	while (kiln_is_ok(r) && pos < text.len) {
		const uint8_t *nl = memchr(text.ptr + pos, '\n', text.len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text.ptr) : text.len;

		lineno++;
		if (end > pos && e->n <= lines)
			r = load_event(kiln_slice_of(text.ptr + pos, end - pos), lineno, e, d);
		pos = end + 1;
	}
	kiln_buf_cleanup(&text);
	return r;
}

static kiln_result load_checkpoints(const char *dir, struct kiln_export_data *e, kiln_diag *d)
{
	char path[4096], file[4400];
	struct dirent *de;
	kiln_result r = kiln_ok();
	DIR *dh;

	KILN_GUARD(path_of(dir, "checkpoints", path, sizeof(path)));
	dh = opendir(path);
	if (dh == NULL)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "%s: no checkpoints directory", path);
	while (kiln_is_ok(r) && (de = readdir(dh)) != NULL) {
		size_t len = strlen(de->d_name);
		kiln_buf text;
		char **grown;

		if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0)
			continue;
		(void)snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		r = kiln_file_read(file, KILN_NOTE_TEXT_MAX, &text, d);
		if (!kiln_is_ok(r))
			break;
		if (text.len == 0) {
			kiln_buf_cleanup(&text);
			continue;
		}
		grown = realloc(e->notes, (e->n_notes + 1) * sizeof(*e->notes));
		if (grown == NULL) {
			kiln_buf_cleanup(&text);
			r = kiln_fail(KILN_ERR_NOMEM);
			break;
		}
		e->notes = grown;
		e->notes[e->n_notes++] = (char *)kiln_buf_take(&text, &len);
	}
	closedir(dh);
	return r;
}

kiln_result kiln_export_load(const char *dir, struct kiln_export_data *out, kiln_diag *d)
{
	char path[4096];
	kiln_buf key;
	kiln_result r;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(path_of(dir, "log.pub", path, sizeof(path)));
	r = kiln_file_read(path, 1024, &key, NULL);
	if (r.code == KILN_ERR_NOT_FOUND)
		return kiln_diag_set(d, r.code, "%s is not a kiln log export: it has no log.pub", dir);
	if (!kiln_is_ok(r))
		return kiln_diag_set(d, r.code, "%s: cannot read the log key", path);
	r = kiln_note_key_parse(kiln_buf_view(&key), &out->key, d);
	kiln_buf_cleanup(&key);
	KILN_GUARD(r);
	r = load_events(dir, out, d);
	if (kiln_is_ok(r))
		r = load_checkpoints(dir, out, d);
	if (!kiln_is_ok(r))
		kiln_export_data_cleanup(out);
	return r;
}
