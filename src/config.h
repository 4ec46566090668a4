/*
 * Build-time configuration.  Every knob is a config_* constant so code reads
 * `if (config_debug)` and every variant still compiles.
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include "compiler.h"

#ifndef PC_DEBUG
#define PC_DEBUG 0
#endif
static const int config_debug = PC_DEBUG;

/* Checks on the fast path (the free(p); free(p) compare).  Off only to
 * measure what they cost: -DPCMALLOC_HARDEN=OFF. */
#ifndef PC_HARDEN
#define PC_HARDEN 1
#endif
static const bool config_harden = PC_HARDEN;

/* Internal page: the unit of the page map, slabs and large extents. */
#define PC_PAGE_SHIFT	12
#define PC_PAGE		((size_t)1 << PC_PAGE_SHIFT)

/* Arenas get memory from the OS in chunks of this size and alignment
 * (2 MiB: one transparent huge page). */
#define PC_CHUNK_SHIFT	21
#define PC_CHUNK	((size_t)1 << PC_CHUNK_SHIFT)

/* Requests at or above this size are mapped directly ("huge"). */
#define PC_HUGE_MIN	((size_t)64 << 20)

/* Large blocks at least this big all come from arena 0's big-block heap
 * (arena.h). */
#define PC_LARGE_SHARED_MIN	((size_t)1 << 20)

/* A large block left behind by a growing realloc at least this big is
 * purged at once. */
#define PC_REALLOC_PURGE_MIN	((size_t)256 << 10)

/* User-space virtual addresses fit in this many bits (x86-64 4-level). */
#define PC_VA_BITS	47

/* Upper bound on arenas, whatever the CPU count. */
#define PC_MAX_ARENAS	256

/* No allocation may exceed this: keeps size arithmetic overflow-free. */
#define PC_MAX_ALLOC	((size_t)PTRDIFF_MAX - 2 * PC_CHUNK)

#endif
