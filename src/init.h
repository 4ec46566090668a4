/*
 * Bootstrap: global set-up on the first allocation (which may come from
 * inside the dynamic loader, before any constructor), thread-exit and fork
 * hooks.  The lower layers' slow paths call pc_ensure_init and
 * pc_ensure_services: first-use initialisation, the only calls that go up
 * (docs/design.md).
 */
#ifndef PC_INIT_H
#define PC_INIT_H

#include "config.h"

extern bool pc_initialized;
/* Thread-exit and fork hooks are registered: thread caches may be used. */
extern bool pc_hooks_ready;

int pc_init_slow(void) PC_NOINLINE PC_COLD;
/* Start the services that need a working libc (the background purging
 * thread) if they are wanted and not running (not yet, or not since a
 * fork); called from slow paths, like pc_ensure_init. */
void pc_ensure_services(void);

/* 0 once the allocator can serve requests, ENOMEM if it cannot start. */
static PC_INLINE int
pc_ensure_init(void)
{
	if (PC_LIKELY(__atomic_load_n(&pc_initialized, __ATOMIC_ACQUIRE)))
		return 0;
	return pc_init_slow();
}

#endif
