/*
 * src/ledger/merkle.c: the RFC 6962/9162 test vectors (the roots of the first
 * eight leaves of the certificate-transparency test data), and every
 * inclusion and consistency proof of every tree up to 70 leaves built and
 * verified both ways, tampered proofs refused, the frontier builder and its
 * resume agreeing with the in-memory tree.
 */
#include "support/support.h"

#include <string.h>

#include "ledger/ledger.h"

static const char *const roots[] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

#define N 70

static uint8_t leaves[N][32];

static void vector_leaves(void)
{
	static const uint8_t d3[] = { 0x20, 0x21 }, d4[] = { 0x30, 0x31 },
			     d5[] = { 0x40, 0x41, 0x42, 0x43 };
	uint8_t d1 = 0x00, d2 = 0x10, d6[8], d7[16];

	for (int i = 0; i < 8; i++)
		d6[i] = (uint8_t)(0x50 + i);
	for (int i = 0; i < 16; i++)
		d7[i] = (uint8_t)(0x60 + i);
	kiln_merkle_leaf(kiln_slice_of("", 0), leaves[0]);
	kiln_merkle_leaf(kiln_slice_of(&d1, 1), leaves[1]);
	kiln_merkle_leaf(kiln_slice_of(&d2, 1), leaves[2]);
	kiln_merkle_leaf(kiln_slice_of(d3, 2), leaves[3]);
	kiln_merkle_leaf(kiln_slice_of(d4, 2), leaves[4]);
	kiln_merkle_leaf(kiln_slice_of(d5, 4), leaves[5]);
	kiln_merkle_leaf(kiln_slice_of(d6, 8), leaves[6]);
	kiln_merkle_leaf(kiln_slice_of(d7, 16), leaves[7]);
	for (int i = 8; i < N; i++) {
		uint8_t b = (uint8_t)i;

		kiln_merkle_leaf(kiln_slice_of(&b, 1), leaves[i]);
	}
}

