/*
 * pcb_spawn: run one benchmark process and report its resource usage.
 *
 *   pcb_spawn RESULT_FILE PRELOAD|- PROGRAM [ARGS...]
 *
 * Forks, sets LD_PRELOAD=PRELOAD in the child only ("-": no preload), execs
 * PROGRAM, waits for it with wait4() and writes one line to RESULT_FILE:
 *
 *   status=<exit code or -signal> wall=<s> utime=<s> stime=<s> maxrss=<KiB>
 *
 * Why not just os.wait4() in the Python runner: Linux carries a process's
 * peak RSS across fork+exec (the forked copy of the parent's address space
 * counts), so every child of a ~20 MiB Python process would report at least
 * ~20 MiB. This launcher is tiny, so the child it forks starts clean. It
 * exits with the child's exit code (128+signal when killed by a signal).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: pcb_spawn RESULT_FILE PRELOAD|- PROGRAM "
			"[ARGS...]\n");
		return 125;
	}
	const char *result = argv[1], *preload = argv[2];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("pcb_spawn: fork");
		return 125;
	}
	if (pid == 0) {
		if (strcmp(preload, "-") != 0)
			setenv("LD_PRELOAD", preload, 1);
		else
			unsetenv("LD_PRELOAD");
		execvp(argv[3], argv + 3);
		fprintf(stderr, "pcb_spawn: exec %s: %s\n", argv[3],
			strerror(errno));
		_exit(127);
	}
	int st;
	struct rusage ru;
	pid_t r;
	do
		r = wait4(pid, &st, 0, &ru);
	while (r < 0 && errno == EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		perror("pcb_spawn: wait4");
		return 125;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) :
		   WIFSIGNALED(st) ? -WTERMSIG(st) : -1;
	FILE *f = fopen(result, "w");
	if (!f) {
		perror("pcb_spawn: result file");
		return 125;
	}
	fprintf(f, "status=%d wall=%.6f utime=%.6f stime=%.6f maxrss=%ld\n",
		code,
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss);
	fclose(f);
	return code >= 0 ? code : 128 - code;
}
