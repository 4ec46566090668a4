#include <errno.h>
#include <string.h>

#include "slab.h"
#include "base.h"
#include "report.h"

void
slab_init(span_t *s, unsigned sc)
{
	unsigned nobjs = sc_table[sc].nobjs;
	/* s->kind is already SPAN_SLAB (pages_alloc set it under the arena
	 * lock, which neighbours' frees read it under): not stored again. */
	s->sc = (uint8_t)sc;
	s->nfree = (uint16_t)nobjs;
	/* Atomic stores: free() reads the bitmap without the bin lock
	 * (slab_obj_is_free), here a stale descriptor's for a misused
	 * pointer at worst. */
	for (unsigned w = 0; w < SPAN_BITMAP_WORDS; w++) {
		unsigned lo = w * 64;
		uint64_t m = nobjs >= lo + 64 ? ~(uint64_t)0 :
		    nobjs > lo ? ((uint64_t)1 << (nobjs - lo)) - 1 : 0;
		__atomic_store_n(&s->bitmap[w], m, __ATOMIC_RELAXED);
	}
}

unsigned
slab_pop(span_t *s, void **out, unsigned n)
{
	size_t size = sc_table[s->sc].size;
	unsigned got = 0;
	for (unsigned w = 0; w < SPAN_BITMAP_WORDS && got < n; w++) {
		uint64_t bits = s->bitmap[w];
		if (bits == 0)
			continue;
		uintptr_t wbase = s->base + (uintptr_t)w * 64 * size;
		void **o = out + got;
		unsigned k = bits == ~(uint64_t)0 ? 64 :
		    (unsigned)pc_popcount64(bits);
		if (k == 64) {
			/* 64 consecutive free objects (a new slab, or one
			 * whose blocks came back in runs): no bit to find. */
			unsigned m = PC_MIN(64u, n - got);
			for (unsigned t = 0; t < m; t++)
				o[t] = (void *)(wbase + t * size);
			got += m;
			bits = m == 64 ? 0 : bits << m;
		} else if (k <= n - got) {
			/* The whole word: no count to test per object. */
			got += k;
			do {
				unsigned b = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				*o++ = (void *)(wbase + b * size);
			} while (bits != 0);
		} else {
			for (unsigned m = n - got; m > 0; m--) {
				unsigned b = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				*o++ = (void *)(wbase + b * size);
			}
			got = n;
		}
		__atomic_store_n(&s->bitmap[w], bits, __ATOMIC_RELAXED);
	}
	PC_ASSERT(got <= s->nfree);
	s->nfree = (uint16_t)(s->nfree - got);
	return got;
}

enum slab_free_result
slab_push(span_t *s, void *p)
{
	uint64_t idx = slab_obj_index(s, p);
	if (PC_UNLIKELY(idx >= sc_table[s->sc].nobjs))
		return SLAB_INTERIOR;
	uint64_t bit = (uint64_t)1 << (idx & 63);
	uint64_t w = s->bitmap[idx >> 6];
	if (PC_UNLIKELY(w & bit))
		return SLAB_DOUBLE_FREE;
	__atomic_store_n(&s->bitmap[idx >> 6], w | bit, __ATOMIC_RELAXED);
	s->nfree++;
	return SLAB_FREED;
}

int
slab_debug_init(span_t *s)
{
	s->dbg_sizes = base_dbg_sizes_new();
	if (s->dbg_sizes == NULL)
		return ENOMEM;
	memset((void *)s->base, SLAB_DEBUG_JUNK, s->npages << PC_PAGE_SHIFT);
	return 0;
}

void
slab_debug_fini(span_t *s)
{
	if (s->dbg_sizes != NULL)
		base_dbg_sizes_delete(s->dbg_sizes);
	s->dbg_sizes = NULL;
}
