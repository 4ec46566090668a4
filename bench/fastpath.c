/*
 * fastpath: instruction-count micro-benchmark of the malloc/free fast
 * paths, meant to run under `valgrind --tool=callgrind` (see fastpath.sh).
 *
 *   fastpath MODE PAIRS
 *
 * MODE:
 *   pair          malloc(n) then free() at once, n in 16..256, one thread
 *   batch         malloc 64 blocks, then free the 64, one thread
 *   xthread       a producer thread mallocs blocks in batches of 1024 and a
 *                 consumer thread frees them (the two alternate, handing
 *                 each batch over with semaphores), so every free is remote
 *   pair-base, batch-base, xthread-base
 *                 the same loops, RNG and hand-offs, with malloc and free
 *                 replaced by dummies: subtracting them leaves the
 *                 allocator's own instructions
 *
 * fastpath.sh runs every mode at two PAIRS counts and divides the
 * difference in instructions by the difference in pairs, which cancels
 * process start-up, allocator initialisation and first-touch slow paths.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSIZES 4096
#define BATCH 64
#define XBATCH 1024

static size_t sizes[NSIZES];
static void *volatile sink;
static char dummy_block[256];
static int base;

static inline void *do_malloc(size_t n)
{
	if (base) {
		sink = dummy_block + (n & 7);
		return sink;
	}
	void *p = malloc(n);
	if (!p)
		abort();
	return p;
}

static inline void do_free(void *p)
{
	if (base)
		sink = p;
	else
		free(p);
}

static void run_pair(size_t pairs)
{
	for (size_t i = 0; i < pairs; i++) {
		void *p = do_malloc(sizes[i & (NSIZES - 1)]);
		*(volatile char *)p = 1;
		do_free(p);
	}
}

static void run_batch(size_t pairs)
{
	void *b[BATCH];
	for (size_t i = 0; i < pairs; i += BATCH) {
		for (size_t k = 0; k < BATCH; k++) {
			b[k] = do_malloc(sizes[(i + k) & (NSIZES - 1)]);
			*(volatile char *)b[k] = 1;
		}
		for (size_t k = 0; k < BATCH; k++)
			do_free(b[k]);
	}
}

static void *xb[XBATCH];
static sem_t full, empty;
static size_t xrounds;

static void *consumer(void *arg)
{
	(void)arg;
	for (size_t r = 0; r < xrounds; r++) {
		sem_wait(&full);
		for (size_t k = 0; k < XBATCH; k++)
			do_free(xb[k]);
		sem_post(&empty);
	}
	return NULL;
}

static void *producer(void *arg)
{
	(void)arg;
	for (size_t r = 0; r < xrounds; r++) {
		sem_wait(&empty);
		for (size_t k = 0; k < XBATCH; k++) {
			xb[k] = do_malloc(sizes[(r * XBATCH + k) & (NSIZES - 1)]);
			*(volatile char *)xb[k] = 1;
		}
		sem_post(&full);
	}
	return NULL;
}

static void run_xthread(size_t pairs)
{
	pthread_t p, c;
	xrounds = pairs / XBATCH;
	sem_init(&full, 0, 0);
	sem_init(&empty, 0, 1);
	if (pthread_create(&c, NULL, consumer, NULL) ||
	    pthread_create(&p, NULL, producer, NULL))
		abort();
	pthread_join(p, NULL);
	pthread_join(c, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fastpath pair|batch|xthread[-base] PAIRS\n");
		return 2;
	}
	char mode[32];
	snprintf(mode, sizeof mode, "%s", argv[1]);
	char *dash = strstr(mode, "-base");
	if (dash) {
		base = 1;
		*dash = 0;
	}
	size_t pairs = strtoull(argv[2], NULL, 0);
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < NSIZES; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sizes[i] = 16 + (size_t)(x % 241);
	}
	if (!strcmp(mode, "pair"))
		run_pair(pairs);
	else if (!strcmp(mode, "batch"))
		run_batch(pairs);
	else if (!strcmp(mode, "xthread"))
		run_xthread(pairs);
	else {
		fprintf(stderr, "fastpath: unknown mode %s\n", argv[1]);
		return 2;
	}
	printf("fastpath %s %zu done\n", argv[1], pairs);
	return 0;
}
