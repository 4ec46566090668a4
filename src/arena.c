#include <string.h>

#include "arena.h"
#include "base.h"
#include "conf.h"
#include "locks.h"
#include "pagemap.h"
#include "pageheap.h"
#include "report.h"
#include "slab.h"

arena_t *arenas;
unsigned narenas;
os_lock_t *arena_bin_locks;
unsigned arena_nthreads;

int
arena_init_all(unsigned n)
{
	/* Heaps 0..n-1 are the arenas', heap n the big-block heap. */
	if (pageheap_init_all(n + 1) != 0)
		return -1;
	arena_t *a = base_alloc(sizeof(arena_t) * n);	/* zeroed */
	if (a == NULL)
		return -1;
	arena_bin_locks = locks_take(n * SC_NSMALL);
	arenas = a;
	narenas = n;
	return 0;
}

/* ---- Bins ------------------------------------------------------------- */

static void bin_collect_locked(arena_t *a, unsigned sc, bin_t *b);

/* b->nfree += d (lock held). */
static void
bin_nfree_add(bin_t *b, int64_t d)
{
	__atomic_store_n(&b->nfree, b->nfree + (uint64_t)d, __ATOMIC_RELAXED);
}

/* b->nempty += d, and a's surplus with it (b's lock held).  (Read
 * without the lock, as hints: nempty by bins_trim, nsurplus by
 * surplus_near and arena_refill.) */
static void
bin_nempty_add(arena_t *a, bin_t *b, int d)
{
	unsigned old = b->nempty, now = old + (unsigned)d;
	__atomic_store_n(&b->nempty, now, __ATOMIC_RELAXED);
	int extra = (now > 1 ? (int)now - 1 : 0) - (old > 1 ? (int)old - 1 : 0);
	if (extra != 0)
		__atomic_fetch_add(&a->nsurplus, (unsigned)extra,
		    __ATOMIC_RELAXED);
}

static void
bin_append(bin_t *b, span_t *s)
{
	s->next = NULL;
	s->prev = b->tail;
	if (b->tail != NULL)
		b->tail->next = s;
	else
		b->head = s;
	b->tail = s;
	s->in_list = 1;
}

static void
bin_remove(bin_t *b, span_t *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		b->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		b->tail = s->prev;
	s->next = s->prev = NULL;
	s->in_list = 0;
}

#define HEAP_STEAL_TRIES 4	/* other page heaps locked, at most */

/* The next heap after a's (from *i, which starts at 1) that may hold
 * npages free pages handed out before, or NULL once HEAP_STEAL_TRIES
 * have been returned or every heap looked at. */
static pageheap_t *
heap_next_reusable(const arena_t *a, size_t npages, unsigned *i,
    unsigned *tries)
{
	for (; *i < narenas && *tries < HEAP_STEAL_TRIES; (*i)++) {
		pageheap_t *x = arena_heap(&arenas[(arena_index(a) + *i) %
		    narenas]);
		if (pageheap_may_reuse(x, npages)) {
			(*i)++;
			(*tries)++;
			return x;
		}
	}
	return NULL;
}

/*
 * Pages for a new slab of arena a: its own free pages first, then free
 * pages that another arena has already touched, and only then memory
 * never touched.  Threads move between CPUs, so the slabs one CPU's
 * refills emptied are often freed while another CPU's refills need new
 * ones: without this, each arena grows to the whole working set in turn.
 * The slab keeps serving a's bin; its pages go back to their own heap.
 * Memory never touched only if `untouched` (else NULL).
 */
static span_t *
slab_pages(arena_t *a, unsigned sc, bool untouched)
{
	size_t npages = sc_table[sc].npages;
	uintptr_t tag = (uintptr_t)sc + 1;
	span_t *s = pageheap_slab_alloc(arena_heap(a), npages, tag,
	    arena_index(a), true);
	pageheap_t *x;
	for (unsigned i = 1, tries = 0; s == NULL &&
	    (x = heap_next_reusable(a, npages, &i, &tries)) != NULL;)
		s = pageheap_slab_alloc(x, npages, tag, arena_index(a), true);
	/* Then pages that big blocks left, before memory never touched:
	 * no worse (a slab faults in what it touches either way), and the
	 * address space is reused.  Last of the reused pages, as an arena's
	 * own are resident and a big block's may not be (arena.h). */
	pageheap_t *big = arena_big_heap();
	if (s == NULL && pageheap_may_reuse(big, npages))
		s = pageheap_slab_alloc(big, npages, tag, arena_index(a), true);
	if (s == NULL && untouched)
		s = pageheap_slab_alloc(arena_heap(a), npages, tag, arena_index(a), false);
	return s;
}

