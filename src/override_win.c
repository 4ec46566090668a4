/*
 * The standard allocation names on Windows (mingw-w64): the C names, the
 * CRT's _msize/_expand/_recalloc/_aligned_* family and the string
 * duplicators, built on the inline bodies of api.h.  Compiled instead of
 * override.c (glibc's family) when PCMALLOC_OVERRIDE is on.  docs/windows.md
 * says how to link them and what they cannot cover.
 *
 * dllimport.  mingw declares most CRT functions _CRTIMP, i.e. dllimport, so
 * callers jump through a pointer named __imp_<name> rather than calling
 * <name>.  Next to each function we define that pointer, so the static
 * linker binds those calls to us too instead of pulling the CRT's import.
 * (In the DLL the import library generates them.)
 *
 * Foreign pointers.  msvcrt keeps allocating from its own heap for itself
 * (strdup inside the CRT, _getcwd(NULL), stdio buffers) and for every DLL
 * that uses it.  Such pointers reach our free, realloc, _msize...  The page
 * map knows every block we handed out (entry != 0); a pointer whose entry
 * is 0 belongs to the CRT and goes to the CRT's own function, looked up by
 * name in the CRT DLL.  Nothing is leaked or reported as a bad free.
 *
 * No initialisation is needed here: the first call (mingw's startup calls
 * malloc before main) falls into the slow path, which initialises.
 */
#define _CRTIMP		/* our definitions are not imports */
#include <errno.h>
#include <string.h>
#include <wchar.h>

#include <windows.h>

#include "api.h"
#include "report.h"

/* Newer than what mingw-w64's msvcrt headers declare. */
size_t _aligned_msize(void *p, size_t align, size_t offset);

#ifdef PCMALLOC_DLL
#define OVERRIDE __declspec(dllexport)
#else
#define OVERRIDE
#endif

/* The pointer dllimport callers go through (see above). */
#define IMPORT_SLOT(name) void *__imp_##name = (void *)(name)

#ifdef _UCRT
#define CRT_DLL "ucrtbase.dll"
#else
#define CRT_DLL "msvcrt.dll"
#endif

/* The CRT's own functions, NULL where the CRT has none. */
static struct {
	void (*free)(void *);
	void *(*realloc)(void *, size_t);
	size_t (*msize)(void *);
	void *(*expand)(void *, size_t);
	void *(*recalloc)(void *, size_t, size_t);
	void (*aligned_free)(void *);
	void *(*aligned_realloc)(void *, size_t, size_t);
	void *(*aligned_recalloc)(void *, size_t, size_t, size_t);
	size_t (*aligned_msize)(void *, size_t, size_t);
} crt;
static INIT_ONCE crt_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK
crt_resolve(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	(void)once;
	(void)arg;
	(void)ctx;
	HMODULE m = GetModuleHandleA(CRT_DLL);
	if (m == NULL)
		return TRUE;
#define CRT_FN(field, name) \
	(crt.field = (__typeof__(crt.field))(void *)GetProcAddress(m, name))
	CRT_FN(free, "free");
	CRT_FN(realloc, "realloc");
	CRT_FN(msize, "_msize");
	CRT_FN(expand, "_expand");
	CRT_FN(recalloc, "_recalloc");
	CRT_FN(aligned_free, "_aligned_free");
	CRT_FN(aligned_realloc, "_aligned_realloc");
	CRT_FN(aligned_recalloc, "_aligned_recalloc");
	CRT_FN(aligned_msize, "_aligned_msize");
#undef CRT_FN
	return TRUE;
}

static PC_NOINLINE PC_COLD void
crt_init(void)
{
	DWORD saved = GetLastError();
	InitOnceExecuteOnce(&crt_once, crt_resolve, NULL, NULL);
	SetLastError(saved);
}

/* A non-NULL pointer the page map does not know is the CRT's. */
static PC_INLINE bool
is_foreign(const void *p)
{
	return p != NULL && pagemap_lookup(p) == 0;
}

static PC_NOINLINE PC_COLD void
no_crt(const char *what, void *p)
{
	/* Only if the CRT DLL or its function is missing: report, as a bad
	 * pointer is on Linux, and leave the block alone. */
	pc_report_ptr(what, p, " (no CRT function to forward it to)");
}

