/* Huge blocks: mapped directly, known to the page map by their first page
 * and to the registry by every address, resized in place or moved without
 * a copy, and every bad pointer told apart (interior, freed, foreign)
 * before anything is done with it. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <sys/mman.h>

#include "conf.h"
#include "huge.h"
#include "os.h"
#include "pageheap.h"
#include "pagemap.h"
#include "pcmalloc.h"

#define MiB ((size_t)1 << 20)

static bool zeroed, copied;

/* Each test starts with no kept mapping: blocks come fresh. */
static int
no_kept(void **state)
{
	(void)state;
	huge_keep_release(true);
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	return 0;
}

static void
test_alloc_free(void **state)
{
	(void)state;
	size_t n = huge_count(), bytes = huge_mapped_bytes();
	char *p = huge_alloc(64 * MiB + 1, PC_PAGE, &zeroed);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % PC_PAGE, 0);
	assert_int_equal(huge_count(), n + 1);
	assert_int_equal(huge_mapped_bytes(), bytes + 64 * MiB + PC_PAGE);
	/* The page map knows the first page only. */
	span_t *s = pagemap_span(pagemap_lookup(p));
	assert_non_null(s);
	assert_int_equal(s->kind, SPAN_HUGE);
	assert_int_equal(pagemap_lookup(p) & PM_SC_MASK, 0);
	assert_int_equal(pagemap_lookup(p + PC_PAGE), 0);
	p[0] = 1;
	p[64 * MiB] = 2;
	size_t usable;
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 64 * MiB + PC_PAGE);
	assert_int_equal(huge_count(), n);
	assert_int_equal(huge_mapped_bytes(), bytes);
	assert_int_equal(pagemap_lookup(p), 0);
}

static void
test_bad_pointers(void **state)
{
	(void)state;
	char *p = huge_alloc(64 * MiB, PC_PAGE, &zeroed);
	assert_non_null(p);
	size_t usable = 0;
	void *out;
	/* Checked, nothing done: the block stays live. */
	assert_int_equal(huge_free(p + PC_PAGE, &usable), BLOCK_INTERIOR);
	assert_int_equal(huge_free(p + 64 * MiB - 1, &usable),
	    BLOCK_INTERIOR);
	assert_int_equal(huge_realloc(p + 16, 0, &out, &usable),
	    BLOCK_INTERIOR);
	static char foreign[64];
	assert_int_equal(huge_free(foreign, &usable), BLOCK_FOREIGN);
	p[64 * MiB - 1] = 1;	/* still mapped */
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	/* Freed, its mapping kept: a double free, not a foreign pointer. */
	assert_int_equal(huge_free(p, &usable), BLOCK_FREED);
	assert_int_equal(huge_free(p + PC_PAGE, &usable), BLOCK_FREED);
	assert_int_equal(huge_realloc(p, 0, &out, &usable), BLOCK_FREED);
	/* Unmapped since: still a double free. */
	huge_keep_release(true);
	if (!os_is_mapped(p)) {
		assert_int_equal(huge_free(p, &usable), BLOCK_FREED);
		assert_int_equal(huge_realloc(p, 0, &out, &usable),
		    BLOCK_FREED);
	}
}

static void
test_aligned(void **state)
{
	(void)state;
	size_t align = 32 * MiB;
	char *p = huge_alloc(64 * MiB, align, &zeroed);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % align, 0);
	/* An aligned block cannot be moved by remap (the new place would
	 * lose the alignment): growing fails and leaves it intact. */
	void *out;
	size_t usable;
	p[0] = 7;
	assert_int_equal(huge_realloc(p, 200 * MiB, &out, &usable),
	    BLOCK_LIVE);
	if (out == NULL) {
		assert_int_equal(p[0], 7);
	} else {
		assert_ptr_equal(out, p);	/* grown in place */
		p = out;
	}
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
}

