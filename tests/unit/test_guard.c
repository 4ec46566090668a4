/* Guarded sampling (src/guard.c): each case runs in a child with
 * guard_sample:1 (every eligible allocation is guarded while slots are
 * free) and checks the report on its stderr: the kind, the offsets, both
 * stacks with this program's own function names (built with -rdynamic and
 * frame pointers, so dladdr names them), and the abort; recover mode
 * runs on and reports once per block; a program's own SIGSEGV handler
 * still gets its own faults; a program with frame pointers never needs
 * the fallback unwinder for the stacks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <pthread.h>
#include <cmocka.h>

#include "pcmalloc.h"
#include "run_self.h"
#include "guard.h"
#include "stack.h"

#define GUARDED "guard_sample:1"

static void *volatile sink;
/* An address never mapped (below mmap_min_addr), through a volatile so
 * the compiler cannot see what it points to. */
static volatile int *volatile wild = (volatile int *)(uintptr_t)64;

/* The allocation and free sites the reports must name.  Not static, not
 * inlined: dladdr finds them through -rdynamic. */
PC_NOINLINE char *
guard_test_alloc_site(size_t n)
{
	char *p = malloc(n);
	__asm__ __volatile__("" ::: "memory");	/* not a tail call */
	return p;
}

PC_NOINLINE void
guard_test_free_site(void *p)
{
	free(p);
	__asm__ __volatile__("" ::: "memory");
}

/* A guarded block of n bytes placed against the right guard (right true)
 * or the left one: placement is random, so draw until one fits. */
static char *
guarded_block(size_t n, bool right)
{
	for (int i = 0; i < 64; i++) {
		char *p = guard_test_alloc_site(n);
		if (!guard_owns(p))
			return NULL;
		uintptr_t end = (uintptr_t)p + PC_ALIGN_UP(n, 16);
		if (right ? (end & 4095) == 0 : ((uintptr_t)p & 4095) == 0)
			return p;
		/* Left live on purpose: freeing would recycle nothing
		 * sooner (the queue is FIFO), and keeps the draw fresh. */
	}
	return NULL;
}

static void *
thread_free(void *p)
{
	guard_test_free_site(p);
	return NULL;
}

/* Frees p; non-null if that took one capture, by the frame-pointer walk
 * (counted from this thread alone: the others wait). */
static void *
thread_free_walked(void *p)
{
	stack_stats_t a, b;
	stack_stats_get(&a);
	guard_test_free_site(p);
	stack_stats_get(&b);
	return b.fp == a.fp + 1 && b.fallback == a.fallback ? p : NULL;
}

static sigjmp_buf own_jmp;
static volatile sig_atomic_t own_hits;

static void
own_handler(int sig)
{
	(void)sig;
	own_hits++;
	siglongjmp(own_jmp, 1);
}

static void
install_own_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

/* A fault of the program's own, outside the pool: its handler must get
 * it.  Returns whether it did. */
static bool
own_fault(void)
{
	int before = own_hits;
	if (sigsetjmp(own_jmp, 1) == 0) {
		*wild = 1;
		return false;
	}
	return own_hits == before + 1;
}

