/* Page heap: coalescing, in-place resize of large blocks, aligned
 * carving, purging and decay. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "arena.h"
#include "pageheap.h"
#include "conf.h"
#include "os.h"
#include "pagemap.h"
#include "pcmalloc.h"

/* Free or resize the live large block at p; the calls check it first. */
static void
large_free(void *p, bool purge)
{
	size_t usable;
	assert_int_equal(pageheap_large_free(p, purge, &usable), BLOCK_LIVE);
}

static int
large_resize(void *p, size_t size)
{
	size_t usable;
	int st = pageheap_large_resize(p, size, &usable);
	return st == BLOCK_LIVE && usable == size ? 0 : -1;
}

static void
test_large_coalesce(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	bool z;
	char *x = pageheap_large_alloc(a->heap, 10 * 4096, 4096, &z);
	char *y = pageheap_large_alloc(a->heap, 10 * 4096, 4096, &z);
	char *w = pageheap_large_alloc(a->heap, 10 * 4096, 4096, &z);
	assert_non_null(x);
	assert_non_null(y);
	assert_non_null(w);
	size_t active = a->heap->active;
	/* Carved front to back from one run. */
	assert_ptr_equal(y, x + 10 * 4096);
	assert_ptr_equal(w, y + 10 * 4096);
	large_free(y, false);
	assert_int_equal(pagemap_span(pagemap_lookup(y))->kind, SPAN_FREE);
	large_free(x, false);
	span_t *f = pagemap_span(pagemap_lookup(x));
	assert_int_equal(f->kind, SPAN_FREE);
	assert_ptr_equal(pagemap_span(pagemap_lookup(y)), f);	/* merged */
	assert_true(f->base <= (uintptr_t)x && f->npages >= 20);
	large_free(w, false);
	f = pagemap_span(pagemap_lookup(x));
	assert_ptr_equal(pagemap_span(pagemap_lookup(w + 9 * 4096)), f);
	assert_true(f->npages >= 30);
	assert_int_equal(a->heap->active, active - 30);
}

static void
test_large_resize(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	bool z;
	char *x = pageheap_large_alloc(a->heap, 10 * 4096, 4096, &z);
	assert_non_null(x);
	memset(x, 7, 10 * 4096);
	span_t *s = pagemap_span(pagemap_lookup(x));
	assert_int_equal(large_resize(x, 30 * 4096), 0);
	assert_int_equal(s->npages, 30);
	assert_ptr_equal(pagemap_span(pagemap_lookup(x + 29 * 4096)), s);
	memset(x, 7, 30 * 4096);
	assert_int_equal(large_resize(x, 12 * 4096), 0);
	assert_int_equal(s->npages, 12);
	assert_int_equal(pagemap_span(pagemap_lookup(x + 12 * 4096))->kind, SPAN_FREE);
	assert_int_equal(x[12 * 4096 - 1], 7);
	large_free(x, false);
}

static void
test_aligned_large(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	bool z;
	for (size_t align = 8192; align <= ((size_t)2 << 20); align <<= 1) {
		char *x = pageheap_large_alloc(a->heap, 5 * 4096, align, &z);
		assert_non_null(x);
		assert_int_equal((uintptr_t)x % align, 0);
		assert_int_equal(pagemap_span(pagemap_lookup(x))->npages, 5);
		large_free(x, false);
	}
}

static void
test_free_purged(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	bool z;
	char *x = pageheap_large_alloc(a->heap, 64 * 4096, 4096, &z);
	char *y = pageheap_large_alloc(a->heap, 64 * 4096, 4096, &z);
	assert_non_null(x);
	assert_non_null(y);
	memset(x, 1, 64 * 4096);
	size_t dirty = a->heap->dirty;
	large_free(x, true);
	/* Given back at once: not counted dirty, and reads as zero. */
	assert_int_equal(a->heap->dirty, dirty);
	assert_int_equal(pc_check(), 0);
	char *w = pageheap_large_alloc(a->heap, 64 * 4096, 4096, &z);
	assert_ptr_equal(w, x);
	assert_true(z);
	assert_int_equal(w[100], 0);
	large_free(w, false);
	large_free(y, false);
	assert_int_equal(pc_check(), 0);
}

