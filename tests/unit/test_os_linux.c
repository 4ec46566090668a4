/*
 * The Linux OS layer (src/os_linux.c) against the contract in os.h, as
 * tests/windows/test_os.c checks the Windows one.  Catches: misaligned or
 * non-zero reservations, os_reserve_near not taking a free hint, a release
 * that leaves pages mapped, os_release_tail releasing the wrong part,
 * purged pages not reading as zero, os_resident miscounting or looking
 * past its bound, os_remap copying or losing data, a
 * guarded reservation whose guard pages are accessible (checked in a child,
 * which must die of SIGSEGV), os_read_safe faulting, os_is_mapped wrong,
 * injected reservation failures ignored, errno clobbered, the feature bits
 * disagreeing with the functions, broken locks, helper threads, a
 * non-monotonic clock and constant "random" numbers, the C library's
 * code not found, a thread's stack range not holding its frames.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <cmocka.h>

#include "os.h"
#include "pcmalloc.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static void
assert_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 512)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[n - 1], 0);
}

static void
test_reserve_aligned(void **state)
{
	(void)state;
	static const size_t sizes[] = { 4 * KiB, 12 * KiB, 64 * KiB,
	    2 * MiB, 6 * MiB };
	static const size_t aligns[] = { 4 * KiB, 64 * KiB, 2 * MiB, 8 * MiB };
	assert_int_equal(os_page_size(), 4096);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]);
		    a++) {
			errno = 4242;
			unsigned char *p = os_reserve(sizes[s], aligns[a]);
			assert_int_equal(errno, 4242);
			assert_non_null(p);
			assert_int_equal((uintptr_t)p % aligns[a], 0);
			assert_zero(p, sizes[s]);
			memset(p, 0x77, sizes[s]);	/* writable */
			assert_true(os_is_mapped(p));
			assert_true(os_is_mapped(p + sizes[s] - 1));
			os_release(p, sizes[s]);
			assert_false(os_is_mapped(p));
		}
	}
	assert_null(os_reserve((size_t)1 << 62, 4096));
}

static void
test_reserve_near_and_merge(void **state)
{
	(void)state;
	assert_int_equal(os_can_merge_reservations(),
	    PC_OS_CAN_MERGE_RESERVATIONS);
	unsigned char *a = os_reserve(4 * MiB, 2 * MiB);
	assert_non_null(a);
	os_release(a + 2 * MiB, 2 * MiB);	/* a hole just above */
	unsigned char *b = os_reserve_near(2 * MiB, 2 * MiB, a + 2 * MiB);
	assert_non_null(b);
	assert_int_equal((uintptr_t)b % (2 * MiB), 0);
	assert_zero(b, 2 * MiB);
	if (b == a + 2 * MiB) {
		/* Adjacent: one release takes both. */
		os_release(a, 4 * MiB);
		assert_false(os_is_mapped(a));
		assert_false(os_is_mapped(b));
	} else {
		os_release(a, 2 * MiB);
		os_release(b, 2 * MiB);
	}
}

static void
test_release_tail_and_purge(void **state)
{
	(void)state;
	unsigned char *p = os_reserve(1 * MiB, 4 * KiB);
	assert_non_null(p);
	memset(p, 0xab, 1 * MiB);
	os_release_tail(p, 1 * MiB, 256 * KiB);
	assert_true(os_is_mapped(p + 256 * KiB - 1));
	assert_false(os_is_mapped(p + 256 * KiB));
	assert_int_equal(p[256 * KiB - 1], 0xab);
	os_purge(p + 64 * KiB, 128 * KiB);
	assert_zero(p + 64 * KiB, 128 * KiB);
	assert_int_equal(p[64 * KiB - 1], 0xab);	/* only the range */
	assert_int_equal(p[192 * KiB], 0xab);
	p[100 * KiB] = 1;	/* still usable after a purge */
	os_release(p, 256 * KiB);
}

/* os_resident counts the pages written (and not purged since), looks at
 * no more than it is told, keeps errno, and says it cannot tell for
 * memory that is not mapped. */
