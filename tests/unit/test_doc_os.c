/*
 * What pcmalloc promises about its dealings with the OS:
 * - a huge request the OS refuses is retried after every arena's free
 *   regions are released (docs/design.md, "Huge blocks"): under RLIMIT_AS,
 *   with the address space held by freed arena memory, a huge block that
 *   only fits once that memory is unmapped still succeeds, as a huge
 *   mapping;
 * - thp:always / thp:never mark arena regions MADV_HUGEPAGE /
 *   MADV_NOHUGEPAGE, visible in /proc/self/smaps as VmFlags hg / nh
 *   (docs/options.md, thp), and thp:default marks neither.
 * Catches: a lost release-and-retry (the request fails, or is served from
 * the arena instead), and a thp option that never reaches madvise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <cmocka.h>
#include "skip_policy.h"

#include "doc_common.h"
#include "nursery.h"

/* ---- release and retry --------------------------------------------------- */

#define BUDGET ((size_t)320 << 20)
#define HUGE_REQ ((size_t)160 << 20)
#define MAXBLK 1024

static size_t
vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	DOC_CHECK(f != NULL && fscanf(f, "%lu", &size) == 1, "statm");
	fclose(f);
	return (size_t)size * (size_t)sysconf(_SC_PAGESIZE);
}

/* What the arenas' page heaps map, all together: 1 MiB blocks come from
 * arena 0's, and from the others' free pages once arena 0's cannot grow. */
static unsigned long long
arenas_mapped(void)
{
	unsigned long long sum = 0, n = doc_stat("narenas");
	for (unsigned long long i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "arena.%llu.mapped", i);
		sum += doc_stat(name);
	}
	return sum;
}

static void
child_huge_retry(void)
{
	static void *blk[MAXBLK];
	/* Everything that may allocate for stdio first. */
	printf("filling\n");
	fflush(stdout);
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = vm_size() + BUDGET;
	DOC_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
	/* Fill the address space with 1 MiB blocks. */
	size_t n = 0;
	while (n < MAXBLK) {
		void *p = malloc(MiB);
		if (p == NULL)
			break;
		*(volatile char *)p = 1;
		blk[n++] = p;
	}
	DOC_CHECK(n > 200 && n < MAXBLK, "%zu MiB before ENOMEM", n);
	for (size_t i = 0; i < n; i++)
		free(blk[i]);
	/* decay_ms is an hour: the free regions stay mapped. */
	unsigned long long mapped0 = arenas_mapped();
	DOC_CHECK(mapped0 >= n * MiB, "arenas map %llu MiB, %zu were used",
	    mapped0 >> 20, n);
	/* The request does not fit beside them. */
	void *m = mmap(NULL, HUGE_REQ, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m != MAP_FAILED)
		DOC_FAIL("%zu MiB still fit beside the free arena regions: "
		    "the retry is not tested", HUGE_REQ >> 20);
	errno = 0;
	char *p = malloc(HUGE_REQ);
	DOC_CHECK(p != NULL, "malloc(%zu MiB) after release: NULL, errno %d",
	    HUGE_REQ >> 20, errno);
	unsigned long long mapped1 = arenas_mapped();
	DOC_CHECK(doc_stat("nhuge") == 1 && doc_stat("huge") >= HUGE_REQ,
	    "not a huge mapping: nhuge %llu, huge %llu MiB",
	    doc_stat("nhuge"), doc_stat("huge") >> 20);
	DOC_CHECK(mapped1 + HUGE_REQ <= mapped0, "arena regions %llu -> "
	    "%llu MiB: not released", mapped0 >> 20, mapped1 >> 20);
	p[0] = 1;
	p[HUGE_REQ - 1] = 2;
	free(p);
	DOC_CHECK(doc_stat("nhuge") == 0, "huge block not unmapped");
	/* The heap still works at the limit. */
	for (size_t i = 0; i < 64; i++) {
		blk[i] = malloc(i * 5000 + 1);
		DOC_CHECK(blk[i] != NULL, "malloc after the retry");
	}
	for (size_t i = 0; i < 64; i++)
		free(blk[i]);
	DOC_CHECK(pc_check() == 0, "pc_check found problems");
}

