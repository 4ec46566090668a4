#include <errno.h>
#include <string.h>

#include "locks.h"
#include "compiler.h"
#include "config.h"
#include "report.h"

static lock_slot_t *slots;
static unsigned nslots, ntaken;
static bool wiped;		/* slots[] and locks_global both */
static bool zero_unlocked;	/* an all-zero os_lock_t is unlocked */

locks_global_t locks_global PC_ALIGNED(PC_PAGE) PC_BIG_BSS = { {
	.init = OS_LOCK_INIT, .base = OS_LOCK_INIT, .pagemap = OS_LOCK_INIT,
	.huge = OS_LOCK_INIT, .tcache = OS_LOCK_INIT,
	.reclaim_live = OS_LOCK_INIT, .guard = OS_LOCK_INIT,
	.prof = OS_LOCK_INIT, .prof_poll = OS_LOCK_INIT,
} };
_Static_assert(sizeof(locks_global) == PC_PAGE, "a page of its own");

/* Whether an all-zero lock is an unlocked one (glibc's and musl's
 * PTHREAD_MUTEX_INITIALIZER are, as is SRWLOCK_INIT). */
static bool
zero_is_unlocked(void)
{
	static const os_lock_t unlocked = OS_LOCK_INIT;
	const unsigned char *b = (const unsigned char *)&unlocked;
	for (size_t i = 0; i < sizeof(unlocked); i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* The room's mapping for n locks. */
static size_t
room_bytes(unsigned n)
{
	return PC_ALIGN_UP((size_t)n * sizeof(lock_slot_t), PC_PAGE);
}

int
locks_init(unsigned n)
{
	/* An earlier start-up that failed later left slots nothing uses;
	 * a retry from a thread of wider CPU affinity may need more. */
	if (slots != NULL && n <= nslots) {
		ntaken = 0;
		return 0;
	}
	size_t size = room_bytes(n);
	lock_slot_t *s = os_reserve(size, PC_PAGE);	/* never released */
	if (s == NULL)
		return ENOMEM;
	zero_unlocked = zero_is_unlocked();
	nslots = n;
	ntaken = 0;
	slots = s;
	locks_set_wipe(true);
	return 0;
}

void
locks_set_wipe(bool on)
{
	/* Both or neither: the child's handler re-initialises all or none. */
	size_t size = room_bytes(nslots);
	/* A larger OS page would wipe what follows locks_global too. */
	wiped = on && zero_unlocked && os_page_size() == PC_PAGE &&
	    os_wipe_on_fork(slots, size, true) &&
	    os_wipe_on_fork(&locks_global, sizeof(locks_global), true);
	if (!wiped) {
		(void)os_wipe_on_fork(slots, size, false);
		(void)os_wipe_on_fork(&locks_global, sizeof(locks_global), false);
	}
}

os_lock_t *
locks_take(unsigned n)
{
	PC_CHECK(n <= nslots - ntaken, "lock slots");
	os_lock_t *first = &slots[ntaken].lock;
	ntaken += n;
	for (unsigned i = 0; i < n && !zero_unlocked; i++)
		os_lock_init(locks_nth(first, i));	/* fresh memory is zero */
	return first;
}

bool
locks_child_wiped(void)
{
	return wiped;
}

PC_COLD void
locks_postfork_child(void)
{
	if (wiped)
		return;
	for (unsigned i = 0; i < ntaken; i++)
		os_lock_init(&slots[i].lock);
	os_lock_t *g[] = { &locks_global.init, &locks_global.base,
	    &locks_global.pagemap, &locks_global.huge, &locks_global.tcache,
	    &locks_global.reclaim_live, &locks_global.guard,
	    &locks_global.prof, &locks_global.prof_poll };
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		os_lock_init(g[i]);
	locks_global.stack_forking = 0;
}
