#include <errno.h>
#include <string.h>

#include "tcache.h"
#include "arena.h"
#include "base.h"
#include "report.h"
#include "conf.h"
#include "debug.h"
#include "init.h"
#include "pagemap.h"
#include "slab.h"

/* Zero-capacity caches whose identity is the thread's state. */
static tcache_t tcache_new, tcache_busy, tcache_dead, tcache_stolen;
#if PC_TCACHE_RECLAIM
PC_TLS tcache_thread_t tcache_thread = { &tcache_new, 0, 0 };
#else
OS_TLS_DEFINE(tcache_t *, tcache_tls, &tcache_new);
#endif

uintptr_t tcache_key;

void
tcache_key_init(void)
{
	uintptr_t k = (uintptr_t)os_random();
	tcache_key = k != 0 ? k : 0x5bd1e995u;
}

static os_lock_t tcache_lock = OS_LOCK_INIT;
static tcache_t *tcache_recycled;	/* tcache_lock */

/*
 * Caches in use, for tcache_reclaim and statistics.  tcache_live_lock
 * comes before every arena lock (a reclaim flushes while holding it), and
 * an owner whose cache was taken waits on it in its slow path.
 */
static os_lock_t tcache_live_lock = OS_LOCK_INIT;
static tcache_t *tcache_live;		/* tcache_live_lock */
static uint64_t tcache_reclaimed;	/* caches emptied by others */

#if PC_TCACHE_RECLAIM
/* The thread's own cache while tcache_tls points elsewhere. */
static PC_TLS tcache_t *tcache_home;
#endif

static size_t
tcache_bytes(void)
{
	size_t slots = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		slots += sc_table[sc].tcache_cap;
	return sizeof(tcache_t) + slots * sizeof(void *);
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
	void **slot = (void **)(tc + 1);
	tc->bin[0] = (tbin_t){ .slots = NULL };	/* always full */
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tbin_t *b = TBIN(tc, sc);
		b->n = 0;
		b->cap = sc_table[sc].size <= opt_tcache_max ?
		    sc_table[sc].tcache_cap : 0;
		b->slots = slot;
		b->inv = sc_table[sc].inv;
		b->nobjs = sc_table[sc].nobjs;
		b->shift = sc_table[sc].shift;
		slot += sc_table[sc].tcache_cap;
	}
	memset(tc->busy, 0, sizeof(tc->busy));
	tc->events = 0;
	tc->nslow = tc->nslow_seen = 0;
	tc->next = tc->live_prev = tc->live_next = NULL;
	tc->orphan = tc->orphan_busy = tc->fenced = false;
	return tc;
}

static void
tcache_live_unlink(tcache_t *tc)
{
	if (tc->live_prev != NULL)
		tc->live_prev->live_next = tc->live_next;
	else
		tcache_live = tc->live_next;
	if (tc->live_next != NULL)
		tc->live_next->live_prev = tc->live_prev;
	tc->live_prev = tc->live_next = NULL;
}

static void
tcache_recycle(tcache_t *tc)
{
	os_lock(&tcache_lock);
	tc->next = tcache_recycled;
	tcache_recycled = tc;
	os_unlock(&tcache_lock);
}

/* Point a thread whose cache a reclaim pass took back at its cache
 * (tcache_live_lock held: no pass is running). */
static tcache_t *
tcache_take_back_locked(void)
{
#if PC_TCACHE_RECLAIM
	tcache_t *tc = tcache_home;
	TCACHE_SET(tc);
	return tc;
#else
	return NULL;
#endif
}

/* Called on the slow path of a thread whose cache was reclaimed: wait for
 * the reclaimer to finish, then point the thread at it again. */
static tcache_t *
tcache_take_back(void)
{
	os_lock(&tcache_live_lock);
	tcache_t *tc = tcache_take_back_locked();
	os_unlock(&tcache_live_lock);
	return tc;
}

