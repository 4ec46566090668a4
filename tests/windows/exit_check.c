/*
 * Helper DLL for test_exit_flush.c.  At process exit wine (like Windows)
 * runs the main thread's FLS callbacks, then DLL_PROCESS_DETACH of the
 * DLLs; an exe's own TLS callback gets no PROCESS_DETACH under wine 8.  So
 * the check that runs after pcmalloc's exit hook lives here: the exe arms
 * it with a probe (its "allocated" statistic) and a limit.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

static unsigned long long (*probe)(void);
static unsigned long long limit;

__declspec(dllexport) void
exit_check_arm(unsigned long long (*fn)(void), unsigned long long max)
{
	probe = fn;
	limit = max;
}

static void
say(const char *s)
{
	DWORD w;
	WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, (DWORD)strlen(s), &w,
	    NULL);
}

BOOL WINAPI
DllMain(HINSTANCE dll, DWORD reason, LPVOID reserved)
{
	(void)dll;
	/* reserved != NULL: the process is exiting (not FreeLibrary). */
	if (reason != DLL_PROCESS_DETACH || reserved == NULL || probe == NULL)
		return TRUE;
	unsigned long long now = probe();
	char buf[128];
	snprintf(buf, sizeof(buf), "at exit: allocated %llu, limit %llu\n",
	    now, limit);
	say(buf);
	say(now <= limit ? "exit-flush ok\n" :
	    "exit-flush FAILED: the main thread's cache was not flushed\n");
	return TRUE;
}
