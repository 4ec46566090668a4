/*
 * The start-up nursery: a process's first small blocks, packed one after
 * another into a static area, the way glibc's heap packs them, instead of
 * each size class taking a slab page of its own.
 *
 * Why: a short program (/bin/true with an argument, which loads the
 * locale; a shell's command; a build step) asks for a couple of hundred
 * blocks of twenty-odd sizes, some 20 KB in all, and exits.  With slabs,
 * each class it touches faults in a page of blocks, and the bins, slab
 * descriptors and thread cache behind them fault in their own metadata
 * pages: 120 page faults a run against glibc's 74, at some 10 us each on
 * a VM (91 with the nursery).  The nursery's blocks share pages, and a
 * program that never leaves it never sets up a thread cache, a bin or a
 * slab.
 *
 * What it is: NURSERY_SIZE bytes in the library's zero-fill data, handed
 * out by a bump pointer in 16-byte granules to requests of up to
 * NURSERY_MAX bytes, from the refill slow path (tcache.c: a bin that is
 * empty asks here first), for one thread: the first to allocate, until
 * a request does not fit what is left or another thread sets up its
 * cache (its first small malloc or free; nursery_claim), or the program
 * has freed more than half of what it took, from NURSERY_CHURN_MIN on (a
 * program that frees what it allocates gets no reuse here; slabs give
 * it).  A freed block is not handed out again, unless it was the last
 * one carved and its own thread freed it while the nursery is open:
 * then the top moves back over
 * it (nursery.c: nursery_give_back), and realloc resizes such a block in
 * place.  The nursery serves at most the first NURSERY_SIZE bytes of
 * that thread's small requests, and then the slabs take over.
 * What never returns is at most NURSERY_SIZE.
 *
 * Its blocks have page-map entry 0 (the library's data is no region), so
 * free, malloc_usable_size and free_sized reach their slow paths, which
 * ask nursery_owns() (after guard_owns(), and as cheaply: a subtraction
 * and a compare) before they read the entry's span: their fast paths pay
 * nothing.  realloc, which has no fast path, asks it up front.  Each
 * granule has three bits (a block starts here, ends here, is live), so
 * a double free, a free of a pointer inside a block and a free
 * that was never a block are all told apart and reported like any other
 * (api.c); since a block is reused only from the top, a double free is
 * caught however late it comes, but for a block given back there and
 * carved again since (the second free then frees a new block that starts
 * there, as a slab's reused block would be, or is reported as interior).
 *
 * Not on Windows, where the override sends a pointer of page-map entry 0
 * to the CRT (override_win.c), nor in debug mode (its blocks have
 * redzones), nor with nursery:off, nor for memalign's small classes
 * (aligned by their slabs: tcache_alloc_slow_aligned).
 */
#ifndef PC_NURSERY_H
#define PC_NURSERY_H

#include "config.h"
#include "span.h"

#ifndef _WIN32
#define PC_NURSERY 1
#else
#define PC_NURSERY 0
#endif

#define NURSERY_SIZE	((size_t)256 << 10)
#define NURSERY_MAX	((size_t)4096)
#define NURSERY_GRAIN	((size_t)16)
/* From this many bytes carved on, the nursery closes once the program has
 * freed more than half of them (nursery.c). */
#define NURSERY_CHURN_MIN	((size_t)64 << 10)

#if PC_NURSERY
extern unsigned char nursery_mem[NURSERY_SIZE] PC_HIDDEN;

static PC_INLINE bool
nursery_owns(const void *p)
{
	return (uintptr_t)p - (uintptr_t)nursery_mem < NURSERY_SIZE;
}

/* A block of `size` bytes for the refill slow path, or NULL: too big,
 * the nursery used up or closed, or the caller is not its thread (which
 * closes it).  No lock. */
void *nursery_alloc(size_t size);
#else
static PC_INLINE bool
nursery_owns(const void *p)
{
	(void)p;
	return false;
}

static PC_INLINE void *
nursery_alloc(size_t size)
{
	(void)size;
	return NULL;
}
#endif

/* Whether the calling thread is the nursery's while it is open; another
 * thread closes it (tcache_setup asks: a second thread with a cache). */
bool nursery_claim(void);
/* No more blocks from the nursery (its live blocks stay valid). */
void nursery_close(void);
/* For p with nursery_owns(p): BLOCK_LIVE and its usable size, or what p
 * is instead (BLOCK_FREED, BLOCK_INTERIOR, BLOCK_INVALID). */
int nursery_block(const void *p, size_t *usable);
/* Free p if it is a live block (BLOCK_LIVE); else change nothing and say
 * what p is.  Of two frees of one block at once, one sees BLOCK_FREED. */
int nursery_free(const void *p);
/* Resize live block p (usable bytes) to `size` in place, if it is the
 * last block carved, the caller is the nursery's thread, the nursery is
 * open and the size is the nursery's; whether it did.  A block freed or
 * shrunk at the top gives its bytes back to the next carve (nursery.c). */
bool nursery_resize(const void *p, size_t usable, size_t size);
/* Clear what calloc needs of nursery block p (size bytes): the part that
 * a block given back before may have written. */
void nursery_calloc_clear(void *p, size_t size);
/* The usable size a request of `size` bytes gets from the nursery. */
static PC_INLINE size_t
nursery_usable(size_t size)
{
	return size <= NURSERY_GRAIN ? NURSERY_GRAIN :
	    PC_ALIGN_UP(size, NURSERY_GRAIN);
}
/* Bytes in live nursery blocks (statistics: allocated), and in the pages
 * blocks were carved from (active). */
size_t nursery_allocated(void);
size_t nursery_active(void);

#endif
