/*
 * Reproducer (race): huge_realloc (src/huge.c) clears the old base's
 * page-map entry only after mremap has moved the block, so another thread
 * can map the vacated range in between (a huge block, or an arena region)
 * and register it, and the late clear wipes that entry.  The other thread's
 * live block is then unknown to pcmalloc: usable size 0, its free is
 * reported as "free of foreign pointer" and leaks, realloc fails with
 * EINVAL.  (For an arena region the first page's entry goes: pc_check
 * reports "region not tiled".)
 *
 * Thread A grows 64 MiB blocks to 200 MiB (mremap moves them: the space
 * above is taken); thread B maps 64 MiB blocks, which the kernel's top-down
 * search often places in the range A just vacated.
 *
 *   gcc -O2 -Iinclude tests/fuzz/crashes/huge-realloc-stale-entry.c \
 *     build/libpcmalloc.a -lpthread -o /tmp/stale && /tmp/stale 10
 * Exit 1 and "lost page-map entry of live block" lines when reproduced
 * (about 2 per second on the 2-core CI machine).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "pcmalloc.h"
#define MiB ((size_t)1 << 20)
static atomic_int stop;
static atomic_long lost, moves, hits;
static void *grower(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = pc_malloc(64 * MiB);
		char *q = pc_realloc(p, 200 * MiB);
		if (q != p)
			atomic_fetch_add(&moves, 1);
		pc_free(q);
	}
	return NULL;
}
static void *mapper(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = pc_malloc(64 * MiB);
		for (volatile int i = 0; i < 2000; i++)
			;
		if (pc_malloc_usable_size(p) == 0) {
			atomic_fetch_add(&lost, 1);
			fprintf(stderr, "lost page-map entry of live block "
			    "%p\n", (void *)p);
		} else
			pc_free(p);
		atomic_fetch_add(&hits, 1);
	}
	return NULL;
}
int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 10;
	pthread_t a, b;
	pthread_create(&a, NULL, grower, NULL);
	pthread_create(&b, NULL, mapper, NULL);
	sleep(secs);
	atomic_store(&stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	unsigned long long n = 0;
	pc_stat_get("nhuge", &n);
	fprintf(stderr, "moves %ld, mapper rounds %ld, lost entries %ld, "
	    "nhuge %llu\n",
	    atomic_load(&moves), atomic_load(&hits), atomic_load(&lost), n);
	return atomic_load(&lost) != 0;
}
