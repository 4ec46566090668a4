/*
 * Fault injection for tests, shared by every OS layer: the n-th
 * reservation from now and every one after it fail, until reset with 0.
 */
#include "os.h"

static unsigned long os_fail_countdown;

void
os_fail_reserve_after(unsigned long n)
{
	__atomic_store_n(&os_fail_countdown, n, __ATOMIC_RELAXED);
}

bool
os_injected_failure(void)
{
	/* Counts down to 1, then stays there: every request fails from the
	 * n-th on, so retries inside the allocator fail too. */
	unsigned long n = __atomic_load_n(&os_fail_countdown, __ATOMIC_RELAXED);
	while (n > 1) {
		if (__atomic_compare_exchange_n(&os_fail_countdown, &n, n - 1,
		    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return false;
	}
	return n == 1;
}
