/*
 * Run with LD_PRELOAD=libpcmalloc.so: dlopen/dlclose a module 100 times.
 * The module mallocs in its constructor and frees in its destructor; the
 * main program frees blocks the module allocated and vice versa; threads
 * touch the module's dynamic TLS (allocated and freed through malloc by
 * ld.so).  Catches: allocations made during library loading/unloading
 * (ld.so, constructors, destructors, dynamic TLS) going to a different
 * heap, or breaking pcmalloc's own state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*take_fn)(void **, size_t *);
typedef int (*check_fn)(const void *, size_t, unsigned char);
typedef void *(*alloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef int (*tls_fn)(int);

static tls_fn mod_tls;

static void *
tls_thread(void *arg)
{
	int v = (int)(long)arg;
	int r = mod_tls(v);
	void *p = malloc(100);
	free(p);
	return (void *)(long)(r == v + v);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s module.so\n", argv[0]);
		return 2;
	}
	for (int iter = 0; iter < 100; iter++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (h == NULL) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		take_fn take = (take_fn)dlsym(h, "mod_take");
		check_fn chk = (check_fn)dlsym(h, "mod_check_byte");
		alloc_fn al = (alloc_fn)dlsym(h, "mod_alloc");
		free_fn fr = (free_fn)dlsym(h, "mod_free");
		mod_tls = (tls_fn)dlsym(h, "mod_tls");
		if (!take || !chk || !al || !fr || !mod_tls) {
			fprintf(stderr, "dlsym failed\n");
			return 1;
		}
		void *blocks[64];
		size_t sizes[64];
		int n = take(blocks, sizes);
		for (int i = 0; i < n; i++) {
			for (size_t j = 0; j < sizes[i]; j++)
				if (!chk(blocks[i], j,
				    ((unsigned char *)blocks[i])[j])) {
					fprintf(stderr, "module block corrupt\n");
					return 1;
				}
			free(blocks[i]);	/* module's block, freed by main */
		}
		/* main's blocks freed by the module and vice versa */
		for (int i = 0; i < 50; i++) {
			void *p = malloc((size_t)i * 100 + 1);
			memset(p, i, (size_t)i * 100 + 1);
			fr(p);
			void *q = al((size_t)i * 300 + 1);
			memset(q, i, (size_t)i * 300 + 1);
			free(q);
		}
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, tls_thread,
			    (void *)(long)(i + 1)) != 0)
				return 1;
		for (int i = 0; i < 4; i++) {
			void *ok;
			pthread_join(t[i], &ok);
			if (!ok) {
				fprintf(stderr, "module TLS broken\n");
				return 1;
			}
		}
		if (dlclose(h) != 0) {
			fprintf(stderr, "dlclose: %s\n", dlerror());
			return 1;
		}
	}
	printf("dlopen ok\n");
	return 0;
}
