/*
 * Arenas and CPUs (docs/options.md narenas, docs/design.md "Arenas"):
 * narenas:0 means one arena per CPU in the affinity mask the process
 * starts with (taskset, cgroup CPU sets), and a thread's arena is chosen
 * from the CPU it runs on: from glibc's rseq area, or from sched_getcpu
 * when glibc has no rseq registration (GLIBC_TUNABLES=glibc.pthread.rseq=0
 * here).  A thread alone (the only one with a thread cache) takes arena 0
 * on every CPU.  Catches: arenas counted from the machine's CPUs instead
 * of the mask, a CPU-id fallback that sends every thread to one arena, and
 * a lone thread spread over every arena it runs on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <cmocka.h>

#include "doc_common.h"
#include "nursery.h"

/* glibc 2.35+: non-zero when glibc registered rseq for its threads. */
extern const unsigned int __rseq_size __attribute__((weak));

static int
rseq_registered(void)
{
	return &__rseq_size != NULL && __rseq_size != 0;
}

static int
mask_count(void)
{
	cpu_set_t set;
	DOC_CHECK(sched_getaffinity(0, sizeof(set), &set) == 0,
	    "sched_getaffinity");
	return CPU_COUNT(&set);
}

/* Probe blocks stay live until both checks are done: a large block may
 * take free pages another arena's heap handed out before (and then
 * counts as that heap's), so a probe freed would serve the next one.
 * The check assumes no heap holds that many free pages handed out before
 * (nothing else here frees a block so big): 256 KiB rather than 64 KiB
 * keeps freed slabs' pages out of the way, at 256 KiB per CPU held. */
#define PROBE_SIZE (256 * KiB)
static void *probes[2 * CPU_SETSIZE];
static int nprobes;

/* Pinned to each CPU of the mask in turn, a large block (arena_choose())
 * comes from arena cpu % narenas (arena 0 if lone), and only from it. */
static void
check_cpu_arenas(int lone)
{
	cpu_set_t all;
	DOC_CHECK(sched_getaffinity(0, sizeof(all), &all) == 0,
	    "sched_getaffinity");
	unsigned long long na = doc_stat("narenas");
	int tried = 0, nonzero = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		DOC_CHECK(sched_setaffinity(0, sizeof(one), &one) == 0,
		    "sched_setaffinity(%d)", cpu);
		DOC_CHECK(sched_getcpu() == cpu, "pinned to %d, running on %d",
		    cpu, sched_getcpu());
		unsigned long long before[256], after;
		char name[64];
		const char *fmt = "arena.%u.nlarge_alloc";
		for (unsigned a = 0; a < na; a++) {
			snprintf(name, sizeof(name), fmt, a);
			before[a] = doc_stat(name);
		}
		void *p = malloc(PROBE_SIZE);
		DOC_CHECK(p != NULL, "malloc");
		probes[nprobes++] = p;
		for (unsigned a = 0; a < na; a++) {
			snprintf(name, sizeof(name), fmt, a);
			after = doc_stat(name);
			unsigned long long want = before[a] +
			    (a == (lone ? 0 : cpu % na) ? 1 : 0);
			DOC_CHECK(after == want, "on CPU %d (%llu arenas%s): "
			    "arena %u served %llu large blocks, want %llu "
			    "(rseq %s)", cpu, na, lone ? ", one thread" : "",
			    a, after - before[a], want - before[a],
			    rseq_registered() ? "on" : "off");
		}
		tried++;
		nonzero += cpu % na != 0;
	}
	DOC_CHECK(sched_setaffinity(0, sizeof(all), &all) == 0,
	    "sched_setaffinity");
	if (nonzero == 0)
		printf("note: every CPU of the mask maps to arena 0; the CPU "
		    "id is not really checked here\n");
	printf("checked %d CPUs\n", tried);
}

static sem_t other_up, other_done;

