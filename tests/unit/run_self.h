/*
 * run_self(): run this test program again as a child, `self MODE`, with
 * PCMALLOC_CONF set to conf (unset when NULL), and collect its stderr and
 * wait status.  Tests whose subject aborts the process, or must be a
 * process's first allocation or configuration, run their case this way.
 */
#ifndef PC_TEST_RUN_SELF_H
#define PC_TEST_RUN_SELF_H

#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

static void
run_self(const char *mode, const char *conf, int *status, char *err,
    size_t cap)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		if (conf != NULL)
			setenv("PCMALLOC_CONF", conf, 1);
		else
			unsetenv("PCMALLOC_CONF");
		execl("/proc/self/exe", "test", mode, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(fd[0], err + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(fd[0]);
	waitpid(pid, status, 0);
}

#endif
