/*
 * The page map: a two-level radix tree from a page address to the entry of
 * the span that owns it.  An entry is a span pointer (spans are 64-byte
 * aligned) whose low bits hold the size class + 1 for slab spans, so free()
 * learns the class of a small block from one lookup without touching the
 * span.  Entry 0 means "not pcmalloc's".
 *
 * Invariants:
 *  - every page of a slab maps to the slab, tagged with its class;
 *  - the first and the last page of a large block or free run map to its
 *    span (untagged), the pages between are PM_INTERIOR: so a large block
 *    is carved, freed and merged in O(1) of its size, and coalescing
 *    finds a neighbour from the page next to either end.  An interior
 *    pointer's block is found by walking down to the first page that is
 *    not interior (pageheap.c, only for misused pointers);
 *  - no page of a large block or free run carries a class tag: a slab's
 *    pages are made interior when it is freed, so free() of a pointer
 *    into a former slab's pages never takes it for a small block;
 *  - a huge span maps only its first page; its other pages, and every
 *    page not in a region, are 0 ("not ours").
 * Every change to the entries of a region's pages is made under its page
 * heap's lock.  Leaves are created under pagemap_lock and never freed;
 * readers take no lock.
 */
#ifndef PC_PAGEMAP_H
#define PC_PAGEMAP_H

#include "config.h"
#include "span.h"

#define PM_LEAF_BITS	18
#define PM_ROOT_BITS	(PC_VA_BITS - PC_PAGE_SHIFT - PM_LEAF_BITS)
#define PM_LEAF_LEN	((size_t)1 << PM_LEAF_BITS)
#define PM_ROOT_LEN	((size_t)1 << PM_ROOT_BITS)
#define PM_SC_MASK	((uintptr_t)63)

extern uintptr_t *pagemap_root[PM_ROOT_LEN];

static PC_INLINE uintptr_t
pagemap_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	/* One shift both bounds the address and indexes the root. */
	uintptr_t i = a >> (PC_PAGE_SHIFT + PM_LEAF_BITS);
	if (PC_UNLIKELY(i >= PM_ROOT_LEN))
		return 0;
	uintptr_t *leaf = __atomic_load_n(&pagemap_root[i], __ATOMIC_ACQUIRE);
	if (PC_UNLIKELY(leaf == NULL))
		return 0;
	return __atomic_load_n(&leaf[(a >> PC_PAGE_SHIFT) & (PM_LEAF_LEN - 1)],
	    __ATOMIC_RELAXED);
}

/* The span an entry names (0, "not ours": NULL), without its class tag.
 * The one spelling of "page-map entry -> span". */
static PC_INLINE span_t *
pagemap_span(uintptr_t e)
{
	return (span_t *)(e & ~PM_SC_MASK);
}

/* The entry of an interior page of a large block or free run: a span
 * that is no block (kind SPAN_NONE, no region), untagged and never 0. */
extern span_t pagemap_interior;
#define PM_INTERIOR ((uintptr_t)&pagemap_interior)

/* Set `npages` entries from page address `base`.  Returns 0 or ENOMEM (a
 * leaf could not be mapped; nothing was changed then). */
int pagemap_set(uintptr_t base, size_t npages, uintptr_t entry);
/* Make sure leaves exist for the range, so a later set cannot fail. */
int pagemap_reserve(uintptr_t base, size_t npages);

/* pagemap_set for a range reserved before (a page heap's region): no
 * leaf is made, so the set is a few stores; false if a leaf is missing
 * (the entries under the leaves before it are set by then: the caller
 * takes it for corruption and stops). */
static PC_INLINE bool
pagemap_set_reserved(uintptr_t base, size_t npages, uintptr_t entry)
{
	uintptr_t a = base;
	size_t left = npages;
	while (left > 0) {
		uintptr_t *leaf = __atomic_load_n(&pagemap_root[a >>
		    (PC_PAGE_SHIFT + PM_LEAF_BITS)], __ATOMIC_ACQUIRE);
		if (PC_UNLIKELY(leaf == NULL))
			return false;
		size_t i = (a >> PC_PAGE_SHIFT) & (PM_LEAF_LEN - 1);
		size_t n = PC_MIN(left, PM_LEAF_LEN - i);
		for (size_t k = 0; k < n; k++)
			__atomic_store_n(&leaf[i + k], entry, __ATOMIC_RELAXED);
		left -= n;
		a += n << PC_PAGE_SHIFT;
	}
	return true;
}

void pagemap_prefork(void);
void pagemap_postfork_parent(void);

#endif