/*
 * A large block for arena a (32 KiB < size < PC_LARGE_SHARED_MIN), in
 * the order of a slab's pages: a's own free pages handed out before, then
 * another arena's, and only then memory never touched.  The block
 * belongs to the heap it lies in, and goes back there.  Per-CPU heaps
 * would otherwise each grow to hold the program's large blocks in turn,
 * while the blocks freed on other CPUs wait resident in theirs (two
 * threads trading blocks, mstress 2 50 25: 20.3 MiB peak RSS before,
 * 14.9 MiB after).  Not the big-block heap's pages: blocks that only
 * touch their ends (the harness's large-sparse) lose more to the
 * leftovers they cover there than the untouched pages they would save
 * (large-sparse/2: 135 MiB peak RSS, 148 MiB when tried).
 */
void *
arena_large_alloc(arena_t *a, size_t size, size_t align, bool *zeroed)
{
	size_t npages = pageheap_large_need(size, align);
	pageheap_t *own = arena_heap(a), *x;
	void *p = NULL;
	/* Each heap's lock is taken only where its hint says it may serve:
	 * a heap with no such pages costs one lock, as before. */
	if (pageheap_may_reuse(own, npages))
		p = pageheap_large_reuse(own, size, align, zeroed);
	for (unsigned i = 1, tries = 0; p == NULL &&
	    (x = heap_next_reusable(a, npages, &i, &tries)) != NULL;)
		p = pageheap_large_reuse(x, size, align, zeroed);
	if (p == NULL)
		p = pageheap_large_alloc(own, size, align, zeroed);
	return p;
}

/* Give an empty slab's pages back to its page heap (bin lock held). */
static void
slab_free_pages(span_t *s)
{
	slab_debug_fini(s);
	pageheap_slab_free(s);
}

/* Unlink empty slab s from bin b and give its pages back (bin lock held). */
static void
bin_free_slab(bin_t *b, span_t *s)
{
	bin_remove(b, s);
	b->curslabs--;
	bin_nfree_add(b, -(int64_t)sc_table[s->sc].nobjs);
	slab_free_pages(s);
}

static span_t *
slab_new(arena_t *a, unsigned sc, bool untouched)
{
	span_t *s = slab_pages(a, sc, untouched);
	if (s == NULL)
		return NULL;
	slab_init(s, sc);
	if (opt_debug && slab_debug_init(s) != 0) {
		slab_free_pages(s);
		return NULL;
	}
	return s;
}

/* When a bin with no free object left makes a new slab. */
enum grow {
	GROW_NEVER,
	GROW_ALWAYS,
	GROW_UNLESS_OTHER,	/* unless other_arena_surplus */
};

static bool other_arena_surplus(arena_t *a, unsigned sc);
static unsigned bins_trim(arena_t *a, bool idle_only);

/*
 * The arenas whose bins give back the empty slabs they keep past their
 * first before a's bin grows into memory never touched: a's and the next
 * HEAP_STEAL_TRIES, whose heaps slab_pages looks at next (their slabs lie
 * mostly in their own heaps).  A thread moves between CPUs, so the slabs
 * one arena's bins keep are as much in the way of another arena's growth
 * as of their own: the harness's thread-churn at 1 thread runs each short
 * thread on either CPU's arena.  Bounded so that a growing bin takes at
 * most a few other CPUs' bin locks, and only those of bins that keep more
 * than one empty slab.
 */
static unsigned
trim_arenas(void)
{
	return PC_MIN(narenas, (unsigned)HEAP_STEAL_TRIES + 1);
}

/* The i-th of them for a (i < trim_arenas()), a itself first. */
static arena_t *
trim_arena(const arena_t *a, unsigned i)
{
	return &arenas[(arena_index(a) + i) % narenas];
}

/* Whether one of those arenas' bins keeps such slabs (a hint: read
 * without their locks). */
