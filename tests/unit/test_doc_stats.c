/*
 * tcache_max and the memory figures (docs/options.md, include/pcmalloc.h):
 * - tcache_max is the largest size class a thread caches, 32768 by
 *   default; classes above it bypass the cache, values between classes
 *   round down (tcache_max:1000 caches up to 896), 0 caches nothing.
 *   Checked with the "tcache" statistic (bytes in thread caches) after a
 *   malloc/free pair;
 * - pc_stat_get("resident") and mallinfo2 report real figures: touching
 *   64 MiB raises resident by as much (as the kernel's RSS does), freeing
 *   moves it to the free fields, trim gives it back, a huge block shows
 *   in hblks/hblkhd.
 * Catches: caching classes above tcache_max (or none below), a default
 * that differs from the docs, statistics that stay flat or report zeros.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <malloc.h>
#include <cmocka.h>

#include "doc_common.h"
#include "nursery.h"

static void *volatile sink;

/* DOC_SPEC="size:cached,size:cached,...": for each, a malloc/free pair of
 * that size leaves the block in this thread's cache (1) or not (0). */
static void
child_cache(void)
{
	const char *spec = getenv("DOC_SPEC");
	DOC_CHECK(spec != NULL, "DOC_SPEC unset");
	while (*spec != '\0') {
		unsigned long size;
		int cached, len;
		DOC_CHECK(sscanf(spec, "%lu:%d%n", &size, &cached, &len) == 2,
		    "bad DOC_SPEC at %s", spec);
		spec += len + (spec[len] == ',');
		pc_trim();	/* empties this thread's cache */
		DOC_CHECK(doc_stat("tcache") == 0, "cache not empty after "
		    "trim: %llu", doc_stat("tcache"));
		for (int i = 0; i < 20; i++) {
			sink = malloc(size);
			DOC_CHECK(sink != NULL, "malloc(%lu)", size);
			free(sink);
		}
		unsigned long long t = doc_stat("tcache");
		if (cached)
			DOC_CHECK(t >= size, "malloc/free of %lu bytes: the "
			    "cache holds %llu bytes, want the block cached",
			    size, t);
		else
			DOC_CHECK(t == 0, "malloc/free of %lu bytes: the cache "
			    "holds %llu bytes, want it bypassed", size, t);
		printf("%lu: %s\n", size, t ? "cached" : "not cached");
	}
	pc_stats_print(NULL, NULL);
}

static struct mallinfo2
mi(void)
{
	return mallinfo2();
}

static void
child_figures(void)
{
	enum { N = 4096, SZ = 16 * 1024 };	/* 64 MiB of small blocks */
	static char *v[N];
	const size_t total = (size_t)N * SZ, slack = 4 * MiB;
	struct mallinfo2 m0 = mi();
	unsigned long long r0 = doc_stat("resident");
	size_t rss0 = doc_rss();
	for (int i = 0; i < N; i++) {
		v[i] = malloc(SZ);
		DOC_CHECK(v[i] != NULL, "malloc");
		memset(v[i], 1, SZ);
	}
	struct mallinfo2 m1 = mi();
	unsigned long long r1 = doc_stat("resident");
	size_t rss1 = doc_rss();
	printf("resident %llu -> %llu MiB, rss %zu -> %zu MiB\n", r0 >> 20,
	    r1 >> 20, rss0 >> 20, rss1 >> 20);
	DOC_CHECK(rss1 >= rss0 + total - slack, "the kernel saw RSS grow by "
	    "%zu MiB only", (rss1 - rss0) >> 20);
	DOC_CHECK(r1 >= r0 + total - slack, "resident grew by %llu MiB after "
	    "touching %zu MiB", (r1 - r0) >> 20, total >> 20);
	DOC_CHECK(r1 - r0 <= rss1 - rss0 + 16 * MiB, "resident grew by %llu "
	    "MiB, RSS by %zu MiB", (r1 - r0) >> 20, (rss1 - rss0) >> 20);
	DOC_CHECK(m1.uordblks >= m0.uordblks + total, "mallinfo2 uordblks "
	    "%zu -> %zu", m0.uordblks, m1.uordblks);
	DOC_CHECK(m1.arena >= m0.arena + total, "mallinfo2 arena %zu -> %zu",
	    m0.arena, m1.arena);

	for (int i = 0; i < N; i++)
		free(v[i]);
	/* decay_ms is ten minutes (a run of 32 MiB or more goes a second
	 * after its last free, later than this): the pages stay dirty, and
	 * free. */
	struct mallinfo2 m2 = mi();
	DOC_CHECK(m2.uordblks + total - slack <= m1.uordblks, "mallinfo2 "
	    "uordblks %zu -> %zu after freeing %zu MiB", m1.uordblks,
	    m2.uordblks, total >> 20);
	DOC_CHECK(m2.fordblks >= m1.fordblks + total - slack, "mallinfo2 "
	    "fordblks %zu -> %zu after freeing", m1.fordblks, m2.fordblks);
	DOC_CHECK(m2.keepcost >= m1.keepcost + total - slack, "mallinfo2 "
	    "keepcost (dirty) %zu -> %zu after freeing", m1.keepcost,
	    m2.keepcost);

	pc_trim();
	unsigned long long r3 = doc_stat("resident");
	size_t rss3 = doc_rss();
	printf("after trim: resident %llu MiB, rss %zu MiB\n", r3 >> 20,
	    rss3 >> 20);
	DOC_CHECK(r3 + total - slack <= r1, "resident %llu -> %llu MiB after "
	    "trim", r1 >> 20, r3 >> 20);
	DOC_CHECK(rss3 + total - slack <= rss1, "the kernel's RSS %zu -> %zu "
	    "MiB after trim", rss1 >> 20, rss3 >> 20);
	struct mallinfo2 m3 = mi();
	DOC_CHECK(m3.keepcost == 0, "dirty pages left after trim");

	/* A huge block: its own mapping, counted in hblks/hblkhd. */
	const size_t hsz = 80 * MiB;
	char *h = malloc(hsz);
	DOC_CHECK(h != NULL, "malloc(80 MiB)");
	memset(h, 2, hsz);
	struct mallinfo2 m4 = mi();
	unsigned long long r4 = doc_stat("resident");
	DOC_CHECK(m4.hblks == m3.hblks + 1, "hblks %zu -> %zu", m3.hblks,
	    m4.hblks);
	DOC_CHECK(m4.hblkhd >= m3.hblkhd + hsz, "hblkhd %zu -> %zu",
	    m3.hblkhd, m4.hblkhd);
	DOC_CHECK(m4.uordblks >= m3.uordblks + hsz, "uordblks %zu -> %zu",
	    m3.uordblks, m4.uordblks);
	DOC_CHECK(r4 >= r3 + hsz, "resident %llu -> %llu MiB with an 80 MiB "
	    "block", r3 >> 20, r4 >> 20);
	free(h);
	struct mallinfo2 m5 = mi();
	DOC_CHECK(m5.hblks == m3.hblks && m5.hblkhd == m3.hblkhd,
	    "huge block still counted after free");
}

