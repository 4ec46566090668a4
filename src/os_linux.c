/*
 * Linux implementation of the OS contract (os.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "os.h"
#include "config.h"


static void *
os_map(void *hint, size_t size)
{
	void *p = mmap(hint, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *
os_reserve(size_t size, size_t align)
{
	if (os_injected_failure())
		return NULL;
	if (size == 0 || size > PC_MAX_ALLOC)
		return NULL;
	if (align <= PC_PAGE)
		return os_map(NULL, size);
	/* Try the exact size first: a fresh mapping next to our previous
	 * ones is often aligned already. */
	void *p = os_map(NULL, size);
	if (p == NULL)
		return NULL;
	if (((uintptr_t)p & (align - 1)) == 0)
		return p;
	munmap(p, size);
	if (size + align < size)
		return NULL;
	size_t over = size + align - PC_PAGE;
	p = os_map(NULL, over);
	if (p == NULL)
		return NULL;
	uintptr_t start = (uintptr_t)p;
	uintptr_t aligned = PC_ALIGN_UP(start, align);
	size_t lead = aligned - start;
	size_t trail = over - lead - size;
	if (lead)
		munmap(p, lead);
	if (trail)
		munmap((void *)(aligned + size), trail);
	return (void *)aligned;
}

void *
os_reserve_near(size_t size, size_t align, void *hint)
{
	if (hint != NULL && ((uintptr_t)hint & (align - 1)) == 0 &&
	    size <= PC_MAX_ALLOC) {
		if (os_injected_failure())
			return NULL;
		/* NOREPLACE: never clobber a mapping at the hint (kernels
		 * before 4.17 treat it as a plain hint; checked below). */
		void *p = mmap(hint, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		    MAP_FIXED_NOREPLACE, -1, 0);
		if (p == hint)
			return p;
		if (p != MAP_FAILED)
			munmap(p, size);
	}
	return os_reserve(size, align);
}

bool
os_can_merge_reservations(void)
{
	return PC_OS_CAN_MERGE_RESERVATIONS;	/* munmap takes any range */
}

void
os_release(void *p, size_t size)
{
	munmap(p, size);
}

#ifndef MADV_WIPEONFORK	/* Linux 4.14; older headers lack them */
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif

bool
os_wipe_on_fork(void *p, size_t size, bool wipe)
{
	int saved = errno;	/* EINVAL from a kernel without it */
	bool ok = madvise(p, size, wipe ? MADV_WIPEONFORK : MADV_KEEPONFORK)
	    == 0;
	errno = saved;
	return ok;
}

/* One mapping, inaccessible, then its inside opened: the guards cost
 * address space only, never memory or commit charge. */
void *
os_reserve_guarded(size_t size)
{
	if (os_injected_failure())
		return NULL;
	if (size == 0 || size > PC_MAX_ALLOC)
		return NULL;
	char *p = mmap(NULL, size + 2 * PC_PAGE, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + PC_PAGE, size, PROT_READ | PROT_WRITE) != 0) {
		munmap(p, size + 2 * PC_PAGE);
		return NULL;
	}
	return p + PC_PAGE;
}

void
os_release_guarded(void *p, size_t size)
{
	munmap((char *)p - PC_PAGE, size + 2 * PC_PAGE);
}

void
os_release_tail(void *p, size_t old_size, size_t new_size)
{
	if (new_size < old_size)
		munmap((char *)p + new_size, old_size - new_size);
}

bool
os_purge(void *p, size_t size)
{
	int saved = errno;
	bool ok = madvise(p, size, MADV_DONTNEED) == 0;
	errno = saved;
	return ok;
}

size_t
os_resident(void *p, size_t size, size_t max_pages)
{
	/* mincore answers one byte per page; looking at a bounded number
	 * keeps the cost (a walk of the page tables) bounded too. */
	unsigned char vec[OS_RESIDENT_MAX];
	size_t n = PC_MIN(PC_MIN(size >> PC_PAGE_SHIFT, max_pages),
	    sizeof(vec));
	if (n == 0)
		return 0;
	int saved = errno;
	int rc = mincore(p, n << PC_PAGE_SHIFT, vec);
	errno = saved;
	if (rc != 0)
		return OS_RESIDENT_UNKNOWN;
	size_t r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

void
os_hugepage(void *p, size_t size, int mode)
{
	if (mode == 1)
		madvise(p, size, MADV_HUGEPAGE);
	else if (mode == 2)
		madvise(p, size, MADV_NOHUGEPAGE);
}

void *
os_remap(void *p, size_t old_size, size_t new_size, void *target)
{
	if (os_injected_failure())
		return NULL;
	void *q = target == NULL ? mremap(p, old_size, new_size, 0) :
	    mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED,
	    target);
	return q == MAP_FAILED ? NULL : q;
}

