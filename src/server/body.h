/*
 * Internal to src/server: the JSON request bodies of the /v1 API, parsed by
 * pure, bounded functions (bytes in, struct out; a fuzz target each in
 * fuzz/fuzz_bodies.c). Every parser refuses unknown members, wrong types,
 * over-long strings and bad base64 with a message naming the member.
 */
#ifndef KILN_SERVER_BODY_H
#define KILN_SERVER_BODY_H

#include "attest/attest.h"
#include "core/core.h"

#define KILN_BODY_MAX 65536
#define KILN_BODY_NAME_MAX 63

struct body_batch {
	char product[64];
	char lot[64];
	int64_t quantity;
	char line[64];
	char station[128];
};

struct body_begin {
	char lot[64];
};

struct body_finish {
	uint8_t nonce[KILN_NONCE_LEN];
	kiln_buf csr;                 /* DER */
	char serial[65];
	char firmware_version[64];
	char components_json[1024];   /* canonical: sorted keys, compact; "" when absent */
	struct kiln_evidence evidence;
	bool next;                    /* "next": true asks for the next nonce with the answer */
};

/* POST /v1/revocations: exactly one of serial, device, lot, station; from/to: seconds. */
struct body_revocation {
	char serial[41];
	char device[192];
	char lot[64];
	char station[128];
	int64_t from, to;
	char reason[32];
};

KILN_MUST_USE kiln_result body_revocation_parse(kiln_slice in, struct body_revocation *out,
						kiln_diag *d);
/* POST /v1/requests/{id}/approvals: {"signature": base64 of at most 512 bytes} */
#define KILN_BODY_SIG_MAX 512
struct body_approval {
	uint8_t signature[KILN_BODY_SIG_MAX];
	size_t sig_len;                /* 1 .. KILN_BODY_SIG_MAX */
};
/* POST /v1/provision/activate: {"nonce", "ek_cert", "ek_intermediate"?, "ak_public"}, base64. */
struct body_activate {
	uint8_t nonce[KILN_NONCE_LEN];
	kiln_buf ek_cert;          /* DER, at most KILN_EVIDENCE_CERT_MAX */
	kiln_buf ek_intermediate;  /* DER, empty when absent */
	kiln_buf ak_public;        /* TPM2B_PUBLIC, at most KILN_TPM2_PUBLIC_MAX */
};

void body_activate_init(struct body_activate *a);
void body_activate_cleanup(struct body_activate *a);
KILN_MUST_USE kiln_result body_activate_parse(kiln_slice in, struct body_activate *out,
					      kiln_diag *d);

KILN_MUST_USE kiln_result body_batch_parse(kiln_slice in, struct body_batch *out, kiln_diag *d);
KILN_MUST_USE kiln_result body_begin_parse(kiln_slice in, struct body_begin *out, kiln_diag *d);
KILN_MUST_USE kiln_result body_approval_parse(kiln_slice in, struct body_approval *out,
					      kiln_diag *d);
void body_finish_init(struct body_finish *f);
void body_finish_cleanup(struct body_finish *f);
KILN_MUST_USE kiln_result body_finish_parse(kiln_slice in, struct body_finish *out, kiln_diag *d);

#endif
