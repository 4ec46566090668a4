/*
 * Shared helpers for the multi-threaded stress tests.
 *
 * Worker threads must not use cmocka's assert_* (they longjmp into the main
 * thread's runner): they call stress_die(), which prints and aborts.  Each
 * test calls stress_begin(), which restores default handlers for crash
 * signals (a crash in any thread kills the process instead of jumping into
 * cmocka from the wrong thread) and arms a watchdog alarm so a deadlock
 * becomes a failure rather than a ctest timeout.
 *
 * The thread count is taken from argv[1], else $PC_STRESS_THREADS, else the
 * default (more threads than the 2 cores, to force preemption inside
 * allocator fast paths).  $PC_STRESS_SCALE scales the amount of work of
 * the operation-count driven tests (percent, default 100).
 */
#ifndef PC_STRESS_COMMON_H
#define PC_STRESS_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pcmalloc.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#define STRESS_DEFAULT_THREADS 8
#define STRESS_WATCHDOG_SECONDS 240

static int stress_threads = STRESS_DEFAULT_THREADS;
/* Percentage of the default amount of work ($PC_STRESS_SCALE, 1..1000). */
static long stress_scale = 100;
/* $PC_STRESS_SHORT: the short variant (see stress_parse_args). */
static bool stress_short;
#define SCALED(n) ((long)(n) * stress_scale / 100)

static inline void
stress_parse_args(int argc, char **argv)
{
	const char *s = NULL;
	if (argc > 1)
		s = argv[1];
	else
		s = getenv("PC_STRESS_THREADS");
	if (s != NULL) {
		int n = atoi(s);
		if (n >= 1 && n <= 1024)
			stress_threads = n;
	}
	const char *sc = getenv("PC_STRESS_SCALE");
	if (sc != NULL && atol(sc) >= 1 && atol(sc) <= 1000)
		stress_scale = atol(sc);
	/* tests/run.sh's other configurations: a quarter of the work (the
	 * first configuration runs it all). */
	stress_short = getenv("PC_STRESS_SHORT") != NULL;
	if (stress_short)
		stress_scale = stress_scale / 4 > 0 ? stress_scale / 4 : 1;
	fprintf(stderr, "stress: %d threads, %ld%% work%s\n", stress_threads,
	    stress_scale, stress_short ? " (short variant)" : "");
}

__attribute__((format(printf, 1, 2), noreturn)) static void
stress_die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* write(2) directly: stdio may itself be broken by heap corruption */
	if (write(2, "STRESS FAILURE: ", 16) < 0 || write(2, buf, (size_t)n) < 0)
		abort();
	abort();
}

#define CHECK(cond, ...) do { if (!(cond)) stress_die(__VA_ARGS__); } while (0)

static inline void
stress_default_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
	    SIGSYS, SIGTRAP, SIGALRM };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

static inline void
stress_begin(void)
{
	stress_default_signals();
	alarm(STRESS_WATCHDOG_SECONDS);
}

static inline void
stress_end(void)
{
	alarm(0);
}

/* A block a test owns (seed: of its pattern), and one in a table shared
 * between threads, each slot under its own lock. */
typedef struct {
	void *p;
	size_t n;
	uint64_t seed;
} slot_t;

typedef struct {
	pthread_mutex_t mu;
	slot_t s;
} shared_slot_t;

/* xorshift64*: deterministic per-thread random numbers. */
typedef struct { uint64_t s; } rng_t;

static inline void
rng_seed(rng_t *r, uint64_t seed)
{
	r->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	if (r->s == 0)
		r->s = 1;
}

