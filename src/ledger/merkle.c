/*
 * RFC 9162 Merkle trees: hashing, roots, inclusion and consistency proofs
 * and their verification, a frontier builder and an in-memory tree. Pure:
 * hashes come from a kiln_merkle_source; nothing here does I/O.
 */
#include "ledger/ledger.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

void kiln_merkle_leaf(kiln_slice data, uint8_t out[32])
{
	static const uint8_t zero = 0x00;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned len = 0;

	/* Digest failures are allocation failures: the result is then all zeroes, never a match. */
	memset(out, 0, 32);
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, &zero, 1) == 1 && EVP_DigestUpdate(c, data.ptr, data.len) == 1)
		(void)EVP_DigestFinal_ex(c, out, &len);
	EVP_MD_CTX_free(c);
}

void kiln_merkle_node(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
	uint8_t buf[65];

	buf[0] = 0x01;
	memcpy(buf + 1, left, 32);
	memcpy(buf + 33, right, 32);
	(void)SHA256(buf, sizeof(buf), out);
}

void kiln_merkle_empty(uint8_t out[32])
{
	(void)SHA256((const uint8_t *)"", 0, out);
}

/* The largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

static bool is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static unsigned log2u(uint64_t n)
{
	unsigned l = 0;

	while (n > 1) {
		n >>= 1;
		l++;
	}
	return l;
}

/*
 * MTH(D[start:end]) where start is a multiple of the largest power of two not
 * above end - start: every subtree the RFC recursion visits is of that form.
 */
static kiln_result subtree(const struct kiln_merkle_source *src, uint64_t start, uint64_t end,
			   uint8_t out[32], kiln_diag *d)
{
	uint64_t n = end - start, k;
	uint8_t l[32], r[32];

	if (is_pow2(n)) {
		unsigned lv = log2u(n);

		return src->get(src->ctx, lv, start >> lv, out, d);
	}
	k = split_point(n);
	KILN_GUARD(subtree(src, start, start + k, l, d));
	KILN_GUARD(subtree(src, start + k, end, r, d));
	kiln_merkle_node(l, r, out);
	return kiln_ok();
}

kiln_result kiln_merkle_root(const struct kiln_merkle_source *src, uint64_t size, uint8_t out[32],
			     kiln_diag *d)
{
	if (size > KILN_MERKLE_SIZE_MAX)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE, "tree size %llu is too large",
				     (unsigned long long)size);
	if (size == 0) {
		kiln_merkle_empty(out);
		return kiln_ok();
	}
	return subtree(src, 0, size, out, d);
}

static kiln_result proof_push(struct kiln_merkle_proof *p, const uint8_t h[32])
{
	KILN_ENSURE(p->n < KILN_MERKLE_PROOF_MAX, KILN_ERR_TOO_BIG);
	memcpy(p->hash[p->n++], h, 32);
	return kiln_ok();
}

/* PATH(m, D[start:end]), leaf level first. */
static kiln_result path(const struct kiln_merkle_source *src, uint64_t m, uint64_t start,
			uint64_t end, struct kiln_merkle_proof *p, kiln_diag *d)
{
	uint64_t n = end - start, k;
	uint8_t h[32];

	if (n == 1)
		return kiln_ok();
	k = split_point(n);
	if (m - start < k) {
		KILN_GUARD(path(src, m, start, start + k, p, d));
		KILN_GUARD(subtree(src, start + k, end, h, d));
	} else {
		KILN_GUARD(path(src, m, start + k, end, p, d));
		KILN_GUARD(subtree(src, start, start + k, h, d));
	}
	return proof_push(p, h);
}

kiln_result kiln_merkle_inclusion(const struct kiln_merkle_source *src, uint64_t index,
				  uint64_t size, struct kiln_merkle_proof *out, kiln_diag *d)
{
	out->n = 0;
	if (size > KILN_MERKLE_SIZE_MAX || index >= size)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE, "index %llu is not in a tree of size %llu",
				     (unsigned long long)index, (unsigned long long)size);
	return path(src, index, 0, size, out, d);
}

