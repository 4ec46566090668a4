/*
 * One thread-local pointer for the fast paths: the thread's cache.
 *
 * OS_TLS_DEFINE(type, name, initial) defines it (in one .c file),
 * OS_TLS_DECLARE(type, name) declares it, OS_TLS_GET(name) reads it and
 * OS_TLS_SET(name, value) writes it.  A thread that never set it reads
 * `initial`.  Reading must never allocate and must be a few instructions.
 */
#ifndef PC_OS_TLS_H
#define PC_OS_TLS_H

#include "compiler.h"

#if defined(_WIN32)
/* mingw's __thread is emulated through malloc: src/os_windows.c keeps the
 * pointer in a TLS slot of the thread environment block instead. */
void *os_tls_slot_get(void);
void os_tls_slot_set(void *v);
extern void *os_tls_initial;
#define OS_TLS_DECLARE(type, name) extern type name##_initial
#define OS_TLS_DEFINE(type, name, init) type name##_initial = init
#define OS_TLS_GET(name) \
	({ void *v_ = os_tls_slot_get(); \
	   (__typeof__(name##_initial))(v_ ? v_ : (void *)name##_initial); })
#define OS_TLS_SET(name, value) os_tls_slot_set(value)
#else
/* Initial-exec: a fixed offset from the thread pointer; the first access
 * of a thread neither allocates nor calls into ld.so. */
#define OS_TLS_DECLARE(type, name) extern PC_TLS type name
#define OS_TLS_DEFINE(type, name, init) PC_TLS type name = init
#define OS_TLS_GET(name) (name)
#define OS_TLS_SET(name, value) ((name) = (value))
#endif

#endif
