/* Remote-free batches (remote.[ch]): the lock-free stacks, a cache's pool
 * of batches, and what the arenas do with a batch: nothing until the bin's
 * lock is next taken, then a free of every block with the locked flush's
 * checks (a double free in a batch is reported and not acted on).  The
 * last tests go through the thread caches: a thread on one CPU frees what
 * a thread on the other allocated (ctest runs this with narenas:2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>
#include <semaphore.h>
#include <cmocka.h>
#include "skip_policy.h"

#include "arena.h"
#include "conf.h"
#include "remote.h"
#include "report.h"
#include "slab.h"
#include "tcache.h"
#include "pcmalloc.h"

static void
test_stack_lifo(void **state)
{
	(void)state;
	static remote_batch_t b[3];
	remote_batch_t *head = NULL;
	assert_null(remote_take(&head));
	assert_false(remote_pending(&head));
	for (int i = 0; i < 3; i++)
		remote_push(&head, &b[i]);
	assert_true(remote_pending(&head));
	remote_batch_t *t = remote_take(&head);
	assert_null(head);
	assert_ptr_equal(t, &b[2]);
	assert_ptr_equal(t->next, &b[1]);
	assert_ptr_equal(t->next->next, &b[0]);
	assert_null(t->next->next->next);
}

/* A pool makes at most REMOTE_POOL_MAX batches, then reuses those that
 * come back. */
static void
test_pool_bound(void **state)
{
	(void)state;
	static remote_pool_t pool;
	static remote_batch_t *got[REMOTE_POOL_MAX];
	for (int i = 0; i < REMOTE_POOL_MAX; i++) {
		got[i] = remote_batch_get(&pool);
		assert_non_null(got[i]);
		assert_ptr_equal(got[i]->owner, &pool);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(got[i], got[j]);
	}
	assert_null(remote_batch_get(&pool));
	remote_batch_put(got[3]);
	remote_batch_put(got[7]);
	remote_batch_t *x = remote_batch_get(&pool);
	remote_batch_t *y = remote_batch_get(&pool);
	assert_true((x == got[3] && y == got[7]) || (x == got[7] && y == got[3]));
	assert_null(remote_batch_get(&pool));
	assert_int_equal(pool.nalloc, REMOTE_POOL_MAX);
}

enum { SIZE = 64, N = 48 };

/* Blocks of bin (a, class of SIZE) taken straight from the arena. */
static unsigned
take_blocks(arena_t *a, void **v, unsigned n)
{
	return arena_refill(a, sc_index(SIZE), v, n);
}

static uint64_t
bin_in(arena_t *a)
{
	return a->bins[sc_index(SIZE)].nobj_in;
}

/* A batch waits on its bin until the lock is taken: the next refill frees
 * its blocks first, and the batch goes back to its pool. */
static void
test_collected_by_refill(void **state)
{
	(void)state;
	static remote_pool_t pool;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(SIZE);
	void *v[N];
	assert_int_equal(take_blocks(a, v, N), N);
	remote_batch_t *rb = remote_batch_get(&pool);
	assert_non_null(rb);
	for (int i = 0; i < N; i++)
		rb->runs[i] = (free_run_t){ v[i], 1 };
	rb->n = N;
	uint64_t in0 = bin_in(a), fl0 = a->bins[sc].nflushes;
	arena_flush_remote(a, sc, rb);
	assert_true(remote_pending(&a->bins[sc].remote));
	assert_true(bin_in(a) == in0);	/* not freed yet */
	void *p;
	assert_int_equal(take_blocks(a, &p, 1), 1);
	assert_false(remote_pending(&a->bins[sc].remote));
	assert_true(bin_in(a) == in0 + N);
	assert_true(a->bins[sc].nflushes == fl0 + 1);
	assert_ptr_equal(remote_take(&pool.returned), rb);
	arena_flush(a, sc, &p, 1);
	assert_int_equal(pc_check(), 0);
}

