/*
 * The sampler: the per-thread countdown's slow path, and the one place a
 * sampled allocation is made (sample.h).
 */
#include <errno.h>
#include <link.h>
#include <string.h>

#include "sample.h"
#include "api.h"
#include "conf.h"
#include "guard.h"
#include "init.h"
#include "os.h"
#include "prof.h"
#include "stack.h"

#if !PC_TCACHE_RECLAIM
PC_TLS int64_t sample_left;
#endif

/* Owner thread.  armed: the countdown holds a drawn gap (false in a new
 * thread: its countdown starts at 0).  busy: inside the sampler, whose
 * own allocations are not sampled. */
typedef struct sample_thread {
	uint64_t rng;
	bool armed;
	bool busy;
	bool next_now;
} sample_thread_t;

static PC_TLS sample_thread_t sample_thread;

/*
 * The threads' generators start from one random draw for the process
 * (0 until the first thread's first allocation draws it, so the draw is
 * ORed with 1; two threads racing there both draw, harmlessly) and a
 * count of the threads seeded so far: one system call per process, not
 * one in every new thread, which a program that starts a thread per task
 * would pay each time and glibc does not (mimalloc-bench's `mleak 5`,
 * 5 000 threads of one allocation each: 5 003 getrandom calls under
 * strace before, 3 after).
 */
static uint64_t sample_seed;
static uint64_t sample_nseeded;

static uint64_t
sample_thread_seed(const sample_thread_t *t)
{
	uint64_t s = __atomic_load_n(&sample_seed, __ATOMIC_RELAXED);
	if (s == 0) {
		s = os_random() | 1;
		__atomic_store_n(&sample_seed, s, __ATOMIC_RELAXED);
	}
	uint64_t n = __atomic_fetch_add(&sample_nseeded, 1, __ATOMIC_RELAXED);
	/* splitmix64's output function over seed + n golden-ratio steps:
	 * a start of its own for each thread, unknown without the seed.  A
	 * fork child's threads carry on the parent's count (and may get the
	 * same thread addresses): the clock mixed in makes their starts
	 * differ from the parent's next threads' unless it reads the same,
	 * which would only make both sample at the same points. */
	uint64_t x = (s + (n + 1) * 0x9e3779b97f4a7c15u) ^ (uintptr_t)t ^
	    os_now_ns();
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* A parked countdown: profiling off.  Crossing it takes 2^62 bytes. */
#define SAMPLE_PARKED ((int64_t)1 << 62)

static uint64_t
sample_rand(sample_thread_t *t)
{
	/* xorshift64*: good enough to place gaps; seeded per thread. */
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Natural logarithm of x > 0, without libm: x = m * 2^e with m in
 * [1, 2), ln m = 2 atanh((m - 1) / (m + 1)) by its series (|t| <= 1/3,
 * 14 terms: far below the resolution that matters here). */
static double
sample_ln(double x)
{
	uint64_t bits;
	memcpy(&bits, &x, sizeof(bits));
	int e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
	double m;
	memcpy(&m, &bits, sizeof(m));
	double t = (m - 1) / (m + 1), t2 = t * t, sum = 0, pow = t;
	for (int k = 1; k < 30; k += 2) {
		sum += pow / k;
		pow *= t2;
	}
	return 2 * sum + e * 0.69314718055994530942;
}

/* exp(-x) for x >= 0, without libm: 2^-k exp(-r), r in [0, ln 2). */
static double
sample_exp_neg(double x)
{
	if (x > 700)
		return 0;
	int k = (int)(x / 0.69314718055994530942);
	double r = x - k * 0.69314718055994530942;
	double term = 1, sum = 1;
	for (int i = 1; i < 20; i++) {
		term *= -r / i;
		sum += term;
	}
	while (k-- > 0)
		sum *= 0.5;
	return sum;
}

double
sample_weight(size_t size, size_t mean)
{
	double x = (double)PC_MAX(size, 1) / (double)mean;
	double p = x < 1e-6 ? x * (1 - x / 2) : 1 - sample_exp_neg(x);
	return 1 / p;
}

/* The mean gap between samples: the profiler's, or guarded sampling's
 * when only that is on; 0 when neither is. */
static size_t
sample_mean(void)
{
	if (opt_prof)
		return opt_prof_sample;
	return opt_guard_sample;
}

/* The next gap: exponential of mean sample_mean(), at least 1 (0 with
 * guard_sample:1 alone: every allocation). */
static int64_t
sample_gap(sample_thread_t *t)
{
	size_t mean = sample_mean();
	if (mean == 0)
		return SAMPLE_PARKED;
	if (mean == 1)
		return 0;
	/* 53 random bits, never 0: ln(u) is finite. */
	double u = (double)((sample_rand(t) >> 11) + 1) * (1.0 / 9007199254740992.0);
	double g = -sample_ln(u) * (double)mean;
	if (g < 1)
		return 1;
	if (g > (double)SAMPLE_PARKED)
		return SAMPLE_PARKED;
	return (int64_t)g;
}

/*
 * The code of this library when it is a shared object of its own: frames
 * in it at the top of a sample (realloc moving a block calls malloc, not
 * by a tail call) are the allocator's, not the program's, and are dropped.
 * Not when the library is linked into the program (its range would be the
 * program's).  Found once, from the constructor (sample_self_lookup):
 * dl_iterate_phdr holds the loader's write lock, which a fork child
 * inherits held if another thread was inside it (stack.c).  Until then
 * nothing is dropped.
 */
static uintptr_t sample_self_lo, sample_self_hi;
static bool sample_self_known;

static int
sample_self_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	uintptr_t me = (uintptr_t)pc_sample_malloc;
	bool main_program = info->dlpi_name == NULL ||
	    info->dlpi_name[0] == '\0';
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD || me < lo || me >= lo + ph->p_memsz)
			continue;
		if (!main_program) {
			sample_self_lo = lo;
			sample_self_hi = lo + ph->p_memsz;
		}
		return 1;
	}
	return 0;
}