static void
test_resize(void **state)
{
	(void)state;
	char *p = huge_alloc(128 * MiB, PC_PAGE, &zeroed);
	assert_non_null(p);
	memset(p, 3, PC_PAGE);
	p[128 * MiB - 1] = 4;
	void *out;
	size_t usable;
	/* Shrink in place: the tail goes back to the OS. */
	assert_int_equal(huge_realloc(p, 80 * MiB, &out, &usable),
	    BLOCK_LIVE);
	assert_int_equal(usable, 128 * MiB);	/* the size before */
	assert_ptr_equal(out, p);
	size_t bytes = huge_mapped_bytes();
	/* The cut-off tail is no block of ours now. */
	assert_int_equal(huge_free(p + 100 * MiB, &usable) != BLOCK_LIVE, 1);
	/* Grow: in place or moved without a copy; the contents stay. */
	assert_int_equal(huge_realloc(p, 300 * MiB, &out, &usable),
	    BLOCK_LIVE);
	assert_int_equal(usable, 80 * MiB);
	if (out != NULL) {
		p = out;
		assert_int_equal(p[0], 3);
		assert_int_equal(p[PC_PAGE - 1], 3);
		assert_int_equal(huge_mapped_bytes(), bytes + 220 * MiB);
		assert_int_equal(pagemap_span(pagemap_lookup(p))->kind,
		    SPAN_HUGE);
		p[300 * MiB - 1] = 5;
	}
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
}

static void
fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = (char)(i / 512 * 7 + seed);
	p[n - 1] = (char)seed;
}

static void
check(const char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		assert_int_equal(p[i], (char)(i / 512 * 7 + seed));
	assert_int_equal(p[n - 1], (char)seed);
}

/* A large block adopted by a mapping of its own: its contents move (no
 * copy), the old addresses read as fresh zero pages and go back to the
 * page heap, and the new block remaps as it grows. */
static void
test_adopt(void **state)
{
	(void)state;
	char *p = pc_malloc(2 * MiB);
	assert_non_null(p);
	size_t len = pc_malloc_usable_size(p);
	assert_int_equal(pagemap_span(pagemap_lookup(p))->kind, SPAN_LARGE);
	fill(p, len, 1);
	size_t n = huge_count();
	char *q = huge_adopt(p, len, 3 * MiB + 5, &copied);
	assert_non_null(q);
	assert_false(copied);
	assert_int_equal(huge_count(), n + 1);
	assert_int_equal(pagemap_span(pagemap_lookup(q))->kind, SPAN_HUGE);
	check(q, len, 1);
	assert_int_equal(q[3 * MiB], 0);	/* the new tail is zero */
	/* p is still a live large block, of fresh pages. */
	assert_int_equal(p[0], 0);
	assert_int_equal(p[len - 1], 0);
	pc_free(p);
	void *out;
	size_t usable;
	assert_int_equal(huge_realloc(q, 9 * MiB, &out, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 3 * MiB + PC_PAGE);
	assert_non_null(out);
	q = out;
	check(q, len, 1);
	q[9 * MiB - 1] = 2;
	/* Shrinks in place to the page. */
	assert_int_equal(huge_realloc(q, 2 * MiB + 1, &out, &usable),
	    BLOCK_LIVE);
	assert_ptr_equal(out, q);
	check(q, 2 * MiB, 1);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 2 * MiB + PC_PAGE);
	assert_int_equal(huge_count(), n);
}

/* When the OS refuses a step (the move, or growing the mapping after it),
 * nothing is lost: the old block keeps its contents where it was. */
static void
test_adopt_failures(void **state)
{
	(void)state;
	unsigned failed = 0, moved = 0;
	for (unsigned long k = 1; k <= 4; k++) {
		char *p = pc_malloc(2 * MiB);
		assert_non_null(p);
		size_t len = pc_malloc_usable_size(p);
		fill(p, len, (unsigned)k);
		size_t n = huge_count();
		os_fail_reserve_after(k);
		char *q = huge_adopt(p, len, 4 * MiB, &copied);
		os_fail_reserve_after(0);
		if (q == NULL) {
			failed++;
			assert_int_equal(huge_count(), n);
			check(p, len, (unsigned)k);
		} else {
			moved++;
			check(q, len, (unsigned)k);
			size_t usable;
			assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
		}
		pc_free(p);
	}
	assert_int_equal(failed, 2);	/* the move, then the growth */
	assert_int_equal(moved, 2);
}

/* Freeing an adopted block raises the size from which blocks are adopted
 * to its size, up to PC_REALLOC_MAP_MAX, so a buffer rebuilt over and
 * over stays in the page heap after the first time.  First in main: the
 * threshold is still PC_REALLOC_MAP_MIN. */
