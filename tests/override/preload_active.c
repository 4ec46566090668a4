/*
 * Run with LD_PRELOAD=libpcmalloc.so (not linked with pcmalloc): checks that
 * pcmalloc really serves this program's malloc.  pc_* symbols are visible,
 * the "malloc" the program binds to lives in the preloaded library,
 * malloc_usable_size agrees with pc_malloc_usable_size on malloc'ed,
 * calloc'ed, aligned, realloc'ed pointers and on memory allocated inside
 * libc (strdup, getline, asprintf), and __libc_malloc & co. are pcmalloc's
 * too.  Catches: a library that is preloaded but whose overrides do not
 * take effect (wrong visibility, missing symbols, libc-internal allocations
 * still going to glibc and then freed by pcmalloc, or vice versa).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(c, ...) do { if (!(c)) { \
	fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

typedef size_t (*usable_fn)(void *);
typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static usable_fn pc_usable;

static void
agree(void *p, size_t n, const char *what)
{
	CHECK(p != NULL, "%s returned NULL", what);
	if (p == NULL)
		return;
	size_t a = malloc_usable_size(p), b = pc_usable(p);
	CHECK(a == b, "%s: malloc_usable_size %zu != pc_malloc_usable_size %zu",
	    what, a, b);
	CHECK(b >= n, "%s: pc_malloc_usable_size %zu < %zu", what, b, n);
}

int
main(void)
{
	const char *pre = getenv("LD_PRELOAD");
	CHECK(pre != NULL && *pre, "LD_PRELOAD not set");

	void *sym = dlsym(RTLD_DEFAULT, "pc_malloc");
	CHECK(sym != NULL, "pc_malloc not found: not running under pcmalloc");
	pc_usable = (usable_fn)dlsym(RTLD_DEFAULT, "pc_malloc_usable_size");
	CHECK(pc_usable != NULL, "pc_malloc_usable_size not found");
	if (sym == NULL || pc_usable == NULL)
		return 1;

	/* the malloc symbol everybody binds to is the preloaded library's */
	Dl_info mi, pi;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	CHECK(m != NULL && dladdr(m, &mi) && dladdr(sym, &pi),
	    "dladdr failed");
	static char lib[PATH_MAX];	/* the library serving pc_malloc */
	if (m && pre) {
		char a[PATH_MAX];
		CHECK(realpath(mi.dli_fname, a) && realpath(pi.dli_fname, lib) &&
		    strcmp(a, lib) == 0,
		    "malloc comes from %s, pc_malloc from %s", mi.dli_fname,
		    pi.dli_fname);
	}
	/* ... and it is the one LD_PRELOAD names, not one the program pulled
	 * in some other way (DT_NEEDED, dlopen). */
	if (pre && lib[0]) {
		char list[4096], path[PATH_MAX];
		snprintf(list, sizeof(list), "%s", pre);
		int named = 0;
		for (char *e = strtok(list, " :"); e; e = strtok(NULL, " :"))
			if (realpath(e, path) && strcmp(path, lib) == 0)
				named = 1;
		CHECK(named, "LD_PRELOAD=%s does not name %s", pre, lib);
	}
	static const char *names[] = { "free", "calloc", "realloc",
	    "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
	    "valloc", "pvalloc", "malloc_usable_size", "__libc_malloc",
	    "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
	    "malloc_trim", "mallopt", "mallinfo2", "mallinfo" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		Dl_info di;
		void *f = dlsym(RTLD_DEFAULT, names[i]);
		CHECK(f != NULL && dladdr(f, &di) &&
		    strcmp(di.dli_fname, pi.dli_fname) == 0,
		    "%s does not resolve to the preloaded library (%s)", names[i],
		    f && dladdr(f, &di) ? di.dli_fname : "?");
	}

	for (size_t n = 0; n < 5000000; n = n * 3 + 1) {
		void *p = malloc(n);
		agree(p, n, "malloc");
		free(p);
		p = calloc(1, n);
		agree(p, n, "calloc");
		p = realloc(p, n * 2 + 1);
		agree(p, n * 2 + 1, "realloc");
		free(p);
		p = aligned_alloc(4096, n);
		agree(p, n, "aligned_alloc");
		free(p);
		void *q = NULL;
		CHECK(posix_memalign(&q, 64, n) == 0, "posix_memalign");
		agree(q, n, "posix_memalign");
		free(q);
	}
	char *s = strdup("hello, pcmalloc");
	agree(s, 16, "strdup (inside libc)");
	free(s);
	char *as = NULL;
	CHECK(asprintf(&as, "%0*d", 10000, 1) == 10000, "asprintf");
	agree(as, 10001, "asprintf (inside libc)");
	free(as);
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL, "fopen");
	if (f) {
		char *line = NULL;
		size_t cap = 0;
		/* the library is mapped: a line whose path is lib */
		int found = 0;
		size_t ll = strlen(lib);
		while (getline(&line, &cap, f) > 0) {
			size_t n = strcspn(line, "\n");
			if (ll && n > ll && strncmp(line + n - ll, lib, ll) == 0 &&
			    line[n - ll - 1] == ' ')
				found = 1;
		}
		agree(line, cap, "getline (inside libc)");
		free(line);
		fclose(f);
		CHECK(found, "%s not in /proc/self/maps", lib);
	}
	malloc_fn lm = (malloc_fn)dlsym(RTLD_DEFAULT, "__libc_malloc");
	free_fn lf = (free_fn)dlsym(RTLD_DEFAULT, "__libc_free");
	if (lm && lf) {
		void *p = lm(333);
		agree(p, 333, "__libc_malloc");
		lf(p);
	}
	if (failures == 0)
		printf("pcmalloc active\n");
	return failures ? 1 : 0;
}
