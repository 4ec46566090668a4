/* Stack capture (src/stack.c): the frame-pointer walk and its fallback
 * report the same frames, skip drops innermost frames, captures work in
 * other threads and stop at max. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <ucontext.h>

#include "stack.h"

/* Whether return address a lies in function f (whose code is shorter than
 * 512 bytes: these are tiny). */
static int
in_fn(void *a, void (*f)(void))
{
	uintptr_t x = (uintptr_t)a, s = (uintptr_t)f;
	return x > s && x < s + 512;
}

static int depth_got;
static void *got[STACK_MAX_DEPTH];
static int skip_arg, max_arg = STACK_MAX_DEPTH;

__attribute__((noinline)) static void
leaf(void)
{
	depth_got = pc_stack_capture(got, max_arg, skip_arg);
	__asm__ __volatile__("" ::: "memory");	/* not a tail call */
}

__attribute__((noinline)) static void
mid(void)
{
	leaf();
	__asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void
top(void)
{
	mid();
	__asm__ __volatile__("" ::: "memory");
}

static void
check_frames(void)
{
	assert_true(depth_got >= 3);
	assert_true(in_fn(got[0], leaf));
	assert_true(in_fn(got[1], mid));
	assert_true(in_fn(got[2], top));
}

static void
test_stack_fp_and_fallback_agree(void **state)
{
	(void)state;
	void *fp[STACK_MAX_DEPTH];
	skip_arg = 0;
	stack_force_fallback(0);
	top();
	top();	/* the first walk may have taught where walks end */
	check_frames();
	int nfp = depth_got;
	memcpy(fp, got, sizeof(fp));
	stack_stats_t before, after;
	stack_stats_get(&before);
	stack_force_fallback(1);
	top();
	stack_force_fallback(0);
	stack_stats_get(&after);
	assert_true(after.fallback > before.fallback);
	check_frames();
	/* Up to the caller of top, both unwinders must agree frame by frame
	 * (the call sites differ: compare the innermost three). */
	assert_true(nfp >= 3);
	for (int i = 0; i < 3; i++)
		assert_true(in_fn(fp[i], i == 0 ? leaf : i == 1 ? mid : top) &&
		    in_fn(got[i], i == 0 ? leaf : i == 1 ? mid : top));
}

static void
test_stack_skip(void **state)
{
	(void)state;
	skip_arg = 1;
	top();
	skip_arg = 0;
	assert_true(depth_got >= 2);
	assert_true(in_fn(got[0], mid));
	assert_true(in_fn(got[1], top));
}

static void
test_stack_max(void **state)
{
	(void)state;
	max_arg = 2;
	top();
	max_arg = STACK_MAX_DEPTH;
	assert_int_equal(depth_got, 2);
	assert_true(in_fn(got[0], leaf));
	assert_true(in_fn(got[1], mid));
	assert_int_equal(pc_stack_capture(got, 0, 0), 0);
}

/* A thread whose frames all have frame pointers down to the C library's
 * start code (cmocka's, on the main thread, may not).  Under TSan a thread
 * starts in the sanitizer's runtime, not the C library's start code: the
 * walk then breaks somewhere unknown and the fallback serves it. */
#ifdef PC_TSAN		/* compiler.h */
#define STACK_TEST_THREAD_WALK 0
#else
#define STACK_TEST_THREAD_WALK 1
#endif

static void *
thread_main(void *arg)
{
	(void)arg;
	/* The walk, not the fallback, serves every capture, the first one
	 * too: the broken link after start_thread's return address is known
	 * to be the C library's start code without asking the unwinder. */
	for (int i = 0; i < 2; i++) {
		stack_stats_t before, after;
		stack_stats_get(&before);
		top();
		stack_stats_get(&after);
		check_frames();
		if (!STACK_TEST_THREAD_WALK)
			continue;
		assert_int_equal(after.fp, before.fp + 1);
		assert_int_equal(after.fallback, before.fallback);
	}
	return NULL;
}

static void
test_stack_thread(void **state)
{
	(void)state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, thread_main, NULL), 0);
	pthread_join(t, NULL);
}

/* Which frame records the walk believes.  A program built without frame
 * pointers keeps data in rbp: a saved "frame pointer" of -16 once wrapped
 * fp + 16 around to 0, passed the bound and was read (a crash in CPython's
 * test_long with guard_sample:4k). */
static void
test_stack_record_bounds(void **state)
{
	(void)state;
	uintptr_t lo = 0x7ffffffd0000, top = 0x7ffffffff000;
	assert_true(stack_record_ok(lo, lo, top));
	assert_true(stack_record_ok(top - 16, lo, top));
	assert_false(stack_record_ok(top - 8, lo, top));	/* record past top */
	assert_false(stack_record_ok(top, lo, top));
	assert_false(stack_record_ok(lo - 16, lo, top));	/* below lo */
	assert_false(stack_record_ok(lo + 4, lo, top));		/* misaligned */
	assert_false(stack_record_ok((uintptr_t)-16, lo, top));	/* wraps */
	assert_false(stack_record_ok((uintptr_t)-8, lo, top));
	assert_false(stack_record_ok(UINTPTR_MAX & ~(uintptr_t)7, lo, top));
}

/* Code running on a stack that is not its thread's own (a coroutine's,
 * here a static array): the walk is not started there (between that stack
 * and the thread's top lie other mappings a garbage frame pointer could
 * lead into); the fallback serves it, with the right frames. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_TEST_SWAPCONTEXT 0	/* the sanitizers do not follow it */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STACK_TEST_SWAPCONTEXT 0
#endif
#endif
#ifndef STACK_TEST_SWAPCONTEXT
#define STACK_TEST_SWAPCONTEXT 1
#endif

#if STACK_TEST_SWAPCONTEXT
static ucontext_t uc_main, uc_co;
static char co_stack[256 * 1024] __attribute__((aligned(64)));

static void
co_main(void)
{
	top();
}

static void
test_stack_foreign_stack(void **state)
{
	(void)state;
	assert_int_equal(getcontext(&uc_co), 0);
	uc_co.uc_stack.ss_sp = co_stack;
	uc_co.uc_stack.ss_size = sizeof(co_stack);
	uc_co.uc_link = &uc_main;
	makecontext(&uc_co, co_main, 0);
	top();	/* this thread's stack bounds are known */
	stack_stats_t before, after;
	stack_stats_get(&before);
	depth_got = 0;
	assert_int_equal(swapcontext(&uc_main, &uc_co), 0);
	stack_stats_get(&after);
	assert_int_equal(after.fp, before.fp);
	assert_int_equal(after.fallback, before.fallback + 1);
	check_frames();
}
#endif

int
main(void)
{
	stack_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stack_fp_and_fallback_agree),
		cmocka_unit_test(test_stack_skip),
		cmocka_unit_test(test_stack_max),
		cmocka_unit_test(test_stack_thread),
		cmocka_unit_test(test_stack_record_bounds),
#if STACK_TEST_SWAPCONTEXT
		cmocka_unit_test(test_stack_foreign_stack),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
