/* Memory return and statistics: RSS falls after malloc_trim and after the
 * decay time (background thread), statistics add up, a bad PCMALLOC_CONF
 * is reported.  Would catch purging that does nothing, counters that
 * drift, and a config parser that crashes or stays silent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <errno.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "run_self.h"

#include "pcmalloc.h"

static size_t
rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned long long
stat(const char *name)
{
	unsigned long long v = 0;
	assert_int_equal(pc_stat_get(name, &v), 0);
	return v;
}

/* Allocate `total` bytes in blocks of `size`, touch them, free them all;
 * returns the RSS before the frees. */
static size_t
churn(size_t total, size_t size)
{
	size_t n = total / size;
	void **v = malloc(n * sizeof(void *));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = malloc(size);
		assert_non_null(v[i]);
		memset(v[i], 0x5a, size);
	}
	size_t peak = rss_bytes();
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return peak;
}

static void
test_trim_returns_memory(void **state)
{
	(void)state;
	size_t sizes[] = { 64, 100 * 1024, 1 << 20 };
	for (size_t k = 0; k < 3; k++) {
		malloc_trim(0);
		size_t before = rss_bytes();
		assert_true(churn((size_t)256 << 20, sizes[k]) >
		    before + (200u << 20));
		malloc_trim(0);
		size_t after = rss_bytes();
		/* Within 5% of the churned amount of where it started. */
		if (after > before + (13u << 20))
			fail_msg("size %zu: rss %zu MiB before, %zu after trim",
			    sizes[k], before >> 20, after >> 20);
		assert_int_equal(stat("dirty"), 0);
	}
}

static void
test_counters_add_up(void **state)
{
	(void)state;
	unsigned long long a0 = stat("allocated");
	void *volatile big = malloc(200000);
	void *volatile huge = malloc((size_t)80 << 20);
	assert_true(stat("allocated") >= a0 + 200000 + ((size_t)80 << 20));
	assert_true(stat("huge") >= ((size_t)80 << 20));
	assert_true(stat("nhuge") >= 1);
	assert_true(stat("mapped") >= stat("active"));
	assert_true(stat("active") >= stat("allocated") - stat("huge") - 0);
	free(big);
	free(huge);
	assert_true(stat("allocated") <= a0 + 64 * 1024);
	unsigned long long v;
	assert_int_equal(pc_stat_get("no.such.stat", &v), ENOENT);
	assert_int_equal(pc_stat_get("arena.99999.mapped", &v), ENOENT);
	assert_int_equal(pc_stat_get("arena.0.mapped", &v), 0);
	assert_int_equal(pc_stat_get(NULL, &v), EINVAL);
}

static size_t printed;
static void
count_cb(void *opaque, const char *text)
{
	(void)opaque;
	printed += strlen(text);
}

static void
test_stats_print(void **state)
{
	(void)state;
	printed = 0;
	pc_stats_print(count_cb, NULL);
	assert_true(printed > 200);
}

static void
test_bad_conf_reported(void **state)
{
	(void)state;
	char err[4096];
	int status;
	run_self("alloc", "bogus:1,narenas:lots,decay_ms:5", &status, err,
	    sizeof(err));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(err, "pcmalloc: PCMALLOC_CONF: unknown option"));
	assert_non_null(strstr(err, "bogus"));
	assert_non_null(strstr(err, "bad value"));
}

static void
test_decay_background(void **state)
{
	(void)state;
	char err[4096];
	int status;
	run_self("decay", "decay_ms:50,background_thread:true", &status, err,
	    sizeof(err));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("decay child failed: %s", err);
}

/* Default background_thread:auto: a heap that frees 128 MiB starts the
 * thread, and the memory goes back while the program sleeps. */
static void
test_decay_auto(void **state)
{
	(void)state;
	char err[4096];
	int status;
	run_self("decay", "decay_ms:50", &status, err, sizeof(err));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("auto decay child failed: %s", err);
}

static void
test_stats_print_at_exit(void **state)
{
	(void)state;
	char err[8192];
	int status;
	run_self("alloc", "stats_print:true", &status, err, sizeof(err));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(err, "pcmalloc 0.1.0 statistics"));
	assert_non_null(strstr(err, "arena 0:"));
}

static int
child(const char *mode)
{
	if (strcmp(mode, "alloc") == 0) {
		churn(1 << 20, 100);
		return 0;
	}
	/* decay: dirty pages must go back without any further call into
	 * the allocator. */
	size_t before = rss_bytes();
	churn((size_t)128 << 20, 200000);
	for (int i = 0; i < 200; i++) {
		usleep(50000);
		if (rss_bytes() < before + (8u << 20))
			return 0;
	}
	fprintf(stderr, "rss stayed at %zu MiB (started at %zu)\n",
	    rss_bytes() >> 20, before >> 20);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim_returns_memory),
		cmocka_unit_test(test_counters_add_up),
		cmocka_unit_test(test_stats_print),
		cmocka_unit_test(test_bad_conf_reported),
		cmocka_unit_test(test_decay_background),
		cmocka_unit_test(test_decay_auto),
		cmocka_unit_test(test_stats_print_at_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
