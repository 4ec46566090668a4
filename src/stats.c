#include <errno.h>
#include <string.h>

#include "pcmalloc.h"
#include "stats.h"
#include "nursery.h"
#include "arena.h"
#include "base.h"
#include "report.h"
#include "conf.h"
#include "init.h"
#include "huge.h"
#include "os.h"
#include "tcache.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
/* A page-heap figure of arena a: arena 0's includes the big-block heap's
 * (arena.h). */
#define HEAP_SUM(a, field) (LOAD(arena_heap(a)->field) + \
	(arena_big(a) != NULL ? LOAD(arena_big(a)->field) : 0))

static uint64_t
heap_waits(const arena_t *a)
{
	const pageheap_t *big = arena_big(a);
	return os_lock_contended(pageheap_lock(arena_heap(a))) +
	    (big != NULL ? os_lock_contended(pageheap_lock(big)) : 0);
}

static size_t
arena_allocated(arena_t *a)
{
	size_t bytes = HEAP_SUM(a, large_pages) << PC_PAGE_SHIFT;
	for (unsigned c = 0; c < SC_NSMALL; c++) {
		uint64_t out = LOAD(a->bins[c].nobj_out);
		uint64_t in = LOAD(a->bins[c].nobj_in);
		if (out > in)
			bytes += (size_t)(out - in) * sc_size(c);
	}
	return bytes;
}

static uint64_t
arena_bin_waits(const arena_t *a)
{
	uint64_t n = 0;
	for (unsigned c = 0; c < SC_NSMALL; c++)
		n += os_lock_contended(bin_lock(a, c));
	return n;
}

void
stats_totals(stats_totals_t *t)
{
	*t = (stats_totals_t){ 0 };
	if (!__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < narenas; i++) {
		arena_t *a = &arenas[i];
		t->arena_mapped += HEAP_SUM(a, mapped);
		t->active += HEAP_SUM(a, active) << PC_PAGE_SHIFT;
		t->dirty += HEAP_SUM(a, dirty) << PC_PAGE_SHIFT;
		t->allocated += arena_allocated(a);
		t->npurged += HEAP_SUM(a, npurged);
		t->nmalloc += HEAP_SUM(a, nlarge_alloc);
		t->nfree += HEAP_SUM(a, nlarge_free);
		t->heap_waits += heap_waits(a);
		t->bin_waits += arena_bin_waits(a);
		for (unsigned c = 0; c < SC_NSMALL; c++) {
			t->nrefills += LOAD(a->bins[c].nrefills);
			t->nflushes += LOAD(a->bins[c].nflushes);
			t->nmalloc += LOAD(a->bins[c].nobj_out);
			t->nfree += LOAD(a->bins[c].nobj_in);
		}
	}
	t->tcache = tcache_cached_bytes();
	t->nreclaims = tcache_nreclaims();
	t->huge = huge_mapped_bytes();
	t->nhuge = huge_count();
	t->metadata = base_mapped_bytes();
	t->metadata_guard = base_guard_bytes();
	t->allocated += t->huge;
	t->active += t->huge;
	/* The nursery's pages that blocks were carved from (nursery.h): in
	 * the library's data, active and mapped as a slab's pages are. */
	size_t nursery = nursery_active();
	t->allocated += nursery_allocated();
	t->active += nursery;
	t->arena_mapped += nursery;
	/* Freed huge blocks' kept mappings: dirty pages outside the arenas. */
	size_t kept = huge_kept_mapped_bytes();
	t->mapped = t->arena_mapped + t->huge + kept + t->metadata +
	    t->metadata_guard;
	size_t used = t->active - t->huge + t->dirty;
	t->retained = t->arena_mapped > used ? t->arena_mapped - used : 0;
	t->dirty += kept;
	t->resident = t->active + t->dirty + t->metadata;
}

/* ---- pc_stat_get ------------------------------------------------------ */

static bool
name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && memcmp(name, want, n) == 0;
}

