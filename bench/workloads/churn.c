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
#include "slot_churn.h"

static uint64_t worker(int id, void *c)
{
	size_t slots = ((struct slot_churn *)c)->slots;
	void **ptr = pcb_calloc(slots, sizeof *ptr);
	size_t *size = pcb_calloc(slots, sizeof *size);
	uint64_t *tag = pcb_calloc(slots, sizeof *tag);
	uint64_t sum = slot_churn_run(c, id, ptr, size, tag);
	free(ptr);
	free(size);
	free(tag);
	return sum;
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
	struct slot_churn c = { .ops = ops / (size_t)threads, .slots = slots,
		.minsz = minsz, .maxsz = maxsz, .seed = 5 };
	pcb_result("churn", pcb_run_threads(threads, worker, &c));
	return 0;
}
