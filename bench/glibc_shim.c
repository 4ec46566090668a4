/*
 * libpcb_glibc_shim.so: forwards the malloc family to glibc's own malloc.
 *
 * Only for real programs that are linked against another allocator (Debian's
 * redis-server links libjemalloc): preloading this makes their "glibc"
 * column really use glibc malloc. Plain workloads run glibc without any
 * preload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void *memalign(size_t al, size_t n) { return __libc_memalign(al, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT void *aligned_alloc(size_t al, size_t n)
{
	return __libc_memalign(al, n);
}

EXPORT int posix_memalign(void **out, size_t al, size_t n)
{
	if (al < sizeof(void *) || (al & (al - 1)))
		return EINVAL;
	void *p = __libc_memalign(al, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT size_t malloc_usable_size(void *p)
{
	static size_t (*fn)(void *);
	if (!fn) {
		void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		if (h)
			fn = (size_t (*)(void *))dlsym(h, "malloc_usable_size");
		if (!fn)
			return 0;
	}
	return fn(p);
}
