/* The sampler (src/sample.c): the countdown's rate, zero-initialised
 * threads, sampled blocks as page extents on every entry point, and the
 * free path dropping them from the live view. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pcmalloc.h"
#include "report.h"
#include "conf.h"
#include "pagemap.h"
#include "prof.h"
#include "sample.h"
#include "guard.h"

static uint64_t
live_samples(void)
{
	prof_totals_t t;
	prof_totals(&t);
	return t.live;
}

/* Sampled: a page extent, not a slab block. */
static bool
is_extent(void *p)
{
	return (pagemap_lookup(p) & PM_SC_MASK) == 0;
}

static void
test_sample_weight(void **state)
{
	(void)state;
	size_t m = 1 << 20;
	double w = sample_weight(m, m);	/* 1 / (1 - 1/e) */
	assert_true(w > 1.5819 && w < 1.5820);
	w = sample_weight(1, m);	/* about m */
	assert_true(w > m * 0.999 && w < m * 1.001);
	w = sample_weight(64 * m, m);
	assert_true(w >= 1.0 && w < 1.0000001);
	w = sample_weight(m / 10, m);	/* 1 / (1 - e^-0.1) = 10.508 */
	assert_true(w > 10.50 && w < 10.51);
}

static void
test_sample_entry_points(void **state)
{
	(void)state;
	uint64_t live = live_samples();
	uint64_t n = sample_count();

	sample_next_now();
	void *p = malloc(24);
	assert_non_null(p);
	assert_int_equal(sample_count(), n + 1);
	assert_true(is_extent(p));
	assert_true(malloc_usable_size(p) >= PC_PAGE);	/* the extent */
	memset(p, 7, malloc_usable_size(p));
	assert_int_equal(live_samples(), live + 1);

	sample_next_now();
	unsigned char *c = calloc(100, 3);
	assert_non_null(c);
	assert_true(is_extent(c));
	for (int i = 0; i < 300; i++)
		assert_int_equal(c[i], 0);

	sample_next_now();
	void *a = NULL;
	assert_int_equal(posix_memalign(&a, 8192, 40), 0);
	assert_true(is_extent(a));
	assert_int_equal((uintptr_t)a % 8192, 0);

	sample_next_now();
	void *big = malloc(100000);
	assert_true(is_extent(big));

	/* realloc growth is an allocation: it is counted down too. */
	void *r = malloc(32);
	memset(r, 9, 32);
	sample_next_now();
	r = realloc(r, 5000);
	assert_true(is_extent(r));
	assert_int_equal(((unsigned char *)r)[31], 9);
	assert_int_equal(sample_count(), n + 5);
	assert_int_equal(live_samples(), live + 5);

	/* A sampled block grows and shrinks like any large block. */
	p = realloc(p, 3000);
	assert_int_equal(((unsigned char *)p)[23], 7);
	free(p);
	free(c);
	free(a);
	free(big);
	free(r);
	assert_int_equal(live_samples(), live);
}

static void
test_sample_rate(void **state)
{
	(void)state;
	size_t saved = opt_prof_sample;
	opt_prof_sample = 4096;
	sample_next_now();	/* re-arm with the new mean */
	free(malloc(8));
	uint64_t n0 = sample_count();
	enum { N = 100000, SZ = 64 };
	static void *keep[N];
	for (int i = 0; i < N; i++)
		keep[i] = malloc(SZ);
	double expect = (double)N * SZ / 4096;	/* 1562.5 */
	double got = (double)(sample_count() - n0);
	for (int i = 0; i < N; i++)
		free(keep[i]);
	opt_prof_sample = saved;
	sample_next_now();
	free(malloc(8));
	/* Poisson: sd ~ 40; 5 sd either way. */
	assert_true(got > expect - 200 && got < expect + 200);
}

static void *
fresh_thread(void *arg)
{
	uint64_t *n = arg;
	uint64_t before = sample_count();
	/* The first allocation of a thread only arms its countdown. */
	void *p = malloc(16);
	*n = sample_count() - before;
	free(p);
	assert_false(sample_busy());
	return NULL;
}

static void
test_sample_new_thread(void **state)
{
	(void)state;
	uint64_t n = 99;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fresh_thread, &n), 0);
	pthread_join(t, NULL);
	assert_int_equal(n, 0);
}

static void
test_sample_misuse(void **state)
{
	(void)state;
	size_t saved = opt_abort_on_error;
	opt_abort_on_error = 0;
	uint64_t live = live_samples();
	sample_next_now();
	char *p = malloc(48);
	assert_true(is_extent(p));
	uint64_t reports = pc_misuse_reports;
	free(p + 16);	/* interior: reported, nothing freed */
	assert_int_equal(pc_misuse_reports, reports + 1);
	assert_int_equal(live_samples(), live + 1);
	free(p);
	assert_int_equal(live_samples(), live);
	free(p);	/* double free: reported */
	assert_int_equal(pc_misuse_reports, reports + 2);
	opt_abort_on_error = saved;
}

/* A guarded sample is one of the profiler's samples too: counted, live
 * until freed, by free and by realloc. */
static void
test_sample_guarded_in_profile(void **state)
{
	(void)state;
	size_t saved = opt_guard_sample;
	opt_guard_sample = 1;	/* the guard takes every sample it can */
	uint64_t live = live_samples();
	uint64_t n = sample_count();
	sample_next_now();
	char *p = malloc(40);
	assert_true(guard_owns(p));
	assert_int_equal(sample_count(), n + 1);
	assert_int_equal(live_samples(), live + 1);
	sample_next_now();
	char *q = malloc(24);
	assert_true(guard_owns(q));
	assert_int_equal(live_samples(), live + 2);
	free(p);
	assert_int_equal(live_samples(), live + 1);
	SAMPLE_LEFT = INT64_MAX;	/* the new block is not sampled */
	q = realloc(q, 100000);	/* a guarded block always moves */
	assert_false(guard_owns(q));
	assert_int_equal(live_samples(), live);
	free(q);
	opt_guard_sample = saved;
}

int
main(void)
{
	free(malloc(1));	/* initialise, then profile from here on */
	opt_prof = 1;
	/* The profiler alone: a guarded sample is not a page extent. */
	opt_guard_sample = 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_weight),
		cmocka_unit_test(test_sample_entry_points),
		cmocka_unit_test(test_sample_rate),
		cmocka_unit_test(test_sample_new_thread),
		cmocka_unit_test(test_sample_misuse),
		cmocka_unit_test(test_sample_guarded_in_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
