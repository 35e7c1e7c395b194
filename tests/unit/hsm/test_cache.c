/* The key handle cache: exact refs, generations, dropping, eviction, threads. */
#include "support/support.h"

#include <stdio.h>
#include <string.h>

#include "hsm/p11.h"

static kiln_key_ref ref_of(const char *label, uint8_t id, kiln_alg alg)
{
	kiln_key_ref r;

	memset(&r, 0, sizeof(r));
	assert_true(kiln_is_ok(kiln_strlcpy(r.label, label, sizeof(r.label))));
	if (id != 0) {
		memset(r.id, id, 16);
		r.id_len = 16;
	}
	r.alg = alg;
	return r;
}

static void test_get_put(void **state)
{
	struct kiln_keycache c;
	kiln_key_ref a = ref_of("ca", 1, KILN_ALG_P256);
	kiln_key_ref other_id = ref_of("ca", 2, KILN_ALG_P256);
	kiln_key_ref no_id = ref_of("ca", 0, KILN_ALG_P256);
	kiln_key_ref other_alg = ref_of("ca", 1, KILN_ALG_P384);
	CK_OBJECT_HANDLE h = 0;

	(void)state;
	KT_OK(kiln_keycache_init(&c));
	assert_false(kiln_keycache_get(&c, &a, 1, &h));
	kiln_keycache_put(&c, &a, 1, 42);
	assert_true(kiln_keycache_get(&c, &a, 1, &h));
	assert_int_equal(h, 42);
	/* Handles die with their pool generation. */
	assert_false(kiln_keycache_get(&c, &a, 2, &h));
	/* Only the exact ref hits. */
	assert_false(kiln_keycache_get(&c, &other_id, 1, &h));
	assert_false(kiln_keycache_get(&c, &no_id, 1, &h));
	assert_false(kiln_keycache_get(&c, &other_alg, 1, &h));
	/* Updating an entry replaces its handle and generation. */
	kiln_keycache_put(&c, &a, 2, 43);
	assert_true(kiln_keycache_get(&c, &a, 2, &h));
	assert_int_equal(h, 43);
	assert_false(kiln_keycache_get(&c, &a, 1, &h));
	kiln_keycache_cleanup(&c);
}

static void test_drop_clear(void **state)
{
	struct kiln_keycache c;
	kiln_key_ref a1 = ref_of("ca", 1, KILN_ALG_P256);
	kiln_key_ref a0 = ref_of("ca", 0, KILN_ALG_P256);
	kiln_key_ref b = ref_of("ocsp", 1, KILN_ALG_P256);
	CK_OBJECT_HANDLE h;

	(void)state;
	KT_OK(kiln_keycache_init(&c));
	kiln_keycache_put(&c, &a1, 1, 1);
	kiln_keycache_put(&c, &a0, 1, 2);
	kiln_keycache_put(&c, &b, 1, 3);
	kiln_keycache_drop(&c, "ca");
	assert_false(kiln_keycache_get(&c, &a1, 1, &h));
	assert_false(kiln_keycache_get(&c, &a0, 1, &h));
	assert_true(kiln_keycache_get(&c, &b, 1, &h));
	kiln_keycache_clear(&c);
	assert_false(kiln_keycache_get(&c, &b, 1, &h));
	kiln_keycache_cleanup(&c);
}

static void test_eviction(void **state)
{
	struct kiln_keycache c;
	char label[32];
	CK_OBJECT_HANDLE h;
	unsigned hits = 0;

	(void)state;
	KT_OK(kiln_keycache_init(&c));
	for (unsigned i = 0; i < 2 * KILN_KEYCACHE_SIZE; i++) {
		kiln_key_ref r;

		(void)snprintf(label, sizeof(label), "key-%u", i);
		r = ref_of(label, 0, KILN_ALG_ED25519);
		kiln_keycache_put(&c, &r, 7, (CK_OBJECT_HANDLE)i + 100);
	}
	for (unsigned i = 0; i < 2 * KILN_KEYCACHE_SIZE; i++) {
		kiln_key_ref r;

		(void)snprintf(label, sizeof(label), "key-%u", i);
		r = ref_of(label, 0, KILN_ALG_ED25519);
		if (kiln_keycache_get(&c, &r, 7, &h)) {
			assert_int_equal(h, (CK_OBJECT_HANDLE)i + 100);
			hits++;
		}
	}
	/* Full, never over-full, never a wrong handle. */
	assert_int_equal(hits, KILN_KEYCACHE_SIZE);
	/*
	 * Entries of a dead generation are reused before live ones: the
	 * round-robin victim is slot 0 now, which would evict "live".
	 */
	{
		kiln_key_ref live = ref_of("live", 0, KILN_ALG_P256);
		kiln_key_ref live2 = ref_of("live2", 0, KILN_ALG_P256);

		kiln_keycache_put(&c, &live, 8, 1);
		kiln_keycache_put(&c, &live2, 8, 2);
		assert_true(kiln_keycache_get(&c, &live, 8, &h));
		assert_int_equal(h, 1);
		assert_true(kiln_keycache_get(&c, &live2, 8, &h));
		assert_int_equal(h, 2);
	}
	kiln_keycache_cleanup(&c);
}

struct worker {
	struct kiln_keycache *c;
	unsigned id;
	unsigned bad;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	char label[32];

	for (unsigned i = 0; i < 20000; i++) {
		kiln_key_ref r;
		CK_OBJECT_HANDLE h;

		memset(&r, 0, sizeof(r));
		(void)snprintf(label, sizeof(label), "t%u-k%u", w->id, i % 8);
		if (!kiln_is_ok(kiln_strlcpy(r.label, label, sizeof(r.label))))
			w->bad++;
		r.alg = KILN_ALG_P256;
		kiln_keycache_put(w->c, &r, 1, (CK_OBJECT_HANDLE)(w->id * 1000 + i % 8));
		if (kiln_keycache_get(w->c, &r, 1, &h) && h != w->id * 1000 + i % 8)
			w->bad++;
		if (i % 97 == 0)
			kiln_keycache_drop(w->c, label);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct kiln_keycache c;
	struct worker w[4];
	pthread_t th[4];

	(void)state;
	KT_OK(kiln_keycache_init(&c));
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ &c, i + 1, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	kiln_keycache_cleanup(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_drop_clear),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
