/* The OpenSSL-built reference TBS kiln_cert_tbs must match byte for byte (cert_ref.c). */
#ifndef KILN_TEST_CERT_REF_H
#define KILN_TEST_CERT_REF_H

#include "crypto/crypto.h"

/* Appends spec's TBS as OpenSSL encodes it; *built (if not NULL) gets the object (caller frees). */
KILN_MUST_USE kiln_result kt_cert_tbs_ref(const struct kiln_cert_spec *spec, kiln_buf *tbs,
					  X509 **built, kiln_diag *d);

#endif
