/*
 * dlopen() libpcmalloc.so itself into a running program (not preloaded):
 * the pc_* API must work through dlsym, from several threads (threads that
 * existed before the library was loaded, too), and the program's own
 * malloc (glibc's, bound at startup) must keep working.  Catches:
 * initial-exec TLS that does not fit the static TLS surplus ("cannot
 * allocate memory in static TLS block"), initialisation that assumes the
 * library was loaded at startup, and teardown problems at dlclose/exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef size_t (*usable_fn)(void *);

static malloc_fn pcm;
static free_fn pcf;
static usable_fn pcu;
static pthread_barrier_t loaded;

static void *
worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&loaded);	/* thread predates the dlopen */
	void *v[256];
	for (int r = 0; r < 200; r++) {
		for (int i = 0; i < 256; i++) {
			size_t n = (size_t)(i * 37 + r) % 20000 + 1;
			v[i] = pcm(n);
			if (v[i] == NULL || pcu(v[i]) < n)
				return (void *)1;
			memset(v[i], i, n);
		}
		for (int i = 0; i < 256; i++)
			pcf(v[i]);
	}
	void *g = malloc(1000);	/* glibc's, untouched */
	free(g);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pthread_t t[4];
	pthread_barrier_init(&loaded, NULL, 5);
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, worker, NULL) != 0)
			return 1;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
		return 1;
	}
	pcm = (malloc_fn)dlsym(h, "pc_malloc");
	pcf = (free_fn)dlsym(h, "pc_free");
	pcu = (usable_fn)dlsym(h, "pc_malloc_usable_size");
	if (!pcm || !pcf || !pcu) {
		fprintf(stderr, "dlsym failed\n");
		return 1;
	}
	pthread_barrier_wait(&loaded);
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	void *p = pcm(12345);
	if (p == NULL || pcu(p) < 12345)
		bad = 1;
	pcf(p);
	char *s = strdup("glibc still works");
	free(s);
	dlclose(h);
	if (bad)
		fprintf(stderr, "pc_* misbehaved after dlopen\n");
	else
		printf("dlopen of the library ok\n");
	return bad;
}
