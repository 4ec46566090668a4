/*
 * Thread exit on Windows: every way a thread can end flushes its cache
 * (the FLS callback), and caches are recycled, not leaked.  Catches: a
 * thread kind whose exit hook does not fire (its cached blocks stay counted
 * as allocated), a cache flushed while its thread still runs (pattern
 * damage), and caches that are never reused (metadata grows per thread).
 *
 * Each worker allocates and frees blocks of many sizes, so that its cache
 * ends up holding a few hundred KiB, then waits; the main thread checks the
 * caches really hold memory, lets the workers end, and checks that
 * "allocated" is back where it was.  Runs with narenas:1 (ctest ENVIRONMENT)
 * so that no arena choice hides anything.
 */
#include <process.h>
#include <pthread.h>

#include "win_common.h"

enum kind { K_RETURN, K_EXITTHREAD, K_BEGINTHREADEX, K_ENDTHREADEX,
    K_PTHREAD, K_PTHREAD_EXIT, K_NKINDS };
static const char *const kind_name[] = { "CreateThread+return",
    "CreateThread+ExitThread", "_beginthreadex+return",
    "_beginthreadex+_endthreadex", "pthread_create+return",
    "pthread_create+pthread_exit" };

enum { NWORKERS = 4, ROUNDS = 3 };

static struct {
	enum kind kind;
	LONG ready;		/* workers done with their work */
	HANDLE all_ready;	/* set by the last of them */
	HANDLE go;		/* manual reset: workers may end */
	LONG bad;		/* pattern damage seen */
} run;

/* Allocate, check and free blocks of mixed sizes; leave the thread's cache
 * well filled. */
static void
work(uint32_t seed)
{
	enum { N = 1500 };
	void *v[N];
	size_t n[N];
	for (int i = 0; i < N; i++) {
		n[i] = rnd(&seed) % (i % 50 == 0 ? 60000 : 3000);
		v[i] = malloc(n[i]);
		if (v[i] == NULL) {
			InterlockedIncrement(&run.bad);
			n[i] = 0;
			continue;
		}
		pat_fill(v[i], n[i], (uintptr_t)v[i]);
	}
	for (int i = 0; i < N; i++) {
		if (v[i] != NULL && !pat_ok(v[i], n[i], (uintptr_t)v[i]))
			InterlockedIncrement(&run.bad);
		free(v[i]);
	}
	/* Fill a few bins to capacity. */
	static const size_t sizes[] = { 16, 48, 128, 256, 512, 1024, 2048, 4096 };
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		void *w[128];
		for (int i = 0; i < 128; i++)
			w[i] = malloc(sizes[s]);
		for (int i = 0; i < 128; i++)
			free(w[i]);
	}
}

static void
worker_body(uintptr_t id)
{
	work((uint32_t)id * 2654435761u + 1);
	if (InterlockedIncrement(&run.ready) == NWORKERS)
		SetEvent(run.all_ready);
	WaitForSingleObject(run.go, INFINITE);
}

static DWORD WINAPI
thread_create_main(LPVOID arg)
{
	worker_body((uintptr_t)arg);
	if (run.kind == K_EXITTHREAD)
		ExitThread(0);
	return 0;
}

static unsigned __stdcall
beginthreadex_main(void *arg)
{
	worker_body((uintptr_t)arg);
	if (run.kind == K_ENDTHREADEX)
		_endthreadex(0);
	return 0;
}

static void *
pthread_main(void *arg)
{
	worker_body((uintptr_t)arg);
	if (run.kind == K_PTHREAD_EXIT)
		pthread_exit(NULL);
	return NULL;
}

/* Start NWORKERS threads of a kind, wait until their caches are filled,
 * return the allocated bytes at that point, and let them end. */
