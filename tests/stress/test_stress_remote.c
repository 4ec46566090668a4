/*
 * Remote frees (remote.h): producers allocate small blocks and hand them,
 * in batches of 256, to consumers pinned to the other CPU, so nearly every
 * free is a flush into another CPU's arena as a remote batch.  More
 * threads than cores (preemption between a batch's push and its
 * collection), consumers that exit with their batches still pending, and
 * a thread that forks while batches are in flight (the child checks the
 * heap, frees blocks it inherited, allocates on both CPUs and exits).
 * Catches: a block collected twice or never (pattern mismatch, overlap,
 * pc_check), lost batches (allocated bytes that never come back after
 * pc_trim), deadlocks across fork (watchdog).
 */
#include "stress_common.h"

#include <sched.h>
#include <sys/wait.h>

#define BATCH 256
#define QCAP 8

struct batch {
	void *p[BATCH];
	size_t n[BATCH];
};

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *q[QCAP];
	unsigned head, count;
	bool done;
} chan_t;

static chan_t *chans;
static int npairs;
static long batches_per_pair;
static int cpus[2] = { -1, -1 };
static atomic_int stop_forking;

static void
pin(int which)
{
	if (cpus[which] < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpus[which], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void
chan_put(chan_t *c, struct batch *b)
{
	pthread_mutex_lock(&c->mu);
	while (c->count == QCAP)
		pthread_cond_wait(&c->cv, &c->mu);
	c->q[(c->head + c->count++) % QCAP] = b;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static struct batch *
chan_get(chan_t *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->count == 0 && !c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	struct batch *b = NULL;
	if (c->count > 0) {
		b = c->q[c->head];
		c->head = (c->head + 1) % QCAP;
		c->count--;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return b;
}

static void *
producer(void *arg)
{
	int id = (int)(intptr_t)arg;
	chan_t *c = &chans[id];
	pin(id & 1);
	rng_t r;
	rng_seed(&r, 1000 + (uint64_t)id);
	for (long k = 0; k < batches_per_pair; k++) {
		struct batch *b = malloc(sizeof(*b));
		CHECK(b != NULL, "batch");
		for (int i = 0; i < BATCH; i++) {
			size_t n = 16 + rng_below(&r, 1009);
			b->n[i] = n;
			b->p[i] = malloc(n);
			CHECK(b->p[i] != NULL, "malloc(%zu)", n);
			pat_fill(b->p[i], n, block_seed(b->p[i], n));
		}
		chan_put(c, b);
	}
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* On the other CPU: verify and free.  Exits as soon as its channel is
 * drained, with its last remote batches possibly still pending. */
static void *
consumer(void *arg)
{
	int id = (int)(intptr_t)arg;
	pin(!(id & 1));
	struct batch *b;
	while ((b = chan_get(&chans[id])) != NULL) {
		for (int i = 0; i < BATCH; i++) {
			PAT_VERIFY(b->p[i], b->n[i],
			    block_seed(b->p[i], b->n[i]), "remote batch");
			free(b->p[i]);
		}
		free(b);
	}
	return NULL;
}

/* Forks while batches are in flight; the child must find a consistent
 * heap and be able to use both CPUs' arenas. */
static void *
forker(void *arg)
{
	(void)arg;
	int forks = 0;
	while (!atomic_load(&stop_forking) && forks < 20) {
		usleep(20000);
		pid_t pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			alarm(60);
			if (pc_check() != 0)
				_exit(3);
			void *v[2000];
			for (int w = 0; w < 2; w++) {
				pin(w);
				for (int i = 0; i < 2000; i++) {
					v[i] = malloc(16 + (size_t)i % 1000);
					if (v[i] == NULL)
						_exit(4);
					memset(v[i], 0x77, 16);
				}
				pin(!w);
				for (int i = 0; i < 2000; i++)
					free(v[i]);
			}
			pc_trim();
			_exit(pc_check() == 0 ? 0 : 5);
		}
		int st;
		CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "fork child failed: status %#x", st);
		forks++;
	}
	return NULL;
}

static void
test_remote_frees(void **state)
{
	(void)state;
	stress_begin();
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    CPU_COUNT(&set) >= 2) {
		for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus[k++] = c;
	}
	npairs = stress_threads / 2 > 0 ? stress_threads / 2 : 1;
	batches_per_pair = SCALED(2400) / npairs + 1;
	chans = calloc((size_t)npairs, sizeof(*chans));
	CHECK(chans != NULL, "chans");
	for (int i = 0; i < npairs; i++) {
		pthread_mutex_init(&chans[i].mu, NULL);
		pthread_cond_init(&chans[i].cv, NULL);
	}
	pc_trim();
	unsigned long long alloc0, alloc1;
	assert_int_equal(pc_stat_get("allocated", &alloc0), 0);
	pthread_t *t = calloc((size_t)npairs * 2, sizeof(pthread_t));
	pthread_t f;
	xpthread_create(&f, forker, NULL);
	for (int i = 0; i < npairs; i++) {
		xpthread_create(&t[2 * i], producer, (void *)(intptr_t)i);
		xpthread_create(&t[2 * i + 1], consumer, (void *)(intptr_t)i);
	}
	for (int i = 0; i < 2 * npairs; i++)
		xpthread_join(t[i]);
	atomic_store(&stop_forking, 1);
	xpthread_join(f);
	free(t);
	for (int i = 0; i < npairs; i++) {
		pthread_mutex_destroy(&chans[i].mu);
		pthread_cond_destroy(&chans[i].cv);
	}
	free(chans);
	/* Every batch pushed was collected, none lost: what the threads
	 * allocated is all back. */
	pc_trim();
	assert_int_equal(pc_stat_get("allocated", &alloc1), 0);
	if (alloc1 > alloc0 + 256 * KiB)
		fail_msg("allocated %llu before, %llu after", alloc0, alloc1);
	assert_int_equal(pc_check(), 0);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
