/*
 * Run with LD_PRELOAD=libpcmalloc.so: fork (and system()/popen()) from a
 * program whose threads are busy in malloc/free; children allocate,
 * including from a new thread, and exit.  Each child must finish within
 * 10 s.  Catches: atfork handling that only works when pcmalloc is linked
 * in statically or only from the main thread (deadlock in the child of a
 * preloaded, multi-threaded process).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *
busy(void *arg)
{
	unsigned x = (unsigned)(long)arg * 2654435761u + 1;
	void *slot[64] = { 0 };
	while (!atomic_load(&stop)) {
		x = x * 1103515245u + 12345u;
		int i = (int)(x >> 8) % 64;
		free(slot[i]);
		size_t n = (x >> 12) % 5000;
		if ((x & 0xff) == 0)
			n = 2u << 20;
		slot[i] = malloc(n);
		if (slot[i] == NULL)
			abort();
		memset(slot[i], 1, n);
	}
	for (int i = 0; i < 64; i++)
		free(slot[i]);
	return NULL;
}

static void *
child_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++) {
		void *p = malloc((size_t)(i % 3000) + 1);
		if (p == NULL)
			abort();
		free(p);
	}
	return NULL;
}

/* If a is in a mapping of code of process pid, print where. */
static void
describe_code(pid_t pid, const char *what, unsigned long a)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *m = a != 0 ? fopen(path, "r") : NULL;
	while (m != NULL && fgets(line, sizeof(line), m)) {
		unsigned long lo, hi, off;
		char perm[8];
		if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perm, &off) == 4 &&
		    a >= lo && a < hi) {
			const char *file = strchr(line, '/');
			line[strcspn(line, "\n")] = 0;
			if (perm[2] == 'x')
				fprintf(stderr, "    %s %#lx: %s+%#lx\n", what, a,
				    file ? file : "?", a - lo + off);
			break;
		}
	}
	if (m != NULL)
		fclose(m);
}

/* Where a hung child's threads are: each one's system call (202 is futex:
 * a lock wait), the code its program counter is in and the words of its
 * stack that point into code (return addresses, most of them; resolve
 * them with addr2line -e FILE OFFSET), from /proc, so a failure in CI
 * says more than "hung". */
static void
describe_hang(pid_t pid)
{
	char path[320], line[512];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall",
		    (int)pid, e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = 0;
		fclose(f);
		line[strcspn(line, "\n")] = 0;
		fprintf(stderr, "  thread %s: syscall %s\n", e->d_name, line);
		/* The last two fields are the stack pointer and the program
		 * counter. */
		unsigned long sp = 0, pc = 0;
		char *pc_text = strrchr(line, ' ');
		if (pc_text != NULL) {
			pc = strtoul(pc_text + 1, NULL, 16);
			*pc_text = 0;
			char *sp_text = strrchr(line, ' ');
			if (sp_text != NULL)
				sp = strtoul(sp_text + 1, NULL, 16);
		}
		describe_code(pid, "pc", pc);
		/* Words on the stack that point into code: return
		 * addresses, most of them, innermost first. */
		unsigned long words[128];
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
		FILE *mem = sp != 0 ? fopen(path, "r") : NULL;
		size_t n = 0;
		if (mem != NULL && fseek(mem, (long)sp, SEEK_SET) == 0)
			n = fread(words, sizeof(words[0]), 128, mem);
		if (mem != NULL)
			fclose(mem);
		for (size_t i = 0; i < n; i++)
			describe_code(pid, "stack", words[i]);
	}
	closedir(d);
}

static int
wait_timeout(pid_t pid)
{
	int status;
	struct timespec ts = { 0, 1000000 };
	for (int ms = 0; ms < 10000; ms++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "child %d hung\n", (int)pid);
	describe_hang(pid);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 99;
}

int
main(void)
{
	enum { NBUSY = 4, FORKS = 40 };
	pthread_t t[NBUSY];
	for (long i = 0; i < NBUSY; i++)
		if (pthread_create(&t[i], NULL, busy, (void *)i) != 0)
			return 1;
	int bad = 0;
	for (int i = 0; i < FORKS; i++) {
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			for (int k = 0; k < 20000; k++) {
				void *p = malloc((size_t)(k % 7000) + 1);
				if (p == NULL)
					_exit(3);
				memset(p, 2, (size_t)(k % 7000) + 1);
				free(p);
			}
			pthread_t ct;
			if (pthread_create(&ct, NULL, child_thread, NULL) != 0)
				_exit(4);
			pthread_join(ct, NULL);
			_exit(0);
		}
		int rc = wait_timeout(pid);
		if (rc != 0) {
			fprintf(stderr, "fork %d: child status %d\n", i, rc);
			bad++;
		}
		if (i % 10 == 0) {
			/* fork+exec paths of libc, under load */
			FILE *p = popen("echo popen-ok", "r");
			char buf[64] = "";
			if (p == NULL || fgets(buf, sizeof(buf), p) == NULL ||
			    strcmp(buf, "popen-ok\n") != 0)
				bad++;
			if (p)
				pclose(p);
			if (system("true") != 0)
				bad++;
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NBUSY; i++)
		pthread_join(t[i], NULL);
	printf("fork ok: %d failures\n", bad);
	return bad ? 1 : 0;
}
