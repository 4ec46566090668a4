/*
 * Stack captures never wait on the loader's write lock, so a fork child
 * whose parent had a thread inside dl_iterate_phdr can still allocate
 * (stack.c, "Fork against the unwinder's loading").  glibc does not reset
 * that lock in a child: a child forked while a parent thread holds it
 * hangs at its first dl_iterate_phdr.  The capture's walk looks up the C
 * library's code with dl_iterate_phdr; that lookup used to be made by the
 * first capture whose walk broke, in whatever thread, and a preloaded
 * test's child hung in CI ("child hung" in override_fork).  Now the
 * constructor makes it.
 *
 * The sampler's lookup of the library's own code (sample.c) was made the
 * same way, at the process's first sample.
 *
 * Thread H holds the lock, inside dl_iterate_phdr, until told to go on (or
 * for 10 s).  Meanwhile the main thread captures through a broken frame
 * chain and allocates, every allocation a guarded sample
 * (guard_sample:1, set by ctest), then forks; the child does the same.
 * The library's calls to dl_iterate_phdr are counted (the test is linked
 * with --wrap=dl_iterate_phdr): none may come after main() starts.  With
 * the lookups made on demand, the count is not 0 and the main thread
 * waits out H's 10 s.  The unwinder is loaded first (its first call
 * dlopens libgcc_s, which needs that lock too: a different case, and
 * glibc's own backtrace() has it).
 */
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stack.h"

/* broken_call(fn): calls fn with a frame-pointer register of 8, as code
 * built without frame pointers may leave it, so a walk from inside fn
 * breaks just after fn's own record (after a frame or two: the partial
 * walk of stack.c). */
void *broken_call(void *(*fn)(void));
#if defined(__x86_64__)
__asm__(".text\n.globl broken_call\n.type broken_call,@function\n"
    "broken_call:\n"
    "\tpush %rbp\n"
    "\tmov $8, %rbp\n"
    "\tcall *%rdi\n"
    "\tpop %rbp\n"
    "\tret\n"
    ".size broken_call, .-broken_call\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl broken_call\n.type broken_call,%function\n"
    "broken_call:\n"
    "\tstp x29, x30, [sp, -16]!\n"
    "\tmov x29, #8\n"
    "\tblr x0\n"
    "\tldp x29, x30, [sp], 16\n"
    "\tret\n"
    ".size broken_call, .-broken_call\n");
#else
#error "broken_call: x86-64 and AArch64 only"
#endif

static atomic_int inside, go_on, h_timed_out, main_started, lib_calls;
static __thread int is_h;

int __real_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
    void *arg);

/* Every call to dl_iterate_phdr from the library's objects (linked
 * statically) and from this file comes here. */
int
__wrap_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
    void *arg)
{
	if (atomic_load(&main_started) && !is_h)
		atomic_fetch_add(&lib_calls, 1);
	return __real_dl_iterate_phdr(cb, arg);
}

static int
hold(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info, (void)size, (void)arg;
	atomic_store(&inside, 1);
	for (int ms = 0; ms < 10000 && !atomic_load(&go_on); ms++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (!atomic_load(&go_on))
		atomic_store(&h_timed_out, 1);
	return 1;	/* one object is enough */
}

static void *
h_main(void *arg)
{
	(void)arg;
	is_h = 1;
	dl_iterate_phdr(hold, NULL);
	return NULL;
}

/* Built with frame pointers (CMakeLists.txt): its record is the last one
 * the walk believes. */
__attribute__((noinline)) static void *
capture(void)
{
	void *frames[STACK_MAX_DEPTH];
	int n = pc_stack_capture(frames, STACK_MAX_DEPTH, 0);
	__asm__ __volatile__("" ::: "memory");	/* not a tail call */
	return (void *)(intptr_t)n;
}

static int
capture_and_allocate(void)
{
	for (int i = 0; i < 100; i++) {
		if ((intptr_t)broken_call(capture) <= 0)
			return 1;
		char *p = malloc((size_t)(i % 50) * 80 + 1);
		if (p == NULL)
			return 1;
		p[0] = 1;
		free(p);
	}
	return atomic_load(&lib_calls) != 0;
}

int
main(void)
{
	atomic_store(&main_started, 1);
	void *buf[4];
	if (backtrace(buf, 4) <= 0)	/* the unwinder, loaded now */
		return 2;
	pthread_t h;
	if (pthread_create(&h, NULL, h_main, NULL) != 0)
		return 2;
	while (!atomic_load(&inside))
		sched_yield();

	int bad = capture_and_allocate();
	if (atomic_load(&h_timed_out)) {
		fprintf(stderr, "a capture waited for the loader's lock\n");
		bad = 1;
	}
	pid_t pid = fork();
	if (pid == 0)
		_exit(capture_and_allocate());
	if (pid < 0)
		return 2;
	int st = 0;
	pid_t r = 0;
	for (int ms = 0; ms < 20000 && (r = waitpid(pid, &st, WNOHANG)) == 0;
	    ms++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (r != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fprintf(stderr, "the child hung\n");
		bad = 1;
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "the child failed (status %#x)\n", st);
		bad = 1;
	}
	atomic_store(&go_on, 1);
	pthread_join(h, NULL);
	if (atomic_load(&lib_calls) != 0) {
		fprintf(stderr, "the library called dl_iterate_phdr %d "
		    "time(s) after main() started\n", atomic_load(&lib_calls));
		bad = 1;
	}
	if (atomic_load(&h_timed_out) && !bad) {
		fprintf(stderr, "a capture waited for the loader's lock\n");
		bad = 1;
	}
	printf("%s\n", bad ? "FAIL" : "ok");
	return bad;
}
