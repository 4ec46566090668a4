#include <errno.h>
#include <string.h>

#include "huge.h"
#include "locks.h"
#include "base.h"
#include "conf.h"
#include "report.h"
#include "os.h"
#include "pagemap.h"

static size_t huge_bytes;	/* atomic */
static size_t huge_n;		/* atomic */

/* span.sc of a huge block. */
#define HUGE_ALIGNED	1	/* aligned beyond a page: remap would lose it */
#define HUGE_ADOPTED	2	/* made by huge_adopt */

/* Blocks of at least this size are adopted (atomic): PC_REALLOC_MAP_MIN,
 * raised to the size of each adopted block freed, up to
 * PC_REALLOC_MAP_MAX.  A program that builds buffers of a few megabytes
 * over and over would otherwise map, fault in and unmap each one; after
 * the first, they stay in the page heap, whose dirty pages it reuses (as
 * glibc raises its mmap threshold). */
static size_t adopt_min = PC_REALLOC_MAP_MIN;

#define huge_lock locks_global.huge	/* locks.h */

/* The live huge spans, sorted by base (huge_lock).  Metadata memory of its
 * own, grown by doubling. */
static span_t **huge_reg;
static size_t huge_reg_n;
static size_t huge_reg_cap;

/* Ranges unmapped lately (huge_lock), so that freeing one again is told
 * apart from a foreign pointer.  A range is forgotten when a new block
 * takes any of its addresses; an arena region that takes them is found
 * by its page-map entries first. */
#define HUGE_FREED_RING 64
static struct { uintptr_t lo, hi; } huge_freed[HUGE_FREED_RING] PC_BIG_BSS;
static unsigned huge_freed_next;

/*
 * Mappings of freed huge blocks, kept whole with their pages for a while
 * (huge_lock).  A program that builds a big buffer, frees it and builds
 * another (a file read, a string joined, a list grown, then dropped) had
 * each new mapping fault in every page again: on this machine a fault
 * costs as much as copying 60 KiB.  A kept mapping serves the next huge
 * block or adopted buffer that fits in it; the buffer then grows inside it
 * without remapping.  One unused for HUGE_KEEP_MS (or decay_ms, if less)
 * is unmapped by the next tick (huge_keep_tick: slow paths and the
 * purging thread), and malloc_trim unmaps them all.  The youngest are
 * kept: past HUGE_KEEP_SLOTS or HUGE_KEEP_BYTES the oldest goes at once.
 * A program that goes idle would hold them until its next slow path, so
 * past 64 MiB kept the purging thread is started, as for a page heap's
 * dirty pages (bgthread.c); with background_thread:off, 64 MiB is the
 * limit.
 */
#define HUGE_KEEP_SLOTS	4
#define HUGE_KEEP_MS	1000
#define HUGE_KEEP_BYTES	((size_t)256 << 20)
/* An adopted buffer takes a kept mapping up to this many times its size:
 * room to grow into (realloc-big adopts 1-4 MiB buffers that become up
 * to 64 MiB), not a big mapping pinned by a small buffer. */
#define HUGE_ADOPT_ROOM	32
static struct {
	uintptr_t base;
	size_t mapped;
	uint64_t since_ns;
} huge_kept[HUGE_KEEP_SLOTS];
static unsigned huge_kept_n;
static size_t huge_kept_bytes;		/* atomic reads (statistics) */
static uint64_t huge_keep_due_ns;	/* atomic: the next expiry, 0 none */

