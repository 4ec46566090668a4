/*
 * The standard allocation names (glibc's family) and glibc's __libc_*
 * aliases, built on the same inline bodies as the pc_* names, and C++
 * operator new and delete.  Compiled only when PCMALLOC_OVERRIDE is on.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "pcmalloc.h"

#include "api.h"
#include "report.h"
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

#ifndef PC_CXX_OPERATORS
#define PC_CXX_OPERATORS 1	/* 0 in the static library: CMakeLists.txt */
#endif
#if PC_CXX_OPERATORS
/*
 * C++ operator new and delete, every overload (plain, array, nothrow,
 * sized, aligned), by their Itanium-ABI names.  Without them libstdc++'s
 * operators reach pcmalloc through malloc and free anyway; exporting them
 * saves that extra call, and the sized deletes become free_sized: a wrong
 * size is reported like one given to free_sized.
 *
 * What C cannot do is C++'s failure path: call the new-handler until it
 * gives up, then throw std::bad_alloc.  So a failed allocation hands the
 * request to the next definition of the same operator, libstdc++'s
 * (dlsym(RTLD_NEXT)), which retries through malloc, calls the handler and
 * throws: the library stays free of libstdc++ and C++ semantics stay
 * libstdc++'s own.  The next definition exists whenever a C++ program can
 * call these; if it does not, a throwing operator can only abort.
 */
typedef void *(*cxx_new_fn)(size_t);
typedef void *(*cxx_new_nt_fn)(size_t, const void *);
typedef void *(*cxx_new_al_fn)(size_t, size_t);
typedef void *(*cxx_new_al_nt_fn)(size_t, size_t, const void *);

static PC_NOINLINE PC_COLD void *
cxx_next(const char *name, int can_fail)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (f == NULL && !can_fail)
		pc_fatal("operator new: out of memory, and no C++ runtime "
		    "to throw std::bad_alloc", __FILE__, __LINE__);
	return f;
}

static PC_NOINLINE PC_COLD void *
cxx_new_slow(const char *name, size_t size)
{
	return ((cxx_new_fn)cxx_next(name, 0))(size);
}

static PC_NOINLINE PC_COLD void *
cxx_new_nt_slow(const char *name, size_t size, const void *nt)
{
	cxx_new_nt_fn f = (cxx_new_nt_fn)cxx_next(name, 1);
	return f ? f(size, nt) : NULL;
}

static PC_NOINLINE PC_COLD void *
cxx_new_al_slow(const char *name, size_t size, size_t align)
{
	return ((cxx_new_al_fn)cxx_next(name, 0))(size, align);
}

static PC_NOINLINE PC_COLD void *
cxx_new_al_nt_slow(const char *name, size_t size, size_t align,
    const void *nt)
{
	cxx_new_al_nt_fn f = (cxx_new_al_nt_fn)cxx_next(name, 1);
	return f ? f(size, align, nt) : NULL;
}

/* Declarations first: -Wmissing-prototypes, and the names are C's here. */
void *_Znwm(size_t size);
void *_Znam(size_t size);
void *_ZnwmRKSt9nothrow_t(size_t size, const void *nt);
void *_ZnamRKSt9nothrow_t(size_t size, const void *nt);
void *_ZnwmSt11align_val_t(size_t size, size_t align);
void *_ZnamSt11align_val_t(size_t size, size_t align);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align,
    const void *nt);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align,
    const void *nt);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvm(void *p, size_t size);
void _ZdaPvm(void *p, size_t size);
void _ZdlPvRKSt9nothrow_t(void *p, const void *nt);
void _ZdaPvRKSt9nothrow_t(void *p, const void *nt);
void _ZdlPvSt11align_val_t(void *p, size_t align);
void _ZdaPvSt11align_val_t(void *p, size_t align);
void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align);
void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align,
    const void *nt);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align,
    const void *nt);

#define CXX_NEW(name)							\
	OVERRIDE void *name(size_t size)				\
	{								\
		void *p = api_malloc(size);				\
		return PC_LIKELY(p != NULL) ? p : cxx_new_slow(#name, size); \
	}
#define CXX_NEW_NT(name)						\
	OVERRIDE void *name(size_t size, const void *nt)		\
	{								\
		void *p = api_malloc(size);				\
		return PC_LIKELY(p != NULL) ? p :			\
		    cxx_new_nt_slow(#name, size, nt);			\
	}
#define CXX_NEW_AL(name)						\
	OVERRIDE void *name(size_t size, size_t align)			\
	{								\
		void *p = api_memalign(align, size);			\
		return PC_LIKELY(p != NULL) ? p :			\
		    cxx_new_al_slow(#name, size, align);		\
	}
#define CXX_NEW_AL_NT(name)						\
	OVERRIDE void *name(size_t size, size_t align, const void *nt)	\
	{								\
		void *p = api_memalign(align, size);			\
		return PC_LIKELY(p != NULL) ? p :			\
		    cxx_new_al_nt_slow(#name, size, align, nt);		\
	}

CXX_NEW(_Znwm)
CXX_NEW(_Znam)
CXX_NEW_NT(_ZnwmRKSt9nothrow_t)
CXX_NEW_NT(_ZnamRKSt9nothrow_t)
CXX_NEW_AL(_ZnwmSt11align_val_t)
CXX_NEW_AL(_ZnamSt11align_val_t)
CXX_NEW_AL_NT(_ZnwmSt11align_val_tRKSt9nothrow_t)
CXX_NEW_AL_NT(_ZnamSt11align_val_tRKSt9nothrow_t)

OVERRIDE void _ZdlPv(void *p) { api_free(p); }
OVERRIDE void _ZdaPv(void *p) { api_free(p); }
OVERRIDE void _ZdlPvm(void *p, size_t size) { api_free_sized(p, size); }
OVERRIDE void _ZdaPvm(void *p, size_t size) { api_free_sized(p, size); }
OVERRIDE void
_ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
	(void)nt;
	api_free(p);
}
OVERRIDE void
_ZdaPvRKSt9nothrow_t(void *p, const void *nt)
{
	(void)nt;
	api_free(p);
}
OVERRIDE void
_ZdlPvSt11align_val_t(void *p, size_t align)
{
	(void)align;
	api_free(p);
}
OVERRIDE void
_ZdaPvSt11align_val_t(void *p, size_t align)
{
	(void)align;
	api_free(p);
}
OVERRIDE void
_ZdlPvmSt11align_val_t(void *p, size_t size, size_t align)
{
	api_free_aligned_sized(p, align, size);
}
OVERRIDE void
_ZdaPvmSt11align_val_t(void *p, size_t size, size_t align)
{
	api_free_aligned_sized(p, align, size);
}
OVERRIDE void
_ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt)
{
	(void)align;
	(void)nt;
	api_free(p);
}
OVERRIDE void
_ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt)
{
	(void)align;
	(void)nt;
	api_free(p);
}
#endif /* PC_CXX_OPERATORS */
