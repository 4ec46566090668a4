/*
 * Guarded sampling: a rare sampled allocation of at most a page is placed
 * alone on a page of the guard pool, between inaccessible guard pages, at
 * random against the left or the right guard; when freed, its page becomes
 * inaccessible.  A use after free or an overflow into a guard then faults
 * at once, and the fault handler reports it with the block's allocation
 * and free stacks.  Free, realloc and usable_size of a guarded block, and
 * double or invalid frees of one, are dealt with here too.
 *
 * The pool is reserved once, at the first sample, at a fixed size
 * (guard_slots pages, each followed by a guard page, one more guard in
 * front): [guard_base, guard_base + guard_size).  Its pages have page-map
 * entry 0, so free() of a guarded block leaves the fast path as a foreign
 * pointer would, and each slow path asks guard_owns() first: one
 * subtraction and one compare, and false for every pointer until the pool
 * exists.  Slot metadata (stacks, thread ids) lives in base memory.
 *
 * Locking: guard_lock (a leaf: nothing else is taken under it except
 * base_alloc at pool creation) protects the slots' states and the free
 * queue.  The fault handler takes no lock: it reads a slot as it finds it.
 */
#ifndef PC_GUARD_H
#define PC_GUARD_H

#include "config.h"

/* Set once, base before size, and never changed: 0 and 0 until then. */
extern uintptr_t guard_base PC_HIDDEN;
extern size_t guard_size PC_HIDDEN;

static PC_INLINE bool
guard_owns(const void *p)
{
	size_t size = __atomic_load_n(&guard_size, __ATOMIC_ACQUIRE);
	return (uintptr_t)p - __atomic_load_n(&guard_base, __ATOMIC_RELAXED)
	    < size;
}

/* A guarded block of `size` bytes aligned to `align` (a power of two, at
 * most a page), allocated at `stack` (nframes return addresses), or NULL
 * if none can be had (too big, no free slot, the pool could not be made,
 * or the call site was sampled recently).  From the sampler (sample.c),
 * which decides which allocations are offered. */
void *guard_alloc(size_t size, size_t align, void *const *stack,
    int nframes);

/* For a p with guard_owns(p): free it, or report a double or invalid free
 * (and abort unless guard_recover). */
void guard_free(void *p, const void *caller);
/* The requested size of the live guarded block p, or 0 after reporting
 * misuse by `op` (realloc, malloc_usable_size). */
size_t guard_usable(const void *p, const char *op, const void *caller);

/* Guarded blocks live now, and samples taken since start (stats, tests). */
size_t guard_live(void);
uint64_t guard_nsampled(void);

void guard_prefork(void);
void guard_postfork_parent(void);

#endif
