#include <errno.h>
#include <string.h>

#include "tcache.h"
#include "nursery.h"
#include "locks.h"
#include "arena.h"
#include "base.h"
#include "report.h"
#include "conf.h"
#include "debug.h"
#include "huge.h"
#include "init.h"
#include "pagemap.h"
#include "reclaim.h"
#include "slab.h"

/* Zero-capacity caches whose identity is the thread's state (as is
 * reclaim_stolen's, reclaim.c).  These three are read-only: nothing may
 * write them, and in .rodata a thread's first malloc, which reads
 * tcache_new's bin, reads a page of the library file the loader has most
 * likely mapped already, not a page of zeros that costs a page fault in
 * every process.  Each has its own contents (nslow_seen, never read in a
 * state cache), so that no linker folds identical constants into one
 * and the states stay apart. */
static const tcache_t tcache_new, tcache_busy = { .nslow_seen = 1 },
    tcache_dead = { .nslow_seen = 2 };
#define TCACHE_STATE(s) ((tcache_t *)&(s))
#if PC_TCACHE_RECLAIM
PC_TLS tcache_thread_t tcache_thread = { TCACHE_STATE(tcache_new), 0, 0 };
#else
OS_TLS_DEFINE(tcache_t *, tcache_tls, TCACHE_STATE(tcache_new));
#endif

uintptr_t tcache_key;

/*
 * A new cache's bins, but for where their slots are, and the slots'
 * layout (tcache_first_slots, tcache_room): each bin's first slot's and
 * room's index, and the slots of a cache in all.  The classes and
 * tcache_max are fixed before any cache exists, so every cache, new or
 * recycled, starts as a copy of the same bins.  Setting each bin from the
 * class table took 2 200 instructions a thread under callgrind (a quarter
 * of mleak's, whose threads each make one allocation); the copy and the
 * slots take 1 000.
 */
static tbin_t tcache_bins_new[SC_NSMALL + 1] PC_ALIGNED(PC_PAGE) PC_BIG_BSS;
static uint32_t tcache_first_slot[SC_NSMALL];
static uint32_t tcache_room_slot[SC_NSMALL];
static size_t tcache_nslots;

void
tcache_init(void)
{
	/* Odd: a block's address is a multiple of 16, so no mark (key xor
	 * address) is 0, what malloc leaves in the word. */
	tcache_key = (uintptr_t)os_random() | 1;
	tcache_bins_new[0] = (tbin_t){ .slots = NULL };	/* always full */
	uint32_t slot = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		const sc_info_t *c = &sc_table[sc];
		/* Class 0 takes sizes 0 to 16 (malloc(0) gives one). */
		uint64_t lo = sc == 0 ? 0 : sc_table[sc - 1].size + 1;
		tcache_bins_new[sc + 1] = (tbin_t){
			.cap = c->size <= opt_tcache_max ? c->tcache_cap : 0,
			.shift = c->shift,
			.inv = c->inv,
			.nobjs = c->nobjs,
			.size_lo = lo,
			.size_n = c->size + 1 - lo,
		};
		tcache_first_slot[sc] = slot;
		slot += c->tcache_cap;
	}
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tcache_room_slot[sc] = slot;
		slot += sc_table[sc].tcache_cap_max;
	}
	tcache_nslots = slot;
}

#define tcache_lock locks_global.tcache	/* locks.h */
static tcache_t *tcache_recycled;	/* tcache_lock */

static size_t
tcache_bytes(void)
{
	/* Slots past a bin's capacity are never touched: in a fresh
	 * mapping they cost address space only. */
	return sizeof(tcache_t) + tcache_nslots * sizeof(void *);
}

/*
 * A cache's slots: first every bin's tcache_cap slots, side by side, then
 * room for each bin's tcache_cap_max, where a bin moves when it grows
 * (tcache_grow).  With the room alone, the first slot of every class a
 * thread used lay on a page of its own (a 64-byte class's room is 32 KiB):
 * some twenty page faults, and 80 KiB resident, for each thread or
 * process that allocates a little of many sizes.  Side by side, the
 * classes' first slots (22 KiB in all) share six or seven pages.
 */
