/* Metadata memory: base_alloc carves 64-byte aligned, zeroed pieces out of
 * chunks with a guard page on each side, span and region descriptors are
 * recycled, and a write just outside a chunk faults (tested in a child). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "os.h"
#include "pcmalloc.h"

#define CHUNK ((size_t)2 << 20)	/* base.c's BASE_BLOCK */

static void
test_alloc_aligned_zeroed(void **state)
{
	(void)state;
	char *prev = NULL;
	size_t prev_size = 0;
	for (size_t size = 1; size < 5000; size = size * 3 + 1) {
		char *p = base_alloc(size);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 64, 0);
		for (size_t i = 0; i < size; i++)
			assert_int_equal(p[i], 0);
		memset(p, 0x5a, size);
		/* Bump allocation: never overlaps the previous piece. */
		if (prev != NULL)
			assert_true(p >= prev + prev_size || p + size <= prev);
		prev = p;
		prev_size = size;
	}
}

static void
test_big_alloc(void **state)
{
	(void)state;
	size_t before = base_mapped_bytes();
	char *p = base_alloc(3 * CHUNK);	/* larger than a chunk */
	assert_non_null(p);
	memset(p, 1, 3 * CHUNK);
	assert_true(base_mapped_bytes() >= before + 3 * CHUNK);
}

static void
test_span_recycled(void **state)
{
	(void)state;
	span_t *s = span_new();
	assert_non_null(s);
	assert_int_equal((uintptr_t)s % 64, 0);
	s->npages = 7;
	s->kind = SPAN_FREE;
	span_delete(s);
	span_t *t = span_new();
	assert_ptr_equal(t, s);		/* from the free list */
	assert_int_equal(t->npages, 0);	/* and zeroed again */
	assert_int_equal(t->kind, SPAN_NONE);
	span_delete(t);
	region_t *r = region_new();
	assert_non_null(r);
	r->npages = 3;
	region_delete(r);
	region_t *r2 = region_new();
	assert_ptr_equal(r2, r);
	assert_int_equal(r2->npages, 0);
	region_delete(r2);
}

static void
test_map_counts_guards(void **state)
{
	(void)state;
	size_t g = base_guard_bytes();
	void *p = base_map(3 * PC_PAGE);
	assert_non_null(p);
	assert_int_equal(base_guard_bytes(), g + 2 * PC_PAGE);
	assert_true(os_is_mapped(p));
	base_unmap(p, 3 * PC_PAGE);
	assert_int_equal(base_guard_bytes(), g);
}

/* Run fn(arg) in a child: true if it died of SIGSEGV or SIGBUS. */
static bool
faults(void (*fn)(volatile char *), volatile char *arg)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches these to report a failed test. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		fn(arg);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) &&
	    (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
}

static void
poke(volatile char *p)
{
	*p = 1;
}

/* A whole chunk: the next byte past it, and the byte before it, are the
 * guard pages. */
static void
test_chunk_guarded(void **state)
{
	(void)state;
	char *p = base_alloc(CHUNK);
	assert_non_null(p);
	assert_false(faults(poke, p));
	assert_false(faults(poke, p + CHUNK - 1));
	assert_true(faults(poke, p + CHUNK));
	assert_true(faults(poke, p - 1));
	/* A page-map leaf or registry mapping is guarded the same way. */
	char *m = base_map(PC_PAGE);
	assert_non_null(m);
	assert_false(faults(poke, m));
	assert_true(faults(poke, m + PC_PAGE));
	assert_true(faults(poke, m - 1));
	base_unmap(m, PC_PAGE);
}

int
main(void)
{
	pc_free(pc_malloc(1));	/* initialised, as base is at run time */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_aligned_zeroed),
		cmocka_unit_test(test_big_alloc),
		cmocka_unit_test(test_span_recycled),
		cmocka_unit_test(test_map_counts_guards),
		cmocka_unit_test(test_chunk_guarded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