static unsigned long long
run_round(enum kind kind, int round)
{
	HANDLE h[NWORKERS];
	pthread_t pt[NWORKERS];
	run.kind = kind;
	run.ready = 0;
	ResetEvent(run.go);
	ResetEvent(run.all_ready);
	for (uintptr_t i = 0; i < NWORKERS; i++) {
		uintptr_t id = (uintptr_t)round * 100 + i + 1;
		switch (kind) {
		case K_RETURN:
		case K_EXITTHREAD:
			h[i] = CreateThread(NULL, 0, thread_create_main,
			    (LPVOID)id, 0, NULL);
			assert_non_null(h[i]);
			break;
		case K_BEGINTHREADEX:
		case K_ENDTHREADEX:
			h[i] = (HANDLE)_beginthreadex(NULL, 0,
			    beginthreadex_main, (void *)id, 0, NULL);
			assert_non_null(h[i]);
			break;
		default:
			assert_int_equal(pthread_create(&pt[i], NULL,
			    pthread_main, (void *)id), 0);
			break;
		}
	}
	assert_int_equal(WaitForSingleObject(run.all_ready, 60000),
	    WAIT_OBJECT_0);
	unsigned long long busy = pc_stat("allocated");
	SetEvent(run.go);
	for (int i = 0; i < NWORKERS; i++) {
		if (kind == K_PTHREAD || kind == K_PTHREAD_EXIT) {
			assert_int_equal(pthread_join(pt[i], NULL), 0);
		} else {
			assert_int_equal(WaitForSingleObject(h[i], 60000),
			    WAIT_OBJECT_0);
			CloseHandle(h[i]);
		}
	}
	return busy;
}

static int
setup(void **state)
{
	(void)state;
	run.all_ready = CreateEventA(NULL, TRUE, FALSE, NULL);
	run.go = CreateEventA(NULL, TRUE, FALSE, NULL);
	free(opaque_ptr(malloc(opaque(1))));
	/* PCMALLOC_CONF from the ctest environment took effect. */
	if (pc_stat("narenas") != 1)
		return -1;
	return run.all_ready == NULL || run.go == NULL;
}

static void
check_kind(enum kind kind)
{
	/* Thread runtimes keep some bookkeeping of their own (winpthreads
	 * does); far less than one worker's cache. */
	const unsigned long long slack = 64 * KiB;
	unsigned long long base = allocated_now();
	for (int r = 0; r < ROUNDS; r++) {
		unsigned long long busy = run_round(kind, r);
		unsigned long long after = allocated_now();
		print_message("%-28s round %d: allocated %llu -> %llu with "
		    "caches full -> %llu after exit\n", kind_name[kind], r,
		    base, busy, after);
		/* The workers' caches really held memory ... */
		if (busy < base + NWORKERS * 100 * KiB)
			fail_msg("%s: caches hold only %llu bytes",
			    kind_name[kind], busy - base);
		/* ... and their exit gave it all back. */
		if (after > base + slack)
			fail_msg("%s: %llu bytes not flushed at thread exit",
			    kind_name[kind], after - base);
	}
	assert_int_equal(run.bad, 0);
}

static void test_createthread_return(void **s) { (void)s; check_kind(K_RETURN); }
static void test_exitthread(void **s) { (void)s; check_kind(K_EXITTHREAD); }
static void test_beginthreadex(void **s) { (void)s; check_kind(K_BEGINTHREADEX); }
static void test_endthreadex(void **s) { (void)s; check_kind(K_ENDTHREADEX); }
static void test_pthread_return(void **s) { (void)s; check_kind(K_PTHREAD); }
static void test_pthread_exit(void **s) { (void)s; check_kind(K_PTHREAD_EXIT); }

/* Blocks freed by a thread other than the one that allocated them, while
 * both threads come and go. */
static DWORD WINAPI
free_all(LPVOID arg)
{
	void **v = arg;
	for (int i = 0; i < 4000; i++)
		free(v[i]);
	return 0;
}

static void
test_cross_thread_free(void **state)
{
	(void)state;
	unsigned long long base = allocated_now();
	for (int r = 0; r < 4; r++) {
		void **v = malloc(4000 * sizeof(*v));
		assert_non_null(v);
		for (int i = 0; i < 4000; i++)
			assert_non_null(v[i] = malloc((size_t)(i % 700) + 1));
		HANDLE h = CreateThread(NULL, 0, free_all, v, 0, NULL);
		assert_non_null(h);
		assert_int_equal(WaitForSingleObject(h, 60000), WAIT_OBJECT_0);
		CloseHandle(h);
		free(v);
	}
	assert_true(allocated_now() <= base + 64 * KiB);
}

/* A cache is ~290 KiB of metadata (mostly slots for bins that never
 * grow, never touched): 300 threads that each leaked theirs would add
 * 85 MiB; recycled, they add nothing (metadata grows in 2 MiB blocks, so
 * allow one). */
static DWORD WINAPI
small_work(LPVOID arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++)
		free(opaque_ptr(malloc(opaque((size_t)i * 40 + 1))));
	return 0;
}

