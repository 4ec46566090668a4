/* Arenas: the bins over the page heaps.  Refill and flush accounting, the
 * empty slab a bin keeps and gives back on purge, and slabs' pages going
 * back to the heap that holds them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "conf.h"
#include "pageheap.h"
#include "pagemap.h"
#include "pcmalloc.h"

static void
test_refill_flush(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(100);
	void *objs[600];
	unsigned got = arena_refill(a, sc, objs, 600);
	assert_int_equal(got, 600);
	for (unsigned i = 0; i < got; i++) {
		uintptr_t e = pagemap_lookup(objs[i]);
		assert_int_equal(e & PM_SC_MASK, sc + 1);
		for (unsigned j = 0; j < i; j += 97)
			assert_ptr_not_equal(objs[i], objs[j]);
	}
	size_t slabs = a->bins[sc].curslabs;
	assert_true(slabs >= 600 / sc_table[sc].nobjs);
	arena_flush(a, sc, objs, got);
	/* All but one empty slab went back to the page heap. */
	assert_true(a->bins[sc].curslabs <= 2);
}

/* A bin keeps one empty slab across a flush (no churn at the edge of a
 * slab) and gives it back to its page heap when the arena is purged. */
static void
test_empty_slab_kept_then_purged(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(2048);
	void *p;
	assert_int_equal(arena_refill(a, sc, &p, 1), 1);
	span_t *s = pageheap_span_at(p);
	assert_int_equal(s->kind, SPAN_SLAB);
	pageheap_t *h = pageheap_of(s);	/* a's, or one it took from */
	size_t active = h->active;
	arena_flush(a, sc, &p, 1);
	assert_ptr_equal(a->bins[sc].empty, s);
	assert_int_equal(h->active, active);	/* still a slab */
	arena_purge_all(a, true);
	assert_null(a->bins[sc].empty);
	/* Other bins' empty slabs may go too. */
	assert_true(h->active <= active - sc_table[sc].npages);
	assert_int_equal(pageheap_span_at(p)->kind, SPAN_FREE);
	assert_int_equal(h->dirty, 0);	/* purged as well */
	assert_int_equal(pc_check(), 0);
}

/* A slab's pages are its heap's: the slab records its bin's arena, its
 * region records the heap, and a refill that finds its own heap empty of
 * reusable pages takes another heap's (arena 1 here) before fresh ones. */
static void
test_slab_pages_from_other_heap(void **state)
{
	(void)state;
	arena_t *a0 = &arenas[0], *a1 = &arenas[1];
	assert_int_equal(narenas, 2);
	/* Classes nothing else here uses (cmocka's own mallocs refill
	 * small classes of whichever arena they run on). */
	unsigned sc = sc_index(24576);
	unsigned n = sc_table[sc].nobjs;
	/* Touch pages in heap 1 (arena 1 takes its own pages first; heap
	 * 0 has none free yet) and free them again. */
	void *objs[64];
	assert_true(n <= 64);
	assert_int_equal(arena_refill(a1, sc, objs, n), n);
	span_t *s1 = pageheap_span_at(objs[0]);
	uintptr_t base1 = s1->base;
	assert_int_equal(s1->region->heap, 1);
	void *extra;
	assert_int_equal(arena_refill(a1, sc, &extra, 1), 1);
	arena_flush(a1, sc, objs, n);	/* s1 is the bin's kept empty slab */
	arena_purge_all(a1, true);	/* now free pages of heap 1 */
	arena_flush(a1, sc, &extra, 1);
	/* Heap 0 has no free pages handed out before (narenas:2 and a
	 * fresh process); its bin of a class never used takes heap 1's. */
	unsigned sc0 = sc_index(20480);
	bool own = pageheap_may_reuse(a0->heap, sc_table[sc0].npages);
	void *q;
	assert_int_equal(arena_refill(a0, sc0, &q, 1), 1);
	span_t *s0 = pageheap_span_at(q);
	assert_int_equal(s0->arena, 0);	/* serves arena 0's bin */
	if (!own) {
		/* Heap 1's freed pages, where s1 was: the lowest fit. */
		assert_int_equal(s0->region->heap, 1);
		assert_int_equal(s0->base, base1);
		assert_true(a1->heap->active >= sc_table[sc0].npages);
	}
	arena_flush(a0, sc0, &q, 1);
	arena_purge_all(a0, true);
	assert_int_equal(pageheap_span_at(q)->kind, SPAN_FREE);
	assert_int_equal(pc_check(), 0);
}

