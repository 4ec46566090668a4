/*
 * Arenas: one per CPU (by default), each with a bin per size class over a
 * page heap of its own (pageheap.h, same index).  Threads pick the arena
 * of the CPU they run on whenever they refill, so arenas stay mostly
 * CPU-local and their locks mostly uncontended; a lone thread keeps to
 * arena 0 (arena_choose).
 *
 * A bin holds the slabs of one class that have free objects (bin_lock).
 * A refill whose bin runs out takes the free objects of an idle arena's
 * bin of the class, if it has plenty, before it makes a new slab
 * (arena_refill).
 * A bin takes pages for new slabs from its arena's page heap first, then
 * from pages other heaps have freed (arena.c: slab_pages), and gives an
 * empty slab's pages back to the heap that holds them.  A large block
 * under PC_LARGE_SHARED_MIN does the same (arena_large_alloc), except
 * for the big-block heap's pages, and belongs to the heap it lies in.  Lock order: bin ->
 * page heaps (pageheap.h).  Only one bin lock is held at a time.
 *
 * Blocks freed by threads running on another CPU arrive as remote batches
 * (remote.h) on the bin's pending stack, without its lock; every refill,
 * locked flush and trim of the bin frees them first.
 *
 * Arena 0 also owns the big-block heap (arena_big, the last page heap):
 * large blocks of PC_LARGE_SHARED_MIN or more, from every CPU.  A slab
 * takes its pages only when no arena's heap has free pages handed out
 * before (arena.c: slab_pages).  A big buffer is often written at a few
 * places only (its header, its ends): its untouched pages, once it is
 * freed, count as dirty but are not resident, and slabs carved there
 * first would fault in new memory while resident free pages wait
 * elsewhere.  A program that builds
 * small objects, allocates big buffers and frees it all, round after
 * round (a USD stage opened and closed again), grew by a round's big
 * buffers each round that way (the harness's usdlike at 2 threads: 607,
 * 747, 860 MB peak RSS after 1, 2, 3 rounds; 607 to 614 MB now).
 */
#ifndef PC_ARENA_H
#define PC_ARENA_H

#include "os.h"
#include "conf.h"
#include "locks.h"
#include "pagemap.h"
#include "pageheap.h"
#include "remote.h"
#include "span.h"

typedef struct bin {
	span_t *head;		/* slabs with free objects; bin_lock */
	span_t *tail;
	/* Empty slabs kept in the list (BIN_KEEP_EMPTY_PAGES), and
	 * nrefills when arena_bins_idle_trim last looked. */
	unsigned nempty;
	uint64_t idle_nrefills;
	/* Free objects in the listed slabs: written under the lock, read
	 * without it by other arenas' refills (arena_refill). */
	uint64_t nfree;
	/* The other arena whose bin had free objects to spare when this
	 * one last ran out, and its refill count then (arena_refill); arena
	 * 0 and 0 before that, a hint. */
	uint64_t peer_nrefills;
	unsigned peer;
	uint64_t nrefills;	/* stats */
	uint64_t nflushes;
	uint64_t nslabs;	/* slabs created */
	uint64_t curslabs;	/* slabs live now */
	uint64_t nobj_out;	/* objects handed to caches or callers */
	uint64_t nobj_in;	/* objects given back */
	/* Batches flushed by threads of other CPUs, not yet freed into the
	 * slabs (remote.h: pushed lock-free, taken under bin_lock). */
	remote_batch_t *remote;
} PC_ALIGNED(PC_CACHELINE) bin_t;

typedef struct arena {
	bin_t bins[SC_NSMALL];
	/* Kept empty slabs past each bin's first, summed over the bins
	 * (on a line of its own, as bins are aligned): added to under each
	 * bin's lock, read without them (arena.c: surplus_near,
	 * arena_refill); pc_check verifies it. */
	unsigned nsurplus;
} arena_t;

