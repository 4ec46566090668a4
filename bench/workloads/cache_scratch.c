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
#include "common.h"

struct arg {
	unsigned char *given;
	size_t iters, objsize, writes;
	int id;
	uint64_t sum;
};

static void *worker(void *p)
{
	struct arg *a = p;
	free(a->given);
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
		pcb_die("usage: cache-scratch THREADS ITERATIONS [OBJSIZE WRITES]");
	struct arg *a = calloc((size_t)threads, sizeof *a);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	if (!a || !t)
		pcb_die("out of memory");
	for (int i = 0; i < threads; i++) {
		a[i].given = pcb_malloc(objsize);
		memset(a[i].given, 0, objsize);
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
	pcb_result("cache-scratch", sum);
	return 0;
}
