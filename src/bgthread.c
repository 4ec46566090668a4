/*
 * The background purging thread (bgthread.h).  It only calls down: the
 * reclaim tick of the thread caches, the arenas' decay ticks and the kept
 * huge mappings' tick, the same
 * work slow paths do, so it changes when memory goes back, not how.
 */
#include "bgthread.h"
#include "arena.h"
#include "conf.h"
#include "huge.h"
#include "os.h"
#include "tcache.h"

/* Set by whoever starts the thread; cleared when the start fails and in a
 * fork child, where the thread does not exist. */
static bool bgthread_is_running;

static void
bgthread_main(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t step = opt_decay_ms / 16;
		os_sleep_ms((unsigned)PC_MIN(PC_MAX(step, 10u), 500u));
		/* Idle threads' caches first: what they return decays. */
		tcache_reclaim_tick();
		for (unsigned i = 0; i < narenas; i++)
			arena_decay_tick(&arenas[i]);
		huge_keep_tick();
	}
}

void
bgthread_start(void)
{
	if (opt_background_thread != 1 && !(opt_background_thread == 2 &&
	    (__atomic_load_n(&pageheap_dirty_high, __ATOMIC_RELAXED) ||
	    huge_kept_mapped_bytes() > HUGE_KEEP_THREAD_BYTES)))
		return;
	if (__atomic_exchange_n(&bgthread_is_running, true, __ATOMIC_ACQ_REL))
		return;
	if (os_thread_start(bgthread_main, NULL) != 0)
		__atomic_store_n(&bgthread_is_running, false,
		    __ATOMIC_RELEASE);
}

void
bgthread_poll(void)
{
	if (!__atomic_load_n(&bgthread_is_running, __ATOMIC_RELAXED))
		bgthread_start();
}

bool
bgthread_running(void)
{
	return __atomic_load_n(&bgthread_is_running, __ATOMIC_ACQUIRE);
}

PC_COLD void
bgthread_postfork_child(void)
{
	/* Not written unless set: a page written first in the child is a
	 * copy-on-write fault (locks.h). */
	if (bgthread_is_running)
		bgthread_is_running = false;
}
