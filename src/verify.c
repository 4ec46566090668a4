/*
 * pc_check(): the heap consistency checker.  It stops every arena (all
 * their locks, in lock order) and verifies every invariant the allocator
 * relies on, then checks the calling thread's cache against the slabs.  It
 * reports
 * the first violation found in each structure and returns how many it
 * found.  Used by stress tests, the fuzzer and debug builds.
 *
 * Invariants:
 *  - regions are tiled exactly by spans, whose pages map as pagemap.h says;
 *  - no two free runs are adjacent (coalescing is complete);
 *  - every free run is in the bucket its size selects; dirty and active
 *    page counts equal the arena's counters;
 *  - a slab's nfree equals the bits set in its bitmap, no bit is set past
 *    its object count, and it is in its bin's list iff it has a free object;
 *  - a bin's count of free objects is the sum of its listed slabs', and
 *    its count of kept empty slabs is how many of them are empty; an
 *    arena's count of kept empty slabs past each bin's first is their sum;
 *  - an object in a thread cache belongs to a slab of that class and is
 *    allocated in the slab's bitmap (not both free and cached), and appears
 *    once.
 */
#include "pcmalloc.h"
#include "arena.h"
#include "report.h"
#include "init.h"
#include "pagemap.h"
#include "slab.h"
#include "tcache.h"

static unsigned
violation(const char *what, const void *where)
{
	pc_report_ptr(what, where, " (pc_check)");
	return 1;
}

static unsigned
check_slab(span_t *s)
{
	arena_t *a = arena_of(s);	/* the bin's arena, not the heap's */
	unsigned nobjs = sc_table[s->sc].nobjs;
	unsigned bits = 0;
	for (unsigned w = 0; w < SPAN_BITMAP_WORDS; w++) {
		uint64_t m = s->bitmap[w];
		bits += (unsigned)pc_popcount64(m);
		unsigned lo = w * 64;
		uint64_t valid = nobjs >= lo + 64 ? ~(uint64_t)0 :
		    nobjs > lo ? ((uint64_t)1 << (nobjs - lo)) - 1 : 0;
		if (m & ~valid)
			return violation("slab bitmap has bits past its objects",
			    (void *)s->base);
	}
	if (bits != s->nfree)
		return violation("slab nfree disagrees with its bitmap",
		    (void *)s->base);
	if (s->npages != sc_table[s->sc].npages)
		return violation("slab has the wrong page count",
		    (void *)s->base);
	bool listed = false;
	for (span_t *t = a->bins[s->sc].head; t != NULL; t = t->next)
		if (t == s)
			listed = true;
	if (listed != (s->nfree > 0))
		return violation("slab in its bin's list iff it has free objects"
		    " is false for", (void *)s->base);
	return 0;
}

/* Heap h's regions, tiled by its spans, and its page counts.  A slab may
 * serve any arena's bin; a large block or free run is h's own. */
static unsigned
check_heap_locked(pageheap_t *h)
{
	size_t active = 0, dirty = 0;
	unsigned bad = 0;
	for (region_t *r = h->regions; r != NULL && !bad; r = r->next) {
		uintptr_t end = r->base + (r->npages << PC_PAGE_SHIFT);
		bool prev_free = false;
		for (uintptr_t p = r->base; p < end && !bad;) {
			span_t *s = pagemap_span(pagemap_lookup((void *)p));
			if (s == NULL || s->base != p || s->npages == 0 ||
			    s->region != r || r->heap != pageheap_index(h) ||
			    (s->kind == SPAN_SLAB ? s->arena >= narenas :
			    s->arena != pageheap_index(h))) {
				bad += violation("region not tiled by its spans at",
				    (void *)p);
				break;
			}
			uintptr_t send = p + (s->npages << PC_PAGE_SHIFT);
			if (send > end) {
				bad += violation("span runs past its region",
				    (void *)p);
				break;
			}
			/* pagemap.h: a slab maps every page, tagged; a large
			 * block or free run its first and last pages, its
			 * interior pages are PM_INTERIOR. */
			for (uintptr_t q = p; q < send; q += PC_PAGE) {
				uintptr_t e = pagemap_lookup((void *)q);
				uintptr_t want = s->kind == SPAN_SLAB ?
				    (uintptr_t)s | (s->sc + 1u) :
				    q == p || q == send - PC_PAGE ?
				    (uintptr_t)s : PM_INTERIOR;
				if (e != want) {
					bad += violation("page map entry wrong at",
					    (void *)q);
					break;
				}
			}
			switch (s->kind) {
			case SPAN_FREE:
				if (prev_free)
					bad += violation("adjacent free runs at",
					    (void *)p);
				if (!s->in_list)
					bad += violation("free run not in a "
					    "bucket", (void *)p);
				if (s->dirty)
					dirty += s->npages;
				break;
			case SPAN_SLAB:
				bad += check_slab(s);
				active += s->npages;
				break;
			case SPAN_LARGE:
				active += s->npages;
				break;
			default:
				bad += violation("span of unknown kind at",
				    (void *)p);
			}
			prev_free = s->kind == SPAN_FREE;
			p = send;
		}
	}
	if (!bad && active != h->active)
		bad += violation("page heap's active page count is off; heap at",
		    h);
	if (!bad && dirty != h->dirty)
		bad += violation("page heap's dirty page count is off; heap at",
		    h);
	return bad;
}

