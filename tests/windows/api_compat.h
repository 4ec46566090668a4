/*
 * Force-included (gcc -include) into the portable tests/api and tests/unit
 * programs when they are built for Windows: maps the few glibc and POSIX
 * names they use onto what Windows and the override provide.
 * malloc_usable_size is _msize (the usable size there too), except that
 * _msize(NULL) is -1 on Windows; the other extensions are the pc_* ones.
 */
#ifndef PC_API_COMPAT_H
#define PC_API_COMPAT_H

#include <malloc.h>
#include <stdlib.h>

#include "pcmalloc.h"

static inline size_t
pc_compat_usable_size(void *p)
{
	return p != NULL ? _msize(p) : 0;
}

/* Only named by api_common.h's helper for fork()ed children, which
 * Windows does not have; msvcrt defines none of them. */
#include <signal.h>
#ifndef SIGBUS
#define SIGBUS SIGSEGV
#endif
#ifndef SIGSYS
#define SIGSYS SIGSEGV
#endif
#ifndef SIGTRAP
#define SIGTRAP SIGSEGV
#endif

/* pcmalloc reads the process environment (GetEnvironmentVariableA). */
#include <windows.h>
static inline int
pc_compat_setenv(const char *name, const char *value, int overwrite)
{
	if (!overwrite && GetEnvironmentVariableA(name, NULL, 0) != 0)
		return 0;
	return SetEnvironmentVariableA(name, value) ? 0 : -1;
}
#define setenv pc_compat_setenv

#define malloc_usable_size pc_compat_usable_size
#define reallocarray pc_reallocarray
#define aligned_alloc pc_aligned_alloc
#define memalign pc_memalign

#endif
