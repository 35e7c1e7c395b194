/* Provisioning outcomes: lifetime. */
#include "kiln/agent.h"

#include <string.h>

void kiln_provision_outcome_init(struct kiln_provision_outcome *o)
{
	memset(o, 0, sizeof(*o));
	kiln_buf_init(&o->chain_pem, 1024 * 1024);
}

void kiln_provision_outcome_cleanup(struct kiln_provision_outcome *o)
{
	if (o == NULL)
		return;
	kiln_buf_cleanup(&o->chain_pem);
}
