/*
 * Bootstrap and fork protocol: global set-up on the first allocation, the
 * thread-exit and fork hooks, and the start of the services that need a
 * working libc (the background thread, bgthread.c).  Exit-time statistics
 * are printed by stats.c.
 *
 * Calls from here go down (conf, sizeclass, tcache, reclaim, arena, huge,
 * base, pagemap, bgthread).  The one upward edge of the whole library ends
 * here: slow paths of the layers below (tcache.c, api.c) call
 * pc_ensure_init and pc_ensure_services for first-use initialisation,
 * because the first allocation may come before any constructor.
 *
 * Lock order (outer first): the thread caches' live list lock -> bin locks
 * (one at a time) -> page-heap locks (in index order: the arenas', then the
 * big-block heap's) -> huge lock -> tcache recycle lock -> guard lock -> base lock ->
 * page-map lock.  The init lock
 * is only taken with none of the others held.
 *
 * Fork: the prepare handler takes every lock in that order, so no other
 * thread is inside the allocator when the address space is copied; the
 * parent releases them, and the child finds them unlocked (it is the only
 * thread, and the locks' owners are gone): the OS gives it zeroed copies of
 * the pages that hold them, or it re-initialises them (locks.h, which says
 * why).  pthread_atfork runs prepare
 * handlers in reverse order of registration: ours is registered at the
 * first allocation, so it runs after handlers of later-loaded code, which
 * may still allocate.
 */
#include <errno.h>

#include "init.h"
#include "arena.h"
#include "base.h"
#include "bgthread.h"
#include "conf.h"
#include "guard.h"
#include "huge.h"
#include "locks.h"
#include "os.h"
#include "pagemap.h"
#include "prof.h"
#include "sample.h"
#include "pcmalloc.h"
#include "reclaim.h"
#include "sizeclass.h"
#include "stack.h"
#include "tcache.h"

bool pc_initialized;
bool pc_hooks_ready;
#define init_lock locks_global.init	/* locks.h */

static void
pc_prefork(void)
{
	if (!pc_initialized)
		return;
#if PC_PROF
	/* Before any lock: a thread loading the unwinder may allocate. */
	stack_prefork();
#endif
	os_lock(&init_lock);
#if PC_PROF	/* the profiler's locks sit above every other */
	prof_prefork();
#endif
	reclaim_prefork();
	arena_prefork();
	huge_prefork();
	tcache_prefork();
	guard_prefork();
	base_prefork();
	pagemap_prefork();
}

static void
pc_postfork_parent(void)
{
	if (!pc_initialized)
		return;
	pagemap_postfork_parent();
	base_postfork_parent();
	guard_postfork_parent();
	tcache_postfork_parent();
	huge_postfork_parent();
	arena_postfork_parent();
	reclaim_postfork_parent();
#if PC_PROF
	prof_postfork_parent();
#endif
	os_unlock(&init_lock);
#if PC_PROF
	stack_postfork_parent();
#endif
}

/* Our constructor has run: libc is up, threads may be started. */
static bool pc_constructed;

/* Cold, like every function it calls: the compiler groups cold code on a
 * few pages, and each page of code the child runs first is a page fault
 * (fork copies no page-table entries of a library's code). */
static PC_COLD void
pc_postfork_child(void)
{
	if (!pc_initialized)
		return;
	/* Every lock is unlocked, by the OS or by this call: they were all
	 * ours when the address space was copied. */
	locks_postfork_child();
	/* The purging thread did not survive the fork; pc_ensure_services
	 * restarts it on a later slow path, not in this handler: most
	 * children exec at once. */
	bgthread_postfork_child();
	reclaim_postfork_child();
#if PC_PROF
	stack_postfork_child();
#endif
	/* The profiler's samples are the parent's, kept; its polling thread
	 * did not survive: signals are seen at the child's next sample. */
}

int
pc_init_slow(void)
{
	os_lock(&init_lock);
	if (pc_initialized) {
		os_unlock(&init_lock);
		return 0;
	}
	conf_init();
	if (opt_debug)
		opt_tcache = 0;	/* every small block takes the checked path */
	sc_init();
	tcache_init();	/* before any thread cache exists */
	unsigned n = opt_narenas ? (unsigned)opt_narenas : os_ncpus();
	n = PC_MIN(PC_MAX(n, 1u), PC_MAX_ARENAS);
	/* Each arena's bins and page heap, and the big-block heap. */
	if (locks_init(n * (SC_NSMALL + 1) + 1) != 0 ||
	    arena_init_all(n) != 0) {
		/* Out of memory: the next request tries again. */
		os_unlock(&init_lock);
		return ENOMEM;
	}
	__atomic_store_n(&pc_initialized, true, __ATOMIC_RELEASE);
	/* These may allocate; we can serve that now (without caches). */
	if (os_thread_exit_init(tcache_thread_exit) == 0 &&
	    os_atfork(pc_prefork, pc_postfork_parent, pc_postfork_child) == 0)
		__atomic_store_n(&pc_hooks_ready, true, __ATOMIC_RELEASE);
	os_unlock(&init_lock);
	return 0;
}

/*
 * Constructors run once libc is fully up, which the first allocation may
 * precede: work that needs a working libc (threads) starts here or later.
 */
__attribute__((constructor)) static void
pc_constructor(void)
{
	if (pc_ensure_init() != 0)
		return;
	__atomic_store_n(&pc_constructed, true, __ATOMIC_RELEASE);
	bgthread_start();
#if PC_PROF
	prof_start();	/* signal and peak dumps */
#endif
}

void
pc_ensure_services(void)
{
	if (opt_background_thread && pc_hooks_ready &&
	    __atomic_load_n(&pc_constructed, __ATOMIC_ACQUIRE))
		bgthread_poll();
}
