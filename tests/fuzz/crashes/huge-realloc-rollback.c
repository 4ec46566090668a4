/*
 * Reproducer: realloc of a huge block whose mremap moved it, when the page
 * map cannot register the new address (a 2 MiB leaf reservation fails, as
 * under memory pressure), reads the caller's old, already unmapped,
 * pointer: SEGV in api_move (src/api.c), memcpy from p.
 *
 * huge_realloc's rollback shrinks the moved mapping in place at its new
 * address (mremap cannot move it back without MREMAP_FIXED), returns NULL,
 * and api_realloc then calls api_move(p, ...) on the old address.  Even
 * without the copy, the caller would keep a dangling p from a "failed"
 * realloc, and the old base's page-map entry still names the span.
 *
 * Since a4c7999 the injected failures are sticky (every request from the
 * n-th on fails), so the rollback's own remap fails too and the process
 * dies in "pcmalloc: fatal: huge remap rollback (src/huge.c)"; when only
 * the leaf fails (real memory pressure can do that), it is the SEGV.
 *
 * Build and run (any build of the static library, prefixed-only or not):
 *   clang -g -fsanitize=address -Iinclude \
 *     tests/fuzz/crashes/huge-realloc-rollback.c build-san/asan/pcmalloc/libpcmalloc.a \
 *     -lpthread -o /tmp/rollback && /tmp/rollback
 * Expected: "realloc -> (nil)" and the old block intact, or a new block.
 */
#include <stdio.h>
#include <string.h>

#include "pcmalloc.h"

void os_fail_reserve_after(unsigned long n);	/* src/os.h */

int
main(void)
{
	size_t old = (size_t)64 << 20, big = (size_t)2 << 30;
	char *p = pc_malloc(old);
	if (p == NULL)
		return 2;
	memset(p, 0xab, 4096);
	p[old - 1] = 0x5a;
	fprintf(stderr, "p = %p\n", (void *)p);
	/* The first injection check is os_remap's (passes; the 2 GiB growth
	 * cannot stay in place, so it moves to fresh address space); the
	 * second is the page-map leaf for the new address: it fails (and
	 * since a4c7999 so does every later request, the rollback's too). */
	os_fail_reserve_after(2);
	char *q = pc_realloc(p, big);
	fprintf(stderr, "realloc -> %p\n", (void *)q);
	char *live = q != NULL ? q : p;
	int ok = (live[0] & 255) == 0xab && (live[old - 1] & 255) == 0x5a;
	pc_free(live);
	int bad = pc_check();
	fprintf(stderr, "contents %s, pc_check = %d\n", ok ? "kept" : "LOST",
	    bad);
	return ok && bad == 0 ? 0 : 1;
}
