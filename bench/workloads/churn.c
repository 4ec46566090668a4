/*
 * churn: random-size churn, after glibc's bench-malloc-thread and alloc-test.
 *
 *   churn THREADS OPS [SLOTS MINSZ MAXSZ]
 *
 * Each thread keeps a working set of SLOTS blocks; each operation picks a
 * random slot, frees its block (checking its contents) and allocates a new
 * one. Sizes follow a 1/size (log-uniform) distribution from MINSZ to MAXSZ,
 * so most requests are small but every size class gets used. No memory
 * crosses threads: this measures the thread-local fast paths and how well
 * the allocator recycles memory across size classes. OPS is the total over
 * all threads.
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
	void **ptr = calloc(a->slots, sizeof *ptr);
	size_t *size = calloc(a->slots, sizeof *size);
	uint64_t *tag = calloc(a->slots, sizeof *tag);
	if (!ptr || !size || !tag)
		pcb_die("out of memory");
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)a->id, 5);
	uint64_t sum = 0;
	for (size_t k = 0; k < a->ops; k++) {
		size_t i = (size_t)(pcb_rand(&rng) % a->slots);
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i], 0);
			free(ptr[i]);
		}
		size[i] = pcb_logsize(&rng, a->minsz, a->maxsz);
		tag[i] = pcb_mix64(((uint64_t)a->id << 40) ^ k);
		ptr[i] = pcb_malloc(size[i]);
		pcb_stamp(ptr[i], size[i], tag[i], 0);
	}
	for (size_t i = 0; i < a->slots; i++)
		if (ptr[i]) {
			sum += pcb_check(ptr[i], size[i], tag[i], 0);
			free(ptr[i]);
		}
	free(ptr);
	free(size);
	free(tag);
	a->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t ops = (size_t)pcb_arg(argc, argv, 2, 2000000);
	size_t slots = (size_t)pcb_arg(argc, argv, 3, 1000);
	size_t minsz = (size_t)pcb_arg(argc, argv, 4, 8);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 5, 32768);
	if (threads < 1 || slots < 1 || minsz < 1 || maxsz < minsz)
		pcb_die("usage: churn THREADS OPS [SLOTS MINSZ MAXSZ]");
	struct arg *a = calloc((size_t)threads, sizeof *a);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	if (!a || !t)
		pcb_die("out of memory");
	for (int i = 0; i < threads; i++) {
		a[i] = (struct arg){ .id = i, .ops = ops / (size_t)threads,
			.slots = slots, .minsz = minsz, .maxsz = maxsz };
		pcb_create(&t[i], worker, &a[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pcb_join(t[i]);
		sum += a[i].sum;
	}
	free(a);
	free(t);
	pcb_result("churn", sum);
	return 0;
}
