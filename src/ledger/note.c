/*
 * Checkpoints in the transparency-dev format, signed notes (C2SP signed-note)
 * with Ed25519 keys, verifier keys, and proof queries. The parsers take
 * untrusted bytes: pure, bounded, every line and field checked
 * (fuzz/fuzz_checkpoint.c drives them).
 */
#include "ledger/ledger.h"

#include <openssl/evp.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"

static kiln_result b64_decode(kiln_slice in, uint8_t *out, size_t cap, size_t *len)
{
	kiln_buf b;
	kiln_result r;

	kiln_buf_init(&b, cap);
	r = kiln_base64_decode(in, &b);
	if (kiln_is_ok(r)) {
		if (b.len > 0) /* empty input decodes to no buffer at all */
			memcpy(out, b.ptr, b.len);
		*len = b.len;
	}
	kiln_buf_cleanup(&b);
	return r;
}

/* A note name: non-empty, printable ASCII without spaces or '+' (they delimit keys). */
static bool name_ok(kiln_slice n)
{
	if (n.len == 0 || n.len >= KILN_NOTE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n.len; i++) {
		if (n.ptr[i] <= 0x20 || n.ptr[i] >= 0x7f || n.ptr[i] == '+')
			return false;
	}
	return true;
}

/* The next line (without its '\n'); fails when no '\n' is left. */
static kiln_result next_line(kiln_cursor *c, kiln_slice *line)
{
	const uint8_t *p = c->ptr + c->pos, *nl;
	size_t left = kiln_cursor_remaining(c);

	nl = memchr(p, '\n', left);
	KILN_ENSURE(nl != NULL, KILN_ERR_MALFORMED);
	*line = kiln_slice_of(p, (size_t)(nl - p));
	return kiln_cursor_skip(c, line->len + 1);
}

kiln_result kiln_checkpoint_format(const struct kiln_checkpoint *c, kiln_buf *out)
{
	KILN_ENSURE(name_ok(kiln_slice_str(c->origin)), KILN_ERR_ARG);
	KILN_GUARD(kiln_buf_printf(out, "%s\n%llu\n", c->origin, (unsigned long long)c->size));
	KILN_GUARD(kiln_base64_encode(kiln_slice_of(c->root, 32), out));
	return kiln_buf_append_u8(out, '\n');
}

static kiln_result parse_size(kiln_slice s, uint64_t *out)
{
	char num[24];

	KILN_ENSURE(s.len > 0 && s.len < sizeof(num), KILN_ERR_MALFORMED);
	KILN_ENSURE(s.len == 1 || s.ptr[0] != '0', KILN_ERR_MALFORMED); /* no leading zeros */
	memcpy(num, s.ptr, s.len);
	num[s.len] = '\0';
	return kiln_parse_u64(num, KILN_MERKLE_SIZE_MAX, out);
}

kiln_result kiln_checkpoint_parse(kiln_slice body, struct kiln_checkpoint *out, kiln_diag *d)
{
	kiln_slice origin, size, root, ext;
	kiln_cursor c;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	if (body.len > KILN_NOTE_TEXT_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "checkpoint longer than %d bytes",
				     KILN_NOTE_TEXT_MAX);
	kiln_cursor_init(&c, body);
	if (!kiln_is_ok(next_line(&c, &origin)) || !kiln_is_ok(next_line(&c, &size)) ||
	    !kiln_is_ok(next_line(&c, &root)))
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "checkpoint: expected origin, size and root hash lines");
	if (!name_ok(origin))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "checkpoint: invalid origin line");
	if (!kiln_is_ok(parse_size(size, &out->size)))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "checkpoint: invalid tree size line");
	if (root.len != 44 || !kiln_is_ok(b64_decode(root, out->root, 32, &len)) || len != 32)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "checkpoint: the root hash line is not 32 bytes of base64");
	/* Extension lines: non-empty, no control characters; kiln ignores them. */
	while (kiln_cursor_remaining(&c) > 0) {
		if (!kiln_is_ok(next_line(&c, &ext)) || ext.len == 0)
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "checkpoint: malformed extension line");
	}
	memcpy(out->origin, origin.ptr, origin.len);
	out->origin[origin.len] = '\0';
	return kiln_ok();
}

