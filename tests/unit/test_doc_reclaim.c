/*
 * Documented cache behaviour that runs on its own (docs/design.md, "Thread
 * caches" and "Idle threads' caches"; docs/options.md, tcache_reclaim and
 * decay_ms):
 * - the periodic pass (every decay_ms/2, at least 1 s) empties a parked
 *   thread's cache without any trim call, driven by the purging thread or
 *   by another thread's GC step;
 * - the GC step (every TCACHE_GC_EVENTS slow-path events) halves a bin the
 *   thread stopped using;
 * - where membarrier is refused (seccomp: EPERM or ENOSYS), and with
 *   tcache_reclaim:off, reclaim is off cleanly: other threads' caches are
 *   left alone, trim still empties the caller's own cache, and the program
 *   runs normally.
 * Catches: a periodic pass that never fires, a GC step that never runs or
 * gives back the wrong amount, reclaim that ignores a failed fence or the
 * option, and crashes where membarrier is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <cmocka.h>
#include "skip_policy.h"

#include "doc_common.h"
#include "pcmalloc.h"
#include "tcache.h"

#ifndef MEMBARRIER_CMD_QUERY
#define MEMBARRIER_CMD_QUERY 0
#endif
#ifndef MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#endif

/* ---- a parked thread with a full cache ---------------------------------- */

#define PARK_SIZE 256
#define PARK_N 40

static int park_fd[2];
static tcache_t *volatile parked_tc;

static void *
parked_main(void *arg)
{
	(void)arg;
	void *v[PARK_N];
	for (int i = 0; i < PARK_N; i++)
		v[i] = malloc(PARK_SIZE);
	for (int i = 0; i < PARK_N; i++)
		free(v[i]);
	__atomic_store_n(&parked_tc, TCACHE_GET(), __ATOMIC_RELEASE);
	char c;
	while (read(park_fd[0], &c, 1) < 0 && errno == EINTR)
		;
	/* Woken: the cache (taken back if it was reclaimed) still works. */
	for (int i = 0; i < PARK_N; i++)
		v[i] = malloc(PARK_SIZE);
	for (int i = 0; i < PARK_N; i++)
		memset(v[i], i, PARK_SIZE), free(v[i]);
	return NULL;
}

static pthread_t
park_start(void)
{
	DOC_CHECK(pipe(park_fd) == 0, "pipe");
	pthread_t t;
	DOC_CHECK(pthread_create(&t, NULL, parked_main, NULL) == 0,
	    "pthread_create");
	while (__atomic_load_n(&parked_tc, __ATOMIC_ACQUIRE) == NULL)
		doc_sleep_ms(1);
	return t;
}

/* Bytes in the parked thread's cache, all classes. */
static unsigned long long
parked_bytes(void)
{
	unsigned long long b = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		b += (unsigned long long)__atomic_load_n(&TBIN(parked_tc,
		    sc)->n, __ATOMIC_RELAXED) * sc_size(sc);
	return b;
}

static unsigned
parked_cached(void)
{
	return __atomic_load_n(&TBIN(parked_tc, sc_index(PARK_SIZE))->n,
	    __ATOMIC_RELAXED);
}

static void
park_finish(pthread_t t)
{
	DOC_CHECK(write(park_fd[1], "x", 1) == 1, "write");
	DOC_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
	DOC_CHECK(pc_check() == 0, "pc_check found problems");
}

/* ---- children ----------------------------------------------------------- */

/* Wait (up to a minute: the pass is due within about 2 s) for the periodic
 * pass to empty the parked thread's cache.  `churn`: this thread keeps
 * hitting slow paths (so its GC steps run the pass); otherwise it makes no
 * allocator call at all and only the purging thread can. */
static void
child_periodic(int churn)
{
	pthread_t t = park_start();
	unsigned n0 = parked_cached();
	DOC_CHECK(n0 > 0, "the parked thread cached nothing");
	unsigned long long rec0 = doc_stat("nreclaims");
	unsigned long long tc0 = doc_stat("tcache");
	double deadline = doc_now() + 60;
	static void *v[2048];
	while (parked_cached() != 0 || doc_stat("nreclaims") == rec0) {
		if (doc_now() > deadline)
			DOC_FAIL("no periodic reclaim within 60 s: parked "
			    "thread still caches %u objects (had %u), "
			    "nreclaims %llu -> %llu", parked_cached(), n0,
			    rec0, doc_stat("nreclaims"));
		if (churn) {
			/* 1 KiB blocks: a refill or flush every few calls. */
			for (int i = 0; i < 2048; i++)
				v[i] = malloc(1024);
			for (int i = 0; i < 2048; i++)
				free(v[i]);
		}
		doc_sleep_ms(20);
	}
	if (!churn) {
		/* Nothing else changed the caches: the parked objects left. */
		unsigned long long tc1 = doc_stat("tcache");
		DOC_CHECK(tc1 + (unsigned long long)n0 * PARK_SIZE <= tc0,
		    "tcache bytes %llu -> %llu, want a drop of %u", tc0, tc1,
		    n0 * PARK_SIZE);
	}
	park_finish(t);
}

