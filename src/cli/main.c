/* kiln: the operator and admin CLI. */
#include "cli.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
	/*
	 * tss2-mu logs every malformed TPM structure a device sends to stderr;
	 * kiln reports refusals as problems and audit events instead. A TSS2_LOG
	 * the operator set wins.
	 */
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	return kiln_cli_main(argc, argv);
}