static kiln_result parse_sig_line(kiln_slice line, struct kiln_note_sig *out)
{
	const uint8_t *sp;
	kiln_slice name, b64;
	uint8_t raw[4 + 512];
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	KILN_ENSURE(line.len > 4 && memcmp(line.ptr, EM_DASH " ", 4) == 0, KILN_ERR_MALFORMED);
	line = kiln_slice_of(line.ptr + 4, line.len - 4);
	sp = memchr(line.ptr, ' ', line.len);
	KILN_ENSURE(sp != NULL, KILN_ERR_MALFORMED);
	name = kiln_slice_of(line.ptr, (size_t)(sp - line.ptr));
	b64 = kiln_slice_of(sp + 1, line.len - name.len - 1);
	KILN_ENSURE(name_ok(name) && b64.len <= 4 * ((sizeof(raw) + 2) / 3), KILN_ERR_MALFORMED);
	KILN_GUARD(b64_decode(b64, raw, sizeof(raw), &len));
	KILN_ENSURE(len >= 5, KILN_ERR_MALFORMED);
	memcpy(out->name, name.ptr, name.len);
	memcpy(out->key_hash, raw, 4);
	out->sig_len = len - 4;
	if (out->sig_len <= sizeof(out->sig))
		memcpy(out->sig, raw + 4, out->sig_len);
	return kiln_ok();
}

kiln_result kiln_note_parse(kiln_slice text, struct kiln_note *out, kiln_diag *d)
{
	const uint8_t *split = NULL;
	kiln_slice line;
	kiln_cursor c;

	memset(out, 0, sizeof(*out));
	if (text.len > KILN_NOTE_TEXT_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "signed note longer than %d bytes",
				     KILN_NOTE_TEXT_MAX);
	for (size_t i = 0; i < text.len; i++) {
		if ((text.ptr[i] < 0x20 && text.ptr[i] != '\n') || text.ptr[i] == 0x7f)
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "signed note: control character at byte %zu", i);
	}
	/* The signatures follow the last blank line; the text before it ends with '\n'. */
	for (size_t i = text.len; i >= 2; i--) {
		if (text.ptr[i - 1] == '\n' && text.ptr[i - 2] == '\n') {
			split = text.ptr + i - 1;
			break;
		}
	}
	if (split == NULL || text.ptr[text.len - 1] != '\n')
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "signed note: no blank line before the signatures");
	out->body = kiln_slice_of(text.ptr, (size_t)(split - text.ptr));
	if (out->body.len < 2)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "signed note: empty text");
	kiln_cursor_init(&c, kiln_slice_of(split + 1, text.len - out->body.len - 1));
	while (kiln_cursor_remaining(&c) > 0) {
		if (out->n_sigs == KILN_NOTE_SIGS_MAX)
			return kiln_diag_set(d, KILN_ERR_TOO_BIG, "signed note: more than %d signatures",
					     KILN_NOTE_SIGS_MAX);
		if (!kiln_is_ok(next_line(&c, &line)) ||
		    !kiln_is_ok(parse_sig_line(line, &out->sigs[out->n_sigs])))
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "signed note: malformed signature line %zu",
					     out->n_sigs + 1);
		out->n_sigs++;
	}
	if (out->n_sigs == 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "signed note: no signature");
	return kiln_ok();
}

kiln_result kiln_note_sig_line(const struct kiln_note_key *k, kiln_slice sig, kiln_buf *out)
{
	uint8_t raw[4 + 64];

	KILN_ENSURE(sig.len == 64, KILN_ERR_ARG);
	memcpy(raw, k->key_hash, 4);
	memcpy(raw + 4, sig.ptr, 64);
	KILN_GUARD(kiln_buf_printf(out, EM_DASH " %s ", k->name));
	KILN_GUARD(kiln_base64_encode(kiln_slice_of(raw, sizeof(raw)), out));
	return kiln_buf_append_u8(out, '\n');
}

