/*
 * Statistics: figures gathered from the arenas' own counters (kept under
 * their locks, read here without them, so they are a consistent-enough
 * snapshot, not an exact one).
 */
#ifndef PC_STATS_H
#define PC_STATS_H

#include "config.h"

typedef struct stats_totals {
	size_t mapped;		/* arena regions + huge + metadata */
	size_t arena_mapped;	/* arena regions */
	size_t active;		/* bytes in slabs and large blocks */
	size_t dirty;		/* free arena bytes that may be resident */
	size_t huge;		/* bytes in huge blocks */
	size_t nhuge;
	size_t metadata;
} stats_totals_t;

void stats_totals(stats_totals_t *t);

#endif