static bool
surplus_near(const arena_t *a)
{
	for (unsigned i = 0; i < trim_arenas(); i++)
		if (__atomic_load_n(&trim_arena(a, i)->nsurplus,
		    __ATOMIC_RELAXED))
			return true;
	return false;
}

/* Pop up to n objects of b's slabs into out (bin lock held), with a new
 * slab whenever b has none with free objects as grow says, else stopping
 * there.  Unless GROW_ALWAYS, a new slab is not made of memory never
 * touched while a bin of a or of its next arenas (surplus_near) keeps
 * more than one empty slab: *trim is then set, and the caller has them
 * give those back (no bin lock may be held meanwhile) before it grows. */
static unsigned
bin_pop_locked(arena_t *a, unsigned sc, bin_t *b, void **out, unsigned n,
    enum grow grow, bool *trim)
{
	unsigned got = 0;
	span_t *fresh = NULL;	/* made here, never counted as kept */
	while (got < n) {
		span_t *s = b->head;
		if (s == NULL) {
			PC_ASSERT(b->nempty == 0);	/* all surplus is others' */
			if (grow == GROW_NEVER || (grow == GROW_UNLESS_OTHER &&
			    other_arena_surplus(a, sc)))
				break;
			bool any = grow == GROW_ALWAYS || !surplus_near(a);
			s = slab_new(a, sc, any);
			if (s == NULL) {
				*trim = !any;
				break;
			}
			fresh = s;
			b->nslabs++;
			b->curslabs++;
			bin_append(b, s);
			bin_nfree_add(b, sc_table[sc].nobjs);
		}
		/* Only this bin's slabs are ever linked here (and flushes
		 * check every pointer): anything else is corruption. */
		PC_CHECK(s->kind == SPAN_SLAB && s->sc == sc &&
		    s->arena == arena_index(a), "slab in the wrong bin");
		if (s != fresh && slab_is_empty(s)) {
			PC_ASSERT(b->nempty > 0);
			bin_nempty_add(a, b, -1);
		}
		got += slab_pop(s, out + got, n - got);
		if (slab_is_full(s))
			bin_remove(b, s);
	}
	bin_nfree_add(b, -(int64_t)got);
	b->nobj_out += got;
	return got;
}

/* A refill from a's bin; counted (statistics: once per arena_refill) if
 * first.  *trim as bin_pop_locked sets it. */
static unsigned
bin_refill(arena_t *a, unsigned sc, void **out, unsigned n, enum grow grow,
    bool first, unsigned *peer, bool *trim)
{
	bin_t *b = &a->bins[sc];
	os_lock(bin_lock(a, sc));
	/* (Read without the lock by other arenas' refills.) */
	__atomic_store_n(&b->nrefills, b->nrefills + first, __ATOMIC_RELAXED);
	/* Blocks other CPUs' threads freed here first: in a producer/
	 * consumer program they are what this refill hands out. */
	bin_collect_locked(a, sc, b);
	unsigned got = bin_pop_locked(a, sc, b, out, n, grow, trim);
	if (peer != NULL)
		*peer = b->peer;
	os_unlock(bin_lock(a, sc));
	return got;
}

/* Other arenas' bins looked at by one refill, at most. */
#define REFILL_OTHER_SCAN 16
/* Slabs' worth of free objects another arena's bin must hold. */
#define REFILL_OTHER_SLABS 4

/*
 * A refill whose bin runs out takes the free objects of another arena's
 * bin of the class, if one is idle and has plenty, before it makes a new
 * slab.  Frees go to the arena that owns the block's slab, refills to the
 * one arena_choose gives (the CPU's, unless the thread is alone): a
 * thread that moves to another CPU (or a server's new thread, placed
 * anywhere) frees into one arena and allocates from the other.
 * Without this, the first one's slabs drain to a few live objects each
 * while the second carves new ones, and the live set ends up spread over
 * twice the pages: larson-sized at 1 thread (pcb_larson_sized 1 10
 * 1500000 40000 8 1000) held 35.8 MB peak RSS (28 MB now, as with
 * narenas:1).  Blocks taken this way stay their arena's and go back to
 * it when freed.
 *
 * Idle: the bin has not refilled since ours last ran out.  A bin that its
 * CPU's threads drain and fill often holds plenty for a moment (a
 * producer's consumers' frees, collected in bulk), and refilling from it
 * made its threads wait for its lock (xmalloc-64 at 8 threads, bin waits
 * 58 -> 1202) and moved its cache lines between CPUs.
 *
 * The other bins' counts are read without their locks (a hint), under
 * ours when it runs out: a refill that finds no idle bin takes one lock,
 * as before (unless it trims first, surplus_near); one that does takes
 * ours again for what that bin lacked.
 * No two bin locks are ever held together.  Statistics count the refill
 * once, on a's bin; the objects on the bins that gave them.
 */
