/*
 * EST (RFC 7030) bodies: the base64 PKCS#10 of a request, and the base64
 * certs-only PKCS#7 of a response. Pure: bytes in, bytes out.
 */
#include "crypto.h"

#include <openssl/pkcs7.h>
#include <stdlib.h>
#include <string.h>

static bool b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

kiln_result kiln_est_body_decode(kiln_slice body, kiln_buf *der, kiln_diag *d)
{
	kiln_buf packed;
	kiln_result r;

	if (body.len > KILN_EST_BODY_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "the EST body of %zu bytes exceeds %zu bytes",
				     body.len, KILN_EST_BODY_MAX);
	kiln_buf_init(&packed, KILN_EST_BODY_MAX);
	for (size_t i = 0; i < body.len; i++) {
		uint8_t c = body.ptr[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (!b64_char(c)) {
			r = kiln_diag_set(d, KILN_ERR_MALFORMED,
					  "the EST body is not base64: byte 0x%02x at offset %zu", c, i);
			goto out;
		}
		KILN_TRY(r, kiln_buf_append_u8(&packed, c));
	}
	if (packed.len == 0) {
		r = kiln_diag_set(d, KILN_ERR_CSR_EMPTY, "the EST body holds no certificate request");
		goto out;
	}
	r = kiln_base64_decode(kiln_buf_view(&packed), der);
	if (!kiln_is_ok(r))
		r = kiln_diag_set(d, r.code == KILN_ERR_TOO_BIG ? KILN_ERR_TOO_BIG : KILN_ERR_MALFORMED,
				  "the EST body is not valid base64 (length, padding or trailing bits)");
out:
	kiln_buf_cleanup(&packed);
	return r;
}

kiln_result kiln_est_csr_parse(kiln_slice body, kiln_csr **out, kiln_diag *d)
{
	kiln_buf der;
	kiln_result r;

	*out = NULL;
	kiln_buf_init(&der, KILN_CSR_MAX_BYTES);
	KILN_TRY(r, kiln_est_body_decode(body, &der, d));
	/* PEM inside base64 is not EST: only a DER request may follow. */
	if (der.len == 0 || der.ptr[0] != 0x30) {
		r = kiln_diag_set(d, KILN_ERR_CSR_MALFORMED,
				  "the EST body does not decode to a DER PKCS#10 request");
		goto out;
	}
	r = kiln_csr_parse(kiln_buf_view(&der), out, d);
out:
	kiln_buf_cleanup(&der);
	return r;
}

kiln_result kiln_est_certs_only(X509 *const *certs, size_t n, kiln_buf *out)
{
	PKCS7 *p7 = PKCS7_new();
	unsigned char *der = NULL;
		int len = 0;
	kiln_result r = kiln_fail(KILN_ERR_CRYPTO);

	if (p7 == NULL || n == 0 || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1)
		goto out;
	/* Degenerate SignedData: encapContentInfo names id-data and carries no content. */
	ASN1_OCTET_STRING_free(p7->d.sign->contents->d.data);
	p7->d.sign->contents->d.data = NULL;
	for (size_t i = 0; i < n; i++) {
		if (certs[i] == NULL || PKCS7_add_certificate(p7, certs[i]) != 1)
			goto out;
	}
	len = i2d_PKCS7(p7, &der);
	if (len <= 0)
		goto out;
	/*
	 * One line: RFC 2045 allows breaks, but strongSwan's EST client decodes
	 * base64 without skipping them, and every decoder takes a single line.
	 */
	r = kiln_base64_encode(kiln_slice_of(der, (size_t)len), out);
out:
	OPENSSL_free(der);
	PKCS7_free(p7);
	return r;
}
