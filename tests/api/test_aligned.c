/*
 * Aligned allocation: posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc.  Catches: results not aligned for large alignments (up to
 * 64 MiB) or in one size regime only, aligned blocks whose usable size is
 * below the request or that overlap neighbours, freeing an aligned block
 * (interior of an over-allocated region) corrupting the heap, wrong EINVAL
 * handling (and *out being written on error), overflow when padding size by
 * the alignment (ENOMEM expected), pvalloc not rounding to a page.
 */
#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static const size_t align_sizes[] = { 0, 1, 15, 16, 17, 100, 1000, 4095,
    4096, 4097, 20000, 40000, 100000, 1 * MiB, 3 * MiB };

typedef void *(*alloc_fn)(size_t align, size_t size);

static void *
via_posix_memalign(size_t align, size_t size)
{
	void *p = (void *)0x1;
	if (align < sizeof(void *))
		align = sizeof(void *);
	int rc = posix_memalign(&p, align, size);
	if (rc != 0) {
		assert_ptr_equal(p, (void *)0x1);
		return NULL;
	}
	return p;
}

static void *
via_aligned_alloc(size_t align, size_t size)
{
	return aligned_alloc(opaque(align), opaque(size));
}

static void *
via_memalign(size_t align, size_t size)
{
	return memalign(opaque(align), opaque(size));
}

static void
check_one(alloc_fn fn, const char *name, size_t align, size_t size)
{
	unsigned char *p = fn(align, size);
	if (p == NULL)
		fail_msg("%s(%zu, %zu) failed, errno %d", name, align, size, errno);
	if ((uintptr_t)p % (align > 16 ? align : 16) != 0)
		fail_msg("%s(%zu, %zu) = %p misaligned", name, align, size,
		    (void *)p);
	size_t u = malloc_usable_size(p);
	if (u < size)
		fail_msg("%s(%zu, %zu): usable %zu", name, align, size, u);
	if (u <= 4 * MiB)
		memset(p, 0x3c, u);
	else {
		touch_pages(p, size);
		p[u - 1] = 1;
	}
	free(p);
}

static void
all_alignments(alloc_fn fn, const char *name)
{
	for (size_t a = 1; a <= 64 * MiB; a <<= 1) {
		for (size_t s = 0; s < sizeof(align_sizes) / sizeof(*align_sizes); s++)
			check_one(fn, name, a, align_sizes[s]);
		check_one(fn, name, a, a - 1);
		check_one(fn, name, a, a);
		check_one(fn, name, a, a + 1);
		if (a <= 16 * MiB)
			check_one(fn, name, a, 3 * a);
	}
}

static void
test_posix_memalign_alignments(void **state)
{
	(void)state;
	all_alignments(via_posix_memalign, "posix_memalign");
}

static void
test_aligned_alloc_alignments(void **state)
{
	(void)state;
	all_alignments(via_aligned_alloc, "aligned_alloc");
}

static void
test_memalign_alignments(void **state)
{
	(void)state;
	all_alignments(via_memalign, "memalign");
}

/* glibc: memalign(0, n) and memalign(alignment < 16, n) behave as malloc. */
static void
test_memalign_small_alignments(void **state)
{
	(void)state;
	for (size_t a = 0; a <= 16; a++) {
		if (a & (a - 1))
			continue;
		void *p = memalign(opaque(a), opaque(24));
		assert_non_null(p);
		assert_aligned(p, 16);
		memset(p, 1, 24);
		free(p);
	}
}

/* Many aligned blocks live at once, interleaved with plain mallocs:
 * no overlap, patterns intact. */
static void
test_aligned_live_mix(void **state)
{
	(void)state;
	enum { N = 2000 };
	unsigned char **v = calloc(N, sizeof(*v));
	size_t *sz = calloc(N, sizeof(*sz));
	assert_non_null(v);
	assert_non_null(sz);
	uint32_t x = 7;
	for (int i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		size_t align = (size_t)1 << ((x >> 16) % 17);	/* 1 .. 64 KiB */
		size_t n = (x >> 4) % ((i % 40) == 0 ? 200000 : 2500);
		if (i % 3 == 0)
			v[i] = malloc(opaque(n));
		else if (i % 3 == 1)
			v[i] = aligned_alloc(opaque(align), opaque(n));
		else {
			void *p = NULL;
			assert_int_equal(posix_memalign(&p,
			    align < sizeof(void *) ? sizeof(void *) : align, n), 0);
			v[i] = p;
		}
		assert_non_null(v[i]);
		if (i % 3)
			assert_aligned(v[i], align);
		sz[i] = n;
		pat_fill(v[i], n, (uintptr_t)i);
	}
	for (int i = 0; i < N; i += 2) {
		assert_pattern(v[i], sz[i], (uintptr_t)i);
		free(v[i]);
	}
	for (int i = 1; i < N; i += 2)
		assert_pattern(v[i], sz[i], (uintptr_t)i);
	for (int i = 1; i < N; i += 2)
		free(v[i]);
	free(v);
	free(sz);
}

/* realloc of over-aligned blocks (interior of an over-allocated region):
 * contents kept when growing or shrinking, and the result freeable. */
