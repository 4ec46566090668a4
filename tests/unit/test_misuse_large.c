/* Misuse of large and huge blocks, and overflows towards metadata (issue
 * #11).  Each case runs in a child: by default its report on stderr and
 * SIGABRT; with abort_on_error:false the report, and a heap that is still
 * consistent (pc_check) and hands out no block twice.  The races free one
 * block from two threads at once, many times, while a third trims: exactly
 * one free may succeed each time.  An overflow out of a huge block must
 * fault on a guard page before it reaches a page-map leaf. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "pcmalloc.h"
#include "arena.h"
#include "pagemap.h"
#include "run_self.h"

#define MiB ((size_t)1 << 20)
#define LARGE_SIZE ((size_t)100000)
#define HUGE_SIZE ((size_t)80 << 20)
#define ROUNDS 200

/* ---- The heap after misuse (warn-only mode) ---------------------------- */

/* Consistent, and new large blocks neither overlap each other nor live
 * block `live` (of `live_size` bytes, filled with 0x5a). */
static int
heap_ok(const unsigned char *live, size_t live_size)
{
	if (pc_check() != 0)
		return 10;
	unsigned char *b[24];
	size_t sz[24];
	for (int i = 0; i < 24; i++) {
		sz[i] = (size_t)20000 + (size_t)i * 45000;
		b[i] = malloc(sz[i]);
		if (b[i] == NULL)
			return 11;
		memset(b[i], i + 1, sz[i]);
	}
	for (int i = 0; i < 24; i++)
		for (size_t k = 0; k < sz[i]; k += 997)
			if (b[i][k] != i + 1)
				return 12;	/* overlapped by another */
	for (size_t k = 0; live != NULL && k < live_size; k += 997)
		if (live[k] != 0x5a)
			return 13;
	for (int i = 0; i < 24; i++)
		free(b[i]);
	return pc_check() != 0 ? 14 : 0;
}

/* ---- Two threads freeing one block ------------------------------------- */

static struct {
	void *p;
	atomic_int round;
	atomic_int done;
	atomic_int stop;
} race;

static void *
race_freer(void *arg)
{
	(void)arg;
	for (int r = 1; r <= ROUNDS; r++) {
		while (atomic_load(&race.round) < r)
			sched_yield();
		free(race.p);
		atomic_fetch_add(&race.done, 1);
	}
	return NULL;
}

static void *
race_trimmer(void *arg)
{
	(void)arg;
	while (!atomic_load(&race.stop))
		malloc_trim(0);
	return NULL;
}

