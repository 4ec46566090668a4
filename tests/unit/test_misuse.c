/* Misuse is reported, never silent: double frees (immediate, delayed,
 * large), frees of interior pointers and of foreign pointers.  Misuse of
 * our blocks aborts by default and only warns with abort_on_error:false;
 * a foreign pointer is reported and left alone.  Each case runs in a child
 * so an abort is observable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <pthread.h>
#include <cmocka.h>

#include "pcmalloc.h"
#include "run_self.h"
#include "debug.h"
#include "tcache.h"
#include "nursery.h"

static void *volatile sink;

void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

/* ---- Small-block misuse (issue 11) ----------------------------------- */

#define SLAB_PAGE(p) ((char *)((uintptr_t)(p) & ~(uintptr_t)4095))

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * After misuse (warn mode): `n` new blocks of `size` bytes overlap neither
 * each other nor the blocks still live[] (each `size` bytes) nor `bad`,
 * and pc_check() finds the heap consistent.  Exit codes name the failure.
 */
static int
heap_ok(size_t size, void *const *live, size_t nlive, const void *bad)
{
	enum { N = 400 };
	void *v[N + 8];
	size_t k = 0;
	for (size_t i = 0; i < nlive; i++)
		v[k++] = live[i];
	for (int i = 0; i < N; i++) {
		void *p = malloc(size);
		if (p == NULL)
			return 10;
		if (bad != NULL && p == bad)
			return 11;	/* the misused pointer handed out */
		memset(p, 0x5a, size);
		v[k++] = p;
	}
	qsort(v, k, sizeof(v[0]), cmp_ptr);
	for (size_t i = 0; i + 1 < k; i++)
		if ((char *)v[i] + size > (char *)v[i + 1])
			return 12;	/* two blocks overlap */
	for (size_t i = 0; i < k; i++) {
		bool is_live = false;
		for (size_t j = 0; j < nlive; j++)
			is_live |= v[i] == live[j];
		if (!is_live)
			free(v[i]);
	}
	return pc_check() == 0 ? 0 : 13;
}

/* Cache pointer p (class of `size`) without any check, as a build without
 * the free-time checks, or a race, could leave it.  The caller has set the
 * cache up (a malloc and free of that size). */
static void
cache_raw(void *p, size_t size)
{
	TCACHE_OP_BEGIN();
	tbin_t *b = TBIN(TCACHE_GET(), sc_index(size));
	if (b->n < b->cap)
		b->slots[b->n++] = p;
	TCACHE_OP_END();
}

struct pair_arg {
	void *p;
	pthread_barrier_t *bar;
};

static void *
free_racer(void *arg)
{
	struct pair_arg *a = arg;
	pthread_barrier_wait(a->bar);
	free(a->p);
	return NULL;	/* thread exit flushes the cache */
}

static void *
free_and_wait(void *arg)
{
	struct pair_arg *a = arg;
	free(a->p);
	pthread_barrier_wait(a->bar);	/* p cached here */
	pthread_barrier_wait(a->bar);	/* then exit: flush */
	return NULL;
}

/* Frees a block the main thread cached, then allocates one. */
struct cross_arg {
	void *p, *got;
	pthread_barrier_t *bar;
};

static void *
free_cached_elsewhere(void *arg)
{
	struct cross_arg *a = arg;
	pthread_barrier_wait(a->bar);	/* p is in the main thread's cache */
	free(a->p);
	a->got = malloc(64);
	pthread_barrier_wait(a->bar);
	pthread_barrier_wait(a->bar);	/* then exit: flush */
	return NULL;
}

/* A thread's last destructor, run after its cache is gone: its blocks
 * come from the slabs, where earlier cached lives left the mark. */
static pthread_key_t late_key;
static bool late_cacheless;

static void
late_destructor(void *v)
{
	(void)v;
	TCACHE_OP_BEGIN();
	late_cacheless = TBIN(TCACHE_GET(), 0)->slots == NULL;
	TCACHE_OP_END();
	for (int i = 0; i < 300; i++) {
		void *p = malloc(64);
		memset(p, 1, 8);	/* not the second word */
		free(p);
	}
}

static void *
late_thread(void *arg)
{
	(void)arg;
	free(malloc(64));
	pthread_setspecific(late_key, (void *)1);
	return NULL;
}

