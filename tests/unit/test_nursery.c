/* The start-up nursery (src/nursery.h): a process's first small blocks are
 * packed together, are real blocks for free, realloc, malloc_usable_size
 * and free_sized, are never handed out twice, and every misuse of them is
 * reported.  Each case runs in a fresh child (run_self), where the
 * nursery is still open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "pcmalloc.h"
#include "run_self.h"
#include "nursery.h"
#include "pagemap.h"

void free_sized(void *p, size_t size);

static void *volatile sink;

/* Exit codes of the children name the failed check. */
#define CHECK(c, code) do { if (!(c)) { fprintf(stderr, "check %d failed " \
	"at line %d\n", code, __LINE__); _exit(code); } } while (0)

static unsigned long long
stat_of(const char *name)
{
	unsigned long long v = 0;
	pc_stat_get(name, &v);
	return v;
}

/* Sizes from 1 byte to NURSERY_MAX go one after another, each rounded up
 * to 16 bytes; their usable sizes say so (blocks that start and end in
 * different words of the nursery's bitmaps too: 1030 and 1024 bytes are
 * 65 and 64 granules), they hold what is written, and they count in the
 * statistics; a request over NURSERY_MAX, and an aligned one, do not come
 * from the nursery. */
#define NPACKED 12
static int
child_packed(void)
{
	static const size_t sizes[NPACKED] = { 1, 0, 24, 100, 16, 4096, 33,
	    700, NURSERY_MAX, 1030, 1024, NURSERY_MAX - 1 };
	void *v[NPACKED];
	unsigned long long before = stat_of("allocated");
	for (int i = 0; i < NPACKED; i++) {
		v[i] = malloc(sizes[i]);
		CHECK(v[i] != NULL && nursery_owns(v[i]), 1);
		CHECK(pagemap_lookup(v[i]) == 0, 2);
		CHECK(malloc_usable_size(v[i]) == nursery_usable(sizes[i]), 3);
		memset(v[i], i + 1, malloc_usable_size(v[i]));
		if (i > 0)
			CHECK((char *)v[i] == (char *)v[i - 1] +
			    nursery_usable(sizes[i - 1]), 4);
	}
	size_t sum = 0;
	for (int i = 0; i < NPACKED; i++) {
		sum += nursery_usable(sizes[i]);
		for (size_t j = 0; j < malloc_usable_size(v[i]); j++)
			CHECK(((unsigned char *)v[i])[j] == i + 1, 5);
	}
	CHECK(stat_of("allocated") - before == sum, 6);
	void *big = malloc(NURSERY_MAX + 1);
	CHECK(big != NULL && !nursery_owns(big), 7);
	void *al = aligned_alloc(64, 64);
	CHECK(al != NULL && !nursery_owns(al) && (uintptr_t)al % 64 == 0, 8);
	void *c = calloc(10, 10);
	CHECK(c != NULL && nursery_owns(c), 9);
	for (int i = 0; i < 100; i++)
		CHECK(((unsigned char *)c)[i] == 0, 10);
	unsigned long long mid = stat_of("allocated");
	for (int i = 0; i < NPACKED; i++)
		free(v[i]);
	CHECK(mid - stat_of("allocated") == sum, 11);
	free(big);
	free(al);
	free(c);
	return 0;
}

/* The nursery serves its first NURSERY_SIZE bytes, and no live block
 * twice: a block freed on the way is handed out again only while it is
 * the last one carved (given back to the top).  Then the slabs. */
static int
child_exhaust(void)
{
	char *prev = NULL;
	size_t carved = 0;
	int n = 0;
	bool freed = false;
	for (;;) {
		char *p = malloc(200);
		CHECK(p != NULL, 1);
		if (!nursery_owns(p)) {
			CHECK(pagemap_lookup(p) != 0, 2);	/* a slab's */
			break;
		}
		CHECK(prev == NULL || p > prev || (p == prev && freed), 3);
		if (p != prev)
			carved += 208;
		prev = p;
		CHECK(carved <= NURSERY_SIZE, 4);
		/* Under half freed (not churning); every other free is of
		 * the top block, which the next malloc takes again. */
		freed = n++ % 3 == 0;
		if (freed)
			free(p);
	}
	/* What cmocka and libc took first is in there too. */
	CHECK(carved > NURSERY_SIZE / 2, 5);
	for (int i = 0; i < 100; i++)
		CHECK(!nursery_owns(sink = malloc(16)), 6);
	return 0;
}

