#include <stdio.h>

int main(void)
{
	fputs("kiln: under construction\n", stderr);
	return 1;
}
