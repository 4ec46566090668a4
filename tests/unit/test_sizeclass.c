/* Size classes: a wrong table or index function hands out blocks smaller
 * than asked (heap overflow) or wastes memory; these catch both. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sizeclass.h"
#include "pcmalloc.h"

static void
test_sc_covers(void **state)
{
	(void)state;
	for (size_t n = 0; n <= SC_SMALL_MAX; n++) {
		unsigned sc = sc_index(n);
		assert_true(sc < SC_NSMALL);
		assert_true(sc_size(sc) >= n);
		/* The smallest class that fits. */
		if (sc > 0)
			assert_true(sc_size(sc - 1) < n);
	}
}

static void
test_sc_table(void **state)
{
	(void)state;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		const sc_info_t *c = &sc_table[sc];
		assert_int_equal(c->size % 16, 0);
		if (sc > 0)
			assert_true(c->size > sc_table[sc - 1].size);
		if (c->size > 64) {
			/* Waste under 25% of the class for the next-size
			 * request (geometric spacing). */
			assert_true((c->size - sc_table[sc - 1].size) * 4 <=
			    c->size);
		}
		/* Eight per doubling from 256 to 512 bytes and above 2 KiB
		 * (docs/design.md, "Size classes"). */
		if ((c->size > 256 && c->size <= 512) || c->size > 2048)
			assert_true((c->size - sc_table[sc - 1].size) * 8 <=
			    c->size);
		assert_true(c->nobjs >= 1 && c->nobjs <= SC_MAX_OBJS);
		/* Enough objects that a refill rarely needs a new slab. */
		assert_true(c->nobjs >= 4);
		assert_int_equal(c->nobjs, c->npages * 4096 / c->size);
		/* Tiny classes: a full bitmap, or 16 KiB. */
		if (c->size <= 64)
			assert_true(c->npages * 4096 >= 16384 ||
			    c->nobjs == SC_MAX_OBJS);
		assert_true(c->batch >= 1 && c->batch <= c->tcache_cap);
		assert_true(c->tcache_cap <= c->tcache_cap_max &&
		    c->tcache_cap_max <= 4096);
	}
	assert_int_equal(sc_table[SC_NSMALL - 1].size, SC_SMALL_MAX);
	/* The sizes the docs name: jq's objects, SQLite's buffers. */
	assert_int_equal(sc_size(sc_index(272)), 288);
	assert_int_equal(sc_size(sc_index(392)), 416);
	assert_int_equal(sc_size(sc_index(1032)), 1088);
	assert_int_equal(sc_size(sc_index(4104)), 4160);
	assert_int_equal(sc_size(sc_index(4368)), 4608);
	assert_int_equal(SC_NSMALL, 62);
}

static void
test_sc_obj_index(void **state)
{
	(void)state;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		size_t size = sc_size(sc);
		size_t bytes = (size_t)sc_table[sc].npages * 4096;
		for (size_t off = 0; off < bytes; off += 16) {
			unsigned idx = sc_obj_index(sc, off);
			assert_int_equal(idx, off / size);
		}
	}
}

/* sc_obj_start: the index of every object start below the slab's end,
 * and >= nobjs for every other offset, including past the end, below the
 * slab (wrapped) and far away. */
static void
test_sc_obj_start(void **state)
{
	(void)state;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		const sc_info_t *c = &sc_table[sc];
		size_t bytes = (size_t)c->npages * 4096;
		for (size_t off = 0; off < 2 * bytes; off++) {
			uint64_t idx = sc_obj_start(off, c->inv, c->shift);
			bool start = off % c->size == 0 &&
			    off / c->size < c->nobjs;
			if (start)
				assert_int_equal(idx, off / c->size);
			else
				assert_true(idx >= c->nobjs);
		}
		for (uint64_t k = 1; k < 100000; k++) {
			assert_true(sc_obj_start(-k, c->inv, c->shift) >=
			    c->nobjs);
			assert_true(sc_obj_start(k * c->size + ((uint64_t)1 <<
			    40), c->inv, c->shift) >= c->nobjs);
		}
	}
}

int
main(void)
{
	pc_free(pc_malloc(1));	/* initialises the tables */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sc_covers),
		cmocka_unit_test(test_sc_table),
		cmocka_unit_test(test_sc_obj_index),
		cmocka_unit_test(test_sc_obj_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
