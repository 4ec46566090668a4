/* Issue #12's large-block churn: per thread, 64 live blocks of 64 KiB to
 * 4 MiB; each round frees a random one and allocates a new one, writing
 * only its first page and its last byte.  Usage: large_churn THREADS ROUNDS */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static long rounds;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *
worker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	char *live[64];
	size_t size[64];
	for (int i = 0; i < 64; i++) {
		size[i] = 65536 + rnd(&seed) % (4u << 20) - 0;
		if (size[i] > (4u << 20))
			size[i] = 4u << 20;
		live[i] = malloc(size[i]);
		memset(live[i], 1, 4096);
		live[i][size[i] - 1] = 1;
	}
	for (long r = 0; r < rounds; r++) {
		int i = (int)(rnd(&seed) % 64);
		free(live[i]);
		size[i] = 65536 + rnd(&seed) % ((4u << 20) - 65536 + 1);
		live[i] = malloc(size[i]);
		memset(live[i], 1, 4096);
		live[i][size[i] - 1] = 1;
	}
	for (int i = 0; i < 64; i++)
		free(live[i]);
	return NULL;
}

int
main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 1;
	rounds = argc > 2 ? atol(argv[2]) : 100000;
	pthread_t t[64];
	for (int i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("maxrss_kb %ld\n", ru.ru_maxrss);
	return 0;
}