static void **
tcache_first_slots(tcache_t *tc, unsigned sc)
{
	return (void **)(tc + 1) + tcache_first_slot[sc];
}

static void **
tcache_room(tcache_t *tc, unsigned sc)
{
	return (void **)(tc + 1) + tcache_room_slot[sc];
}

static tcache_t *
tcache_create(void)
{
	os_lock(&tcache_lock);
	tcache_t *tc = tcache_recycled;
	if (tc != NULL)
		tcache_recycled = tc->next;
	os_unlock(&tcache_lock);
	if (tc == NULL) {
		tc = base_alloc(tcache_bytes());
		if (tc == NULL)
			return NULL;
	}
	memcpy(tc->bin, tcache_bins_new, sizeof(tc->bin));
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		TBIN(tc, sc)->slots = tcache_first_slots(tc, sc);
	tc->grown = 0;
	memset(tc->busy, 0, sizeof(tc->busy));
	tc->events = 0;
	tc->nslow = tc->nslow_seen = 0;
	tc->next = tc->live_prev = tc->live_next = NULL;
	tc->orphan = tc->orphan_busy = tc->fenced = false;
	return tc;
}

static void
tcache_recycle(tcache_t *tc)
{
	os_lock(&tcache_lock);
	tc->next = tcache_recycled;
	tcache_recycled = tc;
	os_unlock(&tcache_lock);
}

tcache_t *
tcache_own(void)
{
	return reclaim_own();
}

static tcache_t *
tcache_setup(void)
{
	if (TCACHE_GET() == &reclaim_stolen)
		return reclaim_own();
	if (TCACHE_GET() != &tcache_new)
		return NULL;
	if (pc_ensure_init() != 0 || !pc_hooks_ready || !opt_tcache)
		return NULL;
	(void)nursery_claim();	/* a second thread: the nursery closes */
	TCACHE_SET(TCACHE_STATE(tcache_busy));
	tcache_t *tc = tcache_create();
	if (tc == NULL) {
		TCACHE_SET(TCACHE_STATE(tcache_new));
		return NULL;
	}
	/* May allocate (pthread_setspecific for a high key): that nested
	 * call sees tcache_busy and bypasses the cache. */
	if (os_thread_exit_arm(tc) != 0) {
		TCACHE_SET(TCACHE_STATE(tcache_new));
		tcache_recycle(tc);
		return NULL;
	}
	TCACHE_SET(tc);
	/* Reclaimable from now on: we are inside an operation, so a pass
	 * that starts now leaves the cache alone until it ends. */
	reclaim_register(tc);
	return tc;
}

/* Pointers flush_batch takes at once (bins hold at most 128). */
#define TCACHE_FLUSH_MAX 128

/*
 * Return runs r[0..k) of class sc, all of arena o's slabs.  With tc (the
 * calling thread's own cache, inside its operation) and an arena that is
 * not the one it refills from (`local`: arena_choose), as remote batches
 * from tc's pool: that
 * arena's own threads refill under the bin lock, and a thread of another
 * CPU queueing there would stall them (remote.h).  Without tc, or when the
 * pool is spent, under the bin lock.
 */
static void
flush_group(tcache_t *tc, unsigned local, unsigned o, free_run_t *r,
    unsigned k, unsigned sc)
{
	arena_t *a = &arenas[o];
	while (tc != NULL && o != local && k > 0) {
		remote_batch_t *rb = remote_batch_get(&tc->rpool);
		if (rb == NULL)
			break;
		unsigned m = PC_MIN(k, REMOTE_BATCH_MAX);
		memcpy(rb->runs, r, m * sizeof(*r));
		rb->n = m;
		arena_flush_remote(a, sc, rb);
		r += m;
		k -= m;
	}
	if (k > 0)
		arena_flush_runs(a, sc, r, k);
}

