/*
 * large: large-block churn, 64 KiB .. 32 MiB.
 *
 *   large THREADS OPS [SLOTS MINSZ MAXSZ]
 *
 * Each thread keeps SLOTS/THREADS (at least 2) large blocks; each operation
 * replaces a random one with a block of log-uniform size in [MINSZ, MAXSZ]
 * and touches one byte in every 4 KiB page of it, like a program filling
 * big buffers. This measures how an allocator handles mmap-sized requests:
 * reusing address space vs. mmap/munmap per call, page-fault and zeroing
 * cost, and how much it retains (peak RSS). OPS is the total over all
 * threads.
 */
#include "common.h"

struct arg {
	int id;
	size_t ops, slots, minsz, maxsz;
	uint64_t sum;
};

static void *worker(void *p)
{
	struct arg *a = p;
	void *ptr[64] = { 0 };
	size_t size[64];
	uint64_t tag[64];
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)a->id, 11);
	uint64_t sum = 0;
	for (size_t k = 0; k < a->ops; k++) {
		size_t i = (size_t)(pcb_rand(&rng) % a->slots);
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i], 1);
			free(ptr[i]);
		}
		size[i] = pcb_logsize(&rng, a->minsz, a->maxsz);
		tag[i] = pcb_mix64(((uint64_t)a->id << 40) ^ k);
		ptr[i] = pcb_malloc(size[i]);
		pcb_stamp(ptr[i], size[i], tag[i], 1);
	}
	for (size_t i = 0; i < a->slots; i++)
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i], 1);
			free(ptr[i]);
		}
	a->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	size_t ops = (size_t)pcb_arg(argc, argv, 2, 2000);
	size_t slots = (size_t)pcb_arg(argc, argv, 3, 16);
	size_t minsz = (size_t)pcb_arg(argc, argv, 4, 64 << 10);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 5, 32 << 20);
	if (threads < 1 || minsz < 16 || maxsz < minsz)
		pcb_die("usage: large THREADS OPS [SLOTS MINSZ MAXSZ]");
	size_t per = slots / (size_t)threads;
	if (per < 2)
		per = 2;
	if (per > 64)
		per = 64;
	struct arg *a = calloc((size_t)threads, sizeof *a);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	if (!a || !t)
		pcb_die("out of memory");
	for (int i = 0; i < threads; i++) {
		a[i] = (struct arg){ .id = i, .ops = ops / (size_t)threads,
			.slots = per, .minsz = minsz, .maxsz = maxsz };
		pcb_create(&t[i], worker, &a[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pcb_join(t[i]);
		sum += a[i].sum;
	}
	free(a);
	free(t);
	pcb_result("large", sum);
	return 0;
}