static int
small_child(const char *mode)
{
	if (strcmp(mode, "interior_reuse") == 0) {
		char *p = malloc(64);
		fprintf(stderr, "label %p\n", (void *)&&here);
here:
		free(p + 16);
		void *live[] = { p };
		return heap_ok(64, live, 1, p + 16);
	}
	if (strcmp(mode, "past_end") == 0) {
		/* 80-byte class: 51 objects in one page, 16 bytes left. */
		char *p = malloc(80);
		char *end = SLAB_PAGE(p) + 51 * 80;
		free(end);
		void *live[] = { p };
		return heap_ok(80, live, 1, end);
	}
	if (strcmp(mode, "never_allocated") == 0) {
		/* The refill gave us the lowest of the objects it took;
		 * the rest wait in the cache just above p.  The object
		 * above those is still free in the slab. */
		char *p = malloc(48);
		const span_t *s = pagemap_span(pagemap_lookup(p));
		char *q = p + (TBIN(TCACHE_GET(), sc_index(48))->n + 1) * 48;
		if (s == NULL || q + 48 > (char *)s->base + s->npages * 4096)
			return 20;
		free(q);
		void *live[] = { p };
		return heap_ok(48, live, 1, NULL);
	}
	if (strcmp(mode, "cached_double") == 0) {
		void *p = malloc(64), *q = malloc(64);
		free(p);
		free(q);
		free(p);
		return heap_ok(64, NULL, 0, NULL);
	}
	if (strcmp(mode, "stale_reused_page") == 0) {
		/* A freed large block's pages become a 16-byte slab whose
		 * first blocks the refill put in this thread's cache: the
		 * stale pointer names one of them (found by the fuzzer).
		 * The refill hands out the slab's first block (p again, live
		 * as q), so the stale pointer is the old block's second
		 * 16 bytes, the first block left in the cache. */
		char *p = malloc(232768);
		free(p);
		void *q = malloc(10);
		free(p + 16);
		void *live[] = { q };
		return heap_ok(16, live, 1, NULL);
	}
	if (strcmp(mode, "slab_double") == 0) {
		void *keep = malloc(64), *p = malloc(64);
		free(p);
		malloc_trim(0);	/* p is back in its slab */
		free(p);
		void *live[] = { keep };
		return heap_ok(64, live, 1, NULL);
	}
	if (strcmp(mode, "stale_other_class") == 0) {
		/* A 48-byte block, live, cached in the 64-byte bin. */
		free(malloc(64));
		void *x = malloc(48);
		cache_raw(x, 64);
		malloc_trim(0);
		void *live[] = { x };
		int r = heap_ok(48, live, 1, NULL);
		return r ? r : heap_ok(64, live, 1, x);
	}
	if (strcmp(mode, "stale_unmapped") == 0) {
		static char buf[64] __attribute__((aligned(64)));
		int local;
		free(malloc(64));
		cache_raw(buf, 64);
		cache_raw(&local, 64);
		cache_raw((void *)(uintptr_t)0x1000, 64);
		malloc_trim(0);
		return heap_ok(64, NULL, 0, buf);
	}
	if (strcmp(mode, "stale_free_run") == 0) {
		free(malloc(64));
		void *big = malloc(100000);
		free(big);	/* now a free run of an arena */
		cache_raw(big, 64);
		malloc_trim(0);
		return heap_ok(64, NULL, 0, big);
	}
	if (strcmp(mode, "realloc_interior") == 0) {
		char *p = malloc(64);
		memset(p, 7, 64);
		void *q = realloc(p + 16, 200);
		if (q != NULL)
			return 21;
		for (int i = 0; i < 64; i++)
			if (p[i] != 7)
				return 22;
		void *live[] = { p };
		return heap_ok(64, live, 1, p + 16);
	}
	if (strcmp(mode, "realloc_freed") == 0 ||
	    strcmp(mode, "realloc_freed_move") == 0) {
		void *p = malloc(64);
		free(p);
		void *q = realloc(p, mode[13] ? 200 : 64);
		if (q != NULL)
			return 21;
		return heap_ok(64, NULL, 0, NULL);
	}
	if (strcmp(mode, "usable_slab_freed") == 0) {
		/* As realloc_slab_freed: only the bitmap has it free. */
		void *keep = malloc(64), *p = malloc(64);
		free(p);
		malloc_trim(0);
		memset(p, 0, 64);
		if (malloc_usable_size(p) != 0)
			return 21;
		void *live[] = { keep };
		return heap_ok(64, live, 1, NULL);
	}
	if (strcmp(mode, "realloc_slab_freed") == 0 ||
	    strcmp(mode, "realloc_slab_freed_move") == 0) {
		/* Freed and back in its slab, and written after that (the
		 * cache mark gone): only the slab's bitmap has it free. */
		void *keep = malloc(64), *p = malloc(64);
		free(p);
		malloc_trim(0);
		memset(p, 0, 64);
		void *q = realloc(p, mode[18] ? 200 : 64);
		if (q != NULL)
			return 21;
		void *live[] = { keep };
		return heap_ok(64, live, 1, NULL);
	}
	if (strcmp(mode, "usable_interior") == 0) {
		char *p = malloc(64);
		size_t u = malloc_usable_size(p + 16);
		if (u != 0)
			return 21;
		if (malloc_usable_size(p) != 64)
			return 22;
		free(p);
		return heap_ok(64, NULL, 0, NULL);
	}
	if (strcmp(mode, "sized_smaller") == 0 ||
	    strcmp(mode, "sized_larger") == 0) {
		/* 96 bytes: no alignment picks this class for 16 bytes. */
		void *p = malloc(96);
		free_sized(p, mode[6] == 's' ? 16 : 100);
		return heap_ok(96, NULL, 0, NULL);
	}
	if (strcmp(mode, "sized_right") == 0) {
		/* Sizes that are right report nothing. */
		for (size_t n = 1; n <= 4096; n++) {
			free_sized(malloc(n), n);
			void *p = aligned_alloc(64, n);
			free_aligned_sized(p, 64, n);
			p = aligned_alloc(256, n);
			free_sized(p, n);
		}
		return heap_ok(64, NULL, 0, NULL);
	}
	if (strcmp(mode, "debug_past_end") == 0) {
		/* debug:true, 72 bytes -> 80-byte class; a block of the
		 * page after the slab must not be junk-filled. */
		char *p = malloc(72);
		char *end = SLAB_PAGE(p) + 51 * 80;
		char *next = malloc(100);
		memset(next, 0x11, 100);
		debug_free_small(end, sc_index(80));
		if (next == SLAB_PAGE(p) + 4096)
			for (int i = 0; i < 100; i++)
				if ((unsigned char)next[i] != 0x11)
					return 23;
		free(next);
		free(p);
		return pc_check() == 0 ? 0 : 13;
	}
	if (strcmp(mode, "two_threads") == 0) {
		for (int round = 0; round < 100; round++) {
			void *p = malloc(64);
			pthread_barrier_t bar;
			pthread_barrier_init(&bar, NULL, 2);
			struct pair_arg a = { p, &bar };
			pthread_t t1, t2;
			pthread_create(&t1, NULL, free_racer, &a);
			pthread_create(&t2, NULL, free_racer, &a);
			pthread_join(t1, NULL);
			pthread_join(t2, NULL);
			pthread_barrier_destroy(&bar);
			int r = heap_ok(64, NULL, 0, NULL);
			if (r)
				return r;
		}
		return 0;
	}
	if (strcmp(mode, "cross_thread_free") == 0) {
		/* Freed here, then by another thread while it waits in this
		 * thread's cache: reported at that call, so the two threads
		 * never both hand it out. */
		void *keep = malloc(64), *p = malloc(64);
		free(p);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 2);
		struct cross_arg a = { p, NULL, &bar };
		pthread_t t;
		pthread_create(&t, NULL, free_cached_elsewhere, &a);
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar);
		void *mine = malloc(64);
		if (mine == a.got)
			return 20;
		pthread_barrier_wait(&bar);
		pthread_join(t, NULL);
		void *live[] = { keep, mine };
		return heap_ok(64, live, 2, NULL);
	}
	if (strcmp(mode, "pending_double") == 0) {
		/* A block that left this thread's cache in a remote batch
		 * keeps the mark and is not free in its bitmap until its bin
		 * takes the batch: taken out of the cache raw here, as a
		 * flush to another arena's bin leaves it. */
		void *keep = malloc(64), *p = malloc(64);
		free(p);
		TCACHE_OP_BEGIN();
		tbin_t *b = TBIN(TCACHE_GET(), sc_index(64));
		bool top = b->n > 0 && b->slots[b->n - 1] == p;
		if (top)
			b->n--;
		TCACHE_OP_END();
		if (!top)
			return 20;
		free(p);
		void *live[] = { keep };
		return heap_ok(64, live, 1, p);
	}
	if (strcmp(mode, "moved_mark") == 0) {
		/* A freed block's mark, copied into the second word of live
		 * blocks (stale bytes moved by the program): they are
		 * freed, reallocated and measured without a report. */
		void *a = malloc(64), *q = malloc(64), *r = malloc(64),
		    *r2 = malloc(64);
		free(a);
		uintptr_t mark = ((uintptr_t *)a)[1];
		if (mark == 0)
			return 20;
		((uintptr_t *)q)[1] = mark;
		((uintptr_t *)r)[1] = mark;
		((uintptr_t *)r2)[1] = mark;
		free(q);
		if (realloc(r, 64) != r || malloc_usable_size(r2) != 64)
			return 22;
		free(r);
		free(r2);
		return heap_ok(64, NULL, 0, NULL);
	}
	if (strcmp(mode, "late_destructor") == 0) {
		/* Blocks that waited in a cache (keyed) go back to their
		 * slabs, which stay; a thread without a cache then takes
		 * them one by one and frees them: no report. */
		enum { N = 300 };
		void *keep = malloc(64), *v[N];
		for (int i = 0; i < N; i++)
			v[i] = malloc(64);
		for (int i = 0; i < N; i++)
			free(v[i]);
		malloc_trim(0);
		if (TCACHE_KEY_WORD(v[0]) != TCACHE_KEY_OF(v[0]))
			return 20;	/* no marked block left in a slab */
		pthread_key_create(&late_key, late_destructor);
		pthread_t t;
		pthread_create(&t, NULL, late_thread, NULL);
		pthread_join(t, NULL);
		if (!late_cacheless)
			return 21;	/* the destructor ran with a cache */
		void *live[] = { keep };
		return heap_ok(64, live, 1, NULL);
	}
	if (strcmp(mode, "cross_cached") == 0) {
		/* The same block in two threads' caches, freed by both at
		 * the same instant (the mark the first free wrote not yet
		 * seen, simulated by clearing it): the second copy is caught
		 * when it reaches the slab. */
		void *p = malloc(64);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 2);
		struct pair_arg a = { p, &bar };
		pthread_t t;
		pthread_create(&t, NULL, free_and_wait, &a);
		pthread_barrier_wait(&bar);
		TCACHE_KEY_WORD(p) = 0;
		free(p);
		malloc_trim(0);
		pthread_barrier_wait(&bar);
		pthread_join(t, NULL);
		malloc_trim(0);
		return heap_ok(64, NULL, 0, NULL);
	}
	return -1;
}

