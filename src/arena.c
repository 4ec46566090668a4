#include <string.h>

#include "arena.h"
#include "base.h"
#include "report.h"
#include "debug.h"
#include "conf.h"
#include "pagemap.h"
#include "slab.h"

arena_t *arenas;
unsigned narenas;

int
arena_init_all(unsigned n)
{
	arena_t *a = base_alloc(sizeof(arena_t) * n);
	if (a == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		a[i].index = i;
		os_lock_init(&a[i].lock);
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_lock_init(&a[i].bins[c].lock);
	}
	arenas = a;
	narenas = n;
	return 0;
}

/* ---- Free runs: size buckets ------------------------------------------ */

static unsigned
run_bucket(size_t npages)
{
	if (npages <= ARENA_EXACT_BUCKETS)
		return (unsigned)npages - 1;
	unsigned lg = 63 - (unsigned)__builtin_clzll(npages);
	unsigned b = ARENA_EXACT_BUCKETS + (lg - 9) * 4 +
	    (unsigned)((npages >> (lg - 2)) & 3);
	return PC_MIN(b, ARENA_NBUCKETS - 1);
}

static void
run_insert(arena_t *a, span_t *s)
{
	unsigned b = run_bucket(s->npages);
	s->prev = NULL;
	s->next = a->runs[b];
	if (s->next != NULL)
		s->next->prev = s;
	a->runs[b] = s;
	a->run_mask[b / 64] |= (uint64_t)1 << (b % 64);
	s->in_list = 1;
}

static void
run_remove(arena_t *a, span_t *s)
{
	unsigned b = run_bucket(s->npages);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		a->runs[b] = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (a->runs[b] == NULL)
		a->run_mask[b / 64] &= ~((uint64_t)1 << (b % 64));
	s->next = s->prev = NULL;
	s->in_list = 0;
}

/* First non-empty bucket at or after b, or ARENA_NBUCKETS. */
static unsigned
run_next_bucket(const arena_t *a, unsigned b)
{
	while (b < ARENA_NBUCKETS) {
		uint64_t m = a->run_mask[b / 64] >> (b % 64);
		if (m != 0)
			return b + (unsigned)__builtin_ctzll(m);
		b = (b / 64 + 1) * 64;
	}
	return ARENA_NBUCKETS;
}

/*
 * The lowest-addressed of the first RUN_FIT_SCAN runs of list `s` that
 * hold npages pages.  Preferring low addresses packs live memory
 * together, so the free runs at the top stay whole and go back to the OS.
 */
#define RUN_FIT_SCAN 32

static span_t *
run_lowest_fit(span_t *s, size_t npages)
{
	span_t *best = NULL;
	for (unsigned k = 0; s != NULL && k < RUN_FIT_SCAN; s = s->next, k++)
		if (s->npages >= npages && (best == NULL || s->base < best->base))
			best = s;
	return best;
}

/* A free run of at least npages pages, or NULL: the smallest bucket that
 * has one, and the lowest address among its first runs. */
static span_t *
run_find(arena_t *a, size_t npages)
{
	unsigned b = run_bucket(npages);
	if (npages > ARENA_EXACT_BUCKETS) {
		/* Runs in a shared bucket may be smaller than asked. */
		span_t *s = run_lowest_fit(a->runs[b], npages);
		if (s != NULL)
			return s;
		for (s = a->runs[b]; s != NULL; s = s->next)
			if (s->npages >= npages)
				return s;
		b++;
	}
	for (b = run_next_bucket(a, b); b < ARENA_NBUCKETS;
	    b = run_next_bucket(a, b + 1)) {
		span_t *s = run_lowest_fit(a->runs[b], npages);
		if (s != NULL)
			return s;
		if (b == ARENA_NBUCKETS - 1) {
			for (s = a->runs[b]; s != NULL; s = s->next)
				if (s->npages >= npages)
					return s;
		}
	}
	return NULL;
}

static void
set_entries(span_t *s, uintptr_t entry)
{
	int err = pagemap_set(s->base, s->npages, entry);
	PC_CHECK(err == 0, "page map leaf missing in a reserved region");
}

/* ---- Regions ---------------------------------------------------------- */

static size_t decay_locked(arena_t *a, uint64_t now, bool all);

