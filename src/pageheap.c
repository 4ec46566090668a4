#include <string.h>

#include "pageheap.h"
#include "base.h"
#include "conf.h"
#include "huge.h"
#include "locks.h"
#include "pagemap.h"
#include "report.h"

pageheap_t *pageheaps;
unsigned npageheaps;
os_lock_t *pageheap_locks;

int
pageheap_init_all(unsigned n)
{
	/* Zeroed, and written by none of this: arena.h says why. */
	pageheap_t *h = base_alloc(sizeof(pageheap_t) * n);
	if (h == NULL)
		return -1;
	pageheap_locks = locks_take(n);
	pageheaps = h;
	npageheaps = n;
	return 0;
}

/* ---- Span descriptors ------------------------------------------------- */

/*
 * Every slab made or freed takes and gives back span descriptors (a
 * split needs two, a merge frees one).  From base.c's one list, under its
 * global lock, that lock was the most contended of all when threads make
 * and empty slabs fast on several CPUs (a producer/consumer program: the
 * harness's xmalloc-64 at 8 threads spent a tenth of its time waiting on
 * it).  So each heap keeps a few spare descriptors under its own lock.
 */
#define HEAP_SPARE_SPANS 1024

static span_t *
heap_span_new(pageheap_t *h)
{
	span_t *s = h->spare;
	if (s == NULL)
		return span_new();
	h->spare = s->next;
	h->nspare--;
	memset(s, 0, sizeof(*s));
	return s;
}

static void
heap_span_delete(pageheap_t *h, span_t *s)
{
	if (h->nspare >= HEAP_SPARE_SPANS) {
		span_delete(s);
		return;
	}
	/* As span_delete: a racing lookup that still finds s sees no block. */
	s->kind = SPAN_NONE;
	s->next = h->spare;
	h->spare = s;
	h->nspare++;
}

/* ---- Free runs: size buckets ------------------------------------------ */

static unsigned
run_bucket(size_t npages)
{
	if (npages <= PAGEHEAP_EXACT_BUCKETS)
		return (unsigned)npages - 1;
	unsigned lg = 63 - (unsigned)__builtin_clzll(npages);
	unsigned b = PAGEHEAP_EXACT_BUCKETS + (lg - 9) * 4 +
	    (unsigned)((npages >> (lg - 2)) & 3);
	return PC_MIN(b, PAGEHEAP_NBUCKETS - 1);
}

static void
run_insert(pageheap_t *h, span_t *s)
{
	unsigned b = run_bucket(s->npages);
	s->prev = NULL;
	s->next = h->runs[b];
	if (s->next != NULL)
		s->next->prev = s;
	h->runs[b] = s;
	h->run_mask[b / 64] |= (uint64_t)1 << (b % 64);
	s->in_list = 1;
}

static void
run_remove(pageheap_t *h, span_t *s)
{
	unsigned b = run_bucket(s->npages);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		h->runs[b] = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (h->runs[b] == NULL)
		h->run_mask[b / 64] &= ~((uint64_t)1 << (b % 64));
	s->next = s->prev = NULL;
	s->in_list = 0;
}

/* First non-empty bucket at or after b, or PAGEHEAP_NBUCKETS. */
static unsigned
run_next_bucket(const pageheap_t *h, unsigned b)
{
	while (b < PAGEHEAP_NBUCKETS) {
		uint64_t m = h->run_mask[b / 64] >> (b % 64);
		if (m != 0)
			return b + (unsigned)__builtin_ctzll(m);
		b = (b / 64 + 1) * 64;
	}
	return PAGEHEAP_NBUCKETS;
}

/*
 * The lowest-addressed of the first RUN_FIT_SCAN runs of list `s` that
 * hold npages pages.  Preferring low addresses packs live memory
 * together, so the free runs at the top stay whole and go back to the OS.
 * With `whole` (a bucket whose runs may be smaller than npages), failing
 * that, the first such run anywhere in the list.
 */
#define RUN_FIT_SCAN 32

static span_t *
run_lowest_fit(span_t *s, size_t npages, bool whole)
{
	span_t *best = NULL, *t = s;
	for (unsigned k = 0; t != NULL && k < RUN_FIT_SCAN; t = t->next, k++)
		if (t->npages >= npages && (best == NULL || t->base < best->base))
			best = t;
	for (t = s; whole && best == NULL && t != NULL; t = t->next)
		if (t->npages >= npages)
			best = t;
	return best;
}

/*
 * A free run of at least npages pages, or NULL: the smallest bucket that
 * has one, and the lowest address among its first runs.  For a large
 * block of RUN_LOW_MIN_PAGES or more (`low`) the next RUN_LOW_BUCKETS
 * non-empty buckets may offer a lower address, which wins: a slightly
 * worse fit low in the heap keeps blocks on pages used before, and the
 * heap's top free (a churn of 64 KiB-4 MiB blocks with only their ends
 * written: peak RSS 99 MB -> 91 MB).  Slabs keep the plain best fit.
 */
