/*
 * Module for test_dlopen: allocates in its constructor, frees in its
 * destructor, hands blocks to the main program and frees the main
 * program's blocks, and has dynamic TLS (allocated by ld.so through the
 * interposed malloc when a thread touches it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBLOCKS 64

static void *blocks[NBLOCKS];
static size_t sizes[NBLOCKS];
static void *keep_until_unload;
static __thread char tls_buf[5000];
static __thread int tls_counter;

static size_t
size_of(int i)
{
	return (size_t)(i * 997 % 5000) + (i % 16 == 0 ? 200000 : 0) + 1;
}

static unsigned char
byte_of(const void *p, size_t i)
{
	return (unsigned char)(((uintptr_t)p >> 4) + i * 7);
}

__attribute__((constructor)) static void
mod_init(void)
{
	for (int i = 0; i < NBLOCKS; i++) {
		sizes[i] = size_of(i);
		blocks[i] = malloc(sizes[i]);
		if (blocks[i] == NULL)
			abort();
		for (size_t j = 0; j < sizes[i]; j++)
			((unsigned char *)blocks[i])[j] = byte_of(blocks[i], j);
	}
	keep_until_unload = calloc(1, 12345);
	if (keep_until_unload == NULL)
		abort();
}

__attribute__((destructor)) static void
mod_fini(void)
{
	for (int i = 0; i < NBLOCKS; i++) {
		if (blocks[i] == NULL)
			continue;
		for (size_t j = 0; j < sizes[i]; j++)
			if (((unsigned char *)blocks[i])[j] != byte_of(blocks[i], j))
				abort();
		free(blocks[i]);
		blocks[i] = NULL;
	}
	unsigned char *k = keep_until_unload;
	for (int i = 0; i < 12345; i++)
		if (k[i] != 0)
			abort();
	free(keep_until_unload);
	void *p = malloc(1000);	/* allocation while unloading */
	free(p);
}

/* Give the main program every other block; it verifies and frees them. */
int
mod_take(void **out, size_t *out_sizes)
{
	int n = 0;
	for (int i = 0; i < NBLOCKS; i += 2) {
		out[n] = blocks[i];
		out_sizes[n] = sizes[i];
		blocks[i] = NULL;
		n++;
	}
	return n;
}

int
mod_check_byte(const void *p, size_t i, unsigned char b)
{
	return byte_of(p, i) == b;
}

void *
mod_alloc(size_t n)
{
	return malloc(n);
}

void
mod_free(void *p)
{
	free(p);
}

int
mod_tls(int v)
{
	tls_counter += v;
	memset(tls_buf, v, sizeof(tls_buf));
	return tls_counter + tls_buf[4999];
}
