/*
 * Helpers shared by the Windows tests: cmocka, a pcmalloc statistic, a
 * check that a pointer is pcmalloc's, and a byte pattern.
 */
#ifndef PC_WIN_COMMON_H
#define PC_WIN_COMMON_H

#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __cplusplus
extern "C" {	/* cmocka.h has no C++ guard of its own */
#endif
#include <cmocka.h>
#ifdef __cplusplus
}
#endif

#include <windows.h>

#include "pcmalloc.h"

/* Not declared by mingw-w64's headers (msvcrt 7.0+ and UCRT have it). */
size_t _aligned_msize(void *p, size_t align, size_t offset);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Keep the optimizer from folding allocator calls or their arguments. */
static inline size_t
opaque(size_t v)
{
	volatile size_t x = v;
	return x;
}

static inline void *
opaque_ptr(void *p)
{
	void *volatile x = p;
	return x;
}

#define assert_aligned(p, a) \
	assert_int_equal((uintptr_t)(p) & ((uintptr_t)(a) - 1), 0)

/* pcmalloc knows the block (the page map has it). */
static inline int
is_ours(void *p)
{
	return p != NULL && pc_malloc_usable_size(p) != 0;
}

static inline unsigned long long
pc_stat(const char *name)
{
	unsigned long long v = 0;
	assert_int_equal(pc_stat_get(name, &v), 0);
	return v;
}

/* Bytes handed out by the arenas (thread caches count as handed out),
 * after the calling thread has given back its own cache. */
static inline unsigned long long
allocated_now(void)
{
	pc_trim();
	return pc_stat("allocated");
}

static inline unsigned char
pat(uintptr_t seed, size_t i)
{
	uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + i;
	x ^= x >> 29;
	return (unsigned char)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

static inline void
pat_fill(void *p, size_t n, uintptr_t seed)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = pat(seed, i);
}

static inline int
pat_ok(const void *p, size_t n, uintptr_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != pat(seed, i))
			return 0;
	return 1;
}

static inline uint32_t
rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

#endif
