/*
 * The allocation entry points as inline bodies, shared by the pc_* names
 * (api.c) and the standard names (override.c) so neither pays a call to the
 * other.  Each body is a fast path with one exit into a noinline slow path.
 */
#ifndef PC_API_H
#define PC_API_H

#include <errno.h>

#include "config.h"
#include "pagemap.h"
#include "sizeclass.h"
#include "sample.h"
#include "tcache.h"

void *api_malloc_large(size_t size) PC_NOINLINE;
/* Free p, not a small block (NULL, large, huge or foreign), whose page-map
 * entry is `entry`; inside or outside a cache operation. */
void api_free_big(void *p, uintptr_t entry, const void *caller) PC_NOINLINE;
/* The rest of api_free's operation, which it closes (tcache.h).  Looks p
 * up again: the fast path need not keep the entry live. */
void api_free_slow(void *p, const void *caller) PC_NOINLINE;
void *api_calloc(size_t n, size_t size);
void *api_realloc_at(void *p, size_t size, const void *caller);
void *api_memalign(size_t align, size_t size);
int api_posix_memalign(void **out, size_t align, size_t size);
void *api_aligned_alloc(size_t align, size_t size);
void *api_valloc(size_t size);
void *api_pvalloc(size_t size);
size_t api_usable_size_at(const void *p, const void *caller);
/* align 0: free_sized (the size must select the block's class); else
 * free_aligned_sized (the size must fit the block). */
void api_free_sized_at(void *p, size_t size, size_t align,
    const void *caller);
int api_trim(void);
/* For the sampler (sample.c): an allocation that is not sampled (align 0:
 * malloc's; zero: calloc's), and a page extent of at least `size` bytes
 * (large or huge; *zeroed if it is known to read as zeros). */
void *api_alloc_unsampled(size_t size, size_t align, bool zero);
void *api_alloc_pages(size_t size, size_t align, bool *zeroed);

/*
 * Reports of misuse name the caller of the exported function: the inline
 * bodies below take __builtin_return_address(0) in it.  The fast path of
 * free only computes it on its way to the slow path.
 */
#define API_CALLER() __builtin_return_address(0)

static PC_INLINE void *
api_realloc(void *p, size_t size)
{
	return api_realloc_at(p, size, API_CALLER());
}

static PC_INLINE void *
api_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return api_realloc_at(p, total, API_CALLER());
}

static PC_INLINE size_t
api_usable_size(const void *p)
{
	return api_usable_size_at(p, API_CALLER());
}

/*
 * free_sized and sized operator delete.  A size whose class is the
 * block's (what malloc or new was given, the normal case) passes the
 * check as it stands, against the class's size range kept in its bin,
 * and frees at free's cost; any other size, and any block that is not
 * small, goes to api_free_sized_at, which checks it in full (a size of
 * another class may still be right for an aligned block, or in debug
 * mode) and reports.
 */
static PC_INLINE void
api_free_sized(void *p, size_t size)
{
	uintptr_t e = pagemap_lookup(p);
	TCACHE_OP_BEGIN();
	unsigned tag = (unsigned)(e & PM_SC_MASK);
	tbin_t *b = tcache_bin_of_tag(tag);
	if (PC_LIKELY(size - b->size_lo < b->size_n)) {
		/* tcache_free's body, with the caller's address taken on
		 * the slow path only (as an argument it is loaded always). */
		if (PC_UNLIKELY(!tcache_free_ok(b, p, e))) {
			/* closes the operation */
			tcache_free_slow(p, tag - 1, API_CALLER());
			return;
		}
		tcache_push(b, p);
		TCACHE_OP_END();
		return;
	}
	TCACHE_OP_END();
	api_free_sized_at(p, size, 0, API_CALLER());
}

static PC_INLINE void
api_free_aligned_sized(void *p, size_t align, size_t size)
{
	api_free_sized_at(p, size, align ? align : 1, API_CALLER());
}

/* malloc without the sampling countdown. */
static PC_INLINE void *
api_malloc_unsampled(size_t size)
{
	if (PC_LIKELY(size <= SC_SMALL_MAX))
		return tcache_alloc_sc(sc_index(size), size);
	return api_malloc_large(size);
}

/* The heap profiler's hook (sample.h): one subtraction and one branch. */
static PC_INLINE void *
api_malloc(size_t size)
{
	if (SAMPLE_HIT(size))
		return pc_sample_malloc(size, 0, 0);
	return api_malloc_unsampled(size);
}

static PC_INLINE void
api_free(void *p)
{
	TCACHE_OP_BEGIN();
	uintptr_t e = pagemap_lookup(p);
	tbin_t *b = tcache_bin_of_tag((unsigned)(e & PM_SC_MASK));
	if (PC_UNLIKELY(!tcache_free_ok(b, p, e))) {
		/* Full, not a small block, or misuse: closes the operation. */
		api_free_slow(p, API_CALLER());
		return;
	}
	tcache_push(b, p);
	TCACHE_OP_END();
}

#endif
