/* PCMALLOC_CONF parsing: good values are applied, bad ones are reported and
 * leave the default; nothing crashes on malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conf.h"
#include "pcmalloc.h"

static void
test_good(void **state)
{
	(void)state;
	size_t saved = opt_tcache_max;
	assert_int_equal(conf_parse("tcache_max:1k,tcache:off"), 0);
	assert_int_equal(opt_tcache_max, 1024);
	assert_int_equal(opt_tcache, 0);
	assert_int_equal(conf_parse("tcache:true,"), 0);
	assert_int_equal(opt_tcache, 1);
	opt_tcache_max = saved;
}

static void
test_bad(void **state)
{
	(void)state;
	size_t saved = opt_narenas;
	assert_int_equal(conf_parse("bogus:1"), 1);
	assert_int_equal(conf_parse("narenas"), 1);
	assert_int_equal(conf_parse("narenas:abc"), 1);
	assert_int_equal(conf_parse("narenas:99999"), 1);
	assert_int_equal(conf_parse("narenas:99999999999999999999999"), 1);
	assert_int_equal(conf_parse("narenas:1x"), 1);
	assert_int_equal(conf_parse(",,,"), 0);
	assert_int_equal(conf_parse(""), 0);
	assert_int_equal(conf_parse(NULL), 0);
	assert_int_equal(opt_narenas, saved);
}

/* Each key takes its own words only: another key's word is an error, not
 * a number (thp:auto once meant never, background_thread:never auto,
 * decay_ms:yes 1 ms). */
static void
test_words_per_key(void **state)
{
	(void)state;
	size_t bg = opt_background_thread, thp = opt_thp;
	size_t decay = opt_decay_ms, narenas = opt_narenas, tc = opt_tcache;
	assert_int_equal(conf_parse("background_thread:never"), 1);
	assert_int_equal(conf_parse("background_thread:always"), 1);
	assert_int_equal(conf_parse("thp:auto"), 1);
	assert_int_equal(conf_parse("thp:on"), 1);
	assert_int_equal(conf_parse("thp:true"), 1);
	assert_int_equal(conf_parse("decay_ms:yes"), 1);
	assert_int_equal(conf_parse("decay_ms:never"), 1);
	assert_int_equal(conf_parse("decay_ms:1k"), 1);	/* no suffix */
	assert_int_equal(conf_parse("narenas:auto"), 1);
	assert_int_equal(conf_parse("narenas:4k"), 1);
	assert_int_equal(conf_parse("tcache:always"), 1);
	assert_int_equal(conf_parse("tcache:2"), 1);	/* out of range */
	assert_int_equal(conf_parse("stats_print:auto"), 1);
	assert_int_equal(opt_background_thread, bg);
	assert_int_equal(opt_thp, thp);
	assert_int_equal(opt_decay_ms, decay);
	assert_int_equal(opt_narenas, narenas);
	assert_int_equal(opt_tcache, tc);

	assert_int_equal(conf_parse("background_thread:off"), 0);
	assert_int_equal(opt_background_thread, 0);
	assert_int_equal(conf_parse("background_thread:true"), 0);
	assert_int_equal(opt_background_thread, 1);
	assert_int_equal(conf_parse("background_thread:auto"), 0);
	assert_int_equal(opt_background_thread, 2);
	assert_int_equal(conf_parse("background_thread:no"), 0);
	assert_int_equal(opt_background_thread, 0);
	assert_int_equal(conf_parse("background_thread:1"), 0);
	assert_int_equal(opt_background_thread, 1);
	assert_int_equal(conf_parse("thp:never"), 0);
	assert_int_equal(opt_thp, 2);
	assert_int_equal(conf_parse("thp:always"), 0);
	assert_int_equal(opt_thp, 1);
	assert_int_equal(conf_parse("thp:default"), 0);
	assert_int_equal(opt_thp, 0);
	assert_int_equal(conf_parse("decay_ms:250"), 0);
	assert_int_equal(opt_decay_ms, 250);
	assert_int_equal(conf_parse("tcache:no,tcache:yes"), 0);
	assert_int_equal(opt_tcache, 1);
	/* large_clean: off by default, a boolean (docs/options.md). */
	assert_int_equal(opt_large_clean, 0);
	assert_int_equal(conf_parse("large_clean:on"), 0);
	assert_int_equal(opt_large_clean, 1);
	assert_int_equal(conf_parse("large_clean:2"), 1);
	assert_int_equal(opt_large_clean, 1);
	assert_int_equal(conf_parse("large_clean:false"), 0);
	assert_int_equal(opt_large_clean, 0);
	opt_background_thread = bg;
	opt_thp = thp;
	opt_decay_ms = decay;
	opt_narenas = narenas;
	opt_tcache = tc;
}

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_words_per_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
