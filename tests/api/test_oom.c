/*
 * Running out of memory for real (RLIMIT_AS lowered in a forked child).
 * Catches: crashes or aborts instead of NULL/ENOMEM when mmap fails in a
 * slow path (slab refill, large run, huge mapping, metadata/base
 * allocation, page-map growth), errno not set to ENOMEM, a failed
 * realloc damaging the old block, posix_memalign writing *out on failure,
 * and a heap that stays broken (or leaks the memory) after the failure.
 * The _moved variants run each phase on another CPU, so on another arena
 * than the one whose frees left the free memory: that memory (address
 * space held by a region partly in use) must serve the new arena too.
 */
#include "api_common.h"

#include <sched.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <pthread.h>

static size_t
vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return (size_t)size * (size_t)sysconf(_SC_PAGESIZE);
}

#define CHILD_FAIL(code, ...) do { \
	fprintf(stderr, "child: " __VA_ARGS__); fputc('\n', stderr); \
	_exit(code); } while (0)

#define MAXB (1 << 20)
static void *blocks[MAXB];

/* Allocate `size`-byte blocks until malloc fails; returns the count. */
static size_t
fill(size_t first, size_t size, int vary)
{
	size_t n = first;
	while (n < MAXB) {
		size_t sz = vary ? size + (n % 64) * 16 : size;
		errno = 0;
		void *p = malloc(sz);
		if (p == NULL) {
			if (errno != ENOMEM)
				CHILD_FAIL(20, "malloc(%zu) failed with errno %d",
				    sz, errno);
			return n;
		}
		memset(p, 0x5a, sz < 4096 ? sz : 4096);
		blocks[n++] = p;
	}
	CHILD_FAIL(21, "never ran out of memory");
}

/* The CPUs of our affinity mask; with two or more, the _moved tests pin
 * each phase of the child to one of them. */
static int cpus[2], ncpus;

static void
find_cpus(void)
{
	cpu_set_t set;
	ncpus = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && ncpus < 2; c++)
		if (CPU_ISSET(c, &set))
			cpus[ncpus++] = c;
}