/*
 * Kept pages are resident pages the program does not use.  Once the heap
 * has taken as many pages never touched before (huge_note_fresh: page-heap
 * growth, new huge mappings) as the oldest kept mapping holds, that one is
 * unmapped: the program's footprint grew past the kept pages' worth, and
 * they would add to its peak.  sqlite3 :memory: (the harness's row) builds
 * and drops 8-16 MiB buffers while its page cache grows by 100 MiB: peak
 * RSS 184 MiB with them kept for their second, 172 MiB so (glibc 162 MiB),
 * its time the same.  A program that reuses them without growing as much,
 * the case they are kept for (realloc-big), keeps them: with an eighth of
 * the mapping as the trigger instead, realloc-big took 50% more page faults
 * and time.  A live huge block's growth by realloc is not counted either:
 * it is the buffer the kept mappings are there for.
 *
 * One count for the list, not one for each mapping: huge_fresh_bytes
 * (atomic) is the growth since a mapping was kept into an empty list, less
 * what the mappings unmapped for it used up, so a mapping kept later
 * inherits what is left of it (read only while the list is not empty).
 * huge_fresh_due (atomic, kept_publish) is the oldest's size.
 */
static size_t huge_fresh_bytes;
static size_t huge_fresh_due = SIZE_MAX;

