/*
 * Windows implementation of the OS contract (os.h, os_tls.h), for
 * mingw-w64 on x86-64.  See docs/windows.md.
 *
 * Memory comes from VirtualAlloc, reserved and committed at once.  Windows
 * cannot give back part of a reservation, so os_release_tail only decommits
 * the tail (the address range stays reserved until the whole block is
 * released) and os_remap always fails, so callers copy.
 *
 * Thread exit is an FLS callback: it runs on the exiting thread for every
 * kind of thread (CreateThread, _beginthreadex, ExitThread, winpthreads),
 * and for the main thread at process exit, before DLL_PROCESS_DETACH and
 * before mingw's emutls destructors.  The module is pinned so the callback
 * cannot be unloaded under a later thread exit.
 *
 * The fast-path pointer of os_tls.h lives in a TlsAlloc slot, read straight
 * from the thread environment block: mingw's __thread is emutls, which
 * allocates through malloc.
 */
#include <errno.h>
#include <string.h>

#include <windows.h>
#include <intrin.h>

#include "os.h"
#include "os_tls.h"
#include "config.h"

_Static_assert(sizeof(((os_lock_t *)0)->srw) == sizeof(SRWLOCK),
    "os_lock_t holds an SRWLOCK");
_Static_assert(sizeof(void *) == 8, "the TEB offsets below are for x64");

/* x64 TEB: TlsSlots[64] and the TlsExpansionSlots pointer (1024 more). */
#define TEB_TLS_SLOTS		0x1480
#define TEB_TLS_EXPANSION	0x1780
#define TEB_TLS_NSLOTS		64

/* ---- Fault injection ---------------------------------------------------- */


/* ---- Memory ------------------------------------------------------------- */

