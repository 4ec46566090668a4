/*
 * A program built against an installed pcmalloc.  It checks that it really
 * runs on pcmalloc: the library's version is the expected one, and blocks
 * from malloc, calloc, realloc and from inside libc (strdup) belong to
 * pcmalloc.  Usage: consumer VERSION shared|static
 * Prints, on success, "ok ..." and the file that provides malloc.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcmalloc.h>

#ifndef EXPECT_OVERRIDE
#define EXPECT_OVERRIDE 1
#endif

static int failures;

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "consumer: FAILED: %s\n", what);
		failures++;
	}
}

/* 1 if /proc/self/maps maps a file whose name contains name. */
static int
mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, name) != NULL)
			found = 1;
	fclose(f);
	return found;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: consumer VERSION shared|static\n");
		return 2;
	}
	const char *version = argv[1];
	int shared = strcmp(argv[2], "shared") == 0;

	check(strcmp(pc_version(), version) == 0, "pc_version() == VERSION");
	check(strcmp(PCMALLOC_VERSION, version) == 0,
	    "PCMALLOC_VERSION == VERSION");

	/* The prefixed API works in any build. */
	void *q = pc_malloc(100);
	check(q != NULL && pc_malloc_usable_size(q) >= 100, "pc_malloc");
	pc_free(q);

	if (EXPECT_OVERRIDE) {
		void *p = malloc(1);
		size_t n = pc_malloc_usable_size(p);
		check(n != 0, "malloc(1) comes from pcmalloc");
		check(malloc_usable_size(p) == n,
		    "malloc_usable_size agrees with pc_malloc_usable_size");
		p = realloc(p, 5000);
		check(pc_malloc_usable_size(p) >= 5000, "realloc");
		free(p);
		p = calloc(10, 10);
		check(pc_malloc_usable_size(p) >= 100, "calloc");
		free(p);
		/* libc's own calls to malloc reach pcmalloc too */
		char *s = strdup("pcmalloc");
		check(pc_malloc_usable_size(s) != 0, "strdup (libc) uses pcmalloc");
		free(s);
		q = pc_malloc(10);
		free(q);		/* pc_* and standard names mix */
	}

	Dl_info info;
	const char *from = "?";
	if (dladdr((void *)pc_malloc, &info) != 0 && info.dli_fname != NULL)
		from = info.dli_fname;
	if (shared)
		check(mapped("libpcmalloc.so") == 1, "libpcmalloc.so is mapped");
	else
		check(mapped("libpcmalloc.so") == 0,
		    "static: libpcmalloc.so is not mapped");
	if (failures != 0)
		return 1;
	printf("ok pcmalloc %s %s override=%d\n", pc_version(), argv[2],
	    EXPECT_OVERRIDE);
	printf("from %s\n", from);
	return 0;
}