/* Trim and a cache GC step (arena_collect) free pending batches too. */
static void
test_collected_by_trim_and_gc(void **state)
{
	(void)state;
	static remote_pool_t pool;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(SIZE);
	for (int round = 0; round < 2; round++) {
		void *v[N];
		assert_int_equal(take_blocks(a, v, N), N);
		remote_batch_t *rb = remote_batch_get(&pool);
		for (int i = 0; i < N; i++)
			rb->runs[i] = (free_run_t){ v[i], 1 };
		rb->n = N;
		uint64_t in0 = bin_in(a);
		arena_flush_remote(a, sc, rb);
		if (round == 0)
			pc_trim();
		else
			arena_collect(a);
		assert_false(remote_pending(&a->bins[sc].remote));
		assert_true(bin_in(a) == in0 + N);
	}
	assert_int_equal(pc_check(), 0);
}

/* A batch holding a block already free in its slab (a double free whose
 * first copy was flushed first), a pointer inside a block and a pointer
 * that is no block of this bin: each is reported when the batch is
 * collected, and none is acted on: no block is handed out twice. */
static void
test_misuse_in_batch_reported(void **state)
{
	(void)state;
	static remote_pool_t pool;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(SIZE);
	void *v[4];
	assert_int_equal(take_blocks(a, v, 4), 4);
	arena_flush(a, sc, &v[0], 1);		/* v[0] is free now */
	remote_batch_t *rb = remote_batch_get(&pool);
	static char not_ours[64];
	rb->runs[0] = (free_run_t){ v[0], 1 };			/* double free */
	rb->runs[1] = (free_run_t){ (char *)v[1] + 16, 1 };	/* interior */
	rb->runs[2] = (free_run_t){ not_ours, 1 };			/* no slab at all */
	rb->runs[3] = (free_run_t){ v[2], 1 };			/* fine */
	rb->n = 4;
	size_t abort0 = opt_abort_on_error;
	opt_abort_on_error = 0;
	uint64_t rep0 = pc_misuse_reports, in0 = bin_in(a);
	arena_flush_remote(a, sc, rb);
	arena_collect(a);
	opt_abort_on_error = abort0;
	assert_true(pc_misuse_reports == rep0 + 3);
	assert_true(bin_in(a) == in0 + 1);	/* only v[2] */
	/* v[1] and v[3] are still live: no refill hands them out. */
	enum { M = 2000 };
	static void *w[M];
	assert_int_equal(take_blocks(a, w, M), M);
	for (int i = 0; i < M; i++) {
		assert_ptr_not_equal(w[i], v[1]);
		assert_ptr_not_equal(w[i], v[3]);
	}
	for (int i = 0; i < M; i++)
		arena_flush(a, sc, &w[i], 1);
	arena_flush(a, sc, &v[1], 1);
	arena_flush(a, sc, &v[3], 1);
	assert_int_equal(pc_check(), 0);
}

/* ---- Runs: many blocks of a slab in one entry ------------------------- */

enum { RSIZE = 16, RPER = 256, RTAKE = 4 * RPER };	/* one-page slabs */
static void *rv[RTAKE];

/* Take RTAKE blocks of RSIZE from arena 0 and return the base of a slab
 * all of whose RPER blocks are among them (rv). */
static char *
take_whole_slab(void)
{
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(RSIZE);
	assert_int_equal(sc_table[sc].nobjs, RPER);
	assert_int_equal(arena_refill(a, sc, rv, RTAKE), RTAKE);
	for (int i = 0; i < RTAKE; i++) {
		span_t *s = arena_slab_of(rv[i], sc);
		assert_non_null(s);
		unsigned n = 0;
		for (int j = 0; j < RTAKE; j++)
			n += (uintptr_t)rv[j] - s->base < (uintptr_t)RPER * RSIZE;
		if (n == RPER)
			return (char *)s->base;
	}
	fail_msg("no whole slab among %d blocks", RTAKE);
	return NULL;
}

static bool
block_free(char *p)
{
	unsigned sc = sc_index(RSIZE);
	span_t *s = arena_slab_of(p, sc);
	return slab_obj_is_free(s, slab_obj_index(s, p));
}

/* Give back every block of rv that is still live. */
static void
return_rest(void)
{
	unsigned sc = sc_index(RSIZE);
	for (int i = 0; i < RTAKE; i++)
		if (!block_free(rv[i]))
			arena_flush(&arenas[0], sc, &rv[i], 1);
	assert_int_equal(pc_check(), 0);
}

/* A run frees all its blocks, across a bitmap word's end; a run with a
 * block already free and blocks past the slab's end reports each of those
 * and frees the rest. */