#ifndef MREMAP_DONTUNMAP	/* Linux 5.7; older headers lack it */
#define MREMAP_DONTUNMAP 4
#endif

/* Cleared when the kernel refuses MREMAP_DONTUNMAP (before Linux 5.7), or
 * after moves failed this many times in a row (each may leave a target
 * behind, below). */
#define MOVE_PAGES_MAX_FAILURES 8
static bool move_pages_off;
static unsigned move_pages_failures;

/*
 * The pages move with MREMAP_DONTUNMAP, which leaves the old range mapped
 * and empty: after a plain move it would be a hole until mapped again, and
 * another thread's mmap could land in it meanwhile.  The target is a
 * mapping of ours (this kernel, 6.18, refuses DONTUNMAP without
 * MREMAP_FIXED); if the move fails, kernels before 6.x may have unmapped
 * it before looking at the source, and someone else may have mapped there
 * since, so it is left alone: address space, never touched.
 *
 * DONTUNMAP unlocks the whole mapping the pages leave (a region), so
 * memory locked by mlockall(MCL_FUTURE) is not moved: there a new mapping
 * comes resident, which the target shows.
 */
static void
move_pages_failed(bool refused)
{
	if (refused || __atomic_add_fetch(&move_pages_failures, 1,
	    __ATOMIC_RELAXED) >= MOVE_PAGES_MAX_FAILURES)
		__atomic_store_n(&move_pages_off, true, __ATOMIC_RELAXED);
}

/*
 * The move just made, the other way; p is ours and mapped, so mapping over
 * it is safe.  Copying is the last resort: p's pages may be read-only (a
 * program's mprotect split the source, which is also how os_move_pages'
 * growth can fail).
 */
