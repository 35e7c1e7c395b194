/*
 * src/store/snapshot.c: a snapshot of a live inventory holds what was
 * committed and opens as a store; it refuses to overwrite a file; replacing
 * is refused while another connection holds the inventory (the live file
 * stays as it was) and, once free, puts the staged database in place with
 * no stale WAL replayed over it.
 */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static kiln_result event_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct kiln_event_rec ev = { 0 };

	ev.time = 1;
	kiln_strtrunc(ev.type, ctx, sizeof(ev.type));
	kiln_strtrunc(ev.actor, "test", sizeof(ev.actor));
	kiln_strtrunc(ev.subject, "s", sizeof(ev.subject));
	ev.detail_json = (char *)"{}";
	return kiln_store_tx_event_add(tx, &ev, d);
}

static kiln_store *open_store(const char *path, bool create)
{
	struct kiln_store_opts o = { 0 };
	kiln_store *s = NULL;

	o.path = path;
	o.create = create;
	o.readers = 1;
	KT_OK(kiln_store_open(&o, &s, NULL));
	return s;
}

static int64_t events(kiln_store *s)
{
	int64_t n = 0;

	KT_OK(kiln_store_count(s, "events", &n, NULL));
	return n;
}

static void test_snapshot_and_replace(void **state)
{
	char *dir = kt_tmpdir("store-snapshot");
	char *live = kt_path(dir, "kiln.db"), *snap = kt_path(dir, "snap.db");
	char *staged = kt_path(dir, "kiln.db.restore");
	kiln_store *s, *c;
	kiln_diag d;

	(void)state;
	s = open_store(live, true);
	KT_OK(kiln_store_write(s, event_fn, "before", NULL));
	/* While the store is open and writing: a consistent copy of what was committed. */
	kiln_diag_clear(&d);
	KT_OK(kiln_store_snapshot(live, snap, &d));
	KT_OK(kiln_store_write(s, event_fn, "after", NULL));
	assert_int_equal(events(s), 2);
	KT_ERR(kiln_store_snapshot(live, snap, &d), KILN_ERR_EXISTS);
	c = open_store(snap, false);
	assert_int_equal(events(c), 1);
	kiln_store_close(c);
	KT_ERR(kiln_store_snapshot("/nonexistent/kiln.db", staged, &d), KILN_ERR_IO);
	/* Replacing while the live store is open: refused, nothing moved. */
	assert_int_equal(kt_system("cp '%s' '%s'", snap, staged), 0);
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_replace(live, staged, &d), KILN_ERR_BUSY);
	assert_int_equal(access(staged, F_OK), 0);
	assert_int_equal(events(s), 2);
	kiln_store_close(s);
	/* Closed: the snapshot takes the live file's place. */
	KT_OK(kiln_store_replace(live, staged, &d));
	assert_int_not_equal(access(staged, F_OK), 0);
	s = open_store(live, false);
	assert_int_equal(events(s), 1);
	kiln_store_close(s);
	KT_ERR(kiln_store_replace(live, staged, &d), KILN_ERR_IO);
	KT_ERR(kiln_store_snapshot(NULL, staged, &d), KILN_ERR_ARG);
	kt_rmrf(dir);
	free(dir);
	free(live);
	free(snap);
	free(staged);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_and_replace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