static void
test_runs(void **state)
{
	(void)state;
	arena_t *a = &arenas[0];
	unsigned sc = sc_index(RSIZE);
	char *base = take_whole_slab();
	uint64_t in0 = a->bins[sc].nobj_in;
	free_run_t r = { base + 40 * RSIZE, ~(uint64_t)0 };	/* 40..103 */
	arena_flush_runs(a, sc, &r, 1);
	assert_true(a->bins[sc].nobj_in == in0 + 64);
	assert_false(block_free(base + 39 * RSIZE));
	for (int i = 40; i < 104; i++)
		assert_true(block_free(base + i * RSIZE));
	assert_false(block_free(base + 104 * RSIZE));

	size_t abort0 = opt_abort_on_error;
	opt_abort_on_error = 0;
	uint64_t rep0 = pc_misuse_reports;
	free_run_t bad[2] = {
		{ base + 103 * RSIZE, 0x3 },	/* 103 is free, 104 is not */
		{ base + 250 * RSIZE, 0xff },	/* 256 and 257 are past */
	};
	in0 = a->bins[sc].nobj_in;
	arena_flush_runs(a, sc, bad, 2);
	opt_abort_on_error = abort0;
	assert_true(pc_misuse_reports == rep0 + 3);
	assert_true(a->bins[sc].nobj_in == in0 + 1 + 6);
	assert_true(block_free(base + 104 * RSIZE));
	for (int i = 250; i < 256; i++)
		assert_true(block_free(base + i * RSIZE));
	return_rest();
}

/* Through a thread's cache: blocks freed in the order they were
 * allocated, in the reverse order, and shuffled, all come back (the flush
 * makes runs of them), and a block freed twice while both copies sit in
 * the cache (its key word overwritten, so the cache's own check misses
 * it) is reported once by the flush and handed out once. */
static void
test_runs_through_cache(void **state)
{
	(void)state;
	enum { M = 3000 };
	static void *m[M];
	for (int order = 0; order < 3; order++) {
		unsigned long long alloc0, alloc1;
		pc_trim();
		assert_int_equal(pc_stat_get("allocated", &alloc0), 0);
		for (int i = 0; i < M; i++)
			m[i] = pc_malloc(48);
		for (int i = 0; i < M; i++) {
			int k = order == 0 ? i : order == 1 ? M - 1 - i :
			    (int)((unsigned)i * 1103u % M);
			pc_free(m[k]);
		}
		pc_trim();
		assert_int_equal(pc_stat_get("allocated", &alloc1), 0);
		if (alloc1 > alloc0 + 64 * 1024)
			fail_msg("order %d: allocated %llu before, %llu after",
			    order, alloc0, alloc1);
	}
	size_t abort0 = opt_abort_on_error;
	opt_abort_on_error = 0;
	uint64_t rep0 = pc_misuse_reports;
	for (int i = 0; i < 8; i++)
		m[i] = pc_malloc(48);
	pc_free(m[3]);
	TCACHE_KEY_WORD(m[3]) = 0;	/* a use after free hides it */
	pc_free(m[3]);
	for (int i = 0; i < 8; i++)
		if (i != 3)
			pc_free(m[i]);
	pc_trim();	/* flushes this thread's cache */
	opt_abort_on_error = abort0;
	assert_true(pc_misuse_reports == rep0 + 1);
	void *dup = m[3];
	unsigned seen = 0;
	for (int i = 0; i < M; i++) {
		m[i] = pc_malloc(48);
		seen += m[i] == dup;
	}
	assert_true(seen <= 1);
	for (int i = 0; i < M; i++)
		pc_free(m[i]);
	assert_int_equal(pc_check(), 0);
}

/* ---- Through the thread caches, across CPUs -------------------------- */

static int cpu_a = -1, cpu_b = -1;	/* CPUs of arenas 0 and 1 */

static bool
cpus_found(void)
{
	if (cpu_a >= 0)
		return true;
	cpu_set_t set;
	if (narenas < 2 || sched_getaffinity(0, sizeof(set), &set) != 0)
		return false;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (c % (int)narenas == 0 && cpu_a < 0)
			cpu_a = c;
		if (c % (int)narenas == 1 && cpu_b < 0)
			cpu_b = c;
	}
	return cpu_a >= 0 && cpu_b >= 0;
}

static void
pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		abort();
}