#define RUN_LOW_MIN_PAGES 16
#define RUN_LOW_BUCKETS 8

static span_t *
run_find(pageheap_t *h, size_t npages, bool low)
{
	unsigned b = run_bucket(npages);
	unsigned more = low && npages >= RUN_LOW_MIN_PAGES ?
	    RUN_LOW_BUCKETS : 0;
	span_t *found = NULL;
	if (npages > PAGEHEAP_EXACT_BUCKETS) {
		/* Runs in a shared bucket may be smaller than asked. */
		found = run_lowest_fit(h->runs[b], npages, true);
		b++;
	}
	for (b = run_next_bucket(h, b); b < PAGEHEAP_NBUCKETS;
	    b = run_next_bucket(h, b + 1)) {
		if (found != NULL && more-- == 0)
			break;
		span_t *s = run_lowest_fit(h->runs[b], npages,
		    b == PAGEHEAP_NBUCKETS - 1);
		if (s != NULL && (found == NULL || s->base < found->base))
			found = s;
	}
	return found;
}

static void
set_range(uintptr_t base, size_t npages, uintptr_t entry)
{
	PC_CHECK(pagemap_set_reserved(base, npages, entry),
	    "page map leaf missing in a reserved region");
}

static void
set_entries(span_t *s, uintptr_t entry)
{
	set_range(s->base, s->npages, entry);
}

static uintptr_t
last_page(const span_t *s)
{
	return s->base + ((s->npages - 1) << PC_PAGE_SHIFT);
}

/*
 * The entries of a large block or free run (pagemap.h): its first and last
 * pages name it, the pages between are PM_INTERIOR and stay so while it
 * lives, so carving, freeing and merging set a few entries whatever the
 * size.  A slab maps every page (free() reads its class from any of them).
 */
static void
set_bounds(span_t *s)
{
	set_range(s->base, 1, (uintptr_t)s);
	if (s->npages > 1)
		set_range(last_page(s), 1, (uintptr_t)s);
}

/* Free run or large block x absorbs y, which starts where x ends: the
 * pages at the seam become interior, y's last page names x. */
static void
join_entries(span_t *x, const span_t *y)
{
	if (x->npages > 1)
		set_range(y->base - PC_PAGE, 1, PM_INTERIOR);
	if (y->npages > 1)
		set_range(y->base, 1, PM_INTERIOR);
	x->npages += y->npages;
	set_range(last_page(x), 1, (uintptr_t)x);
}

/* ---- Regions ---------------------------------------------------------- */

static void merge_right(pageheap_t *h, span_t *s);

static span_t *
region_grow_locked(pageheap_t *h, size_t npages)
{
	size_t size = PC_MAX(PAGEHEAP_REGION_MIN,
	    PC_ALIGN_UP(npages << PC_PAGE_SHIFT, PC_CHUNK));
	region_t *r = region_new();
	span_t *s = heap_span_new(h);
	void *p = NULL;
	/* Ask for the addresses just below the newest region: if we get
	 * them, the two become one region, and free runs coalesce across
	 * the seam instead of fragmenting over many small regions. */
	region_t *below = h->regions;
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
			heap_span_delete(h, s);
		return NULL;
	}
	os_hugepage(p, size, (int)opt_thp);
	h->mapped += size;
	s->base = (uintptr_t)p;
	s->npages = size >> PC_PAGE_SHIFT;
	s->kind = SPAN_FREE;
	s->arena = (uint16_t)pageheap_index(h);
	s->dirty = 0;
	if (hint != NULL && p == hint) {
		region_delete(r);
		below->base = (uintptr_t)p;
		below->npages += s->npages;
		s->region = below;
		set_entries(s, PM_INTERIOR);	/* once per region */
		set_bounds(s);
		merge_right(h, s);
	} else {
		r->base = (uintptr_t)p;
		r->npages = size >> PC_PAGE_SHIFT;
		r->heap = pageheap_index(h);
		r->used_lo = r->used_hi = 0;
		r->next = h->regions;
		h->regions = r;
		s->region = r;
		set_entries(s, PM_INTERIOR);	/* once per region */
		set_bounds(s);
	}
	run_insert(h, s);
	return s;
}

/* h->dirty fell (pages reused, purged or released): track the low mark. */
static inline void
dirty_note_low(pageheap_t *h)
{
	if (h->dirty < h->dirty_min)
		h->dirty_min = h->dirty;
}