static int
child(const char *mode)
{
	if (strcmp(mode, "cache") == 0)
		child_cache();
	else if (strcmp(mode, "figures") == 0)
		child_figures();
	else
		DOC_FAIL("unknown mode %s", mode);
	return 0;
}

static char out[16384];

static void
expect_ok(const char *mode, const char *conf, const char *var)
{
	int st = doc_run(mode, conf, var, NULL, out, sizeof(out));
	if (!doc_exited_ok(st))
		fail_msg("%s (%s, %s): status 0x%x: %s", mode,
		    conf ? conf : "-", var ? var : "-", st, out);
}

/*
 * The cache children run without guarded sampling: what a sample's stack
 * capture allocates (the unwinder, the main thread's stack bounds) is
 * freed into the cache, and a sample that fired during a pair that must
 * bypass it failed the check (CI, clang Release: "the cache holds 4208
 * bytes"; 5 runs in 20 with guard_sample:65536, and 736 bytes with
 * libgcc_s preloaded).
 */
#define NO_SAMPLES "guard_sample:0"

/* The default, as docs/options.md says: 32768, the largest small class
 * (bigger blocks are never cached). */
static void
test_tcache_max_default(void **state)
{
	(void)state;
	expect_ok("cache", NO_SAMPLES, "DOC_SPEC=16:1,32768:1,32769:0");
	if (strstr(out, " tcache_max 32768 ") == NULL)
		fail_msg("default tcache_max is not 32768: %s", out);
}

static void
test_tcache_max_set(void **state)
{
	(void)state;
	expect_ok("cache", "tcache_max:1024," NO_SAMPLES,
	    "DOC_SPEC=16:1,1024:1,1025:0,2048:0,32768:0");
	assert_non_null(strstr(out, " tcache_max 1024 "));
	/* Between classes: rounds down to 896. */
	expect_ok("cache", "tcache_max:1000," NO_SAMPLES,
	    "DOC_SPEC=896:1,897:0,1024:0");
	expect_ok("cache", "tcache_max:0," NO_SAMPLES,
	    "DOC_SPEC=16:0,1024:0,32768:0");
}

static void
test_resident_and_mallinfo2(void **state)
{
	(void)state;
	expect_ok("figures", "decay_ms:600000,background_thread:off", NULL);
}

int
main(int argc, char **argv)
{
	/* Slab blocks from the first malloc on, not the nursery's. */
	nursery_close();
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcache_max_default),
		cmocka_unit_test(test_tcache_max_set),
		cmocka_unit_test(test_resident_and_mallinfo2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
