/*
 * Bootstrap and fork protocol.
 *
 * Lock order (outer first): the thread caches' live list lock -> bin locks (one at a time) -> arena page-heap
 * locks -> huge lock -> tcache recycle lock -> base lock -> page-map lock.  The init lock
 * is only taken with none of the others held.
 *
 * Fork: the prepare handler takes every lock in that order, so no other
 * thread is inside the allocator when the address space is copied; the
 * parent releases them, and the child re-initialises them (it is the only
 * thread, and the locks' owners are gone).  pthread_atfork runs prepare
 * handlers in reverse order of registration: ours is registered at the
 * first allocation, so it runs after handlers of later-loaded code, which
 * may still allocate.
 */
#include <errno.h>

#include "init.h"
#include "arena.h"
#include "base.h"
#include "conf.h"
#include "huge.h"
#include "os.h"
#include "pagemap.h"
#include "prof.h"
#include "sample.h"
#include "pcmalloc.h"
#include "sizeclass.h"
#include "tcache.h"

static void pc_background_start(void);

bool pc_initialized;
bool pc_hooks_ready;
static os_lock_t init_lock = OS_LOCK_INIT;

static void
pc_prefork(void)
{
	if (!pc_initialized)
		return;
	os_lock(&init_lock);
#if PC_PROF	/* the profiler's locks sit above every other */
	prof_prefork();
#endif
	tcache_live_prefork();
	arena_prefork();
	huge_prefork();
	tcache_prefork();
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
	tcache_postfork_parent();
	huge_postfork_parent();
	arena_postfork_parent();
	tcache_live_postfork_parent();
#if PC_PROF
	prof_postfork_parent();
#endif
	os_unlock(&init_lock);
}

static bool background_running;
/* Our constructor has run: libc is up, threads may be started. */
static bool pc_constructed;

static void
pc_postfork_child(void)
{
	if (!pc_initialized)
		return;
	/* The purging thread did not survive the fork; pc_background_poll
	 * restarts it on a later slow path, not in this handler: most
	 * children exec at once. */
	background_running = false;
	pagemap_postfork_child();
	base_postfork_child();
	tcache_postfork_child();
	huge_postfork_child();
	arena_postfork_child();
	tcache_live_postfork_child();
#if PC_PROF	/* the child keeps the parent's samples */
	prof_postfork_child();
#endif
	os_lock_init(&init_lock);
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
	tcache_key_init();	/* before any thread cache exists */
	unsigned n = opt_narenas ? (unsigned)opt_narenas : os_ncpus();
	n = PC_MIN(PC_MAX(n, 1u), PC_MAX_ARENAS);
	if (arena_init_all(n) != 0) {
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

/* ---- Background purging ------------------------------------------------ */

static void
pc_background_main(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t step = opt_decay_ms / 16;
		os_sleep_ms((unsigned)PC_MIN(PC_MAX(step, 10u), 500u));
		/* Idle threads' caches first: what they return decays. */
		tcache_reclaim_tick();
		for (unsigned i = 0; i < narenas; i++)
			arena_decay_tick(&arenas[i]);
	}
}

static void
pc_background_start(void)
{
	if (opt_background_thread != 1 && !(opt_background_thread == 2 &&
	    __atomic_load_n(&pageheap_dirty_high, __ATOMIC_RELAXED)))
		return;
	if (__atomic_exchange_n(&background_running, true, __ATOMIC_ACQ_REL))
		return;
	if (os_thread_start(pc_background_main, NULL) != 0)
		__atomic_store_n(&background_running, false, __ATOMIC_RELEASE);
}

/*
 * Constructors run once libc is fully up, which the first allocation may
 * precede: work that needs a working libc (threads) starts here.
 */
__attribute__((constructor)) static void
pc_constructor(void)
{
	if (pc_ensure_init() != 0)
		return;
	pc_constructed = true;
	if (opt_stats_print)
		os_keep_stderr();
	pc_background_start();
#if PC_PROF
	prof_start();	/* signal and peak dumps */
#endif
}

void
pc_background_poll(void)
{
	if (opt_background_thread && pc_hooks_ready && pc_constructed &&
	    !__atomic_load_n(&background_running, __ATOMIC_RELAXED))
		pc_background_start();
}

__attribute__((destructor)) static void
pc_destructor(void)
{
	if (pc_initialized && opt_stats_print)
		pc_stats_print(NULL, NULL);
}
