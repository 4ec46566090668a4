/*
 * The idle-cache reclaim protocol (src/reclaim.c) on its own, below
 * tcache_reclaim: which caches a pass hands out and what it does to their
 * owners.  Catches: a pass handing out a cache whose owner is inside an
 * operation (the in_op test), not pointing an idle owner at reclaim_stolen
 * (its next operation would use a cache being flushed), handing out the
 * caller's own cache, handing a cache out twice or leaving it marked, an
 * owner not getting its cache back, the registry losing a thread's cache
 * (statistics), the count of emptied caches, and orphans after a fork.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "skip_policy.h"

#include "os.h"
#include "reclaim.h"
#include "tcache.h"
#include "pcmalloc.h"

enum { N = 300, SIZE = 48 };
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;		/* 1: cache filled, parked; 2: go on */
static bool fake_op;		/* park "inside an operation" */
static tcache_t *worker_tc;

static void *
worker(void *arg)
{
	(void)arg;
	static void *v[N];
	for (int i = 0; i < N; i++)
		v[i] = pc_malloc(SIZE);
	for (int i = 0; i < N; i++)
		pc_free(v[i]);
	worker_tc = TCACHE_GET();
#if PC_TCACHE_RECLAIM
	if (fake_op)
		tcache_thread.in_op++;
#endif
	pthread_mutex_lock(&mu);
	phase = 1;
	pthread_cond_broadcast(&cv);
	while (phase < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
#if PC_TCACHE_RECLAIM
	if (fake_op)
		tcache_thread.in_op--;
#endif
	/* Whatever the pass did, the next operation gets our cache back. */
	void *p = pc_malloc(SIZE);
	pc_free(p);
	return TCACHE_GET() == worker_tc ? (void *)1 : NULL;
}

static pthread_t
start(bool busy)
{
	pthread_t t;
	phase = 0;
	fake_op = busy;
	assert_int_equal(pthread_create(&t, NULL, worker, NULL), 0);
	pthread_mutex_lock(&mu);
	while (phase < 1)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return t;
}

static void
finish(pthread_t t)
{
	pthread_mutex_lock(&mu);
	phase = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	void *ok;
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_non_null(ok);
	assert_int_equal(pc_check(), 0);
}

static bool
can_reclaim(void)
{
	if (!PC_TCACHE_RECLAIM)
		return false;
	if (!os_remote_fence())
		SKIP_BECAUSE("no remote fence (membarrier) here: reclaim is off");
	return true;
}

/* Hand out every cache of a pass, checking each is `want`. */
static unsigned
pass(bool idle_only, tcache_t *want)
{
	reclaim_pass_t rp;
	reclaim_begin(&rp, idle_only);
	unsigned n = 0;
	for (tcache_t *tc; (tc = reclaim_next(&rp)) != NULL; n++) {
		assert_ptr_equal(tc, want);
		assert_false(tc->fenced);	/* unmarked when handed out */
	}
	reclaim_end(&rp, 0);
	return n;
}

static void
test_idle_owner_is_taken(void **state)
{
	(void)state;
	pc_free(pc_malloc(SIZE));	/* our own cache exists */
	if (!can_reclaim())
		return;
	pthread_t t = start(false);
	assert_true(TBIN(worker_tc, sc_index(SIZE))->n > 0);
	assert_true(reclaim_cached_bytes() >=
	    TBIN(worker_tc, sc_index(SIZE))->n * sc_size(sc_index(SIZE)));
	assert_int_equal(pass(false, worker_tc), 1);
	/* The owner now misses and waits for the pass (over by now). */
	assert_ptr_equal(*worker_tc->tls_slot, &reclaim_stolen);
	assert_int_equal(TBIN(&reclaim_stolen, 0)->cap, 0);
	/* Not flushed by this test: the owner takes back a full cache. */
	finish(t);
}

static void
test_busy_owner_is_left_alone(void **state)
{
	(void)state;
	if (!can_reclaim())
		return;
	pthread_t t = start(true);
	assert_int_equal(pass(false, NULL), 0);
	assert_int_equal(pass(false, NULL), 0);
	finish(t);
}

static void
test_idle_only_needs_two_looks(void **state)
{
	(void)state;
	if (!can_reclaim())
		return;
	pthread_t t = start(false);
	/* A new cache's previous look is "no slow path yet": the worker's
	 * refills make the first idle-only pass see it busy; the second
	 * sees no slow path since the first. */
	assert_int_equal(pass(true, worker_tc), 0);
	assert_int_equal(pass(true, worker_tc), 1);
	finish(t);
}

static void
test_own_cache_never_handed_out(void **state)
{
	(void)state;
	if (!can_reclaim())
		return;
	for (int i = 0; i < 10; i++)
		pc_free(pc_malloc(SIZE));
	tcache_t *mine = reclaim_own_locked();
	reclaim_own_unlock();
	assert_ptr_equal(mine, TCACHE_GET());
	assert_true(TBIN(mine, sc_index(SIZE))->n > 0);
	assert_int_equal(pass(false, NULL), 0);
	assert_ptr_equal(TCACHE_GET(), mine);
}

static void
test_count_and_tcache_reclaim(void **state)
{
	(void)state;
	if (!can_reclaim())
		return;
	pthread_t t = start(false);
	uint64_t before = reclaim_count();
	assert_int_equal(tcache_reclaim(false), 1);
	assert_int_equal(reclaim_count(), before + 1);
	assert_int_equal(TBIN(worker_tc, sc_index(SIZE))->n, 0);
	finish(t);
}

/* After fork, the caches of threads that did not survive are orphans: the
 * child's first pass hands out those not inside an operation. */
static void
test_fork_orphans(void **state)
{
	(void)state;
	if (!can_reclaim())
		return;
	for (int busy = 0; busy <= 1; busy++) {
		pthread_t t = start(busy);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (!worker_tc->orphan || worker_tc->orphan_busy != busy)
				_exit(1);
			reclaim_pass_t rp;
			reclaim_begin(&rp, false);
			tcache_t *tc = reclaim_next(&rp);
			bool ok = busy ? tc == NULL : tc == worker_tc &&
			    reclaim_next(&rp) == NULL;
			while (tc != NULL)
				tc = reclaim_next(&rp);
			reclaim_end(&rp, 0);
			_exit(ok ? 0 : 2);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
		finish(t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_owner_is_taken),
		cmocka_unit_test(test_busy_owner_is_left_alone),
		cmocka_unit_test(test_idle_only_needs_two_looks),
		cmocka_unit_test(test_own_cache_never_handed_out),
		cmocka_unit_test(test_count_and_tcache_reclaim),
		cmocka_unit_test(test_fork_orphans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