/*
 * Empty slabs a bin keeps, in pages (at least one slab, whatever its
 * size), so that a bin whose slabs empty and fill again does not give
 * them to its page heap and take them back under the heap's lock.  In a
 * producer/consumer program every slab a producer fills is emptied by
 * consumers' frees: with one empty slab kept, xmalloc at 8 threads made
 * and freed 400 000-485 000 slabs a run (5 000-14 000 waits on the heap
 * locks), and with 32 pages it took 0.83 of the time (0.89 in a later
 * check) for 1.4 MiB more peak RSS (docs/design.md, "Bins").  Looks at
 * every arena's bins come at least BIN_IDLE_TRIM_NS apart, from any
 * thread cache's GC step or the purging thread: a bin that has not
 * refilled since the last look that found it holding more than one
 * gives back all but one.  So does every bin of the arena and of the next
 * few (arena.c: surplus_near) when a refill would otherwise make a slab
 * of memory never touched: a program that uses one size after another
 * left each size's kept slabs resident while the next took new pages (the
 * harness's simple: 9.5 MiB peak RSS, 8.7 MiB now), and a thread moving
 * between CPUs grew one arena while the other's bins kept theirs
 * (thread-churn at 1 thread: 4.3 MiB, 3.9 now).  A refill that finds no
 * memory makes every bin give back all of them, and so does trim.
 * (Without the purging thread, a program that stops allocating keeps
 * them, as it keeps its dirty pages.)
 */
#define BIN_KEEP_EMPTY_PAGES 32
#define BIN_IDLE_TRIM_NS ((uint64_t)1000 * 1000000u)

extern arena_t *arenas;
extern unsigned narenas;
extern os_lock_t *arena_bin_locks;	/* locks.h: narenas * SC_NSMALL */
/* Threads with a cache (atomic; counted by the thread caches' registry,
 * reclaim.c): arena_choose gives arena 0 to a lone thread. */
extern unsigned arena_nthreads;

/*
 * An arena's index, its page heap, the big-block heap if it is arena 0,
 * and its bins' locks are computed, not stored: a new arena is all zero,
 * so start-up writes none of its pages (each page written first is a page
 * fault, some 25 us here, in every process that loads the library), and
 * a short-lived process writes only the bins it uses.
 */
static PC_INLINE unsigned
arena_index(const arena_t *a)
{
	return (unsigned)(a - arenas);
}

static PC_INLINE pageheap_t *
arena_heap(const arena_t *a)
{
	return &pageheaps[arena_index(a)];	/* heap i is arena i's */
}

static PC_INLINE pageheap_t *
arena_big(const arena_t *a)
{
	return a == arenas ? &pageheaps[narenas] : NULL;
}

int arena_init_all(unsigned n);

static PC_INLINE os_lock_t *
bin_lock(const arena_t *a, unsigned sc)
{
	return locks_nth(arena_bin_locks, arena_index(a) * SC_NSMALL + sc);
}

/* Whether the calling thread is the only one with a cache.  None yet: the
 * first thread before its cache (large blocks only, so far); without
 * caches the count says nothing. */
static PC_INLINE bool
arena_lone(void)
{
	unsigned n = __atomic_load_n(&arena_nthreads, __ATOMIC_RELAXED);
	return n == 1 || (n == 0 && opt_tcache);
}

static PC_INLINE arena_t *
arena_choose(void)
{
	/* One thread, one arena: a single-threaded program moving between
	 * CPUs would otherwise leave a partly used slab of each class, and
	 * free pages, in every arena it passed through. */
	if (arena_lone())
		return &arenas[0];
	return &arenas[os_cpu() % narenas];
}

/* The slab span under p if p's page still holds a slab of class sc
 * serving a bin, else NULL: a page looked up again after a first lookup
 * found such a slab may have changed since (a racing misuse), and become
 * a large block or free run of any heap, or unmapped. */
