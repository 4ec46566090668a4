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
#include "tcache.h"

void *api_malloc_large(size_t size) PC_NOINLINE;
void api_free_slow(void *p, uintptr_t entry) PC_NOINLINE;
/* Ends the fast path's cache operation (tcache.h). */
void api_free_miss(void *p, uintptr_t entry) PC_NOINLINE;
void *api_calloc(size_t n, size_t size);
void *api_realloc(void *p, size_t size);
void *api_reallocarray(void *p, size_t n, size_t size);
void *api_memalign(size_t align, size_t size);
int api_posix_memalign(void **out, size_t align, size_t size);
void *api_aligned_alloc(size_t align, size_t size);
void *api_valloc(size_t size);
void *api_pvalloc(size_t size);
size_t api_usable_size(const void *p);
void api_free_sized(void *p, size_t size);
int api_trim(void);

static PC_INLINE void *
api_malloc(size_t size)
{
	if (PC_LIKELY(size <= SC_LUT_MAX))
		return tcache_alloc_sc(sc_index_lut(size), size);
	if (size <= SC_SMALL_MAX)
		return tcache_alloc_sc(sc_index_big(size), size);
	return api_malloc_large(size);
}

static PC_INLINE void
api_free(void *p)
{
	TCACHE_OP_BEGIN();
	uintptr_t e = pagemap_lookup(p);
	tbin_t *b = tcache_bin_of_tag((unsigned)(e & PM_SC_MASK));
	if (PC_UNLIKELY(b->n == b->cap)) {
		api_free_miss(p, e);	/* full, or not a small block */
		return;
	}
	tcache_push(b, p, (unsigned)(e & PM_SC_MASK) - 1);
}

#endif
