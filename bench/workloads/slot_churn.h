/*
 * The loop that churn and large share: a thread keeps a working set of
 * blocks and, op after op, replaces a random one with a block of
 * log-uniform size, checking the old block before freeing it. The two
 * workloads differ only in sizes, in the seed and in whether every page of
 * a block is touched, which are all settings here.
 */
#ifndef PCB_SLOT_CHURN_H
#define PCB_SLOT_CHURN_H

#include "common.h"

/* Read-only settings, shared by every thread of the workload. */
struct slot_churn {
	size_t ops;		// per thread
	size_t slots;		// working set of each thread
	size_t minsz, maxsz;
	uint64_t seed;		// second seed word, one per workload
	int touch_pages;	// see pcb_stamp()
};

/*
 * Run thread id's share. ptr, size and tag hold c->slots entries each and
 * ptr starts all NULL; the caller owns the arrays, so large can keep them
 * on its stack. Every block is freed on return.
 */
static PCB_UNUSED uint64_t slot_churn_run(const struct slot_churn *c, int id,
					  void **ptr, size_t *size,
					  uint64_t *tag)
{
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, c->seed);
	uint64_t sum = 0;
	for (size_t k = 0; k < c->ops; k++) {
		size_t i = (size_t)(pcb_rand(&rng) % c->slots);
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i],
					 c->touch_pages);
			free(ptr[i]);
		}
		size[i] = pcb_logsize(&rng, c->minsz, c->maxsz);
		tag[i] = pcb_mix64(((uint64_t)id << 40) ^ k);
		ptr[i] = pcb_malloc(size[i]);
		pcb_stamp(ptr[i], size[i], tag[i], c->touch_pages);
	}
	for (size_t i = 0; i < c->slots; i++)
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i],
					 c->touch_pages);
			free(ptr[i]);
		}
	return sum;
}

#endif