tcache_t *
tcache_own(void)
{
	tcache_t *tc = TCACHE_GET();
	return tc == &tcache_stolen ? tcache_take_back() : tc;
}

static tcache_t *
tcache_setup(void)
{
	if (TCACHE_GET() == &tcache_stolen)
		return tcache_take_back();
	if (TCACHE_GET() != &tcache_new)
		return NULL;
	if (pc_ensure_init() != 0 || !pc_hooks_ready || !opt_tcache)
		return NULL;
	TCACHE_SET(&tcache_busy);
	tcache_t *tc = tcache_create();
	if (tc == NULL) {
		TCACHE_SET(&tcache_new);
		return NULL;
	}
	/* May allocate (pthread_setspecific for a high key): that nested
	 * call sees tcache_busy and bypasses the cache. */
	if (os_thread_exit_arm(tc) != 0) {
		TCACHE_SET(&tcache_new);
		tcache_recycle(tc);
		return NULL;
	}
	TCACHE_SET(tc);
#if PC_TCACHE_RECLAIM
	/* Reclaimable from now on: we are inside an operation, so a pass
	 * that starts now leaves the cache alone until it ends. */
	tc->tls_slot = &tcache_thread.cache;
	tc->in_op_slot = &tcache_thread.in_op;
	tcache_home = tc;
#endif
	os_lock(&tcache_live_lock);
	tc->live_next = tcache_live;
	if (tcache_live != NULL)
		tcache_live->live_prev = tc;
	tcache_live = tc;
	os_unlock(&tcache_live_lock);
	return tc;
}

/* Pointers flush_batch takes at once (bins hold at most 128). */
#define TCACHE_FLUSH_MAX 128

/*
 * Return v[0..n) (n <= TCACHE_FLUSH_MAX) of class sc to their arenas, a
 * batch per arena; v is reordered.  Each pointer's page-map entry is read
 * once here, for its arena: what no longer names a slab of this class is
 * dropped first (arena_flush checks the rest under its lock).  Hardened
 * frees let none in but the second copy of a cross-thread double free
 * (tcache_free_ok).
 */
static void
flush_batch(void **v, unsigned n, unsigned sc)
{
	uint16_t owner[TCACHE_FLUSH_MAX];
	unsigned left = 0, na = narenas;
	bool mixed = false;
	for (unsigned i = 0; i < n; i++) {
		void *p = v[i];
		uintptr_t e = pagemap_lookup(p);
		const span_t *s = (const span_t *)(e & ~PM_SC_MASK);
		if (PC_UNLIKELY((e & PM_SC_MASK) != sc + 1 ||
		    s->arena >= na)) {
			arena_report_misuse(MISUSE_STALE, "free", p, NULL, sc,
			    0, NULL);
			continue;
		}
		v[left] = p;
		owner[left] = s->arena;
		mixed |= owner[left] != owner[0];
		left++;
	}
	if (!mixed) {	/* the common case: all of one arena */
		if (left > 0)
			arena_flush(&arenas[owner[0]], sc, v, left);
		return;
	}
	uint16_t *o = owner;
	while (left > 0) {
		/* Usually all of one arena: no swaps then. */
		unsigned k = 1;
		for (unsigned i = 1; i < left; i++) {
			if (o[i] != o[0])
				continue;
			if (i != k) {
				void *t = v[k];
				v[k] = v[i];
				v[i] = t;
				uint16_t a = o[k];
				o[k] = o[i];
				o[i] = a;
			}
			k++;
		}
		arena_flush(&arenas[o[0]], sc, v, k);
		v += k;
		o += k;
		left -= k;
	}
}

