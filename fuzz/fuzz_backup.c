/*
 * libFuzzer target for the backup file parsers (kiln backup restore reads a
 * file from anywhere): the header and framing (kiln_backup_parse), and the
 * decrypted payload (kiln_backup_payload_parse), each fed the raw input.
 * A parsed header must re-encode to the same 128 bytes.
 * Seeds: fuzz/corpus/backup/.
 */
#include "crypto/crypto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_backup_header h;
	uint8_t again[KILN_BACKUP_HEADER_LEN];
	kiln_slice aad, ct, yaml, db;
	kiln_diag d;

	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_backup_parse(kiln_slice_of(data, size), &h, &aad, &ct, &d))) {
		if (aad.len != KILN_BACKUP_AAD_LEN || ct.len != h.ct_len ||
		    KILN_BACKUP_HEADER_LEN + ct.len != size)
			abort();
		if (!kiln_is_ok(kiln_backup_header_encode(&h, again)) ||
		    memcmp(again, data, KILN_BACKUP_HEADER_LEN) != 0)
			abort();
	}
	kiln_diag_clear(&d);
	if (kiln_is_ok(kiln_backup_payload_parse(kiln_slice_of(data, size), &yaml, &db, &d))) {
		if (yaml.len + db.len + 12 != size)
			abort();
	}
	return 0;
}
