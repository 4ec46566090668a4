/*
 * The background purging thread (src/bgthread.c): started when the options
 * want it and only then, never twice, restarted in a fork child by the
 * first-use path (pc_ensure_services), and doing its work: an idle heap's
 * dirty pages go back without any allocation call.  Catches: a thread
 * started under background_thread:off or under auto before any arena is
 * dirty enough, a second thread per start call, a child left without one,
 * and a thread that sleeps without purging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "arena.h"
#include "bgthread.h"
#include "conf.h"
#include "init.h"
#include "pcmalloc.h"

static int
nthreads(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Run in order: once started the thread never stops. */
static void
test_off_and_auto_do_not_start(void **state)
{
	(void)state;
	pc_free(pc_malloc(100));
	int before = nthreads();
	opt_background_thread = 0;
	bgthread_start();
	pc_ensure_services();
	assert_false(bgthread_running());
	opt_background_thread = 2;	/* auto, and no arena is dirty */
	assert_false(__atomic_load_n(&pageheap_dirty_high, __ATOMIC_RELAXED));
	bgthread_start();
	bgthread_poll();
	assert_false(bgthread_running());
	assert_int_equal(nthreads(), before);
}

static void
test_on_starts_once(void **state)
{
	(void)state;
	int before = nthreads();
	opt_background_thread = 1;
	bgthread_start();
	assert_true(bgthread_running());
	bgthread_start();
	bgthread_poll();
	pc_ensure_services();
	assert_int_equal(nthreads(), before + 1);
}

/* decay_ms:50 (ctest ENVIRONMENT): freed pages go back within seconds,
 * with no allocation call to drive the decay. */
static void
test_purges_while_idle(void **state)
{
	(void)state;
	enum { N = 64, SZ = 256 * 1024 };
	static void *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = pc_malloc(SZ);
		memset(v[i], 1, SZ);
	}
	unsigned long long purged0 = 0, dirty0 = 0, dirty = 0, purged = 0;
	pc_stat_get("npurged", &purged0);
	for (int i = 0; i < N; i++)
		pc_free(v[i]);
	/* The thread may already be purging: compare with what was freed,
	 * not with a reading taken after the frees. */
	dirty0 = (unsigned long long)N * SZ;
	for (int i = 0; i < 250; i++) {
		usleep(20000);	/* no allocation call meanwhile */
		pc_stat_get("dirty", &dirty);
		pc_stat_get("npurged", &purged);
		if (dirty < dirty0 / 4 && purged > purged0)
			break;
	}
	assert_true(purged > purged0);
	assert_true(dirty < dirty0 / 4);
}

static void
test_restarted_in_child(void **state)
{
	(void)state;
	assert_true(bgthread_running());
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (bgthread_running() || nthreads() != 1)
			_exit(1);	/* gone with the fork */
		pc_ensure_services();	/* what a slow path does */
		_exit(bgthread_running() && nthreads() == 2 ? 0 : 2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_and_auto_do_not_start),
		cmocka_unit_test(test_on_starts_once),
		cmocka_unit_test(test_purges_while_idle),
		cmocka_unit_test(test_restarted_in_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
