/*
 * Huge blocks: requests of PC_HUGE_MIN bytes or more (or with alignment
 * above a chunk), and large blocks that a growing realloc moves
 * (huge_adopt), are mapped directly from the OS and unmapped on free.
 * Realloc resizes them with the OS's remap where it can, so growing a huge
 * buffer never copies.
 *
 * The page map knows a huge block by its first page only (its entry is how
 * free tells huge from large at no cost).  The registry, a sorted array of
 * the live blocks under huge_lock, knows every address inside them, and a
 * ring of recently freed ranges tells a double free from a foreign
 * pointer; both are searched on slow paths only.  Frees and resizes check
 * the block under huge_lock, so of two racing frees exactly one unmaps.
 * Lock order: huge_lock -> page-map lock; base lock is never taken under it.
 */
#ifndef PC_HUGE_H
#define PC_HUGE_H

#include "span.h"

void *huge_alloc(size_t size, size_t align);
/* Free the huge block that starts at p; returns BLOCK_LIVE and its usable
 * size, or what p is instead (nothing done then). */
int huge_free(void *p, size_t *usable);
/*
 * Check that p starts a live huge block and, if new_size is not 0, resize
 * it.  Returns BLOCK_LIVE with *usable its size before and *out the
 * (possibly moved) block, or NULL when it could not be resized (left
 * intact); anything else is what p is instead.
 */
int huge_realloc(void *p, size_t new_size, void **out, size_t *usable);

/*
 * Give the large block [p, p + len) (len page aligned) a mapping of its own
 * of new_size bytes (> len), moving its pages there without copying; p's
 * range is left with fresh zero pages, for the caller to free.  Returns the
 * new huge block, or NULL when nothing was done (the caller copies).
 */
void *huge_adopt(void *p, size_t len, size_t new_size);
/* The smallest block a growing realloc should give to huge_adopt. */
size_t huge_adopt_min(void);

size_t huge_mapped_bytes(void);
size_t huge_count(void);

void huge_prefork(void);
void huge_postfork_parent(void);

#endif
