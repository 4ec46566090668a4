/*
 * The purging thread (docs/options.md, background_thread): `auto`, the
 * default, starts it the first time a page heap holds 32 MiB of dirty
 * pages, so a small process never gets one; `on` starts it at load, `off`
 * never; after fork it restarts lazily in the child.  A free run of 32 MiB
 * or more goes back a second after its last free (docs/options.md,
 * decay_ms).  Threads are counted in /proc/self/task.
 * Catches: a thread in every small process, a big heap freed and left idle
 * without one, a fork child that never gets its thread back, a freed
 * block of 32 MiB or more that stays resident for decay_ms (10 s) while
 * the program runs on without another slow path (docs/design.md,
 * "Decay").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "doc_common.h"

static void *blk[128];

/* n blocks of 1 MiB (all from arena 0), then freed: n MiB dirty there. */
static void
churn_large(int n)
{
	for (int i = 0; i < n; i++) {
		blk[i] = malloc(MiB);
		DOC_CHECK(blk[i] != NULL, "malloc");
	}
	for (int i = 0; i < n; i++)
		free(blk[i]);
}

/* About 16 MB of small blocks, then freed. */
static void
churn_small(void)
{
	static void *v[4000];
	for (int i = 0; i < 4000; i++)
		v[i] = malloc((size_t)(i % 500) * 16 + 1);
	for (int i = 0; i < 4000; i++)
		free(v[i]);
}

/* Wait up to 30 s for `want` threads, freeing a large block (a slow path
 * that polls for the thread) every 10 ms. */
static int
wait_threads(int want)
{
	double deadline = doc_now() + 30;
	while (doc_nthreads() != want) {
		if (doc_now() > deadline)
			return 0;
		free(malloc(MiB));
		doc_sleep_ms(10);
	}
	return 1;
}

static void
child_auto(void)
{
	DOC_CHECK(doc_nthreads() == 1, "%d threads at start",
	    doc_nthreads());
	/* A small process: 8 MiB freed, small blocks churned. */
	churn_large(8);
	churn_small();
	DOC_CHECK(doc_stat("arena.0.dirty") < 32 * MiB, "arena 0 holds "
	    "%llu MiB dirty", doc_stat("arena.0.dirty") >> 20);
	doc_sleep_ms(50);
	DOC_CHECK(doc_nthreads() == 1, "%d threads in a small process",
	    doc_nthreads());
	/* 100 MiB freed: over the 32 MiB mark. */
	churn_large(100);
	DOC_CHECK(doc_stat("arena.0.dirty") > 32 * MiB, "arena 0 holds only "
	    "%llu MiB dirty", doc_stat("arena.0.dirty") >> 20);
	DOC_CHECK(wait_threads(2), "no purging thread within 30 s of 100 MiB "
	    "freed (%d threads)", doc_nthreads());
	fflush(NULL);
	pid_t pid = fork();
	DOC_CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int n = doc_nthreads();
		if (n != 1) {
			fprintf(stderr, "fork child starts with %d threads\n",
			    n);
			_exit(1);
		}
		if (!wait_threads(2)) {
			fprintf(stderr, "purging thread not restarted in the "
			    "fork child (%d threads)\n", doc_nthreads());
			_exit(1);
		}
		_exit(0);
	}
	int st;
	DOC_CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	DOC_CHECK(doc_exited_ok(st), "fork child status 0x%x", st);
}

/* A block of 40 MiB, written and freed, goes back to the OS (its last
 * page no longer resident, or unmapped with its region) a second or two
 * later, while the program makes no allocator call (Python parsing a
 * document after freeing the file's buffer); one of 20 MiB starts no
 * thread. */