/* SUBPROOF(m, D[start:end], b). */
static kiln_result subproof(const struct kiln_merkle_source *src, uint64_t m, uint64_t start,
			    uint64_t end, bool b, struct kiln_merkle_proof *p, kiln_diag *d)
{
	uint64_t n = end - start, k;
	uint8_t h[32];

	if (m == n) {
		if (b)
			return kiln_ok();
		KILN_GUARD(subtree(src, start, end, h, d));
		return proof_push(p, h);
	}
	k = split_point(n);
	if (m <= k) {
		KILN_GUARD(subproof(src, m, start, start + k, b, p, d));
		KILN_GUARD(subtree(src, start + k, end, h, d));
	} else {
		KILN_GUARD(subproof(src, m - k, start + k, end, false, p, d));
		KILN_GUARD(subtree(src, start, start + k, h, d));
	}
	return proof_push(p, h);
}

kiln_result kiln_merkle_consistency(const struct kiln_merkle_source *src, uint64_t m, uint64_t n,
				    struct kiln_merkle_proof *out, kiln_diag *d)
{
	out->n = 0;
	if (n > KILN_MERKLE_SIZE_MAX || m == 0 || m > n)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE,
				     "no consistency proof from size %llu to size %llu",
				     (unsigned long long)m, (unsigned long long)n);
	if (m == n)
		return kiln_ok();
	return subproof(src, m, 0, n, true, out, d);
}

