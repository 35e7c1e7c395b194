/* Unit tests for src/core/log.c: threshold, sanitising, bounded lines, sinks. */
#include "support/support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct capture {
	int calls;
	kiln_log_level level;
	char msg[4 * KILN_LOG_LINE_MAX];
};

static void capture_sink(void *ctx, kiln_log_level level, const char *msg)
{
	struct capture *c = ctx;

	c->calls++;
	c->level = level;
	assert_true(strlen(msg) < sizeof(c->msg));
	memcpy(c->msg, msg, strlen(msg) + 1);
}

static kiln_log capture_log(struct capture *c, kiln_log_level min)
{
	memset(c, 0, sizeof(*c));
	return (kiln_log){ capture_sink, c, min };
}

static void test_level_names(void **state)
{
	(void)state;
	assert_string_equal(kiln_log_level_name(KILN_LOG_DEBUG), "debug");
	assert_string_equal(kiln_log_level_name(KILN_LOG_INFO), "info");
	assert_string_equal(kiln_log_level_name(KILN_LOG_WARN), "warn");
	assert_string_equal(kiln_log_level_name(KILN_LOG_ERROR), "error");
	assert_string_equal(kiln_log_level_name((kiln_log_level)(KILN_LOG_ERROR + 1)), "?");
	assert_string_equal(kiln_log_level_name((kiln_log_level)-1), "?");
}

static void test_threshold(void **state)
{
	struct capture c;
	kiln_log log = capture_log(&c, KILN_LOG_WARN);

	(void)state;
	kiln_log_debug(&log, "debug %d", 1);
	kiln_log_info(&log, "info %d", 2);
	assert_int_equal(c.calls, 0);
	kiln_log_warn(&log, "warn %d", 3);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, KILN_LOG_WARN);
	assert_string_equal(c.msg, "warn 3");
	kiln_log_error(&log, "error %s", "four");
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.level, KILN_LOG_ERROR);
	assert_string_equal(c.msg, "error four");

	log = capture_log(&c, KILN_LOG_DEBUG);
	kiln_log_debug(&log, "all");
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, KILN_LOG_DEBUG);

	log = capture_log(&c, KILN_LOG_ERROR);
	kiln_log_warn(&log, "dropped");
	kiln_log_write(&log, KILN_LOG_ERROR, "kept");
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.msg, "kept");
}

static void test_control_characters_replaced(void **state)
{
	struct capture c;
	kiln_log log = capture_log(&c, KILN_LOG_DEBUG);

	(void)state;
	/* a forged second line, a terminal escape, a tab, DEL, a carriage return */
	kiln_log_info(&log, "user=%s", "bob\n2026-01-01T00:00:00Z error forged\x1b[2J\t\x7f\rend");
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.msg, "user=bob?2026-01-01T00:00:00Z error forged?[2J???end");
	assert_null(strchr(c.msg, '\n'));
	/* every control byte from 0x01 to 0x1f */
	{
		char ctl[32];

		for (int i = 1; i < 32; i++)
			ctl[i - 1] = (char)i;
		ctl[31] = '\0';
		kiln_log_info(&log, "%s", ctl);
		assert_int_equal(strlen(c.msg), 31);
		for (size_t i = 0; i < 31; i++)
			assert_int_equal(c.msg[i], '?');
	}
	/* UTF-8 and printable ASCII pass through */
	kiln_log_info(&log, "caf\xc3\xa9 ~!");
	assert_string_equal(c.msg, "caf\xc3\xa9 ~!");
}

static void test_long_lines_cut(void **state)
{
	struct capture c;
	kiln_log log = capture_log(&c, KILN_LOG_DEBUG);
	char *big = malloc(3 * KILN_LOG_LINE_MAX);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', 3 * KILN_LOG_LINE_MAX - 1);
	big[3 * KILN_LOG_LINE_MAX - 1] = '\0';
	kiln_log_info(&log, "%s", big);
	assert_int_equal(c.calls, 1);
	assert_int_equal(strlen(c.msg), KILN_LOG_LINE_MAX - 1);
	assert_int_equal(c.msg[KILN_LOG_LINE_MAX - 2], 'a');
	/* exactly the limit minus the NUL is not cut */
	big[KILN_LOG_LINE_MAX - 1] = '\0';
	kiln_log_info(&log, "%s", big);
	assert_int_equal(strlen(c.msg), KILN_LOG_LINE_MAX - 1);
	free(big);
}

static void test_null_log_safe(void **state)
{
	kiln_log nofn = { NULL, NULL, KILN_LOG_DEBUG };

	(void)state;
	kiln_log_write(NULL, KILN_LOG_ERROR, "nobody listens %d", 1);
	kiln_log_error(NULL, "nobody");
	kiln_log_write(&nofn, KILN_LOG_ERROR, "no sink");
}

static void check_file_line(const char *text, const char *level, const char *msg)
{
	char want[256];

	/* "2026-11-21T12:00:00Z warn message\n" */
	assert_true(strlen(text) > 21);
	assert_int_equal(text[4], '-');
	assert_int_equal(text[10], 'T');
	assert_int_equal(text[19], 'Z');
	assert_int_equal(text[20], ' ');
	(void)snprintf(want, sizeof(want), "%s %s\n", level, msg);
	assert_string_equal(text + 21, want);
}

static void test_file_sink(void **state)
{
	FILE *f = tmpfile();
	kiln_log log = { kiln_log_sink_file, NULL, KILN_LOG_INFO };
	char text[256];
	size_t n;

	(void)state;
	assert_non_null(f);
	log.ctx = f;
	kiln_log_info(&log, "issued %d certificates", 3);
	kiln_log_debug(&log, "not written");
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	check_file_line(text, "info", "issued 3 certificates");
	assert_int_equal(fclose(f), 0);
}

static void test_file_sink_defaults_to_stderr(void **state)
{
	char *dir = kt_tmpdir("log");
	char *path = kt_path(dir, "stderr.txt");
	kiln_buf b;
	int saved, fd;

	(void)state;
	assert_int_equal(fflush(stderr), 0);
	saved = dup(2);
	assert_true(saved >= 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	kiln_log_sink_file(NULL, KILN_LOG_ERROR, "to stderr");
	assert_int_equal(fflush(stderr), 0);
	assert_int_equal(dup2(saved, 2), 2);
	(void)close(saved);
	(void)close(fd);
	kt_read_file(path, &b);
	check_file_line(kiln_buf_cstr(&b), "error", "to stderr");
	kiln_buf_cleanup(&b);
	kt_rmrf(dir);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_control_characters_replaced),
		cmocka_unit_test(test_long_lines_cut),
		cmocka_unit_test(test_null_log_safe),
		cmocka_unit_test(test_file_sink),
		cmocka_unit_test(test_file_sink_defaults_to_stderr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
