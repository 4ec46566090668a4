/*
 * Thread caches: per-thread stacks of free small objects, one per size
 * class, in front of the arenas.  A hit on malloc or free touches only the
 * thread's own cache: no lock, no atomic.  Misses move a batch between the
 * cache and an arena (refill, flush).
 *
 * The thread's cache pointer (os_tls.h) starts at a shared, zero-capacity
 * cache, so the first malloc or free of a thread misses and the slow path
 * sets the thread up; no fast path checks for initialisation.  The thread's
 * state is which cache it points to: tcache_new (not set up yet),
 * tcache_busy (being set up: nested calls bypass caches), tcache_dead
 * (flushed at thread exit: bypass from now on), reclaim_stolen (another
 * thread took the cache's contents: the next slow path takes it back), or
 * its own cache.
 *
 * Idle threads: a thread that stops allocating keeps its cache, and the
 * slabs under it, until it allocates again.  tcache_reclaim() empties such
 * caches from another thread (trim, the purging thread, a periodic slow
 * path), by the protocol of reclaim.c.  It may only touch a cache its
 * owner is not using, with no cost on the owner's fast path beyond two
 * stores: every operation on the cache is bracketed (below).
 *
 * The operation bracket.  TCACHE_OP_BEGIN and TCACHE_OP_END count the
 * calling thread's operations in progress in tcache_thread.in_op.  Every
 * operation opens and closes in one inline function of this header or of
 * api.h (tcache_alloc_sc, tcache_free, api_free, api_free_sized) or in
 * one function of a
 * .c file (tcache_block_check, verify.c's check of the caller's cache):
 * each opens it first, and leaves either through TCACHE_OP_END or through
 * a tail call of a *_slow function, which is the noinline, cold rest of
 * the operation and closes it as its last act (tcache_alloc_slow,
 * tcache_alloc_slow_aligned, tcache_free_slow, api_free_slow; nothing
 * else is named *_slow in the front end).  Slow paths therefore run
 * inside the operation, and their helpers (tcache_free_small, ...) say
 * so.  Compiled out (PC_TCACHE_RECLAIM
 * 0) where the OS cannot reclaim (os.h: PC_OS_CAN_RECLAIM) and under TSan,
 * which cannot see the fence.
 */
#ifndef PC_TCACHE_H
#define PC_TCACHE_H

#include "os.h"
#include "os_tls.h"
#include "pagemap.h"
#include "remote.h"
#include "span.h"

/*
 * A bin keeps a copy of its class's constants for the free-time checks
 * (tcache_free_ok): they are on the cache line the fast path touches
 * anyway, and addressed from the bin pointer it already holds.
 */
typedef struct tbin {
	uint32_t n;		/* cached objects */
	uint16_t cap;		/* 0 disables the bin */
	uint8_t shift;		/* sc_table[sc].shift */
	uint8_t refilled;	/* refilled since it last overflowed */
	void **slots;		/* slots[0..n) */
	uint64_t inv;		/* sc_table[sc].inv */
	uint64_t nobjs;		/* sc_table[sc].nobjs, compared as 64 bits */
	/* The sizes whose class this is, [size_lo, size_lo + size_n): a
	 * sized free checks its size with one subtraction and one compare
	 * (api_free_sized).  size_n 0 (the dummy bin, the state caches)
	 * sends every size to the full check. */
	uint64_t size_lo;
	uint64_t size_n;
	uint64_t nrefills;	/* refills of this bin (tcache_alloc_refill) */
	uint64_t pad;
} tbin_t;

_Static_assert(sizeof(tbin_t) == 64, "free indexes bins with a shift");

