/*
 * xmalloc: producer/consumer, in the spirit of xmalloc-test (Lever & Boreham).
 *
 *   xmalloc THREADS BATCHES [BATCHSZ MINSZ MAXSZ]
 *
 * THREADS/2 producer/consumer pairs (THREADS rounded down to even). A
 * producer allocates batches of BATCHSZ random-size blocks and passes each
 * batch through a bounded queue to its consumer, which checks and frees
 * every block: all frees are remote frees, and the allocating thread keeps
 * allocating while its memory comes back from another thread. With
 * THREADS=1 a single thread produces and consumes its own batches (no
 * cross-thread frees), as a baseline. BATCHES is the total over all pairs.
 */
#include "common.h"

#define QCAP 8

struct batch {
	size_t n;
	void *ptr[];
};

struct pair {
	int id;
	size_t batches, batchsz, minsz, maxsz;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct batch *q[QCAP];
	unsigned head, tail;
};

static struct batch *make_batch(struct pair *p, pcb_rng *rng, size_t b)
{
	struct batch *bt = pcb_malloc(sizeof *bt + p->batchsz * sizeof(void *));
	bt->n = p->batchsz;
	for (size_t k = 0; k < bt->n; k++) {
		size_t n = pcb_logsize(rng, p->minsz, p->maxsz);
		/* the size travels in the tag: the consumer recomputes it */
		uint64_t tag = pcb_sized_tag(
			pcb_mix64(((uint64_t)p->id << 48) ^ (b << 16) ^ k), n);
		bt->ptr[k] = pcb_malloc(n);
		pcb_stamp(bt->ptr[k], n, tag, 0);
	}
	return bt;
}

static uint64_t eat_batch(struct batch *bt)
{
	uint64_t sum = 0;
	for (size_t k = 0; k < bt->n; k++)
		sum += pcb_check_free_sized(bt->ptr[k]);
	free(bt);
	return sum;
}

static uint64_t producer(struct pair *p)
{
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)p->id, 77);
	for (size_t b = 0; b <= p->batches; b++) {
		struct batch *bt = b < p->batches ? make_batch(p, &rng, b) : NULL;
		pthread_mutex_lock(&p->mu);
		while (p->tail - p->head == QCAP)
			pthread_cond_wait(&p->not_full, &p->mu);
		p->q[p->tail++ % QCAP] = bt;
		pthread_cond_signal(&p->not_empty);
		pthread_mutex_unlock(&p->mu);
	}
	return 0;
}

static uint64_t consumer(struct pair *p)
{
	uint64_t sum = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->tail == p->head)
			pthread_cond_wait(&p->not_empty, &p->mu);
		struct batch *bt = p->q[p->head++ % QCAP];
		pthread_cond_signal(&p->not_full);
		pthread_mutex_unlock(&p->mu);
		if (!bt)
			break;
		sum += eat_batch(bt);
	}
	return sum;
}

/* Threads 2i and 2i+1 are pair i's consumer and producer. */
static uint64_t worker(int id, void *pairs)
{
	struct pair *p = (struct pair *)pairs + id / 2;
	return id % 2 == 0 ? consumer(p) : producer(p);
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t batches = (size_t)pcb_arg(argc, argv, 2, 4000);
	size_t batchsz = (size_t)pcb_arg(argc, argv, 3, 256);
	size_t minsz = (size_t)pcb_arg(argc, argv, 4, 16);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 5, 2048);
	if (threads < 1 || batchsz < 1 || minsz < 8 || maxsz < minsz ||
	    maxsz > PCB_SIZED_MAX)
		pcb_die("usage: xmalloc THREADS BATCHES [BATCHSZ MINSZ MAXSZ]"
			" (MINSZ >= 8, MAXSZ < 16 MiB)");
	int pairs = threads >= 2 ? threads / 2 : 1;
	struct pair *pr = pcb_calloc((size_t)pairs, sizeof *pr);
	for (int i = 0; i < pairs; i++) {
		struct pair *p = &pr[i];
		p->id = i;
		p->batches = batches / (size_t)pairs;
		p->batchsz = batchsz;
		p->minsz = minsz;
		p->maxsz = maxsz;
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->not_empty, NULL);
		pthread_cond_init(&p->not_full, NULL);
	}

	uint64_t sum = 0;
	if (threads == 1) {
		struct pair *p = &pr[0];
		pcb_rng rng;
		pcb_rng_seed(&rng, 0, 77);
		for (size_t b = 0; b < p->batches; b++)
			sum += eat_batch(make_batch(p, &rng, b));
	} else {
		sum = pcb_run_threads(2 * pairs, worker, pr);
	}
	free(pr);
	pcb_result("xmalloc", sum);
	return 0;
}