static int
child(const char *mode)
{
	int r = small_child(mode);
	if (r != -1)
		return r;
	if (strcmp(mode, "immediate") == 0) {
		void *p = malloc(48);
		free(p);
		free(p);
	} else if (strcmp(mode, "delayed") == 0) {
		void *p = malloc(48), *q = malloc(48);
		free(p);
		free(q);
		free(p);
		malloc_trim(0);	/* flushes this thread's cache */
	} else if (strcmp(mode, "large") == 0) {
		void *p = malloc(100000);
		free(p);
		free(p);
	} else if (strcmp(mode, "huge") == 0) {
		char *p = malloc((size_t)80 << 20);
		free(p + 4096);
		free(p);
	} else if (strcmp(mode, "interior") == 0) {
		char *p = malloc(64);
		free(p + 16);
		malloc_trim(0);
	} else if (strcmp(mode, "foreign") == 0) {
		static char buf[64];
		free(buf);
		free(buf + 8);
		sink = realloc(buf, 10);
		if (sink != NULL)
			return 2;
	}
	/* The heap still works. */
	for (int i = 0; i < 1000; i++)
		sink = malloc((size_t)i * 3), free(sink);
	return 0;
}

static void
expect_conf(const char *mode, const char *message, bool aborts_by_default,
    const char *conf)
{
	/* Big enough for every report of the two-thread rounds: the child
	 * dies of SIGPIPE if we stop reading. */
	static char err[65536];
	int st;
	char warn[128];
	snprintf(warn, sizeof(warn), "%s%sabort_on_error:false",
	    conf ? conf : "", conf ? "," : "");
	run_self(mode, conf, &st, err, sizeof(err));
	if (strstr(err, message) == NULL)
		fail_msg("%s: no \"%s\" in stderr: %s", mode, message, err);
	if (aborts_by_default) {
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
			fail_msg("%s: expected an abort, status %d", mode, st);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fail_msg("%s: expected exit 0, status %d: %s", mode, st, err);
	}
	/* Warn-only mode: reported, and the program goes on. */
	run_self(mode, warn, &st, err, sizeof(err));
	if (strstr(err, message) == NULL)
		fail_msg("%s (warn): no \"%s\" in stderr: %s", mode, message,
		    err);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s (warn): expected exit 0, status %d: %s", mode, st,
		    err);
}

