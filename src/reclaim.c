/*
 * Reclaiming idle threads' caches (reclaim.h): why it is sound.
 *
 * A thread that stops allocating (a worker parked on a condition variable,
 * a pool thread between jobs) never runs its own cache GC, and its cache
 * pins the slabs under it.  Another thread may empty that cache only when
 * the owner is not half-way through a push or a pop, yet the owner's fast
 * path must stay free of locks and atomic read-modify-writes.
 *
 * The owner brackets every operation on its cache (tcache.h): it
 * increments its thread-local in_op, then loads its cache pointer and works
 * on the bins, then decrements in_op; compiler barriers keep that order in
 * the generated code.  The reclaimer, holding the live lock:
 *
 *   phase 1 (reclaim_mark): stores reclaim_stolen into the owner's cache
 *           pointer (relaxed);
 *   phase 2 (reclaim_fence): os_remote_fence(): every running thread of
 *           the process executes a full barrier, so each owner is either
 *           before a barrier that orders its earlier stores before its
 *           later loads, or not running;
 *   phase 3 (reclaim_check): reads the owner's in_op; 0 means the owner is
 *           outside an operation, and a second fence makes the bin stores
 *           of the operation it just finished visible before the bins are
 *           read (arm64 may make the in_op store visible first: the fast
 *           path has only a compiler barrier);
 *   phase 4 (the caller, tcache_reclaim): empties the caches so taken.
 *
 * This is Dekker's store-then-load on both sides with the expensive barrier
 * paid by the rare side only.  The owner stores in_op then loads its cache
 * pointer; the reclaimer stores the pointer then loads in_op, with a full
 * barrier between them on each side (the owner's is the one the fence
 * forces on it).  So they cannot both miss the other's store: either the
 * reclaimer sees in_op != 0 (the owner is inside an operation that may
 * have loaded the old pointer: the cache is left alone, and the owner's
 * next slow path points it back at its cache), or the owner's next load
 * of its cache pointer sees reclaim_stolen, whose bins have capacity 0, so
 * that operation misses; its slow path (reclaim_own) waits on the live
 * lock, held until the pass is over, then points the thread back at its
 * own, now empty, cache.  Slow paths run inside the operation, so a cache
 * being refilled or flushed is never taken.
 *
 * Where the fence fails (old kernels, seccomp, valgrind) reclaim turns
 * itself off; where the cache pointer is not a plain thread-local
 * (Windows: a TEB slot) or the fence is invisible to the tool (TSan), it is
 * compiled out (PC_TCACHE_RECLAIM 0): then only the registry remains.
 *
 * Fork: only the forking thread survives; the caches of the others become
 * orphans.  Whether each was inside an operation is read in the child's
 * fork handler, before a new thread can reuse the dead one's TLS; the first
 * pass in the child hands out those that were not, and drops the others
 * (their bins may be half updated).
 */
#include "reclaim.h"
#include "arena.h"
#include "locks.h"
#include "conf.h"
#include "os.h"

tcache_t reclaim_stolen PC_BIG_BSS;

/* The registry: caches in use, for passes and statistics. */
#define reclaim_live_lock locks_global.reclaim_live	/* locks.h */
static tcache_t *reclaim_live;		/* reclaim_live_lock */
static uint64_t reclaim_emptied;	/* caches emptied by others */

#if PC_TCACHE_RECLAIM
/* The thread's own cache while its cache pointer points elsewhere. */
static PC_TLS tcache_t *reclaim_home;
#endif

static void
reclaim_unlink(tcache_t *tc)
{
	if (tc->counted) {
		tc->counted = false;
		__atomic_store_n(&arena_nthreads, arena_nthreads - 1,
		    __ATOMIC_RELAXED);
	}
	if (tc->live_prev != NULL)
		tc->live_prev->live_next = tc->live_next;
	else
		reclaim_live = tc->live_next;
	if (tc->live_next != NULL)
		tc->live_next->live_prev = tc->live_prev;
	tc->live_prev = tc->live_next = NULL;
}