static bool
other_arena_surplus(arena_t *a, unsigned sc)
{
	bin_t *b = &a->bins[sc];
	uint64_t min = (uint64_t)REFILL_OTHER_SLABS * sc_table[sc].nobjs;
	unsigned scan = PC_MIN(narenas - 1, (unsigned)REFILL_OTHER_SCAN);
	for (unsigned i = 1; i <= scan; i++) {
		unsigned k = (arena_index(a) + i) % narenas;
		const bin_t *x = &arenas[k].bins[sc];
		if (__atomic_load_n(&x->nfree, __ATOMIC_RELAXED) < min)
			continue;
		uint64_t r = __atomic_load_n(&x->nrefills, __ATOMIC_RELAXED);
		bool idle = b->peer == k && b->peer_nrefills == r;
		b->peer = k;
		b->peer_nrefills = r;
		return idle;
	}
	return false;
}

unsigned
arena_refill(arena_t *a, unsigned sc, void **out, unsigned n)
{
	/* One locked pass, as before, unless a's bin runs out while an
	 * idle arena has free objects to spare, or while bins keep empty
	 * slabs past their first that a new slab could take. */
	unsigned peer;
	bool trim = false;
	unsigned got = bin_refill(a, sc, out, n, GROW_UNLESS_OTHER, true,
	    &peer, &trim);
	if (got == n)
		return got;
	/* (Or out of memory: the peer may then be any arena, a; a's bin
	 * is tried again.  Not when the bin stopped to trim: no peer was
	 * idle, and the bin grows as it did before.) */
	if (peer != arena_index(a) && !trim)
		got += bin_refill(&arenas[peer], sc, out + got, n - got,
		    GROW_NEVER, false, NULL, &trim);
	if (got < n) {
		/* a's bin would grow into new memory: the extra kept slabs
		 * of a's and the next arenas' bins go back first, for it to
		 * take (surplus_near; one lock at a time). */
		for (unsigned i = 0; trim && i < trim_arenas(); i++) {
			arena_t *x = trim_arena(a, i);
			if (__atomic_load_n(&x->nsurplus, __ATOMIC_RELAXED))
				bins_trim(x, false);
		}
		got += bin_refill(a, sc, out + got, n - got, GROW_ALWAYS,
		    false, NULL, &trim);
	}
	if (got == 0) {
		/* Out of memory: other bins' kept empty slabs (no lock is
		 * held here) and every heap's free pages go back, once. */
		arena_release_all(true);
		got = bin_refill(a, sc, out, n, GROW_ALWAYS, false, NULL,
		    &trim);
		if (got == 0 && peer != arena_index(a))
			got = bin_refill(&arenas[peer], sc, out, n,
			    GROW_NEVER, false, NULL, &trim);
	}
	return got;
}

/* A report's end: who called, or where it was found; then abort unless
 * abort_on_error is off. */
static void
misuse_finish(pc_msg_t *m, const void *caller, bool flushed)
{
	if (caller != NULL) {
		pc_msg_str(m, ", called from ");
		pc_msg_hex(m, (uintptr_t)caller);
	} else if (flushed) {
		pc_msg_str(m, ", found when a thread cache was flushed");
	}
	pc_msg_write(m);
	PC_MISUSE_END("heap misuse detected (abort_on_error:false only warns)");
}

void
arena_report_size(const char *op, const void *p, size_t size, size_t bsize,
    const void *caller)
{
	pc_msg_t m;
	pc_msg_start(&m);
	pc_msg_str(&m, op);
	pc_msg_str(&m, " of ");
	pc_msg_hex(&m, (uintptr_t)p);
	pc_msg_str(&m, " with a wrong size ");
	pc_msg_u64(&m, size);
	pc_msg_str(&m, " (");
	pc_msg_u64(&m, bsize);
	pc_msg_str(&m, "-byte block)");
	misuse_finish(&m, caller, false);
}