/* Merge free span s, which starts where free span rt may start, with it. */
static void
grow_merge_right(arena_t *a, span_t *s)
{
	uintptr_t end = s->base + (s->npages << PC_PAGE_SHIFT);
	span_t *rt = pagemap_span(pagemap_lookup((void *)end));
	if (rt == NULL || rt->kind != SPAN_FREE || rt->region != s->region)
		return;
	run_remove(a, rt);
	if (rt->dirty) {
		a->dirty += s->npages;	/* the run is dirty as a whole */
		s->dirty = 1;
		s->dirty_ns = rt->dirty_ns;
	}
	s->npages += rt->npages;
	set_entries(rt, (uintptr_t)s);
	span_delete(rt);
}

static span_t *
region_grow_locked(arena_t *a, size_t npages)
{
	size_t size = PC_MAX(ARENA_REGION_MIN,
	    PC_ALIGN_UP(npages << PC_PAGE_SHIFT, PC_CHUNK));
	region_t *r = region_new();
	span_t *s = span_new();
	void *p = NULL;
	/* Ask for the addresses just below the newest region: if we get
	 * them, the two become one region, and free runs coalesce across
	 * the seam instead of fragmenting over many small regions. */
	region_t *below = a->regions;
	void *hint = NULL;
	if (below != NULL && below->base > size && os_can_merge_reservations())
		hint = (void *)(below->base - size);
	if (r != NULL && s != NULL)
		p = os_reserve_near(size, PC_CHUNK, hint);
	if (p == NULL || pagemap_reserve((uintptr_t)p, size >> PC_PAGE_SHIFT)) {
		if (p != NULL)
			os_release(p, size);
		if (r != NULL)
			region_delete(r);
		if (s != NULL)
			span_delete(s);
		return NULL;
	}
	os_hugepage(p, size, (int)opt_thp);
	a->mapped += size;
	s->base = (uintptr_t)p;
	s->npages = size >> PC_PAGE_SHIFT;
	s->kind = SPAN_FREE;
	s->arena = (uint16_t)a->index;
	s->dirty = 0;
	if (hint != NULL && p == hint) {
		region_delete(r);
		below->base = (uintptr_t)p;
		below->npages += s->npages;
		s->region = below;
		set_entries(s, (uintptr_t)s);
		grow_merge_right(a, s);
	} else {
		r->base = (uintptr_t)p;
		r->npages = size >> PC_PAGE_SHIFT;
		r->arena = a->index;
		r->used_lo = r->used_hi = 0;
		r->next = a->regions;
		a->regions = r;
		s->region = r;
		set_entries(s, (uintptr_t)s);
	}
	run_insert(a, s);
	return s;
}

/* a->dirty fell (pages reused, purged or released): track the low mark. */
static inline void
dirty_note_low(arena_t *a)
{
	if (a->dirty < a->dirty_min)
		a->dirty_min = a->dirty;
}