/*
 * Return v[0..n) (n <= TCACHE_FLUSH_MAX) of class sc to their arenas as
 * runs (remote.h), a batch of runs per arena (flush_group).  Each
 * pointer's page-map entry is read once here, for its arena and its
 * slab: what no longer names a slab of this class is dropped first
 * (arena_flush_runs, or the collection of a remote batch, checks the rest
 * under the bin lock).  Hardened frees let none in but the second copy
 * of a double free the mark cannot see (tcache.h: two frees at the same
 * instant, or a mark overwritten after the first).
 */
static void
flush_batch(tcache_t *tc, void **v, unsigned n, unsigned sc)
{
	free_run_t runs[TCACHE_FLUSH_MAX];
	uint16_t owner[TCACHE_FLUSH_MAX];
	const sc_info_t *c = &sc_table[sc];
	const span_t *s = NULL;
	uintptr_t page = UINTPTR_MAX;	/* s's, checked */
	unsigned arena = 0;		/* s's */
	/* The run being built, in registers: cur_s's blocks cur.p and, for
	 * each bit j of cur.mask, j objects after it. */
	free_run_t cur = { NULL, 0 };
	const span_t *cur_s = NULL;
	unsigned cur_arena = 0, nr = 0, na = narenas;
	const uint64_t inv = c->inv;
	const unsigned shift = c->shift;
	for (unsigned i = 0; i < n; i++) {
		void *p = v[i];
		/* Blocks freed together often share a page: one lookup. */
		if (((uintptr_t)p >> PC_PAGE_SHIFT) != page) {
			uintptr_t e = pagemap_lookup(p);
			s = pagemap_span(e);
			if (PC_UNLIKELY((e & PM_SC_MASK) != sc + 1 ||
			    (arena = s->arena) >= na)) {
				arena_report_misuse(MISUSE_STALE, "free", p,
				    NULL, sc, 0, NULL);
				page = UINTPTR_MAX;
				continue;
			}
			page = (uintptr_t)p >> PC_PAGE_SHIFT;
		}
		/* Within 64 objects of the run's first, after it or (if the
		 * run can shift) before it: programs free in the order they
		 * allocated, or the reverse. */
		if (s == cur_s) {
			uintptr_t q = (uintptr_t)p, r0 = (uintptr_t)cur.p;
			if (q >= r0) {
				uint64_t j = sc_obj_start(q - r0, inv, shift);
				if (PC_LIKELY(j < 64)) {
					uint64_t bit = (uint64_t)1 << j;
					/* A second copy in this cache. */
					if (PC_UNLIKELY(cur.mask & bit))
						arena_report_misuse(
						    MISUSE_CACHED, "free", p,
						    s, sc, 0, NULL);
					cur.mask |= bit;
					continue;
				}
			} else {
				uint64_t d = sc_obj_start(r0 - q, inv, shift);
				if (d < 64 && (cur.mask >> (64 - d)) == 0) {
					cur.mask = (cur.mask << d) | 1;
					cur.p = p;
					continue;
				}
			}
		}
		if (cur_s != NULL) {
			runs[nr] = cur;
			owner[nr++] = (uint16_t)cur_arena;
		}
		cur = (free_run_t){ p, 1 };
		cur_s = s;
		cur_arena = arena;
	}
	if (cur_s != NULL) {
		runs[nr] = cur;
		owner[nr++] = (uint16_t)cur_arena;
	}
	bool mixed = false;
	for (unsigned i = 1; i < nr; i++)
		mixed |= owner[i] != owner[0];
	unsigned local = tc != NULL ? arena_index(arena_choose()) : 0;
	if (!mixed) {	/* the common case: all of one arena */
		if (nr > 0)
			flush_group(tc, local, owner[0], runs, nr, sc);
		return;
	}
	free_run_t *r = runs;
	uint16_t *o = owner;
	unsigned left = nr;
	while (left > 0) {
		/* Usually all of one arena: no swaps then. */
		unsigned k = 1;
		for (unsigned i = 1; i < left; i++) {
			if (o[i] != o[0])
				continue;
			if (i != k) {
				free_run_t t = r[k];
				r[k] = r[i];
				r[i] = t;
				uint16_t a = o[k];
				o[k] = o[i];
				o[i] = a;
			}
			k++;
		}
		flush_group(tc, local, o[0], r, k, sc);
		r += k;
		o += k;
		left -= k;
	}
}

