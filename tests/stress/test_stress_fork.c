/*
 * fork() while other threads are inside malloc/free.  50 times: with busy
 * threads allocating/freeing (all size regimes, cross-thread frees), fork
 * from the main thread or from a helper thread; the child verifies and
 * frees blocks inherited from the parent, mallocs/frees a lot, does the
 * same from a new thread, sometimes forks again, and _exit(0)s.  A child
 * counts every operation in a page shared with the parent; a child whose
 * count stands still for 20 s is deadlocked (a lock held across fork:
 * missing or wrong atfork handlers for arena, huge-mapping, base allocator
 * or thread-registry locks).  Progress, not wall time: on a loaded machine
 * a healthy child may take minutes, and a deadlocked one never moves.  A
 * child counts nothing while the kernel copies or tears down its address
 * space (its fork, its exit), which on a loaded machine has taken over
 * 20 s: a stall counts as a deadlock only when every task of the child
 * and of its own child sleeps (S), as tasks blocked on a lock do.
 * Catches deadlocks and heap corruption in the child.
 */
#include "stress_common.h"

#include <ctype.h>
#include <dirent.h>
#include <execinfo.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define FORKS 50
#define CHILD_STALL_MS 20000

/* Operations done by the current child (and its thread and grandchild),
 * and where the child is (enum child_phase): MAP_SHARED, so the parent
 * sees them.  A child killed by a signal is reported with its phase. */
static atomic_long *child_progress;
static atomic_int *child_phase;

enum child_phase {
	PH_FORKED, PH_HELD, PH_HANDOFF, PH_CHURN, PH_THREAD, PH_GRANDCHILD,
	PH_EXIT
};
static const char *const phase_names[] = { "in fork handlers",
	"checking and freeing inherited blocks",
	"freeing blocks of threads it does not have", "churning",
	"in its own thread", "forking again", "exiting" };

static atomic_int stop;
/* Set while a child runs: leave it the CPUs.  The busy threads block
 * (pause_cv) rather than poll: 32 threads waking every half millisecond
 * took most of the CPU a child got on a loaded machine. */
static atomic_int paused;
static pthread_mutex_t pause_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cv = PTHREAD_COND_INITIALIZER;
static atomic_long busy_ops;

/* blocks handed between busy threads (cross-thread frees in flight) */
#define HANDOFF 64
static pthread_mutex_t handoff_mu = PTHREAD_MUTEX_INITIALIZER;
static item_t handoff[HANDOFF];

static void *
busy_thread(void *arg)
{
	rng_t r;
	rng_seed(&r, 300 + (uintptr_t)arg);
	item_t live[64];
	memset(live, 0, sizeof(live));
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (atomic_load_explicit(&paused, memory_order_relaxed)) {
			pthread_mutex_lock(&pause_mu);
			while (atomic_load(&paused))
				pthread_cond_wait(&pause_cv, &pause_mu);
			pthread_mutex_unlock(&pause_mu);
			continue;
		}
		item_t *s = &live[rng_below(&r, 64)];
		if (s->p) {
			PAT_VERIFY(s->p, s->size, s->seed, "busy");
			if (rng_below(&r, 4) == 0) {
				pthread_mutex_lock(&handoff_mu);
				item_t *h = &handoff[rng_below(&r, HANDOFF)];
				item_t old = *h;
				*h = *s;
				pthread_mutex_unlock(&handoff_mu);
				if (old.p) {
					PAT_VERIFY(old.p, old.size, old.seed,
					    "handoff");
					free(old.p);
				}
			} else if (rng_below(&r, 3) == 0) {
				size_t n = rng_size(&r, 2) + 1;
				void *q = realloc(s->p, n);
				CHECK(q != NULL, "realloc %zu", n);
				s->p = q;
				s->size = n;
				s->seed = block_seed(q, n);
				pat_fill(q, n, s->seed);
				continue;
			} else {
				free(s->p);
			}
			s->p = NULL;
		}
		s->size = rng_size(&r, 2);
		s->p = rng_below(&r, 5) == 0 ?
		    aligned_alloc(64, s->size) : malloc(s->size);
		CHECK(s->p != NULL, "malloc %zu", s->size);
		s->seed = block_seed(s->p, s->size);
		pat_fill(s->p, s->size, s->seed);
		atomic_fetch_add_explicit(&busy_ops, 1, memory_order_relaxed);
	}
	for (int i = 0; i < 64; i++)
		if (live[i].p)
			free(live[i].p);
	return NULL;
}

/* ---- child side: exit codes identify the failure ------------------- */

static int
child_churn(unsigned seed, int ops)
{
	rng_t r;
	rng_seed(&r, seed);
	item_t live[128];
	memset(live, 0, sizeof(live));
	for (int i = 0; i < ops; i++) {
		item_t *s = &live[rng_below(&r, 128)];
		if (s->p) {
			if (pat_find_bad(s->p, s->size, s->seed) != SIZE_MAX)
				return 3;
			free(s->p);
		}
		s->size = rng_size(&r, 2);
		s->p = rng_below(&r, 4) == 0 ? calloc(1, s->size) :
		    malloc(s->size);
		if (s->p == NULL)
			return 4;
		s->seed = block_seed(s->p, s->size);
		pat_fill(s->p, s->size, s->seed);
		atomic_fetch_add_explicit(child_progress, 1,
		    memory_order_relaxed);
	}
	for (int i = 0; i < 128; i++)
		free(live[i].p);
	return 0;
}

