/* Arenas: the bins over the page heaps.  Refill and flush accounting, the
 * empty slabs a bin keeps (BIN_KEEP_EMPTY_PAGES) and gives back on purge
 * or when idle, and slabs' pages going back to the heap that holds
 * them. */
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
#include "slab.h"
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
	/* The empty slabs past BIN_KEEP_EMPTY_PAGES went back to the page
	 * heap (one partly used slab may remain). */
	unsigned keep = PC_MAX(BIN_KEEP_EMPTY_PAGES / sc_table[sc].npages, 1u);
	assert_true(a->bins[sc].curslabs <= keep + 1);
	assert_true(a->bins[sc].nempty <= keep);
}

/* Empty slabs up to BIN_KEEP_EMPTY_PAGES stay in their bin, at least one
 * however big; a bin that has not refilled between two looks keeps one,
 * a busy one keeps them all. */
static void
test_empty_slabs_kept_then_trimmed(void **state)
{
	(void)state;
	arena_t *a = &arenas[1];
	unsigned sc = sc_index(2560);	/* nothing else here uses it */
	unsigned nobjs = sc_table[sc].nobjs, npages = sc_table[sc].npages;
	unsigned keep = PC_MAX(BIN_KEEP_EMPTY_PAGES / npages, 1u);
	assert_true(keep >= 3);
	unsigned nslabs = keep + 2;
	void *objs[256];
	assert_true(nslabs * nobjs <= 256);
	/* No look from a GC step or the purging thread meanwhile. */
	uint64_t due = arena_next_idle_trim_ns;
	arena_next_idle_trim_ns = UINT64_MAX;
	bin_t *b = &a->bins[sc];
	assert_int_equal(arena_refill(a, sc, objs, nslabs * nobjs),
	    nslabs * nobjs);
	assert_int_equal(b->curslabs, nslabs);
	assert_int_equal(b->nempty, 0);
	arena_flush(a, sc, objs, nslabs * nobjs);
	assert_int_equal(b->nempty, keep);
	assert_int_equal(b->curslabs, keep);
	/* A refill takes a kept slab, not a new one. */
	uint64_t made = b->nslabs;
	assert_int_equal(arena_refill(a, sc, objs, 1), 1);
	assert_int_equal(b->nslabs, made);
	assert_int_equal(b->nempty, keep - 1);
	arena_flush(a, sc, objs, 1);
	assert_int_equal(b->nempty, keep);
	/* The first look notes the refills; a refill between two looks
	 * keeps them; the next look, with none since, keeps one. */
	arena_bins_idle_trim(a);
	assert_int_equal(b->nempty, keep);
	assert_int_equal(arena_refill(a, sc, objs, 1), 1);
	arena_flush(a, sc, objs, 1);
	arena_bins_idle_trim(a);
	assert_int_equal(b->nempty, keep);
	arena_bins_idle_trim(a);
	assert_int_equal(b->nempty, 1);
	assert_int_equal(b->curslabs, 1);
	arena_purge_all(a, true);
	assert_int_equal(b->nempty, 0);
	assert_int_equal(b->curslabs, 0);
	arena_next_idle_trim_ns = due;
	assert_int_equal(pc_check(), 0);
}

/* A refill that would make a slab of memory never touched first has
 * every bin give back the empty slabs it keeps past one, and takes those
 * pages: a program that uses one size after another kept each size's
 * slabs resident while the next grew (the harness's simple), and a thread
 * moving between CPUs grew one arena while another's bins kept theirs
 * (thread-churn at 1 thread).  Here arena 0's bin keeps them and arena 1
 * grows.  Last in main: it holds every heap's reusable pages for a
 * while. */