void
arena_report_misuse(enum misuse what, const char *op, const void *p,
    const span_t *s, unsigned sc, size_t size, const void *caller)
{
	size_t bsize = sc_table[sc].size;
	if (what == MISUSE_SIZE) {
		arena_report_size(op, p, size, bsize, caller);
		return;
	}
	bool is_free = strcmp(op, "free") == 0 ||
	    strcmp(op, "free_sized") == 0;
	pc_msg_t m;
	pc_msg_start(&m);
	switch (what) {
	case MISUSE_INTERIOR: {
		size_t off = (uintptr_t)p - s->base;
		bool inside = (uintptr_t)p >= s->base &&
		    off < (size_t)sc_table[sc].nobjs * bsize;
		pc_msg_str(&m, op);
		pc_msg_str(&m, inside ? " of an interior pointer " :
		    " of an invalid pointer ");
		pc_msg_hex(&m, (uintptr_t)p);
		pc_msg_str(&m, inside ? " (" : " (past the last ");
		pc_msg_u64(&m, bsize);
		pc_msg_str(&m, inside ? "-byte block at " :
		    "-byte block of the slab at ");
		pc_msg_hex(&m, inside ? s->base + off / bsize * bsize :
		    s->base);
		pc_msg_str(&m, ")");
		break;
	}
	case MISUSE_FREED:
	case MISUSE_CACHED:
	case MISUSE_PENDING:
		if (is_free) {
			pc_msg_str(&m, "double free of ");
		} else {
			pc_msg_str(&m, op);
			pc_msg_str(&m, " of a freed block ");
		}
		pc_msg_hex(&m, (uintptr_t)p);
		pc_msg_str(&m, " (");
		pc_msg_u64(&m, bsize);
		pc_msg_str(&m, what == MISUSE_CACHED ?
		    "-byte block, already in this thread's cache)" :
		    what == MISUSE_PENDING ?
		    "-byte block, already freed: waiting in another thread's "
		    "cache, or on its way back to its slab)" :
		    "-byte block, free in its slab: freed before, or never "
		    "allocated)");
		break;
	case MISUSE_STALE:
		pc_msg_str(&m, "invalid pointer ");
		pc_msg_hex(&m, (uintptr_t)p);
		pc_msg_str(&m, " in a thread cache of ");
		pc_msg_u64(&m, bsize);
		pc_msg_str(&m, "-byte blocks (freed twice, or not a block: its "
		    "page holds no such block now), dropped");
		break;
	case MISUSE_SIZE:	/* arena_report_size, above */
		break;
	}
	misuse_finish(&m, caller, what != MISUSE_STALE);
}

/*
 * Whether p may go back to slab bin (a, sc), whose lock we hold: its page
 * must still be a slab of this class served by this bin.  Anything else in
 * a thread cache (a double free whose first copy was flushed, a pointer
 * cached by a build without the free-time checks) names a page that may
 * since have become a slab of another class, a free run or unmapped
 * memory.  The entry's tag and the span's class and arena are set before
 * the span serves a bin (refill, under that bin's lock), so if they name
 * our bin they cannot change while we hold its lock.
 */
static span_t *
flush_span(const arena_t *a, unsigned sc, const void *p)
{
	uintptr_t e = pagemap_lookup(p);
	span_t *s = pagemap_span(e);
	if (PC_UNLIKELY((e & PM_SC_MASK) != sc + 1 || s->kind != SPAN_SLAB ||
	    s->sc != sc || s->arena != arena_index(a)))
		return NULL;
	return s;
}

/* Report misuse found while freeing runs into bin b (lock held): unlocked
 * first, as abort_on_error may abort. */
static void
bin_report(arena_t *a, enum misuse what, const void *p, const span_t *s,
    unsigned sc)
{
	os_unlock(bin_lock(a, sc));
	arena_report_misuse(what, "free", p, s, sc, 0, NULL);
	os_lock(bin_lock(a, sc));
}

