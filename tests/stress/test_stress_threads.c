/*
 * Thousands of short-lived threads, created in waves.  Each thread
 * allocates and frees, frees some blocks left by threads of the previous
 * (already dead) wave, and leaves blocks behind for the main thread.
 * Once every block is freed, "allocated" (which counts objects in thread
 * caches as in use) must be back to its value before the first wave, within
 * a slack far below what the exited threads' caches held; and the RSS after
 * the last wave must stay within 64 MiB of the RSS after the first wave.
 * Catches: per-thread caches / arena bindings leaked at thread exit (the
 * figures grow with the number of threads ever created), use-after-exit of
 * a dead thread's cache when other threads free its blocks, thread-exit cleanup
 * racing with remote frees, and exhaustion of a fixed-size thread/arena
 * table (allocation failing or crashing after N threads).
 */
#include "stress_common.h"
#include "tcache.h"		/* each thread's cache, to size the bound */

#define TOTAL_THREADS 5000
#define PER_THREAD_ALLOCS 200
#define LEFT_BEHIND 16

typedef struct {
	unsigned id;
	item_t left[LEFT_BEHIND];	/* blocks for main (or the next wave) */
	item_t *to_free;		/* blocks of a previous wave to free */
	size_t to_free_n;
	int huge;	/* leave huge blocks behind too */
	size_t cached;	/* bytes in the thread's cache when it returned */
} thr_arg_t;

static item_t
alloc_item(rng_t *r)
{
	item_t it = { 0 };
	size_t n = rng_size(r, 0);
	it.p = rng_below(r, 4) == 0 ? calloc(1, n) : malloc(n);
	CHECK(it.p != NULL, "alloc(%zu)", n);
	it.size = n;
	it.seed = block_seed(it.p, n);
	pat_fill(it.p, n, it.seed);
	return it;
}

static void *
short_thread(void *arg)
{
	thr_arg_t *a = arg;
	rng_t r;
	rng_seed(&r, a->id);
	for (size_t i = 0; i < a->to_free_n; i++) {
		PAT_VERIFY(a->to_free[i].p, a->to_free[i].size,
		    a->to_free[i].seed, "block from a dead thread");
		free(a->to_free[i].p);
	}
	item_t live[32];
	memset(live, 0, sizeof(live));
	for (int i = 0; i < PER_THREAD_ALLOCS; i++) {
		item_t *s = &live[rng_below(&r, 32)];
		if (s->p) {
			PAT_VERIFY(s->p, s->size, s->seed, "short thread");
			free(s->p);
		}
		*s = alloc_item(&r);
	}
	if (a->huge && a->id % 10 == 0) {
		/* a huge block outliving its thread, freed by another one */
		item_t *s = &live[1];
		if (s->p)
			free(s->p);
		s->size = 2 * MiB + rng_below(&r, 8 * MiB);
		s->p = malloc(s->size);
		CHECK(s->p != NULL, "malloc(%zu)", s->size);
		s->seed = block_seed(s->p, s->size);
		pat_fill(s->p, s->size, s->seed);
	}
	for (int i = 0; i < 32; i++) {
		if (live[i].p == NULL)
			continue;
		if (i < LEFT_BEHIND) {
			a->left[i] = live[i];
		} else {
			PAT_VERIFY(live[i].p, live[i].size, live[i].seed, "exit");
			free(live[i].p);
		}
	}
	tcache_t *tc = TCACHE_GET();
	a->cached = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		a->cached += (size_t)TBIN(tc, sc)->n * sc_size(sc);
	return NULL;
}

static unsigned long long
allocated_bytes(void)
{
	unsigned long long v = 0;
	CHECK(pc_stat_get("allocated", &v) == 0, "pc_stat_get");
	return v;
}

