/*
 * Page heaps: one per arena, the pages that arena's slabs and large blocks
 * are carved from first (and other arenas' too, from pages handed out
 * before: arena.c), and one more (the last) for the large blocks of
 * PC_LARGE_SHARED_MIN or more of all arenas (arena.h: the big-block
 * heap).  A heap reserves regions from the OS, keeps its free runs in
 * size buckets, merges a freed run with its free neighbours, purges runs
 * that stayed free for decay_ms, and serves large blocks.
 *
 * Every field of a heap, and of the free and large spans and regions it
 * holds, belongs to pageheap_lock(heap).  A heap lock is taken under a bin lock
 * (arena.h), never the other way; several heap locks are taken in index
 * order (the full lock order is atop init.c).  A heap's index equals its
 * arena's (the big-block heap's is narenas); region->heap names the heap
 * that holds a region, and so where a span's pages go back to.
 */
#ifndef PC_PAGEHEAP_H
#define PC_PAGEHEAP_H

#include "os.h"
#include "locks.h"
#include "span.h"

#define PAGEHEAP_EXACT_BUCKETS 512
#define PAGEHEAP_NBUCKETS (PAGEHEAP_EXACT_BUCKETS + 4 * 10)
#define PAGEHEAP_REGION_MIN ((size_t)4 << 20)

/* Its fields are pageheap_lock(h)'s. */
typedef struct pageheap {
	span_t *runs[PAGEHEAP_NBUCKETS];	/* free runs by size */
	uint64_t run_mask[(PAGEHEAP_NBUCKETS + 63) / 64];
	region_t *regions;
	size_t mapped;		/* bytes in regions */
	size_t active;		/* pages in slabs and large blocks */
	size_t used_pages;	/* pages in the regions' used hulls */
	size_t dirty;		/* free pages that may be resident */
	uint64_t nlarge_alloc;
	uint64_t nlarge_free;
	size_t large_pages;	/* pages in large blocks (atomic) */
	uint64_t npurged;	/* pages purged */
	/* Leftover resident pages purged from large blocks' interiors as they
	 * are handed out (pageheap.c, large_clean; atomic, no lock). */
	uint64_t nclean_purged;
	uint64_t npurge_passes;
	uint64_t next_decay_ns;	/* next decay pass is due */
	/* Decay budget (pageheap.c, decay_locked): the fewest dirty pages
	 * seen since reuse_window_ns, and what the last full window allows. */
	size_t dirty_min;
	size_t purge_budget;
	uint64_t reuse_window_ns;
	span_t *spare;		/* spare descriptors (pageheap.c) */
	unsigned nspare;
} PC_ALIGNED(PC_CACHELINE) pageheap_t;

extern pageheap_t *pageheaps;
extern unsigned npageheaps;
extern os_lock_t *pageheap_locks;	/* locks.h: one per heap */

/* Computed, not stored: start-up writes no page of the heaps (arena.h). */
static PC_INLINE unsigned
pageheap_index(const pageheap_t *h)
{
	return (unsigned)(h - pageheaps);
}

static PC_INLINE os_lock_t *
pageheap_lock(const pageheap_t *h)
{
	return locks_nth(pageheap_locks, pageheap_index(h));
}
/* Some heap has held many dirty pages (see background_thread:auto). */
extern bool pageheap_dirty_high;

int pageheap_init_all(unsigned n);

/* The heap whose region holds span s's pages (not huge). */
static PC_INLINE pageheap_t *
pageheap_of(const span_t *s)
{
	return &pageheaps[s->region->heap];
}

/* The large block or free run (or slab) p lies in, by the page map, read
 * without a lock: a hint, or NULL if p is no page heap's.  Walks down
 * through the interior pages (pagemap.h): O(the span's pages). */
span_t *pageheap_span_at(const void *p);

/* Whether h may hold npages free pages handed out before (read without
 * the lock: a hint). */
static PC_INLINE bool
pageheap_may_reuse(const pageheap_t *h, size_t npages)
{
	size_t used = __atomic_load_n(&h->used_pages, __ATOMIC_RELAXED);
	size_t active = __atomic_load_n(&h->active, __ATOMIC_RELAXED);
	return used >= active + npages;
}

/*
 * A slab's pages: npages pages of kind SPAN_SLAB for arena `owner`'s bin
 * of class tag - 1, their page-map entries `span | tag`.  With reuse_only,
 * only pages handed out before are taken (NULL rather than touching new
 * memory); otherwise the heap grows if it must.  Takes h's lock.
 */
span_t *pageheap_slab_alloc(pageheap_t *h, size_t npages, uintptr_t tag,
    unsigned owner, bool reuse_only);
/* Give an empty slab's pages back to the heap that holds them. */
void pageheap_slab_free(span_t *s);

/* Large blocks: whole pages, 32 KiB < size < PC_HUGE_MIN. */
void *pageheap_large_alloc(pageheap_t *h, size_t size, size_t align,
    bool *zeroed);
/* The same from pages h handed out before only, else NULL: never grows h
 * nor touches memory never touched. */
void *pageheap_large_reuse(pageheap_t *h, size_t size, size_t align,
    bool *zeroed);
/* The free pages a large block of size bytes aligned to align needs in one
 * run: its rounded page count, and the pages alignment may skip. */
size_t pageheap_large_need(size_t size, size_t align);
/*
 * Free the large block that starts at p; with purge, its pages go back to
 * the OS at once.  The block is checked under the page lock that frees it,
 * so of two racing frees exactly one succeeds.  Returns BLOCK_LIVE and its
 * usable size, or what p is instead (enum block_state; nothing done).
 */
int pageheap_large_free(void *p, bool purge, size_t *usable);
/* Check the large block that starts at p as pageheap_large_free does and,
 * if new_size is not 0, resize it in place if it can: BLOCK_LIVE with
 * *usable its size afterwards, or what p is instead. */
int pageheap_large_resize(void *p, size_t new_size, size_t *usable);

/* While on, pages this thread frees count as already decayed: the caller
 * returns memory nobody has touched for a while (an idle thread's cache). */
void pageheap_cold_frees(bool on);
/* Purge what has decayed, if a pass is due; cheap when none is. */
void pageheap_decay_tick(pageheap_t *h);
/* Give every dirty free page back to the OS and unmap wholly free
 * regions, ignoring their age.  Returns the pages purged. */
size_t pageheap_purge(pageheap_t *h);
/* pageheap_purge every heap (the answer to the OS refusing memory, and
 * trim's last step); returns the pages purged. */
size_t pageheap_purge_all(void);

void pageheap_prefork(void);
void pageheap_postfork_parent(void);

#endif
