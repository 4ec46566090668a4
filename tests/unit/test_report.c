/* Reports: number formatting, the truncating message builder, and the end
 * of a misuse report (count, then abort unless abort_on_error is off, at
 * the outermost undefer when deferred).  Aborts are tested in a child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "report.h"
#include "pcmalloc.h"

static void
test_fmt(void **state)
{
	(void)state;
	char b[32];
	assert_int_equal(pc_fmt_u64(b, 0), 1);
	assert_memory_equal(b, "0", 1);
	assert_int_equal(pc_fmt_u64(b, 18446744073709551615u), 20);
	assert_memory_equal(b, "18446744073709551615", 20);
	assert_int_equal(pc_fmt_hex(b, 0), 3);
	assert_memory_equal(b, "0x0", 3);
	assert_int_equal(pc_fmt_hex(b, 0xdeadbeef), 10);
	assert_memory_equal(b, "0xdeadbeef", 10);
}

static void
test_msg_truncates(void **state)
{
	(void)state;
	pc_msg_t m;
	pc_msg_start(&m);
	assert_int_equal(m.n, strlen("pcmalloc: "));
	for (int i = 0; i < 100; i++)
		pc_msg_str(&m, "0123456789");
	/* Room is left for a number and the newline, however long. */
	assert_true(m.n <= sizeof(m.buf) - 24);
	pc_msg_u64(&m, 12345);
	pc_msg_hex(&m, 0xabc);
	assert_true(m.n < sizeof(m.buf));
	assert_memory_equal(m.buf, "pcmalloc: 0123", 14);
}

/* In a child: how it ended (exit code, or 128 + signal). */
static int
child(void (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches these to report a failed test. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		fn();
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void
end_on(void)
{
	opt_abort_on_error = 1;
	PC_MISUSE_END("test misuse");
	_exit(3);	/* not reached */
}

static void
end_off(void)
{
	opt_abort_on_error = 0;
	uint64_t n = pc_misuse_reports;
	PC_MISUSE_END("test misuse");
	_exit(pc_misuse_reports == n + 1 ? 4 : 5);
}

/* Deferred: no abort until the outermost undefer. */
static int alive_fd;

static void
end_deferred(void)
{
	opt_abort_on_error = 1;
	pc_misuse_defer();
	pc_misuse_defer();
	PC_MISUSE_END("test misuse");
	PC_MISUSE_END("test misuse 2");
	pc_misuse_undefer();
	if (pc_misuse_reports == 0)
		_exit(6);
	ssize_t w = write(alive_fd, "x", 1);	/* alive after the inner */
	(void)w;
	pc_misuse_undefer();
	_exit(7);		/* not reached */
}

static void
end_deferred_none(void)
{
	opt_abort_on_error = 1;
	pc_misuse_defer();
	pc_misuse_undefer();
	_exit(8);	/* nothing reported: no abort */
}

static void
test_misuse_end(void **state)
{
	(void)state;
	assert_int_equal(child(end_on), 128 + SIGABRT);
	assert_int_equal(child(end_off), 4);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	alive_fd = fds[1];
	assert_int_equal(child(end_deferred), 128 + SIGABRT);
	char c = 0;
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(fds[0]);
	assert_int_equal(child(end_deferred_none), 8);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt),
		cmocka_unit_test(test_msg_truncates),
		cmocka_unit_test(test_misuse_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
