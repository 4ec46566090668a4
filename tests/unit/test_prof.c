/* The profiler's tables and dumps (src/prof.c, src/prof_dump.c): buckets
 * deduplicate stacks, unbiasing is per sample, the live view drops freed
 * blocks, the dump formats are well formed, the peak is kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcmalloc.h"
#include "conf.h"
#include "prof.h"
#include "sample.h"

static void *stack_a[3] = { (void *)0x1001, (void *)0x2002, (void *)0x3003 };
static void *stack_b[2] = { (void *)0x1001, (void *)0x4004 };

static const prof_bucket_t *
find(const prof_bucket_t *s, size_t n, void **frames, uint32_t depth)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].depth == depth && memcmp(s[i].next->frames, frames,
		    depth * sizeof(void *)) == 0)
			return &s[i];
	return NULL;
}

static void
test_prof_buckets(void **state)
{
	(void)state;
	prof_reset();
	prof_totals_t t0, t;
	prof_totals(&t0);
	/* Fake block addresses: the tables never dereference them. */
	prof_record((void *)0x10000, 100, 2.0, stack_a, 3);
	prof_record((void *)0x20000, 300, 1.0, stack_a, 3);
	prof_record((void *)0x30000, 50, 4.0, stack_b, 2);
	prof_totals(&t);
	assert_int_equal(t.nbuckets, t0.nbuckets + (t0.nbuckets ? 0 : 2));
	assert_int_equal(t.live, 3);
	size_t n, size;
	prof_bucket_t *s = prof_snapshot(&n, &size, &t);
	assert_non_null(s);
	const prof_bucket_t *a = find(s, n, stack_a, 3);
	const prof_bucket_t *b = find(s, n, stack_b, 2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->alloc_samples, 2);
	assert_int_equal(a->alloc_sbytes, 400);
	/* Each sample's weight applies to its own size: 100*2 + 300*1. */
	assert_true(a->alloc_b > 499.9 && a->alloc_b < 500.1);
	assert_true(a->alloc_n > 2.99 && a->alloc_n < 3.01);
	assert_true(b->live_b > 199.9 && b->live_b < 200.1);
	prof_snapshot_free(s, size);

	prof_free((void *)0x20000);
	prof_free((void *)0x20000);	/* not live any more: ignored */
	prof_free((void *)0x12345);	/* never sampled: ignored */
	s = prof_snapshot(&n, &size, &t);
	a = find(s, n, stack_a, 3);
	assert_int_equal(a->live_samples, 1);
	assert_true(a->live_b > 199.9 && a->live_b < 200.1);
	assert_int_equal(a->alloc_samples, 2);	/* history stays */
	assert_int_equal(t.live, 2);
	assert_true(t.peak_b > 699.9 && t.peak_b < 700.1);
	assert_true(t.live_b > 399.9 && t.live_b < 400.1);
	prof_snapshot_free(s, size);

	prof_moved((void *)0x10000, (void *)0x50000);
	prof_free((void *)0x10000);	/* moved away: nothing */
	prof_totals(&t);
	assert_int_equal(t.live, 2);
	prof_free((void *)0x50000);
	prof_free((void *)0x30000);
	prof_totals(&t);
	assert_int_equal(t.live, 0);
	assert_true(t.live_b < 0.001 && t.live_b > -0.001);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_prof_dump_formats(void **state)
{
	(void)state;
	prof_reset();
	prof_record((void *)0x10000, 1000, 2.0, stack_a, 3);
	prof_record((void *)0x20000, 10, 5.0, stack_b, 2);
	prof_free((void *)0x20000);
	char dir[] = "/tmp/pc_prof_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];

	snprintf(path, sizeof(path), "%s/p.heap", dir);
	assert_int_equal(pc_prof_dump(path), 0);
	char *h = slurp(path);
	char head[128];
	snprintf(head, sizeof(head),
	    "heap profile: 1: 1000 [2: 1010] @ heap_v2/%zu\n",
	    opt_prof_sample);
	assert_memory_equal(h, head, strlen(head));
	assert_non_null(strstr(h, "1: 1000 [1: 1000] @ 0x1001 0x2002 0x3003\n"));
	assert_non_null(strstr(h, "0: 0 [1: 10] @ 0x1001 0x4004\n"));
	assert_non_null(strstr(h, "\nMAPPED_LIBRARIES:\n"));
	assert_non_null(strstr(h, "[stack]"));
	unlink(path);

	/* Folded: live bytes only, outermost frame first. */
	snprintf(path, sizeof(path), "%s/p.folded", dir);
	assert_int_equal(pc_prof_dump(path), 0);
	h = slurp(path);
	assert_string_equal(h, "0x3002;0x2001;0x1000 2000\n");
	unlink(path);

	/* The proto opens with its string table's "" (field 6, length 0),
	 * and names Go's heap sample types (tests/override/test_prof.sh
	 * reads it with go tool pprof). */
	snprintf(path, sizeof(path), "%s/p.pb", dir);
	assert_int_equal(pc_prof_dump(path), 0);
	h = slurp(path);
	assert_int_equal((unsigned char)h[0], (6 << 3) | 2);
	assert_int_equal(h[1], 0);
	assert_memory_equal(h + 4, "alloc_objects", 13);
	unlink(path);

	/* NULL: every format, named from the prefix. */
	snprintf(opt_prof_prefix, sizeof(opt_prof_prefix), "%s/x", dir);
	assert_int_equal(pc_prof_dump(NULL), 0);
	const char *kinds[] = { "heap", "pb", "folded" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/x.%d.0.%s", dir,
		    (int)getpid(), kinds[i]);
		assert_int_equal(access(path, R_OK), 0);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	prof_reset();
}

static void
test_prof_dump_errors(void **state)
{
	(void)state;
	assert_int_not_equal(pc_prof_dump("/nonexistent-dir/x.heap"), 0);
}

int
main(void)
{
	free(malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prof_buckets),
		cmocka_unit_test(test_prof_dump_formats),
		cmocka_unit_test(test_prof_dump_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