/*
 * Free the blocks of runs[0..n) (class sc, slabs of a: remote.h) into
 * their slabs; bin lock held.  Each run's first block is looked up and
 * checked as a pointer alone would be; its other blocks are then blocks
 * of the same slab at known indexes, checked against the bitmap as a
 * word.  A block that is not a live block of this bin is reported (with
 * the lock dropped) and left alone; the run is then looked up again, as
 * its slab may have changed meanwhile.
 */
static void
bin_free_locked(arena_t *a, unsigned sc, bin_t *b, const free_run_t *runs,
    unsigned n)
{
	const sc_info_t *c = &sc_table[sc];
	for (unsigned i = 0; i < n; i++) {
		char *p = runs[i].p;
		uint64_t mask = runs[i].mask;
	again:;
		span_t *s = flush_span(a, sc, p);
		uint64_t idx = s != NULL ? sc_obj_start((uintptr_t)p - s->base,
		    c->inv, c->shift) : 0;
		if (PC_UNLIKELY(s == NULL || idx >= c->nobjs)) {
			/* Every block of the run is then as wrong as p. */
			for (uint64_t m = mask; m != 0; m &= m - 1)
				bin_report(a, s == NULL ? MISUSE_STALE :
				    MISUSE_INTERIOR, p + (size_t)
				    __builtin_ctzll(m) * c->size, s, sc);
			continue;
		}
		/* Blocks past the slab's last, and blocks already free. */
		uint64_t room = c->nobjs - idx;
		uint64_t past = room >= 64 ? 0 : mask & ~(((uint64_t)1 << room)
		    - 1);
		mask &= ~past;
		unsigned w = (unsigned)(idx >> 6), sh = (unsigned)(idx & 63);
		uint64_t lo = mask << sh, hi = sh != 0 ? mask >> (64 - sh) : 0;
		uint64_t free_now = s->bitmap[w] >> sh;
		if (hi != 0)
			free_now |= s->bitmap[w + 1] << (64 - sh);
		uint64_t dup = mask & free_now;
		if (PC_UNLIKELY((past | dup) != 0)) {
			for (uint64_t m = past; m != 0; m &= m - 1)
				bin_report(a, MISUSE_INTERIOR, p +
				    (size_t)__builtin_ctzll(m) * c->size, s, sc);
			for (uint64_t m = dup; m != 0; m &= m - 1)
				bin_report(a, MISUSE_FREED, p +
				    (size_t)__builtin_ctzll(m) * c->size, s, sc);
			mask &= ~dup;
			if (mask == 0)
				continue;
			goto again;	/* the lock was dropped */
		}
		__atomic_store_n(&s->bitmap[w], s->bitmap[w] | lo,
		    __ATOMIC_RELAXED);
		if (hi != 0)
			__atomic_store_n(&s->bitmap[w + 1], s->bitmap[w + 1] |
			    hi, __ATOMIC_RELAXED);
		unsigned k = (unsigned)pc_popcount64(mask);
		bool was_full = s->nfree == 0;
		s->nfree = (uint16_t)(s->nfree + k);
		bin_nfree_add(b, k);
		b->nobj_in += k;
		if (was_full)
			bin_append(b, s);
		if (slab_is_empty(s)) {
			if (b->nempty == 0 || (b->nempty + 1) *
			    sc_table[sc].npages <= BIN_KEEP_EMPTY_PAGES) {
				bin_nempty_add(a, b, 1);
				continue;
			}
			bin_free_slab(b, s);
		}
	}
}

/* Free the remote batches pending on bin b (lock held): each counts as a
 * flush, as it would have under the lock. */
static void
bin_collect_locked(arena_t *a, unsigned sc, bin_t *b)
{
	remote_batch_t *rb = remote_take(&b->remote);
	while (rb != NULL) {
		remote_batch_t *next = rb->next;
		b->nflushes++;
		bin_free_locked(a, sc, b, rb->runs, rb->n);
		remote_batch_put(rb);
		rb = next;
	}
}

void
arena_flush_runs(arena_t *a, unsigned sc, const free_run_t *runs,
    unsigned n)
{
	bin_t *b = &a->bins[sc];
	os_lock(bin_lock(a, sc));
	b->nflushes++;
	bin_free_locked(a, sc, b, runs, n);
	bin_collect_locked(a, sc, b);
	os_unlock(bin_lock(a, sc));
}