/*
 * Double frees of a block that is not free in its slab's bitmap yet: a
 * block in a thread cache carries a mark in its second word, tcache_key
 * (random and odd, set at init) xor its own address, from its free or
 * its refill, and keeps it in a remote batch until the owner's bin frees
 * it.  Every way a block goes back to the program clears that word
 * (malloc's cache hit, the refill's block, tcache_unkey).  So a free that
 * finds the mark is of a free block (tcache_free_slow): the bin is
 * scanned only to say where it waits, in this thread's cache or elsewhere
 * (another thread's cache, a batch), and either is reported before
 * anything changes.  Two threads must not hand out one block because both
 * cached it.  The address in the mark keeps stale marks out: the pages of
 * an emptied slab keep its blocks' marks when they become a block of
 * another size, and a program may move those uninitialized bytes around
 * (to the second word of another block: no mark there).  Not caught at
 * the call: two frees of one block at the same instant, which may both
 * read the word before either writes it, and a double free whose first
 * free's mark the program overwrote (a use after free); the flush that
 * brings the second copy to its slab reports it if the block is still
 * free then.  Classes are 16 bytes and up, so the word exists.
 */
extern uintptr_t tcache_key PC_HIDDEN;
#define TCACHE_KEY_WORD(p) (((uintptr_t *)(p))[1])
/* The mark a free block at p carries: its own address in it, so a copy
 * of it at another address (stale bytes of an earlier block on the same
 * pages, moved into a live block by the program) is no mark. */
#define TCACHE_MARK(key, p) ((key) ^ (uintptr_t)(p))
#define TCACHE_KEY_OF(p) TCACHE_MARK(tcache_key, p)

/* Every TCACHE_GC_EVENTS slow-path events a thread runs a GC step: bins
 * that saw no refill or flush since the previous step give back half of
 * what they hold, and half the capacity they grew by, so an unused class
 * does not pin memory. */
#define TCACHE_GC_EVENTS 128

/*
 * A bin starts with sc_table's tcache_cap slots.  One that overflows
 * after a refill (the thread frees and allocates more blocks of the class
 * than the bin holds, in turns: each turn would flush and refill the
 * same blocks under the bin lock) doubles its capacity instead of
 * flushing, up to the class's tcache_cap_max, while the thread's bins
 * have grown by at most TCACHE_GROW_MAX bytes in all.
 */
#define TCACHE_GROW_MAX ((size_t)512 << 10)

/* A thread's k-th slow-path event refills at most TCACHE_YOUNG_REFILL + k
 * blocks (and tbin_batch at most: tcache.c); a bin's j-th refill at most
 * TCACHE_FIRST_REFILL_BYTES << j bytes' worth, or one block. */
#define TCACHE_YOUNG_REFILL 4
#define TCACHE_FIRST_REFILL_BYTES ((size_t)4 << 10)

/*
 * bin[0] is a dummy that is always full (n == cap == 0); class c lives in
 * bin[c + 1].  A page-map entry's tag is 0 for "not a small block" and
 * c + 1 for class c, so free() indexes bin[tag] directly and large or
 * foreign pointers fall into the miss path without a test of their own.
 */
#define TBIN(tc, sc) (&(tc)->bin[(sc) + 1])

typedef struct tcache {
	tbin_t bin[SC_NSMALL + 1];
	uint8_t busy[SC_NSMALL];	/* refilled or flushed since GC */
	uint32_t events;	/* slow-path events since the GC step */
	size_t grown;		/* bytes of capacity the bins grew by */
	uint64_t nslow;		/* slow-path events, ever */
	struct tcache *next;	/* recycle list */
	/* Live list (reclaim's live lock), for reclaim.c. */
	struct tcache *live_prev, *live_next;
	struct tcache **tls_slot;	/* the owner's cache pointer */
	unsigned *in_op_slot;		/* the owner's in_op */
	uint64_t nslow_seen;	/* nslow at the previous reclaim pass */
	bool counted;		/* in arena_nthreads (reclaim.c) */
	bool orphan;		/* owner gone (fork child) */
	bool orphan_busy;	/* ... inside an operation: leave it */
	bool fenced;		/* pointed at reclaim_stolen this pass */
	/* Batches for flushes to other CPUs' arenas (remote.h); kept when
	 * the cache is recycled, since batches may still be out. */
	remote_pool_t rpool;
} tcache_t;

#if PC_OS_CAN_RECLAIM && !defined(PC_TSAN)
#define PC_TCACHE_RECLAIM 1
/* One thread-local block: the fast path finds both fields from one
 * thread-pointer offset. */
