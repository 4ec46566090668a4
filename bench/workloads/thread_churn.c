/*
 * thread-churn: thread create/exit churn.
 *
 *   thread-churn THREADS TOTAL_THREADS [ALLOCS MAXSZ]
 *
 * Runs waves of THREADS concurrent short-lived threads until TOTAL_THREADS
 * have run. Each thread allocates ALLOCS blocks of random size (16..MAXSZ),
 * frees half of them itself, leaves the other half to be freed by the
 * thread in the same position of the next wave, frees what its predecessor
 * left, and exits. This exercises per-thread cache setup and teardown,
 * reclaiming the caches of exited threads, and frees of memory whose owner
 * thread is gone - the life of a thread-per-request server.
 */
#include "common.h"

/* The blocks that the thread in one position passes to the next wave's. */
struct left {
	void **ptr;
	size_t n;
};

/* One wave of threads; left[pos] carries over to the next wave. */
struct wave {
	size_t wave, allocs, maxsz;
	struct left *left;
};

/* Free what a predecessor left (its thread has exited), and the list. */
static uint64_t free_left(struct left *l)
{
	uint64_t sum = 0;
	for (size_t k = 0; k < l->n; k++)
		sum += pcb_check_free_sized(l->ptr[k]);
	free(l->ptr);
	return sum;
}

static uint64_t worker(int pos, void *p)
{
	struct wave *w = p;
	struct left *l = &w->left[pos];
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)pos, w->wave + 1000);
	uint64_t sum = free_left(l);
	void **mine = pcb_malloc(w->allocs * sizeof *mine);
	for (size_t k = 0; k < w->allocs; k++) {
		size_t n = pcb_logsize(&rng, 16, w->maxsz);
		uint64_t tag = pcb_sized_tag(pcb_mix64(((uint64_t)pos << 48) ^
						       (w->wave << 20) ^ k), n);
		mine[k] = pcb_malloc(n);
		pcb_stamp(mine[k], n, tag, 0);
	}
	/* free the odd half, pass the even half on */
	size_t keep = 0;
	for (size_t k = 0; k < w->allocs; k++) {
		if (k & 1)
			sum += pcb_check_free_sized(mine[k]);
		else
			mine[keep++] = mine[k];
	}
	l->ptr = mine;
	l->n = keep;
	return sum;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t total = (size_t)pcb_arg(argc, argv, 2, 2000);
	size_t allocs = (size_t)pcb_arg(argc, argv, 3, 200);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 4, 4096);
	if (threads < 1 || maxsz < 16 || maxsz > PCB_SIZED_MAX)
		pcb_die("usage: thread-churn THREADS TOTAL_THREADS [ALLOCS MAXSZ]");
	size_t waves = total / (size_t)threads;
	if (waves < 1)
		waves = 1;
	struct wave w = { .allocs = allocs, .maxsz = maxsz,
		.left = pcb_calloc((size_t)threads, sizeof *w.left) };
	uint64_t sum = 0;
	for (w.wave = 0; w.wave < waves; w.wave++)
		sum += pcb_run_threads(threads, worker, &w);
	for (int i = 0; i < threads; i++)
		sum += free_left(&w.left[i]);
	free(w.left);
	pcb_result("thread-churn", sum);
	return 0;
}
