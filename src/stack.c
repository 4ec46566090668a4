/*
 * Stack capture: a bounded frame-pointer walk with backtrace() as the
 * fallback (see stack.h for the contract and why).
 */
#include <string.h>

#include "stack.h"
#include "compiler.h"
#include "os.h"
#include "locks.h"

/* The top (highest address) of the calling thread's stack; 0 until this
 * thread's first capture looked it up, 1 if the OS could not say (then
 * every capture uses the fallback). */
static PC_TLS uintptr_t stack_top;
/* Its lowest address: a walk starts only from a frame inside [bottom,
 * top), the thread's own stack, all of it mapped.  Code running on another
 * stack (a coroutine's, a signal handler's alternate stack) gets the
 * fallback unwinder: between such a stack and the thread's top lie other
 * mappings and gaps a garbage frame pointer could lead into. */
static PC_TLS uintptr_t stack_bottom;

static uint64_t stack_nfp, stack_nfallback;

/*
 * Fork against the unwinder's loading.  glibc dlopens libgcc_s at the
 * process's first backtrace(); a fork from another thread in the middle
 * of that dlopen gives a child in which libgcc_s is loaded but unknown to
 * _dl_find_object, and there the next backtrace() (ours, or the program's)
 * aborts inside libgcc without a word.  Guarded sampling starts that first
 * call from whatever thread its first walk breaks in, so a fork must not
 * overlap it: the prepare handler waits until no first call is under way
 * (stack_loading 0), and none starts while a fork is being prepared
 * (stack_forking: the capture keeps the walk's frames instead).  Store,
 * then load, on both sides (sequentially consistent): either the loader
 * sees the fork and backs off, or the fork sees the loader and waits.
 * Should the wait not end (a C library that holds the loader's lock
 * across fork handlers would make the loader wait on the fork), the fork
 * goes on after 2 s and the child never calls the unwinder.
 *
 * The lookups of the C library's code (stack_libc_lookup) and of this
 * library's own (sample_self_lookup) are such first calls too:
 * dl_iterate_phdr holds the loader's write lock while it runs, and glibc
 * does not reset that lock in a fork child, so a child forked in the
 * middle of it hangs at its own next dl_iterate_phdr.  Both are made from
 * the constructor, before sampling starts, so no allocation makes them;
 * should the C library's not have been, it goes through the same
 * protocol.  (A libgcc older than GCC 12, or a C library without
 * _dl_find_object, unwinds with dl_iterate_phdr at every backtrace():
 * there a sample taken by a fork child of a process that was unwinding
 * can still hang.)
 */
static bool stack_unwinder_loaded;	/* atomic */
static unsigned stack_loading;		/* atomic: first calls under way */
/* atomic: prepare handlers running (on the locks' page, locks.h) */
#define stack_forking locks_global.stack_forking
static bool stack_unwinder_cut;		/* a child whose load fork cut */

/*
 * A first call into the loader (backtrace()'s first, which loads libgcc_s,
 * or the C library's range, read with dl_iterate_phdr): false without
 * entering when it would overlap a fork, or in a child whose fork cut one.
 * A true return must be paired with stack_loader_leave().
 */
bool
stack_loader_enter(void)
{
	if (stack_unwinder_cut)
		return false;
	/* One first call at a time: another one under way may also be, in
	 * a fork child whose handler has not run yet, one that the fork cut
	 * (there stack_forking may already read 0: its page is wiped). */
	if (__atomic_fetch_add(&stack_loading, 1, __ATOMIC_SEQ_CST) != 0 ||
	    __atomic_load_n(&stack_forking, __ATOMIC_SEQ_CST) != 0) {
		__atomic_fetch_sub(&stack_loading, 1, __ATOMIC_SEQ_CST);
		return false;
	}
	return true;
}

void
stack_loader_leave(void)
{
	__atomic_fetch_sub(&stack_loading, 1, __ATOMIC_SEQ_CST);
}

/* backtrace(), or 0 without calling it when its first call would overlap
 * a fork. */
static int
stack_backtrace(void **buf, int want)
{
	if (PC_LIKELY(__atomic_load_n(&stack_unwinder_loaded,
	    __ATOMIC_ACQUIRE)))
		return os_backtrace(buf, want);
	if (!stack_loader_enter())
		return 0;
	int got = os_backtrace(buf, want);
	__atomic_store_n(&stack_unwinder_loaded, true, __ATOMIC_RELEASE);
	stack_loader_leave();
	return got;
}

void
stack_prefork(void)
{
	__atomic_fetch_add(&stack_forking, 1, __ATOMIC_SEQ_CST);
	for (unsigned ms = 0; __atomic_load_n(&stack_loading, __ATOMIC_SEQ_CST)
	    != 0 && ms < 2000; ms++)
		os_sleep_ms(1);
}

void
stack_postfork_parent(void)
{
	__atomic_fetch_sub(&stack_forking, 1, __ATOMIC_SEQ_CST);
}