kiln_result kiln_note_key_make(const char *name, const uint8_t pub[32], struct kiln_note_key *out)
{
	uint8_t buf[KILN_NOTE_NAME_MAX + 34], h[32];
	size_t n = strlen(name);

	memset(out, 0, sizeof(*out));
	KILN_ENSURE(name_ok(kiln_slice_of(name, n)), KILN_ERR_ARG);
	/* key hash = SHA-256(name || "\n" || 0x01 (Ed25519) || public key)[:4] */
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = 0x01;
	memcpy(buf + n + 2, pub, 32);
	(void)EVP_Digest(buf, n + 34, h, NULL, EVP_sha256(), NULL);
	memcpy(out->name, name, n);
	memcpy(out->key_hash, h, 4);
	memcpy(out->pub, pub, 32);
	return kiln_ok();
}

kiln_result kiln_note_key_format(const struct kiln_note_key *k, kiln_buf *out)
{
	uint8_t raw[33];
	char hex[9];

	raw[0] = 0x01;
	memcpy(raw + 1, k->pub, 32);
	kiln_hex_encode(k->key_hash, 4, hex);
	KILN_GUARD(kiln_buf_printf(out, "%s+%s+", k->name, hex));
	return kiln_base64_encode(kiln_slice_of(raw, sizeof(raw)), out);
}

kiln_result kiln_note_key_parse(kiln_slice text, struct kiln_note_key *out, kiln_diag *d)
{
	const uint8_t *p1, *p2;
	uint8_t raw[40], hash[4];
	char name[KILN_NOTE_NAME_MAX], hex[9];
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	while (text.len > 0 && (text.ptr[text.len - 1] == '\n' || text.ptr[text.len - 1] == ' '))
		text.len--;
	if (text.len > 256 || (p1 = memchr(text.ptr, '+', text.len)) == NULL ||
	    (size_t)(p1 - text.ptr) >= sizeof(name) ||
	    (p2 = memchr(p1 + 1, '+', text.len - (size_t)(p1 - text.ptr) - 1)) == NULL ||
	    p2 - p1 != 9)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "log key: expected name+hash+key");
	memcpy(name, text.ptr, (size_t)(p1 - text.ptr));
	name[p1 - text.ptr] = '\0';
	memcpy(hex, p1 + 1, 8);
	hex[8] = '\0';
	if (!kiln_is_ok(kiln_hex_decode(hex, hash, 4, &len)) || len != 4 ||
	    !kiln_is_ok(b64_decode(kiln_slice_of(p2 + 1, text.len - (size_t)(p2 + 1 - text.ptr)),
				   raw, sizeof(raw), &len)) ||
	    len != 33 || raw[0] != 0x01)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "log key: not an Ed25519 note key");
	if (!kiln_is_ok(kiln_note_key_make(name, raw + 1, out)))
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "log key: invalid name");
	if (memcmp(out->key_hash, hash, 4) != 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "log key: the key hash does not match");
	return kiln_ok();
}

static bool ed25519_ok(const uint8_t pub[32], kiln_slice msg, const uint8_t sig[64])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = pk != NULL && c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) == 1 &&
		  EVP_DigestVerify(c, sig, 64, msg.ptr, msg.len) == 1;

	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	return ok;
}

kiln_result kiln_note_verify(const struct kiln_note_key *k, kiln_slice text,
			     struct kiln_checkpoint *out, kiln_diag *d)
{
	struct kiln_note note;
	bool signed_ok = false;

	memset(out, 0, sizeof(*out));
	KILN_GUARD(kiln_note_parse(text, &note, d));
	for (size_t i = 0; i < note.n_sigs && !signed_ok; i++) {
		const struct kiln_note_sig *s = &note.sigs[i];

		if (strcmp(s->name, k->name) != 0 || memcmp(s->key_hash, k->key_hash, 4) != 0 ||
		    s->sig_len != 64)
			continue;
		signed_ok = ed25519_ok(k->pub, note.body, s->sig);
	}
	if (!signed_ok)
		return kiln_diag_set(d, KILN_ERR_LOG_SIGNATURE,
				     "checkpoint carries no valid signature by log key %s", k->name);
	KILN_GUARD(kiln_checkpoint_parse(note.body, out, d));
	if (strcmp(out->origin, k->name) != 0)
		return kiln_diag_set(d, KILN_ERR_LOG_SIGNATURE,
				     "checkpoint origin %s is not the log %s", out->origin, k->name);
	return kiln_ok();
}

