/*
 * pcmalloc: a fast, lean, multi-threaded malloc.
 *
 * The pc_* functions below are always exported, whether or not the library
 * also overrides the standard names (malloc, free, ...).  They follow the
 * glibc semantics of their standard counterparts: results are aligned to at
 * least 16 bytes, failure returns NULL with errno set to ENOMEM, and
 * pc_posix_memalign returns its error code instead of setting errno.
 */
#ifndef PCMALLOC_H
#define PCMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PCMALLOC_VERSION_MAJOR 0
#define PCMALLOC_VERSION_MINOR 1
#define PCMALLOC_VERSION_PATCH 0
#define PCMALLOC_VERSION "0.1.0"

#if defined(_WIN32) && defined(PCMALLOC_DLL)
#  ifdef PCMALLOC_BUILD
#    define PCMALLOC_API __declspec(dllexport)
#  else
#    define PCMALLOC_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define PCMALLOC_API __attribute__((visibility("default")))
#else
#  define PCMALLOC_API
#endif

PCMALLOC_API void *pc_malloc(size_t size);
PCMALLOC_API void  pc_free(void *ptr);
PCMALLOC_API void *pc_calloc(size_t nmemb, size_t size);
PCMALLOC_API void *pc_realloc(void *ptr, size_t size);
PCMALLOC_API void *pc_reallocarray(void *ptr, size_t nmemb, size_t size);
PCMALLOC_API int   pc_posix_memalign(void **out, size_t alignment, size_t size);
PCMALLOC_API void *pc_aligned_alloc(size_t alignment, size_t size);
PCMALLOC_API void *pc_memalign(size_t alignment, size_t size);
PCMALLOC_API size_t pc_malloc_usable_size(void *ptr);

/*
 * Free a block whose requested size (or any size between the requested size
 * and its usable size) the caller knows.  Passing a wrong size is reported:
 * for a small block, a size larger than the block, or one whose size class
 * is smaller than the block's (unless an aligned allocation of that size
 * could have returned the block: pcmalloc does not record requested sizes).
 */
PCMALLOC_API void  pc_free_sized(void *ptr, size_t size);

/* Return unused memory to the operating system; returns 1 if any was. */
PCMALLOC_API int   pc_trim(void);

/*
 * Heap profile (docs/profiling.md): write the sampled heap profile to
 * `path`, as pprof's profile.proto if it ends in ".pb", folded stacks if
 * it ends in ".folded", else gperftools' heap_v2 text; path NULL writes
 * all three as <prof_prefix>.<pid>.<seq>.{heap,pb,folded}.  Samples are
 * only taken with PCMALLOC_CONF=prof:true.  Returns 0 or an errno code
 * (ENOSYS where the profiler is not built: Windows).
 */
PCMALLOC_API int   pc_prof_dump(const char *path);

/*
 * Statistics.  pc_stats_print writes a human-readable report through
 * write_cb (stderr when it is NULL), a line or less per call.
 * pc_stat_get reads one figure: "allocated", "active", "resident" (an
 * upper bound: the pages of live blocks, dirty free pages and metadata,
 * counted whether the program touched them or not), "dirty", "retained",
 * "mapped", "metadata", "metadata_guard" (the guard pages around
 * metadata: address space, never resident), "huge", "nhuge", "npurged",
 * "nmalloc", "nfree", "nrefills", "nflushes", "narenas", "tcache" (bytes
 * in thread caches), "nreclaims" (idle threads' caches emptied by other
 * threads), "bin_waits" and "heap_waits" (acquisitions of the bins' and the
 * page heaps' locks that found them held), or per arena
 * "arena.<i>.<mapped|active|dirty|allocated|resident|npurged|
 * nlarge_alloc|nlarge_free|bin_waits|heap_waits>" (arena 0's include the
 * heap of blocks of 1 MiB or more, which all threads share; a large block
 * counts in the arena whose heap it lies in, which is not always the one
 * its thread asked: it may take another heap's free pages; allocated,
 * active, mapped and resident also count the start-up nursery's blocks,
 * which no arena holds).
 * Returns 0, or ENOENT for an unknown name.
 */
PCMALLOC_API void pc_stats_print(void (*write_cb)(void *opaque,
    const char *text), void *opaque);
PCMALLOC_API int pc_stat_get(const char *name, unsigned long long *value);

/*
 * Check the heap's internal consistency (arenas, slabs, free runs, page
 * map, the calling thread's cache).  Reports each problem found on stderr
 * ("pcmalloc: ... (pc_check)") and returns how many; 0 means consistent.
 * It first frees the blocks that other threads' frees left waiting for
 * their arenas (remote batches), then stops each arena while it runs: for
 * tests and debugging.
 */
PCMALLOC_API int pc_check(void);

/* The library's version string, e.g. "0.1.0". */
PCMALLOC_API const char *pc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PCMALLOC_H */
