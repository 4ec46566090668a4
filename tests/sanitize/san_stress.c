/*
 * Threaded stress of the prefixed API for sanitizer builds (tests/
 * sanitize.sh): the stress tests in tests/stress call the standard names,
 * which a sanitizer's own malloc owns, so this one calls pc_* only.
 *
 * Usage: san_stress MODE [seconds]   (default 3 seconds per mode)
 *   xfree  threads allocate (malloc, calloc, realloc, aligned, large,
 *          rarely huge), fill, and hand blocks to each other through a
 *          locked ring; nearly every free is remote
 *   churn  short-lived threads allocate, free some, hand the rest to the
 *          main thread and exit (thread caches flushed and recycled while
 *          others run)
 *   check  xfree, plus a thread running pc_check, pc_stat_get,
 *          pc_stats_print and pc_trim all the time
 *   huge   threads grow huge blocks (mremap moves them) while others map
 *          huge blocks, which land in the ranges just vacated: each must
 *          keep its page-map entry (usable size, free)
 *   all    the four in turn
 * Every block carries a pattern checked before it is freed.  At the end
 * everything is freed, pc_check() must return 0 and "allocated" must be
 * what the main thread's cache still holds (after pc_trim: 0).
 * Exit status 0, or abort with "san_stress: FAIL ...".
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pcmalloc.h"

/* TSan does not intercept mremap: a block it moved keeps the shadow of
 * whatever another thread mapped at the new address before, and reading it
 * looks like a race with that mmap.  Such blocks are not read under TSan. */
#if defined(__SANITIZE_THREAD__)
#define SAN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SAN_TSAN 1
#endif
#endif
#ifndef SAN_TSAN
#define SAN_TSAN 0
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define NWORKERS 4
#define RING 256

__attribute__((format(printf, 1, 2), noreturn)) static void
die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "san_stress: FAIL: %s\n", buf);
	fflush(stderr);
	abort();
}

typedef struct item {
	unsigned char *p;
	size_t size;
	unsigned char tag;
} item_t;

/* A ring of blocks in transit; the lock orders writer before reader. */
static struct {
	pthread_mutex_t lock;
	item_t v[RING];
	unsigned head, n;
} ring = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_int stop;
static double seconds = 3;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Fill: every byte up to 4 KiB, then one byte every 64 KiB (big blocks
 * stay mostly untouched: sanitizer shadow memory is not free). */
#define STEP (64 * KiB)
static void
fill(item_t *it)
{
	size_t n = it->size;
	for (size_t i = 0; i < n && i < 4 * KiB; i++)
		it->p[i] = (unsigned char)(it->tag + i);
	for (size_t i = 4 * KiB; i < n; i += STEP)
		it->p[i] = (unsigned char)(it->tag + i);
	if (n > 0)
		it->p[n - 1] = it->tag;
}

static void
check(const item_t *it, const char *who)
{
	size_t n = it->size;
	if (n > 0 && it->p[n - 1] != it->tag)
		die("%s: block %p size %zu: last byte changed", who,
		    (void *)it->p, n);
	for (size_t i = 0; i + 1 < n && i < 4 * KiB; i++)
		if (it->p[i] != (unsigned char)(it->tag + i))
			die("%s: block %p size %zu: byte %zu changed", who,
			    (void *)it->p, n, i);
	for (size_t i = 4 * KiB; i + 1 < n; i += STEP)
		if (it->p[i] != (unsigned char)(it->tag + i))
			die("%s: block %p size %zu: byte %zu changed", who,
			    (void *)it->p, n, i);
	if (pc_malloc_usable_size(it->p) < n)
		die("%s: usable size of %p below %zu", who, (void *)it->p, n);
}

static void
give_back(item_t *it, uint64_t *s, const char *who)
{
	check(it, who);
	if (rnd(s) % 4 == 0)
		pc_free_sized(it->p, it->size);
	else
		pc_free(it->p);
	it->p = NULL;
}

