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

/* A large block at least this big that a growing realloc has to move gets
 * a mapping of its own (a huge block), its pages moved there, not copied;
 * from then on it grows and shrinks by remapping (api.c, huge.c), while at
 * most PC_REALLOC_MAPS_MAX huge blocks are live (each costs the OS a
 * mapping).  The threshold rises, up to PC_REALLOC_MAP_MAX, with the size
 * of such blocks freed (huge.c). */
#define PC_REALLOC_MAP_MIN	((size_t)1 << 20)
#define PC_REALLOC_MAP_MAX	((size_t)4 << 20)
#define PC_REALLOC_MAPS_MAX	4096

/* User-space virtual addresses fit in this many bits (x86-64 4-level). */
#define PC_VA_BITS	47

/* Upper bound on arenas, whatever the CPU count. */
#define PC_MAX_ARENAS	256

/* No allocation may exceed this: keeps size arithmetic overflow-free. */
#define PC_MAX_ALLOC	((size_t)PTRDIFF_MAX - 2 * PC_CHUNK)

#endif