void
os_unmove_pages(void *q, size_t size, size_t mapped, void *p)
{
	int saved = errno;
	if (mremap(q, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p) {
		/* [q, q + size) is a hole now, maybe someone else's. */
		if (mapped > size)
			munmap((char *)q + size, mapped - size);
	} else {
		memcpy(p, q, size);
		munmap(q, mapped);
	}
	errno = saved;
}

void *
os_move_pages(void *p, size_t size, size_t new_size)
{
	if (os_injected_failure() ||
	    __atomic_load_n(&move_pages_off, __ATOMIC_RELAXED))
		return NULL;
	int saved = errno;
	void *t = os_map(NULL, size);
	unsigned char resident = 0;
	if (t != NULL && (mincore(t, PC_PAGE, &resident) != 0 ||
	    (resident & 1))) {
		munmap(t, size);
		t = NULL;
	}
	void *q = t == NULL ? MAP_FAILED : mremap(p, size, size,
	    MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, t);
	if (q == MAP_FAILED) {
		if (t != NULL)
			move_pages_failed(errno == EINVAL);
		errno = saved;
		return NULL;
	}
	void *r = new_size == size ? q : os_injected_failure() ? MAP_FAILED :
	    mremap(q, size, new_size, MREMAP_MAYMOVE);
	if (r == MAP_FAILED) {
		os_unmove_pages(q, size, size, p);
		move_pages_failed(false);
		errno = saved;
		return NULL;
	}
	__atomic_store_n(&move_pages_failures, 0, __ATOMIC_RELAXED);
	return r;
}

size_t
os_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * glibc 2.35+ registers rseq for every thread and publishes where its area
 * is; reading cpu_id from it costs one load.  Registering our own would fail
 * (one registration per thread), so we only read glibc's.
 */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

unsigned
os_cpu(void)
{
#if defined(__x86_64__)
	if (&__rseq_size != NULL && __rseq_size != 0) {
		char *tp;
		__asm__("mov %%fs:0, %0" : "=r"(tp));
		/* struct rseq: u32 cpu_id_start, u32 cpu_id, ... */
		int32_t cpu = *(volatile int32_t *)(tp + __rseq_offset + 4);
		if (cpu >= 0)
			return (unsigned)cpu;
	}
#endif
	int c = sched_getcpu();
	return c < 0 ? 0 : (unsigned)c;
}

unsigned
os_ncpus(void)
{
	/* The affinity mask, not sysconf: sysconf may read /sys through
	 * opendir, which allocates. */
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

static int os_err_fd = STDERR_FILENO;

void
os_keep_stderr(void)
{
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0)
		os_err_fd = fd;
}

void
os_write_err(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(os_err_fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

extern char **environ;
/* Set by ld.so before any user code runs; points at argc on the stack. */
extern void *__libc_stack_end;

const char *
os_getenv(const char *name)
{
	/* As secure_getenv: set-user-ID and similar programs ignore it. */
	if (getauxval(AT_SECURE))
		return NULL;
	char **env = environ;
	if (env == NULL && __libc_stack_end != NULL) {
		/* malloc can run inside ld.so before libc has set environ:
		 * the process stack holds argc, argv[], NULL, envp[]. */
		long *sp = (long *)__libc_stack_end;
		long argc = sp[0];
		if (argc >= 0 && argc < (1L << 24))
			env = (char **)(sp + 1 + argc + 1);
	}
	if (env == NULL)
		return NULL;
	size_t len = strlen(name);
	for (; *env != NULL; env++) {
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			return *env + len + 1;
	}
	return NULL;
}

static pthread_key_t os_exit_key;

int
os_thread_exit_init(void (*fn)(void *))
{
	return pthread_key_create(&os_exit_key, fn);
}

int
os_thread_exit_arm(void *arg)
{
	return pthread_setspecific(os_exit_key, arg);
}

int
os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	return pthread_atfork(prepare, parent, child);
}

void
os_yield(void)
{
	sched_yield();
}

struct os_thread_arg {
	void (*fn)(void *);
	void *arg;
};

static void *
os_thread_main(void *p)
{
	struct os_thread_arg a = *(struct os_thread_arg *)p;
	__atomic_store_n(&((struct os_thread_arg *)p)->fn, NULL,
	    __ATOMIC_RELEASE);
	a.fn(a.arg);
	return NULL;
}

int
os_thread_start(void (*fn)(void *), void *arg)
{
	struct os_thread_arg a = { fn, arg };
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&t, &attr, os_thread_main, &a);
	pthread_attr_destroy(&attr);
	if (err != 0)
		return err;
	/* `a` lives on this stack until the thread has copied it. */
	while (__atomic_load_n(&a.fn, __ATOMIC_ACQUIRE) != NULL)
		sched_yield();
	return 0;
}

void
os_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * membarrier(PRIVATE_EXPEDITED) interrupts the CPUs running this process's
 * threads and has each execute a barrier (Linux 4.14).  It needs a
 * registration, per process: a forked child registers again on EPERM.
 */
#ifndef MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#endif

static int remote_fence_unavailable;

bool
os_remote_fence_available(void)
{
	return !__atomic_load_n(&remote_fence_unavailable, __ATOMIC_RELAXED);
}

bool
os_remote_fence(void)
{
#ifdef SYS_membarrier
	int *unavailable = &remote_fence_unavailable;
	if (__atomic_load_n(unavailable, __ATOMIC_RELAXED))
		return false;
	int saved = errno;
	bool ok = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED,
	    0, 0) == 0;
	if (!ok && errno == EPERM &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	    0, 0) == 0)
		ok = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED,
		    0, 0) == 0;
	if (!ok)	/* old kernel, seccomp, valgrind: stop asking */
		__atomic_store_n(unavailable, 1, __ATOMIC_RELAXED);
	errno = saved;
	return ok;
#else
	__atomic_store_n(&remote_fence_unavailable, 1, __ATOMIC_RELAXED);
	return false;
#endif
}

bool
os_read_safe(void *dst, const void *src, size_t n)
{
	/* The kernel copies, and reports an unmapped source as EFAULT. */
	struct iovec local = { dst, n };
	struct iovec remote = { (void *)(uintptr_t)src, n };
	int saved = errno;
	bool ok = syscall(SYS_process_vm_readv, getpid(), &local, 1UL,
	    &remote, 1UL, 0UL) == (long)n;
	errno = saved;
	return ok;
}

