/*
 * Foreign pointers (docs/troubleshooting.md, man pcmalloc(3)): realloc of
 * a pointer pcmalloc never handed out returns NULL with errno EINVAL,
 * reports "pcmalloc: realloc of foreign pointer 0x...", leaves the memory
 * alone and never aborts; only the first 16 foreign-pointer reports are
 * printed, the 16th ending in "(further reports suppressed)".
 * Catches: realloc acting on (or copying from) a foreign block, a wrong
 * errno, an abort, a report cap that is off by one or missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "doc_common.h"

#define NFREE 20
#define SUPPRESSED " (further reports suppressed)"

static void *volatile sink;

static void
realloc_foreign(unsigned char *p, size_t n, size_t size)
{
	memset(p, 0x3c, n);
	errno = 0;
	void *q = realloc(p, size);
	DOC_CHECK(q == NULL, "realloc(foreign %p, %zu) returned %p", (void *)p,
	    size, q);
	DOC_CHECK(errno == EINVAL, "realloc(foreign %p) errno %d, want EINVAL",
	    (void *)p, errno);
	for (size_t i = 0; i < n; i++)
		DOC_CHECK(p[i] == 0x3c, "realloc changed the foreign block");
	/* The report names the pointer (stderr is the parent's pipe). */
	printf("expect: pcmalloc: realloc of foreign pointer %p\n", (void *)p);
	fflush(stdout);
}

static int
child(const char *mode)
{
	if (strcmp(mode, "realloc") == 0) {
		static unsigned char buf[256];
		unsigned char stack[64];
		realloc_foreign(buf, sizeof(buf), 10);
		realloc_foreign(buf + 16, 64, 100000);	/* a large size */
		realloc_foreign(stack, sizeof(stack), 32);
		unsigned char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		DOC_CHECK(m != MAP_FAILED, "mmap");
		realloc_foreign(m, 4096, 8 << 20);
		munmap(m, 1 << 20);
	} else if (strcmp(mode, "cap") == 0) {
		/* NFREE distinct foreign pointers, each freed once; the
		 * addresses in order on stdout for the parent to match. */
		static char buf[NFREE * 16];
		for (int i = 0; i < NFREE; i++) {
			printf("ptr %p\n", (void *)(buf + i * 16));
			fflush(stdout);
			free(buf + i * 16);
		}
	} else if (strcmp(mode, "misuse_then_foreign") == 0) {
		/* Misuse reports do not use up the foreign-pointer cap. */
		for (int i = 0; i < 20; i++) {
			void *p = malloc(100000);
			free(p);
			free(p);
		}
		static char buf[16];
		free(buf);
	} else {
		DOC_FAIL("unknown mode %s", mode);
	}
	/* The heap still works. */
	for (int i = 0; i < 1000; i++)
		sink = malloc((size_t)i * 7), free(sink);
	DOC_CHECK(pc_check() == 0, "pc_check found problems");
	printf("done\n");
	return 0;
}

static char out[65536];

/* Both by default (abort_on_error:on) and warn-only: foreign pointers
 * never abort. */
static const char *confs[] = { NULL, "abort_on_error:false" };
#define CONF_NAME(c) (confs[c] ? confs[c] : "default")

static void
test_realloc_foreign(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 2; c++) {
		int st = doc_run("realloc", confs[c], NULL, NULL, out,
		    sizeof(out));
		if (!doc_exited_ok(st))
			fail_msg("realloc (%s): status 0x%x: %s",
			    CONF_NAME(c), st, out);
		/* Every expected report is there, in full. */
		int n = 0;
		for (char *e = strstr(out, "expect: "); e != NULL;
		    e = strstr(e + 1, "expect: ")) {
			char line[128];
			size_t len = strcspn(e + 8, "\n");
			assert_true(len < sizeof(line) - 1);
			memcpy(line, e + 8, len);
			line[len] = '\n';
			line[len + 1] = '\0';
			char *hit = out;
			int found = 0;
			while ((hit = strstr(hit, line)) != NULL) {
				found |= hit == out || hit[-1] == '\n';
				hit++;
			}
			if (!found)
				fail_msg("no report \"%.*s\": %s", (int)len,
				    e + 8, out);
			n++;
		}
		assert_int_equal(n, 4);
		assert_non_null(strstr(out, "done\n"));
	}
}

static void
test_report_cap(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 2; c++) {
		int st = doc_run("cap", confs[c], NULL, NULL, out, sizeof(out));
		if (!doc_exited_ok(st))
			fail_msg("cap (%s): status 0x%x: %s", CONF_NAME(c), st,
			    out);
		/* Walk the lines: each "ptr X" is followed by its report
		 * for the first 16, by nothing after. */
		char ptr[64] = "";
		int nptr = 0, nrep = 0, nsupp = 0;
		for (char *l = out; *l != '\0';) {
			size_t len = strcspn(l, "\n");
			char line[256];
			if (len >= sizeof(line))
				fail_msg("long line: %s", out);
			memcpy(line, l, len);
			line[len] = '\0';
			l += len + (l[len] == '\n');
			if (strncmp(line, "ptr ", 4) == 0) {
				snprintf(ptr, sizeof(ptr), "%s", line + 4);
				nptr++;
				continue;
			}
			if (strncmp(line, "pcmalloc:", 9) != 0)
				continue;
			nrep++;
			char want[160];
			snprintf(want, sizeof(want),
			    "pcmalloc: free of foreign pointer %s%s", ptr,
			    nptr == 16 ? SUPPRESSED : "");
			if (strcmp(line, want) != 0 || nrep != nptr)
				fail_msg("report %d after pointer %d: \"%s\", "
				    "want \"%s\"; output: %s", nrep, nptr, line,
				    want, out);
			nsupp += strstr(line, "suppressed") != NULL;
		}
		assert_int_equal(nptr, NFREE);
		if (nrep != 16 || nsupp != 1)
			fail_msg("%d reports (%d with the note), want 16 "
			    "and 1: %s", nrep, nsupp, out);
		assert_non_null(strstr(out, "done\n"));
	}
}

static void
test_cap_counts_foreign_only(void **state)
{
	(void)state;
	int st = doc_run("misuse_then_foreign", "abort_on_error:false", NULL,
	    NULL, out, sizeof(out));
	if (!doc_exited_ok(st))
		fail_msg("status 0x%x: %s", st, out);
	int dbl = 0;
	for (char *h = out; (h = strstr(h, "pcmalloc: double free of")); h++)
		dbl++;
	assert_int_equal(dbl, 20);
	assert_non_null(strstr(out, "pcmalloc: free of foreign pointer"));
	assert_null(strstr(out, "suppressed"));
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realloc_foreign),
		cmocka_unit_test(test_report_cap),
		cmocka_unit_test(test_cap_counts_foreign_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