static void
test_adopt_threshold_rises(void **state)
{
	(void)state;
	assert_int_equal(huge_adopt_min(), PC_REALLOC_MAP_MIN);
	size_t usable;
	size_t sizes[] = { 5 * MiB / 2, 6 * MiB };
	size_t want[] = { 5 * MiB / 2, PC_REALLOC_MAP_MAX };
	for (int i = 0; i < 2; i++) {
		char *p = pc_malloc(2 * MiB);
		char *q = huge_adopt(p, pc_malloc_usable_size(p), sizes[i], &copied);
		assert_non_null(q);
		pc_free(p);
		assert_int_equal(huge_adopt_min(), i ? want[0] :
		    PC_REALLOC_MAP_MIN);
		assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
		assert_int_equal(huge_adopt_min(), want[i]);
	}
	/* A block not adopted leaves it alone. */
	char *q = huge_alloc(64 * MiB + 12345, PC_PAGE, &zeroed);
	assert_non_null(q);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	assert_int_equal(huge_adopt_min(), PC_REALLOC_MAP_MAX);
}

/* A move the kernel refuses, or completes but cannot grow (here: the
 * source is two mappings, its second half read-only), returns NULL with
 * the contents where they were and errno as it was; the next one works. */
static void
test_move_pages_refused(void **state)
{
	(void)state;
	char *src = os_reserve(2 * MiB, PC_PAGE);
	assert_non_null(src);
	fill(src, 2 * MiB, 8);
	assert_int_equal(mprotect(src + MiB, MiB, PROT_READ), 0);
	errno = EDOM;
	assert_null(os_move_pages(src, 2 * MiB, 3 * MiB));
	assert_int_equal(errno, EDOM);
	check(src, 2 * MiB, 8);
	os_release(src, 2 * MiB);
	char *p = pc_malloc(2 * MiB);
	size_t len = pc_malloc_usable_size(p);
	fill(p, len, 9);
	char *q = huge_adopt(p, len, 3 * MiB, &copied);
	assert_non_null(q);
	check(q, len, 9);
	assert_int_equal(errno, EDOM);
	pc_free(p);
	size_t usable;
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
}

/* A freed block's mapping is kept and serves the next block that fits,
 * which then holds what the last one left: calloc zeroes it. */
static void
test_kept_reuse(void **state)
{
	(void)state;
	size_t usable;
	char *p = huge_alloc(64 * MiB, PC_PAGE, &zeroed);
	assert_non_null(p);
	assert_true(zeroed);
	memset(p, 0xab, 64 * MiB);
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	assert_int_equal(huge_kept_mapped_bytes(), 64 * MiB);
	unsigned long long dirty;
	assert_int_equal(pc_stat_get("dirty", &dirty), 0);
	assert_true(dirty >= 64 * MiB);
	/* Not much smaller than the mapping: served by it, as it is. */
	char *q = huge_alloc(60 * MiB, PC_PAGE, &zeroed);
	assert_ptr_equal(q, p);
	assert_false(zeroed);
	assert_int_equal((unsigned char)q[0], 0xab);
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 60 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 64 * MiB);
	/* Through the API: calloc of a kept mapping reads as zeros. */
	char *c = pc_calloc(1, 64 * MiB);
	assert_ptr_equal(c, p);
	for (size_t i = 0; i < 64 * MiB; i += 4093)
		assert_int_equal(c[i], 0);
	assert_int_equal(c[64 * MiB - 1], 0);
	pc_free(c);
	/* Not aligned as asked: a new mapping. */
	char *a = huge_alloc(64 * MiB, 64 * MiB, &zeroed);
	assert_non_null(a);
	assert_int_equal((uintptr_t)a % (64 * MiB), 0);
	assert_true(zeroed || a == p);
	assert_int_equal(huge_free(a, &usable), BLOCK_LIVE);
	/* Far bigger than a request: the excess goes back. */
	huge_keep_release(true);
	p = huge_alloc(64 * MiB, PC_PAGE, &zeroed);
	p[0] = 1;
	assert_int_equal(huge_free(p, &usable), BLOCK_LIVE);
	size_t bytes = huge_mapped_bytes();
	q = huge_alloc(40 * MiB, PC_PAGE, &zeroed);
	assert_ptr_equal(q, p);
	assert_int_equal(huge_mapped_bytes(), bytes + 40 * MiB);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	assert_int_equal(pc_trim(), 1);
	assert_int_equal(huge_kept_mapped_bytes(), 0);
}

/* Free a fresh huge block of `size` bytes (its first page touched), so
 * that its mapping is kept; returns where it was. */
