/*
 * The Windows OS layer (src/os_windows.c) against the contract in os.h and
 * os_tls.h.  Catches: misaligned or non-zero reservations, a reservation
 * that is not one region (os_release would leak it), os_release_tail or
 * os_purge leaving pages committed or unreadable, a guarded reservation
 * whose guard pages are accessible, purged pages not reading as zero, the
 * TLS slot read from the wrong TEB offset (it must agree with
 * TlsGetValue), GetLastError clobbered, broken locks, and a non-monotonic
 * clock.
 */
#include "win_common.h"
#include "os.h"
#include "os_tls.h"

static DWORD
state_of(void *p)
{
	MEMORY_BASIC_INFORMATION mi;
	assert_int_not_equal(VirtualQuery(p, &mi, sizeof(mi)), 0);
	return mi.State;
}

static void
test_reserve_aligned(void **state)
{
	(void)state;
	static const size_t sizes[] = { 4 * KiB, 12 * KiB, 64 * KiB, 2 * MiB,
	    6 * MiB };
	static const size_t aligns[] = { 4 * KiB, 64 * KiB, 2 * MiB, 8 * MiB };
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		for (size_t a = 0; a < ARRAY_LEN(aligns); a++) {
			SetLastError(4242);
			unsigned char *p = os_reserve(sizes[s], aligns[a]);
			assert_int_equal(GetLastError(), 4242);
			assert_non_null(p);
			assert_aligned(p, aligns[a]);
			for (size_t i = 0; i < sizes[s]; i += 4096)
				assert_int_equal(p[i], 0);
			p[sizes[s] - 1] = 1;
			/* One whole reservation, so release frees it all. */
			MEMORY_BASIC_INFORMATION mi;
			VirtualQuery(p, &mi, sizeof(mi));
			assert_ptr_equal(mi.AllocationBase, p);
			os_release(p, sizes[s]);
			assert_int_equal(state_of(p), MEM_FREE);
		}
	}
	assert_null(os_reserve(0, 4096));
	assert_null(os_reserve((size_t)1 << 62, 4096));
}

static void
test_reserve_near(void **state)
{
	(void)state;
	assert_false(os_can_merge_reservations());
	unsigned char *a = os_reserve(2 * MiB, 2 * MiB);
	assert_non_null(a);
	/* Right after a: usually free; if so, we get exactly it. */
	unsigned char *b = os_reserve_near(2 * MiB, 2 * MiB, a + 2 * MiB);
	assert_non_null(b);
	assert_aligned(b, 2 * MiB);
	if (b == a + 2 * MiB) {
		MEMORY_BASIC_INFORMATION mi;
		VirtualQuery(b, &mi, sizeof(mi));
		assert_ptr_equal(mi.AllocationBase, b);	/* its own */
	}
	/* Occupied hint: somewhere else, still aligned and usable. */
	unsigned char *c = os_reserve_near(64 * KiB, 64 * KiB, a);
	assert_non_null(c);
	assert_ptr_not_equal(c, a);
	assert_aligned(c, 64 * KiB);
	c[64 * KiB - 1] = 1;
	/* A hint off the 64 KiB granularity is never rounded onto. */
	unsigned char *d = os_reserve_near(4 * KiB, 4 * KiB, b + 6 * MiB +
	    4 * KiB);
	assert_non_null(d);
	assert_true(d == b + 6 * MiB + 4 * KiB || ((uintptr_t)d & 0xffff) == 0);
	os_release(d, 4 * KiB);
	os_release(c, 64 * KiB);
	os_release(b, 2 * MiB);
	os_release(a, 2 * MiB);
	assert_int_equal(state_of(a), MEM_FREE);
}

static void
test_fault_injection(void **state)
{
	(void)state;
	/* Sticky from the n-th request on, until reset. */
	os_fail_reserve_after(2);
	void *a = os_reserve(64 * KiB, 4096);
	assert_non_null(a);
	assert_null(os_reserve(64 * KiB, 4096));
	assert_null(os_reserve(64 * KiB, 4096));
	os_fail_reserve_after(0);
	void *b = os_reserve(64 * KiB, 4096);
	assert_non_null(b);
	os_release(a, 64 * KiB);
	os_release(b, 64 * KiB);
}

static void
test_release_tail(void **state)
{
	(void)state;
	unsigned char *p = os_reserve(1 * MiB, 4096);
	assert_non_null(p);
	memset(p, 0x77, 1 * MiB);
	os_release_tail(p, 1 * MiB, 256 * KiB);
	assert_int_equal(state_of(p), MEM_COMMIT);
	assert_int_equal(p[256 * KiB - 1], 0x77);
	assert_int_equal(state_of(p + 256 * KiB), MEM_RESERVE);
	assert_int_equal(state_of(p + 1 * MiB - 1), MEM_RESERVE);
	/* Releasing with the new size frees the whole reservation. */
	os_release(p, 256 * KiB);
	assert_int_equal(state_of(p), MEM_FREE);
	assert_int_equal(state_of(p + 512 * KiB), MEM_FREE);
	assert_null(os_remap(p, 1, 2, NULL));
}