typedef struct tcache_thread {
	tcache_t *cache;
	unsigned in_op;		/* operations in progress */
	/* The heap profiler's countdown (sample.h): here, so malloc reaches
	 * it from the thread-pointer offset it loads anyway. */
	int64_t sample_left;
} tcache_thread_t;
extern PC_TLS tcache_thread_t tcache_thread;
#define TCACHE_GET() (tcache_thread.cache)
#define TCACHE_SET(v) (tcache_thread.cache = (v))
#define TCACHE_OP_BEGIN() do { tcache_thread.in_op++; \
	PC_COMPILER_BARRIER(); } while (0)
#define TCACHE_OP_END() do { PC_COMPILER_BARRIER(); \
	tcache_thread.in_op--; } while (0)
#else
#define PC_TCACHE_RECLAIM 0
OS_TLS_DECLARE(tcache_t *, tcache_tls);
#define TCACHE_GET() OS_TLS_GET(tcache_tls)
#define TCACHE_SET(v) OS_TLS_SET(tcache_tls, v)
#define TCACHE_OP_BEGIN() do { } while (0)
#define TCACHE_OP_END() do { } while (0)
#endif

/* The slow paths entered from a fast path close its operation themselves,
 * so the fast path reaches them with a tail call. */
void *tcache_alloc_slow(size_t size) PC_NOINLINE;
void tcache_free_slow(void *p, unsigned sc, const void *caller) PC_NOINLINE;
/* tcache_free_slow without closing the operation (inside one): checks p
 * like the fast path (reporting misuse, made by caller), then caches or
 * flushes it. */
void tcache_free_small(void *p, unsigned sc, const void *caller);
/* tcache_block_ok's full check, which reports misuse by `op`. */
bool tcache_block_check(const void *p, unsigned sc, const char *op,
    const void *caller) PC_NOINLINE;
/* Set tcache_key and the bins every new cache starts with (init, after
 * the classes and options, before any cache exists). */
void tcache_init(void);

/* tcache_alloc_slow for a block that must be aligned as a slab aligns
 * its class's blocks (memalign): never from the nursery (nursery.h). */
void *tcache_alloc_slow_aligned(size_t size) PC_NOINLINE;

/* Allocate an object of class sc for a request of `size` bytes (the slow
 * path recomputes the class: before init the tables are empty); with
 * `aligned`, on the class's alignment in a slab (a constant: the choice
 * of slow path folds away). */
static PC_INLINE void *
tcache_alloc_sc_from(unsigned sc, size_t size, bool aligned)
{
	TCACHE_OP_BEGIN();
	tbin_t *b = TBIN(TCACHE_GET(), sc);
	if (PC_UNLIKELY(b->n == 0))	/* closes the operation */
		return aligned ? tcache_alloc_slow_aligned(size) :
		    tcache_alloc_slow(size);
	void *p = b->slots[--b->n];
	if (config_harden)
		TCACHE_KEY_WORD(p) = 0;	/* no longer cached */
	TCACHE_OP_END();
	return p;
}

static PC_INLINE void *
tcache_alloc_sc(unsigned sc, size_t size)
{
	return tcache_alloc_sc_from(sc, size, false);
}

/* Allocate a small object (size <= SC_SMALL_MAX). */
static PC_INLINE void *
tcache_alloc(size_t size)
{
	return tcache_alloc_sc(sc_index(size), size);
}

/* The bin for a page-map tag (0: the always-full dummy).  Inside an
 * operation only. */
static PC_INLINE tbin_t *
tcache_bin_of_tag(unsigned tag)
{
	return &TCACHE_GET()->bin[tag];
}

/*
 * The free fast path's checks of small block p (page-map entry e), given
 * its class's inverse, shift and object count (hardened builds): p starts
 * an object of its slab, the slab's bitmap says it is allocated, and it
 * carries no cache mark.  False is a doubt, not a verdict: the slow paths
 * check again and report.
 */
