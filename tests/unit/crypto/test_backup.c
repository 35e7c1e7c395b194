/*
 * src/crypto/backup.c: the backup header and payload formats. Round trips,
 * and every refusal of the parser (short, wrong magic, other version, header
 * length, deployment id, reserved bytes, truncated, trailing bytes, a
 * malformed payload) as KILN_ERR_BACKUP_FORMAT with its reason.
 */
#include "support/support.h"

#include "crypto/crypto.h"

#include <string.h>

static void sample(struct kiln_backup_header *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->deployment, "0123456789abcdef", 17);
	h->created = 1795000000;
	h->tree_size = 42;
	memset(h->root, 0xab, 32);
	memset(h->iv, 0x11, 12);
	memset(h->tag, 0x22, 16);
	h->ct_len = 5;
}

/* A file: header for h, then h->ct_len bytes of "ciphertext". */
static size_t file_of(const struct kiln_backup_header *h, uint8_t *out)
{
	KT_OK(kiln_backup_header_encode(h, out));
	memset(out + KILN_BACKUP_HEADER_LEN, 0x5a, (size_t)h->ct_len);
	return KILN_BACKUP_HEADER_LEN + (size_t)h->ct_len;
}

static void refused(const uint8_t *p, size_t n, const char *why)
{
	struct kiln_backup_header got;
	kiln_slice aad, ct;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_backup_parse(kiln_slice_of(p, n), &got, &aad, &ct, &d), KILN_ERR_BACKUP_FORMAT);
	if (strstr(d.text, why) == NULL)
		fail_msg("wanted '%s' in '%s'", why, d.text);
}

static void test_round_trip(void **state)
{
	struct kiln_backup_header h, got;
	uint8_t file[256];
	kiln_slice aad, ct;
	size_t n;
	kiln_diag d;

	(void)state;
	sample(&h);
	n = file_of(&h, file);
	assert_memory_equal(file, "KILNBKUP", 8);
	kiln_diag_clear(&d);
	KT_OK(kiln_backup_parse(kiln_slice_of(file, n), &got, &aad, &ct, &d));
	assert_string_equal(got.deployment, h.deployment);
	assert_int_equal(got.created, h.created);
	assert_int_equal(got.tree_size, 42);
	assert_memory_equal(got.root, h.root, 32);
	assert_memory_equal(got.iv, h.iv, 12);
	assert_memory_equal(got.tag, h.tag, 16);
	assert_int_equal(got.ct_len, 5);
	assert_ptr_equal(aad.ptr, file);
	assert_int_equal(aad.len, KILN_BACKUP_AAD_LEN);
	assert_ptr_equal(ct.ptr, file + KILN_BACKUP_HEADER_LEN);
	assert_int_equal(ct.len, 5);
	/* The tag sits outside the AAD: the last 16 header bytes. */
	assert_memory_equal(file + KILN_BACKUP_AAD_LEN, h.tag, 16);
	/* Bad inputs to the encoder. */
	memcpy(h.deployment, "0123456789ABCDEF", 17);
	KT_ERR(kiln_backup_header_encode(&h, file), KILN_ERR_ARG);
	sample(&h);
	h.ct_len = KILN_BACKUP_MAX + 1;
	KT_ERR(kiln_backup_header_encode(&h, file), KILN_ERR_ARG);
}

static void test_refusals(void **state)
{
	struct kiln_backup_header h;
	uint8_t file[256];
	size_t n;

	(void)state;
	sample(&h);
	n = file_of(&h, file);
	refused(file, 0, "truncated header");
	refused(file, KILN_BACKUP_HEADER_LEN - 1, "truncated header");
	refused(file, n - 1, "truncated backup: the header announces 5 bytes");
	refused(file, KILN_BACKUP_HEADER_LEN, "truncated backup");
	file[n] = 0;
	refused(file, n + 1, "bytes after the ciphertext");
	file[0] = 'X';
	refused(file, n, "wrong magic");
	refused(file, 20, "wrong magic");
	file[0] = 'K';
	file[9] = 2;
	refused(file, n, "backup format version 2; this kiln reads version 1");
	file[9] = 1;
	file[11] = 127;
	refused(file, n, "header length");
	file[11] = 128;
	file[12] = 'G';
	refused(file, n, "deployment id");
	file[12] = '0';
	file[100] = 1;
	refused(file, n, "reserved bytes");
	file[100] = 0;
	file[88] = 0x7f;
	refused(file, n, "larger than 1 GiB");
	file[88] = 0;
	file[28] = 0x80;
	refused(file, n, "creation time");
}

static void test_payload(void **state)
{
	static const char yaml[] = "version: 1\n";
	uint8_t db[128];
	kiln_slice y, b;
	kiln_buf p;
	kiln_diag d;

	(void)state;
	memset(db, 0, sizeof(db));
	memcpy(db, "SQLite format 3", 16);
	kiln_buf_init(&p, 1 << 16);
	KT_OK(kiln_backup_payload_encode(kiln_slice_str(yaml), kiln_slice_of(db, sizeof(db)), &p));
	kiln_diag_clear(&d);
	KT_OK(kiln_backup_payload_parse(kiln_buf_view(&p), &y, &b, &d));
	assert_int_equal(y.len, strlen(yaml));
	assert_memory_equal(y.ptr, yaml, y.len);
	assert_int_equal(b.len, sizeof(db));
	/* One byte short, one byte more, no SQLite magic, a yaml length past the end. */
	KT_ERR(kiln_backup_payload_parse(kiln_slice_of(p.ptr, p.len - 1), &y, &b, &d),
	       KILN_ERR_BACKUP_FORMAT);
	KT_OK(kiln_buf_append_u8(&p, 0));
	KT_ERR(kiln_backup_payload_parse(kiln_buf_view(&p), &y, &b, &d), KILN_ERR_BACKUP_FORMAT);
	p.len--;
	p.ptr[4 + strlen(yaml) + 8] = 'X';
	kiln_diag_clear(&d);
	KT_ERR(kiln_backup_payload_parse(kiln_buf_view(&p), &y, &b, &d), KILN_ERR_BACKUP_FORMAT);
	assert_non_null(strstr(d.text, "no SQLite database"));
	p.ptr[0] = 0xff;
	KT_ERR(kiln_backup_payload_parse(kiln_buf_view(&p), &y, &b, &d), KILN_ERR_BACKUP_FORMAT);
	KT_ERR(kiln_backup_payload_parse(kiln_slice_of(p.ptr, 3), &y, &b, &d), KILN_ERR_BACKUP_FORMAT);
	kiln_buf_cleanup(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
