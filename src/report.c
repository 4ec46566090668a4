#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "conf.h"
#include "os.h"

uint64_t pc_misuse_reports;

size_t
pc_fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

size_t
pc_fmt_hex(char *buf, uintptr_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = digits[v & 15];
		v >>= 4;
	} while (v != 0);
	buf[0] = '0';
	buf[1] = 'x';
	for (size_t i = 0; i < n; i++)
		buf[2 + i] = tmp[n - 1 - i];
	return n + 2;
}

static size_t
append(char *buf, size_t at, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (at + n > cap)
		n = cap - at;
	memcpy(buf + at, s, n);
	return at + n;
}

void
pc_report_ptr(const char *msg, const void *p, const char *tail)
{
	char buf[256];
	size_t n = append(buf, 0, sizeof(buf) - 24, "pcmalloc: ");
	n = append(buf, n, sizeof(buf) - 24, msg);
	buf[n++] = ' ';
	n += pc_fmt_hex(buf + n, (uintptr_t)p);
	n = append(buf, n, sizeof(buf) - 1, tail ? tail : "");
	buf[n++] = '\n';
	os_write_err(buf, n);
}

/* Room kept at the end of the buffer: a number and the newline. */
#define MSG_RESERVE 24

void
pc_msg_start(pc_msg_t *m)
{
	m->n = 0;
	pc_msg_str(m, "pcmalloc: ");
}

void
pc_msg_str(pc_msg_t *m, const char *s)
{
	m->n = append(m->buf, m->n, sizeof(m->buf) - MSG_RESERVE, s);
}

void
pc_msg_u64(pc_msg_t *m, uint64_t v)
{
	if (m->n < sizeof(m->buf) - MSG_RESERVE)
		m->n += pc_fmt_u64(m->buf + m->n, v);
}

void
pc_msg_hex(pc_msg_t *m, uintptr_t v)
{
	if (m->n < sizeof(m->buf) - MSG_RESERVE)
		m->n += pc_fmt_hex(m->buf + m->n, v);
}

void
pc_msg_write(pc_msg_t *m)
{
	m->buf[m->n++] = '\n';
	os_write_err(m->buf, m->n);
}

void
pc_report(const char *msg)
{
	char buf[256];
	size_t n = append(buf, 0, sizeof(buf) - 1, "pcmalloc: ");
	n = append(buf, n, sizeof(buf) - 1, msg);
	buf[n++] = '\n';
	os_write_err(buf, n);
}

void
pc_fatal(const char *msg, const char *file, int line)
{
	char buf[384];
	size_t n = append(buf, 0, sizeof(buf) - 40, "pcmalloc: fatal: ");
	n = append(buf, n, sizeof(buf) - 40, msg);
	n = append(buf, n, sizeof(buf) - 40, " (");
	n = append(buf, n, sizeof(buf) - 40, file);
	buf[n++] = ':';
	n += pc_fmt_u64(buf + n, (uint64_t)line);
	buf[n++] = ')';
	buf[n++] = '\n';
	os_write_err(buf, n);
	abort();
}

/* Aborts deferred while this thread holds a lock (pc_misuse_defer): the
 * first one's message and place, kept for the undefer. */
static PC_TLS unsigned misuse_deferred;
static PC_TLS const char *misuse_what;
static PC_TLS const char *misuse_file;
static PC_TLS int misuse_line;

void
pc_misuse_end(const char *what, const char *file, int line)
{
	PC_COUNT_REPORT();
	if (!opt_abort_on_error)
		return;
	if (misuse_deferred == 0)
		pc_fatal(what, file, line);
	if (misuse_what == NULL) {
		misuse_what = what;
		misuse_file = file;
		misuse_line = line;
	}
}

void
pc_misuse_defer(void)
{
	misuse_deferred++;
}

void
pc_misuse_undefer(void)
{
	if (--misuse_deferred == 0 && misuse_what != NULL)
		pc_fatal(misuse_what, misuse_file, misuse_line);
}
