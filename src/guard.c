/*
 * Guarded sampling (guard.h): the pool, its slots, the sampling decision,
 * and the reports, both those made at a call (double or invalid free, an
 * overflow that only touched the slack of a block's page) and those made
 * from the fault handler (use after free, overflow into a guard page).
 *
 * Pool layout, in pages: G S0 G S1 G ... S(n-1) G.  Slot i is page 2i+1.
 * At most half the slots are live; freed slots go to the back of a FIFO
 * queue, so a freed page stays inaccessible (and its stacks stay) for as
 * long as possible before it is reused.
 */
#include <errno.h>
#include <string.h>

#include "guard.h"
#include "locks.h"
#include "base.h"
#include "report.h"
#include "conf.h"
#include "init.h"
#include "os.h"
#include "sample.h"

#define GUARD_FRAMES	16
/* The slack of a slot's page around its block holds this byte, checked
 * on free: an overflow too small to reach the guard page (a block whose
 * size is not a multiple of the alignment) is still caught there. */
#define GUARD_FILL	0xac
/* Call-site filter: bits of stack hashes sampled recently. */
#define GUARD_SITE_BITS	2048

enum { SLOT_EMPTY, SLOT_LIVE, SLOT_FREED };

typedef struct guard_slot {
	uintptr_t ptr;		/* the block (guard_lock) */
	uint32_t size;		/* requested bytes, at least 1 */
	uint8_t state;		/* SLOT_* (guard_lock) */
	uint8_t reported;	/* a fault or misuse was reported (atomic) */
	uint8_t burned;		/* recover mode opened it: never reused */
	uint8_t nalloc, nfree;	/* frames in the stacks below */
	uint64_t alloc_tid, free_tid;
	void *alloc_stack[GUARD_FRAMES];
	void *free_stack[GUARD_FRAMES];
} guard_slot_t;

uintptr_t guard_base;
size_t guard_size;

#define guard_lock locks_global.guard	/* locks.h; the struct below */

static struct {
	bool tried;		/* pool creation attempted (guard_lock) */
	guard_slot_t *slots;
	uint32_t *queue;	/* free slots, a ring: oldest free first */
	uint32_t head, count;
	uint32_t nslots, live, max_live;
	uint64_t nsampled;
	uint64_t rng;
	unsigned nsites;
	uint64_t sites[GUARD_SITE_BITS / 64];
} guard;

static bool guard_fault(void *addr, int access, const void *pc);