void
arena_flush(arena_t *a, unsigned sc, void **ptrs, unsigned n)
{
	enum { CHUNK = 64 };
	free_run_t runs[CHUNK];
	for (unsigned done = 0; done < n; done += CHUNK) {
		unsigned k = PC_MIN(n - done, (unsigned)CHUNK);
		for (unsigned i = 0; i < k; i++)
			runs[i] = (free_run_t){ ptrs[done + i], 1 };
		arena_flush_runs(a, sc, runs, k);
	}
}

void
arena_collect(arena_t *a)
{
	for (unsigned c = 0; c < SC_NSMALL; c++) {
		bin_t *b = &a->bins[c];
		if (!remote_pending(&b->remote))
			continue;
		os_lock(bin_lock(a, c));
		bin_collect_locked(a, c, b);
		os_unlock(bin_lock(a, c));
	}
}


/* ---- Purging ---------------------------------------------------------- */

size_t
arena_release_all(bool bins)
{
	size_t purged = 0;
	for (unsigned i = 0; i < narenas; i++)
		purged += arena_purge_all(&arenas[i], bins);
	/* A later arena's remote batches, collected there, may have emptied
	 * slabs on pages of a heap purged earlier in that loop (a slab takes
	 * other heaps' free pages): purge every heap once more. */
	return purged + pageheap_purge_all();
}

/* Free the empty slabs of bin b (lock held) until it keeps `keep`, the
 * ones nearest the tail first; marks their pages' heaps in other (if
 * given). */
static unsigned
bin_free_empties(arena_t *a, bin_t *b, unsigned keep, bool *other)
{
	unsigned freed = 0;
	span_t *prev;
	for (span_t *s = b->tail; s != NULL && b->nempty > keep; s = prev) {
		prev = s->prev;
		if (!slab_is_empty(s))
			continue;
		bin_nempty_add(a, b, -1);
		if (other != NULL)
			other[pageheap_index(pageheap_of(s))] = true;
		bin_free_slab(b, s);
		freed++;
	}
	PC_ASSERT(b->nempty <= keep);
	return freed;
}

uint64_t arena_next_idle_trim_ns;

static unsigned
bins_trim(arena_t *a, bool idle_only)
{
	unsigned freed = 0;
	for (unsigned c = 0; c < SC_NSMALL; c++) {
		bin_t *b = &a->bins[c];
		if (__atomic_load_n(&b->nempty, __ATOMIC_RELAXED) <= 1)
			continue;
		os_lock(bin_lock(a, c));
		if (!idle_only || b->nrefills == b->idle_nrefills)
			freed += bin_free_empties(a, b, 1, NULL);
		if (idle_only)
			b->idle_nrefills = b->nrefills;
		os_unlock(bin_lock(a, c));
	}
	return freed;
}

unsigned
arena_bins_idle_trim(arena_t *a)
{
	return bins_trim(a, true);
}

size_t
arena_purge_all(arena_t *a, bool bins)
{
	/* The empty slabs each bin keeps go too: one may be all that holds
	 * a region, and its address space, in place.  Not when the caller
	 * may hold a bin lock (bins false; arena_refill calls this only
	 * with none held).  Their pages may belong to another arena's
	 * heap: that one is purged too. */
	bool other[PC_MAX_ARENAS + 1] = { false };
	for (unsigned c = 0; bins && c < SC_NSMALL; c++) {
		bin_t *b = &a->bins[c];
		os_lock(bin_lock(a, c));
		bin_collect_locked(a, c, b);
		bin_free_empties(a, b, 0, other);
		os_unlock(bin_lock(a, c));
	}
	other[arena_index(a)] = true;
	if (arena_big(a) != NULL)
		other[pageheap_index(arena_big(a))] = true;
	size_t purged = 0;
	for (unsigned i = 0; i < npageheaps; i++)
		if (other[i])
			purged += pageheap_purge(&pageheaps[i]);
	return purged;
}

/* ---- Fork ------------------------------------------------------------- */

void
arena_prefork(void)
{
	for (unsigned i = 0; i < narenas; i++)
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_lock(bin_lock(&arenas[i], c));
	pageheap_prefork();
}

void
arena_postfork_parent(void)
{
	pageheap_postfork_parent();
	for (unsigned i = 0; i < narenas; i++)
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_unlock(bin_lock(&arenas[i], c));
}
