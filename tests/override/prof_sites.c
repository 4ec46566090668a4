/*
 * A program with known allocation sites for the heap profiler test
 * (test_prof.sh), run under LD_PRELOAD with the profiler on:
 *   site_big     80 MiB in 1000-byte blocks, kept      (10x site_small)
 *   site_small    8 MiB in 100-byte blocks, kept
 *   site_freed   16 MiB in 500-byte blocks, freed before the dump
 *   site_peak    48 MiB in 64 KiB blocks on top of the above, freed at
 *                once: only the peak profile holds it
 *   site_thread   8 threads x 1 MiB, kept after the threads exit
 *   site_child   in a fork child, which dumps its own profile
 * pc_prof_dump is looked up with dlsym (the program is not linked with
 * pcmalloc).  Usage: prof_sites DIR
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1u << 20)

void *volatile sink;	/* keeps the compiler from dropping allocations */
static void **keep;
static size_t nkeep;

static void
hold(void *p)
{
	if (p == NULL)
		abort();
	memset(p, 1, 8);
	keep[nkeep++] = p;
}

__attribute__((noinline)) void
site_big(void)
{
	for (size_t i = 0; i < 80 * MIB / 1000; i++)
		hold(malloc(1000));
}

__attribute__((noinline)) void
site_small(void)
{
	for (size_t i = 0; i < 8 * MIB / 100; i++)
		hold(malloc(100));
}

__attribute__((noinline)) void
site_freed(void)
{
	static void *tmp[16 * MIB / 500];
	for (size_t i = 0; i < 16 * MIB / 500; i++)
		tmp[i] = malloc(500);
	for (size_t i = 0; i < 16 * MIB / 500; i++)
		free(tmp[i]);
}

__attribute__((noinline)) void
site_peak(void)
{
	static void *tmp[48 * 16];
	for (size_t i = 0; i < 48 * 16; i++) {
		tmp[i] = malloc(64 << 10);
		memset(tmp[i], 2, 64);
	}
	for (size_t i = 0; i < 48 * 16; i++)
		free(tmp[i]);
}

static void *thread_blocks[8][1024];

__attribute__((noinline)) void *
site_thread(void *arg)
{
	void **b = arg;
	for (int i = 0; i < 1024; i++)
		b[i] = malloc(1024);
	sink = b[0];
	return NULL;
}

__attribute__((noinline)) void
site_child(void)
{
	for (size_t i = 0; i < 4 * MIB / 256; i++)
		hold(malloc(256));
}

int
main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT,
	    "pc_prof_dump");
	if (dump == NULL) {
		fprintf(stderr, "pc_prof_dump not found: not preloaded?\n");
		return 1;
	}
	keep = calloc(200000, sizeof(void *));
	site_big();
	site_small();
	site_freed();
	site_peak();	/* on top of big and small: the peak */
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, site_thread, thread_blocks[i]);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	char path[4096];
	snprintf(path, sizeof(path), "%s/final.heap", argv[1]);
	if (dump(path) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/final.pb", argv[1]);
	if (dump(path) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/final.folded", argv[1]);
	if (dump(path) != 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		site_child();
		snprintf(path, sizeof(path), "%s/child.pb", argv[1]);
		_exit(dump(path) != 0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return 1;
	puts("ok");
	return 0;
}
