/*
 * mallinfo2/mallinfo, mallopt, malloc_trim, the __libc_* aliases and
 * foreign-pointer frees.  Catches: garbage or uninitialised statistics,
 * mallopt/malloc_trim crashing or breaking later allocations (e.g. trim
 * unmapping memory still in use or cached), __libc_* aliases still going to
 * glibc (mixing heaps), and free() of a pointer pcmalloc never handed out
 * (static, stack, mmap'ed) crashing or corrupting the heap instead of being
 * reported with a "pcmalloc: " line on stderr and ignored.
 */
#include "api_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <pthread.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void
test_runs_on_pcmalloc(void **state)
{
	(void)state;
	pc_check_active();
}

/*
 * Calls made from a constructor, before main and (most likely) before the
 * allocator's first malloc: the query/maintenance entry points must work
 * on an uninitialised allocator, and the first allocation being an aligned
 * one must work too.
 */
static struct {
	int ran;
	size_t usable_null;
	int trim_rc, mallopt_rc, pc_trim_rc;
	struct mallinfo2 mi;
	int errno_after_free_null;
	void *first;	/* posix_memalign(4096, 100): the first allocation */
	int first_rc;
	void *second;
} early;

__attribute__((constructor(101))) static void
early_calls(void)
{
	errno = 55;
	free(NULL);
	early.errno_after_free_null = errno;
	early.usable_null = malloc_usable_size(NULL);
	early.mi = mallinfo2();
	early.trim_rc = malloc_trim(0);
	early.pc_trim_rc = pc_trim();
	early.mallopt_rc = mallopt(M_ARENA_MAX, 4);
	early.first_rc = posix_memalign(&early.first, 4096, 100);
	early.second = malloc(10);
	early.ran = 1;
}

static void
test_before_main(void **state)
{
	(void)state;
	assert_int_equal(early.ran, 1);
	assert_int_equal(early.errno_after_free_null, 55);
	assert_int_equal(early.usable_null, 0);
	/* Nothing was allocated yet, so nothing can be given back; mallopt
	 * accepts every parameter (glibc's "success" is 1). */
	assert_int_equal(early.trim_rc, 0);
	assert_int_equal(early.pc_trim_rc, 0);
	assert_int_equal(early.mallopt_rc, 1);
	assert_true(early.mi.uordblks <= early.mi.arena + early.mi.hblkhd);
	assert_int_equal(early.first_rc, 0);
	assert_non_null(early.first);
	assert_aligned(early.first, 4096);
	assert_true(pc_malloc_usable_size(early.first) >= 100);
	memset(early.first, 1, 100);
	assert_non_null(early.second);
	assert_true(pc_malloc_usable_size(early.second) >= 10);
	free(early.first);
	free(early.second);
}

static void
check_mallinfo2_sane(void)
{
	struct mallinfo2 mi = mallinfo2();
	const size_t lim = (size_t)1 << 46;	/* 64 TiB: nothing real is bigger */
	size_t f[] = { mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd,
	    mi.usmblks, mi.fsmblks, mi.uordblks, mi.fordblks, mi.keepcost };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] > lim)
			fail_msg("mallinfo2 field %zu is garbage: %zu", i, f[i]);
	if (mi.uordblks > mi.arena + mi.hblkhd)
		fail_msg("mallinfo2: uordblks %zu > arena %zu + hblkhd %zu",
		    mi.uordblks, mi.arena, mi.hblkhd);
}

/*
 * mallinfo2 reports real figures: uordblks (bytes in use) grows by at least
 * what was allocated and falls back when it is freed; a huge block shows in
 * hblks/hblkhd.  pc_trim first empties this thread's cache, whose objects
 * count as in use, so the two readings after a trim are comparable.
 */
enum { MI_N = 1000 };
#define MI_HUGE (96 * MiB)	/* >= PC_HUGE_MIN: mapped on its own */