static char *
keep_mapping(size_t size)
{
	size_t usable;
	char *k = huge_alloc(size, PC_PAGE, &zeroed);
	assert_non_null(k);
	k[0] = 1;
	assert_int_equal(huge_free(k, &usable), BLOCK_LIVE);
	return k;
}

/* A large block of `block` bytes adopted to `grow` bytes with
 * only a mapping of `kept` bytes kept: moved, not copied into it. */
static void
adopt_is_moved(size_t kept, size_t block, size_t grow)
{
	size_t usable;
	huge_keep_release(true);
	char *k = keep_mapping(kept);
	char *p = pc_malloc(block);
	size_t len = pc_malloc_usable_size(p);
	fill(p, len, 5);
	char *q = huge_adopt(p, len, grow, &copied);
	assert_non_null(q);
	assert_false(copied);
	assert_ptr_not_equal(q, k);
	check(q, len, 5);
	pc_free(p);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	huge_keep_release(true);
}

/* A buffer adopted into a kept mapping is copied there, its old pages
 * stay with it (p keeps its contents), and it grows inside the mapping
 * without moving; a shrink gives back the rest. */
static void
test_kept_adopt(void **state)
{
	(void)state;
	size_t usable;
	void *out;
	char *k = keep_mapping(32 * MiB);
	char *p = pc_malloc(2 * MiB);
	size_t len = pc_malloc_usable_size(p);
	fill(p, len, 3);
	char *q = huge_adopt(p, len, 3 * MiB, &copied);
	assert_ptr_equal(q, k);
	assert_true(copied);
	check(q, len, 3);
	check(p, len, 3);	/* copied, not moved */
	pc_free(p);
	assert_int_equal(pc_malloc_usable_size(q), 3 * MiB);
	assert_int_equal(huge_realloc(q, 20 * MiB + 1, &out, &usable),
	    BLOCK_LIVE);
	assert_ptr_equal(out, q);
	assert_int_equal(usable, 3 * MiB);
	assert_int_equal(pc_malloc_usable_size(q), 20 * MiB + PC_PAGE);
	check(q, len, 3);
	q[20 * MiB] = 7;
	/* Inside the mapping but past the block: not a block start, and
	 * not freeable. */
	assert_int_equal(huge_free(q + 30 * MiB, &usable), BLOCK_INTERIOR);
	/* Past the mapping: grows as any block does. */
	assert_int_equal(huge_realloc(q, 40 * MiB, &out, &usable), BLOCK_LIVE);
	assert_non_null(out);
	q = out;
	check(q, len, 3);
	assert_int_equal(q[20 * MiB], 7);
	assert_int_equal(huge_realloc(q, 4 * MiB, &out, &usable), BLOCK_LIVE);
	assert_ptr_equal(out, q);
	assert_int_equal(pc_malloc_usable_size(q), 4 * MiB);
	check(q, len, 3);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	assert_int_equal(usable, 4 * MiB);
	/* Not a mapping more than 32 times the buffer's new size, nor one
	 * with less room to grow into than what would be copied: those
	 * blocks are moved, copying nothing. */
	adopt_is_moved(128 * MiB, 2 * MiB, 3 * MiB);	/* > 32 x 3 MiB */
	adopt_is_moved(10 * MiB, 6 * MiB, 7 * MiB);	/* < 2 x 6 MiB */
}

/* Kept mappings go back after their time (at most decay_ms), at once with
 * decay_ms:0, and past the limits the oldest go first. */
