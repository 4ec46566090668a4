/*
 * Soak: a randomized multi-threaded workload with fork and thread churn
 * for a configurable time (argv[1] seconds, default 60; $PC_SOAK_SECONDS
 * overrides).  Workers malloc/calloc/realloc/aligned-allocate and free
 * random sizes, verify every block's contents, and hand blocks to each
 * other; workers retire and are replaced; the main thread forks children
 * that allocate and exit, runs pc_check() and watches RSS.  Fails on a
 * corrupted block, a hung child, a heap inconsistency, RSS above the bound
 * (argv[2] MiB, default 4096), or RSS that keeps growing: after a warm-up
 * (the first quarter of the run and at least WARM_OPS operations, so a
 * slow, loaded machine has reached its plateau too) it must stay under 1.5
 * times the warm-up's peak plus 256 MiB (a leak or unbounded fragmentation
 * would not).  At the end, with every block freed and the workers gone,
 * "allocated" must be back to its value before the workers started (a leak
 * of one block in thousands would not be) and RSS after malloc_trim within
 * 64 MiB of the RSS at start: the memory went back to the system.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcmalloc.h"

#define NWORKERS 8
#define SLOTS 256
#define SHARED 1024
#define WARM_OPS 200000UL

typedef struct block {
	unsigned char *p;
	size_t size;
	uint8_t tag;
} block_t;

static block_t shared[SHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static volatile int failed;
static unsigned long total_ops;	/* done by all workers, atomically */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
die(const char *what, const block_t *b)
{
	fprintf(stderr, "soak: %s (block %p size %zu)\n", what,
	    b ? (void *)b->p : NULL, b ? b->size : 0);
	failed = 1;
	abort();
}

static void
fill(block_t *b)
{
	memset(b->p, b->tag, b->size < 256 ? b->size : 256);
	if (b->size > 256)
		b->p[b->size - 1] = b->tag;
}

static void
verify(const block_t *b)
{
	size_t n = b->size < 256 ? b->size : 256;
	for (size_t i = 0; i < n; i++)
		if (b->p[i] != b->tag)
			die("corrupted block", b);
	if (b->size > 256 && b->p[b->size - 1] != b->tag)
		die("corrupted block tail", b);
}

static size_t
pick_size(uint64_t *s)
{
	uint64_t r = rnd(s);
	switch (r % 100) {
	case 0: return (size_t)(r >> 8) % (80u << 20);	/* up to huge */
	case 1 ... 5: return (size_t)(r >> 8) % (2u << 20);
	case 6 ... 20: return (size_t)(r >> 8) % 65536;
	default: return (size_t)(r >> 8) % 512;
	}
}

static void
alloc_block(block_t *b, uint64_t *s)
{
	size_t size = pick_size(s);
	uint64_t r = rnd(s);
	b->tag = (uint8_t)(r >> 56) | 1;
	b->size = size;
	switch (r % 8) {
	case 0:
		b->p = calloc(1, size);
		if (b->p && size && b->p[size / 2] != 0)
			die("calloc not zeroed", b);
		break;
	case 1: {
		size_t al = (size_t)16 << (r >> 8) % 14;
		if (posix_memalign((void **)&b->p, al, size) != 0)
			b->p = NULL;
		else if ((uintptr_t)b->p % al)
			die("misaligned", b);
		break;
	}
	default:
		b->p = malloc(size);
	}
	if (b->p == NULL && size != 0)
		die("allocation failed", b);
	if (b->p == NULL)
		b->p = malloc(1), b->size = 0;
	fill(b);
}

static void
free_block(block_t *b)
{
	verify(b);
	free(b->p);
	b->p = NULL;
}

static void *
worker(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	block_t mine[SLOTS] = { { 0 } };
	unsigned long ops = 50000 + rnd(&s) % 200000;	/* then retire */
	for (unsigned long k = 0; k < ops && !stop; k++) {
		if (k % 1024 == 1023)
			__atomic_fetch_add(&total_ops, 1024, __ATOMIC_RELAXED);
		uint64_t r = rnd(&s);
		block_t *b = &mine[r % SLOTS];
		if (b->p == NULL) {
			alloc_block(b, &s);
		} else if (r % 16 == 0) {
			/* realloc keeps the prefix */
			verify(b);
			size_t ns = pick_size(&s);
			unsigned char *q = realloc(b->p, ns ? ns : 1);
			if (q == NULL)
				die("realloc failed", b);
			b->p = q;
			/* Growth keeps the whole block, tail byte included;
			 * shrinking keeps at least the first bytes. */
			if (ns >= b->size) {
				verify(b);
			} else {
				block_t head = *b;
				head.size = ns < 256 ? ns : 256;
				verify(&head);
			}
			b->size = ns;
			fill(b);
		} else if (r % 16 == 1) {
			/* swap with the shared table: cross-thread frees */
			pthread_mutex_lock(&shared_lock);
			block_t *o = &shared[(r >> 8) % SHARED];
			block_t t = *o;
			*o = *b;
			*b = t;
			pthread_mutex_unlock(&shared_lock);
		} else {
			free_block(b);
		}
	}
	for (unsigned i = 0; i < SLOTS; i++)
		if (mine[i].p)
			free_block(&mine[i]);
	return NULL;
}

