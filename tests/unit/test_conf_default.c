/* Options compiled in with PCMALLOC_DEFAULT_CONF apply, and PCMALLOC_CONF
 * in the environment still wins over them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcmalloc.h"
#include "conf.h"

int
main(void)
{
	free(malloc(1));
	unsigned long long n = 0;
	if (pc_stat_get("narenas", &n) != 0 || n != 3) {
		fprintf(stderr, "narenas %llu, want 3 (compiled in)\n", n);
		return 1;
	}
	const char *env = getenv("PCMALLOC_CONF");
	size_t want = env && strstr(env, "decay_ms:777") ? 777 : 1234;
	if (opt_decay_ms != want) {
		fprintf(stderr, "decay_ms %zu, want %zu\n", opt_decay_ms, want);
		return 1;
	}
	return 0;
}
