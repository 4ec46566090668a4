/*
 * malloc_usable_size.  Catches: usable size smaller than the request (size
 * class table or large/huge rounding bug), a usable size that overstates the
 * block so writing all of it overruns into a neighbour (detected by patterns
 * in neighbouring blocks), wrong results for aligned, calloc'ed, realloc'ed
 * (shrunk in place) and huge blocks, and malloc_usable_size(NULL) != 0.
 */
#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
test_usable_null(void **state)
{
	(void)state;
	assert_int_equal(malloc_usable_size(NULL), 0);
	assert_int_equal(pc_malloc_usable_size(NULL), 0);
}

/* Pattern the whole block when small, else its first and last KiB: an
 * overrun from a neighbour lands at one of the edges. */
static void
pat_edges_fill(unsigned char *p, size_t n, uintptr_t seed)
{
	if (n <= 4096) {
		pat_fill(p, n, seed);
		return;
	}
	pat_fill(p, 1024, seed);
	pat_fill(p + n - 1024, 1024, seed + 1);
}

static void
pat_edges_check(unsigned char *p, size_t n, uintptr_t seed)
{
	if (n <= 4096) {
		assert_pattern(p, n, seed);
		return;
	}
	assert_pattern(p, 1024, seed);
	assert_pattern(p + n - 1024, 1024, seed + 1);
}

/* Three blocks of n bytes, allocated one after the other (neighbours,
 * when the allocator places them so). */
static void
malloc3(size_t n, unsigned char **a, unsigned char **b, unsigned char **c)
{
	*a = malloc(opaque(n));
	*b = malloc(opaque(n));
	*c = malloc(opaque(n));
	assert_non_null(*a);
	assert_non_null(*b);
	assert_non_null(*c);
}

/*
 * For every size 0..64 KiB: allocate three neighbours, fill the middle
 * block's whole usable size, and check the neighbours' patterns survived.
 */
static void
test_usable_writable_every_size(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 64 * KiB; n++) {
		unsigned char *a, *b, *c;
		malloc3(n, &a, &b, &c);
		size_t ua = malloc_usable_size(a), ub = malloc_usable_size(b),
		    uc = malloc_usable_size(c);
		if (ua < n || ub < n || uc < n)
			fail_msg("size %zu: usable %zu %zu %zu", n, ua, ub, uc);
		pat_edges_fill(a, ua, 1);
		pat_edges_fill(c, uc, 3);
		memset(b, 0xcc, ub);
		free(b);
		pat_edges_check(a, ua, 1);
		pat_edges_check(c, uc, 3);
		free(a);
		free(c);
	}
}

static void
test_usable_big(void **state)
{
	(void)state;
	static const size_t sizes[] = { 64 * KiB + 1, 100 * KiB, 1 * MiB,
	    1 * MiB + 1, 3 * MiB, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 64 * MiB,
	    1 * GiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(opaque(n));
		assert_non_null(p);
		size_t u = malloc_usable_size(p);
		if (u < n)
			fail_msg("malloc(%zu): usable %zu", n, u);
		if (n <= 64 * MiB)
			memset(p, 0x99, u);
		else {
			p[0] = 1;
			p[n / 2] = 1;
			/* the slack beyond the request is writable too */
			memset(p + n - 4096, 0x99, u - (n - 4096));
		}
		free(p);
	}
}

/*
 * Large blocks are rounded up to sixteen page counts per doubling: the
 * slack is usable (writing all of it spares the neighbours), is at most
 * 1/16 of the request's pages, lets realloc grow in place up to it,
 * and free_sized still accepts the size asked for (a wrong size aborts).
 */
static void
test_usable_large_rounded(void **state)
{
	(void)state;
	for (size_t n = 32 * KiB + 1; n <= 16 * MiB; n += n / 7 + 4093) {
		unsigned char *a, *b, *c;
		malloc3(n, &a, &b, &c);
		size_t pages = (n + 4095) / 4096, ub = malloc_usable_size(b);
		if (ub < n || ub % 4096 != 0 || ub / 4096 - pages > pages / 16)
			fail_msg("malloc(%zu): usable %zu", n, ub);
		pat_edges_fill(a, malloc_usable_size(a), 1);
		pat_edges_fill(c, malloc_usable_size(c), 3);
		memset(b, 0xcc, ub);
		pat_edges_check(a, malloc_usable_size(a), 1);
		pat_edges_check(c, malloc_usable_size(c), 3);
		unsigned char *r = realloc(b, opaque(ub));
		assert_ptr_equal(r, b);
		assert_int_equal(r[ub - 1], 0xcc);
		pc_free_sized(r, n);
		pc_free_sized(a, n);
		free(c);
	}
}

static void
test_usable_aligned(void **state)
{
	(void)state;
	for (size_t a = 16; a <= 4 * MiB; a <<= 1) {
		static const size_t sizes[] = { 1, 100, 5000, 70000, 2 * MiB };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *n1 = malloc(opaque(sizes[i]));
			unsigned char *p = aligned_alloc(opaque(a), opaque(sizes[i]));
			unsigned char *n2 = malloc(opaque(sizes[i]));
			assert_non_null(n1);
			assert_non_null(p);
			assert_non_null(n2);
			assert_aligned(p, a);
			size_t u = malloc_usable_size(p);
			if (u < sizes[i])
				fail_msg("aligned_alloc(%zu, %zu): usable %zu",
				    a, sizes[i], u);
			pat_fill(n1, sizes[i], 11);
			pat_fill(n2, sizes[i], 12);
			memset(p, 0xdd, u);
			assert_pattern(n1, sizes[i], 11);
			assert_pattern(n2, sizes[i], 12);
			free(p);
			free(n1);
			free(n2);
		}
	}
}

static void
test_usable_calloc_realloc(void **state)
{
	(void)state;
	for (size_t n = 1; n < 2 * MiB; n = n * 2 + 7) {
		unsigned char *p = calloc(opaque(n), 1);
		assert_non_null(p);
		size_t u = malloc_usable_size(p);
		assert_true(u >= n);
		memset(p, 0x12, u);
		/* shrink: usable size must still cover the new size, and is
		 * writable; the block must remain freeable */
		unsigned char *q = realloc(p, opaque(n / 2 + 1));
		assert_non_null(q);
		u = malloc_usable_size(q);
		assert_true(u >= n / 2 + 1);
		memset(q, 0x34, u);
		unsigned char *r = realloc(q, opaque(n * 3));
		assert_non_null(r);
		u = malloc_usable_size(r);
		assert_true(u >= n * 3);
		memset(r, 0x56, u);
		free(r);
	}
}

/* realloc to within the usable size must not lose data written into the
 * slack (the usable size is part of the object from the caller's view). */
static void
test_realloc_within_usable(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 20, 100, 1000, 5000, 40000, 300000,
	    9 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = malloc(opaque(sizes[i]));
		assert_non_null(p);
		size_t u = malloc_usable_size(p);
		pat_fill(p, u, 77);
		unsigned char *q = realloc(p, opaque(u));
		assert_non_null(q);
		assert_pattern(q, u, 77);
		assert_true(malloc_usable_size(q) >= u);
		free(q);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_usable_null),
		cmocka_unit_test(test_usable_writable_every_size),
		cmocka_unit_test(test_usable_big),
		cmocka_unit_test(test_usable_large_rounded),
		cmocka_unit_test(test_usable_aligned),
		cmocka_unit_test(test_usable_calloc_realloc),
		cmocka_unit_test(test_realloc_within_usable),
	};
	return cmocka_run_group_tests_name("usable", tests, NULL, NULL);
}