static void
test_mallinfo2(void **state)
{
	(void)state;
	check_mallinfo2_sane();
	static void *v[MI_N];
	/* A huge block freed first: its kept mapping may start the purging
	 * thread (bgthread.c), whose own blocks would otherwise count as in
	 * use after everything here is freed. */
	free(malloc(opaque(MI_HUGE)));
	pc_trim();
	struct mallinfo2 m0 = mallinfo2();
	size_t want = 0;
	for (int i = 0; i < MI_N; i++) {
		size_t n = (size_t)i * 37;
		assert_non_null(v[i] = malloc(opaque(n)));
		want += n;
	}
	void *big = malloc(opaque(20 * MiB));
	assert_non_null(big);
	memset(big, 1, 20 * MiB);
	want += 20 * MiB;
	void *huge = malloc(opaque(MI_HUGE));
	assert_non_null(huge);
	touch_pages(huge, 64 * KiB);
	check_mallinfo2_sane();
	struct mallinfo2 m1 = mallinfo2();
	if (m1.uordblks < m0.uordblks + want + MI_HUGE)
		fail_msg("mallinfo2: uordblks %zu -> %zu with %zu bytes more "
		    "in use", m0.uordblks, m1.uordblks, want + MI_HUGE);
	assert_int_equal(m1.hblks, m0.hblks + 1);
	assert_true(m1.hblkhd >= m0.hblkhd + MI_HUGE);
	free(huge);
	struct mallinfo2 m2 = mallinfo2();
	assert_int_equal(m2.hblks, m0.hblks);
	assert_int_equal(m2.hblkhd, m0.hblkhd);
	assert_true(m2.uordblks <= m1.uordblks - MI_HUGE);
	for (int i = 0; i < MI_N; i++)
		free(v[i]);
	free(big);
	pc_trim();
	check_mallinfo2_sane();
	struct mallinfo2 m3 = mallinfo2();
	if (m3.uordblks > m0.uordblks)
		fail_msg("mallinfo2: uordblks %zu before, %zu after freeing "
		    "everything", m0.uordblks, m3.uordblks);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/* The int-sized mallinfo carries the same figures as mallinfo2. */
static void
test_mallinfo_legacy(void **state)
{
	(void)state;
	pc_trim();
	struct mallinfo m0 = mallinfo();
	void *p = malloc(opaque(4 * MiB));
	assert_non_null(p);
	void *huge = malloc(opaque(MI_HUGE));
	assert_non_null(huge);
	struct mallinfo m1 = mallinfo();
	struct mallinfo2 m2 = mallinfo2();
	assert_true((size_t)m1.uordblks >=
	    (size_t)m0.uordblks + 4 * MiB + MI_HUGE);
	assert_int_equal(m1.uordblks, m2.uordblks);
	assert_int_equal(m1.arena, m2.arena);
	assert_int_equal(m1.hblks, m0.hblks + 1);
	assert_true((size_t)m1.hblkhd >= (size_t)m0.hblkhd + MI_HUGE);
	assert_true((size_t)m1.arena + (size_t)m1.hblkhd >=
	    (size_t)m1.uordblks);
	free(huge);
	free(p);
	pc_trim();
	struct mallinfo m3 = mallinfo();
	assert_true(m3.uordblks <= m0.uordblks);
	assert_int_equal(m3.hblks, m0.hblks);
}
#pragma GCC diagnostic pop

static void
exercise_heap(void)
{
	enum { N = 2000 };
	static void *v[N];
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 97) * 41 + (i % 500 == 0 ? 300 * KiB : 0);
		v[i] = malloc(opaque(n));
		assert_non_null(v[i]);
		pat_fill(v[i], n, (uintptr_t)i);
	}
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 97) * 41 + (i % 500 == 0 ? 300 * KiB : 0);
		assert_pattern(v[i], n, (uintptr_t)i);
		free(v[i]);
	}
}

static void
test_mallopt(void **state)
{
	(void)state;
	static const int params[][2] = {
		{ M_MXFAST, 64 }, { M_TRIM_THRESHOLD, 128 * 1024 },
		{ M_TOP_PAD, 0 }, { M_MMAP_THRESHOLD, 128 * 1024 },
		{ M_MMAP_MAX, 65536 }, { M_CHECK_ACTION, 3 },
		{ M_PERTURB, 0 }, { M_ARENA_TEST, 8 }, { M_ARENA_MAX, 8 },
		{ 12345, 1 }, { -12345, 1 },
	};
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		/* Accepted and ignored, unknown parameters too. */
		int rc = mallopt(params[i][0], params[i][1]);
		if (rc != 1)
			fail_msg("mallopt(%d, %d) = %d", params[i][0],
			    params[i][1], rc);
		exercise_heap();
	}
}

