/*
 * Heap profile output and the triggers that write it (prof.h).
 *
 * Formats, all read by tools packaged in Debian (docs/profiling.md):
 *  - gperftools heap_v2 text ("heap"): google-pprof, jeprof, go tool pprof.
 *    Counts and bytes are the raw samples, and the header names the mean
 *    gap (heap_v2/<rate>): the reader unbiases each line by its mean size,
 *    exact when a stack allocates one size.  /proc/self/maps follows
 *    MAPPED_LIBRARIES: so the reader can symbolise.
 *  - pprof profile.proto, uncompressed ("pb"): go tool pprof.  Values are
 *    unbiased per sample (prof.h), in Go's heap layout.
 *  - folded stacks ("folded"): "outer;...;inner bytes" of live bytes,
 *    symbolised with dladdr, for flame-graph tools.
 *
 * A dump copies the counters under the profiler's lock (prof_snapshot)
 * and formats outside it; it writes with write(2) from a stack buffer and
 * never allocates from the program's heap.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pcmalloc.h"
#include "locks.h"
#include "prof.h"
#include "stack.h"
#include "sample.h"
#include "report.h"
#include "conf.h"
#include "os.h"

/* ---- Buffered writer ---------------------------------------------------- */

typedef struct pw {
	int fd;
	int err;
	size_t n;
	char buf[4096];
} pw_t;

static void
pw_flush(pw_t *w)
{
	size_t off = 0;
	while (off < w->n && w->err == 0) {
		ssize_t k = write(w->fd, w->buf + off, w->n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->err = k < 0 ? errno : EIO;
		else
			off += (size_t)k;
	}
	w->n = 0;
}

static void
pw_mem(pw_t *w, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		if (w->n == sizeof(w->buf))
			pw_flush(w);
		size_t k = PC_MIN(n, sizeof(w->buf) - w->n);
		memcpy(w->buf + w->n, s, k);
		w->n += k;
		s += k;
		n -= k;
	}
}

static void
pw_str(pw_t *w, const char *s)
{
	pw_mem(w, s, strlen(s));
}

static void
pw_u64(pw_t *w, uint64_t v)
{
	char b[24];
	pw_mem(w, b, pc_fmt_u64(b, v));
}

static void
pw_hex(pw_t *w, uintptr_t v)
{
	char b[24];
	pw_mem(w, b, pc_fmt_hex(b, v));
}

static int
pw_open(pw_t *w, const char *path)
{
	w->n = 0;
	w->err = 0;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	return w->fd < 0 ? errno : 0;
}

static int
pw_close(pw_t *w)
{
	pw_flush(w);
	if (close(w->fd) != 0 && w->err == 0)
		w->err = errno;
	return w->err;
}

static uint64_t
prof_round(double x)
{
	return x <= 0 ? 0 : (uint64_t)(x + 0.5);
}

/* ---- gperftools heap_v2 text -------------------------------------------- */

static void
prof_write_maps(pw_t *w)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char b[4096];
	for (;;) {
		ssize_t k = read(fd, b, sizeof(b));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		pw_mem(w, b, (size_t)k);
	}
	close(fd);
}

static void
prof_write_heap(pw_t *w, const prof_bucket_t *s, size_t n)
{
	uint64_t ln = 0, lb = 0, an = 0, ab = 0;
	for (size_t i = 0; i < n; i++) {
		ln += s[i].live_samples;
		lb += s[i].live_sbytes;
		an += s[i].alloc_samples;
		ab += s[i].alloc_sbytes;
	}
	pw_str(w, "heap profile: ");
	pw_u64(w, ln);
	pw_str(w, ": ");
	pw_u64(w, lb);
	pw_str(w, " [");
	pw_u64(w, an);
	pw_str(w, ": ");
	pw_u64(w, ab);
	pw_str(w, "] @ heap_v2/");
	pw_u64(w, opt_prof_sample);
	pw_str(w, "\n");
	for (size_t i = 0; i < n; i++) {
		const prof_bucket_t *b = &s[i];
		if (b->alloc_samples == 0)
			continue;
		pw_u64(w, b->live_samples);
		pw_str(w, ": ");
		pw_u64(w, b->live_sbytes);
		pw_str(w, " [");
		pw_u64(w, b->alloc_samples);
		pw_str(w, ": ");
		pw_u64(w, b->alloc_sbytes);
		pw_str(w, "] @");
		for (uint32_t f = 0; f < b->depth; f++) {
			pw_str(w, " ");
			pw_hex(w, (uintptr_t)b->next->frames[f]);
		}
		pw_str(w, "\n");
	}
	pw_str(w, "\nMAPPED_LIBRARIES:\n");
	prof_write_maps(w);
}

