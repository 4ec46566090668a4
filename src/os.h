/*
 * The OS contract.  Everything platform specific sits behind these
 * functions and the feature bits below; src/os_linux.c and
 * src/os_windows.c implement them, and besides them only this header (for
 * the feature bits and os_lock_t), compiler.h, os_tls.h and override*.c
 * test the platform.  None of them allocates through malloc.
 */
#ifndef PC_OS_H
#define PC_OS_H

#include "compiler.h"

/*
 * Feature bits: what the platform can do, as constants, so callers compile
 * out (or skip at run time) work that cannot succeed, without testing the
 * platform themselves.  Each is 1 where the OS layer provides it.
 *
 * PC_OS_CAN_RECLAIM: another thread may read and write a thread's cache
 *   pointer (a plain initial-exec thread-local, not a TEB slot) and
 *   os_remote_fence can work, so idle threads' caches can be emptied from
 *   outside (tcache.h, reclaim.c).
 * PC_OS_CAN_MERGE_RESERVATIONS: two adjacent reservations may be released
 *   as one (os_can_merge_reservations() answers the same).
 * PC_OS_CAN_REMAP: os_remap can grow or move a mapping without copying;
 *   where it is 0, os_remap always returns NULL.
 */
#if defined(_WIN32)
#define PC_OS_CAN_RECLAIM 0
#define PC_OS_CAN_MERGE_RESERVATIONS 0
#define PC_OS_CAN_REMAP 0
#else
#define PC_OS_CAN_RECLAIM 1
#define PC_OS_CAN_MERGE_RESERVATIONS 1
#define PC_OS_CAN_REMAP 1
#endif

/*
 * Memory.  os_reserve returns readable, writable, zero-filled memory of
 * `size` bytes aligned to `align` (a power of two, at least a page), or NULL.
 * os_purge gives the pages back to the OS; they read as zero afterwards,
 * unless it returns false: the OS kept them, contents and all (Linux:
 * memory locked by mlock or mlockall, where MADV_DONTNEED fails).
 * os_remap grows a region from os_reserve: in place when `target` is NULL,
 * otherwise by moving its pages onto `target` (a region of new_size bytes
 * from os_reserve, which it replaces) without copying.  It returns the
 * region's new address, or NULL if the OS cannot (nothing changed then).
 */
void *os_reserve(size_t size, size_t align);
/* As os_reserve, preferring exactly `hint` (then no other address is
 * tried first); the caller checks where it landed. */
void *os_reserve_near(size_t size, size_t align, void *hint);
/* Whether two adjacent reservations may be treated as one (released with
 * one os_release spanning both). */
bool  os_can_merge_reservations(void);
void  os_release(void *p, size_t size);
bool  os_purge(void *p, size_t size);
/*
 * How many of the first pages of [p, p + size) (p page aligned) are
 * resident, looking at min(size's pages, max_pages, OS_RESIDENT_MAX)
 * pages from p: the count among those, or OS_RESIDENT_UNKNOWN where the OS
 * cannot tell cheaply (or p is not mapped).  A snapshot, for deciding
 * whether a purge is worth its cost.
 */
#define OS_RESIDENT_UNKNOWN ((size_t)-1)
#define OS_RESIDENT_MAX 1024
size_t os_resident(void *p, size_t size, size_t max_pages);
void *os_remap(void *p, size_t old_size, size_t new_size, void *target);
/*
 * Move the pages of [p, p + size) (page aligned, inside one region from
 * os_reserve) to a new region of new_size >= size bytes, without copying,
 * leaving [p, p + size) mapped with fresh zero pages.  Returns the new
 * region, or NULL with the contents still at p (always where
 * PC_OS_CAN_REMAP is 0).
 */
void *os_move_pages(void *p, size_t size, size_t new_size);
/* Undo os_move_pages, whose region q of `mapped` bytes holds p's pages in
 * its first `size` bytes: the pages go back to p, q is released. */
void  os_unmove_pages(void *q, size_t size, size_t mapped, void *p);
/*
 * Metadata memory: `size` bytes (a multiple of the page), readable,
 * writable and zero-filled, between two inaccessible guard pages.  User
 * mappings land next to ours, so a linear overflow out of one must fault
 * on a guard before it reaches allocator metadata.  Released whole, with
 * the same size, by os_release_guarded.
 */
void *os_reserve_guarded(size_t size);
void  os_release_guarded(void *p, size_t size);
/* Ask that a child made by fork receive [p, p + size) (page aligned,
 * anonymous private memory) zeroed instead of copied, or (wipe false)
 * copied again; whether the OS did (locks.h). */
bool  os_wipe_on_fork(void *p, size_t size, bool wipe);
/* Shrink a region from os_reserve in place, releasing its tail. */
void  os_release_tail(void *p, size_t old_size, size_t new_size);
size_t os_page_size(void);
/* Transparent huge pages for a region: 0 leave the system default,
 * 1 ask for them, 2 refuse them. */
void  os_hugepage(void *p, size_t size, int mode);

/* Fault injection for tests: the n-th reservation from now and every one
 * after it fail, until this is called with 0. */
void os_fail_reserve_after(unsigned long n);
/* For the os_*.c files: whether this reservation is to fail. */
bool os_injected_failure(void);

/* CPUs.  os_cpu may return any number; callers reduce it to a range. */
unsigned os_cpu(void);
unsigned os_ncpus(void);

/* Diagnostics: write to stderr without allocating. */
void os_write_err(const char *s, size_t n);
/* Keep a private copy of stderr for reports at exit, which programs that
 * close their standard streams at exit would otherwise swallow. */
void os_keep_stderr(void);
/* Look up an environment variable without allocating; NULL if unset or
 * not yet available. */
