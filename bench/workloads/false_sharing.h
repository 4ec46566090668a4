/*
 * The loop that cache-scratch and cache-thrash share: allocate a small
 * object, write every byte of it many times, free it, again and again. If
 * the allocator placed objects of two threads on one cache line, their
 * writes make the line bounce between cores; the two workloads differ only
 * in how such a placement could come about.
 */
#ifndef PCB_FALSE_SHARING_H
#define PCB_FALSE_SHARING_H

#include "common.h"

/* Read-only settings, shared by every thread of the workload. */
struct false_sharing {
	size_t iters;		// per thread
	size_t objsize, writes;
};

/* Both workloads take THREADS ITERATIONS [OBJSIZE WRITES]. */
static PCB_UNUSED struct false_sharing
false_sharing_args(int argc, char **argv, const char *name, int *threads)
{
	*threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t iters = (size_t)pcb_arg(argc, argv, 2, 200000);
	size_t objsize = (size_t)pcb_arg(argc, argv, 3, 8);
	size_t writes = (size_t)pcb_arg(argc, argv, 4, 50);
	if (*threads < 1 || objsize < 1)
		pcb_die("usage: %s THREADS ITERATIONS [OBJSIZE WRITES]", name);
	return (struct false_sharing){ .iters = iters / (size_t)*threads,
		.objsize = objsize, .writes = writes };
}

/*
 * Run thread id's share. The result is weighted by id + 1, as the two
 * workloads have always summed it, so their checksums stay comparable
 * with older runs.
 */
static PCB_UNUSED uint64_t false_sharing_run(const struct false_sharing *f,
					     int id)
{
	uint64_t sum = 0;
	for (size_t it = 0; it < f->iters; it++) {
		/* volatile: every write must reach the cache line */
		volatile unsigned char *o = pcb_malloc(f->objsize);
		for (size_t w = 0; w < f->writes; w++)
			for (size_t k = 0; k < f->objsize; k++)
				o[k] = (unsigned char)(w + k + (size_t)id);
		for (size_t k = 0; k < f->objsize; k++)
			sum += o[k];
		free((void *)o);
	}
	return sum * (uint64_t)(id + 1);
}

#endif
