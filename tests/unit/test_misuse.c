/* Misuse is reported, never silent: double frees (immediate, delayed,
 * large), frees of interior pointers and of foreign pointers.  Misuse of
 * our blocks aborts by default and only warns with abort_on_error:false;
 * a foreign pointer is reported and left alone.  Each case runs in a child
 * so an abort is observable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "run_self.h"

static void *volatile sink;

static int
child(const char *mode)
{
	if (strcmp(mode, "immediate") == 0) {
		void *p = malloc(48);
		free(p);
		free(p);
	} else if (strcmp(mode, "delayed") == 0) {
		void *p = malloc(48), *q = malloc(48);
		free(p);
		free(q);
		free(p);
		malloc_trim(0);	/* flushes this thread's cache */
	} else if (strcmp(mode, "large") == 0) {
		void *p = malloc(100000);
		free(p);
		free(p);
	} else if (strcmp(mode, "huge") == 0) {
		char *p = malloc((size_t)80 << 20);
		free(p + 4096);
		free(p);
	} else if (strcmp(mode, "interior") == 0) {
		char *p = malloc(64);
		free(p + 16);
		malloc_trim(0);
	} else if (strcmp(mode, "foreign") == 0) {
		static char buf[64];
		free(buf);
		free(buf + 8);
		sink = realloc(buf, 10);
		if (sink != NULL)
			return 2;
	}
	/* The heap still works. */
	for (int i = 0; i < 1000; i++)
		sink = malloc((size_t)i * 3), free(sink);
	return 0;
}

static void
expect(const char *mode, const char *message, bool aborts_by_default)
{
	char err[4096];
	int st;
	run_self(mode, NULL, &st, err, sizeof(err));
	if (strstr(err, message) == NULL)
		fail_msg("%s: no \"%s\" in stderr: %s", mode, message, err);
	if (aborts_by_default) {
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
			fail_msg("%s: expected an abort, status %d", mode, st);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fail_msg("%s: expected exit 0, status %d: %s", mode, st, err);
	}
	/* Warn-only mode: reported, and the program goes on. */
	run_self(mode, "abort_on_error:false", &st, err, sizeof(err));
	if (strstr(err, message) == NULL)
		fail_msg("%s (warn): no \"%s\" in stderr: %s", mode, message,
		    err);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s (warn): expected exit 0, status %d: %s", mode, st,
		    err);
}

static void test_immediate(void **s) { (void)s; expect("immediate", "pcmalloc: double free of 0x", true); }
static void test_delayed(void **s) { (void)s; expect("delayed", "pcmalloc: double free of 0x", true); }
static void test_large(void **s) { (void)s; expect("large", "pcmalloc: double free of 0x", true); }
static void test_huge_interior(void **s) { (void)s; expect("huge", "pcmalloc: free of a pointer inside a block, 0x", true); }
static void test_interior(void **s) { (void)s; expect("interior", "inside a block", true); }
static void test_foreign(void **s) { (void)s; expect("foreign", "pcmalloc: free of foreign pointer 0x", false); }

static void
test_size_class_named(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("immediate", "abort_on_error:false", &st, err, sizeof(err));
	assert_non_null(strstr(err, "(size class 48)"));
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_immediate),
		cmocka_unit_test(test_delayed),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_huge_interior),
		cmocka_unit_test(test_interior),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_size_class_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
