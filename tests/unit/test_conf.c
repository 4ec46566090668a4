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

int
main(void)
{
	pc_free(pc_malloc(1));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
