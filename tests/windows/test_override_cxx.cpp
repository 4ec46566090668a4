/*
 * The link-time override from C++: mingw's libstdc++ (linked statically)
 * implements operator new/delete with malloc/free, and the over-aligned
 * forms with _aligned_malloc/_aligned_free (through their dllimport
 * pointers); all of them must land in pcmalloc.  Catches: operator new
 * taking memory from msvcrt (then pcmalloc would not know the block),
 * aligned new returning a misaligned block, exceptions (allocated with
 * malloc by the C++ runtime) breaking, and containers corrupting memory.
 */
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "win_common.h"
#include "pe_imports.h"

struct alignas(256) Wide {
	unsigned char b[300];
};

static void
test_new_delete(void **)
{
	int *i = new int(42);
	assert_true(is_ours(i));
	delete i;
	char *a = new char[opaque(1000)];
	assert_true(is_ours(a));
	delete[] a;
	char *n = new (std::nothrow) char[opaque(50)];
	assert_true(is_ours(n));
	delete[] n;
	/* operator new itself, and a size the C++ runtime must not lose. */
	void *raw = ::operator new(opaque(3 * MiB));
	assert_true(is_ours(raw));
	assert_true(pc_malloc_usable_size(raw) >= 3 * MiB);
	::operator delete(raw);
}

static void
test_aligned_new(void **)
{
	for (int k = 0; k < 100; k++) {
		Wide *w = new Wide[opaque(3)];
		assert_aligned(w, 256);
		assert_true(is_ours(w));
		w[2].b[299] = 1;
		delete[] w;
		Wide *one = new Wide;
		assert_aligned(one, 256);
		delete one;
	}
	void *p = ::operator new(opaque(100), std::align_val_t(4096));
	assert_aligned(p, 4096);
	assert_true(is_ours(p));
	::operator delete(p, std::align_val_t(4096));
}

static void
test_containers(void **)
{
	std::map<std::string, std::vector<int>> m;
	for (int i = 0; i < 3000; i++) {
		std::string k = "key-" + std::to_string(i * 7919 % 3001);
		m[k].push_back(i);
		m[k].resize((size_t)(i % 40));
	}
	size_t total = 0;
	for (auto &kv : m)
		total += kv.second.size() + kv.first.size();
	assert_true(total > 0);
	std::string big(opaque(200000), 'x');
	assert_true(is_ours(&big[0]));
	big += big;
	assert_int_equal(big.size(), 400000);
}

static void
test_exceptions(void **)
{
	int caught = 0;
	for (int i = 0; i < 200; i++) {
		try {
			throw std::runtime_error(std::string(opaque(100), 'e'));
		} catch (const std::exception &e) {
			caught += e.what()[0] == 'e';
		}
	}
	assert_int_equal(caught, 200);
}

static DWORD WINAPI
thread_news(LPVOID)
{
	std::vector<std::string> v;
	for (int i = 0; i < 5000; i++)
		v.push_back(std::string((size_t)(i % 300), 'a'));
	return is_ours(&v[0]) ? 0 : 1;
}

static void
test_threads(void **)
{
	HANDLE h[4];
	for (auto &x : h)
		x = CreateThread(NULL, 0, thread_news, NULL, 0, NULL);
	for (auto &x : h) {
		assert_int_equal(WaitForSingleObject(x, 60000), WAIT_OBJECT_0);
		DWORD rc = 1;
		GetExitCodeThread(x, &rc);
		assert_int_equal(rc, 0);
		CloseHandle(x);
	}
}

static void
test_not_from_msvcrt(void **)
{
	static const char *const names[] = { "malloc", "free",
	    "_aligned_malloc", "_aligned_free" };
	for (const char *n : names) {
		const char *dll = pe_import_dll(n);
		print_message("%-16s %s\n", n, dll ? dll : "(in exe)");
		assert_true(dll == NULL || _stricmp(dll, "msvcrt.dll") != 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_delete),
		cmocka_unit_test(test_aligned_new),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_not_from_msvcrt),
	};
	return cmocka_run_group_tests_name("override_cxx", tests, NULL, NULL);
}
