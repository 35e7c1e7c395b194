/*
 * Logging to an explicit sink. Lines are bounded and control characters are
 * replaced, so text that came from outside cannot forge log lines.
 */
#include "core.h"

#include <stdio.h>

static const char *const level_names[] = { "debug", "info", "warn", "error" };

const char *kiln_log_level_name(kiln_log_level level)
{
	if ((unsigned)level > KILN_LOG_ERROR)
		return "?";
	return level_names[level];
}

void kiln_log_sink_file(void *ctx, kiln_log_level level, const char *msg)
{
	FILE *f = ctx != NULL ? ctx : stderr;
	char ts[KILN_TIME_STR];

	kiln_time_format(kiln_now(), ts);
	flockfile(f);
	(void)fprintf(f, "%s %s %s\n", ts, kiln_log_level_name(level), msg);
	(void)fflush(f);
	funlockfile(f);
}

void kiln_log_write(const kiln_log *log, kiln_log_level level, const char *fmt, ...)
{
	char line[KILN_LOG_LINE_MAX];
	va_list ap;

	if (log == NULL || log->fn == NULL || level < log->min)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	log->fn(log->ctx, level, line);
}
