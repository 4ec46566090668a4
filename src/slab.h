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

/* Take up to n free objects; returns how many were taken. */
unsigned slab_pop(span_t *s, void **out, unsigned n);

/* Give object p back.  Detects frees of free objects and of pointers that
 * are not at an object's start; such frees change nothing. */
enum slab_free_result slab_push(span_t *s, void *p);

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
