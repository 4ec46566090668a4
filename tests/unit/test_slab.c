/* Slab bitmap: pop/push bookkeeping, detection of double and interior
 * frees, full/empty transitions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

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
	assert_int_equal(slab_push(&s, out[3]), SLAB_FREED);
	assert_int_equal(slab_push(&s, out[65]), SLAB_FREED);
	void *again[2];
	assert_int_equal(slab_pop(&s, again, 2), 2);
	assert_ptr_equal(again[0], out[3]);
	assert_ptr_equal(again[1], out[65]);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_push_all),
		cmocka_unit_test(test_bad_frees),
		cmocka_unit_test(test_partial_pop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
