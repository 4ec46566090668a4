/*
 * Allocation sampling: which allocations the heap profiler (prof.c) records,
 * and the one place where a sampled allocation is made.
 *
 * Each thread counts down the bytes it asks for in sample_left; the
 * allocation that takes it below zero is sampled.  Gaps between samples are
 * drawn from an exponential distribution of mean opt_prof_sample, so every
 * byte has the same chance of being the one that triggers a sample and an
 * allocation of s bytes is sampled with probability 1 - exp(-s / mean)
 * (prof.c divides each sample by that probability).
 *
 * The fast paths (api.h) pay a subtraction and a branch: SAMPLE_HIT(size).
 * The countdown is valid zero-initialised: a thread's first allocation sees
 * it cross zero, and pc_sample_malloc only arms it (draws the first gap,
 * or parks it far away when profiling is off) and allocates unsampled.
 *
 * pc_sample_malloc makes the WHOLE allocation, so a sampled allocation can
 * be served differently: guarded sampling (guard.h) serves some of them
 * from its pool, and the profiler records those too.  The profiler's other
 * samples are page extents (the large-block path, or huge), whatever their
 * size: their page-map entry is not a slab class, so free() already leaves
 * its fast path for them and the free slow path (api.c) calls sample_free,
 * as it does for a guarded block.  Their usable size is the extent's.
 * Allocations made while the thread is inside the sampler (stack capture,
 * first use of the unwinder) are never sampled.
 *
 * Owner: the thread (sample_left and the rest of its state are PC_TLS).
 * Where PC_TLS is not per thread (Windows), SAMPLE_HIT is 0 and nothing
 * is ever sampled.
 */
#ifndef PC_SAMPLE_H
#define PC_SAMPLE_H

#include "config.h"
#include "tcache.h"

#if PC_HAVE_TLS
#define PC_PROF 1
/* Bytes left before the next sample (owner thread): in the thread-local
 * block of the thread cache where there is one (tcache.h). */
#if PC_TCACHE_RECLAIM
#define SAMPLE_LEFT (tcache_thread.sample_left)
#else
extern PC_TLS int64_t sample_left PC_HIDDEN;
#define SAMPLE_LEFT sample_left
#endif
/* Count size down; true when this allocation is to be sampled.  The
 * subtraction wraps (unsigned): an absurd size cannot overflow. */
#define SAMPLE_HIT(size) PC_UNLIKELY((SAMPLE_LEFT = \
	(int64_t)((uint64_t)SAMPLE_LEFT - (uint64_t)(size))) < 0)
#else
#define PC_PROF 0
#define SAMPLE_HIT(size) ((void)(size), 0)
#endif

/* Flags of pc_sample_malloc. */
#define SAMPLE_ZERO 1u		/* calloc: the block must read as zeros */

#if PC_PROF
/*
 * The sampled slow path: allocate `size` bytes aligned to `align` (0: the
 * malloc alignment) and, if this allocation is sampled, record it.  Sets
 * errno to ENOMEM and returns NULL on failure, like malloc.  Called with
 * the same arguments the fast path had, so it is reached by a tail call;
 * never from inside the sampler.
 */
void *pc_sample_malloc(size_t size, size_t align, unsigned flags)
    PC_NOINLINE PC_COLD;

/*
 * The calling thread's stack, as pc_stack_capture (stack.h) with `skip`
 * counted from our caller, without the allocator's own innermost frames,
 * and safe to call outside the sampler (guard.c): allocations made
 * meanwhile are not sampled.
 */
int sample_capture(void **frames, int max, int skip) PC_NOINLINE;

/*
 * From the free slow path, before the large or huge block at p is given
 * back: if p is a sampled block, drop it from the live view.  Cheap when
 * nothing sampled is live.
 */
void sample_free(void *p);
/* A realloc moved the sampled block at p to q in place of freeing it
 * (huge blocks remapped): the sample follows it. */
void sample_moved(void *p, void *q);

/* Look up this library's own code, whose frames samples drop: from the
 * constructor, before the first sample (sample.c says why). */
void sample_self_lookup(void);

/* How many allocations of `size` bytes one sample stands for when the
 * mean gap is `mean`: 1 / (1 - exp(-size / mean)). */
double sample_weight(size_t size, size_t mean);

/* Samples drawn so far (all threads), and those live. */
uint64_t sample_count(void);

/* For tests: the sampler's per-thread busy flag (allocations made while
 * it is set are not sampled), and a way to sample the next allocation. */
bool sample_busy(void);
void sample_next_now(void);

#else
/* No profiler: the hooks compile to nothing (SAMPLE_HIT is 0). */
static inline void *
pc_sample_malloc(size_t size, size_t align, unsigned flags)
{
	(void)size; (void)align; (void)flags;
	return NULL;
}
static inline void sample_free(void *p) { (void)p; }
static inline void sample_moved(void *p, void *q) { (void)p; (void)q; }
#endif

#endif