static void
test_resident(void **state)
{
	(void)state;
	unsigned char *p = os_reserve(64 * 4 * KiB, 4 * KiB);
	assert_non_null(p);
	os_hugepage(p, 64 * 4 * KiB, 2);	/* one byte, one page */
	assert_int_equal(os_resident(p, 64 * 4 * KiB, 64), 0);
	p[0] = 1;
	p[5 * 4 * KiB + 7] = 1;
	p[63 * 4 * KiB] = 1;
	errno = 1234;
	assert_int_equal(os_resident(p, 64 * 4 * KiB, 64), 3);
	assert_int_equal(errno, 1234);
	assert_int_equal(os_resident(p, 64 * 4 * KiB, 6), 2);
	assert_int_equal(os_resident(p, 4 * KiB, 64), 1);
	assert_int_equal(os_resident(p, 0, 64), 0);
	/* More pages than one look covers: counted up to the bound. */
	unsigned char *q = os_reserve(2048 * 4 * KiB, 4 * KiB);
	assert_non_null(q);
	os_hugepage(q, 2048 * 4 * KiB, 2);
	for (size_t i = 0; i < 2048; i++)
		q[i * 4 * KiB] = 1;
	assert_int_equal(OS_RESIDENT_MAX, 1024);
	assert_int_equal(os_resident(q, 2048 * 4 * KiB, 2048), 1024);
	assert_int_equal(os_resident(q, 2048 * 4 * KiB, 100), 100);
	os_release(q, 2048 * 4 * KiB);
	os_purge(p, 64 * 4 * KiB);
	assert_int_equal(os_resident(p, 64 * 4 * KiB, 64), 0);
	os_release(p, 64 * 4 * KiB);
	assert_int_equal(os_resident(p, 64 * 4 * KiB, 64),
	    OS_RESIDENT_UNKNOWN);
}

static void
test_remap(void **state)
{
	(void)state;
	assert_int_equal(PC_OS_CAN_REMAP, 1);
	unsigned char *p = os_reserve(64 * KiB, 4 * KiB);
	assert_non_null(p);
	memset(p, 0x5c, 64 * KiB);
	/* Moved onto a target without copying: the data comes along. */
	unsigned char *t = os_reserve(256 * KiB, 4 * KiB);
	assert_non_null(t);
	unsigned char *q = os_remap(p, 64 * KiB, 256 * KiB, t);
	assert_ptr_equal(q, t);
	assert_int_equal(q[0], 0x5c);
	assert_int_equal(q[64 * KiB - 1], 0x5c);
	assert_zero(q + 64 * KiB, 192 * KiB);
	assert_false(os_is_mapped(p));	/* moved, not copied */
	/* In place, or NULL with nothing changed. */
	unsigned char *r = os_remap(q, 256 * KiB, 512 * KiB, NULL);
	if (r == NULL) {
		assert_int_equal(q[0], 0x5c);
		os_release(q, 256 * KiB);
	} else {
		assert_ptr_equal(r, q);
		assert_int_equal(r[0], 0x5c);
		r[512 * KiB - 1] = 1;
		os_release(r, 512 * KiB);
	}
}

