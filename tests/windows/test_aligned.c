/*
 * The CRT's aligned family on pcmalloc blocks: _aligned_malloc,
 * _aligned_realloc, _aligned_recalloc, _aligned_msize, _aligned_free.
 * Catches: misaligned results (every power of two up to 4 MiB), a bad
 * alignment accepted (the CRT says EINVAL), contents or alignment lost when
 * a block moves, _aligned_recalloc not zeroing, overflow not caught, and
 * blocks the CRT itself made with _aligned_offset_malloc (not ours) not
 * being handed back to the CRT by our _aligned_free.
 */
#include "win_common.h"

static void
test_alignments(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 24, 100, 4096, 40000, 3 * MiB };
	for (size_t a = 1; a <= 4 * MiB; a *= 2) {
		for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
			unsigned char *p = _aligned_malloc(opaque(sizes[s]), a);
			if (p == NULL)
				fail_msg("_aligned_malloc(%zu, %zu)", sizes[s],
				    a);
			assert_aligned(p, a);
			assert_true(is_ours(p));
			assert_true(_aligned_msize(p, a, 0) >= sizes[s]);
			if (sizes[s])
				p[sizes[s] - 1] = 1;
			/* free() works too: our blocks have no header. */
			if (s % 2)
				free(p);
			else
				_aligned_free(p);
		}
	}
	_aligned_free(NULL);
}

static void
test_bad_alignment(void **state)
{
	(void)state;
	static const size_t bad[] = { 0, 3, 24, 100, 4097, SIZE_MAX };
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		errno = 0;
		assert_null(_aligned_malloc(16, opaque(bad[i])));
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_null(_aligned_realloc(NULL, 16, opaque(bad[i])));
		assert_int_equal(errno, EINVAL);
	}
	errno = 0;
	assert_null(_aligned_malloc(opaque(SIZE_MAX - 100), 64));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(_aligned_recalloc(NULL, opaque(SIZE_MAX / 2), 4, 64));
	assert_int_equal(errno, ENOMEM);
}

static void
test_realloc_moves(void **state)
{
	(void)state;
	for (size_t a = 16; a <= 64 * KiB; a *= 4) {
		size_t n = 10;
		unsigned char *p = _aligned_realloc(NULL, n, a);
		assert_non_null(p);
		pat_fill(p, n, a);
		while (n < 2 * MiB) {
			size_t m = n * 3;
			p = _aligned_realloc(p, opaque(m), a);
			assert_non_null(p);
			assert_aligned(p, a);
			if (!pat_ok(p, n, a))
				fail_msg("contents lost at %zu -> %zu, align %zu",
				    n, m, a);
			pat_fill(p, m, a);
			n = m;
		}
		/* Shrinking keeps the front and the alignment. */
		p = _aligned_realloc(p, 100, a);
		assert_non_null(p);
		assert_aligned(p, a);
		assert_true(pat_ok(p, 100, a));
		/* A bigger alignment moves it. */
		p = _aligned_realloc(p, 100, a * 64);
		assert_non_null(p);
		assert_aligned(p, a * 64);
		assert_true(pat_ok(p, 100, a));
		assert_null(_aligned_realloc(p, 0, a));	/* frees */
	}
}

static void
test_recalloc(void **state)
{
	(void)state;
	unsigned char *p = _aligned_recalloc(NULL, 10, 10, 128);
	assert_non_null(p);
	assert_aligned(p, 128);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
	memset(p, 7, 100);
	p = _aligned_recalloc(p, 10, 1000, 128);
	assert_non_null(p);
	assert_aligned(p, 128);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], 7);
	for (int i = 100; i < 10000; i++)
		assert_int_equal(p[i], 0);
	_aligned_free(p);
}

/* Not overridden: the CRT's own block, which our _aligned_free forwards. */
static void
test_crt_offset_blocks(void **state)
{
	(void)state;
	for (int i = 0; i < 500; i++) {
		char *p = _aligned_offset_malloc(100, 64, 8);
		assert_non_null(p);
		assert_aligned(p + 8, 64);
		assert_false(is_ours(p));
		p = _aligned_offset_realloc(p, 300, 64, 8);
		assert_non_null(p);
		_aligned_free(p);
	}
	assert_int_equal(_heapchk(), _HEAPOK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alignments),
		cmocka_unit_test(test_bad_alignment),
		cmocka_unit_test(test_realloc_moves),
		cmocka_unit_test(test_recalloc),
		cmocka_unit_test(test_crt_offset_blocks),
	};
	return cmocka_run_group_tests_name("aligned", tests, NULL, NULL);
}
