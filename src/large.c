#include "large.h"
#include "base.h"
#include "check.h"
#include "os.h"
#include "pagemap.h"

static size_t huge_bytes;	/* atomic */
static size_t huge_n;		/* atomic */

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
	s->base = (uintptr_t)p;
	s->npages = mapped >> PC_PAGE_SHIFT;
	s->size = mapped;
	s->kind = SPAN_HUGE;
	s->sc = align > PC_PAGE;	/* remap would lose the alignment */
	if (pagemap_set(s->base, 1, (uintptr_t)s) != 0) {
		os_release(p, mapped);
		span_delete(s);
		return NULL;
	}
	__atomic_fetch_add(&huge_bytes, mapped, __ATOMIC_RELAXED);
	__atomic_fetch_add(&huge_n, 1, __ATOMIC_RELAXED);
	return p;
}

void
huge_free(span_t *s)
{
	size_t mapped = s->npages << PC_PAGE_SHIFT;
	PC_CHECK(pagemap_set(s->base, 1, 0) == 0, "pagemap");
	os_release((void *)s->base, mapped);
	__atomic_fetch_sub(&huge_bytes, mapped, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&huge_n, 1, __ATOMIC_RELAXED);
	span_delete(s);
}

void *
huge_realloc(span_t *s, size_t new_size)
{
	size_t old = s->npages << PC_PAGE_SHIFT;
	size_t mapped = PC_ALIGN_UP(new_size, PC_PAGE);
	if (new_size > PC_MAX_ALLOC)
		return NULL;
	if (mapped == old)
		return (void *)s->base;
	if (mapped < old) {
		os_release_tail((void *)s->base, old, mapped);
		__atomic_fetch_sub(&huge_bytes, old - mapped, __ATOMIC_RELAXED);
		s->npages = mapped >> PC_PAGE_SHIFT;
		s->size = mapped;
		return (void *)s->base;
	}
	if (s->sc)
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
		s->base = (uintptr_t)q;
	}
	__atomic_fetch_add(&huge_bytes, mapped - old, __ATOMIC_RELAXED);
	s->npages = mapped >> PC_PAGE_SHIFT;
	s->size = mapped;
	return q;
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
