/*
 * realloc / reallocarray semantics.  Catches: contents lost or truncated when
 * a block moves between size classes, from small to large to huge (mmap) and
 * back; in-place grow/shrink paths that mis-size the block (usable size
 * below the request); realloc(p, 0) not freeing/returning NULL (glibc 2.36
 * behaviour); realloc(NULL, n) not acting as malloc; a failed realloc
 * freeing or damaging the old block; reallocarray overflow not detected.
 */
#include <pthread.h>

#include "api_common.h"

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
test_realloc_null(void **state)
{
	(void)state;
	void *p = realloc(NULL, opaque(0));
	assert_non_null(p);
	assert_aligned(p, 16);
	free(p);
	for (size_t n = 1; n < 100000; n = n * 3 + 1) {
		p = realloc(NULL, opaque(n));
		assert_non_null(p);
		assert_aligned(p, 16);
		assert_true(malloc_usable_size(p) >= n);
		memset(p, 1, n);
		free(p);
	}
}

static unsigned long long
allocated_bytes(void)
{
	unsigned long long v = 0;
	assert_int_equal(pc_stat_get("allocated", &v), 0);
	return v;
}

/*
 * glibc 2.36: realloc(p, 0) with p != NULL frees p and returns NULL.  Done
 * many times per size after a warm-up round: "allocated" (which counts the
 * thread's cached objects) must not grow by more than a cache refill,
 * far less than the blocks would add up to if they were leaked.
 */
static void
test_realloc_zero_frees(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 100, 5000, 40000, 300000, 9 * MiB };
	const unsigned long long slack = 64 * KiB;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		/* enough rounds that leaked blocks would pass 1 MiB */
		int rounds = n >= 1 * MiB / 200 ? 200 : (int)(1 * MiB / n) + 1;
		unsigned long long base = 0;
		for (int r = -1; r < rounds; r++) {
			if (r == 0)
				base = allocated_bytes();
			void *p = malloc(opaque(n));
			assert_non_null(p);
			memset(p, 3, n < 64 * KiB ? n : 64 * KiB);
			void *q = realloc(p, opaque(0));
			assert_null(q);
		}
		unsigned long long now = allocated_bytes();
		if (now > base + slack)
			fail_msg("realloc(p, 0) of %zu-byte blocks: allocated "
			    "%llu -> %llu over %d calls", n, base, now, rounds);
		/* reallocarray(p, 0, n) is realloc(p, 0) too */
		for (int r = 0; r < rounds; r++) {
			void *p = malloc(opaque(n));
			assert_non_null(p);
			assert_null(reallocarray(p, opaque(0), opaque(n)));
		}
		now = allocated_bytes();
		if (now > base + slack)
			fail_msg("reallocarray(p, 0, %zu): allocated %llu -> %llu "
			    "over %d calls", n, base, now, rounds);
	}
	void *p = malloc(10);
	assert_non_null(p);
	free(p);
}

/* Walk through a size sequence growing and shrinking across all the
 * allocator's size regimes; the common prefix must survive every step. */
static void
walk_sizes(const size_t *sizes, size_t count)
{
	size_t cur = sizes[0];
	unsigned char *p = malloc(opaque(cur));
	assert_non_null(p);
	pat_fill(p, cur, 0xabc);
	for (size_t i = 1; i < count; i++) {
		size_t n = sizes[i];
		unsigned char *q = realloc(p, opaque(n));
		if (q == NULL)
			fail_msg("realloc(%zu -> %zu) failed", cur, n);
		assert_aligned(q, 16);
		assert_true(malloc_usable_size(q) >= n);
		size_t keep = cur < n ? cur : n;
		size_t bad = pat_check(q, keep, 0xabc);
		if (bad != SIZE_MAX)
			fail_msg("realloc %zu -> %zu: byte %zu lost", cur, n, bad);
		/* extend the pattern (a function of the offset) */
		for (size_t j = keep; j < n; j++)
			q[j] = pat_byte(0xabc, j);
		p = q;
		cur = n;
	}
	free(p);
}

