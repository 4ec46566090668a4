/*
 * Run under LD_PRELOAD=libpcmalloc.so (this program is not linked with
 * pcmalloc) by test_doc_preload.  Its first malloc runs from
 * .preinit_array, before any constructor, libc's included: `environ` is
 * still NULL there, so pcmalloc must find PCMALLOC_CONF on the initial
 * process stack.  Prints what it saw; exits 0 only when the first malloc
 * really ran without `environ` and narenas is the 3 the test asks for.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

static int environ_was_null = -1;
static int early_malloc_ok;

static void
early(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	environ_was_null = environ == NULL;
	void *volatile p = malloc(24);
	early_malloc_ok = p != NULL;
	free(p);
}

__attribute__((section(".preinit_array"), used))
static void (*const doc_preinit)(int, char **, char **) = early;

int
main(void)
{
	int (*stat_get)(const char *, unsigned long long *) =
	    (int (*)(const char *, unsigned long long *))dlsym(RTLD_DEFAULT,
	    "pc_stat_get");
	if (stat_get == NULL) {
		fprintf(stderr, "pc_stat_get not found: pcmalloc not "
		    "preloaded\n");
		return 2;
	}
	unsigned long long narenas = 0;
	if (stat_get("narenas", &narenas) != 0)
		return 3;
	printf("environ at the first malloc: %s\n", environ_was_null == 1 ?
	    "NULL" : environ_was_null == 0 ? "set" : "preinit never ran");
	printf("early malloc %s\n", early_malloc_ok ? "ok" : "failed");
	printf("narenas %llu\n", narenas);
	fflush(stdout);
	return environ_was_null == 1 && early_malloc_ok && narenas == 3 ?
	    0 : 1;
}
