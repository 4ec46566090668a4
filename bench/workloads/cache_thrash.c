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
#include "common.h"

struct arg {
	size_t iters, objsize, writes;
	int id;
	uint64_t sum;
};

static void *worker(void *p)
{
	struct arg *a = p;
	uint64_t sum = 0;
	for (size_t it = 0; it < a->iters; it++) {
		volatile unsigned char *o = pcb_malloc(a->objsize);
		for (size_t w = 0; w < a->writes; w++)
			for (size_t k = 0; k < a->objsize; k++)
				o[k] = (unsigned char)(w + k + (size_t)a->id);
		for (size_t k = 0; k < a->objsize; k++)
			sum += o[k];
		free((void *)o);
	}
	a->sum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t iters = (size_t)pcb_arg(argc, argv, 2, 200000);
	size_t objsize = (size_t)pcb_arg(argc, argv, 3, 8);
	size_t writes = (size_t)pcb_arg(argc, argv, 4, 50);
	if (threads < 1 || objsize < 1)
		pcb_die("usage: cache-thrash THREADS ITERATIONS [OBJSIZE WRITES]");
	struct arg *a = calloc((size_t)threads, sizeof *a);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	if (!a || !t)
		pcb_die("out of memory");
	for (int i = 0; i < threads; i++) {
		a[i].iters = iters / (size_t)threads;
		a[i].objsize = objsize;
		a[i].writes = writes;
		a[i].id = i;
	}
	for (int i = 0; i < threads; i++)
		pcb_create(&t[i], worker, &a[i]);
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pcb_join(t[i]);
		sum += a[i].sum * (uint64_t)(i + 1);
	}
	free(a);
	free(t);
	pcb_result("cache-thrash", sum);
	return 0;
}
