/*
 * cache-scratch: passive false sharing, after Hoard's cache-scratch.
 *
 *   cache-scratch THREADS ITERATIONS [OBJSIZE WRITES]
 *
 * The main thread allocates THREADS small objects back to back (so they
 * likely share cache lines) and hands one to each thread. Each thread frees
 * the object it was given, then ITERATIONS/THREADS times: allocates an
 * object of the same size, writes every byte WRITES times, frees it. An
 * allocator that gives a thread back memory freed into its cache from
 * another thread's cache line makes the threads write to the same lines
 * ("passive" false sharing). Good allocators keep each thread's objects on
 * lines of its own.
 */
#include "false_sharing.h"

struct scratch {
	struct false_sharing loop;
	unsigned char **given;	// given[i]: thread i's object from main
};

static uint64_t worker(int id, void *p)
{
	struct scratch *s = p;
	free(s->given[id]);
	return false_sharing_run(&s->loop, id);
}

int main(int argc, char **argv)
{
	int threads;
	struct scratch s = {
		.loop = false_sharing_args(argc, argv, "cache-scratch",
					   &threads),
	};
	s.given = pcb_calloc((size_t)threads, sizeof *s.given);
	/* back to back, so that they likely share cache lines */
	for (int i = 0; i < threads; i++) {
		s.given[i] = pcb_malloc(s.loop.objsize);
		memset(s.given[i], 0, s.loop.objsize);
	}
	uint64_t sum = pcb_run_threads(threads, worker, &s);
	free(s.given);
	pcb_result("cache-scratch", sum);
	return 0;
}