/* ------------------------------------------------------------ queries */

#define QUERY_MAX 1024

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes v into out (cap bytes, NUL-terminated); no control characters. */
static kiln_result pct_decode(kiln_slice v, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < v.len; i++) {
		int c = v.ptr[i];

		if (c == '%') {
			int hi, lo;

			KILN_ENSURE(i + 2 < v.len, KILN_ERR_MALFORMED);
			hi = hexval(v.ptr[i + 1]);
			lo = hexval(v.ptr[i + 2]);
			KILN_ENSURE(hi >= 0 && lo >= 0, KILN_ERR_MALFORMED);
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		KILN_ENSURE(c >= 0x20 && c != 0x7f, KILN_ERR_MALFORMED);
		KILN_ENSURE(o + 1 < cap, KILN_ERR_TOO_BIG);
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return kiln_ok();
}

static kiln_result set_num(kiln_slice v, bool *has, uint64_t *dst, kiln_slice key, kiln_diag *d)
{
	if (*has)
		return kiln_diag_set(d, KILN_ERR_ARG, "query: %.*s given twice", (int)key.len,
				     (const char *)key.ptr);
	if (!kiln_is_ok(parse_size(v, dst)))
		return kiln_diag_set(d, KILN_ERR_ARG, "query: %.*s must be a decimal number below 2^62",
				     (int)key.len, (const char *)key.ptr);
	*has = true;
	return kiln_ok();
}

static kiln_result query_pair(kiln_slice key, kiln_slice v, struct kiln_log_query *q, kiln_diag *d)
{
	static const char *const names[] = { "index", "size", "from", "to", "start", "end" };
	bool *has[] = { &q->has_index, &q->has_size, &q->has_from,
			&q->has_to,    &q->has_start, &q->has_end };
	uint64_t *dst[] = { &q->index, &q->size, &q->from, &q->to, &q->start, &q->end };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (kiln_slice_eq(key, kiln_slice_str(names[i])))
			return set_num(v, has[i], dst[i], key, d);
	}
	if (kiln_slice_eq(key, kiln_slice_str("device"))) {
		if (q->has_device)
			return kiln_diag_set(d, KILN_ERR_ARG, "query: device given twice");
		if (v.len == 0 || !kiln_is_ok(pct_decode(v, q->device, sizeof(q->device))))
			return kiln_diag_set(d, KILN_ERR_ARG, "query: invalid device");
		q->has_device = true;
		return kiln_ok();
	}
	return kiln_diag_set(d, KILN_ERR_ARG, "query: unknown parameter '%.*s'",
			     (int)(key.len > 32 ? 32 : key.len), (const char *)key.ptr);
}

kiln_result kiln_log_query_parse(const char *query, struct kiln_log_query *out, kiln_diag *d)
{
	kiln_slice all;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	if (query == NULL || query[0] == '\0')
		return kiln_ok();
	all = kiln_slice_str(query);
	if (all.len > QUERY_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "query longer than %d bytes", QUERY_MAX);
	while (pos <= all.len) {
		const uint8_t *amp = memchr(all.ptr + pos, '&', all.len - pos), *eq;
		size_t end = amp != NULL ? (size_t)(amp - all.ptr) : all.len;
		kiln_slice pair = kiln_slice_of(all.ptr + pos, end - pos), key, v;

		eq = memchr(pair.ptr, '=', pair.len);
		if (pair.len == 0 || eq == NULL)
			return kiln_diag_set(d, KILN_ERR_ARG, "query: expected name=value pairs");
		key = kiln_slice_of(pair.ptr, (size_t)(eq - pair.ptr));
		v = kiln_slice_of(eq + 1, pair.len - key.len - 1);
		KILN_GUARD(query_pair(key, v, out, d));
		pos = end + 1;
	}
	return kiln_ok();
}
