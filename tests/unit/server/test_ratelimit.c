/* Unit tests for src/server/ratelimit.c: burst, refill, Retry-After, keys, capacity, threads. */
#include "support/support.h"

#include "server/server_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define S(x) ((uint64_t)(x) * 1000000000ull)

static void test_burst_then_refuse(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait = 0;

	(void)state;
	KT_OK(kiln_ratelimit_new(2, 5, 16, &rl));
	for (int i = 0; i < 5; i++)
		assert_true(kiln_ratelimit_take(rl, "station-1", S(100), &wait));
	assert_false(kiln_ratelimit_take(rl, "station-1", S(100), &wait));
	assert_int_equal(wait, 1);
	/* Half a second at 2/s is one token. */
	assert_true(kiln_ratelimit_take(rl, "station-1", S(100) + S(1) / 2, &wait));
	assert_false(kiln_ratelimit_take(rl, "station-1", S(100) + S(1) / 2, &wait));
	kiln_ratelimit_free(rl);
}

static void test_refill_is_capped_at_burst(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait;
	int ok = 0;

	(void)state;
	KT_OK(kiln_ratelimit_new(10, 3, 16, &rl));
	for (int i = 0; i < 3; i++)
		assert_true(kiln_ratelimit_take(rl, "a", S(1), &wait));
	/* An hour of quiet refills to the burst, not to 36000. */
	for (int i = 0; i < 10; i++)
		ok += kiln_ratelimit_take(rl, "a", S(3601), &wait) ? 1 : 0;
	assert_int_equal(ok, 3);
	kiln_ratelimit_free(rl);
}

static void test_retry_after_rounds_up(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait = 0;

	(void)state;
	/* One token every 4 s. */
	KT_OK(kiln_ratelimit_new(0.25, 1, 16, &rl));
	assert_true(kiln_ratelimit_take(rl, "slow", S(10), &wait));
	assert_false(kiln_ratelimit_take(rl, "slow", S(10), &wait));
	assert_int_equal(wait, 4);
	assert_false(kiln_ratelimit_take(rl, "slow", S(11) + 1, &wait));
	assert_int_equal(wait, 3);
	assert_true(kiln_ratelimit_take(rl, "slow", S(15), &wait));
	kiln_ratelimit_free(rl);
}

static void test_keys_are_separate(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait;

	(void)state;
	KT_OK(kiln_ratelimit_new(1, 1, 16, &rl));
	assert_true(kiln_ratelimit_take(rl, "alice", S(1), &wait));
	assert_false(kiln_ratelimit_take(rl, "alice", S(1), &wait));
	assert_true(kiln_ratelimit_take(rl, "bob", S(1), &wait));
	assert_true(kiln_ratelimit_take(rl, "alicE", S(1), &wait));
	assert_int_equal(kiln_ratelimit_keys(rl), 3);
	kiln_ratelimit_free(rl);
}

static void test_clock_going_backwards(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait;

	(void)state;
	KT_OK(kiln_ratelimit_new(1, 1, 16, &rl));
	assert_true(kiln_ratelimit_take(rl, "k", S(50), &wait));
	assert_false(kiln_ratelimit_take(rl, "k", S(10), &wait));
	assert_false(kiln_ratelimit_take(rl, "k", S(50), &wait));
	assert_true(kiln_ratelimit_take(rl, "k", S(51), &wait));
	kiln_ratelimit_free(rl);
}

static void test_capacity(void **state)
{
	kiln_ratelimit *rl;
	unsigned wait;
	char key[16];

	(void)state;
	KT_OK(kiln_ratelimit_new(1, 2, 4, &rl));
	for (int i = 0; i < 4; i++) {
		(void)snprintf(key, sizeof(key), "id-%d", i);
		assert_true(kiln_ratelimit_take(rl, key, S(1), &wait));
	}
	/* Full, and every bucket is still draining: a new key is refused (fail closed). */
	assert_false(kiln_ratelimit_take(rl, "id-new", S(1), &wait));
	assert_int_equal(kiln_ratelimit_keys(rl), 4);
	/* Known keys still work. */
	assert_true(kiln_ratelimit_take(rl, "id-0", S(1), &wait));
	/* Once buckets are full again they carry nothing and make room. */
	assert_true(kiln_ratelimit_take(rl, "id-new", S(10), &wait));
	assert_int_equal(kiln_ratelimit_keys(rl), 1);
	kiln_ratelimit_free(rl);
}

static void test_long_and_null_keys(void **state)
{
	char key[KILN_RATELIMIT_KEY_MAX + 1];
	kiln_ratelimit *rl;
	unsigned wait;

	(void)state;
	KT_OK(kiln_ratelimit_new(1, 1, 4, &rl));
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_false(kiln_ratelimit_take(rl, key, S(1), &wait));
	key[KILN_RATELIMIT_KEY_MAX - 1] = '\0';
	assert_true(kiln_ratelimit_take(rl, key, S(1), &wait));
	assert_false(kiln_ratelimit_take(rl, NULL, S(1), &wait));
	kiln_ratelimit_free(rl);
}

static void test_bad_arguments(void **state)
{
	kiln_ratelimit *rl = (kiln_ratelimit *)&rl;
	double zero = 0;

	(void)state;
	KT_ERR(kiln_ratelimit_new(0, 1, 1, &rl), KILN_ERR_ARG);
	assert_null(rl);
	KT_ERR(kiln_ratelimit_new(-1, 1, 1, &rl), KILN_ERR_ARG);
	KT_ERR(kiln_ratelimit_new(zero / zero, 1, 1, &rl), KILN_ERR_ARG);
	KT_ERR(kiln_ratelimit_new(1.0 / zero, 1, 1, &rl), KILN_ERR_ARG);
	KT_ERR(kiln_ratelimit_new(1, 0, 1, &rl), KILN_ERR_ARG);
	KT_ERR(kiln_ratelimit_new(1, 1, 0, &rl), KILN_ERR_ARG);
	kiln_ratelimit_free(NULL);
}

struct hammer {
	kiln_ratelimit *rl;
	atomic_int allowed;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	unsigned wait;

	for (int i = 0; i < 1000; i++) {
		if (kiln_ratelimit_take(h->rl, "shared", S(5), &wait))
			atomic_fetch_add(&h->allowed, 1);
	}
	return NULL;
}

static void test_threads_share_one_bucket(void **state)
{
	struct hammer h;
	pthread_t t[8];

	(void)state;
	KT_OK(kiln_ratelimit_new(1, 100, 16, &h.rl));
	atomic_init(&h.allowed, 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	/* 8000 attempts at one instant: exactly the burst gets through. */
	assert_int_equal(atomic_load(&h.allowed), 100);
	kiln_ratelimit_free(h.rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refuse),
		cmocka_unit_test(test_refill_is_capped_at_burst),
		cmocka_unit_test(test_retry_after_rounds_up),
		cmocka_unit_test(test_keys_are_separate),
		cmocka_unit_test(test_clock_going_backwards),
		cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_long_and_null_keys),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_threads_share_one_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