static size_t
rss_mib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE) >> 20;
}

static void
fork_child(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		uint64_t s = (uint64_t)getpid();
		block_t b[64] = { { 0 } };
		for (int i = 0; i < 20000; i++) {
			block_t *x = &b[rnd(&s) % 64];
			if (x->p)
				free_block(x);
			else
				alloc_block(x, &s);
		}
		_exit(pc_check() == 0 ? 0 : 3);
	}
	for (int i = 0; i < 300; i++) {	/* 30 s */
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "soak: child failed (%d)\n", st);
				failed = 1;
			}
			return;
		}
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fprintf(stderr, "soak: forked child hung\n");
	failed = 1;
}

int
main(int argc, char **argv)
{
	long seconds = argc > 1 ? atol(argv[1]) : 60;
	const char *env = getenv("PC_SOAK_SECONDS");
	if (env)
		seconds = atol(env);
	size_t bound = argc > 2 ? (size_t)atol(argv[2]) : 4096;
	unsigned long long alloc_start = 0;
	pc_trim();
	if (pc_stat_get("allocated", &alloc_start) != 0)
		return 1;
	size_t rss_start = rss_mib();
	time_t start = time(NULL), end = start + seconds;
	size_t warm_max = 0;
	pthread_t t[NWORKERS];
	uintptr_t next = 1;
	for (int i = 0; i < NWORKERS; i++)
		pthread_create(&t[i], NULL, worker, (void *)next++);
	size_t max_rss = 0;
	unsigned long threads = NWORKERS, forks = 0, checks = 0;
	while (time(NULL) < end && !failed) {
		/* Thread churn: replace workers that retired. */
		for (int i = 0; i < NWORKERS; i++) {
			if (pthread_tryjoin_np(t[i], NULL) == 0) {
				pthread_create(&t[i], NULL, worker,
				    (void *)next++);
				threads++;
			}
		}
		fork_child();
		forks++;
		if (pc_check() != 0) {
			fprintf(stderr, "soak: pc_check failed\n");
			failed = 1;
		}
		checks++;
		size_t rss = rss_mib();
		if (rss > max_rss)
			max_rss = rss;
		if (time(NULL) - start <= seconds / 4 ||
		    __atomic_load_n(&total_ops, __ATOMIC_RELAXED) < WARM_OPS) {
			warm_max = max_rss;
		} else if (rss > warm_max + warm_max / 2 + 256) {
			fprintf(stderr, "soak: RSS grew to %zu MiB (the warm-up "
			    "peaked at %zu)\n", rss, warm_max);
			failed = 1;
		}
		if (rss > bound) {
			fprintf(stderr, "soak: RSS %zu MiB over %zu\n", rss,
			    bound);
			failed = 1;
		}
		usleep(200000);
	}
	stop = 1;
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < SHARED; i++)
		if (shared[i].p)
			free_block(&shared[i]);
	malloc_trim(0);
	if (pc_check() != 0)
		failed = 1;
	/* Slack: what this thread's stdio and pthread calls keep. */
	unsigned long long alloc_end = 0;
	pc_stat_get("allocated", &alloc_end);
	if (alloc_end > alloc_start + 256 * 1024) {
		fprintf(stderr, "soak: allocated %llu bytes at start, %llu with "
		    "everything freed\n", alloc_start, alloc_end);
		failed = 1;
	}
	size_t rss_end = rss_mib();
	if (rss_end > rss_start + 64) {
		fprintf(stderr, "soak: RSS %zu MiB after trim, %zu at start\n",
		    rss_end, rss_start);
		failed = 1;
	}
	printf("soak: %ld s, %lu threads, %lu forks, %lu checks, %lu ops, "
	    "RSS %zu MiB at start, warm-up peak %zu, max %zu, after trim %zu "
	    "MiB: %s\n", seconds, threads, forks, checks,
	    __atomic_load_n(&total_ops, __ATOMIC_RELAXED), rss_start,
	    warm_max, max_rss, rss_end, failed ? "FAILED" : "ok");
	return failed;
}
