/*
 * Producer/consumer: producers allocate blocks of all sizes (small, large
 * > 32 KiB, huge > 1 MiB, with malloc, calloc, realloc-grown and aligned
 * allocations), pattern them and hand them to consumers through a queue;
 * consumers verify, sometimes realloc or pass them on to another consumer,
 * and free them.  Nearly every free is a cross-thread (remote) free.
 * Catches: lost or double-processed remote frees (blocks reused while still
 * queued -> pattern mismatch), remote-free lists corrupted under
 * contention, owner-thread confusion on realloc of a foreign-thread block,
 * and memory not being reclaimed (RSS explosion -> OOM / watchdog).
 */
#include "stress_common.h"

#define TOTAL_ITEMS 600000
#define QUEUE_CAP 1024

static queue_t q;
static atomic_long consumed;

static item_t
make_item(rng_t *r)
{
	item_t it = { 0 };
	size_t n = rng_size(r, 3);
	void *p = NULL;
	switch (rng_below(r, 8)) {
	case 0:
		p = calloc(n, 1);
		CHECK(p != NULL, "calloc(%zu)", n);
		check_zero(p, n < 8192 ? n : 8192, "producer calloc");
		break;
	case 1: {
		/* grow through realloc so the block crosses size classes */
		if (n == 0)
			n = 1;	/* realloc(p, 0) would free */
		size_t m = n / 4 + 1;
		p = malloc(m);
		CHECK(p != NULL, "malloc(%zu)", m);
		memset(p, 0x5a, m);
		p = realloc(p, n);
		CHECK(p != NULL, "realloc(%zu)", n);
		break;
	}
	case 2: {
		size_t a = (size_t)32 << rng_below(r, 12);	/* 32 .. 64 KiB */
		p = aligned_alloc(a, n);
		CHECK(p != NULL, "aligned_alloc(%zu, %zu)", a, n);
		it.align = a;
		break;
	}
	default:
		p = malloc(n);
		CHECK(p != NULL, "malloc(%zu)", n);
		break;
	}
	CHECK(((uintptr_t)p & 15) == 0, "misaligned %p", p);
	it.p = p;
	it.size = n;
	it.seed = block_seed(p, n);
	pat_fill(p, n, it.seed);
	return it;
}

static void
verify_item(const item_t *it, const char *who)
{
	CHECK(it->align == 0 || ((uintptr_t)it->p & (it->align - 1)) == 0,
	    "%s: %p not aligned to %zu", who, it->p, it->align);
	CHECK(malloc_usable_size(it->p) >= it->size, "%s: usable %zu < %zu",
	    who, malloc_usable_size(it->p), it->size);
	PAT_VERIFY(it->p, it->size, it->seed, who);
}

static void *
producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	rng_t r;
	rng_seed(&r, 1000 + id);
	int nprod = stress_threads / 2 > 0 ? stress_threads / 2 : 1;
	long items = SCALED(TOTAL_ITEMS) / nprod;
	/* a few blocks that the producer keeps and frees itself, to mix
	 * local and remote frees in the same slabs */
	item_t keep[64];
	memset(keep, 0, sizeof(keep));
	for (long i = 0; i < items; i++) {
		item_t it = make_item(&r);
		if (rng_below(&r, 8) == 0) {
			item_t *k = &keep[rng_below(&r, 64)];
			if (k->p) {
				verify_item(k, "producer-local");
				free(k->p);
			}
			*k = it;
			continue;
		}
		queue_push(&q, it);
	}
	for (int i = 0; i < 64; i++)
		if (keep[i].p) {
			verify_item(&keep[i], "producer-local");
			free(keep[i].p);
		}
	queue_producer_done(&q);
	return NULL;
}

static void *
consumer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	rng_t r;
	rng_seed(&r, 5000 + id);
	item_t it;
	while (queue_pop(&q, &it)) {
		verify_item(&it, "consumer");
		unsigned d = (unsigned)rng_below(&r, 10);
		if (d == 0 && it.hops < 3) {
			/* pass it on to another consumer */
			it.hops++;
			if (queue_try_push(&q, it))
				continue;
		}
		if (d <= 2) {
			/* realloc a block allocated by another thread */
			size_t n = d == 1 ? it.size / 2 : it.size + 1000;
			void *p = realloc(it.p, n);
			CHECK(p != NULL || n == 0, "realloc(%zu -> %zu)", it.size, n);
			if (p == NULL) {
				atomic_fetch_add(&consumed, 1);
				continue;
			}
			size_t keep = it.size < n ? it.size : n;
			size_t bad = pat_find_bad_prefix(p, it.size, keep, it.seed);
			CHECK(bad == SIZE_MAX, "cross-thread realloc lost data at %zu",
			    bad);
			it.p = p;
			it.size = n;
			it.seed = block_seed(p, n);
			it.align = 0;
			pat_fill(p, n, it.seed);
			if (d == 2 && it.hops < 3) {
				it.hops++;
				if (queue_try_push(&q, it))
					continue;
			}
			verify_item(&it, "consumer after realloc");
		}
		if (d == 3 && it.size > 0)
			pc_free_sized(it.p, it.size);
		else
			free(it.p);
		atomic_fetch_add(&consumed, 1);
	}
	return NULL;
}

static void
test_producer_consumer(void **state)
{
	(void)state;
	stress_begin();
	int nt = stress_threads < 2 ? 2 : stress_threads;
	int nprod = nt / 2, ncons = nt - nprod;
	queue_init(&q, QUEUE_CAP, nprod);
	atomic_store(&consumed, 0);
	pthread_t *t = calloc((size_t)nt, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < ncons; i++)
		xpthread_create(&t[i], consumer, (void *)(uintptr_t)i);
	for (int i = 0; i < nprod; i++)
		xpthread_create(&t[ncons + i], producer, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++)
		xpthread_join(t[i]);
	assert_int_equal(q.count, 0);
	assert_true(atomic_load(&consumed) > 0);
	queue_destroy(&q);
	free(t);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_producer_consumer),
	};
	return STRESS_RUN("stress_prodcons", tests);
}
