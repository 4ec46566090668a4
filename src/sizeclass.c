#include "sizeclass.h"
#include "report.h"

sc_info_t sc_table[SC_NSMALL];
uint8_t sc_lut[SC_SMALL_MAX / 16 + 1];

/*
 * 16..64 in steps of 16, four per doubling up to 256, eight up to 512,
 * four up to 2048, eight per doubling up to 32768; and two classes for a
 * power of two plus a header of up to 64 bytes, which the classes around
 * them would round up by a fifth or a tenth: 1088 (SQLite asks for 1032
 * bytes, 1 KiB and its header, which took 1280) and 4160 (its 4 KiB page
 * buffers, 4104 bytes, took 4608).
 */
static const uint16_t sc_sizes[SC_NSMALL] = {
	16, 32, 48, 64,
	80, 96, 112, 128, 160, 192, 224, 256,
	288, 320, 352, 384, 416, 448, 480, 512,
	640, 768, 896, 1024, 1088, 1280, 1536, 1792, 2048,
	2304, 2560, 2816, 3072, 3328, 3584, 3840, 4096, 4160,
	4608, 5120, 5632, 6144, 6656, 7168, 7680, 8192,
	9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384,
	18432, 20480, 22528, 24576, 26624, 28672, 30720, 32768,
};

/*
 * Fewest pages (at most SC_SLAB_MAX_PAGES) that hold enough objects (8, or
 * as many as fit) with tail waste under 1/32 of the slab; otherwise the
 * least wasteful.  Enough objects per slab keeps refills off the page heap.
 *
 * Classes of SC_TINY_MAX bytes or less fill the SC_MAX_OBJS objects a
 * bitmap holds, up to SC_TINY_SLAB bytes (16 bytes: 1 page, 32: 2, 48: 3,
 * 64: 4).  A page of 64-byte blocks is 64 of them, so a producer/consumer
 * program made and emptied a slab, under its page heap's lock, every 64
 * blocks (xmalloc-64/8: 1150-1810 waits on the heap locks a run, 220-320
 * with the bigger slabs).  Only pages that blocks were handed out from
 * are touched; above 64 bytes, larson-sized at 2 threads held 8% more
 * memory with it.
 */
#define SC_SLAB_MAX_PAGES 32
#define SC_TINY_MAX 64
#define SC_TINY_SLAB 16384

static unsigned
sc_slab_pages(size_t size)
{
	size_t min_objs = PC_MIN((size_t)8,
	    SC_SLAB_MAX_PAGES * PC_PAGE / size);
	unsigned best = 0;
	size_t best_waste = 0;
	for (unsigned p = 1; p <= SC_SLAB_MAX_PAGES; p++) {
		size_t bytes = p * PC_PAGE;
		size_t n = bytes / size;
		if (n < min_objs || (size <= SC_TINY_MAX &&
		    bytes < SC_TINY_SLAB && n < SC_MAX_OBJS))
			continue;
		if (n > SC_MAX_OBJS)
			break;
		size_t waste = bytes - n * size;
		if (waste * 32 <= bytes)
			return p;
		/* Compare waste fractions: waste / bytes. */
		if (best == 0 || waste * (best * PC_PAGE) < best_waste * bytes) {
			best = p;
			best_waste = waste;
		}
	}
	return best;
}

void
sc_init(void)
{
	for (unsigned i = 0; i < SC_NSMALL; i++) {
		size_t size = sc_sizes[i];
		sc_info_t *c = &sc_table[i];
		c->size = (uint32_t)size;
		c->npages = (uint16_t)sc_slab_pages(size);
		PC_CHECK(c->npages > 0, "class slab geometry");
		c->nobjs = (uint16_t)(c->npages * PC_PAGE / size);
		c->recip = (uint32_t)(((1ull << 32) + size - 1) / size);
		c->shift = (uint8_t)__builtin_ctzll(size);
		/* Newton's iteration doubles the correct low bits of an odd
		 * number's inverse; odd * odd == 1 mod 8 starts at 3 bits. */
		uint64_t odd = size >> c->shift, inv = odd;
		for (int k = 0; k < 5; k++)
			inv *= 2 - odd * inv;
		c->inv = inv;
		PC_CHECK(odd * inv == 1 && c->shift >= 4 && c->shift < 64,
		    "class inverse");
		/* About 32 KiB per class in each thread, 8 to 128 slots. */
		size_t cap = 32768 / size;
		cap = PC_MAX(cap, 8);
		cap = PC_MIN(cap, 128);
		c->tcache_cap = (uint16_t)cap;
		c->batch = (uint16_t)PC_MAX(cap / 2, 1);
		/* A refill fills a bin's first slots, packed side by side
		 * with the next class's (tcache.c: tcache_first_slots). */
		PC_CHECK(c->batch <= c->tcache_cap, "refill batch");
		/* A bin that misses both ways may grow up to 256 KiB of
		 * objects, 4096 slots at most (tcache.c: tcache_grow). */
		size_t cap_max = PC_MIN(262144 / size, (size_t)4096);
		c->tcache_cap_max = (uint16_t)PC_MAX(cap_max, cap);
	}
	PC_CHECK(sc_table[SC_NSMALL - 1].size == SC_SMALL_MAX, "class table");
	unsigned sc = 0;
	for (size_t i = 0; i <= SC_SMALL_MAX / 16; i++) {
		size_t size = i * 16;
		while (sc_table[sc].size < size)
			sc++;
		sc_lut[i] = (uint8_t)sc;
	}
}
