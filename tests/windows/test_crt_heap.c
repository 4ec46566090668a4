/*
 * Pointers from the CRT's own heap reaching our free, realloc, _msize and
 * the rest.  msvcrt allocates from its heap for itself (_getcwd(NULL),
 * _fullpath(NULL), _tempnam...) and for any DLL that uses it; those blocks
 * must be recognised (the page map does not know them) and handed to the
 * CRT's own functions.  Catches: a foreign pointer reported or ignored
 * (leaked in the CRT heap: the heap walk below grows), handled as ours
 * (crash or heap corruption: _heapchk), or realloc'ed without its
 * contents.  Runs with abort_on_error, so any report fails the test.
 */
#include <direct.h>
#include <io.h>

#include "win_common.h"

static struct {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	char *(*strdup)(const char *);
	void *(*aligned_malloc)(size_t, size_t);
	size_t (*msize)(void *);
} crt;
/* The CRT can resize its aligned blocks with zeroing (wine's msvcrt has
 * neither _aligned_recalloc nor _aligned_msize: we then refuse). */
static int crt_aligned_recalloc_ok;

static int
setup(void **state)
{
	(void)state;
	HMODULE m = GetModuleHandleA("msvcrt.dll");
	if (m == NULL)
		return -1;
	crt.malloc = (void *(*)(size_t))(void *)GetProcAddress(m, "malloc");
	crt.calloc = (void *(*)(size_t, size_t))(void *)GetProcAddress(m,
	    "calloc");
	crt.strdup = (char *(*)(const char *))(void *)GetProcAddress(m,
	    "_strdup");
	crt.aligned_malloc = (void *(*)(size_t, size_t))(void *)GetProcAddress(
	    m, "_aligned_malloc");
	crt.msize = (size_t (*)(void *))(void *)GetProcAddress(m, "_msize");
	crt_aligned_recalloc_ok = GetProcAddress(m, "_aligned_recalloc") ||
	    GetProcAddress(m, "_aligned_msize");
	return crt.malloc && crt.calloc && crt.strdup && crt.msize ? 0 : -1;
}

/* Bytes in use in the CRT's heap. */
static size_t
crt_heap_used(void)
{
	_HEAPINFO hi = { 0 };
	size_t used = 0;
	int rc;
	while ((rc = _heapwalk(&hi)) == _HEAPOK)
		if (hi._useflag == _USEDENTRY)
			used += hi._size;
	assert_true(rc == _HEAPEND || rc == _HEAPEMPTY);
	return used;
}

static void
assert_crt_heap_ok(void)
{
	assert_int_equal(_heapchk(), _HEAPOK);
}

/* The environment: is the exe really on pcmalloc, and do we really get
 * CRT pointers? */
static void
test_pointers_are_told_apart(void **state)
{
	(void)state;
	void *ours = malloc(opaque(100));
	void *theirs = crt.malloc(100);
	assert_true(is_ours(ours));
	assert_false(is_ours(theirs));
	free(ours);
	free(theirs);
}

static void
test_crt_free(void **state)
{
	(void)state;
	size_t before = crt_heap_used();
	for (int i = 0; i < 2000; i++) {
		void *p = crt.malloc((size_t)(i % 300) + 1);
		assert_non_null(p);
		errno = 1234;
		free(p);
		assert_int_equal(errno, 1234);
	}
	/* free of a foreign NULL-adjacent case: NULL itself. */
	free(NULL);
	assert_crt_heap_ok();
	assert_true(crt_heap_used() <= before + 4 * KiB);
}

/* What the CRT allocates for itself and the caller frees. */
static void
test_crt_internal_allocations(void **state)
{
	(void)state;
	size_t before = crt_heap_used();
	for (int i = 0; i < 300; i++) {
		char *cwd = _getcwd(NULL, 0);
		assert_non_null(cwd);
		wchar_t *wcwd = _wgetcwd(NULL, 0);
		assert_non_null(wcwd);
		char *full = _fullpath(NULL, "some\\file.txt", 0);
		assert_non_null(full);
		char *dup = crt.strdup("pcmalloc");
		assert_non_null(dup);
		assert_false(is_ours(cwd));
		assert_false(is_ours(dup));
		assert_true(_msize(dup) >= 9);
		assert_string_equal(dup, "pcmalloc");
		free(cwd);
		free(wcwd);
		free(full);
		free(dup);
	}
	assert_crt_heap_ok();
	assert_true(crt_heap_used() <= before + 4 * KiB);
}

