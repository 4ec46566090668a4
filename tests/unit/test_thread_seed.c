/*
 * A new thread's first allocation seeds its sampler (sample.c) without a
 * system call: getrandom ran once per thread, which thread-per-task
 * programs (mimalloc-bench's mleak: 5 000 threads) paid in every thread.
 * After the main thread's first allocation has drawn the process's seed,
 * a seccomp filter traps getrandom; eight threads then allocate, and no
 * trap may fire in them.  Sampling must be on, as by default: the test's
 * ctest registration clears PCMALLOC_CONF.  A plain program, not cmocka:
 * the filter applies to the whole process from then on.  x86-64 Linux
 * only (the trap handler sets the system call's return register).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__linux__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define NTHREADS 8

/* Traps in threads other than the main one: the main thread may still
 * call getrandom legitimately (its allocations in pthread_create may be
 * the process's first guarded sample, which seeds the guard pool). */
static volatile sig_atomic_t traps;
static volatile sig_atomic_t main_traps;
static long main_tid;

static void
on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	if (syscall(SYS_gettid) == main_tid)
		main_traps++;
	else
		traps++;
	/* The trapped call returns ENOSYS, as under an older kernel. */
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

static int
trap_getrandom(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &sa, NULL) != 0)
		return -1;
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getrandom, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = {
		.len = (unsigned short)(sizeof(prog) / sizeof(prog[0])),
		.filter = prog,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
}

/* The blocks escape through here: an allocation the compiler can see
 * freed unused may be optimised away (and -fno-builtin is set too). */
static void *volatile sink;

static void *
worker(void *arg)
{
	char *p = malloc(64);
	if (p != NULL)
		memset(p, 1, 64);
	sink = p;
	free(sink);
	return arg;
}

int
main(void)
{
	/* Initialises the allocator and draws the process's seed. */
	sink = malloc(64);
	free(sink);
	main_tid = syscall(SYS_gettid);
	if (trap_getrandom() != 0) {
		fprintf(stderr, "test_thread_seed: seccomp filter refused: "
		    "%s\n", strerror(errno));
		return getenv("PC_TEST_NO_SKIP") != NULL ? 1 : 77;
	}
	/* The filter works: this one must trap. */
	char buf[8];
	long r = syscall(SYS_getrandom, buf, sizeof(buf), 0);
	if (main_traps != 1 || r != -1 || errno != ENOSYS) {
		fprintf(stderr, "test_thread_seed: the filter did not trap "
		    "(traps %d, result %ld)\n", (int)main_traps, r);
		return 1;
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0 ||
		    pthread_join(t, NULL) != 0) {
			fprintf(stderr, "test_thread_seed: thread %d failed\n",
			    i);
			return 1;
		}
	}
	if (traps != 0) {
		fprintf(stderr, "test_thread_seed: %d getrandom calls from %d "
		    "new threads' first allocations\n", (int)traps, NTHREADS);
		return 1;
	}
	return 0;
}

#else

int
main(void)
{
	fprintf(stderr, "test_thread_seed: x86-64 Linux only\n");
	return getenv("PC_TEST_NO_SKIP") != NULL ? 1 : 77;
}

#endif
