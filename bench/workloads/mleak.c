/*
 * mleak: threads that exit leaking blocks, in the spirit of mimalloc-bench's
 * mleak.
 *
 *   mleak THREADS ROUNDS [SLOTS SIZE]
 *
 * ROUNDS times, start THREADS threads at once and wait for them. Each
 * thread allocates one SIZE-byte block (zeroed with calloc), swaps it into
 * a random slot of a shared table of SLOTS and frees what it found there,
 * then exits. So every thread exits holding a live block it allocated,
 * which the allocator must not lose (memory of dead threads' caches and
 * slabs), and every free is of a block a now-dead thread allocated. The
 * cost is thread start-up and exit, per-thread cache set-up and
 * hand-over; peak RSS shows a leak per dead thread.
 */
#include <stdatomic.h>

#include "common.h"

struct table {
	size_t slots, size;
	unsigned round;
	_Atomic(unsigned char *) *slot;
};

static uint64_t worker(int id, void *arg)
{
	struct table *t = arg;
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, t->round + 1);
	unsigned char *p = pcb_calloc(1, t->size);
	/* the block's first byte says who made it, the last that it was
	 * zeroed: both are checked by whoever frees it */
	p[0] = (unsigned char)(id + 1);
	size_t i = (size_t)(pcb_rand(&rng) % t->slots);
	unsigned char *q = atomic_exchange(&t->slot[i], p);
	if (q) {
		if (!q[0] || q[t->size - 1])
			pcb_die("mleak: block corrupted");
		free(q);
	}
	return 1;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 10);
	unsigned rounds = (unsigned)pcb_arg(argc, argv, 2, 1000);
	struct table t = {
		.slots = (size_t)pcb_arg(argc, argv, 3, 1000),
		.size = (size_t)pcb_arg(argc, argv, 4, 128),
	};
	if (threads < 1 || t.slots < 1 || t.size < 2)
		pcb_die("usage: mleak THREADS ROUNDS [SLOTS SIZE]");
	t.slot = pcb_calloc(t.slots, sizeof *t.slot);
	uint64_t sum = 0;
	for (t.round = 0; t.round < rounds; t.round++)
		sum += pcb_run_threads(threads, worker, &t);
	for (size_t i = 0; i < t.slots; i++) {
		unsigned char *q = atomic_load(&t.slot[i]);
		sum += q ? 1 : 0;
		free(q);
	}
	free(t.slot);
	pcb_result("mleak", sum);
	return 0;
}
