/*
 * Fork against the first backtrace() (stack.c, "Fork against the
 * unwinder's loading").  Thread T allocates on a stack of its own, so the
 * frame-pointer walk of its first guarded sample fails and the capture
 * calls backtrace(), which has glibc dlopen libgcc_s.  T is held at an
 * allocation inside that dlopen, after libgcc_s is relocated and before
 * _dl_find_object knows it; the main thread forks; a releaser thread lets
 * T go on a moment later.  The child then samples on a stack of its own
 * too.  A fork that does not wait for T copies the half-loaded state, and
 * the child's backtrace() aborts inside libgcc with no message (seen once
 * in CI as "child killed by signal 6"); with the wait the child exits 0.
 * However late the releaser runs, the child must exit 0: after 2 s the
 * fork goes on and the child never calls the unwinder.
 *
 * The program links the library's objects without its standard names and
 * brings its own malloc, which holds T at the moment above.  Run with
 * PCMALLOC_CONF=guard_sample:4096.
 */
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "pcmalloc.h"

/* The allocation inside the dlopen at which T is held: the third one
 * after relocation (the first two are the loader's, before its state is
 * half-way). */
#define HOLD_AT 3

static atomic_int armed, held, released, t_done;
static __thread int is_t;

static int
libgcc_half_loaded(void)
{
	for (struct link_map *l = _r_debug.r_map; l != NULL; l = l->l_next) {
		struct dl_find_object d;
		if (l->l_name != NULL && strstr(l->l_name, "libgcc_s") != NULL &&
		    _dl_find_object((void *)l->l_ld, &d) != 0)
			return 1;
	}
	return 0;
}

static void
maybe_hold(void)
{
	static int seen;
	if (!is_t || !atomic_load(&armed) || !libgcc_half_loaded() ||
	    ++seen < HOLD_AT)
		return;
	atomic_store(&armed, 0);
	atomic_store(&held, 1);
	while (!atomic_load(&released))
		usleep(1000);
}

void *malloc(size_t n) { maybe_hold(); return pc_malloc(n); }
void *calloc(size_t a, size_t b) { maybe_hold(); return pc_calloc(a, b); }
void *realloc(void *p, size_t n) { maybe_hold(); return pc_realloc(p, n); }
void free(void *p) { pc_free(p); }
void *aligned_alloc(size_t a, size_t n) { return pc_aligned_alloc(a, n); }
void *memalign(size_t a, size_t n) { return pc_memalign(a, n); }
int posix_memalign(void **r, size_t a, size_t n)
{
	return pc_posix_memalign(r, a, n);
}
size_t malloc_usable_size(void *p) { return pc_malloc_usable_size(p); }

/* Small allocations on a stack the frame-pointer walk refuses (not the
 * thread's own), as a caller built without frame pointers makes it.  Used
 * by T in the parent, then by the child's only thread; not thread-local:
 * glibc places a thread's static TLS inside its stack. */
static ucontext_t back, there;

static void
churn(void)
{
	for (int i = 0; i < 20000; i++) {
		volatile char *p = malloc(64);
		p[0] = 1;
		free((void *)p);
	}
}

static void
churn_on_other_stack(void)
{
	static char stack[256 << 10];
	getcontext(&there);
	there.uc_stack.ss_sp = stack;
	there.uc_stack.ss_size = sizeof(stack);
	there.uc_link = &back;
	makecontext(&there, churn, 0);
	swapcontext(&back, &there);
}

static void *
t_main(void *arg)
{
	(void)arg;
	is_t = 1;
	churn_on_other_stack();
	atomic_store(&t_done, 1);
	return NULL;
}

/* Started before T is held: while T is inside dlopen, a new thread could
 * not be made (its TLS needs the loader's lock). */
static void *
releaser(void *arg)
{
	(void)arg;
	while (!atomic_load(&held))
		usleep(1000);
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	atomic_store(&released, 1);
	return NULL;
}

int
main(int argc, char **argv)
{
	int attempt = argc > 1 ? atoi(argv[1]) : 0;
	atomic_store(&armed, 1);
	pthread_t t, r;
	if (pthread_create(&r, NULL, releaser, NULL) != 0 ||
	    pthread_create(&t, NULL, t_main, NULL) != 0)
		return 2;
	while (!atomic_load(&held)) {
		if (atomic_load(&t_done)) {
			/* T made no first call: this thread did, in a guarded
			 * sample taken inside pthread_create.  Not the case
			 * under test: again, in a new process. */
			atomic_store(&held, 1);
			pthread_join(r, NULL);
			pthread_join(t, NULL);
			if (attempt == 20) {
				fprintf(stderr, "T never loaded the unwinder "
				    "in 20 runs\n");
				return 3;
			}
			char next[16];
			snprintf(next, sizeof(next), "%d", attempt + 1);
			execl("/proc/self/exe", argv[0], next, (char *)NULL);
			return 2;
		}
		usleep(1000);
	}
	pid_t pid = fork();
	if (pid == 0) {
		churn_on_other_stack();
		_exit(0);
	}
	if (pid < 0)
		return 2;
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return 2;
	pthread_join(r, NULL);
	pthread_join(t, NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "child %s %d\n", WIFSIGNALED(st) ?
		    "killed by signal" : "exited with", WIFSIGNALED(st) ?
		    WTERMSIG(st) : WEXITSTATUS(st));
		return 1;
	}
	return 0;
}
