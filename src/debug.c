#include <errno.h>
#include <string.h>

#include "debug.h"
#include "arena.h"
#include "report.h"
#include "conf.h"
#include "pagemap.h"
#include "slab.h"

/* p's object index; callers pass object starts only. */
static unsigned
obj_index(const span_t *s, const void *p)
{
	uint64_t idx = slab_obj_index(s, p);
	PC_CHECK(idx < sc_table[s->sc].nobjs, "debug: not a block start");
	return (unsigned)idx;
}

static PC_COLD void
debug_report(const char *what, const void *p, const span_t *s, size_t off)
{
	char tail[96] = " (size class ";
	size_t n = strlen(tail);
	n += pc_fmt_u64(tail + n, sc_size(s->sc));
	memcpy(tail + n, ", byte ", 7);
	n += 7;
	n += pc_fmt_u64(tail + n, off);
	tail[n++] = ')';
	tail[n] = '\0';
	pc_report_ptr(what, p, tail);
	PC_MISUSE_END("heap corruption detected (debug mode)");
}

unsigned
debug_class(size_t size)
{
	/* At least one redzone byte whenever the classes allow it. */
	return sc_index(size < SC_SMALL_MAX ? size + 1 : size);
}

void *
debug_alloc_small(size_t size, unsigned sc)
{
	void *p;
	if (arena_refill(arena_choose(), sc, &p, 1) != 1) {
		errno = ENOMEM;
		return NULL;
	}
	span_t *s = pagemap_span(pagemap_lookup(p));
	size_t usable = sc_size(sc);
	const unsigned char *c = p;
	for (size_t i = 0; i < usable; i++) {
		if (c[i] != DEBUG_JUNK) {
			debug_report("write to a freed block at", p, s, i);
			break;
		}
	}
	s->dbg_sizes[obj_index(s, p)] = (uint32_t)size;
	memset((char *)p + size, DEBUG_REDZONE, usable - size);
	return p;
}

void
debug_free_small(void *p, unsigned sc)
{
	span_t *s = arena_slab_of(p, sc);
	if (s == NULL) {
		arena_report_misuse(MISUSE_STALE, "free", p, NULL, sc, 0,
		    NULL);
		return;
	}
	size_t usable = sc_size(sc);
	uint64_t idx = slab_obj_index(s, p);
	/* Only an allocated block of this slab is read or junk-filled:
	 * interior, past-the-end and freed pointers are the bin's to report
	 * (a past-the-end one would have us fill the next page). */
	if (idx < sc_table[sc].nobjs && !slab_obj_is_free(s, idx)) {
		size_t size = s->dbg_sizes[idx];
		const unsigned char *c = p;
		if (size > usable) {
			debug_report("size record destroyed for block", p, s, 0);
		} else {
			for (size_t i = size; i < usable; i++) {
				if (c[i] != DEBUG_REDZONE) {
					debug_report("write past the end of "
					    "block", p, s, i);
					break;
				}
			}
		}
		memset(p, DEBUG_JUNK, usable);
	}
	arena_flush(arena_of(s), sc, &p, 1);
}

size_t
debug_usable_small(const void *p, const span_t *s)
{
	if (s->dbg_sizes == NULL)
		return sc_size(s->sc);
	return s->dbg_sizes[obj_index(s, p)];
}
