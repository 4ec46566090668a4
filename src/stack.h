/*
 * Stack capture for the heap profiler (prof.c) and guarded sampling: the
 * return addresses of the calling thread, innermost first.
 *
 * A frame-pointer walk is tried first: it costs a few loads per frame and
 * never allocates.  It is trusted only while every frame lies inside the
 * thread's stack, above the previous one, and word-aligned; the first frame
 * that leaves the stack (a program built without frame pointers uses the
 * frame-pointer register for data) makes the whole capture start again with
 * the unwinder of glibc's backtrace(), which reads the DWARF unwind tables
 * and so works without frame pointers.  A walk that breaks just after a
 * return address into the C library's code, from a call through a pointer,
 * has reached the thread's start code (built without frame pointers) and
 * is complete: a program built with frame pointers never needs the
 * fallback for its own allocations.  backtrace() loads libgcc_s on its
 * first call, which allocates: callers run with the sampler's per-thread
 * "busy" flag set (sample.c), so those allocations are served unsampled, and
 * stack_init() primes it early, outside any allocator lock, when the
 * profiler is on; a fork waits for that first call to end (stack_prefork).
 *
 * Not async-signal-safe (backtrace may take the loader lock the first time);
 * the thread's stack bounds are looked up once per thread (may allocate).
 */
#ifndef PC_STACK_H
#define PC_STACK_H

#include "config.h"

/* The deepest stack the profiler keeps. */
#define STACK_MAX_DEPTH 64

/*
 * Store up to `max` return addresses of the calling thread in frames,
 * innermost first, after leaving out the `skip` innermost ones: with skip
 * 0, frames[0] is the return address into pc_stack_capture's caller; with
 * skip 1, into that function's caller, and so on.  Returns the number
 * stored (0 if nothing could be captured).
 */
int pc_stack_capture(void **frames, int max, int skip) PC_NOINLINE;

/* How the captures so far were made, for tests and statistics. */
typedef struct stack_stats {
	uint64_t fp;		/* by the frame-pointer walk */
	uint64_t fallback;	/* by backtrace() after a frame left the stack */
} stack_stats_t;
void stack_stats_get(stack_stats_t *out);

/* Prime the fallback unwinder (loads libgcc_s).  Call outside any lock,
 * with the sampler's busy flag set; idempotent. */
/* Whether a frame record may sit at fp (internal; for the tests). */
bool stack_record_ok(uintptr_t fp, uintptr_t lo, uintptr_t top);
void stack_init(void);
/* Around a first call into the loader (the unwinder's first backtrace(), a
 * dl_iterate_phdr lookup): false, without entering, when it would overlap
 * a fork or a fork cut one in this child; a true return is paired with
 * stack_loader_leave().  stack_prefork waits for those under way. */
bool stack_loader_enter(void);
void stack_loader_leave(void);
/* Look up where the C library's code lies (dl_iterate_phdr), for the walk:
 * from the constructor, before sampling starts, outside any lock;
 * idempotent. */
void stack_libc_lookup(void);
/* Fork: the prepare handler waits out a first backtrace() or libc lookup
 * under way in another thread (stack.c says why); first, before any
 * allocator lock. */
void stack_prefork(void);
void stack_postfork_parent(void);
void stack_postfork_child(void);

/* For tests: 1 forces every capture to the fallback unwinder, 0 restores
 * the frame-pointer walk. */
void stack_force_fallback(int on);

#endif
