/*
 * The background purging thread: every decay_ms / 16 (10 ms to 500 ms) it
 * runs the idle-cache reclaim tick, every arena's decay tick and the kept
 * huge mappings' tick, so memory freed by a program that then goes quiet
 * still goes back to the OS.  opt_background_thread: 0 off, 1 on, 2 auto
 * (started once a page heap has held 32 MiB of dirty pages,
 * pageheap_dirty_high, or freed huge blocks' kept mappings exceed 64 MiB,
 * huge.h).  Started by init.c, never
 * from a fork handler: a child starts it again on a later slow path.
 */
#ifndef PC_BGTHREAD_H
#define PC_BGTHREAD_H

#include "config.h"

/* Start the thread if the options want it now and it is not running. */
void bgthread_start(void);
/* bgthread_start, with a cheap test first (from slow paths). */
void bgthread_poll(void);
/* Whether the thread was started (and has not been lost to a fork). */
bool bgthread_running(void);
/* Only the forking thread survives: the purging thread is gone. */
void bgthread_postfork_child(void);

#endif
