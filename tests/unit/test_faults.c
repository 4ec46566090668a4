/* Fault injection: the n-th OS mapping request fails, for every n along a
 * sequence that touches each allocation path (metadata, page-map leaves,
 * small refill, large, huge, aligned, realloc by remap, calloc).  Every
 * failure must come back as NULL with ENOMEM, leave earlier blocks intact
 * and the heap consistent, and allocation must work again afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "os.h"
#include "pcmalloc.h"

#define NBLOCKS 64

static int failures;

static void *
attempt(void *p, size_t size)
{
	if (p == NULL) {
		if (errno != ENOMEM) {
			fprintf(stderr, "NULL without ENOMEM (size %zu)\n", size);
			exit(3);
		}
		failures++;
		return NULL;
	}
	memset(p, (int)(size & 0xff), size < 65536 ? size : 65536);
	return p;
}

/* One pass over every path; returns how many requests failed. */
static int
sequence(void **keep)
{
	failures = 0;
	int k = 0;
	size_t sizes[] = { 24, 3000, 30000, 100000, 3 << 20, 9 << 20, (size_t)70 << 20 };
	for (size_t i = 0; i < 7; i++) {
		errno = 0;
		keep[k++] = attempt(pc_malloc(sizes[i]), sizes[i]);
	}
	errno = 0;
	keep[k++] = attempt(pc_calloc(1, 200000), 200000);
	errno = 0;
	keep[k++] = attempt(pc_aligned_alloc(1 << 21, 5000), 5000);
	errno = 0;
	keep[k++] = attempt(pc_aligned_alloc(1 << 24, 1 << 20), 1 << 20);
	/* Grow a huge block: remap (or copy) may fail; the old block must
	 * then stay intact. */
	char *h = pc_malloc((size_t)70 << 20);
	if (h != NULL) {
		memset(h, 0x77, (size_t)70 << 20);
		errno = 0;
		char *g = pc_realloc(h, (size_t)140 << 20);
		if (g == NULL) {
			if (errno != ENOMEM)
				exit(4);
			failures++;
			g = h;
		}
		for (size_t i = 0; i < ((size_t)70 << 20); i += 4093)
			if (g[i] != 0x77)
				exit(5);
		keep[k++] = g;
	} else {
		failures++;
		keep[k++] = NULL;
	}
	/* Enough small objects of many classes to need fresh slabs and
	 * regions. */
	for (int i = 0; i < 40; i++) {
		errno = 0;
		size_t size = 16 + (size_t)i * 800;
		keep[k++] = attempt(pc_malloc(size), size);
	}
	return failures;
}

static void
release(void **keep)
{
	for (int i = 0; i < NBLOCKS; i++) {
		pc_free(keep[i]);
		keep[i] = NULL;
	}
}

static int
child(unsigned long n)
{
	void *a[NBLOCKS] = { 0 }, *b[NBLOCKS] = { 0 };
	os_fail_reserve_after(n);
	int failed = sequence(a);
	os_fail_reserve_after(0);
	if (pc_check() != 0)
		return 6;
	/* Mapping works again: everything succeeds now. */
	if (sequence(b) != 0)
		return 7;
	release(a);
	release(b);
	if (pc_check() != 0)
		return 8;
	return failed > 0 ? 0 : 9;	/* 9: the n-th request never came */
}

static void
test_every_failure_point(void **state)
{
	(void)state;
	int reached = 0;
	for (unsigned long n = 1; n <= 40; n++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char arg[24];
			snprintf(arg, sizeof(arg), "%lu", n);
			execl("/proc/self/exe", "test_faults", arg, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st))
			fail_msg("failure point %lu: child died (status %d)", n,
			    st);
		if (WEXITSTATUS(st) == 9)
			break;	/* past the last mapping of the sequence */
		if (WEXITSTATUS(st) != 0)
			fail_msg("failure point %lu: child exit %d", n,
			    WEXITSTATUS(st));
		reached++;
	}
	assert_true(reached >= 5);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(strtoul(argv[1], NULL, 10));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_failure_point),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