static void *
os_alloc_at(void *at, size_t size)
{
	return VirtualAlloc(at, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

/*
 * VirtualAlloc places blocks on the allocation granularity (64 KiB).  A
 * larger alignment is found by reserving size + align, releasing it (a
 * reservation cannot be trimmed) and allocating again at the aligned
 * address inside; another thread may take that range in between, so retry.
 */
void *
os_reserve(size_t size, size_t align)
{
	if (os_injected_failure())
		return NULL;
	if (size == 0 || size > PC_MAX_ALLOC || size + align < size)
		return NULL;
	DWORD saved = GetLastError();
	void *p = os_alloc_at(NULL, size);
	if (p != NULL && ((uintptr_t)p & (align - 1)) != 0) {
		VirtualFree(p, 0, MEM_RELEASE);
		p = NULL;
		for (int tries = 0; tries < 16 && p == NULL; tries++) {
			void *r = VirtualAlloc(NULL, size + align, MEM_RESERVE,
			    PAGE_NOACCESS);
			if (r == NULL)
				break;
			VirtualFree(r, 0, MEM_RELEASE);
			uintptr_t at = PC_ALIGN_UP((uintptr_t)r, align);
			p = os_alloc_at((void *)at, size);
		}
	}
	SetLastError(saved);
	return p;
}

bool
os_wipe_on_fork(void *p, size_t size, bool wipe)
{
	(void)p, (void)size, (void)wipe;
	return false;		/* no fork */
}

/* VirtualAlloc rounds an address down to the allocation granularity: only
 * a block that starts exactly at the hint counts. */
void *
os_reserve_near(size_t size, size_t align, void *hint)
{
	if (hint != NULL && ((uintptr_t)hint & (align - 1)) == 0 &&
	    size != 0 && size <= PC_MAX_ALLOC) {
		if (os_injected_failure())
			return NULL;
		DWORD saved = GetLastError();
		void *p = os_alloc_at(hint, size);
		if (p != NULL && p != hint) {
			VirtualFree(p, 0, MEM_RELEASE);
			p = NULL;
		}
		SetLastError(saved);
		if (p != NULL)
			return p;
	}
	return os_reserve(size, align);
}

/* One VirtualFree(MEM_RELEASE) frees exactly one reservation. */
bool
os_can_merge_reservations(void)
{
	return PC_OS_CAN_MERGE_RESERVATIONS;
}

/* Decommit [p, p + size), which may cross reservations. */
static void
os_decommit(void *p, size_t size)
{
	if (size == 0 || VirtualFree(p, size, MEM_DECOMMIT))
		return;
	char *a = p, *end = a + size;
	while (a < end) {
		MEMORY_BASIC_INFORMATION mi;
		if (VirtualQuery(a, &mi, sizeof(mi)) == 0)
			return;
		size_t n = PC_MIN((size_t)(end - a),
		    (size_t)((char *)mi.BaseAddress + mi.RegionSize - a));
		if (mi.State == MEM_COMMIT)
			VirtualFree(a, n, MEM_DECOMMIT);
		a += n;
	}
}

void
os_release(void *p, size_t size)
{
	DWORD saved = GetLastError();
	/* MEM_RELEASE frees the whole reservation starting at p, whatever
	 * `size` says: callers give back what os_reserve returned, whole
	 * (or shrunk by os_release_tail).  A range that starts elsewhere is
	 * at least decommitted, so its memory goes back to the system. */
	if (!VirtualFree(p, 0, MEM_RELEASE))
		os_decommit(p, size);
	SetLastError(saved);
}

/* Reserved whole, committed inside only: the guard pages stay reserved
 * and inaccessible (the reservation's rounding to the allocation
 * granularity only widens the upper guard). */
void *
os_reserve_guarded(size_t size)
{
	if (os_injected_failure())
		return NULL;
	if (size == 0 || size > PC_MAX_ALLOC)
		return NULL;
	DWORD saved = GetLastError();
	char *p = VirtualAlloc(NULL, size + 2 * PC_PAGE, MEM_RESERVE,
	    PAGE_NOACCESS);
	if (p != NULL && VirtualAlloc(p + PC_PAGE, size, MEM_COMMIT,
	    PAGE_READWRITE) == NULL) {
		VirtualFree(p, 0, MEM_RELEASE);
		p = NULL;
	}
	SetLastError(saved);
	return p != NULL ? p + PC_PAGE : NULL;
}

void
os_release_guarded(void *p, size_t size)
{
	(void)size;	/* MEM_RELEASE frees the whole reservation */
	DWORD saved = GetLastError();
	VirtualFree((char *)p - PC_PAGE, 0, MEM_RELEASE);
	SetLastError(saved);
}

/*
 * The tail cannot be released: a reservation is freed whole.  Its pages are
 * decommitted, which returns the memory; the addresses stay reserved until
 * os_release of the block (which frees the whole reservation, tail
 * included).
 */
void
os_release_tail(void *p, size_t old_size, size_t new_size)
{
	if (new_size >= old_size)
		return;
	DWORD saved = GetLastError();
	os_decommit((char *)p + new_size, old_size - new_size);
	SetLastError(saved);
}

/*
 * The contract says purged pages read as zero, which MEM_RESET does not
 * give: decommit, then commit again (fresh pages are demand-zero and cost
 * nothing until touched).  The commit we just gave back is normally there
 * to take again; should it not be, keep trying rather than leave
 * inaccessible pages in a free run.
 */
bool
os_purge(void *p, size_t size)
{
	if (size == 0)
		return true;
	DWORD saved = GetLastError();
	os_decommit(p, size);
	char *a = p, *end = a + size;
	for (unsigned spins = 0; a < end; ) {
		MEMORY_BASIC_INFORMATION mi;
		if (VirtualQuery(a, &mi, sizeof(mi)) == 0)
			break;
		size_t n = PC_MIN((size_t)(end - a),
		    (size_t)((char *)mi.BaseAddress + mi.RegionSize - a));
		if (mi.State == MEM_COMMIT ||
		    VirtualAlloc(a, n, MEM_COMMIT, PAGE_READWRITE) != NULL) {
			a += n;
			continue;
		}
		if (++spins > 1000)
			break;
		Sleep(1);
	}
	SetLastError(saved);
	return true;	/* decommitted pages come back zero */
}

/* Windows tells a page's residency only through the working-set query
 * (psapi), one page at a time: not cheap enough to decide a purge by. */
size_t
os_resident(void *p, size_t size, size_t max_pages)
{
	(void)p;
	(void)size;
	(void)max_pages;
	return OS_RESIDENT_UNKNOWN;
}

/* Windows cannot grow a reservation in place nor move one: callers copy. */
void *
os_remap(void *p, size_t old_size, size_t new_size, void *target)
{
	(void)p;
	(void)old_size;
	(void)new_size;
	(void)target;
	return NULL;
}

void *
os_move_pages(void *p, size_t size, size_t new_size)
{
	(void)p;
	(void)size;
	(void)new_size;
	return NULL;
}

/* Unreachable: os_move_pages never moves anything here. */
void
os_unmove_pages(void *q, size_t size, size_t mapped, void *p)
{
	(void)q;
	(void)size;
	(void)mapped;
	(void)p;
}

/* Large pages must be asked for when memory is allocated, and need the
 * "Lock pages in memory" privilege: nothing to do afterwards. */
void
os_hugepage(void *p, size_t size, int mode)
{
	(void)p;
	(void)size;
	(void)mode;
}

size_t
os_page_size(void)
{
	SYSTEM_INFO si;
	GetSystemInfo(&si);
	return si.dwPageSize;
}

/* ---- CPUs --------------------------------------------------------------- */

unsigned
os_cpu(void)
{
	PROCESSOR_NUMBER pn;
	GetCurrentProcessorNumberEx(&pn);
	return (unsigned)pn.Group * 64u + pn.Number;
}

unsigned
os_ncpus(void)
{
	DWORD_PTR proc, sys;
	if (GetProcessAffinityMask(GetCurrentProcess(), &proc, &sys) &&
	    proc != 0)
		return (unsigned)__builtin_popcountll(proc);
	DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
	return n > 0 ? (unsigned)n : 1;
}

/* ---- Diagnostics -------------------------------------------------------- */

static HANDLE os_err_handle;	/* os_keep_stderr's copy, or NULL */

void
os_keep_stderr(void)
{
	DWORD saved = GetLastError();
	HANDLE h = GetStdHandle(STD_ERROR_HANDLE), dup;
	if (h != NULL && h != INVALID_HANDLE_VALUE &&
	    DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup,
	    0, FALSE, DUPLICATE_SAME_ACCESS))
		os_err_handle = dup;
	SetLastError(saved);
}

void
os_write_err(const char *s, size_t n)
{
	DWORD saved = GetLastError();
	HANDLE h = os_err_handle != NULL ? os_err_handle :
	    GetStdHandle(STD_ERROR_HANDLE);
	while (h != NULL && h != INVALID_HANDLE_VALUE && n > 0) {
		DWORD w = 0;
		DWORD chunk = n > 0x40000000u ? 0x40000000u : (DWORD)n;
		if (!WriteFile(h, s, chunk, &w, NULL) || w == 0)
			break;
		s += w;
		n -= w;
	}
	SetLastError(saved);
}

/*
 * GetEnvironmentVariableA reads the process environment block, which is
 * set up before any code of ours runs and never goes through malloc.  The
 * value is copied into a static buffer: it stays valid until the next call
 * (the only caller, conf_init, runs once under the init lock).
 */
const char *
os_getenv(const char *name)
{
	static char buf[4096];
	DWORD saved = GetLastError();
	DWORD n = GetEnvironmentVariableA(name, buf, sizeof(buf));
	SetLastError(saved);
	if (n == 0 || n >= sizeof(buf))
		return NULL;
	return buf;
}

/* ---- The fast-path TLS slot (os_tls.h) ---------------------------------- */

static DWORD os_tls_index = TLS_OUT_OF_INDEXES;

/* The first of these costs a TlsAlloc; racing threads keep one index. */
static DWORD
os_tls_index_get(void)
{
	DWORD i = __atomic_load_n(&os_tls_index, __ATOMIC_ACQUIRE);
	if (PC_LIKELY(i != TLS_OUT_OF_INDEXES))
		return i;
	DWORD saved = GetLastError();
	DWORD mine = TlsAlloc();
	if (mine != TLS_OUT_OF_INDEXES && !__atomic_compare_exchange_n(
	    &os_tls_index, &i, mine, false, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE))
		TlsFree(mine);	/* i now holds the winner's index */
	else
		i = mine;
	SetLastError(saved);
	return i;
}

/*
 * What TlsGetValue returns, without the call (and without its
 * SetLastError(0)): the first 64 slots are in the TEB, the next 1024 in a
 * per-thread array the TEB points to once a slot there has been set.
 */
void *
os_tls_slot_get(void)
{
	DWORD i = __atomic_load_n(&os_tls_index, __ATOMIC_RELAXED);
	if (PC_LIKELY(i < TEB_TLS_NSLOTS))
		return (void *)__readgsqword(TEB_TLS_SLOTS + 8 * i);
	if (i == TLS_OUT_OF_INDEXES)
		return NULL;
	void **ext = (void **)__readgsqword(TEB_TLS_EXPANSION);
	return ext != NULL ? ext[i - TEB_TLS_NSLOTS] : NULL;
}

void
os_tls_slot_set(void *v)
{
	DWORD i = os_tls_index_get();
	/* No index: cannot happen once os_thread_exit_init succeeded. */
	if (i == TLS_OUT_OF_INDEXES)
		return;
	DWORD saved = GetLastError();
	TlsSetValue(i, v);
	SetLastError(saved);
}

/* ---- Thread exit -------------------------------------------------------- */

static void (*os_exit_fn)(void *);
static DWORD os_exit_fls = FLS_OUT_OF_INDEXES;
/* The value this thread armed, so the callback can tell it runs on the
 * thread that armed it (FLS values follow fibers, not threads). */
static DWORD os_exit_owner = TLS_OUT_OF_INDEXES;

/*
 * Runs when the thread (or the fiber that was current when the thread
 * armed it) ends.  A fiber deleted on another thread must not flush a
 * cache its thread still uses: that cache is then left alone, a bounded
 * leak, rather than a corrupt heap.
 */
static VOID WINAPI
os_fls_exit(PVOID v)
{
	if (v == NULL)
		return;
	if (TlsGetValue(os_exit_owner) != v)
		return;
	TlsSetValue(os_exit_owner, NULL);
	os_exit_fn(v);
}

int
os_thread_exit_init(void (*fn)(void *))
{
	DWORD saved = GetLastError();
	int err = 0;
	/* Pin our module (the DLL, or the exe for the static library): the
	 * callback must outlive every thread.  Like -z nodelete on Linux. */
	HMODULE self;
	GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
	    GET_MODULE_HANDLE_EX_FLAG_PIN, (LPCSTR)(void *)os_fls_exit, &self);
	os_exit_fn = fn;
	/* The fast-path slot exists before any thread caches do. */
	if (os_tls_index_get() == TLS_OUT_OF_INDEXES)
		err = EAGAIN;
	if (err == 0 && (os_exit_owner = TlsAlloc()) == TLS_OUT_OF_INDEXES)
		err = EAGAIN;
	if (err == 0 && (os_exit_fls = FlsAlloc(os_fls_exit)) ==
	    FLS_OUT_OF_INDEXES)
		err = EAGAIN;
	SetLastError(saved);
	return err;
}

