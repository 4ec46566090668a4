/*
 * The standard allocation names (glibc's family) and glibc's __libc_*
 * aliases, built on the same inline bodies as the pc_* names.  Compiled
 * only when PCMALLOC_OVERRIDE is on.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "pcmalloc.h"

#include "api.h"
#include "stats.h"

#define OVERRIDE PC_EXPORT

OVERRIDE void *malloc(size_t size) { return api_malloc(size); }
OVERRIDE void free(void *p) { api_free(p); }
OVERRIDE void *calloc(size_t n, size_t size) { return api_calloc(n, size); }
OVERRIDE void *realloc(void *p, size_t size) { return api_realloc(p, size); }
OVERRIDE void *
reallocarray(void *p, size_t n, size_t size)
{
	return api_reallocarray(p, n, size);
}
OVERRIDE int
posix_memalign(void **out, size_t align, size_t size)
{
	return api_posix_memalign(out, align, size);
}
OVERRIDE void *
aligned_alloc(size_t align, size_t size)
{
	return api_aligned_alloc(align, size);
}
OVERRIDE void *memalign(size_t align, size_t size) { return api_memalign(align, size); }
OVERRIDE void *valloc(size_t size) { return api_valloc(size); }
OVERRIDE void *pvalloc(size_t size) { return api_pvalloc(size); }
OVERRIDE size_t malloc_usable_size(void *p) { return api_usable_size(p); }

/* C23 sized frees (glibc 2.43 has them too). */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
OVERRIDE void free_sized(void *p, size_t size) { api_free_sized(p, size); }
OVERRIDE void
free_aligned_sized(void *p, size_t align, size_t size)
{
	api_free_aligned_sized(p, align, size);
}

/* Some programs and libraries call glibc's internal names directly. */
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t align, size_t size);

OVERRIDE void *__libc_malloc(size_t size) { return api_malloc(size); }
OVERRIDE void __libc_free(void *p) { api_free(p); }
OVERRIDE void *
__libc_calloc(size_t n, size_t size)
{
	return api_calloc(n, size);
}
OVERRIDE void *
__libc_realloc(void *p, size_t size)
{
	return api_realloc(p, size);
}
OVERRIDE void *
__libc_memalign(size_t align, size_t size)
{
	return api_memalign(align, size);
}
OVERRIDE void *__libc_valloc(size_t size) { return api_valloc(size); }
OVERRIDE void *__libc_pvalloc(size_t size) { return api_pvalloc(size); }
OVERRIDE int
__posix_memalign(void **out, size_t align, size_t size)
{
	return api_posix_memalign(out, align, size);
}

OVERRIDE int malloc_trim(size_t pad) { (void)pad; return api_trim(); }

/* Accepted and ignored: glibc's knobs do not apply here. */
OVERRIDE int mallopt(int param, int value) { (void)param; (void)value; return 1; }

OVERRIDE struct mallinfo2
mallinfo2(void)
{
	stats_totals_t t;
	stats_totals(&t);
	struct mallinfo2 mi = { 0 };
	mi.arena = t.arena_mapped;
	mi.hblks = t.nhuge;
	mi.hblkhd = t.huge;
	mi.uordblks = t.allocated;
	mi.fordblks = t.dirty + t.retained;	/* free pages in arenas */
	mi.keepcost = t.dirty;
	return mi;
}

static int
clamp_int(size_t v)
{
	return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

OVERRIDE struct mallinfo
mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = { 0 };
	mi.arena = clamp_int(m2.arena);
	mi.hblks = clamp_int(m2.hblks);
	mi.hblkhd = clamp_int(m2.hblkhd);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.fordblks = clamp_int(m2.fordblks);
	mi.keepcost = clamp_int(m2.keepcost);
	return mi;
}

/* glibc prints its arenas' figures to stderr; these are pcmalloc's. */
OVERRIDE void
malloc_stats(void)
{
	pc_stats_print(NULL, NULL);
}

/* glibc's XML report, with pcmalloc's totals in glibc's element names so
 * tools that parse it keep working. */
OVERRIDE int
malloc_info(int options, FILE *fp)
{
	if (options != 0 || fp == NULL) {
		errno = EINVAL;
		return -1;
	}
	stats_totals_t t;
	stats_totals(&t);
	fprintf(fp, "<malloc version=\"pcmalloc-%s\">\n"
	    "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
	    "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
	    "<system type=\"current\" size=\"%zu\"/>\n"
	    "<system type=\"max\" size=\"%zu\"/>\n"
	    "<aspace type=\"total\" size=\"%zu\"/>\n"
	    "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
	    "</malloc>\n", PCMALLOC_VERSION, t.dirty + t.retained, t.nhuge,
	    t.huge, t.mapped, t.mapped, t.mapped, t.mapped);
	return 0;
}
