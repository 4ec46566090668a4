/* Slab bitmap: pop/push bookkeeping, detection of double and interior
 * frees, full/empty transitions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base.h"
#include "slab.h"
#include "pcmalloc.h"

static _Alignas(4096) char memory[16 * 4096];
static span_t s PC_ALIGNED(64);

static void
test_pop_push_all(void **state)
{
	(void)state;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		s = (span_t){ .base = (uintptr_t)memory,
		    .npages = sc_table[sc].npages };
		slab_init(&s, sc);
		unsigned nobjs = sc_table[sc].nobjs;
		assert_true(slab_is_empty(&s));
		void *out[SC_MAX_OBJS];
		unsigned got = slab_pop(&s, out, SC_MAX_OBJS);
		assert_int_equal(got, nobjs);
		assert_true(slab_is_full(&s));
		for (unsigned i = 0; i < got; i++) {
			/* Distinct, in order, inside the slab, aligned. */
			assert_int_equal((char *)out[i] - memory,
			    (size_t)i * sc_size(sc));
			assert_int_equal((uintptr_t)out[i] % 16, 0);
		}
		for (unsigned i = 0; i < got; i++)
			assert_int_equal(slab_push(&s, out[i]), SLAB_FREED);
		assert_true(slab_is_empty(&s));
	}
}

static void
test_bad_frees(void **state)
{
	(void)state;
	unsigned sc = sc_index(48);
	s = (span_t){ .base = (uintptr_t)memory, .npages = 1 };
	slab_init(&s, sc);
	void *out[4];
	assert_int_equal(slab_pop(&s, out, 4), 4);
	assert_int_equal(slab_push(&s, out[1]), SLAB_FREED);
	assert_int_equal(slab_push(&s, out[1]), SLAB_DOUBLE_FREE);
	assert_int_equal(slab_push(&s, (char *)out[2] + 16), SLAB_INTERIOR);
	/* Never handed out: still free. */
	assert_int_equal(slab_push(&s, memory + 48 * 10), SLAB_DOUBLE_FREE);
	assert_int_equal(s.nfree, sc_table[sc].nobjs - 3);
}

static void
test_partial_pop(void **state)
{
	(void)state;
	unsigned sc = 0;
	s = (span_t){ .base = (uintptr_t)memory, .npages = 1 };
	slab_init(&s, sc);
	void *out[SC_MAX_OBJS];
	assert_int_equal(slab_pop(&s, out, 70), 70);
	for (unsigned i = 0; i < 70; i++)
		assert_ptr_equal(out[i], memory + 16 * i);
	assert_int_equal(slab_push(&s, out[3]), SLAB_FREED);
	assert_int_equal(slab_push(&s, out[65]), SLAB_FREED);
	void *again[2];
	assert_int_equal(slab_pop(&s, again, 2), 2);
	assert_ptr_equal(again[0], out[3]);
	assert_ptr_equal(again[1], out[65]);
	/* A whole free word taken in part, then the rest of it and more:
	 * every object once, in order. */
	slab_init(&s, sc);
	assert_int_equal(slab_pop(&s, out, 10), 10);
	assert_int_equal(slab_pop(&s, out + 10, 60), 60);
	assert_int_equal(slab_pop(&s, out + 70, 64), 64);
	for (unsigned i = 0; i < 134; i++)
		assert_ptr_equal(out[i], memory + 16 * i);
	assert_int_equal(s.nfree, sc_table[sc].nobjs - 134);
}

/* Debug mode's side array belongs to the slab: junk-filled pages and an
 * array of requested sizes on init, the array recycled on fini. */
static void
test_debug_side_array(void **state)
{
	(void)state;
	static span_t d PC_ALIGNED(64);
	unsigned sc = sc_index(64);
	size_t bytes = (size_t)sc_table[sc].npages << PC_PAGE_SHIFT;
	unsigned char *pages = base_map(bytes);	/* any page-aligned memory */
	assert_non_null(pages);
	d.base = (uintptr_t)pages;
	d.npages = sc_table[sc].npages;
	d.kind = SPAN_SLAB;
	slab_init(&d, sc);
	assert_int_equal(slab_debug_init(&d), 0);
	assert_non_null(d.dbg_sizes);
	for (size_t i = 0; i < bytes; i++)
		assert_int_equal(pages[i], SLAB_DEBUG_JUNK);
	d.dbg_sizes[SC_MAX_OBJS - 1] = 5;	/* room for every object */
	uint32_t *a = d.dbg_sizes;
	slab_debug_fini(&d);
	assert_null(d.dbg_sizes);
	slab_debug_fini(&d);	/* none: nothing to do */
	assert_int_equal(slab_debug_init(&d), 0);
	assert_ptr_equal(d.dbg_sizes, a);	/* recycled */
	slab_debug_fini(&d);
	base_unmap(pages, bytes);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_push_all),
		cmocka_unit_test(test_bad_frees),
		cmocka_unit_test(test_partial_pop),
		cmocka_unit_test(test_debug_side_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
