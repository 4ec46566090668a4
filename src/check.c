#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "os.h"

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
