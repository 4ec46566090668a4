/* Thread caches: LIFO reuse on a hit, bounded size, and a full flush to the
 * arenas when a thread exits (a leak there grows every thread-pool
 * program). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <cmocka.h>

#include "arena.h"
#include "tcache.h"
#include "pcmalloc.h"

static void
test_lifo(void **state)
{
	(void)state;
	void *p = pc_malloc(40);
	pc_free(p);
	void *q = pc_malloc(40);
	assert_ptr_equal(p, q);
	pc_free(q);
}

static void
test_bounded(void **state)
{
	(void)state;
	enum { N = 5000 };
	static void *v[N];
	for (int i = 0; i < N; i++)
		v[i] = pc_malloc(64);
	for (int i = 0; i < N; i++)
		pc_free(v[i]);
	unsigned sc = sc_index(64);
	tcache_t *tc = OS_TLS_GET(tcache_tls);
	assert_true(TBIN(tc, sc)->n <= TBIN(tc, sc)->cap);
	assert_true(TBIN(tc, sc)->cap > 0);
}

static size_t
active_pages(void)
{
	size_t n = 0;
	for (unsigned i = 0; i < narenas; i++)
		n += __atomic_load_n(&arenas[i].active, __ATOMIC_RELAXED);
	return n;
}

static void *
churn(void *arg)
{
	(void)arg;
	enum { N = 20000 };
	void **v = pc_malloc(N * sizeof(void *));
	for (int i = 0; i < N; i++)
		v[i] = pc_malloc(16 + (i % 8) * 48);
	for (int i = 0; i < N; i++)
		pc_free(v[i]);
	pc_free(v);
	return NULL;
}

static void
test_thread_exit_flush(void **state)
{
	(void)state;
	size_t before = active_pages();
	for (int round = 0; round < 20; round++) {
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, churn, NULL), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
	/* Leftovers: at most one empty slab per touched bin per arena and
	 * the pages of objects still cached by this thread. */
	size_t slack = 0;
	for (unsigned sc = 0; sc < SC_NSMALL; sc++)
		slack += sc_table[sc].npages;
	assert_true(active_pages() <= before + narenas * slack + 64);
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifo),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_thread_exit_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