/* ---- Folded stacks ------------------------------------------------------ */

/* One frame's name: the symbol dladdr finds ("name+0xoff" dropped to
 * "name"), else "object+0xoffset", else the address.  ';' and ' ' are
 * separators in the format: replaced. */
static void
prof_write_frame(pw_t *w, void *addr)
{
	Dl_info info;
	/* A return address: the call is the byte before it. */
	void *pc = (char *)addr - 1;
	if (dladdr(pc, &info) != 0) {
		const char *name = info.dli_sname;
		if (name == NULL && info.dli_fname != NULL) {
			const char *base = strrchr(info.dli_fname, '/');
			name = base ? base + 1 : info.dli_fname;
			for (const char *c = name; *c; c++)
				pw_mem(w, *c == ';' || *c == ' ' ? "_" : c, 1);
			pw_str(w, "+");
			pw_hex(w, (uintptr_t)pc - (uintptr_t)info.dli_fbase);
			return;
		}
		if (name != NULL) {
			for (const char *c = name; *c; c++)
				pw_mem(w, *c == ';' || *c == ' ' ? "_" : c, 1);
			return;
		}
	}
	pw_hex(w, (uintptr_t)pc);
}

static void
prof_write_folded(pw_t *w, const prof_bucket_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const prof_bucket_t *b = &s[i];
		uint64_t bytes = prof_round(b->live_b);
		if (bytes == 0)
			continue;
		if (b->depth == 0)
			pw_str(w, "[unknown]");
		for (uint32_t f = b->depth; f-- > 0;) {
			prof_write_frame(w, b->next->frames[f]);
			if (f != 0)
				pw_str(w, ";");
		}
		pw_str(w, " ");
		pw_u64(w, bytes);
		pw_str(w, "\n");
	}
}

/* ---- Dumps -------------------------------------------------------------- */



static bool
prof_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static int
prof_write_snapshot(const char *path, const prof_bucket_t *s, size_t n)
{
	pw_t w;
	int err = pw_open(&w, path);
	if (err != 0)
		return err;
	if (prof_ends_with(path, ".pb")) {
		err = prof_write_proto(w.fd, s, n);
		close(w.fd);
		return err;
	}
	if (prof_ends_with(path, ".folded"))
		prof_write_folded(&w, s, n);
	else
		prof_write_heap(&w, s, n);
	return pw_close(&w);
}

int
prof_dump_file(const char *path)
{
	size_t n, size;
	prof_totals_t t;
	prof_bucket_t *s = prof_snapshot(&n, &size, &t);
	if (s == NULL)
		return ENOMEM;
	int err = prof_write_snapshot(path, s, n);
	prof_snapshot_free(s, size);
	return err;
}

static unsigned prof_seq;

/* "<prefix>.<pid>.<seq>.[<tag>.]" into buf; its length, or 0 if it does
 * not fit (with room for the longest kind). */
static size_t
prof_name(char *buf, size_t cap, const char *tag)
{
	char num[24];
	size_t n = strlen(opt_prof_prefix);
	if (n + 80 > cap)
		return 0;
	memcpy(buf, opt_prof_prefix, n);
	buf[n++] = '.';
	n += pc_fmt_u64(buf + n, (uint64_t)getpid());
	buf[n++] = '.';
	size_t k = pc_fmt_u64(num, __atomic_fetch_add(&prof_seq, 1,
	    __ATOMIC_RELAXED));
	memcpy(buf + n, num, k);
	n += k;
	buf[n++] = '.';
	if (tag != NULL) {
		size_t t = strlen(tag);
		memcpy(buf + n, tag, t);
		n += t;
		buf[n++] = '.';
	}
	buf[n] = '\0';
	return n;
}

static int
prof_dump_kinds(const prof_bucket_t *s, size_t n, const char *tag)
{
	static const char *const kinds[] = { "heap", "pb", "folded" };
	char path[CONF_PREFIX_MAX + 96];
	size_t len = prof_name(path, sizeof(path), tag);
	if (len == 0)
		return ENAMETOOLONG;
	int first = 0;
	for (size_t i = 0; i < PC_ARRAY_LEN(kinds); i++) {
		strcpy(path + len, kinds[i]);
		int err = prof_write_snapshot(path, s, n);
		if (err != 0 && first == 0)
			first = err;
	}
	return first;
}

int
prof_dump_auto(const char *tag)
{
	size_t n, size;
	prof_totals_t t;
	prof_bucket_t *s = prof_snapshot(&n, &size, &t);
	if (s == NULL)
		return ENOMEM;
	int err = prof_dump_kinds(s, n, tag);
	prof_snapshot_free(s, size);
	return err;
}

