/*
 * Helpers for the tests of documented behaviour (test_doc_*.c).  Each case
 * that needs a fresh PCMALLOC_CONF, environment, affinity mask or seccomp
 * filter runs as a child: doc_run() forks, runs `setup` in the child, then
 * execs this program again as `self MODE` (so pcmalloc initialises after
 * the setup), and collects the child's stdout and stderr together.  The
 * child side (doc_child_*) reports what it found on stderr and exits
 * non-zero when a check fails.
 */
#ifndef PC_TEST_DOC_COMMON_H
#define PC_TEST_DOC_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "pcmalloc.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* A child that cannot set up what its case needs (a kernel feature that
 * is genuinely missing) exits with this; the parent prints why and skips. */
#define DOC_UNSUPPORTED 77

typedef void (*doc_setup_fn)(void);

/* Run `self mode` with PCMALLOC_CONF=conf (unset when NULL) and, when
 * `var` is not NULL, the environment entry var ("NAME=value").  Returns
 * the wait status; out receives stdout and stderr (truncated to cap). */
static inline int
doc_run(const char *mode, const char *conf, const char *var,
    doc_setup_fn setup, char *out, size_t cap)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		if (conf != NULL)
			setenv("PCMALLOC_CONF", conf, 1);
		else
			unsetenv("PCMALLOC_CONF");
		if (var != NULL)
			putenv((char *)var);
		if (setup != NULL)
			setup();
		execl("/proc/self/exe", "test", mode, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	char sink[4096];
	ssize_t r;
	/* Read to the end even past cap: a child blocked on a full pipe
	 * would never exit. */
	for (;;) {
		if (n < cap - 1)
			r = read(fd[0], out + n, cap - 1 - n);
		else
			r = read(fd[0], sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n < cap - 1)
			n += (size_t)r;
	}
	out[n] = '\0';
	close(fd[0]);
	int status = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static inline int
doc_exited_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- child side --------------------------------------------------------- */

#define DOC_FAIL(...) do { \
	fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
	exit(1); } while (0)

#define DOC_CHECK(cond, ...) do { if (!(cond)) DOC_FAIL(__VA_ARGS__); \
	} while (0)

static inline unsigned long long
doc_stat(const char *name)
{
	unsigned long long v = 0;
	if (pc_stat_get(name, &v) != 0)
		DOC_FAIL("pc_stat_get(\"%s\") failed", name);
	return v;
}

static inline double
doc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void
doc_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Threads of this process, from /proc/self/task (opendir allocates:
 * callers count before and after what they measure, not during). */
static inline int
doc_nthreads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		DOC_FAIL("opendir /proc/self/task: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Resident set size from /proc/self/statm, in bytes. */
static inline size_t
doc_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;
	if (f == NULL || fscanf(f, "%lu %lu", &size, &rss) != 2)
		DOC_FAIL("cannot read /proc/self/statm");
	fclose(f);
	return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

#endif
