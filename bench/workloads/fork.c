/*
 * fork: a program that runs commands, as a shell, a build tool or a
 * render farm's job wrapper does.
 *
 *   fork THREADS COMMANDS [LIVE_KIB]
 *
 * The main thread holds LIVE_KIB KiB of blocks (16 B..4 KiB) while
 * THREADS-1 other threads allocate and free in bursts (256 operations,
 * then a millisecond's sleep: they work beside the commands, not instead
 * of them, even with more threads than cores), and runs COMMANDS commands
 * one after another: fork; the child frees and allocates a few blocks,
 * then runs /bin/true (which, under LD_PRELOAD, loads the allocator
 * again); the parent waits for it.  What the allocator adds to each
 * command: its fork handlers (locks taken, then released in the parent
 * and made usable in the child; every page they write that parent and
 * child share is a copy-on-write fault), the child's first allocations,
 * and its own start-up in the new program.
 */
#include <stdatomic.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define CHURN_SLOTS 256

static atomic_int stop;

/* Allocation traffic beside the commands: its amount depends on timing,
 * so it is checked but not part of the checksum. */
static void *churn(void *arg)
{
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)(uintptr_t)arg, 7);
	void *slot[CHURN_SLOTS] = { 0 };
	size_t size[CHURN_SLOTS] = { 0 };
	for (unsigned op = 1;
	    !atomic_load_explicit(&stop, memory_order_relaxed); op++) {
		if (op % 256 == 0) {
			struct timespec ms = { 0, 1000000 };
			nanosleep(&ms, NULL);
		}
		size_t i = (size_t)(pcb_rand(&rng) % CHURN_SLOTS);
		if (slot[i]) {
			pcb_check(slot[i], size[i], i, 0);
			free(slot[i]);
		}
		size[i] = pcb_logsize(&rng, 16, 4096);
		slot[i] = pcb_malloc(size[i]);
		pcb_stamp(slot[i], size[i], i, 0);
	}
	for (size_t i = 0; i < CHURN_SLOTS; i++)
		free(slot[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	long commands = pcb_arg(argc, argv, 2, 200);
	size_t live_kib = (size_t)pcb_arg(argc, argv, 3, 16384);
	if (threads < 1 || commands < 1)
		pcb_die("usage: fork THREADS COMMANDS [LIVE_KIB]");

	/* The live heap: sizes log-uniform over 16 B..4 KiB. */
	pcb_rng rng;
	pcb_rng_seed(&rng, 1, 2);
	size_t cap = 1024, n = 0, bytes = 0;
	void **blk = pcb_malloc(cap * sizeof *blk);
	size_t *len = pcb_malloc(cap * sizeof *len);
	while (bytes < live_kib * 1024) {
		if (n == cap) {
			cap *= 2;
			blk = realloc(blk, cap * sizeof *blk);
			len = realloc(len, cap * sizeof *len);
			if (!blk || !len)
				pcb_die("out of memory");
		}
		len[n] = pcb_logsize(&rng, 16, 4096);
		blk[n] = pcb_malloc(len[n]);
		pcb_stamp(blk[n], len[n], n, 0);
		bytes += len[n++];
	}

	pthread_t *t = pcb_calloc((size_t)threads, sizeof *t);
	for (int i = 1; i < threads; i++)
		pcb_create(&t[i], churn, (void *)(uintptr_t)i);

	uint64_t sum = 0;
	for (long c = 0; c < commands; c++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			pcb_die("fork failed");
		if (pid == 0) {
			/* What a shell does between fork and exec: build the
			 * command's arguments and environment. */
			size_t k = (size_t)c % n;
			free(blk[k]);
			char *arg = malloc(64 + (size_t)c % 512);
			char *av[] = { "true", arg, NULL };
			if (arg)
				snprintf(arg, 64, "%ld", c);
			execv("/bin/true", av);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			pcb_die("command %ld failed", c);
		sum += pcb_mix64((uint64_t)c);
		/* The parent goes on allocating between commands. */
		size_t k = (size_t)(pcb_rand(&rng) % n);
		sum += pcb_check(blk[k], len[k], k, 0);
		free(blk[k]);
		blk[k] = pcb_malloc(len[k]);
		pcb_stamp(blk[k], len[k], k, 0);
	}

	atomic_store(&stop, 1);
	for (int i = 1; i < threads; i++)
		pcb_join(t[i]);
	for (size_t i = 0; i < n; i++) {
		sum += pcb_check(blk[i], len[i], i, 0);
		free(blk[i]);
	}
	free(blk);
	free(len);
	free(t);
	pcb_result("fork", sum);
	return 0;
}
