/*
 * DICE (TCG DICE Attestation Architecture): the DiceTcbInfo certificate
 * extension, read from untrusted bytes with the bounded DER reader and written
 * with the DER writer, and the message a device's Alias key signs to bind the
 * server's nonce, the CSR and the device serial.
 *
 * The reader is strict DER with two documented leniencies that real devices
 * need: an empty but present UTF8String is read as absent, and the flags BIT
 * STRING may keep trailing zero bits (X.690 11.2.2 says they are removed;
 * several DICE implementations write a fixed 32-bit field).
 */
#include "crypto.h"

#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <string.h>

#define DER_OID 0x06
#define N_FIELDS 10 /* [0] vendor .. [9] type */
#define FIELD_FWIDS 6

/* DER content of the hash algorithm OIDs (2.16.840.1.101.3.4.2.x). */
static const struct {
	int nid;
	const char *name;
	size_t digest_len;
	uint8_t oid[9];
} hashes[] = {
	{ NID_sha256, "SHA-256", 32, { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 } },
	{ NID_sha384, "SHA-384", 48, { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02 } },
	{ NID_sha512, "SHA-512", 64, { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03 } },
};

#define N_HASHES (sizeof(hashes) / sizeof(hashes[0]))

static const char *const field_names[N_FIELDS] = {
	"vendor", "model", "version", "svn", "layer", "index", "fwids", "flags", "vendorInfo", "type",
};

static int hash_index_of_nid(int nid)
{
	for (size_t i = 0; i < N_HASHES; i++)
		if (hashes[i].nid == nid)
			return (int)i;
	return -1;
}

/* The tag field i has: IMPLICIT context-specific, constructed only for SEQUENCE OF FWID. */
static uint8_t field_tag(unsigned i)
{
	return (uint8_t)((i == FIELD_FWIDS ? 0xa0u : 0x80u) | i);
}

/*
 * Text a human will read in messages: well-formed UTF-8 (no overlong forms,
 * surrogates or code points past U+10FFFF) without C0 controls or DEL.
 */
