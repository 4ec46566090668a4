/*
 * Helpers shared by the API tests.  Every test binary links pcmalloc_static,
 * so the standard names (malloc, free, ...) resolve to pcmalloc; the checks
 * in pc_check_active() catch a build where they silently resolve to glibc
 * (e.g. the override object was not pulled out of the archive).
 */
#ifndef PC_API_COMMON_H
#define PC_API_COMMON_H

#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pcmalloc.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/*
 * Hide constants from the optimizer: keeps gcc from folding malloc(SIZE_MAX)
 * or warning about "argument exceeds maximum object size", and keeps it from
 * eliding malloc/free pairs whose result is unused.
 */
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

/* A byte pattern that depends on the block's address or index, its size
 * and the offset, so that overlapping blocks or stale copies are detected.
 * Generated a 64-bit word at a time (byte i is byte i%8 of word i/8). */
static inline uint64_t
pat_word(uintptr_t seed, size_t w)
{
	uint64_t x = ((uint64_t)seed + 1) * 0x9E3779B97F4A7C15ull + w;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

static inline unsigned char
pat_byte(uintptr_t seed, size_t i)
{
	return (unsigned char)(pat_word(seed, i / 8) >> (8 * (i % 8)));
}

static inline void
pat_fill(void *p, size_t n, uintptr_t seed)
{
	unsigned char *b = p;
	size_t w = 0;
	for (; (w + 1) * 8 <= n; w++) {
		uint64_t v = pat_word(seed, w);
		memcpy(b + w * 8, &v, 8);
	}
	for (size_t i = w * 8; i < n; i++)
		b[i] = pat_byte(seed, i);
}

/* Returns the first bad offset, or SIZE_MAX if the pattern is intact. */
static inline size_t
pat_check(const void *p, size_t n, uintptr_t seed)
{
	const unsigned char *b = p;
	size_t w = 0;
	for (; (w + 1) * 8 <= n; w++) {
		uint64_t v = pat_word(seed, w), have;
		memcpy(&have, b + w * 8, 8);
		if (have != v)
			break;
	}
	for (size_t i = w * 8; i < n; i++)
		if (b[i] != pat_byte(seed, i))
			return i;
	return SIZE_MAX;
}

#define assert_pattern(p, n, seed) do { \
	size_t bad_ = pat_check((p), (n), (seed)); \
	if (bad_ != SIZE_MAX) \
		fail_msg("pattern corrupt at offset %zu of %zu (block %p)", \
		    bad_, (size_t)(n), (void *)(p)); \
} while (0)

/*
 * In a fork()ed child: undo cmocka's signal handlers, so that a crash kills
 * the child (and is seen by the parent) instead of longjmp'ing back into the
 * test runner inside the child.
 */
#include <signal.h>
static inline void
child_default_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
	    SIGSYS, SIGTRAP };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
}

/* Touch one byte per page (and the last byte) of a big block. */
static inline void
touch_pages(void *p, size_t n)
{
	volatile unsigned char *b = p;
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i += 4096)
		b[i] = (unsigned char)i;
	b[n - 1] = 0x5a;
}

/*
 * The test program must really run on pcmalloc: malloc'ed pointers are known
 * to pc_malloc_usable_size and vice versa, and memory allocated inside libc
 * (strdup) comes from pcmalloc too.
 */
static inline void
pc_check_active(void)
{
	void *p = malloc(opaque(1));
	assert_non_null(p);
	assert_true(pc_malloc_usable_size(p) >= 1);
	void *q = pc_malloc(opaque(10));
	assert_non_null(q);
	assert_true(malloc_usable_size(q) >= 10);
	char *s = strdup("pcmalloc");
	assert_non_null(s);
	assert_true(pc_malloc_usable_size(s) >= 9);
	free(s);
	pc_free(p);
	free(q);
}

static inline int
pc_group_setup(void **state)
{
	(void)state;
	pc_check_active();
	return 0;
}

#endif