static void
touch_in_child(volatile unsigned char *p, bool expect_fault)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		p[0] = 1;
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (expect_fault) {
		assert_true(WIFSIGNALED(st));
		assert_true(WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
	} else {
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

static void
test_guarded(void **state)
{
	(void)state;
	size_t pg = os_page_size();
	unsigned char *p = os_reserve_guarded(4 * pg);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % pg, 0);
	assert_zero(p, 4 * pg);
	memset(p, 0x11, 4 * pg);
	touch_in_child(p, false);
	touch_in_child(p + 4 * pg - 1, false);
	touch_in_child(p - 1, true);		/* guard below */
	touch_in_child(p + 4 * pg, true);	/* guard above */
	/* The guards are reserved: nothing else lands there. */
	assert_true(os_is_mapped(p - 1));
	assert_true(os_is_mapped(p + 4 * pg));
	unsigned char c;
	assert_false(os_read_safe(&c, p - 1, 1));
	assert_true(os_read_safe(&c, p, 1));
	assert_int_equal(c, 0x11);
	os_release_guarded(p, 4 * pg);
	assert_false(os_is_mapped(p));
	assert_false(os_is_mapped(p - 1));
}

static void
test_read_safe_and_is_mapped(void **state)
{
	(void)state;
	unsigned char *p = os_reserve(8 * KiB, 4 * KiB);
	assert_non_null(p);
	p[5] = 9;
	unsigned char buf[16];
	assert_true(os_read_safe(buf, p, sizeof(buf)));
	assert_int_equal(buf[5], 9);
	os_release(p, 8 * KiB);
	errno = 77;
	assert_false(os_read_safe(buf, p, sizeof(buf)));
	assert_false(os_is_mapped(p));
	assert_int_equal(errno, 77);
	assert_false(os_read_safe(buf, NULL, 1));
	assert_true(os_is_mapped(buf));
	assert_true(os_is_mapped((const void *)test_read_safe_and_is_mapped));
}

static void
test_injected_failure(void **state)
{
	(void)state;
	os_fail_reserve_after(2);	/* the 2nd from now and after */
	void *a = os_reserve(64 * KiB, 4 * KiB);
	assert_non_null(a);
	assert_null(os_reserve(64 * KiB, 4 * KiB));
	assert_null(os_reserve_guarded(4 * KiB));
	os_fail_reserve_after(0);
	void *b = os_reserve(64 * KiB, 4 * KiB);
	assert_non_null(b);
	os_release(a, 64 * KiB);
	os_release(b, 64 * KiB);
}

static void
test_cpu(void **state)
{
	(void)state;
	unsigned n = os_ncpus();
	assert_true(n >= 1);
	assert_true(n <= (unsigned)sysconf(_SC_NPROCESSORS_CONF));
	/* Any number is allowed, but Linux's is a real CPU id. */
	for (int i = 0; i < 100; i++)
		assert_true(os_cpu() < 65536);
}

static os_lock_t lk = OS_LOCK_INIT;
static long counter;

static void *
locker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		os_lock(&lk);
		counter++;
		os_unlock(&lk);
	}
	return NULL;
}

static int helper_ran;

static void
helper(void *arg)
{
	__atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
}

static void
test_threads_locks_time(void **state)
{
	(void)state;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, locker, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(counter, 400000);
	assert_int_equal(os_thread_start(helper, &helper_ran), 0);
	uint64_t t0 = os_now_ns();
	while (!__atomic_load_n(&helper_ran, __ATOMIC_ACQUIRE)) {
		os_yield();
		assert_true(os_now_ns() - t0 < 10ull * 1000000000u);
	}
	uint64_t a = os_now_ns();
	os_sleep_ms(20);
	uint64_t b = os_now_ns();
	assert_true(b - a >= 19000000u);
	assert_true(os_random() != os_random());
}

/* os_lock counts an acquisition that found the lock held, and only such. */
static os_lock_t waits_lock = OS_LOCK_INIT;
static volatile pid_t waiter_tid;

static void *
waiter(void *arg)
{
	(void)arg;
	__atomic_store_n(&waiter_tid, (pid_t)syscall(SYS_gettid),
	    __ATOMIC_RELEASE);
	os_lock(&waits_lock);
	os_unlock(&waits_lock);
	return NULL;
}

/* The thread's scheduler state letter from /proc (R, S, ...). */
static char
thread_state(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');	/* after "pid (comm)" */
	return rp != NULL && rp[1] == ' ' ? rp[2] : '?';
}

