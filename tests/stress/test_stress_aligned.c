/*
 * Aligned allocations (posix_memalign, aligned_alloc, memalign, valloc,
 * alignments 16 B .. 4 MiB, all size regimes) created by some threads and
 * freed, realloc'ed or free_sized by others.  Catches: remote free of an
 * aligned block mapped back to the wrong slab/extent start (the pointer is
 * interior to an over-allocated region), leaks or double frees of the
 * alignment padding when freed from a non-owning thread, and usable size
 * of aligned blocks being wrong on the consumer side.
 */
#include "stress_common.h"

#define TOTAL_ITEMS 400000
#define QUEUE_CAP 512

static queue_t q;

static item_t
make_aligned(rng_t *r)
{
	item_t it = { 0 };
	unsigned d = (unsigned)rng_below(r, 100);
	size_t a;
	if (d < 70)
		a = (size_t)16 << rng_below(r, 8);		/* 16 .. 2 KiB */
	else if (d < 97)
		a = (size_t)4096 << rng_below(r, 5);		/* 4 .. 64 KiB */
	else
		a = (size_t)128 * KiB << rng_below(r, 6);	/* .. 4 MiB */
	size_t n = rng_size(r, 2);
	void *p = NULL;
	switch (rng_below(r, 4)) {
	case 0: {
		int rc = posix_memalign(&p, a, n);
		CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
		break;
	}
	case 1:
		p = aligned_alloc(a, n);
		break;
	case 2:
		p = memalign(a, n);
		break;
	case 3:
		p = valloc(n);
		a = 4096;
		break;
	}
	CHECK(p != NULL, "aligned alloc (%zu, %zu) failed", a, n);
	CHECK(((uintptr_t)p & (a - 1)) == 0, "%p not aligned to %zu", p, a);
	it.p = p;
	it.size = n;
	it.align = a;
	it.seed = block_seed(p, n);
	pat_fill(p, n, it.seed);
	return it;
}

static void *
producer(void *arg)
{
	rng_t r;
	rng_seed(&r, 40 + (uintptr_t)arg);
	int nprod = stress_threads / 2 > 0 ? stress_threads / 2 : 1;
	long items = SCALED(TOTAL_ITEMS) / nprod;
	for (long i = 0; i < items; i++) {
		item_t it = make_aligned(&r);
		if (rng_below(&r, 10) == 0) {
			/* local free, interleaved with remote ones */
			PAT_VERIFY(it.p, it.size, it.seed, "producer");
			free(it.p);
			continue;
		}
		queue_push(&q, it);
	}
	queue_producer_done(&q);
	return NULL;
}

static void *
consumer(void *arg)
{
	rng_t r;
	rng_seed(&r, 90 + (uintptr_t)arg);
	item_t it;
	while (queue_pop(&q, &it)) {
		CHECK(((uintptr_t)it.p & (it.align - 1)) == 0, "alignment lost");
		CHECK(malloc_usable_size(it.p) >= it.size,
		    "aligned block %p (align %zu): usable %zu < %zu", it.p,
		    it.align, malloc_usable_size(it.p), it.size);
		PAT_VERIFY(it.p, it.size, it.seed, "consumer");
		switch (rng_below(&r, 6)) {
		case 0: {
			size_t n = it.size / 2 + 1;
			void *p = realloc(it.p, n);
			CHECK(p != NULL, "realloc");
			size_t bad = pat_find_bad_prefix(p, it.size, n, it.seed);
			CHECK(bad == SIZE_MAX, "realloc of aligned block lost data "
			    "at %zu", bad);
			free(p);
			break;
		}
		case 1:
			pc_free_sized(it.p, it.size);
			break;
		default:
			free(it.p);
			break;
		}
	}
	return NULL;
}

static void
test_aligned_cross_thread(void **state)
{
	(void)state;
	stress_begin();
	int nt = stress_threads < 2 ? 2 : stress_threads;
	int nprod = nt / 2, ncons = nt - nprod;
	queue_init(&q, QUEUE_CAP, nprod);
	pthread_t *t = calloc((size_t)nt, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < ncons; i++)
		xpthread_create(&t[i], consumer, (void *)(uintptr_t)i);
	for (int i = 0; i < nprod; i++)
		xpthread_create(&t[ncons + i], producer, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++)
		xpthread_join(t[i]);
	assert_int_equal(q.count, 0);
	queue_destroy(&q);
	free(t);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aligned_cross_thread),
	};
	return STRESS_RUN("stress_aligned", tests);
}