static void test_vectors(void **state)
{
	struct kiln_merkle_builder b;
	struct kiln_merkle_mem m;
	struct kiln_merkle_source src;
	uint8_t root[32];
	char hex[65];

	(void)state;
	vector_leaves();
	kiln_merkle_empty(root);
	kiln_hex_encode(root, 32, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	kiln_merkle_builder_init(&b);
	for (size_t n = 1; n <= 8; n++) {
		KT_OK(kiln_merkle_builder_push(&b, leaves[n - 1], NULL, NULL, NULL));
		kiln_merkle_builder_root(&b, root);
		kiln_hex_encode(root, 32, hex);
		assert_string_equal(hex, roots[n - 1]);
		KT_OK(kiln_merkle_mem_build((const uint8_t(*)[32])leaves, n, &m));
		src = kiln_merkle_mem_source(&m);
		KT_OK(kiln_merkle_root(&src, n, root, NULL));
		kiln_hex_encode(root, 32, hex);
		assert_string_equal(hex, roots[n - 1]);
		kiln_merkle_mem_cleanup(&m);
	}
}

static void test_all_proofs(void **state)
{
	struct kiln_merkle_mem m;
	struct kiln_merkle_source src;
	struct kiln_merkle_proof p;
	static uint8_t root[N + 1][32];

	(void)state;
	vector_leaves();
	KT_OK(kiln_merkle_mem_build((const uint8_t(*)[32])leaves, N, &m));
	src = kiln_merkle_mem_source(&m);
	for (uint64_t n = 1; n <= N; n++)
		KT_OK(kiln_merkle_root(&src, n, root[n], NULL));
	KT_ERR(kiln_merkle_verify_inclusion(leaves[0], 0, 0, &p, root[1]), KILN_ERR_LOG_PROOF);
	for (uint64_t n = 1; n <= N; n++) {
		for (uint64_t i = 0; i < n; i++) {
			KT_OK(kiln_merkle_inclusion(&src, i, n, &p, NULL));
			KT_OK(kiln_merkle_verify_inclusion(leaves[i], i, n, &p, root[n]));
			/* Another leaf, index or tree size must not verify. */
			KT_ERR(kiln_merkle_verify_inclusion(leaves[(i + 1) % N], i, n, &p, root[n]),
			       KILN_ERR_LOG_PROOF);
			if (n > 1)
				KT_ERR(kiln_merkle_verify_inclusion(leaves[i], (i + 1) % n, n, &p,
								    root[n]),
				       KILN_ERR_LOG_PROOF);
			if (n < N)
				KT_ERR(kiln_merkle_verify_inclusion(leaves[i], i, n + 1, &p,
								    root[n + 1]),
				       KILN_ERR_LOG_PROOF);
			if (p.n > 0) {
				p.hash[p.n - 1][5] ^= 1;
				KT_ERR(kiln_merkle_verify_inclusion(leaves[i], i, n, &p, root[n]),
				       KILN_ERR_LOG_PROOF);
			}
		}
		for (uint64_t k = 1; k <= n; k++) {
			KT_OK(kiln_merkle_consistency(&src, k, n, &p, NULL));
			KT_OK(kiln_merkle_verify_consistency(k, n, root[k], root[n], &p));
			if (k < n) {
				KT_ERR(kiln_merkle_verify_consistency(k, n, root[k], root[n - 1], &p),
				       KILN_ERR_LOG_PROOF);
				p.hash[0][0] ^= 0x80;
				KT_ERR(kiln_merkle_verify_consistency(k, n, root[k], root[n], &p),
				       KILN_ERR_LOG_PROOF);
			}
		}
	}
	KT_ERR(kiln_merkle_inclusion(&src, 5, 5, &p, NULL), KILN_ERR_LOG_RANGE);
	KT_ERR(kiln_merkle_consistency(&src, 0, 5, &p, NULL), KILN_ERR_LOG_RANGE);
	KT_ERR(kiln_merkle_consistency(&src, 6, 5, &p, NULL), KILN_ERR_LOG_RANGE);
	/* A source that lacks a subtree says so instead of inventing one. */
	KT_ERR(kiln_merkle_root(&src, N + 1, root[0], NULL), KILN_ERR_NOT_FOUND);
	kiln_merkle_mem_cleanup(&m);
}

struct emitted {
	size_t n;
	struct kiln_merkle_mem *m;
};

static kiln_result check_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[32],
			      kiln_diag *d)
{
	struct emitted *e = ctx;

	(void)d;
	assert_true(level < e->m->levels);
	assert_memory_equal(e->m->level[level][index], hash, 32);
	e->n++;
	return kiln_ok();
}

static void test_builder_resume(void **state)
{
	struct kiln_merkle_mem m;
	struct kiln_merkle_source src;
	struct kiln_merkle_builder b;
	struct emitted e;
	uint8_t want[32], got[32];

	(void)state;
	vector_leaves();
	KT_OK(kiln_merkle_mem_build((const uint8_t(*)[32])leaves, N, &m));
	src = kiln_merkle_mem_source(&m);
	KT_OK(kiln_merkle_root(&src, N, want, NULL));
	for (uint64_t at = 0; at <= N; at++) {
		e = (struct emitted){ 0, &m };
		KT_OK(kiln_merkle_builder_resume(&b, &src, at, NULL));
		assert_int_equal(b.size, at);
		for (uint64_t i = at; i < N; i++)
			KT_OK(kiln_merkle_builder_push(&b, leaves[i], check_emit, &e, NULL));
		kiln_merkle_builder_root(&b, got);
		assert_memory_equal(got, want, 32);
	}
	/* From zero every complete subtree is emitted once: 2n - popcount(n) of them. */
	assert_int_equal(e.n, 0);
	e = (struct emitted){ 0, &m };
	kiln_merkle_builder_init(&b);
	for (uint64_t i = 0; i < N; i++)
		KT_OK(kiln_merkle_builder_push(&b, leaves[i], check_emit, &e, NULL));
	assert_int_equal(e.n, 2 * N - (size_t)__builtin_popcountll(N));
	kiln_merkle_mem_cleanup(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_all_proofs),
		cmocka_unit_test(test_builder_resume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
