#include <errno.h>
#include <string.h>

#include "tcache.h"
#include "arena.h"
#include "base.h"
#include "check.h"
#include "conf.h"
#include "debug.h"
#include "init.h"
#include "pagemap.h"

/* Zero-capacity caches whose identity is the thread's state. */
static tcache_t tcache_new, tcache_busy, tcache_dead;
OS_TLS_DEFINE(tcache_t *, tcache_tls, &tcache_new);

static os_lock_t tcache_lock = OS_LOCK_INIT;
static tcache_t *tcache_recycled;	/* tcache_lock */

static size_t
tcache_bytes(void)
{
	size_t slots = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		slots += sc_table[sc].tcache_cap + 1;
	return sizeof(tcache_t) + slots * sizeof(void *);
}

static tcache_t *
tcache_create(void)
{
	os_lock(&tcache_lock);
	tcache_t *tc = tcache_recycled;
	if (tc != NULL)
		tcache_recycled = tc->next;
	os_unlock(&tcache_lock);
	if (tc == NULL) {
		tc = base_alloc(tcache_bytes());
		if (tc == NULL)
			return NULL;
	}
	void **slot = (void **)(tc + 1);
	tc->bin[0] = (tbin_t){ 0, 0, NULL };
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tbin_t *b = TBIN(tc, sc);
		b->n = 0;
		b->cap = sc_table[sc].size <= opt_tcache_max ?
		    sc_table[sc].tcache_cap : 0;
		/* slots[-1] is a NULL guard: the double-free check on the
		 * fast path reads the top slot without testing n. */
		slot[0] = NULL;
		b->slots = slot + 1;
		slot += sc_table[sc].tcache_cap + 1;
	}
	memset(tc->busy, 0, sizeof(tc->busy));
	tc->events = 0;
	tc->next = NULL;
	return tc;
}

static tcache_t *
tcache_setup(void)
{
	if (OS_TLS_GET(tcache_tls) != &tcache_new)
		return NULL;
	if (pc_ensure_init() != 0 || !pc_hooks_ready || !opt_tcache)
		return NULL;
	OS_TLS_SET(tcache_tls, &tcache_busy);
	tcache_t *tc = tcache_create();
	if (tc == NULL) {
		OS_TLS_SET(tcache_tls, &tcache_new);
		return NULL;
	}
	/* May allocate (pthread_setspecific for a high key): that nested
	 * call sees tcache_busy and bypasses the cache. */
	if (os_thread_exit_arm(tc) != 0) {
		OS_TLS_SET(tcache_tls, &tcache_new);
		os_lock(&tcache_lock);
		tc->next = tcache_recycled;
		tcache_recycled = tc;
		os_unlock(&tcache_lock);
		return NULL;
	}
	OS_TLS_SET(tcache_tls, tc);
	return tc;
}

/* Return slots[0..count) of bin sc to their arenas, a batch per arena. */
static void
tcache_flush_bin(tbin_t *b, unsigned sc, unsigned count)
{
	void **v = b->slots;
	unsigned left = count;
	while (left > 0) {
		span_t *s0 = (span_t *)(pagemap_lookup(v[0]) & ~PM_SC_MASK);
		unsigned owner = s0->arena;
		unsigned k = 1;
		for (unsigned i = 1; i < left; i++) {
			span_t *s = (span_t *)(pagemap_lookup(v[i]) &
			    ~PM_SC_MASK);
			if (s->arena == owner) {
				void *t = v[k];
				v[k++] = v[i];
				v[i] = t;
			}
		}
		arena_flush(&arenas[owner], sc, v, k);
		v += k;
		left -= k;
	}
	b->n -= count;
	memmove(b->slots, b->slots + count, b->n * sizeof(void *));
}

/* Runs on slow paths only: decay of the arena's dirty pages and the
 * cache's own GC. */
static void
tcache_event(tcache_t *tc, unsigned sc)
{
	tc->busy[sc] = 1;
	if (PC_LIKELY(++tc->events < TCACHE_GC_EVENTS))
		return;
	tc->events = 0;
	for (unsigned c = 0; c < SC_NSMALL; c++) {
		tbin_t *b = TBIN(tc, c);
		if (!tc->busy[c] && b->n > 0)
			tcache_flush_bin(b, c, (b->n + 1) / 2);
		tc->busy[c] = 0;
	}
	arena_decay_tick(arena_choose());
	pc_background_poll();
}

void *
tcache_alloc_slow(size_t size)
{
	/* The class tables are only valid after init: the fast path's
	 * class of the very first request may be wrong, so recompute. */
	if (pc_ensure_init() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	unsigned sc = sc_index(size);
	tcache_t *tc = OS_TLS_GET(tcache_tls);
	if (TBIN(tc, 0)->slots == NULL)	/* one of the state caches */
		tc = tcache_setup();
	if (tc == NULL || TBIN(tc, sc)->cap == 0) {
		if (opt_debug)
			return debug_alloc_small(size, debug_class(size));
		void *p;
		if (arena_refill(arena_choose(), sc, &p, 1) == 1)
			return p;
		errno = ENOMEM;
		return NULL;
	}
	tbin_t *b = TBIN(tc, sc);
	tcache_event(tc, sc);
	unsigned got = arena_refill(arena_choose(), sc, b->slots,
	    sc_table[sc].batch);
	if (got == 0) {
		errno = ENOMEM;
		return NULL;
	}
	b->n = got - 1;
	return b->slots[got - 1];
}

void
tcache_double_free(void *p, unsigned sc)
{
	arena_report_bad_free(true, p, sc);
}

void
tcache_free_slow(void *p, unsigned sc)
{
	tcache_t *tc = OS_TLS_GET(tcache_tls);
	if (TBIN(tc, 0)->slots == NULL)	/* one of the state caches */
		tc = tcache_setup();
	if (tc == NULL || TBIN(tc, sc)->cap == 0) {
		if (opt_debug) {
			debug_free_small(p, sc);
			return;
		}
		span_t *s = (span_t *)(pagemap_lookup(p) & ~PM_SC_MASK);
		arena_flush(arena_of(s), sc, &p, 1);
		return;
	}
	tbin_t *b = TBIN(tc, sc);
	tcache_event(tc, sc);
	if (b->n == b->cap)
		tcache_flush_bin(b, sc, PC_MAX(sc_table[sc].batch, 1));
	b->slots[b->n++] = p;
}

static void
tcache_flush_all(tcache_t *tc)
{
	for (unsigned sc = 0; sc < SC_NSMALL; sc++) {
		tbin_t *b = TBIN(tc, sc);
		if (b->n > 0)
			tcache_flush_bin(b, sc, b->n);
	}
}

void
tcache_flush_self(void)
{
	tcache_t *tc = OS_TLS_GET(tcache_tls);
	if (TBIN(tc, 0)->slots != NULL)
		tcache_flush_all(tc);
}

void
tcache_thread_exit(void *arg)
{
	tcache_t *tc = arg;
	/* From here on this thread bypasses caches: other destructors may
	 * still allocate and free. */
	OS_TLS_SET(tcache_tls, &tcache_dead);
	tcache_flush_all(tc);
	os_lock(&tcache_lock);
	tc->next = tcache_recycled;
	tcache_recycled = tc;
	os_unlock(&tcache_lock);
}

void
tcache_prefork(void)
{
	os_lock(&tcache_lock);
}

void
tcache_postfork_parent(void)
{
	os_unlock(&tcache_lock);
}

void
tcache_postfork_child(void)
{
	os_lock_init(&tcache_lock);
}
