/*
 * Private key handles by key ref, so that signing does not search the
 * token every time. Entries carry the pool generation they were found in:
 * object handles die with the sessions (SoftHSM2 hands out new ones after a
 * re-login), so an entry from an older generation is never returned.
 */
#include "p11.h"

#include <string.h>

static bool same_ref(const kiln_key_ref *a, const kiln_key_ref *b)
{
	return a->alg == b->alg && a->id_len == b->id_len &&
	       strncmp(a->label, b->label, sizeof(a->label)) == 0 &&
	       (a->id_len == 0 || memcmp(a->id, b->id, a->id_len) == 0);
}

kiln_result kiln_keycache_init(struct kiln_keycache *c)
{
	memset(c, 0, sizeof(*c));
	KILN_ENSURE(pthread_mutex_init(&c->mu, NULL) == 0, KILN_ERR_NOMEM);
	return kiln_ok();
}

void kiln_keycache_cleanup(struct kiln_keycache *c)
{
	(void)pthread_mutex_destroy(&c->mu);
	memset(c->e, 0, sizeof(c->e));
}

bool kiln_keycache_get(struct kiln_keycache *c, const kiln_key_ref *ref, uint64_t gen,
		       CK_OBJECT_HANDLE *h)
{
	bool hit = false;

	(void)pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < KILN_KEYCACHE_SIZE; i++) {
		if (c->e[i].used && c->e[i].gen == gen && same_ref(&c->e[i].ref, ref)) {
			*h = c->e[i].handle;
			hit = true;
			break;
		}
	}
	(void)pthread_mutex_unlock(&c->mu);
	return hit;
}

void kiln_keycache_put(struct kiln_keycache *c, const kiln_key_ref *ref, uint64_t gen,
		       CK_OBJECT_HANDLE h)
{
	struct kiln_keycache_entry *slot = NULL;

	(void)pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < KILN_KEYCACHE_SIZE && slot == NULL; i++) {
		if (c->e[i].used && same_ref(&c->e[i].ref, ref))
			slot = &c->e[i];
	}
	for (size_t i = 0; i < KILN_KEYCACHE_SIZE && slot == NULL; i++) {
		if (!c->e[i].used || c->e[i].gen != gen)
			slot = &c->e[i];
	}
	if (slot == NULL) {
		slot = &c->e[c->next];
		c->next = (c->next + 1) % KILN_KEYCACHE_SIZE;
	}
	slot->used = true;
	slot->ref = *ref;
	slot->gen = gen;
	slot->handle = h;
	(void)pthread_mutex_unlock(&c->mu);
}

void kiln_keycache_drop(struct kiln_keycache *c, const char *label)
{
	(void)pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < KILN_KEYCACHE_SIZE; i++) {
		struct kiln_keycache_entry *e = &c->e[i];

		if (e->used && strncmp(e->ref.label, label, sizeof(e->ref.label)) == 0)
			memset(e, 0, sizeof(*e));
	}
	(void)pthread_mutex_unlock(&c->mu);
}

void kiln_keycache_clear(struct kiln_keycache *c)
{
	(void)pthread_mutex_lock(&c->mu);
	memset(c->e, 0, sizeof(c->e));
	c->next = 0;
	(void)pthread_mutex_unlock(&c->mu);
}
