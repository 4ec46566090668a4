/*
 * The public pc_* API and the slow paths behind the inline entry points of
 * api.h.
 */
#include <string.h>

#include "pcmalloc.h"
#include "api.h"
#include "arena.h"
#include "report.h"
#include "conf.h"
#include "debug.h"
#include "guard.h"
#include "nursery.h"
#include "init.h"
#include "huge.h"
#include "sample.h"
#include "stats.h"

/* stats.h: keeps the exit-time report in static links. */
__attribute__((used)) static const char *const api_keep_stats =
    &stats_exit_report;

static unsigned api_foreign_reports;

/* "pcmalloc: <what> 0x<p>[ (<size> bytes for a block of <usable>)][,
 * called from 0x<caller>]" for misuse of our blocks, with the report
 * builder arena.c's reports use too.  usable 0: no sizes (a large or huge
 * block is never 0 bytes); caller NULL: not known. */
static void
api_report_misuse_line(const char *what, const void *p, size_t size,
    size_t usable, const void *caller)
{
	pc_msg_t m;
	pc_msg_start(&m);
	pc_msg_str(&m, what);
	pc_msg_str(&m, " ");
	pc_msg_hex(&m, (uintptr_t)p);
	if (usable != 0) {
		pc_msg_str(&m, " (");
		pc_msg_u64(&m, size);
		pc_msg_str(&m, " bytes for a block of ");
		pc_msg_u64(&m, usable);
		pc_msg_str(&m, ")");
	}
	if (caller != NULL) {
		pc_msg_str(&m, ", called from ");
		pc_msg_hex(&m, (uintptr_t)caller);
	}
	pc_msg_write(&m);
}

/*
 * Bad pointers are reported, not acted on: the heap stays consistent.  A
 * pointer that was never ours (misuse: true only for double and interior
 * frees of our blocks) is left alone and the program goes on, and only the
 * first 16 such are reported (a program that mixes heaps would flood
 * stderr); misuse of our blocks is always reported, and aborts unless
 * abort_on_error is off.
 */
static PC_NOINLINE PC_COLD void
api_report(const char *what, const void *p, bool misuse, const void *caller)
{
	if (misuse) {
		api_report_misuse_line(what, p, 0, 0, caller);
		PC_MISUSE_END("heap misuse detected (abort_on_error:false only "
		    "warns)");
		return;
	}
	PC_COUNT_REPORT();
	unsigned n = __atomic_fetch_add(&api_foreign_reports, 1,
	    __ATOMIC_RELAXED);
	if (n < 16)
		pc_report_ptr(what, p, n == 15 ?
		    " (further reports suppressed)" : "");
}

/* The report for a pointer that the large or huge block check, or the
 * nursery's, refused. */
enum { API_FREE, API_REALLOC, API_USABLE };

static PC_NOINLINE PC_COLD void
api_report_state(int op, int st, const void *p, const void *caller)
{
	static const char *const what[3][5] = {
		{ NULL, "free of foreign pointer", "double free of",
		    "free of a pointer inside a block,",
		    "free of an invalid pointer" },
		{ NULL, "realloc of foreign pointer", "realloc of a freed block,",
		    "realloc of a pointer inside a block,",
		    "realloc of an invalid pointer" },
		{ NULL, "malloc_usable_size of foreign pointer",
		    "malloc_usable_size of a freed block,",
		    "malloc_usable_size of a pointer inside a block,",
		    "malloc_usable_size of an invalid pointer" },
	};
	api_report(what[op][st], p, st != BLOCK_FOREIGN, caller);
}

/*
 * free_sized of a large or huge block: the size must lie between what
 * could have been asked for and the usable size.  A huge block is the
 * request rounded up to a page (an aligned request of 0 bytes counts as
 * 1, as api_large_aligned serves it); a large one is that rounded up to
 * one of sixteen page counts per doubling (pageheap.c), at most 1/16
 * more, or, after a realloc that shrank it in place, more than half of it
 * (a huge one too, when that realloc asked for less than
 * PC_REALLOC_MAP_MIN; it remaps to the page for more).
 */
