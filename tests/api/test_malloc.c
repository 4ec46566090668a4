/*
 * malloc/free API semantics.  Catches: misaligned results, malloc(0)
 * returning NULL or a shared pointer, overlapping blocks (pattern checks on
 * every size 0..64 KiB with many blocks live), size-class rounding errors
 * (usable size < request), missing ENOMEM / overflow in size rounding for
 * huge requests (SIZE_MAX, PTRDIFF_MAX+1, sizes just below SIZE_MAX), free
 * clobbering errno, and big (1 GiB) mappings failing.
 */
#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
test_malloc_zero_unique(void **state)
{
	(void)state;
	enum { N = 1000 };
	void **v = malloc(N * sizeof(*v));
	assert_non_null(v);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(opaque(0));
		assert_non_null(v[i]);
		assert_aligned(v[i], 16);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(v[i], v[j]);
	}
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

static void
test_free_null(void **state)
{
	(void)state;
	errno = 4242;
	free(NULL);
	assert_int_equal(errno, 4242);
}

/* Every size 0..64 KiB: alignment, usable size, whole usable size writable,
 * and no overlap with the 64 most recent live blocks. */
static void
test_every_size_to_64k(void **state)
{
	(void)state;
	enum { LIVE = 64 };
	void *live[LIVE] = {0};
	size_t live_n[LIVE] = {0};
	for (size_t n = 0; n <= 64 * KiB; n++) {
		size_t slot = n % LIVE;
		if (live[slot]) {
			assert_pattern(live[slot], live_n[slot],
			    (uintptr_t)live[slot] ^ live_n[slot]);
			free(live[slot]);
		}
		void *p = malloc(opaque(n));
		assert_non_null(p);
		assert_aligned(p, 16);
		size_t u = malloc_usable_size(p);
		if (u < n)
			fail_msg("malloc(%zu): usable size %zu", n, u);
		memset(p, 0xa5, u);	/* the whole usable size is ours */
		pat_fill(p, n, (uintptr_t)p ^ n);
		live[slot] = p;
		live_n[slot] = n;
	}
	for (size_t i = 0; i < LIVE; i++) {
		assert_pattern(live[i], live_n[i], (uintptr_t)live[i] ^ live_n[i]);
		free(live[i]);
	}
}

/* Many blocks of one size live at once: distinct, non-overlapping. */
static void
test_many_same_size(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 8, 16, 24, 48, 100, 128, 500, 1024,
	    3000, 4096, 8192, 10000, 16384, 32768, 40000, 65536, 100 * 1024 };
	enum { N = 512 };
	void *v[N];
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		for (int i = 0; i < N; i++) {
			v[i] = malloc(opaque(n));
			assert_non_null(v[i]);
			assert_aligned(v[i], 16);
			pat_fill(v[i], n, (uintptr_t)i * 7 + n);
		}
		for (int i = 0; i < N; i++)
			assert_pattern(v[i], n, (uintptr_t)i * 7 + n);
		/* Free every other one, reallocate, check again. */
		for (int i = 0; i < N; i += 2)
			free(v[i]);
		for (int i = 0; i < N; i += 2) {
			v[i] = malloc(opaque(n));
			assert_non_null(v[i]);
			pat_fill(v[i], n, (uintptr_t)i * 7 + n);
		}
		for (int i = 0; i < N; i++) {
			assert_pattern(v[i], n, (uintptr_t)i * 7 + n);
			free(v[i]);
		}
	}
}

static void
test_big_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = { 100 * KiB, 1 * MiB, 3 * MiB,
	    8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 64 * MiB, 1 * GiB };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		unsigned char *p = malloc(opaque(n));
		if (p == NULL)
			fail_msg("malloc(%zu) failed, errno %d", n, errno);
		assert_aligned(p, 16);
		assert_true(malloc_usable_size(p) >= n);
		if (n <= 64 * MiB) {
			memset(p, 0x11, n);
			assert_int_equal(p[n - 1], 0x11);
		} else {
			touch_pages(p, 4 * MiB);	/* first 4 MiB */
			p[n / 2] = 1;
			p[n - 1] = 2;
			assert_int_equal(p[n - 1], 2);
		}
		free(p);
	}
	/* Again, now that the allocator may cache them. */
	for (int r = 0; r < 4; r++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			unsigned char *p = malloc(opaque(sizes[s]));
			assert_non_null(p);
			p[0] = 1;
			p[sizes[s] - 1] = 1;
			free(p);
		}
	}
}

static void
expect_enomem_malloc(size_t n)
{
	errno = 0;
	void *p = malloc(opaque(n));
	if (p != NULL)
		fail_msg("malloc(%zu) succeeded: %p", n, p);
	if (errno != ENOMEM)
		fail_msg("malloc(%zu): errno %d, want ENOMEM", n, errno);
}

static void
test_malloc_enomem(void **state)
{
	(void)state;
	expect_enomem_malloc(SIZE_MAX);
	expect_enomem_malloc(SIZE_MAX - 1);
	for (size_t d = 1; d <= 64; d++)
		expect_enomem_malloc(SIZE_MAX - d * 7);
	expect_enomem_malloc(SIZE_MAX - 4096);
	expect_enomem_malloc(SIZE_MAX - 2 * MiB);
	expect_enomem_malloc(SIZE_MAX - 8 * MiB);
	expect_enomem_malloc(SIZE_MAX / 2);
	expect_enomem_malloc((size_t)PTRDIFF_MAX + 1);
	expect_enomem_malloc((size_t)PTRDIFF_MAX);
	expect_enomem_malloc((size_t)1 << 62);
	expect_enomem_malloc((size_t)1 << 48);	/* beyond the VA space */
	/* Still works afterwards. */
	void *p = malloc(opaque(100));
	assert_non_null(p);
	free(p);
}

/* free() must not change errno, whatever it has to do (cache, return a
 * slab, unmap a huge block). */
static void
test_free_preserves_errno(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 16, 1000, 16 * KiB, 40 * KiB,
	    200 * KiB, 2 * MiB, 9 * MiB, 64 * MiB };
	for (int r = 0; r < 3; r++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *p = malloc(opaque(sizes[s]));
			assert_non_null(p);
			errno = 12345;
			free(p);
			assert_int_equal(errno, 12345);
		}
	}
	/* Emptying a whole slab / run. */
	enum { N = 4096 };
	void **v = malloc(N * sizeof(*v));
	assert_non_null(v);
	for (int i = 0; i < N; i++)
		assert_non_null(v[i] = malloc(opaque(64)));
	for (int i = 0; i < N; i++) {
		errno = 777;
		free(v[i]);
		assert_int_equal(errno, 777);
	}
	free(v);
}

/* Alignment of every result whatever the size mix. */
static void
test_alignment_mixed(void **state)
{
	(void)state;
	enum { N = 20000 };
	void **v = malloc(N * sizeof(*v));
	assert_non_null(v);
	uint32_t x = 12345;
	for (int i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		size_t n = (x >> 8) % ((i % 100) == 0 ? 300000 : 2000);
		v[i] = malloc(opaque(n));
		assert_non_null(v[i]);
		assert_aligned(v[i], 16);
		if (n)
			((char *)v[i])[n - 1] = 1;
	}
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_malloc_zero_unique),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_every_size_to_64k),
		cmocka_unit_test(test_many_same_size),
		cmocka_unit_test(test_big_sizes),
		cmocka_unit_test(test_malloc_enomem),
		cmocka_unit_test(test_free_preserves_errno),
		cmocka_unit_test(test_alignment_mixed),
	};
	return cmocka_run_group_tests_name("malloc", tests, NULL, NULL);
}