static void
run_waves(int huge, int check_rss)
{
	int width = stress_threads;
	int waves = (TOTAL_THREADS + width - 1) / width;
	/* The main thread's cache emptied: the base holds live blocks only. */
	pc_trim();
	unsigned long long alloc_base = allocated_bytes();
	size_t leak_if_kept = 0;	/* what the exited caches held */
	size_t least_kept = SIZE_MAX;	/* the least any one cache held */
	thr_arg_t *args = calloc((size_t)width, sizeof(*args));
	pthread_t *t = calloc((size_t)width, sizeof(*t));
	/* blocks left by wave w-1, freed by the threads of wave w */
	item_t *prev = calloc((size_t)width * LEFT_BEHIND, sizeof(*prev));
	size_t prev_n = 0;
	assert_non_null(args);
	assert_non_null(t);
	assert_non_null(prev);
	size_t rss_first = 0, rss_max = 0;
	unsigned id = 1;
	for (int w = 0; w < waves; w++) {
		size_t per = (prev_n + (size_t)width - 1) / (size_t)width;
		for (int i = 0; i < width; i++) {
			args[i].id = id++;
			args[i].huge = huge;
			memset(args[i].left, 0, sizeof(args[i].left));
			size_t from = (size_t)i * per;
			args[i].to_free = prev + (from < prev_n ? from : prev_n);
			args[i].to_free_n = from >= prev_n ? 0 :
			    (prev_n - from < per ? prev_n - from : per);
			if (w % 7 == 3) {
				/* a wave with detached-style joins: created
				 * with attributes (small stack) */
				pthread_attr_t attr;
				pthread_attr_init(&attr);
				pthread_attr_setstacksize(&attr, 64 * KiB);
				int rc = pthread_create(&t[i], &attr, short_thread,
				    &args[i]);
				CHECK(rc == 0, "pthread_create: %s", strerror(rc));
				pthread_attr_destroy(&attr);
			} else {
				xpthread_create(&t[i], short_thread, &args[i]);
			}
		}
		for (int i = 0; i < width; i++) {
			xpthread_join(t[i]);
			leak_if_kept += args[i].cached;
			if (args[i].cached < least_kept)
				least_kept = args[i].cached;
		}
		/* Half of the left-behind blocks are freed by main, half by
		 * the next wave (whose threads run after these have died). */
		prev_n = 0;
		for (int i = 0; i < width; i++) {
			for (int j = 0; j < LEFT_BEHIND; j++) {
				item_t *it = &args[i].left[j];
				if (it->p == NULL)
					continue;
				if (j % 2 == 0) {
					PAT_VERIFY(it->p, it->size, it->seed, "main");
					free(it->p);
				} else {
					prev[prev_n++] = *it;
				}
			}
		}
		size_t rss = rss_bytes();
		if (w == 0)
			rss_first = rss;
		if (rss > rss_max)
			rss_max = rss;
	}
	for (size_t i = 0; i < prev_n; i++) {
		PAT_VERIFY(prev[i].p, prev[i].size, prev[i].seed, "final");
		free(prev[i].p);
	}
	size_t rss_final = rss_bytes();
	fprintf(stderr, "rss: first wave %zu KiB, max %zu KiB, final %zu KiB\n",
	    rss_first >> 10, rss_max >> 10, rss_final >> 10);
	if (check_rss && rss_first != 0 && rss_final > rss_first + 64 * MiB)
		fail_msg("RSS grew from %zu KiB after the first wave to %zu KiB "
		    "after %d threads", rss_first >> 10, rss_final >> 10,
		    waves * width);
	free(args);
	free(t);
	free(prev);
	/* The slack covers what this thread's pthread_create and stdio
	 * calls leave allocated; any one exited thread's cache, had it been
	 * leaked, would exceed it. */
	const unsigned long long slack = 64 * KiB;
	pc_trim();
	unsigned long long alloc_final = allocated_bytes();
	fprintf(stderr, "allocated: %llu before, %llu after; the exited "
	    "threads' caches held %zu KiB, the least %zu KiB\n", alloc_base,
	    alloc_final, leak_if_kept >> 10, least_kept >> 10);
	if (least_kept <= slack)
		fail_msg("a thread's cache held only %zu bytes: too little to "
		    "tell a leak", least_kept);
	if (alloc_final > alloc_base + slack)
		fail_msg("allocated grew from %llu to %llu over %d thread "
		    "exits", alloc_base, alloc_final, waves * width);
}

/* The RSS check: small and large (<= ~1 MiB) blocks only, so the bound
 * measures per-thread state leaked at thread exit, not how big blocks are
 * cached. */
static void
test_short_lived_threads(void **state)
{
	(void)state;
	stress_begin();
	run_waves(0, 1);
	stress_end();
}

/* Threads also leave 2..10 MiB blocks behind, freed by threads of the next
 * wave after their allocator died.  No RSS bound here. */
static void
test_short_lived_threads_huge(void **state)
{
	(void)state;
	stress_begin();
	run_waves(1, 0);
	stress_end();
}

/* Detached threads that exit while main keeps allocating; main frees what
 * they leave through a mutex-protected list. */
static pthread_mutex_t det_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t det_cv = PTHREAD_COND_INITIALIZER;
static int det_running;
static item_t *det_left;
static size_t det_left_n;

static void *
detached_thread(void *arg)
{
	rng_t r;
	rng_seed(&r, (uintptr_t)arg);
	item_t mine[4];
	for (int i = 0; i < 4; i++)
		mine[i] = alloc_item(&r);
	for (int i = 0; i < 50; i++) {
		item_t it = alloc_item(&r);
		PAT_VERIFY(it.p, it.size, it.seed, "detached");
		free(it.p);
	}
	pthread_mutex_lock(&det_mu);
	for (int i = 0; i < 4; i++)
		det_left[det_left_n++] = mine[i];
	det_running--;
	pthread_cond_signal(&det_cv);
	pthread_mutex_unlock(&det_mu);
	return NULL;
}