static void
child_big(void)
{
	DOC_CHECK(doc_nthreads() == 1, "%d threads at start",
	    doc_nthreads());
	char *p = malloc(20 * MiB);
	DOC_CHECK(p != NULL, "malloc");
	memset(p, 1, 20 * MiB);
	free(p);
	DOC_CHECK(doc_nthreads() == 1, "a 20 MiB block freed: %d threads",
	    doc_nthreads());
	p = malloc(40 * MiB);
	DOC_CHECK(p != NULL, "malloc");
	memset(p, 1, 40 * MiB);
	free(p);
	/* No allocator call from here until it is gone (the purging thread
	 * may carve slabs at the run's low end: the last page is looked at). */
	unsigned char vec[1];
	char *last = p + 40 * MiB - 4096;
	double t0 = doc_now();
	while (mincore(last, 4096, vec) == 0 && (vec[0] & 1)) {
		if (doc_now() > t0 + 8)
			DOC_FAIL("a freed 40 MiB block still resident after 8 s");
		doc_sleep_ms(20);
	}
	DOC_CHECK(doc_nthreads() == 2, "%d threads after a 40 MiB block was "
	    "freed", doc_nthreads());
}

static long
minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* A 4 MiB block carved from a big free run, written and freed every
 * 150 ms, is not purged with the run and faulted back in: the run's
 * second counts from its last free.  16 MiB freed elsewhere gives the
 * pass's budget room for the whole run.  A purge would cost 1024
 * faults each time. */
static void
child_reuse(void)
{
	char *other = malloc(16 * MiB);
	char *fence = malloc(MiB);
	char *big = malloc(48 * MiB);
	char *fence2 = malloc(MiB);
	DOC_CHECK(other && fence && big && fence2, "malloc");
	memset(other, 1, 16 * MiB);
	memset(big, 1, 48 * MiB);
	free(big);
	free(other);
	long f0 = minor_faults();
	double t0 = doc_now();
	int n = 0;
	while (doc_now() < t0 + 4) {
		char *p = malloc(4 * MiB);
		DOC_CHECK(p != NULL, "malloc");
		memset(p, 2, 4 * MiB);
		free(p);
		doc_sleep_ms(150);
		n++;
	}
	long f = minor_faults() - f0;
	DOC_CHECK(f < 1024, "a 4 MiB block reused %d times in 4 s took %ld "
	    "page faults", n, f);
	free(fence);
	free(fence2);
}

static void
child_on_off(int on)
{
	DOC_CHECK(doc_nthreads() == 1 + on, "background_thread:%s: %d "
	    "threads at start", on ? "on" : "off", doc_nthreads());
	churn_large(100);
	doc_sleep_ms(50);
	DOC_CHECK(doc_nthreads() == 1 + on, "background_thread:%s: %d "
	    "threads after 100 MiB freed", on ? "on" : "off",
	    doc_nthreads());
}

static int
child(const char *mode)
{
	if (strcmp(mode, "auto") == 0)
		child_auto();
	else if (strcmp(mode, "big") == 0)
		child_big();
	else if (strcmp(mode, "reuse") == 0)
		child_reuse();
	else if (strcmp(mode, "on") == 0)
		child_on_off(1);
	else if (strcmp(mode, "off") == 0)
		child_on_off(0);
	else
		DOC_FAIL("unknown mode %s", mode);
	return 0;
}

static char out[8192];

static void
expect_ok(const char *mode, const char *conf)
{
	int st = doc_run(mode, conf, NULL, NULL, out, sizeof(out));
	if (!doc_exited_ok(st))
		fail_msg("%s (%s): status 0x%x: %s", mode, conf ? conf : "-",
		    st, out);
}

/* The defaults, PCMALLOC_CONF unset: auto. */
static void
test_auto(void **state)
{
	(void)state;
	expect_ok("auto", NULL);
}

static void
test_big_given_back(void **state)
{
	(void)state;
	expect_ok("big", NULL);
}

static void
test_big_reused_kept(void **state)
{
	(void)state;
	expect_ok("reuse", NULL);
}

static void
test_on_off(void **state)
{
	(void)state;
	expect_ok("on", "background_thread:on");
	expect_ok("off", "background_thread:off");
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auto),
		cmocka_unit_test(test_big_given_back),
		cmocka_unit_test(test_big_reused_kept),
		cmocka_unit_test(test_on_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