/* Run on cpus[which % 2] from now on, if moving (which >= 0). */
static void
move_to(int which)
{
	if (which < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpus[which % 2], &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		CHILD_FAIL(2, "sched_setaffinity");
}

/* A thread with a cache that never allocates again: with it alive, the
 * child's main thread is not alone, so it takes its CPU's arena
 * (docs/design.md "Arenas": a lone thread keeps to arena 0). */
static int idle_ready;

static void *
idle_thread(void *arg)
{
	(void)arg;
	free(malloc(1));
	__atomic_store_n(&idle_ready, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

/* first < 0: stay where the scheduler puts us; otherwise phase 1 runs on
 * cpus[first], phase 2 on the other one and phase 3 on cpus[first]. */
static void
oom_child(size_t budget, int first)
{
	child_default_signals();
	if (first >= 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
			CHILD_FAIL(2, "pthread_create");
		while (!__atomic_load_n(&idle_ready, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	move_to(first);
	struct rlimit rl;
	size_t vm = vm_size();
	rl.rlim_cur = rl.rlim_max = vm + budget;
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		CHILD_FAIL(2, "setrlimit");

	/* 1: large blocks until failure */
	size_t n = fill(0, 1 * MiB, 0);
	if (n < 8)
		CHILD_FAIL(3, "only %zu MiB before ENOMEM", n);

	/* at the limit: every entry point fails cleanly */
	unsigned char *keep = blocks[0];
	memset(keep, 0x77, MiB);
	errno = 0;
	if (realloc(keep, 64 * MiB) != NULL || errno != ENOMEM)
		CHILD_FAIL(4, "realloc at OOM did not fail with ENOMEM");
	for (size_t i = 0; i < MiB; i++)
		if (keep[i] != 0x77)
			CHILD_FAIL(5, "failed realloc damaged the block");
	errno = 0;
	if (calloc(64, MiB) != NULL || errno != ENOMEM)
		CHILD_FAIL(6, "calloc at OOM");
	void *out = (void *)0x1234;
	if (posix_memalign(&out, 4096, 64 * MiB) != ENOMEM ||
	    out != (void *)0x1234)
		CHILD_FAIL(7, "posix_memalign at OOM");
	errno = 0;
	if (aligned_alloc(2 * MiB, 64 * MiB) != NULL || errno != ENOMEM)
		CHILD_FAIL(8, "aligned_alloc at OOM");

	/* 2: give back half, then small blocks until failure */
	move_to(first < 0 ? first : first + 1);
	for (size_t i = 1; i < n; i += 2) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
	size_t m = fill(n, 16, 1);
	if (m == n)
		CHILD_FAIL(9, "no small block fits after freeing large ones");
	/* small and aligned requests at the limit fail cleanly too */
	for (int i = 0; i < 100; i++) {
		void *p = malloc((size_t)i * 8);
		if (p != NULL)
			blocks[m < MAXB ? m++ : 0] = p;	/* got some: fine */
		else if (errno != ENOMEM)
			CHILD_FAIL(10, "small malloc at OOM: errno %d", errno);
	}

	/* 3: free everything; the memory must be usable again */
	for (size_t i = 0; i < m; i++)
		free(blocks[i]);
	move_to(first);
	malloc_trim(0);
	size_t big = budget / 4;
	void *p = malloc(big);
	if (p == NULL)
		CHILD_FAIL(11, "malloc(%zu MiB) failed after freeing everything",
		    big >> 20);
	memset(p, 1, big);
	free(p);
	size_t k = fill(0, 256 * KiB, 0);
	if (k * 256 * KiB < budget / 2)
		CHILD_FAIL(12, "only %zu KiB allocatable after freeing all "
		    "(budget %zu KiB)", k * 256, budget >> 10);
	for (size_t i = 0; i < k; i++)
		free(blocks[i]);
	fprintf(stderr, "oom child: budget %zu MiB: %zu x 1 MiB, then %zu small, "
	    "then %zu x 256 KiB\n", budget >> 20, n, m - n, k);
	_exit(0);
}

static void
run_oom(size_t budget, int first)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		oom_child(budget, first);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("out-of-memory child (budget %zu MiB) %s %d", budget >> 20,
		    WIFEXITED(status) ? "exited with" : "killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

static void
test_oom_256m(void **state)
{
	(void)state;
	run_oom(256 * MiB, -1);
}

static void
test_oom_64m(void **state)
{
	(void)state;
	run_oom(64 * MiB, -1);
}

/* Needs two CPUs, and an arena for each (narenas:0, one per CPU). */
static void
run_oom_moved(size_t budget)
{
	find_cpus();
	if (ncpus < 2) {
		fprintf(stderr, "one CPU: nothing to move between\n");
		skip();
	}
	run_oom(budget, 0);
	run_oom(budget, 1);
}

static void
test_oom_256m_moved(void **state)
{
	(void)state;
	run_oom_moved(256 * MiB);
}

static void
test_oom_64m_moved(void **state)
{
	(void)state;
	run_oom_moved(64 * MiB);
}

/*
 * A fresh thread in an exhausted process: its first allocations (thread
 * cache setup) must fail cleanly or succeed, not crash; once memory is
 * freed, it must allocate again.  The thread is created while there is
 * memory for its stack (once the process is exhausted, pthread_create
 * itself fails); it and the main thread take turns through pipes, which
 * do not allocate.
 */
static int oom_go[2], oom_done[2];

/* Phase 1: nothing left.  NULL, or what went wrong. */
static const char *
oom_phase1(void)
{
	char c;
	if (read(oom_go[0], &c, 1) != 1)
		return "no go";
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)(i % 100) * 16 + 1);
		if (p == NULL && errno != ENOMEM)
			return "malloc failed without ENOMEM";
		free(p);
	}
	return NULL;
}

static void *
oom_thread(void *arg)
{
	(void)arg;
	const char *err = oom_phase1();
	/* Whatever happened, let the main thread go on. */
	if (write(oom_done[1], err ? "x" : "1", 1) != 1 || err != NULL)
		return (void *)(err ? err : "write");
	/* Phase 2: the main thread freed everything. */
	char c;
	if (read(oom_go[0], &c, 1) != 1)
		return (void *)"no go";
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)(i % 100) * 16 + 1);
		if (p == NULL)
			return (void *)"malloc failed with memory free";
		memset(p, 1, (size_t)(i % 100) * 16 + 1);
		free(p);
	}
	return NULL;
}

static void
test_oom_new_thread(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		if (pipe(oom_go) != 0 || pipe(oom_done) != 0)
			CHILD_FAIL(2, "pipe");
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = vm_size() + 96 * MiB;
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			CHILD_FAIL(2, "setrlimit");
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * KiB);
		int rc = pthread_create(&t, &attr, oom_thread, NULL);
		if (rc != 0)
			CHILD_FAIL(4, "pthread_create before the heap is full: %s",
			    strerror(rc));
		size_t n = fill(0, 64 * KiB, 0);
		if (n < 8)
			CHILD_FAIL(7, "only %zu blocks before ENOMEM", n);
		if (write(oom_go[1], "1", 1) != 1)
			CHILD_FAIL(5, "write");
		char c;
		if (read(oom_done[0], &c, 1) != 1)
			CHILD_FAIL(5, "read");
		/* Everything back, wholly free regions unmapped: the
		 * thread's arena may not be the one that held the blocks. */
		for (size_t i = 0; i < n; i++) {
			free(blocks[i]);
			blocks[i] = NULL;
		}
		malloc_trim(0);
		if (write(oom_go[1], "2", 1) != 1)
			CHILD_FAIL(5, "write");
		void *r;
		if (pthread_join(t, &r) != 0)
			CHILD_FAIL(6, "pthread_join");
		if (r != NULL)
			CHILD_FAIL(3, "thread at OOM: %s", (const char *)r);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("thread at OOM: child %s %d",
		    WIFEXITED(status) ? "exited with" : "killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_oom_256m),
		cmocka_unit_test(test_oom_64m),
		cmocka_unit_test(test_oom_256m_moved),
		cmocka_unit_test(test_oom_64m_moved),
		cmocka_unit_test(test_oom_new_thread),
	};
	return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