static void
test_detached_threads(void **state)
{
	(void)state;
	stress_begin();
	enum { TOTAL = 2000 };
	det_left = calloc(TOTAL * 4, sizeof(*det_left));
	assert_non_null(det_left);
	det_left_n = 0;
	int max_running = stress_threads;
	for (int i = 0; i < TOTAL; i++) {
		pthread_mutex_lock(&det_mu);
		while (det_running >= max_running)
			pthread_cond_wait(&det_cv, &det_mu);
		det_running++;
		/* free what exited threads left, while others still run */
		while (det_left_n > 0) {
			item_t it = det_left[--det_left_n];
			PAT_VERIFY(it.p, it.size, it.seed, "main from detached");
			free(it.p);
		}
		pthread_mutex_unlock(&det_mu);
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &attr, detached_thread,
		    (void *)(uintptr_t)(i + 77));
		CHECK(rc == 0, "pthread_create: %s", strerror(rc));
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_lock(&det_mu);
	while (det_running > 0)
		pthread_cond_wait(&det_cv, &det_mu);
	while (det_left_n > 0) {
		item_t it = det_left[--det_left_n];
		PAT_VERIFY(it.p, it.size, it.seed, "main from detached");
		free(it.p);
	}
	pthread_mutex_unlock(&det_mu);
	free(det_left);
	stress_end();
}

/*
 * Many threads alive at once (more than any per-CPU arena count and more
 * than a small fixed thread table), all allocating at the same moment.
 */
#define CONCURRENT 400
static pthread_barrier_t barrier;

static void *
concurrent_thread(void *arg)
{
	rng_t r;
	rng_seed(&r, (uintptr_t)arg + 12345);
	item_t mine[8];
	for (int i = 0; i < 8; i++)
		mine[i] = alloc_item(&r);
	pthread_barrier_wait(&barrier);	/* everybody holds memory now */
	for (int round = 0; round < 100; round++) {
		item_t *s = &mine[rng_below(&r, 8)];
		PAT_VERIFY(s->p, s->size, s->seed, "concurrent");
		free(s->p);
		*s = alloc_item(&r);
	}
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < 8; i++) {
		PAT_VERIFY(mine[i].p, mine[i].size, mine[i].seed, "concurrent");
		free(mine[i].p);
	}
	return NULL;
}

static void
test_many_concurrent_threads(void **state)
{
	(void)state;
	stress_begin();
	for (int rep = 0; rep < 3; rep++) {
		pthread_t *t = calloc(CONCURRENT, sizeof(*t));
		assert_non_null(t);
		pthread_barrier_init(&barrier, NULL, CONCURRENT);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 128 * KiB);
		for (int i = 0; i < CONCURRENT; i++) {
			int rc = pthread_create(&t[i], &attr, concurrent_thread,
			    (void *)(uintptr_t)(i + rep * CONCURRENT));
			CHECK(rc == 0, "pthread_create %d: %s", i, strerror(rc));
		}
		pthread_attr_destroy(&attr);
		for (int i = 0; i < CONCURRENT; i++)
			xpthread_join(t[i]);
		pthread_barrier_destroy(&barrier);
		free(t);
	}
	stress_end();
}

/*
 * Short-lived producers: each allocates blocks, hands them to long-lived
 * consumers and exits at once, so most frees reach a thread that is
 * exiting or already gone (remote free vs. thread teardown race).
 */
static queue_t dq;

static void *
dying_producer(void *arg)
{
	rng_t r;
	rng_seed(&r, (uintptr_t)arg);
	for (int i = 0; i < 100; i++) {
		item_t it = alloc_item(&r);
		queue_push(&dq, it);
	}
	return NULL;
}

static void *
long_consumer(void *arg)
{
	(void)arg;
	item_t it;
	while (queue_pop(&dq, &it)) {
		PAT_VERIFY(it.p, it.size, it.seed, "from a dying producer");
		free(it.p);
	}
	return NULL;
}

static void
test_dying_producers(void **state)
{
	(void)state;
	stress_begin();
	enum { PRODUCERS = 2000, CONSUMERS = 3 };
	queue_init(&dq, 256, 1);	/* "1 producer": main, until done */
	pthread_t c[CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		xpthread_create(&c[i], long_consumer, NULL);
	int width = stress_threads;
	pthread_t *p = calloc((size_t)width, sizeof(*p));
	assert_non_null(p);
	for (int done = 0; done < PRODUCERS; done += width) {
		for (int i = 0; i < width; i++)
			xpthread_create(&p[i], dying_producer,
			    (void *)(uintptr_t)(done + i + 1));
		for (int i = 0; i < width; i++)
			xpthread_join(p[i]);
	}
	queue_producer_done(&dq);
	for (int i = 0; i < CONSUMERS; i++)
		xpthread_join(c[i]);
	assert_int_equal(dq.count, 0);
	queue_destroy(&dq);
	free(p);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_lived_threads),
		cmocka_unit_test(test_short_lived_threads_huge),
		cmocka_unit_test(test_detached_threads),
		cmocka_unit_test(test_many_concurrent_threads),
		cmocka_unit_test(test_dying_producers),
	};
	return STRESS_RUN("stress_threads", tests);
}