const char *os_getenv(const char *name);

/*
 * Threads.  os_thread_exit_init registers `fn` to be called with the value
 * given to os_thread_exit_arm when a thread that armed it exits.
 */
int  os_thread_exit_init(void (*fn)(void *));
int  os_thread_exit_arm(void *arg);
int  os_atfork(void (*prepare)(void), void (*parent)(void),
    void (*child)(void));
void os_yield(void);
/* Start a detached helper thread; 0 or an errno code. */
int  os_thread_start(void (*fn)(void *), void *arg);
void os_sleep_ms(unsigned ms);

/*
 * Asymmetric fence: returns once every other thread of the process has
 * executed a full memory barrier (or is not running, which implies one).
 * Paired with a compiler-only barrier on the other side, a store then a
 * load on each side cannot both miss the other's store.  False if the OS
 * cannot do it (the caller must then not rely on it).
 */
bool os_remote_fence(void);
/* False once os_remote_fence has failed: callers skip work that needs it. */
bool os_remote_fence_available(void);
/* Copy n bytes from src, which may be unmapped: false then, no fault. */
bool os_read_safe(void *dst, const void *src, size_t n);
/* Whether the page holding p is mapped (reserved) in this process. */
bool os_is_mapped(const void *p);

/*
 * Guarded sampling (guard.c).  os_reserve_noaccess reserves `size` bytes
 * of address space that fault on any access (no memory, no commit
 * charge); os_protect opens (rw true) or closes pages of it again.  0 or
 * an errno code.
 */
void *os_reserve_noaccess(size_t size);
int   os_protect(void *p, size_t size, bool rw);
/* An id of the calling thread for reports (the kernel's thread id). */
uint64_t os_thread_id(void);
/* Symbolise a code address where the platform can: the symbol and the
 * object holding it (NULL when not known) and pc's offset from the symbol
 * (or from the object's base).  False if nothing is known. */
bool  os_symbolize(const void *pc, const char **sym, const char **obj,
    uintptr_t *off);
/*
 * Memory faults (SIGSEGV and SIGBUS on POSIX): fn is called, in the
 * faulting thread and on the signal's stack (nothing there may allocate
 * or lock), with the faulting address, OS_FAULT_READ/WRITE/UNKNOWN, and
 * the faulting instruction (NULL if unknown).  It returns true when it has
 * dealt with the fault (the instruction is retried); false hands the
 * fault to the handler installed before ours, or to the default action.
 * Handlers installed after ours replace it for the whole process (their
 * faults never reach fn).  0, or an errno code (ENOSYS: not supported).
 */
enum { OS_FAULT_UNKNOWN, OS_FAULT_READ, OS_FAULT_WRITE };
int   os_fault_handler_install(bool (*fn)(void *addr, int access,
    const void *pc));

/* Locks: never allocate, statically initialisable; all zero is unlocked
 * on glibc, musl and Windows (locks.h, which makes a fork child's locks
 * zero pages, relies on it where true).  Each counts the acquisitions
 * that found it held (ncontended, written by the holder, read by
 * statistics with os_lock_contended; kept by os_lock_init): what
 * docs/design.md's scaling figures are made of.
 * Counting costs nothing when the lock is free: a try first, and only its
 * failure (a wait anyway) pays the count. */
#if defined(_WIN32)
typedef struct { void *srw; uint64_t ncontended; } os_lock_t;
#define OS_LOCK_INIT { 0, 0 }
#else
#include <pthread.h>
typedef struct { pthread_mutex_t m; uint64_t ncontended; } os_lock_t;
#define OS_LOCK_INIT { PTHREAD_MUTEX_INITIALIZER, 0 }
#endif
void os_lock_init(os_lock_t *l);
void os_lock(os_lock_t *l);
void os_unlock(os_lock_t *l);
static inline uint64_t
os_lock_contended(const os_lock_t *l)
{
	return __atomic_load_n(&l->ncontended, __ATOMIC_RELAXED);
}

/* Stack capture (stack.c).  os_thread_stack: the calling thread's stack
 * [lo, hi), 0 or an errno code; may allocate.  os_backtrace: the unwinder
 * of the C library (DWARF tables, no frame pointers needed), innermost
 * first, frames[0] inside os_backtrace; its first call may allocate.
 * Both: the profiler is built on Linux only; other systems answer ENOSYS
 * and 0. */
int os_thread_stack(uintptr_t *lo, uintptr_t *hi);
/* The code of the C library's shared object, [lo, hi): a frame-pointer
 * walk (stack.c) that breaks just after a return address into it has
 * reached a thread's start code.  0, or an errno code (ENOENT when the C
 * library is linked into the program, ENOSYS elsewhere).  Never allocates
 * and reads no file. */
int os_libc_text(uintptr_t *lo, uintptr_t *hi);
int os_backtrace(void **frames, int max) PC_NOINLINE;

/* Monotonic time in nanoseconds. */
uint64_t os_now_ns(void);

/*
 * A periodic chore's gate: true, for one caller only, once `now` has
 * reached the deadline at *next (0: at once), which then moves to now +
 * period; false otherwise.  A relaxed compare-and-swap: of threads that
 * find it due together, one wins.  *was, unless was is NULL, gets the
 * deadline found (0 on the first call ever).
 */
static PC_INLINE bool
os_due(uint64_t *next, uint64_t now, uint64_t period, uint64_t *was)
{
	uint64_t due = __atomic_load_n(next, __ATOMIC_RELAXED);
	if (was != NULL)
		*was = due;
	return now >= due && __atomic_compare_exchange_n(next, &due,
	    now + period, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* 64 unpredictable bits (the OS's random source if it answers without
 * blocking, else what the process was started with, mixed with time). */
uint64_t os_random(void);

#endif