/* A program that frees what it takes from the nursery, in the order it
 * took it (each block freed after the next is made), gets no reuse
 * there: once NURSERY_CHURN_MIN bytes are carved and more than half of
 * them freed, the nursery closes and the slabs serve it. */
static int
child_churn(void)
{
	size_t carved = 0;
	char *prev = NULL;
	for (;;) {
		char *p = malloc(200);
		CHECK(p != NULL, 1);
		free(prev);	/* not the top: p was carved after it */
		prev = p;
		if (!nursery_owns(p))
			break;
		carved += 208;
		CHECK(carved <= NURSERY_CHURN_MIN + 4096, 2);
	}
	free(prev);
	CHECK(carved >= NURSERY_CHURN_MIN / 2, 3);
	for (int i = 0; i < 100; i++)
		CHECK(!nursery_owns(sink = malloc(16)), 4);
	return 0;
}

static void *
other_thread(void *arg)
{
	(void)arg;
	void *p = malloc(32);
	CHECK(p != NULL && !nursery_owns(p), 20);
	return p;
}

/* Another thread's first allocation closes the nursery, for the first
 * thread too; blocks of either may be freed by the other. */
static int
child_thread(void)
{
	void *a = malloc(32);
	CHECK(nursery_owns(a), 1);
	pthread_t t;
	void *b;
	CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0, 2);
	CHECK(pthread_join(t, &b) == 0, 3);
	void *c = malloc(32);
	CHECK(c != NULL && !nursery_owns(c), 4);
	free(b);
	free(a);
	free(c);
	return 0;
}

/* A fork child frees and reallocates its parent's nursery blocks. */
static int
child_fork(void)
{
	char *a = malloc(50), *b = malloc(60);
	CHECK(nursery_owns(a) && nursery_owns(b), 1);
	strcpy(a, "nursery");
	pid_t pid = fork();
	if (pid == 0) {
		free(b);
		a = realloc(a, 5000);
		_exit(a != NULL && strcmp(a, "nursery") == 0 ? 0 : 9);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0, 2);
	free(a);
	free(b);
	return 0;
}

/* realloc: kept for the same usable size; the last block carved grows
 * and shrinks in place; any other block moves with its contents (a
 * shrink to another usable size too, so that free_sized with the new
 * size is right). */
static int
child_realloc(void)
{
	char *p = malloc(20);
	CHECK(nursery_owns(p), 1);
	memcpy(p, "0123456789abcdefghi", 20);
	CHECK(realloc(p, 30) == p, 2);
	char *guard = malloc(16);	/* p is no longer the top */
	char *q = realloc(p, 3000);
	CHECK(q != NULL && q != p && memcmp(q, "0123456789abcdefghi", 20) == 0,
	    3);
	CHECK(nursery_owns(q) && q > guard, 7);
	free(guard);
	/* q is the top now: in place, both ways. */
	unsigned long long before = stat_of("allocated");
	CHECK(realloc(q, NURSERY_MAX) == q, 8);
	CHECK(malloc_usable_size(q) == NURSERY_MAX, 9);
	CHECK(stat_of("allocated") - before == NURSERY_MAX - 3008, 10);
	CHECK(realloc(q, 100) == q && malloc_usable_size(q) == 112, 11);
	CHECK(memcmp(q, "0123456789abcdefghi", 20) == 0, 12);
	char *next = malloc(16);	/* right after the shrunk block */
	CHECK(next == q + 112, 13);
	free(next);
	guard = malloc(16);
	char *r = realloc(q, 10);
	CHECK(r != NULL && r != q && memcmp(r, "0123456789", 10) == 0, 4);
	free(guard);
	free_sized(r, 10);
	char *s = realloc(NULL, 40);
	CHECK(nursery_owns(s), 5);
	free_sized(s, 33);	/* 33 and 40 both give 48 */
	return 0;
}

