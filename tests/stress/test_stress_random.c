/*
 * Random malloc/calloc/realloc/aligned/free from many threads, each block
 * filled with a pattern derived from its address and size and verified
 * before every realloc and free.  Part of the operations go through a
 * shared, per-slot-locked table so blocks are realloc'ed and freed by
 * threads other than their allocator.  Catches: races in thread caches and
 * remote-free paths (blocks handed out twice -> pattern clobbered), lost
 * contents on cross-thread realloc, calloc returning dirty memory under
 * concurrency, and metadata corruption that only shows under preemption.
 */
#include "stress_common.h"

#include <time.h>

#define TOTAL_OPS 1000000
#define LOCAL_SLOTS 1024
#define SHARED_SLOTS 512

static shared_slot_t shared[SHARED_SLOTS];
static atomic_int trim_stop, trim_running;

static void
slot_alloc(slot_t *s, rng_t *r)
{
	size_t n = rng_size(r, 2);
	void *p = NULL;
	switch (rng_below(r, 10)) {
	case 0:
	case 1:
		p = calloc(1, n);
		CHECK(p != NULL, "calloc(%zu) failed", n);
		check_zero(p, n < 4096 ? n : 4096, "random calloc");
		break;
	case 2: {
		size_t a = (size_t)16 << rng_below(r, 9);	/* 16 .. 4 KiB */
		int rc = posix_memalign(&p, a, n);
		CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
		CHECK(((uintptr_t)p & (a - 1)) == 0, "misaligned %p / %zu", p, a);
		break;
	}
	case 3:
		p = realloc(NULL, n);
		CHECK(p != NULL, "realloc(NULL, %zu) failed", n);
		break;
	default:
		p = malloc(n);
		CHECK(p != NULL, "malloc(%zu) failed", n);
		break;
	}
	CHECK(((uintptr_t)p & 15) == 0, "misaligned %p", p);
	CHECK(malloc_usable_size(p) >= n, "usable %zu < %zu",
	    malloc_usable_size(p), n);
	s->p = p;
	s->n = n;
	s->seed = block_seed(p, n);
	pat_fill(p, n, s->seed);
}

static void
slot_op(slot_t *s, rng_t *r)
{
	if (s->p == NULL) {
		slot_alloc(s, r);
		return;
	}
	PAT_VERIFY(s->p, s->n, s->seed, "before free/realloc");
	unsigned d = (unsigned)rng_below(r, 10);
	if (d < 5) {
		free(s->p);
		s->p = NULL;
		return;
	}
	size_t n = d < 9 ? rng_size(r, 2) : s->n + rng_below(r, 64);
	void *q = realloc(s->p, n);
	if (n == 0) {
		/* glibc 2.36: realloc(p, 0) frees and returns NULL */
		CHECK(q == NULL, "realloc(p, 0) returned %p", q);
		s->p = NULL;
		return;
	}
	CHECK(q != NULL, "realloc(%zu -> %zu) failed", s->n, n);
	CHECK(((uintptr_t)q & 15) == 0, "misaligned %p", q);
	size_t keep = s->n < n ? s->n : n;
	size_t bad = pat_find_bad_prefix(q, s->n, keep, s->seed);
	CHECK(bad == SIZE_MAX, "realloc %zu -> %zu lost data at %zu", s->n, n,
	    bad);
	s->p = q;
	s->n = n;
	s->seed = block_seed(q, n);
	pat_fill(q, n, s->seed);
}

static void *
worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	rng_t r;
	rng_seed(&r, id + 1);
	slot_t *local = calloc(LOCAL_SLOTS, sizeof(*local));
	CHECK(local != NULL, "calloc slots");
	long ops = SCALED(TOTAL_OPS) / stress_threads;
	if (atomic_load(&trim_running))
		ops /= 2;	/* trimming makes everything slower */
	for (long i = 0; i < ops; i++) {
		if (rng_below(&r, 100) < 8) {
			shared_slot_t *sh = &shared[rng_below(&r, SHARED_SLOTS)];
			pthread_mutex_lock(&sh->mu);
			slot_op(&sh->s, &r);
			pthread_mutex_unlock(&sh->mu);
		} else {
			slot_op(&local[rng_below(&r, LOCAL_SLOTS)], &r);
		}
	}
	/* leave half of the local blocks for another thread to free */
	for (size_t i = 0; i < LOCAL_SLOTS; i += 2) {
		if (local[i].p) {
			PAT_VERIFY(local[i].p, local[i].n, local[i].seed, "exit");
			free(local[i].p);
			local[i].p = NULL;
		}
	}
	return local;
}

static atomic_long trims;

static void *
trimmer(void *arg)
{
	(void)arg;
	while (!atomic_load(&trim_stop)) {
		int rc = malloc_trim(0);
		CHECK(rc == 0 || rc == 1, "malloc_trim returned %d", rc);
		rc = pc_trim();
		CHECK(rc == 0 || rc == 1, "pc_trim returned %d", rc);
		struct mallinfo2 mi = mallinfo2();
		CHECK(mi.uordblks <= mi.arena + mi.hblkhd,
		    "mallinfo2: uordblks %zu > arena %zu + hblkhd %zu",
		    mi.uordblks, mi.arena, mi.hblkhd);
		unsigned long long v;
		(void)pc_stat_get("allocated", &v);
		(void)pc_stat_get("arena.0.dirty", &v);
		atomic_fetch_add(&trims, 1);
		struct timespec ts = { 0, 1000000 };	/* 1 ms */
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void
run_random(int with_trimmer)
{
	stress_begin();
	pthread_t trim_thread;
	atomic_store(&trim_stop, 0);
	atomic_store(&trim_running, with_trimmer);
	if (with_trimmer)
		xpthread_create(&trim_thread, trimmer, NULL);
	int nt = stress_threads;
	pthread_t *t = calloc((size_t)nt, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < nt; i++)
		xpthread_create(&t[i], worker, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++) {
		slot_t *local;
		assert_int_equal(pthread_join(t[i], (void **)&local), 0);
		for (size_t j = 0; j < LOCAL_SLOTS; j++)
			if (local[j].p) {
				PAT_VERIFY(local[j].p, local[j].n, local[j].seed,
				    "main");
				free(local[j].p);
			}
		free(local);
	}
	for (int i = 0; i < SHARED_SLOTS; i++) {
		if (shared[i].s.p) {
			PAT_VERIFY(shared[i].s.p, shared[i].s.n, shared[i].s.seed,
			    "shared");
			free(shared[i].s.p);
			shared[i].s.p = NULL;
		}
	}
	free(t);
	if (with_trimmer) {
		atomic_store(&trim_stop, 1);
		xpthread_join(trim_thread);
		fprintf(stderr, "%ld trim rounds\n", atomic_load(&trims));
	}
	stress_end();
}

static void
test_random_ops(void **state)
{
	(void)state;
	run_random(0);
}

static void
test_random_ops_with_trim(void **state)
{
	(void)state;
	run_random(1);
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	for (int i = 0; i < SHARED_SLOTS; i++)
		pthread_mutex_init(&shared[i].mu, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops),
		cmocka_unit_test(test_random_ops_with_trim),
	};
	return STRESS_RUN("stress_random", tests);
}
