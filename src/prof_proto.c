/*
 * pprof's profile.proto (github.com/google/pprof proto/profile.proto),
 * uncompressed, in Go's heap layout: sample types alloc_objects/count,
 * alloc_space/bytes, inuse_objects/count, inuse_space/bytes; period type
 * space/bytes with the mean sampling gap.  Values are unbiased per sample
 * (prof.h).  One location per distinct return address minus one (the call
 * instruction, as Go's profiles do), tied to the mapping of the loaded
 * object holding it, with the object's path and GNU build-id so pprof
 * finds the binary to symbolise.
 *
 * The encoder streams: the Profile's fields may come in any order, so each
 * sub-message is encoded into a small buffer on the stack and written with
 * its length, and each string-table entry is written when first needed.
 * Scratch tables come from metadata mappings, released at the end.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prof.h"
#include "base.h"
#include "conf.h"
#include "os.h"

typedef struct pb {
	int fd;
	int err;
	size_t n;
	uint64_t nstrings;
	uint8_t buf[8192];
} pb_t;

static void
pb_flush(pb_t *w)
{
	size_t off = 0;
	while (off < w->n && w->err == 0) {
		ssize_t k = write(w->fd, w->buf + off, w->n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->err = k < 0 ? errno : EIO;
		else
			off += (size_t)k;
	}
	w->n = 0;
}

static void
pb_raw(pb_t *w, const void *p, size_t n)
{
	const uint8_t *s = p;
	while (n > 0) {
		if (w->n == sizeof(w->buf))
			pb_flush(w);
		size_t k = PC_MIN(n, sizeof(w->buf) - w->n);
		memcpy(w->buf + w->n, s, k);
		w->n += k;
		s += k;
		n -= k;
	}
}

/* A sub-message under construction (always small here). */
typedef struct pbm {
	size_t n;
	uint8_t b[1536];
} pbm_t;

static void
pbm_varint(pbm_t *m, uint64_t v)
{
	while (m->n < sizeof(m->b)) {
		uint8_t c = v & 0x7f;
		v >>= 7;
		m->b[m->n++] = c | (v ? 0x80 : 0);
		if (v == 0)
			break;
	}
}

static void
pbm_key(pbm_t *m, unsigned field, unsigned type)
{
	pbm_varint(m, (uint64_t)field << 3 | type);
}

static void
pbm_int(pbm_t *m, unsigned field, uint64_t v)
{
	pbm_key(m, field, 0);
	pbm_varint(m, v);
}

/* Append the sub-message m as field `field` of the Profile. */
static void
pb_msg(pb_t *w, unsigned field, const pbm_t *m)
{
	pbm_t h = { 0 };
	pbm_key(&h, field, 2);
	pbm_varint(&h, m->n);
	pb_raw(w, h.b, h.n);
	pb_raw(w, m->b, m->n);
}

/* Write string-table entry s; returns its index. */
static uint64_t
pb_string(pb_t *w, const char *s)
{
	pbm_t h = { 0 };
	size_t len = strlen(s);
	pbm_key(&h, 6, 2);
	pbm_varint(&h, len);
	pb_raw(w, h.b, h.n);
	pb_raw(w, s, len);
	return w->nstrings++;
}

/* Returns the string index of type. */
static uint64_t
pb_value_type(pb_t *w, unsigned field, const char *type, const char *unit)
{
	uint64_t t = pb_string(w, type), u = pb_string(w, unit);
	pbm_t m = { 0 };
	pbm_int(&m, 1, t);
	pbm_int(&m, 2, u);
	pb_msg(w, field, &m);
	return t;
}

static void
pb_int(pb_t *w, unsigned field, uint64_t v)
{
	pbm_t m = { 0 };
	pbm_int(&m, field, v);
	pb_raw(w, m.b, m.n);
}

/* ---- Mappings ----------------------------------------------------------- */

#define PB_MAX_MAPPINGS 1024

typedef struct pb_map {
	uintptr_t start, limit, offset;
	char name[256];
	char build_id[72];	/* hex */
} pb_map_t;

typedef struct pb_maps {
	pb_map_t *m;
	size_t n;
} pb_maps_t;

static void
pb_build_id(const struct dl_phdr_info *info, char *out)
{
	out[0] = '\0';
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const uint8_t *p = (const uint8_t *)(info->dlpi_addr +
		    ph->p_vaddr);
		const uint8_t *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + sizeof(*nh);
			const uint8_t *desc = name + PC_ALIGN_UP(nh->n_namesz, 4);
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= 32) {
				static const char hex[] = "0123456789abcdef";
				for (unsigned k = 0; k < nh->n_descsz; k++) {
					out[2 * k] = hex[desc[k] >> 4];
					out[2 * k + 1] = hex[desc[k] & 15];
				}
				out[2 * nh->n_descsz] = '\0';
				return;
			}
			p = desc + PC_ALIGN_UP(nh->n_descsz, 4);
		}
	}
}

