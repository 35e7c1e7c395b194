/* Secret hygiene: wiping, constant-time comparison, kernel randomness. */
#include "core.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

void kiln_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

bool kiln_ct_eq(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a;
	const volatile uint8_t *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= (uint8_t)(x[i] ^ y[i]);
	return acc == 0;
}

kiln_result kiln_random(void *p, size_t n)
{
	uint8_t *out = p;

	while (n > 0) {
		ssize_t got = getrandom(out, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return kiln_fail(KILN_ERR_INTERNAL);
		}
		out += got;
		n -= (size_t)got;
	}
	return kiln_ok();
}