static int
child(const char *mode)
{
	volatile char *p;
	if (strcmp(mode, "uaf_read") == 0) {
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		guard_test_free_site((void *)p);
		sink = (void *)(uintptr_t)p[16];
		return 0;
	}
	if (strcmp(mode, "uaf_write") == 0) {
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		guard_test_free_site((void *)p);
		p[16] = 1;
		return 0;
	}
	if (strcmp(mode, "overflow") == 0) {
		p = guarded_block(48, true);
		if (p == NULL)
			return 2;
		memset((void *)p, 1, 48);	/* the block itself is fine */
		p[48] = 1;
		return 0;
	}
	if (strcmp(mode, "underflow") == 0) {
		p = guarded_block(48, false);
		if (p == NULL)
			return 2;
		memset((void *)p, 1, 48);
		sink = (void *)(uintptr_t)p[-1];
		return 0;
	}
	if (strcmp(mode, "slack") == 0) {
		/* 45 bytes against the right guard: 3 bytes of slack before
		 * the guard page, checked on free. */
		p = guarded_block(45, true);
		if (p == NULL)
			return 2;
		p[45] = 1;
		guard_test_free_site((void *)p);
		return 0;
	}
	if (strcmp(mode, "double_free") == 0) {
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		guard_test_free_site((void *)p);
		guard_test_free_site((void *)p);
		return 0;
	}
	if (strcmp(mode, "invalid_free") == 0) {
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		guard_test_free_site((void *)(p + 16));
		return 0;
	}
	if (strcmp(mode, "recover") == 0) {
		/* Two faults on one block, one on another: two reports, and
		 * the writes land (the page is opened). */
		volatile char *a = guard_test_alloc_site(48);
		volatile char *b = guard_test_alloc_site(64);
		if (!guard_owns((void *)a) || !guard_owns((void *)b))
			return 2;
		guard_test_free_site((void *)a);
		guard_test_free_site((void *)b);
		a[0] = 5;
		a[1] = 6;
		b[3] = 7;
		if (a[0] != 5 || a[1] != 6 || b[3] != 7)
			return 3;
		/* A double free of a reported block is not reported again. */
		guard_test_free_site((void *)a);
		fprintf(stderr, "ran on\n");
		return 0;
	}
	if (strcmp(mode, "own_handler_first") == 0) {
		/* Installed before our handler: chained behind it. */
		install_own_handler();
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		if (!own_fault() || !own_fault())
			return 4;
		fprintf(stderr, "own handler ran\n");
		guard_test_free_site((void *)p);
		p[0] = 1;	/* ours: reported, aborts */
		return 0;
	}
	if (strcmp(mode, "own_handler_after") == 0) {
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		install_own_handler();	/* replaces ours */
		if (!own_fault())
			return 4;
		fprintf(stderr, "own handler ran\n");
		return 0;
	}
	if (strcmp(mode, "default_fault") == 0) {
		/* No handler of the program's: a fault outside the pool ends
		 * the process with SIGSEGV, as it would without us. */
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		*wild = 1;
		return 0;
	}
	if (strcmp(mode, "api") == 0) {
		p = guard_test_alloc_site(100);
		if (!guard_owns((void *)p))
			return 2;
		if (malloc_usable_size((void *)p) != 100)
			return 3;
		memset((void *)p, 7, 100);
		char *q = realloc((void *)p, 300);
		if (q == NULL || q == p || q[99] != 7 || q[0] != 7)
			return 4;
		if (malloc_usable_size(q) < 300)
			return 5;
		/* calloc, aligned and free_sized take the same paths. */
		char *z = calloc(1, 64);
		if (!guard_owns(z) || z[63] != 0)
			return 6;
		pc_free_sized(z, 64);
		void *al = NULL;
		if (posix_memalign(&al, 256, 200) != 0 ||
		    ((uintptr_t)al & 255) != 0)
			return 7;
		free(al);
		free(q);
		/* Blocks over a page are never guarded. */
		void *big = malloc(5000);
		if (guard_owns(big))
			return 8;
		free(big);
		return 0;
	}
	if (strcmp(mode, "realloc_freed") == 0) {
		p = guard_test_alloc_site(48);
		guard_test_free_site((void *)p);
		sink = realloc((void *)p, 10);
		return 0;
	}
	if (strcmp(mode, "threads") == 0) {
		/* Allocated here, freed by another thread, used here. */
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		pthread_t t;
		pthread_create(&t, NULL, thread_free, (void *)p);
		pthread_join(t, NULL);
		p[0] = 1;
		return 0;
	}
	if (strcmp(mode, "fork") == 0) {
		/* The child inherits the pool: it frees the parent's block
		 * and its use after free is reported there. */
		p = guard_test_alloc_site(48);
		if (!guard_owns((void *)p))
			return 2;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			guard_test_free_site((void *)p);
			p[8] = 1;
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		/* The parent's block is untouched and still live. */
		p[8] = 2;
		guard_test_free_site((void *)p);
		return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT ? 0 : 5;
	}
	if (strcmp(mode, "full") == 0) {
		/* More blocks than live slots: the rest come from the heap,
		 * and freeing them all works. */
		void *v[600];
		size_t guarded = 0;
		for (int i = 0; i < 600; i++) {
			v[i] = malloc(32);
			guarded += guard_owns(v[i]);
		}
		if (guarded == 0 || guarded != guard_live())
			return 3;
		for (int i = 0; i < 600; i++)
			free(v[i]);
		return guard_live() == 0 ? 0 : 4;
	}
	if (strcmp(mode, "off") == 0) {
		for (int i = 0; i < 100000; i++) {
			void *q = malloc(64 + (size_t)(i % 2000));
			free(q);
		}
		return guard_nsampled() == 0 && guard_size == 0 ? 0 : 3;
	}
	if (strcmp(mode, "no_unwinder") == 0) {
		/* This program has frame pointers: the stacks of a guarded
		 * block made and freed on the main thread and on another one
		 * are walked to the C library's start code without the
		 * fallback unwinder (which would load libgcc_s). */
		stack_stats_t a, b;
		stack_stats_get(&a);
		p = guard_test_alloc_site(48);
		stack_stats_get(&b);
		if (!guard_owns((void *)p))
			return 2;
		if (b.fp != a.fp + 1 || b.fallback != a.fallback)
			return 3;
		pthread_t t;
		void *ok;
		pthread_create(&t, NULL, thread_free_walked, (void *)p);
		pthread_join(t, &ok);
		return ok != NULL ? 0 : 4;
	}
	if (strcmp(mode, "default_rate") == 0) {
		/* 2 GiB allocated in blocks of 4 KiB at the default rate,
		 * 1024 live at a time: some are sampled. */
		static void *v[1024];
		for (int r = 0; r < 512; r++) {
			for (int i = 0; i < 1024; i++) {
				v[i] = malloc(4096);
				*(volatile char *)v[i] = 1;
			}
			for (int i = 0; i < 1024; i++)
				free(v[i]);
		}
		fprintf(stderr, "sampled %llu\n",
		    (unsigned long long)guard_nsampled());
		return guard_nsampled() > 0 ? 0 : 3;
	}
	return 100;
}