int
os_thread_exit_arm(void *arg)
{
	DWORD saved = GetLastError();
	int err = 0;
	if (!TlsSetValue(os_exit_owner, arg) ||
	    !FlsSetValue(os_exit_fls, arg)) {
		TlsSetValue(os_exit_owner, NULL);
		err = ENOMEM;
	}
	SetLastError(saved);
	return err;
}

/* There is no fork on Windows. */
int
os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	(void)prepare;
	(void)parent;
	(void)child;
	return 0;
}

void
os_yield(void)
{
	SwitchToThread();
}

struct os_thread_arg {
	void (*fn)(void *);
	void *arg;
};

static DWORD WINAPI
os_thread_main(LPVOID p)
{
	struct os_thread_arg a = *(struct os_thread_arg *)p;
	HeapFree(GetProcessHeap(), 0, p);
	a.fn(a.arg);
	return 0;
}

/*
 * The arguments go in a process-heap block the thread frees, rather than
 * on our stack with a wait as on Linux: in the DLL this runs from a
 * constructor, i.e. inside DllMain under the loader lock, and the new
 * thread cannot start before DllMain returns.
 */
int
os_thread_start(void (*fn)(void *), void *arg)
{
	DWORD saved = GetLastError();
	int err = 0;
	struct os_thread_arg *a = HeapAlloc(GetProcessHeap(), 0, sizeof(*a));
	if (a == NULL) {
		err = ENOMEM;
	} else {
		a->fn = fn;
		a->arg = arg;
		HANDLE h = CreateThread(NULL, 64 * 1024, os_thread_main, a,
		    STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
		if (h != NULL) {
			CloseHandle(h);	/* detached */
		} else {
			HeapFree(GetProcessHeap(), 0, a);
			err = EAGAIN;
		}
	}
	SetLastError(saved);
	return err;
}

void
os_sleep_ms(unsigned ms)
{
	Sleep(ms);
}

bool
os_remote_fence(void)
{
	FlushProcessWriteBuffers();
	return true;
}

bool
os_remote_fence_available(void)
{
	return true;
}

bool
os_read_safe(void *dst, const void *src, size_t n)
{
	SIZE_T got = 0;
	return ReadProcessMemory(GetCurrentProcess(), src, dst, n, &got) &&
	    got == n;
}

bool
os_is_mapped(const void *p)
{
	MEMORY_BASIC_INFORMATION mbi;
	return VirtualQuery(p, &mbi, sizeof(mbi)) != 0 &&
	    mbi.State != MEM_FREE;
}

/* ---- Locks: SRWLOCK, whose all-zero state is "unlocked" ------------------ */

void
os_lock_init(os_lock_t *l)
{
	InitializeSRWLock((PSRWLOCK)&l->srw);
}

void
os_lock(os_lock_t *l)
{
	if (TryAcquireSRWLockExclusive((PSRWLOCK)&l->srw))
		return;
	AcquireSRWLockExclusive((PSRWLOCK)&l->srw);
	__atomic_store_n(&l->ncontended, l->ncontended + 1, __ATOMIC_RELAXED);
}

void
os_unlock(os_lock_t *l)
{
	ReleaseSRWLockExclusive((PSRWLOCK)&l->srw);
}

/* ---- Time --------------------------------------------------------------- */

/* The profiler is not built on Windows (its countdown needs a native
 * thread-local variable: see compiler.h PC_HAVE_TLS). */
int
os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
	*lo = *hi = 0;
	return ENOSYS;
}

