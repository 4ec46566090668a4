/*
 * Reclaiming idle threads' caches: the registry of live thread caches and
 * the protocol that lets one thread empty another's cache although the
 * owner's fast path takes no lock and no atomic (reclaim.c explains why it
 * is sound).  This file decides which caches may be touched; tcache.c,
 * above it, empties them (tcache_reclaim).
 *
 * All of it runs under reclaim's live lock, which comes before every
 * arena lock (init.c): a pass flushes caches while holding it, and an
 * owner whose cache was taken waits on it in its slow path.
 */
#ifndef PC_RECLAIM_H
#define PC_RECLAIM_H

#include "tcache.h"

/* The state cache of a thread whose cache a pass took (zero capacity, so
 * its next operation misses and takes it back: reclaim_own). */
extern tcache_t reclaim_stolen PC_HIDDEN;

/* Add the calling thread's new cache tc to the registry (inside an
 * operation: a pass that starts now leaves it alone until it ends). */
void reclaim_register(tcache_t *tc);
/* Thread exit: take tc out of the registry, out of reach of passes, and
 * point the thread at `state` (the dead cache). */
void reclaim_unregister(tcache_t *tc, tcache_t *state);
/* The calling thread's cache pointer, taken back first if a pass took it
 * (waiting for that pass to end).  Inside an operation only. */
tcache_t *reclaim_own(void);
/* reclaim_own outside an operation: the live lock stays held, so no pass
 * can start, until reclaim_own_unlock. */
tcache_t *reclaim_own_locked(void);
void reclaim_own_unlock(void);

/*
 * One pass, in phases: reclaim_begin takes the live lock, points the
 * owners of the candidate caches at reclaim_stolen and fences them
 * (phases 1-3); reclaim_next then hands out, one at a time, the caches the
 * caller may empty: orphans (whose thread did not survive a fork: flush
 * and recycle them) and caches whose owners were seen outside an
 * operation (flush them; their owners take them back, empty); reclaim_end
 * ends the pass and releases the lock.
 */
typedef struct reclaim_pass {
	tcache_t *orphans;	/* unlinked orphans still to hand out */
	tcache_t *cursor;	/* live list walk over the fenced caches */
	unsigned ntaken;	/* fenced caches seen idle (after phase 3) */
} reclaim_pass_t;

void reclaim_begin(reclaim_pass_t *rp, bool idle_only);
tcache_t *reclaim_next(reclaim_pass_t *rp);
/* `emptied`: caches the caller emptied (added to reclaim_count). */
void reclaim_end(reclaim_pass_t *rp, unsigned emptied);

/* Statistics: bytes of objects in live caches (approximate while their
 * threads run); caches emptied by passes so far. */
size_t reclaim_cached_bytes(void);
uint64_t reclaim_count(void);

/* The live lock in the fork protocol (init.c); the child turns the caches
 * of the threads that did not survive into orphans. */
void reclaim_prefork(void);
void reclaim_postfork_parent(void);
void reclaim_postfork_child(void);

#endif
