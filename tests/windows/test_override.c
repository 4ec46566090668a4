/*
 * The link-time override from C, with the static library or the DLL
 * (PCMALLOC_DLL is defined for programs linked with the DLL).  Catches: a
 * standard or CRT name still bound to msvcrt (import table), a result that
 * is not pcmalloc's (including the calls mingw's startup makes before main
 * and the __imp_ route of dllimport'ed names), and the standard semantics
 * of each name as Windows programs expect them (errno, realloc to 0,
 * calloc and _recalloc zeroing, _msize and _expand).
 */
#include "win_common.h"
#include "pe_imports.h"

#ifdef PCMALLOC_DLL
#define WANT_DLL "pcmalloc.dll"
#else
#define WANT_DLL NULL	/* defined in the exe */
#endif

static const char *const names[] = { "malloc", "free", "calloc", "realloc",
    "_msize", "_expand", "_recalloc", "_aligned_malloc", "_aligned_free",
    "_aligned_realloc", "_strdup", "strdup", "_wcsdup" };

/* Reference every name, whether or not the tests call it, so each one is
 * bound by the linker and shows in the check below. */
void *volatile name_refs[] = { (void *)malloc, (void *)free, (void *)calloc,
    (void *)realloc, (void *)_msize, (void *)_expand, (void *)_recalloc,
    (void *)_aligned_malloc, (void *)_aligned_free, (void *)_aligned_realloc,
    (void *)_strdup, (void *)strdup, (void *)_wcsdup };

static void
test_bound_to_pcmalloc(void **state)
{
	(void)state;
	assert_int_equal(ARRAY_LEN(name_refs), ARRAY_LEN(names));
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		const char *dll = pe_import_dll(names[i]);
		print_message("%-18s %s\n", names[i], dll ? dll : "(in exe)");
		if (WANT_DLL == NULL ? dll != NULL :
		    dll != NULL && _stricmp(dll, WANT_DLL) != 0)
			fail_msg("%s is imported from %s", names[i], dll);
	}
	/* The names the test uses are imported (DLL) or not at all. */
#ifdef PCMALLOC_DLL
	assert_non_null(pe_import_dll("malloc"));
	assert_non_null(pe_import_dll("_msize"));
#endif
}

static void
test_results_are_ours(void **state)
{
	(void)state;
	void *p[8];
	p[0] = malloc(opaque(10));
	p[1] = calloc(opaque(3), 10);
	p[2] = realloc(NULL, opaque(100));
	p[3] = _recalloc(NULL, 2, opaque(50));
	p[4] = _strdup("x");
	p[5] = strdup("y");
	p[6] = _wcsdup(L"z");
	p[7] = _aligned_malloc(opaque(100), 256);
	for (size_t i = 0; i < ARRAY_LEN(p); i++) {
		if (!is_ours(p[i]))
			fail_msg("result %zu (%p) is not pcmalloc's", i, p[i]);
		if (i == 7)
			_aligned_free(p[i]);
		else
			free(p[i]);
	}
	/* Both API families share one heap. */
	void *a = pc_malloc(opaque(20));
	void *b = malloc(opaque(20));
	assert_true(_msize(a) >= 20);
	assert_true(pc_malloc_usable_size(b) >= 20);
	free(a);
	pc_free(b);
	assert_string_equal(pc_version(), PCMALLOC_VERSION);
}

static void
test_errno_and_edges(void **state)
{
	(void)state;
	errno = 0;
	assert_null(malloc(opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(calloc(opaque(SIZE_MAX / 2), 3));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(_recalloc(NULL, opaque(SIZE_MAX / 2), 3));
	assert_int_equal(errno, ENOMEM);
	void *p = malloc(opaque(0));
	assert_non_null(p);
	assert_null(realloc(p, 0));	/* frees, as msvcrt does */
	errno = 77;
	free(NULL);
	assert_int_equal(errno, 77);
	p = malloc(opaque(64));
	errno = 0;
	assert_null(realloc(p, opaque(SIZE_MAX)));
	assert_int_equal(errno, ENOMEM);
	free(p);	/* still valid after the failed realloc */
}

/* calloc and _recalloc: everything past the caller's data reads as zero,
 * up to _msize, however the block grew. */
static void
test_zeroing(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 10, 100, 1000, 5000, 20000, 40000,
	    300000, 9 * MiB };
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		/* Dirty the heap first, so zeroes are not just fresh pages. */
		void *d = malloc(sizes[i]);
		memset(d, 0xee, _msize(d));
		free(d);
		unsigned char *p = calloc(1, sizes[i]);
		assert_non_null(p);
		size_t u = _msize(p);
		for (size_t k = 0; k < u; k++)
			if (p[k] != 0)
				fail_msg("calloc(%zu): byte %zu of %zu", sizes[i],
				    k, u);
		memset(p, 0x5a, sizes[i]);
		for (size_t f = 2; f <= 8; f *= 2) {
			size_t old = sizes[i] * f / 2;
			p = _recalloc(p, f, sizes[i]);
			assert_non_null(p);
			u = _msize(p);
			assert_true(u >= sizes[i] * f);
			for (size_t k = 0; k < sizes[i]; k++)
				assert_int_equal(p[k], 0x5a);
			for (size_t k = sizes[i]; k < u; k++)
				if (p[k] != 0)
					fail_msg("_recalloc %zu -> %zu: byte "
					    "%zu", old, sizes[i] * f, k);
		}
		/* Shrinking keeps the front. */
		p = _recalloc(p, 1, sizes[i] / 2 + 1);
		assert_non_null(p);
		assert_int_equal(p[0], 0x5a);
		free(p);
	}
}

static void
test_expand(void **state)
{
	(void)state;
	unsigned char *p = malloc(opaque(1000));
	size_t u = _msize(p);
	assert_ptr_equal(_expand(p, u), p);
	assert_ptr_equal(_expand(p, 10), p);
	errno = 0;
	assert_null(_expand(p, u + 1));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(_expand(NULL, 10));
	assert_int_equal(errno, EINVAL);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_to_pcmalloc),
		cmocka_unit_test(test_results_are_ours),
		cmocka_unit_test(test_errno_and_edges),
		cmocka_unit_test(test_zeroing),
		cmocka_unit_test(test_expand),
	};
	return cmocka_run_group_tests_name("override_c", tests, NULL, NULL);
}