static void *
other_thread(void *arg)
{
	(void)arg;
	free(malloc(1));	/* a thread with a cache from now on */
	sem_post(&other_up);
	sem_wait(&other_done);
	return NULL;
}

/* Alone, then with a second thread that has a cache. */
static void
check_cpu_arenas_both(void)
{
	check_cpu_arenas(1);
	pthread_t t;
	sem_init(&other_up, 0, 0);
	sem_init(&other_done, 0, 0);
	DOC_CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0,
	    "pthread_create");
	sem_wait(&other_up);
	check_cpu_arenas(0);
	sem_post(&other_done);
	pthread_join(t, NULL);
	while (nprobes > 0)
		free(probes[--nprobes]);
}

static int
child(const char *mode)
{
	if (strcmp(mode, "narenas") == 0) {
		/* The mask was set before exec: before the first malloc. */
		int n = mask_count();
		unsigned long long na = doc_stat("narenas");
		DOC_CHECK(na == (unsigned long long)n, "narenas %llu, the "
		    "affinity mask has %d CPUs", na, n);
		printf("narenas %llu\n", na);
	} else if (strcmp(mode, "cpu_rseq") == 0) {
		/* The glibc this was built against may predate rseq. */
		printf("rseq %s\n", rseq_registered() ? "on" : "absent");
		check_cpu_arenas_both();
	} else if (strcmp(mode, "cpu_fallback") == 0) {
		DOC_CHECK(!rseq_registered(), "glibc.pthread.rseq=0 did not "
		    "turn rseq off: the sched_getcpu path is not tested");
		check_cpu_arenas_both();
	} else {
		DOC_FAIL("unknown mode %s", mode);
	}
	return 0;
}

static char out[8192];
static int pin_cpu;

static void
pin_one(void)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(pin_cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		_exit(3);
}

static void
expect_ok(const char *mode, const char *conf, const char *var,
    doc_setup_fn setup)
{
	int st = doc_run(mode, conf, var, setup, out, sizeof(out));
	if (!doc_exited_ok(st))
		fail_msg("%s (%s, %s): status 0x%x: %s", mode,
		    conf ? conf : "-", var ? var : "-", st, out);
}

/* One CPU in the mask at start-up: one arena.  The whole mask: one per
 * CPU in it. */
static void
test_narenas_follows_mask(void **state)
{
	(void)state;
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (pin_cpu = CPU_SETSIZE - 1; !CPU_ISSET(pin_cpu, &set); pin_cpu--)
		;
	expect_ok("narenas", NULL, NULL, pin_one);
	assert_non_null(strstr(out, "narenas 1\n"));
	expect_ok("narenas", "narenas:0", NULL, NULL);
	char want[32];
	snprintf(want, sizeof(want), "narenas %d\n", CPU_COUNT(&set));
	assert_non_null(strstr(out, want));
	if (CPU_COUNT(&set) == 1)
		print_message("note: one CPU here, the mask is not really "
		    "told apart from the machine\n");
}

/* One arena per possible CPU id, so each CPU has its own. */
static const char *
conf_per_cpu_id(void)
{
	static char conf[32];
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	int last = CPU_SETSIZE - 1;
	while (!CPU_ISSET(last, &set))
		last--;
	snprintf(conf, sizeof(conf), "narenas:%d", last < 255 ? last + 1 : 256);
	return conf;
}

static void
test_cpu_from_rseq(void **state)
{
	(void)state;
	expect_ok("cpu_rseq", conf_per_cpu_id(), NULL, NULL);
}

static void
test_cpu_from_sched_getcpu(void **state)
{
	(void)state;
	expect_ok("cpu_fallback", conf_per_cpu_id(),
	    "GLIBC_TUNABLES=glibc.pthread.rseq=0", NULL);
}

int
main(int argc, char **argv)
{
	/* Slab blocks from the first malloc on, not the nursery's. */
	nursery_close();
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_narenas_follows_mask),
		cmocka_unit_test(test_cpu_from_rseq),
		cmocka_unit_test(test_cpu_from_sched_getcpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
