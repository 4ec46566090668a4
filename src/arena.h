/*
 * Arenas: one per CPU (by default), each with a bin per size class and a page
 * heap.  Threads pick the arena of the CPU they run on whenever they refill,
 * so arenas stay mostly CPU-local and their locks mostly uncontended.
 *
 * A bin holds the slabs of one class that have free objects (bin->lock).
 * The page heap (arena->lock) carves slabs and large blocks out of regions
 * reserved from the OS, keeps free runs in size buckets, and coalesces
 * neighbouring free runs.  Lock order: bin -> arena page heap -> pagemap,
 * base.  Only one bin lock is held at a time.
 */
#ifndef PC_ARENA_H
#define PC_ARENA_H

#include "os.h"
#include "span.h"

#define ARENA_EXACT_BUCKETS 512
#define ARENA_NBUCKETS (ARENA_EXACT_BUCKETS + 4 * 10)
#define ARENA_REGION_MIN ((size_t)4 << 20)

typedef struct bin {
	os_lock_t lock;
	span_t *head;		/* slabs with free objects; bin->lock */
	span_t *tail;
	span_t *empty;		/* one empty slab kept to avoid churn */
	uint64_t nrefills;	/* stats */
	uint64_t nflushes;
	uint64_t nslabs;	/* slabs created */
	uint64_t curslabs;	/* slabs live now */
	uint64_t nobj_out;	/* objects handed to caches or callers */
	uint64_t nobj_in;	/* objects given back */
} PC_ALIGNED(PC_CACHELINE) bin_t;

typedef struct arena {
	bin_t bins[SC_NSMALL];
	os_lock_t lock;		/* everything below */
	span_t *runs[ARENA_NBUCKETS];	/* free runs by size */
	uint64_t run_mask[(ARENA_NBUCKETS + 63) / 64];
	region_t *regions;
	unsigned index;
	size_t mapped;		/* bytes in regions */
	size_t active;		/* pages in slabs and large blocks */
	size_t used_pages;	/* pages in the regions' used hulls */
	size_t dirty;		/* free pages that may be resident */
	uint64_t nlarge_alloc;
	uint64_t nlarge_free;
	size_t large_pages;	/* pages in large blocks (atomic) */
	uint64_t npurged;	/* pages purged */
	uint64_t npurge_passes;
	uint64_t next_decay_ns;	/* next decay pass is due */
	/* Decay budget (arena.c, decay_locked): the fewest dirty pages seen
	 * since reuse_window_ns, and what the last full window allows. */
	size_t dirty_min;
	size_t purge_budget;
	uint64_t reuse_window_ns;
} arena_t;

extern arena_t *arenas;
/* Some arena has held many dirty pages (see background_thread:auto). */
extern bool arena_dirty_high;
extern unsigned narenas;

int arena_init_all(unsigned n);

static PC_INLINE arena_t *
arena_choose(void)
{
	return &arenas[os_cpu() % narenas];
}

static PC_INLINE arena_t *
arena_of(const span_t *s)
{
	return &arenas[s->arena];
}

/* Bins (take and release the bin lock themselves). */
unsigned arena_refill(arena_t *a, unsigned sc, void **out, unsigned n);
/* Return objects of class sc whose slabs belong to arena a; all of them. */
void arena_flush(arena_t *a, unsigned sc, void **ptrs, unsigned n);
/* While on, pages this thread frees count as already decayed: the caller
 * returns memory nobody has touched for a while (an idle thread's cache). */
void arena_cold_frees(bool on);

/* What was wrong with a small-block pointer (arena_report_misuse). */
enum misuse {
	MISUSE_INTERIOR,	/* in a slab, not at the start of an object */
	MISUSE_FREED,		/* free in its slab's bitmap */
	MISUSE_CACHED,		/* in the calling thread's cache */
	MISUSE_STALE,		/* cached, but its page is no slab of its class */
	MISUSE_SIZE,		/* free_sized: a size of another class */
};

/*
 * Report misuse of p, whose page-map entry named slab s (NULL when it no
 * longer does) of class sc, by `op` ("free", "realloc", ...) called from
 * `caller` (NULL: found while flushing a thread cache); `size` is the size
 * free_sized was given.  Never allocates.  Aborts unless abort_on_error is
 * off, or, between arena_misuse_defer() and arena_misuse_undefer(), at
 * the undefer: a caller that holds a lock reports before releasing it.
 */
void arena_report_misuse(enum misuse what, const char *op, const void *p,
    const span_t *s, unsigned sc, size_t size, const void *caller)
    PC_NOINLINE PC_COLD;
void arena_misuse_defer(void);
void arena_misuse_undefer(void);

/* Large blocks: whole pages, 16 KiB < size < PC_HUGE_MIN. */
void *arena_large_alloc(arena_t *a, size_t size, size_t align, bool *zeroed);
/*
 * Free the large block that starts at p; with purge, its pages go back to
 * the OS at once.  The block is checked under the page lock that frees it,
 * so of two racing frees exactly one succeeds.  Returns BLOCK_LIVE and its
 * usable size, or what p is instead (enum block_state; nothing done).
 */
int arena_large_free(void *p, bool purge, size_t *usable);
/* Check the large block that starts at p as arena_large_free does and, if
 * new_size is not 0, resize it in place if it can: BLOCK_LIVE with
 * *usable its size afterwards, or what p is instead. */
int arena_large_resize(void *p, size_t new_size, size_t *usable);

/* Give every dirty free page back to the OS, unmapping wholly free regions;
 * with bins, also the empty slab each bin keeps (the caller must hold no
 * bin lock).  Returns the pages purged. */
size_t arena_purge_all(arena_t *a, bool bins);
/* Purge every arena and unmap their wholly free regions: the answer to
 * the OS refusing memory.  Takes each arena's page lock in turn. */
void arena_release_all(bool bins);
/* Purge what has decayed, if a pass is due; cheap when none is. */
void arena_decay_tick(arena_t *a);

void arena_prefork(void);
void arena_postfork_parent(void);
void arena_postfork_child(void);

#endif
