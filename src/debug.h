/*
 * Debug mode (PCMALLOC_CONF=debug:true, no rebuild): small blocks bypass
 * the thread caches; free memory is filled with a junk pattern that is
 * checked when the block is handed out again (a write after free is
 * reported), and the bytes between the requested size and the class size
 * are a redzone checked on free (a write past the end is reported).  The
 * requested sizes live in a per-slab side array in metadata memory
 * (slab_debug_init).
 * malloc_usable_size reports the requested size, so the redzone is never
 * legitimately writable.  Large and huge blocks are not covered.
 */
#ifndef PC_DEBUG_H
#define PC_DEBUG_H

#include "slab.h"

#define DEBUG_JUNK	SLAB_DEBUG_JUNK	/* slab_debug_init fills slabs */
#define DEBUG_REDZONE	0xab

/* The class for a request of `size` bytes: room for a redzone byte. */
unsigned debug_class(size_t size);
/* A block of class sc (at least debug_class(size)) for `size` bytes. */
void *debug_alloc_small(size_t size, unsigned sc);
void debug_free_small(void *p, unsigned sc);
size_t debug_usable_small(const void *p, const span_t *s);

#endif
