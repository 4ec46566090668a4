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

struct slot {
	int pos;
	size_t wave, allocs, maxsz;
	void **left;      /* blocks left by the previous wave's thread */
	size_t nleft;
	uint64_t sum;
};

struct left {
	void **ptr;
	size_t n;
};

static void *worker(void *p)
{
	struct slot *s = p;
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)s->pos, s->wave + 1000);
	uint64_t sum = 0;
	/* free what the predecessor left (its thread has exited) */
	for (size_t k = 0; k < s->nleft; k++) {
		uint64_t tag;
		memcpy(&tag, s->left[k], 8);
		size_t n = (size_t)(tag & 0xffffffULL);
		sum += pcb_check(s->left[k], n, tag, 0);
		free(s->left[k]);
	}
	free(s->left);
	void **mine = pcb_malloc(s->allocs * sizeof *mine);
	for (size_t k = 0; k < s->allocs; k++) {
		size_t n = pcb_logsize(&rng, 16, s->maxsz);
		uint64_t tag = pcb_mix64(((uint64_t)s->pos << 48) ^
					 (s->wave << 20) ^ k);
		tag = (tag & ~0xffffffULL) | n;
		mine[k] = pcb_malloc(n);
		pcb_stamp(mine[k], n, tag, 0);
	}
	/* free the odd half, pass the even half on */
	size_t keep = 0;
	for (size_t k = 0; k < s->allocs; k++) {
		if (k & 1) {
			uint64_t tag;
			memcpy(&tag, mine[k], 8);
			sum += pcb_check(mine[k], (size_t)(tag & 0xffffffULL), tag, 0);
			free(mine[k]);
		} else {
			mine[keep++] = mine[k];
		}
	}
	s->left = mine;
	s->nleft = keep;
	s->sum += sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t total = (size_t)pcb_arg(argc, argv, 2, 2000);
	size_t allocs = (size_t)pcb_arg(argc, argv, 3, 200);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 4, 4096);
	if (threads < 1 || maxsz < 16 || maxsz > 0xffffff)
		pcb_die("usage: thread-churn THREADS TOTAL_THREADS [ALLOCS MAXSZ]");
	struct slot *s = calloc((size_t)threads, sizeof *s);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	if (!s || !t)
		pcb_die("out of memory");
	size_t waves = total / (size_t)threads;
	if (waves < 1)
		waves = 1;
	for (int i = 0; i < threads; i++)
		s[i] = (struct slot){ .pos = i, .allocs = allocs, .maxsz = maxsz };
	for (size_t w = 0; w < waves; w++) {
		for (int i = 0; i < threads; i++) {
			s[i].wave = w;
			pcb_create(&t[i], worker, &s[i]);
		}
		for (int i = 0; i < threads; i++)
			pcb_join(t[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		for (size_t k = 0; k < s[i].nleft; k++) {
			uint64_t tag;
			memcpy(&tag, s[i].left[k], 8);
			sum += pcb_check(s[i].left[k], (size_t)(tag & 0xffffffULL),
					 tag, 0);
			free(s[i].left[k]);
		}
		free(s[i].left);
		sum += s[i].sum;
	}
	free(s);
	free(t);
	pcb_result("thread-churn", sum);
	return 0;
}
