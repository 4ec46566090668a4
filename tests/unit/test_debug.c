/* Debug mode (PCMALLOC_CONF=debug:true): a write after free and a write
 * past the requested size are reported with the block's address and size
 * class; a correct program runs silently; usable size is the requested
 * size.  Each case runs in a child with the option set. */
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
	if (strcmp(mode, "uaf") == 0) {
		char *p = malloc(100);
		free(p);
		p[10] = 1;	/* write after free */
		for (int i = 0; i < 10000; i++) {
			sink = malloc(100);	/* reuse checks the junk */
		}
	} else if (strcmp(mode, "overflow") == 0) {
		char *p = malloc(100);
		p[100] = 1;	/* one past the end */
		free(p);
	} else if (strcmp(mode, "memalign") == 0) {
		/* Aligned blocks keep their alignment with a redzone (the
		 * redzone once pushed them into a class that broke it). */
		for (int i = 0; i < 1000; i++) {
			size_t al = (size_t)16 << (i % 9);
			void *p = memalign(al, 134);
			if (p == NULL || (uintptr_t)p % al != 0 ||
			    malloc_usable_size(p) != 134)
				return 4;
			memset(p, 1, 134);
			free(p);
		}
	} else if (strcmp(mode, "clean") == 0) {
		void *v[1000];
		for (int r = 0; r < 20; r++) {
			for (int i = 0; i < 1000; i++) {
				size_t n = (size_t)(i * 37 + r) % 5000;
				v[i] = malloc(n);
				if (malloc_usable_size(v[i]) != n)
					return 2;
				memset(v[i], 7, n);
			}
			for (int i = 0; i < 1000; i += 2)
				v[i] = realloc(v[i], (size_t)i * 3);
			for (int i = 0; i < 1000; i++)
				free(v[i]);
		}
		char *c = calloc(10, 10);
		for (int i = 0; i < 100; i++)
			if (c[i] != 0)
				return 3;
		free(c);
	}
	return 0;
}

static void
test_write_after_free(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("uaf", "debug:true", &st, err, sizeof(err));
	assert_non_null(strstr(err, "pcmalloc: write to a freed block at 0x"));
	assert_non_null(strstr(err, "size class 112, byte 10"));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

static void
test_overflow(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("overflow", "debug:true", &st, err, sizeof(err));
	assert_non_null(strstr(err, "pcmalloc: write past the end of block 0x"));
	assert_non_null(strstr(err, "byte 100"));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

static void
test_aligned(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("memalign", "debug:true", &st, err, sizeof(err));
	assert_string_equal(err, "");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
test_clean_program(void **state)
{
	(void)state;
	char err[4096];
	int st;
	run_self("clean", "debug:true", &st, err, sizeof(err));
	assert_string_equal(err, "");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_after_free),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_clean_program),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
