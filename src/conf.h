/*
 * Run-time options, read once from PCMALLOC_CONF ("key:value,key:value")
 * before the first allocation, without allocating.  A bad key or value is
 * reported on stderr and the default kept.
 */
#ifndef PC_CONF_H
#define PC_CONF_H

#include "config.h"

/* X(name, default, min, max, doc) -- all options are unsigned integers;
 * booleans accept true/false/on/off/1/0. */
#define CONF_OPTIONS(X) \
	X(narenas,	0,	0,	PC_MAX_ARENAS,	"arenas; 0 = one per CPU") \
	X(tcache,	1,	0,	1,		"thread caches on/off") \
	X(tcache_max,	32768,	0,	32768,		"largest cached size") \
	X(tcache_reclaim, 1,	0,	1,		"other threads empty idle threads' caches") \
	X(abort_on_error, 1,	0,	1,		"abort after reporting a double or invalid free") \
	X(decay_ms,	10000,	0,	86400000,	"ms before free dirty pages go back to the OS") \
	X(background_thread, 2,	0,	2,		"purging thread: off, on, auto (once a heap has much to give back)") \
	X(thp,		0,	0,	2,		"huge pages: default, always, never") \
	X(stats_print,	0,	0,	1,		"print statistics at exit") \
	X(debug,	0,	0,	1,		"junk-fill freed blocks, redzones (slow)")

#define CONF_DECLARE(name, def, lo, hi, doc) extern size_t opt_##name;
CONF_OPTIONS(CONF_DECLARE)
#undef CONF_DECLARE

/* The compiled-in defaults (PCMALLOC_DEFAULT_CONF at build time). */
extern const char conf_builtin[];

void conf_init(void);
/* Parse a configuration string; used by conf_init and tests.  Returns the
 * number of errors reported. */
int conf_parse(const char *s);

#endif