/* Index of the last block whose base is <= a, or huge_reg_n. */
static size_t
reg_find(uintptr_t a)
{
	size_t lo = 0, hi = huge_reg_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (huge_reg[mid]->base <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? huge_reg_n : lo - 1;
}

static int
reg_insert(span_t *s)
{
	if (huge_reg_n == huge_reg_cap) {
		size_t cap = huge_reg_cap ? huge_reg_cap * 2 :
		    PC_PAGE / sizeof(span_t *);
		span_t **r = base_map(cap * sizeof(span_t *));
		if (r == NULL)
			return ENOMEM;
		if (huge_reg != NULL) {
			memcpy(r, huge_reg, huge_reg_n * sizeof(span_t *));
			base_unmap(huge_reg, huge_reg_cap * sizeof(span_t *));
		}
		huge_reg = r;
		huge_reg_cap = cap;
	}
	size_t i = reg_find(s->base);
	i = i == huge_reg_n ? 0 : i + 1;
	memmove(&huge_reg[i + 1], &huge_reg[i],
	    (huge_reg_n - i) * sizeof(span_t *));
	huge_reg[i] = s;
	huge_reg_n++;
	return 0;
}

static void
reg_remove_at(size_t i)
{
	memmove(&huge_reg[i], &huge_reg[i + 1],
	    (huge_reg_n - i - 1) * sizeof(span_t *));
	huge_reg_n--;
}

static void
freed_remember(uintptr_t lo, uintptr_t hi)
{
	huge_freed[huge_freed_next].lo = lo;
	huge_freed[huge_freed_next].hi = hi;
	huge_freed_next = (huge_freed_next + 1) % HUGE_FREED_RING;
}

static void
freed_forget(uintptr_t lo, uintptr_t hi)
{
	for (unsigned i = 0; i < HUGE_FREED_RING; i++)
		if (huge_freed[i].lo < hi && lo < huge_freed[i].hi)
			huge_freed[i].lo = huge_freed[i].hi = 0;
}

/* What address a is (huge_lock held); *at is its block's index if live. */
static int
huge_state_locked(uintptr_t a, size_t *at)
{
	size_t i = reg_find(a);
	if (i < huge_reg_n && a - huge_reg[i]->base <
	    (huge_reg[i]->npages << PC_PAGE_SHIFT)) {
		*at = i;
		return a == huge_reg[i]->base ? BLOCK_LIVE : BLOCK_INTERIOR;
	}
	/* A freed block's kept mapping: mapped, and still ours. */
	for (unsigned k = 0; k < huge_kept_n; k++)
		if (a - huge_kept[k].base < huge_kept[k].mapped)
			return BLOCK_FREED;
	/* A recently freed range that is unmapped still: a stale pointer
	 * (double free).  Mapped again, and not by us (the page map and the
	 * registry said so above), it is the program's own mapping now, as
	 * mmap readily reuses a gap: foreign. */
	for (unsigned k = 0; k < HUGE_FREED_RING; k++)
		if (a >= huge_freed[k].lo && a < huge_freed[k].hi)
			return os_is_mapped((const void *)a) ? BLOCK_FOREIGN :
			    BLOCK_FREED;
	return BLOCK_FOREIGN;
}

/* Register mapping p of `mapped` bytes as a huge block of `size` bytes
 * (page aligned, at most `mapped`) described by s (deleted on failure; p
 * is then the caller's to release). */
static bool
huge_register(span_t *s, void *p, size_t mapped, size_t size, uint8_t flags)
{
	s->base = (uintptr_t)p;
	s->npages = mapped >> PC_PAGE_SHIFT;
	s->size = size;
	s->kind = SPAN_HUGE;
	s->sc = flags;
	os_lock(&huge_lock);
	int err = reg_insert(s);
	if (err == 0 && pagemap_set(s->base, 1, (uintptr_t)s) != 0) {
		reg_remove_at(reg_find(s->base));
		err = ENOMEM;
	}
	if (err == 0)
		freed_forget(s->base, s->base + mapped);
	os_unlock(&huge_lock);
	if (err != 0) {
		span_delete(s);
		return false;
	}
	__atomic_fetch_add(&huge_bytes, mapped, __ATOMIC_RELAXED);
	__atomic_fetch_add(&huge_n, 1, __ATOMIC_RELAXED);
	return true;
}

/* ---- Kept mappings (huge_kept) ---------------------------------------- */

typedef struct {
	uintptr_t base;
	size_t mapped;
} huge_range_t;

static uint64_t
keep_hold_ns(void)
{
	return (uint64_t)PC_MIN(opt_decay_ms, (size_t)HUGE_KEEP_MS) * 1000000u;
}

/* The list changed (huge_lock held): publish what the unlocked checks of
 * huge_keep_tick read, the oldest's expiry (0: none kept) and size. */
static void
kept_publish(void)
{
	__atomic_store_n(&huge_keep_due_ns, huge_kept_n ?
	    huge_kept[0].since_ns + keep_hold_ns() : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&huge_fresh_due, huge_kept_n ? huge_kept[0].mapped :
	    SIZE_MAX, __ATOMIC_RELAXED);
}

/* Remove kept mapping k (huge_lock held), into *out. */
static void
kept_remove_at(unsigned k, huge_range_t *out)
{
	out->base = huge_kept[k].base;
	out->mapped = huge_kept[k].mapped;
	__atomic_store_n(&huge_kept_bytes, huge_kept_bytes - out->mapped,
	    __ATOMIC_RELAXED);
	/* Oldest first: the order of expiry and of eviction. */
	memmove(&huge_kept[k], &huge_kept[k + 1],
	    (huge_kept_n - k - 1) * sizeof(huge_kept[0]));
	huge_kept_n--;
	kept_publish();
}

/* Take the oldest kept mapping out to be unmapped (huge_lock held): from
 * now on a pointer into it is a freed range, not a kept one. */
static void
kept_evict_oldest(huge_range_t *out)
{
	kept_remove_at(0, out);
	freed_remember(out->base, out->base + out->mapped);
}

/* Unmap ranges taken out of the kept list (huge_lock not held: unmapping
 * tens of megabytes takes a while).  They were noted as freed ranges
 * while the lock was held, so a stale pointer into them stays a double
 * free once they are unmapped (while the unmap runs, it reads as a
 * foreign pointer: reported, left alone, as for any huge block freed). */
static void
kept_release(const huge_range_t *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		os_release((void *)r[i].base, r[i].mapped);
}

/*
 * Keep the mapping of a block just freed (huge_lock held).  What cannot be
 * kept (too big, decay_ms:0) or is displaced (the oldest, past the limits)
 * goes to out[] for the caller to unmap; returns how many.
 */
static unsigned
keep_locked(uintptr_t base, size_t mapped, huge_range_t *out)
{
	unsigned n = 0;
	size_t limit = opt_background_thread ? HUGE_KEEP_BYTES :
	    HUGE_KEEP_THREAD_BYTES;
	if (opt_decay_ms == 0 || mapped > limit) {
		freed_remember(base, base + mapped);
		out[n++] = (huge_range_t){ base, mapped };
		return n;
	}
	while (huge_kept_n == HUGE_KEEP_SLOTS ||
	    (huge_kept_n > 0 && huge_kept_bytes + mapped > limit))
		kept_evict_oldest(&out[n++]);
	/* Growth counts from here on (and growth noted as the list
	 * emptied is dropped). */
	if (huge_kept_n == 0)
		__atomic_store_n(&huge_fresh_bytes, 0, __ATOMIC_RELAXED);
	huge_kept[huge_kept_n].base = base;
	huge_kept[huge_kept_n].mapped = mapped;
	huge_kept[huge_kept_n].since_ns = os_now_ns();
	huge_kept_n++;
	__atomic_store_n(&huge_kept_bytes, huge_kept_bytes + mapped,
	    __ATOMIC_RELAXED);
	kept_publish();
	return n;
}

/* Take the smallest kept mapping of `need` to `most` bytes whose base is
 * aligned to `align` (huge_lock held); 0 if there is none. */
static uintptr_t
kept_take_locked(size_t need, size_t most, size_t align, size_t *mapped)
{
	unsigned best = HUGE_KEEP_SLOTS;
	for (unsigned k = 0; k < huge_kept_n; k++)
		if (huge_kept[k].mapped >= need && huge_kept[k].mapped <= most &&
		    huge_kept[k].base % align == 0 && (best == HUGE_KEEP_SLOTS ||
		    huge_kept[k].mapped < huge_kept[best].mapped))
			best = k;
	if (best == HUGE_KEEP_SLOTS)
		return 0;
	huge_range_t r;
	kept_remove_at(best, &r);
	*mapped = r.mapped;
	return r.base;
}

static uintptr_t
kept_take(size_t need, size_t most, size_t align, size_t *mapped)
{
	if (__atomic_load_n(&huge_kept_bytes, __ATOMIC_RELAXED) < need)
		return 0;
	os_lock(&huge_lock);
	uintptr_t p = kept_take_locked(need, most, align, mapped);
	os_unlock(&huge_lock);
	return p;
}

void
huge_note_fresh(size_t bytes)
{
	if (__atomic_load_n(&huge_kept_bytes, __ATOMIC_RELAXED) != 0)
		__atomic_fetch_add(&huge_fresh_bytes, bytes, __ATOMIC_RELAXED);
}

/* Unmap the oldest kept mappings the heap's growth has made up for. */
static void
huge_keep_offset(void)
{
	huge_range_t out[HUGE_KEEP_SLOTS];
	unsigned n = 0;
	os_lock(&huge_lock);
	size_t grown = __atomic_load_n(&huge_fresh_bytes, __ATOMIC_RELAXED);
	size_t used = 0;
	while (huge_kept_n > 0 && grown - used >= huge_kept[0].mapped) {
		used += huge_kept[0].mapped;
		kept_evict_oldest(&out[n++]);
	}
	/* Growth noted meanwhile stays counted. */
	__atomic_fetch_sub(&huge_fresh_bytes, used, __ATOMIC_RELAXED);
	os_unlock(&huge_lock);
	kept_release(out, n);
}

void
huge_keep_tick(void)
{
	uint64_t due = __atomic_load_n(&huge_keep_due_ns, __ATOMIC_RELAXED);
	if (due == 0)
		return;
	if (__atomic_load_n(&huge_fresh_bytes, __ATOMIC_RELAXED) >=
	    __atomic_load_n(&huge_fresh_due, __ATOMIC_RELAXED))
		huge_keep_offset();
	if (os_now_ns() < due)
		return;
	huge_keep_release(false);
}

void
huge_keep_release(bool all)
{
	huge_range_t out[HUGE_KEEP_SLOTS];
	unsigned n = 0;
	os_lock(&huge_lock);
	uint64_t now = os_now_ns(), hold = keep_hold_ns();
	while (huge_kept_n > 0 && (all || now - huge_kept[0].since_ns >= hold))
		kept_evict_oldest(&out[n++]);
	os_unlock(&huge_lock);
	kept_release(out, n);
}

size_t
huge_kept_mapped_bytes(void)
{
	return __atomic_load_n(&huge_kept_bytes, __ATOMIC_RELAXED);
}

/* ---- Blocks ------------------------------------------------------------- */

void *
huge_alloc(size_t size, size_t align, bool *zeroed)
{
	*zeroed = true;
	if (size > PC_MAX_ALLOC)
		return NULL;
	size_t mapped = PC_ALIGN_UP(size, PC_PAGE), have = mapped;
	span_t *s = span_new();
	if (s == NULL)
		return NULL;
	void *p = (void *)kept_take(mapped, SIZE_MAX, PC_MAX(align, PC_PAGE),
	    &have);
	if (p != NULL) {
		*zeroed = false;
		/* Much more than asked for: the rest goes back now. */
		if (have - mapped > mapped / 4) {
			os_release_tail(p, have, mapped);
			have = mapped;
		}
	} else {
		p = os_reserve(mapped, PC_MAX(align, PC_PAGE));
		if (p != NULL)
			huge_note_fresh(mapped);
	}
	if (p == NULL) {
		span_delete(s);
		return NULL;
	}
	if (!huge_register(s, p, have, mapped,
	    align > PC_PAGE ? HUGE_ALIGNED : 0)) {
		os_release(p, have);
		return NULL;
	}
	return p;
}

/* The new block is registered once its pages are in: until then only this
 * thread knows its address, so no free can reach it. */
void *
huge_adopt(void *p, size_t len, size_t new_size, bool *copied)
{
	*copied = false;
	if (new_size > PC_MAX_ALLOC)
		return NULL;
	size_t mapped = PC_ALIGN_UP(new_size, PC_PAGE), have;
	span_t *s = span_new();
	if (s == NULL)
		return NULL;
	/* A kept mapping: copying the block costs less than the faults of
	 * the pages it grows into, and those are in already.  One with room
	 * to grow into at least as much as is copied, and not much bigger
	 * than the block is to become (HUGE_ADOPT_ROOM): the block keeps the
	 * whole mapping while it lives. */
	void *t = mapped > PC_MAX_ALLOC / HUGE_ADOPT_ROOM ? NULL :
	    (void *)kept_take(PC_MAX(mapped, 2 * len),
	    mapped * HUGE_ADOPT_ROOM, PC_PAGE, &have);
	if (t != NULL) {
		memcpy(t, p, len);
		if (!huge_register(s, t, have, mapped, HUGE_ADOPTED)) {
			os_release(t, have);
			return NULL;
		}
		*copied = true;
		return t;
	}
	t = os_move_pages(p, len, mapped);
	if (t == NULL) {
		span_delete(s);
		return NULL;
	}
	if (!huge_register(s, t, mapped, mapped, HUGE_ADOPTED)) {
		os_unmove_pages(t, len, mapped, p);
		return NULL;
	}
	return t;
}

int
huge_free(void *p, size_t *usable)
{
	size_t i;
	os_lock(&huge_lock);
	int st = huge_state_locked((uintptr_t)p, &i);
	if (st != BLOCK_LIVE) {
		os_unlock(&huge_lock);
		return st;
	}
	span_t *s = huge_reg[i];
	size_t mapped = s->npages << PC_PAGE_SHIFT;
	if ((s->sc & HUGE_ADOPTED) && s->size > adopt_min)
		__atomic_store_n(&adopt_min, PC_MIN(s->size, PC_REALLOC_MAP_MAX),
		    __ATOMIC_RELAXED);
	reg_remove_at(i);
	PC_CHECK(pagemap_set(s->base, 1, 0) == 0, "pagemap");
	huge_range_t out[HUGE_KEEP_SLOTS];
	unsigned n = keep_locked(s->base, mapped, out);
	os_unlock(&huge_lock);
	/* Unregistered: no other free or resize can reach it now. */
	*usable = s->size;
	kept_release(out, n);
	__atomic_fetch_sub(&huge_bytes, mapped, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&huge_n, 1, __ATOMIC_RELAXED);
	span_delete(s);
	return BLOCK_LIVE;
}

/* Resize live block s (huge_lock held, so no free can race with it). */
static void *
huge_resize_locked(span_t *s, size_t new_size)
{
	size_t old = s->npages << PC_PAGE_SHIFT;
	size_t mapped = PC_ALIGN_UP(new_size, PC_PAGE);
	if (new_size > PC_MAX_ALLOC)
		return NULL;
	/* Growing inside its mapping (one that was kept for reuse): no
	 * system call, no fault. */
	if (mapped >= s->size && mapped <= old) {
		s->size = mapped;
		return (void *)s->base;
	}
	if (mapped < old) {
		os_release_tail((void *)s->base, old, mapped);
		freed_remember(s->base + mapped, s->base + old);
		__atomic_fetch_sub(&huge_bytes, old - mapped, __ATOMIC_RELAXED);
		s->npages = mapped >> PC_PAGE_SHIFT;
		s->size = mapped;
		return (void *)s->base;
	}
	/* Aligned blocks would lose their alignment; without os_remap the
	 * caller's copy is the only way. */
	if ((s->sc & HUGE_ALIGNED) || !PC_OS_CAN_REMAP)
		return NULL;
	/* Grow in place if the addresses above are free. */
	void *q = os_remap((void *)s->base, old, mapped, NULL);
	if (q == NULL) {
		/*
		 * Move without copying: map the new home, register it, then
		 * have the kernel move the pages onto it.  The old entry is
		 * cleared before the move, while we still own the range: once
		 * it is unmapped another thread may map and register it.
		 */
		void *t = os_reserve(mapped, PC_PAGE);
		if (t == NULL)
			return NULL;
		if (pagemap_set((uintptr_t)t, 1, (uintptr_t)s) != 0) {
			os_release(t, mapped);
			return NULL;
		}
		PC_CHECK(pagemap_set(s->base, 1, 0) == 0, "pagemap");
		q = os_remap((void *)s->base, old, mapped, t);
		if (q == NULL) {
			PC_CHECK(pagemap_set(s->base, 1, (uintptr_t)s) == 0,
			    "pagemap");
			PC_CHECK(pagemap_set((uintptr_t)t, 1, 0) == 0, "pagemap");
			os_release(t, mapped);
			return NULL;
		}
		/* Its place in the registry moves with it (same count: the
		 * insert cannot fail). */
		reg_remove_at(reg_find(s->base));
		freed_remember(s->base, s->base + old);
		s->base = (uintptr_t)q;
		PC_CHECK(reg_insert(s) == 0, "huge registry");
	}
	freed_forget((uintptr_t)q, (uintptr_t)q + mapped);
	__atomic_fetch_add(&huge_bytes, mapped - old, __ATOMIC_RELAXED);
	s->npages = mapped >> PC_PAGE_SHIFT;
	s->size = mapped;
	return q;
}

int
huge_realloc(void *p, size_t new_size, void **out, size_t *usable)
{
	size_t i;
	*out = NULL;
	os_lock(&huge_lock);
	int st = huge_state_locked((uintptr_t)p, &i);
	if (st == BLOCK_LIVE) {
		span_t *s = huge_reg[i];
		*usable = s->size;
		if (new_size != 0)
			*out = huge_resize_locked(s, new_size);
	}
	os_unlock(&huge_lock);
	return st;
}

size_t
huge_adopt_min(void)
{
	return __atomic_load_n(&adopt_min, __ATOMIC_RELAXED);
}

size_t
huge_mapped_bytes(void)
{
	return __atomic_load_n(&huge_bytes, __ATOMIC_RELAXED);
}

size_t
huge_count(void)
{
	return __atomic_load_n(&huge_n, __ATOMIC_RELAXED);
}

void
huge_prefork(void)
{
	os_lock(&huge_lock);
}

void
huge_postfork_parent(void)
{
	os_unlock(&huge_lock);
}
