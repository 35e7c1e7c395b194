/* kiln: the operator and admin CLI. */
#include "cli.h"

int main(int argc, char **argv)
{
	return kiln_cli_main(argc, argv);
}