/* Reclaim must be off: the parked cache survives trims and periodic
 * passes; trim still empties this thread's own cache. */
static void
child_reclaim_off(int fence_refused)
{
	if (fence_refused) {
		errno = 0;
		long r = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
		DOC_CHECK(r == -1 && (errno == EPERM || errno == ENOSYS),
		    "the seccomp filter let membarrier through (%ld, errno "
		    "%d)", r, errno);
	}
	pthread_t t = park_start();
	unsigned n0 = parked_cached();
	DOC_CHECK(n0 > 0, "the parked thread cached nothing");
	/* Our own cache holds objects too. */
	static void *v[64];
	for (int i = 0; i < 64; i++)
		v[i] = malloc(96);
	for (int i = 0; i < 64; i++)
		free(v[i]);
	unsigned long long pb = parked_bytes();
	DOC_CHECK(doc_stat("tcache") > pb, "this thread caches nothing");
	pc_trim();
	unsigned long long after = doc_stat("tcache");
	DOC_CHECK(after == pb, "after pc_trim the caches hold %llu bytes, "
	    "want the parked thread's %llu only", after, pb);
	DOC_CHECK(parked_cached() == n0, "trim took the parked cache");
	DOC_CHECK(tcache_reclaim(false) == 0, "a reclaim pass emptied a "
	    "cache");
	/* Periodic passes (decay_ms:100: one every second) find nothing to
	 * do either; 3 s covers two of them on an idle machine. */
	for (int i = 0; i < 30; i++) {
		doc_sleep_ms(100);
		DOC_CHECK(parked_cached() == n0, "a periodic pass took the "
		    "parked cache (%u of %u left)", parked_cached(), n0);
	}
	DOC_CHECK(doc_stat("nreclaims") == 0, "nreclaims %llu",
	    doc_stat("nreclaims"));
	park_finish(t);
	/* And the program goes on: threads allocate and free each other's
	 * blocks. */
	for (int round = 0; round < 4; round++) {
		pthread_t w[4];
		for (int i = 0; i < 4; i++) {
			parked_tc = NULL;
			DOC_CHECK(pthread_create(&w[i], NULL, parked_main,
			    NULL) == 0, "pthread_create");
			while (__atomic_load_n(&parked_tc, __ATOMIC_ACQUIRE) ==
			    NULL)
				doc_sleep_ms(1);
			DOC_CHECK(write(park_fd[1], "x", 1) == 1, "write");
			DOC_CHECK(pthread_join(w[i], NULL) == 0, "join");
		}
		pc_trim();
	}
	DOC_CHECK(pc_check() == 0, "pc_check found problems");
}

/*
 * The GC step: a bin that saw no refill or flush during a whole GC window
 * gives back half of what it holds at the next step, exactly every
 * TCACHE_GC_EVENTS slow-path events.
 */
typedef struct gc_watch {
	tcache_t *tc;
	tbin_t *bin;
	unsigned n;		/* objects in the watched bin */
	uint64_t ev0, last;	/* slow-path events: start, last GC step */
	unsigned halvings;
} gc_watch_t;

/* After every call: has the watched bin changed, and was it by a GC step
 * at the right moment? */
static void
gc_look(gc_watch_t *w)
{
	unsigned now = w->bin->n;
	uint64_t at = w->tc->nslow - w->ev0;
	if (now == w->n) {
		DOC_CHECK(at < 4000, "class 64 still holds %u objects after "
		    "%llu slow-path events", now, (unsigned long long)at);
		return;
	}
	DOC_CHECK(now == w->n / 2, "GC step took class 64 from %u to %u "
	    "objects, want %u", w->n, now, w->n / 2);
	if (w->halvings == 0)
		DOC_CHECK(at <= 2 * TCACHE_GC_EVENTS, "first GC step after "
		    "%llu events", (unsigned long long)at);
	else
		DOC_CHECK(at - w->last == TCACHE_GC_EVENTS, "GC steps %llu "
		    "events apart, want %d", (unsigned long long)(at - w->last),
		    TCACHE_GC_EVENTS);
	w->last = at;
	w->halvings++;
	w->n = now;
}

static void *
gc_thread(void *arg)
{
	(void)arg;
	enum { NA = 300, NB = 200 };
	static void *a[NA], *b[NB];
	for (int i = 0; i < NA; i++)
		a[i] = malloc(64);
	for (int i = 0; i < NA; i++)
		free(a[i]);
	gc_watch_t w = { .tc = TCACHE_GET() };
	w.bin = TBIN(w.tc, sc_index(64));
	w.n = w.bin->n;
	w.ev0 = w.tc->nslow;
	DOC_CHECK(w.n >= 16, "class 64 caches only %u objects", w.n);
	/* 4 KiB blocks: a bin of 8 slots that may grow to 64, so 200 of
	 * them keep missing and GC steps keep coming; class 64 is never
	 * touched again. */
	for (int round = 0; w.n != 0; round++) {
		DOC_CHECK(round < 10000, "class 64 still holds %u objects "
		    "after %d rounds", w.n, round);
		for (int i = 0; i < NB; i++) {
			b[i] = malloc(4096);
			gc_look(&w);
		}
		for (int i = 0; i < NB; i++) {
			free(b[i]);
			gc_look(&w);
		}
	}
	DOC_CHECK(w.halvings >= 4, "only %u GC steps seen", w.halvings);
	return NULL;
}