/* Return slots[0..count) of bin sc to their arenas (tc: flush_group). */
static void
tcache_flush_bin(tcache_t *tc, tbin_t *b, unsigned sc, unsigned count)
{
	for (unsigned done = 0; done < count; done += TCACHE_FLUSH_MAX)
		flush_batch(tc, b->slots + done, PC_MIN(count - done,
		    TCACHE_FLUSH_MAX), sc);
	b->n -= count;
	memmove(b->slots, b->slots + count, b->n * sizeof(void *));
}

/* Blocks a refill or an overflow's flush moves for bin b: the class's
 * batch, or half of what the bin grew to, up to a flush's worth.  A bin
 * grows when its thread turns over more blocks than it holds: moving the
 * same few at a time then took a lock every few mallocs (the harness's
 * simple, 4 KiB blocks: 4 per refill, 600 000 refills of that class in
 * pcb_simple 1 40000000). */
static unsigned
tbin_batch(const tbin_t *b, unsigned sc)
{
	unsigned batch = PC_MAX((unsigned)sc_table[sc].batch, b->cap / 2u);
	return PC_MAX(PC_MIN(batch, (unsigned)TCACHE_FLUSH_MAX), 1u);
}

/* Double bin b's capacity if its class and the thread's budget allow
 * (TCACHE_GROW_MAX); whether it grew. */
static bool
tcache_grow(tcache_t *tc, tbin_t *b, unsigned sc)
{
	unsigned cap = PC_MIN(2u * b->cap,
	    (unsigned)sc_table[sc].tcache_cap_max);
	size_t bytes = (size_t)(cap - b->cap) * sc_table[sc].size;
	if (cap == b->cap || tc->grown + bytes > TCACHE_GROW_MAX)
		return false;
	void **room = tcache_room(tc, sc);
	if (b->slots != room) {		/* the first growth (tcache_room) */
		memcpy(room, b->slots, b->n * sizeof(void *));
		b->slots = room;
	}
	tc->grown += bytes;
	b->cap = (uint16_t)cap;
	return true;
}

/* Give back half of the capacity bin b grew by (GC step, after it gave
 * back half its blocks), flushing what no longer fits. */
static void
tcache_shrink(tcache_t *tc, tbin_t *b, unsigned sc)
{
	unsigned base = sc_table[sc].tcache_cap;
	if (b->cap <= base)
		return;
	unsigned cap = PC_MAX(b->cap / 2u, base);
	tc->grown -= (size_t)(b->cap - cap) * sc_table[sc].size;
	b->cap = (uint16_t)cap;
	if (b->n > cap)
		tcache_flush_bin(tc, b, sc, b->n - cap);
}

/* When a lone thread next looks after the other arenas. */
static uint64_t tcache_next_sweep_ns;

/*
 * A lone thread works in arena 0 only (arena_choose), so no refill or GC
 * step of another arena's would collect the remote batches, or decay the
 * free pages, that threads now gone left there: it does that itself, once
 * a second at most (every arena's bins at every GC step would cost a
 * lone thread on a machine of many CPUs more than its own work).
 */
static PC_NOINLINE void
tcache_lone_sweep(void)
{
	if (!os_due(&tcache_next_sweep_ns, os_now_ns(), 1000000000u, NULL))
		return;
	for (unsigned i = 1; i < narenas; i++) {
		arena_collect(&arenas[i]);
		pageheap_decay_tick(arena_heap(&arenas[i]));
	}
}

/* Runs on slow paths only: decay of the arena's dirty pages and the
 * cache's own GC. */
