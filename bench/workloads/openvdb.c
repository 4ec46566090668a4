/*
 * openvdb: parallel allocation, then parallel free, of many small buffers,
 * the pattern of OpenVDB's allocator benchmark (a tree's leaf buffers).
 *
 *   openvdb THREADS BUFFERS [ROUNDS SIZE]
 *
 * ROUNDS times: all threads at once allocate BUFFERS buffers of SIZE bytes
 * (2 KiB by default) into one shared array, thread i taking slots i, i+T,
 * i+2T..., and write the first and last word of each; after a barrier,
 * thread i frees the i-th contiguous chunk of the array, so most buffers
 * are freed by another thread than the one that made them (two parallel
 * loops partitioned differently, as in TBB). The allocation phase grows
 * the heap by BUFFERS x SIZE at full speed; the free phase is a burst of
 * remote frees.
 */
#include "common.h"

struct shared {
	size_t buffers, size;
	unsigned rounds;
	int threads;
	void **buf;
	pthread_barrier_t bar;
};

static uint64_t worker(int id, void *arg)
{
	struct shared *s = arg;
	size_t t = (size_t)s->threads, lo = s->buffers * (size_t)id / t,
	       hi = s->buffers * ((size_t)id + 1) / t;
	uint64_t sum = 0;
	for (unsigned r = 0; r < s->rounds; r++) {
		for (size_t i = (size_t)id; i < s->buffers; i += t) {
			s->buf[i] = pcb_malloc(s->size);
			pcb_stamp(s->buf[i], s->size,
				  pcb_mix64(i ^ ((uint64_t)r << 40)), 0);
		}
		pthread_barrier_wait(&s->bar);
		for (size_t i = lo; i < hi; i++) {
			sum += pcb_check(s->buf[i], s->size,
					 pcb_mix64(i ^ ((uint64_t)r << 40)), 0);
			free(s->buf[i]);
		}
		pthread_barrier_wait(&s->bar);
	}
	return sum;
}

int main(int argc, char **argv)
{
	struct shared s = {
		.threads = (int)pcb_arg(argc, argv, 1, 2),
		.buffers = (size_t)pcb_arg(argc, argv, 2, 1000000),
		.rounds = (unsigned)pcb_arg(argc, argv, 3, 4),
		.size = (size_t)pcb_arg(argc, argv, 4, 2048),
	};
	if (s.threads < 1 || s.buffers < 1 || s.size < 16)
		pcb_die("usage: openvdb THREADS BUFFERS [ROUNDS SIZE]");
	s.buf = pcb_calloc(s.buffers, sizeof *s.buf);
	pthread_barrier_init(&s.bar, NULL, (unsigned)s.threads);
	uint64_t sum = pcb_run_threads(s.threads, worker, &s);
	pthread_barrier_destroy(&s.bar);
	free(s.buf);
	pcb_result("openvdb", sum);
	return 0;
}
