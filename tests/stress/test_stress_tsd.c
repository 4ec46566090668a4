/*
 * malloc/free from thread-exit destructors.  pthread key destructors
 * (keys created before the process's first thread allocation and after)
 * and C++-style TLS destructors (__cxa_thread_atexit_impl) free their
 * values, malloc new ones, re-arm themselves (so they run in several
 * destructor rounds) and hand blocks to the main thread.  Some threads make
 * their very first allocation inside a destructor.  An atexit handler
 * allocates after main returns.  Catches: use of a thread cache after
 * pcmalloc's own thread cleanup ran (use-after-free of the tcache, crash,
 * or blocks handed out twice), a re-created cache never being flushed,
 * recursion/deadlock in thread teardown, and allocation at process exit.
 */
#include "stress_common.h"

#define TOTAL_THREADS 3000
#define EARLY_KEYS 2
#define LATE_KEYS 2

extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
    void *dso_symbol);
extern void *__dso_handle;

static pthread_key_t early_keys[EARLY_KEYS];	/* created in a constructor */
static pthread_key_t late_keys[LATE_KEYS];	/* created after mallocs */

/* blocks allocated in destructors, freed and checked by main */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static item_t *out;
static size_t out_n, out_cap;
static atomic_long dtor_runs;

static void
out_push(item_t it)
{
	pthread_mutex_lock(&out_mu);
	if (out_n == out_cap) {
		size_t cap = out_cap ? out_cap * 2 : 1024;
		item_t *n = realloc(out, cap * sizeof(*n));
		CHECK(n != NULL, "realloc out");
		out = n;
		out_cap = cap;
	}
	out[out_n++] = it;
	pthread_mutex_unlock(&out_mu);
}

/* a destructor value: a block whose header says how often to re-arm */
typedef struct {
	pthread_key_t key;
	int rounds_left;
	size_t size;
	uint64_t seed;
	/* followed by size pattern bytes */
} val_t;

static val_t *
make_val(pthread_key_t key, int rounds, size_t size)
{
	val_t *v = malloc(sizeof(val_t) + size);
	CHECK(v != NULL, "malloc val");
	v->key = key;
	v->rounds_left = rounds;
	v->size = size;
	v->seed = block_seed(v, size);
	pat_fill(v + 1, size, v->seed);
	return v;
}

static void
churn(unsigned seed, int n)
{
	rng_t r;
	rng_seed(&r, seed);
	void *p[16] = { 0 };
	for (int i = 0; i < n; i++) {
		int j = (int)rng_below(&r, 16);
		free(p[j]);
		size_t sz = rng_size(&r, 0);
		p[j] = malloc(sz);
		CHECK(p[j] != NULL, "malloc in destructor");
		memset(p[j], 0x6b, sz);
	}
	for (int j = 0; j < 16; j++)
		free(p[j]);
}

static void
key_dtor(void *arg)
{
	atomic_fetch_add(&dtor_runs, 1);
	if ((uintptr_t)arg < 4096) {
		/* a thread that never allocated: first allocation happens
		 * here, during thread exit */
		churn((unsigned)(uintptr_t)arg, 50);
		item_t it;
		it.size = 100 + (size_t)(uintptr_t)arg;
		it.p = malloc(it.size);
		CHECK(it.p != NULL, "first malloc in destructor");
		it.seed = block_seed(it.p, it.size);
		pat_fill(it.p, it.size, it.seed);
		out_push(it);
		return;
	}
	val_t *v = arg;
	PAT_VERIFY((void *)(v + 1), v->size, v->seed, "key destructor value");
	pthread_key_t key = v->key;
	int rounds = v->rounds_left;
	size_t size = v->size;
	free(v);
	churn((unsigned)size, 30);
	/* a block that outlives the thread, freed by main */
	item_t it;
	it.size = size * 3 + 1;
	it.p = calloc(1, it.size);
	CHECK(it.p != NULL, "calloc in destructor");
	check_zero(it.p, it.size, "destructor calloc");
	it.seed = block_seed(it.p, it.size);
	pat_fill(it.p, it.size, it.seed);
	out_push(it);
	if (rounds > 0) {
		/* re-arm: glibc runs destructors again (up to 4 rounds) */
		val_t *nv = make_val(key, rounds - 1, size + 1000);
		pthread_setspecific(key, nv);
	}
}