static unsigned
check_cache(tcache_t *tc)
{
	if (TBIN(tc, 0)->slots == NULL)
		return 0;
	unsigned bad = 0;
	for (unsigned sc = 0; sc < SC_NSMALL && !bad; sc++) {
		tbin_t *b = TBIN(tc, sc);
		if (b->n > b->cap)
			return violation("thread cache bin over capacity", b);
		for (unsigned i = 0; i < b->n && !bad; i++) {
			void *p = b->slots[i];
			uintptr_t e = pagemap_lookup(p);
			span_t *s = pagemap_span(e);
			if ((e & PM_SC_MASK) != sc + 1 || s == NULL) {
				bad += violation("cached object not in a slab of "
				    "its class:", p);
				break;
			}
			arena_t *a = arena_of(s);
			os_lock(bin_lock(a, sc));
			size_t off = (uintptr_t)p - s->base;
			unsigned idx = sc_obj_index(sc, off);
			if ((size_t)idx * sc_size(sc) != off)
				bad += violation("cached pointer inside an "
				    "object:", p);
			else if (s->bitmap[idx / 64] & ((uint64_t)1 << idx % 64))
				bad += violation("object both cached and free:",
				    p);
			os_unlock(bin_lock(a, sc));
			for (unsigned j = i + 1; j < b->n && !bad; j++)
				if (b->slots[j] == p)
					bad += violation("object cached twice:",
					    p);
		}
	}
	return bad;
}

/* Each bin's count of free objects is its listed slabs', its count of kept
 * empty slabs theirs, and each arena's nsurplus the sum of those past one
 * (bin locks held). */
static unsigned
check_bins_locked(void)
{
	unsigned bad = 0;
	for (unsigned i = 0; i < narenas; i++) {
		unsigned surplus = 0;
		for (unsigned c = 0; c < SC_NSMALL; c++) {
			const bin_t *b = &arenas[i].bins[c];
			surplus += b->nempty > 1 ? b->nempty - 1 : 0;
			uint64_t n = 0;
			unsigned empty = 0;
			for (const span_t *t = b->head; t != NULL;
			    t = t->next) {
				n += t->nfree;
				empty += slab_is_empty(t);
			}
			if (n != b->nfree)
				bad += violation("bin's free-object count "
				    "disagrees with its slabs:", b);
			if (empty != b->nempty)
				bad += violation("bin's count of kept empty "
				    "slabs disagrees with its list:", b);
		}
		if (surplus != arenas[i].nsurplus)
			bad += violation("arena's count of extra kept empty "
			    "slabs disagrees with its bins':", &arenas[i]);
	}
	return bad;
}

/* As an operation on the cache, so that no reclaimer empties it meanwhile. */
static unsigned
check_own_cache(void)
{
	TCACHE_OP_BEGIN();
	unsigned bad = check_cache(tcache_own());
	TCACHE_OP_END();
	return bad;
}

PC_EXPORT int
pc_check(void)
{
	if (!__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return 0;
	unsigned bad = 0;
	/* Blocks waiting in remote batches are freed first (any misuse
	 * among them reported now): then the slabs, the statistics and the
	 * reports are those of a heap where every free has arrived. */
	for (unsigned i = 0; i < narenas; i++)
		arena_collect(&arenas[i]);
	/* Every lock, in lock order (all bins, then all page heaps): a
	 * region's slabs may belong to any arena's bins. */
	arena_prefork();
	for (unsigned i = 0; i < npageheaps; i++)
		bad += check_heap_locked(&pageheaps[i]);
	bad += check_bins_locked();
	arena_postfork_parent();
	bad += check_own_cache();
	return (int)bad;
}