static uint64_t
guard_rand(void)
{
	/* xorshift64*, under guard_lock or for a thread's countdown (where
	 * a lost update is harmless). */
	uint64_t x = guard.rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	guard.rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uintptr_t
slot_page(uint32_t i)
{
	return guard_base + (2 * (uintptr_t)i + 1) * PC_PAGE;
}

/* The calling thread's stack without its `skip` innermost frames (the
 * heap profiler's capture, stack.h); nothing where there is none. */
static PC_NOINLINE int
guard_stack(void **frames, int max, int skip)
{
#if PC_PROF
	return sample_capture(frames, max, skip);
#else
	(void)frames;
	(void)max;
	(void)skip;
	return 0;
#endif
}

static uint64_t
guard_stack_hash(void *const *frames, int n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < n; i++)
		h = (h ^ (uintptr_t)frames[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/* Reserve the pool and its metadata, install the fault handler.  Under
 * guard_lock; once. */
static void
guard_pool_create(void)
{
	guard.tried = true;
	uint32_t n = (uint32_t)opt_guard_slots;
	size_t meta = PC_ALIGN_UP(n * sizeof(guard_slot_t) +
	    n * sizeof(uint32_t), PC_PAGE);
	size_t size = (2 * (size_t)n + 1) * PC_PAGE;
	/* The handler first: without it (Windows) nothing is reserved. */
	if (os_fault_handler_install(guard_fault) != 0)
		return;
	guard_slot_t *slots = base_map(meta);
	if (slots == NULL)
		return;
	void *pool = os_reserve_noaccess(size);
	if (pool == NULL) {
		base_unmap(slots, meta);
		return;
	}
	guard.slots = slots;
	guard.queue = (uint32_t *)(slots + n);
	for (uint32_t i = 0; i < n; i++)
		guard.queue[i] = i;
	guard.count = n;
	guard.nslots = n;
	guard.max_live = PC_MAX(n / 2, 1u);
	guard.rng = os_random() | 1;
	__atomic_store_n(&guard_base, (uintptr_t)pool, __ATOMIC_RELAXED);
	__atomic_store_n(&guard_size, size, __ATOMIC_RELEASE);
}

void *
guard_alloc(size_t size, size_t align, void *const *stack, int nframes)
{
	if (size > PC_PAGE || align > PC_PAGE)
		return NULL;
	size = PC_MAX(size, 1);
	align = PC_MAX(align, 16);
	nframes = PC_MIN(nframes, GUARD_FRAMES);
	uint64_t site = guard_stack_hash(stack, nframes) % GUARD_SITE_BITS;
	uint64_t tid = os_thread_id();

	os_lock(&guard_lock);
	if (!guard.tried)
		guard_pool_create();
	void *p = NULL;
	uint32_t i = 0;
	if (guard.slots == NULL || guard.live >= guard.max_live)
		goto out;
	/* Spread the samples over call sites: a site sampled recently is
	 * taken again only one time in eight (every time at rate 1). */
	uint64_t bit = (uint64_t)1 << (site & 63);
	if ((guard.sites[site >> 6] & bit) && opt_guard_sample != 1 &&
	    (guard_rand() & 7) != 0)
		goto out;
	guard.sites[site >> 6] |= bit;
	if (++guard.nsites > GUARD_SITE_BITS / 2) {
		memset(guard.sites, 0, sizeof(guard.sites));
		guard.nsites = 0;
	}
	/* The oldest free slot that recover mode did not open. */
	for (;;) {
		if (guard.count == 0)
			goto out;
		i = guard.queue[guard.head];
		guard.head = (guard.head + 1) % guard.nslots;
		guard.count--;
		if (!__atomic_load_n(&guard.slots[i].burned, __ATOMIC_RELAXED))
			break;
	}
	guard_slot_t *s = &guard.slots[i];
	uintptr_t page = slot_page(i);
	if (os_protect((void *)page, PC_PAGE, true) != 0) {
		/* Back to the queue's tail. */
		guard.queue[(guard.head + guard.count) % guard.nslots] = i;
		guard.count++;
		goto out;
	}
	/* Against the right guard (catches overflows) or the left one
	 * (underflows), at random. */
	uintptr_t q = (guard_rand() & 1) ?
	    PC_ALIGN_DOWN(page + PC_PAGE - size, align) : page;
	memset((void *)page, GUARD_FILL, q - page);
	memset((void *)(q + size), GUARD_FILL, page + PC_PAGE - (q + size));
	s->ptr = q;
	s->size = (uint32_t)size;
	s->state = SLOT_LIVE;
	__atomic_store_n(&s->reported, 0, __ATOMIC_RELAXED);
	memcpy(s->alloc_stack, stack, sizeof(void *) * (size_t)nframes);
	s->nalloc = (uint8_t)nframes;
	s->nfree = 0;
	s->alloc_tid = tid;
	guard.live++;
	guard.nsampled++;
	p = (void *)q;
out:
	os_unlock(&guard_lock);
	return p;
}

/* ---- Reports --------------------------------------------------------- */

static void
guard_print_stack(const char *title, uint64_t tid, void *const *frames,
    int n)
{
	pc_msg_t m;
	pc_msg_start(&m);
	pc_msg_str(&m, "  ");
	pc_msg_str(&m, title);
	pc_msg_str(&m, " by thread ");
	pc_msg_u64(&m, tid);
	pc_msg_str(&m, n > 0 ? ":" : ": (no stack)");
	pc_msg_write(&m);
	for (int i = 0; i < n; i++) {
		pc_msg_start(&m);
		pc_msg_str(&m, "    #");
		pc_msg_u64(&m, (uint64_t)i);
		pc_msg_str(&m, " ");
		pc_msg_hex(&m, (uintptr_t)frames[i]);
		const char *sym, *obj;
		uintptr_t off;
		/* A return address is one past its call: look up the call. */
		if (os_symbolize((const char *)frames[i] - 1, &sym, &obj,
		    &off)) {
			if (sym != NULL) {
				pc_msg_str(&m, " ");
				pc_msg_str(&m, sym);
				pc_msg_str(&m, "+");
				pc_msg_hex(&m, off + 1);
			}
			if (obj != NULL) {
				pc_msg_str(&m, " (");
				pc_msg_str(&m, obj);
				pc_msg_str(&m, ")");
			}
		}
		pc_msg_write(&m);
	}
}

/* "pcmalloc: <kind>[ read| write] of 0x<addr> (<n> bytes <rel> a <size>-byte
 * block)", where rel is "into", "after" or "before". */
static void
guard_print_head(const char *kind, int access, uintptr_t addr,
    const guard_slot_t *s)
{
	pc_msg_t m;
	pc_msg_start(&m);
	pc_msg_str(&m, kind);
	if (access == OS_FAULT_READ)
		pc_msg_str(&m, " read");
	else if (access == OS_FAULT_WRITE)
		pc_msg_str(&m, " write");
	pc_msg_str(&m, " of ");
	pc_msg_hex(&m, addr);
	if (s != NULL) {
		pc_msg_str(&m, " (");
		if (addr < s->ptr) {
			pc_msg_u64(&m, s->ptr - addr);
			pc_msg_str(&m, " bytes before");
		} else if (addr >= s->ptr + s->size) {
			pc_msg_u64(&m, addr - (s->ptr + s->size));
			pc_msg_str(&m, " bytes after");
		} else {
			pc_msg_u64(&m, addr - s->ptr);
			pc_msg_str(&m, " bytes into");
		}
		pc_msg_str(&m, " a ");
		pc_msg_u64(&m, s->size);
		pc_msg_str(&m, "-byte guarded block)");
	}
	pc_msg_write(&m);
}

static void
guard_print_slot(const guard_slot_t *s)
{
	guard_print_stack("allocated", s->alloc_tid, s->alloc_stack,
	    s->nalloc);
	if (s->state == SLOT_FREED)
		guard_print_stack("freed", s->free_tid, s->free_stack,
		    s->nfree);
}

static void
guard_print_tail(bool fatal)
{
	pc_msg_t m;
	pc_msg_start(&m);
	pc_msg_str(&m, fatal ? "  (guarded sampling; aborting)" :
	    "  (running on; reported once per block)");
	pc_msg_write(&m);
}

/* A report made at a call (free, realloc, usable_size): the block's
 * stacks and the caller's.  Aborts like other misuse (abort_on_error),
 * unless guard_recover. */
static PC_COLD void
guard_report_call(const char *kind, uintptr_t addr, guard_slot_t *s,
    const char *op)
{
	PC_COUNT_REPORT();
	bool fatal = opt_abort_on_error && !opt_guard_recover;
	if (s != NULL && __atomic_exchange_n(&s->reported, 1,
	    __ATOMIC_RELAXED) && !fatal)
		return;
	void *stack[GUARD_FRAMES];
	int n = guard_stack(stack, GUARD_FRAMES, 2);
	guard_print_head(kind, OS_FAULT_UNKNOWN, addr, s);
	char title[40] = "";
	size_t len = strlen(op);
	memcpy(title, op, len);
	memcpy(title + len, " called", 8);
	guard_print_stack(title, os_thread_id(), stack, n);
	if (s != NULL && s->state != SLOT_EMPTY)
		guard_print_slot(s);
	guard_print_tail(fatal);
	if (fatal)
		pc_fatal("heap misuse detected by guarded sampling",
		    __FILE__, __LINE__);
}

/*
 * The fault handler's half (os_fault_handler_install): in the faulting
 * thread, on the signal stack, with any lock possibly held by the
 * interrupted code: no allocation, no lock, no stdio.
 */
static bool
guard_fault(void *addr, int access, const void *pc)
{
	uintptr_t a = (uintptr_t)addr;
	if (!guard_owns(addr))
		return false;
	uintptr_t k = (a - guard_base) >> PC_PAGE_SHIFT;
	guard_slot_t *s = NULL;
	const char *kind;
	uintptr_t open = a & ~(uintptr_t)(PC_PAGE - 1);
	if (k & 1) {
		/* A slot's own page: it is freed (or never used). */
		s = &guard.slots[(k - 1) / 2];
		kind = s->state == SLOT_FREED ? "use-after-free" :
		    "wild access to a free guarded page";
		if (s->state != SLOT_FREED)
			s = NULL;
	} else {
		/* A guard page: blame the live block next to it that faces
		 * it, else the nearer one. */
		guard_slot_t *l = k > 0 ? &guard.slots[k / 2 - 1] : NULL;
		guard_slot_t *r = k / 2 < guard.nslots ?
		    &guard.slots[k / 2] : NULL;
		if (l != NULL && l->state == SLOT_EMPTY)
			l = NULL;
		if (r != NULL && r->state == SLOT_EMPTY)
			r = NULL;
		if (l != NULL && r != NULL) {
			bool l_live = l->state == SLOT_LIVE;
			bool r_live = r->state == SLOT_LIVE;
			if (l_live != r_live)
				s = l_live ? l : r;
			else
				s = a - (l->ptr + l->size) <= r->ptr - a ? l : r;
		} else {
			s = l != NULL ? l : r;
		}
		kind = "heap-buffer-overflow";
	}
	if (s != NULL && __atomic_exchange_n(&s->reported, 1,
	    __ATOMIC_RELAXED) && opt_guard_recover) {
		/* Reported already (another thread raced us to it). */
		return os_protect((void *)open, PC_PAGE, true) == 0;
	}
	guard_print_head(kind, access, a, s);
	if (pc != NULL)
		guard_print_stack("accessed", os_thread_id(), (void **)&pc, 1);
	if (s != NULL)
		guard_print_slot(s);
	guard_print_tail(!opt_guard_recover);
	if (!opt_guard_recover) {
		/* Not through the program's SIGSEGV handler: the report is
		 * made, the program is to stop here, as for misuse. */
		pc_fatal("memory error caught by guarded sampling", __FILE__,
		    __LINE__);
	}
	/* Recover (Android's mode): open the page and run on.  The slot is
	 * never reused; an opened guard page stays open. */
	if (s != NULL)
		__atomic_store_n(&s->burned, 1, __ATOMIC_RELAXED);
	return os_protect((void *)open, PC_PAGE, true) == 0;
}

/* ---- Free, realloc, usable size ------------------------------------ */

/* The slot p is the block of, or NULL (a guard page, or inside a slot
 * page but not its block's start: *slot still names that slot). */
static guard_slot_t *
guard_slot_of(const void *p, guard_slot_t **slot)
{
	uintptr_t k = ((uintptr_t)p - guard_base) >> PC_PAGE_SHIFT;
	*slot = NULL;
	if (!(k & 1) || guard.slots == NULL)
		return NULL;
	guard_slot_t *s = &guard.slots[(k - 1) / 2];
	*slot = s;
	return s->ptr == (uintptr_t)p ? s : NULL;
}

/* Under guard_lock: whether p is a live block; reports it if not. */
static bool
guard_check_locked(const void *p, const char *op, guard_slot_t **out)
{
	guard_slot_t *slot;
	guard_slot_t *s = guard_slot_of(p, &slot);
	*out = s;
	if (s != NULL && s->state == SLOT_LIVE)
		return true;
	os_unlock(&guard_lock);
	bool is_free = strcmp(op, "free") == 0;
	if (s != NULL && s->state == SLOT_FREED)
		guard_report_call(is_free ? "double free" : op[0] == 'r' ?
		    "realloc of a freed block" :
		    "malloc_usable_size of a freed block", (uintptr_t)p, s,
		    op);
	else
		guard_report_call(is_free ? "invalid free" : op[0] == 'r' ?
		    "invalid realloc" : "invalid malloc_usable_size",
		    (uintptr_t)p, slot != NULL && slot->state != SLOT_EMPTY ?
		    slot : NULL, op);
	os_lock(&guard_lock);
	return false;
}

/* The first byte in [a, b) that does not hold GUARD_FILL, or 0.  Eight
 * bytes at a time: a slot's slack is up to a page, checked on every free
 * of a guarded block. */
static uintptr_t
guard_fill_check(uintptr_t a, uintptr_t b)
{
	const uint64_t fill8 = 0x0101010101010101ULL * GUARD_FILL;
	for (; a < b && (a & 7) != 0; a++)
		if (*(const uint8_t *)a != GUARD_FILL)
			return a;
	for (; b - a >= 8; a += 8) {
		uint64_t w;
		memcpy(&w, (const void *)a, sizeof(w));
		if (w != fill8)
			break;	/* the byte loop below finds which */
	}
	for (; a < b; a++)
		if (*(const uint8_t *)a != GUARD_FILL)
			return a;
	return 0;
}

void
guard_free(void *p, const void *caller)
{
	(void)caller;	/* the stack names it */
	int saved = errno;	/* free leaves errno alone */
	/* Captured before the lock: the capture's first use of the unwinder
	 * may allocate. */
	void *stack[GUARD_FRAMES];
	int nframes = guard_stack(stack, GUARD_FRAMES, 1);
	os_lock(&guard_lock);
	guard_slot_t *s;
	if (!guard_check_locked(p, "free", &s)) {
		os_unlock(&guard_lock);
		errno = saved;
		return;
	}
	/* The page's slack must still hold the fill. */
	uintptr_t page = s->ptr & ~(uintptr_t)(PC_PAGE - 1);
	uintptr_t bad = guard_fill_check(page, s->ptr);
	if (bad == 0)
		bad = guard_fill_check(s->ptr + s->size, page + PC_PAGE);
	memcpy(s->free_stack, stack, sizeof(void *) * (size_t)nframes);
	s->nfree = (uint8_t)nframes;
	s->free_tid = os_thread_id();
	if (bad != 0) {
		os_unlock(&guard_lock);
		guard_report_call("heap-buffer-overflow (found on free)", bad,
		    s, "free");
		os_lock(&guard_lock);
	}
	s->state = SLOT_FREED;
	/* A guarded block reads as zeros (sample.c): locked memory keeps
	 * its bytes through a purge, so they are cleared by hand. */
	if (!os_purge((void *)page, PC_PAGE))
		memset((void *)page, 0, PC_PAGE);
	os_protect((void *)page, PC_PAGE, false);
	uint32_t i = (uint32_t)(s - guard.slots);
	guard.queue[(guard.head + guard.count) % guard.nslots] = i;
	guard.count++;
	guard.live--;
	os_unlock(&guard_lock);
	errno = saved;
}

size_t
guard_usable(const void *p, const char *op, const void *caller)
{
	(void)caller;
	os_lock(&guard_lock);
	guard_slot_t *s;
	size_t size = guard_check_locked(p, op, &s) ? s->size : 0;
	os_unlock(&guard_lock);
	return size;
}

size_t
guard_live(void)
{
	return __atomic_load_n(&guard.live, __ATOMIC_RELAXED);
}

uint64_t
guard_nsampled(void)
{
	return __atomic_load_n(&guard.nsampled, __ATOMIC_RELAXED);
}

/* The child inherits the pool as it was: live blocks stay live (copies),
 * freed pages stay inaccessible with their stacks, the handler stays
 * installed (signal dispositions survive fork). */
void
guard_prefork(void)
{
	os_lock(&guard_lock);
}

void
guard_postfork_parent(void)
{
	os_unlock(&guard_lock);
}
