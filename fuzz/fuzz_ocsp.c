/*
 * libFuzzer target for the OCSPRequest walker (src/crypto/ocsp.c): pure and
 * bounded, so the whole input goes to it. Seeds: fuzz/corpus/ocsp/ (requests
 * made with openssl ocsp: SHA-1 and SHA-256 CertIDs, with and without a
 * nonce, several CertIDs). Besides memory safety, the contract: success
 * yields 1..KILN_OCSP_MAX_IDS CertIDs whose slices lie inside the input,
 * with hash lengths matching the algorithm, and a nonce extension inside the
 * input when there is one; a response built from them assembles.
 */
#include "crypto/crypto.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(kiln_slice s, const uint8_t *data, size_t size)
{
	if (s.len > 0 && (s.ptr < data || s.ptr + s.len > data + size))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_ocsp_request req;
	struct kiln_ocsp_single s[KILN_OCSP_MAX_IDS];
	static const uint8_t key_hash[20];
	kiln_buf tbs;

	if (!kiln_is_ok(kiln_ocsp_request_parse(kiln_slice_of(data, size), &req)))
		return 0;
	if (req.n == 0 || req.n > KILN_OCSP_MAX_IDS)
		__builtin_trap();
	inside(req.nonce_ext, data, size);
	for (size_t i = 0; i < req.n; i++) {
		const struct kiln_ocsp_certid *id = &req.ids[i];

		inside(id->tlv, data, size);
		inside(id->serial, data, size);
		inside(id->name_hash, data, size);
		inside(id->key_hash, data, size);
		if (id->serial.len == 0 || id->serial.len > 21 || (id->serial.ptr[0] & 0x80))
			__builtin_trap();
		if (id->hash == KILN_OCSP_SHA1 && id->name_hash.len != 20)
			__builtin_trap();
		if (id->hash == KILN_OCSP_SHA256 && id->key_hash.len != 32)
			__builtin_trap();
		s[i] = (struct kiln_ocsp_single){ id->tlv, (int)(i % 3), 1795262400, (int)(i % 11 == 7 ? 0 : i % 11),
						  1795262400, 1795266000 };
	}
	kiln_buf_init(&tbs, 1 << 20);
	if (!kiln_is_ok(kiln_ocsp_tbs(key_hash, 1795262400, s, req.n, req.nonce_ext, &tbs)))
		__builtin_trap();
	if (!kiln_is_ok(kiln_der_check(kiln_buf_view(&tbs))))
		__builtin_trap();
	kiln_buf_cleanup(&tbs);
	return 0;
}