static void
region_release_locked(pageheap_t *h, span_t *s)
{
	region_t *r = s->region;
	PC_ASSERT(s->base == r->base && s->npages == r->npages);
	run_remove(h, s);
	set_entries(s, 0);
	for (region_t **pp = &h->regions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (s->dirty) {
		h->dirty -= s->npages;
		dirty_note_low(h);
	}
	__atomic_store_n(&h->used_pages, h->used_pages -
	    ((r->used_hi - r->used_lo) >> PC_PAGE_SHIFT), __ATOMIC_RELAXED);
	h->mapped -= r->npages << PC_PAGE_SHIFT;
	os_release((void *)r->base, r->npages << PC_PAGE_SHIFT);
	region_delete(r);
	heap_span_delete(h, s);
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
decay_budget(pageheap_t *h, uint64_t now)
{
	if (now - h->reuse_window_ns >= DECAY_REUSE_WINDOW_NS) {
		h->purge_budget = h->dirty_min;
		h->dirty_min = h->dirty;
		h->reuse_window_ns = now;
	}
	return h->purge_budget;
}

/*
 * A free run of DECAY_BIG_RUN_PAGES or more that nothing was freed into
 * for DECAY_BIG_RUN_NS is due then (if decay_ns is longer).  Such a run is
 * most often a big buffer the program is done with (a file read in and
 * parsed), and glibc (its mmap threshold rises to 32 MiB at most),
 * jemalloc (from 8 MiB) and mimalloc give one back at once.  Python's
 * json.load of a 44 MB file frees a 44 MB buffer, parses for seconds,
 * then frees a 44 MB string: with the buffer dirty until decay_ms, the
 * parse and the json.dumps after it peaked at 461 MiB RSS against glibc's
 * 415 MiB.  The time counts from the last free into the run, not from its
 * page-weighted age (dirty_ns): a block carved from a big run, written
 * and freed again every few hundred milliseconds would otherwise be
 * purged with the rest and fault back in, whenever the budget
 * (decay_budget, which counts the whole heap) had room for the run.
 */
#define DECAY_BIG_RUN_PAGES ((size_t)32 << (20 - PC_PAGE_SHIFT))
#define DECAY_BIG_RUN_NS ((uint64_t)1000 * 1000000u)

static bool
run_due(const span_t *s, uint64_t decay_ns, uint64_t now)
{
	if (s->dirty_ns + decay_ns <= now)
		return true;
	return s->npages >= DECAY_BIG_RUN_PAGES &&
	    s->freed_ns + PC_MIN(decay_ns, DECAY_BIG_RUN_NS) <= now;
}

/* Count dirty run s as purged (its pages are about to leave h->dirty):
 * in the pass's total and budget, and in the statistics first, so that
 * they, read unlocked, never see pages gone from dirty and not yet
 * purged. */
static void
decay_count(pageheap_t *h, const span_t *s, bool budgeted, size_t *budget,
    size_t *purged)
{
	*purged += s->npages;
	if (budgeted)
		*budget -= s->npages;
	__atomic_store_n(&h->npurged, h->npurged + s->npages,
	    __ATOMIC_RELEASE);
}

static size_t
decay_locked(pageheap_t *h, uint64_t now, bool all)
{
	uint64_t decay_ns = (uint64_t)opt_decay_ms * 1000000u;
	if (!all && decay_ns != 0 && now < h->next_decay_ns)
		return 0;
	bool budgeted = !all && decay_ns != 0;
	size_t budget = budgeted ? decay_budget(h, now) : 0;
	size_t purged = 0;
	for (unsigned b = run_next_bucket(h, 0); b < PAGEHEAP_NBUCKETS;
	    b = run_next_bucket(h, b + 1)) {
		span_t *next;
		for (span_t *s = h->runs[b]; s != NULL; s = next) {
			next = s->next;
			if (!all && (!s->dirty || !run_due(s, decay_ns, now)))
				continue;
			if (budgeted && s->dirty && s->npages > budget)
				continue;	/* reused lately: keep it */
			/* A region that stayed wholly free goes back whole:
			 * address space too. */
			if (span_is_whole_region(s)) {
				if (s->dirty)
					decay_count(h, s, budgeted, &budget,
					    &purged);
				region_release_locked(h, s);
				continue;
			}
			/* Locked memory refuses (os_purge): the run stays
			 * dirty, its old bytes kept, and calloc writes it. */
			if (!s->dirty || !os_purge((void *)s->base, s->npages <<
			    PC_PAGE_SHIFT))
				continue;
			decay_count(h, s, budgeted, &budget, &purged);
			s->dirty = 0;
			h->dirty -= s->npages;
		}
	}
	if (budgeted)
		h->purge_budget = budget;
	dirty_note_low(h);
	if (purged)
		h->npurge_passes++;
	/* Passes every decay/16, between 1 and 500 ms: a run is purged at
	 * most half a second after it has decayed. */
	uint64_t step = PC_MIN(PC_MAX(decay_ns / 16, (uint64_t)1000000),
	    (uint64_t)500000000);
	__atomic_store_n(&h->next_decay_ns, now + step, __ATOMIC_RELAXED);
	return purged;
}

/* background_thread:auto starts the purging thread once a heap holds
 * this many dirty pages: a big heap that is freed and then left idle gets
 * its memory back, and small processes never get a thread.  As much as a
 * big run (DECAY_BIG_RUN_PAGES): a program that frees one and then runs
 * on its fast paths (no tick) gets it back too. */
#define DIRTY_AUTO_THREAD_PAGES DECAY_BIG_RUN_PAGES

bool pageheap_dirty_high;

void
pageheap_decay_tick(pageheap_t *h)
{
	if (__atomic_load_n(&h->dirty, __ATOMIC_RELAXED) == 0)
		return;
	uint64_t now = os_now_ns();
	if (now < __atomic_load_n(&h->next_decay_ns, __ATOMIC_RELAXED))
		return;
	os_lock(pageheap_lock(h));
	decay_locked(h, now, false);
	os_unlock(pageheap_lock(h));
}

/* ---- Page heap -------------------------------------------------------- */

/*
 * Pages of a region ever handed out lie in [used_lo, used_hi) (empty when
 * equal): below the hull's top and above its bottom they may be resident,
 * outside it they have never been touched.  h->used_pages sums the hulls.
 */
static void
region_touch(pageheap_t *h, region_t *r, uintptr_t lo, uintptr_t hi)
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
	size_t grown = r->used_hi - r->used_lo - before;
	__atomic_store_n(&h->used_pages, h->used_pages +
	    (grown >> PC_PAGE_SHIFT), __ATOMIC_RELAXED);
	huge_note_fresh(grown);
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
 * A free run whose first npages pages were handed out before (in its
 * region's used hull), or NULL: the smallest bucket that has one, the
 * lowest address among the first RUN_FIT_SCAN runs there.  run_find's
 * choice may be fresh (a region's untouched tail, in a smaller bucket)
 * while used pages wait in a bigger run.
 */
static span_t *
run_find_used(pageheap_t *h, size_t npages)
{
	for (unsigned b = run_next_bucket(h, run_bucket(npages));
	    b < PAGEHEAP_NBUCKETS; b = run_next_bucket(h, b + 1)) {
		span_t *best = NULL;
		unsigned k = 0;
		for (span_t *s = h->runs[b]; s != NULL && k < RUN_FIT_SCAN;
		    s = s->next, k++)
			if (s->npages >= npages && !run_is_fresh(s, npages) &&
			    (best == NULL || s->base < best->base))
				best = s;
		if (best != NULL)
			return best;
	}
	return NULL;
}

/*
 * Carve npages pages aligned to align_pages out of the free runs, growing
 * the heap if needed.  The result has kind `kind` and belongs to arena
 * `owner`'s bins or large blocks; its page-map entries are the caller's
 * to set (pages_take).  With reuse_only (align_pages 1 for a slab), only
 * pages handed out before are taken: NULL rather than touching new
 * memory.  A large block then keeps its own placement (run_find, lowest
 * address) where that falls on such pages.
 */
static span_t *
pages_alloc_locked(pageheap_t *h, size_t npages, size_t align_pages,
    uint8_t kind, unsigned owner, bool reuse_only, bool *zeroed)
{
	size_t need = npages + (align_pages > 1 ? align_pages - 1 : 0);
	bool large = kind == SPAN_LARGE;
	span_t *run = reuse_only && !large ? run_find_used(h, need) :
	    run_find(h, need, large);
	if (reuse_only && large && run != NULL && run_is_fresh(run, need))
		run = run_find_used(h, need);
	if (reuse_only && run == NULL)
		return NULL;
	/* Both descriptors we may need, taken before anything changes. */
	span_t *mid = heap_span_new(h);
	span_t *tail = heap_span_new(h);
	if (mid == NULL || tail == NULL)
		run = NULL;
	else if (run == NULL)
		run = region_grow_locked(h, need);
	if (run == NULL) {
		if (mid != NULL)
			heap_span_delete(h, mid);
		if (tail != NULL)
			heap_span_delete(h, tail);
		return NULL;
	}
	run_remove(h, run);
	uintptr_t start = PC_ALIGN_UP(run->base, align_pages << PC_PAGE_SHIFT);
	size_t lead = (start - run->base) >> PC_PAGE_SHIFT;
	size_t trail = run->npages - lead - npages;
	bool dirty = run->dirty;
	region_t *reg = run->region;
	if (dirty) {
		h->dirty -= npages;
		dirty_note_low(h);
	}

	/* The run keeps the lead pages; the tail gets a new descriptor. */
	if (trail > 0) {
		*tail = *run;
		tail->base = start + (npages << PC_PAGE_SHIFT);
		tail->npages = trail;
		set_bounds(tail);
		run_insert(h, tail);
		tail = NULL;
	}
	if (lead > 0) {
		run->npages = lead;
		set_bounds(run);
		run_insert(h, run);
	} else {
		heap_span_delete(h, run);
		run = NULL;
	}
	if (tail != NULL)
		heap_span_delete(h, tail);

	mid->base = start;
	mid->npages = npages;
	mid->region = reg;
	mid->kind = kind;
	mid->arena = (uint16_t)owner;
	uintptr_t end = start + (npages << PC_PAGE_SHIFT);
	/* A dirty run may hold pages never handed out (a freed block
	 * merged with the region's untouched rest): a block wholly
	 * outside the used hull reads as zeros all the same, and calloc
	 * need not write it (git log's 512 KB calloc: 128 page faults). */
	*zeroed = !dirty || reg->used_lo == reg->used_hi ||
	    end <= reg->used_lo || start >= reg->used_hi;
	region_touch(h, reg, start, end);
	__atomic_store_n(&h->active, h->active + npages, __ATOMIC_RELAXED);
	return mid;
}

/* pages_alloc_locked under h's lock, with the page-map entries set to
 * `(uintptr_t)span | tag`. */
static span_t *
pages_take(pageheap_t *h, size_t npages, size_t align_pages, uint8_t kind,
    uintptr_t tag, unsigned owner, bool reuse_only, bool *zeroed)
{
	os_lock(pageheap_lock(h));
	span_t *s = pages_alloc_locked(h, npages, align_pages, kind, owner,
	    reuse_only, zeroed);
	if (s != NULL && kind == SPAN_SLAB)
		set_entries(s, (uintptr_t)s | tag);
	else if (s != NULL)
		set_bounds(s);
	os_unlock(pageheap_lock(h));
	return s;
}

static span_t *
pages_alloc(pageheap_t *h, size_t npages, size_t align_pages, uint8_t kind,
    uintptr_t tag, unsigned owner, bool *zeroed)
{
	span_t *s = pages_take(h, npages, align_pages, kind, tag, owner, false,
	    zeroed);
	if (PC_LIKELY(s != NULL))
		return s;
	/*
	 * The OS refused.  Address space may be held by wholly free regions
	 * of any heap: give them back.  Then take free pages from any heap,
	 * ours first: a region partly in use keeps all its address space,
	 * and a thread that moved to another CPU (another arena) must still
	 * get the memory that its frees left in the first one's heap.  Our
	 * caller may hold a bin lock; heap locks are taken one at a time.
	 */
	pageheap_purge_all();
	for (unsigned i = 0; s == NULL && i < npageheaps; i++) {
		pageheap_t *x = &pageheaps[(pageheap_index(h) + i) % npageheaps];
		/* A large block belongs to the heap it lies in. */
		s = pages_take(x, npages, align_pages, kind, tag,
		    kind == SPAN_LARGE ? pageheap_index(x) : owner, false, zeroed);
	}
	return s;
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
merge_dirty(pageheap_t *h, span_t *x, const span_t *y)
{
	if (x->dirty && y->dirty) {
		uint64_t lo = PC_MIN(x->dirty_ns, y->dirty_ns);
		uint64_t hi = PC_MAX(x->dirty_ns, y->dirty_ns);
		size_t hi_pages = x->dirty_ns >= y->dirty_ns ? x->npages :
		    y->npages;
		x->dirty_ns = lo + (uint64_t)((double)(hi - lo) *
		    (double)hi_pages / (double)(x->npages + y->npages));
		x->freed_ns = PC_MAX(x->freed_ns, y->freed_ns);
	} else if (x->dirty) {
		h->dirty += y->npages;
	} else if (y->dirty) {
		h->dirty += x->npages;
		x->dirty = 1;
		x->dirty_ns = y->dirty_ns;
		x->freed_ns = y->freed_ns;
	}
}

/* Set while this thread returns memory known to be cold
 * (pageheap_cold_frees). */
static PC_TLS bool cold_frees;

void
pageheap_cold_frees(bool on)
{
	cold_frees = on;
}

/*
 * Free run s, not in a bucket, absorbs the free run that follows it in its
 * region, if there is one.  Freed pages merge on both sides; a region
 * grown downwards merges with the region it joined.
 */
static void
merge_right(pageheap_t *h, span_t *s)
{
	region_t *r = s->region;
	uintptr_t end = s->base + (s->npages << PC_PAGE_SHIFT);
	if (end >= r->base + (r->npages << PC_PAGE_SHIFT))
		return;
	span_t *rt = pagemap_span(pagemap_lookup((void *)end));
	if (rt == NULL || rt->kind != SPAN_FREE || rt->region != r)
		return;
	run_remove(h, rt);
	merge_dirty(h, s, rt);
	join_entries(s, rt);
	heap_span_delete(h, rt);
}

/*
 * Turn span s (slab or large) into free pages, merging with free
 * neighbours in the same region.  `dirty` is false when the caller has
 * already given the pages back to the OS.
 */
static void
pages_free_locked(pageheap_t *h, span_t *s, bool dirty)
{
	region_t *r = s->region;
	uint64_t now = os_now_ns();
	/* The bins drop a slab's debug sizes before its pages come here. */
	PC_ASSERT(s->dbg_sizes == NULL);
	/* Relaxed stores: slab_pages and the statistics read it unlocked. */
	__atomic_store_n(&h->active, h->active - s->npages, __ATOMIC_RELAXED);
	if (dirty)
		h->dirty += s->npages;
	/* A slab's pages all carry its class: none may keep it once they
	 * are a free run's (and later a large block's) interior, or free()
	 * of a pointer there would take it for a small block.  At most
	 * 32 pages; a large block's interior is PM_INTERIOR already. */
	if (s->kind == SPAN_SLAB)
		set_entries(s, PM_INTERIOR);
	set_bounds(s);
	s->kind = SPAN_FREE;
	s->arena = (uint16_t)pageheap_index(h);	/* a slab may have served another */
	s->dirty = dirty;
	s->dirty_ns = now;
	if (cold_frees)	/* due at the next pass */
		s->dirty_ns -= PC_MIN(now, (uint64_t)opt_decay_ms * 1000000u);
	s->freed_ns = s->dirty_ns;
	s->sc = 0;

	span_t *keep = s;
	if (s->base > r->base) {
		span_t *l = pagemap_span(pagemap_lookup((void *)(s->base -
		    PC_PAGE)));
		if (l != NULL && l->kind == SPAN_FREE && l->region == r) {
			run_remove(h, l);
			merge_dirty(h, l, s);
			join_entries(l, s);
			heap_span_delete(h, s);
			keep = l;
		}
	}
	merge_right(h, keep);
	run_insert(h, keep);
	decay_locked(h, now, false);
	if (h->dirty >= DIRTY_AUTO_THREAD_PAGES)
		__atomic_store_n(&pageheap_dirty_high, true, __ATOMIC_RELAXED);
}

/* ---- Large blocks ----------------------------------------------------- */

/*
 * A large block carved from dirty free pages may cover pages that earlier
 * blocks there left resident: their first and last pages, when a program
 * writes a header and a trailer of big buffers and little else.  Handed
 * out as they are, those pages stay resident inside the new block although
 * the program will never touch them, and a churn of such blocks ends with
 * every page of the heap resident (issue #12: 64 KiB-4 MiB blocks, first
 * and last bytes written, 40 MB resident for 1 MB written).  So the
 * interior of such a block (all but its first and last pages, which a
 * program nearly always writes) is looked at before it is handed out: if
 * few of its pages are resident, they are leftovers and are purged, and
 * the program faults in only what it touches.  If many are, the program
 * fills its blocks, purging would buy nothing but page faults, and they
 * are kept.  The look is one mincore over at most LARGE_CLEAN_LOOK pages,
 * so it costs as much for a 64 MiB block as for a 4 MiB one; where the OS
 * cannot tell (Windows), nothing is purged.
 *
 * The price is page faults: left resident, leftovers are where later
 * blocks' first and last pages often land, for free; purged, those pages
 * fault in again.  On that churn (2 vCPUs of a VM, where a fault or the
 * TLB shootdown of an madvise costs tens of microseconds) peak RSS fell
 * from 129 MB to 4 MB and the run took 3-9 times as long, so it is an
 * option (large_clean), off unless asked for.
 */
#define LARGE_CLEAN_MIN_PAGES 16	/* 64 KiB: smaller blocks hold few */
#define LARGE_CLEAN_LOOK OS_RESIDENT_MAX	/* pages looked at: 4 MiB */
#define LARGE_CLEAN_DENSE_DIV 4		/* over 1/4 resident: in use, kept */
#define LARGE_CLEAN_MIN_RESIDENT 8	/* fewer: not worth an madvise */

static void
large_clean(pageheap_t *h, const span_t *s)
{
	if (!opt_large_clean || s->npages < LARGE_CLEAN_MIN_PAGES)
		return;
	void *lo = (void *)(s->base + PC_PAGE);
	size_t n = s->npages - 2;
	size_t looked = PC_MIN(n, (size_t)LARGE_CLEAN_LOOK);
	size_t r = os_resident(lo, n << PC_PAGE_SHIFT, looked);
	if (r < LARGE_CLEAN_MIN_RESIDENT || r == OS_RESIDENT_UNKNOWN ||
	    r > looked / LARGE_CLEAN_DENSE_DIV)
		return;
	if (os_purge(lo, n << PC_PAGE_SHIFT))
		__atomic_fetch_add(&h->nclean_purged, r, __ATOMIC_RELAXED);
}

/*
 * A large block's page count, rounded up to one of sixteen sizes per
 * doubling (33-64 pages in steps of 2, 65-128 in steps of 4, ...; no
 * rounding up to 32 pages).  Blocks of nearby sizes then take and leave
 * runs of the same sizes, which the next block of that size fits exactly:
 * fewer splits, fewer slivers, and new blocks start where old ones did,
 * on pages already resident.  On a churn of 64 KiB-4 MiB blocks with only
 * their first and last bytes written (large-sparse/1) peak RSS fell from
 * 129 MB to 99 MB, as with four sizes per doubling; but four sizes left
 * up to a quarter of each block as slack, which a block of a dense churn
 * (large/1, every page written) inherits resident from the block before
 * it: 321 -> 356 MB there, while sixteen sizes hold at 316 MB.  The slack
 * is at most 1/16 of the pages, and lets a realloc grow in place.
 */
static size_t
large_pages_round(size_t npages)
{
	if (npages <= 32)
		return npages;
	unsigned lg = 63 - (unsigned)__builtin_clzll(npages - 1);
	return PC_ALIGN_UP(npages, (size_t)1 << (lg - 4));
}

static size_t
large_pages(size_t size)
{
	return large_pages_round(PC_ALIGN_UP(size, PC_PAGE) >> PC_PAGE_SHIFT);
}

static size_t
large_align_pages(size_t align)
{
	return align > PC_PAGE ? align >> PC_PAGE_SHIFT : 1;
}

size_t
pageheap_large_need(size_t size, size_t align)
{
	return large_pages(size) + large_align_pages(align) - 1;
}

static void *
large_alloc(pageheap_t *h, size_t size, size_t align, bool reuse_only,
    bool *zeroed)
{
	size_t npages = large_pages(size);
	size_t align_pages = large_align_pages(align);
	span_t *s = reuse_only ?
	    pages_take(h, npages, align_pages, SPAN_LARGE, 0,
	    pageheap_index(h), true, zeroed) :
	    pages_alloc(h, npages, align_pages, SPAN_LARGE, 0,
	    pageheap_index(h), zeroed);
	if (s == NULL)
		return NULL;
	h = pageheap_of(s);	/* another heap's, if ours had no room */
	/* The block is ours alone now: no lock needed to purge in it. */
	if (!*zeroed)
		large_clean(h, s);
	__atomic_fetch_add(&h->nlarge_alloc, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->large_pages, npages, __ATOMIC_RELAXED);
	return (void *)s->base;
}

void *
pageheap_large_alloc(pageheap_t *h, size_t size, size_t align, bool *zeroed)
{
	return large_alloc(h, size, align, false, zeroed);
}

void *
pageheap_large_reuse(pageheap_t *h, size_t size, size_t align, bool *zeroed)
{
	return large_alloc(h, size, align, true, zeroed);
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
 * descriptors are only recycled, their heap index always in range); it
 * is trusted only once the page-map entry, the span and its region agree
 * under the region's heap lock, which every change to them holds.
 */
/*
 * The span whose page p is on, from the page map (untagged entries only:
 * NULL if p's page is a slab's or not ours).  An interior page of a large
 * block or free run names no span: its owner is the span named by the
 * nearest page below that is not interior, its first page.  That walk is
 * as long as the span, but only pointers into a block's interior (misuse)
 * take it.  Unlocked, a hint; under the heap lock of p's region, exact.
 */
static span_t *
owner_of(const void *p)
{
	uintptr_t e = pagemap_lookup(p);
	uintptr_t a = PC_ALIGN_DOWN((uintptr_t)p, PC_PAGE);
	while (e == PM_INTERIOR && a >= PC_PAGE) {
		a -= PC_PAGE;
		e = pagemap_lookup((void *)a);
	}
	if ((e & PM_SC_MASK) != 0 || e == PM_INTERIOR)
		return NULL;
	return pagemap_span(e);
}

span_t *
pageheap_span_at(const void *p)
{
	uintptr_t e = pagemap_lookup(p);
	return (e & PM_SC_MASK) != 0 ? pagemap_span(e) : owner_of(p);
}

static span_t *
large_lock(const void *p, pageheap_t **hp, int *st)
{
	*st = BLOCK_FREED;
	for (unsigned tries = 0; tries < 4; tries++) {
		span_t *s = owner_of(p);
		/* The caller saw a large or free span here: the pages have
		 * since gone back to the OS or become a slab. */
		if (s == NULL)
			return NULL;
		region_t *r = __atomic_load_n(&s->region, __ATOMIC_RELAXED);
		if (r == NULL)	/* a huge span, or one being recycled */
			continue;
		unsigned hi = __atomic_load_n(&r->heap, __ATOMIC_RELAXED);
		if (hi >= npageheaps)
			continue;
		pageheap_t *h = &pageheaps[hi];
		os_lock(pageheap_lock(h));
		if (owner_of(p) == s && s->region == r && r->heap == hi) {
			if (s->kind == SPAN_LARGE && s->base == (uintptr_t)p &&
			    s->sc != LARGE_DYING) {
				*hp = h;
				return s;
			}
			*st = s->kind == SPAN_FREE || (s->kind == SPAN_LARGE &&
			    s->base == (uintptr_t)p) ? BLOCK_FREED :
			    s->kind == SPAN_LARGE ? BLOCK_INTERIOR :
			    BLOCK_INVALID;
			os_unlock(pageheap_lock(h));
			return NULL;
		}
		os_unlock(pageheap_lock(h));
	}
	return NULL;	/* it kept changing under us: not a live block */
}

int
pageheap_large_free(void *p, bool purge, size_t *usable)
{
	pageheap_t *h;
	int st;
	span_t *s = large_lock(p, &h, &st);
	if (s == NULL)
		return st;
	*usable = s->npages << PC_PAGE_SHIFT;
	bool purged = false;
	if (purge) {
		s->sc = LARGE_DYING;
		os_unlock(pageheap_lock(h));
		purged = os_purge((void *)s->base, s->npages << PC_PAGE_SHIFT);
		os_lock(pageheap_lock(h));
	}
	h->nlarge_free++;
	__atomic_fetch_sub(&h->large_pages, s->npages, __ATOMIC_RELAXED);
	pages_free_locked(h, s, !purged);	/* locked memory: dirty */
	os_unlock(pageheap_lock(h));
	return BLOCK_LIVE;
}

int
pageheap_large_resize(void *p, size_t new_size, size_t *usable)
{
	pageheap_t *h;
	int st;
	span_t *s = large_lock(p, &h, &st);
	if (s == NULL)
		return st;
	size_t exact = PC_ALIGN_UP(new_size, PC_PAGE) >> PC_PAGE_SHIFT;
	size_t npages = large_pages_round(exact);
	if (new_size == 0 || npages == s->npages) {
		/* Nothing to do. */
	} else if (npages < s->npages) {
		span_t *t = heap_span_new(h);
		if (t != NULL) {
			*t = *s;
			t->base = s->base + (npages << PC_PAGE_SHIFT);
			t->npages = s->npages - npages;
			t->next = t->prev = NULL;
			__atomic_fetch_sub(&h->large_pages, t->npages,
			    __ATOMIC_RELAXED);
			s->npages = npages;
			set_bounds(s);	/* t's are set as it is freed */
			pages_free_locked(h, t, true);
		}
	} else {
		region_t *r = s->region;
		uintptr_t end = s->base + (s->npages << PC_PAGE_SHIFT);
		uintptr_t rend = r->base + (r->npages << PC_PAGE_SHIFT);
		size_t extra = npages - s->npages;
		span_t *rt = end < rend ? pagemap_span(pagemap_lookup(
		    (void *)end)) : NULL;
		bool right = rt != NULL && rt->kind == SPAN_FREE &&
		    rt->region == r;
		/* Room for the pages asked for but not for the rounding:
		 * growing in place beats moving. */
		if (right && rt->npages < extra && exact > s->npages &&
		    rt->npages >= exact - s->npages) {
			npages = exact;
			extra = npages - s->npages;
		}
		if (right && rt->npages >= extra) {
			run_remove(h, rt);
			if (rt->dirty) {
				h->dirty -= extra;
				dirty_note_low(h);
			}
			/* s's old last page and rt's first become interior
			 * (unless one is also s's new last page). */
			if (s->npages > 1)
				set_range(end - PC_PAGE, 1, PM_INTERIOR);
			if (extra > 1)
				set_range(end, 1, PM_INTERIOR);
			rt->base += extra << PC_PAGE_SHIFT;
			rt->npages -= extra;
			s->npages = npages;
			set_range(last_page(s), 1, (uintptr_t)s);
			if (rt->npages > 0) {
				set_bounds(rt);
				run_insert(h, rt);
			} else {
				heap_span_delete(h, rt);
			}
			region_touch(h, r, end, end + (extra << PC_PAGE_SHIFT));
			__atomic_store_n(&h->active, h->active + extra,
			    __ATOMIC_RELAXED);
			__atomic_fetch_add(&h->large_pages, extra,
			    __ATOMIC_RELAXED);
		}
	}
	*usable = s->npages << PC_PAGE_SHIFT;
	os_unlock(pageheap_lock(h));
	return BLOCK_LIVE;
}


/* ---- Slabs' pages ----------------------------------------------------- */

span_t *
pageheap_slab_alloc(pageheap_t *h, size_t npages, uintptr_t tag,
    unsigned owner, bool reuse_only)
{
	bool zeroed;
	if (reuse_only)
		return pages_take(h, npages, 1, SPAN_SLAB, tag, owner, true,
		    &zeroed);
	return pages_alloc(h, npages, 1, SPAN_SLAB, tag, owner, &zeroed);
}

void
pageheap_slab_free(span_t *s)
{
	pageheap_t *h = pageheap_of(s);
	os_lock(pageheap_lock(h));
	pages_free_locked(h, s, true);
	os_unlock(pageheap_lock(h));
}

/* ---- Purging ---------------------------------------------------------- */

size_t
pageheap_purge(pageheap_t *h)
{
	os_lock(pageheap_lock(h));
	size_t purged = decay_locked(h, os_now_ns(), true);
	os_unlock(pageheap_lock(h));
	return purged;
}

size_t
pageheap_purge_all(void)
{
	size_t purged = 0;
	for (unsigned i = 0; i < npageheaps; i++)
		purged += pageheap_purge(&pageheaps[i]);
	return purged;
}

/* ---- Fork ------------------------------------------------------------- */

void
pageheap_prefork(void)
{
	for (unsigned i = 0; i < npageheaps; i++)
		os_lock(pageheap_lock(&pageheaps[i]));
}

void
pageheap_postfork_parent(void)
{
	for (unsigned i = 0; i < npageheaps; i++)
		os_unlock(pageheap_lock(&pageheaps[i]));
}
