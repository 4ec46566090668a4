/*
 * realloc-big: big buffers grown to their size by appends, as a Python list
 * or bytearray, a string builder or a file read into memory does.
 *
 *   realloc-big THREADS ROUNDS [MAXSZ]
 *
 * Each thread builds ROUNDS/THREADS buffers one after the other, each to a
 * size drawn log-uniformly between 1 MiB and MAXSZ, by appending 64-byte
 * records and growing the buffer by an eighth whenever it is full (CPython's
 * list_resize grows by about that much); a small block is allocated now
 * and then, so a buffer cannot always grow into the space after it.  Each
 * finished buffer is checked against a running sum of its records (realloc
 * must have kept every byte) and freed.  What it measures: copies and page
 * faults when a growing buffer moves, and the memory held meanwhile.
 */
#include "common.h"

struct settings {
	size_t rounds, maxsz;
};

static uint64_t worker(int id, void *arg)
{
	const struct settings *s = arg;
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, 31);
	void *small[16] = { 0 };
	uint64_t sum = 0;
	for (size_t r = 0; r < s->rounds; r++) {
		size_t target = pcb_logsize(&rng, (size_t)1 << 20, s->maxsz);
		size_t len = 0, cap = 4096, k = 0;
		uint64_t *p = pcb_malloc(cap), expect = 0;
		while (len < target) {
			if (len + 64 > cap) {
				cap += cap / 8 + 64;
				p = realloc(p, cap);
				if (!p)
					pcb_die("realloc(%zu) failed", cap);
				size_t j = k % 16;
				free(small[j]);
				small[j] = pcb_malloc(100 + j * 64);
			}
			uint64_t *rec = p + len / 8;
			for (int i = 0; i < 8; i++)
				rec[i] = pcb_mix64(k * 8 + (uint64_t)i);
			expect += rec[0] ^ rec[7];
			len += 64;
			k++;
		}
		uint64_t got = 0;
		for (size_t i = 0; i < len / 8; i += 8)
			got += p[i] ^ p[i + 7];
		if (got != expect)
			pcb_die("realloc-big: buffer corrupted (%zu bytes)", len);
		sum += got ^ len;
		free(p);
	}
	for (int j = 0; j < 16; j++)
		free(small[j]);
	return pcb_mix64(sum ^ (uint64_t)id);
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	size_t rounds = (size_t)pcb_arg(argc, argv, 2, 12);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 3, 64L << 20);
	if (threads < 1 || rounds < (size_t)threads || maxsz < ((size_t)1 << 20))
		pcb_die("usage: realloc-big THREADS ROUNDS [MAXSZ] "
			"(ROUNDS >= THREADS, MAXSZ >= 1 MiB)");
	struct settings s = { .rounds = rounds / (size_t)threads,
		.maxsz = maxsz };
	pcb_result("realloc-big", pcb_run_threads(threads, worker, &s));
	return 0;
}
