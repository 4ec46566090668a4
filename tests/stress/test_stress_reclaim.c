/*
 * Idle-cache reclaim against busy threads.  Workers allocate and free small
 * blocks as fast as they can (thread-cache hits, the path a reclaimer must
 * never interrupt), some of them through a shared table so blocks change
 * threads, and now and then fork.  Meanwhile two reclaimer threads empty
 * every cache they can reach, continuously: one takes all caches not in
 * use at that instant (what malloc_trim does), one only idle ones (what
 * the periodic pass does).  With more threads than cores, workers are
 * preempted inside their fast paths all the time.  A block handed out
 * twice, or a cache emptied under its owner's feet, shows as a clobbered
 * pattern, a bitmap violation in pc_check(), or a crash.
 */
#include "stress_common.h"

#include <sys/wait.h>

#include "os.h"
#include "tcache.h"

#define TOTAL_OPS 2000000
#define LOCAL_SLOTS 256
#define SHARED_SLOTS 256

static shared_slot_t shared[SHARED_SLOTS];
static atomic_int stop;
static atomic_long emptied, passes, forks;

static void
slot_op(slot_t *s, rng_t *r)
{
	if (s->p != NULL) {
		PAT_VERIFY(s->p, s->n, s->seed, "before free");
		free(s->p);
		s->p = NULL;
		return;
	}
	/* Small blocks only: all of them go through thread caches. */
	size_t n = 1 + rng_below(r, rng_below(r, 8) == 0 ? 32768 : 512);
	void *p = malloc(n);
	CHECK(p != NULL, "malloc(%zu) failed", n);
	s->p = p;
	s->n = n;
	s->seed = block_seed(p, n);
	pat_fill(p, n, s->seed);
}

static void
child_after_fork(void)
{
	/* Only this thread survived: the others' caches are orphans that
	 * the child's reclaim returns (or leaves, if they were busy). */
	void *v[64];
	for (int i = 0; i < 64; i++) {
		v[i] = malloc(16 + (size_t)i * 8);
		if (v[i] == NULL)
			_exit(3);
		memset(v[i], i, 16 + (size_t)i * 8);
	}
	for (int i = 0; i < 64; i++)
		free(v[i]);
	tcache_reclaim(false);
	_exit(pc_check() == 0 ? 0 : 4);
}

static void *
worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	rng_t r;
	rng_seed(&r, id + 101);
	slot_t *local = calloc(LOCAL_SLOTS, sizeof(*local));
	CHECK(local != NULL, "calloc slots");
	long ops = SCALED(TOTAL_OPS) / stress_threads;
	for (long i = 0; i < ops; i++) {
		unsigned d = (unsigned)rng_below(&r, 1000);
		if (d < 100) {
			shared_slot_t *sh = &shared[rng_below(&r, SHARED_SLOTS)];
			pthread_mutex_lock(&sh->mu);
			slot_op(&sh->s, &r);
			pthread_mutex_unlock(&sh->mu);
		} else {
			slot_op(&local[rng_below(&r, LOCAL_SLOTS)], &r);
		}
		if (id == 0 && i % 50000 == 49999) {
			pid_t pid = fork();
			CHECK(pid >= 0, "fork failed");
			if (pid == 0)
				child_after_fork();
			int st;
			CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			    "child after fork failed: status %#x", st);
			atomic_fetch_add(&forks, 1);
		}
		/* Some workers pause, so idle passes find idle caches. */
		if (id % 3 == 2 && i % 20000 == 19999) {
			struct timespec ts = { 0, 2000000 };
			nanosleep(&ts, NULL);
		}
	}
	for (size_t i = 0; i < LOCAL_SLOTS; i++)
		if (local[i].p != NULL) {
			PAT_VERIFY(local[i].p, local[i].n, local[i].seed, "end");
			free(local[i].p);
		}
	free(local);
	return NULL;
}

static void *
reclaimer(void *arg)
{
	bool idle_only = arg != NULL;
	while (!atomic_load(&stop)) {
		atomic_fetch_add(&emptied, tcache_reclaim(idle_only));
		atomic_fetch_add(&passes, 1);
		if (idle_only) {
			struct timespec ts = { 0, 500000 };
			nanosleep(&ts, NULL);
		} else {
			sched_yield();
		}
	}
	return NULL;
}

static void
test_reclaim_under_load(void **state)
{
	(void)state;
	stress_begin();
	unsigned long long alloc0, alloc1;
	pc_trim();
	assert_int_equal(pc_stat_get("allocated", &alloc0), 0);
	pthread_t rec[2];
	xpthread_create(&rec[0], reclaimer, NULL);
	xpthread_create(&rec[1], reclaimer, (void *)1);
	int nt = stress_threads;
	pthread_t *t = calloc((size_t)nt, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < nt; i++)
		xpthread_create(&t[i], worker, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	atomic_store(&stop, 1);
	xpthread_join(rec[0]);
	xpthread_join(rec[1]);
	for (int i = 0; i < SHARED_SLOTS; i++)
		if (shared[i].s.p != NULL) {
			PAT_VERIFY(shared[i].s.p, shared[i].s.n,
			    shared[i].s.seed, "shared");
			free(shared[i].s.p);
			shared[i].s.p = NULL;
		}
	free(t);
	fprintf(stderr, "%ld reclaim passes emptied %ld caches; %ld forks\n",
	    atomic_load(&passes), atomic_load(&emptied), atomic_load(&forks));
	/* Everything the workers allocated is back: a cache taken back
	 * after a pass and refilled over its contents would leak. */
	pc_trim();
	assert_int_equal(pc_stat_get("allocated", &alloc1), 0);
	if (alloc1 > alloc0 + 64 * KiB)
		fail_msg("allocated %llu after, %llu before", alloc1, alloc0);
	/* Where the OS has the fence, the test must have exercised it. */
	if (PC_TCACHE_RECLAIM && os_remote_fence())
		assert_true(atomic_load(&emptied) > 0);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	for (int i = 0; i < SHARED_SLOTS; i++)
		pthread_mutex_init(&shared[i].mu, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reclaim_under_load),
	};
	return STRESS_RUN("stress_reclaim", tests);
}