PC_COLD void
stack_postfork_child(void)
{
	/* Written only when needed: a page the child writes first is a
	 * copy-on-write fault. */
	if (__atomic_load_n(&stack_loading, __ATOMIC_RELAXED) != 0) {
		stack_unwinder_cut = true;
		stack_loading = 0;
	}
	/* stack_forking: zero in a child, wiped with the locks' page or
	 * cleared with them (locks_postfork_child). */
}

/*
 * Return addresses at which a walk may end on a broken link: the outermost
 * frames of a thread are the C library's start code (__libc_start_call_main,
 * start_thread), built without frame pointers, so the record of the
 * function they call links to garbage.  Such a return address is learnt
 * the first time the fallback unwinder agrees with everything the walk
 * found up to it; from then on a walk ending there is complete.  A few
 * entries suffice: a process has one or two thread entry points.  Only
 * needed where the C library's own code is not known (stack_is_start).
 */
#define STACK_TERMINALS 8
static uintptr_t stack_terminal[STACK_TERMINALS];

static bool
stack_is_terminal(uintptr_t ret)
{
	for (unsigned i = 0; i < STACK_TERMINALS; i++) {
		uintptr_t t = __atomic_load_n(&stack_terminal[i],
		    __ATOMIC_RELAXED);
		if (t == ret)
			return true;
		if (t == 0)
			break;
	}
	return false;
}

/*
 * The C library's code, looked up once (os_libc_text).  A walk that breaks
 * just after a return address into it, from an indirect call, has reached
 * the start code (__libc_start_call_main calling main, start_thread
 * calling a thread's function, through pointers) and is complete, without
 * asking the fallback unwinder, which would load libgcc_s into a program
 * built with frame pointers only to confirm it.  A direct call is the C
 * library calling malloc itself (strdup, fopen: through the PLT, a direct
 * call): the walk broke inside it, and its caller is in the fallback's
 * stack, so that one still goes to the fallback.  The cost: a stack through
 * a C library function that calls back (qsort's comparator) and keeps data
 * in the frame-pointer register ends at that function.  An empty range
 * (the C library linked into the program) matches nothing.
 */
static uintptr_t stack_libc_lo, stack_libc_hi;
static bool stack_libc_known;

/* Whether the call that pushed return address ret was a direct one
 * (false when this architecture's calls are not known here). */
static bool
stack_call_direct(uintptr_t ret)
{
#if defined(__x86_64__)
	/* call rel32: e8 and four bytes; indirect calls are ff /2. */
	return *(const uint8_t *)(ret - 5) == 0xe8;
#elif defined(__aarch64__)
	/* bl: 100101 and a 26-bit offset; blr is d63f0000 | Rn << 5. */
	uint32_t insn;
	memcpy(&insn, (const void *)(ret - 4), sizeof(insn));
	return (insn & 0xfc000000u) == 0x94000000u;
#else
	(void)ret;
	return true;
#endif
}

void
stack_libc_lookup(void)
{
	if (__atomic_load_n(&stack_libc_known, __ATOMIC_ACQUIRE) ||
	    !stack_loader_enter())
		return;
	uintptr_t lo, hi;
	if (os_libc_text(&lo, &hi) != 0)
		lo = hi = 0;
	/* Racing threads store the same values. */
	__atomic_store_n(&stack_libc_lo, lo, __ATOMIC_RELAXED);
	__atomic_store_n(&stack_libc_hi, hi, __ATOMIC_RELAXED);
	__atomic_store_n(&stack_libc_known, true, __ATOMIC_RELEASE);
	stack_loader_leave();
}

static bool
stack_is_start(uintptr_t ret)
{
	if (!__atomic_load_n(&stack_libc_known, __ATOMIC_ACQUIRE)) {
		stack_libc_lookup();
		/* Not now (a fork): the fallback decides. */
		if (!__atomic_load_n(&stack_libc_known, __ATOMIC_ACQUIRE))
			return false;
	}
	uintptr_t lo = __atomic_load_n(&stack_libc_lo, __ATOMIC_RELAXED);
	uintptr_t hi = __atomic_load_n(&stack_libc_hi, __ATOMIC_RELAXED);
	/* ret - 5 too must be inside: the call's bytes are read. */
	return ret >= lo + 8 && ret < hi && !stack_call_direct(ret);
}

static void
stack_learn_terminal(uintptr_t ret)
{
	for (unsigned i = 0; i < STACK_TERMINALS; i++) {
		uintptr_t t = 0;
		if (__atomic_compare_exchange_n(&stack_terminal[i], &t, ret,
		    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED) || t == ret)
			return;
	}
}
static int stack_fallback_forced;

static uintptr_t
stack_top_get(void)
{
	if (PC_UNLIKELY(stack_top == 0)) {
		uintptr_t lo, hi;
		stack_top = os_thread_stack(&lo, &hi) == 0 ? hi : 1;
		stack_bottom = stack_top > 1 ? lo : 0;
	}
	return stack_top;
}