/* Return slots[0..count) of bin sc to their arenas. */
static void
tcache_flush_bin(tbin_t *b, unsigned sc, unsigned count)
{
	for (unsigned done = 0; done < count; done += TCACHE_FLUSH_MAX)
		flush_batch(b->slots + done, PC_MIN(count - done,
		    TCACHE_FLUSH_MAX), sc);
	b->n -= count;
	memmove(b->slots, b->slots + count, b->n * sizeof(void *));
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
		if (!tc->busy[c] && b->n > 0)
			tcache_flush_bin(b, c, (b->n + 1) / 2);
		tc->busy[c] = 0;
	}
	arena_decay_tick(arena_choose());
	tcache_reclaim_tick();
	pc_background_poll();
}

/* A block leaving the cache, as the fast path's hit does (a block from
 * the slab may carry the key from an earlier stay in a cache). */
static void *
tcache_unkey(void *p)
{
	if (config_harden)
		TCACHE_KEY_WORD(p) = 0;
	return p;
}

static void *
tcache_alloc_miss(size_t size)
{
	/* The class tables are only valid after init: the fast path's
	 * class of the very first request may be wrong, so recompute. */
	if (pc_ensure_init() != 0) {
		errno = ENOMEM;
		return NULL;
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
			return p;
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
	unsigned got = arena_refill(arena_choose(), sc, b->slots,
	    sc_table[sc].batch);
	if (got == 0) {
		errno = ENOMEM;
		return NULL;
	}
	b->n = got - 1;
	/* Blocks that wait in the cache carry the key like freed ones: a
	 * stale pointer whose page a new slab reused, freed while its block
	 * sits here, would otherwise pass the fast check (a start, and
	 * allocated in the bitmap) and be cached twice.  One store per
	 * block, to memory the next mallocs hand out anyway. */
	if (config_harden)
		for (unsigned i = 0; i < b->n; i++)
			TCACHE_KEY_WORD(b->slots[i]) = tcache_key;
	return tcache_unkey(b->slots[got - 1]);
}

void *
tcache_alloc_slow(size_t size)
{
	void *p = tcache_alloc_miss(size);
	TCACHE_OP_END();
	return p;
}

/*
 * The checks of tcache_free_ok, done exactly, with a report: p (page-map
 * entry of a class sc slab) must start an object of its slab that is
 * allocated in the bitmap and, if it carries the key, not in tc's bin (tc
 * may be a state cache: empty bins).  Inside an operation, so that no
 * reclaim pass flushes tc's bins while we scan them.
 */
static bool
tcache_check(tcache_t *tc, const void *p, unsigned sc, const char *op,
    const void *caller)
{
	span_t *s = (span_t *)(pagemap_lookup(p) & ~PM_SC_MASK);
	uint64_t idx = slab_obj_index(s, p);
	enum misuse what;
	if (idx >= sc_table[sc].nobjs) {
		what = MISUSE_INTERIOR;
	} else if (slab_obj_is_free(s, idx)) {
		what = MISUSE_FREED;
	} else {
		if (PC_LIKELY(TCACHE_KEY_WORD(p) != tcache_key))
			return true;
		tbin_t *b = TBIN(tc, sc);
		unsigned i = 0;
		while (i < b->n && b->slots[i] != p)
			i++;
		if (i == b->n)
			return true;	/* the key was there by chance */
		what = MISUSE_CACHED;
	}
	arena_report_misuse(what, op, p, s, sc, 0, caller);
	return false;
}

bool
tcache_block_ok(const void *p, unsigned sc, const char *op,
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
tcache_free_miss(void *p, unsigned sc, const void *caller)
{
	tcache_t *tc = TCACHE_GET();
	if (TBIN(tc, 0)->slots == NULL)	/* one of the state caches */
		tc = tcache_setup();
	/* Checked once the cache is ours again: a reclaim pass may have
	 * just flushed a first copy of p out of it. */
	if (config_harden && !tcache_check(tc != NULL ? tc : &tcache_new, p,
	    sc, "free", caller))
		return;
	if (tc == NULL || TBIN(tc, sc)->cap == 0) {
		if (opt_debug) {
			debug_free_small(p, sc);
			return;
		}
		span_t *s = (span_t *)(pagemap_lookup(p) & ~PM_SC_MASK);
		arena_flush(arena_of(s), sc, &p, 1);
		return;
	}
	tbin_t *b = TBIN(tc, sc);
	tcache_event(tc, sc);
	if (b->n == b->cap)
		tcache_flush_bin(b, sc, PC_MAX(sc_table[sc].batch, 1));
	if (config_harden)
		TCACHE_KEY_WORD(p) = tcache_key;
	b->slots[b->n++] = p;
}

void
tcache_free_slow(void *p, unsigned sc, const void *caller)
{
	tcache_free_miss(p, sc, caller);
	TCACHE_OP_END();
}

static void
tcache_flush_all(tcache_t *tc)
{
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tbin_t *b = TBIN(tc, sc);
		if (b->n > 0)
			tcache_flush_bin(b, sc, b->n);
	}
}

void
tcache_flush_self(void)
{
	/* Not inside an operation: the lock keeps reclaimers out. */
	os_lock(&tcache_live_lock);
	tcache_t *tc = TCACHE_GET();
	/* A pass that found us busy leaves us pointed at tcache_stolen
	 * with a full cache: take it back, then flush it. */
	if (tc == &tcache_stolen)
		tc = tcache_take_back_locked();
	pc_misuse_defer();	/* no abort with the live lock held */
	if (TBIN(tc, 0)->slots != NULL)
		tcache_flush_all(tc);
	os_unlock(&tcache_live_lock);
	pc_misuse_undefer();
}

void
tcache_thread_exit(void *arg)
{
	tcache_t *tc = arg;
	/* Out of reach of reclaimers first; from then on this thread
	 * bypasses caches: other destructors may still allocate and free. */
	os_lock(&tcache_live_lock);
	if (tc->live_prev != NULL || tcache_live == tc)
		tcache_live_unlink(tc);
	TCACHE_SET(&tcache_dead);
#if PC_TCACHE_RECLAIM
	tcache_home = NULL;
#endif
	os_unlock(&tcache_live_lock);
	tcache_flush_all(tc);
	tcache_recycle(tc);
}

/* ---- Reclaiming idle threads' caches ----------------------------------- */

#if PC_TCACHE_RECLAIM
static bool
tcache_holds_objects(const tcache_t *tc)
{
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		if (__atomic_load_n(&tc->bin[sc + 1].n, __ATOMIC_RELAXED))
			return true;
	return false;
}
#endif

unsigned
tcache_reclaim(bool idle_only)
{
#if PC_TCACHE_RECLAIM
	if (!__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return 0;
	unsigned emptied = 0, fenced = 0;
	os_lock(&tcache_live_lock);
	pc_misuse_defer();	/* no abort with the live lock held */
	tcache_t *next;
	for (tcache_t *tc = tcache_live; tc != NULL; tc = next) {
		next = tc->live_next;
		if (tc->orphan) {
			/* Its thread did not survive a fork.  If it was
			 * inside an operation its bins may be half updated:
			 * leave it; otherwise return its objects. */
			tcache_live_unlink(tc);
			if (tc->orphan_busy)
				continue;
			tcache_flush_all(tc);
			tcache_recycle(tc);
			emptied++;
			continue;
		}
		uint64_t nslow = __atomic_load_n(&tc->nslow, __ATOMIC_RELAXED);
		bool idle = nslow == tc->nslow_seen;
		tc->nslow_seen = nslow;
		if (tc == tcache_home || (idle_only && !idle) ||
		    !tcache_holds_objects(tc) || !opt_tcache_reclaim ||
		    !os_remote_fence_available())
			continue;
		__atomic_store_n(tc->tls_slot, &tcache_stolen,
		    __ATOMIC_RELAXED);
		tc->fenced = true;
		fenced++;
	}
	/* After the fence, an owner is either seen inside an operation
	 * (which loaded its cache pointer before our store) or will see
	 * tcache_stolen at its next one and wait on the live lock. */
	bool fence_ok = fenced != 0 && os_remote_fence();
	unsigned nidle = 0;
	for (tcache_t *tc = tcache_live; tc != NULL && fenced != 0;
	    tc = tc->live_next) {
		if (!tc->fenced)
			continue;
		fenced--;
		/* Else the owner's next slow path points it back. */
		tc->fenced = fence_ok &&
		    __atomic_load_n(tc->in_op_slot, __ATOMIC_RELAXED) == 0;
		nidle += tc->fenced;
	}
	/*
	 * An owner whose operation ended just now may have its in_op store
	 * visible before its stores to the bins (arm64 may reorder them; the
	 * fast path has only a compiler barrier).  A second fence makes
	 * those visible before we read the bins.
	 */
	if (nidle != 0 && !os_remote_fence())
		nidle = 0;	/* cannot happen after one succeeded */
	for (tcache_t *tc = tcache_live; tc != NULL; tc = tc->live_next) {
		if (!tc->fenced)
			continue;
		tc->fenced = false;
		if (nidle == 0)
			continue;
		/* An idle thread's objects are cold: their slabs' pages
		 * need not wait out the decay time again. */
		pageheap_cold_frees(idle_only);
		tcache_flush_all(tc);
		pageheap_cold_frees(false);
		emptied++;
	}
	os_unlock(&tcache_live_lock);
	pc_misuse_undefer();
	__atomic_fetch_add(&tcache_reclaimed, emptied, __ATOMIC_RELAXED);
	return emptied;
#else
	(void)idle_only;
	return 0;
#endif
}

size_t
tcache_cached_bytes(void)
{
	size_t bytes = 0;
	os_lock(&tcache_live_lock);
	for (tcache_t *tc = tcache_live; tc != NULL; tc = tc->live_next)
		for (unsigned sc = 0; sc < SC_NSMALL; sc++)
			bytes += (size_t)__atomic_load_n(&TBIN(tc, sc)->n,
			    __ATOMIC_RELAXED) * sc_size(sc);
	os_unlock(&tcache_live_lock);
	return bytes;
}

uint64_t
tcache_nreclaims(void)
{
	return __atomic_load_n(&tcache_reclaimed, __ATOMIC_RELAXED);
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
	uint64_t now = os_now_ns();
	uint64_t due = __atomic_load_n(&tcache_next_reclaim_ns,
	    __ATOMIC_RELAXED);
	if (now < due || !__atomic_compare_exchange_n(&tcache_next_reclaim_ns,
	    &due, now + period, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (due != 0)	/* the first call only starts the clock */
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

void
tcache_postfork_child(void)
{
	os_lock_init(&tcache_lock);
}

/* The live lock is taken before the arenas' (init.c). */
void
tcache_live_prefork(void)
{
	os_lock(&tcache_live_lock);
}

void
tcache_live_postfork_parent(void)
{
	os_unlock(&tcache_live_lock);
}

void
tcache_live_postfork_child(void)
{
	os_lock_init(&tcache_live_lock);
#if PC_TCACHE_RECLAIM
	/* Only this thread survived.  The others' caches become orphans;
	 * whether each was inside an operation is read now, before a new
	 * thread can reuse the memory of the old one's TLS. */
	for (tcache_t *tc = tcache_live; tc != NULL; tc = tc->live_next) {
		/* Orphans of an earlier fork: their threads' memory may be
		 * gone by now; what we read of them then still holds. */
		if (tc == tcache_home || tc->orphan)
			continue;
		tc->orphan = true;
		/* Its thread's stack may not have been copied (a user stack
		 * under MADV_DONTFORK): unreadable counts as busy. */
		unsigned in_op = 1;
		(void)os_read_safe(&in_op, tc->in_op_slot, sizeof(in_op));
		tc->orphan_busy = in_op != 0;
	}
#endif
}
