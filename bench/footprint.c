/*
 * footprint: does freed memory go back to the OS?  Allocates TOTAL bytes in
 * blocks of SIZE, touches them, frees them all, then reports the resident
 * set size (RSS, MiB) at start, at peak, right after the frees, after
 * sleeping WAIT_MS with no allocator calls at all, and after
 * malloc_trim(0).  Used by bench/footprint.sh against jemalloc.
 *   footprint SIZE TOTAL WAIT_MS
 */
#include <malloc.h>
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

int
main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: footprint SIZE TOTAL WAIT_MS\n");
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 0);
	size_t total = strtoull(argv[2], NULL, 0);
	long wait_ms = strtol(argv[3], NULL, 0);
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
	double freed = rss_mib();
	struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	double waited = rss_mib();
	malloc_trim(0);
	double trimmed = rss_mib();
	free(v);
	printf("%zu %.1f %.1f %.1f %.1f %.1f\n", size, start, peak, freed,
	    waited, trimmed);
	return 0;
}
