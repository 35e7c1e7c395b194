/*
 * src/store/ledger_sql.c (and its front in store.c): ledger nodes stored once
 * and read back by range (stopping at gaps), the tree size, checkpoints added
 * once, read by size or newest, listed and paged, the issuance lookup, the
 * append-only triggers, and the argument checks.
 */
#include "support/support.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir, *path;
	kiln_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };

	f->dir = kt_tmpdir("store-ledger");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	o.readers = 2;
	KT_OK(kiln_store_open(&o, &f->s, NULL));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

struct nodes {
	const struct kiln_ledger_node *v;
	size_t n;
};

static kiln_result put_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct nodes *n = ctx;

	return kiln_store_tx_ledger_put(tx, n->v, n->n, d);
}

static kiln_result cp_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	return kiln_store_tx_checkpoint_add(tx, ctx, d);
}

static void test_nodes(void **state)
{
	struct fx *f = *state;
	struct kiln_ledger_node v[6];
	struct nodes n = { v, 0 };
	uint8_t out[8][32];
	size_t got = 9;
	int64_t size = -1;

	KT_OK(kiln_store_ledger_size(f->s, &size, NULL));
	assert_int_equal(size, 0);
	for (int i = 0; i < 5; i++) {
		v[i] = (struct kiln_ledger_node){ 0, i < 4 ? i : 6, { 0 } };
		memset(v[i].hash, i + 1, 32);
	}
	v[5] = (struct kiln_ledger_node){ 1, 0, { 0 } };
	memset(v[5].hash, 0x77, 32);
	n.n = 6;
	KT_OK(kiln_store_write(f->s, put_fn, &n, NULL));
	/* Stored again (another process got there first): no error, no change. */
	memset(v[0].hash, 0xee, 32);
	n.n = 1;
	KT_OK(kiln_store_write(f->s, put_fn, &n, NULL));
	KT_OK(kiln_store_ledger_get(f->s, 0, 0, 8, out, &got, NULL));
	assert_int_equal(got, 4); /* 0..3, then a gap at 4 */
	assert_int_equal(out[0][0], 1);
	assert_int_equal(out[3][31], 4);
	KT_OK(kiln_store_ledger_get(f->s, 1, 0, 1, out, &got, NULL));
	assert_int_equal(got, 1);
	assert_int_equal(out[0][0], 0x77);
	KT_OK(kiln_store_ledger_get(f->s, 0, 4, 1, out, &got, NULL));
	assert_int_equal(got, 0);
	KT_OK(kiln_store_ledger_size(f->s, &size, NULL));
	assert_int_equal(size, 7);
	v[0].level = 63;
	n.n = 1;
	KT_ERR(kiln_store_write(f->s, put_fn, &n, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_store_ledger_get(f->s, 0, -1, 1, out, &got, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_store_ledger_get(f->s, 0, 0, ((size_t)1 << 21) + 1, out, &got, NULL),
	       KILN_ERR_ARG);
}

static void test_checkpoints(void **state)
{
	struct fx *f = *state;
	struct kiln_checkpoint_rec c = { 0 }, got;
	struct kiln_checkpoint_rec *list = NULL;
	size_t n = 0;
	kiln_diag d;

	kiln_diag_clear(&d);
	KT_ERR(kiln_store_checkpoint_get(f->s, -1, &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "the log has no checkpoint yet");
	for (int64_t size = 10; size <= 30; size += 10) {
		c.size = size;
		c.time = 1700000000 + size;
		memset(c.root, (int)size, 32);
		(void)snprintf(c.note, sizeof(c.note), "note %lld\n", (long long)size);
		KT_OK(kiln_store_write(f->s, cp_fn, &c, NULL));
	}
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_write(f->s, cp_fn, &c, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "a checkpoint of size 30 exists already");
	KT_OK(kiln_store_checkpoint_get(f->s, -1, &got, NULL));
	assert_int_equal(got.size, 30);
	KT_OK(kiln_store_checkpoint_get(f->s, 20, &got, NULL));
	assert_string_equal(got.note, "note 20\n");
	assert_int_equal(got.root[31], 20);
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_checkpoint_get(f->s, 25, &got, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no checkpoint of size 25");
	KT_OK(kiln_store_checkpoint_list(f->s, 15, 0, &list, &n, NULL));
	assert_int_equal(n, 2);
	assert_int_equal(list[0].size, 20);
	free(list);
	KT_OK(kiln_store_checkpoint_list(f->s, 0, 1, &list, &n, NULL));
	assert_int_equal(n, 1);
	free(list);
	c.note[0] = '\0';
	c.size = 40;
	KT_ERR(kiln_store_write(f->s, cp_fn, &c, NULL), KILN_ERR_ARG);
	KT_ERR(kiln_store_checkpoint_list(f->s, -1, 0, &list, &n, NULL), KILN_ERR_ARG);
}

static void test_append_only_and_find(void **state)
{
	struct fx *f = *state;
	struct kiln_event_rec ev = { 0 };
	sqlite3 *db;
	int64_t seq = -1;
	kiln_diag d;

	memcpy(ev.type, "issuance", 9);
	memcpy(ev.actor, "unit", 5);
	memcpy(ev.subject, "0a0b", 5);
	KT_OK(kiln_store_event_add(f->s, &ev, NULL));
	KT_OK(kiln_store_event_add(f->s, &ev, NULL));
	KT_OK(kiln_store_event_find(f->s, "issuance", "0a0b", &seq, NULL));
	assert_int_equal(seq, 0); /* the first */
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_event_find(f->s, "issuance", "ffff", &seq, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no issuance event about ffff");
	KT_OK(kiln_store_ledger_size(f->s, &seq, NULL));
	/* The derived tables are append-only, like the events. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO checkpoints VALUES (1, zeroblob(32), 1, 'n');"
					  "INSERT INTO ledger_nodes VALUES (0, 0, zeroblob(32))",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM checkpoints", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE ledger_nodes SET idx = 5", NULL, NULL, NULL),
			     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM ledger_nodes", NULL, NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_only_and_find, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