void
reclaim_register(tcache_t *tc)
{
#if PC_TCACHE_RECLAIM
	tc->tls_slot = &tcache_thread.cache;
	tc->in_op_slot = &tcache_thread.in_op;
	reclaim_home = tc;
#endif
	os_lock(&reclaim_live_lock);
	tc->counted = true;
	__atomic_store_n(&arena_nthreads, arena_nthreads + 1,
	    __ATOMIC_RELAXED);
	tc->live_next = reclaim_live;
	if (reclaim_live != NULL)
		reclaim_live->live_prev = tc;
	reclaim_live = tc;
	os_unlock(&reclaim_live_lock);
}

void
reclaim_unregister(tcache_t *tc, tcache_t *state)
{
	os_lock(&reclaim_live_lock);
	if (tc->live_prev != NULL || reclaim_live == tc)
		reclaim_unlink(tc);
	TCACHE_SET(state);
#if PC_TCACHE_RECLAIM
	reclaim_home = NULL;
#endif
	os_unlock(&reclaim_live_lock);
}

/* Point a thread whose cache a pass took back at its cache (live lock
 * held: no pass is running). */
static tcache_t *
reclaim_take_back_locked(void)
{
#if PC_TCACHE_RECLAIM
	tcache_t *tc = reclaim_home;
	TCACHE_SET(tc);
	return tc;
#else
	return NULL;	/* never stolen */
#endif
}

tcache_t *
reclaim_own(void)
{
	tcache_t *tc = TCACHE_GET();
	if (tc != &reclaim_stolen)
		return tc;
	os_lock(&reclaim_live_lock);
	tc = reclaim_take_back_locked();
	os_unlock(&reclaim_live_lock);
	return tc;
}

tcache_t *
reclaim_own_locked(void)
{
	os_lock(&reclaim_live_lock);
	tcache_t *tc = TCACHE_GET();
	/* A pass that found us busy leaves us pointed at reclaim_stolen
	 * with a full cache. */
	return tc == &reclaim_stolen ? reclaim_take_back_locked() : tc;
}

void
reclaim_own_unlock(void)
{
	os_unlock(&reclaim_live_lock);
}

/* ---- A pass ------------------------------------------------------------ */

#if PC_TCACHE_RECLAIM
static bool
reclaim_holds_objects(const tcache_t *tc)
{
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		if (__atomic_load_n(&tc->bin[sc + 1].n, __ATOMIC_RELAXED))
			return true;
	return false;
}

/*
 * Phase 1: unlink orphans (keeping those that were not mid-operation at
 * the fork), and point the owners of the caches this pass wants at
 * reclaim_stolen.  Returns how many were so marked (tc->fenced).
 */
static unsigned
reclaim_mark(reclaim_pass_t *rp, bool idle_only)
{
	unsigned marked = 0;
	tcache_t *next;
	for (tcache_t *tc = reclaim_live; tc != NULL; tc = next) {
		next = tc->live_next;
		if (tc->orphan) {
			reclaim_unlink(tc);
			if (!tc->orphan_busy) {
				tc->next = rp->orphans;
				rp->orphans = tc;
			}
			continue;
		}
		uint64_t nslow = __atomic_load_n(&tc->nslow, __ATOMIC_RELAXED);
		bool idle = nslow == tc->nslow_seen;
		tc->nslow_seen = nslow;
		if (tc == reclaim_home || (idle_only && !idle) ||
		    !reclaim_holds_objects(tc) || !opt_tcache_reclaim ||
		    !os_remote_fence_available())
			continue;
		__atomic_store_n(tc->tls_slot, &reclaim_stolen,
		    __ATOMIC_RELAXED);
		tc->fenced = true;
		marked++;
	}
	return marked;
}

/*
 * Phases 2 and 3: after one fence, an owner is either seen inside an
 * operation (which may have loaded its cache pointer before our store: its
 * cache stays, tc->fenced is cleared) or will see reclaim_stolen at its
 * next one.  A second fence then publishes the bins of the operations
 * that just ended.  Returns how many caches may be emptied.
 */