static void
region_release_locked(arena_t *a, span_t *s)
{
	region_t *r = s->region;
	PC_ASSERT(s->base == r->base && s->npages == r->npages);
	run_remove(a, s);
	set_entries(s, 0);
	for (region_t **pp = &a->regions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (s->dirty) {
		a->dirty -= s->npages;
		dirty_note_low(a);
	}
	__atomic_store_n(&a->used_pages, a->used_pages -
	    ((r->used_hi - r->used_lo) >> PC_PAGE_SHIFT), __ATOMIC_RELAXED);
	a->mapped -= r->npages << PC_PAGE_SHIFT;
	os_release((void *)r->base, r->npages << PC_PAGE_SHIFT);
	region_delete(r);
	span_delete(s);
}

static bool
span_is_whole_region(const span_t *s)
{
	return s->base == s->region->base && s->npages == s->region->npages;
}

/* ---- Decay ------------------------------------------------------------ */

/*
 * Dirty free runs go back to the OS once they have stayed free for
 * decay_ms.  Passes run from slow paths (page frees, and a tick in the
 * thread caches' refill/flush) or the background thread, every decay_ms/16
 * (between 1 and 500 ms).
 *
 * A purge that the program undoes a moment later is work for nothing: a
 * page freed and reused within milliseconds, as a steady churn does, costs
 * an madvise and a page fault every time round.  With a small decay_ms
 * that made a churning program three times slower (stress_random at
 * decay_ms:1).  So a pass purges at most as many pages as stayed dirty
 * throughout the last DECAY_REUSE_WINDOW_NS: the fewest dirty pages seen in
 * that window.  Pages that sat free the whole window always fit the budget
 * (they were counted all along), so memory that is really idle still goes
 * back after decay_ms (plus at most one window); pages the program keeps
 * reusing do not.  decay_ms:0 and trim (all) purge at once, as documented.
 */
#define DECAY_REUSE_WINDOW_NS ((uint64_t)250 * 1000000u)

static size_t
decay_budget(arena_t *a, uint64_t now)
{
	if (now - a->reuse_window_ns >= DECAY_REUSE_WINDOW_NS) {
		a->purge_budget = a->dirty_min;
		a->dirty_min = a->dirty;
		a->reuse_window_ns = now;
	}
	return a->purge_budget;
}

static size_t
decay_locked(arena_t *a, uint64_t now, bool all)
{
	uint64_t decay_ns = (uint64_t)opt_decay_ms * 1000000u;
	if (!all && decay_ns != 0 && now < a->next_decay_ns)
		return 0;
	bool budgeted = !all && decay_ns != 0;
	size_t budget = budgeted ? decay_budget(a, now) : 0;
	size_t purged = 0;
	for (unsigned b = run_next_bucket(a, 0); b < ARENA_NBUCKETS;
	    b = run_next_bucket(a, b + 1)) {
		span_t *next;
		for (span_t *s = a->runs[b]; s != NULL; s = next) {
			next = s->next;
			if (!all && (!s->dirty || s->dirty_ns + decay_ns > now))
				continue;
			if (budgeted && s->dirty && s->npages > budget)
				continue;	/* reused lately: keep it */
			if (s->dirty) {
				purged += s->npages;
				if (budgeted)
					budget -= s->npages;
			}
			/* A region that stayed wholly free goes back whole:
			 * address space too. */
			if (span_is_whole_region(s)) {
				region_release_locked(a, s);
				continue;
			}
			if (!s->dirty)
				continue;
			os_purge((void *)s->base, s->npages << PC_PAGE_SHIFT);
			s->dirty = 0;
			a->dirty -= s->npages;
		}
	}
	if (budgeted)
		a->purge_budget = budget;
	dirty_note_low(a);
	a->npurged += purged;
	if (purged)
		a->npurge_passes++;
	/* Passes every decay/16, between 1 and 500 ms: a run is purged at
	 * most half a second after it has decayed. */
	uint64_t step = PC_MIN(PC_MAX(decay_ns / 16, (uint64_t)1000000),
	    (uint64_t)500000000);
	__atomic_store_n(&a->next_decay_ns, now + step, __ATOMIC_RELAXED);
	return purged;
}

/* background_thread:auto starts the purging thread once an arena holds
 * this many dirty pages: a big heap that is freed and then left idle gets
 * its memory back, and small processes never get a thread. */
#define DIRTY_AUTO_THREAD_PAGES ((size_t)64 << (20 - PC_PAGE_SHIFT))

bool arena_dirty_high;

void
arena_decay_tick(arena_t *a)
{
	if (__atomic_load_n(&a->dirty, __ATOMIC_RELAXED) == 0)
		return;
	uint64_t now = os_now_ns();
	if (now < __atomic_load_n(&a->next_decay_ns, __ATOMIC_RELAXED))
		return;
	os_lock(&a->lock);
	decay_locked(a, now, false);
	os_unlock(&a->lock);
}

/* ---- Page heap -------------------------------------------------------- */

/*
 * Pages of a region ever handed out lie in [used_lo, used_hi) (empty when
 * equal): below the hull's top and above its bottom they may be resident,
 * outside it they have never been touched.  a->used_pages sums the hulls.
 */
static void
region_touch(arena_t *a, region_t *r, uintptr_t lo, uintptr_t hi)
{
	size_t before = r->used_hi - r->used_lo;
	if (before != 0 && lo >= r->used_lo && hi <= r->used_hi)
		return;		/* the common case: no store at all */
	if (before == 0) {
		r->used_lo = lo;
		r->used_hi = hi;
	} else {
		r->used_lo = PC_MIN(r->used_lo, lo);
		r->used_hi = PC_MAX(r->used_hi, hi);
	}
	__atomic_store_n(&a->used_pages, a->used_pages +
	    ((r->used_hi - r->used_lo - before) >> PC_PAGE_SHIFT),
	    __ATOMIC_RELAXED);
}

/* Would the first npages pages of free run s be pages never touched? */
static bool
run_is_fresh(const span_t *s, size_t npages)
{
	const region_t *r = s->region;
	uintptr_t end = s->base + (npages << PC_PAGE_SHIFT);
	return r->used_lo == r->used_hi || s->base < r->used_lo ||
	    end > r->used_hi;
}

/*
 * Carve npages pages aligned to align_pages out of the free runs, growing
 * the arena if needed.  The result has kind `kind`, belongs to arena
 * `owner`'s bins or large blocks, and its page-map entries are
 * `(uintptr_t)span | tag`.  With reuse_only (align_pages 1), only pages
 * handed out before are taken: NULL rather than touching new memory.
 */
static span_t *
pages_alloc_locked(arena_t *a, size_t npages, size_t align_pages,
    uint8_t kind, unsigned owner, bool reuse_only, bool *zeroed)
{
	size_t need = npages + (align_pages > 1 ? align_pages - 1 : 0);
	span_t *run = run_find(a, need);
	if (reuse_only && (run == NULL || run_is_fresh(run, npages)))
		return NULL;
	/* Both descriptors we may need, taken before anything changes. */
	span_t *mid = span_new();
	span_t *tail = span_new();
	if (mid == NULL || tail == NULL)
		run = NULL;
	else if (run == NULL)
		run = region_grow_locked(a, need);
	if (run == NULL) {
		if (mid != NULL)
			span_delete(mid);
		if (tail != NULL)
			span_delete(tail);
		return NULL;
	}
	run_remove(a, run);
	uintptr_t start = PC_ALIGN_UP(run->base, align_pages << PC_PAGE_SHIFT);
	size_t lead = (start - run->base) >> PC_PAGE_SHIFT;
	size_t trail = run->npages - lead - npages;
	bool dirty = run->dirty;
	region_t *reg = run->region;
	if (dirty) {
		a->dirty -= npages;
		dirty_note_low(a);
	}

	/* The run keeps the lead pages; the tail gets a new descriptor. */
	if (trail > 0) {
		*tail = *run;
		tail->base = start + (npages << PC_PAGE_SHIFT);
		tail->npages = trail;
		set_entries(tail, (uintptr_t)tail);
		run_insert(a, tail);
		tail = NULL;
	}
	if (lead > 0) {
		run->npages = lead;
		run_insert(a, run);
	} else {
		span_delete(run);
		run = NULL;
	}
	if (tail != NULL)
		span_delete(tail);

	mid->base = start;
	mid->npages = npages;
	mid->region = reg;
	mid->kind = kind;
	mid->arena = (uint16_t)owner;
	region_touch(a, reg, start, start + (npages << PC_PAGE_SHIFT));
	__atomic_store_n(&a->active, a->active + npages, __ATOMIC_RELAXED);
	*zeroed = !dirty;
	return mid;
}

/* pages_alloc_locked under a's lock, with the page-map entries set. */
static span_t *
pages_take(arena_t *a, size_t npages, size_t align_pages, uint8_t kind,
    uintptr_t tag, unsigned owner, bool reuse_only, bool *zeroed)
{
	os_lock(&a->lock);
	span_t *s = pages_alloc_locked(a, npages, align_pages, kind, owner,
	    reuse_only, zeroed);
	if (s != NULL)
		set_entries(s, (uintptr_t)s | tag);
	os_unlock(&a->lock);
	return s;
}

static span_t *
pages_alloc(arena_t *a, size_t npages, size_t align_pages, uint8_t kind,
    uintptr_t tag, unsigned owner, bool *zeroed)
{
	for (int attempt = 0;; attempt++) {
		span_t *s = pages_take(a, npages, align_pages, kind, tag,
		    owner, false, zeroed);
		if (s != NULL || attempt > 0)
			return s;
		/* The OS refused: address space may be held by free regions
		 * of any arena.  Give all of it back and try once more (our
		 * caller may hold a bin lock: leave the bins alone). */
		arena_release_all(false);
	}
}

/* Pages taken from a's page heap only if they were handed out before. */
static span_t *
pages_reuse(arena_t *a, size_t npages, uint8_t kind, uintptr_t tag,
    unsigned owner)
{
	bool zeroed;
	return pages_take(a, npages, 1, kind, tag, owner, true, &zeroed);
}

/*
 * x absorbs its free neighbour y: the merged run is dirty if either was,
 * and every page of a dirty run counts as dirty.  Its age is the mean of
 * its dirty parts' ages, weighted by pages: a slab freed next to a big
 * dirty run must not restart that run's clock (a program that keeps
 * freeing there would never see the run purged), and a big run freed next
 * to a small old one is not purged early.
 */
static void
merge_dirty(arena_t *a, span_t *x, const span_t *y)
{
	if (x->dirty && y->dirty) {
		uint64_t lo = PC_MIN(x->dirty_ns, y->dirty_ns);
		uint64_t hi = PC_MAX(x->dirty_ns, y->dirty_ns);
		size_t hi_pages = x->dirty_ns >= y->dirty_ns ? x->npages :
		    y->npages;
		x->dirty_ns = lo + (uint64_t)((double)(hi - lo) *
		    (double)hi_pages / (double)(x->npages + y->npages));
	} else if (x->dirty) {
		a->dirty += y->npages;
	} else if (y->dirty) {
		a->dirty += x->npages;
		x->dirty = 1;
		x->dirty_ns = y->dirty_ns;
	}
}

/*
 * Turn span s (slab or large) into free pages, merging with free
 * neighbours in the same region.  `dirty` is false when the caller has
 * already given the pages back to the OS.
 */
/* Set while this thread returns memory known to be cold (arena_cold_frees). */
static PC_TLS bool cold_frees;

void
arena_cold_frees(bool on)
{
	cold_frees = on;
}

static void
pages_free_locked(arena_t *a, span_t *s, bool dirty)
{
	region_t *r = s->region;
	uintptr_t rend = r->base + (r->npages << PC_PAGE_SHIFT);
	uint64_t now = os_now_ns();
	if (s->dbg_sizes != NULL)
		debug_slab_fini(s);
	/* Relaxed stores: slab_pages and the statistics read it unlocked. */
	__atomic_store_n(&a->active, a->active - s->npages, __ATOMIC_RELAXED);
	if (dirty)
		a->dirty += s->npages;
	s->kind = SPAN_FREE;
	s->arena = (uint16_t)a->index;	/* a slab may have served another */
	s->dirty = dirty;
	s->dirty_ns = now;
	if (cold_frees)	/* due at the next pass */
		s->dirty_ns -= PC_MIN(now, (uint64_t)opt_decay_ms * 1000000u);
	s->sc = 0;

	span_t *keep = s;
	if (s->base > r->base) {
		span_t *l = pagemap_span(pagemap_lookup((void *)(s->base -
		    PC_PAGE)));
		if (l != NULL && l->kind == SPAN_FREE && l->region == r) {
			run_remove(a, l);
			merge_dirty(a, l, s);
			l->npages += s->npages;
			keep = l;
		}
	}
	if (keep != s) {
		/* Entries of s now name the merged run. */
		uintptr_t base = s->base;
		size_t n = s->npages;
		span_delete(s);
		PC_CHECK(pagemap_set(base, n, (uintptr_t)keep) == 0, "pagemap");
	} else {
		set_entries(s, (uintptr_t)s);
	}
	uintptr_t end = keep->base + (keep->npages << PC_PAGE_SHIFT);
	if (end < rend) {
		span_t *rt = pagemap_span(pagemap_lookup((void *)end));
		if (rt != NULL && rt->kind == SPAN_FREE && rt->region == r) {
			run_remove(a, rt);
			merge_dirty(a, keep, rt);
			keep->npages += rt->npages;
			set_entries(rt, (uintptr_t)keep);
			span_delete(rt);
		}
	}
	run_insert(a, keep);
	decay_locked(a, now, false);
	if (a->dirty > DIRTY_AUTO_THREAD_PAGES)
		__atomic_store_n(&arena_dirty_high, true, __ATOMIC_RELAXED);
}

/* ---- Bins ------------------------------------------------------------- */

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

/*
 * The page heap a span's pages belong to: the arena whose region holds
 * them.  That is the span's own arena, except for a slab that took pages
 * another arena had freed (slab_pages).
 */
static arena_t *
heap_of(const span_t *s)
{
	return &arenas[s->region->arena];
}

/*
 * Pages for a new slab of arena a: its own free pages first, then free
 * pages that another arena has already touched, and only then memory
 * never touched.  Threads move between CPUs, so the slabs one CPU's
 * refills emptied are often freed while another CPU's refills need new
 * ones: without this, each arena grows to the whole working set in turn.
 * The slab keeps serving a's bin; its pages go back to their own heap.
 */
#define SLAB_STEAL_TRIES 4	/* other page heaps locked, at most */

static span_t *
slab_pages(arena_t *a, unsigned sc)
{
	size_t npages = sc_table[sc].npages;
	uintptr_t tag = (uintptr_t)sc + 1;
	span_t *s = pages_reuse(a, npages, SPAN_SLAB, tag, a->index);
	unsigned tries = 0;
	for (unsigned i = 1; s == NULL && i < narenas &&
	    tries < SLAB_STEAL_TRIES; i++) {
		arena_t *x = &arenas[(a->index + i) % narenas];
		/* Free pages inside x's hulls (read unlocked: a hint). */
		size_t used = __atomic_load_n(&x->used_pages,
		    __ATOMIC_RELAXED);
		size_t active = __atomic_load_n(&x->active, __ATOMIC_RELAXED);
		if (used < active + npages)
			continue;
		tries++;
		s = pages_reuse(x, npages, SPAN_SLAB, tag, a->index);
	}
	if (s == NULL) {
		bool zeroed;
		s = pages_alloc(a, npages, 1, SPAN_SLAB, tag, a->index,
		    &zeroed);
	}
	return s;
}

/* Give an empty slab's pages back to its page heap (bin lock held). */
static void
slab_free_pages(span_t *s)
{
	arena_t *h = heap_of(s);
	os_lock(&h->lock);
	pages_free_locked(h, s, true);
	os_unlock(&h->lock);
}

static span_t *
slab_new(arena_t *a, unsigned sc)
{
	span_t *s = slab_pages(a, sc);
	if (s == NULL)
		return NULL;
	slab_init(s, sc);
	if (opt_debug && debug_slab_init(s) != 0) {
		slab_free_pages(s);
		return NULL;
	}
	return s;
}

unsigned
arena_refill(arena_t *a, unsigned sc, void **out, unsigned n)
{
	bin_t *b = &a->bins[sc];
	unsigned got = 0;
	os_lock(&b->lock);
	b->nrefills++;
	while (got < n) {
		span_t *s = b->head;
		if (s == NULL) {
			s = slab_new(a, sc);
			if (s == NULL)
				break;
			b->nslabs++;
			b->curslabs++;
			bin_append(b, s);
		}
		/* Only this bin's slabs are ever linked here (and flushes
		 * check every pointer): anything else is corruption. */
		PC_CHECK(s->kind == SPAN_SLAB && s->sc == sc &&
		    s->arena == a->index, "slab in the wrong bin");
		if (s == b->empty)
			b->empty = NULL;
		got += slab_pop(s, out + got, n - got);
		if (slab_is_full(s))
			bin_remove(b, s);
	}
	b->nobj_out += got;
	os_unlock(&b->lock);
	return got;
}

/* Aborts deferred while this thread holds a lock (arena_misuse_defer). */
static PC_TLS unsigned misuse_deferred;
static PC_TLS bool misuse_pending;

static PC_NORETURN PC_COLD void
misuse_abort(void)
{
	pc_fatal("heap misuse detected (abort_on_error:false only warns)",
	    __FILE__, __LINE__);
}

void
arena_misuse_defer(void)
{
	misuse_deferred++;
}

void
arena_misuse_undefer(void)
{
	if (--misuse_deferred == 0 && misuse_pending)
		misuse_abort();
}

void
arena_report_misuse(enum misuse what, const char *op, const void *p,
    const span_t *s, unsigned sc, size_t size, const void *caller)
{
	size_t bsize = sc_table[sc].size;
	bool is_free = strcmp(op, "free") == 0 ||
	    strcmp(op, "free_sized") == 0;
	pc_msg_t m;
	PC_COUNT_REPORT();
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
	case MISUSE_SIZE:
		pc_msg_str(&m, op);
		pc_msg_str(&m, " of ");
		pc_msg_hex(&m, (uintptr_t)p);
		pc_msg_str(&m, " with a wrong size ");
		pc_msg_u64(&m, size);
		pc_msg_str(&m, " (");
		pc_msg_u64(&m, bsize);
		pc_msg_str(&m, "-byte block)");
		break;
	}
	if (caller != NULL) {
		pc_msg_str(&m, ", called from ");
		pc_msg_hex(&m, (uintptr_t)caller);
	} else if (what != MISUSE_STALE) {
		pc_msg_str(&m, ", found when a thread cache was flushed");
	}
	pc_msg_write(&m);
	if (!opt_abort_on_error)
		return;
	if (misuse_deferred != 0)
		misuse_pending = true;
	else
		misuse_abort();
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
	    s->sc != sc || s->arena != a->index))
		return NULL;
	return s;
}

