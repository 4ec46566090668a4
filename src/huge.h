/*
 * Huge blocks: requests of PC_HUGE_MIN bytes or more (or with alignment
 * above a chunk), and large blocks that a growing realloc moves
 * (huge_adopt), are mapped directly from the OS.  Realloc resizes them with
 * the OS's remap where it can, so growing a huge buffer never copies.  A
 * freed block's mapping (256 MiB in all, 64 MiB with background_thread:off)
 * is kept, pages and all, to serve the next huge block that fits in it,
 * and unmapped by the first tick after a second (less with a shorter
 * decay_ms), or once the heap has grown into as many new pages as it
 * holds (huge.c, huge_kept); a block so served may have more mapping than
 * size, and grows into it without a system call.
 *
 * The page map knows a huge block by its first page only (its entry is how
 * free tells huge from large at no cost).  The registry, a sorted array of
 * the live blocks under huge_lock, knows every address inside them, and
 * the kept mappings and a ring of recently unmapped ranges tell a double
 * free from a foreign pointer; all are searched on slow paths only.  Frees
 * and resizes check the block under huge_lock, so of two racing frees
 * exactly one succeeds.
 * Lock order: huge_lock -> page-map lock; base lock is never taken under it.
 */
#ifndef PC_HUGE_H
#define PC_HUGE_H

#include <stdbool.h>

#include "span.h"

/* A huge block; *zeroed says whether it reads as zeros (a fresh mapping;
 * a kept one holds what its last block left). */
void *huge_alloc(size_t size, size_t align, bool *zeroed);
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
 * of new_size bytes (> len): a kept mapping that fits, its contents copied
 * there (*copied; p keeps its pages), or else a new one, its pages moved
 * there without copying (p's range is left with fresh zero pages).  p is
 * the caller's to free.  Returns the new huge block, or NULL when nothing
 * was done (the caller copies).
 */
void *huge_adopt(void *p, size_t len, size_t new_size, bool *copied);
/* The smallest block a growing realloc should give to huge_adopt. */
size_t huge_adopt_min(void);

/* Unmap the kept mappings whose time is up, or that the heap's growth
 * has made up for (huge_note_fresh); cheap when none is kept.  Or all. */
void huge_keep_tick(void);
void huge_keep_release(bool all);
/* The heap took `bytes` of pages never touched before (any lock held). */
void huge_note_fresh(size_t bytes);
/* Kept bytes past which the purging thread is wanted (bgthread.c). */
#define HUGE_KEEP_THREAD_BYTES	((size_t)64 << 20)

/* Mapped bytes of live huge blocks, their count, and the kept mappings'. */
size_t huge_mapped_bytes(void);
size_t huge_count(void);
size_t huge_kept_mapped_bytes(void);

void huge_prefork(void);
void huge_postfork_parent(void);

#endif
