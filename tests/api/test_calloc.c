/*
 * calloc semantics.  Catches: calloc skipping the memset on recycled (dirty)
 * memory - e.g. trusting a stale "fresh from the OS" flag on a reused slab,
 * large run or cached huge mapping - multiplication overflow not detected
 * (nmemb*size wrapping to a small allocation), missing ENOMEM, and
 * calloc(0, n) / calloc(n, 0) returning NULL.
 */
#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
assert_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("calloc block %p: byte %zu of %zu is 0x%02x",
			    (void *)p, i, n, p[i]);
}

static void
test_calloc_zero_sizes(void **state)
{
	(void)state;
	void *a = calloc(opaque(0), opaque(0));
	void *b = calloc(opaque(0), opaque(16));
	void *c = calloc(opaque(16), opaque(0));
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(b, c);
	assert_ptr_not_equal(a, c);
	free(a);
	free(b);
	free(c);
}

/* Dirty a size, free it, then calloc the same size many times. */
static void
dirty_then_calloc(size_t n, int reps)
{
	enum { MAXR = 64 };
	void *v[MAXR];
	assert_true(reps <= MAXR);
	for (int i = 0; i < reps; i++) {
		v[i] = malloc(opaque(n));
		assert_non_null(v[i]);
		memset(v[i], 0xff, malloc_usable_size(v[i]));
	}
	for (int i = 0; i < reps; i++)
		free(v[i]);
	for (int i = 0; i < reps; i++) {
		v[i] = calloc(opaque(1), opaque(n));
		assert_non_null(v[i]);
		assert_aligned(v[i], 16);
		assert_zero(v[i], n);
		/* dirty again so the next calloc of this round must zero */
		memset(v[i], 0xff, n);
	}
	for (int i = 0; i < reps; i++)
		free(v[i]);
	/* and calloc with nmemb > 1 */
	for (int i = 0; i < reps; i++) {
		v[i] = calloc(opaque(n ? n : 1), opaque(1));
		assert_non_null(v[i]);
		assert_zero(v[i], n);
		memset(v[i], 0xee, n);
		free(v[i]);
	}
}

static void
test_calloc_dirty_small(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 4096; n++)
		dirty_then_calloc(n, 8);
}

static void
test_calloc_dirty_upto_64k(void **state)
{
	(void)state;
	for (size_t n = 4096; n <= 64 * KiB; n += 61)
		dirty_then_calloc(n, 4);
	dirty_then_calloc(64 * KiB, 16);
}

static void
test_calloc_dirty_large(void **state)
{
	(void)state;
	static const size_t sizes[] = { 100 * KiB, 256 * KiB, 1 * MiB,
	    2 * MiB - 16, 2 * MiB, 3 * MiB, 7 * MiB, 8 * MiB, 9 * MiB,
	    32 * MiB };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		dirty_then_calloc(sizes[s], 3);
}

/* A dirty huge block freed, then calloc of a slightly different size (a
 * cached mapping being reused). */
static void
test_calloc_reuse_different_size(void **state)
{
	(void)state;
	for (int r = 0; r < 4; r++) {
		size_t n = 16 * MiB + (size_t)r * 12345;
		unsigned char *p = malloc(opaque(n));
		assert_non_null(p);
		memset(p, 0xff, n);
		free(p);
		p = calloc(opaque(n - 4096 * (size_t)r - 1), 1);
		assert_non_null(p);
		assert_zero(p, n - 4096 * (size_t)r - 1);
		free(p);
	}
	for (int r = 0; r < 4; r++) {
		size_t n = 200 * KiB + (size_t)r * 999;
		unsigned char *p = malloc(opaque(n));
		assert_non_null(p);
		memset(p, 0xff, n);
		free(p);
		p = calloc(opaque(n / 2), 2);
		assert_non_null(p);
		assert_zero(p, n / 2 * 2);
		free(p);
	}
}

static void
test_calloc_1g(void **state)
{
	(void)state;
	unsigned char *p = calloc(opaque(1024), opaque(MiB));
	assert_non_null(p);
	/* read one byte per page: reading untouched anonymous pages costs no
	 * RSS (zero page) */
	for (size_t i = 0; i < GiB; i += 4096)
		if (p[i] != 0)
			fail_msg("calloc 1 GiB: byte %zu nonzero", i);
	assert_int_equal(p[GiB - 1], 0);
	free(p);
}

static void
expect_enomem_calloc(size_t a, size_t b)
{
	errno = 0;
	void *p = calloc(opaque(a), opaque(b));
	if (p != NULL)
		fail_msg("calloc(%zu, %zu) succeeded", a, b);
	if (errno != ENOMEM)
		fail_msg("calloc(%zu, %zu): errno %d, want ENOMEM", a, b, errno);
}

static void
test_calloc_overflow(void **state)
{
	(void)state;
	expect_enomem_calloc(SIZE_MAX, SIZE_MAX);
	expect_enomem_calloc(SIZE_MAX, 2);
	expect_enomem_calloc(2, SIZE_MAX);
	expect_enomem_calloc(SIZE_MAX / 2 + 1, 2);	/* product wraps to 0 */
	expect_enomem_calloc((size_t)1 << 32, (size_t)1 << 32);	/* wraps to 0 */
	expect_enomem_calloc(((size_t)1 << 32) + 1, (size_t)1 << 32); /* to 2^32 */
	expect_enomem_calloc((SIZE_MAX / 16) + 2, 16);	/* wraps to 16 */
	expect_enomem_calloc(1, SIZE_MAX);
	expect_enomem_calloc(SIZE_MAX, 1);
	expect_enomem_calloc(1, (size_t)PTRDIFF_MAX + 1);
	expect_enomem_calloc((size_t)PTRDIFF_MAX / 2 + 1, 2);
	expect_enomem_calloc(1, SIZE_MAX - 4096);
	void *p = calloc(opaque(10), opaque(10));
	assert_non_null(p);
	assert_zero(p, 100);
	free(p);
}

/* calloc arrays with nmemb*size across size classes, kept live together. */
static void
test_calloc_mixed_live(void **state)
{
	(void)state;
	enum { N = 3000 };
	void **v = calloc(N, sizeof(*v));
	size_t *sz = calloc(N, sizeof(*sz));
	assert_non_null(v);
	assert_non_null(sz);
	uint32_t x = 99;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			x = x * 1664525u + 1013904223u;
			size_t n = (x >> 10) % ((i % 50) == 0 ? 150000 : 3000);
			if (v[i]) {
				free(v[i]);
			}
			v[i] = calloc(opaque(n), 1);
			sz[i] = n;
			assert_non_null(v[i]);
			assert_zero(v[i], n);
			memset(v[i], 0xff, n);
		}
	}
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
	free(sz);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_calloc_zero_sizes),
		cmocka_unit_test(test_calloc_dirty_small),
		cmocka_unit_test(test_calloc_dirty_upto_64k),
		cmocka_unit_test(test_calloc_dirty_large),
		cmocka_unit_test(test_calloc_reuse_different_size),
		cmocka_unit_test(test_calloc_1g),
		cmocka_unit_test(test_calloc_overflow),
		cmocka_unit_test(test_calloc_mixed_live),
	};
	return cmocka_run_group_tests_name("calloc", tests, NULL, NULL);
}