/* Misuse: each mode does one wrong thing to a nursery block. */
static int
child_misuse(const char *mode)
{
	char *p = malloc(64);
	char *q = malloc(64);
	CHECK(nursery_owns(p) && nursery_owns(q), 1);
	if (strcmp(mode, "double") == 0) {
		free(p);
		free(p);
	} else if (strcmp(mode, "double_top") == 0) {
		char *r = malloc(64);
		CHECK(r == q + 64, 2);
		free(r);	/* the top: given back */
		free(r);
	} else if (strcmp(mode, "interior") == 0) {
		free(p + 16);
	} else if (strcmp(mode, "interior_big") == 0) {
		char *b = malloc(NURSERY_MAX);
		CHECK(nursery_owns(b), 2);
		free(b + NURSERY_MAX - 16);	/* its last granule */
	} else if (strcmp(mode, "invalid") == 0) {
		free(q + 64 + 4096);	/* past every block carved */
	} else if (strcmp(mode, "realloc_freed") == 0) {
		free(p);
		CHECK(realloc(p, 100) == NULL, 2);
	} else if (strcmp(mode, "usable_freed") == 0) {
		free(p);
		CHECK(malloc_usable_size(p) == 0, 2);
	} else if (strcmp(mode, "wrong_size") == 0) {
		free_sized(p, 16);
	}
	/* Warn mode goes on: no block overlaps q, none is p again. */
	for (int i = 0; i < 50; i++) {
		char *x = malloc(64);
		CHECK(x != NULL && x != p && (x + 64 <= q || x >= q + 64), 3);
	}
	return 0;
}

/* calloc of a nursery block writes nothing: zero-fill data never handed
 * out before is zero, and pages the program does not touch stay out of
 * memory (mincore), as a fresh heap's do under glibc's calloc. */
static int
child_calloc(void)
{
	enum { N = 6 };		/* blocks side by side: 24 KiB, 5 whole pages */
	unsigned char *c[N];
	for (int i = 0; i < N; i++) {
		c[i] = calloc(1, NURSERY_MAX);
		CHECK(c[i] != NULL && nursery_owns(c[i]), 1);
		CHECK(i == 0 || c[i] == c[i - 1] + NURSERY_MAX, 6);
	}
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)c[0] + (uintptr_t)pg - 1) &
	    ~(uintptr_t)(pg - 1);
	uintptr_t hi = ((uintptr_t)c[0] + N * NURSERY_MAX) &
	    ~(uintptr_t)(pg - 1);
	CHECK(hi - lo >= 4 * (uintptr_t)pg, 3);
	unsigned char vec[16];
	CHECK(mincore((void *)lo, hi - lo, vec) == 0, 4);
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char thp[128] = "";
	if (f != NULL) {
		if (fgets(thp, sizeof(thp), f) == NULL)
			thp[0] = 0;
		fclose(f);
	}
	/* (With THP always, a neighbour's fault may map a huge page.) */
	if (strstr(thp, "[always]") == NULL)
		for (size_t i = 0; i < (hi - lo) / (uintptr_t)pg; i++)
			CHECK(!(vec[i] & 1), 5);
	for (int k = 0; k < N; k++) {
		for (size_t i = 0; i < NURSERY_MAX; i += 512)
			CHECK(c[k][i] == 0, 2);	/* (reads map the zero page) */
		c[k][100] = 7;
		free(c[k]);
	}
	return 0;
}

/* A block freed or shrunk at the top gives its bytes back to the next
 * carve, old contents and all: calloc clears them (and only them). */
static int
child_top(void)
{
	char *a = malloc(100);
	char *b = malloc(200);
	CHECK(nursery_owns(a) && b == a + 112, 1);
	unsigned long long before = stat_of("allocated");
	memset(b, 0xa5, 200);
	free(b);
	CHECK(before - stat_of("allocated") == 208, 2);
	char *c = malloc(200);
	CHECK(c == b, 3);
	memset(c, 0x5a, 200);
	free(c);
	unsigned char *d = calloc(1, 1000);	/* over c's bytes and past */
	CHECK(d == (unsigned char *)b, 4);
	for (int i = 0; i < 1000; i++)
		CHECK(d[i] == 0, 5);
	free(a);	/* not the top: stays carved */
	char *e = malloc(100);
	CHECK(e == (char *)d + 1008, 6);
	free(e);
	free(d);
	CHECK(malloc(100) == (void *)d, 7);
	return 0;
}

