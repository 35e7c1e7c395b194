/*
 * Per-identity token buckets. Keys are identity names the application
 * authenticated (not attacker-chosen), in a chained hash table whose size is
 * capped: a bucket that has refilled to its burst carries no information, so
 * it is the one dropped when the table is full.
 */
#include "server_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
	struct bucket *next;
	double tokens;
	uint64_t last_ns;
	char key[KILN_RATELIMIT_KEY_MAX];
};

struct kiln_ratelimit {
	pthread_mutex_t mu;
	double rate;  /* tokens per second */
	double burst;
	struct bucket **slots;
	size_t n_slots;
	size_t count, max_keys;
};

kiln_result kiln_ratelimit_new(double rate_per_s, unsigned burst, size_t max_keys,
			       kiln_ratelimit **out)
{
	kiln_ratelimit *rl;
	size_t n_slots = 16;

	*out = NULL;
	/* NaN fails every comparison, so it is refused here too. */
	KILN_ENSURE(rate_per_s > 0 && rate_per_s <= 1e9 && burst > 0 && max_keys > 0 &&
			    max_keys <= ((size_t)1 << 24),
		    KILN_ERR_ARG);
	while (n_slots < max_keys && n_slots < ((size_t)1 << 16))
		n_slots *= 2;
	rl = calloc(1, sizeof(*rl));
	KILN_ENSURE(rl != NULL, KILN_ERR_NOMEM);
	rl->slots = calloc(n_slots, sizeof(*rl->slots));
	if (rl->slots == NULL) {
		free(rl);
		return kiln_fail(KILN_ERR_NOMEM);
	}
	rl->n_slots = n_slots;
	rl->rate = rate_per_s;
	rl->burst = burst;
	rl->max_keys = max_keys;
	pthread_mutex_init(&rl->mu, NULL);
	*out = rl;
	return kiln_ok();
}

static size_t slot_of(const kiln_ratelimit *rl, const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return (size_t)(h & (rl->n_slots - 1));
}

static void refill(const kiln_ratelimit *rl, struct bucket *b, uint64_t now_ns)
{
	/* A clock that went backwards refills nothing. */
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * rl->rate / 1e9;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last_ns = now_ns;
	}
}

/* Drops every bucket that is full again at now_ns. */
static void sweep(kiln_ratelimit *rl, uint64_t now_ns)
{
	for (size_t i = 0; i < rl->n_slots; i++) {
		struct bucket **pp = &rl->slots[i];

		while (*pp != NULL) {
			struct bucket *b = *pp;

			refill(rl, b, now_ns);
			if (b->tokens >= rl->burst) {
				*pp = b->next;
				free(b);
				rl->count--;
			} else {
				pp = &b->next;
			}
		}
	}
}

static struct bucket *find_or_add(kiln_ratelimit *rl, const char *key, uint64_t now_ns)
{
	size_t slot = slot_of(rl, key);
	struct bucket *b;

	for (b = rl->slots[slot]; b != NULL; b = b->next) {
		if (strcmp(b->key, key) == 0)
			return b;
	}
	if (rl->count >= rl->max_keys)
		sweep(rl, now_ns);
	if (rl->count >= rl->max_keys)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	memcpy(b->key, key, strlen(key) + 1);
	b->tokens = rl->burst;
	b->last_ns = now_ns;
	b->next = rl->slots[slot];
	rl->slots[slot] = b;
	rl->count++;
	return b;
}

bool kiln_ratelimit_take(kiln_ratelimit *rl, const char *key, uint64_t now_ns,
			 unsigned *retry_after_s)
{
	struct bucket *b;
	bool ok = false;
	double wait_s = 1;

	*retry_after_s = 1;
	/* Longer keys cannot be told apart once cut: refuse rather than share a bucket. */
	if (key == NULL || strlen(key) >= KILN_RATELIMIT_KEY_MAX)
		return false;
	pthread_mutex_lock(&rl->mu);
	b = find_or_add(rl, key, now_ns);
	if (b != NULL) {
		refill(rl, b, now_ns);
		if (b->tokens >= 1) {
			b->tokens -= 1;
			ok = true;
		} else {
			wait_s = (1 - b->tokens) / rl->rate;
		}
	}
	pthread_mutex_unlock(&rl->mu);
	if (!ok && wait_s > 1) {
		/* Rounded up: a client that waits this long finds a token. */
		unsigned s = wait_s >= 86400 ? 86400 : (unsigned)wait_s;

		*retry_after_s = (double)s < wait_s && s < 86400 ? s + 1 : s;
	}
	return ok;
}

size_t kiln_ratelimit_keys(kiln_ratelimit *rl)
{
	size_t n;

	pthread_mutex_lock(&rl->mu);
	n = rl->count;
	pthread_mutex_unlock(&rl->mu);
	return n;
}

void kiln_ratelimit_free(kiln_ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < rl->n_slots; i++) {
		struct bucket *b = rl->slots[i], *next;

		for (; b != NULL; b = next) {
			next = b->next;
			free(b);
		}
	}
	free(rl->slots);
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}
