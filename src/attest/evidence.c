/* Evidence records: lifetime. (Parsing and verification live beside, per type.) */
#include "attest.h"

#include <string.h>

void kiln_evidence_init(struct kiln_evidence *ev)
{
	memset(ev, 0, sizeof(*ev));
	kiln_buf_init(&ev->dice.alias_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->dice.deviceid_cert, KILN_EVIDENCE_CERT_MAX);
	kiln_buf_init(&ev->dice.signature, KILN_EVIDENCE_SIG_MAX);
}

void kiln_evidence_cleanup(struct kiln_evidence *ev)
{
	if (ev == NULL)
		return;
	kiln_buf_cleanup(&ev->dice.alias_cert);
	kiln_buf_cleanup(&ev->dice.deviceid_cert);
	kiln_buf_cleanup(&ev->dice.signature);
}
