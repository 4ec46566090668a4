/*
 * Shared helpers for the pcmalloc benchmark workloads.
 *
 * Every workload is a plain executable that uses the system malloc names;
 * the allocator under test is switched with LD_PRELOAD by bench/run.py.
 * Each prints exactly one "<name> checksum: <hex>" line on stdout that depends
 * only on the arguments, never on scheduling or on the allocator, so the
 * runner can check that every allocator computed the same thing.
 *
 * What every workload shares: pcb_arg() for its arguments, the pcb_rng
 * streams, pcb_stamp()/pcb_check() to prove blocks came back intact,
 * pcb_run_threads() to run its threads and sum their checksums, and
 * pcb_result() for the one output line.
 */
#ifndef PCB_COMMON_H
#define PCB_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCB_UNUSED __attribute__((unused))

static PCB_UNUSED void pcb_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* Parse argv[i] as a positive integer, or return dflt when absent. */
static PCB_UNUSED long pcb_arg(int argc, char **argv, int i, long dflt)
{
	if (i >= argc)
		return dflt;
	char *end;
	errno = 0;
	long v = strtol(argv[i], &end, 0);
	if (errno || *end || v < 0)
		pcb_die("bad argument %d: '%s'", i, argv[i]);
	return v;
}

/* splitmix64: seeds streams; xorshift64*: fast per-thread stream. */
static inline uint64_t pcb_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

typedef struct { uint64_t s; } pcb_rng;

static inline void pcb_rng_seed(pcb_rng *r, uint64_t a, uint64_t b)
{
	r->s = pcb_mix64(pcb_mix64(a) ^ (b * 0x2545f4914f6cdd1dULL)) | 1;
}

static inline uint64_t pcb_rand(pcb_rng *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [lo, hi]. */
static inline size_t pcb_range(pcb_rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)((pcb_rand(r) >> 11) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: many small, few large (lo >= 1). */
static inline size_t pcb_logsize(pcb_rng *r, size_t lo, size_t hi)
{
	int lb = 63 - __builtin_clzll(lo), hb = 63 - __builtin_clzll(hi);
	int b = lb + (int)(pcb_rand(r) % (uint64_t)(hb - lb + 1));
	size_t base = (size_t)1 << b;
	size_t v = base + (size_t)(pcb_rand(r) % base);
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return v;
}

static inline void *pcb_malloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		pcb_die("malloc(%zu) failed", n);
	return p;
}

static inline void *pcb_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p)
		pcb_die("out of memory");
	return p;
}

/*
 * Stamp a block: write a tag word at the start and (when large enough)
 * at the end, plus one byte per 4 KiB page in between when touch_pages is
 * set. pcb_check() verifies and returns a value folded into checksums.
 */
static inline void pcb_stamp(void *p, size_t n, uint64_t tag, int touch_pages)
{
	unsigned char *c = p;
	if (n >= 8) {
		memcpy(c, &tag, 8);
		if (n >= 16)
			memcpy(c + n - 8, &tag, 8);
	} else {
		memcpy(c, &tag, n);
	}
	if (touch_pages)
		for (size_t off = 4096; off + 16 < n; off += 4096)
			c[off] = (unsigned char)(tag >> 3);
}

static inline uint64_t pcb_check(const void *p, size_t n, uint64_t tag,
				 int touch_pages)
{
	const unsigned char *c = p;
	uint64_t a = 0, b = tag;
	if (n >= 8) {
		memcpy(&a, c, 8);
		if (n >= 16)
			memcpy(&b, c + n - 8, 8);
	} else {
		memcpy(&a, c, n);
		uint64_t t = 0;
		memcpy(&t, &tag, n);
		tag = t;
		b = tag;
	}
	if (a != tag || b != tag)
		pcb_die("block corrupted (size %zu)", n);
	if (touch_pages)
		for (size_t off = 4096; off + 16 < n; off += 4096)
			if (c[off] != (unsigned char)(tag >> 3))
				pcb_die("block page corrupted (size %zu)", n);
	return pcb_mix64(tag ^ n);
}

/*
 * Blocks whose size travels in the low 24 bits of their tag, for workloads
 * in which the thread that frees a block does not know its size (xmalloc,
 * thread-churn). Sizes must be at most PCB_SIZED_MAX.
 */
#define PCB_SIZED_MAX 0xffffffULL

static inline uint64_t pcb_sized_tag(uint64_t tag, size_t n)
{
	return (tag & ~PCB_SIZED_MAX) | n;
}

/* Check a block stamped with a pcb_sized_tag() tag, then free it. */
static inline uint64_t pcb_check_free_sized(void *p)
{
	uint64_t tag;
	memcpy(&tag, p, 8);
	uint64_t sum = pcb_check(p, (size_t)(tag & PCB_SIZED_MAX), tag, 0);
	free(p);
	return sum;
}

static PCB_UNUSED void pcb_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int e = pthread_create(t, NULL, fn, arg);
	if (e)
		pcb_die("pthread_create: %s", strerror(e));
}

static PCB_UNUSED void pcb_join(pthread_t t)
{
	int e = pthread_join(t, NULL);
	if (e)
		pcb_die("pthread_join: %s", strerror(e));
}

/*
 * A workload thread: its index (0..n-1), the settings every thread shares,
 * and its share of the checksum as the result.
 */
typedef uint64_t pcb_worker(int id, void *shared);

struct pcb_thread {
	pthread_t thread;
	int id;
	pcb_worker *fn;
	void *shared;
	uint64_t sum;
};

static PCB_UNUSED void *pcb_thread_main(void *arg)
{
	struct pcb_thread *t = arg;
	t->sum = t->fn(t->id, t->shared);
	return NULL;
}

/*
 * Start fn(0..n-1, shared) on n threads at once, wait for all of them and
 * return the sum of their results. The sum wraps modulo 2^64 and does not
 * depend on the order in which threads finish, so the checksum depends
 * only on the arguments.
 */
static PCB_UNUSED uint64_t pcb_run_threads(int n, pcb_worker *fn,
					   void *shared)
{
	struct pcb_thread *t = pcb_calloc((size_t)n, sizeof *t);
	for (int i = 0; i < n; i++) {
		t[i] = (struct pcb_thread){ .id = i, .fn = fn,
			.shared = shared };
		pcb_create(&t[i].thread, pcb_thread_main, &t[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < n; i++) {
		pcb_join(t[i].thread);
		sum += t[i].sum;
	}
	free(t);
	return sum;
}

static PCB_UNUSED void pcb_result(const char *name, uint64_t sum)
{
	printf("%s checksum: %016" PRIx64 "\n", name, sum);
	fflush(stdout);
}

#endif
