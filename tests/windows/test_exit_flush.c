/*
 * The main thread's cache at process exit.  The FLS callback runs for the
 * main thread too, after main returns and the CRT's atexit work, before
 * DLL_PROCESS_DETACH.  The helper DLL exit_check.dll checks then that
 * "allocated" is back to what it was before main filled its cache.
 * Catches: the exit hook not firing for the main thread (its cache would
 * stay counted).  The verdict is printed ("exit-flush ok"): the exit code
 * is decided before DLLs detach.  expect_output.cmake matches it and
 * requires exit code 0 too (a crash after the verdict fails).
 */
#include "win_common.h"

void exit_check_arm(unsigned long long (*fn)(void), unsigned long long max);

static unsigned long long
allocated_probe(void)
{
	unsigned long long v = ~0ull;
	pc_stat_get("allocated", &v);
	return v;
}

int
main(void)
{
	unsigned long long baseline = allocated_now();
	static const size_t sizes[] = { 16, 64, 200, 512, 1024, 3000, 8000 };
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		void *v[128];
		for (int i = 0; i < 128; i++)
			v[i] = malloc(opaque(sizes[s]));
		for (int i = 0; i < 128; i++)
			free(v[i]);
	}
	unsigned long long full = pc_stat("allocated");
	printf("baseline %llu, with the main thread's cache full %llu\n",
	    baseline, full);
	if (full < baseline + 100 * KiB) {
		printf("exit-flush FAILED: the cache holds too little to tell\n");
		return 1;
	}
	fflush(stdout);
	/* The CRT frees and allocates a little while it shuts down. */
	exit_check_arm(allocated_probe, baseline + 64 * KiB);
	return 0;
}