/* Metadata mappings sit between two pages that are not committed. */
static void
test_reserve_guarded(void **state)
{
	(void)state;
	unsigned char *p = os_reserve_guarded(2 * MiB);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p & 4095, 0);
	assert_int_equal(state_of(p), MEM_COMMIT);
	assert_int_equal(state_of(p + 2 * MiB - 1), MEM_COMMIT);
	assert_int_equal(p[0] | p[2 * MiB - 1], 0);
	memset(p, 0x33, 2 * MiB);
	assert_int_equal(state_of(p - 1), MEM_RESERVE);
	assert_int_equal(state_of(p + 2 * MiB), MEM_RESERVE);
	os_release_guarded(p, 2 * MiB);
	assert_int_equal(state_of(p - 1), MEM_FREE);
	assert_int_equal(state_of(p), MEM_FREE);
}

static void
test_purge_reads_zero(void **state)
{
	(void)state;
	unsigned char *p = os_reserve(2 * MiB, 2 * MiB);
	assert_non_null(p);
	memset(p, 0xab, 2 * MiB);
	SetLastError(99);
	os_purge(p + 64 * KiB, 1 * MiB);
	assert_int_equal(GetLastError(), 99);
	assert_int_equal(p[64 * KiB - 1], 0xab);
	for (size_t i = 64 * KiB; i < 64 * KiB + 1 * MiB; i += 512)
		assert_int_equal(p[i], 0);
	assert_int_equal(p[64 * KiB + 1 * MiB], 0xab);
	/* Still usable. */
	memset(p, 1, 2 * MiB);
	os_purge(p, 2 * MiB);
	assert_int_equal(p[2 * MiB - 1], 0);
	os_release(p, 2 * MiB);
}

static void
test_system(void **state)
{
	(void)state;
	assert_int_equal(os_page_size(), 4096);
	unsigned n = os_ncpus();
	assert_true(n >= 1 && n <= 4096);
	(void)os_cpu();
	uint64_t t0 = os_now_ns();
	Sleep(20);
	uint64_t t1 = os_now_ns();
	assert_true(t1 > t0);
	assert_true(t1 - t0 >= 15000000u && t1 - t0 < 5000000000u);
	os_yield();
	os_write_err("", 0);
}

static void
test_getenv(void **state)
{
	(void)state;
	SetEnvironmentVariableA("PC_OS_TEST", "a,b:c");
	SetLastError(7);
	const char *v = os_getenv("PC_OS_TEST");
	assert_int_equal(GetLastError(), 7);
	assert_non_null(v);
	assert_string_equal(v, "a,b:c");
	SetEnvironmentVariableA("PC_OS_TEST", NULL);
	assert_null(os_getenv("PC_OS_TEST"));
	assert_int_equal(GetLastError(), 7);
	/* The ctest environment reached us. */
	assert_non_null(os_getenv("PCMALLOC_CONF"));
}

/* The slot read from the TEB must be what the OS keeps for the index. */
static DWORD WINAPI
tls_other_thread(LPVOID arg)
{
	(void)arg;
	/* A fresh thread reads NULL until it sets the slot... */
	if (os_tls_slot_get() != NULL)
		return 1;
	/* ...which malloc does. */
	free(opaque_ptr(malloc(opaque(10))));
	return os_tls_slot_get() != NULL ? 0 : 2;
}

static void
test_tls_slot(void **state)
{
	(void)state;
	free(opaque_ptr(malloc(opaque(10))));	/* sets this thread up */
	void *mine = os_tls_slot_get();
	assert_non_null(mine);
	/* Some slot holds the value (the thread-exit hook keeps a copy in
	 * another one). */
	int found = 0;
	for (DWORD i = 0; i < 1088; i++)
		found += TlsGetValue(i) == mine;
	assert_true(found >= 1);
	SetLastError(31);
	for (int i = 0; i < 1000; i++)
		assert_ptr_equal(os_tls_slot_get(), mine);
	assert_int_equal(GetLastError(), 31);
	HANDLE h = CreateThread(NULL, 0, tls_other_thread, NULL, 0, NULL);
	assert_non_null(h);
	WaitForSingleObject(h, INFINITE);
	DWORD rc = 9;
	GetExitCodeThread(h, &rc);
	CloseHandle(h);
	assert_int_equal(rc, 0);
	assert_ptr_equal(os_tls_slot_get(), mine);
}

static os_lock_t lock = OS_LOCK_INIT;
static volatile long counter;

static DWORD WINAPI
lock_worker(LPVOID arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		os_lock(&lock);
		counter = counter + 1;
		os_unlock(&lock);
	}
	return 0;
}

static void
test_lock(void **state)
{
	(void)state;
	HANDLE h[4];
	for (int i = 0; i < 4; i++)
		h[i] = CreateThread(NULL, 0, lock_worker, NULL, 0, NULL);
	WaitForMultipleObjects(4, h, TRUE, INFINITE);
	for (int i = 0; i < 4; i++)
		CloseHandle(h[i]);
	assert_int_equal(counter, 400000);
	os_lock_init(&lock);
	os_lock(&lock);
	os_unlock(&lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_aligned),
		cmocka_unit_test(test_reserve_near),
		cmocka_unit_test(test_fault_injection),
		cmocka_unit_test(test_release_tail),
		cmocka_unit_test(test_reserve_guarded),
		cmocka_unit_test(test_purge_reads_zero),
		cmocka_unit_test(test_system),
		cmocka_unit_test(test_getenv),
		cmocka_unit_test(test_tls_slot),
		cmocka_unit_test(test_lock),
	};
	return cmocka_run_group_tests_name("os_windows", tests, NULL, NULL);
}
