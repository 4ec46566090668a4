// usdlike: a USD-like stage built and torn down on a TBB pool.
//
//   usdlike THREADS PRIMS [ROUNDS BIGBUFS]
//
// ROUNDS times, the pattern of opening and closing a USD stage:
//  1. Build: a tbb::parallel_for over batches of 1024 prims, on a
//     task_arena of THREADS threads. A prim is a path string, a vector of
//     attribute-name strings, a vector of doubles (grown by push_back, so
//     reallocated as it grows) and a small std::unordered_map of metadata;
//     each batch indexes its prims in an unordered_map keyed by path that
//     grows from empty (rehashes). PRIMS is the total over all batches.
//  2. Large buffers: BIGBUFS buffers of 64 KiB..64 MiB (log-uniform) are
//     made in parallel and attached to batches, the way value arrays
//     (points, normals) hang off prims; only their first page and last
//     byte are written, so untouched pages must stay untouched.
//  3. Teardown: every batch is handed to a detached task
//     (task_arena::enqueue, as WorkMoveDestroyAsync does), which destroys
//     it on whatever worker picks it up: a burst of frees of memory that
//     other threads allocated. The main thread waits until all are done.
// At the end it prints the checksum and the resident set after the last
// teardown ("final_rss_kib: N", read from /proc/self/statm), which the
// harness reports beside the peak RSS: memory an allocator keeps after the
// program freed everything.
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

std::uint64_t mix(std::uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

struct Prim {
	std::string path;
	std::vector<std::string> attrs;
	std::vector<double> values;
	std::unordered_map<std::string, int> meta;
};

struct Batch {
	std::vector<std::unique_ptr<Prim>> prims;
	std::unordered_map<std::string, Prim *> index;
	std::vector<std::unique_ptr<unsigned char[]>> big;
	std::vector<std::size_t> bigsize;
	std::uint64_t sum = 0;
};

const std::size_t kBatch = 1024;

std::unique_ptr<Batch> build_batch(std::size_t b, std::size_t nprims,
				   unsigned round)
{
	auto bt = std::make_unique<Batch>();
	std::uint64_t seed = mix(b * 1000003 + round);
	for (std::size_t i = 0; i < nprims; i++) {
		std::uint64_t r = mix(seed + i);
		auto p = std::make_unique<Prim>();
		p->path = "/World/set_" + std::to_string(b) + "/asset_" +
			  std::to_string(i % 97) + "/geom_" + std::to_string(i);
		std::size_t nattr = 2 + r % 7;
		for (std::size_t a = 0; a < nattr; a++)
			p->attrs.push_back("primvars:attribute_" +
					   std::to_string(a));
		std::size_t nval = 1 + (r >> 8) % 96;
		for (std::size_t v = 0; v < nval; v++)
			p->values.push_back((double)(v ^ i));
		p->meta["kind"] = (int)(r & 3);
		if (r & 16)
			p->meta["documentation:" + std::to_string(i)] = 1;
		bt->sum += mix(p->path.size() ^ nattr ^ (nval << 16));
		bt->index.emplace(p->path, p.get());
		bt->prims.push_back(std::move(p));
	}
	return bt;
}

std::size_t big_size(std::uint64_t r)
{
	// log-uniform in [64 KiB, 64 MiB]
	unsigned b = 16 + (unsigned)(r % 10);
	std::size_t base = (std::size_t)1 << b;
	return base + (std::size_t)((r >> 8) % base);
}

std::size_t rss_kib()
{
	unsigned long size = 0, res = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (f) {
		if (std::fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		std::fclose(f);
	}
	return res * 4;
}

long arg(int argc, char **argv, int i, long dflt)
{
	if (i >= argc)
		return dflt;
	char *end;
	long v = std::strtol(argv[i], &end, 0);
	if (*end || v < 0) {
		std::fprintf(stderr, "error: bad argument %d: '%s'\n", i,
			     argv[i]);
		std::exit(2);
	}
	return v;
}

} // namespace

int main(int argc, char **argv)
{
	int threads = (int)arg(argc, argv, 1, 2);
	std::size_t prims = (std::size_t)arg(argc, argv, 2, 1000000);
	unsigned rounds = (unsigned)arg(argc, argv, 3, 2);
	std::size_t bigbufs = (std::size_t)arg(argc, argv, 4, 32);
	if (threads < 1 || prims < 1) {
		std::fprintf(stderr, "usage: usdlike THREADS PRIMS "
			     "[ROUNDS BIGBUFS]\n");
		return 2;
	}
	// One pool of THREADS threads: the arena's own, and no more.
	tbb::global_control gc(tbb::global_control::max_allowed_parallelism,
			       (std::size_t)threads);
	tbb::task_arena arena(threads);
	std::size_t nbatch = (prims + kBatch - 1) / kBatch;
	std::uint64_t sum = 0;
	for (unsigned round = 0; round < rounds; round++) {
		std::vector<std::unique_ptr<Batch>> stage(nbatch);
		arena.execute([&] {
			tbb::parallel_for(std::size_t(0), nbatch,
					  [&](std::size_t b) {
				std::size_t n = b + 1 < nbatch ? kBatch :
					prims - b * kBatch;
				stage[b] = build_batch(b, n, round);
			});
			tbb::parallel_for(std::size_t(0), bigbufs,
					  [&](std::size_t k) {
				std::uint64_t r = mix(k * 7919 + round);
				std::size_t n = big_size(r);
				std::unique_ptr<unsigned char[]> p(
					new unsigned char[n]);
				std::memset(p.get(), (int)(k & 0xff),
					    n < 4096 ? n : 4096);
				p[n - 1] = (unsigned char)k;
				Batch &bt = *stage[k % nbatch];
				// batches get their buffers from several
				// tasks: guard the owner batch's vectors
				static std::mutex mu;
				std::lock_guard<std::mutex> g(mu);
				bt.big.push_back(std::move(p));
				bt.bigsize.push_back(n);
			});
		});
		// Teardown on detached tasks; count them home.
		std::mutex mu;
		std::condition_variable cv;
		std::size_t left = nbatch;
		std::atomic<std::uint64_t> tsum{0};
		for (auto &b : stage) {
			Batch *bt = b.release();
			arena.enqueue([bt, &mu, &cv, &left, &tsum] {
				std::uint64_t s = bt->sum;
				for (std::size_t k = 0; k < bt->big.size(); k++)
					s += bt->big[k][bt->bigsize[k] - 1] +
					     bt->bigsize[k];
				s += bt->index.size();
				delete bt;
				tsum += s;
				std::lock_guard<std::mutex> g(mu);
				if (--left == 0)
					cv.notify_one();
			});
		}
		std::unique_lock<std::mutex> g(mu);
		cv.wait(g, [&] { return left == 0; });
		sum += tsum.load();
	}
	std::printf("usdlike checksum: %016llx\n", (unsigned long long)sum);
	std::printf("final_rss_kib: %zu\n", rss_kib());
	return 0;
}
