// C++ workload for the LD_PRELOAD test: operator new/delete (plain, array,
// sized, aligned, nothrow), std::vector/std::string/std::map/shared_ptr and
// exceptions from many threads, with deterministic output compared against
// a plain glibc run.  Catches: operator new/delete (libstdc++'s, or
// pcmalloc's own _Znwm... if it exports them) mismatched with malloc/free,
// aligned new returning misaligned memory or being freed wrongly, and
// corruption under real container churn.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct alignas(64) Line {
	unsigned char b[64];
};

struct alignas(4096) Page {
	unsigned char b[4096];
};

static std::atomic<int> failures{0};

static void
check(bool ok, const char *what)
{
	if (!ok) {
		std::fprintf(stderr, "check failed: %s\n", what);
		failures++;
	}
}

static uint64_t
work(unsigned id)
{
	uint64_t h = 1469598103934665603ull;
	auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
	for (int round = 0; round < 60; round++) {
		std::vector<std::string> v;
		for (int i = 0; i < 2000; i++)
			v.push_back(std::string(static_cast<size_t>(i % 300),
			    static_cast<char>('a' + (i + static_cast<int>(id)) % 26)));
		std::map<std::string, int> m;
		for (size_t i = 0; i < v.size(); i += 3)
			m[v[i] + std::to_string(i)] = static_cast<int>(i);
		mix(m.size());
		mix(m.begin()->second);
		std::unordered_map<int, std::vector<int>> um;
		for (int i = 0; i < 3000; i++)
			um[i % 100].push_back(i);
		mix(um[42].size());

		Line *lines = new Line[17];
		check(reinterpret_cast<uintptr_t>(lines) % 64 == 0, "new Line[]");
		std::memset(lines, round, sizeof(Line) * 17);
		Page *pg = new Page;
		check(reinterpret_cast<uintptr_t>(pg) % 4096 == 0, "new Page");
		pg->b[4095] = 1;
		auto vp = std::vector<Page>(3);
		check(reinterpret_cast<uintptr_t>(vp.data()) % 4096 == 0,
		    "vector<Page>");
		delete pg;
		delete[] lines;

		auto sp = std::make_shared<std::vector<double>>(10000, 1.5);
		mix(static_cast<uint64_t>((*sp)[9999] * 2));
		std::unique_ptr<int[]> arr(new int[100000]());
		mix(static_cast<uint64_t>(arr[99999]));

		char *big = new char[3 << 20];
		big[(3 << 20) - 1] = 7;
		mix(static_cast<uint64_t>(big[(3 << 20) - 1]));
		delete[] big;

		try {
			throw std::runtime_error(std::string(200, 'x'));
		} catch (const std::exception &e) {
			mix(std::strlen(e.what()));
		}
		void *p = ::operator new(100, std::align_val_t(256));
		check(reinterpret_cast<uintptr_t>(p) % 256 == 0, "align_val_t");
#if defined(__cpp_sized_deallocation)
		::operator delete(p, 100, std::align_val_t(256));
#else
		::operator delete(p, std::align_val_t(256));
#endif
		int *q = new (std::nothrow) int[10];
		check(q != nullptr, "nothrow new");
		delete[] q;
	}
	return h;
}

int
main(int argc, char **argv)
{
	int nthreads = argc > 1 ? std::atoi(argv[1]) : 16;
	std::vector<uint64_t> results(static_cast<size_t>(nthreads));
	std::vector<std::thread> ts;
	for (int i = 0; i < nthreads; i++)
		ts.emplace_back([i, &results] {
			results[static_cast<size_t>(i)] = work(static_cast<unsigned>(i));
		});
	for (auto &t : ts)
		t.join();
	for (int i = 0; i < nthreads; i++)
		std::printf("thread %d: %016llx\n", i,
		    static_cast<unsigned long long>(results[static_cast<size_t>(i)]));

	// failure paths
	bool caught = false;
	try {
		volatile size_t huge = SIZE_MAX / 4;
		char *x = new char[huge];
		x[0] = 1;
	} catch (const std::bad_alloc &) {
		caught = true;
	}
	std::printf("bad_alloc caught: %d\n", caught);
	volatile size_t huge2 = SIZE_MAX / 8;
	char *y = new (std::nothrow) char[huge2];
	std::printf("nothrow huge: %s\n", y ? "non-null" : "null");
	delete[] y;
	std::printf("failures: %d\n", failures.load());
	return failures.load() ? 1 : 0;
}