static void
test_malloc_trim(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		/* lots of memory in many size classes, all freed */
		enum { N = 20000 };
		void **v = malloc(N * sizeof(*v));
		assert_non_null(v);
		for (int i = 0; i < N; i++) {
			v[i] = malloc(opaque((size_t)(i % 300) * 13 + 1));
			assert_non_null(v[i]);
			memset(v[i], 0xab, (size_t)(i % 300) * 13 + 1);
		}
		void *big[8];
		for (int i = 0; i < 8; i++) {
			big[i] = malloc(opaque((size_t)(i + 1) * 700 * KiB));
			assert_non_null(big[i]);
			memset(big[i], 1, (size_t)(i + 1) * 700 * KiB);
		}
		/* keep a few alive across the trim */
		for (int i = 0; i < N; i++)
			if (i % 1000 != 0)
				free(v[i]);
		for (int i = 0; i < 8; i += 2)
			free(big[i]);
		/* Freed pages stay dirty for decay_ms (10 s by default; a
		 * run of 32 MiB or more for a second after its last free),
		 * longer than this takes: trim has something to give back,
		 * then nothing, whatever its pad. */
		unsigned long long dirty = 0;
		assert_int_equal(pc_stat_get("dirty", &dirty), 0);
		assert_true(dirty > 0);
		assert_int_equal(malloc_trim(0), 1);
		assert_int_equal(pc_stat_get("dirty", &dirty), 0);
		assert_int_equal(dirty, 0);
		assert_int_equal(malloc_trim(opaque(round == 2 ? SIZE_MAX :
		    4096)), 0);
		for (int i = 0; i < N; i += 1000) {
			unsigned char *b = v[i];
			for (size_t j = 0; j < (size_t)(i % 300) * 13 + 1; j++)
				assert_int_equal(b[j], 0xab);
			free(v[i]);
		}
		for (int i = 1; i < 8; i += 2) {
			unsigned char *b = big[i];
			for (size_t j = 0; j < (size_t)(i + 1) * 700 * KiB; j += 511)
				assert_int_equal(b[j], 1);
			free(big[i]);
		}
		free(v);
		exercise_heap();	/* frees 300 KiB blocks: dirty pages */
		assert_int_equal(pc_trim(), 1);
		assert_int_equal(pc_trim(), 0);
		exercise_heap();
	}
}

static void
test_libc_aliases(void **state)
{
	(void)state;
	unsigned char *p = __libc_malloc(opaque(100));
	assert_non_null(p);
	assert_true(pc_malloc_usable_size(p) >= 100);
	memset(p, 7, 100);
	p = __libc_realloc(p, opaque(100000));
	assert_non_null(p);
	assert_true(pc_malloc_usable_size(p) >= 100000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], 7);
	free(p);	/* mixed: __libc_* then free */

	unsigned char *c = __libc_calloc(opaque(100), opaque(10));
	assert_non_null(c);
	assert_true(pc_malloc_usable_size(c) >= 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(c[i], 0);
	pc_free(c);

	void *m = __libc_memalign(opaque(4096), opaque(5000));
	assert_non_null(m);
	assert_aligned(m, 4096);
	assert_true(pc_malloc_usable_size(m) >= 5000);
	__libc_free(m);

	void *q = malloc(opaque(77));
	assert_non_null(q);
	__libc_free(q);
	errno = 99;
	__libc_free(NULL);
	assert_int_equal(errno, 99);
}

/* ---- foreign pointers ------------------------------------------------ */

static char static_array[256] __attribute__((aligned(64)));

enum foreign_kind { F_STATIC, F_STATIC_MID, F_STACK, F_MMAP, F_MMAP_MID };

static void
child_heap_works(void)
{
	/* Exit codes: 10+ means the heap is broken after the foreign free. */
	for (int r = 0; r < 1000; r++) {
		size_t n = (size_t)(r % 50) * 100 + 1;
		unsigned char *p = malloc(n);
		if (p == NULL)
			_exit(10);
		memset(p, 0x5c, n);
		unsigned char *q = realloc(p, n * 2);
		if (q == NULL)
			_exit(11);
		for (size_t j = 0; j < n; j++)
			if (q[j] != 0x5c)
				_exit(12);
		free(q);
	}
	void *big = malloc(20 << 20);
	if (big == NULL)
		_exit(13);
	memset(big, 1, 20 << 20);
	free(big);
}