static void
tls_dtor(void *arg)
{
	val_t *v = arg;
	PAT_VERIFY((void *)(v + 1), v->size, v->seed, "tls destructor value");
	free(v);
	churn(77, 40);
	/* hand a fresh value to a pthread key: its destructor runs later,
	 * after this TLS destructor */
	pthread_setspecific(late_keys[0], make_val(late_keys[0], 1, 333));
}

__attribute__((constructor(101))) static void
create_early_keys(void)
{
	for (int i = 0; i < EARLY_KEYS; i++)
		if (pthread_key_create(&early_keys[i], key_dtor) != 0)
			abort();
}

static void *
tsd_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	switch (id % 4) {
	case 0:
		/* nothing allocated by the thread body at all */
		pthread_setspecific(early_keys[0], (void *)(uintptr_t)(id % 4000 + 1));
		pthread_setspecific(late_keys[1], (void *)(uintptr_t)(id % 4000 + 2));
		break;
	case 1:
		/* key values set before the thread's first malloc */
		pthread_setspecific(early_keys[1], make_val(early_keys[1], 3, 10));
		churn(id, 100);
		pthread_setspecific(late_keys[1], make_val(late_keys[1], 2, 5000));
		break;
	case 2:
		churn(id, 100);
		pthread_setspecific(early_keys[0], make_val(early_keys[0], 3, 40000));
		pthread_setspecific(late_keys[0], make_val(late_keys[0], 3, 20));
		__cxa_thread_atexit_impl(tls_dtor, make_val(late_keys[0], 0, 64),
		    &__dso_handle);
		break;
	case 3:
		__cxa_thread_atexit_impl(tls_dtor, make_val(late_keys[0], 0, 5),
		    &__dso_handle);
		for (int i = 0; i < EARLY_KEYS; i++)
			pthread_setspecific(early_keys[i],
			    make_val(early_keys[i], 1, 200 * (size_t)i + 1));
		for (int i = 0; i < LATE_KEYS; i++)
			pthread_setspecific(late_keys[i],
			    make_val(late_keys[i], 1, 300 * (size_t)i + 1));
		break;
	}
	return NULL;
}

static void
drain_out(void)
{
	pthread_mutex_lock(&out_mu);
	for (size_t i = 0; i < out_n; i++) {
		PAT_VERIFY(out[i].p, out[i].size, out[i].seed,
		    "block from a destructor");
		free(out[i].p);
	}
	out_n = 0;
	pthread_mutex_unlock(&out_mu);
}

static void
test_destructors_allocate(void **state)
{
	(void)state;
	stress_begin();
	int width = stress_threads;
	pthread_t *t = calloc((size_t)width, sizeof(*t));
	assert_non_null(t);
	unsigned id = 0;
	while (id < TOTAL_THREADS) {
		for (int i = 0; i < width; i++)
			xpthread_create(&t[i], tsd_thread, (void *)(uintptr_t)(id + (unsigned)i));
		for (int i = 0; i < width; i++)
			xpthread_join(t[i]);
		id += (unsigned)width;
		drain_out();
	}
	assert_true(atomic_load(&dtor_runs) >= TOTAL_THREADS / 2);
	free(out);
	out = NULL;
	out_cap = 0;
	free(t);
	stress_end();
}

/* Allocation at process exit, after main returned. */
static void *exit_block;
static void
at_exit_alloc(void)
{
	churn(5, 200);
	if (exit_block == NULL || ((unsigned char *)exit_block)[99] != 0x42)
		abort();
	free(exit_block);
	void *p = malloc(12345);
	if (p == NULL)
		abort();
	free(p);
}

int
main(int argc, char **argv)
{
	stress_parse_args(argc, argv);
	void *p = malloc(100);
	free(p);
	for (int i = 0; i < LATE_KEYS; i++)
		if (pthread_key_create(&late_keys[i], key_dtor) != 0)
			abort();
	exit_block = malloc(100);
	memset(exit_block, 0x42, 100);
	atexit(at_exit_alloc);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_destructors_allocate),
	};
	return STRESS_RUN("stress_tsd", tests);
}
