/*
 * The heap profiler's tables (prof.h): stack buckets and live samples.
 */
#include <string.h>

#include "prof.h"
#include "locks.h"
#include "base.h"
#include "conf.h"
#include "os.h"

/* Hash heads, mapped from metadata on first use (zero pages until
 * touched). */
#define PROF_BUCKET_HEADS	16384
#define PROF_LIVE_HEADS		65536
/* Records and buckets are carved from metadata blocks of this size. */
#define PROF_BLOCK		(256 << 10)

typedef struct prof_live {
	struct prof_live *next;	/* hash chain, or the free list */
	uintptr_t addr;
	prof_bucket_t *b;
	size_t size;
	double weight;
} prof_live_t;

#define prof_lock locks_global.prof	/* locks.h */
static prof_bucket_t **prof_bheads;
static prof_live_t **prof_lheads;
static prof_bucket_t *prof_all;		/* every bucket, newest first */
static prof_bucket_t *prof_overflow;	/* stacks beyond the bucket bound */
static prof_live_t *prof_lfree;
static uintptr_t prof_cur, prof_end;	/* bump space */
static prof_totals_t prof_tot;
/* Live records, read unlocked by prof_free to skip the lock when no
 * sample is live. */
static uint64_t prof_nlive;

static void *
prof_carve_locked(size_t size)
{
	size = PC_ALIGN_UP(size, 16);
	if (prof_end - prof_cur < size) {
		void *p = base_alloc(PROF_BLOCK);
		if (p == NULL)
			return NULL;
		prof_cur = (uintptr_t)p;
		prof_end = prof_cur + PROF_BLOCK;
	}
	void *r = (void *)prof_cur;
	prof_cur += size;
	return r;
}

static bool
prof_tables_locked(void)
{
	if (prof_bheads != NULL)
		return true;
	prof_bucket_t **b = base_map(PC_ALIGN_UP(PROF_BUCKET_HEADS *
	    sizeof(*b), PC_PAGE));
	prof_live_t **l = base_map(PC_ALIGN_UP(PROF_LIVE_HEADS * sizeof(*l),
	    PC_PAGE));
	if (b == NULL || l == NULL)
		return false;	/* (leaks a mapping once: not worth more) */
	prof_lheads = l;
	prof_bheads = b;
	return true;
}

static uint64_t
prof_hash_stack(void *const *frames, int depth)
{
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)depth;
	for (int i = 0; i < depth; i++) {
		h ^= (uintptr_t)frames[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 33;
	}
	return h;
}

static size_t
prof_addr_slot(uintptr_t a)
{
	uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 40) % PROF_LIVE_HEADS;
}

static prof_bucket_t *
prof_bucket_new_locked(uint64_t h, void *const *frames, int depth)
{
	prof_bucket_t *b = prof_carve_locked(sizeof(*b) +
	    (size_t)depth * sizeof(void *));
	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->hash = h;
	b->depth = (uint32_t)depth;
	memcpy(b->frames, frames, (size_t)depth * sizeof(void *));
	b->id = (uint32_t)++prof_tot.nbuckets;
	b->all = prof_all;
	prof_all = b;
	return b;
}

static prof_bucket_t *
prof_bucket_locked(void *const *frames, int depth)
{
	uint64_t h = prof_hash_stack(frames, depth);
	prof_bucket_t **head = &prof_bheads[h % PROF_BUCKET_HEADS];
	for (prof_bucket_t *b = *head; b != NULL; b = b->next)
		if (b->hash == h && b->depth == (uint32_t)depth &&
		    memcmp(b->frames, frames, (size_t)depth *
		    sizeof(void *)) == 0)
			return b;
	if (prof_tot.nbuckets >= PROF_MAX_BUCKETS) {
		if (prof_overflow == NULL)
			prof_overflow = prof_bucket_new_locked(0, NULL, 0);
		return prof_overflow;
	}
	prof_bucket_t *b = prof_bucket_new_locked(h, frames, depth);
	if (b != NULL) {
		b->next = *head;
		*head = b;
	}
	return b;
}

void
prof_record(void *p, size_t size, double weight, void *const *frames,
    int depth)
{
	os_lock(&prof_lock);
	prof_bucket_t *b = NULL;
	prof_live_t *r = NULL;
	if (prof_tables_locked() && prof_tot.live < PROF_MAX_LIVE) {
		b = prof_bucket_locked(frames, depth);
		r = prof_lfree;
		if (r != NULL)
			prof_lfree = r->next;
		else
			r = prof_carve_locked(sizeof(*r));
	}
	if (b == NULL || r == NULL) {
		if (r != NULL) {
			r->next = prof_lfree;
			prof_lfree = r;
		}
		prof_tot.dropped++;
		os_unlock(&prof_lock);
		return;
	}
	double bytes = (double)size * weight;
	b->alloc_samples++;
	b->alloc_sbytes += size;
	b->alloc_n += weight;
	b->alloc_b += bytes;
	b->live_samples++;
	b->live_sbytes += size;
	b->live_n += weight;
	b->live_b += bytes;
	r->addr = (uintptr_t)p;
	r->b = b;
	r->size = size;
	r->weight = weight;
	prof_live_t **head = &prof_lheads[prof_addr_slot(r->addr)];
	r->next = *head;
	*head = r;
	prof_tot.samples++;
	prof_tot.live++;
	prof_tot.alloc_b += bytes;
	prof_tot.live_b += bytes;
	if (prof_tot.live_b > prof_tot.peak_b)
		prof_tot.peak_b = prof_tot.live_b;
	__atomic_store_n(&prof_nlive, prof_tot.live, __ATOMIC_RELAXED);
	os_unlock(&prof_lock);
}