static void
test_purge(void **state)
{
	(void)state;
	char *p = pc_malloc(500000);
	memset(p, 1, 500000);
	pc_free(p);
	assert_int_equal(pc_trim(), 1);
	size_t dirty = 0;
	for (unsigned i = 0; i < narenas; i++)
		dirty += arenas[i].heap->dirty;
	assert_int_equal(dirty, 0);
}

/* A small free next to a big dirty run does not restart the run's decay
 * clock (a program that keeps freeing there would pin the run forever):
 * the merged run's age is weighted by pages. */
static void
test_merge_keeps_age(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	bool z;
	/* Carve both from one free run, so they share a region (regions
	 * that cannot merge, as on Windows, would keep them apart). */
	char *whole = pageheap_large_alloc(a->heap, 100 * 4096, 4096, &z);
	assert_non_null(whole);
	large_free(whole, false);
	char *big = pageheap_large_alloc(a->heap, 90 * 4096, 4096, &z);
	char *small = pageheap_large_alloc(a->heap, 10 * 4096, 4096, &z);
	assert_ptr_equal(big, whole);
	assert_ptr_equal(small, big + 90 * 4096);
	memset(big, 1, 90 * 4096);
	large_free(big, false);
	uint64_t t0 = pagemap_span(pagemap_lookup(big))->dirty_ns;
	struct timespec ts = { 0, 50000000 };	/* 50 ms */
	nanosleep(&ts, NULL);
	large_free(small, false);
	uint64_t t1 = os_now_ns();
	/* Other allocations meanwhile may take the lowest pages of big's
	 * run (lowest-address fit); its top, next to small, stays free. */
	span_t *f = pagemap_span(pagemap_lookup(small));
	assert_int_equal(f->kind, SPAN_FREE);
	assert_true(f->npages >= 50);	/* merged with big's run */
	/* 90 pages (or more, with older neighbours) of age t0, 10 of age
	 * ~t1: at most about t0 + (t1 - t0) / 10, far from t1. */
	assert_true(f->dirty_ns <= t0 + (t1 - t0) / 5);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* With a tiny decay_ms, pages the program frees and takes back within the
 * reuse window are not purged (each purge would cost a page fault right
 * after), while pages left free still go back to the OS. */
static void
test_decay_spares_reused(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	size_t saved = opt_decay_ms;
	opt_decay_ms = 1;
	a->heap->next_decay_ns = 0;	/* passes were 500 ms apart until now */
	bool z;
	enum { NP = 64, ROUNDS = 100 };
	char *x = pageheap_large_alloc(a->heap, NP * 4096, 4096, &z);
	char *y = pageheap_large_alloc(a->heap, NP * 4096, 4096, &z);
	assert_non_null(x);
	assert_non_null(y);
	uint64_t before = a->heap->npurged;
	for (int i = 0; i < ROUNDS; i++) {
		memset(x, 1, NP * 4096);
		memset(y, 1, NP * 4096);
		large_free(x, false);
		sleep_ms(3);
		/* x's run is older than decay_ms now: this free's pass may
		 * purge it, only for the next line to fault it back. */
		large_free(y, false);
		x = pageheap_large_alloc(a->heap, NP * 4096, 4096, &z);
		y = pageheap_large_alloc(a->heap, NP * 4096, 4096, &z);
		assert_non_null(x);
		assert_non_null(y);
	}
	uint64_t churn = a->heap->npurged - before;
	/* Without the budget every round purges x: ROUNDS * NP pages.  A
	 * window in which this thread was preempted throughout may purge
	 * once; allow a fifth of the rounds for a loaded machine. */
	assert_true(churn <= (uint64_t)(ROUNDS / 5) * NP);
	/* Left free, the same pages do go back. */
	large_free(x, false);
	large_free(y, false);
	before = a->heap->npurged;
	for (int i = 0; i < 400 && a->heap->npurged - before < 2 * NP; i++) {
		sleep_ms(5);
		arena_decay_tick(a);
	}
	assert_true(a->heap->npurged - before >= 2 * NP);
	opt_decay_ms = saved;
}

int
main(void)
{
	/* One arena keeps the layout predictable. */
	setenv("PCMALLOC_CONF", "narenas:1", 1);
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_coalesce),
		cmocka_unit_test(test_large_resize),
		cmocka_unit_test(test_aligned_large),
		cmocka_unit_test(test_free_purged),
		cmocka_unit_test(test_merge_keeps_age),
		cmocka_unit_test(test_decay_spares_reused),
		cmocka_unit_test(test_purge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
