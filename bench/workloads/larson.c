/*
 * larson: server simulation in the spirit of Larson & Krishnan's benchmark.
 *
 *   larson THREADS ROUNDS OPS SLOTS [MINSZ MAXSZ]
 *
 * The main thread fills THREADS arrays of SLOTS/THREADS random-size blocks.
 * Each array is worked on by a chain of short-lived threads: a thread
 * replaces OPS/THREADS random slots (free the old block, allocate a new one
 * of random size), then spawns its successor on the same array and exits.
 * A block is therefore almost always freed by a different thread than the
 * one that allocated it, often after that thread has exited, with random
 * sizes and lifetimes, the way a server's worker threads pass requests on.
 * Chains run asynchronously (no barrier between rounds). Total work and total
 * live memory do not depend on THREADS.
 *
 * Built twice: pcb_larson frees with free(); pcb_larson_sized (LARSON_SIZED)
 * allocates with C++ operator new[] and frees with the sized operator
 * delete[](p, n), through larson_sized.cpp, like mimalloc-bench's
 * larson-sized: an allocator that exports the sized operator skips its
 * size lookup, one that does not gets there through libstdc++ and free().
 */
#include "common.h"

#ifdef LARSON_SIZED
void *larson_new(size_t n);		/* larson_sized.cpp */
void larson_delete(void *p, size_t n);
#define LARSON_ALLOC(n) larson_new(n)
#define LARSON_FREE(p, n) larson_delete(p, n)
#define LARSON_NAME "larson-sized"
#else
#define LARSON_ALLOC(n) pcb_malloc(n)
#define LARSON_FREE(p, n) free(p)
#define LARSON_NAME "larson"
#endif

struct chain {
	int id;
	int round;
	int rounds;
	size_t slots;
	size_t ops;
	size_t minsz, maxsz;
	void **ptr;
	size_t *size;
	uint64_t *tag;
	uint64_t sum;
};

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int chains_left;

static void *worker(void *arg)
{
	struct chain *c = arg;
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)c->id, (uint64_t)c->round + 1);
	uint64_t sum = c->sum;
	for (size_t k = 0; k < c->ops; k++) {
		size_t i = (size_t)(pcb_rand(&rng) % c->slots);
		sum += pcb_check(c->ptr[i], c->size[i], c->tag[i], 0);
		LARSON_FREE(c->ptr[i], c->size[i]);
		size_t n = pcb_range(&rng, c->minsz, c->maxsz);
		uint64_t tag = pcb_mix64(((uint64_t)c->id << 40) ^
					 ((uint64_t)c->round << 24) ^ k);
		c->ptr[i] = LARSON_ALLOC(n);
		c->size[i] = n;
		c->tag[i] = tag;
		pcb_stamp(c->ptr[i], n, tag, 0);
	}
	c->sum = sum;
	if (++c->round < c->rounds) {
		pthread_t t;
		pcb_create(&t, worker, c);
		pthread_detach(t);
	} else {
		pthread_mutex_lock(&done_mu);
		if (--chains_left == 0)
			pthread_cond_signal(&done_cv);
		pthread_mutex_unlock(&done_mu);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	int rounds = (int)pcb_arg(argc, argv, 2, 10);
	size_t ops = (size_t)pcb_arg(argc, argv, 3, 200000);
	size_t slots = (size_t)pcb_arg(argc, argv, 4, 20000);
	size_t minsz = (size_t)pcb_arg(argc, argv, 5, 8);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 6, 1024);
	if (threads < 1 || rounds < 1 || minsz < 1 || maxsz < minsz)
		pcb_die("usage: " LARSON_NAME
			" THREADS ROUNDS OPS SLOTS [MINSZ MAXSZ]");

	struct chain *ch = pcb_calloc((size_t)threads, sizeof *ch);
	size_t per_slots = slots / (size_t)threads ? slots / (size_t)threads : 1;
	size_t per_ops = ops / (size_t)threads;
	for (int i = 0; i < threads; i++) {
		struct chain *c = &ch[i];
		c->id = i;
		c->rounds = rounds;
		c->slots = per_slots;
		c->ops = per_ops;
		c->minsz = minsz;
		c->maxsz = maxsz;
		c->ptr = pcb_malloc(per_slots * sizeof(void *));
		c->size = pcb_malloc(per_slots * sizeof(size_t));
		c->tag = pcb_malloc(per_slots * sizeof(uint64_t));
		pcb_rng rng;
		pcb_rng_seed(&rng, (uint64_t)i, 0);
		for (size_t k = 0; k < per_slots; k++) {
			size_t n = pcb_range(&rng, minsz, maxsz);
			uint64_t tag = pcb_mix64(((uint64_t)i << 40) ^ k ^
						 0xabcdefULL);
			c->ptr[k] = LARSON_ALLOC(n);
			c->size[k] = n;
			c->tag[k] = tag;
			pcb_stamp(c->ptr[k], n, tag, 0);
		}
	}

	chains_left = threads;
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		pcb_create(&t, worker, &ch[i]);
		pthread_detach(t);
	}
	pthread_mutex_lock(&done_mu);
	while (chains_left > 0)
		pthread_cond_wait(&done_cv, &done_mu);
	pthread_mutex_unlock(&done_mu);

	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		struct chain *c = &ch[i];
		sum += c->sum;
		for (size_t k = 0; k < c->slots; k++) {
			sum += pcb_check(c->ptr[k], c->size[k], c->tag[k], 0);
			LARSON_FREE(c->ptr[k], c->size[k]);
		}
		free(c->ptr);
		free(c->size);
		free(c->tag);
	}
	free(ch);
	pcb_result(LARSON_NAME, sum);
	return 0;
}
