/*
 * The backup file format (docs/backup.md): a fixed 128-byte header, then the
 * AES-256-GCM ciphertext of the payload. Pure: bytes in, structs out, no I/O.
 *
 *   off  len  field
 *     0    8  magic "KILNBKUP"
 *     8    2  version (1), big-endian
 *    10    2  header length (128)
 *    12   16  deployment id (16 lower-case hex digits)
 *    28    8  created, seconds since the epoch
 *    36    8  ledger tree size at backup time
 *    44   32  ledger root hash (RFC 9162) of that tree
 *    76   12  GCM IV
 *    88    8  ciphertext length
 *    96   16  reserved, zero
 *   112   16  GCM tag
 *   128    -  ciphertext
 *
 * The AAD is the header's first 112 bytes (everything but the tag), so no
 * header field can change without the tag failing. The payload is
 * u32 yaml length || kiln.yaml || u64 database length || SQLite database.
 */
#include "crypto/crypto.h"

#include <string.h>

static const uint8_t magic[8] = { 'K', 'I', 'L', 'N', 'B', 'K', 'U', 'P' };

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static bool hex_id_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

kiln_result kiln_backup_header_encode(const struct kiln_backup_header *h,
				      uint8_t out[KILN_BACKUP_HEADER_LEN])
{
	KILN_ENSURE(h != NULL && out != NULL, KILN_ERR_ARG);
	KILN_ENSURE(strlen(h->deployment) == KILN_BACKUP_ID_LEN &&
			    hex_id_ok(h->deployment, KILN_BACKUP_ID_LEN) && h->created >= 0 &&
			    h->ct_len <= KILN_BACKUP_MAX,
		    KILN_ERR_ARG);
	memset(out, 0, KILN_BACKUP_HEADER_LEN);
	memcpy(out, magic, sizeof(magic));
	put_be(out + 8, KILN_BACKUP_VERSION, 2);
	put_be(out + 10, KILN_BACKUP_HEADER_LEN, 2);
	memcpy(out + 12, h->deployment, KILN_BACKUP_ID_LEN);
	put_be(out + 28, (uint64_t)h->created, 8);
	put_be(out + 36, h->tree_size, 8);
	memcpy(out + 44, h->root, 32);
	memcpy(out + 76, h->iv, 12);
	put_be(out + 88, h->ct_len, 8);
	memcpy(out + KILN_BACKUP_AAD_LEN, h->tag, 16);
	return kiln_ok();
}

static kiln_result bad(kiln_diag *d, const char *what)
{
	return kiln_diag_set(d, KILN_ERR_BACKUP_FORMAT, "not a kiln backup: %s", what);
}

