/*
 * The start-up nursery (nursery.h).
 *
 * State: the bump offset, and per granule a start, an end and a live
 * bit.  Only the owner thread carves (nursery_claim); the offset still
 * moves by a compare-and-swap, never past the end, so a malloc from a
 * signal handler that interrupted one (undefined, but done) cannot share
 * its block.  A block's bits are written before malloc returns it; a
 * thread that frees or resizes the block got the pointer through the
 * program, which orders the two.  The live bit is cleared by an atomic
 * and, so of two frees racing, one finds it clear.
 */
#include <string.h>

#include "nursery.h"
#include "conf.h"

#define NURSERY_GRAINS (NURSERY_SIZE / NURSERY_GRAIN)
/* The longest block, in granules. */
#define NURSERY_MAX_GRAINS (NURSERY_MAX / NURSERY_GRAIN)

#if PC_NURSERY
/* Zero-fill data (compiler.h, PC_BIG_BSS): a page is faulted in when the
 * program first touches a block on it, as a fresh heap's would be. */
unsigned char nursery_mem[NURSERY_SIZE] PC_BIG_BSS
    __attribute__((aligned(4096)));
/*
 * Per 64 granules, side by side (one page of them covers 170 KiB of
 * blocks, so a short program's blocks touch one or two): which granules
 * start a block, which end one, and which start a live block.  A block's
 * length is the distance to its end bit; each block's bits are written by
 * its own carve, so they never depend on a neighbour's being done.  (A
 * 16-bit length per granule and a live bit took 136 bytes per KiB: 7
 * pages to fault in for the 190 KB perl's start takes from here.)
 */
typedef struct {
	uint64_t start, end, live;
} nursery_word_t;
static nursery_word_t nursery_bits[NURSERY_GRAINS / 64] PC_BIG_BSS;
static size_t nursery_top;	/* bytes carved (atomic) */
static bool nursery_full;	/* used up or closed (atomic) */
static size_t nursery_live_bytes;	/* (atomic) */
/* Above the top, bytes below this offset may hold a given-back block's
 * data; the rest was never handed out and reads as zeros (atomic). */
static size_t nursery_dirty_end;

/* The thread the nursery serves (atomic), named by the address of a
 * thread-local variable: the first to claim it.  A thread started after
 * that one exited may get the same address, and the nursery with it:
 * harmless, as the two never run at once. */
static PC_TLS char nursery_thread_id;
static const char *nursery_thread;

bool
nursery_claim(void)
{
	if (__atomic_load_n(&nursery_full, __ATOMIC_RELAXED))
		return false;
	/* Start-up is single-threaded; and a thread served here has no
	 * cache, so it would not count among the threads that share the
	 * arenas (arena_nthreads): a second thread ends it. */
	const char *me = &nursery_thread_id, *first = NULL;
	if (__atomic_compare_exchange_n(&nursery_thread, &first, me, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED) || first == me)
		return true;
	nursery_close();
	return false;
}

static void
bit_set(uint64_t *w, size_t g)
{
	__atomic_fetch_or(w, (uint64_t)1 << (g % 64), __ATOMIC_RELAXED);
}

static void
bit_clear(uint64_t *w, size_t g)
{
	__atomic_fetch_and(w, ~((uint64_t)1 << (g % 64)), __ATOMIC_RELAXED);
}

/* Whether the calling thread is the one the nursery serves, while it is
 * open: only that thread carves, so only it moves the top back down. */
static bool
nursery_mine(void)
{
	return !__atomic_load_n(&nursery_full, __ATOMIC_RELAXED) &&
	    __atomic_load_n(&nursery_thread, __ATOMIC_RELAXED) ==
	    &nursery_thread_id;
}

/* p's offset in the nursery (nursery_owns(p)). */
static size_t
offset_of(const void *p)
{
	return (size_t)((const unsigned char *)p - nursery_mem);
}