static bool utf8_text_ok(kiln_slice s)
{
	size_t i = 0;

	while (i < s.len) {
		uint8_t b = s.ptr[i];
		size_t n;
		uint32_t cp, min;

		if (b < 0x80) {
			if (b < 0x20 || b == 0x7f)
				return false;
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			n = 1, cp = b & 0x1fu, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			n = 2, cp = b & 0x0fu, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			n = 3, cp = b & 0x07u, min = 0x10000;
		} else {
			return false;
		}
		if (s.len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cb = s.ptr[i + k];

			if ((cb & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cb & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static kiln_result bad(kiln_diag *d, const char *what, unsigned field)
{
	return kiln_diag_set(d, KILN_ERR_MALFORMED, "DiceTcbInfo %s: %s", field_names[field], what);
}

static kiln_result read_text(kiln_slice v, char out[KILN_DICE_STR_MAX], unsigned field,
			     kiln_diag *d)
{
	if (v.len >= KILN_DICE_STR_MAX)
		return bad(d, "longer than 63 bytes", field);
	if (!utf8_text_ok(v))
		return bad(d, "not printable UTF-8 text", field);
	if (v.len > 0)
		memcpy(out, v.ptr, v.len);
	out[v.len] = '\0';
	return kiln_ok();
}

/* A non-negative DER INTEGER that fits 64 bits, minimally encoded. */
static kiln_result read_uint(kiln_slice v, uint64_t *out, unsigned field, kiln_diag *d)
{
	uint64_t x = 0;

	if (v.len == 0)
		return bad(d, "empty INTEGER", field);
	if (v.ptr[0] & 0x80)
		return bad(d, "negative", field);
	if (v.len > 1 && v.ptr[0] == 0 && !(v.ptr[1] & 0x80))
		return bad(d, "INTEGER not minimally encoded", field);
	if (v.len > 9 || (v.len == 9 && v.ptr[0] != 0))
		return bad(d, "larger than 64 bits", field);
	for (size_t i = 0; i < v.len; i++)
		x = (x << 8) | v.ptr[i];
	*out = x;
	return kiln_ok();
}

static kiln_result read_octets(kiln_slice v, uint8_t out[KILN_DICE_STR_MAX], size_t *len,
			       unsigned field, kiln_diag *d)
{
	if (v.len > KILN_DICE_STR_MAX)
		return bad(d, "longer than 64 bytes", field);
	if (v.len > 0)
		memcpy(out, v.ptr, v.len);
	*len = v.len;
	return kiln_ok();
}

/* OperationalFlags: named bit i is bit i of the result (bit 0 is the first, 0x80, bit). */
static kiln_result read_flags(kiln_slice v, uint32_t *out, kiln_diag *d)
{
	uint8_t unused;
	uint32_t flags = 0;

	if (v.len == 0)
		return bad(d, "empty BIT STRING", 7);
	unused = v.ptr[0];
	if (unused > 7 || (v.len == 1 && unused != 0))
		return bad(d, "invalid unused-bits count", 7);
	if (v.len - 1 > 4)
		return bad(d, "more than 32 bits", 7);
	if (v.len > 1 && (v.ptr[v.len - 1] & ((1u << unused) - 1u)) != 0)
		return bad(d, "unused bits are not zero", 7);
	for (size_t i = 1; i < v.len; i++)
		for (unsigned b = 0; b < 8; b++)
			if (v.ptr[i] & (0x80u >> b))
				flags |= 1u << ((i - 1) * 8 + b);
	*out = flags;
	return kiln_ok();
}

static kiln_result read_fwid(kiln_slice seq, struct kiln_dice_fwid *fw, size_t n, kiln_diag *d)
{
	kiln_cursor c;
	kiln_slice oid, digest;
	uint8_t tag;
	int h = -1;

	kiln_cursor_init(&c, seq);
	if (!kiln_is_ok(kiln_der_read(&c, &tag, &oid)) || tag != DER_OID ||
	    !kiln_is_ok(kiln_der_read(&c, &tag, &digest)) || tag != KILN_DER_OCTET_STRING ||
	    kiln_cursor_remaining(&c) != 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "DiceTcbInfo fwids: FWID %zu is not SEQUENCE { OID, OCTET STRING }", n);
	for (size_t i = 0; i < N_HASHES; i++)
		if (oid.len == sizeof(hashes[i].oid) && memcmp(oid.ptr, hashes[i].oid, oid.len) == 0)
			h = (int)i;
	if (h < 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "DiceTcbInfo fwids: FWID %zu uses a hash other than SHA-256, SHA-384 or SHA-512",
				     n);
	if (digest.len != hashes[h].digest_len)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "DiceTcbInfo fwids: FWID %zu has a %zu-byte digest; %s needs %zu", n,
				     digest.len, hashes[h].name, hashes[h].digest_len);
	fw->hash_nid = hashes[h].nid;
	fw->len = digest.len;
	memcpy(fw->digest, digest.ptr, digest.len);
	return kiln_ok();
}

static kiln_result read_fwids(kiln_slice v, struct kiln_dice_tcb_info *t, kiln_diag *d)
{
	kiln_cursor c;

	kiln_cursor_init(&c, v);
	while (kiln_cursor_remaining(&c) > 0) {
		kiln_slice seq;
		uint8_t tag;

		if (t->n_fwids == KILN_DICE_MAX_FWIDS)
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "DiceTcbInfo fwids: more than %d FWIDs", KILN_DICE_MAX_FWIDS);
		if (!kiln_is_ok(kiln_der_read(&c, &tag, &seq)) || tag != KILN_DER_SEQUENCE)
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "DiceTcbInfo fwids: FWID %zu is not a DER SEQUENCE", t->n_fwids);
		KILN_GUARD(read_fwid(seq, &t->fwids[t->n_fwids], t->n_fwids, d));
		t->n_fwids++;
	}
	return kiln_ok();
}

static kiln_result read_field(struct kiln_dice_tcb_info *t, unsigned i, kiln_slice v, kiln_diag *d)
{
	switch (i) {
	case 0:
		return read_text(v, t->vendor, i, d);
	case 1:
		return read_text(v, t->model, i, d);
	case 2:
		return read_text(v, t->version, i, d);
	case 3:
		t->has_svn = true;
		return read_uint(v, &t->svn, i, d);
	case 4:
		t->has_layer = true;
		return read_uint(v, &t->layer, i, d);
	case 5:
		t->has_index = true;
		return read_uint(v, &t->index, i, d);
	case FIELD_FWIDS:
		return read_fwids(v, t, d);
	case 7:
		t->has_flags = true;
		return read_flags(v, &t->flags, d);
	case 8:
		t->has_vendor_info = true;
		return read_octets(v, t->vendor_info, &t->vendor_info_len, i, d);
	case 9:
		t->has_type = true;
		return read_octets(v, t->type, &t->type_len, i, d);
	default:
		return kiln_fail(KILN_ERR_INTERNAL);
	}
}

kiln_result kiln_dice_tcb_info_parse(kiln_slice der, struct kiln_dice_tcb_info *out, kiln_diag *d)
{
	struct kiln_dice_tcb_info t;
	kiln_cursor c, in;
	kiln_slice body;
	uint8_t tag;
	int last = -1;

	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	if (der.len == 0 || der.ptr == NULL)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "DiceTcbInfo is empty");
	if (der.len > KILN_DICE_TCB_INFO_MAX)
		return kiln_diag_set(d, KILN_ERR_TOO_BIG, "DiceTcbInfo of %zu bytes exceeds the %d-byte limit",
				     der.len, KILN_DICE_TCB_INFO_MAX);
	kiln_cursor_init(&c, der);
	if (!kiln_is_ok(kiln_der_read(&c, &tag, &body)) || tag != KILN_DER_SEQUENCE)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "DiceTcbInfo is not a DER SEQUENCE");
	if (kiln_cursor_remaining(&c) != 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED, "DiceTcbInfo has bytes after its SEQUENCE");
	kiln_cursor_init(&in, body);
	while (kiln_cursor_remaining(&in) > 0) {
		kiln_slice v;
		unsigned i;

		if (!kiln_is_ok(kiln_der_read(&in, &tag, &v)))
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "DiceTcbInfo holds a field that is not well-formed DER");
		i = tag & 0x1fu;
		if (i >= N_FIELDS || tag != field_tag(i))
			return kiln_diag_set(d, KILN_ERR_MALFORMED,
					     "DiceTcbInfo holds an unexpected tag 0x%02x", tag);
		if ((int)i <= last)
			return bad(d, "repeated or out of order", i);
		last = (int)i;
		KILN_GUARD(read_field(&t, i, v, d));
	}
	*out = t;
	return kiln_ok();
}