static inline uint64_t
rng_next(rng_t *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline size_t
rng_below(rng_t *r, size_t n)
{
	return n ? (size_t)(rng_next(r) % n) : 0;
}

/*
 * A size mix over all regimes: mostly small, some medium, a few large
 * (> 32 KiB) and rare huge (> 1 MiB, some above the 8 MiB direct-map
 * threshold).  huge_per_mille: how many in 1000 draws are huge.
 */
static inline size_t
rng_size(rng_t *r, unsigned huge_per_mille)
{
	unsigned d = (unsigned)rng_below(r, 1000);
	if (d < huge_per_mille)
		return MiB + rng_below(r, 11 * MiB);
	d = (unsigned)rng_below(r, 1000);
	if (d < 600)
		return rng_below(r, 257);
	if (d < 850)
		return 257 + rng_below(r, 4096 - 257);
	if (d < 960)
		return 4096 + rng_below(r, 60 * KiB);
	return 32 * KiB + rng_below(r, 1 * MiB);
}

/*
 * Block patterns.  The 64-bit words written depend on a seed (derived from
 * the block's address and size) and the offset.  Blocks up to 16 KiB are
 * covered entirely; bigger ones at their first and last 2 KiB and one word
 * per 1 KiB in between, so huge blocks stay cheap.
 */
static inline uint64_t
pat_word(uint64_t seed, size_t w)
{
	uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + w;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

static inline uint64_t
block_seed(const void *p, size_t n)
{
	return (uint64_t)(uintptr_t)p * 31 + n;
}

#define PAT_FULL_LIMIT (16 * KiB)
#define PAT_EDGE (2 * KiB)
#define PAT_STRIDE KiB

/* The sampled words of an n-byte block: w = pat_first(n); w < n / 8;
 * w = pat_next(n, w). */
static inline size_t
pat_first(size_t n)
{
	(void)n;
	return 0;
}

static inline size_t
pat_next(size_t n, size_t w)
{
	size_t nw = n / 8, e = PAT_EDGE / 8;
	if (n <= PAT_FULL_LIMIT || w + 1 < e || w + 1 >= nw - e)
		return w + 1;
	if (w + PAT_STRIDE / 8 < nw - e)
		return w + PAT_STRIDE / 8;
	return nw - e;
}

static inline void
pat_fill(void *p, size_t n, uint64_t seed)
{
	unsigned char *b = p;
	for (size_t w = pat_first(n); w < n / 8; w = pat_next(n, w)) {
		uint64_t v = pat_word(seed, w);
		memcpy(b + w * 8, &v, 8);
	}
	for (size_t i = n & ~(size_t)7; i < n; i++)
		b[i] = (unsigned char)(seed + i);
}

/* Returns the first bad offset, or SIZE_MAX. */
static inline size_t
pat_find_bad(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	for (size_t w = pat_first(n); w < n / 8; w = pat_next(n, w)) {
		uint64_t v = pat_word(seed, w), have;
		memcpy(&have, b + w * 8, 8);
		if (have != v)
			return w * 8;
	}
	for (size_t i = n & ~(size_t)7; i < n; i++)
		if (b[i] != (unsigned char)(seed + i))
			return i;
	return SIZE_MAX;
}

/*
 * Check the first `keep` bytes of a block that was patterned for `n` bytes
 * (after a realloc to `keep` or more, only the prefix is guaranteed).
 * Only complete words inside the prefix and the sampled set are checked.
 */
static inline size_t
pat_find_bad_prefix(const void *p, size_t n, size_t keep, uint64_t seed)
{
	const unsigned char *b = p;
	if (keep >= n)
		return pat_find_bad(p, n, seed);
	for (size_t w = pat_first(n); (w + 1) * 8 <= keep && w < n / 8;
	    w = pat_next(n, w)) {
		uint64_t v = pat_word(seed, w), have;
		memcpy(&have, b + w * 8, 8);
		if (have != v)
			return w * 8;
	}
	return SIZE_MAX;
}

#define PAT_VERIFY(p, n, seed, what) do { \
	size_t bad_ = pat_find_bad((p), (n), (seed)); \
	CHECK(bad_ == SIZE_MAX, "%s: block %p size %zu corrupt at offset %zu", \
	    (what), (void *)(p), (size_t)(n), bad_); \
} while (0)

static inline void
check_zero(const void *p, size_t n, const char *what)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		CHECK(b[i] == 0, "%s: calloc block %p size %zu byte %zu = %#x",
		    what, p, n, i, b[i]);
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t
rss_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	unsigned long size = 0, resident = 0;
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static inline void
xpthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);
	CHECK(rc == 0, "pthread_create: %s", strerror(rc));
}

static inline void
xpthread_join(pthread_t t)
{
	int rc = pthread_join(t, NULL);
	CHECK(rc == 0, "pthread_join: %s", strerror(rc));
}

/* ---- a bounded blocking MPMC queue of blocks ------------------------ */

typedef struct {
	void *p;
	size_t size;
	size_t align;	/* required alignment, 0 if none */
	uint64_t seed;
	unsigned hops;	/* how many consumers have passed it on */
} item_t;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	item_t *buf;
	size_t cap, head, count;
	int producers_left;
} queue_t;

static inline void
queue_init(queue_t *q, size_t cap, int producers)
{
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->buf = malloc(cap * sizeof(item_t));
	CHECK(q->buf != NULL, "queue alloc");
	q->cap = cap;
	q->head = q->count = 0;
	q->producers_left = producers;
}

static inline void
queue_destroy(queue_t *q)
{
	free(q->buf);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
}

static inline void
queue_push(queue_t *q, item_t it)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->mu);
	q->buf[(q->head + q->count) % q->cap] = it;
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

/* Non-blocking push (used by consumers re-queueing): 0 if full. */
static inline int
queue_try_push(queue_t *q, item_t it)
{
	int ok = 0;
	pthread_mutex_lock(&q->mu);
	if (q->count < q->cap) {
		q->buf[(q->head + q->count) % q->cap] = it;
		q->count++;
		pthread_cond_signal(&q->not_empty);
		ok = 1;
	}
	pthread_mutex_unlock(&q->mu);
	return ok;
}

/* Returns 0 when the queue is drained and every producer is done. */
static inline int
queue_pop(queue_t *q, item_t *out)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && q->producers_left > 0)
		pthread_cond_wait(&q->not_empty, &q->mu);
	if (q->count == 0) {
		pthread_mutex_unlock(&q->mu);
		return 0;
	}
	*out = q->buf[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->mu);
	return 1;
}

static inline void
queue_producer_done(queue_t *q)
{
	pthread_mutex_lock(&q->mu);
	q->producers_left--;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

/* At the end of a stress program the heap must be consistent
 * (pc_check walks arenas, slabs, page map and this thread's cache). */
static inline int
stress_heap_check(void **state)
{
	(void)state;
	int bad = pc_check();
	if (bad != 0)
		fprintf(stderr, "pc_check found %d problem(s)\n", bad);
	return bad == 0 ? 0 : -1;
}

/*
 * The tail of every stress test's main(): run the group, then check the
 * heap (cmocka ignores a failing group teardown, so the check is here).
 * Nonzero if either failed.  A macro: cmocka sizes the test array.
 */
#define STRESS_RUN(name, tests) \
	(cmocka_run_group_tests_name(name, tests, NULL, NULL) != 0 || \
	    stress_heap_check(NULL) != 0)

#endif