static void
test_growth_takes_kept_slabs_first(void **state)
{
	(void)state;
	arena_t *a0 = &arenas[0], *a1 = &arenas[1];
	/* Classes nothing else here uses; y's slab fits in one of x's. */
	unsigned sx = sc_index(3072), sy = sc_index(1792);
	unsigned nx = sc_table[sx].nobjs, py = sc_table[sy].npages;
	assert_true(py <= sc_table[sx].npages);
	unsigned keep = PC_MAX(BIN_KEEP_EMPTY_PAGES / sc_table[sx].npages, 1u);
	assert_true(keep >= 3);
	uint64_t due = arena_next_idle_trim_ns;
	arena_next_idle_trim_ns = UINT64_MAX;
	bin_t *bx = &a0->bins[sx], *by = &a1->bins[sy];
	/* Only x's bin keeps extra empty slabs. */
	arena_purge_all(a0, true);
	arena_purge_all(a1, true);
	assert_int_equal(a0->nsurplus, 0);
	assert_int_equal(a1->nsurplus, 0);
	assert_null(bx->head);
	assert_int_equal(bx->nfree, 0);
	void *objs[64];
	assert_true(keep * nx <= 64);
	assert_int_equal(arena_refill(a0, sx, objs, keep * nx), keep * nx);
	arena_flush(a0, sx, objs, keep * nx);
	assert_int_equal(bx->nempty, keep);
	assert_int_equal(a0->nsurplus, keep - 1);
	uintptr_t xbase[64];
	size_t xlen = (size_t)sc_table[sx].npages << PC_PAGE_SHIFT;
	unsigned nxs = 0;
	for (const span_t *t = bx->head; t != NULL; t = t->next)
		xbase[nxs++] = t->base;
	assert_int_equal(nxs, keep);
	/* No heap has free pages handed out before that a slab of y could
	 * take: y's bin would grow into new memory. */
	static span_t *held[8192];
	unsigned nheld = 0;
	for (unsigned i = 0; i < npageheaps; i++) {
		span_t *t;
		while ((t = pageheap_slab_alloc(&pageheaps[i], py, sy + 1, 1,
		    true)) != NULL) {
			assert_true(nheld < 8192);
			held[nheld++] = t;
		}
	}
	size_t used = 0;
	for (unsigned i = 0; i < npageheaps; i++)
		used += pageheaps[i].used_pages;
	assert_null(by->head);
	void *q;
	assert_int_equal(arena_refill(a1, sy, &q, 1), 1);
	/* x's extra slabs went back, and y's slab is made of their pages. */
	assert_int_equal(bx->nempty, 1);
	assert_int_equal(a0->nsurplus, 0);
	assert_int_equal(a1->nsurplus, 0);
	uintptr_t yb = pageheap_span_at(q)->base;
	bool inside = false;
	for (unsigned i = 0; i < nxs; i++)
		inside |= yb >= xbase[i] && yb < xbase[i] + xlen;
	assert_true(inside);
	size_t after = 0;
	for (unsigned i = 0; i < npageheaps; i++)
		after += pageheaps[i].used_pages;
	assert_int_equal(after, used);
	arena_flush(a1, sy, &q, 1);
	for (unsigned i = 0; i < nheld; i++)
		pageheap_slab_free(held[i]);
	arena_purge_all(a0, true);
	arena_purge_all(a1, true);
	assert_int_equal(a0->nsurplus, 0);
	arena_next_idle_trim_ns = due;
	assert_int_equal(pc_check(), 0);
}

/* A bin keeps an empty slab across a flush (no churn at the edge of a
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
	assert_true(a->bins[sc].nempty >= 1);
	assert_true(slab_is_empty(s) && s->in_list);
	assert_int_equal(h->active, active);	/* still a slab */
	arena_purge_all(a, true);
	assert_int_equal(a->bins[sc].nempty, 0);
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
	arena_flush(a1, sc, objs, n);	/* s1 is a kept empty slab */
	arena_purge_all(a1, true);	/* now free pages of heap 1 */
	arena_flush(a1, sc, &extra, 1);
	/* Heap 0 has no free pages handed out before (narenas:2 and a
	 * fresh process); its bin of a class never used takes heap 1's. */
	unsigned sc0 = sc_index(20480);
	bool own = pageheap_may_reuse(arena_heap(a0), sc_table[sc0].npages);
	void *q;
	assert_int_equal(arena_refill(a0, sc0, &q, 1), 1);
	span_t *s0 = pageheap_span_at(q);
	assert_int_equal(s0->arena, 0);	/* serves arena 0's bin */
	if (!own) {
		/* Heap 1's freed pages, where s1 was: the lowest fit. */
		assert_int_equal(s0->region->heap, 1);
		assert_int_equal(s0->base, base1);
		assert_true(arena_heap(a1)->active >= sc_table[sc0].npages);
	}
	arena_flush(a0, sc0, &q, 1);
	arena_purge_all(a0, true);
	assert_int_equal(pageheap_span_at(q)->kind, SPAN_FREE);
	assert_int_equal(pc_check(), 0);
}