/* ---- malloc, free, calloc, realloc ------------------------------------ */

OVERRIDE void *malloc(size_t size) { return api_malloc(size); }

static PC_NOINLINE void
free_slow(void *p, uintptr_t entry)
{
	if (p == NULL || entry != 0) {
		api_free_big(p, entry, NULL);
		return;
	}
	int saved = errno;
	crt_init();
	if (crt.free != NULL)
		crt.free(p);
	else
		no_crt("free of foreign pointer", p);
	errno = saved;
}

OVERRIDE void
free(void *p)
{
	uintptr_t e = pagemap_lookup(p);
	unsigned tag = (unsigned)(e & PM_SC_MASK);
	if (PC_LIKELY(tag != 0)) {
		tcache_free(p, e, __builtin_return_address(0));
		return;
	}
	free_slow(p, e);
}

/*
 * _recalloc zeroes what lies beyond the old block's _msize, as the CRT's
 * does; our _msize is the usable size, so calloc and _recalloc zero up to
 * the usable size, not only the request, and a chain of them reads as zero
 * everywhere past the caller's data.
 */
static void
zero_tail(void *p, size_t from)
{
	size_t u = api_usable_size(p);
	if (u > from)
		memset((char *)p + from, 0, u - from);
}

OVERRIDE void *
calloc(size_t n, size_t size)
{
	void *p = api_calloc(n, size);
	if (p != NULL)
		zero_tail(p, n * size);
	return p;
}

static PC_NOINLINE PC_COLD void *
realloc_foreign(void *p, size_t size)
{
	crt_init();
	if (crt.realloc != NULL)
		return crt.realloc(p, size);
	no_crt("realloc of foreign pointer", p);
	errno = EINVAL;
	return NULL;
}

OVERRIDE void *
realloc(void *p, size_t size)
{
	if (PC_UNLIKELY(is_foreign(p)))
		return realloc_foreign(p, size);
	return api_realloc(p, size);
}

/* ---- The CRT's extensions ----------------------------------------------- */

/* The usable size, which is at least what was asked for. */
OVERRIDE size_t
_msize(void *p)
{
	if (p == NULL) {
		errno = EINVAL;
		return (size_t)-1;
	}
	if (is_foreign(p)) {
		crt_init();
		if (crt.msize != NULL)
			return crt.msize(p);
		errno = EINVAL;
		return (size_t)-1;
	}
	return api_usable_size(p);
}

