/*
 * probe: prints which shared object provides malloc in this process, so
 * the runner can check that an LD_PRELOAD really took effect (ld.so only
 * warns and carries on when a preload fails).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	void *(*volatile fn)(size_t) = malloc;
	Dl_info info;
	void *p = fn(100);
	free(p);
	if (!dladdr((void *)fn, &info) || !info.dli_fname) {
		puts("malloc-from: unknown");
		return 1;
	}
	printf("malloc-from: %s\n", info.dli_fname);
	return 0;
}