kiln_result kiln_merkle_verify_inclusion(const uint8_t leaf[32], uint64_t index, uint64_t size,
					 const struct kiln_merkle_proof *p, const uint8_t root[32])
{
	uint64_t fn = index, sn;
	uint8_t r[32];

	KILN_ENSURE(index < size && p->n <= KILN_MERKLE_PROOF_MAX, KILN_ERR_LOG_PROOF);
	sn = size - 1;
	memcpy(r, leaf, 32);
	for (size_t i = 0; i < p->n; i++) {
		KILN_ENSURE(sn != 0, KILN_ERR_LOG_PROOF);
		if ((fn & 1) || fn == sn) {
			kiln_merkle_node(p->hash[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			kiln_merkle_node(r, p->hash[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	KILN_ENSURE(sn == 0 && memcmp(r, root, 32) == 0, KILN_ERR_LOG_PROOF);
	return kiln_ok();
}

kiln_result kiln_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[32],
					   const uint8_t root_n[32],
					   const struct kiln_merkle_proof *p)
{
	uint8_t path_first[32], fr[32], sr[32];
	const uint8_t(*rest)[32];
	size_t nrest;
	uint64_t fn, sn;

	KILN_ENSURE(m > 0 && m <= n && p->n <= KILN_MERKLE_PROOF_MAX, KILN_ERR_LOG_PROOF);
	if (m == n) {
		KILN_ENSURE(p->n == 0 && memcmp(root_m, root_n, 32) == 0, KILN_ERR_LOG_PROOF);
		return kiln_ok();
	}
	KILN_ENSURE(p->n > 0, KILN_ERR_LOG_PROOF);
	/* When m is a power of two the first tree is a subtree of the path: start from its root. */
	if (is_pow2(m)) {
		memcpy(path_first, root_m, 32);
		rest = p->hash;
		nrest = p->n;
	} else {
		memcpy(path_first, p->hash[0], 32);
		rest = p->hash + 1;
		nrest = p->n - 1;
	}
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, path_first, 32);
	memcpy(sr, path_first, 32);
	for (size_t i = 0; i < nrest; i++) {
		KILN_ENSURE(sn != 0, KILN_ERR_LOG_PROOF);
		if ((fn & 1) || fn == sn) {
			kiln_merkle_node(rest[i], fr, fr);
			kiln_merkle_node(rest[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			kiln_merkle_node(sr, rest[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	KILN_ENSURE(sn == 0 && memcmp(fr, root_m, 32) == 0 && memcmp(sr, root_n, 32) == 0,
		    KILN_ERR_LOG_PROOF);
	return kiln_ok();
}

/* ------------------------------------------------------------ builder */

void kiln_merkle_builder_init(struct kiln_merkle_builder *b)
{
	memset(b, 0, sizeof(*b));
}

kiln_result kiln_merkle_builder_resume(struct kiln_merkle_builder *b,
				       const struct kiln_merkle_source *src, uint64_t size,
				       kiln_diag *d)
{
	uint64_t covered = 0;

	kiln_merkle_builder_init(b);
	if (size > KILN_MERKLE_SIZE_MAX)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE, "tree size too large");
	/* One complete subtree per set bit, largest (leftmost) first. */
	for (int bit = 62; bit >= 0; bit--) {
		uint64_t w = (uint64_t)1 << bit;

		if (!(size & w))
			continue;
		KILN_GUARD(src->get(src->ctx, (unsigned)bit, covered >> bit, b->hash[b->depth], d));
		b->level[b->depth++] = (unsigned)bit;
		covered += w;
	}
	b->size = size;
	return kiln_ok();
}

kiln_result kiln_merkle_builder_push(struct kiln_merkle_builder *b, const uint8_t leaf[32],
				     kiln_merkle_emit_fn emit, void *ctx, kiln_diag *d)
{
	uint64_t index = b->size;
	unsigned lv = 0;

	if (b->size >= KILN_MERKLE_SIZE_MAX || b->depth >= 64)
		return kiln_diag_set(d, KILN_ERR_LOG_RANGE, "the tree is full");
	if (emit != NULL)
		KILN_GUARD(emit(ctx, 0, index, leaf, d));
	memcpy(b->hash[b->depth], leaf, 32);
	b->level[b->depth++] = 0;
	/* Two neighbours of one level make a complete subtree one level up. */
	while (b->depth >= 2 && b->level[b->depth - 1] == b->level[b->depth - 2]) {
		kiln_merkle_node(b->hash[b->depth - 2], b->hash[b->depth - 1], b->hash[b->depth - 2]);
		b->depth--;
		lv = ++b->level[b->depth - 1];
		if (emit != NULL)
			KILN_GUARD(emit(ctx, lv, index >> lv, b->hash[b->depth - 1], d));
	}
	b->size++;
	return kiln_ok();
}

void kiln_merkle_builder_root(const struct kiln_merkle_builder *b, uint8_t out[32])
{
	uint8_t r[32];

	if (b->depth == 0) {
		kiln_merkle_empty(out);
		return;
	}
	/* The right-most subtrees fold first: MTH pairs the partial right side last. */
	memcpy(r, b->hash[b->depth - 1], 32);
	for (unsigned i = b->depth - 1; i > 0; i--)
		kiln_merkle_node(b->hash[i - 1], r, r);
	memcpy(out, r, 32);
}

/* ------------------------------------------------------------ in memory */

kiln_result kiln_merkle_mem_build(const uint8_t (*leaves)[32], size_t n, struct kiln_merkle_mem *out)
{
	uint64_t count = n;

	memset(out, 0, sizeof(*out));
	KILN_ENSURE((uint64_t)n <= KILN_MERKLE_SIZE_MAX, KILN_ERR_LOG_RANGE);
	out->size = n;
	for (unsigned lv = 0; count > 0 && lv < 64; lv++, count >>= 1) {
		out->level[lv] = malloc((size_t)count * 32);
		if (out->level[lv] == NULL) {
			kiln_merkle_mem_cleanup(out);
			return kiln_fail(KILN_ERR_NOMEM);
		}
		out->levels = lv + 1;
		if (lv == 0) {
			memcpy(out->level[0], leaves, (size_t)count * 32);
			continue;
		}
		for (uint64_t i = 0; i < count; i++)
			kiln_merkle_node(out->level[lv - 1][2 * i], out->level[lv - 1][2 * i + 1],
					 out->level[lv][i]);
	}
	return kiln_ok();
}

void kiln_merkle_mem_cleanup(struct kiln_merkle_mem *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < 64; i++)
		free(m->level[i]);
	memset(m, 0, sizeof(*m));
}

static kiln_result mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32],
			   kiln_diag *d)
{
	const struct kiln_merkle_mem *m = ctx;

	if (level >= m->levels || index >= (m->size >> level))
		return kiln_diag_set(d, KILN_ERR_NOT_FOUND, "no subtree %u/%llu in the tree", level,
				     (unsigned long long)index);
	memcpy(out, m->level[level][index], 32);
	return kiln_ok();
}

struct kiln_merkle_source kiln_merkle_mem_source(struct kiln_merkle_mem *m)
{
	return (struct kiln_merkle_source){ mem_get, m };
}