static void
tcache_event(tcache_t *tc, unsigned sc)
{
	tc->busy[sc] = 1;
	/* Read by tcache_reclaim in other threads. */
	__atomic_store_n(&tc->nslow, tc->nslow + 1, __ATOMIC_RELAXED);
	if (PC_LIKELY(++tc->events < TCACHE_GC_EVENTS))
		return;
	tc->events = 0;
	for (unsigned c = 0; c < SC_NSMALL; c++) {
		tbin_t *b = TBIN(tc, c);
		if (!tc->busy[c]) {
			if (b->n > 0)
				tcache_flush_bin(tc, b, c, (b->n + 1) / 2);
			tcache_shrink(tc, b, c);
		}
		tc->busy[c] = 0;
	}
	/* Remote batches left in this CPU's bins by threads of other CPUs,
	 * for classes no thread here refills any more. */
	arena_t *a = arena_choose();
	arena_collect(a);
	arena_decay_tick(a);
	if (arena_lone())
		tcache_lone_sweep();
	huge_keep_tick();
	tcache_reclaim_tick();
	pc_ensure_services();
}

/* A block leaving the cache, as the fast path's hit does (a block from
 * the slab may carry the mark from an earlier stay in a cache). */
static void *
tcache_unkey(void *p)
{
	if (config_harden)
		TCACHE_KEY_WORD(p) = 0;
	return p;
}

/* The work of tcache_alloc_slow, inside its operation; `aligned`: on its
 * class's alignment, so not from the nursery (nursery.h). */
