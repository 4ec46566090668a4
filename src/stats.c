#include "stats.h"
#include "arena.h"
#include "base.h"
#include "init.h"
#include "large.h"

void
stats_totals(stats_totals_t *t)
{
	*t = (stats_totals_t){ 0 };
	if (!__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < narenas; i++) {
		arena_t *a = &arenas[i];
		t->arena_mapped += __atomic_load_n(&a->mapped, __ATOMIC_RELAXED);
		t->active += __atomic_load_n(&a->active, __ATOMIC_RELAXED)
		    << PC_PAGE_SHIFT;
		t->dirty += __atomic_load_n(&a->dirty, __ATOMIC_RELAXED)
		    << PC_PAGE_SHIFT;
	}
	t->huge = huge_mapped_bytes();
	t->nhuge = huge_count();
	t->metadata = base_mapped_bytes();
	t->mapped = t->arena_mapped + t->huge + t->metadata;
}