/* ------------------------------------------------------------------ encoder */

static kiln_result write_text(kiln_buf *b, unsigned i, const char s[KILN_DICE_STR_MAX])
{
	const char *end = memchr(s, '\0', KILN_DICE_STR_MAX);

	KILN_ENSURE(end != NULL, KILN_ERR_ARG);
	if (end == s)
		return kiln_ok(); /* "" is absent */
	KILN_ENSURE(utf8_text_ok(kiln_slice_of(s, (size_t)(end - s))), KILN_ERR_ARG);
	return kiln_der_write(b, field_tag(i), kiln_slice_of(s, (size_t)(end - s)));
}

static kiln_result write_uint(kiln_buf *b, unsigned i, uint64_t v)
{
	uint8_t be[9];
	size_t start = 1;

	be[0] = 0;
	for (size_t k = 0; k < 8; k++)
		be[1 + k] = (uint8_t)(v >> (56 - 8 * k));
	while (start < 8 && be[start] == 0 && !(be[start + 1] & 0x80))
		start++;
	if (be[start] & 0x80)
		start--; /* keep it positive */
	return kiln_der_write(b, field_tag(i), kiln_slice_of(be + start, 9 - start));
}

static kiln_result write_fwids(kiln_buf *b, const struct kiln_dice_tcb_info *t)
{
	kiln_buf list, one;
	kiln_result r = kiln_ok();

	KILN_ENSURE(t->n_fwids <= KILN_DICE_MAX_FWIDS, KILN_ERR_ARG);
	kiln_buf_init(&list, KILN_DICE_TCB_INFO_MAX);
	kiln_buf_init(&one, KILN_DICE_TCB_INFO_MAX);
	for (size_t n = 0; n < t->n_fwids; n++) {
		const struct kiln_dice_fwid *fw = &t->fwids[n];
		int h = hash_index_of_nid(fw->hash_nid);

		if (h < 0 || fw->len != hashes[h].digest_len) {
			r = kiln_fail(KILN_ERR_ARG);
			goto out;
		}
		kiln_buf_reset(&one);
		KILN_TRY(r, kiln_der_write(&one, DER_OID,
					   kiln_slice_of(hashes[h].oid, sizeof(hashes[h].oid))));
		KILN_TRY(r, kiln_der_write(&one, KILN_DER_OCTET_STRING,
					   kiln_slice_of(fw->digest, fw->len)));
		KILN_TRY(r, kiln_der_write(&list, KILN_DER_SEQUENCE, kiln_buf_view(&one)));
	}
	r = kiln_der_write(b, field_tag(FIELD_FWIDS), kiln_buf_view(&list));
out:
	kiln_buf_cleanup(&list);
	kiln_buf_cleanup(&one);
	return r;
}