bool
os_is_mapped(const void *p)
{
	/* mincore fails with ENOMEM exactly for an unmapped range. */
	unsigned char vec;
	int saved = errno;
	bool mapped = mincore((void *)((uintptr_t)p & ~(uintptr_t)(PC_PAGE - 1)),
	    PC_PAGE, &vec) == 0 || errno != ENOMEM;
	errno = saved;
	return mapped;
}

void
os_lock_init(os_lock_t *l)
{
	pthread_mutex_init(&l->m, NULL);
}

void
os_lock(os_lock_t *l)
{
	if (pthread_mutex_trylock(&l->m) == 0)
		return;
	pthread_mutex_lock(&l->m);
	__atomic_store_n(&l->ncontended, l->ncontended + 1, __ATOMIC_RELAXED);
}

void
os_unlock(os_lock_t *l)
{
	pthread_mutex_unlock(&l->m);
}

/* The dynamic loader's record of where the initial thread's stack ended
 * when the process started (just below argv); absent under musl. */
extern void *__libc_stack_end __attribute__((weak));

/*
 * The initial thread's stack without reading /proc/self/maps (which
 * pthread_getattr_np does for it, with stdio and sscanf on every line):
 * the top is the page holding __libc_stack_end (above it lie argv and the
 * environment: no frame records, all mapped); the bottom is the stack
 * limit below it, at most 128 MiB, the gap the kernel keeps between the
 * stack's top and the highest mmap (at exec: a program that raises its
 * limit later, as cc1 does, may have mappings inside, which is why only
 * the initial thread, by its id, gets this range, and only while its frame
 * lies in it).
 */
static int
os_main_stack(uintptr_t *lo, uintptr_t *hi)
{
	if (&__libc_stack_end == NULL || __libc_stack_end == NULL)
		return ENOSYS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return ENOSYS;	/* unlimited: mmaps may come close */
	uintptr_t top = ((uintptr_t)__libc_stack_end + PC_PAGE) &
	    ~(uintptr_t)(PC_PAGE - 1);
	uintptr_t size = PC_MIN((uintptr_t)rl.rlim_cur, (uintptr_t)128 << 20);
	if (size >= top)
		return ENOSYS;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (syscall(SYS_gettid) != getpid() || here < top - size ||
	    here >= top)
		return ENOENT;	/* another thread, or another stack */
	*lo = top - size;
	*hi = top;
	return 0;
}

int
os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
	if (os_main_stack(lo, hi) == 0)
		return 0;
	/* For other threads pthread_getattr_np reads the thread's own
	 * record; it may allocate: the caller allows it (stack.c). */
	pthread_attr_t attr;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return ENOSYS;
	int err = pthread_attr_getstack(&attr, &addr, &size);
	pthread_attr_destroy(&attr);
	if (err != 0)
		return err;
	*lo = (uintptr_t)addr;
	*hi = (uintptr_t)addr + size;
	return 0;
}

/* Whether an object's file name is the C library's: glibc's libc.so.6
 * (libc-2.NN.so before 2.34) or musl's, which is also its loader. */
static bool
os_libc_name(const char *path)
{
	if (path == NULL)
		return false;
	const char *b = path;
	for (const char *c = path; *c != '\0'; c++)
		if (*c == '/')
			b = c + 1;
	return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0 ||
	    strncmp(b, "ld-musl-", 8) == 0;
}

static int
os_libc_text_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t *range = arg;
	if (!os_libc_name(info->dlpi_name))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		uintptr_t hi = lo + ph->p_memsz;
		if (range[1] == 0 || lo < range[0])
			range[0] = lo;
		if (hi > range[1])
			range[1] = hi;
	}
	return range[1] != 0;
}

int
os_libc_text(uintptr_t *lo, uintptr_t *hi)
{
	/* dl_iterate_phdr takes the loader's lock and reads its list of
	 * objects: no allocation, no file read. */
	uintptr_t range[2] = { 0, 0 };
	dl_iterate_phdr(os_libc_text_cb, range);
	*lo = range[0];
	*hi = range[1];
	return range[1] != 0 ? 0 : ENOENT;
}