static PC_INLINE span_t *
arena_slab_of(const void *p, unsigned sc)
{
	uintptr_t e = pagemap_lookup(p);
	span_t *s = pagemap_span(e);
	if (PC_UNLIKELY((e & PM_SC_MASK) != sc + 1 || s->arena >= narenas))
		return NULL;
	return s;
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
/* The same for the blocks of runs[0..n) (remote.h: free_run_t). */
void arena_flush_runs(arena_t *a, unsigned sc, const free_run_t *runs,
    unsigned n);
/* The same for rb's runs, without the bin lock: they are freed (and
 * checked) by the bin's next refill, locked flush, trim or arena_collect;
 * rb then goes back to its pool. */
static PC_INLINE void
arena_flush_remote(arena_t *a, unsigned sc, remote_batch_t *rb)
{
	remote_push(&a->bins[sc].remote, rb);
}
/* Free the remote batches waiting in a's bins (from slow paths: a thread
 * cache's GC step). */
void arena_collect(arena_t *a);

/* What was wrong with a small-block pointer (arena_report_misuse). */
enum misuse {
	MISUSE_INTERIOR,	/* in a slab, not at the start of an object */
	MISUSE_FREED,		/* free in its slab's bitmap */
	MISUSE_CACHED,		/* in the calling thread's cache */
	MISUSE_PENDING,		/* carries the cache mark, not in the caller's
				 * cache: in another thread's, or in a batch
				 * on its way back to its slab */
	MISUSE_STALE,		/* cached, but its page is no slab of its class */
	MISUSE_SIZE,		/* free_sized: a size of another class */
};

/*
 * Report misuse of p, whose page-map entry named slab s (NULL when it no
 * longer does) of class sc, by `op` ("free", "realloc", ...) called from
 * `caller` (NULL: found while flushing a thread cache); `size` is the size
 * free_sized was given.  Never allocates.  Then pc_misuse_end (report.h):
 * aborts unless abort_on_error is off, or at pc_misuse_undefer() if the
 * caller deferred it because it holds a lock.
 */
void arena_report_misuse(enum misuse what, const char *op, const void *p,
    const span_t *s, unsigned sc, size_t size, const void *caller)
    PC_NOINLINE PC_COLD;
/* MISUSE_SIZE's report for a block of `bsize` bytes: a small block's, or
 * a start-up nursery block's (api.c), which is of no class. */
void arena_report_size(const char *op, const void *p, size_t size,
    size_t bsize, const void *caller) PC_NOINLINE PC_COLD;

/* Large blocks are the page heaps' (pageheap_large_*): from any arena's
 * heap, its own first (arena_large_alloc), or (PC_LARGE_SHARED_MIN and
 * up) from arena_big_heap(). */
static PC_INLINE pageheap_t *
arena_big_heap(void)
{
	return arena_big(&arenas[0]);
}

/* A large block (32 KiB < size < PC_LARGE_SHARED_MIN) for arena a: free
 * pages any arena's heap handed out before, ahead of new memory
 * (arena.c). */
void *arena_large_alloc(arena_t *a, size_t size, size_t align, bool *zeroed);

/* Give every dirty free page of a's heaps back to the OS, unmapping wholly
 * free regions; with bins, also the empty slabs each bin keeps (the caller
 * must hold no bin lock) and the heaps those slabs' pages went back to.
 * Returns the pages purged. */
size_t arena_purge_all(arena_t *a, bool bins);
/* arena_purge_all of every arena, then every heap once more; returns the
 * pages purged (malloc_trim, and the answer to the OS refusing memory). */
size_t arena_release_all(bool bins);

/* Give back the extra empty slabs (all but one) of a's bins that have
 * not refilled since the previous call that found them holding more than
 * one; returns the slabs given back. */
unsigned arena_bins_idle_trim(arena_t *a);

/* When arena_decay_tick next looks at every arena's bins. */
extern uint64_t arena_next_idle_trim_ns;

/* Purge what a's heaps have decayed, if a pass is due, and trim idle
 * bins' empty slabs every BIN_IDLE_TRIM_NS; cheap when neither is due. */
static PC_INLINE void
arena_decay_tick(arena_t *a)
{
	/* One thread looks at every arena's bins: an arena whose CPU no
	 * longer allocates gets no tick of its own. */
	if (os_due(&arena_next_idle_trim_ns, os_now_ns(), BIN_IDLE_TRIM_NS,
	    NULL)) {
		for (unsigned i = 0; i < narenas; i++)
			arena_bins_idle_trim(&arenas[i]);
	}
	pageheap_decay_tick(arena_heap(a));
	if (arena_big(a) != NULL)
		pageheap_decay_tick(arena_big(a));
}

/* Every bin's lock, then every page heap's (the child's: locks.h). */
void arena_prefork(void);
void arena_postfork_parent(void);

#endif