static void
sequential_threads(int n)
{
	for (int i = 0; i < n; i++) {
		HANDLE h = CreateThread(NULL, 0, small_work, NULL, 0, NULL);
		assert_non_null(h);
		assert_int_equal(WaitForSingleObject(h, 60000), WAIT_OBJECT_0);
		CloseHandle(h);
	}
}

static void
test_caches_recycled(void **state)
{
	(void)state;
	sequential_threads(20);
	unsigned long long meta = pc_stat("metadata");
	unsigned long long base = allocated_now();
	sequential_threads(300);
	print_message("metadata %llu -> %llu over 300 threads\n", meta,
	    pc_stat("metadata"));
	assert_true(pc_stat("metadata") <= meta + 2 * MiB);
	assert_true(allocated_now() <= base + 64 * KiB);
}

/*
 * FLS values belong to fibers.  A thread whose first allocation happens in
 * a secondary fiber arms the exit hook on that fiber; when another thread
 * deletes the fiber, the hook runs there and must touch neither cache: the
 * deleting thread keeps its own, and the fiber's thread goes on using its
 * cache undamaged.
 */
static struct {
	LPVOID thread_fiber, side_fiber;
	HANDLE side_done, deleted;
	int bad;
} fib;

static VOID WINAPI
side_fiber_main(LPVOID arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++)	/* the thread's first allocations */
		free(opaque_ptr(malloc(opaque((size_t)i * 8 + 1))));
	SwitchToFiber(fib.thread_fiber);
}

static DWORD WINAPI
fiber_thread(LPVOID arg)
{
	(void)arg;
	fib.thread_fiber = ConvertThreadToFiber(NULL);
	fib.side_fiber = CreateFiber(0, side_fiber_main, NULL);
	if (fib.thread_fiber == NULL || fib.side_fiber == NULL)
		return 1;
	SwitchToFiber(fib.side_fiber);
	SetEvent(fib.side_done);
	WaitForSingleObject(fib.deleted, INFINITE);
	/* The cache armed in the deleted fiber is still this thread's. */
	void *v[300];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 300; i++) {
			v[i] = malloc((size_t)i * 8 + 1);
			pat_fill(v[i], (size_t)i * 8 + 1, (uintptr_t)v[i]);
		}
		for (int i = 0; i < 300; i++) {
			if (!pat_ok(v[i], (size_t)i * 8 + 1, (uintptr_t)v[i]))
				fib.bad++;
			free(v[i]);
		}
	}
	ConvertFiberToThread();
	return 0;
}

static void
test_fiber_deleted_elsewhere(void **state)
{
	(void)state;
	free(opaque_ptr(malloc(opaque(10))));
	unsigned long long before = pc_stat("allocated");
	fib.side_done = CreateEventA(NULL, TRUE, FALSE, NULL);
	fib.deleted = CreateEventA(NULL, TRUE, FALSE, NULL);
	HANDLE h = CreateThread(NULL, 0, fiber_thread, NULL, 0, NULL);
	assert_non_null(h);
	assert_int_equal(WaitForSingleObject(fib.side_done, 60000),
	    WAIT_OBJECT_0);
	/* Our own cache works before and after. */
	void *p = malloc(opaque(48));
	free(p);
	DeleteFiber(fib.side_fiber);	/* runs the hook on this thread */
	void *q = malloc(opaque(48));
	assert_ptr_equal(q, p);	/* still served from our cache */
	free(q);
	SetEvent(fib.deleted);
	assert_int_equal(WaitForSingleObject(h, 60000), WAIT_OBJECT_0);
	DWORD rc = 9;
	GetExitCodeThread(h, &rc);
	CloseHandle(h);
	CloseHandle(fib.side_done);
	CloseHandle(fib.deleted);
	assert_int_equal(rc, 0);
	assert_int_equal(fib.bad, 0);
	/* The thread's cache was never flushed: a bounded leak, at most
	 * one cache's worth. */
	print_message("left in the fiber thread's cache: %llu bytes\n",
	    pc_stat("allocated") - before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_createthread_return),
		cmocka_unit_test(test_exitthread),
		cmocka_unit_test(test_beginthreadex),
		cmocka_unit_test(test_endthreadex),
		cmocka_unit_test(test_pthread_return),
		cmocka_unit_test(test_pthread_exit),
		cmocka_unit_test(test_cross_thread_free),
		cmocka_unit_test(test_caches_recycled),
		cmocka_unit_test(test_fiber_deleted_elsewhere),
	};
	return cmocka_run_group_tests_name("threads", tests, setup, NULL);
}
