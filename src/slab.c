#include "slab.h"
#include "check.h"

void
slab_init(span_t *s, unsigned sc)
{
	unsigned nobjs = sc_table[sc].nobjs;
	/* s->kind is already SPAN_SLAB (pages_alloc set it under the arena
	 * lock, which neighbours' frees read it under): not stored again. */
	s->sc = (uint8_t)sc;
	s->nfree = (uint16_t)nobjs;
	for (unsigned w = 0; w < SPAN_BITMAP_WORDS; w++) {
		unsigned lo = w * 64;
		if (nobjs >= lo + 64)
			s->bitmap[w] = ~(uint64_t)0;
		else if (nobjs > lo)
			s->bitmap[w] = ((uint64_t)1 << (nobjs - lo)) - 1;
		else
			s->bitmap[w] = 0;
	}
}

unsigned
slab_pop(span_t *s, void **out, unsigned n)
{
	size_t size = sc_table[s->sc].size;
	unsigned got = 0;
	for (unsigned w = 0; w < SPAN_BITMAP_WORDS && got < n; w++) {
		uint64_t bits = s->bitmap[w];
		while (bits != 0 && got < n) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			out[got++] = (void *)(s->base + (w * 64 + b) * size);
		}
		s->bitmap[w] = bits;
	}
	PC_ASSERT(got <= s->nfree);
	s->nfree = (uint16_t)(s->nfree - got);
	return got;
}

enum slab_free_result
slab_push(span_t *s, void *p)
{
	size_t off = (uintptr_t)p - s->base;
	unsigned idx = sc_obj_index(s->sc, off);
	if (PC_UNLIKELY((size_t)idx * sc_table[s->sc].size != off ||
	    idx >= sc_table[s->sc].nobjs))
		return SLAB_INTERIOR;
	uint64_t bit = (uint64_t)1 << (idx & 63);
	if (PC_UNLIKELY(s->bitmap[idx >> 6] & bit))
		return SLAB_DOUBLE_FREE;
	s->bitmap[idx >> 6] |= bit;
	s->nfree++;
	return SLAB_FREED;
}