void
arena_flush(arena_t *a, unsigned sc, void **ptrs, unsigned n)
{
	bin_t *b = &a->bins[sc];
	os_lock(&b->lock);
	b->nflushes++;
	for (unsigned i = 0; i < n; i++) {
		void *p = ptrs[i];
		span_t *s = flush_span(a, sc, p);
		enum slab_free_result r = s != NULL ? slab_push(s, p) :
		    SLAB_INTERIOR;
		if (PC_UNLIKELY(r != SLAB_FREED)) {
			/* Unlock first: abort_on_error may abort. */
			os_unlock(&b->lock);
			arena_report_misuse(s == NULL ? MISUSE_STALE :
			    r == SLAB_DOUBLE_FREE ? MISUSE_FREED :
			    MISUSE_INTERIOR, "free", p, s, sc, 0, NULL);
			os_lock(&b->lock);
			continue;
		}
		b->nobj_in++;
		if (s->nfree == 1)
			bin_append(b, s);	/* it was full */
		if (slab_is_empty(s)) {
			if (b->empty == NULL) {
				b->empty = s;
				continue;
			}
			bin_remove(b, s);
			b->curslabs--;
			slab_free_pages(s);
		}
	}
	os_unlock(&b->lock);
}

/* ---- Large blocks ----------------------------------------------------- */

