/* pc_check(): passes on a heap after mixed work from several threads, and
 * catches each kind of corruption it claims to (a checker that never
 * fails proves nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "arena.h"
#include "pagemap.h"
#include "tcache.h"
#include "pcmalloc.h"

static void *
work(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *v[512] = { 0 };
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		unsigned k = (seed >> 8) % 512;
		pc_free(v[k]);
		size_t size = (seed >> 16) % (seed & 1 ? 300 : 70000);
		v[k] = pc_malloc(size);
	}
	for (int k = 0; k < 256; k++)
		pc_free(v[k]);	/* half stays live */
	return NULL;
}

static void
test_clean_heap(void **state)
{
	(void)state;
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, work, (void *)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	work((void *)99);
	assert_int_equal(pc_check(), 0);
	pc_trim();
	assert_int_equal(pc_check(), 0);
}

static void
test_detects_bitmap_corruption(void **state)
{
	(void)state;
	void *p = pc_malloc(100);
	span_t *s = pagemap_span(pagemap_lookup(p));
	uint16_t saved = s->nfree;
	s->nfree++;
	assert_true(pc_check() > 0);
	s->nfree = saved;
	assert_int_equal(pc_check(), 0);
	pc_free(p);
}

static void
test_detects_cached_and_free(void **state)
{
	(void)state;
	void *p = pc_malloc(200);
	pc_free(p);	/* now in this thread's cache */
	span_t *s = pagemap_span(pagemap_lookup(p));
	unsigned idx = sc_obj_index(s->sc, (uintptr_t)p - s->base);
	s->bitmap[idx / 64] |= (uint64_t)1 << (idx % 64);
	s->nfree++;
	assert_true(pc_check() > 0);
	s->bitmap[idx / 64] &= ~((uint64_t)1 << (idx % 64));
	s->nfree--;
	assert_int_equal(pc_check(), 0);
}

static void
test_detects_bad_page_map(void **state)
{
	(void)state;
	char *p = pc_malloc(100000);
	span_t *s = pagemap_span(pagemap_lookup(p));
	uintptr_t page = (uintptr_t)p + 4096;
	pagemap_set(page, 1, 0);
	assert_true(pc_check() > 0);
	/* An interior page names no span (pagemap.h), not even its own. */
	pagemap_set(page, 1, (uintptr_t)s);
	assert_true(pc_check() > 0);
	pagemap_set(page, 1, PM_INTERIOR);
	assert_int_equal(pc_check(), 0);
	pc_free(p);
}

static void
test_detects_counter_drift(void **state)
{
	(void)state;
	arena_heap(&arenas[0])->dirty += 3;
	assert_true(pc_check() > 0);
	arena_heap(&arenas[0])->dirty -= 3;
	assert_int_equal(pc_check(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_heap),
		cmocka_unit_test(test_detects_bitmap_corruption),
		cmocka_unit_test(test_detects_cached_and_free),
		cmocka_unit_test(test_detects_bad_page_map),
		cmocka_unit_test(test_detects_counter_drift),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
