/*
 * The pc_* entry points.  Catches: a pc_* function that diverges from its
 * standard counterpart (different error handling, alignment, zeroing),
 * pc_* and standard names using different heaps (mixing pc_malloc/free and
 * malloc/pc_free must work), pc_free_sized mishandling a size between the
 * request and the usable size, pc_trim breaking the heap, and pc_version
 * disagreeing with the header.
 */
#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
test_pc_version(void **state)
{
	(void)state;
	assert_non_null(pc_version());
	assert_string_equal(pc_version(), PCMALLOC_VERSION);
}

static void
test_pc_malloc_free(void **state)
{
	(void)state;
	void *z = pc_malloc(opaque(0));
	void *z2 = pc_malloc(opaque(0));
	assert_non_null(z);
	assert_non_null(z2);
	assert_ptr_not_equal(z, z2);
	pc_free(z);
	pc_free(z2);
	pc_free(NULL);
	for (size_t n = 0; n <= 64 * KiB; n += (n < 1024 ? 1 : 97)) {
		unsigned char *p = pc_malloc(opaque(n));
		assert_non_null(p);
		assert_aligned(p, 16);
		size_t u = pc_malloc_usable_size(p);
		assert_true(u >= n);
		memset(p, 0xee, u);
		errno = 321;
		pc_free(p);
		assert_int_equal(errno, 321);
	}
	static const size_t big[] = { 100 * KiB, MiB, 3 * MiB, 9 * MiB,
	    64 * MiB, GiB };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		unsigned char *p = pc_malloc(opaque(big[i]));
		assert_non_null(p);
		assert_aligned(p, 16);
		touch_pages(p, big[i] < 64 * MiB ? big[i] : 4 * MiB);
		p[big[i] - 1] = 1;
		pc_free(p);
	}
	errno = 0;
	assert_null(pc_malloc(opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(pc_malloc(opaque((size_t)PTRDIFF_MAX + 1)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(pc_malloc(opaque(SIZE_MAX - 100)));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(pc_malloc_usable_size(NULL), 0);
}

static void
test_pc_mixing_with_std(void **state)
{
	(void)state;
	for (size_t n = 1; n < 20 * MiB; n = n * 5 + 3) {
		void *a = pc_malloc(opaque(n));
		void *b = malloc(opaque(n));
		void *c = pc_calloc(opaque(n), 1);
		void *d = calloc(opaque(1), opaque(n));
		assert_non_null(a);
		assert_non_null(b);
		assert_non_null(c);
		assert_non_null(d);
		assert_int_equal(pc_malloc_usable_size(b), malloc_usable_size(b));
		assert_int_equal(pc_malloc_usable_size(a), malloc_usable_size(a));
		a = realloc(a, opaque(n + 100));
		b = pc_realloc(b, opaque(n + 100));
		assert_non_null(a);
		assert_non_null(b);
		free(a);
		pc_free(b);
		free(c);
		pc_free(d);
	}
}

static void
test_pc_calloc(void **state)
{
	(void)state;
	for (size_t n = 0; n < 300 * KiB; n = n * 2 + 1) {
		unsigned char *p = pc_malloc(opaque(n));
		assert_non_null(p);
		memset(p, 0xff, n);
		pc_free(p);
		p = pc_calloc(opaque(n), 1);
		assert_non_null(p);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(p[i], 0);
		pc_free(p);
	}
	errno = 0;
	assert_null(pc_calloc(opaque(SIZE_MAX / 2 + 1), opaque(2)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(pc_calloc(opaque((size_t)1 << 32), opaque((size_t)1 << 32)));
	assert_int_equal(errno, ENOMEM);
	void *z = pc_calloc(0, 0);
	assert_non_null(z);
	pc_free(z);
}

static void
test_pc_realloc(void **state)
{
	(void)state;
	unsigned char *p = pc_realloc(NULL, opaque(10));
	assert_non_null(p);
	memcpy(p, "0123456789", 10);
	static const size_t steps[] = { 100, 5000, 40000, 2 * MiB, 10 * MiB,
	    30, 10 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		p = pc_realloc(p, opaque(steps[i]));
		assert_non_null(p);
		assert_aligned(p, 16);
		assert_memory_equal(p, "0123456789", 10);
	}
	errno = 0;
	assert_null(pc_realloc(p, opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	assert_memory_equal(p, "0123456789", 10);
	assert_null(pc_realloc(p, opaque(0)));	/* frees */
	p = pc_reallocarray(NULL, opaque(4), opaque(4));
	assert_non_null(p);
	memcpy(p, "abcdefghijklmnop", 16);
	errno = 0;
	assert_null(pc_reallocarray(p, opaque(SIZE_MAX / 2), opaque(3)));
	assert_int_equal(errno, ENOMEM);
	assert_memory_equal(p, "abcdefghijklmnop", 16);
	p = pc_reallocarray(p, opaque(1000), opaque(1000));
	assert_non_null(p);
	assert_memory_equal(p, "abcdefghijklmnop", 16);
	pc_free(p);
}

static void
test_pc_aligned(void **state)
{
	(void)state;
	for (size_t a = 1; a <= 64 * MiB; a <<= 1) {
		void *p = pc_aligned_alloc(opaque(a), opaque(a + 5));
		assert_non_null(p);
		assert_aligned(p, a > 16 ? a : 16);
		assert_true(pc_malloc_usable_size(p) >= a + 5);
		((char *)p)[a + 4] = 1;
		pc_free(p);
		p = pc_memalign(opaque(a), opaque(100));
		assert_non_null(p);
		assert_aligned(p, a > 16 ? a : 16);
		pc_free(p);
		if (a >= sizeof(void *)) {
			void *q = (void *)0x77;
			assert_int_equal(pc_posix_memalign(&q, opaque(a),
			    opaque(1000)), 0);
			assert_aligned(q, a > 16 ? a : 16);
			memset(q, 1, 1000);
			pc_free(q);
		}
	}
	void *q = (void *)0x77;
	assert_int_equal(pc_posix_memalign(&q, opaque(24), opaque(10)), EINVAL);
	assert_int_equal(pc_posix_memalign(&q, opaque(0), opaque(10)), EINVAL);
	assert_int_equal(pc_posix_memalign(&q, opaque(4), opaque(10)), EINVAL);
	assert_ptr_equal(q, (void *)0x77);
	assert_int_equal(pc_posix_memalign(&q, opaque(64), opaque(SIZE_MAX)),
	    ENOMEM);
	assert_ptr_equal(q, (void *)0x77);
	errno = 0;
	assert_null(pc_aligned_alloc(opaque(64), opaque(SIZE_MAX - 10)));
	assert_int_equal(errno, ENOMEM);
}

/* pc_free_sized with the requested size, and with any size up to the
 * usable size, for all regimes and for aligned blocks. */
static void
test_pc_free_sized(void **state)
{
	(void)state;
	for (size_t n = 1; n <= 64 * KiB; n += (n < 2048 ? 1 : 113)) {
		void *p = pc_malloc(opaque(n));
		assert_non_null(p);
		pc_free_sized(p, n);
		p = malloc(opaque(n));
		assert_non_null(p);
		size_t u = pc_malloc_usable_size(p);
		pc_free_sized(p, u);
		p = pc_calloc(opaque(n), 1);
		assert_non_null(p);
		pc_free_sized(p, n + (pc_malloc_usable_size(p) - n) / 2);
	}
	static const size_t big[] = { 100 * KiB, MiB, 3 * MiB, 9 * MiB,
	    64 * MiB };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		void *p = pc_malloc(opaque(big[i]));
		assert_non_null(p);
		pc_free_sized(p, big[i]);
		p = pc_aligned_alloc(opaque(4096), opaque(big[i]));
		assert_non_null(p);
		pc_free_sized(p, big[i]);
		p = pc_realloc(NULL, opaque(big[i]));
		assert_non_null(p);
		p = pc_realloc(p, opaque(big[i] / 2));
		assert_non_null(p);
		pc_free_sized(p, big[i] / 2);
	}
	for (size_t a = 16; a <= 8192; a <<= 1) {
		void *p = pc_aligned_alloc(opaque(a), opaque(77));
		assert_non_null(p);
		pc_free_sized(p, 77);
	}
	pc_free_sized(NULL, 0);
	pc_free_sized(NULL, 100);
	/* the heap still works and hands out sane blocks */
	void *v[100];
	for (int i = 0; i < 100; i++) {
		v[i] = pc_malloc(opaque((size_t)i * 50));
		assert_non_null(v[i]);
		pat_fill(v[i], (size_t)i * 50, (uintptr_t)i);
	}
	for (int i = 0; i < 100; i++) {
		assert_pattern(v[i], (size_t)i * 50, (uintptr_t)i);
		pc_free_sized(v[i], (size_t)i * 50);
	}
}

static void
test_pc_trim(void **state)
{
	(void)state;
	void *v[1000];
	for (int i = 0; i < 1000; i++)
		assert_non_null(v[i] = pc_malloc(opaque((size_t)i * 100)));
	for (int i = 0; i < 1000; i++)
		pc_free(v[i]);
	int rc = pc_trim();
	assert_true(rc == 0 || rc == 1);
	for (int i = 0; i < 1000; i++) {
		v[i] = pc_malloc(opaque((size_t)i * 100));
		assert_non_null(v[i]);
		memset(v[i], 2, (size_t)i * 100);
	}
	for (int i = 0; i < 1000; i++)
		pc_free(v[i]);
	rc = pc_trim();
	assert_true(rc == 0 || rc == 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_pc_version),
		cmocka_unit_test(test_pc_malloc_free),
		cmocka_unit_test(test_pc_mixing_with_std),
		cmocka_unit_test(test_pc_calloc),
		cmocka_unit_test(test_pc_realloc),
		cmocka_unit_test(test_pc_aligned),
		cmocka_unit_test(test_pc_free_sized),
		cmocka_unit_test(test_pc_trim),
	};
	return cmocka_run_group_tests_name("prefixed", tests, NULL, NULL);
}
