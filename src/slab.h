/*
 * Slabs: a span of pages cut into objects of one size class, with a bitmap
 * of free objects.  The caller holds the lock of the bin the slab belongs
 * to.  Free tracking lives in the span descriptor, not in the objects, so a
 * write to a freed object can never redirect a later allocation.
 */
#ifndef PC_SLAB_H
#define PC_SLAB_H

#include "span.h"

enum slab_free_result {
	SLAB_FREED = 0,
	SLAB_DOUBLE_FREE,
	SLAB_INTERIOR,		/* not the start of an object */
};

/* Set up span s (kind SPAN_SLAB already) as an all-free slab of class sc. */
void slab_init(span_t *s, unsigned sc);

/*
 * Debug mode (debug.h): a new slab is junk-filled and gets a side array
 * of its blocks' requested sizes in metadata memory (0 or ENOMEM);
 * slab_debug_fini drops the array, if any, before the slab's pages go
 * back to the page heap.
 */
#define SLAB_DEBUG_JUNK 0xde
int slab_debug_init(span_t *s);
void slab_debug_fini(span_t *s);

/* Take up to n free objects; returns how many were taken. */
unsigned slab_pop(span_t *s, void **out, unsigned n);

/* Give object p back.  Detects frees of free objects and of pointers that
 * are not at an object's start; such frees change nothing. */
enum slab_free_result slab_push(span_t *s, void *p);

/* The index of the object p starts in slab s, or a number >= the class's
 * nobjs if p is not the start of one of its objects (sizeclass.h). */
static PC_INLINE uint64_t
slab_obj_index(const span_t *s, const void *p)
{
	const sc_info_t *c = &sc_table[s->sc];
	return sc_obj_start((uintptr_t)p - s->base, c->inv, c->shift);
}

/*
 * Whether object idx is free in the slab's bitmap.  Readable without the
 * bin lock (the bitmap words are written with atomic stores): a thread that
 * frees a block it owns has a happens-before chain from the refill that
 * cleared its bit, and no one else may set that bit again until the block
 * is freed, so an unlocked read never sees it set for a live block.  A set
 * bit means a double free or a block never handed out.
 */
static PC_INLINE bool
slab_obj_is_free(const span_t *s, uint64_t idx)
{
	const uint64_t *bm = s->bitmap;
	uint64_t w = __atomic_load_n(bm + (idx >> 6), __ATOMIC_RELAXED);
	return (w >> (idx & 63)) & 1;
}

static PC_INLINE bool
slab_is_full(const span_t *s)
{
	return s->nfree == 0;
}

static PC_INLINE bool
slab_is_empty(const span_t *s)
{
	return s->nfree == sc_table[s->sc].nobjs;
}

#endif
