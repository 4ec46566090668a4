// A C++ program that links pcmalloc but never names it: its allocations are
// new/delete and the standard containers, which reach malloc from inside
// libstdc++.  Linking must still make pcmalloc its allocator (the linker may
// otherwise drop an unreferenced shared library, --as-needed, or skip the
// archive member holding malloc).  Prints "malloc from <file>".
#include <cstdio>
#include <dlfcn.h>
#include <map>
#include <string>
#include <vector>

int main()
{
	std::map<int, std::vector<std::string>> m;
	for (int i = 0; i < 1000; i++)
		m[i % 37].push_back(std::string(64, 'a' + i % 26));
	Dl_info info;
	void *f = dlsym(RTLD_DEFAULT, "malloc");
	if (f == nullptr || dladdr(f, &info) == 0 || info.dli_fname == nullptr) {
		std::fprintf(stderr, "consumer_plain: cannot locate malloc\n");
		return 1;
	}
	std::printf("malloc from %s\n", info.dli_fname);
	return m.size() == 37 ? 0 : 1;
}
