/*
 * Spans: the descriptor of a run of pages.  A span is a slab (objects of one
 * size class), a large block, a free run inside an arena region, or a huge
 * block mapped directly.  Descriptors live in metadata memory (base.c), away
 * from user data, and are 64-byte aligned so the page map can keep the size
 * class in an entry's low bits.
 *
 * Locking: a slab's free bitmap, nfree and list links belong to its bin's
 * lock; a free or large span's fields belong to its page heap's lock; a
 * huge span is immutable while live.
 */
#ifndef PC_SPAN_H
#define PC_SPAN_H

#include <stddef.h>

#include "config.h"
#include "sizeclass.h"

enum span_kind {
	SPAN_NONE = 0,
	SPAN_FREE,	/* unused pages of an arena region */
	SPAN_SLAB,	/* small objects of one size class */
	SPAN_LARGE,	/* one block of whole pages from an arena */
	SPAN_HUGE,	/* one block mapped directly from the OS */
};

/*
 * What a pointer handed to free or realloc turned out to be, checked under
 * the lock that frees its block (pageheap_large_*, huge_*): only BLOCK_LIVE
 * was acted on.
 */
enum block_state {
	BLOCK_LIVE = 0,		/* the start of a live block */
	BLOCK_FOREIGN,		/* never ours */
	BLOCK_FREED,		/* in a block already freed */
	BLOCK_INTERIOR,		/* inside a live block, not its start */
	BLOCK_INVALID,		/* ours, but no block starts there */
};

#define SPAN_BITMAP_WORDS (SC_MAX_OBJS / 64)

struct region;

typedef struct span {
	/* First cache line: all that free's checks (tcache.h,
	 * tcache_free_ok: base and a bitmap word) and a flush read, so a
	 * free of a cold block misses on one line of metadata, not two. */
	uintptr_t base;		/* first byte */
	union {
		uint64_t bitmap[SPAN_BITMAP_WORDS]; /* slab: set = free */
		uint64_t dirty_ns;	/* free: when it became dirty */
	};
	uint8_t kind;		/* enum span_kind */
	uint8_t sc;		/* slab: size class */
	uint8_t dirty;		/* free: pages may be resident */
	uint8_t in_list;	/* linked in a bin or bucket list */
	uint16_t arena;		/* slab: the arena whose bin it serves;
				 * else its page heap's index */
	uint16_t nfree;		/* slab: free objects */
	struct span *next;	/* bin partial list or free-run bucket */
	struct span *prev;
	/* Second line. */
	size_t npages;		/* length in pages */
	struct region *region;	/* arena region holding it (not huge) */
	size_t size;		/* huge: usable size */
	uint32_t *dbg_sizes;	/* slab, debug mode: requested sizes */
	uint64_t freed_ns;	/* free: when pages were last freed into it */
} PC_ALIGNED(64) span_t;

_Static_assert(sizeof(span_t) % 64 == 0, "span_t keeps 64-byte alignment");
_Static_assert(offsetof(span_t, prev) + sizeof(void *) <= 64,
    "free's checks and a flush read one line of a span");
_Static_assert(SC_NSMALL + 1 <= 63, "class fits in a page-map entry");

/* A contiguous reservation a page heap carves spans from. */
typedef struct region {
	uintptr_t base;
	size_t npages;
	struct region *next;
	unsigned heap;		/* index of the page heap holding it */
	uintptr_t used_lo;	/* hull of the pages ever handed out */
	uintptr_t used_hi;	/* (pageheap.c: region_touch) */
} region_t;

#endif