static void
expect(const char *mode, const char *message, bool aborts_by_default)
{
	expect_conf(mode, message, aborts_by_default, NULL);
}

static void test_immediate(void **s) { (void)s; expect("immediate", "pcmalloc: double free of 0x", true); }
static void test_delayed(void **s) { (void)s; expect("delayed", "pcmalloc: double free of 0x", true); }
static void test_large(void **s) { (void)s; expect("large", "pcmalloc: double free of 0x", true); }
static void test_huge_interior(void **s) { (void)s; expect("huge", "pcmalloc: free of a pointer inside a block, 0x", true); }
static void test_interior(void **s) { (void)s; expect("interior", "pcmalloc: free of an interior pointer 0x", true); }
static void test_foreign(void **s) { (void)s; expect("foreign", "pcmalloc: free of foreign pointer 0x", false); }

static void
test_size_class_named(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("immediate", "abort_on_error:false", &st, err, sizeof(err));
	assert_non_null(strstr(err, "(48-byte block"));
}

/* The report names the pointer, its block and the caller: the caller is
 * the child's own code, right after the label it printed. */
static void
test_interior_reuse(void **state)
{
	(void)state;
	expect("interior_reuse", "-byte block at 0x", true);
	char err[4096];
	int st;
	run_self("interior_reuse", "abort_on_error:false", &st, err,
	    sizeof(err));
	const char *l = strstr(err, "label 0x");
	const char *c = strstr(err, ", called from 0x");
	const char *m = strstr(err, "free of an interior pointer 0x");
	assert_non_null(l);
	assert_non_null(c);
	assert_non_null(m);
	uintptr_t label = strtoull(l + 6, NULL, 16);
	uintptr_t caller = strtoull(c + 14, NULL, 16);
	uintptr_t ptr = strtoull(m + 28, NULL, 16);
	uintptr_t block = strtoull(strstr(m, "block at ") + 9, NULL, 16);
	assert_int_equal(ptr, block + 16);
	assert_true(caller > label && caller < label + 64);
	assert_non_null(strstr(err, "(64-byte block at 0x"));
}

