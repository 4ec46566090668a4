/*
 * Size classes.  Small requests are rounded up to one of SC_NSMALL classes:
 * 16-byte steps up to 64, then four classes per doubling (waste under
 * 20%), eight from 256 to 512 and from 2048 up to SC_SMALL_MAX (under
 * 12%), and a class just above 1 KiB and 4 KiB (sizeclass.c): the
 * few-hundred-byte records of parsers and node graphs (jq's objects: 272
 * and 392 bytes) take 288 and 416, not 320 and 448, and a power of two
 * with a header, as databases and I/O code allocate it (SQLite: 1032 and
 * 4104 bytes), 1088 and 4160, not 1280 and 4608.
 * Every class is a multiple of 16.
 * The tables are computed once by sc_init() before the first allocation and
 * never change.
 */
#ifndef PC_SIZECLASS_H
#define PC_SIZECLASS_H

#include "config.h"

#define SC_NSMALL	62
#define SC_SMALL_MAX	((size_t)32768)
#define SC_MAX_OBJS	256	/* objects per slab, bounds the bitmap */

typedef struct sc_info {
	uint32_t size;		/* object size */
	uint16_t npages;	/* pages per slab */
	uint16_t nobjs;		/* objects per slab */
	uint32_t recip;		/* ceil(2^32 / size): offset -> index */
	uint16_t tcache_cap;	/* thread cache slots, at first */
	uint16_t tcache_cap_max;	/* ... after growing (tcache.c) */
	uint16_t batch;		/* objects moved per refill or flush */
	uint8_t shift;		/* size = odd * 2^shift (shift >= 4) */
	uint64_t inv;		/* odd^-1 mod 2^64: sc_obj_start() */
} sc_info_t;

extern sc_info_t sc_table[SC_NSMALL];
extern uint8_t sc_lut[SC_SMALL_MAX / 16 + 1];	/* a byte per 16 bytes */

void sc_init(void);

/* Class of a small request (size <= SC_SMALL_MAX; 0 maps to class 0). */
static PC_INLINE unsigned
sc_index(size_t size)
{
	return sc_lut[(size + 15) >> 4];
}

static PC_INLINE size_t
sc_size(unsigned sc)
{
	return sc_table[sc].size;
}

/* Object index of byte offset `off` inside a slab of class sc. */
static PC_INLINE unsigned
sc_obj_index(unsigned sc, size_t off)
{
	return (unsigned)(((uint64_t)off * sc_table[sc].recip) >> 32);
}

/*
 * The object index of byte offset `off` in a slab whose objects are
 * size = odd * 2^shift bytes, if off is the start of an object; a number
 * >= nobjs otherwise, for every 64-bit off (so off = p - base needs no
 * range test, even for p below base).  Why: off -> rotr(off * inv, shift)
 * is a bijection on 64-bit numbers (inv is odd), and it maps q * size to q
 * for every q < 2^(64 - shift); so the object starts q * size, q < nobjs,
 * are the only offsets that land below nobjs.  One multiply, one rotate,
 * one compare test both "object start" and "before the slab's end".
 */
static PC_INLINE uint64_t
sc_obj_start(uint64_t off, uint64_t inv, unsigned shift)
{
	uint64_t x = off * inv;
	return (x >> shift) | (x << (64 - shift));
}

#endif
