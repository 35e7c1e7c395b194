/*
 * src/store/requests.c: approval requests and approvals (schema v3) and the
 * identity operations governance needs. Every refusal with its code and
 * message, the atomicity of a refused write, execution once, and the
 * database's own rules (triggers) against writes from outside kiln.
 */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fx {
	char *dir;
	char *path;
	kiln_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kiln_store_opts o = { 0 };
	kiln_diag d;

	assert_non_null(f);
	f->dir = kt_tmpdir("store-requests");
	f->path = kt_path(f->dir, "kiln.db");
	o.path = f->path;
	o.create = true;
	kiln_diag_clear(&d);
	KT_OK(kiln_store_open(&o, &f->s, &d));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kiln_store_close(f->s);
	kt_rmrf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

static struct kiln_request_rec request(const char *id, int64_t created, int64_t expires,
				       int64_t quorum)
{
	struct kiln_request_rec q;

	memset(&q, 0, sizeof(q));
	(void)snprintf(q.id, sizeof(q.id), "%s", id);
	(void)snprintf(q.operation, sizeof(q.operation), "policy-activate");
	(void)snprintf(q.params_json, sizeof(q.params_json), "{\"product\":\"w\",\"version\":2}");
	(void)snprintf(q.requester, sizeof(q.requester), "alice");
	memset(q.digest, 0xab, 32);
	q.quorum = quorum;
	q.created = created;
	q.expires = expires;
	return q;
}

static struct kiln_approval_rec approval(const char *id, const char *who)
{
	struct kiln_approval_rec a;

	memset(&a, 0, sizeof(a));
	(void)snprintf(a.request_id, sizeof(a.request_id), "%s", id);
	(void)snprintf(a.approver, sizeof(a.approver), "%s", who);
	(void)snprintf(a.cert_serial, sizeof(a.cert_serial), "0a");
	memset(a.signature, 0x5a, 70);
	a.sig_len = 70;
	return a;
}

struct work {
	const struct kiln_request_rec *q;
	const struct kiln_approval_rec *a;
	const char *execute;
	const char *revoke;
	const char *count_role;
	int64_t now;
	int64_t count;
};

static kiln_result work_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	struct work *w = ctx;

	if (w->q != NULL)
		KILN_GUARD(kiln_store_tx_request_add(tx, w->q, d));
	if (w->a != NULL)
		KILN_GUARD(kiln_store_tx_approval_add(tx, w->a, w->now, &w->count, d));
	if (w->execute != NULL)
		KILN_GUARD(kiln_store_tx_request_execute(tx, w->execute, w->now, d));
	if (w->revoke != NULL)
		KILN_GUARD(kiln_store_tx_identity_revoke(tx, w->revoke, w->now, "left", d));
	if (w->count_role != NULL)
		KILN_GUARD(kiln_store_tx_identity_count(tx, w->count_role, &w->count, d));
	return kiln_ok();
}

static kiln_result run(kiln_store *s, struct work *w, kiln_diag *d)
{
	kiln_diag_clear(d);
	return kiln_store_write(s, work_fn, w, d);
}

static void test_request_round_trip(void **state)
{
	struct fx *f = *state;
	struct kiln_request_rec q = request("req-1", 1000, 2000, 2), back, *list = NULL;
	struct work w = { .q = &q };
	size_t n = 0;
	kiln_diag d;

	KT_OK(run(f->s, &w, &d));
	KT_OK(kiln_store_request_get(f->s, "req-1", &back, &d));
	assert_string_equal(back.operation, "policy-activate");
	assert_string_equal(back.params_json, q.params_json);
	assert_string_equal(back.requester, "alice");
	assert_memory_equal(back.digest, q.digest, 32);
	assert_int_equal(back.quorum, 2);
	assert_int_equal(back.expires, 2000);
	assert_string_equal(back.status, "pending");
	assert_int_equal(back.approvals, 0);
	KT_ERR(run(f->s, &w, &d), KILN_ERR_DUPLICATE);
	assert_string_equal(d.text, "request req-1 already exists");
	kiln_diag_clear(&d);
	KT_ERR(kiln_store_request_get(f->s, "req-2", &back, &d), KILN_ERR_REQUEST_UNKNOWN);
	assert_string_equal(d.text, "no request req-2");
	KT_OK(kiln_store_request_list(f->s, &list, &n, &d));
	assert_int_equal(n, 1);
	free(list);
	/* Bad records never reach the database. */
	q = request("req-3", 1000, 1000, 2);
	KT_ERR(run(f->s, &w, &d), KILN_ERR_ARG);
	q = request("req-3", 1000, 2000, 0);
	KT_ERR(run(f->s, &w, &d), KILN_ERR_ARG);
	q = request("", 1000, 2000, 2);
	KT_ERR(run(f->s, &w, &d), KILN_ERR_ARG);
}