static int
arena_stat(arena_t *a, const char *key, size_t n, unsigned long long *v)
{
	if (name_is(key, n, "mapped"))
		*v = HEAP_SUM(a, mapped);
	else if (name_is(key, n, "active"))
		*v = (uint64_t)HEAP_SUM(a, active) << PC_PAGE_SHIFT;
	else if (name_is(key, n, "dirty"))
		*v = (uint64_t)HEAP_SUM(a, dirty) << PC_PAGE_SHIFT;
	else if (name_is(key, n, "allocated"))
		*v = arena_allocated(a);
	else if (name_is(key, n, "resident"))
		*v = (uint64_t)(HEAP_SUM(a, active) + HEAP_SUM(a, dirty)) <<
		    PC_PAGE_SHIFT;
	else if (name_is(key, n, "npurged"))
		*v = HEAP_SUM(a, npurged);
	else if (name_is(key, n, "nlarge_alloc"))
		*v = HEAP_SUM(a, nlarge_alloc);
	else if (name_is(key, n, "nlarge_free"))
		*v = HEAP_SUM(a, nlarge_free);
	else if (name_is(key, n, "bin_waits"))
		*v = arena_bin_waits(a);
	else if (name_is(key, n, "heap_waits"))
		*v = heap_waits(a);
	else
		return ENOENT;
	return 0;
}

PC_EXPORT int
pc_stat_get(const char *name, unsigned long long *value)
{
	if (name == NULL || value == NULL)
		return EINVAL;
	stats_totals_t t;
	stats_totals(&t);
	size_t n = strlen(name);
	if (n > 6 && memcmp(name, "arena.", 6) == 0) {
		const char *p = name + 6;
		unsigned idx = 0;
		if (*p < '0' || *p > '9')
			return ENOENT;
		while (*p >= '0' && *p <= '9' && idx < 100000)
			idx = idx * 10 + (unsigned)(*p++ - '0');
		if (*p != '.' || !pc_initialized || idx >= narenas)
			return ENOENT;
		p++;
		return arena_stat(&arenas[idx], p, strlen(p), value);
	}
	const struct { const char *k; uint64_t v; } tab[] = {
		{ "allocated", t.allocated }, { "active", t.active },
		{ "dirty", t.dirty }, { "retained", t.retained },
		{ "mapped", t.mapped }, { "resident", t.resident },
		{ "metadata", t.metadata }, { "huge", t.huge },
		{ "metadata_guard", t.metadata_guard },
		{ "nhuge", t.nhuge }, { "npurged", t.npurged },
		{ "nrefills", t.nrefills }, { "nflushes", t.nflushes },
		{ "nmalloc", t.nmalloc }, { "nfree", t.nfree },
		{ "tcache", t.tcache }, { "nreclaims", t.nreclaims },
		{ "bin_waits", t.bin_waits }, { "heap_waits", t.heap_waits },
		{ "narenas", pc_initialized ? narenas : 0 },
	};
	for (size_t i = 0; i < PC_ARRAY_LEN(tab); i++) {
		if (strcmp(name, tab[i].k) == 0) {
			*value = tab[i].v;
			return 0;
		}
	}
	return ENOENT;
}

/* ---- pc_stats_print --------------------------------------------------- */

typedef struct out {
	void (*cb)(void *, const char *);
	void *opaque;
	char buf[512];
	size_t n;
} out_t;

static void
out_flush(out_t *o)
{
	o->buf[o->n] = '\0';
	if (o->cb != NULL)
		o->cb(o->opaque, o->buf);
	else
		os_write_err(o->buf, o->n);
	o->n = 0;
}

static void
out_str(out_t *o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (o->n >= sizeof(o->buf) - 1)
			out_flush(o);
		o->buf[o->n++] = *s;
		if (*s == '\n')
			out_flush(o);
	}
}

static void
out_u64(out_t *o, uint64_t v)
{
	char tmp[24];
	size_t n = pc_fmt_u64(tmp, v);
	tmp[n] = '\0';
	out_str(o, tmp);
}

/* "name value" pairs, padded for reading. */
static void
out_kv(out_t *o, const char *k, uint64_t v)
{
	out_str(o, " ");
	out_str(o, k);
	out_str(o, " ");
	out_u64(o, v);
}