/* Resize in place: succeeds when the block already holds `size` bytes. */
OVERRIDE void *
_expand(void *p, size_t size)
{
	if (p == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (is_foreign(p)) {
		crt_init();
		if (crt.expand != NULL)
			return crt.expand(p, size);
		errno = ENOMEM;
		return NULL;
	}
	if (size > api_usable_size(p)) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

static void *
recalloc_foreign(void *p, size_t total)
{
	crt_init();
	if (crt.recalloc != NULL)
		return crt.recalloc(p, 1, total);
	if (crt.msize == NULL || crt.realloc == NULL) {
		no_crt("_recalloc of foreign pointer", p);
		errno = EINVAL;
		return NULL;
	}
	size_t old = crt.msize(p);
	void *q = crt.realloc(p, total);
	if (q != NULL && total > old)
		memset((char *)q + old, 0, total - old);
	return q;
}

OVERRIDE void *
_recalloc(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (is_foreign(p))
		return recalloc_foreign(p, total);
	size_t old = p != NULL ? api_usable_size(p) : 0;
	void *q = api_realloc(p, total);
	if (q != NULL)
		zero_tail(q, PC_MIN(old, total));
	return q;
}

/* ---- _aligned_* --------------------------------------------------------- */

/* Our blocks need no header: _aligned_free is free and _aligned_msize is
 * _msize.  The CRT's have one, so foreign pointers go to its functions. */

static bool
align_ok(size_t align)
{
	if (align != 0 && (align & (align - 1)) == 0)
		return true;
	errno = EINVAL;
	return false;
}

OVERRIDE void *
_aligned_malloc(size_t size, size_t align)
{
	if (!align_ok(align))
		return NULL;
	return api_memalign(align, size);
}

OVERRIDE void
_aligned_free(void *p)
{
	if (PC_UNLIKELY(is_foreign(p))) {
		int saved = errno;
		crt_init();
		if (crt.aligned_free != NULL)
			crt.aligned_free(p);
		else
			no_crt("_aligned_free of foreign pointer", p);
		errno = saved;
		return;
	}
	free(p);
}

OVERRIDE void *
_aligned_realloc(void *p, size_t size, size_t align)
{
	if (!align_ok(align))
		return NULL;
	if (is_foreign(p)) {
		crt_init();
		if (crt.aligned_realloc != NULL)
			return crt.aligned_realloc(p, size, align);
		no_crt("_aligned_realloc of foreign pointer", p);
		errno = EINVAL;
		return NULL;
	}
	if (p == NULL)
		return api_memalign(align, size);
	if (size == 0) {
		free(p);
		return NULL;
	}
	size_t old = api_usable_size(p);
	if (((uintptr_t)p & (align - 1)) == 0 && size <= old &&
	    old - size < PC_PAGE)
		return p;	/* fits, and wastes less than a page */
	void *q = api_memalign(align, size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, PC_MIN(old, size));
	free(p);
	return q;
}

/* msvcrt.dll has no _aligned_recalloc before Windows 8, nor has wine's:
 * the CRT's _aligned_msize and _aligned_realloc do the same.  Without the
 * old size the new bytes cannot be zeroed: refuse. */
static PC_NOINLINE PC_COLD void *
aligned_recalloc_foreign(void *p, size_t n, size_t size, size_t align)
{
	crt_init();
	if (crt.aligned_recalloc != NULL)
		return crt.aligned_recalloc(p, n, size, align);
	if (crt.aligned_msize == NULL || crt.aligned_realloc == NULL) {
		no_crt("_aligned_recalloc of foreign pointer", p);
		errno = EINVAL;
		return NULL;
	}
	size_t total = n * size;	/* the caller checked for overflow */
	size_t old = crt.aligned_msize(p, align, 0);
	void *q = crt.aligned_realloc(p, total, align);
	if (q != NULL && total > old)
		memset((char *)q + old, 0, total - old);
	return q;
}

OVERRIDE void *
_aligned_recalloc(void *p, size_t n, size_t size, size_t align)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (is_foreign(p))
		return aligned_recalloc_foreign(p, n, size, align);
	size_t old = p != NULL ? api_usable_size(p) : 0;
	void *q = _aligned_realloc(p, total, align);
	if (q != NULL)
		zero_tail(q, PC_MIN(old, total));
	return q;
}

OVERRIDE size_t
_aligned_msize(void *p, size_t align, size_t offset)
{
	if (is_foreign(p)) {
		crt_init();
		if (crt.aligned_msize != NULL)
			return crt.aligned_msize(p, align, offset);
		errno = EINVAL;
		return (size_t)-1;
	}
	return _msize(p);
}

/* ---- String duplicates, so that their results are ours too -------------- */

OVERRIDE char *
_strdup(const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = api_malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

OVERRIDE char *strdup(const char *s) { return _strdup(s); }

OVERRIDE wchar_t *
_wcsdup(const wchar_t *s)
{
	if (s == NULL)
		return NULL;
	size_t n = (wcslen(s) + 1) * sizeof(wchar_t);
	wchar_t *d = api_malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

OVERRIDE wchar_t *wcsdup(const wchar_t *s) { return _wcsdup(s); }

IMPORT_SLOT(malloc);
IMPORT_SLOT(free);
IMPORT_SLOT(calloc);
IMPORT_SLOT(realloc);
IMPORT_SLOT(_msize);
IMPORT_SLOT(_expand);
IMPORT_SLOT(_recalloc);
IMPORT_SLOT(_aligned_malloc);
IMPORT_SLOT(_aligned_free);
IMPORT_SLOT(_aligned_realloc);
IMPORT_SLOT(_aligned_recalloc);
IMPORT_SLOT(_aligned_msize);
IMPORT_SLOT(_strdup);
IMPORT_SLOT(strdup);
IMPORT_SLOT(_wcsdup);
IMPORT_SLOT(wcsdup);