static void
test_realloc_across_regimes(void **state)
{
	(void)state;
	static const size_t up[] = { 1, 8, 15, 16, 17, 24, 32, 48, 64, 100,
	    128, 200, 256, 500, 512, 1000, 1024, 2000, 2048, 4000, 4096, 4097,
	    8192, 10000, 16384, 16385, 30000, 32768, 32769, 40000, 65536,
	    100000, 131072, 262144, 500000, 1 * MiB, 1 * MiB + 1, 2 * MiB,
	    3 * MiB, 4 * MiB, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 12 * MiB,
	    16 * MiB, 64 * MiB };
	static const size_t down[] = { 64 * MiB, 16 * MiB, 9 * MiB, 8 * MiB,
	    7 * MiB, 3 * MiB, 1 * MiB, 500000, 100000, 65536, 40000, 32768,
	    20000, 16384, 9000, 4096, 4000, 1000, 256, 100, 17, 16, 1 };
	static const size_t zigzag[] = { 10, 64 * MiB, 20, 3 * MiB, 40000,
	    9 * MiB, 100, 100000, 1 * MiB, 2000, 33000, 31000, 8 * MiB,
	    7 * MiB, 16, 12 * MiB, 11 * MiB, 13 * MiB, 50 };
	walk_sizes(up, sizeof(up) / sizeof(up[0]));
	walk_sizes(down, sizeof(down) / sizeof(down[0]));
	walk_sizes(zigzag, sizeof(zigzag) / sizeof(zigzag[0]));
}

/* Grow one byte at a time (the typical string-builder pattern) and shrink
 * one byte at a time, checking contents each step. */
static void
test_realloc_byte_steps(void **state)
{
	(void)state;
	unsigned char *p = NULL;
	size_t n;
	for (n = 1; n <= 20000; n++) {
		p = realloc(p, opaque(n));
		assert_non_null(p);
		p[n - 1] = (unsigned char)(n * 31);
		if ((n & 1023) == 0)
			for (size_t j = 0; j < n; j++)
				assert_int_equal(p[j], (unsigned char)((j + 1) * 31));
	}
	for (n = 20000; n >= 1; n--) {
		p = realloc(p, opaque(n));
		assert_non_null(p);
		assert_int_equal(p[n - 1], (unsigned char)(n * 31));
	}
	free(p);
}

/* Random walk of realloc over many live blocks with a fixed seed. */
static void
test_realloc_random_walk(void **state)
{
	(void)state;
	enum { N = 256, STEPS = 60000 };
	unsigned char *v[N] = {0};
	size_t sz[N] = {0};
	uint64_t x = 0x1234567;
	for (int s = 0; s < STEPS; s++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int i = (int)(x % N);
		size_t n;
		switch ((x >> 20) % 16) {
		case 0: n = 0; break;
		case 1: n = (x >> 30) % 500000; break;
		case 2: n = (x >> 30) % 64 * 1024; break;
		default: n = (x >> 30) % 3000; break;
		}
		if (s % 5000 == 4999)
			n = 9 * MiB + (x >> 40) % 100000;
		unsigned char *q = realloc(v[i], opaque(n));
		if (n == 0 && v[i] != NULL) {
			assert_null(q);	/* freed */
			v[i] = NULL;
			sz[i] = 0;
			continue;
		}
		assert_non_null(q);
		assert_aligned(q, 16);
		size_t keep = sz[i] < n ? sz[i] : n;
		for (size_t j = 0; j < keep; j++)
			if (q[j] != (unsigned char)(i + j))
				fail_msg("step %d: realloc %zu -> %zu lost byte %zu",
				    s, sz[i], n, j);
		for (size_t j = keep; j < n; j++)
			q[j] = (unsigned char)(i + j);
		v[i] = q;
		sz[i] = n;
	}
	for (int i = 0; i < N; i++)
		free(v[i]);
}

static void
expect_realloc_fail(size_t old, size_t n)
{
	unsigned char *p = malloc(opaque(old));
	assert_non_null(p);
	pat_fill(p, old, old);
	errno = 0;
	void *q = realloc(opaque_ptr(p), opaque(n));
	if (q != NULL)
		fail_msg("realloc(%zu -> %zu) succeeded", old, n);
	assert_int_equal(errno, ENOMEM);
	assert_pattern(p, old, old);
	/* The old block is still ours: usable and freeable */
	assert_true(malloc_usable_size(p) >= old);
	q = realloc(p, opaque(old + 10));
	assert_non_null(q);
	assert_pattern(q, old, old);
	free(q);
}

