/*
 * Run-time options, read once from PCMALLOC_CONF ("key:value,key:value")
 * before the first allocation, without allocating.  A bad key or value is
 * reported on stderr and the default kept.
 */
#ifndef PC_CONF_H
#define PC_CONF_H

#include "config.h"

/* X(name, default, min, max, words, doc) -- all options are unsigned
 * integers, written as decimal digits or as one of the key's own words:
 *   CONF_NUM   digits only
 *   CONF_SIZE  digits with an optional k, m or g suffix
 *   CONF_BOOL  true/false, on/off, yes/no, 1/0
 *   "w0|w1|.." the words for 0, 1, ...; a list that starts "off|on" also
 *              takes the other boolean words for 0 and 1
 * A word of another key is an error (thp:auto is not thp:never). */
#define CONF_NUM	""
#define CONF_SIZE	"k"
#define CONF_BOOL	"bool"

#define CONF_OPTIONS(X) \
	X(narenas,	0,	0,	PC_MAX_ARENAS,	CONF_NUM,	"arenas; 0 = one per CPU") \
	X(tcache,	1,	0,	1,		CONF_BOOL,	"thread caches on/off") \
	X(tcache_max,	32768,	0,	32768,		CONF_SIZE,	"largest cached size") \
	X(tcache_reclaim, 1,	0,	1,		CONF_BOOL,	"other threads empty idle threads' caches") \
	X(abort_on_error, 1,	0,	1,		CONF_BOOL,	"abort after reporting a double or invalid free") \
	X(decay_ms,	10000,	0,	86400000,	CONF_NUM,	"ms before free dirty pages go back to the OS") \
	X(background_thread, 2,	0,	2,		"off|on|auto",	"purging thread: off, on, auto (once a heap has much to give back)") \
	X(thp,		0,	0,	2,		"default|always|never", "huge pages: default, always, never") \
	X(large_clean,	0,	0,	1,		CONF_BOOL,	"purge leftover resident pages inside large blocks as they are handed out") \
	X(nursery,	1,	0,	1,		CONF_BOOL,	"pack the first thread's first 256 KiB of small blocks together (start-up; closes when it frees most)") \
	X(stats_print,	0,	0,	1,		CONF_BOOL,	"print statistics at exit") \
	X(debug,	0,	0,	1,		CONF_BOOL,	"junk-fill freed blocks, redzones (slow)") \
	X(guard_sample,	67108864, 0, (size_t)1 << 40, CONF_SIZE, "mean bytes allocated between guarded samples; 0 = off, 1 = every eligible allocation") \
	X(guard_slots,	256,	1,	4096,		CONF_NUM,	"guarded page slots (at most half of them live)") \
	X(guard_recover, 0,	0,	1,		CONF_BOOL,	"report a guarded fault once and run on instead of aborting") \
	X(prof,		0,	0,	1,		CONF_BOOL,	"sampled heap profiler on/off") \
	X(prof_sample,	2097152, 1,	(size_t)1 << 40, CONF_SIZE,	"mean bytes between samples (2 MiB: docs/profiling.md)") \
	X(prof_dump_at_exit, 0,	0,	1,		CONF_BOOL,	"write a profile at exit") \
	X(prof_dump_signal, 0,	0,	1,		CONF_BOOL,	"write a profile on SIGUSR2") \
	X(prof_dump_every, 0,	0,	SIZE_MAX,	CONF_SIZE,	"write a profile every N bytes allocated; 0 = never") \
	X(prof_dump_peak, 0,	0,	1,		CONF_BOOL,	"write a profile at each new peak of live bytes (rate-limited)")

#define CONF_DECLARE(name, def, lo, hi, words, doc) extern size_t opt_##name;
CONF_OPTIONS(CONF_DECLARE)
#undef CONF_DECLARE

/* The one option that is a string: the profile file prefix ("prof_prefix:
 * /tmp/app"; may not contain a comma).  Defaults to "pcmalloc". */
#define CONF_PREFIX_MAX 256
extern char opt_prof_prefix[CONF_PREFIX_MAX];

/* The compiled-in defaults (PCMALLOC_DEFAULT_CONF at build time). */
extern const char conf_builtin[];

void conf_init(void);
/* Parse a configuration string; used by conf_init and tests.  Returns the
 * number of errors reported. */
int conf_parse(const char *s);

#endif