static void *
tcache_alloc_refill(size_t size, bool aligned)
{
	/* The class tables are only valid after init: the fast path's
	 * class of the very first request may be wrong, so recompute. */
	if (pc_ensure_init() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (!aligned) {
		void *p = nursery_alloc(size);
		if (p != NULL)
			return p;
	}
	unsigned sc = sc_index(size);
	tcache_t *tc = TCACHE_GET();
	if (TBIN(tc, 0)->slots == NULL)	/* one of the state caches */
		tc = tcache_setup();
	if (tc == NULL || TBIN(tc, sc)->cap == 0) {
		if (opt_debug)
			return debug_alloc_small(size, debug_class(size));
		void *p;
		if (arena_refill(arena_choose(), sc, &p, 1) == 1)
			return tcache_unkey(p);
		errno = ENOMEM;
		return NULL;
	}
	tbin_t *b = TBIN(tc, sc);
	/* We may be here for the stolen pointer of a cache a reclaim pass
	 * left full (the thread was busy): the refill below would overwrite
	 * what the bin holds. */
	if (b->n > 0)
		return tcache_unkey(b->slots[--b->n]);
	tcache_event(tc, sc);
	/* A young thread's refills take few blocks: a short-lived thread
	 * (one that allocates a block or two and exits) would otherwise
	 * take a whole batch of every class it touches, and flush it all
	 * back at exit.  And a bin's first refills take few bytes, doubling
	 * with each: every block refilled is written (its mark, below), so
	 * a program that asks for one 2 KiB block would otherwise make
	 * resident the pages of a batch of them.  /bin/true with an
	 * argument (it loads the locale) took 152 page faults a run under
	 * LD_PRELOAD, 72 under glibc; 131 with this. */
	unsigned want = (unsigned)PC_MIN((uint64_t)tbin_batch(b, sc),
	    TCACHE_YOUNG_REFILL + tc->nslow);
	size_t budget = TCACHE_FIRST_REFILL_BYTES << PC_MIN(b->nrefills, 20u);
	want = (unsigned)PC_MIN((size_t)want,
	    PC_MAX(budget / sc_table[sc].size, (size_t)1));
	b->nrefills++;
	unsigned got = arena_refill(arena_choose(), sc, b->slots, want);
	if (got == 0) {
		errno = ENOMEM;
		return NULL;
	}
	b->n = got - 1;
	b->refilled = 1;
	/*
	 * A slab gives its blocks in ascending address order and malloc
	 * takes them from the top of the bin: reversed, they go out
	 * ascending too.  A thread that frees blocks in the order another
	 * allocated them then flushes them ascending, which extends a run
	 * with the cheaper test (flush_batch).
	 *
	 * Blocks that wait in the cache carry the mark like freed ones: a
	 * stale pointer whose page a new slab reused, freed while its block
	 * sits here, would otherwise pass the fast check (a start, and
	 * allocated in the bitmap) and be cached twice.  One store per
	 * block, to memory the next mallocs hand out anyway; the one handed
	 * out now loses it again.
	 */
	void **v = b->slots;
	unsigned i = 0, j = got - 1;
	/* TCACHE_KEY_OF, the key in a register: the stores into the
	 * blocks could alias tcache_key, which would be loaded again. */
	uintptr_t key = tcache_key;
	for (; i < j; i++, j--) {
		void *lo = v[i], *hi = v[j];
		if (config_harden) {
			TCACHE_KEY_WORD(lo) = TCACHE_MARK(key, lo);
			TCACHE_KEY_WORD(hi) = TCACHE_MARK(key, hi);
		}
		v[i] = hi;
		v[j] = lo;
	}
	if (config_harden && i == j)
		TCACHE_KEY_WORD(v[i]) = TCACHE_MARK(key, v[i]);
	return tcache_unkey(v[got - 1]);
}

void *
tcache_alloc_slow(size_t size)
{
	void *p = tcache_alloc_refill(size, false);
	TCACHE_OP_END();	/* opened by tcache_alloc_sc_from */
	return p;
}

void *
tcache_alloc_slow_aligned(size_t size)
{
	void *p = tcache_alloc_refill(size, true);
	TCACHE_OP_END();	/* opened by tcache_alloc_sc_from */
	return p;
}

/*
 * The checks of tcache_free_ok, done exactly, with a report: p (page-map
 * entry of a class sc slab) must start an object of its slab that is
 * allocated in the bitmap and carries no cache mark (tcache.h); a marked
 * block is looked for in tc's bin (tc may be a state cache: empty bins)
 * to say where it waits.  Inside an operation, so that no reclaim pass
 * flushes tc's bins while we scan them.
 */
static bool
tcache_check(tcache_t *tc, const void *p, unsigned sc, const char *op,
    const void *caller)
{
	span_t *s = pagemap_span(pagemap_lookup(p));
	uint64_t idx = slab_obj_index(s, p);
	enum misuse what;
	if (idx >= sc_table[sc].nobjs) {
		what = MISUSE_INTERIOR;
	} else if (slab_obj_is_free(s, idx)) {
		what = MISUSE_FREED;
	} else {
		if (PC_LIKELY(TCACHE_KEY_WORD(p) != TCACHE_KEY_OF(p)))
			return true;
		/* Every way a block leaves a cache for the program clears
		 * the mark (tcache.h): p is free, waiting in a cache or in a
		 * remote batch whose blocks are not yet free in the bitmap. */
		tbin_t *b = TBIN(tc, sc);
		unsigned i = 0;
		while (i < b->n && b->slots[i] != p)
			i++;
		what = i < b->n ? MISUSE_CACHED : MISUSE_PENDING;
	}
	arena_report_misuse(what, op, p, s, sc, 0, caller);
	return false;
}

bool
tcache_block_check(const void *p, unsigned sc, const char *op,
    const void *caller)
{
	if (!config_harden)
		return true;
	TCACHE_OP_BEGIN();
	bool ok = tcache_check(tcache_own(), p, sc, op, caller);
	TCACHE_OP_END();
	return ok;
}

void
tcache_free_small(void *p, unsigned sc, const void *caller)
{
	tcache_t *tc = TCACHE_GET();
	if (TBIN(tc, 0)->slots == NULL)	/* one of the state caches */
		tc = tcache_setup();
	/* Checked once the cache is ours again: a reclaim pass may have
	 * just flushed a first copy of p out of it. */
	if (config_harden && !tcache_check(tc != NULL ? tc :
	    TCACHE_STATE(tcache_new), p, sc, "free", caller))
		return;
	if (tc == NULL || TBIN(tc, sc)->cap == 0) {
		if (opt_debug) {
			debug_free_small(p, sc);
			return;
		}
		span_t *s = arena_slab_of(p, sc);
		if (s == NULL) {
			arena_report_misuse(MISUSE_STALE, "free", p, NULL, sc,
			    0, caller);
			return;
		}
		arena_flush(arena_of(s), sc, &p, 1);
		return;
	}
	tbin_t *b = TBIN(tc, sc);
	tcache_event(tc, sc);
	if (b->n == b->cap) {
		/* Blocks going back and forth between the bin and the
		 * arena: hold more of them instead (TCACHE_GROW_MAX). */
		if (!b->refilled || !tcache_grow(tc, b, sc))
			tcache_flush_bin(tc, b, sc, tbin_batch(b, sc));
		b->refilled = 0;
	}
	if (config_harden)
		TCACHE_KEY_WORD(p) = TCACHE_KEY_OF(p);
	b->slots[b->n++] = p;
}

void
tcache_free_slow(void *p, unsigned sc, const void *caller)
{
	tcache_free_small(p, sc, caller);
	TCACHE_OP_END();	/* opened by tcache_free */
}

/* Flush every bin of tc under the bin locks, never as remote batches:
 * after a trim, a reclaim or a thread's exit its blocks are in their
 * slabs (and the statistics say so). */
static void
tcache_flush_all(tcache_t *tc)
{
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tbin_t *b = TBIN(tc, sc);
		if (b->n > 0)
			tcache_flush_bin(NULL, b, sc, b->n);
	}
}

