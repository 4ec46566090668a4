/*
 * Statistics: figures gathered from the arenas' own counters, which are
 * kept under their locks or updated atomically in slow paths (never on a
 * fast path).  Reads take no lock, so a snapshot is consistent enough for
 * monitoring, not exact while other threads run.
 */
#ifndef PC_STATS_H
#define PC_STATS_H

#include "config.h"

typedef struct stats_totals {
	size_t allocated;	/* bytes in blocks handed out (incl. caches) */
	size_t active;		/* bytes of pages in slabs, large, huge */
	size_t dirty;		/* free arena bytes that may be resident */
	size_t retained;	/* free arena bytes already given back */
	size_t mapped;		/* arena regions + huge + metadata + guards */
	size_t arena_mapped;	/* arena regions */
	size_t resident;	/* upper estimate: active + dirty + metadata */
	size_t huge;		/* bytes in huge blocks */
	size_t nhuge;
	size_t metadata;
	size_t metadata_guard;	/* guard pages: address space only */
	uint64_t npurged;	/* pages given back so far */
	uint64_t nrefills;
	uint64_t nflushes;
	uint64_t nmalloc;	/* objects out of slabs, large and huge allocs */
	uint64_t nfree;		/* objects back into slabs, large frees */
	size_t tcache;		/* bytes of objects in thread caches */
	uint64_t nreclaims;	/* idle threads' caches emptied by others */
	uint64_t bin_waits;	/* bin lock acquisitions that found it held */
	uint64_t heap_waits;	/* the same for page heap locks */
} stats_totals_t;

void stats_totals(stats_totals_t *t);

/* Defined beside stats.c's exit-time report (stats_print:true, a
 * constructor and a destructor): api.c refers to it so that a static link
 * using only pc_* names still pulls in stats.o, and the report with it. */
extern const char stats_exit_report;

#endif