static bool
api_size_fits_pages(size_t size, size_t usable, bool huge)
{
	size = PC_MAX(size, 1);
	if (size > usable)
		return false;
	/* A realloc below PC_REALLOC_MAP_MIN that shrinks a huge block by
	 * less than half keeps it too (api_realloc). */
	return usable - size < PC_PAGE ||
	    ((!huge || size < PC_REALLOC_MAP_MIN) && size > usable / 2);
}

static PC_NOINLINE PC_COLD void
api_report_size(const void *p, size_t size, size_t usable,
    const void *caller)
{
	api_report_misuse_line("free_sized with a wrong size of", p, size,
	    usable, caller);
	PC_MISUSE_END("heap misuse detected (abort_on_error:false only warns)");
}

static void *
api_large_aligned(size_t size, size_t align, bool *zeroed)
{
	*zeroed = false;
	if (size > PC_MAX_ALLOC || pc_ensure_init() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	void *p;
	size = PC_MAX(size, 1);	/* an aligned request of 0 bytes */
	if (size >= PC_HUGE_MIN || align > PC_CHUNK) {
		p = huge_alloc(size, align, zeroed);
		if (p == NULL) {
			/* Free arena regions and kept mappings may hold the
			 * address space: release them, or failing that, use
			 * their pages. */
			huge_keep_release(true);
			arena_release_all(true);
			p = huge_alloc(size, align, zeroed);
			if (p == NULL && align <= PC_CHUNK)
				p = pageheap_large_alloc(arena_big_heap(),
				    size, align, zeroed);
		}
	} else {
		/* Blocks of a megabyte or more share one heap: per-CPU
		 * arenas would each keep their own free runs of them,
		 * multiplying the memory held, for no gain (filling one costs
		 * far more than the lock); and no slab lands on pages they
		 * never touched (arena.h). */
		p = size >= PC_LARGE_SHARED_MIN ?
		    pageheap_large_alloc(arena_big_heap(), size, align,
		    zeroed) :
		    arena_large_alloc(arena_choose(), size, align, zeroed);
	}
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

void *
api_malloc_large(size_t size)
{
	bool zeroed;
	return api_large_aligned(size, PC_PAGE, &zeroed);
}

/* A guarded block may be one of the profiler's samples: it leaves the
 * profile before its slot can be reused.  A bad free is in no profile, so
 * guard_free still reports it before anything changes. */
static void
api_guard_free(void *p, const void *caller)
{
	if (PC_PROF)
		sample_free(p);
	guard_free(p, caller);
}

void
api_free_slow(void *p, const void *caller)
{
	/* Guarded blocks have page-map entry 0, which sends them here: the
	 * fast path pays nothing for them. */
	if (PC_UNLIKELY(guard_owns(p))) {
		TCACHE_OP_END();
		api_guard_free(p, caller);
		return;
	}
	uintptr_t entry = pagemap_lookup(p);
	unsigned tag = (unsigned)(entry & PM_SC_MASK);
	if (tag != 0)
		tcache_free_small(p, tag - 1, caller);
	else
		api_free_big(p, entry, caller);
	TCACHE_OP_END();	/* opened by api_free */
}

/*
 * Free the large or huge block at p, whose page-map entry was `entry` (0,
 * or untagged); the entry is only a hint, checked again under the lock
 * that frees the block.  Returns BLOCK_LIVE and the block's usable size,
 * or what p is instead.
 */
static int
api_free_block(void *p, uintptr_t entry, size_t *usable, bool *huge)
{
	span_t *s = pagemap_span(entry);
	*huge = s == NULL || s->kind == SPAN_HUGE;
	/* A sampled block leaves the profile before its pages can be reused
	 * (and sampled again); not a block start: not in the profile. */
	if (PC_PROF)
		sample_free(p);
	if (*huge) {
		int st = huge_free(p, usable);
		if (st == BLOCK_LIVE)
			pc_ensure_services();	/* kept mappings: bgthread.c */
		return st;
	}
	int st = pageheap_large_free(p, false, usable);
	if (st == BLOCK_LIVE) {
		huge_keep_tick();
		pc_ensure_services();
	}
	return st;
}

/*
 * Free nursery block p (nursery.h), or report what it is instead; with
 * `sized` (free_sized, free_aligned_sized: `align` not 0), the size must
 * give the block's usable size as malloc would have (realloc keeps a
 * block so, or resizes it in place to the new size's), checked where a
 * small block's is (config_harden).
 */
static void
api_nursery_free(void *p, bool sized, size_t size, size_t align,
    const void *caller)
{
	size_t usable;
	int st = nursery_block(p, &usable);
	if (st == BLOCK_LIVE && sized && config_harden &&
	    nursery_usable(size) != usable)
		arena_report_size(align ? "free_aligned_sized" : "free_sized",
		    p, size, usable, caller);
	if (st == BLOCK_LIVE)
		st = nursery_free(p);
	if (st != BLOCK_LIVE)
		api_report_state(API_FREE, st, p, caller);
}

void
api_free_big(void *p, uintptr_t entry, const void *caller)
{
	if (p == NULL)
		return;
	int saved = errno;
	if (PC_UNLIKELY(guard_owns(p))) {
		api_guard_free(p, caller);
		errno = saved;
		return;
	}
	if (PC_UNLIKELY(nursery_owns(p))) {
		api_nursery_free(p, false, 0, 0, caller);
		errno = saved;
		return;
	}
	size_t usable;
	bool huge;
	int st = api_free_block(p, entry, &usable, &huge);
	if (st != BLOCK_LIVE)
		api_report_state(API_FREE, st, p, caller);
	errno = saved;
}

size_t
api_usable_size_at(const void *p, const void *caller)
{
	if (PC_UNLIKELY(guard_owns(p))) {
		int saved = errno;
		size_t n = guard_usable(p, "malloc_usable_size", caller);
		errno = saved;
		return n;
	}
	uintptr_t e = pagemap_lookup(p);
	unsigned tag = (unsigned)(e & PM_SC_MASK);
	if (PC_LIKELY(tag != 0)) {
		/* Checked like free (quick checks first, as realloc): an
		 * interior pointer's "size" would invite writes past its
		 * block. */
		if (!tcache_block_ok(p, e, tag - 1, "malloc_usable_size",
		    caller))
			return 0;
		if (PC_UNLIKELY(opt_debug))
			return debug_usable_small(p, pagemap_span(e));
		return sc_size(tag - 1);
	}
	if (p == NULL)
		return 0;
	/* Large and huge blocks are checked under the lock that would free
	 * them (the check-only forms of resize and huge realloc). */
	span_t *s = pagemap_span(e);
	size_t usable;
	int st;
	if (PC_UNLIKELY(nursery_owns(p))) {
		st = nursery_block(p, &usable);
	} else if (s == NULL || s->kind == SPAN_HUGE) {
		void *q;
		st = huge_realloc((void *)p, 0, &q, &usable);
	} else {
		st = pageheap_large_resize((void *)p, 0, &usable);
	}
	if (st == BLOCK_LIVE)
		return usable;
	/* A pointer that was never ours answers 0 quietly, as before;
	 * an interior or freed one of ours is misuse. */
	if (st != BLOCK_FOREIGN) {
		int saved = errno;
		api_report_state(API_USABLE, st, p, caller);
		errno = saved;
	}
	return 0;
}

static void *
api_calloc_unsampled(size_t total)
{
	if (PC_LIKELY(total <= SC_SMALL_MAX)) {
		void *p = tcache_alloc(total);
		/* A nursery block is zero-fill data, but for what blocks
		 * given back at the top left there: its pages stay untouched
		 * until the program writes them. */
		if (p != NULL) {
			if (PC_LIKELY(!nursery_owns(p)))
				memset(p, 0, total);
			else
				nursery_calloc_clear(p, total);
		}
		return p;
	}
	bool zeroed;
	void *p = api_large_aligned(total, PC_PAGE, &zeroed);
	if (p != NULL && !zeroed)
		memset(p, 0, total);
	return p;
}

void *
api_calloc(size_t n, size_t size)
{
	size_t total;
	if (PC_UNLIKELY(__builtin_mul_overflow(n, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	if (SAMPLE_HIT(total))
		return pc_sample_malloc(total, 0, SAMPLE_ZERO);
	return api_calloc_unsampled(total);
}

/*
 * A growing realloc that has to move rounds a large target up to a
 * quarter-of-a-doubling step, so the next few growths of the same buffer
 * fit in place.  The untouched tail costs address space, not RSS.
 */
static size_t
realloc_target(size_t old_usable, size_t size)
{
	if (size <= old_usable || size <= SC_SMALL_MAX || size >= PC_HUGE_MIN)
		return size;
	unsigned lg = 63 - (unsigned)__builtin_clzll(size - 1);
	size_t step = (size_t)1 << (lg - 2);
	size_t r = PC_ALIGN_UP(size, step);
	return r < PC_HUGE_MIN ? r : size;
}

/* Whether realloc keeps a page extent of `usable` bytes for `size`:
 * shrinking by less than half (or not at all) leaves it as it is. */
static bool
realloc_keeps(size_t size, size_t usable)
{
	return size <= usable && size > usable / 2;
}

/* Free large block p, which a growing realloc left behind (its contents
 * are elsewhere now). */
static void
api_free_outgrown(void *p)
{
	size_t usable;
	int st = pageheap_large_free(p, true, &usable);
	if (st != BLOCK_LIVE)	/* freed by another thread meanwhile */
		api_report_state(API_FREE, st, p, NULL);
}

/* Whether p lies in a large block (a page run of an arena). */
static bool
api_is_large(const void *p)
{
	uintptr_t e = pagemap_lookup(p);
	const span_t *s = pagemap_span(e);
	return (e & PM_SC_MASK) == 0 && s != NULL && s->kind == SPAN_LARGE;
}

static void *
api_move(void *p, size_t old_usable, size_t size)
{
	/*
	 * A big buffer that keeps growing (a vector, a string builder, a
	 * file read in) would be copied, and its new pages faulted in, at
	 * every move: with a mapping of its own it is remapped instead, as
	 * glibc's mmap'ed chunks are.  The old pages move with it.  (The
	 * threshold is never below PC_REALLOC_MAP_MIN: a small block's move
	 * looks nothing up.)
	 */
	bool adopt = size > old_usable && old_usable >= PC_REALLOC_MAP_MIN &&
	    old_usable >= huge_adopt_min() && api_is_large(p);
	if (adopt && huge_count() < PC_REALLOC_MAPS_MAX) {
		bool copied;
		void *q = huge_adopt(p, old_usable, size, &copied);
		if (q != NULL) {
			if (PC_PROF)
				sample_moved(p, q);
			/* Copied, p keeps its pages: dirty ones, for the next
			 * buffer to grow through before it is adopted (purged,
			 * realloc-big took 0.54 s, not 0.33 s). */
			if (copied)
				api_free(p);
			else
				api_free_outgrown(p);
			return q;
		}
	}
	void *q = api_malloc(realloc_target(old_usable, size));
	if (q == NULL)
		return NULL;
	memcpy(q, p, PC_MIN(old_usable, size));
	/* Where it could not be adopted, a buffer that outgrew a big block
	 * gives its pages back at once, as an adopted one would, instead of
	 * holding them until the decay.  Smaller ones stay dirty: the next
	 * buffer built the same way reuses them without page faults. */
	if (adopt) {
		if (PC_PROF)
			sample_free(p);
		api_free_outgrown(p);
	} else {
		api_free(p);
	}
	return q;
}

/*
 * realloc of a nursery block (nursery.h): kept where the new size has the
 * same usable size (as a small block is kept in its class, so that
 * free_sized with either size agrees), resized in place if it is the
 * last block carved (nursery_resize), else moved, to the nursery again
 * while it has room.
 */
static void *
api_nursery_realloc(void *p, size_t size, const void *caller)
{
	size_t usable;
	int st = nursery_block(p, &usable);
	if (st != BLOCK_LIVE) {
		api_report_state(API_REALLOC, st, p, caller);
		errno = EINVAL;
		return NULL;
	}
	if (nursery_usable(size) == usable || nursery_resize(p, usable, size))
		return p;
	void *q = api_malloc(size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, PC_MIN(usable, size));
	st = nursery_free(p);
	if (st != BLOCK_LIVE)	/* freed by another thread meanwhile */
		api_report_state(API_FREE, st, p, caller);
	return q;
}

void *
api_realloc_at(void *p, size_t size, const void *caller)
{
	if (p == NULL)
		return api_malloc(size);
	if (size == 0) {
		/* glibc frees and returns NULL. */
		api_free(p);
		return NULL;
	}
	if (PC_UNLIKELY(size > PC_MAX_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	if (PC_UNLIKELY(guard_owns(p))) {
		/* Always moved: the new block may be sampled or not. */
		size_t old = guard_usable(p, "realloc", caller);
		if (old == 0) {
			errno = EINVAL;
			return NULL;
		}
		void *q = api_malloc(size);
		if (q != NULL) {
			memcpy(q, p, PC_MIN(old, size));
			api_guard_free(p, caller);
		}
		return q;
	}
	if (PC_UNLIKELY(nursery_owns(p)))
		return api_nursery_realloc(p, size, caller);
	uintptr_t e = pagemap_lookup(p);
	unsigned tag = (unsigned)(e & PM_SC_MASK);
	if (PC_LIKELY(tag != 0)) {
		unsigned sc = tag - 1;
		/* Checked like free before anything is read or kept: p may be
		 * inside a block, or freed (in our cache or its slab).  The
		 * free fast path's checks first; a block they doubt gets the
		 * full check, which reports. */
		if (!tcache_block_ok(p, e, sc, "realloc", caller)) {
			errno = EINVAL;
			return NULL;
		}
		if (PC_UNLIKELY(opt_debug))	/* re-records the size */
			return api_move(p, debug_usable_small(p, pagemap_span(e)),
			    size);
		if (size <= SC_SMALL_MAX && sc_index(size) == sc)
			return p;
		return api_move(p, sc_size(sc), size);
	}
	/* The span is a hint, read unlocked: pageheap_large_resize and
	 * huge_realloc check the block under the lock that would free it. */
	span_t *s = pagemap_span(e);
	size_t usable;
	int st;
	if (s == NULL || s->kind == SPAN_HUGE) {
		void *q;
		st = huge_realloc(p, size >= PC_REALLOC_MAP_MIN ? size : 0,
		    &q, &usable);
		if (st == BLOCK_LIVE) {
			if (PC_PROF && q != NULL && q != p)
				sample_moved(p, q);	/* remapped */
			if (q != NULL)
				return q;
			/* Not resized (a request below PC_REALLOC_MAP_MIN,
			 * or an over-aligned block growing).  Shrinking
			 * by less than half keeps the block, as for a large
			 * one: a realloc to the same size never moves. */
			if (realloc_keeps(size, usable))
				return p;
			return api_move(p, usable, size);
		}
	} else {
		if (s->kind == SPAN_LARGE && (uintptr_t)p == s->base) {
			/* Shrinking by less than half keeps the block as it
			 * is. */
			usable = s->npages << PC_PAGE_SHIFT;
			if (realloc_keeps(size, usable))
				return p;
		}
		bool fits = size > SC_SMALL_MAX && size < PC_HUGE_MIN;
		st = pageheap_large_resize(p, fits ? size : 0, &usable);
		if (st == BLOCK_LIVE) {
			/* Resized (to a rounded page count), or a shrink that
			 * could not split the block and keeps more than half
			 * of it: realloc_keeps says which to keep. */
			if (fits && realloc_keeps(size, usable))
				return p;
			return api_move(p, usable, size);
		}
	}
	api_report_state(API_REALLOC, st, p, caller);
	errno = EINVAL;
	return NULL;
}

/* memalign with align > 16, a power of two, without the countdown. */
static void *
api_memalign_unsampled(size_t align, size_t size)
{
	if (size > PC_MAX_ALLOC || align > PC_MAX_ALLOC ||
	    pc_ensure_init() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (align <= PC_PAGE && size <= SC_SMALL_MAX) {
		/* A class whose size is a multiple of align has every object
		 * aligned: slabs start on a page.  Debug mode starts the
		 * search one redzone byte up and keeps the requested size. */
		unsigned first = opt_debug ? debug_class(size) : sc_index(size);
		for (unsigned sc = first; sc < SC_NSMALL; sc++) {
			if (sc_size(sc) % align != 0)
				continue;
			if (opt_debug)
				return debug_alloc_small(size, sc);
			/* Not from the nursery: its blocks are only 16-byte
			 * aligned. */
			return tcache_alloc_sc_from(sc, sc_size(sc), true);
		}
	}
	bool zeroed;
	return api_large_aligned(size, align,
	    &zeroed);
}

void *
api_memalign(size_t align, size_t size)
{
	if (align <= 16)
		return api_malloc(size);
	if (align & (align - 1)) {
		/* glibc rounds a non-power-of-two alignment up. */
		if (align > (SIZE_MAX >> 1) + 1) {
			errno = EINVAL;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzll(align));
	}
	if (SAMPLE_HIT(size))
		return pc_sample_malloc(size, align, 0);
	return api_memalign_unsampled(align, size);
}

void *
api_alloc_unsampled(size_t size, size_t align, bool zero)
{
	if (zero)
		return api_calloc_unsampled(size);
	if (align <= 16)
		return api_malloc_unsampled(size);
	return api_memalign_unsampled(align, size);
}

void *
api_alloc_pages(size_t size, size_t align, bool *zeroed)
{
	return api_large_aligned(size, PC_MAX(align, PC_PAGE), zeroed);
}

int
api_posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	int saved = errno;
	void *p = api_memalign(align, size);
	if (p == NULL) {
		int err = errno == EINVAL ? EINVAL : ENOMEM;
		errno = saved;
		return err;
	}
	errno = saved;
	*out = p;
	return 0;
}

void *
api_aligned_alloc(size_t align, size_t size)
{
	return api_memalign(align, size);
}

void *
api_valloc(size_t size)
{
	return api_memalign(PC_PAGE, size);
}

void *
api_pvalloc(size_t size)
{
	size_t rounded = PC_ALIGN_UP(size, PC_PAGE);
	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	return api_memalign(PC_PAGE, rounded ? rounded : PC_PAGE);
}

/*
 * Whether free_sized (align 0) or free_aligned_sized may name a block of
 * class sc with `size`: whether an allocation of that size could have
 * returned such a block.  pcmalloc.h allows any size from the requested
 * one to the usable one.  malloc, calloc and realloc take the class of the
 * size, so any other class means the caller is wrong about the block:
 * larger than the block (it would write past it), or of a smaller class
 * (it is not the block the caller thinks).  An aligned allocation takes
 * the first class from there that is a multiple of the alignment, so a
 * smaller size is right if no class in between is; without the alignment
 * we assume the largest the class allows, which excludes the fewest.
 * Debug mode picks classes with room for a redzone: only the bound holds.
 */
static bool
api_size_fits_class(unsigned sc, size_t size, size_t align)
{
	size_t csize = sc_size(sc);
	if (size > csize)
		return false;
	unsigned first = sc_index(size);
	if (first == sc || opt_debug)
		return true;
	if (align == 0)
		align = PC_MIN(csize & -csize, PC_PAGE);
	else if (align & (align - 1))	/* api_memalign rounds it up */
		align = (size_t)1 << (64 - __builtin_clzll(align));
	if (align <= 16 || align > PC_PAGE || csize % align != 0)
		return false;
	for (unsigned c = first; c < sc; c++)
		if (sc_size(c) % align == 0)
			return false;
	return true;
}

void
api_free_sized_at(void *p, size_t size, size_t align, const void *caller)
{
	if (PC_UNLIKELY(guard_owns(p))) {
		/* The size is not checked: a guarded block's usable size is
		 * the requested one, which the caller may have rounded. */
		int saved = errno;
		api_guard_free(p, caller);
		errno = saved;
		return;
	}
	uintptr_t e = pagemap_lookup(p);
	unsigned tag = (unsigned)(e & PM_SC_MASK);
	if (PC_LIKELY(tag != 0)) {
		/* Reported, then freed as free() would: the block is the one
		 * p names whatever size the caller believes it has. */
		if (config_harden && PC_UNLIKELY(!api_size_fits_class(tag - 1,
		    size, align)))
			arena_report_misuse(MISUSE_SIZE, align ?
			    "free_aligned_sized" : "free_sized", p,
			    pagemap_span(e), tag - 1, size, caller);
		tcache_free(p, e, caller);
		return;
	}
	if (p == NULL)
		return;
	int saved = errno;
	if (PC_UNLIKELY(nursery_owns(p))) {
		api_nursery_free(p, true, size, align, caller);
		errno = saved;
		return;
	}
	size_t usable;
	bool huge;
	int st = api_free_block(p, e, &usable, &huge);
	if (st != BLOCK_LIVE)
		api_report_state(API_FREE, st, p, caller);
	else if (!api_size_fits_pages(size, usable, huge))
		api_report_size(p, size, usable, caller);
	errno = saved;
}

int
api_trim(void)
{
	if (!__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return 0;
	tcache_flush_self();
	tcache_reclaim(false);
	size_t kept = huge_kept_mapped_bytes();
	huge_keep_release(true);
	return (arena_release_all(true) != 0) | (kept != 0);
}

/* ---- Exported pc_* names ---------------------------------------------- */

PC_EXPORT void *pc_malloc(size_t size) { return api_malloc(size); }
PC_EXPORT void pc_free(void *p) { api_free(p); }
PC_EXPORT void *pc_calloc(size_t n, size_t size) { return api_calloc(n, size); }
PC_EXPORT void *pc_realloc(void *p, size_t size) { return api_realloc(p, size); }
PC_EXPORT void *
pc_reallocarray(void *p, size_t n, size_t size)
{
	return api_reallocarray(p, n, size);
}
PC_EXPORT int
pc_posix_memalign(void **out, size_t align, size_t size)
{
	return api_posix_memalign(out, align, size);
}
PC_EXPORT void *
pc_aligned_alloc(size_t align, size_t size)
{
	return api_aligned_alloc(align, size);
}
PC_EXPORT void *
pc_memalign(size_t align, size_t size)
{
	return api_memalign(align, size);
}
PC_EXPORT size_t pc_malloc_usable_size(void *p) { return api_usable_size(p); }
PC_EXPORT void pc_free_sized(void *p, size_t size) { api_free_sized(p, size); }
PC_EXPORT int pc_trim(void) { return api_trim(); }
PC_EXPORT const char *pc_version(void) { return PCMALLOC_VERSION; }
#if !PC_PROF
/* The heap profiler is not built here (sample.h). */
PC_EXPORT int pc_prof_dump(const char *path) { (void)path; return ENOSYS; }
#endif
