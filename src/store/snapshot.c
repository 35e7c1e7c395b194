/*
 * Whole-database files for backups (docs/backup.md), SQLite backend:
 * a consistent snapshot of a live inventory, and the atomic replacement of
 * an inventory by a restored one. Both work on paths, beside (not through)
 * an open kiln_store, and both leave the live database alone on failure.
 */
#include "store/store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static kiln_result open_db(const char *path, int flags, sqlite3 **db, kiln_diag *d)
{
	int rc = sqlite3_open_v2(path, db, flags, NULL);

	if (rc != SQLITE_OK) {
		kiln_result r = kiln_sqlite_fail(*db, rc, "opening the inventory", d);

		(void)sqlite3_close(*db);
		*db = NULL;
		return r;
	}
	(void)sqlite3_busy_timeout(*db, 5000);
	return kiln_ok();
}

kiln_result kiln_store_snapshot(const char *db_path, const char *out_path, kiln_diag *d)
{
	sqlite3 *db = NULL;
	char *sql;
	int rc;

	KILN_ENSURE(db_path != NULL && out_path != NULL, KILN_ERR_ARG);
	if (access(out_path, F_OK) == 0)
		return kiln_diag_set(d, KILN_ERR_EXISTS, "%s exists already", out_path);
	KILN_GUARD(open_db(db_path, SQLITE_OPEN_READONLY, &db, d));
	/* VACUUM INTO copies what one read transaction sees: WAL writers go on meanwhile. */
	sql = sqlite3_mprintf("VACUUM INTO %Q", out_path);
	if (sql == NULL) {
		(void)sqlite3_close(db);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		kiln_result r = kiln_sqlite_fail(db, rc, "taking a snapshot of the inventory", d);

		(void)sqlite3_close(db);
		(void)unlink(out_path);
		return r;
	}
	(void)sqlite3_close(db);
	return kiln_ok();
}

static kiln_result fsync_path(const char *path, int flags, kiln_diag *d)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;

		(void)close(fd);
		return kiln_diag_set(d, KILN_ERR_IO, "fsync of %s failed: %s", path, strerror(e));
	}
	(void)close(fd);
	return kiln_ok();
}

/*
 * Folds the live database's WAL into it and closes, so that nothing of the
 * old database waits in DIR/kiln.db-wal to be replayed over the new one.
 * Another open connection keeps the WAL: then the inventory is in use.
 */
static kiln_result quiesce(const char *db_path, kiln_diag *d)
{
	char wal[4096];
	int busy = 1, logged = 0, ckpt = 0;
	sqlite3 *db = NULL;
	int rc;

	KILN_GUARD(open_db(db_path, SQLITE_OPEN_READWRITE, &db, d));
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged, &ckpt);
	if (rc == SQLITE_OK)
		busy = 0;
	(void)sqlite3_close(db);
	if (busy)
		return kiln_diag_set(d, KILN_ERR_BUSY,
				     "the inventory is in use by another process; stop it first");
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", db_path) >= sizeof(wal))
		return kiln_fail(KILN_ERR_TOO_BIG);
	if (access(wal, F_OK) == 0)
		return kiln_diag_set(d, KILN_ERR_BUSY,
				     "the inventory is in use by another process (its WAL is open); "
				     "stop it first");
	return kiln_ok();
}

kiln_result kiln_store_replace(const char *db_path, const char *staged_path, kiln_diag *d)
{
	char dir[4096], side[4096];

	KILN_ENSURE(db_path != NULL && staged_path != NULL, KILN_ERR_ARG);
	if (strlen(db_path) >= sizeof(dir) - 8)
		return kiln_fail(KILN_ERR_TOO_BIG);
	KILN_GUARD(quiesce(db_path, d));
	KILN_GUARD(fsync_path(staged_path, O_RDONLY, d));
	if (rename(staged_path, db_path) != 0)
		return kiln_diag_set(d, KILN_ERR_IO, "cannot rename %s to %s: %s", staged_path,
				     db_path, strerror(errno));
	/* A stale shared-memory index must not describe the new file. */
	(void)snprintf(side, sizeof(side), "%s-shm", db_path);
	(void)unlink(side);
	memcpy(dir, db_path, strlen(db_path) + 1);
	return fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY, d);
}