/* Unlink and return the live record of p, or NULL. */
static prof_live_t *
prof_unlink_locked(uintptr_t a)
{
	if (prof_lheads == NULL)
		return NULL;
	prof_live_t **pp = &prof_lheads[prof_addr_slot(a)];
	for (prof_live_t *r = *pp; r != NULL; pp = &r->next, r = r->next) {
		if (r->addr == a) {
			*pp = r->next;
			return r;
		}
	}
	return NULL;
}

void
prof_free(void *p)
{
	if (__atomic_load_n(&prof_nlive, __ATOMIC_RELAXED) == 0)
		return;
	os_lock(&prof_lock);
	prof_live_t *r = prof_unlink_locked((uintptr_t)p);
	if (r != NULL) {
		prof_bucket_t *b = r->b;
		double bytes = (double)r->size * r->weight;
		b->live_samples--;
		b->live_sbytes -= r->size;
		b->live_n -= r->weight;
		b->live_b -= bytes;
		prof_tot.live--;
		prof_tot.live_b -= bytes;
		r->next = prof_lfree;
		prof_lfree = r;
		__atomic_store_n(&prof_nlive, prof_tot.live, __ATOMIC_RELAXED);
	}
	os_unlock(&prof_lock);
}

void
prof_moved(void *p, void *q)
{
	if (__atomic_load_n(&prof_nlive, __ATOMIC_RELAXED) == 0)
		return;
	os_lock(&prof_lock);
	prof_live_t *r = prof_unlink_locked((uintptr_t)p);
	if (r != NULL) {
		r->addr = (uintptr_t)q;
		prof_live_t **head = &prof_lheads[prof_addr_slot(r->addr)];
		r->next = *head;
		*head = r;
	}
	os_unlock(&prof_lock);
}

void
prof_totals(prof_totals_t *out)
{
	os_lock(&prof_lock);
	*out = prof_tot;
	os_unlock(&prof_lock);
}

prof_bucket_t *
prof_snapshot(size_t *n, size_t *size, prof_totals_t *t)
{
	os_lock(&prof_lock);
	*t = prof_tot;
	size_t count = (size_t)prof_tot.nbuckets + (prof_overflow != NULL);
	size_t bytes = PC_ALIGN_UP(PC_MAX(count, 1) * sizeof(prof_bucket_t),
	    PC_PAGE);
	/* base_map takes no allocator lock but the OS's. */
	prof_bucket_t *s = base_map(bytes);
	size_t i = 0;
	if (s != NULL) {
		for (prof_bucket_t *b = prof_all; b != NULL && i < count;
		    b = b->all) {
			s[i] = *b;
			s[i].next = b;
			i++;
		}
	}
	os_unlock(&prof_lock);
	*n = i;
	*size = bytes;
	return s;
}

void
prof_snapshot_free(prof_bucket_t *s, size_t size)
{
	if (s != NULL)
		base_unmap(s, size);
}

void
prof_reset(void)
{
	os_lock(&prof_lock);
	for (prof_bucket_t *b = prof_all; b != NULL; b = b->all) {
		b->alloc_samples = b->alloc_sbytes = 0;
		b->live_samples = b->live_sbytes = 0;
		b->alloc_n = b->alloc_b = b->live_n = b->live_b = 0;
	}
	if (prof_lheads != NULL) {
		for (size_t i = 0; i < PROF_LIVE_HEADS; i++) {
			while (prof_lheads[i] != NULL) {
				prof_live_t *r = prof_lheads[i];
				prof_lheads[i] = r->next;
				r->next = prof_lfree;
				prof_lfree = r;
			}
		}
	}
	uint64_t nb = prof_tot.nbuckets;
	memset(&prof_tot, 0, sizeof(prof_tot));
	prof_tot.nbuckets = nb;
	__atomic_store_n(&prof_nlive, 0, __ATOMIC_RELAXED);
	os_unlock(&prof_lock);
}

void
prof_prefork(void)
{
	prof_poll_prefork();
	os_lock(&prof_lock);
}

void
prof_postfork_parent(void)
{
	os_unlock(&prof_lock);
	prof_poll_postfork_parent();
}