static PC_INLINE bool
tcache_block_seems_ok(const void *p, uintptr_t e, uint64_t inv,
    unsigned shift, uint64_t nobjs)
{
	if (!config_harden)
		return true;
	const span_t *s = pagemap_span(e);
	uint64_t off = (uintptr_t)p - s->base;
	uint64_t idx = sc_obj_start(off, inv, shift);
	if (PC_UNLIKELY(idx >= nobjs))
		return false;
	/* Unlocked: see slab_obj_is_free (slab.h) for why this is exact
	 * for a live block. */
	const uint64_t *bm = s->bitmap;	/* (folds the offset: GCC 12) */
	uint64_t w = __atomic_load_n(bm + (idx >> 6), __ATOMIC_RELAXED);
	if (PC_UNLIKELY((w >> (idx & 63)) & 1))
		return false;
	return PC_LIKELY(TCACHE_KEY_WORD(p) != TCACHE_KEY_OF(p));
}

/*
 * Whether the fast path may cache p, whose page-map entry is e, in bin b
 * (the bin of e's tag): b has room, and (hardened builds) p is the start
 * of an object of its slab that the slab's bitmap says is allocated and
 * that carries no cache mark.  Anything else takes the slow path, which
 * checks again and reports.  Tag 0 (not a small block) selects the
 * always-full dummy bin: the span is never read for it.  Only the double
 * frees the mark cannot see (above) pass here.
 */
static PC_INLINE bool
tcache_free_ok(const tbin_t *b, const void *p, uintptr_t e)
{
	if (PC_UNLIKELY(b->n == b->cap))
		return false;
	return tcache_block_seems_ok(p, e, b->inv, b->shift, b->nobjs);
}

/*
 * Whether small block p (page-map entry e, class sc) is live, as free
 * checks it, outside an operation (realloc, malloc_usable_size): the fast
 * path's checks with the class's own constants, and the full check when
 * they doubt it, which decides and reports misuse by `op`.
 */
static PC_INLINE bool
tcache_block_ok(const void *p, uintptr_t e, unsigned sc, const char *op,
    const void *caller)
{
	const sc_info_t *c = &sc_table[sc];
	return PC_LIKELY(tcache_block_seems_ok(p, e, c->inv, c->shift,
	    c->nobjs)) || tcache_block_check(p, sc, op, caller);
}

/* Push p on bin b after tcache_free_ok (inside an operation). */
static PC_INLINE void
tcache_push(tbin_t *b, void *p)
{
	if (config_harden)
		TCACHE_KEY_WORD(p) = TCACHE_KEY_OF(p);
	b->slots[b->n++] = p;
}

/* Free p, a small block whose page-map entry is e (tag != 0). */
static PC_INLINE void
tcache_free(void *p, uintptr_t e, const void *caller)
{
	TCACHE_OP_BEGIN();
	tbin_t *b = tcache_bin_of_tag((unsigned)(e & PM_SC_MASK));
	if (PC_UNLIKELY(!tcache_free_ok(b, p, e))) {
		/* closes the operation */
		tcache_free_slow(p, (unsigned)(e & PM_SC_MASK) - 1, caller);
		return;
	}
	tcache_push(b, p);
	TCACHE_OP_END();
}

/* The calling thread's cache, taken back if a reclaim pass took it (or a
 * state cache).  Inside an operation only. */
tcache_t *tcache_own(void);
/* Flush the calling thread's cache completely. */
void tcache_flush_self(void);
/* Empty other threads' caches: all those not in use at this moment
 * (idle_only false), or those whose thread had no slow-path event since
 * the previous pass (reclaim.c decides which; this flushes them).
 * Returns how many were emptied. */
unsigned tcache_reclaim(bool idle_only);
/* Statistics: bytes of objects cached by all threads (approximate while
 * they run); caches emptied by tcache_reclaim so far. */
size_t tcache_cached_bytes(void);
uint64_t tcache_nreclaims(void);
/* From slow paths: run an idle pass if one is due (every decay_ms / 2). */
void tcache_reclaim_tick(void);
void tcache_thread_exit(void *tc);

void tcache_prefork(void);
void tcache_postfork_parent(void);

#endif