kiln_result kiln_backup_parse(kiln_slice file, struct kiln_backup_header *out, kiln_slice *aad,
			      kiln_slice *ct, kiln_diag *d)
{
	uint8_t m[8], reserved[16], zero[16] = { 0 };
	uint16_t version = 0, hlen = 0;
	uint64_t created = 0;
	kiln_cursor c;
	kiln_slice rest;

	KILN_ENSURE(out != NULL && aad != NULL && ct != NULL, KILN_ERR_ARG);
	memset(out, 0, sizeof(*out));
	kiln_cursor_init(&c, file);
	if (file.len < KILN_BACKUP_HEADER_LEN) {
		if (file.len >= sizeof(m) && memcmp(file.ptr, magic, sizeof(m)) != 0)
			return bad(d, "wrong magic");
		return bad(d, "truncated header");
	}
	KILN_GUARD(kiln_cursor_copy(&c, m, sizeof(m)));
	if (memcmp(m, magic, sizeof(m)) != 0)
		return bad(d, "wrong magic");
	KILN_GUARD(kiln_cursor_u16be(&c, &version));
	if (version != KILN_BACKUP_VERSION)
		return kiln_diag_set(d, KILN_ERR_BACKUP_FORMAT,
				     "backup format version %u; this kiln reads version %u",
				     (unsigned)version, (unsigned)KILN_BACKUP_VERSION);
	KILN_GUARD(kiln_cursor_u16be(&c, &hlen));
	if (hlen != KILN_BACKUP_HEADER_LEN)
		return bad(d, "header length");
	KILN_GUARD(kiln_cursor_copy(&c, out->deployment, KILN_BACKUP_ID_LEN));
	out->deployment[KILN_BACKUP_ID_LEN] = '\0';
	if (!hex_id_ok(out->deployment, KILN_BACKUP_ID_LEN))
		return bad(d, "deployment id");
	KILN_GUARD(kiln_cursor_u64be(&c, &created));
	if (created > (uint64_t)INT64_MAX)
		return bad(d, "creation time");
	out->created = (int64_t)created;
	KILN_GUARD(kiln_cursor_u64be(&c, &out->tree_size));
	KILN_GUARD(kiln_cursor_copy(&c, out->root, 32));
	KILN_GUARD(kiln_cursor_copy(&c, out->iv, 12));
	KILN_GUARD(kiln_cursor_u64be(&c, &out->ct_len));
	KILN_GUARD(kiln_cursor_copy(&c, reserved, sizeof(reserved)));
	if (memcmp(reserved, zero, sizeof(zero)) != 0)
		return bad(d, "reserved bytes are not zero");
	KILN_GUARD(kiln_cursor_copy(&c, out->tag, 16));
	if (out->ct_len > KILN_BACKUP_MAX)
		return bad(d, "ciphertext larger than 1 GiB");
	if (kiln_cursor_remaining(&c) < out->ct_len)
		return kiln_diag_set(d, KILN_ERR_BACKUP_FORMAT,
				     "truncated backup: the header announces %llu bytes of "
				     "ciphertext, the file holds %zu",
				     (unsigned long long)out->ct_len, kiln_cursor_remaining(&c));
	if (kiln_cursor_remaining(&c) > out->ct_len)
		return bad(d, "bytes after the ciphertext");
	KILN_GUARD(kiln_cursor_bytes(&c, (size_t)out->ct_len, &rest));
	*aad = kiln_slice_of(file.ptr, KILN_BACKUP_AAD_LEN);
	*ct = rest;
	return kiln_ok();
}

kiln_result kiln_backup_payload_encode(kiln_slice yaml, kiln_slice db, kiln_buf *out)
{
	uint8_t len4[4], len8[8];

	KILN_ENSURE(out != NULL, KILN_ERR_ARG);
	KILN_ENSURE(yaml.len <= KILN_BACKUP_YAML_MAX && db.len <= KILN_BACKUP_MAX, KILN_ERR_TOO_BIG);
	put_be(len4, yaml.len, 4);
	put_be(len8, db.len, 8);
	KILN_GUARD(kiln_buf_append(out, len4, sizeof(len4)));
	KILN_GUARD(kiln_buf_append_slice(out, yaml));
	KILN_GUARD(kiln_buf_append(out, len8, sizeof(len8)));
	return kiln_buf_append_slice(out, db);
}

kiln_result kiln_backup_payload_parse(kiln_slice payload, kiln_slice *yaml, kiln_slice *db,
				      kiln_diag *d)
{
	static const char sqlite_magic[16] = "SQLite format 3";
	uint32_t ylen = 0;
	uint64_t dlen = 0;
	kiln_cursor c;

	KILN_ENSURE(yaml != NULL && db != NULL, KILN_ERR_ARG);
	kiln_cursor_init(&c, payload);
	if (!kiln_is_ok(kiln_cursor_u32be(&c, &ylen)) || ylen > KILN_BACKUP_YAML_MAX ||
	    !kiln_is_ok(kiln_cursor_bytes(&c, ylen, yaml)) ||
	    !kiln_is_ok(kiln_cursor_u64be(&c, &dlen)) || dlen > KILN_BACKUP_MAX ||
	    dlen != kiln_cursor_remaining(&c) ||
	    !kiln_is_ok(kiln_cursor_bytes(&c, (size_t)dlen, db)))
		return bad(d, "the decrypted payload is malformed");
	if (db->len < 100 || memcmp(db->ptr, sqlite_magic, sizeof(sqlite_magic)) != 0)
		return bad(d, "the payload holds no SQLite database");
	return kiln_ok();
}
