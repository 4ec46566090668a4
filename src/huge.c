#include <errno.h>
#include <string.h>

#include "huge.h"
#include "locks.h"
#include "base.h"
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
static struct { uintptr_t lo, hi; } huge_freed[HUGE_FREED_RING];
static unsigned huge_freed_next;

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
	if (i < huge_reg_n && a - huge_reg[i]->base < huge_reg[i]->size) {
		*at = i;
		return a == huge_reg[i]->base ? BLOCK_LIVE : BLOCK_INTERIOR;
	}
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

/* Register mapping p of `mapped` bytes as a huge block described by s
 * (deleted on failure; p is then the caller's to release). */
static bool
huge_register(span_t *s, void *p, size_t mapped, uint8_t flags)
{
	s->base = (uintptr_t)p;
	s->npages = mapped >> PC_PAGE_SHIFT;
	s->size = mapped;
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

void *
huge_alloc(size_t size, size_t align)
{
	if (size > PC_MAX_ALLOC)
		return NULL;
	size_t mapped = PC_ALIGN_UP(size, PC_PAGE);
	span_t *s = span_new();
	if (s == NULL)
		return NULL;
	void *p = os_reserve(mapped, PC_MAX(align, PC_PAGE));
	if (p == NULL) {
		span_delete(s);
		return NULL;
	}
	if (!huge_register(s, p, mapped, align > PC_PAGE ? HUGE_ALIGNED : 0)) {
		os_release(p, mapped);
		return NULL;
	}
	return p;
}

/* The new block is registered once its pages are in: until then only this
 * thread knows its address, so no free can reach it. */
void *
huge_adopt(void *p, size_t len, size_t new_size)
{
	if (new_size > PC_MAX_ALLOC)
		return NULL;
	size_t mapped = PC_ALIGN_UP(new_size, PC_PAGE);
	span_t *s = span_new();
	if (s == NULL)
		return NULL;
	void *t = os_move_pages(p, len, mapped);
	if (t == NULL) {
		span_delete(s);
		return NULL;
	}
	if (!huge_register(s, t, mapped, HUGE_ADOPTED)) {
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
	if ((s->sc & HUGE_ADOPTED) && mapped > adopt_min)
		__atomic_store_n(&adopt_min, PC_MIN(mapped, PC_REALLOC_MAP_MAX),
		    __ATOMIC_RELAXED);
	reg_remove_at(i);
	PC_CHECK(pagemap_set(s->base, 1, 0) == 0, "pagemap");
	freed_remember(s->base, s->base + mapped);
	os_unlock(&huge_lock);
	/* Unregistered: no other free or resize can reach it now. */
	*usable = s->size;
	os_release((void *)s->base, mapped);
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
	if (mapped == old)
		return (void *)s->base;
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