/* A large block takes pages another arena's heap handed out before ahead
 * of memory never touched, and belongs to that heap: per-CPU heaps would
 * otherwise each grow to hold the program's large blocks in turn (two
 * threads passing blocks between them, mstress: 20.3 MiB peak RSS, 14.9
 * with this). */
static void
test_large_pages_from_other_heap(void **state)
{
	(void)state;
	enum { SIZE = 512 << 10 };
	arena_t *a0 = &arenas[0], *a1 = &arenas[1];
	size_t npages = pageheap_large_need(SIZE, 4096);
	bool z;
	/* No heap has that many free pages handed out before: heap 1
	 * grows. */
	assert_false(pageheap_may_reuse(arena_heap(a1), npages));
	char *x = arena_large_alloc(a1, SIZE, 4096, &z);
	assert_non_null(x);
	assert_int_equal(pageheap_span_at(x)->region->heap, 1);
	memset(x, 1, SIZE);
	pc_free(x);
	/* The main thread is alone, so malloc asks arena 0: it gets heap
	 * 1's freed pages, not heap 0's untouched ones. */
	assert_false(pageheap_may_reuse(arena_heap(a0), npages));
	char *y = pc_malloc(SIZE);
	assert_ptr_equal(y, x);
	span_t *s = pageheap_span_at(y);
	assert_int_equal(s->region->heap, 1);
	assert_int_equal(s->arena, 1);	/* the heap's, as it lies there */
	assert_int_equal(y[SIZE - 1], 1);	/* not cleared: dirty pages */
	assert_int_equal(pc_check(), 0);
	/* Its heap's lock serves it from then on: shrink and grow in
	 * place, then free it. */
	assert_ptr_equal(pc_realloc(y, SIZE / 2), y);
	assert_ptr_equal(pc_realloc(y, SIZE), y);
	assert_true(pc_malloc_usable_size(y) >= SIZE);
	assert_int_equal(pc_check(), 0);
	pc_free(y);
	assert_int_equal(pageheap_span_at(y)->kind, SPAN_FREE);
	/* An aligned block too: calloc of the same pages clears them. */
	void *w = NULL;
	assert_int_equal(pc_posix_memalign(&w, 64 << 10, SIZE - (64 << 10)),
	    0);
	assert_int_equal(pageheap_span_at(w)->region->heap, 1);
	pc_free(w);
	char *c = pc_calloc(1, SIZE);
	assert_ptr_equal(c, x);
	for (size_t i = 0; i < SIZE; i += 4096)
		assert_int_equal(c[i], 0);
	pc_free(c);
	assert_int_equal(pc_check(), 0);
}

/* How many of objs[0..n) are in slabs of arena `arena`. */
static unsigned
count_arena(void **objs, unsigned n, unsigned arena)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		k += pageheap_span_at(objs[i])->arena == arena;
	return k;
}

/*
 * A refill whose bin runs out takes another arena's free objects, if that
 * bin holds 4 slabs' worth or more and has not refilled since ours last
 * ran out (idle), before it makes a slab of its own.  Frees go to the
 * slab's arena and refills to the CPU's: a thread that moved would
 * otherwise grow its new arena while its old one's slabs drain.  Fewer
 * free objects, or a busy bin, are left alone.
 */
