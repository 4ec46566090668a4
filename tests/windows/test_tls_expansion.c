/*
 * The fast-path TLS slot beyond the TEB's 64 direct slots.  This exe's TLS
 * callback runs before the CRT and before any malloc, and takes every free
 * slot below 64, so pcmalloc's index lands in the expansion array (read
 * through the TEB's TlsExpansionSlots pointer, which is NULL in a thread
 * that never set a slot there).  Catches: a wrong expansion offset (the
 * value read would disagree with TlsGetValue, or threads would share or
 * lose their caches), and a NULL expansion array dereferenced.
 */
#include "win_common.h"
#include "os_tls.h"

static DWORD low_slots_taken;
static DWORD first_free_after;

static void NTAPI
on_tls(PVOID module, DWORD reason, PVOID reserved)
{
	(void)module;
	(void)reserved;
	if (reason != DLL_PROCESS_ATTACH)
		return;
	DWORD i;
	while ((i = TlsAlloc()) != TLS_OUT_OF_INDEXES && i < 64) {
		TlsSetValue(i, (void *)(uintptr_t)0xdead);
		low_slots_taken++;
	}
	first_free_after = i;
	if (i != TLS_OUT_OF_INDEXES)
		TlsFree(i);
}

__attribute__((section(".CRT$XLB"), used))
const PIMAGE_TLS_CALLBACK pc_test_tls_callback = on_tls;

static DWORD WINAPI
worker(LPVOID arg)
{
	uint32_t seed = (uint32_t)(uintptr_t)arg;
	if (os_tls_slot_get() != NULL)
		return 1;	/* fresh thread: no expansion array yet */
	void *v[500];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 500; i++) {
			size_t n = rnd(&seed) % 2000 + 1;
			v[i] = malloc(n);
			if (v[i] == NULL)
				return 2;
			memset(v[i], i, n < 8 ? n : 8);
		}
		for (int i = 0; i < 500; i++)
			free(v[i]);
	}
	void *tc = os_tls_slot_get();
	if (tc == NULL)
		return 3;
	/* Our index is one of the expansion slots. */
	for (DWORD i = 64; i < 1088; i++)
		if (TlsGetValue(i) == tc)
			return 0;
	return 4;
}

static void
test_expansion_slot(void **state)
{
	(void)state;
	print_message("took %lu slots below 64; next free was %lu\n",
	    (unsigned long)low_slots_taken, (unsigned long)first_free_after);
	assert_true(first_free_after >= 64);
	free(opaque_ptr(malloc(opaque(100))));
	void *mine = os_tls_slot_get();
	assert_non_null(mine);
	for (DWORD i = 0; i < 64; i++)
		assert_ptr_not_equal(TlsGetValue(i), mine);
	HANDLE h[6];
	for (int i = 0; i < 6; i++)
		h[i] = CreateThread(NULL, 0, worker, (LPVOID)(uintptr_t)(i + 1),
		    0, NULL);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(WaitForSingleObject(h[i], 60000),
		    WAIT_OBJECT_0);
		DWORD rc = 9;
		GetExitCodeThread(h[i], &rc);
		CloseHandle(h[i]);
		if (rc != 0)
			fail_msg("worker %d failed with %lu", i,
			    (unsigned long)rc);
	}
	assert_ptr_equal(os_tls_slot_get(), mine);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expansion_slot),
	};
	return cmocka_run_group_tests_name("tls_expansion", tests, NULL, NULL);
}
