#include <string.h>

#include "base.h"
#include "locks.h"
#include "os.h"

#define BASE_BLOCK ((size_t)2 << 20)

#define base_lock locks_global.base	/* locks.h */
static uintptr_t base_cur;	/* base_lock */
static uintptr_t base_end;	/* base_lock */
static size_t base_mapped;	/* base_lock */
static size_t base_guard;	/* atomic: guard bytes of every mapping */
static span_t *span_free_list;	/* base_lock, linked through next */
static region_t *region_free_list; /* base_lock */

void *
base_map(size_t size)
{
	void *p = os_reserve_guarded(size);
	if (p != NULL)
		__atomic_fetch_add(&base_guard, 2 * PC_PAGE, __ATOMIC_RELAXED);
	return p;
}

void
base_unmap(void *p, size_t size)
{
	os_release_guarded(p, size);
	__atomic_fetch_sub(&base_guard, 2 * PC_PAGE, __ATOMIC_RELAXED);
}

size_t
base_guard_bytes(void)
{
	return __atomic_load_n(&base_guard, __ATOMIC_RELAXED);
}

static void *
base_alloc_locked(size_t size)
{
	size = PC_ALIGN_UP(size, 64);
	if (base_end - base_cur < size) {
		size_t block = PC_MAX(BASE_BLOCK, PC_ALIGN_UP(size, PC_PAGE));
		void *p = base_map(block);
		if (p == NULL)
			return NULL;
		base_mapped += block;
		base_cur = (uintptr_t)p;
		base_end = base_cur + block;
	}
	void *r = (void *)base_cur;
	base_cur += size;
	return r;
}

void *
base_alloc(size_t size)
{
	os_lock(&base_lock);
	void *p = base_alloc_locked(size);
	os_unlock(&base_lock);
	return p;
}

span_t *
span_new(void)
{
	os_lock(&base_lock);
	span_t *s = span_free_list;
	if (s != NULL)
		span_free_list = s->next;
	else
		s = base_alloc_locked(sizeof(span_t));
	os_unlock(&base_lock);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	return s;
}

void
span_delete(span_t *s)
{
	s->kind = SPAN_NONE;
	os_lock(&base_lock);
	s->next = span_free_list;
	span_free_list = s;
	os_unlock(&base_lock);
}

region_t *
region_new(void)
{
	os_lock(&base_lock);
	region_t *r = region_free_list;
	if (r != NULL)
		region_free_list = r->next;
	else
		r = base_alloc_locked(sizeof(region_t));
	os_unlock(&base_lock);
	if (r != NULL)
		memset(r, 0, sizeof(*r));
	return r;
}

void
region_delete(region_t *r)
{
	os_lock(&base_lock);
	r->next = region_free_list;
	region_free_list = r;
	os_unlock(&base_lock);
}

static void *dbg_free_list;	/* base_lock */

uint32_t *
base_dbg_sizes_new(void)
{
	os_lock(&base_lock);
	void *a = dbg_free_list;
	if (a != NULL)
		dbg_free_list = *(void **)a;
	else
		a = base_alloc_locked(SC_MAX_OBJS * sizeof(uint32_t));
	os_unlock(&base_lock);
	return a;
}

void
base_dbg_sizes_delete(uint32_t *a)
{
	os_lock(&base_lock);
	*(void **)a = dbg_free_list;
	dbg_free_list = a;
	os_unlock(&base_lock);
}

size_t
base_mapped_bytes(void)
{
	return __atomic_load_n(&base_mapped, __ATOMIC_RELAXED);
}

void
base_prefork(void)
{
	os_lock(&base_lock);
}

void
base_postfork_parent(void)
{
	os_unlock(&base_lock);
}
