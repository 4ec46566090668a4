#include <string.h>

#include "conf.h"
#include "report.h"
#include "os.h"

#define CONF_DEFINE(name, def, lo, hi, words, doc) size_t opt_##name = def;
CONF_OPTIONS(CONF_DEFINE)
#undef CONF_DEFINE

char opt_prof_prefix[CONF_PREFIX_MAX] = "pcmalloc";

typedef struct conf_opt {
	const char *name;
	size_t *value;
	size_t lo, hi;
	const char *words;	/* CONF_NUM, CONF_SIZE, CONF_BOOL or a list */
} conf_opt_t;

static const conf_opt_t conf_table[] = {
#define CONF_ENTRY(name, def, lo, hi, words, doc) \
	{ #name, &opt_##name, lo, hi, words },
	CONF_OPTIONS(CONF_ENTRY)
#undef CONF_ENTRY
};

static void
conf_error(const char *what, const char *s, size_t n)
{
	char buf[160];
	size_t len = strlen(what);
	memcpy(buf, what, len);
	buf[len++] = '"';
	n = PC_MIN(n, sizeof(buf) - len - 20);
	memcpy(buf + len, s, n);
	len += n;
	memcpy(buf + len, "\", keeping default", 18);
	len += 18;
	buf[len] = '\0';
	pc_report(buf);
}

static bool
conf_word_is(const char *w, size_t wlen, const char *v, size_t n)
{
	return wlen == n && memcmp(w, v, n) == 0;
}

/* Index of v in a "w0|w1|..." list, or -1. */
static int
conf_word_index(const char *list, const char *v, size_t n)
{
	for (int i = 0; *list != '\0'; i++) {
		const char *bar = strchr(list, '|');
		size_t wlen = bar ? (size_t)(bar - list) : strlen(list);
		if (conf_word_is(list, wlen, v, n))
			return i;
		if (bar == NULL)
			break;
		list = bar + 1;
	}
	return -1;
}

/* Parses the value of option o: decimal digits (with a k/m/g suffix for
 * CONF_SIZE), or one of o's own words. */
static bool
conf_value(const conf_opt_t *o, const char *v, size_t n, size_t *out)
{
	bool boolean = strcmp(o->words, CONF_BOOL) == 0 ||
	    strncmp(o->words, "off|on|", 7) == 0;
	if (boolean) {
		int t = conf_word_index("false|true|no|yes|off|on", v, n);
		if (t >= 0) {
			*out = (size_t)(t & 1);
			return true;
		}
	}
	if (strcmp(o->words, CONF_BOOL) != 0 &&
	    strcmp(o->words, CONF_SIZE) != 0 && o->words[0] != '\0') {
		int w = conf_word_index(o->words, v, n);
		if (w >= 0) {
			*out = (size_t)w;
			return true;
		}
	}
	if (n == 0)
		return false;
	size_t x = 0, i = 0;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > (SIZE_MAX - 9) / 10)
			return false;
		x = x * 10 + (size_t)(v[i] - '0');
	}
	if (i == 0)
		return false;
	if (i < n) {
		if (strcmp(o->words, CONF_SIZE) != 0)
			return false;
		unsigned shift;
		switch (v[i]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return false;
		}
		if (i + 1 != n || x > (SIZE_MAX >> shift))
			return false;
		x <<= shift;
	}
	*out = x;
	return true;
}

int
conf_parse(const char *s)
{
	int errors = 0;
	while (s != NULL && *s != '\0') {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *colon = memchr(s, ':', len);
		if (len == 0) {
			/* empty item, e.g. a trailing comma */
		} else if (colon == NULL) {
			conf_error("PCMALLOC_CONF: expected key:value in ",
			    s, len);
			errors++;
		} else {
			size_t klen = (size_t)(colon - s);
			const char *v = colon + 1;
			size_t vlen = len - klen - 1;
			const conf_opt_t *o = NULL;
			for (size_t i = 0; i < PC_ARRAY_LEN(conf_table); i++) {
				if (strlen(conf_table[i].name) == klen &&
				    memcmp(conf_table[i].name, s, klen) == 0)
					o = &conf_table[i];
			}
			size_t x;
			if (o == NULL && klen == 11 &&
			    memcmp(s, "prof_prefix", 11) == 0) {
				if (vlen == 0 || vlen >= CONF_PREFIX_MAX) {
					conf_error("PCMALLOC_CONF: bad value "
					    "in ", s, len);
					errors++;
				} else {
					memcpy(opt_prof_prefix, v, vlen);
					opt_prof_prefix[vlen] = '\0';
				}
			} else if (o == NULL) {
				conf_error("PCMALLOC_CONF: unknown option ", s,
				    len);
				errors++;
			} else if (!conf_value(o, v, vlen, &x) || x < o->lo ||
			    x > o->hi) {
				conf_error("PCMALLOC_CONF: bad value in ", s,
				    len);
				errors++;
			} else {
				*o->value = x;
			}
		}
		s = end ? end + 1 : NULL;
	}
	return errors;
}

/* Built in with -DPCMALLOC_DEFAULT_CONF="key:value,..." (CMake option of
 * the same name); the environment is read after it and wins. */
#ifndef PC_DEFAULT_CONF
#define PC_DEFAULT_CONF ""
#endif
const char conf_builtin[] = PC_DEFAULT_CONF;

void
conf_init(void)
{
	conf_parse(conf_builtin);
	conf_parse(os_getenv("PCMALLOC_CONF"));
}
