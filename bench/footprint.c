/*
 * footprint: does freed memory go back to the OS?  Allocates TOTAL bytes in
 * blocks of SIZE, touches them, frees them all, then reports the resident
 * set size (RSS, MiB) at start, at peak, right after the frees, after
 * sleeping WAIT_MS with no allocator calls at all, and after
 * malloc_trim(0).  Used by bench/footprint.sh against jemalloc.
 *   footprint SIZE TOTAL WAIT_MS [THREADS]
 * With THREADS, a worker pool does the work instead: each worker allocates
 * its share in blocks of 16 B .. SIZE (random), frees them, then parks on a
 * condition variable, as pool threads between jobs do, while the main
 * thread takes the readings (what parked threads' caches keep pinned).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
rss_mib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* The readings after the frees, then the report line: right away, after
 * wait_ms asleep, and after malloc_trim(0). */
static void
report_after_free(size_t size, double start, double peak, long wait_ms)
{
	double freed = rss_mib();
	struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	double waited = rss_mib();
	malloc_trim(0);
	double trimmed = rss_mib();
	printf("%zu %.1f %.1f %.1f %.1f %.1f\n", size, start, peak, freed,
	    waited, trimmed);
}

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static int pool_parked, pool_release;
static size_t pool_size, pool_share;
static double pool_peak;

static void *
pool_worker(void *arg)
{
	uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	size_t cap = pool_share / 16 + 1, n = 0, bytes = 0;
	void **v = malloc(cap * sizeof(void *));
	if (v == NULL)
		exit(1);
	while (bytes < pool_share && n < cap) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t sz = 16 + (size_t)(x % (pool_size - 15));
		if ((v[n++] = malloc(sz)) == NULL)
			exit(1);
		memset(v[n - 1], 1, sz);
		bytes += sz;
	}
	pthread_mutex_lock(&pool_mu);
	pool_parked++;	/* the main thread reads the peak now */
	pthread_cond_broadcast(&pool_cv);
	while (pool_parked > 0 && !pool_release)
		pthread_cond_wait(&pool_cv, &pool_mu);
	pthread_mutex_unlock(&pool_mu);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	pthread_mutex_lock(&pool_mu);
	pool_parked++;
	pthread_cond_broadcast(&pool_cv);
	while (!pool_release)
		pthread_cond_wait(&pool_cv, &pool_mu);
	pthread_mutex_unlock(&pool_mu);
	return NULL;
}

static void
pool_wait_parked(int want)
{
	pthread_mutex_lock(&pool_mu);
	while (pool_parked < want)
		pthread_cond_wait(&pool_cv, &pool_mu);
	pthread_mutex_unlock(&pool_mu);
}

static int
pool_main(size_t size, size_t total, long wait_ms, int threads)
{
	pthread_t *t = malloc((size_t)threads * sizeof(*t));
	if (t == NULL || size < 32)
		return 1;
	pool_size = size;
	pool_share = total / (size_t)threads;
	double start = rss_mib();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, pool_worker,
		    (void *)(uintptr_t)(i + 1)) != 0)
			return 1;
	pool_wait_parked(threads);
	pool_peak = rss_mib();
	/* Let them free: parked == threads until each has freed and parked
	 * again; counting down then up keeps one counter. */
	pthread_mutex_lock(&pool_mu);
	pool_parked = -threads;
	pthread_cond_broadcast(&pool_cv);
	pthread_mutex_unlock(&pool_mu);
	pool_wait_parked(0);
	report_after_free(size, start, pool_peak, wait_ms);
	pthread_mutex_lock(&pool_mu);
	pool_release = 1;
	pthread_cond_broadcast(&pool_cv);
	pthread_mutex_unlock(&pool_mu);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: footprint SIZE TOTAL WAIT_MS [THREADS]\n");
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 0);
	size_t total = strtoull(argv[2], NULL, 0);
	long wait_ms = strtol(argv[3], NULL, 0);
	if (argc > 4 && atoi(argv[4]) > 0)
		return pool_main(size, total, wait_ms, atoi(argv[4]));
	size_t n = total / size;
	void **v = malloc(n * sizeof(void *));
	if (v == NULL)
		return 1;
	double start = rss_mib();
	for (size_t i = 0; i < n; i++) {
		v[i] = malloc(size);
		if (v[i] == NULL)
			return 1;
		memset(v[i], (int)(i & 0xff) | 1, size);
	}
	double peak = rss_mib();
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	/* The pointer table stays until after the readings (its ~1/8 of
	 * the total is part of every figure, as in earlier runs). */
	report_after_free(size, start, peak, wait_ms);
	free(v);
	return 0;
}