/*
 * May a frame record sit at fp?  Only between lo (the end of the previous
 * record) and the top of the stack, aligned.  top - fp, not fp + 16: a
 * garbage fp near 2^64 (programs built without frame pointers keep data
 * in rbp) must not wrap around into the range.
 */
bool
stack_record_ok(uintptr_t fp, uintptr_t lo, uintptr_t top)
{
	return fp >= lo && fp < top && top - fp >= 2 * sizeof(void *) &&
	    (fp & (sizeof(void *) - 1)) == 0;
}

/*
 * The walk: each frame record is {previous frame, return address} (the
 * x86-64 and AArch64 layouts).  A record is believed only if it lies
 * between the previous one and the top of the stack and is aligned;
 * otherwise it returns -1 - n, n the frames stored until then.  Reaching
 * the outermost frame (a null frame pointer, or a null return address)
 * ends the walk normally.
 */
/* Reads saved frame records of the caller's frames: not user objects, so
 * not for AddressSanitizer to check. */
__attribute__((no_sanitize("address")))
static PC_NOINLINE int
stack_walk_fp(void **frames, int max, int skip, uintptr_t top)
{
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	uintptr_t lo = fp;
	if (fp < stack_bottom || fp >= top)
		return -1;	/* not on the thread's own stack */
	int n = 0;
	/* The first record is this function's own (stack.c is built with
	 * frame pointers): its return address goes into pc_stack_capture,
	 * which is not reported. */
	skip += 1;
	while (n < max) {
		if (!stack_record_ok(fp, lo, top))
			return -1 - n;
		const uintptr_t *rec = (const uintptr_t *)fp;
		uintptr_t ret = rec[1];
		uintptr_t next = rec[0];
		if (ret == 0)
			break;
		if (skip > 0)
			skip--;
		else
			frames[n++] = (void *)ret;
		if (next == 0)
			break;
		if (next <= fp)
			return -1 - n;
		lo = fp + 2 * sizeof(void *);
		fp = next;
	}
	return n;
}

int
pc_stack_capture(void **frames, int max, int skip)
{
	if (max <= 0)
		return 0;
	if (max > STACK_MAX_DEPTH)
		max = STACK_MAX_DEPTH;
	uintptr_t top = stack_top_get();
	int partial = 0;
	if (top > 1 && !__atomic_load_n(&stack_fallback_forced,
	    __ATOMIC_RELAXED)) {
		int n = stack_walk_fp(frames, max, skip, top);
		if (n < 0) {
			partial = -1 - n;
			uintptr_t last = partial > 0 ?
			    (uintptr_t)frames[partial - 1] : 0;
			if (partial > 0 && (stack_is_terminal(last) ||
			    stack_is_start(last)))
				n = partial;
		}
		if (n >= 0) {
			__atomic_fetch_add(&stack_nfp, 1, __ATOMIC_RELAXED);
			return n;
		}
	}
	/* The unwinder's frames start at the return address into this
	 * function's caller, like ours with skip 0. */
	void *buf[STACK_MAX_DEPTH + 8];
	int want = max + skip + 1;
	if (want > (int)PC_ARRAY_LEN(buf))
		want = (int)PC_ARRAY_LEN(buf);
	int got = stack_backtrace(buf, want);
	if (got == 0)	/* not now (a fork): the walk's frames stand */
		return partial;
	__atomic_fetch_add(&stack_nfallback, 1, __ATOMIC_RELAXED);
	/* buf[0] is inside os_backtrace, buf[1] inside pc_stack_capture,
	 * buf[2] the return address into our caller, which this function
	 * knows without unwinding: look for it, as an interceptor of
	 * backtrace() (AddressSanitizer's) may add frames of its own. */
	void *ret = __builtin_return_address(0);
	int first = 2;
	for (int i = 0; i < got && i < 8; i++) {
		if (buf[i] == ret) {
			first = i;
			break;
		}
	}
	first += skip;
	if (partial > 0 && got - first > partial) {
		/* The walk broke after `partial` frames the unwinder
		 * confirms, and the unwinder found the rest: if that rest is
		 * just the C library's start code, learn where walks end. */
		bool same = true;
		for (int i = 0; i < partial && same; i++)
			same = buf[first + i] == frames[i];
		if (same && got - first - partial <= 3)
			stack_learn_terminal((uintptr_t)frames[partial - 1]);
	}
	int n = 0;
	for (int i = first; i < got && n < max; i++)
		frames[n++] = buf[i];
	return n;
}

void
stack_stats_get(stack_stats_t *out)
{
	out->fp = __atomic_load_n(&stack_nfp, __ATOMIC_RELAXED);
	out->fallback = __atomic_load_n(&stack_nfallback, __ATOMIC_RELAXED);
}

void
stack_init(void)
{
	void *buf[4];
	(void)stack_backtrace(buf, 4);
}

void
stack_force_fallback(int on)
{
	__atomic_store_n(&stack_fallback_forced, on, __ATOMIC_RELAXED);
}