static void test_past_end(void **s) { (void)s; expect("past_end", "pcmalloc: free of an invalid pointer 0x", true); }
static void test_past_end_msg(void **s) { (void)s; expect("past_end", "(past the last 80-byte block of the slab at 0x", true); }
static void test_never_allocated(void **s) { (void)s; expect("never_allocated", "pcmalloc: double free of 0x", true); }
static void test_never_allocated_msg(void **s) { (void)s; expect("never_allocated", "free in its slab", true); }
static void test_cached_double(void **s) { (void)s; expect("cached_double", "already in this thread's cache), called from 0x", true); }
static void test_stale_reused_page(void **s) { (void)s; expect("stale_reused_page", "already in this thread's cache), called from 0x", true); }
static void test_slab_double(void **s) { (void)s; expect("slab_double", "-byte block, free in its slab", true); }
static void test_stale_other_class(void **s) { (void)s; expect("stale_other_class", "in a thread cache of 64-byte blocks", true); }
static void test_stale_unmapped(void **s) { (void)s; expect("stale_unmapped", "in a thread cache of 64-byte blocks", true); }
static void test_stale_free_run(void **s) { (void)s; expect("stale_free_run", "in a thread cache of 64-byte blocks", true); }
static void test_realloc_interior(void **s) { (void)s; expect("realloc_interior", "pcmalloc: realloc of an interior pointer 0x", true); }
static void test_realloc_freed(void **s) { (void)s; expect("realloc_freed", "pcmalloc: realloc of a freed block 0x", true); }
static void test_realloc_freed_move(void **s) { (void)s; expect("realloc_freed_move", "pcmalloc: realloc of a freed block 0x", true); }
static void test_realloc_slab_freed(void **s) { (void)s; expect("realloc_slab_freed", "pcmalloc: realloc of a freed block 0x", true); }
static void test_realloc_slab_freed_move(void **s) { (void)s; expect("realloc_slab_freed_move", "pcmalloc: realloc of a freed block 0x", true); }
static void test_usable_slab_freed(void **s) { (void)s; expect("usable_slab_freed", "pcmalloc: malloc_usable_size of a freed block 0x", true); }
static void test_usable_interior(void **s) { (void)s; expect("usable_interior", "pcmalloc: malloc_usable_size of an interior pointer 0x", true); }
static void test_sized_smaller(void **s) { (void)s; expect("sized_smaller", "with a wrong size 16 (96-byte block)", true); }
static void test_sized_larger(void **s) { (void)s; expect("sized_larger", "with a wrong size 100 (96-byte block)", true); }
static void test_debug_past_end(void **s) { (void)s; expect_conf("debug_past_end", "past the last 80-byte block", true, "debug:true"); }
static void test_cross_cached(void **s) { (void)s; expect("cross_cached", "found when a thread cache was flushed", true); }
static void test_cross_thread_free(void **s) { (void)s; expect("cross_thread_free", "-byte block, already freed: waiting in another thread's cache", true); }
static void test_pending_double(void **s) { (void)s; expect("pending_double", "-byte block, already freed: waiting in another thread's cache, or on its way back to its slab)", true); }
/* Legal use: exit 0, and no report. */
static void
expect_clean(const char *mode)
{
	static char err[65536];
	int st;
	run_self(mode, NULL, &st, err, sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(err, "pcmalloc:"))
		fail_msg("%s: status %d: %s", mode, st, err);
}

