/*
 * cache-thrash: active false sharing, after Hoard's cache-thrash.
 *
 *   cache-thrash THREADS ITERATIONS [OBJSIZE WRITES]
 *
 * THREADS threads run at once; each, ITERATIONS/THREADS times, allocates a
 * small object, writes every byte WRITES times and frees it. If the
 * allocator hands objects from the same cache line to different threads
 * (e.g. one shared free list carved sequentially), the threads write to the
 * same lines concurrently ("active" false sharing) and the line ping-pongs
 * between cores. Per-thread caches / per-thread pages avoid it.
 */
#include "false_sharing.h"

static uint64_t worker(int id, void *loop)
{
	return false_sharing_run(loop, id);
}

int main(int argc, char **argv)
{
	int threads;
	struct false_sharing loop =
		false_sharing_args(argc, argv, "cache-thrash", &threads);
	pcb_result("cache-thrash", pcb_run_threads(threads, worker, &loop));
	return 0;
}