/* ---- THP flags ----------------------------------------------------------- */

/* VmFlags and THPeligible of the mapping holding p. */
static void
smaps_of(const void *p, char *flags, size_t cap, int *eligible)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	DOC_CHECK(f != NULL, "open /proc/self/smaps: %s", strerror(errno));
	char line[512];
	int in = 0, found = 0;
	*eligible = -1;
	flags[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') - line < 20) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			found |= in;
			continue;
		}
		if (!in)
			continue;
		if (strncmp(line, "VmFlags:", 8) == 0)
			snprintf(flags, cap, "%s", line + 8);
		else if (strncmp(line, "THPeligible:", 12) == 0)
			*eligible = atoi(line + 12);
	}
	fclose(f);
	DOC_CHECK(found, "no mapping holds %p", p);
	DOC_CHECK(flags[0] != '\0', "no VmFlags for %p", p);
}

static int
has_flag(const char *flags, const char *f)
{
	size_t n = strlen(f);
	for (const char *s = flags; (s = strstr(s, f)) != NULL; s += n)
		if ((s == flags || s[-1] == ' ') &&
		    (s[n] == ' ' || s[n] == '\n' || s[n] == '\0'))
			return 1;
	return 0;
}

static void
child_thp(int mode)
{
	/* A small block (slab) and a large one: both in arena regions. */
	void *blocks[2] = { malloc(100), malloc(200 * KiB) };
	for (int i = 0; i < 2; i++) {
		char flags[256];
		int eligible;
		smaps_of(blocks[i], flags, sizeof(flags), &eligible);
		int hg = has_flag(flags, "hg"), nh = has_flag(flags, "nh");
		printf("%p: VmFlags:%s THPeligible %d\n", blocks[i], flags,
		    eligible);
		if (mode == 1)
			DOC_CHECK(hg && !nh, "thp:always, region flags%s",
			    flags);
		else if (mode == 2)
			DOC_CHECK(nh && !hg && eligible <= 0, "thp:never, "
			    "region flags%s THPeligible %d", flags, eligible);
		else
			DOC_CHECK(!hg && !nh, "thp:default, region flags%s",
			    flags);
		free(blocks[i]);
	}
}

static int
child(const char *mode)
{
	if (strcmp(mode, "huge_retry") == 0)
		child_huge_retry();
	else if (strcmp(mode, "thp_default") == 0)
		child_thp(0);
	else if (strcmp(mode, "thp_always") == 0)
		child_thp(1);
	else if (strcmp(mode, "thp_never") == 0)
		child_thp(2);
	else
		DOC_FAIL("unknown mode %s", mode);
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

static char out[8192];

static void
expect_ok(const char *mode, const char *conf)
{
	int st = doc_run(mode, conf, NULL, NULL, out, sizeof(out));
	if (!doc_exited_ok(st))
		fail_msg("%s (%s): status 0x%x: %s", mode, conf, st, out);
}

static void
test_huge_release_and_retry(void **state)
{
	(void)state;
	expect_ok("huge_retry", "decay_ms:3600000,background_thread:off");
}

static void
test_thp_in_smaps(void **state)
{
	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0) {
		SKIP_BECAUSE("this kernel has no transparent huge pages "
		    "(/sys/kernel/mm/transparent_hugepage missing)");
	}
	expect_ok("thp_always", "thp:always");
	expect_ok("thp_never", "thp:never");
	expect_ok("thp_default", "thp:default");
}

int
main(int argc, char **argv)
{
	/* Slab blocks from the first malloc on, not the nursery's. */
	nursery_close();
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_release_and_retry),
		cmocka_unit_test(test_thp_in_smaps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
