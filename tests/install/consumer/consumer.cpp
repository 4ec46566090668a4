// The C++ side of consumer.c: new/delete and the standard containers run on
// pcmalloc.  Usage: consumer_cxx VERSION shared|static
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <pcmalloc.h>

#ifndef EXPECT_OVERRIDE
#define EXPECT_OVERRIDE 1
#endif

static int failures;

static void check(bool ok, const char *what)
{
	if (!ok) {
		std::fprintf(stderr, "consumer_cxx: FAILED: %s\n", what);
		failures++;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: consumer_cxx VERSION shared|static\n");
		return 2;
	}
	std::string version = argv[1];
	check(version == pc_version(), "pc_version() == VERSION");
	check(version == PCMALLOC_VERSION, "PCMALLOC_VERSION == VERSION");

	if (EXPECT_OVERRIDE) {
		int *one = new int(42);
		check(pc_malloc_usable_size(one) != 0, "new comes from pcmalloc");
		delete one;
		auto arr = std::make_unique<double[]>(1000);
		check(pc_malloc_usable_size(arr.get()) >= 8000, "new[]");
		std::vector<std::string> v;
		for (int i = 0; i < 1000; i++)
			v.push_back(std::string(100, 'x') + std::to_string(i));
		check(pc_malloc_usable_size(v.data()) != 0,
		    "std::vector storage comes from pcmalloc");
		check(pc_malloc_usable_size(&v[999][0]) != 0,
		    "std::string storage comes from pcmalloc");
	}
	if (failures != 0)
		return 1;
	std::printf("ok pcmalloc %s %s override=%d (C++)\n", pc_version(),
	    argv[2], EXPECT_OVERRIDE);
	return 0;
}
