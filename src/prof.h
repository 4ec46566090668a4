/*
 * The heap profiler's tables: sampled stacks deduplicated into buckets, and
 * the sampled blocks still live.
 *
 * A bucket is one distinct stack (up to STACK_MAX_DEPTH return addresses).
 * It counts the samples taken at that stack, raw and unbiased: a sample of
 * s bytes stands for 1 / (1 - exp(-s / mean)) allocations of its size
 * (sample.h), and that weight is applied to each sample before it is
 * added, never to a sum.  Both the allocations ever made (alloc_*) and the
 * ones still live (live_*) are kept; a live record per sampled block,
 * found by its address, takes its sample out of the live view when the
 * block is freed.
 *
 * Memory: all of it comes from metadata (base.c), never from the program's
 * heap, and is bounded: PROF_MAX_BUCKETS stacks (further new stacks are
 * counted in one overflow bucket with an empty stack) and PROF_MAX_LIVE
 * live records (further samples are counted as dropped, not recorded).
 * Buckets are never freed, so a dump may read them after dropping the lock.
 *
 * Locking: prof_lock guards everything here; it is taken after the
 * allocation it records is made and never held while allocating, so it
 * sits below every other allocator lock.  Fork: the child keeps the
 * parent's tables as they were at the fork: its profile starts with the
 * parent's live samples (and its allocation counts), which are the blocks
 * the child inherited.
 */
#ifndef PC_PROF_H
#define PC_PROF_H

#include "config.h"
#include "stack.h"

#define PROF_MAX_BUCKETS	65536
#define PROF_MAX_LIVE		(1u << 20)

typedef struct prof_bucket {
	struct prof_bucket *next;	/* hash chain (prof_lock) */
	struct prof_bucket *all;	/* every bucket, newest first */
	uint64_t hash;
	uint32_t depth;
	uint32_t id;			/* 1, 2, ... in creation order */
	/* prof_lock: */
	uint64_t alloc_samples, alloc_sbytes;	/* raw: as sampled */
	uint64_t live_samples, live_sbytes;
	double alloc_n, alloc_b;		/* unbiased */
	double live_n, live_b;
	void *frames[];			/* [depth], immutable */
} prof_bucket_t;

/* Totals (prof_lock). */
typedef struct prof_totals {
	uint64_t samples;	/* recorded */
	uint64_t dropped;	/* not recorded: a table was full */
	uint64_t live;		/* live records */
	uint64_t nbuckets;
	double live_b;		/* unbiased live bytes */
	double alloc_b;		/* unbiased bytes allocated */
	double peak_b;		/* highest live_b so far */
} prof_totals_t;

/* Record the sampled block p of `size` bytes with its weight (allocations
 * it stands for) and stack. */
void prof_record(void *p, size_t size, double weight, void *const *frames,
    int depth);
/* p (a large or huge block being freed) leaves the live view if it was
 * sampled.  Cheap when nothing is live. */
void prof_free(void *p);
void prof_moved(void *p, void *q);
void prof_totals(prof_totals_t *out);

/*
 * A consistent copy of every bucket's counters for a dump, taken under the
 * lock; the buckets themselves are immutable but for their counters.
 * prof_snapshot returns a mapping of *size bytes (release it with
 * prof_snapshot_free), or NULL.  Each entry is a copy of the bucket's
 * header with `next` pointing at the real bucket (for its frames).
 */
prof_bucket_t *prof_snapshot(size_t *n, size_t *size, prof_totals_t *t);
void prof_snapshot_free(prof_bucket_t *s, size_t size);
/* For tests: forget every sample (tables stay allocated). */
void prof_reset(void);

/* Dump triggers (prof_dump.c): what the sampler asked for. */
enum prof_kind {
	PROF_DUMP_HEAP = 0,	/* gperftools heap_v2 text */
	PROF_DUMP_PROTO,	/* pprof profile.proto, uncompressed */
	PROF_DUMP_FOLDED,	/* folded stacks, live bytes */
};
/* Write the profile to path in the format its name asks for (".pb":
 * proto, ".folded": folded stacks, anything else: heap_v2 text).  0 or
 * an errno code.  Allocates nothing from the program's heap. */
int prof_dump_file(const char *path);
/* Write <prefix>.<pid>.<seq>.<kind> for every kind, tag (NULL or "peak")
 * inserted before the kind.  0 or an errno code. */
int prof_dump_auto(const char *tag);
/* Slow-path poll: runs dumps that a signal, prof_dump_every or a new peak
 * asked for.  From sample.c (not holding any lock) and the dump thread. */
void prof_poll(void);
/* Once per process, from the library's constructor: primes the unwinder,
 * sets up signal and peak dumps. */
void prof_start(void);
/* Whether prof_start has run.  Samples are only taken from then on: an
 * allocation made while the C library is still starting (from the dynamic
 * loader, before constructors) is not a safe place to load the unwinder. */
bool prof_ready(void);

/* The dump triggers' lock (prof_dump.c), taken before prof_lock. */
void prof_poll_prefork(void);
void prof_poll_postfork_parent(void);
/* pprof profile.proto of a snapshot to fd (prof_proto.c); 0 or errno. */
int prof_write_proto(int fd, const prof_bucket_t *s, size_t n);
/* Both profiler locks, for the fork handlers (init.c; a child's are
 * unlocked by locks.h). */
void prof_prefork(void);
void prof_postfork_parent(void);

#endif