int
os_backtrace(void **frames, int max)
{
	int n = backtrace(frames, max);
	/* Not a tail call: frames[0] must be inside this function. */
	__asm__ __volatile__("" ::: "memory");
	return n;
}

uint64_t
os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
os_random(void)
{
	uint64_t r = 0;
	/* getrandom without blocking: early boot must not stall malloc. */
	if (syscall(SYS_getrandom, &r, sizeof(r), 0x0001 /* GRND_NONBLOCK */)
	    == (long)sizeof(r) && r != 0)
		return r;
	/* The kernel's 16 random bytes for this process (AT_RANDOM). */
	const unsigned char *at = (const unsigned char *)getauxval(AT_RANDOM);
	if (at != NULL)
		memcpy(&r, at + 8, sizeof(r));	/* glibc uses the first 8 */
	return r ^ os_now_ns() * 0x9e3779b97f4a7c15u ^ (uintptr_t)&r;
}

/* ---- Guarded sampling ----------------------------------------------- */

void *
os_reserve_noaccess(size_t size)
{
	if (os_injected_failure())
		return NULL;
	void *p = mmap(NULL, size, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int
os_protect(void *p, size_t size, bool rw)
{
	/* mprotect is a plain system call: safe in a signal handler too. */
	int saved = errno;
	int err = mprotect(p, size, rw ? PROT_READ | PROT_WRITE : PROT_NONE)
	    == 0 ? 0 : errno;
	errno = saved;
	return err;
}

uint64_t
os_thread_id(void)
{
	return (uint64_t)syscall(SYS_gettid);
}

bool
os_symbolize(const void *pc, const char **sym, const char **obj,
    uintptr_t *off)
{
	/* dladdr takes ld.so's lock: in a fault handler it could only
	 * deadlock if the fault hit inside ld.so itself, which never touches
	 * our guarded pages. */
	Dl_info info;
	if (dladdr(pc, &info) == 0)
		return false;
	*obj = info.dli_fname;
	*sym = info.dli_sname;
	uintptr_t base = (uintptr_t)(info.dli_saddr != NULL ?
	    info.dli_saddr : info.dli_fbase);
	*off = (uintptr_t)pc - base;
	return true;
}

static bool (*os_fault_fn)(void *addr, int access, const void *pc);
/* The handlers in place before ours, per signal. */
static struct sigaction os_fault_prev_segv, os_fault_prev_bus;

static void
os_fault_handler(int sig, siginfo_t *info, void *ctx)
{
	int saved = errno;
	int access = OS_FAULT_UNKNOWN;
	const void *pc = NULL;
#if defined(__x86_64__)
	/* The page-fault error code: bit 1 is set for a write. */
	const ucontext_t *uc = ctx;
	if (sig == SIGSEGV)
		access = (uc->uc_mcontext.gregs[REG_ERR] & 2) ?
		    OS_FAULT_WRITE : OS_FAULT_READ;
	pc = (const void *)uc->uc_mcontext.gregs[REG_RIP];
#endif
	if (os_fault_fn != NULL && os_fault_fn(info->si_addr, access, pc)) {
		errno = saved;
		return;
	}
	errno = saved;
	/* Not ours: the handler that was there before gets it. */
	struct sigaction *prev = sig == SIGSEGV ? &os_fault_prev_segv :
	    &os_fault_prev_bus;
	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, info, ctx);
	} else if (prev->sa_handler != SIG_DFL &&
	    prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
	} else {
		/* Default action (an ignored fault is not ignorable either):
		 * put it back and return; the instruction faults again and
		 * the kernel acts as if we had never been there (core dump,
		 * the right signal in the exit status). */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
	}
}

int
os_fault_handler_install(bool (*fn)(void *addr, int access,
    const void *pc))
{
	os_fault_fn = fn;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = os_fault_handler;
	/* On the alternate stack when the program has one: then a stack
	 * overflow the program expects to catch there still reaches its
	 * handler through ours. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	int saved = errno;
	int err = 0;
	if (sigaction(SIGSEGV, &sa, &os_fault_prev_segv) != 0 ||
	    sigaction(SIGBUS, &sa, &os_fault_prev_bus) != 0)
		err = errno;
	errno = saved;
	return err;
}
