#include <errno.h>

#include "pagemap.h"
#include "locks.h"
#include "base.h"
#include "os.h"
#include "report.h"

uintptr_t *pagemap_root[PM_ROOT_LEN] PC_BIG_BSS;
span_t pagemap_interior;
#define pagemap_lock locks_global.pagemap	/* locks.h */

static uintptr_t *
pagemap_leaf(uintptr_t page_addr)
{
	size_t i = page_addr >> (PC_PAGE_SHIFT + PM_LEAF_BITS);
	uintptr_t *leaf = __atomic_load_n(&pagemap_root[i], __ATOMIC_ACQUIRE);
	if (PC_LIKELY(leaf != NULL))
		return leaf;
	os_lock(&pagemap_lock);
	leaf = pagemap_root[i];
	if (leaf == NULL) {
		leaf = base_map(PM_LEAF_LEN * sizeof(uintptr_t));
		if (leaf != NULL)
			__atomic_store_n(&pagemap_root[i], leaf,
			    __ATOMIC_RELEASE);
	}
	os_unlock(&pagemap_lock);
	return leaf;
}

int
pagemap_reserve(uintptr_t base, size_t npages)
{
	uintptr_t end = base + (npages << PC_PAGE_SHIFT);
	size_t leaf_span = (size_t)1 << (PC_PAGE_SHIFT + PM_LEAF_BITS);
	if (end < base || (end - 1) >> PC_VA_BITS)
		return ENOMEM;
	for (uintptr_t a = PC_ALIGN_DOWN(base, leaf_span); a < end;
	    a += leaf_span) {
		if (pagemap_leaf(a) == NULL)
			return ENOMEM;
	}
	return 0;
}

int
pagemap_set(uintptr_t base, size_t npages, uintptr_t entry)
{
	if (pagemap_reserve(base, npages) != 0)
		return ENOMEM;
	/* Every leaf of the range exists now, and leaves are never freed. */
	PC_CHECK(pagemap_set_reserved(base, npages, entry), "pagemap leaf");
	return 0;
}

void
pagemap_prefork(void)
{
	os_lock(&pagemap_lock);
}

void
pagemap_postfork_parent(void)
{
	os_unlock(&pagemap_lock);
}