static void *
child_thread(void *arg)
{
	return (void *)(intptr_t)child_churn((unsigned)(uintptr_t)arg, 5000);
}

/* blocks the main thread holds across the fork */
#define HELD 256
static item_t held[HELD];

/* The state letter of /proc/PID/task/TID/stat (path), '?' if gone. */
static char
task_state(const char *path)
{
	char buf[512];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');	/* after "pid (comm)" */
	return rp != NULL && rp[1] == ' ' ? rp[2] : '?';
}

/* The parent pid in /proc/PID/stat, -1 if unreadable. */
static pid_t
proc_ppid(const char *pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	int ppid;
	return rp != NULL && sscanf(rp + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/*
 * Whether a task of the child `pid` or of its children (the grandchild it
 * forks) is awake or in the kernel: running (R), uninterruptible (D: the
 * kernel copying or freeing an address space) or exiting (Z, X).  The
 * tasks and their states are appended to `desc`.
 */
static bool
tree_awake(pid_t pid, char *desc, size_t cap)
{
	pid_t procs[8];
	int nprocs = 0;
	procs[nprocs++] = pid;
	DIR *d = opendir("/proc");
	if (d != NULL) {
		for (struct dirent *e; (e = readdir(d)) != NULL && nprocs < 8;)
			if (isdigit((unsigned char)e->d_name[0]) &&
			    proc_ppid(e->d_name) == pid)
				procs[nprocs++] = (pid_t)atoi(e->d_name);
		closedir(d);
	}
	bool awake = false;
	size_t len = strlen(desc);
	for (int i = 0; i < nprocs; i++) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/task", (int)procs[i]);
		DIR *t = opendir(path);
		if (t == NULL)
			continue;
		for (struct dirent *e; (e = readdir(t)) != NULL;) {
			if (!isdigit((unsigned char)e->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%s/stat",
			    (int)procs[i], e->d_name);
			char st = task_state(path);
			awake |= st != 'S' && st != '?';
			if (len + 32 < cap)
				len += (size_t)snprintf(desc + len, cap - len,
				    " %d/%s:%c", (int)procs[i], e->d_name, st);
		}
		closedir(t);
	}
	return awake;
}

/* 1: exited; 0: no progress for CHILD_STALL_MS, every task asleep
 * (killed; `desc` says which tasks); -1: error. */
static int
wait_child(pid_t pid, int *status, char *desc, size_t cap)
{
	struct timespec ts = { 0, 1000000 };	/* 1 ms */
	long seen = atomic_load(child_progress);
	int still = 0;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		nanosleep(&ts, NULL);
		long now = atomic_load(child_progress);
		if (now != seen) {
			seen = now;
			still = 0;
		} else if (++still >= CHILD_STALL_MS) {
			/* Up to five looks 20 ms apart: one that finds
			 * every task asleep is a deadlock (a purging
			 * thread in the child wakes briefly now and
			 * then, deadlocked or not). */
			bool awake = true;
			for (int look = 0; look < 5 && awake; look++) {
				desc[0] = '\0';
				awake = tree_awake(pid, desc, cap);
				struct timespec gap = { 0, 20000000 };
				nanosleep(&gap, NULL);
			}
			if (!awake)
				break;
			still = 0;	/* the kernel is at work: wait on */
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return 0;
}

/* A fatal signal in a child: its stack on stderr (CI keeps only the
 * output), then the default action.  The alarm bounds a handler that
 * blocks on a lock the signal interrupted.  (The parent does not call
 * backtrace() first: loading the unwinder early would hide the race
 * test_fork_unwinder checks, a fork during its loading by a guarded
 * sample.) */
static void
child_fatal_signal(int sig)
{
	alarm(5);
	static const char head[] = "stress_fork child: fatal signal, stack:\n";
	if (write(2, head, sizeof(head) - 1) < 0)
		_exit(99);
	void *frames[48];
	int n = backtrace(frames, 48);
	backtrace_symbols_fd(frames, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
child_main(int iter)
{
	alarm(0);
	atomic_store(child_phase, PH_HELD);
	static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], child_fatal_signal);
	/* inherited blocks are intact and freeable */
	for (int i = 0; i < HELD; i++) {
		if (pat_find_bad(held[i].p, held[i].size, held[i].seed) != SIZE_MAX)
			_exit(2);
		if (i % 2)
			free(held[i].p);
	}
	/* inherited handoff blocks: allocated by threads that do not exist
	 * in the child */
	atomic_store(child_phase, PH_HANDOFF);
	for (int i = 0; i < HANDOFF; i += 3)
		if (handoff[i].p && i % 2 == 0 &&
		    pat_find_bad(handoff[i].p, handoff[i].size, handoff[i].seed)
		    == SIZE_MAX)
			free(handoff[i].p);
	atomic_store(child_phase, PH_CHURN);
	int rc = child_churn((unsigned)iter, 10000);
	if (rc)
		_exit(rc);
	atomic_store(child_phase, PH_THREAD);
	pthread_t t;
	if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)iter))
		_exit(5);
	void *ret;
	if (pthread_join(t, &ret) || ret != NULL)
		_exit(6);
	if (iter % 10 == 0) {
		/* fork again from the child (its own thread is joined; the
		 * purging thread may have been restarted in it) */
		atomic_store(child_phase, PH_GRANDCHILD);
		pid_t g = fork();
		if (g < 0)
			_exit(7);
		if (g == 0)
			_exit(child_churn(7, 2000));
		int st;
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			_exit(8);
	}
	atomic_store(child_phase, PH_EXIT);
	_exit(0);
}