static void
test_lock_waits_counted(void **state)
{
	(void)state;
	os_lock(&waits_lock);
	os_unlock(&waits_lock);
	assert_int_equal(os_lock_contended(&waits_lock), 0);
	os_lock(&waits_lock);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter, NULL), 0);
	pid_t tid;
	while ((tid = __atomic_load_n(&waiter_tid, __ATOMIC_ACQUIRE)) == 0)
		os_yield();
	/* Asleep after publishing its id: in os_lock's wait, past the
	 * failed try (nothing else in between sleeps). */
	uint64_t t0 = os_now_ns();
	while (thread_state(tid) != 'S') {
		os_sleep_ms(1);
		assert_true(os_now_ns() - t0 < 30ull * 1000000000u);
	}
	os_unlock(&waits_lock);
	pthread_join(t, NULL);
	assert_int_equal(os_lock_contended(&waits_lock), 1);
}

/* The C library's code: found (this test links glibc dynamically), and
 * holding a function of it. */
static void
test_libc_text(void **state)
{
	(void)state;
	uintptr_t lo, hi;
	assert_int_equal(os_libc_text(&lo, &hi), 0);
	assert_true(lo < hi);
	uintptr_t f = (uintptr_t)dlsym(RTLD_DEFAULT, "getpid");
	assert_true(f >= lo && f < hi);
	Dl_info info;
	assert_true(dladdr((void *)lo, &info) != 0);
	assert_non_null(strstr(info.dli_fname, "libc"));
	/* Not this program's code. */
	assert_false((uintptr_t)test_libc_text >= lo &&
	    (uintptr_t)test_libc_text < hi);
}

/* os_thread_stack: the main thread's range (read without /proc) holds
 * this frame and lies within what pthread_getattr_np says; another
 * thread's is pthread_getattr_np's. */
static void
check_stack_range(bool main_thread)
{
	uintptr_t lo, hi;
	assert_int_equal(os_thread_stack(&lo, &hi), 0);
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	assert_true(lo <= here && here < hi);
	pthread_attr_t attr;
	void *addr;
	size_t size;
	assert_int_equal(pthread_getattr_np(pthread_self(), &attr), 0);
	assert_int_equal(pthread_attr_getstack(&attr, &addr, &size), 0);
	pthread_attr_destroy(&attr);
	uintptr_t plo = (uintptr_t)addr, phi = plo + size;
	if (main_thread) {
		/* The top: the page above the start-up stack pointer, inside
		 * the stack's mapping; the bottom: at most the limit. */
		assert_true(hi <= phi && hi + (4u << 20) > phi);
		assert_true(hi - lo <= ((uintptr_t)128 << 20));
	} else {
		assert_int_equal(lo, plo);
		assert_int_equal(hi, phi);
	}
}

static void *
stack_thread(void *arg)
{
	(void)arg;
	check_stack_range(false);
	return NULL;
}

static void
test_thread_stack(void **state)
{
	(void)state;
	check_stack_range(true);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stack_thread, NULL), 0);
	pthread_join(t, NULL);
}

static void
test_remote_fence_and_env(void **state)
{
	(void)state;
	/* Either it works, or it says so from now on. */
	if (!os_remote_fence())
		assert_false(os_remote_fence_available());
	setenv("PC_TEST_OS_LINUX", "v1", 1);
	const char *v = os_getenv("PC_TEST_OS_LINUX");
	if (v != NULL)	/* NULL allowed: "not yet available" */
		assert_string_equal(v, "v1");
	assert_null(os_getenv("PC_TEST_OS_LINUX_UNSET"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_aligned),
		cmocka_unit_test(test_reserve_near_and_merge),
		cmocka_unit_test(test_release_tail_and_purge),
		cmocka_unit_test(test_resident),
		cmocka_unit_test(test_remap),
		cmocka_unit_test(test_guarded),
		cmocka_unit_test(test_read_safe_and_is_mapped),
		cmocka_unit_test(test_injected_failure),
		cmocka_unit_test(test_cpu),
		cmocka_unit_test(test_threads_locks_time),
		cmocka_unit_test(test_lock_waits_counted),
		cmocka_unit_test(test_remote_fence_and_env),
		cmocka_unit_test(test_libc_text),
		cmocka_unit_test(test_thread_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
