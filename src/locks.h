/*
 * The locks of the arenas' bins and of the page heaps: one cache line
 * each, in memory that a forked child receives zeroed.
 *
 * Fork takes every allocator lock (init.c).  Inside the structures they
 * guard, those locks lay on a dozen pages; releasing them after fork
 * wrote each page in the parent and again in the child, and every first
 * write to a page the two share is a copy-on-write fault.  A fork from a
 * pcmalloc process cost twice what it costs under glibc.  Here the
 * parent's lock pages are never shared (the child gets fresh zeroed ones),
 * and zero is an unlocked lock (checked at start-up), so neither side
 * faults on them.  Where the OS cannot give a child zeroed memory
 * (MADV_WIPEONFORK, Linux 4.14), its page is not PC_PAGE, or zero is not
 * an unlocked lock, the child initialises every lock again, as it did
 * before.  With the wipe, a
 * child's lock statistics (waits) start from zero.
 */
#ifndef PC_LOCKS_H
#define PC_LOCKS_H

#include <stdbool.h>

#include "compiler.h"
#include "config.h"
#include "os.h"

/*
 * The process-wide locks (those of init.c, base.c, pagemap.c, huge.c,
 * tcache.c, reclaim.c, guard.c and the profiler's), on a page of their
 * own for the same reason: a static page, since they serve before any
 * memory is mapped.  Each module names its own with a macro.
 */
typedef union {
	struct {
		os_lock_t init, base, pagemap, huge, tcache, reclaim_live,
		    guard, prof, prof_poll;
		/* Not a lock, but written around every fork like one
		 * (stack.c): on this page the parent's write after fork is
		 * no copy-on-write fault, and a child finds it 0 (wiped,
		 * or cleared with the locks: locks_postfork_child). */
		unsigned stack_forking;
	};
	char page[PC_PAGE];
} locks_global_t;
extern locks_global_t locks_global;

/* Room for n locks; 0, or ENOMEM (nothing kept: call again).  Asks the OS
 * to wipe the global page in a child, too. */
int locks_init(unsigned n);
/* A lock's slot: its own line (a CPU's threads lock one arena's bins,
 * other CPUs' flushes too). */
typedef struct {
	os_lock_t lock;
} PC_ALIGNED(PC_CACHELINE) lock_slot_t;

/* The next n locks of the room, unlocked (init lock held): the first;
 * lock i of them is locks_nth(first, i).  Where zero is an unlocked lock
 * nothing is written, so start-up touches no page of them. */
os_lock_t *locks_take(unsigned n);

static PC_INLINE os_lock_t *
locks_nth(os_lock_t *first, unsigned i)
{
	return &((lock_slot_t *)(void *)first)[i].lock;
}
/* Whether a forked child finds the locks unlocked without touching them. */
bool locks_child_wiped(void);
/* Wipe them in a child (the default, where the OS can) or copy them; no
 * fork meanwhile (tests: a kernel without MADV_WIPEONFORK). */
void locks_set_wipe(bool on);
/* Child side of fork, after every lock was taken in the parent. */
void locks_postfork_child(void);

#endif
