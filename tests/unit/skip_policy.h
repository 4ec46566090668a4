/*
 * A test that cannot run here says why.  Under tests/run.sh, which
 * installs what the tests need and sets PC_TEST_NO_SKIP, a skip would be a
 * check that passes without testing: it fails instead.  Include after
 * <cmocka.h>.
 */
#ifndef PC_TEST_SKIP_POLICY_H
#define PC_TEST_SKIP_POLICY_H

#include <stdlib.h>

#define SKIP_BECAUSE(...) do { \
	if (getenv("PC_TEST_NO_SKIP") != NULL) { \
		print_error("cannot run (PC_TEST_NO_SKIP is set): "); \
		print_error(__VA_ARGS__); \
		print_error("\n"); \
		fail(); \
	} \
	print_message("SKIP: "); \
	print_message(__VA_ARGS__); \
	print_message("\n"); \
	skip(); \
} while (0)

#endif