static unsigned
reclaim_fence_and_check(unsigned marked)
{
	bool fence_ok = os_remote_fence();
	unsigned idle = 0;
	for (tcache_t *tc = reclaim_live; tc != NULL && marked != 0;
	    tc = tc->live_next) {
		if (!tc->fenced)
			continue;
		marked--;
		/* Else the owner's next slow path points it back. */
		tc->fenced = fence_ok &&
		    __atomic_load_n(tc->in_op_slot, __ATOMIC_RELAXED) == 0;
		idle += tc->fenced;
	}
	if (idle != 0 && !os_remote_fence())
		idle = 0;	/* cannot happen after one succeeded */
	return idle;
}
#endif

void
reclaim_begin(reclaim_pass_t *rp, bool idle_only)
{
	*rp = (reclaim_pass_t){ NULL, NULL, 0 };
	os_lock(&reclaim_live_lock);
#if PC_TCACHE_RECLAIM
	unsigned marked = reclaim_mark(rp, idle_only);
	if (marked != 0)
		rp->ntaken = reclaim_fence_and_check(marked);
	rp->cursor = reclaim_live;
#else
	(void)idle_only;
#endif
}

tcache_t *
reclaim_next(reclaim_pass_t *rp)
{
	tcache_t *tc = rp->orphans;
	if (tc != NULL) {
		rp->orphans = tc->next;
		return tc;
	}
	/* Every marked cache is unmarked here, taken or not. */
	while ((tc = rp->cursor) != NULL) {
		rp->cursor = tc->live_next;
		if (!tc->fenced)
			continue;
		tc->fenced = false;
		if (rp->ntaken != 0)
			return tc;
	}
	return NULL;
}

void
reclaim_end(reclaim_pass_t *rp, unsigned emptied)
{
	(void)rp;	/* reclaim_next has handed out every cache */
	os_unlock(&reclaim_live_lock);
	__atomic_fetch_add(&reclaim_emptied, emptied, __ATOMIC_RELAXED);
}

/* ---- Statistics and fork ----------------------------------------------- */

size_t
reclaim_cached_bytes(void)
{
	size_t bytes = 0;
	os_lock(&reclaim_live_lock);
	for (tcache_t *tc = reclaim_live; tc != NULL; tc = tc->live_next)
		for (unsigned sc = 0; sc < SC_NSMALL; sc++)
			bytes += (size_t)__atomic_load_n(&TBIN(tc, sc)->n,
			    __ATOMIC_RELAXED) * sc_size(sc);
	os_unlock(&reclaim_live_lock);
	return bytes;
}

uint64_t
reclaim_count(void)
{
	return __atomic_load_n(&reclaim_emptied, __ATOMIC_RELAXED);
}

void
reclaim_prefork(void)
{
	os_lock(&reclaim_live_lock);
}

void
reclaim_postfork_parent(void)
{
	os_unlock(&reclaim_live_lock);
}

PC_COLD void
reclaim_postfork_child(void)
{
	/* Only this thread's cache counts as a thread's (arena_choose): the
	 * others' stay listed until a pass drops them, or for good where
	 * passes are compiled out. */
#if PC_TCACHE_RECLAIM
	tcache_t *self = reclaim_home;
#else
	tcache_t *self = TCACHE_GET();
#endif
	unsigned n = 0;
	for (tcache_t *tc = reclaim_live; tc != NULL; tc = tc->live_next) {
		bool counted = tc->counted && tc == self;
		/* Written only if it changes: the child's first write to a
		 * page it shares with the parent copies the page (a
		 * single-threaded parent changes nothing here). */
		if (tc->counted != counted)
			tc->counted = counted;
		n += counted;
	}
	if (arena_nthreads != n)
		arena_nthreads = n;
#if PC_TCACHE_RECLAIM
	/* Only this thread survived.  The others' caches become orphans;
	 * whether each was inside an operation is read now, before a new
	 * thread can reuse the memory of the old one's TLS. */
	for (tcache_t *tc = reclaim_live; tc != NULL; tc = tc->live_next) {
		/* Orphans of an earlier fork: their threads' memory may be
		 * gone by now; what we read of them then still holds. */
		if (tc == reclaim_home || tc->orphan)
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
