/*
 * realloc-grow: many buffers growing with realloc, like string builders,
 * vectors and read buffers in real programs.
 *
 *   realloc-grow THREADS APPENDS [BUFFERS MAXSZ]
 *
 * Each thread keeps BUFFERS/THREADS buffers and appends 8..256 random bytes
 * to them round-robin (so neighbouring buffers compete for the space after
 * each other). Even-numbered buffers grow exactly (realloc to the new
 * length), odd ones by 1.5x capacity. When a buffer reaches its target size
 * (log-uniform up to MAXSZ) its contents are verified against a running
 * hash (realloc must have preserved every byte), it is freed and a new one
 * started. APPENDS is the total over all threads.
 */
#include "common.h"

struct buf {
	unsigned char *p;
	size_t len, cap, target;
	uint64_t hash;
};

/* Read-only settings, shared by every thread. */
struct grow {
	size_t appends, nbuf, maxsz;	// per thread
};

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t worker(int id, void *shared)
{
	const struct grow *a = shared;
	struct buf *b = pcb_calloc(a->nbuf, sizeof *b);
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, 9);
	uint64_t sum = 0;
	unsigned char chunk[256];
	for (size_t k = 0; k < a->appends; k++) {
		size_t j = k % a->nbuf;
		struct buf *B = &b[j];
		if (!B->p) {
			B->target = pcb_logsize(&rng, 64, a->maxsz);
			B->cap = 16;
			B->p = pcb_malloc(B->cap);
			B->len = 0;
			B->hash = 0xcbf29ce484222325ULL;
		}
		size_t n = pcb_range(&rng, 8, 256);
		uint64_t r = pcb_rand(&rng);
		for (size_t i = 0; i < n; i++)
			chunk[i] = (unsigned char)(r >> (8 * (i & 7))) + (unsigned char)i;
		if (B->len + n > B->cap) {
			size_t nc = (j & 1) ? B->cap + B->cap / 2 : B->len + n;
			if (nc < B->len + n)
				nc = B->len + n;
			unsigned char *q = realloc(B->p, nc);
			if (!q)
				pcb_die("realloc(%zu) failed", nc);
			B->p = q;
			B->cap = nc;
		}
		memcpy(B->p + B->len, chunk, n);
		B->len += n;
		B->hash = fnv(B->hash, chunk, n);
		if (B->len >= B->target) {
			if (fnv(0xcbf29ce484222325ULL, B->p, B->len) != B->hash)
				pcb_die("realloc lost data (len %zu)", B->len);
			sum += B->hash ^ B->len;
			free(B->p);
			B->p = NULL;
		}
	}
	for (size_t j = 0; j < a->nbuf; j++) {
		if (!b[j].p)
			continue;
		if (fnv(0xcbf29ce484222325ULL, b[j].p, b[j].len) != b[j].hash)
			pcb_die("realloc lost data (len %zu)", b[j].len);
		sum += b[j].hash ^ b[j].len;
		free(b[j].p);
	}
	free(b);
	return sum;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	size_t appends = (size_t)pcb_arg(argc, argv, 2, 2000000);
	size_t nbuf = (size_t)pcb_arg(argc, argv, 3, 1000);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 4, 262144);
	if (threads < 1 || maxsz < 64)
		pcb_die("usage: realloc-grow THREADS APPENDS [BUFFERS MAXSZ]");
	size_t per = nbuf / (size_t)threads ? nbuf / (size_t)threads : 1;
	struct grow g = { .appends = appends / (size_t)threads, .nbuf = per,
		.maxsz = maxsz };
	pcb_result("realloc-grow", pcb_run_threads(threads, worker, &g));
	return 0;
}
