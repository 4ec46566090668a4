/*
 * A valid PCMALLOC_CONF takes effect under LD_PRELOAD even when the
 * process's first allocation runs before libc has set `environ`
 * (docs/options.md, docs/design.md "Bootstrap"): doc_preinit allocates
 * from .preinit_array, and the options it asked for (narenas:3,
 * tcache_max:1k, stats_print:true) are in force: pc_stat_get sees 3
 * arenas and the statistics printed at exit show the options.
 * Catches: options read from `environ` only (then silently the defaults).
 *
 * Usage: test_doc_preload LIBPCMALLOC DOC_PREINIT
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "doc_common.h"

static const char *lib, *prog;
static char out[65536];

static int
run_preloaded(const char *conf)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		setenv("LD_PRELOAD", lib, 1);
		setenv("PCMALLOC_CONF", conf, 1);
		execl(prog, prog, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(fd[0], out + n, sizeof(out) - 1 - n)) > 0 ||
	    (r < 0 && errno == EINTR))
		n += r > 0 ? (size_t)r : 0;
	out[n] = '\0';
	close(fd[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void
test_conf_before_environ(void **state)
{
	(void)state;
	int st = run_preloaded("narenas:3,tcache_max:1k,stats_print:true");
	if (!doc_exited_ok(st))
		fail_msg("doc_preinit: status 0x%x: %s", st, out);
	assert_non_null(strstr(out, "environ at the first malloc: NULL\n"));
	assert_non_null(strstr(out, "narenas 3\n"));
	if (strstr(out, "options: narenas 3 tcache 1 tcache_max 1024 ") ==
	    NULL)
		fail_msg("statistics at exit do not show the options: %s", out);
	assert_null(strstr(out, "PCMALLOC_CONF:"));	/* no parse error */
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBPCMALLOC DOC_PREINIT\n", argv[0]);
		return 2;
	}
	lib = argv[1];
	prog = argv[2];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_before_environ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