static void
need_two_arenas(void)
{
	if (!cpus_found())
		SKIP_BECAUSE("needs two arenas and a CPU for each (ctest sets "
		    "narenas:2; this process has %u arena(s))", narenas);
}

enum { XN = 4096 };
static void *xv[XN];

/* On CPU b: free xv[from..to) (blocks of arena 0), then report whether
 * arena 0's bin got remote batches (nobody there took its lock since). */
static void *
remote_freer(void *arg)
{
	pin(cpu_b);
	unsigned from = (unsigned)(uintptr_t)arg & 0xffff;
	unsigned to = (unsigned)(uintptr_t)arg >> 16;
	for (unsigned i = from; i < to; i++)
		pc_free(xv[i]);
	bool pending = remote_pending(&arenas[0].bins[sc_index(SIZE)].remote);
	return (void *)(uintptr_t)pending;
}

static void
run_freer(unsigned from, unsigned to, bool *pending)
{
	pthread_t t;
	void *r;
	assert_int_equal(pthread_create(&t, NULL, remote_freer,
	    (void *)(uintptr_t)(from | to << 16)), 0);
	assert_int_equal(pthread_join(t, &r), 0);
	*pending = r != NULL;
}

/* A thread of the other CPU frees without arena 0's lock; it exits with
 * batches still pending; the next refill on CPU a frees them all, and
 * the statistics come back to where they were. */
static void
test_cross_cpu_free(void **state)
{
	(void)state;
	need_two_arenas();
	pin(cpu_a);
	pc_trim();
	unsigned long long alloc0, alloc1;
	assert_int_equal(pc_stat_get("allocated", &alloc0), 0);
	for (int i = 0; i < XN; i++) {
		xv[i] = pc_malloc(SIZE);
		memset(xv[i], 0x3c, SIZE);
	}
	bool pending;
	run_freer(0, XN, &pending);
	assert_true(pending);
	pc_trim();
	assert_false(remote_pending(&arenas[0].bins[sc_index(SIZE)].remote));
	assert_int_equal(pc_stat_get("allocated", &alloc1), 0);
	if (alloc1 > alloc0 + 64 * 1024)
		fail_msg("allocated %llu before, %llu after", alloc0, alloc1);
	assert_int_equal(pc_check(), 0);
}

/* The same block freed by two threads of the other CPU at the same
 * instant, both copies cached (the second free read the block's second
 * word before the first marked it, simulated by clearing the mark): both
 * copies leave in remote batches for arena 0, the second is reported when
 * it is collected, and the block is handed out once only. */
static sem_t dsem1, dsem2;
static void *dup_block;

static void *
double_freer1(void *arg)
{
	(void)arg;
	pin(cpu_b);
	pc_free(dup_block);
	sem_post(&dsem1);
	sem_wait(&dsem2);	/* the other copy is in a slab by now */
	for (unsigned i = 1; i < XN / 2; i++)
		pc_free(xv[i]);
	return NULL;
}

static void *
double_freer2(void *arg)
{
	(void)arg;
	pin(cpu_b);
	sem_wait(&dsem1);
	TCACHE_KEY_WORD(dup_block) = 0;	/* the race: mark not seen */
	pc_free(dup_block);	/* cached here too */
	for (unsigned i = XN / 2; i < XN; i++)
		pc_free(xv[i]);
	return NULL;
}

static void
test_cross_thread_double_free(void **state)
{
	(void)state;
	need_two_arenas();
	pin(cpu_a);
	for (int i = 0; i < XN; i++)
		xv[i] = pc_malloc(SIZE);
	dup_block = xv[0];
	sem_init(&dsem1, 0, 0);
	sem_init(&dsem2, 0, 0);
	size_t abort0 = opt_abort_on_error;
	opt_abort_on_error = 0;
	uint64_t rep0 = pc_misuse_reports;
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, double_freer1, NULL), 0);
	assert_int_equal(pthread_create(&t2, NULL, double_freer2, NULL), 0);
	assert_int_equal(pthread_join(t2, NULL), 0);
	sem_post(&dsem2);
	assert_int_equal(pthread_join(t1, NULL), 0);
	pc_trim();
	opt_abort_on_error = abort0;
	assert_true(pc_misuse_reports == rep0 + 1);
	/* dup_block is free once: two mallocs never both return it. */
	unsigned seen = 0;
	for (int i = 0; i < XN; i++) {
		xv[i] = pc_malloc(SIZE);
		seen += xv[i] == dup_block;
	}
	assert_true(seen <= 1);
	for (int i = 0; i < XN; i++)
		pc_free(xv[i]);
	assert_int_equal(pc_check(), 0);
}

