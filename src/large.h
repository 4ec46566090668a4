/*
 * Huge blocks: requests of PC_HUGE_MIN bytes or more (or with alignment
 * above a chunk) are mapped directly from the OS, registered in the page map
 * by their first page, and unmapped on free.  Realloc resizes them with the
 * OS's remap where it can, so growing a huge buffer never copies.
 */
#ifndef PC_LARGE_H
#define PC_LARGE_H

#include "span.h"

void *huge_alloc(size_t size, size_t align);
void huge_free(span_t *s);
/* Resize; returns the (possibly moved) block or NULL, leaving it intact. */
void *huge_realloc(span_t *s, size_t new_size);

size_t huge_mapped_bytes(void);
size_t huge_count(void);

#endif