void *
arena_large_alloc(arena_t *a, size_t size, size_t align, bool *zeroed)
{
	size_t npages = PC_ALIGN_UP(size, PC_PAGE) >> PC_PAGE_SHIFT;
	size_t align_pages = align > PC_PAGE ? align >> PC_PAGE_SHIFT : 1;
	span_t *s = pages_alloc(a, npages, align_pages, SPAN_LARGE, 0,
	    a->index, zeroed);
	if (s == NULL)
		return NULL;
	__atomic_fetch_add(&a->nlarge_alloc, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->large_pages, npages, __ATOMIC_RELAXED);
	return (void *)s->base;
}

/*
 * A large block being freed with purge: its pages go back to the OS
 * outside the page lock, and meanwhile the span stays SPAN_LARGE with this
 * mark, so a second free or a resize racing with the first one sees a
 * block already going.  (sc is otherwise unused by large spans.)
 */
#define LARGE_DYING 1

/*
 * Lock the page heap holding the large block that starts at p and return
 * its span, or return NULL (no lock held) with *st saying what p is
 * instead.  The entry is read again under the lock that frees the block:
 * another thread may have freed it since the caller looked, and its
 * descriptor been merged away, recycled, or its region unmapped.  Reading a
 * stale descriptor is safe (metadata memory is never unmapped, and region
 * descriptors are only recycled, their arena index always in range); it
 * is trusted only once the page-map entry, the span and its region agree
 * under the region's arena lock, which every change to them holds.
 */