/* ---- A lone thread's arena (arena_choose) --------------------------- */

enum { LN = 2048 };
static void *lv[LN];

static unsigned long long
arena1_allocated(void)
{
	unsigned long long v = 0;
	assert_int_equal(pc_stat_get("arena.1.allocated", &v), 0);
	return v;
}

/* On CPU b, LN blocks of a class no arena holds free: whether their
 * refills came from arena 1.  (A refill may take another arena's free
 * objects, so each call uses a class of its own.) */
static bool
cpu_b_refills_from_arena1(size_t size)
{
	pin(cpu_b);
	unsigned long long before = arena1_allocated();
	for (int i = 0; i < LN; i++)
		lv[i] = pc_malloc(size);
	bool grew = arena1_allocated() > before;
	for (int i = 0; i < LN; i++)
		pc_free(lv[i]);
	pin(cpu_a);
	return grew;
}

static sem_t lsem_up, lsem_done;

static void *
second_thread(void *arg)
{
	(void)arg;
	pc_free(pc_malloc(1));	/* has a cache from now on */
	sem_post(&lsem_up);
	sem_wait(&lsem_done);
	return NULL;
}

/* The only thread with a cache works in arena 0 on every CPU (a program
 * that moves between CPUs keeps one set of slabs); with a second thread
 * alive, each CPU has its own arena again; once that thread is gone, the
 * lone thread is back in arena 0. */
static void
test_lone_thread_one_arena(void **state)
{
	(void)state;
	need_two_arenas();
	assert_false(cpu_b_refills_from_arena1(96));
	sem_init(&lsem_up, 0, 0);
	sem_init(&lsem_done, 0, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, second_thread, NULL), 0);
	sem_wait(&lsem_up);
	assert_true(cpu_b_refills_from_arena1(160));
	/* A fork child has one thread: it is alone, though the parent's
	 * other cache is still listed. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(cpu_b_refills_from_arena1(288) ? 1 : 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sem_post(&lsem_done);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(cpu_b_refills_from_arena1(224));
	assert_int_equal(pc_check(), 0);
}

/* Blocks of arena 1 (made by a thread of CPU b, now gone) freed by the
 * lone main thread wait in arena 1's bin as remote batches: nobody
 * refills there, and the main thread's GC steps collect them (at most a
 * second later). */
static void *
alloc_on_b(void *arg)
{
	(void)arg;
	pin(cpu_b);
	for (int i = 0; i < XN; i++)
		xv[i] = pc_malloc(SIZE);
	return NULL;
}

static void
test_lone_thread_collects_other_arenas(void **state)
{
	(void)state;
	need_two_arenas();
	pin(cpu_a);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, alloc_on_b, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (int i = 0; i < XN; i++)
		pc_free(xv[i]);
	bin_t *b1 = &arenas[1].bins[sc_index(SIZE)];
	assert_true(remote_pending(&b1->remote));
	struct timespec second = { 1, 100 * 1000 * 1000 };
	nanosleep(&second, NULL);
	/* Slow-path events: refills and flushes of another class. */
	for (int round = 0; round < 8 && remote_pending(&b1->remote);
	    round++) {
		for (int i = 0; i < LN; i++)
			lv[i] = pc_malloc(128);
		for (int i = 0; i < LN; i++)
			pc_free(lv[i]);
	}
	assert_false(remote_pending(&b1->remote));
	assert_int_equal(pc_check(), 0);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stack_lifo),
		cmocka_unit_test(test_pool_bound),
		cmocka_unit_test(test_collected_by_refill),
		cmocka_unit_test(test_collected_by_trim_and_gc),
		cmocka_unit_test(test_misuse_in_batch_reported),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_runs_through_cache),
		cmocka_unit_test(test_cross_cpu_free),
		cmocka_unit_test(test_cross_thread_double_free),
		cmocka_unit_test(test_lone_thread_one_arena),
		cmocka_unit_test(test_lone_thread_collects_other_arenas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
