/* Wall-clock and monotonic time, RFC 3339 formatting. */
#include "core.h"

#include <stdio.h>

int64_t kiln_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t kiln_mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kiln_time_format(int64_t t, char out[KILN_TIME_STR])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		(void)snprintf(out, KILN_TIME_STR, "invalid-time");
		return;
	}
	(void)strftime(out, KILN_TIME_STR, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