static int
child(const char *mode)
{
	if (strcmp(mode, "periodic_bg") == 0)
		child_periodic(0);
	else if (strcmp(mode, "periodic_gc") == 0)
		child_periodic(1);
	else if (strcmp(mode, "fence_refused") == 0)
		child_reclaim_off(1);
	else if (strcmp(mode, "reclaim_off") == 0)
		child_reclaim_off(0);
	else if (strcmp(mode, "gc") == 0) {
		pthread_t t;
		DOC_CHECK(pthread_create(&t, NULL, gc_thread, NULL) == 0,
		    "pthread_create");
		DOC_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
	} else {
		DOC_FAIL("unknown mode %s", mode);
	}
	return 0;
}

/* ---- seccomp: membarrier fails with seccomp_errno ---------------------- */

static int seccomp_errno;

static void
refuse_membarrier(void)
{
	struct sock_filter f[] = {
#if defined(__x86_64__) || defined(__aarch64__)
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO |
		    ((unsigned)seccomp_errno & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(f) / sizeof(f[0])),
	    f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		fprintf(stderr, "seccomp filter refused: %s\n",
		    strerror(errno));
		_exit(DOC_UNSUPPORTED);
	}
}

/* ---- tests -------------------------------------------------------------- */

static char out[16384];

/* Reclaim needs membarrier(PRIVATE_EXPEDITED) (Linux 4.14) and a build
 * with PC_TCACHE_RECLAIM (not TSan). */
static int
reclaim_possible(void)
{
	if (!PC_TCACHE_RECLAIM) {
		print_message("skip: this build has no cache reclaim (TSan)\n");
		return 0;
	}
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
		print_message("skip: membarrier(PRIVATE_EXPEDITED) is not "
		    "available on this kernel (%s)\n",
		    cmds < 0 ? strerror(errno) : "not in QUERY");
		return 0;
	}
	return 1;
}

static void
expect_ok(const char *mode, const char *conf, doc_setup_fn setup)
{
	int st = doc_run(mode, conf, NULL, setup, out, sizeof(out));
	if (WIFEXITED(st) && WEXITSTATUS(st) == DOC_UNSUPPORTED) {
		SKIP_BECAUSE("%s: %s", mode, out);
	}
	if (!doc_exited_ok(st))
		fail_msg("%s (%s): status 0x%x: %s", mode, conf, st, out);
}

/* The purging thread alone (this program makes no allocator call while
 * it waits) empties the parked thread's cache. */
static void
test_periodic_reclaim_background(void **state)
{
	(void)state;
	if (!reclaim_possible())
		SKIP_BECAUSE("no membarrier(PRIVATE_EXPEDITED) here");
	expect_ok("periodic_bg", "decay_ms:100,background_thread:on", NULL);
}

/* No purging thread: another thread's GC steps run the pass. */
static void
test_periodic_reclaim_gc_step(void **state)
{
	(void)state;
	if (!reclaim_possible())
		SKIP_BECAUSE("no membarrier(PRIVATE_EXPEDITED) here");
	expect_ok("periodic_gc", "decay_ms:100,background_thread:off", NULL);
}

static void
test_gc_halves_unused_bin(void **state)
{
	(void)state;
	/* Exact bin counts: no guarded samples, whose stack capture
	 * allocates from this thread's cache when it loads the unwinder. */
	expect_ok("gc", "background_thread:off,guard_sample:0", NULL);
}

static void
test_membarrier_eperm(void **state)
{
	(void)state;
	seccomp_errno = EPERM;
	expect_ok("fence_refused", "decay_ms:100,background_thread:on",
	    refuse_membarrier);
}

static void
test_membarrier_enosys(void **state)
{
	(void)state;
	seccomp_errno = ENOSYS;
	expect_ok("fence_refused", "decay_ms:100,background_thread:on",
	    refuse_membarrier);
}

static void
test_reclaim_option_off(void **state)
{
	(void)state;
	expect_ok("reclaim_off",
	    "tcache_reclaim:off,decay_ms:100,background_thread:on", NULL);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_periodic_reclaim_background),
		cmocka_unit_test(test_periodic_reclaim_gc_step),
		cmocka_unit_test(test_gc_halves_unused_bin),
		cmocka_unit_test(test_membarrier_eperm),
		cmocka_unit_test(test_membarrier_enosys),
		cmocka_unit_test(test_reclaim_option_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