static int
child_off(void)
{
	void *p = malloc(32);
	CHECK(p != NULL && !nursery_owns(p) && pagemap_lookup(p) != 0, 1);
	return 0;
}

static int
child(const char *mode)
{
	if (strcmp(mode, "packed") == 0)
		return child_packed();
	if (strcmp(mode, "exhaust") == 0)
		return child_exhaust();
	if (strcmp(mode, "churn") == 0)
		return child_churn();
	if (strcmp(mode, "thread") == 0)
		return child_thread();
	if (strcmp(mode, "fork") == 0)
		return child_fork();
	if (strcmp(mode, "realloc") == 0)
		return child_realloc();
	if (strcmp(mode, "off") == 0)
		return child_off();
	if (strcmp(mode, "calloc") == 0)
		return child_calloc();
	if (strcmp(mode, "top") == 0)
		return child_top();
	return child_misuse(mode);
}

static char err[16384];

static void
expect_exit0(const char *mode, const char *conf)
{
	int st;
	run_self(mode, conf, &st, err, sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strstr(err, "pcmalloc"))
		fail_msg("%s (%s): status 0x%x: %s", mode, conf ? conf : "-",
		    st, err);
}

static void
test_packed(void **state)
{
	(void)state;
	expect_exit0("packed", NULL);
}

static void
test_exhaust(void **state)
{
	(void)state;
	expect_exit0("exhaust", NULL);
}

static void
test_churn_closes(void **state)
{
	(void)state;
	expect_exit0("churn", NULL);
}

static void
test_second_thread_closes(void **state)
{
	(void)state;
	expect_exit0("thread", NULL);
}

static void
test_fork_child(void **state)
{
	(void)state;
	expect_exit0("fork", NULL);
}

static void
test_realloc_moves(void **state)
{
	(void)state;
	expect_exit0("realloc", NULL);
}

static void
test_calloc_untouched(void **state)
{
	(void)state;
	expect_exit0("calloc", NULL);
}

static void
test_top_given_back(void **state)
{
	(void)state;
	expect_exit0("top", NULL);
}

static void
test_off(void **state)
{
	(void)state;
	expect_exit0("off", "nursery:off");
	expect_exit0("off", "debug:on");
}

/* Reported and aborted by default; reported and survived in warn mode. */
static void
expect_misuse(const char *mode, const char *message)
{
	int st;
	run_self(mode, NULL, &st, err, sizeof(err));
	if (strstr(err, message) == NULL || !WIFSIGNALED(st) ||
	    WTERMSIG(st) != SIGABRT)
		fail_msg("%s: status 0x%x, want an abort and \"%s\": %s", mode,
		    st, message, err);
	run_self(mode, "abort_on_error:false", &st, err, sizeof(err));
	if (strstr(err, message) == NULL || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		fail_msg("%s (warn): status 0x%x, want exit 0 and \"%s\": %s",
		    mode, st, message, err);
}

static void
test_misuse(void **state)
{
	(void)state;
	expect_misuse("double", "pcmalloc: double free of 0x");
	expect_misuse("double_top", "pcmalloc: free of an invalid pointer 0x");
	expect_misuse("interior", "pcmalloc: free of a pointer inside a "
	    "block, 0x");
	expect_misuse("interior_big", "pcmalloc: free of a pointer inside a "
	    "block, 0x");
	expect_misuse("invalid", "pcmalloc: free of an invalid pointer 0x");
	expect_misuse("realloc_freed", "pcmalloc: realloc of a freed block, "
	    "0x");
	expect_misuse("usable_freed", "pcmalloc: malloc_usable_size of a "
	    "freed block, 0x");
	expect_misuse("wrong_size", "with a wrong size 16 (64-byte block)");
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packed),
		cmocka_unit_test(test_exhaust),
		cmocka_unit_test(test_churn_closes),
		cmocka_unit_test(test_second_thread_closes),
		cmocka_unit_test(test_fork_child),
		cmocka_unit_test(test_realloc_moves),
		cmocka_unit_test(test_calloc_untouched),
		cmocka_unit_test(test_top_given_back),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