static int
race_free(size_t size)
{
	alarm(120);	/* a heap corrupted by a race may hang: fail instead */
	/* A live neighbour keeps the region mapped (narenas:1): the second
	 * free then always finds the block's pages, freed. */
	unsigned char *keep = malloc(size);
	memset(keep, 0x5a, size);
	pthread_t t[3];
	pthread_create(&t[0], NULL, race_freer, NULL);
	pthread_create(&t[1], NULL, race_freer, NULL);
	pthread_create(&t[2], NULL, race_trimmer, NULL);
	for (int r = 1; r <= ROUNDS; r++) {
		race.p = malloc(size);
		memset(race.p, 1, 4096);
		atomic_store(&race.round, r);
		while (atomic_load(&race.done) < 2 * r)
			sched_yield();
	}
	atomic_store(&race.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	return heap_ok(keep, size);
}

/* ---- An overflow out of a huge block ----------------------------------- */

/* The lowest page-map leaf at or above `a`, or NULL. */
static uintptr_t
leaf_above(uintptr_t a)
{
	uintptr_t best = 0;
	for (size_t i = 0; i < PM_ROOT_LEN; i++) {
		uintptr_t l = (uintptr_t)pagemap_root[i];
		if (l >= a && (best == 0 || l < best))
			best = l;
	}
	return best;
}

/*
 * The layout the issue reproduced: a huge block mapped right below a
 * page-map leaf (the leaf of the block before it, mapped after it).  Map
 * huge blocks until one ends within 2 MiB of a leaf, then write from its
 * end upwards: the child must die on a guard page, not rewrite the leaf.
 */
static int
overflow(void)
{
	for (int i = 0; i < 48; i++) {
		unsigned char *h = malloc((size_t)64 * MiB);
		if (h == NULL)
			return 20;
		uintptr_t end = (uintptr_t)h + 64 * MiB;
		uintptr_t leaf = leaf_above(end);
		if (leaf == 0 || leaf - end > 2 * MiB)
			continue;
		for (volatile unsigned char *q = (unsigned char *)end;
		    (uintptr_t)q < end + 2 * MiB; q++)
			*q = 0xa5;
		return 21;	/* no fault: the leaf was overwritten */
	}
	return 22;	/* the layout never came up */
}

/* ---- Children ------------------------------------------------------- */

static int
child(const char *mode)
{
	if (strcmp(mode, "race_large") == 0)
		return race_free(LARGE_SIZE);
	if (strcmp(mode, "race_huge") == 0)
		return race_free(HUGE_SIZE);
	if (strcmp(mode, "overflow") == 0)
		return overflow();
	if (strcmp(mode, "mmap_over_freed_huge") == 0) {
		/* The program maps memory where a freed huge block was: a
		 * free of it is foreign (not ours), not a double free. */
		char *p = malloc(HUGE_SIZE);
		free(p);
		malloc_trim(0);	/* its mapping is unmapped, not kept */
		void *q = mmap(p, HUGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (q != p)
			return 40;
		free(q);	/* foreign: reported, ignored */
		munmap(q, HUGE_SIZE);
		free(p);	/* unmapped again: a double free, fatal */
		return 41;
	}
	unsigned char *live = malloc(LARGE_SIZE);
	memset(live, 0x5a, LARGE_SIZE);
	if (strcmp(mode, "huge_interior") == 0) {
		char *p = malloc(HUGE_SIZE);
		free(p + 4096);
		free(p);	/* still live: freed without a report */
	} else if (strcmp(mode, "huge_double") == 0) {
		char *p = malloc(HUGE_SIZE);
		free(p);
		free(p);
	} else if (strcmp(mode, "sized_large") == 0) {
		pc_free_sized(malloc(LARGE_SIZE), LARGE_SIZE);	/* right */
		pc_free_sized(malloc(LARGE_SIZE), (size_t)1 << 40);
	} else if (strcmp(mode, "sized_large_small") == 0) {
		pc_free_sized(malloc(LARGE_SIZE), 20000);
	} else if (strcmp(mode, "sized_huge") == 0) {
		pc_free_sized(malloc(HUGE_SIZE), HUGE_SIZE);	/* right */
		pc_free_sized(malloc(HUGE_SIZE), HUGE_SIZE - MiB);
	} else if (strcmp(mode, "realloc_interior") == 0) {
		char *p = malloc(LARGE_SIZE);
		errno = 0;
		if (realloc(p + 4096, 5000) != NULL || errno != EINVAL)
			return 30;
		char *h = malloc(HUGE_SIZE);
		errno = 0;
		if (realloc(h + 8 * MiB, 5000) != NULL || errno != EINVAL)
			return 31;
		free(h);
		free(p);
	} else if (strcmp(mode, "usable_interior") == 0) {
		char *p = malloc(LARGE_SIZE);
		char *h = malloc(HUGE_SIZE);
		if (malloc_usable_size(p + 4096) != 0 ||
		    malloc_usable_size(h + 4096) != 0 ||
		    malloc_usable_size(h + 8 * MiB) != 0)
			return 32;
		free(p);
		free(h);
		if (malloc_usable_size(p) != 0 || malloc_usable_size(h) != 0)
			return 33;
	} else {
		return 99;
	}
	return heap_ok(live, LARGE_SIZE);
}

/* ---- Parent ----------------------------------------------------------- */

static unsigned
count(const char *s, const char *what)
{
	unsigned n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p++)
		n++;
	return n;
}

/*
 * Run `mode`: by default the report and SIGABRT; with abort_on_error:false
 * (and `conf`) `reports` reports of `message` and no other, and a heap in
 * good order (exit 0).
 */
static void
expect(const char *mode, const char *conf, const char *message,
    unsigned reports)
{
	static char err[1 << 16];
	char c[128];
	int st;
	snprintf(c, sizeof(c), "%s%s", conf ? conf : "", conf ? "," : "");
	run_self(mode, conf, &st, err, sizeof(err));
	if (strstr(err, message) == NULL)
		fail_msg("%s: no \"%s\" in stderr: %.2000s", mode, message,
		    err);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
		fail_msg("%s: expected an abort, status %#x", mode, st);
	strcat(c, "abort_on_error:false");
	run_self(mode, c, &st, err, sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s (warn): expected exit 0, status %#x: %.2000s",
		    mode, st, err);
	unsigned n = count(err, message), all = count(err, "pcmalloc: ");
	if (n != reports || all != reports)
		fail_msg("%s (warn): %u reports of \"%s\" (%u in all), "
		    "expected %u: %.2000s", mode, n, message, all, reports,
		    err);
}

static void test_race_large(void **s) { (void)s; expect("race_large", "narenas:1", "pcmalloc: double free of 0x", ROUNDS); }
/* As race_large, but the late free may come after some other mapping
 * (pcmalloc's own metadata or anyone's) took the freed range's place: it
 * is then memory pcmalloc does not own, reported as a foreign pointer and
 * left alone.  Either way exactly one report per round, nothing freed
 * twice. */
static void
test_race_huge(void **state)
{
	(void)state;
	static char err[1 << 16];
	int st;
	run_self("race_huge", "narenas:1", &st, err, sizeof(err));
	if (strstr(err, "pcmalloc: double free of 0x") == NULL ||
	    !WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
		fail_msg("race_huge: expected a double free report and an "
		    "abort, status %#x: %.2000s", st, err);
	run_self("race_huge", "narenas:1,abort_on_error:false", &st, err,
	    sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("race_huge (warn): status %#x: %.2000s", st, err);
	unsigned dbl = count(err, "pcmalloc: double free of 0x");
	unsigned foreign = count(err, "pcmalloc: free of foreign pointer 0x");
	unsigned all = count(err, "pcmalloc: ");
	if (dbl + foreign != ROUNDS || all != ROUNDS || dbl < ROUNDS / 2)
		fail_msg("race_huge (warn): %u double frees, %u foreign, %u "
		    "reports in all; want %u in all: %.2000s", dbl, foreign,
		    all, ROUNDS, err);
}
static void test_huge_interior(void **s) { (void)s; expect("huge_interior", NULL, "pcmalloc: free of a pointer inside a block, 0x", 1); }
static void test_huge_double(void **s) { (void)s; expect("huge_double", NULL, "pcmalloc: double free of 0x", 1); }
/* Reports of large and huge misuse name the caller too. */
static void test_large_caller(void **s) { (void)s; expect("huge_double", NULL, ", called from 0x", 1); expect("sized_large_small", NULL, ", called from 0x", 1); }
static void test_sized_large(void **s) { (void)s; expect("sized_large", NULL, "pcmalloc: free_sized with a wrong size of 0x", 1); }
static void test_sized_large_small(void **s) { (void)s; expect("sized_large_small", NULL, "pcmalloc: free_sized with a wrong size of 0x", 1); }
static void test_sized_huge(void **s) { (void)s; expect("sized_huge", NULL, "pcmalloc: free_sized with a wrong size of 0x", 1); }
static void test_realloc_interior(void **s) { (void)s; expect("realloc_interior", NULL, "pcmalloc: realloc of a pointer inside a block, 0x", 2); }

/* malloc_usable_size of interior and freed large and huge pointers: 0,
 * and reported like free (5 calls: 3 interior, 2 freed). */
static void
test_usable_interior(void **state)
{
	(void)state;
	/* Without a purging thread, whose start (at the huge free: its
	 * kept mapping) would allocate on the freed large block's page. */
	expect("usable_interior", "background_thread:off",
	    "pcmalloc: malloc_usable_size of ", 5);
}

static void
test_overflow(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("overflow", NULL, &st, err, sizeof(err));
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		fail_msg("expected SIGSEGV, status %#x (exit %d): %s", st,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1, err);
}

/* The mapping of /proc/self/maps that holds a, with its neighbours' ends
 * and permissions. */
static bool
mapping_of(uintptr_t a, char perm[5], char below[5], uintptr_t *below_end,
    char above[5], uintptr_t *above_start, uintptr_t *lo, uintptr_t *hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[512], prev_perm[5] = "";
	uintptr_t prev_end = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long s, e;
		char p[5];
		if (sscanf(line, "%lx-%lx %4s", &s, &e, p) != 3)
			continue;
		if (found) {
			strcpy(above, p);
			*above_start = s;
			break;
		}
		if (a >= s && a < e) {
			found = true;
			strcpy(perm, p);
			strcpy(below, prev_perm);
			*below_end = prev_end;
			*lo = s;
			*hi = e;
			strcpy(above, "");
			*above_start = 0;
		}
		strcpy(prev_perm, p);
		prev_end = e;
	}
	fclose(f);
	return found;
}

static void
assert_guarded(const void *meta, const char *what)
{
	char perm[5], below[5], above[5];
	uintptr_t below_end, above_start, lo, hi;
	if (!mapping_of((uintptr_t)meta, perm, below, &below_end, above,
	    &above_start, &lo, &hi))
		fail_msg("%s %p: not mapped", what, meta);
	if (strcmp(below, "---p") != 0 || below_end != lo ||
	    strcmp(above, "---p") != 0 || above_start != hi)
		fail_msg("%s %p in %s %#lx-%#lx: neighbours %s (ends %#lx) "
		    "and %s (starts %#lx), not guard pages", what, meta, perm,
		    (unsigned long)lo, (unsigned long)hi, below,
		    (unsigned long)below_end, above,
		    (unsigned long)above_start);
}

/* Every kind of metadata mapping sits between two inaccessible pages. */
/* A recently freed huge range that the program has mapped for itself is
 * foreign memory, reported and left alone; once unmapped, the same
 * address freed again is a double free. */
static void
test_mmap_over_freed_huge(void **state)
{
	(void)state;
	static char err[1 << 16];
	int st;
	run_self("mmap_over_freed_huge", NULL, &st, err, sizeof(err));
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
		fail_msg("expected an abort at the double free, status %#x: "
		    "%.2000s", st, err);
	assert_int_equal(count(err, "pcmalloc: free of foreign pointer"), 1);
	assert_int_equal(count(err, "pcmalloc: double free of 0x"), 1);
}

static void
test_guards(void **state)
{
	(void)state;
	void *h = malloc(HUGE_SIZE);
	void *l = malloc(LARGE_SIZE);
	assert_non_null(h);
	assert_non_null(l);
	assert_guarded(arenas, "arenas (base chunk)");
	assert_guarded((void *)pagemap_span(pagemap_lookup(l)),
	    "span of a large block (base chunk)");
	uintptr_t a = (uintptr_t)h;
	assert_guarded(pagemap_root[a >> (PC_PAGE_SHIFT + PM_LEAF_BITS)],
	    "page-map leaf");
	unsigned long long guard = 0, mapped = 0;
	assert_int_equal(pc_stat_get("metadata_guard", &guard), 0);
	assert_int_equal(pc_stat_get("mapped", &mapped), 0);
	assert_true(guard >= 3 * 2 * 4096);
	assert_true(mapped > guard);
	free(h);
	free(l);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_interior),
		cmocka_unit_test(test_huge_double),
		cmocka_unit_test(test_large_caller),
		cmocka_unit_test(test_sized_large),
		cmocka_unit_test(test_sized_large_small),
		cmocka_unit_test(test_sized_huge),
		cmocka_unit_test(test_realloc_interior),
		cmocka_unit_test(test_usable_interior),
		cmocka_unit_test(test_mmap_over_freed_huge),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_race_large),
		cmocka_unit_test(test_race_huge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