PC_EXPORT void
pc_stats_print(void (*write_cb)(void *opaque, const char *text),
    void *opaque)
{
	out_t o = { .cb = write_cb, .opaque = opaque };
	stats_totals_t t;
	stats_totals(&t);
	out_str(&o, "___ pcmalloc " PCMALLOC_VERSION " statistics ___\n");
	out_str(&o, "options:");
#define OUT_OPT(name, def, lo, hi, words, doc) out_kv(&o, #name, opt_##name);
	CONF_OPTIONS(OUT_OPT)
#undef OUT_OPT
	out_str(&o, "\nbytes:");
	out_kv(&o, "allocated", t.allocated);
	out_kv(&o, "active", t.active);
	out_kv(&o, "resident", t.resident);
	out_kv(&o, "dirty", t.dirty);
	out_kv(&o, "retained", t.retained);
	out_kv(&o, "mapped", t.mapped);
	out_kv(&o, "metadata", t.metadata);
	out_kv(&o, "metadata_guard", t.metadata_guard);
	out_kv(&o, "huge", t.huge);
	out_kv(&o, "tcache", t.tcache);
	out_str(&o, "\ncounts:");
	out_kv(&o, "malloc", t.nmalloc);
	out_kv(&o, "free", t.nfree);
	out_kv(&o, "refill", t.nrefills);
	out_kv(&o, "flush", t.nflushes);
	out_kv(&o, "reclaim", t.nreclaims);
	out_kv(&o, "bin_waits", t.bin_waits);
	out_kv(&o, "heap_waits", t.heap_waits);
	out_kv(&o, "purged_pages", t.npurged);
	out_kv(&o, "huge_blocks", t.nhuge);
	out_str(&o, "\n");
	if (!pc_initialized)
		return;
	for (unsigned i = 0; i < narenas; i++) {
		arena_t *a = &arenas[i];
		out_str(&o, "arena ");
		out_u64(&o, i);
		out_str(&o, ":");
		out_kv(&o, "mapped", HEAP_SUM(a, mapped));
		out_kv(&o, "active",
		    (uint64_t)HEAP_SUM(a, active) << PC_PAGE_SHIFT);
		out_kv(&o, "dirty",
		    (uint64_t)HEAP_SUM(a, dirty) << PC_PAGE_SHIFT);
		out_kv(&o, "allocated", arena_allocated(a));
		out_kv(&o, "large_alloc", HEAP_SUM(a, nlarge_alloc));
		out_kv(&o, "large_free", HEAP_SUM(a, nlarge_free));
		out_kv(&o, "purged_pages", HEAP_SUM(a, npurged));
		out_kv(&o, "heap_waits", heap_waits(a));
		out_str(&o, "\n  class    size   slabs  in_use     malloc       free"
		    "   refills   flushes     waits\n");
		for (unsigned c = 0; c < SC_NSMALL; c++) {
			bin_t *b = &a->bins[c];
			uint64_t out = LOAD(b->nobj_out), in = LOAD(b->nobj_in);
			/* (A bin's refills may all have taken other arenas'
			 * objects: arena_refill.) */
			if (out == 0 && LOAD(b->nrefills) == 0)
				continue;
			uint64_t cols[] = { c, sc_size(c), LOAD(b->curslabs),
			    out - in, out, in, LOAD(b->nrefills),
			    LOAD(b->nflushes), os_lock_contended(bin_lock(a, c)) };
			unsigned width[] = { 7, 8, 8, 8, 11, 11, 10, 10, 10 };
			for (unsigned k = 0; k < PC_ARRAY_LEN(cols); k++) {
				char tmp[24];
				size_t n = pc_fmt_u64(tmp, cols[k]);
				tmp[n] = '\0';
				for (size_t pad = n; pad < width[k]; pad++)
					out_str(&o, " ");
				out_str(&o, tmp);
			}
			out_str(&o, "\n");
		}
	}
}

/* ---- stats_print:true: the report at exit ------------------------------ */

/*
 * The private copy of stderr is taken while the program starts, before it
 * can close its standard streams; the report is printed by a destructor,
 * after main returns or exit is called.
 */
const char stats_exit_report = 1;

__attribute__((constructor)) static void
stats_at_start(void)
{
	if (pc_ensure_init() == 0 && opt_stats_print)
		os_keep_stderr();
}

__attribute__((destructor)) static void
stats_at_exit(void)
{
	if (__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE) &&
	    opt_stats_print)
		pc_stats_print(NULL, NULL);
}
