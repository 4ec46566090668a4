// C++ operator new/delete semantics, run with and without pcmalloc
// preloaded (test_cxx_operators.sh).  pcmalloc exports every operator
// new/delete overload (src/override.c); this checks what C++ requires of
// them, whoever defines them:
//   - a request that cannot be met throws std::bad_alloc, after calling the
//     new-handler (which may give up by removing itself);
//   - the nothrow forms return nullptr instead;
//   - aligned new honours the alignment, small and large;
//   - with LIBNAME given, operator new is the one from a library whose path
//     contains LIBNAME (the export took effect).
// Mode "wrongsize" frees a 96-byte block with sized delete and size 16,
// which pcmalloc reports like free_sized with a wrong size, and aborts.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

static int failures;

#define CHECK(c)							\
	do {								\
		if (!(c)) {						\
			std::printf("FAIL line %d: %s\n", __LINE__, #c);\
			failures++;					\
		}							\
	} while (0)

static int handler_calls;

static void give_up_handler()
{
	handler_calls++;
	std::set_new_handler(nullptr);	// next failure throws
}

static const std::size_t kHuge = (std::size_t)1 << 62;

static void test_bad_alloc()
{
	bool thrown = false;
	try {
		void *p = ::operator new(kHuge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);
	thrown = false;
	try {
		char *p = new char[kHuge];
		delete[] p;
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);
	thrown = false;
	try {
		void *p = ::operator new(kHuge, std::align_val_t(64));
		::operator delete(p, std::align_val_t(64));
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);
	CHECK(::operator new(kHuge, std::nothrow) == nullptr);
	CHECK(::operator new[](kHuge, std::nothrow) == nullptr);
	CHECK(::operator new(kHuge, std::align_val_t(4096), std::nothrow) ==
	      nullptr);
	std::puts("ok bad_alloc");
}

static void test_new_handler()
{
	handler_calls = 0;
	std::set_new_handler(give_up_handler);
	bool thrown = false;
	try {
		void *p = ::operator new(kHuge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	CHECK(thrown);
	CHECK(handler_calls == 1);
	std::set_new_handler(nullptr);
	std::puts("ok new_handler");
}

struct alignas(256) Wide {
	unsigned char b[300];
};

static void test_aligned()
{
	static const std::size_t aligns[] = { 32, 64, 256, 4096, 65536,
					      1 << 21 };
	for (std::size_t a : aligns) {
		for (std::size_t n : { (std::size_t)1, a / 2 + 1,
				       (std::size_t)3 * a, (std::size_t)100000 }) {
			void *p = ::operator new(n, std::align_val_t(a));
			CHECK(((std::uintptr_t)p & (a - 1)) == 0);
			std::memset(p, 0x5a, n);
			if (n & 1)
				::operator delete(p, std::align_val_t(a));
			else
				::operator delete(p, n, std::align_val_t(a));
			void *q = ::operator new[](n, std::align_val_t(a),
						   std::nothrow);
			CHECK(q != nullptr &&
			      ((std::uintptr_t)q & (a - 1)) == 0);
			::operator delete[](q, std::align_val_t(a),
					    std::nothrow);
		}
	}
	Wide *w = new Wide[7];
	CHECK(((std::uintptr_t)w & 255) == 0);
	delete[] w;
	std::puts("ok aligned");
}

static void test_sized()
{
	// the right size, and any size from the requested one to the usable
	// one, is silent
	for (std::size_t n = 1; n < 70000; n = n * 3 + 1) {
		void *p = ::operator new(n);
		std::memset(p, 1, n);
		::operator delete(p, n);
		char *q = new char[n];
		::operator delete[](q, n);
	}
	std::puts("ok sized");
}

int main(int argc, char **argv)
{
	if (argc > 1 && std::strcmp(argv[1], "wrongsize") == 0) {
		void *p = ::operator new(96);
		::operator delete(p, 16);
		std::puts("not reported");
		return 0;
	}
	if (argc > 1) {
		// which object defines the operator new this program calls
		void *(*f)(std::size_t) = &::operator new;
		Dl_info di;
		CHECK(dladdr((void *)f, &di) && di.dli_fname &&
		      std::strstr(di.dli_fname, argv[1]));
		if (di.dli_fname)
			std::printf("operator new from %s\n",
				    std::strstr(di.dli_fname, argv[1]) ?
				    argv[1] : "elsewhere");
	}
	test_bad_alloc();
	test_new_handler();
	test_aligned();
	test_sized();
	return failures ? 1 : 0;
}