PC_EXPORT int
pc_prof_dump(const char *path)
{
	if (path == NULL)
		return prof_dump_auto(NULL);
	return prof_dump_file(path);
}

/* ---- Triggers ----------------------------------------------------------- */

static volatile sig_atomic_t prof_signalled;
#define prof_poll_lock locks_global.prof_poll	/* locks.h; the fields below */
static double prof_next_every;
static prof_bucket_t *prof_peak;	/* snapshot at the highest peak */
static size_t prof_peak_n, prof_peak_size;
static double prof_peak_b;		/* its live bytes */
static bool prof_peak_dirty;		/* not written yet */
static uint64_t prof_peak_written_ns;

/* A new peak is kept when it exceeds the kept one by this fraction, and
 * written at most once per PROF_PEAK_WRITE_NS (and at exit). */
#define PROF_PEAK_GROWTH	(1.0 / 16)
#define PROF_PEAK_WRITE_NS	(1000ull * 1000 * 1000)

static void
prof_peak_write_locked(void)
{
	if (!prof_peak_dirty)
		return;
	prof_dump_kinds(prof_peak, prof_peak_n, "peak");
	prof_peak_dirty = false;
	prof_peak_written_ns = os_now_ns();
}

void
prof_poll(void)
{
	if (!opt_prof)
		return;
	bool sig = prof_signalled != 0;
	if (!sig && !opt_prof_dump_every && !opt_prof_dump_peak)
		return;
	os_lock(&prof_poll_lock);
	if (sig) {
		prof_signalled = 0;
		prof_dump_auto(NULL);
	}
	prof_totals_t t;
	prof_totals(&t);
	if (opt_prof_dump_every && t.alloc_b >= prof_next_every) {
		if (prof_next_every != 0)
			prof_dump_auto(NULL);
		prof_next_every = t.alloc_b + (double)opt_prof_dump_every;
	}
	if (opt_prof_dump_peak && t.live_b > 0 &&
	    t.live_b > prof_peak_b * (1 + PROF_PEAK_GROWTH)) {
		size_t n, size;
		prof_bucket_t *s = prof_snapshot(&n, &size, &t);
		if (s != NULL) {
			prof_snapshot_free(prof_peak, prof_peak_size);
			prof_peak = s;
			prof_peak_n = n;
			prof_peak_size = size;
			prof_peak_b = t.live_b;
			prof_peak_dirty = true;
		}
	}
	if (prof_peak_dirty &&
	    os_now_ns() - prof_peak_written_ns >= PROF_PEAK_WRITE_NS)
		prof_peak_write_locked();
	os_unlock(&prof_poll_lock);
}

static void
prof_on_signal(int sig)
{
	(void)sig;
	prof_signalled = 1;
}

/* Polls for signal and timed peak dumps when no allocation does. */
static void
prof_thread_main(void *arg)
{
	(void)arg;
	for (;;) {
		os_sleep_ms(100);
		prof_poll();
	}
}

static bool prof_started;

bool
prof_ready(void)
{
	return __atomic_load_n(&prof_started, __ATOMIC_ACQUIRE);
}

void
prof_start(void)
{
	/* Before the first sample: no allocation then calls the loader
	 * (stack.c, "Fork against the unwinder's loading"). */
	if (opt_prof || opt_guard_sample) {
		stack_libc_lookup();
		sample_self_lookup();
	}
	if (!opt_prof) {
		__atomic_store_n(&prof_started, true, __ATOMIC_RELEASE);
		return;
	}
	/* Load the fallback unwinder now, from the constructor, outside any
	 * lock: its first use loads libgcc_s. */
	stack_init();
	if (__atomic_exchange_n(&prof_started, true, __ATOMIC_ACQ_REL))
		return;
	if (opt_prof_dump_signal) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = prof_on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR2, &sa, NULL);
	}
	if (opt_prof_dump_signal || opt_prof_dump_peak)
		os_thread_start(prof_thread_main, NULL);
}

__attribute__((destructor)) static void
prof_exit(void)
{
	if (!opt_prof)
		return;
	os_lock(&prof_poll_lock);
	prof_peak_write_locked();
	os_unlock(&prof_poll_lock);
	if (opt_prof_dump_at_exit)
		prof_dump_auto(NULL);
}

void
prof_poll_prefork(void)
{
	os_lock(&prof_poll_lock);
}

void
prof_poll_postfork_parent(void)
{
	os_unlock(&prof_poll_lock);
}