static int
pb_map_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	pb_maps_t *ms = arg;
	char id[72];
	pb_build_id(info, id);
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (ms->n == PB_MAX_MAPPINGS)
			return 1;
		pb_map_t *m = &ms->m[ms->n++];
		m->start = info->dlpi_addr + ph->p_vaddr;
		m->limit = m->start + ph->p_memsz;
		m->offset = ph->p_offset;
		const char *name = info->dlpi_name;
		m->name[0] = '\0';
		if (name == NULL || name[0] == '\0') {
			/* The main program. */
			ssize_t k = readlink("/proc/self/exe", m->name,
			    sizeof(m->name) - 1);
			m->name[k > 0 ? k : 0] = '\0';
		} else {
			size_t k = PC_MIN(strlen(name), sizeof(m->name) - 1);
			memcpy(m->name, name, k);
			m->name[k] = '\0';
		}
		memcpy(m->build_id, id, sizeof(id));
	}
	return 0;
}

static uint64_t
pb_map_of(const pb_maps_t *ms, uintptr_t a)
{
	for (size_t i = 0; i < ms->n; i++)
		if (a >= ms->m[i].start && a < ms->m[i].limit)
			return i + 1;
	return 0;
}

/* ---- The profile -------------------------------------------------------- */

static int64_t
pb_round(double x)
{
	return x <= 0 ? 0 : (int64_t)(x + 0.5);
}

int
prof_write_proto(int fd, const prof_bucket_t *s, size_t n)
{
	/* Location ids: an open-addressing set of addresses, id = slot + 1. */
	size_t nframes = 0;
	for (size_t i = 0; i < n; i++)
		nframes += s[i].depth;
	size_t cap = 64;
	while (cap < 2 * nframes)
		cap <<= 1;
	size_t set_bytes = PC_ALIGN_UP(cap * sizeof(uintptr_t), PC_PAGE);
	size_t map_bytes = PC_ALIGN_UP(PB_MAX_MAPPINGS * sizeof(pb_map_t),
	    PC_PAGE);
	uintptr_t *set = base_map(set_bytes);
	pb_maps_t ms = { base_map(map_bytes), 0 };
	pb_t *w = base_map(PC_ALIGN_UP(sizeof(pb_t), PC_PAGE));
	int err = ENOMEM;
	if (set == NULL || ms.m == NULL || w == NULL)
		goto out;
	w->fd = fd;
	dl_iterate_phdr(pb_map_cb, &ms);

	pb_string(w, "");
	pb_value_type(w, 1, "alloc_objects", "count");
	pb_value_type(w, 1, "alloc_space", "bytes");
	pb_value_type(w, 1, "inuse_objects", "count");
	uint64_t inuse = pb_value_type(w, 1, "inuse_space", "bytes");
	pb_value_type(w, 11, "space", "bytes");
	pb_int(w, 12, opt_prof_sample);

	for (size_t i = 0; i < n; i++) {
		const prof_bucket_t *b = &s[i];
		if (b->alloc_samples == 0)
			continue;
		pbm_t m = { 0 };
		/* location_id: packed varints, in a nested buffer. */
		pbm_t ids = { 0 };
		for (uint32_t f = 0; f < b->depth; f++) {
			uintptr_t a = (uintptr_t)b->next->frames[f] - 1;
			size_t h = (size_t)((a * 0x9E3779B97F4A7C15ULL) >> 20) &
			    (cap - 1);
			while (set[h] != 0 && set[h] != a)
				h = (h + 1) & (cap - 1);
			set[h] = a;
			pbm_varint(&ids, h + 1);
		}
		pbm_key(&m, 1, 2);
		pbm_varint(&m, ids.n);
		memcpy(m.b + m.n, ids.b, ids.n);
		m.n += ids.n;
		pbm_t vals = { 0 };
		pbm_varint(&vals, (uint64_t)pb_round(b->alloc_n));
		pbm_varint(&vals, (uint64_t)pb_round(b->alloc_b));
		pbm_varint(&vals, (uint64_t)pb_round(b->live_n));
		pbm_varint(&vals, (uint64_t)pb_round(b->live_b));
		pbm_key(&m, 2, 2);
		pbm_varint(&m, vals.n);
		memcpy(m.b + m.n, vals.b, vals.n);
		m.n += vals.n;
		pb_msg(w, 2, &m);
	}

	for (size_t i = 0; i < ms.n; i++) {
		pb_map_t *mp = &ms.m[i];
		uint64_t name = pb_string(w, mp->name);
		uint64_t id = pb_string(w, mp->build_id);
		pbm_t m = { 0 };
		pbm_int(&m, 1, i + 1);
		pbm_int(&m, 2, mp->start);
		pbm_int(&m, 3, mp->limit);
		pbm_int(&m, 4, mp->offset);
		pbm_int(&m, 5, name);
		pbm_int(&m, 6, id);
		pb_msg(w, 3, &m);
	}
	for (size_t h = 0; h < cap; h++) {
		if (set[h] == 0)
			continue;
		pbm_t m = { 0 };
		pbm_int(&m, 1, h + 1);
		uint64_t map = pb_map_of(&ms, set[h]);
		if (map != 0)
			pbm_int(&m, 2, map);
		pbm_int(&m, 3, set[h]);
		pb_msg(w, 4, &m);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pb_int(w, 9, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	pb_int(w, 14, inuse);	/* default_sample_type */
	pb_flush(w);
	err = w->err;
out:
	if (w != NULL)
		base_unmap(w, PC_ALIGN_UP(sizeof(pb_t), PC_PAGE));
	if (ms.m != NULL)
		base_unmap(ms.m, map_bytes);
	if (set != NULL)
		base_unmap(set, set_bytes);
	return err;
}