static void
test_refill_other_arena_first(void **state)
{
	(void)state;
	assert_int_equal(narenas, 2);
	arena_t *a0 = &arenas[0], *a1 = &arenas[1];
	unsigned sc = sc_index(12288);	/* used by nothing else here */
	enum { SLABS = 6, MAXN = 16 };
	unsigned n = sc_table[sc].nobjs;
	void *objs[SLABS * MAXN], *mine[3 * MAXN], *got[6 * MAXN];
	assert_true(n >= 2 && n <= MAXN);
	bin_t *b0 = &a0->bins[sc], *b1 = &a1->bins[sc];
	/* Arena 1: SLABS full slabs, then 4 slabs' worth but one freed,
	 * never the first object of a slab (none empties). */
	assert_int_equal(arena_refill(a1, sc, objs, SLABS * n), SLABS * n);
	unsigned next = 0;
	for (unsigned k = 0; k < 4 * n - 1; k++, next++) {
		if (next % n == 0)
			next++;
		arena_flush(a1, sc, &objs[next], 1);
	}
	assert_int_equal(b1->nfree, 4 * n - 1);
	/* Below the threshold: arena 0 makes its own slab. */
	assert_int_equal(arena_refill(a0, sc, mine, n), n);
	assert_int_equal(b0->nslabs, 1);
	assert_int_equal(count_arena(mine, n, 0), n);
	if (next % n == 0)
		next++;
	arena_flush(a1, sc, &objs[next++], 1);
	assert_int_equal(b1->nfree, 4 * n);
	/* Plenty, but arena 0 runs out for the first time since: its own
	 * slab again (arena 1 may be busy). */
	assert_int_equal(arena_refill(a0, sc, mine + n, n), n);
	assert_int_equal(b0->nslabs, 2);
	assert_int_equal(count_arena(mine + n, n, 0), n);
	/* Arena 1 refills in between (busy): still its own. */
	void *q;
	assert_int_equal(arena_refill(a1, sc, &q, 1), 1);
	arena_flush(a1, sc, &q, 1);
	assert_int_equal(b1->nfree, 4 * n);
	assert_int_equal(arena_refill(a0, sc, mine + 2 * n, n), n);
	assert_int_equal(b0->nslabs, 3);
	assert_int_equal(count_arena(mine + 2 * n, n, 0), n);
	/* Idle since: arena 1's free objects, then a slab of arena 0's own
	 * for the 3 more asked for. */
	uint64_t r0 = b0->nrefills, r1 = b1->nrefills;
	unsigned want = 4 * n + 3;
	assert_int_equal(arena_refill(a0, sc, got, want), want);
	assert_int_equal(count_arena(got, want, 1), 4 * n);
	assert_int_equal(b1->nfree, 0);
	assert_int_equal(b0->nslabs, 4);
	/* One refill, counted on the refilling arena's bin. */
	assert_int_equal(b1->nrefills, r1);
	assert_int_equal(b0->nrefills, r0 + 1);
	assert_int_equal(pc_check(), 0);
	/* Each block goes back to its own slab's arena. */
	for (unsigned i = 0; i < want; i++)
		arena_flush(&arenas[pageheap_span_at(got[i])->arena], sc,
		    &got[i], 1);
	for (unsigned i = next; i < SLABS * n; i++)
		arena_flush(a1, sc, &objs[i], 1);
	for (unsigned i = 0; i < next; i += n)
		arena_flush(a1, sc, &objs[i], 1);
	arena_flush(a0, sc, mine, 3 * n);
	assert_int_equal(b1->nobj_out, b1->nobj_in);
	assert_int_equal(b0->nobj_out, b0->nobj_in);
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
		cmocka_unit_test(test_large_pages_from_other_heap),
		cmocka_unit_test(test_refill_flush),
		cmocka_unit_test(test_empty_slab_kept_then_purged),
		cmocka_unit_test(test_empty_slabs_kept_then_trimmed),
		cmocka_unit_test(test_refill_other_arena_first),
		cmocka_unit_test(test_growth_takes_kept_slabs_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