static span_t *
large_lock(const void *p, arena_t **ap, int *st)
{
	*st = BLOCK_FREED;
	for (unsigned tries = 0; tries < 4; tries++) {
		uintptr_t e = pagemap_lookup(p);
		span_t *s = pagemap_span(e);
		/* The caller saw a large or free span here: the pages have
		 * since gone back to the OS or become a slab. */
		if (s == NULL || (e & PM_SC_MASK) != 0)
			return NULL;
		region_t *r = __atomic_load_n(&s->region, __ATOMIC_RELAXED);
		if (r == NULL)	/* a huge span, or one being recycled */
			continue;
		unsigned ai = __atomic_load_n(&r->arena, __ATOMIC_RELAXED);
		if (ai >= narenas)
			continue;
		arena_t *a = &arenas[ai];
		os_lock(&a->lock);
		if (pagemap_lookup(p) == (uintptr_t)s && s->region == r &&
		    r->arena == ai) {
			if (s->kind == SPAN_LARGE && s->base == (uintptr_t)p &&
			    s->sc != LARGE_DYING) {
				*ap = a;
				return s;
			}
			*st = s->kind == SPAN_FREE || (s->kind == SPAN_LARGE &&
			    s->base == (uintptr_t)p) ? BLOCK_FREED :
			    s->kind == SPAN_LARGE ? BLOCK_INTERIOR :
			    BLOCK_INVALID;
			os_unlock(&a->lock);
			return NULL;
		}
		os_unlock(&a->lock);
	}
	return NULL;	/* it kept changing under us: not a live block */
}