static void test_approvals_and_execution(void **state)
{
	struct fx *f = *state;
	struct kiln_request_rec q = request("req-a", 1000, 2000, 2), back;
	struct kiln_approval_rec bob = approval("req-a", "bob"), carol = approval("req-a", "carol");
	struct kiln_approval_rec ghost = approval("req-x", "bob"), *list = NULL;
	struct work w = { .q = &q };
	size_t n = 0;
	kiln_diag d;

	KT_OK(run(f->s, &w, &d));
	/* Short of its quorum: not executable. */
	w = (struct work){ .a = &bob, .now = 1500 };
	KT_OK(run(f->s, &w, &d));
	assert_int_equal(w.count, 1);
	w = (struct work){ .execute = "req-a", .now = 1500 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_APPROVALS_MISSING);
	assert_string_equal(d.text, "request req-a has 1 of the 2 officer approvals it needs");
	w = (struct work){ .a = &bob, .now = 1500 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_APPROVAL_DUPLICATE);
	assert_string_equal(d.text, "bob has already approved request req-a");
	w = (struct work){ .a = &ghost, .now = 1500 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_REQUEST_UNKNOWN);
	/* The second approval and the execution in one transaction. */
	w = (struct work){ .a = &carol, .execute = "req-a", .now = 1600 };
	KT_OK(run(f->s, &w, &d));
	assert_int_equal(w.count, 2);
	KT_OK(kiln_store_request_get(f->s, "req-a", &back, &d));
	assert_string_equal(back.status, "executed");
	assert_int_equal(back.executed, 1600);
	assert_int_equal(back.approvals, 2);
	/* Once. */
	w = (struct work){ .execute = "req-a", .now = 1700 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_REQUEST_EXECUTED);
	assert_string_equal(d.text, "request req-a was already executed");
	ghost = approval("req-a", "dave");
	w = (struct work){ .a = &ghost, .now = 1700 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_REQUEST_EXECUTED);
	KT_OK(kiln_store_approval_list(f->s, "req-a", &list, &n, &d));
	assert_int_equal(n, 2);
	assert_string_equal(list[0].approver, "bob");
	assert_int_equal(list[0].sig_len, 70);
	free(list);
}

static void test_expiry(void **state)
{
	struct fx *f = *state;
	struct kiln_request_rec q = request("req-e", 1000, 2000, 1), back;
	struct kiln_approval_rec bob = approval("req-e", "bob");
	struct work w = { .q = &q };
	kiln_diag d;

	KT_OK(run(f->s, &w, &d));
	/* At the expiry instant the request is closed: now < expires is open. */
	w = (struct work){ .a = &bob, .now = 2000 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_REQUEST_EXPIRED);
	assert_non_null(strstr(d.text, "request req-e expired at 1970-01-01T00:33:20Z"));
	w = (struct work){ .a = &bob, .now = 1999 };
	KT_OK(run(f->s, &w, &d));
	w = (struct work){ .execute = "req-e", .now = 2000 };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_REQUEST_EXPIRED);
	KT_OK(kiln_store_request_get(f->s, "req-e", &back, &d));
	assert_string_equal(back.status, "pending");
}

/* A refused typed operation leaves nothing, even when fn goes on and commits. */
static kiln_result partial_fn(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct kiln_approval_rec *a = ctx;
	kiln_diag ignored;

	(void)d;
	kiln_diag_clear(&ignored);
	(void)kiln_store_tx_approval_add(tx, a, 5000, NULL, &ignored).code;
	return kiln_ok();
}