static int
alloc(item_t *it, uint64_t *s)
{
	uint64_t r = rnd(s);
	size_t size;
	switch (r % 64) {
	case 0: case 1: case 2:
		size = 32 * KiB + (r >> 8) % (1 * MiB);
		break;
	case 3:
		size = (r >> 8) % 16 == 0 ? 64 * MiB + (r >> 16) % MiB :
		    2 * MiB + (r >> 16) % (6 * MiB);
		break;
	default:
		size = (r >> 8) % (r & 64 ? 32 * KiB : 512);
	}
	void *p;
	switch ((r >> 40) % 8) {
	case 0:
		p = pc_calloc(1, size);
		if (p != NULL)
			for (size_t i = 0; i < size; i += size > 4 * KiB ?
			    4 * KiB - 1 : 1)
				if (((unsigned char *)p)[i] != 0)
					die("calloc(%zu) byte %zu not zero",
					    size, i);
		break;
	case 1: {
		size_t a = (size_t)16 << (r >> 48) % 10;
		if (pc_posix_memalign(&p, a, size) != 0)
			p = NULL;
		if (p != NULL && (uintptr_t)p % a != 0)
			die("posix_memalign(%zu) = %p", a, p);
		break;
	}
	case 2:
		/* The block's size is what realloc asked for: free_sized
		 * checks it. */
		size++;
		p = pc_realloc(pc_malloc(size / 2 + 1), size);
		break;
	default:
		p = pc_malloc(size);
	}
	if (p == NULL)
		die("allocation of %zu bytes failed (errno %d)", size, errno);
	*it = (item_t){ p, size, (unsigned char)(r >> 56) };
	fill(it);
	return 0;
}

/* Hand `in` over and get someone else's block back (or nothing). */
static item_t
swap(item_t in)
{
	pthread_mutex_lock(&ring.lock);
	item_t out = { 0 };
	if (ring.n == RING) {
		out = ring.v[ring.head];
		ring.v[ring.head] = in;
		ring.head = (ring.head + 1) % RING;
	} else {
		ring.v[(ring.head + ring.n++) % RING] = in;
		if (ring.n > RING / 2 && (in.tag & 1)) {
			out = ring.v[ring.head];
			ring.head = (ring.head + 1) % RING;
			ring.n--;
		}
	}
	pthread_mutex_unlock(&ring.lock);
	return out;
}

static void *
worker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15u + 1;
	item_t mine[64] = { 0 };
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int k = 0; k < 256; k++) {
			item_t *it = &mine[rnd(&s) % 64];
			if (it->p != NULL) {
				if (rnd(&s) % 3 == 0) {
					item_t got = swap(*it);
					it->p = NULL;
					if (got.p != NULL)
						give_back(&got, &s, "remote");
				} else {
					give_back(it, &s, "local");
				}
			}
			alloc(it, &s);
		}
	}
	for (int i = 0; i < 64; i++)
		if (mine[i].p != NULL && i % 2 == 0)
			give_back(&mine[i], &s, "exit");
		else if (mine[i].p != NULL) {
			/* the rest go remote */
			item_t got = swap(mine[i]);
			if (got.p != NULL)
				give_back(&got, &s, "exit remote");
		}
	return NULL;
}

/* Short-lived threads: allocate, free some, hand the rest over, exit. */
static void *
ephemeral(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x2545F4914F6CDD1Du + 7;
	item_t v[16];
	for (int i = 0; i < 16; i++)
		alloc(&v[i], &s);
	for (int i = 0; i < 16; i++) {
		if (i % 3 == 0)
			give_back(&v[i], &s, "ephemeral");
		else {
			item_t got = swap(v[i]);
			if (got.p != NULL)
				give_back(&got, &s, "ephemeral remote");
		}
	}
	return NULL;
}

static void
count_cb(void *opaque, const char *text)
{
	*(size_t *)opaque += strlen(text);
}

static void *
inspector(void *arg)
{
	(void)arg;
	static const char *const names[] = { "allocated", "active",
	    "resident", "dirty", "mapped", "nmalloc", "nfree", "nhuge",
	    "arena.0.dirty", "arena.0.nlarge_free" };
	unsigned long long v;
	unsigned i = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int bad = pc_check();
		if (bad != 0)
			die("pc_check() = %d while threads run", bad);
		for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (pc_stat_get(names[k], &v) != 0)
				die("pc_stat_get(%s)", names[k]);
		if (++i % 8 == 0) {
			size_t chars = 0;
			pc_stats_print(count_cb, &chars);
			pc_trim();
		}
		usleep(1000);
	}
	return NULL;
}