static void
test_kept_limits(void **state)
{
	(void)state;
	size_t usable, decay = opt_decay_ms;
	opt_decay_ms = 1;	/* kept for a millisecond */
	char *p[6];
	for (int i = 0; i < 6; i++) {
		p[i] = huge_alloc((size_t)(i + 1) * MiB, PC_PAGE, &zeroed);
		assert_non_null(p[i]);
		p[i][0] = 1;
	}
	for (int i = 0; i < 6; i++)
		assert_int_equal(huge_free(p[i], &usable), BLOCK_LIVE);
	/* Four slots: the two oldest are unmapped. */
	assert_int_equal(huge_kept_mapped_bytes(), (3 + 4 + 5 + 6) * MiB);
	for (int i = 0; i < 6; i++)
		assert_int_equal(huge_free(p[i], &usable), BLOCK_FREED);
	/* Their time is up: the next tick unmaps them. */
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(huge_free(p[i], &usable), BLOCK_FREED);
	/* decay_ms:0 keeps nothing. */
	opt_decay_ms = 0;
	(void)keep_mapping(8 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	opt_decay_ms = decay;
	/* At most 256 MiB in all, the oldest out first; 64 MiB with
	 * background_thread:off (no thread to unmap them when the program
	 * goes idle). */
	size_t bg = opt_background_thread;
	opt_background_thread = 0;
	(void)keep_mapping(65 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	opt_background_thread = 2;
	(void)keep_mapping(65 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 65 * MiB);
	(void)keep_mapping(200 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 200 * MiB);
	(void)keep_mapping(257 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 200 * MiB);
	opt_background_thread = bg;
	huge_keep_release(true);
}

/* The heap grows by `grown` bytes, a tick runs: `kept` bytes stay kept. */
static void
grow_and_tick(size_t grown, size_t kept)
{
	huge_note_fresh(grown);
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), kept);
}

/* A kept mapping goes once the heap has taken as many pages never touched
 * before as it holds (huge_note_fresh), at the next tick; the oldest first,
 * growth noted while none is kept does not count, and a reuse that empties
 * the list starts the count again.  The page heap's growth and a new huge
 * mapping count. */
static void
test_kept_growth(void **state)
{
	(void)state;
	size_t usable;
	huge_note_fresh(64 * MiB);	/* nothing kept: not counted */
	char *k = keep_mapping(8 * MiB);
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), 8 * MiB);
	grow_and_tick(4 * MiB, 8 * MiB);
	huge_note_fresh(4 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 8 * MiB);	/* at a tick */
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	assert_int_equal(huge_free(k, &usable), BLOCK_FREED);
	/* The oldest first; what is left of the growth counts on.  The
	 * second block, mapped new while the first was kept, is 8 MiB of
	 * growth: the first goes, and 4 MiB count against the second. */
	(void)keep_mapping(4 * MiB);
	k = keep_mapping(8 * MiB);
	assert_int_equal(huge_kept_mapped_bytes(), 12 * MiB);
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), 8 * MiB);
	grow_and_tick(3 * MiB, 8 * MiB);
	grow_and_tick(1 * MiB, 0);
	/* Taken for a new block: the count starts again at its next keep. */
	k = keep_mapping(8 * MiB);
	huge_note_fresh(6 * MiB);
	char *q = huge_alloc(8 * MiB, PC_PAGE, &zeroed);
	assert_ptr_equal(q, k);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);
	grow_and_tick(4 * MiB, 8 * MiB);
	/* A new huge mapping is growth (more than the kept one can serve). */
	q = huge_alloc(16 * MiB, PC_PAGE, &zeroed);
	assert_non_null(q);
	assert_ptr_not_equal(q, k);
	huge_keep_tick();
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	assert_int_equal(huge_free(q, &usable), BLOCK_LIVE);	/* kept */
	/* So are large blocks on pages the page heap never handed out
	 * (earlier tests left it some that it did: a few blocks more). */
	assert_int_equal(huge_kept_mapped_bytes(), 16 * MiB);
	char *big[24];
	int n = 0;
	while (n < 24 && huge_kept_mapped_bytes() != 0) {
		big[n] = pc_malloc(6 * MiB);
		assert_non_null(big[n]);
		memset(big[n++], 1, 6 * MiB);
		huge_keep_tick();
	}
	assert_int_equal(huge_kept_mapped_bytes(), 0);
	assert_true(n >= 3);	/* 16 MiB: not before the third */
	while (n > 0)
		pc_free(big[--n]);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_adopt_threshold_rises, no_kept),
		cmocka_unit_test_setup(test_alloc_free, no_kept),
		cmocka_unit_test_setup(test_bad_pointers, no_kept),
		cmocka_unit_test_setup(test_aligned, no_kept),
		cmocka_unit_test_setup(test_resize, no_kept),
		cmocka_unit_test_setup(test_adopt, no_kept),
		cmocka_unit_test_setup(test_adopt_failures, no_kept),
		cmocka_unit_test_setup(test_move_pages_refused, no_kept),
		cmocka_unit_test_setup(test_kept_reuse, no_kept),
		cmocka_unit_test_setup(test_kept_adopt, no_kept),
		cmocka_unit_test_setup(test_kept_limits, no_kept),
		cmocka_unit_test_setup(test_kept_growth, no_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
