/*
 * Thread caches: per-thread stacks of free small objects, one per size
 * class, in front of the arenas.  A hit on malloc or free touches only the
 * thread's own cache: no lock, no atomic.  Misses move a batch between the
 * cache and an arena (refill, flush).
 *
 * The thread's cache pointer (os_tls.h) starts at a shared, zero-capacity
 * cache, so the first malloc or free of a thread misses and the slow path
 * sets the thread up; no fast path checks for initialisation.  The thread's
 * state is which cache it points to: tcache_new (not set up yet),
 * tcache_busy (being set up: nested calls bypass caches), tcache_dead
 * (flushed at thread exit: bypass from now on), or its own cache.
 */
#ifndef PC_TCACHE_H
#define PC_TCACHE_H

#include "os_tls.h"
#include "sizeclass.h"

typedef struct tbin {
	uint32_t n;		/* cached objects */
	uint32_t cap;		/* 0 disables the bin */
	void **slots;		/* slots[0..n) */
} tbin_t;

/* Every TCACHE_GC_EVENTS slow-path events a thread runs a GC step: bins
 * that saw no refill or flush since the previous step give back half of
 * what they hold, so an unused class does not pin memory. */
#define TCACHE_GC_EVENTS 128

/*
 * bin[0] is a dummy that is always full (n == cap == 0); class c lives in
 * bin[c + 1].  A page-map entry's tag is 0 for "not a small block" and
 * c + 1 for class c, so free() indexes bin[tag] directly and large or
 * foreign pointers fall into the miss path without a test of their own.
 */
#define TBIN(tc, sc) (&(tc)->bin[(sc) + 1])

typedef struct tcache {
	tbin_t bin[SC_NSMALL + 1];
	uint8_t busy[SC_NSMALL];	/* refilled or flushed since GC */
	uint32_t events;	/* slow-path events since the GC step */
	struct tcache *next;	/* recycle list */
} tcache_t;

OS_TLS_DECLARE(tcache_t *, tcache_tls);

void *tcache_alloc_slow(size_t size) PC_NOINLINE;
void tcache_free_slow(void *p, unsigned sc) PC_NOINLINE;
void tcache_double_free(void *p, unsigned sc) PC_NOINLINE PC_COLD;

/* Allocate an object of class sc for a request of `size` bytes (the slow
 * path recomputes the class: before init the tables are empty). */
static PC_INLINE void *
tcache_alloc_sc(unsigned sc, size_t size)
{
	tbin_t *b = TBIN(OS_TLS_GET(tcache_tls), sc);
	if (PC_UNLIKELY(b->n == 0))
		return tcache_alloc_slow(size);
	return b->slots[--b->n];
}

/* Allocate a small object (size <= SC_SMALL_MAX). */
static PC_INLINE void *
tcache_alloc(size_t size)
{
	return tcache_alloc_sc(sc_index(size), size);
}

/* The bin for a page-map tag (0: the always-full dummy). */
static PC_INLINE tbin_t *
tcache_bin_of_tag(unsigned tag)
{
	return &OS_TLS_GET(tcache_tls)->bin[tag];
}

/* Free a small object of class sc. */
/* Push p (class sc) on bin b, which has room.  The commonest double
 * free, free(p); free(p), costs one compare to catch here (slots[-1] is a
 * NULL guard); the others are caught when the object reaches its slab's
 * bitmap. */
static PC_INLINE void
tcache_push(tbin_t *b, void *p, unsigned sc)
{
	if (config_harden && PC_UNLIKELY((b->slots + b->n)[-1] == p)) {
		tcache_double_free(p, sc);
		return;
	}
	b->slots[b->n++] = p;
}

static PC_INLINE void
tcache_free(void *p, unsigned sc)
{
	tbin_t *b = TBIN(OS_TLS_GET(tcache_tls), sc);
	if (PC_UNLIKELY(b->n == b->cap)) {
		tcache_free_slow(p, sc);
		return;
	}
	tcache_push(b, p, sc);
}

/* Flush the calling thread's cache completely. */
void tcache_flush_self(void);
void tcache_thread_exit(void *tc);

void tcache_prefork(void);
void tcache_postfork_parent(void);
void tcache_postfork_child(void);

#endif
