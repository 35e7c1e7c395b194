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

/*
 * RFC 3339 has four-digit years only. Outside 0000..9999 the result is
 * "invalid-time": strftime's %Y also overflows (tm_year + 1900 in an int)
 * for the last years gmtime_r still accepts.
 */
void kiln_time_format(int64_t t, char out[KILN_TIME_STR])
{
	time_t tt = (time_t)t;
	struct tm tm;
	int64_t year;

	if (gmtime_r(&tt, &tm) == NULL) {
		(void)snprintf(out, KILN_TIME_STR, "invalid-time");
		return;
	}
	year = (int64_t)tm.tm_year + 1900;
	if (year < 0 || year > 9999) {
		(void)snprintf(out, KILN_TIME_STR, "invalid-time");
		return;
	}
	(void)snprintf(out, KILN_TIME_STR, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)year, tm.tm_mon + 1,
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int64_t kiln_wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