static void test_late_destructor(void **s) { (void)s; expect_clean("late_destructor"); }
static void test_moved_mark(void **s) { (void)s; expect_clean("moved_mark"); }

static void test_two_threads(void **s) { (void)s; expect("two_threads", "pcmalloc: double free of 0x", true); }

static void
test_sized_right(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("sized_right", NULL, &st, err, sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || err[0] != '\0')
		fail_msg("status %d: %s", st, err);
}

int
main(int argc, char **argv)
{
	/* Slab blocks from the first malloc on, not the nursery's. */
	nursery_close();
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_immediate),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_huge_interior),
		cmocka_unit_test(test_interior),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_size_class_named),
		cmocka_unit_test(test_interior_reuse),
		cmocka_unit_test(test_past_end),
		cmocka_unit_test(test_past_end_msg),
		cmocka_unit_test(test_never_allocated),
		cmocka_unit_test(test_never_allocated_msg),
		cmocka_unit_test(test_cached_double),
		cmocka_unit_test(test_stale_reused_page),
		cmocka_unit_test(test_slab_double),
		cmocka_unit_test(test_stale_other_class),
		cmocka_unit_test(test_stale_unmapped),
		cmocka_unit_test(test_stale_free_run),
		cmocka_unit_test(test_realloc_interior),
		cmocka_unit_test(test_realloc_freed),
		cmocka_unit_test(test_realloc_freed_move),
		cmocka_unit_test(test_realloc_slab_freed),
		cmocka_unit_test(test_realloc_slab_freed_move),
		cmocka_unit_test(test_usable_interior),
		cmocka_unit_test(test_usable_slab_freed),
		cmocka_unit_test(test_sized_smaller),
		cmocka_unit_test(test_sized_larger),
		cmocka_unit_test(test_sized_right),
		cmocka_unit_test(test_debug_past_end),
		cmocka_unit_test(test_cross_cached),
		cmocka_unit_test(test_cross_thread_free),
		cmocka_unit_test(test_pending_double),
		cmocka_unit_test(test_late_destructor),
		cmocka_unit_test(test_moved_mark),
		cmocka_unit_test(test_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
