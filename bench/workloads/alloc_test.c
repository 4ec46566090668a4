/*
 * alloc-test: threads with mixed sizes and local frees, in the spirit of
 * alloc-test (OLogN Technologies).
 *
 *   alloc-test THREADS OPS [SLOTS MAXEXP]
 *
 * Each thread owns SLOTS/THREADS slots and does OPS/THREADS operations: pick
 * a random slot; if it holds a block, check and free it, else allocate a
 * block and write every byte of it. Sizes fall in power-of-two bands from
 * 8 B to 2^MAXEXP, each band half as likely as the one below it (most
 * blocks are small, a few reach the top), uniform inside a band. Every
 * free is local: this is the single-thread slow path (refills, flushes,
 * size classes above 1 KiB) running in several threads at once.
 */
#include "common.h"

struct settings {
	size_t ops, slots;
	unsigned maxexp;
};

static size_t band_size(pcb_rng *r, unsigned maxexp)
{
	uint64_t x = pcb_rand(r);
	/* trailing zeros of a random word: band b with probability 2^-b-1 */
	unsigned b = (unsigned)__builtin_ctzll((x >> 32) |
					       (1ULL << (maxexp - 3)));
	size_t base = (size_t)8 << b;
	return base + (size_t)(x & 0xffffffffu) % base;
}

static uint64_t worker(int id, void *arg)
{
	const struct settings *s = arg;
	unsigned char **ptr = pcb_calloc(s->slots, sizeof *ptr);
	size_t *size = pcb_calloc(s->slots, sizeof *size);
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, 23);
	uint64_t sum = 0;
	for (size_t k = 0; k < s->ops; k++) {
		size_t i = (size_t)(pcb_rand(&rng) % s->slots);
		if (ptr[i]) {
			unsigned char v = (unsigned char)(i * 7 + size[i]);
			if (ptr[i][0] != v || ptr[i][size[i] - 1] != v)
				pcb_die("alloc-test: block corrupted");
			sum += size[i];
			free(ptr[i]);
			ptr[i] = NULL;
		} else {
			size[i] = band_size(&rng, s->maxexp);
			ptr[i] = pcb_malloc(size[i]);
			memset(ptr[i], (int)(unsigned char)(i * 7 + size[i]),
			       size[i]);
		}
	}
	for (size_t i = 0; i < s->slots; i++)
		free(ptr[i]);
	free(ptr);
	free(size);
	return pcb_mix64(sum ^ (uint64_t)id);
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 2);
	size_t ops = (size_t)pcb_arg(argc, argv, 2, 20000000);
	size_t slots = (size_t)pcb_arg(argc, argv, 3, 1 << 18);
	unsigned maxexp = (unsigned)pcb_arg(argc, argv, 4, 13);
	if (threads < 1 || maxexp < 4 || maxexp > 24 ||
	    slots < (size_t)threads)
		pcb_die("usage: alloc-test THREADS OPS [SLOTS MAXEXP]"
			" (4 <= MAXEXP <= 24)");
	struct settings s = { .ops = ops / (size_t)threads,
		.slots = slots / (size_t)threads, .maxexp = maxexp };
	pcb_result("alloc-test", pcb_run_threads(threads, worker, &s));
	return 0;
}
