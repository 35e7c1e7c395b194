/* Whole-file reads with a ceiling and atomic, durable writes. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kiln_result kiln_file_read(const char *path, size_t max, kiln_buf *out, kiln_diag *d)
{
	kiln_result r = kiln_ok();
	uint8_t chunk[8192];
	int fd, err;

	/* Initialised first, so the caller can clean up out on every path. */
	kiln_buf_init(out, max);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		return kiln_diag_set(d, err == ENOENT ? KILN_ERR_NOT_FOUND : KILN_ERR_IO, "%s: %s",
				     path, strerror(err));
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = kiln_diag_set(d, KILN_ERR_IO, "%s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		r = kiln_buf_append(out, chunk, (size_t)n);
		if (!kiln_is_ok(r)) {
			r = kiln_diag_set(d, r.code, "%s: larger than the %zu-byte limit", path, max);
			break;
		}
	}
	(void)close(fd);
	kiln_wipe(chunk, sizeof(chunk));
	if (!kiln_is_ok(r))
		kiln_buf_cleanup(out);
	return r;
}

static kiln_result fsync_dir_of(const char *path)
{
	char copy[4096];
	int fd;

	KILN_ENSURE(kiln_is_ok(kiln_strlcpy(copy, path, sizeof(copy))), KILN_ERR_ARG);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	KILN_ENSURE(fd >= 0, KILN_ERR_IO);
	if (fsync(fd) != 0) {
		(void)close(fd);
		return kiln_fail(KILN_ERR_IO);
	}
	(void)close(fd);
	return kiln_ok();
}

kiln_result kiln_file_write(const char *path, kiln_slice data, unsigned mode, kiln_diag *d)
{
	char tmp[4096];
	size_t off = 0;
	int fd, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return kiln_diag_set(d, KILN_ERR_ARG, "%s: path too long", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", path, strerror(errno));
	if (fchmod(fd, (mode_t)mode) != 0)
		goto fail;
	while (off < data.len) {
		ssize_t w = write(fd, data.ptr + off, data.len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (!kiln_is_ok(fsync_dir_of(path)))
		return kiln_diag_set(d, KILN_ERR_IO, "%s: cannot sync its directory", path);
	return kiln_ok();
fail:
	n = errno;
	if (fd >= 0)
		(void)close(fd);
	(void)unlink(tmp);
	return kiln_diag_set(d, KILN_ERR_IO, "%s: %s", path, strerror(n));
}