void
tcache_flush_self(void)
{
	/* Not inside an operation: the live lock keeps reclaimers out. */
	tcache_t *tc = reclaim_own_locked();
	pc_misuse_defer();	/* no abort with the live lock held */
	if (TBIN(tc, 0)->slots != NULL)
		tcache_flush_all(tc);
	reclaim_own_unlock();
	pc_misuse_undefer();
}

void
tcache_thread_exit(void *arg)
{
	tcache_t *tc = arg;
	/* Out of reach of reclaimers first; from then on this thread
	 * bypasses caches: other destructors may still allocate and free. */
	reclaim_unregister(tc, TCACHE_STATE(tcache_dead));
	tcache_flush_all(tc);
	tcache_recycle(tc);
}

/* ---- Reclaiming idle threads' caches (the protocol: reclaim.c) -------- */

unsigned
tcache_reclaim(bool idle_only)
{
	if (!PC_TCACHE_RECLAIM ||
	    !__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return 0;
	reclaim_pass_t rp;
	reclaim_begin(&rp, idle_only);
	pc_misuse_defer();	/* no abort with the live lock held */
	unsigned emptied = 0;
	for (tcache_t *tc; (tc = reclaim_next(&rp)) != NULL; emptied++) {
		if (tc->orphan) {	/* its thread did not survive a fork */
			tcache_flush_all(tc);
			tcache_recycle(tc);
			continue;
		}
		/* An idle thread's objects are cold: their slabs' pages
		 * need not wait out the decay time again. */
		pageheap_cold_frees(idle_only);
		tcache_flush_all(tc);
		pageheap_cold_frees(false);
	}
	reclaim_end(&rp, emptied);
	pc_misuse_undefer();
	return emptied;
}

size_t
tcache_cached_bytes(void)
{
	return reclaim_cached_bytes();
}

uint64_t
tcache_nreclaims(void)
{
	return reclaim_count();
}

#if PC_TCACHE_RECLAIM
static uint64_t tcache_next_reclaim_ns;
#endif

void
tcache_reclaim_tick(void)
{
#if PC_TCACHE_RECLAIM
	/* Half the decay time, and at least a second: a thread that only
	 * hits its cache for that long loses it to a pass, and refills. */
	uint64_t period = PC_MAX((uint64_t)opt_decay_ms / 2, (uint64_t)1000) *
	    1000000u;
	uint64_t was;
	if (!os_due(&tcache_next_reclaim_ns, os_now_ns(), period, &was))
		return;
	if (was != 0)	/* the first call only starts the clock */
		tcache_reclaim(true);
#endif
}

void
tcache_prefork(void)
{
	os_lock(&tcache_lock);
}

void
tcache_postfork_parent(void)
{
	os_unlock(&tcache_lock);
}