/* Grow 64 MiB blocks to 200 MiB: mremap moves them (the space above is
 * taken), vacating a range another thread's next mapping often gets. */
static void *
grower(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		char *p = pc_malloc(64 * MiB);
		if (p == NULL)
			die("malloc(64 MiB) failed");
		p[0] = 1;
		char *q = pc_realloc(p, 200 * MiB);
		if (q == NULL)
			die("realloc(200 MiB) failed");
		if (!SAN_TSAN && q[0] != 1)
			die("realloc(200 MiB) lost the first byte");
		pc_free(q);
	}
	return NULL;
}

static void *
mapper(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		char *p = pc_malloc(64 * MiB);
		if (p == NULL)
			die("malloc(64 MiB) failed");
		for (volatile int i = 0; i < 2000; i++)
			;
		if (pc_malloc_usable_size(p) < 64 * MiB)
			die("live huge block %p lost its page-map entry (usable "
			    "size %zu)", (void *)p, pc_malloc_usable_size(p));
		pc_free(p);
	}
	return NULL;
}

static void
run_huge(void)
{
	pthread_t t[4];
	atomic_store(&stop, 0);
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, i % 2 ? mapper : grower,
		    NULL) != 0)
			die("pthread_create");
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
drain(void)
{
	uint64_t s = 42;
	pthread_mutex_lock(&ring.lock);
	while (ring.n > 0) {
		item_t it = ring.v[ring.head];
		ring.head = (ring.head + 1) % RING;
		ring.n--;
		give_back(&it, &s, "drain");
	}
	pthread_mutex_unlock(&ring.lock);
}

static void
final_checks(const char *mode)
{
	drain();
	pc_trim();	/* flushes this thread's cache */
	int bad = pc_check();
	if (bad != 0)
		die("%s: pc_check() = %d at the end", mode, bad);
	unsigned long long alloc = 0, nhuge = 0;
	pc_stat_get("allocated", &alloc);
	pc_stat_get("nhuge", &nhuge);
	if (alloc != 0 || nhuge != 0)
		die("%s: everything freed, but allocated %llu, nhuge %llu",
		    mode, alloc, nhuge);
}

static void
run_workers(int with_inspector)
{
	pthread_t t[NWORKERS + 1];
	atomic_store(&stop, 0);
	for (uintptr_t i = 0; i < NWORKERS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(i + 1)) != 0)
			die("pthread_create");
	if (with_inspector &&
	    pthread_create(&t[NWORKERS], NULL, inspector, NULL) != 0)
		die("pthread_create");
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, 1);
	for (int i = 0; i < NWORKERS + with_inspector; i++)
		pthread_join(t[i], NULL);
}

static void
run_churn(void)
{
	double end = now() + seconds;
	uintptr_t n = 0;
	while (now() < end) {
		pthread_t t[6];
		for (int i = 0; i < 6; i++)
			if (pthread_create(&t[i], NULL, ephemeral,
			    (void *)++n) != 0)
				die("pthread_create");
		for (int i = 0; i < 6; i++)
			pthread_join(t[i], NULL);
	}
	fprintf(stderr, "san_stress: churn: %lu threads\n", (unsigned long)n);
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "all";
	if (argc > 2)
		seconds = atof(argv[2]);
	alarm((unsigned)(seconds * 3 + 120));	/* a deadlock fails */
	int all = strcmp(mode, "all") == 0;
	int known = 0;
	if (all || strcmp(mode, "xfree") == 0) {
		run_workers(0);
		final_checks("xfree");
		known = 1;
	}
	if (all || strcmp(mode, "churn") == 0) {
		run_churn();
		final_checks("churn");
		known = 1;
	}
	if (all || strcmp(mode, "check") == 0) {
		run_workers(1);
		final_checks("check");
		known = 1;
	}
	if (all || strcmp(mode, "huge") == 0) {
		run_huge();
		final_checks("huge");
		known = 1;
	}
	if (!known) {
		fprintf(stderr, "usage: %s xfree|churn|check|huge|all "
		    "[seconds]\n",
		    argv[0]);
		return 2;
	}
	fprintf(stderr, "san_stress: %s: ok\n", mode);
	return 0;
}