int
arena_large_free(void *p, bool purge, size_t *usable)
{
	arena_t *a;
	int st;
	span_t *s = large_lock(p, &a, &st);
	if (s == NULL)
		return st;
	*usable = s->npages << PC_PAGE_SHIFT;
	if (purge) {
		s->sc = LARGE_DYING;
		os_unlock(&a->lock);
		os_purge((void *)s->base, s->npages << PC_PAGE_SHIFT);
		os_lock(&a->lock);
	}
	a->nlarge_free++;
	__atomic_fetch_sub(&a->large_pages, s->npages, __ATOMIC_RELAXED);
	pages_free_locked(a, s, !purge);
	os_unlock(&a->lock);
	return BLOCK_LIVE;
}

int
arena_large_resize(void *p, size_t new_size, size_t *usable)
{
	arena_t *a;
	int st;
	span_t *s = large_lock(p, &a, &st);
	if (s == NULL)
		return st;
	size_t npages = PC_ALIGN_UP(new_size, PC_PAGE) >> PC_PAGE_SHIFT;
	if (new_size == 0 || npages == s->npages) {
		/* Nothing to do. */
	} else if (npages < s->npages) {
		span_t *t = span_new();
		if (t != NULL) {
			*t = *s;
			t->base = s->base + (npages << PC_PAGE_SHIFT);
			t->npages = s->npages - npages;
			t->next = t->prev = NULL;
			__atomic_fetch_sub(&a->large_pages, t->npages,
			    __ATOMIC_RELAXED);
			s->npages = npages;
			pages_free_locked(a, t, true);
		}
	} else {
		region_t *r = s->region;
		uintptr_t end = s->base + (s->npages << PC_PAGE_SHIFT);
		uintptr_t rend = r->base + (r->npages << PC_PAGE_SHIFT);
		size_t extra = npages - s->npages;
		span_t *rt = end < rend ? pagemap_span(pagemap_lookup(
		    (void *)end)) : NULL;
		if (rt != NULL && rt->kind == SPAN_FREE && rt->region == r &&
		    rt->npages >= extra) {
			run_remove(a, rt);
			if (rt->dirty) {
				a->dirty -= extra;
				dirty_note_low(a);
			}
			PC_CHECK(pagemap_set(end, extra, (uintptr_t)s) == 0,
			    "pagemap");
			rt->base += extra << PC_PAGE_SHIFT;
			rt->npages -= extra;
			if (rt->npages > 0)
				run_insert(a, rt);
			else
				span_delete(rt);
			s->npages = npages;
			region_touch(a, r, end, end + (extra << PC_PAGE_SHIFT));
			__atomic_store_n(&a->active, a->active + extra,
			    __ATOMIC_RELAXED);
			__atomic_fetch_add(&a->large_pages, extra,
			    __ATOMIC_RELAXED);
		}
	}
	*usable = s->npages << PC_PAGE_SHIFT;
	os_unlock(&a->lock);
	return BLOCK_LIVE;
}