/*
 * Move the top from `to` back down to `from` (the nursery's thread; the
 * granules in between start and end no block any more).  A program that
 * frees or shrinks what it allocated last (a stdio buffer, a string grown
 * and trimmed) gets those bytes again, as glibc's top chunk gives them,
 * instead of new pages.  The bytes are not cleared (that would fault in
 * pages never written): calloc clears what it takes below dirty_end.  A
 * carve in between (a signal handler's) keeps the top where it is; the
 * granules are then lost, never handed out twice.
 */
static void
nursery_give_back(size_t from, size_t to)
{
	/* Raised, never lowered, even by a signal handler's give-back
	 * between a load and a store. */
	size_t dirty = __atomic_load_n(&nursery_dirty_end, __ATOMIC_RELAXED);
	while (dirty < to && !__atomic_compare_exchange_n(&nursery_dirty_end,
	    &dirty, to, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	size_t expect = to;
	(void)__atomic_compare_exchange_n(&nursery_top, &expect, from, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static bool
bit_get(const uint64_t *w, size_t g)
{
	return (__atomic_load_n(w, __ATOMIC_RELAXED) >> (g % 64)) & 1;
}

void *
nursery_alloc(size_t size)
{
	if (PC_UNLIKELY(__atomic_load_n(&nursery_full, __ATOMIC_RELAXED)))
		return NULL;
	if (!opt_nursery || opt_debug) {	/* debug: redzones (debug.c) */
		nursery_close();
		return NULL;
	}
	if (size > NURSERY_MAX || !nursery_claim())
		return NULL;
	size_t n = nursery_usable(size);
	size_t off = __atomic_load_n(&nursery_top, __ATOMIC_RELAXED);
	/* (live may pass off: a signal handler's carve in between) */
	size_t live = __atomic_load_n(&nursery_live_bytes, __ATOMIC_RELAXED);
	if (off >= NURSERY_CHURN_MIN && live < off && (off - live) * 2 > off) {
		nursery_close();	/* churning: slabs reuse, we do not */
		return NULL;
	}
	do {
		if (off + n > NURSERY_SIZE) {
			/* The rest, if any, stays unused: later requests
			 * would each come here to find it too small. */
			nursery_close();
			return NULL;
		}
	} while (!__atomic_compare_exchange_n(&nursery_top, &off, off + n,
	    true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	size_t g = off / NURSERY_GRAIN, last = g + n / NURSERY_GRAIN - 1;
	bit_set(&nursery_bits[g / 64].start, g);
	bit_set(&nursery_bits[last / 64].end, last);
	bit_set(&nursery_bits[g / 64].live, g);
	__atomic_fetch_add(&nursery_live_bytes, n, __ATOMIC_RELAXED);
	return nursery_mem + off;
}

/* The length in granules of the block that starts at granule g: up to
 * its end bit, at most NURSERY_MAX_GRAINS on. */
static size_t
block_grains(size_t g)
{
	for (size_t e = g; e < g + NURSERY_MAX_GRAINS && e < NURSERY_GRAINS;) {
		uint64_t w = __atomic_load_n(&nursery_bits[e / 64].end,
		    __ATOMIC_RELAXED) >> (e % 64);
		if (w != 0)
			return e + (size_t)__builtin_ctzll(w) - g + 1;
		e = (e / 64 + 1) * 64;
	}
	return 0;	/* not reached for a carved block */
}

/* The state of p's block; its granule in *gp.  Blocks are carved side
 * by side from the start: below the top, every granule is in one. */
static int
block_state(const void *p, size_t *gp)
{
	size_t off = offset_of(p);
	size_t g = off / NURSERY_GRAIN;
	*gp = g;
	if (off >= __atomic_load_n(&nursery_top, __ATOMIC_RELAXED))
		return BLOCK_INVALID;
	if (off % NURSERY_GRAIN != 0 || !bit_get(&nursery_bits[g / 64].start,
	    g))
		return BLOCK_INTERIOR;
	return bit_get(&nursery_bits[g / 64].live, g) ? BLOCK_LIVE :
	    BLOCK_FREED;
}

int
nursery_block(const void *p, size_t *usable)
{
	size_t g;
	int st = block_state(p, &g);
	if (st == BLOCK_LIVE)
		*usable = block_grains(g) * NURSERY_GRAIN;
	return st;
}

int
nursery_free(const void *p)
{
	size_t g;
	int st = block_state(p, &g);
	if (st != BLOCK_LIVE)
		return st;
	uint64_t bit = (uint64_t)1 << (g % 64);
	uint64_t old = __atomic_fetch_and(&nursery_bits[g / 64].live, ~bit,
	    __ATOMIC_RELAXED);
	if (!(old & bit))
		return BLOCK_FREED;	/* another free won */
	size_t n = block_grains(g) * NURSERY_GRAIN, off = g * NURSERY_GRAIN;
	__atomic_fetch_sub(&nursery_live_bytes, n, __ATOMIC_RELAXED);
	if (off + n == __atomic_load_n(&nursery_top, __ATOMIC_RELAXED) &&
	    nursery_mine()) {
		/* The last block carved: its bits go first, so a carve of
		 * the same granules starts from clean ones. */
		bit_clear(&nursery_bits[g / 64].start, g);
		size_t last = g + n / NURSERY_GRAIN - 1;
		bit_clear(&nursery_bits[last / 64].end, last);
		nursery_give_back(off, off + n);
	}
	return BLOCK_LIVE;
}

bool
nursery_resize(const void *p, size_t usable, size_t size)
{
	size_t n = nursery_usable(size);
	size_t off = offset_of(p);
	size_t end = off + usable;
	if (size > NURSERY_MAX || n > NURSERY_SIZE - off || !nursery_mine() ||
	    __atomic_load_n(&nursery_top, __ATOMIC_RELAXED) != end)
		return false;
	size_t last = end / NURSERY_GRAIN - 1;
	size_t new_last = (off + n) / NURSERY_GRAIN - 1;
	if (n > usable) {
		size_t expect = end;
		if (!__atomic_compare_exchange_n(&nursery_top, &expect, off + n,
		    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return false;
		__atomic_fetch_add(&nursery_live_bytes, n - usable,
		    __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_sub(&nursery_live_bytes, usable - n,
		    __ATOMIC_RELAXED);
	}
	/* The new end, then the old one cleared: the block always has an
	 * end bit, and its length is its old or its new one. */
	bit_set(&nursery_bits[new_last / 64].end, new_last);
	bit_clear(&nursery_bits[last / 64].end, last);
	if (n < usable)
		nursery_give_back(off + n, end);
	return true;
}

void
nursery_calloc_clear(void *p, size_t size)
{
	size_t off = offset_of(p);
	size_t dirty = __atomic_load_n(&nursery_dirty_end, __ATOMIC_RELAXED);
	if (off < dirty)
		memset(p, 0, PC_MIN(size, dirty - off));
}

void
nursery_close(void)
{
	__atomic_store_n(&nursery_full, true, __ATOMIC_RELAXED);
}

size_t
nursery_allocated(void)
{
	return __atomic_load_n(&nursery_live_bytes, __ATOMIC_RELAXED);
}

size_t
nursery_active(void)
{
	size_t top = __atomic_load_n(&nursery_top, __ATOMIC_RELAXED);
	size_t dirty = __atomic_load_n(&nursery_dirty_end, __ATOMIC_RELAXED);
	return PC_ALIGN_UP(PC_MAX(top, dirty), PC_PAGE);
}

#else	/* !PC_NURSERY: nothing is ever the nursery's */

bool
nursery_claim(void)
{
	return false;
}

void
nursery_close(void)
{
}

int
nursery_block(const void *p, size_t *usable)
{
	(void)p;
	(void)usable;
	return BLOCK_FOREIGN;
}

int
nursery_free(const void *p)
{
	(void)p;
	return BLOCK_FOREIGN;
}

bool
nursery_resize(const void *p, size_t usable, size_t size)
{
	(void)p;
	(void)usable;
	(void)size;
	return false;
}

void
nursery_calloc_clear(void *p, size_t size)
{
	(void)p;
	(void)size;
}

size_t
nursery_allocated(void)
{
	return 0;
}

size_t
nursery_active(void)
{
	return 0;
}

#endif
