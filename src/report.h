/*
 * Assertions and error reports (the heap checker is verify.c).  PC_CHECK
 * is always on and guards against bad input; PC_ASSERT checks internal
 * invariants in debug builds only.  Reporting never allocates: messages
 * are formatted on the stack.
 */
#ifndef PC_REPORT_H
#define PC_REPORT_H

#include "config.h"

PC_NORETURN PC_COLD void pc_fatal(const char *msg, const char *file,
    int line);

/* Write "pcmalloc: <msg> 0x<ptr><tail>\n" to stderr. */
PC_COLD void pc_report_ptr(const char *msg, const void *p, const char *tail);
/* Write "pcmalloc: <msg>\n" to stderr. */
PC_COLD void pc_report(const char *msg);

/*
 * Reports of bad pointers and heap misuse (every call of the reporting
 * functions of api.c, arena.c and debug.c, printed or suppressed, fatal or
 * not): for tests and the fuzzer, which predict them.  Internal, not
 * exported; bumped with a relaxed atomic add on cold paths only.
 */
extern uint64_t pc_misuse_reports PC_HIDDEN;
#define PC_COUNT_REPORT() \
	((void)__atomic_fetch_add(&pc_misuse_reports, 1, __ATOMIC_RELAXED))

/*
 * The end of every report of heap misuse (the report is written): count
 * it, then abort with "fatal: <what> (<file>:<line>)" unless abort_on_error
 * is off.  A thread that reports while it holds a lock brackets that with
 * pc_misuse_defer()/pc_misuse_undefer() (they nest): the abort then comes
 * at the outermost undefer, once the lock is released.
 */
void pc_misuse_end(const char *what, const char *file, int line) PC_COLD;
#define PC_MISUSE_END(what) pc_misuse_end(what, __FILE__, __LINE__)
void pc_misuse_defer(void);
void pc_misuse_undefer(void);

/* Format helpers, usable by stats printing: return chars written. */
size_t pc_fmt_u64(char *buf, uint64_t v);
size_t pc_fmt_hex(char *buf, uintptr_t v);

/* A one-line report built piece by piece on the stack (truncated if too
 * long): pc_msg_start writes "pcmalloc: ", pc_msg_write the newline. */
typedef struct pc_msg {
	size_t n;
	char buf[320];
} pc_msg_t;
void pc_msg_start(pc_msg_t *m);
void pc_msg_str(pc_msg_t *m, const char *s);
void pc_msg_u64(pc_msg_t *m, uint64_t v);
void pc_msg_hex(pc_msg_t *m, uintptr_t v);
void pc_msg_write(pc_msg_t *m);

#define PC_CHECK(e, msg) \
	(PC_LIKELY(e) ? (void)0 : pc_fatal(msg, __FILE__, __LINE__))
#if PC_DEBUG
#define PC_ASSERT(e) PC_CHECK(e, #e)
#else
#define PC_ASSERT(e) ((void)sizeof(e))
#endif

#endif