/* ---- Purging ---------------------------------------------------------- */

void
arena_release_all(bool bins)
{
	for (unsigned i = 0; i < narenas; i++)
		arena_purge_all(&arenas[i], bins);
}

size_t
arena_purge_all(arena_t *a, bool bins)
{
	/* The empty slab each bin keeps goes too: it may be all that holds
	 * a region, and its address space, in place.  Not when the caller
	 * may hold a bin lock (a refill that ran out of memory).  Its
	 * pages may belong to another arena's heap: that one is purged too. */
	bool other[PC_MAX_ARENAS] = { false };
	for (unsigned c = 0; bins && c < SC_NSMALL; c++) {
		bin_t *b = &a->bins[c];
		os_lock(&b->lock);
		span_t *s = b->empty;
		if (s != NULL) {
			b->empty = NULL;
			bin_remove(b, s);
			b->curslabs--;
			other[heap_of(s)->index] = true;
			slab_free_pages(s);
		}
		os_unlock(&b->lock);
	}
	other[a->index] = true;
	size_t purged = 0;
	for (unsigned i = 0; i < narenas; i++) {
		if (!other[i])
			continue;
		os_lock(&arenas[i].lock);
		purged += decay_locked(&arenas[i], os_now_ns(), true);
		os_unlock(&arenas[i].lock);
	}
	return purged;
}

/* ---- Fork ------------------------------------------------------------- */

void
arena_prefork(void)
{
	for (unsigned i = 0; i < narenas; i++)
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_lock(&arenas[i].bins[c].lock);
	for (unsigned i = 0; i < narenas; i++)
		os_lock(&arenas[i].lock);
}

void
arena_postfork_parent(void)
{
	for (unsigned i = 0; i < narenas; i++)
		os_unlock(&arenas[i].lock);
	for (unsigned i = 0; i < narenas; i++)
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_unlock(&arenas[i].bins[c].lock);
}

void
arena_postfork_child(void)
{
	for (unsigned i = 0; i < narenas; i++) {
		os_lock_init(&arenas[i].lock);
		for (unsigned c = 0; c < SC_NSMALL; c++)
			os_lock_init(&arenas[i].bins[c].lock);
	}
}