static void
test_realloc_aligned(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 100, 5000, 40000, 300000,
	    3 * MiB, 10 * MiB };
	for (size_t a = 32; a <= 64 * MiB; a <<= 1) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *p = aligned_alloc(opaque(a), opaque(n));
			assert_non_null(p);
			assert_aligned(p, a);
			pat_fill(p, n, n);
			size_t bigger = n * 3 + 1000, smaller = n / 3 + 1;
			unsigned char *q = realloc(p, opaque(bigger));
			assert_non_null(q);
			assert_aligned(q, 16);
			assert_pattern(q, n, n);
			unsigned char *r = realloc(q, opaque(smaller));
			assert_non_null(r);
			assert_pattern(r, smaller, n);
			assert_true(malloc_usable_size(r) >= smaller);
			free(r);
			/* shrink first, straight from the aligned block */
			p = memalign(opaque(a), opaque(n));
			assert_non_null(p);
			pat_fill(p, n, n + 1);
			q = realloc(p, opaque(smaller));
			assert_non_null(q);
			assert_pattern(q, smaller, n + 1);
			free(q);
		}
	}
}

static void
test_posix_memalign_einval(void **state)
{
	(void)state;
	static const size_t bad[] = { 0, 1, 2, 3, 4, 5, 7, 9, 12, 24, 48, 96,
	    100, 4095, 4097, 3 * 4096, ((size_t)1 << 20) + 8, SIZE_MAX,
	    SIZE_MAX - 7, ((size_t)1 << 63) + 8 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *p = (void *)0x1234;
		int rc = posix_memalign(&p, opaque(bad[i]), opaque(16));
		if (rc != EINVAL)
			fail_msg("posix_memalign(align %zu) = %d, want EINVAL",
			    bad[i], rc);
		assert_ptr_equal(p, (void *)0x1234);
	}
}

static void
test_posix_memalign_enomem(void **state)
{
	(void)state;
	static const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096,
	    SIZE_MAX - 64 * MiB, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
	    (size_t)1 << 62 };
	static const size_t aligns[] = { 8, 16, 64, 4096, 2 * MiB, 64 * MiB };
	for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *p = (void *)0x1234;
			int rc = posix_memalign(&p, opaque(aligns[a]),
			    opaque(sizes[s]));
			if (rc != ENOMEM)
				fail_msg("posix_memalign(%zu, %zu) = %d, want ENOMEM",
				    aligns[a], sizes[s], rc);
			assert_ptr_equal(p, (void *)0x1234);
		}
	}
	/* absurd but valid alignments */
	void *p = (void *)0x1234;
	int rc = posix_memalign(&p, opaque((size_t)1 << 62), opaque(16));
	assert_int_equal(rc, ENOMEM);
	assert_ptr_equal(p, (void *)0x1234);
	rc = posix_memalign(&p, opaque((size_t)1 << 63), opaque(1));
	assert_int_equal(rc, ENOMEM);
	assert_ptr_equal(p, (void *)0x1234);
}

static void
test_aligned_alloc_memalign_fail(void **state)
{
	(void)state;
	errno = 0;
	assert_null(aligned_alloc(opaque(64), opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(aligned_alloc(opaque(4096), opaque(SIZE_MAX - 4096)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(memalign(opaque(2 * MiB), opaque(SIZE_MAX - MiB)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(memalign(opaque(16), opaque((size_t)PTRDIFF_MAX + 1)));
	assert_int_equal(errno, ENOMEM);
	/* huge power-of-two alignment: cannot be satisfied */
	errno = 0;
	assert_null(memalign(opaque((size_t)1 << 62), opaque(1)));
	assert_true(errno == ENOMEM || errno == EINVAL);
	errno = 0;
	assert_null(aligned_alloc(opaque((size_t)1 << 63), opaque(1)));
	assert_true(errno == ENOMEM || errno == EINVAL);
	void *p = memalign(opaque(64), opaque(64));
	assert_non_null(p);
	free(p);
}

static void
test_valloc(void **state)
{
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 50000,
	    1 * MiB, 9 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = valloc(opaque(sizes[i]));
		assert_non_null(p);
		assert_aligned(p, page);
		assert_true(malloc_usable_size(p) >= sizes[i]);
		memset(p, 0x42, sizes[i]);
		free(p);
	}
	errno = 0;
	assert_null(valloc(opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
}

static void
test_pvalloc(void **state)
{
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 8191, 50000,
	    1 * MiB + 1, 9 * MiB + 3 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t want = (sizes[i] + page - 1) / page * page;
		unsigned char *p = pvalloc(opaque(sizes[i]));
		assert_non_null(p);
		assert_aligned(p, page);
		size_t u = malloc_usable_size(p);
		if (u < want)
			fail_msg("pvalloc(%zu): usable %zu < %zu", sizes[i], u, want);
		memset(p, 0x42, want);	/* the rounded-up size is ours */
		free(p);
	}
	unsigned char *p = pvalloc(opaque(0));
	assert_non_null(p);
	assert_aligned(p, page);
	free(p);
	errno = 0;
	assert_null(pvalloc(opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(pvalloc(opaque(SIZE_MAX - page + 2)));	/* rounds to 0 */
	assert_int_equal(errno, ENOMEM);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_posix_memalign_alignments),
		cmocka_unit_test(test_aligned_alloc_alignments),
		cmocka_unit_test(test_memalign_alignments),
		cmocka_unit_test(test_memalign_small_alignments),
		cmocka_unit_test(test_aligned_live_mix),
		cmocka_unit_test(test_realloc_aligned),
		cmocka_unit_test(test_posix_memalign_einval),
		cmocka_unit_test(test_posix_memalign_enomem),
		cmocka_unit_test(test_aligned_alloc_memalign_fail),
		cmocka_unit_test(test_valloc),
		cmocka_unit_test(test_pvalloc),
	};
	return cmocka_run_group_tests_name("aligned", tests, NULL, NULL);
}
