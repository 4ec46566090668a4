/*
 * The start-up nursery (nursery.h).
 *
 * State: the bump offset, and per granule a length and a live bit.  Only
 * the owner thread carves (nursery_claim); the offset still moves by a
 * compare-and-swap, never past the end, so a malloc from a signal handler
 * that interrupted one (undefined, but done) cannot share its block.  A
 * block's length and live bit are written before malloc returns it; a
 * thread that frees or resizes the block got the pointer through the
 * program, which orders the two.  The live bit is cleared by an atomic
 * and, so of two frees racing, one finds it clear.
 */
#include "nursery.h"
#include "conf.h"

#define NURSERY_GRAINS (NURSERY_SIZE / NURSERY_GRAIN)
/* The longest block, in granules: a length fits 16 bits. */
#define NURSERY_MAX_GRAINS (NURSERY_MAX / NURSERY_GRAIN)

#if PC_NURSERY
/* Zero-fill data (compiler.h, PC_BIG_BSS): a page is faulted in when the
 * program first touches a block on it, as a fresh heap's would be. */
unsigned char nursery_mem[NURSERY_SIZE] PC_BIG_BSS
    __attribute__((aligned(4096)));
static uint16_t nursery_len[NURSERY_GRAINS] PC_BIG_BSS;
static uint64_t nursery_live[NURSERY_GRAINS / 64] PC_BIG_BSS;
static size_t nursery_top;	/* bytes carved (atomic) */
static bool nursery_full;	/* used up or closed (atomic) */
static size_t nursery_live_bytes;	/* (atomic) */

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

void *
nursery_alloc(size_t size)
{
	if (!opt_nursery || opt_debug) {	/* debug: redzones (debug.c) */
		nursery_close();
		return NULL;
	}
	if (size > NURSERY_MAX || !nursery_claim())
		return NULL;
	size_t n = nursery_usable(size);
	size_t off = __atomic_load_n(&nursery_top, __ATOMIC_RELAXED);
	do {
		if (off + n > NURSERY_SIZE) {
			/* The rest, if any, stays unused: later requests
			 * would each come here to find it too small. */
			nursery_close();
			return NULL;
		}
	} while (!__atomic_compare_exchange_n(&nursery_top, &off, off + n,
	    true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	size_t g = off / NURSERY_GRAIN;
	__atomic_store_n(&nursery_len[g], (uint16_t)(n / NURSERY_GRAIN),
	    __ATOMIC_RELAXED);
	__atomic_fetch_or(&nursery_live[g / 64], (uint64_t)1 << (g % 64),
	    __ATOMIC_RELAXED);
	__atomic_fetch_add(&nursery_live_bytes, n, __ATOMIC_RELAXED);
	return nursery_mem + off;
}

/* The granule where the block holding granule g starts, if any block
 * covers it: blocks are at most NURSERY_MAX_GRAINS long. */
static bool
covering_block(size_t g)
{
	size_t lo = g >= NURSERY_MAX_GRAINS ? g - NURSERY_MAX_GRAINS + 1 : 0;
	for (size_t s = g + 1; s-- > lo;) {
		size_t len = __atomic_load_n(&nursery_len[s], __ATOMIC_RELAXED);
		if (len != 0)
			return s + len > g;
	}
	return false;
}

/* The state of p's block; its granule in *gp. */
static int
block_state(const void *p, size_t *gp)
{
	size_t off = (size_t)((const unsigned char *)p - nursery_mem);
	size_t g = off / NURSERY_GRAIN;
	*gp = g;
	if (off % NURSERY_GRAIN != 0 ||
	    __atomic_load_n(&nursery_len[g], __ATOMIC_RELAXED) == 0)
		return covering_block(g) ? BLOCK_INTERIOR : BLOCK_INVALID;
	uint64_t w = __atomic_load_n(&nursery_live[g / 64], __ATOMIC_RELAXED);
	return (w >> (g % 64)) & 1 ? BLOCK_LIVE : BLOCK_FREED;
}

int
nursery_block(const void *p, size_t *usable)
{
	size_t g;
	int st = block_state(p, &g);
	if (st == BLOCK_LIVE)
		*usable = (size_t)__atomic_load_n(&nursery_len[g],
		    __ATOMIC_RELAXED) * NURSERY_GRAIN;
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
	uint64_t old = __atomic_fetch_and(&nursery_live[g / 64], ~bit,
	    __ATOMIC_RELAXED);
	if (!(old & bit))
		return BLOCK_FREED;	/* another free won */
	__atomic_fetch_sub(&nursery_live_bytes,
	    (size_t)__atomic_load_n(&nursery_len[g], __ATOMIC_RELAXED) *
	    NURSERY_GRAIN, __ATOMIC_RELAXED);
	return BLOCK_LIVE;
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
	return PC_ALIGN_UP(top, PC_PAGE);
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
