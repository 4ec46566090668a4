/* The first request of a process runs before the allocator is initialised;
 * it once got a block from the wrong (uninitialised) size class.  Each mode
 * runs in its own process so its call really is the first. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "pcmalloc.h"

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "malloc";
	size_t size = 1000, align = 16;
	void *p;
	if (strcmp(mode, "malloc") == 0)
		p = malloc(size);
	else if (strcmp(mode, "calloc") == 0)
		p = calloc(1, size);
	else if (strcmp(mode, "memalign") == 0) {
		align = 64;
		p = memalign(align, size);
	}
	else if (strcmp(mode, "realloc") == 0)
		p = realloc(NULL, size);
	else
		p = malloc(100000);
	if (p == NULL || malloc_usable_size(p) < size ||
	    ((uintptr_t)p & (align - 1)) != 0) {
		fprintf(stderr, "%s: first block %p usable %zu: want %zu bytes "
		    "aligned to %zu\n", mode, p,
		    p ? malloc_usable_size(p) : 0, size, align);
		return 1;
	}
	memset(p, 1, size);
	free(p);
	return 0;
}