static void
check_child(pid_t pid, int iter)
{
	int status = 0;
	char desc[512];
	int w = wait_child(pid, &status, desc, sizeof(desc));
	if (w == 0)
		fail_msg("fork %d: child made no progress for %d ms at %ld "
		    "operations, %s, all its tasks asleep (deadlock after "
		    "fork):%s", iter, CHILD_STALL_MS,
		    atomic_load(child_progress),
		    phase_names[atomic_load(child_phase)], desc);
	assert_int_equal(w, 1);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("fork %d: child %s %d, %s, after %ld operations",
		    iter, WIFEXITED(status) ? "exited with" : "killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    phase_names[atomic_load(child_phase)],
		    atomic_load(child_progress));
}

static atomic_int forker_iter;
static atomic_int forker_pid;

static void *
forker_thread(void *arg)
{
	(void)arg;
	int iter = atomic_load(&forker_iter);
	pid_t pid = fork();
	if (pid == 0)
		child_main(iter);
	atomic_store(&forker_pid, (int)pid);
	return NULL;
}

static void
test_fork_under_load(void **state)
{
	(void)state;
	stress_begin();
	void *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	child_progress = shared;
	child_phase = (atomic_int *)((char *)shared + 64);
	int nbusy = stress_threads;
	pthread_t *t = calloc((size_t)nbusy, sizeof(*t));
	assert_non_null(t);
	atomic_store(&stop, 0);
	for (int i = 0; i < nbusy; i++)
		xpthread_create(&t[i], busy_thread, (void *)(uintptr_t)i);
	rng_t r;
	rng_seed(&r, 99);
	for (int i = 0; i < HELD; i++) {
		held[i].size = rng_size(&r, 5);
		held[i].p = malloc(held[i].size);
		assert_non_null(held[i].p);
		held[i].seed = block_seed(held[i].p, held[i].size);
		pat_fill(held[i].p, held[i].size, held[i].seed);
	}
	/* The short variant still forks from the main and another thread,
	 * and forks again in a child (iteration 0). */
	int forks = stress_short ? FORKS / 5 : FORKS;
	for (int iter = 0; iter < forks; iter++) {
		/* The watchdog bounds one round, not all 50: under load a
		 * round has taken 20 s, and a whole healthy run over 200. */
		alarm(STRESS_WATCHDOG_SECONDS);
		/* let the busy threads get going */
		long start = atomic_load(&busy_ops);
		while (atomic_load(&busy_ops) < start + 200)
			sched_yield();
		atomic_store(child_phase, PH_FORKED);
		pid_t pid;
		if (iter % 2 == 0) {
			fflush(NULL);
			pid = fork();
			if (pid == 0)
				child_main(iter);
		} else {
			/* fork from a thread other than the main one */
			pthread_t ft;
			atomic_store(&forker_iter, iter);
			xpthread_create(&ft, forker_thread, NULL);
			xpthread_join(ft);
			pid = atomic_load(&forker_pid);
		}
		assert_true(pid > 0);
		atomic_store(&paused, 1);
		check_child(pid, iter);
		pthread_mutex_lock(&pause_mu);
		atomic_store(&paused, 0);
		pthread_cond_broadcast(&pause_cv);
		pthread_mutex_unlock(&pause_mu);
		/* the parent's heap is fine too */
		for (int i = 0; i < HELD; i += 7) {
			PAT_VERIFY(held[i].p, held[i].size, held[i].seed, "parent");
			free(held[i].p);
			held[i].size = rng_size(&r, 5);
			held[i].p = malloc(held[i].size);
			assert_non_null(held[i].p);
			held[i].seed = block_seed(held[i].p, held[i].size);
			pat_fill(held[i].p, held[i].size, held[i].seed);
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < nbusy; i++)
		xpthread_join(t[i]);
	for (int i = 0; i < HELD; i++) {
		PAT_VERIFY(held[i].p, held[i].size, held[i].seed, "parent end");
		free(held[i].p);
	}
	for (int i = 0; i < HANDOFF; i++) {
		if (handoff[i].p) {
			PAT_VERIFY(handoff[i].p, handoff[i].size, handoff[i].seed,
			    "handoff end");
			free(handoff[i].p);
			handoff[i].p = NULL;
		}
	}
	free(t);
	stress_end();
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_under_load),
	};
	return STRESS_RUN("stress_fork", tests);
}
