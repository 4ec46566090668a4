/*
 * simple: one thread, malloc/free loop over sizes 16..4096, in the spirit
 * of glibc's bench-malloc-simple.
 *
 *   simple THREADS OPS [MINSZ MAXSZ]
 *
 * For each size from MINSZ to MAXSZ, doubling, and each working-set count
 * of 25, 100, 400 and 1600 blocks: allocate that many blocks of the size,
 * write every byte, free the first half in allocation order and the second
 * half in reverse order; repeat until about OPS/(sizes x counts) blocks
 * went through. No block outlives its round, so this is the thread cache's
 * refill and flush path and the class lookup at every size, with nothing
 * else. THREADS is accepted for the harness and ignored (always 1).
 */
#include "common.h"

static const size_t counts[] = { 25, 100, 400, 1600 };
#define NCOUNTS (sizeof counts / sizeof counts[0])

int main(int argc, char **argv)
{
	size_t ops = (size_t)pcb_arg(argc, argv, 2, 4000000);
	size_t minsz = (size_t)pcb_arg(argc, argv, 3, 16);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 4, 4096);
	if (minsz < 1 || maxsz < minsz)
		pcb_die("usage: simple THREADS OPS [MINSZ MAXSZ]");
	size_t nsizes = 0;
	for (size_t sz = minsz; sz <= maxsz; sz *= 2)
		nsizes++;
	size_t per = ops / (nsizes * NCOUNTS);
	unsigned char **arr = pcb_malloc(counts[NCOUNTS - 1] * sizeof *arr);
	uint64_t sum = 0;
	for (size_t sz = minsz; sz <= maxsz; sz *= 2) {
		for (size_t c = 0; c < NCOUNTS; c++) {
			size_t n = counts[c];
			size_t rounds = per / n ? per / n : 1;
			for (size_t r = 0; r < rounds; r++) {
				for (size_t i = 0; i < n; i++) {
					arr[i] = pcb_malloc(sz);
					memset(arr[i], (int)(i + r), sz);
				}
				/* the data a block holds is read back
				 * before it goes: the writes cannot be
				 * dropped, and a mixed-up block shows */
				for (size_t i = 0; i < n / 2; i++) {
					sum += arr[i][sz - 1] ^ (i + r);
					free(arr[i]);
				}
				for (size_t i = n; i-- > n / 2;) {
					sum += arr[i][sz - 1] ^ (i + r);
					free(arr[i]);
				}
			}
		}
	}
	free(arr);
	pcb_result("simple", pcb_mix64(sum));
	return 0;
}
