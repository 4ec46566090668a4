#include "remote.h"
#include "base.h"

remote_batch_t *
remote_batch_get(remote_pool_t *pool)
{
	if (pool->free == NULL)
		pool->free = remote_take(&pool->returned);
	remote_batch_t *b = pool->free;
	if (b != NULL) {
		pool->free = b->next;
		return b;
	}
	if (pool->nalloc >= REMOTE_POOL_MAX)
		return NULL;
	/* Metadata memory (guarded, never freed): pools live as long as
	 * the caches that own them. */
	b = base_alloc(sizeof(*b));
	if (b == NULL)
		return NULL;
	b->owner = pool;
	pool->nalloc++;
	return b;
}

void
remote_batch_put(remote_batch_t *b)
{
	remote_push(&b->owner->returned, b);
}
