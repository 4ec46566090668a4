/*
 * The purging thread (docs/options.md, background_thread): `auto`, the
 * default, starts it the first time an arena holds 64 MiB of dirty pages,
 * so a small process never gets one; `on` starts it at load, `off` never;
 * after fork it restarts lazily in the child.  Threads are counted in
 * /proc/self/task.
 * Catches: a thread in every small process, a big heap freed and left idle
 * without one, a fork child that never gets its thread back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

static void
churn_small(void)
{
	static void *v[10000];
	for (int i = 0; i < 10000; i++)
		v[i] = malloc((size_t)(i % 500) * 16 + 1);
	for (int i = 0; i < 10000; i++)
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
	/* A small process: 48 MiB freed, small blocks churned. */
	churn_large(48);
	churn_small();
	DOC_CHECK(doc_stat("arena.0.dirty") <= 64 * MiB, "arena 0 holds "
	    "%llu MiB dirty", doc_stat("arena.0.dirty") >> 20);
	doc_sleep_ms(50);
	DOC_CHECK(doc_nthreads() == 1, "%d threads in a small process",
	    doc_nthreads());
	/* 100 MiB freed: over the 64 MiB mark. */
	churn_large(100);
	DOC_CHECK(doc_stat("arena.0.dirty") > 64 * MiB, "arena 0 holds only "
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
		cmocka_unit_test(test_on_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
