/*
 * libFuzzer harness for the prefixed API (tests/fuzz/README.md).
 *
 * An input is a small program of pc_* calls.  Byte 0 is a header (below);
 * the rest is cut into 2 or 3 streams, each run by its own thread, one after
 * the other or all at once.  Threads hand blocks to each other through a
 * small shared slot array, so frees are often remote and often after the
 * allocating thread has exited.
 *
 * Every live block has a shadow record: requested size, alignment, usable
 * size and an id whose pattern fills the block's usable bytes (all of them up
 * to DENSE_MAX, else both ends and a probe every STRIDE).  The pattern is
 * verified on every access and before realloc and free; calloc must give
 * zeros, realloc must keep min(old, new) bytes, usable size must be at least
 * the request and stable.  A registry of the live [p, p + usable) ranges
 * of all threads catches a block handed out twice.  After each input every
 * block is freed, then pc_check() must find nothing and pc_stat_get
 * ("allocated") must equal what the calling thread's cache still holds.
 * Misuse ops (op_misuse) free, realloc or size bad pointers: the library
 * runs with abort_on_error off and the model predicts each report.
 *
 * The library is built prefixed-only and compiled into this binary, so the
 * sanitizers keep their own malloc.  A failure prints "fuzz_api: FAIL" and
 * aborts; PC_FUZZ_TRACE=1 prints every call; PC_FUZZ_SERIAL=1 runs the
 * streams one after the other whatever the header says (to reproduce).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcmalloc.h"
#include "os.h"		/* os_fail_reserve_after */
#include "report.h"	/* pc_misuse_reports */
#include "conf.h"	/* opt_debug, conf_parse */
#include "pagemap.h"	/* whether a pointer is in a slab page */
#include "sizeclass.h"	/* sc_size, SC_NSMALL */
#include "tcache.h"	/* what the calling thread's cache holds */

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#define MAX_THREADS	3
#define NLIVE		32	/* blocks a thread holds */
#define NSLOTS		16	/* shared hand-off slots */
#define NSTALE		8	/* freed pointers a thread remembers */
#define BUDGET		(256 * MiB)	/* requested bytes live */
#define FREE_BUDGET	(64 * KiB)	/* smaller: never refused */
#define HUGE_MIN	(64 * MiB)

/* The shadow model covers every byte up to DENSE_MAX, else these. */
#define DENSE_MAX	(64 * KiB)
#define ZERO_DENSE_MAX	(1 * MiB)	/* calloc: all checked up to */
#define EDGE		(4 * KiB)
#define STRIDE		(256 * KiB)
#define PROBE		64

/*
 * Header bits.
 */
#define H_CONCURRENT	0x01	/* streams run at once (else in turn) */
#define H_THREE		0x02	/* three streams (else two) */
#define H_SELF_FREE	0x04	/* threads free their blocks at exit */
#define H_MAIN_STREAM	0x08	/* stream 0 runs on the caller */
#define H_TRIM_END	0x10	/* pc_trim before the final checks */

typedef struct block {
	unsigned char *p;
	size_t req;		/* requested bytes */
	size_t usable;		/* pc_malloc_usable_size when allocated */
	size_t align;		/* promised alignment */
	size_t charged;		/* against BUDGET */
	uint64_t id;		/* pattern of [0, usable) */
} block_t;

typedef struct reader {
	const uint8_t *d;
	size_t n, i;
} reader_t;

typedef struct thr {
	unsigned idx;
	reader_t r;
	uint64_t next_id;
	block_t live[NLIVE];
	/* Pointers this thread freed (a ring): stale unless the registry
	 * holds a block starting there again. */
	unsigned char *stale[NSTALE];
	unsigned nstale;
} thr_t;

static thr_t thrs[MAX_THREADS];
static block_t shared[NSLOTS];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_size_t live_bytes;
static atomic_bool faults_armed;	/* injected OS failures this input */
static unsigned header;
static int serial;		/* one stream at a time this input */
/* Misuse reports the model predicts this input: at least, at most. */
static atomic_ullong predict_lo, predict_hi;
static int trace;
static int force_serial;
static int waive_debug_align;	/* PC_FUZZ_WAIVE=debug-memalign */
static int strict;		/* PC_FUZZ_STRICT=0: known gaps spared */

/* ---- Failures ------------------------------------------------------- */

__attribute__((format(printf, 2, 3), noreturn)) static void
fail(int line, const char *fmt, ...)
{
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuzz_api: FAIL (fuzz_api.c:%d, header 0x%02x): %s\n",
	    line, header, buf);
	fflush(stderr);
	abort();
}
#define FAIL(...) fail(__LINE__, __VA_ARGS__)

