/* Huge blocks: mapped directly, known to the page map by their first page
 * and to the registry by every address, resized in place or moved without
 * a copy, and every bad pointer told apart (interior, freed, foreign)
 * before anything is done with it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "huge.h"
#include "os.h"
#include "pagemap.h"
#include "pcmalloc.h"

#define MiB ((size_t)1 << 20)

static void
test_alloc_free(void **state)
{
	(void)state;
	size_t n = huge_count(), bytes = huge_mapped_bytes();
	char *p = huge_alloc(64 * MiB + 1, PC_PAGE);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % PC_PAGE, 0);
	assert_int_equal(huge_count(), n + 1);
	assert_int_equal(huge_mapped_bytes(), bytes + 64 * MiB + PC_PAGE);
	/* The page map knows the first page only. */
	span_t *s = pagemap_span(pagemap_lookup(p));
	assert_non_null(s);
	assert_int_equal(s->kind, SPAN_HUGE);
	assert_int_equal(pagemap_lookup(p) & PM_SC_MASK, 0);
	assert_int_equal(pagemap_lookup(p + PC_PAGE), 0);
	p[0] = 1;
	p[64 * MiB] = 2;
	size_t usable;
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 64 * MiB + PC_PAGE);
	assert_int_equal(huge_count(), n);
	assert_int_equal(huge_mapped_bytes(), bytes);
	assert_int_equal(pagemap_lookup(p), 0);
}

static void
test_bad_pointers(void **state)
{
	(void)state;
	char *p = huge_alloc(64 * MiB, PC_PAGE);
	assert_non_null(p);
	size_t usable = 0;
	void *out;
	/* Checked, nothing done: the block stays live. */
	assert_int_equal(huge_free(p + PC_PAGE, &usable), BLOCK_INTERIOR);
	assert_int_equal(huge_free(p + 64 * MiB - 1, &usable),
	    BLOCK_INTERIOR);
	assert_int_equal(huge_realloc(p + 16, 0, &out, &usable),
	    BLOCK_INTERIOR);
	static char foreign[64];
	assert_int_equal(huge_free(foreign, &usable), BLOCK_FOREIGN);
	p[64 * MiB - 1] = 1;	/* still mapped */
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	/* Freed and unmapped: a double free, not a foreign pointer. */
	if (!os_is_mapped(p)) {
		assert_int_equal(huge_free(p, &usable), BLOCK_FREED);
		assert_int_equal(huge_realloc(p, 0, &out, &usable),
		    BLOCK_FREED);
	}
}

static void
test_aligned(void **state)
{
	(void)state;
	size_t align = 32 * MiB;
	char *p = huge_alloc(64 * MiB, align);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % align, 0);
	/* An aligned block cannot be moved by remap (the new place would
	 * lose the alignment): growing fails and leaves it intact. */
	void *out;
	size_t usable;
	p[0] = 7;
	assert_int_equal(huge_realloc(p, 200 * MiB, &out, &usable),
	    BLOCK_LIVE);
	if (out == NULL) {
		assert_int_equal(p[0], 7);
	} else {
		assert_ptr_equal(out, p);	/* grown in place */
		p = out;
	}
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
}

static void
test_resize(void **state)
{
	(void)state;
	char *p = huge_alloc(128 * MiB, PC_PAGE);
	assert_non_null(p);
	memset(p, 3, PC_PAGE);
	p[128 * MiB - 1] = 4;
	void *out;
	size_t usable;
	/* Shrink in place: the tail goes back to the OS. */
	assert_int_equal(huge_realloc(p, 80 * MiB, &out, &usable),
	    BLOCK_LIVE);
	assert_int_equal(usable, 128 * MiB);	/* the size before */
	assert_ptr_equal(out, p);
	size_t bytes = huge_mapped_bytes();
	/* The cut-off tail is no block of ours now. */
	assert_int_equal(huge_free(p + 100 * MiB, &usable) != BLOCK_LIVE, 1);
	/* Grow: in place or moved without a copy; the contents stay. */
	assert_int_equal(huge_realloc(p, 300 * MiB, &out, &usable),
	    BLOCK_LIVE);
	assert_int_equal(usable, 80 * MiB);
	if (out != NULL) {
		p = out;
		assert_int_equal(p[0], 3);
		assert_int_equal(p[PC_PAGE - 1], 3);
		assert_int_equal(huge_mapped_bytes(), bytes + 220 * MiB);
		assert_int_equal(pagemap_span(pagemap_lookup(p))->kind,
		    SPAN_HUGE);
		p[300 * MiB - 1] = 5;
	}
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_free),
		cmocka_unit_test(test_bad_pointers),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_resize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