static void test_refused_write_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct kiln_request_rec q = request("req-p", 1000, 2000, 1);
	struct kiln_approval_rec bob = approval("req-p", "bob");
	struct work w = { .q = &q };
	int64_t n = -1;
	kiln_diag d;

	KT_OK(run(f->s, &w, &d));
	KT_OK(kiln_store_write(f->s, partial_fn, &bob, &d)); /* expired at 5000 */
	KT_OK(kiln_store_count(f->s, "events", &n, &d));
	assert_int_equal(kt_system("test \"$(sqlite3 '%s' 'SELECT count(*) FROM approvals')\" = 0",
				   f->path), 0);
}

static kiln_result add_identity(kiln_store_tx *tx, void *ctx, kiln_diag *d)
{
	const struct kiln_identity_rec *id = ctx;

	return kiln_store_tx_identity_add(tx, id, d);
}

static void test_identities(void **state)
{
	struct fx *f = *state;
	struct kiln_identity_rec o1 = { 0 }, o2 = { 0 }, *list = NULL, back = { 0 };
	struct work w = { .count_role = "officer" };
	uint8_t spki[32] = { 0 };
	size_t n = 0;
	kiln_diag d;

	(void)snprintf(o1.name, sizeof(o1.name), "o1");
	(void)snprintf(o1.role, sizeof(o1.role), "officer");
	o2 = o1;
	(void)snprintf(o2.name, sizeof(o2.name), "o2");
	kiln_diag_clear(&d);
	KT_OK(kiln_store_write(f->s, add_identity, &o1, &d));
	KT_OK(kiln_store_write(f->s, add_identity, &o2, &d));
	KT_OK(run(f->s, &w, &d));
	assert_int_equal(w.count, 2);
	w = (struct work){ .revoke = "o1", .count_role = "officer" };
	KT_OK(run(f->s, &w, &d));
	assert_int_equal(w.count, 1);
	w = (struct work){ .revoke = "o1" };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_ARG);
	assert_string_equal(d.text, "identity o1 is already revoked");
	w = (struct work){ .revoke = "nobody" };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_NOT_FOUND);
	assert_string_equal(d.text, "no identity named nobody");
	w = (struct work){ .count_role = "king" };
	KT_ERR(run(f->s, &w, &d), KILN_ERR_ARG);
	KT_OK(kiln_store_identity_get(f->s, "o1", &back, &d));
	assert_string_equal(back.status, "revoked");
	KT_OK(kiln_store_identity_list(f->s, &list, &n, &d));
	assert_int_equal(n, 2);
	free(list);
	KT_ERR(kiln_store_identity_by_key(f->s, spki, &back, &d), KILN_ERR_NOT_FOUND);
}

/* The schema's rules hold for writers other than kiln. */
static void test_triggers(void **state)
{
	struct fx *f = *state;
	struct kiln_request_rec q = request("req-t", 1000, 2000, 1);
	struct kiln_approval_rec bob = approval("req-t", "bob");
	struct work w = { .q = &q, .a = &bob, .execute = "req-t", .now = 1500 };
	struct kiln_identity_rec o = { 0 };
	kiln_diag d;

	KT_OK(run(f->s, &w, &d));
	(void)snprintf(o.name, sizeof(o.name), "gone");
	(void)snprintf(o.role, sizeof(o.role), "auditor");
	KT_OK(kiln_store_write(f->s, add_identity, &o, &d));
	w = (struct work){ .revoke = "gone" };
	KT_OK(run(f->s, &w, &d));
	assert_int_not_equal(kt_system("sqlite3 '%s' \"UPDATE requests SET status = 'pending' "
				       "WHERE id = 'req-t'\" 2>/dev/null", f->path), 0);
	assert_int_not_equal(kt_system("sqlite3 '%s' \"UPDATE approvals SET approver = 'x'\" "
				       "2>/dev/null", f->path), 0);
	assert_int_not_equal(kt_system("sqlite3 '%s' \"DELETE FROM approvals\" 2>/dev/null",
				       f->path), 0);
	assert_int_not_equal(kt_system("sqlite3 '%s' \"DELETE FROM requests\" 2>/dev/null",
				       f->path), 0);
	assert_int_not_equal(kt_system("sqlite3 '%s' \"UPDATE identities SET status = 'active' "
				       "WHERE name = 'gone'\" 2>/dev/null", f->path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approvals_and_execution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_write_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_triggers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
