/*
 * Remote-free batches: how a thread cache gives blocks back to an arena
 * that is not its CPU's without taking that arena's bin lock.
 *
 * A producer/consumer program (one thread allocates, others free) had the
 * consumer flush into the producer's bin under the bin lock the producer
 * refills under: the two threads queued on that lock, slept in the kernel
 * and bounced the slabs' bitmap lines between CPUs.  Instead, a flush
 * whose blocks belong to another arena copies its runs of blocks (below)
 * into a batch (metadata memory, never user memory, so a write to a freed
 * block cannot change what the batch holds) and pushes it on the bin's
 * pending stack with one compare-and-swap.  The next refill, locked flush
 * or trim of that bin, or a cache GC step on that arena's CPU, takes the
 * whole stack with one exchange and frees its blocks exactly as a locked
 * flush does, with the same checks under the lock: a double or invalid
 * free is reported there and never acted on (caller unknown, as for any
 * flush).
 *
 * Stacks are pushed by many threads and only ever emptied whole with an
 * exchange, so they have no ABA problem.  A batch belongs to one pool (a
 * thread cache's, for its whole life: caches are recycled, never freed);
 * the collector returns it to that pool's `returned` stack, which the
 * pool's owner empties whole when its private list runs dry.
 *
 * Fork: a batch being pushed by a thread that the child does not have is
 * lost in the child with its blocks (a leak of at most one batch per such
 * thread, never a block handed out twice).
 */
#ifndef PC_REMOTE_H
#define PC_REMOTE_H

#include "config.h"

/*
 * A run of freed blocks of one class, as a flush found them together: p,
 * and for each bit j set in mask (bit 0 is p itself) the block j objects
 * after p.  A flush gives its blocks back as runs, so that the bin frees
 * up to 64 blocks of a slab with one page-map lookup and a word or two of
 * the slab's bitmap.  Offsets are relative to p, not to the slab: the
 * bin checks p against the slab its page holds when it frees the run, and
 * the run's other blocks are then p + j * size wherever that slab starts.
 */
typedef struct free_run {
	void *p;
	uint64_t mask;
} free_run_t;

/* Runs one batch holds (a flush of more uses several). */
#define REMOTE_BATCH_MAX 64
/* Batches one pool may own: past that (its batches wait in bins nobody
 * refills), flushes take the bin lock again, so memory stays bounded. */
#define REMOTE_POOL_MAX 32

struct remote_pool;

typedef struct remote_batch {
	struct remote_batch *next;	/* pending or returned stack, or the
					 * owner's private list */
	struct remote_pool *owner;	/* immutable */
	unsigned n;			/* runs[0..n) */
	free_run_t runs[REMOTE_BATCH_MAX];
} remote_batch_t;

/* `returned` has a cache line of its own: collectors on other CPUs
 * push on it while the owner writes `free` (and its cache's other
 * fields) at every flush.  Sharing the line made every push and every
 * flush move it between the two CPUs (xmalloc-64/2: 9% of the CPU
 * time). */
typedef struct remote_pool {
	remote_batch_t *free;		/* owner only */
	unsigned nalloc;		/* owner only: batches made */
	/* atomic: pushed by collectors */
	remote_batch_t *returned PC_ALIGNED(PC_CACHELINE);
} PC_ALIGNED(PC_CACHELINE) remote_pool_t;

_Static_assert(offsetof(remote_pool_t, returned) % PC_CACHELINE == 0 &&
    sizeof(remote_pool_t) == 2 * PC_CACHELINE,
    "a pool's returned stack shares no line");

/* A batch of the pool (owner only), or NULL when it owns REMOTE_POOL_MAX
 * batches and none has come back, or the OS refuses memory. */
remote_batch_t *remote_batch_get(remote_pool_t *pool);
/* Give a collected batch back to its pool (any thread). */
void remote_batch_put(remote_batch_t *b);

/* Push b on a stack (any thread, lock-free: one CAS). */
static PC_INLINE void
remote_push(remote_batch_t **head, remote_batch_t *b)
{
	remote_batch_t *old = __atomic_load_n(head, __ATOMIC_RELAXED);
	do
		b->next = old;
	while (!__atomic_compare_exchange_n(head, &old, b, true,
	    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Take the whole stack (NULL if empty). */
static PC_INLINE remote_batch_t *
remote_take(remote_batch_t **head)
{
	if (__atomic_load_n(head, __ATOMIC_RELAXED) == NULL)
		return NULL;	/* no write to a line others push on */
	return __atomic_exchange_n(head, NULL, __ATOMIC_ACQUIRE);
}

/* Whether the stack holds a batch (a hint: a push may follow). */
static PC_INLINE bool
remote_pending(remote_batch_t *const *head)
{
	return __atomic_load_n(head, __ATOMIC_RELAXED) != NULL;
}

#endif
