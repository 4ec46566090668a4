#include <string.h>

#include "conf.h"
#include "check.h"
#include "os.h"

#define CONF_DEFINE(name, def, lo, hi, doc) size_t opt_##name = def;
CONF_OPTIONS(CONF_DEFINE)
#undef CONF_DEFINE

typedef struct conf_opt {
	const char *name;
	size_t *value;
	size_t lo, hi;
} conf_opt_t;

static const conf_opt_t conf_table[] = {
#define CONF_ENTRY(name, def, lo, hi, doc) { #name, &opt_##name, lo, hi },
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

/* Parses a decimal with an optional k/m/g suffix, or a boolean word. */
static bool
conf_value(const char *v, size_t n, size_t *out)
{
	static const struct { const char *w; size_t v; } words[] = {
		{ "true", 1 }, { "false", 0 }, { "on", 1 }, { "off", 0 },
		{ "yes", 1 }, { "no", 0 },
		{ "default", 0 }, { "always", 1 }, { "never", 2 },
		{ "auto", 2 },
	};
	for (size_t i = 0; i < PC_ARRAY_LEN(words); i++) {
		if (strlen(words[i].w) == n && memcmp(words[i].w, v, n) == 0) {
			*out = words[i].v;
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
			if (o == NULL) {
				conf_error("PCMALLOC_CONF: unknown option ", s,
				    len);
				errors++;
			} else if (!conf_value(v, vlen, &x) || x < o->lo ||
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