static void
test_realloc_failure_keeps_block(void **state)
{
	(void)state;
	static const size_t olds[] = { 1, 100, 4000, 40000, 300000,
	    3 * MiB, 10 * MiB };
	static const size_t bad[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096,
	    SIZE_MAX - 8 * MiB, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
	    (size_t)1 << 62, (size_t)1 << 48 };
	for (size_t o = 0; o < sizeof(olds) / sizeof(olds[0]); o++)
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++)
			expect_realloc_fail(olds[o], bad[b]);
}

static void
test_reallocarray(void **state)
{
	(void)state;
	int *a = reallocarray(NULL, opaque(10), sizeof(int));
	assert_non_null(a);
	for (int i = 0; i < 10; i++)
		a[i] = i;
	int *b = reallocarray(a, opaque(100000), sizeof(int));
	assert_non_null(b);
	for (int i = 0; i < 10; i++)
		assert_int_equal(b[i], i);
	/* overflow: old block left intact */
	errno = 0;
	assert_null(reallocarray(opaque_ptr(b), opaque(SIZE_MAX / 2 + 1), opaque(2)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(reallocarray(opaque_ptr(b), opaque((size_t)1 << 32),
	    opaque(((size_t)1 << 32) + 1)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(reallocarray(opaque_ptr(b), opaque(SIZE_MAX / 4), opaque(4)));
	assert_int_equal(errno, ENOMEM);
	for (int i = 0; i < 10; i++)
		assert_int_equal(b[i], i);
	errno = 0;
	assert_null(reallocarray(NULL, opaque(SIZE_MAX), opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	int *c = reallocarray(opaque_ptr(b), opaque(5), sizeof(int));
	assert_non_null(c);
	for (int i = 0; i < 5; i++)
		assert_int_equal(c[i], i);
	/* reallocarray(p, 0, n) is realloc(p, 0): frees, returns NULL */
	assert_null(reallocarray(c, opaque(0), sizeof(int)));
	void *d = reallocarray(NULL, opaque(0), opaque(0));
	assert_non_null(d);
	free(d);
}

/* Shrinking a large/huge block in place then growing it again: the tail
 * that was given back must not still be considered ours twice. */
static void
test_shrink_then_neighbours(void **state)
{
	(void)state;
	for (int r = 0; r < 20; r++) {
		size_t big = (r % 2) ? 12 * MiB : 600 * KiB;
		unsigned char *p = malloc(opaque(big));
		assert_non_null(p);
		pat_fill(p, 4096, 7);
		unsigned char *q = realloc(p, opaque(big / 3));
		assert_non_null(q);
		assert_pattern(q, 4096, 7);
		/* allocate neighbours that might land in the released tail */
		void *n1 = malloc(opaque(big / 3));
		void *n2 = malloc(opaque(big / 4));
		assert_non_null(n1);
		assert_non_null(n2);
		memset(n1, 0x77, big / 3);
		memset(n2, 0x66, big / 4);
		memset(q + 4096, 0x55, big / 3 - 4096);
		unsigned char *g = realloc(q, opaque(big));
		assert_non_null(g);
		assert_pattern(g, 4096, 7);
		for (size_t j = 4096; j < big / 3; j++)
			if (g[j] != 0x55)
				fail_msg("byte %zu lost after grow", j);
		memset(g, 0x44, big);
		for (size_t j = 0; j < big / 3; j++)
			assert_int_equal(((unsigned char *)n1)[j], 0x77);
		for (size_t j = 0; j < big / 4; j++)
			assert_int_equal(((unsigned char *)n2)[j], 0x66);
		free(n1);
		free(n2);
		free(g);
	}
}

/* A block aligned past 2 MiB is mapped on its own whatever its size;
 * realloc to its size, or a little less, keeps it where it is (the
 * fuzzer found it moved: 16783 bytes aligned to 4 MiB). */
static void
test_realloc_same_overaligned(void **state)
{
	(void)state;
	static const size_t sizes[] = { 16783, 600 * KiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		void *p = NULL;
		assert_int_equal(pc_posix_memalign(&p, 4 * MiB, opaque(n)), 0);
		pat_fill(p, n, 3);
		unsigned char *q = pc_realloc(p, opaque(n));
		assert_ptr_equal(q, p);
		q = pc_realloc(q, opaque(n - n / 8));
		assert_ptr_equal(q, p);
		assert_pattern(q, n - n / 8, 3);
		pc_free(q);
	}
}

/*
 * A buffer grown by a quarter at a time from a kilobyte to past the huge
 * threshold, with a block allocated after each step so that it cannot
 * always grow in place: from a few megabytes on it moves to a mapping of
 * its own and is remapped from then on.  Every byte written stays, at every
 * step, in every cycle (the threshold rises after the first).
 */
static unsigned char
grow_byte(size_t i, unsigned seed)
{
	return (unsigned char)((i >> 12) * 31 + (i & 4095) + seed);
}

/* Returns how many huge blocks there are more than before, at the end. */
static long long
grow_buffer(size_t max, unsigned seed)
{
	unsigned long long huge0, huge1;
	assert_int_equal(pc_stat_get("nhuge", &huge0), 0);
	unsigned char *p = NULL;
	size_t n = 0;
	void *block[64];
	unsigned nblock = 0;
	while (n < max) {
		size_t m = n < 1024 ? 1024 : n + n / 4 + 1;
		unsigned char *q = pc_realloc(p, m);
		assert_non_null(q);
		assert_true(pc_malloc_usable_size(q) >= m);
		for (size_t i = 0; i < n; i += 4093)
			assert_int_equal(q[i], grow_byte(i, seed));
		if (n != 0)
			assert_int_equal(q[n - 1], grow_byte(n - 1, seed));
		for (size_t i = n; i < m; i++)
			q[i] = grow_byte(i, seed);
		p = q;
		n = m;
		if (nblock < 64) {
			/* Blocks of a megabyte come from the buffer's heap. */
			size_t b = n < MiB ? 40000 : MiB + nblock * 4096;
			block[nblock] = pc_malloc(opaque(b));
			assert_non_null(block[nblock]);
			nblock++;
		}
	}
	assert_int_equal(pc_stat_get("nhuge", &huge1), 0);
	for (unsigned i = 0; i < nblock; i++)
		pc_free(block[i]);
	pc_free(p);
	return (long long)huge1 - (long long)huge0;
}

static void
test_realloc_grows_big_buffer(void **state)
{
	(void)state;
	/* Below the huge size, the buffer is huge only if it was adopted
	 * (not on Windows: it cannot move pages, so it copies). */
#ifdef _WIN32
	assert_int_equal(grow_buffer(48 * MiB, 9), 0);
#else
	assert_int_equal(grow_buffer(48 * MiB, 9), 1);
#endif
	for (unsigned cycle = 0; cycle < 3; cycle++)
		grow_buffer(80 * MiB, cycle);
}

static void *
grow_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (unsigned cycle = 0; cycle < 4; cycle++)
		grow_buffer(12 * MiB, seed + cycle);
	return NULL;
}

/* Threads growing buffers at once (more threads than cores, so a move is
 * often preempted halfway): no buffer loses a byte to another's move. */
static void
test_realloc_grows_in_threads(void **state)
{
	(void)state;
	pthread_t t[6];
	for (uintptr_t i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, grow_worker,
		    (void *)(i * 17)), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_realloc_null),
		cmocka_unit_test(test_realloc_zero_frees),
		cmocka_unit_test(test_realloc_across_regimes),
		cmocka_unit_test(test_realloc_byte_steps),
		cmocka_unit_test(test_realloc_random_walk),
		cmocka_unit_test(test_realloc_failure_keeps_block),
		cmocka_unit_test(test_reallocarray),
		cmocka_unit_test(test_shrink_then_neighbours),
		cmocka_unit_test(test_realloc_same_overaligned),
		cmocka_unit_test(test_realloc_grows_big_buffer),
		cmocka_unit_test(test_realloc_grows_in_threads),
	};
	return cmocka_run_group_tests_name("realloc", tests, NULL, NULL);
}