static char err[16384];

static void
run_guarded(const char *mode, const char *conf, int *status)
{
	run_self(mode, conf, status, err, sizeof(err));
}

static void
assert_aborted(int status)
{
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
		fprintf(stderr, "status %#x, stderr:\n%s\n", status, err);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void
assert_has(const char *s)
{
	if (strstr(err, s) == NULL)
		fprintf(stderr, "missing \"%s\" in:\n%s\n", s, err);
	assert_non_null(strstr(err, s));
}

/* The allocation stack names the allocation site, and (when freed) the
 * free stack names the free site, in that order. */
static void
assert_stacks(bool freed)
{
	const char *a = strstr(err, "allocated by thread ");
	assert_non_null(a);
	const char *site = strstr(a, "guard_test_alloc_site+");
	if (site == NULL)
		fprintf(stderr, "no allocation site in:\n%s\n", err);
	assert_non_null(site);
	if (freed) {
		const char *f = strstr(a, "freed by thread ");
		assert_non_null(f);
		assert_non_null(strstr(f, "guard_test_free_site+"));
	}
}

static void
test_uaf_read(void **state)
{
	(void)state;
	int st;
	run_guarded("uaf_read", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: use-after-free read of 0x");
	assert_has("(16 bytes into a 48-byte guarded block)");
	assert_stacks(true);
}

static void
test_uaf_write(void **state)
{
	(void)state;
	int st;
	run_guarded("uaf_write", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: use-after-free write of 0x");
	assert_has("(16 bytes into a 48-byte guarded block)");
	assert_stacks(true);
}

static void
test_overflow(void **state)
{
	(void)state;
	int st;
	run_guarded("overflow", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: heap-buffer-overflow write of 0x");
	assert_has("(0 bytes after a 48-byte guarded block)");
	assert_stacks(false);
	assert_null(strstr(err, "freed by thread"));
}

static void
test_underflow(void **state)
{
	(void)state;
	int st;
	run_guarded("underflow", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: heap-buffer-overflow read of 0x");
	assert_has("(1 bytes before a 48-byte guarded block)");
	assert_stacks(false);
}

static void
test_slack_overflow(void **state)
{
	(void)state;
	int st;
	run_guarded("slack", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: heap-buffer-overflow (found on free) of 0x");
	assert_has("(0 bytes after a 45-byte guarded block)");
	assert_has("free called by thread");
	assert_stacks(false);
}

static void
test_double_free(void **state)
{
	(void)state;
	int st;
	run_guarded("double_free", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: double free of 0x");
	/* The second free's stack, then the block's two stacks. */
	const char *again = strstr(err, "free called by thread ");
	assert_non_null(again);
	assert_non_null(strstr(again, "guard_test_free_site+"));
	assert_stacks(true);
}

static void
test_invalid_free(void **state)
{
	(void)state;
	int st;
	run_guarded("invalid_free", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: invalid free of 0x");
	assert_has("(16 bytes into a 48-byte guarded block)");
	assert_stacks(false);
}

static void
test_recover(void **state)
{
	(void)state;
	int st;
	run_guarded("recover", GUARDED ",guard_recover:true", &st);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "status %#x:\n%s\n", st, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_has("ran on");
	/* Once per block: two blocks, two reports, no double free. */
	int n = 0;
	for (const char *s = err; (s = strstr(s, "use-after-free")); s++)
		n++;
	assert_int_equal(n, 2);
	assert_null(strstr(err, "double free"));
}

static void
test_own_handler_first(void **state)
{
	(void)state;
	int st;
	run_guarded("own_handler_first", GUARDED, &st);
	assert_has("own handler ran");
	assert_has("use-after-free write");
	assert_aborted(st);
}

static void
test_own_handler_after(void **state)
{
	(void)state;
	int st;
	run_guarded("own_handler_after", GUARDED, &st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_has("own handler ran");
}

static void
test_default_fault(void **state)
{
	(void)state;
	int st;
	run_guarded("default_fault", GUARDED, &st);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	assert_null(strstr(err, "pcmalloc:"));
}

static void
test_api(void **state)
{
	(void)state;
	int st;
	run_guarded("api", GUARDED, &st);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "status %#x:\n%s\n", st, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_null(strstr(err, "pcmalloc:"));
}

static void
test_realloc_freed(void **state)
{
	(void)state;
	int st;
	run_guarded("realloc_freed", GUARDED, &st);
	assert_aborted(st);
	assert_has("pcmalloc: realloc of a freed block of 0x");
	assert_has("realloc called by thread");
	assert_stacks(true);
}

static void
test_threads(void **state)
{
	(void)state;
	int st;
	run_guarded("threads", GUARDED, &st);
	assert_aborted(st);
	assert_has("use-after-free write");
	/* Two different thread ids. */
	const char *a = strstr(err, "allocated by thread ");
	const char *f = strstr(err, "freed by thread ");
	assert_non_null(a);
	assert_non_null(f);
	assert_true(strtoull(a + 20, NULL, 10) != strtoull(f + 16, NULL, 10));
	assert_stacks(true);
}

static void
test_fork(void **state)
{
	(void)state;
	int st;
	run_guarded("fork", GUARDED, &st);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "status %#x:\n%s\n", st, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_has("use-after-free write");
	assert_stacks(true);
}

static void
test_full(void **state)
{
	(void)state;
	int st;
	run_guarded("full", GUARDED ",guard_slots:64", &st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_off(void **state)
{
	(void)state;
	int st;
	run_guarded("off", "guard_sample:0", &st);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_no_unwinder(void **state)
{
	(void)state;
	int st;
	run_guarded("no_unwinder", GUARDED, &st);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "status %#x:\n%s\n", st, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_default_rate(void **state)
{
	(void)state;
	int st;
	run_guarded("default_rate", NULL, &st);
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		fprintf(stderr, "status %#x:\n%s\n", st, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uaf_read),
		cmocka_unit_test(test_uaf_write),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_underflow),
		cmocka_unit_test(test_slack_overflow),
		cmocka_unit_test(test_double_free),
		cmocka_unit_test(test_invalid_free),
		cmocka_unit_test(test_recover),
		cmocka_unit_test(test_own_handler_first),
		cmocka_unit_test(test_own_handler_after),
		cmocka_unit_test(test_default_fault),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_realloc_freed),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_default_rate),
		cmocka_unit_test(test_no_unwinder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