#define TRACE(t, ...) do { \
	if (trace) { \
		fprintf(stderr, "[t%u] ", (t)->idx); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

/* ---- Input ---------------------------------------------------------- */

static unsigned
u8(reader_t *r)
{
	return r->i < r->n ? r->d[r->i++] : 0;
}

static size_t
u16(reader_t *r)
{
	size_t lo = u8(r);
	return lo | (size_t)u8(r) << 8;
}

static size_t
u24(reader_t *r)
{
	size_t lo = u16(r);
	return lo | (size_t)u8(r) << 16;
}

/* Sizes near the edges of the allocator's size ranges. */
static const size_t edge_sizes[] = {
	32 * KiB - 1, 32 * KiB, 32 * KiB + 1, 36 * KiB, 48 * KiB + 1,
	2 * MiB - 4 * KiB, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1,
	4 * MiB - 4 * KiB, 4 * MiB, 4 * MiB + 1, 8 * MiB - 1, 8 * MiB,
	8 * MiB + 1, 64 * MiB - 4 * KiB, 64 * MiB - 1, 64 * MiB,
	64 * MiB + 1, 64 * MiB + 4 * KiB,
};

static size_t
dec_size(reader_t *r)
{
	unsigned k = u8(r);
	switch (k & 15) {
	case 0:
		return k >> 4;			/* 0..15 */
	case 1: case 2: case 3: case 4: case 5:
		return u16(r) % (1 * KiB + 1);
	case 6: case 7: case 8:
		return u16(r) % (32 * KiB + 1);
	case 9: {				/* around a class size */
		size_t s = sc_size(u8(r) % SC_NSMALL);
		return s + (k >> 4) % 3 - 1;
	}
	case 10: case 11: case 12:		/* large */
		return 32 * KiB + u24(r) % (2 * MiB);
	case 13:
		return 2 * MiB + u16(r) * 224;	/* up to ~16 MiB */
	case 14:
		return edge_sizes[u8(r) % (sizeof(edge_sizes) /
		    sizeof(edge_sizes[0]))];
	default:
		if ((k >> 4) == 0)		/* 1 in 256: huge */
			return HUGE_MIN + u16(r) * 1024;
		return 16 * MiB + u16(r) * 768;	/* 16..64 MiB */
	}
}

/* An alignment: mostly small powers of two, sometimes up to 64 MiB,
 * rarely not a power of two. */
static size_t
dec_align(reader_t *r)
{
	unsigned a = u8(r);
	if (a >= 248) {
		static const size_t odd[] = { 3, 24, 48, 96, 4095, 12288,
		    3 * MiB, 0 };
		return odd[a - 248];
	}
	if ((a & 7) == 0)
		return (size_t)1 << (12 + (a >> 3) % 15);	/* 4K..64M */
	return (size_t)1 << (a >> 3) % 13;		/* 1..4096 */
}

/* ---- Shadow model ----------------------------------------------------- */

enum { M_FILL, M_CHECK, M_ZERO };
#define OK ((size_t)-1)

/* The model's loops are the harness's, not the allocator's: no coverage
 * feedback (it would also make them ten times slower). */
#define NO_COV __attribute__((no_sanitize("coverage")))

static inline NO_COV uint64_t
pat(uint64_t id, size_t off)
{
	uint64_t x = id * 0x9E3779B97F4A7C15u ^
	    (uint64_t)(off >> 3) * 0xC2B2AE3D27D4EB4Fu;
	return x ^ (x >> 29);
}

static inline NO_COV unsigned char
pat_byte(uint64_t id, size_t off)
{
	return (unsigned char)(pat(id, off & ~(size_t)7) >> (off & 7) * 8);
}

/* Apply op to [lo, hi) of a block; returns the first bad offset or OK. */
static NO_COV size_t
seg(int op, unsigned char *p, size_t lo, size_t hi, uint64_t id)
{
	size_t o = lo;
	for (; o < hi && (o & 7) != 0; o++) {
		unsigned char want = op == M_ZERO ? 0 : pat_byte(id, o);
		if (op == M_FILL)
			p[o] = want;
		else if (p[o] != want)
			return o;
	}
	for (; o + 8 <= hi; o += 8) {
		uint64_t want = op == M_ZERO ? 0 : pat(id, o), have;
		if (op == M_FILL) {
			memcpy(p + o, &want, 8);
			continue;
		}
		memcpy(&have, p + o, 8);
		if (have != want) {
			while (p[o] == (unsigned char)want) {
				o++;
				want >>= 8;
			}
			return o;
		}
	}
	for (; o < hi; o++) {
		unsigned char want = op == M_ZERO ? 0 : pat_byte(id, o);
		if (op == M_FILL)
			p[o] = want;
		else if (p[o] != want)
			return o;
	}
	return OK;
}

/* The modelled bytes of a block of len bytes, clipped to [0, hi). */
static NO_COV size_t
model(int op, unsigned char *p, size_t len, uint64_t id, size_t hi,
    size_t dense)
{
	size_t bad;
	if (hi > len)
		hi = len;
	if (len <= dense)
		return seg(op, p, 0, hi, id);
	if ((bad = seg(op, p, 0, hi < EDGE ? hi : EDGE, id)) != OK)
		return bad;
	for (size_t o = STRIDE; o + PROBE <= len - EDGE && o < hi;
	    o += STRIDE)
		if ((bad = seg(op, p, o, o + PROBE < hi ? o + PROBE : hi,
		    id)) != OK)
			return bad;
	if (len - EDGE < hi)
		return seg(op, p, len - EDGE, hi, id);
	return OK;
}

static void
describe(char *buf, size_t n, const block_t *b)
{
	snprintf(buf, n, "block %p id %llu req %zu usable %zu align %zu",
	    (void *)b->p, (unsigned long long)b->id, b->req, b->usable,
	    b->align);
}

static void
verify(const thr_t *t, const block_t *b, const char *when)
{
	if (b->p == NULL)
		return;
	size_t bad = model(M_CHECK, b->p, b->usable, b->id, b->usable,
	    DENSE_MAX);
	if (bad != OK) {
		char d[160];
		describe(d, sizeof(d), b);
		FAIL("t%u: %s: contents changed at offset %zu (byte 0x%02x, "
		    "want 0x%02x): %s", t->idx, when, bad, b->p[bad],
		    pat_byte(b->id, bad), d);
	}
}

/* ---- Registry of live ranges (all threads) ------------------------- */

#define REG_MAX (MAX_THREADS * NLIVE + NSLOTS + 8)

static struct range {
	uintptr_t lo, hi;
	uint64_t id;
} reg[REG_MAX];
static size_t reg_n;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Index of the first range whose lo >= a. */
static size_t
reg_find(uintptr_t a)
{
	size_t lo = 0, hi = reg_n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (reg[mid].lo < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
reg_add(const block_t *b)
{
	/* Debug mode gives 0 usable bytes for malloc(0). */
	uintptr_t lo = (uintptr_t)b->p, hi = lo + (b->usable ? b->usable : 1);
	pthread_mutex_lock(&reg_lock);
	size_t i = reg_find(lo);
	const struct range *clash = NULL;
	if (i > 0 && reg[i - 1].hi > lo)
		clash = &reg[i - 1];
	else if (i < reg_n && reg[i].lo < hi)
		clash = &reg[i];
	if (clash != NULL) {
		char d[160];
		describe(d, sizeof(d), b);
		FAIL("new %s overlaps live block [%p, %p) id %llu", d,
		    (void *)clash->lo, (void *)clash->hi,
		    (unsigned long long)clash->id);
	}
	if (reg_n == REG_MAX)
		FAIL("harness: registry full");
	memmove(&reg[i + 1], &reg[i], (reg_n - i) * sizeof(reg[0]));
	reg[i] = (struct range){ lo, hi, b->id };
	reg_n++;
	pthread_mutex_unlock(&reg_lock);
}

static void
reg_del(const block_t *b)
{
	uintptr_t lo = (uintptr_t)b->p;
	pthread_mutex_lock(&reg_lock);
	size_t i = reg_find(lo);
	if (i == reg_n || reg[i].lo != lo || reg[i].id != b->id)
		FAIL("harness: block %p id %llu not registered", (void *)b->p,
		    (unsigned long long)b->id);
	memmove(&reg[i], &reg[i + 1], (reg_n - i - 1) * sizeof(reg[0]));
	reg_n--;
	pthread_mutex_unlock(&reg_lock);
}

/* ---- Budget ----------------------------------------------------------- */

static int
charge(size_t n)
{
	if (n <= FREE_BUDGET) {
		atomic_fetch_add(&live_bytes, n);
		return 1;
	}
	size_t cur = atomic_load(&live_bytes);
	do {
		if (cur > BUDGET || n > BUDGET - cur)
			return 0;
	} while (!atomic_compare_exchange_weak(&live_bytes, &cur, cur + n));
	return 1;
}

static void
uncharge(size_t n)
{
	atomic_fetch_sub(&live_bytes, n);
}

/* A size the budget allows: the decoded one, else a small one. */
static size_t
budget_size(reader_t *r, size_t *charged)
{
	size_t n = dec_size(r);
	if (!charge(n)) {
		n &= 4095;
		charge(n);
	}
	*charged = n;
	return n;
}

/* ---- Taking and giving back blocks ----------------------------------- */

static size_t
pow2_up(size_t a)
{
	size_t p = 1;
	while (p < a)
		p <<= 1;
	return p;
}

/* How much more than the request a block may be. */
enum {
	W_ANY,		/* aligned requests: a class or pages that fit */
	W_MALLOC,	/* a class step (small), else page rounding */
	W_REALLOC,	/* realloc may round a moving growth up a quarter
			 * doubling and keeps a large block shrunk by less
			 * than half: under twice the request, plus a page */
};

/*
 * A block the allocator returned for `req` bytes aligned to `align`: check
 * it, register it, fill it.  zero: calloc, must read as zeros.  waste: W_*.
 */
static void
adopt(thr_t *t, block_t *b, void *p, size_t req, size_t align,
    size_t charged, int zero, int waste, const char *what)
{
	size_t want_align = align < 16 ? 16 : pow2_up(align);
	if ((uintptr_t)p % want_align != 0 && waive_debug_align &&
	    opt_debug && want_align <= 4096 && req <= 32 * KiB) {
		/* Known: debug mode moves aligned small requests up a
		 * class (tests/fuzz/LOG.md); fuzz on past it. */
		want_align = 16;
	}
	if ((uintptr_t)p % want_align != 0)
		FAIL("t%u: %s(%zu, align %zu) = %p: not aligned to %zu",
		    t->idx, what, req, align, p, want_align);
	size_t usable = pc_malloc_usable_size(p);
	if (usable < req || (usable == 0 && !opt_debug))
		FAIL("t%u: %s(%zu, align %zu) = %p: usable size %zu", t->idx,
		    what, req, align, p, usable);
	/* A block the heap profiler sampled is a page extent whatever its
	 * size (docs/profiling.md): its slack is not a size-class waste. */
	bool sampled = opt_prof && (pagemap_lookup(p) & PM_SC_MASK) == 0;
	if (waste == W_MALLOC && req <= 32 * KiB && !sampled &&
	    usable > 16 + req + req / 4)
		FAIL("t%u: %s(%zu) = %p: usable size %zu wastes too much",
		    t->idx, what, req, p, usable);
	/* Large blocks: whole pages, and above 32 pages one of sixteen page
	 * counts per doubling (pageheap.c: large_pages_round). */
	size_t pages = (req + 4 * KiB - 1) / (4 * KiB);
	size_t most = pages + (pages > 32 ? (pages - 1) / 16 : 0);
	if (waste == W_MALLOC && req > 32 * KiB && usable > most * 4 * KiB)
		FAIL("t%u: %s(%zu) = %p: usable size %zu: more slack than "
		    "rounding to pages allows", t->idx, what, req, p, usable);
	if (waste == W_REALLOC && usable > 2 * req + 4 * KiB + 16)
		FAIL("t%u: %s(%zu) = %p: usable size %zu: over twice the "
		    "request", t->idx, what, req, p, usable);
	if (zero) {
		size_t bad = model(M_ZERO, p, req, 0, req, ZERO_DENSE_MAX);
		if (bad != OK)
			FAIL("t%u: %s(%zu) = %p: byte %zu is 0x%02x, not zero",
			    t->idx, what, req, p, bad,
			    ((unsigned char *)p)[bad]);
	}
	*b = (block_t){ p, req, usable, want_align, charged,
	    ((uint64_t)t->idx << 48 | ++t->next_id) * 2 + 1 };
	reg_add(b);
	model(M_FILL, b->p, b->usable, b->id, b->usable, DENSE_MAX);
	TRACE(t, "%s(%zu, align %zu) = %p usable %zu", what, req, align, p,
	    usable);
}

/* A failed allocation is fine only with injected faults, or when the
 * request cannot be met (the caller says so). */
static void
alloc_failed(thr_t *t, const char *what, size_t req, size_t align, int err)
{
	TRACE(t, "%s(%zu, align %zu) = NULL errno %d", what, req, align, err);
	if (err != ENOMEM)
		FAIL("t%u: %s(%zu, align %zu) failed with errno %d, not ENOMEM",
		    t->idx, what, req, align, err);
	if (!atomic_load(&faults_armed))
		FAIL("t%u: %s(%zu, align %zu) returned NULL (no injected "
		    "faults)", t->idx, what, req, align);
}

/* p was freed by t: from now on a stale pointer, until handed out again. */
static void
stale_add(thr_t *t, unsigned char *p)
{
	t->stale[t->nstale++ % NSTALE] = p;
}

static void
release(thr_t *t, block_t *b, int how)
{
	if (b->p == NULL)
		return;
	verify(t, b, "before free");
	if (pc_malloc_usable_size(b->p) != b->usable)
		FAIL("t%u: usable size of %p changed: %zu -> %zu", t->idx,
		    (void *)b->p, b->usable, pc_malloc_usable_size(b->p));
	reg_del(b);
	errno = 12345;
	if (how == 1) {
		size_t n = b->req + (b->usable - b->req) / 2;
		TRACE(t, "free_sized(%p, %zu)", (void *)b->p, n);
		pc_free_sized(b->p, n);
	} else if (how == 2) {
		TRACE(t, "free_sized(%p, %zu)", (void *)b->p, b->req);
		pc_free_sized(b->p, b->req);
	} else {
		TRACE(t, "free(%p)", (void *)b->p);
		pc_free(b->p);
	}
	if (errno != 12345)
		FAIL("t%u: free changed errno to %d", t->idx, errno);
	uncharge(b->charged);
	stale_add(t, b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- Operations ------------------------------------------------------- */

enum {
	OP_MALLOC = 0,		/* 0-4 */
	OP_MISUSE = 5,
	OP_CALLOC = 6,		/* 6-7 */
	OP_REALLOC = 8,		/* 8-11 */
	OP_ALIGNED_ALLOC = 12,
	OP_POSIX_MEMALIGN = 13,
	OP_MEMALIGN = 14,
	OP_ALIGNED_ANY = 15,
	OP_FREE = 16,		/* 16-19 */
	OP_FREE_SIZED = 20,	/* 20-21 */
	OP_USABLE = 22,
	OP_SWAP = 23,		/* 23-24 */
	OP_FREE_SHARED = 25,
	OP_VERIFY = 26,
	OP_TRIM = 27,
	OP_STATS = 28,
	OP_EDGE = 29,
	OP_FAULT = 30,
	OP_YIELD = 31,
	NOPS = 32
};

static void
op_aligned(thr_t *t, block_t *b, int kind)
{
	reader_t *r = &t->r;
	size_t align = dec_align(r), charged;
	size_t n = budget_size(r, &charged);
	void *p = NULL;
	const char *what;
	int err;
	release(t, b, 0);
	if (kind == 0 || (kind == 3 && align % 3 == 0)) {
		what = "aligned_alloc";
		errno = 0;
		p = pc_aligned_alloc(align, n);
		err = errno;
	} else if (kind == 1 || (kind == 3 && align % 3 == 1)) {
		what = "posix_memalign";
		errno = 4321;
		void *out = (void *)&out;
		err = pc_posix_memalign(&out, align, n);
		if (errno != 4321)
			FAIL("t%u: posix_memalign changed errno to %d", t->idx,
			    errno);
		int valid = align >= sizeof(void *) &&
		    (align & (align - 1)) == 0;
		if (!valid) {
			TRACE(t, "posix_memalign(%zu, %zu) = %d", align, n,
			    err);
			if (err != EINVAL || out != (void *)&out)
				FAIL("t%u: posix_memalign(align %zu) = %d, "
				    "want EINVAL and no result", t->idx, align,
				    err);
			uncharge(charged);
			return;
		}
		if (err == 0)
			p = out;
		else if (out != (void *)&out)
			FAIL("t%u: posix_memalign failed but set the result",
			    t->idx);
	} else {
		what = "memalign";
		errno = 0;
		p = pc_memalign(align, n);
		err = errno;
	}
	if (p == NULL) {
		alloc_failed(t, what, n, align, err);
		uncharge(charged);
		return;
	}
	adopt(t, b, p, n, align, charged, 0, W_ANY, what);
}

static void
op_realloc(thr_t *t, block_t *b)
{
	reader_t *r = &t->r;
	unsigned sub = u8(r);
	size_t charged;
	size_t n = budget_size(r, &charged);
	if (b->p == NULL) {
		errno = 0;
		void *p = pc_realloc(NULL, n);
		if (p == NULL) {
			alloc_failed(t, "realloc(NULL)", n, 0, errno);
			uncharge(charged);
			return;
		}
		adopt(t, b, p, n, 0, charged, 0, W_MALLOC, "realloc(NULL)");
		return;
	}
	verify(t, b, "before realloc");
	if (sub % 8 == 0) {		/* realloc(p, 0) frees */
		uncharge(charged);
		reg_del(b);
		TRACE(t, "realloc(%p, 0)", (void *)b->p);
		void *q = pc_realloc(b->p, 0);
		if (q != NULL)
			FAIL("t%u: realloc(%p, 0) = %p, want NULL (freed)",
			    t->idx, (void *)b->p, q);
		uncharge(b->charged);
		stale_add(t, b->p);
		memset(b, 0, sizeof(*b));
		return;
	}
	block_t old = *b;
	reg_del(b);
	void *q;
	const char *what;
	errno = 0;
	if (sub % 8 == 1) {
		/* n = nmemb * size for a few element sizes */
		static const size_t elem[] = { 1, 2, 3, 8, 16, 24, 40, 4096 };
		size_t e = elem[(sub >> 3) % 8];
		what = "reallocarray";
		n -= n % e;
		q = pc_reallocarray(b->p, n / e, e);
	} else {
		what = "realloc";
		q = pc_realloc(b->p, n);
	}
	int err = errno;
	if (q == NULL) {
		if (n == 0) {
			/* reallocarray(p, 0, e): like realloc(p, 0) */
			TRACE(t, "%s(%p, 0) = NULL (freed)", what,
			    (void *)old.p);
			uncharge(charged + old.charged);
			stale_add(t, old.p);
			memset(b, 0, sizeof(*b));
			return;
		}
		alloc_failed(t, what, n, 0, err);
		uncharge(charged);
		reg_add(b);
		verify(t, b, "after a failed realloc");
		return;
	}
	size_t keep = old.req < n ? old.req : n;
	size_t bad = model(M_CHECK, q, old.usable, old.id, keep, DENSE_MAX);
	if (bad != OK) {
		char d[160];
		describe(d, sizeof(d), &old);
		FAIL("t%u: %s(%zu) = %p lost byte %zu (0x%02x, want 0x%02x) "
		    "of %s", t->idx, what, n, q, bad,
		    ((unsigned char *)q)[bad], pat_byte(old.id, bad), d);
	}
	uncharge(old.charged);
	if (q != old.p)
		stale_add(t, old.p);
	adopt(t, b, q, n, 0, charged, 0, W_REALLOC, what);
}

static void
op_calloc(thr_t *t, block_t *b)
{
	reader_t *r = &t->r;
	unsigned sub = u8(r);
	size_t charged;
	size_t n = budget_size(r, &charged);
	static const size_t elem[] = { 1, 1, 2, 4, 16, 24, 100, 4096 };
	size_t e = elem[sub % 8], m;
	if (n > 8 * MiB && (sub & 0xf0) != 0)
		n = n % (8 * MiB);	/* big dirty callocs: slow memsets */
	m = n / e;
	n = m * e;
	release(t, b, 0);
	errno = 0;
	void *p = (sub & 8) ? pc_calloc(e, m) : pc_calloc(m, e);
	if (p == NULL) {
		alloc_failed(t, "calloc", n, 0, errno);
		uncharge(charged);
		return;
	}
	adopt(t, b, p, n, 0, charged, 1, W_MALLOC, "calloc");
}

/*
 * Grow a block far (0.5 to 4 GiB: address space only, the model touches a
 * probe every STRIDE) and shrink it back to its size: huge blocks move
 * through mremap, and with an injected fault the move's error paths run.
 */
static void
op_far_realloc(thr_t *t, block_t *b, unsigned k)
{
	if (b->p == NULL)
		return;
	verify(t, b, "before a far realloc");
	block_t old = *b;
	size_t far = ((size_t)512 << 20) * (1 + k % 8);
	reg_del(b);
	TRACE(t, "realloc(%p, %zu) (far)", (void *)b->p, far);
	errno = 0;
	unsigned char *q = pc_realloc(b->p, far);
	if (q == NULL) {
		alloc_failed(t, "realloc(far)", far, 0, errno);
		reg_add(b);
		verify(t, b, "after a failed far realloc");
		return;
	}
	size_t bad = model(M_CHECK, q, old.usable, old.id, old.req, DENSE_MAX);
	if (bad != OK)
		FAIL("t%u: realloc(%p, %zu) = %p lost byte %zu", t->idx,
		    (void *)old.p, far, (void *)q, bad);
	TRACE(t, "realloc(%p, %zu) (back)", (void *)q, old.req);
	errno = 0;
	unsigned char *r = pc_realloc(q, old.req ? old.req : 1);
	if (r == NULL) {
		/* A shrink may fail only with injected faults (a move). */
		alloc_failed(t, "realloc(back)", old.req, 0, errno);
		r = q;
		old.req = far;
	}
	bad = model(M_CHECK, r, old.usable, old.id, old.req, DENSE_MAX);
	if (bad != OK)
		FAIL("t%u: realloc back to %zu = %p lost byte %zu", t->idx,
		    old.req, (void *)r, bad);
	if (q != old.p)
		stale_add(t, old.p);
	if (r != q)
		stale_add(t, q);
	adopt(t, b, r, old.req ? old.req : 1, 0, old.charged, 0, W_REALLOC,
	    "realloc(far and back)");
}

/* Calls that must fail, or succeed, in exact ways. */
static void
op_edge(thr_t *t, block_t *b)
{
	unsigned sub = u8(&t->r);
	void *p = NULL, *out;
	int err;
	TRACE(t, "edge case %u", sub % 16);
	switch (sub % 16) {
	case 0:
		errno = 0;
		p = pc_malloc(SIZE_MAX - (sub >> 4));
		err = errno;
		break;
	case 1:
		errno = 0;
		p = pc_malloc((size_t)PTRDIFF_MAX + 1 - (sub >> 4) * 4096);
		err = errno;
		break;
	case 2:
		errno = 0;
		p = pc_calloc((SIZE_MAX >> (sub >> 4)) / 2 + 1,
		    (size_t)2 << (sub >> 4));
		err = errno;
		break;
	case 3:
		errno = 0;
		p = pc_reallocarray(NULL, SIZE_MAX / 16 + 1, 32);
		err = errno;
		break;
	case 4:
		errno = 0;
		p = pc_aligned_alloc((size_t)1 << (62 - (sub >> 4) % 3), 1);
		err = errno;
		if (p == NULL && err == EINVAL)
			err = ENOMEM;
		break;
	case 5:
		errno = 0;
		p = pc_memalign(SIZE_MAX - (sub >> 4), 16);
		err = errno;
		if (p == NULL && err == EINVAL)
			err = ENOMEM;
		break;
	case 6:
		errno = 77;
		out = &out;
		if (sub & 0x80) {
			/* posix_memalign rejects bad alignments */
			static const size_t bad[] = { 0, 1, 2, 4, 12, 24, 48,
			    SIZE_MAX };
			size_t a = bad[(sub >> 4) % 8];
			err = pc_posix_memalign(&out, a, 100);
			if (err != EINVAL || errno != 77 || out != &out)
				FAIL("t%u: posix_memalign(%zu) = %d errno %d",
				    t->idx, a, err, errno);
			return;
		}
		err = pc_posix_memalign(&out, 64, SIZE_MAX - (sub >> 4));
		if (err != ENOMEM || errno != 77 || out != &out)
			FAIL("t%u: posix_memalign(64, huge) = %d errno %d",
			    t->idx, err, errno);
		return;
	case 7:
		errno = 77;
		pc_free(NULL);
		pc_free_sized(NULL, 0);
		if (errno != 77 || pc_malloc_usable_size(NULL) != 0)
			FAIL("t%u: free(NULL) or usable_size(NULL)", t->idx);
		return;
	case 8:
	case 9:
		/* realloc and reallocarray to an impossible size keep p */
		if (b->p == NULL)
			return;
		verify(t, b, "before a failing realloc");
		errno = 0;
		p = (sub % 16 == 8) ? pc_realloc(b->p, SIZE_MAX - (sub >> 4)) :
		    pc_reallocarray(b->p, SIZE_MAX / 2, 3);
		if (p != NULL || errno != ENOMEM)
			FAIL("t%u: realloc(%p, huge) = %p errno %d", t->idx,
			    (void *)b->p, p, errno);
		verify(t, b, "after a failing realloc");
		return;
	case 10:
	case 11:
		/* calloc of zero elements or zero-size elements */
		release(t, b, 0);
		errno = 0;
		p = (sub % 16 == 10) ? pc_calloc(0, sub >> 4) :
		    pc_calloc(sub >> 4, 0);
		if (p == NULL) {
			alloc_failed(t, "calloc with a zero", 0, 0, errno);
			return;
		}
		adopt(t, b, p, 0, 0, 0, 1, W_MALLOC, "calloc0");
		return;
	case 12: {
		/* memalign with an alignment of at most 16: malloc */
		release(t, b, 0);
		size_t n = dec_size(&t->r) & 1023, a = (sub >> 4) % 17;
		charge(n);
		errno = 0;
		p = pc_memalign(a, n);
		if (p == NULL) {
			alloc_failed(t, "memalign", n, a, errno);
			uncharge(n);
			return;
		}
		adopt(t, b, p, n, a, n, 0, W_ANY, "memalign");
		return;
	}
	case 13: {
		release(t, b, 0);
		size_t a = (size_t)16 << (sub >> 4);
		errno = 0;
		p = pc_aligned_alloc(a, 0);
		if (p == NULL) {
			alloc_failed(t, "aligned_alloc", 0, a, errno);
			return;
		}
		adopt(t, b, p, 0, a, 0, 0, W_ANY, "aligned_alloc");
		return;
	}
	case 14:
		/* realloc to the same size keeps everything */
		if (b->p == NULL)
			return;
		verify(t, b, "before realloc(same)");
		reg_del(b);
		p = pc_realloc(b->p, b->req ? b->req : 1);
		if (p == NULL) {
			alloc_failed(t, "realloc(same)", b->req, 0, errno);
			reg_add(b);
			return;
		}
		/* Within one class and not debug mode: in place. */
		if (!opt_debug && b->req <= 32 * KiB &&
		    b->usable <= 32 * KiB && b->req != 0 &&
		    sc_index(b->req) == sc_index(b->usable) && p != b->p)
			FAIL("t%u: realloc(%p, same size %zu) moved to %p",
			    t->idx, (void *)b->p, b->req, p);
		{
			block_t old = *b;
			size_t bad = model(M_CHECK, p, old.usable, old.id,
			    old.req, DENSE_MAX);
			if (bad != OK)
				FAIL("t%u: realloc(same) lost byte %zu", t->idx,
				    bad);
			if (p != old.p)
				stale_add(t, old.p);
			adopt(t, b, p, old.req ? old.req : 1, 0, old.charged,
			    0, W_REALLOC, "realloc(same)");
		}
		return;
	default:
		op_far_realloc(t, b, sub >> 4);
		return;
	}
	if (p != NULL)
		FAIL("t%u: edge case %u: impossible request = %p", t->idx,
		    sub % 16, p);
	if (err != ENOMEM)
		FAIL("t%u: edge case %u: errno %d, want ENOMEM", t->idx,
		    sub % 16, err);
}

static const char *const stat_names[] = {
	"allocated", "active", "resident", "dirty", "retained", "mapped",
	"metadata", "huge", "nhuge", "npurged", "nmalloc", "nfree",
	"nrefills", "nflushes", "narenas", "arena.0.mapped", "arena.0.active",
	"arena.0.dirty", "arena.0.allocated", "arena.0.resident",
	"arena.0.npurged", "arena.0.nlarge_alloc", "arena.0.nlarge_free",
};

static void
count_cb(void *opaque, const char *text)
{
	*(size_t *)opaque += strlen(text);
}

static void
op_stats(thr_t *t)
{
	unsigned sub = u8(&t->r);
	unsigned long long v;
	unsigned n = sizeof(stat_names) / sizeof(stat_names[0]);
	if (sub < n) {
		if (pc_stat_get(stat_names[sub], &v) != 0)
			FAIL("t%u: pc_stat_get(%s) failed", t->idx,
			    stat_names[sub]);
	} else if (sub < 200) {
		if (pc_stat_get("arena.99999.mapped", &v) != ENOENT ||
		    pc_stat_get("nosuch", &v) != ENOENT ||
		    pc_stat_get("arena.", &v) != ENOENT)
			FAIL("t%u: pc_stat_get of an unknown name", t->idx);
	} else if (sub < 240) {
		size_t chars = 0;
		pc_stats_print(count_cb, &chars);
		if (chars == 0)
			FAIL("t%u: pc_stats_print wrote nothing", t->idx);
	} else {
		/* The checker stops arenas: other threads may be running. */
		TRACE(t, "pc_check");
		int bad = pc_check();
		if (bad != 0)
			FAIL("t%u: pc_check() = %d during the run", t->idx,
			    bad);
	}
}

static void
op_swap(thr_t *t, block_t *b)
{
	unsigned j = u8(&t->r) % NSLOTS;
	verify(t, b, "before hand-off");
	pthread_mutex_lock(&shared_lock);
	block_t tmp = shared[j];
	shared[j] = *b;
	*b = tmp;
	pthread_mutex_unlock(&shared_lock);
	TRACE(t, "swap slot %u: gave %p took %p", j, (void *)tmp.p,
	    (void *)b->p);
	verify(t, b, "after hand-off");
}

static void
op_free_shared(thr_t *t)
{
	unsigned s = u8(&t->r);
	block_t b;
	pthread_mutex_lock(&shared_lock);
	b = shared[s % NSLOTS];
	memset(&shared[s % NSLOTS], 0, sizeof(b));
	pthread_mutex_unlock(&shared_lock);
	release(t, &b, (s >> 4) % 3);
}

/* ---- Misuse ----------------------------------------------------------- */

/*
 * Misuse the library must report ("pcmalloc: ...", counted in
 * pc_misuse_reports) and ignore, abort_on_error being off: a free,
 * free_sized, realloc or malloc_usable_size of a pointer inside a live
 * block, of the block just freed (a double free), or of a stale pointer
 * (one this thread freed that no live block starts at since).  The bad
 * pointer is only passed to the library, never read or written here.
 */
enum { MU_FREE, MU_FREE_SIZED, MU_REALLOC, MU_USABLE };
static const char *const mu_name[] = { "free", "free_sized", "realloc",
    "malloc_usable_size" };

static unsigned long long
reports(void)
{
	return __atomic_load_n(&pc_misuse_reports, __ATOMIC_RELAXED);
}

/* The size a misused realloc asks for (never served: it must fail). */
static size_t
mu_size(unsigned z)
{
	if (z < 128)
		return z * 8;				/* 0: the free path */
	if (z < 224)
		return 32 * KiB + (z - 127) * 40 * KiB;	/* large */
	return HUGE_MIN + (z - 224) * MiB;		/* huge */
}

/*
 * Call `call` on the bad pointer q (`why`: what is wrong with it); size is
 * what free_sized gets.  Predicted: exactly one report, and nothing done:
 * realloc returns NULL (errno EINVAL, except realloc(q, 0), a free),
 * usable size 0, free leaves errno alone (LOG.md, finding 6: usable
 * sizes of large and huge blocks are now checked too).
 */
static void
misuse_call(thr_t *t, int call, unsigned char *q, size_t size, unsigned z,
    const char *why)
{
	/* A usable size of a pointer no page-map entry names (a freed
	 * region, or inside a huge block) may be foreign memory: 0 quietly
	 * then, or a report when the library knows it as ours. */
	unsigned lo = call == MU_USABLE && pagemap_lookup(q) == 0 ? 0 : 1;
	unsigned hi = 1;
	size_t n = mu_size(z);
	if (call == MU_REALLOC)
		TRACE(t, "misuse: realloc(%p, %zu) (%s)", (void *)q, n, why);
	else
		TRACE(t, "misuse: %s(%p) (%s)", mu_name[call], (void *)q, why);
	unsigned long long before = reports();
	errno = 12345;
	switch (call) {
	case MU_FREE:
		pc_free(q);
		break;
	case MU_FREE_SIZED:
		pc_free_sized(q, size);
		break;
	case MU_REALLOC: {
		void *r = pc_realloc(q, n);
		if (r != NULL)
			FAIL("t%u: realloc(%p, %zu) (%s) = %p: misuse served",
			    t->idx, (void *)q, n, why, r);
		if (n != 0 && errno != EINVAL)
			FAIL("t%u: realloc(%p, %zu) (%s): errno %d, want "
			    "EINVAL", t->idx, (void *)q, n, why, errno);
		break;
	}
	default: {
		size_t u = pc_malloc_usable_size(q);
		if (u != 0)
			FAIL("t%u: malloc_usable_size(%p) (%s) = %zu, want 0",
			    t->idx, (void *)q, why, u);
		break;
	}
	}
	if (call != MU_REALLOC && call != MU_USABLE && errno != 12345)
		FAIL("t%u: %s(%p) (%s) changed errno to %d", t->idx,
		    mu_name[call], (void *)q, why, errno);
	/* Other threads' reports add up only when streams run at once. */
	unsigned long long got = reports() - before;
	if (got < lo || (serial && got > hi))
		FAIL("t%u: %s(%p) (%s): %llu misuse reports, want %s1", t->idx,
		    mu_name[call], (void *)q, why, got, lo ? "" : "0 or ");
	atomic_fetch_add(&predict_lo, lo);
	atomic_fetch_add(&predict_hi, hi);
}

/*
 * Known gap (LOG.md, finding 7): a stale pointer that is now the start of
 * a block waiting in this thread's cache without the cache key (a refill
 * put it there: its page was a freed large block or an emptied slab, now
 * a slab again) passes every check: free caches it a second time and it
 * is handed out twice.  Fixed (refills key the blocks they cache); such a
 * call is skipped only with PC_FUZZ_STRICT=0, to look for other gaps.
 */
static int
cached_unkeyed(const void *p)
{
	unsigned tag = (unsigned)(pagemap_lookup(p) & PM_SC_MASK);
	if (tag == 0)
		return 0;
	tbin_t *b = TBIN(TCACHE_GET(), tag - 1);	/* state caches: 0 */
	for (unsigned i = 0; i < b->n; i++)
		if (b->slots[i] == p)
			return TCACHE_KEY_WORD(p) != TCACHE_KEY_OF(p);
	return 0;
}

/* The registry range holding a, if any: 1 it starts there, 2 inside. */
static int
reg_holds(uintptr_t a)
{
	pthread_mutex_lock(&reg_lock);
	size_t i = reg_find(a);
	int in = i < reg_n && reg[i].lo == a ? 1 :
	    i > 0 && reg[i - 1].hi > a ? 2 : 0;
	pthread_mutex_unlock(&reg_lock);
	return in;
}

/*
 * Opcode OP_MISUSE, slot, kind, then two bytes x and z (z: mu_size).
 * kind % 4: 0-1 a pointer inside the slot's block, x the offset (below);
 * 2 free the slot's block (kind >> 4: free, free_sized, realloc to 0),
 * then misuse it at once; 3 a stale pointer, x picks it.  (kind >> 2) % 4
 * is the misusing call (MU_*; a stale pointer's free_sized is a free: a
 * page now of another class would add a wrong-size report).  Double and
 * stale frees run only when the streams run one at a time: a block freed
 * while another thread allocates may be handed out to it meanwhile.
 */
static void
op_misuse(thr_t *t, block_t *b)
{
	reader_t *r = &t->r;
	unsigned kind = u8(r), x = u8(r), z = u8(r);
	int call = (kind >> 2) % 4;
	switch (kind % 4) {
	case 0:
	case 1: {
		if (b->p == NULL || b->usable < 2)
			return;
		/* 1..16, the last 16 bytes, page multiples, the middle */
		size_t k = x < 128 ? 1 + x % 16 : x < 192 ?
		    b->usable - 1 - x % 16 : x < 255 ?
		    (size_t)(x - 191) * 4096 : b->usable / 2;
		if (k == 0 || k >= b->usable)
			k = x < 128 ? 1 : b->usable - 1;
		verify(t, b, "before misuse");
		misuse_call(t, call, b->p + k, b->req, z, "inside a block");
		verify(t, b, "after misuse");
		if (pc_malloc_usable_size(b->p) != b->usable)
			FAIL("t%u: usable size of %p changed after misuse: "
			    "%zu -> %zu", t->idx, (void *)b->p, b->usable,
			    pc_malloc_usable_size(b->p));
		return;
	}
	case 2: {
		if (b->p == NULL || !serial)
			return;
		unsigned char *p = b->p;
		size_t req = b->req;
		unsigned how = (kind >> 4) % 3;
		if (how < 2) {
			release(t, b, how * 2);	/* free, free_sized(req) */
		} else {
			verify(t, b, "before realloc(p, 0)");
			reg_del(b);
			TRACE(t, "realloc(%p, 0)", (void *)p);
			if (pc_realloc(p, 0) != NULL)
				FAIL("t%u: realloc(%p, 0) != NULL", t->idx,
				    (void *)p);
			uncharge(b->charged);
			stale_add(t, p);
			memset(b, 0, sizeof(*b));
		}
		misuse_call(t, call, p, req, z, "double free");
		return;
	}
	default: {
		unsigned char **sp = &t->stale[x % NSTALE];
		if (*sp == NULL || !serial)
			return;
		int in = reg_holds((uintptr_t)*sp);
		if (in == 1) {		/* handed out again: live */
			*sp = NULL;
			return;
		}
		if (!strict && cached_unkeyed(*sp)) {
			TRACE(t, "misuse: %p (stale) skipped: in this thread's "
			    "cache without the key", (void *)*sp);
			return;
		}
		misuse_call(t, call == MU_FREE_SIZED ? MU_FREE : call, *sp, 0,
		    z, in ? "stale, inside a live block" : "stale");
		return;
	}
	}
}

static void
run_stream(thr_t *t)
{
	reader_t *r = &t->r;
	while (r->i < r->n) {
		unsigned op = u8(r) % NOPS;
		block_t *b = &t->live[u8(r) % NLIVE];
		size_t charged, n;
		void *p;
		switch (op) {
		case OP_MISUSE:
			op_misuse(t, b);
			break;
		case OP_MALLOC ... OP_MALLOC + 4:
			n = budget_size(r, &charged);
			release(t, b, 0);
			errno = 0;
			p = pc_malloc(n);
			if (p == NULL) {
				alloc_failed(t, "malloc", n, 0, errno);
				uncharge(charged);
				break;
			}
			adopt(t, b, p, n, 0, charged, 0, W_MALLOC, "malloc");
			break;
		case OP_CALLOC ... OP_CALLOC + 1:
			op_calloc(t, b);
			break;
		case OP_REALLOC ... OP_REALLOC + 3:
			op_realloc(t, b);
			break;
		case OP_ALIGNED_ALLOC:
			op_aligned(t, b, 0);
			break;
		case OP_POSIX_MEMALIGN:
			op_aligned(t, b, 1);
			break;
		case OP_MEMALIGN:
			op_aligned(t, b, 2);
			break;
		case OP_ALIGNED_ANY:
			op_aligned(t, b, 3);
			break;
		case OP_FREE ... OP_FREE + 3:
			release(t, b, 0);
			break;
		case OP_FREE_SIZED ... OP_FREE_SIZED + 1:
			release(t, b, 1 + (op & 1));
			break;
		case OP_USABLE:
			if (b->p != NULL && pc_malloc_usable_size(b->p) !=
			    b->usable)
				FAIL("t%u: usable size of %p changed: %zu -> "
				    "%zu", t->idx, (void *)b->p, b->usable,
				    pc_malloc_usable_size(b->p));
			verify(t, b, "usable size");
			break;
		case OP_SWAP ... OP_SWAP + 1:
			op_swap(t, b);
			break;
		case OP_FREE_SHARED:
			op_free_shared(t);
			break;
		case OP_VERIFY:
			for (unsigned i = 0; i < NLIVE; i++)
				verify(t, &t->live[i], "verify all");
			break;
		case OP_TRIM:
			TRACE(t, "trim");
			pc_trim();
			break;
		case OP_STATS:
			op_stats(t);
			break;
		case OP_EDGE:
			op_edge(t, b);
			break;
		case OP_FAULT: {
			/* OS reservations fail from the n-th on (until
			 * disarmed); NULL results are fine from here on. */
			unsigned k = u8(r);
			if (k % 4 == 1) {
				TRACE(t, "reservations work again");
				os_fail_reserve_after(0);
			}
			if (k % 4 != 0)
				break;
			TRACE(t, "fail reservations from the %u-th on",
			    1 + k / 4 % 8);
			atomic_store(&faults_armed, 1);
			os_fail_reserve_after(1 + k / 4 % 8);
			break;
		}
		default:
			sched_yield();
			break;
		}
	}
	if (header & H_SELF_FREE)
		for (unsigned i = 0; i < NLIVE; i++)
			release(t, &t->live[i], i % 3);
}

static void *
thread_main(void *arg)
{
	run_stream(arg);
	return NULL;
}

/* Bytes the calling thread's cache holds (counted as allocated). */
static unsigned long long
cached_bytes(void)
{
	tcache_t *tc = TCACHE_GET();	/* state caches hold 0 */
	unsigned long long n = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		n += (unsigned long long)TBIN(tc, sc)->n * sc_size(sc);
	return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *s = getenv("PC_FUZZ_TRACE");
	trace = s != NULL && *s == '1';
	s = getenv("PC_FUZZ_SERIAL");
	force_serial = s != NULL && *s == '1';
	s = getenv("PC_FUZZ_WAIVE");
	waive_debug_align = s != NULL && strstr(s, "debug-memalign") != NULL;
	s = getenv("PC_FUZZ_STRICT");
	strict = s == NULL || *s != '0';
	pc_free(pc_malloc(1));	/* initialise outside any input */
	/* Misuse is reported and ignored (PCMALLOC_CONF is read at init,
	 * so this comes after it, whatever it says). */
	if (conf_parse("abort_on_error:false") != 0)
		FAIL("harness: conf_parse(abort_on_error:false) failed");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	header = data[0];
	if (force_serial)
		header &= ~(unsigned)H_CONCURRENT;
	unsigned nthr = header & H_THREE ? 3 : 2;
	serial = !(header & H_CONCURRENT);
	atomic_store(&predict_lo, 0);
	atomic_store(&predict_hi, 0);
	unsigned long long reports0 = reports();
	data++;
	size--;
	os_fail_reserve_after(0);
	atomic_store(&faults_armed, 0);
	memset(thrs, 0, sizeof(thrs));
	memset(shared, 0, sizeof(shared));
	for (unsigned i = 0; i < nthr; i++) {
		thrs[i].idx = i;
		thrs[i].r = (reader_t){ data + size * i / nthr,
		    size * (i + 1) / nthr - size * i / nthr, 0 };
	}

	pthread_t tid[MAX_THREADS];
	int started[MAX_THREADS] = { 0 };
	unsigned first = header & H_MAIN_STREAM ? 1 : 0;
	for (unsigned i = first; i < nthr; i++) {
		started[i] = pthread_create(&tid[i], NULL, thread_main,
		    &thrs[i]) == 0;
		if (!started[i])
			run_stream(&thrs[i]);
		else if (!(header & H_CONCURRENT))
			pthread_join(tid[i], NULL), started[i] = 0;
	}
	if (first)
		run_stream(&thrs[0]);
	for (unsigned i = 0; i < nthr; i++)
		if (started[i])
			pthread_join(tid[i], NULL);

	/* Free what is left, from this thread (remote frees, mostly). */
	thr_t self = { .idx = 9 };
	for (unsigned i = 0; i < nthr; i++)
		for (unsigned k = 0; k < NLIVE; k++)
			release(&self, &thrs[i].live[k], k % 3);
	for (unsigned k = 0; k < NSLOTS; k++)
		release(&self, &shared[k], 0);
	if (reg_n != 0 || atomic_load(&live_bytes) != 0)
		FAIL("harness: %zu ranges, %zu bytes left", reg_n,
		    atomic_load(&live_bytes));
	os_fail_reserve_after(0);
	if (header & H_TRIM_END)
		pc_trim();

	int bad = pc_check();
	if (bad != 0)
		FAIL("pc_check() = %d after freeing everything", bad);
	/* No report but the predicted ones: none for legal calls, none late
	 * (a flush finding a misused pointer let in). */
	unsigned long long got = reports() - reports0;
	if (got < atomic_load(&predict_lo) || got > atomic_load(&predict_hi))
		FAIL("%llu misuse reports in this input, predicted %llu..%llu",
		    got, atomic_load(&predict_lo), atomic_load(&predict_hi));
	unsigned long long alloc = 0, nhuge = 0, want = cached_bytes();
	if (pc_stat_get("allocated", &alloc) != 0 ||
	    pc_stat_get("nhuge", &nhuge) != 0)
		FAIL("pc_stat_get failed");
	if (alloc != want || nhuge != 0)
		FAIL("after freeing everything: allocated %llu (this thread's "
		    "cache holds %llu), %llu huge blocks", alloc, want, nhuge);
	return 0;
}