/* Named bits with trailing zero bits removed (X.690 11.2.2). */
static kiln_result write_flags(kiln_buf *b, uint32_t flags)
{
	uint8_t v[5] = { 0 };
	unsigned high = 0;

	if (flags == 0)
		return kiln_der_write(b, field_tag(7), kiln_slice_of(v, 1));
	for (unsigned bit = 0; bit < 32; bit++) {
		if (flags & (1u << bit)) {
			v[1 + bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
			high = bit;
		}
	}
	v[0] = (uint8_t)(7 - high % 8);
	return kiln_der_write(b, field_tag(7), kiln_slice_of(v, 2 + high / 8));
}

kiln_result kiln_dice_tcb_info_encode(const struct kiln_dice_tcb_info *in, kiln_buf *out)
{
	kiln_buf body;
	kiln_result r;

	KILN_ENSURE(in != NULL && out != NULL, KILN_ERR_ARG);
	KILN_ENSURE(in->vendor_info_len <= KILN_DICE_STR_MAX && in->type_len <= KILN_DICE_STR_MAX,
		    KILN_ERR_ARG);
	kiln_buf_init(&body, KILN_DICE_TCB_INFO_MAX);
	KILN_TRY(r, write_text(&body, 0, in->vendor));
	KILN_TRY(r, write_text(&body, 1, in->model));
	KILN_TRY(r, write_text(&body, 2, in->version));
	if (in->has_svn)
		KILN_TRY(r, write_uint(&body, 3, in->svn));
	if (in->has_layer)
		KILN_TRY(r, write_uint(&body, 4, in->layer));
	if (in->has_index)
		KILN_TRY(r, write_uint(&body, 5, in->index));
	if (in->n_fwids > 0)
		KILN_TRY(r, write_fwids(&body, in));
	if (in->has_flags)
		KILN_TRY(r, write_flags(&body, in->flags));
	if (in->has_vendor_info)
		KILN_TRY(r, kiln_der_write(&body, field_tag(8),
					   kiln_slice_of(in->vendor_info, in->vendor_info_len)));
	if (in->has_type)
		KILN_TRY(r, kiln_der_write(&body, field_tag(9), kiln_slice_of(in->type, in->type_len)));
	r = kiln_der_write(out, KILN_DER_SEQUENCE, kiln_buf_view(&body));
out:
	kiln_buf_cleanup(&body);
	return r;
}

kiln_result kiln_dice_tcb_info_of(const X509 *cert, struct kiln_dice_tcb_info *out, kiln_diag *d)
{
	ASN1_OBJECT *oid;
	const ASN1_OCTET_STRING *val;
	X509_EXTENSION *ext;
	int at, again;

	memset(out, 0, sizeof(*out));
	KILN_ENSURE(cert != NULL, KILN_ERR_ARG);
	oid = OBJ_txt2obj(KILN_DICE_TCB_INFO_OID, 1);
	KILN_ENSURE(oid != NULL, KILN_ERR_NOMEM);
	at = X509_get_ext_by_OBJ(cert, oid, -1);
	again = at >= 0 ? X509_get_ext_by_OBJ(cert, oid, at) : -1;
	ASN1_OBJECT_free(oid);
	if (at < 0)
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND,
				     "the certificate carries no DiceTcbInfo extension");
	if (again >= 0)
		return kiln_diag_set(d, KILN_ERR_MALFORMED,
				     "the certificate carries more than one DiceTcbInfo extension");
	ext = X509_get_ext(cert, at);
	val = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
	KILN_ENSURE(val != NULL, KILN_ERR_CRYPTO);
	return kiln_dice_tcb_info_parse(kiln_slice_of(ASN1_STRING_get0_data(val),
						      (size_t)ASN1_STRING_length(val)),
					out, d);
}

/* ------------------------------------------------------------------ binding */

kiln_result kiln_dice_binding(const uint8_t nonce[KILN_NONCE_LEN], kiln_slice csr_der,
			      const char *serial, uint8_t out[KILN_DICE_BINDING_LEN])
{
	static const char label[] = "KILN-DICE-BINDING-V1"; /* sizeof includes the 0x00 */
	uint8_t *p = out;
	unsigned int n = 0;

	_Static_assert(sizeof(label) == 21, "binding label is 20 bytes and a NUL");
	KILN_ENSURE(nonce != NULL && out != NULL && serial != NULL, KILN_ERR_ARG);
	KILN_ENSURE(csr_der.ptr != NULL && csr_der.len > 0, KILN_ERR_ARG);
	memcpy(p, label, sizeof(label));
	p += sizeof(label);
	memcpy(p, nonce, KILN_NONCE_LEN);
	p += KILN_NONCE_LEN;
	KILN_ENSURE(EVP_Digest(csr_der.ptr, csr_der.len, p, &n, EVP_sha256(), NULL) == 1 && n == 32,
		    KILN_ERR_CRYPTO);
	p += 32;
	KILN_ENSURE(EVP_Digest(serial, strlen(serial), p, &n, EVP_sha256(), NULL) == 1 && n == 32,
		    KILN_ERR_CRYPTO);
	return kiln_ok();
}
