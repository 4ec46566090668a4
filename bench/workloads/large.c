/*
 * large: large-block churn, 64 KiB .. 32 MiB.
 *
 *   large THREADS OPS [SLOTS MINSZ MAXSZ TOUCH]
 *
 * Each thread keeps SLOTS/THREADS (at least 2, at most 64) large blocks;
 * each operation replaces a random one with a block of log-uniform size in
 * [MINSZ, MAXSZ] and, with TOUCH=1 (the default), touches one byte in every
 * 4 KiB page of it, like a program filling big buffers. With TOUCH=0 only
 * the first and the last 8 bytes are written, like a program that reserves
 * big buffers and uses little of them: then the pages an allocator touches
 * itself (or does not give back) are what peak RSS shows. This measures
 * how an allocator handles mmap-sized requests: reusing address space
 * vs. mmap/munmap per call, page-fault and zeroing cost, and how much it
 * retains (peak RSS). OPS is the total over all threads.
 */
#include "slot_churn.h"

#define LARGE_MAX_SLOTS 64	// per thread; the arrays live on its stack

static uint64_t worker(int id, void *c)
{
	void *ptr[LARGE_MAX_SLOTS] = { 0 };
	size_t size[LARGE_MAX_SLOTS];
	uint64_t tag[LARGE_MAX_SLOTS];
	return slot_churn_run(c, id, ptr, size, tag);
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	size_t ops = (size_t)pcb_arg(argc, argv, 2, 2000);
	size_t slots = (size_t)pcb_arg(argc, argv, 3, 16);
	size_t minsz = (size_t)pcb_arg(argc, argv, 4, 64 << 10);
	size_t maxsz = (size_t)pcb_arg(argc, argv, 5, 32 << 20);
	int touch = (int)pcb_arg(argc, argv, 6, 1);
	if (threads < 1 || minsz < 16 || maxsz < minsz || touch > 1)
		pcb_die("usage: large THREADS OPS [SLOTS MINSZ MAXSZ TOUCH]");
	size_t per = slots / (size_t)threads;
	if (per < 2)
		per = 2;
	if (per > LARGE_MAX_SLOTS)
		per = LARGE_MAX_SLOTS;
	struct slot_churn c = { .ops = ops / (size_t)threads, .slots = per,
		.minsz = minsz, .maxsz = maxsz, .seed = 11,
		.touch_pages = touch };
	pcb_result("large", pcb_run_threads(threads, worker, &c));
	return 0;
}