void
sample_self_lookup(void)
{
	if (__atomic_load_n(&sample_self_known, __ATOMIC_ACQUIRE) ||
	    !stack_loader_enter())
		return;
	dl_iterate_phdr(sample_self_cb, NULL);
	__atomic_store_n(&sample_self_known, true, __ATOMIC_RELEASE);
	stack_loader_leave();
}

static int
sample_strip_self(void **frames, int depth)
{
	if (!__atomic_load_n(&sample_self_known, __ATOMIC_ACQUIRE))
		return depth;
	int k = 0;
	while (k < depth - 1 && (uintptr_t)frames[k] >= sample_self_lo &&
	    (uintptr_t)frames[k] < sample_self_hi)
		k++;
	if (k > 0)
		memmove(frames, frames + k, (size_t)(depth - k) * sizeof(void *));
	return depth - k;
}

/* An allocation the sampler does not record. */
static void *
sample_plain(size_t size, size_t align, unsigned flags)
{
	return api_alloc_unsampled(size, align, (flags & SAMPLE_ZERO) != 0);
}

/*
 * The profiler's sampled allocation when the guard did not serve it: the
 * block is a page extent (sample.h says why), recorded with the stack
 * captured by the caller.
 */
static PC_INLINE void *
sample_take(size_t size, size_t align, unsigned flags, void **frames,
    int depth)
{
	bool zeroed;
	void *p = api_alloc_pages(size, align, &zeroed);
	if (p == NULL)
		return NULL;
	if ((flags & SAMPLE_ZERO) && !zeroed)
		memset(p, 0, size);
	prof_record(p, size, sample_weight(size, opt_prof_sample), frames,
	    depth);
	return p;
}

/*
 * Guarded sampling (guard.h) takes a sample when it is the only sampler,
 * and one in guard_sample / prof_sample of the profiler's samples
 * otherwise (tcmalloc's arrangement: one countdown on the fast path).
 * guard_sample:1 offers it every allocation.
 */
static bool
sample_guard_wants(sample_thread_t *t)
{
	if (!opt_prof || opt_guard_sample <= 1)
		return true;
	uint64_t ratio = opt_guard_sample / opt_prof_sample;
	return ratio <= 1 || sample_rand(t) % ratio == 0;
}

void *
pc_sample_malloc(size_t size, size_t align, unsigned flags)
{
	sample_thread_t *t = &sample_thread;
	if (t->busy || pc_ensure_init() != 0)
		return sample_plain(size, align, flags);
	t->busy = true;
	/* guard_sample:1 means every allocation, the first one too. */
	bool take = t->armed || t->next_now || opt_guard_sample == 1;
	if (!t->armed) {
		/* The thread's first allocation: seed the gaps. */
		t->armed = true;
		t->rng = sample_thread_seed(t);
		if (t->rng == 0)
			t->rng = 1;
		/* No unwinder priming here: prof_start() primes it from the
		 * constructor when the profiler is on; guarded sampling alone
		 * (on by default) must not load it into every process, and its
		 * captures run with busy set (sample_capture), so the first one
		 * may load it. */
	}
	t->next_now = false;
	void *p = NULL;
	/* Neither kind of sample before the constructor has run: no
	 * unwinder loading from inside the dynamic loader's start-up. */
	take = take && prof_ready();
	bool guard = take && opt_guard_sample && size <= PC_PAGE &&
	    align <= PC_PAGE && sample_guard_wants(t);
	if (guard || (take && opt_prof)) {
		void *frames[STACK_MAX_DEPTH];
		/* skip 1: frames[0] is the return address into the function
		 * that called the allocator (malloc reaches us by a tail
		 * call). */
		int depth = sample_strip_self(frames,
		    pc_stack_capture(frames, STACK_MAX_DEPTH, 1));
		/* A guarded block reads as zeros.  It is one of the
		 * profiler's samples too: leaving it out would bias the
		 * profile low by one sample in guard_sample / prof_sample. */
		if (guard)
			p = guard_alloc(size, align, frames, depth);
		if (p != NULL && opt_prof)
			prof_record(p, size, sample_weight(size,
			    opt_prof_sample), frames, depth);
		else if (p == NULL && opt_prof)
			p = sample_take(size, align, flags, frames, depth);
	}
	if (p == NULL && !(take && opt_prof))
		p = sample_plain(size, align, flags);
	int saved = errno;
	prof_poll();
	errno = saved;
	SAMPLE_LEFT = sample_gap(t);
	t->busy = false;
	return p;
}

int
sample_capture(void **frames, int max, int skip)
{
	/* Busy: what the capture allocates (the thread's stack bounds, the
	 * unwinder) is served unsampled, never by a recursive capture. */
	sample_thread_t *t = &sample_thread;
	bool was = t->busy;
	t->busy = true;
	int n = sample_strip_self(frames,
	    pc_stack_capture(frames, max, skip + 1));
	t->busy = was;
	return n;
}

void
sample_free(void *p)
{
	prof_free(p);
}

void
sample_moved(void *p, void *q)
{
	prof_moved(p, q);
}

uint64_t
sample_count(void)
{
	prof_totals_t t;
	prof_totals(&t);
	return t.samples;
}

bool
sample_busy(void)
{
	return sample_thread.busy;
}

void
sample_next_now(void)
{
	sample_thread.next_now = true;
	SAMPLE_LEFT = -1;
}