static void
do_foreign_free(enum foreign_kind kind)
{
	char stack_var[64];
	void *page;
	switch (kind) {
	case F_STATIC:
		free(opaque_ptr(static_array));
		break;
	case F_STATIC_MID:
		free(opaque_ptr(static_array + 48));
		break;
	case F_STACK:
		memset(stack_var, 0, sizeof(stack_var));
		free(opaque_ptr(stack_var));
		break;
	case F_MMAP:
	case F_MMAP_MID:
		page = mmap(NULL, 1 << 21, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			_exit(20);
		memset(page, 0x33, 1 << 21);
		free(opaque_ptr((char *)page + (kind == F_MMAP ? 0 : 4096 + 16)));
		/* the mapping must be left alone */
		for (size_t i = 0; i < (1u << 21); i += 4096)
			if (((unsigned char *)page)[i] != 0x33)
				_exit(21);
		break;
	}
}

static void
run_foreign(enum foreign_kind kind)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_default_signals();
		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		/* something live in the heap around the foreign free */
		void *keep = malloc(100);
		if (keep == NULL)
			_exit(30);
		memset(keep, 0x71, 100);
		do_foreign_free(kind);
		for (int i = 0; i < 100; i++)
			if (((unsigned char *)keep)[i] != 0x71)
				_exit(31);
		child_heap_works();
		free(keep);
		_exit(0);
	}
	close(fds[1]);
	char buf[8192];
	size_t len = 0;
	ssize_t r;
	while ((r = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("foreign free kind %d: child %s %d; stderr: %s", kind,
		    WIFEXITED(status) ? "exited" : "killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    buf);
	/* a line starting with "pcmalloc: " */
	int found = 0;
	for (char *line = buf; line && *line; ) {
		if (strncmp(line, "pcmalloc: ", 10) == 0)
			found = 1;
		char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
	if (!found)
		fail_msg("foreign free kind %d not reported; stderr: '%s'",
		    kind, buf);
	if (strstr(buf, "pcmalloc: fatal") != NULL)
		fail_msg("foreign free kind %d reported as fatal: %s", kind, buf);
}

static void
test_foreign_static(void **state)
{
	(void)state;
	run_foreign(F_STATIC);
	run_foreign(F_STATIC_MID);
	exercise_heap();
}

static void
test_foreign_stack(void **state)
{
	(void)state;
	run_foreign(F_STACK);
	exercise_heap();
}

static void
test_foreign_mmap(void **state)
{
	(void)state;
	run_foreign(F_MMAP);
	run_foreign(F_MMAP_MID);
	exercise_heap();
}

/* libc-internal allocations (stdio buffers, strdup, getline, asprintf)
 * come from pcmalloc and can be freed by it. */
static void
test_libc_internal_allocations(void **state)
{
	(void)state;
	char *s = NULL;
	assert_true(asprintf(&s, "%0*d", 5000, 7) == 5000);
	assert_true(pc_malloc_usable_size(s) >= 5001);
	free(s);
	FILE *f = tmpfile();
	assert_non_null(f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "line %d %0*d\n", i, i % 300, i);
	rewind(f);
	char *line = NULL;
	size_t cap = 0;
	int lines = 0;
	while (getline(&line, &cap, f) > 0)
		lines++;
	assert_int_equal(lines, 1000);
	assert_true(pc_malloc_usable_size(line) >= cap);
	free(line);
	fclose(f);
}

/* malloc_info reports pcmalloc's figures as glibc-shaped XML; a bad
 * option is EINVAL; malloc_stats writes pcmalloc's report to stderr. */
static void
test_malloc_info(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	void *volatile p = malloc(5000);
	assert_int_equal(malloc_info(0, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "<malloc version=\"pcmalloc"));
	assert_non_null(strstr(buf, "</malloc>"));
	free(buf);
	errno = 0;
	assert_int_equal(malloc_info(1, stdout), -1);
	assert_int_equal(errno, EINVAL);

	/* malloc_stats: stderr (fd 2) captured in a temporary file. */
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(tmp), 2), 2);
	unsigned long long allocated = 0;
	int rc = pc_stat_get("allocated", &allocated);
	malloc_stats();
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	assert_int_equal(rc, 0);
	static char out[1 << 16];
	rewind(tmp);
	size_t n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	assert_non_null(strstr(out, "___ pcmalloc " PCMALLOC_VERSION
	    " statistics ___\n"));
	/* Its "allocated" figure is this moment's, p (5000 bytes) in it. */
	static const char key[] = "\nbytes: allocated ";
	const char *a = strstr(out, key);
	if (a == NULL)
		fail_msg("malloc_stats printed no allocated bytes: '%s'", out);
	unsigned long long printed = strtoull(a + sizeof(key) - 1, NULL, 10);
	if (printed != allocated || printed < 5000)
		fail_msg("malloc_stats: allocated %llu, pc_stat_get %llu",
		    printed, allocated);
	assert_non_null(strstr(out, "\narena 0: mapped "));
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_on_pcmalloc),
		cmocka_unit_test(test_before_main),
		cmocka_unit_test(test_mallinfo2),
		cmocka_unit_test(test_mallinfo_legacy),
		cmocka_unit_test(test_mallopt),
		cmocka_unit_test(test_malloc_trim),
		cmocka_unit_test(test_libc_aliases),
		cmocka_unit_test(test_libc_internal_allocations),
		cmocka_unit_test(test_foreign_static),
		cmocka_unit_test(test_foreign_stack),
		cmocka_unit_test(test_foreign_mmap),
		cmocka_unit_test(test_malloc_info),
	};
	return cmocka_run_group_tests_name("misc", tests, NULL, NULL);
}
