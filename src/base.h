/*
 * Metadata memory: span descriptors, regions, arenas and thread caches.
 * It comes from its own OS reservations, never from user-data chunks, so a
 * buffer overflow in user data cannot reach allocator metadata.  Memory is
 * bump-allocated and only recycled through typed free lists.
 */
#ifndef PC_BASE_H
#define PC_BASE_H

#include "span.h"

/*
 * Every metadata mapping (the chunks base_alloc carves, page-map leaves,
 * the huge-block registry) has an inaccessible guard page on each side:
 * user mappings land next to ours, and a linear overflow out of one must
 * fault before it reaches metadata.  base_map returns `size` bytes (a
 * multiple of the page), zeroed; base_guard_bytes counts the guards
 * (address space, never resident).
 */
void *base_map(size_t size);
void base_unmap(void *p, size_t size);
size_t base_guard_bytes(void);

/* Zeroed, 64-byte aligned, never freed.  NULL when the OS refuses. */
void *base_alloc(size_t size);

/* A zeroed span descriptor, or NULL. */
span_t *span_new(void);
void span_delete(span_t *s);

region_t *region_new(void);
void region_delete(region_t *r);

/* Debug mode: an array of SC_MAX_OBJS requested sizes for one slab. */
uint32_t *base_dbg_sizes_new(void);
void base_dbg_sizes_delete(uint32_t *a);

size_t base_mapped_bytes(void);

void base_prefork(void);
void base_postfork_parent(void);

#endif
