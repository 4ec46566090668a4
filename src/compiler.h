/*
 * Compiler abstractions.  The fast paths are written with these so that the
 * intent (inline hot path, out-of-line cold path) is visible in the source.
 */
#ifndef PC_COMPILER_H
#define PC_COMPILER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define PC_INLINE	inline __attribute__((always_inline))
#define PC_NOINLINE	__attribute__((noinline))
#define PC_COLD		__attribute__((cold))
#define PC_LIKELY(x)	__builtin_expect(!!(x), 1)
#define PC_UNLIKELY(x)	__builtin_expect(!!(x), 0)
#define PC_EXPORT	__attribute__((visibility("default")))
/* On a declaration: defined in this library, so PIC code reaches it
 * without a GOT load (-fvisibility=hidden covers definitions only). */
#define PC_HIDDEN	__attribute__((visibility("hidden")))
#define PC_NORETURN	__attribute__((noreturn))
#define PC_ALIGNED(n)	__attribute__((aligned(n)))
#define PC_CACHELINE	64

/*
 * On a big zero-initialized global: placed after every other one (x86-64
 * ELF's .lbss follows .bss), so the small ones that start-up writes share
 * two pages instead of being spread over seven between the big ones.
 * Each page a process touches first is a page fault, some 15 us on the
 * virtual machine our benchmarks run on, in every program started with
 * the library preloaded (sh -c true: 97 page faults a run with it before,
 * 90 now, 60 without it).
 */
#if defined(__ELF__) && defined(__x86_64__) && defined(__GNUC__) && \
    !defined(__clang__)
/* (clang, and GCC elsewhere, give such a section file contents: 1 MiB of
 * zeros, and the lock page would not be anonymous memory.) */
#define PC_BIG_BSS	__attribute__((section(".lbss")))
#else
#define PC_BIG_BSS
#endif

#if defined(_WIN32)
/* mingw emulates _Thread_local through malloc: the OS layer uses TLS slots. */
#define PC_TLS
#define PC_HAVE_TLS 0
#else
/* Initial-exec: first access never allocates and never calls into ld.so. */
#define PC_TLS __thread __attribute__((tls_model("initial-exec")))
/* PC_TLS variables are per thread (the heap profiler's countdown needs
 * one: it is compiled out where they are not). */
#define PC_HAVE_TLS 1
#endif

/* Orders this thread's memory accesses in the compiled code only; the
 * thread caches pair it with os_remote_fence() (asymmetric fence). */
#define PC_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

#if defined(__SANITIZE_THREAD__)
#define PC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PC_TSAN 1
#endif
#endif

#define PC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PC_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define PC_ALIGN_DOWN(x, a) ((x) & ~((uintptr_t)(a) - 1))
#define PC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Set bits of a word.  Baseline x86-64 has no popcnt instruction, so
 * __builtin_popcountll there is a call into libgcc's table walk (2% of a
 * flush's instructions); this is a dozen inline ones.
 */
static inline unsigned
pc_popcount64(unsigned long long x)
{
#if defined(__POPCNT__) || !defined(__x86_64__)
	return (unsigned)__builtin_popcountll(x);
#else
	x -= (x >> 1) & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

#endif