int
os_libc_text(uintptr_t *lo, uintptr_t *hi)
{
	*lo = *hi = 0;
	return ENOSYS;
}

int
os_backtrace(void **frames, int max)
{
	(void)frames;
	(void)max;
	return 0;
}

uint64_t
os_now_ns(void)
{
	static uint64_t freq;
	uint64_t f = __atomic_load_n(&freq, __ATOMIC_RELAXED);
	if (f == 0) {
		LARGE_INTEGER li;
		QueryPerformanceFrequency(&li);
		f = li.QuadPart > 0 ? (uint64_t)li.QuadPart : 1;
		__atomic_store_n(&freq, f, __ATOMIC_RELAXED);
	}
	LARGE_INTEGER c;
	QueryPerformanceCounter(&c);
	uint64_t t = (uint64_t)c.QuadPart;
	return t / f * 1000000000u + t % f * 1000000000u / f;
}

uint64_t
os_random(void)
{
	/* Not cryptographic: enough that a program cannot guess it. */
	LARGE_INTEGER c;
	QueryPerformanceCounter(&c);
	uint64_t r = (uint64_t)c.QuadPart * 0x9e3779b97f4a7c15u;
	r ^= (uint64_t)GetCurrentProcessId() << 32 ^ (uintptr_t)&c;
	r ^= (uint64_t)GetTickCount64() * 0xbf58476d1ce4e5b9u;
	return r;
}

/* ---- Guarded sampling ----------------------------------------------- */

/* Guarded sampling is Linux-only for now: without a fault handler the
 * pool is never created (guard.c), so the rest only has to compile. */
void *
os_reserve_noaccess(size_t size)
{
	DWORD saved = GetLastError();
	void *p = VirtualAlloc(NULL, size, MEM_RESERVE, PAGE_NOACCESS);
	SetLastError(saved);
	return p;
}

int
os_protect(void *p, size_t size, bool rw)
{
	(void)p;
	(void)size;
	(void)rw;
	return ENOSYS;
}

uint64_t
os_thread_id(void)
{
	return GetCurrentThreadId();
}

bool
os_symbolize(const void *pc, const char **sym, const char **obj,
    uintptr_t *off)
{
	(void)pc;
	*sym = *obj = NULL;
	*off = 0;
	return false;
}

int
os_fault_handler_install(bool (*fn)(void *addr, int access,
    const void *pc))
{
	(void)fn;
	return ENOSYS;
}
