/* Page map: a lookup that misses, or finds a stale span, sends free() to
 * the wrong place.  Checks set/lookup, leaf boundaries, foreign addresses
 * and that live blocks of every kind are mapped to their span. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "pagemap.h"
#include "span.h"
#include "pcmalloc.h"
#include "nursery.h"

static span_t fake PC_ALIGNED(64);

static void
test_set_lookup(void **state)
{
	(void)state;
	/* A range crossing a leaf boundary, far from anything we map. */
	uintptr_t leaf_span = (uintptr_t)1 << (PC_PAGE_SHIFT + PM_LEAF_BITS);
	uintptr_t base = (uintptr_t)0x7e0000000000 + leaf_span - 4 * PC_PAGE;
	assert_int_equal(pagemap_set(base, 8, (uintptr_t)&fake | 5), 0);
	for (int i = 0; i < 8; i++) {
		uintptr_t e = pagemap_lookup((void *)(base + i * PC_PAGE + 7));
		assert_int_equal(e & ~PM_SC_MASK, (uintptr_t)&fake);
		assert_int_equal(e & PM_SC_MASK, 5);
	}
	assert_int_equal(pagemap_lookup((void *)(base - 1)), 0);
	assert_int_equal(pagemap_lookup((void *)(base + 8 * PC_PAGE)), 0);
	assert_int_equal(pagemap_set(base, 8, 0), 0);
	assert_int_equal(pagemap_lookup((void *)base), 0);
}

static void
test_foreign(void **state)
{
	(void)state;
	int local;
	static int global;
	assert_int_equal(pagemap_lookup(&local), 0);
	assert_int_equal(pagemap_lookup(&global), 0);
	assert_int_equal(pagemap_lookup(NULL), 0);
	assert_int_equal(pagemap_lookup((void *)~(uintptr_t)0), 0);
	assert_int_equal(pagemap_lookup((void *)((uintptr_t)1 << 47)), 0);
}

static void
test_live_blocks_mapped(void **state)
{
	(void)state;
	size_t sizes[] = { 1, 100, 4000, 32768, 40000, 1 << 20, 9 << 20, (size_t)70 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = pc_malloc(sizes[i]);
		assert_non_null(p);
		span_t *s = pagemap_span(pagemap_lookup(p));
		assert_non_null(s);
		assert_true((uintptr_t)p >= s->base);
		assert_true((uintptr_t)p < s->base + s->npages * PC_PAGE);
		if (sizes[i] <= 32768) {
			assert_int_equal(s->kind, SPAN_SLAB);
			/* Last byte maps to the same slab. */
			assert_ptr_equal(pagemap_span(pagemap_lookup(p +
			    sizes[i] - 1)), s);
		} else {
			assert_ptr_equal((void *)s->base, p);
		}
		pc_free(p);
	}
}

int
main(void)
{
	/* Slab blocks from the first malloc on, not the nursery's. */
	nursery_close();
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_lookup),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_live_blocks_mapped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