static void
test_crt_realloc(void **state)
{
	(void)state;
	size_t before = crt_heap_used();
	for (int i = 0; i < 500; i++) {
		size_t n = (size_t)(i % 200) + 1;
		unsigned char *p = crt.malloc(n);
		assert_non_null(p);
		pat_fill(p, n, i);
		/* Grows and shrinks in the CRT's heap, contents kept. */
		unsigned char *q = realloc(p, opaque(n * 50));
		assert_non_null(q);
		assert_false(is_ours(q));
		assert_true(pat_ok(q, n, i));
		assert_int_equal(_msize(q), n * 50);
		q = realloc(q, opaque(n));
		assert_non_null(q);
		assert_true(pat_ok(q, n, i));
		/* realloc(p, 0) frees (and returns NULL) in both heaps. */
		if (i % 2)
			q = realloc(q, 0);
		free(q);
	}
	assert_crt_heap_ok();
	assert_true(crt_heap_used() <= before + 4 * KiB);
}

static void
test_msize_expand_recalloc(void **state)
{
	(void)state;
	size_t before = crt_heap_used();
	for (int i = 1; i < 300; i++) {
		unsigned char *p = crt.calloc(1, (size_t)i);
		assert_non_null(p);
		assert_int_equal(_msize(p), (size_t)i);
		memset(p, 0xab, (size_t)i);
		unsigned char *q = _recalloc(p, 2, (size_t)i);
		assert_non_null(q);
		assert_false(is_ours(q));
		assert_int_equal(_msize(q), 2 * (size_t)i);
		for (int k = 0; k < i; k++)
			assert_int_equal(q[k], 0xab);
		for (int k = i; k < 2 * i; k++)
			assert_int_equal(q[k], 0);
		/* _expand may or may not manage in place; either way the
		 * block stays valid. */
		void *e = _expand(q, (size_t)i);
		if (e != NULL)
			assert_ptr_equal(e, q);
		free(q);
	}
	assert_crt_heap_ok();
	assert_true(crt_heap_used() <= before + 4 * KiB);
}

static void
test_aligned(void **state)
{
	(void)state;
	/* Every msvcrt/ucrt has _aligned_malloc: missing means the lookup
	 * broke, not that there is nothing to test. */
	assert_non_null(crt.aligned_malloc);
	size_t before = crt_heap_used();
	for (int i = 0; i < 300; i++) {
		size_t align = (size_t)16 << (i % 6);
		unsigned char *p = crt.aligned_malloc(100, align);
		assert_non_null(p);
		assert_aligned(p, align);
		assert_false(is_ours(p));
		pat_fill(p, 100, i);
		unsigned char *q = _aligned_realloc(p, 3000, align);
		assert_non_null(q);
		assert_aligned(q, align);
		assert_true(pat_ok(q, 100, i));
		if (i == 1 && !crt_aligned_recalloc_ok) {
			/* Refused (and reported): the block is left alone. */
			errno = 0;
			assert_null(_aligned_recalloc(q, 2, 2000, align));
			assert_int_equal(errno, EINVAL);
			assert_true(pat_ok(q, 100, i));
		}
		if (i % 3 == 0 && crt_aligned_recalloc_ok) {
			q = _aligned_recalloc(q, 2, 2000, align);
			assert_non_null(q);
			assert_true(pat_ok(q, 100, i));
			for (int k = 3000; k < 4000; k++)
				assert_int_equal(q[k], 0);
		}
		_aligned_free(q);
	}
	assert_crt_heap_ok();
	assert_true(crt_heap_used() <= before + 4 * KiB);
}

/* The same entry points with our own blocks. */
static void
test_ours(void **state)
{
	(void)state;
	void *p = malloc(opaque(100));
	assert_true(_msize(p) >= 100);
	assert_ptr_equal(_expand(p, 50), p);
	assert_true(_msize(p) >= 50);
	errno = 0;
	assert_null(_expand(p, 1 * MiB));
	assert_int_equal(errno, ENOMEM);
	free(p);
	errno = 0;
	assert_int_equal(_msize(NULL), (size_t)-1);
	assert_int_equal(errno, EINVAL);
	char *s = _strdup("abc");
	assert_true(is_ours(s));
	free(s);
	wchar_t *w = _wcsdup(L"abc");
	assert_true(is_ours(w));
	assert_true(wcscmp(w, L"abc") == 0);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pointers_are_told_apart),
		cmocka_unit_test(test_crt_free),
		cmocka_unit_test(test_crt_internal_allocations),
		cmocka_unit_test(test_crt_realloc),
		cmocka_unit_test(test_msize_expand_recalloc),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_ours),
	};
	return cmocka_run_group_tests_name("crt_heap", tests, setup, NULL);
}