/* A refill whose bin has no free object takes another arena's when that
 * one holds many (frees go to the slab's arena, refills to the CPU's: a
 * thread that moved would otherwise grow its new arena while its old
 * one's slabs drain), and makes a slab of its own for the rest.  A few
 * free objects elsewhere (a busy arena's batch in transit) are left
 * alone. */
static void
test_refill_other_arena_first(void **state)
{
	(void)state;
	arena_t *a0 = &arenas[0], *a1 = &arenas[1];
	unsigned sc = sc_index(12288);	/* used by nothing else here */
	enum { SLABS = 6 };
	unsigned n = sc_table[sc].nobjs;
	void *objs[SLABS * 16], *got[SLABS * 16], *mine[16];
	assert_true(n >= 3 && n <= 16);
	/* A few free objects in arena 1: arena 0 makes its own slab. */
	assert_int_equal(arena_refill(a1, sc, objs, n), n);
	arena_flush(a1, sc, objs, 2);
	assert_int_equal(arena_refill(a0, sc, mine, n), n);
	assert_int_equal(a0->bins[sc].nslabs, 1);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pageheap_span_at(mine[i])->arena, 0);
	assert_int_equal(arena_refill(a1, sc, objs, 2), 2);
	/* Arena 1's SLABS slabs, each with one live object left. */
	assert_int_equal(arena_refill(a1, sc, objs + n, (SLABS - 1) * n),
	    (SLABS - 1) * n);
	unsigned nfree = 0;
	for (unsigned i = 0; i < SLABS * n; i++) {
		if (i % n == 0)
			continue;
		arena_flush(a1, sc, &objs[i], 1);
		nfree++;
	}
	assert_int_equal(a1->bins[sc].nfree, nfree);
	assert_true(nfree >= 4 * n);
	uint64_t refills0 = a0->bins[sc].nrefills;
	assert_int_equal(arena_refill(a0, sc, got, nfree), nfree);
	for (unsigned i = 0; i < nfree; i++)
		assert_int_equal(pageheap_span_at(got[i])->arena, 1);
	assert_int_equal(a0->bins[sc].nslabs, 1);	/* none made */
	assert_int_equal(a0->bins[sc].nrefills, refills0 + 1);
	assert_int_equal(a1->bins[sc].nfree, 0);
	assert_int_equal(pc_check(), 0);
	/* Each block goes back to its own slab's arena. */
	arena_flush(a1, sc, got, nfree);
	for (unsigned i = 0; i < SLABS * n; i += n)
		arena_flush(a1, sc, &objs[i], 1);
	arena_flush(a0, sc, mine, n);
	assert_int_equal(a1->bins[sc].nobj_out, a1->bins[sc].nobj_in);
	assert_int_equal(a0->bins[sc].nobj_out, a0->bins[sc].nobj_in);
	assert_int_equal(pc_check(), 0);
}

int
main(void)
{
	setenv("PCMALLOC_CONF", "narenas:2", 1);
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		/* First: it needs heap 0 without free pages to reuse. */
		cmocka_unit_test(test_slab_pages_from_other_heap),
		cmocka_unit_test(test_refill_flush),
		cmocka_unit_test(test_empty_slab_kept_then_purged),
		cmocka_unit_test(test_refill_other_arena_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
